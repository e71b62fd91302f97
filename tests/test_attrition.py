"""Tests for evaltoolkit.estimators.attrition on a small constructed panel whose numbers are checked by hand.

Panel (long, one row per person per wave answered):

* arm "t": ids 1-12 at baseline; ids 1-9 at post, plus id 13 who has no baseline (a "new" person);
  ids 1-6 and 10 at follow-up ("fu");
* arm "c": ids 21-30 at baseline; ids 21-25 at post; ids 21-24 at follow-up.

Baseline variable ``x`` = id for arm t (1..12) and id - 20 for arm c (1..10).
"""

from __future__ import annotations

import importlib
import math
import re

import numpy as np
import pandas as pd
import pytest

at = importlib.import_module("evaltoolkit.estimators.attrition")
from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning  # noqa: E402
from evaltoolkit.plots.flow import consort_figure  # noqa: E402
from evaltoolkit.results import ESTIMATE_COLUMNS  # noqa: E402


def _panel() -> pd.DataFrame:
    rows = []
    waves = {
        "t": {"baseline": range(1, 13), "post": [*range(1, 10), 13], "fu": [*range(1, 7), 10]},
        "c": {"baseline": range(21, 31), "post": range(21, 26), "fu": range(21, 25)},
    }
    for arm, ws in waves.items():
        for w, ids in ws.items():
            for i in ids:
                x = i if arm == "t" else i - 20
                rows.append({"pid": i, "arm": arm, "wave": w, "x": float(x) if w == "baseline" else np.nan})
    # shuffle the row order: results must not depend on it
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture()
def res():
    with pytest.warns(EvalToolkitWarning, match="1 people responded only after baseline"):
        return at.attrition(
            _panel(), "pid", "arm", "wave", waves=["baseline", "post", "fu"], treated="t", baseline_vars=["x"]
        )


def test_counts_and_retention_by_hand(res):
    c = res.counts.set_index(["arm", "wave"])
    # t: 12 at baseline; post 10 respondents of whom 9 from baseline (id 13 is new); fu 7
    assert c.loc[("t", "baseline"), ["n", "n_from_baseline", "n_new"]].tolist() == [12, 12, 0]
    assert c.loc[("t", "post"), ["n", "n_from_baseline", "n_new"]].tolist() == [10, 9, 1]
    assert c.loc[("t", "fu"), ["n", "n_from_baseline"]].tolist() == [7, 7]
    assert c.loc[("t", "post"), "retention"] == pytest.approx(9 / 12)
    assert c.loc[("t", "fu"), "retention"] == pytest.approx(7 / 12)
    assert c.loc[("c", "post"), "retention"] == pytest.approx(5 / 10)
    assert c.loc[("c", "fu"), "retention"] == pytest.approx(4 / 10)
    assert res.details["n_without_baseline"] == 1
    assert any("1 people responded only after baseline" in w for w in res.warnings)


def test_differential_attrition_by_hand(res):
    d = res.differential.set_index("wave")
    # post: retention 9/12 vs 5/10; overall attrition 1 - 14/22
    assert d.loc["post", "differential_attrition"] == pytest.approx(0.75 - 0.5)
    assert d.loc["post", "std_error"] == pytest.approx(math.sqrt(0.75 * 0.25 / 12 + 0.5 * 0.5 / 10))
    assert d.loc["post", "overall_attrition"] == pytest.approx(8 / 22)
    # expected count of lost treated people 12 * 8 / 22 = 4.36 < 5, so Fisher's exact test;
    # R: fisher.test(matrix(c(9, 5, 3, 5), 2))$p.value -> 0.3777089783
    assert d.loc["post", "test"] == "Fisher's exact test"
    assert d.loc["post", "p_value"] == pytest.approx(0.3777089783, abs=1e-9)
    # fu: 7/12 vs 4/10; expected counts 6, 6, 5, 5, so Pearson chi-square without correction:
    # X^2 = 1/6 + 1/6 + 1/5 + 1/5 = 0.7333; R: chisq.test(matrix(c(7, 4, 5, 6), 2), correct = FALSE)
    # -> p = 0.3918049
    assert d.loc["fu", "differential_attrition"] == pytest.approx(7 / 12 - 0.4)
    assert d.loc["fu", "overall_attrition"] == pytest.approx(0.5)
    assert d.loc["fu", "test"] == "Pearson chi-square(1)"
    assert d.loc["fu", "p_value"] == pytest.approx(0.3918049, abs=1e-7)
    z = 1.959963984540054
    assert d.loc["fu", "ci_lower"] == pytest.approx(
        (7 / 12 - 0.4) - z * math.sqrt((7 / 12) * (5 / 12) / 12 + 0.4 * 0.6 / 10)
    )


def test_completers_vs_dropouts_smd_by_hand(res):
    b = res.dropout_balance.set_index(["variable", "group"])
    row = b.loc[("x", "t")]
    # completers at fu in arm t: x = 1..6, 10 (mean 31/7, var (191 - 31^2/7)/6 = 376/42);
    # dropouts: 7, 8, 9, 11, 12 (mean 47/5, var (459 - 47^2/5)/4 = 4.3); pooled SD = sqrt of mean var
    assert row["n_completers"] == 7 and row["n_dropouts"] == 5
    assert row["mean_completers"] == pytest.approx(31 / 7)
    assert row["smd"] == pytest.approx((31 / 7 - 47 / 5) / math.sqrt((376 / 42 + 4.3) / 2))
    # arm c: completers 1-4 (mean 2.5, var 5/3), dropouts 5-10 (mean 7.5, var 3.5)
    assert b.loc[("x", "c"), "smd"] == pytest.approx((2.5 - 7.5) / math.sqrt((5 / 3 + 3.5) / 2))


