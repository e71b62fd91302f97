"""Multiple-outcome correction against R's p.adjust and statsmodels' multipletests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from evaltoolkit.errors import DataError, DesignError
from evaltoolkit.inference.multiple import adjust_pvalues, correct

P = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan, 0.5, 0.0001]

# R 4.2.2:
#   p <- c(0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, NA, 0.5, 0.0001)
#   p.adjust(p, m) for m in holm, BH, bonferroni, hochberg, BY  (NA kept, not counted)
R_P_ADJUST = {
    "holm": [0.009, 0.064, 0.273, 0.273, 0.273, 0.273, 0.273, 0.410, np.nan, 0.500, 0.001],
    "bh": [
        0.005,
        0.0266666666666667,
        0.07,
        0.07,
        0.07,
        0.0857142857142857,
        0.0925,
        0.2277777777777778,
        np.nan,
        0.5,
        0.001,
    ],
    "bonferroni": [0.010, 0.080, 0.390, 0.410, 0.420, 0.600, 0.740, 1.000, np.nan, 1.000, 0.001],
    "hochberg": [0.009, 0.064, 0.210, 0.210, 0.210, 0.222, 0.222, 0.410, np.nan, 0.500, 0.001],
    "by": [
        0.01464484126984127,
        0.07810582010582011,
        0.20502777777777778,
        0.20502777777777778,
        0.20502777777777778,
        0.25105442176870746,
        0.27092956349206349,
        0.66715388007054666,
        np.nan,
        1.0,
        0.00292896825396825,
    ],
}


@pytest.mark.parametrize("method", sorted(R_P_ADJUST))
def test_matches_r_p_adjust(method):
    np.testing.assert_allclose(adjust_pvalues(P, method), R_P_ADJUST[method], rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("holm", "holm"),
        ("bh", "fdr_bh"),
        ("hochberg", "simes-hochberg"),
        ("by", "fdr_by"),
        ("bonferroni", "bonferroni"),
    ],
)
def test_matches_statsmodels_on_random_families(ours, theirs):
    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 17, 60):
        p = rng.uniform(size=m) ** 3  # many small values, some ties after rounding
        p = np.round(p, 3)
        np.testing.assert_allclose(adjust_pvalues(p, ours), multipletests(p, method=theirs)[1], rtol=1e-12)


def test_aliases_and_bad_input():
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.02], "fdr_bh"), adjust_pvalues([0.01, 0.02], "bh"))
    with pytest.raises(DesignError, match="unknown multiple-comparison method"):
        adjust_pvalues([0.1], "tukey")
    with pytest.raises(DataError, match="between 0 and 1"):
        adjust_pvalues([1.2], "holm")
    assert np.isnan(adjust_pvalues([np.nan], "holm")).all()


def test_correct_within_families():
    # Families are corrected separately: primary has m = 2, secondary m = 3.
    t = pd.DataFrame(
        {
            "outcome": ["att", "warmth", "pos_contact", "neg_contact", "cohesion"],
            "p_value": [0.01, 0.04, 0.03, 0.02, 0.30],
        }
    )
    fam = {
        "att": "primary",
        "warmth": "primary",
        "pos_contact": "sec",
        "neg_contact": "sec",
        "cohesion": "sec",
    }
    out = correct(t, "holm", families=fam)
    # R: p.adjust(c(0.01, 0.04), "holm") = 0.02 0.04 ; p.adjust(c(0.03, 0.02, 0.30), "holm") = 0.06 0.06 0.30
    np.testing.assert_allclose(out["p_adjusted"], [0.02, 0.04, 0.06, 0.06, 0.30])
    assert out["family"].tolist() == ["primary", "primary", "sec", "sec", "sec"]
    # the design-file form (family -> outcomes) gives the same
    by_family = correct(
        t, "holm", families={"primary": ["att", "warmth"], "sec": ["pos_contact", "neg_contact", "cohesion"]}
    )
    np.testing.assert_allclose(by_family["p_adjusted"], out["p_adjusted"])
    # outcomes the mapping does not list form their own one-member family (unadjusted)
    alone = correct(t, "holm", families={"att": "primary", "warmth": "primary"})
    np.testing.assert_allclose(alone["p_adjusted"], [0.02, 0.04, 0.03, 0.02, 0.30])
    assert alone["family"].tolist() == ["primary", "primary", "pos_contact", "neg_contact", "cohesion"]
    out = correct(t.assign(fam=["p", "p", "s", "s", "s"]), "bh", families="fam")
    # R: p.adjust(c(0.01, 0.04), "BH") = 0.02 0.04 ; p.adjust(c(0.03, 0.02, 0.30), "BH") = 0.045 0.045 0.300
    np.testing.assert_allclose(out["p_adjusted"], [0.02, 0.04, 0.045, 0.045, 0.30])
    assert out["reject"].tolist() == [True, True, True, True, False]
    assert out["adjustment"].iloc[2] == "bh within 's' (m=3)"
    with pytest.raises(DataError, match="family column"):
        correct(t, families="nope")
