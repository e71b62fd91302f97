"""Notebook and API conventions: rich display, tidy/glance, .plot(), etable and the formula interface.

Reference numbers are the results themselves (each estimator is tested against R in its own test file); here the
views must show those numbers, labelled, and the two interfaces must give the same fit.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.errors import UsageError
from evaltoolkit.estimators.formula import parse_formula

ROOT = Path(__file__).resolve().parents[1]
SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def study():
    design = et.load_design(ROOT / "designs" / "ncs_prepost_control.yaml")
    return et.simulate_study(design, n=400, seed=11).data


@pytest.fixture(scope="module")
def fits(study):
    post = study[study["wave"] == "post"]
    common = dict(
        treated="ncs", control="control", cluster="team", seed=5
    )  # seeded: the policy may bootstrap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "did": et.did(study, "attitudes ~ age + C(female)", "arm", "wave", unit="pid", **common),
            "did_kw": et.did(
                study, "attitudes", "arm", "wave", unit="pid", covariates=["age", "C(female)"], **common
            ),
            "ancova": et.ancova(post, "positive_contact ~ female + age", "arm", **common),
            "ancova_kw": et.ancova(post, "positive_contact", "arm", covariates=["female", "age"], **common),
        }


def _numbers(res) -> np.ndarray:
    return res.table[["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]].to_numpy(dtype=float)


@pytest.mark.parametrize("kind", ["did", "ancova"])
def test_the_formula_and_the_keyword_interface_give_the_same_fit(fits, kind):
    a, b = fits[kind], fits[f"{kind}_kw"]
    np.testing.assert_allclose(_numbers(a), _numbers(b), rtol=0, atol=1e-12)
    assert a.table["term"].tolist() == b.table["term"].tolist() and a.outcome == b.outcome


@pytest.mark.parametrize(
    "bad", ["y ~ a * b", "y ~ a:b", "y ~ a | pid", "y ~ a - b", "y ~ I(a)", "y ~ 1", "y"]
)
def test_a_formula_token_that_is_not_understood_is_named(bad):
    with pytest.raises(UsageError) as err:
        parse_formula(bad)
    assert "\n" not in str(err.value)
    if "~" in bad:
        assert repr(bad.split("~")[1].strip()) in str(err.value)


def test_covariates_come_from_the_formula_or_the_keyword_not_both(study):
    with pytest.raises(UsageError, match="not both"):
        et.ancova(study, "attitudes ~ age", "arm", treated="ncs", control="control", covariates=["female"])


@pytest.mark.parametrize("kind", ["did", "ancova"])
def test_rich_display_is_labelled_rounded_and_says_method_and_n(fits, kind):
    res = fits[kind]
    shown = res._repr_html_()
    assert "<table" in shown and "Estimate" in shown and "Std. error" in shown
    cells = re.sub(r"<[^>]+>", " ", shown.split("<small>")[0])  # the table, not the method line
    assert not SNAKE.search(cells), SNAKE.search(cells)
    assert not re.search(r"\w[@:]\w", cells)
    assert f"n = {res.n_obs:,}" in shown and res.method.split(";")[0] in shown
    assert repr(res).startswith(("DiDResult(", "EffectResult("))  # the plain repr is unchanged


def test_tidy_is_the_table_broom_style(fits):
    res = fits["did"]
    tidy = res.tidy()
    cols = ["outcome", "term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
    assert list(tidy) == cols
    np.testing.assert_array_equal(tidy["conf_low"], res.table["ci_lower"])
    np.testing.assert_allclose(tidy["statistic"], res.table["estimate"] / res.table["std_error"])


def test_glance_is_one_row_about_the_model(fits, study):
    g = fits["ancova"].glance()
    assert g.shape[0] == 1
    assert list(g) == ["analysis", "outcome", "n_obs", "n_clusters", "method", "df", "r2", "r2_within"]
    post = study[study["wave"] == "post"]
    X = np.column_stack([np.ones(len(post)), post["arm"] == "ncs", post["female"], post["age"]]).astype(float)
    y = post["positive_contact"].to_numpy(dtype=float)
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    assert g["r2"].iloc[0] == pytest.approx(1 - resid @ resid / ((y - y.mean()) @ (y - y.mean())), abs=1e-10)
    assert fits["did"].glance()["n_clusters"].iloc[0] == fits["did"].n_clusters
    assert np.isnan(g["r2_within"].iloc[0]) and 0 < fits["did"].glance()["r2_within"].iloc[0] < 1  # person FE


def test_etable_footer_gives_each_models_r_squared(fits):
    df = et.etable([fits["did"], fits["ancova"]], format="dataframe", digits=3)
    r2 = df.loc[("R²", "")].tolist()
    assert [float(v) for v in r2] == [round(fits[k].glance()["r2"].iloc[0], 3) for k in ("did", "ancova")]


@pytest.mark.parametrize("kind", ["did", "ancova"])
def test_plot_returns_the_results_figure(fits, kind):
    from matplotlib.figure import Figure

    assert isinstance(fits[kind].plot(), Figure)


def _shown_numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


@pytest.mark.parametrize("digits", [2, 3, 4])
def test_etable_shows_the_results_numbers_to_the_digits_shown(fits, digits):
    models = [fits["did"], fits["ancova"]]
    df = et.etable(models, format="dataframe", digits=digits)
    assert df.shape[1] == 2
    for col, res in zip(df.columns, models):
        for _, row in res.table.iterrows():
            label = et.etable([res], format="dataframe").index[2 * _][0]  # the term's row label
            shown_est = df.loc[(label, "Estimate"), col]
            shown_se = df.loc[(label, "Std. error"), col]
            assert float(shown_est) == round(float(row["estimate"]), digits)
            assert float(shown_se.strip("()")) == round(float(row["std_error"]), digits)
            assert len(shown_est.split(".")[1]) == digits
    text = et.etable(models, format="markdown", digits=digits)
    tables = [r.table[["estimate", "std_error"]].to_numpy().ravel() for r in models]
    assert {round(float(v), digits) for t in tables for v in t} <= set(_shown_numbers(text))


def test_etable_formats_are_labelled(fits):
    models = [fits["did"], fits["ancova"]]
    html_ = et.etable(models)
    assert html_.startswith("<table") and "Attitudes (DiD)" in html_ and "Positive contact (ANCOVA)" in html_
    assert "Programme effect, post" in html_ and "Rows" in html_ and "Clusters" in html_
    md = et.etable(models, format="markdown", stars=True)
    assert md.splitlines()[1].startswith("|---|") and "p < 0.05" in md
    tex = et.etable(models, format="latex")
    assert tex.startswith(r"\begin{tabular}{lrr}") and r"\bottomrule" in tex
    body = re.sub(r"<[^>]+>", " ", html_.split("<tfoot>")[0])
    assert not SNAKE.search(body) and not re.search(r"\w[@:]\w", body)
    with pytest.raises(UsageError, match="format"):
        et.etable(models, format="pdf")


def test_etable_writes_a_word_table(fits, tmp_path):
    try:
        import docx
    except ImportError:
        print("SKIPPED: python-docx is not installed; format='docx' is untested here")
        pytest.skip("python-docx is not installed")
    out = et.etable([fits["did"], fits["ancova"]], format="docx", path=tmp_path / "models.docx")
    table = docx.Document(str(out)).tables[0]
    assert table.cell(0, 1).text == "Attitudes (DiD)"
    assert table.cell(1, 1).text == f"{round(fits['did'].estimate, 3):.3f}"


def test_results_with_a_table_headline_have_the_views_too(study):
    post = study[study["wave"] == "post"].assign(t=lambda d: (d["arm"] == "ncs").astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        med = et.mediation(post, "t", "positive_contact", "attitudes", n_boot=50, seed=1)
    shown = med._repr_html_()
    cells = re.sub(r"<[^>]+>", " ", shown.split("<small>")[0])
    assert "Indirect effect through" in cells and not re.search(r"\w[@:\[]\w", cells)
    assert list(med.tidy())[:2] == ["outcome", "term"] and med.glance().shape[0] == 1
    table = et.etable([med], format="dataframe")
    assert table.shape[1] == med.table["outcome"].nunique()
    assert isinstance(pd.DataFrame(table), pd.DataFrame)