def test_tidy_table_has_contract_columns(res):
    t = res.table
    assert list(t.columns) == list(ESTIMATE_COLUMNS)
    row = t[t["term"] == "differential retention (t - c) at post"].iloc[0]
    assert row["estimate"] == pytest.approx(0.25) and row["n_obs"] == 22
    ret = t[t["term"] == "retention t at post"].iloc[0]
    # Wilson interval for 9/12: centre (0.75 + z^2/24) / (1 + z^2/12)
    z = 1.959963984540054
    centre = (0.75 + z * z / 24) / (1 + z * z / 12)
    half = z * math.sqrt(0.75 * 0.25 / 12 + z * z / (4 * 144)) / (1 + z * z / 12)
    assert (ret["ci_lower"], ret["ci_upper"]) == pytest.approx((centre - half, centre + half))


def test_flow_and_small_cell_suppression(res):
    f = res.flow.set_index(["arm", "stage", "wave"])["n"]
    assert f[("t", "assessed", "baseline")] == 12 and f[("t", "followed_up", "post")] == 9
    assert f[("t", "lost", "post")] == 3 and f[("t", "analysed", "fu")] == 7
    assert f[("c", "assessed", "baseline")] == 10 and f[("c", "lost", "fu")] == 6
    shown = res.report_counts().set_index(["arm", "wave"])
    assert shown.loc[("t", "baseline"), "n"] == "12" and shown.loc[("t", "post"), "n_new"] == "<10"
    assert shown.loc[("c", "post"), "n"] == "<10" and np.isnan(shown.loc[("c", "post"), "% of baseline"])


def test_consort_figure_never_shows_small_counts(res):
    fig = consort_figure(res, arm_labels={"t": "NCS", "c": "Control"})
    texts = [t.get_text() for t in fig.axes[0].texts]
    joined = "\n".join(texts)
    assert "n = 12" in joined and "n = 10" in joined and "NCS" in joined
    # every count printed is >= 10 or shown as "<10"; no percentage next to a suppressed count
    for number in re.findall(r"(?:n = |: )(\S+)", joined):
        assert number.startswith("<10") or int(number.replace(",", "")) >= 10
    assert "<10 (" not in joined
    assert sum("Followed up at post" in t for t in texts) == 2 and sum("Analysed" in t for t in texts) == 2


def test_outcome_missing_counts_as_non_response():
    d = _panel()
    d = d[d["pid"] != 13]  # no "new" person here
    d["att"] = 1.0
    d.loc[(d["pid"] == 1) & (d["wave"] == "post"), "att"] = np.nan
    with pytest.warns(EvalToolkitWarning, match="missing 'att' count as non-response"):
        r = at.attrition(
            d, "pid", "arm", "wave", waves=["baseline", "post", "fu"], treated="t", outcome="att"
        )
    c = r.counts.set_index(["arm", "wave"])
    assert c.loc[("t", "post"), "n_from_baseline"] == 8
    assert any("missing 'att'" in w for w in r.warnings)


def test_bad_inputs():
    d = _panel()
    with pytest.raises(DataError, match="share an id and wave"):
        at.attrition(pd.concat([d, d.iloc[[0]]]), "pid", "arm", "wave")
    two_arms = d.copy()
    two_arms.loc[(two_arms["pid"] == 1) & (two_arms["wave"] == "post"), "arm"] = "c"
    with pytest.raises(DataError, match="more than one arm"):
        at.attrition(two_arms, "pid", "arm", "wave")
    with pytest.raises(DesignError, match="at least two waves"):
        at.attrition(d[d["wave"] == "baseline"], "pid", "arm", "wave")
    with pytest.raises(DesignError, match="treated arm 'ncs' does not occur"):
        at.attrition(d, "pid", "arm", "wave", treated="ncs")
    with pytest.raises(DesignError, match="only one arm"):
        at.attrition(d[d["arm"] == "t"], "pid", "arm", "wave")
    with pytest.raises(DataError, match="column not found"):
        at.attrition(d, "pid", "group", "wave")
    with pytest.raises(DesignError, match=r"wave\(s\) \['year1'\] do not occur"):
        at.attrition(d, "pid", "arm", "wave", waves=["baseline", "year1"])


def test_consort_secondary_suppression():
    # 200 assessed, 195 followed up, 5 lost: printing 195 exactly would reveal the 5 by subtraction, so the
    # followed-up (and analysed) count is rounded to the nearest 10 and the lost count shown as <10.
    rows = []
    for pid in range(400):
        arm = "t" if pid < 200 else "c"
        rows.append({"pid": pid, "arm": arm, "wave": "baseline"})
        if (arm == "t" and pid >= 5) or (arm == "c" and pid < 330):
            rows.append({"pid": pid, "arm": arm, "wave": "post"})
    r = at.attrition(pd.DataFrame(rows), "pid", "arm", "wave", waves=["baseline", "post"], treated="t")
    fig = consort_figure(r)
    joined = " ".join(" ".join(t.get_text() for t in fig.axes[0].texts).split())  # boxes wrap their lines
    assert "195" not in joined and "about 200" in joined and ": <10" in joined
    # control arm: nothing small, so counts stay exact
    assert "n = 130" in joined and "Not followed up at post: 70" in joined
    from evaltoolkit.plots.style import describe

    assert "195" not in describe(fig) and "<10" in describe(fig)  # the alt text keeps the same suppression
