"""Tests for evaltoolkit.estimators.meta.meta_regression against R (metafor and lm).

Reference numbers: R 4.2.2, metafor 3.8-1, on the bundled Paluck, Green & Green (2019) table
(``d <- read.csv("evaltoolkit/data/paluck2019_contact.csv")``). The R code is next to each pinned number;
the tests never call R. REML references use ``control = list(threshold = 1e-12, maxiter = 1000)`` so metafor
iterates to the optimum our Fisher scoring reaches (its default threshold 1e-5 stops about 2e-6 short in tau^2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError, DesignError
from evaltoolkit.estimators.bayes.priors import load_paluck2019
from evaltoolkit.estimators.meta import egger_test, meta_regression


@pytest.fixture(scope="module")
def paluck() -> pd.DataFrame:
    d = load_paluck2019()
    d["log_delay"] = np.log(d["days_delay"])
    return d


def _coefs(res):
    t = res.table.set_index("term")
    return t["estimate"].tolist(), t["std_error"].tolist(), t["p_value"].tolist()


def test_reml_publication_year_matches_metafor(paluck):
    # R: r <- rma(yi = d, sei = se_d, mods = ~ year, data = d, method = "REML",
    #             control = list(threshold = 1e-12, maxiter = 1000)); coef(r); r$se; r$tau2; r$pval
    # 33.5772784434895 -0.0165750392973; SE 11.12502824525136 0.00555617183256; tau2 0.126690960627;
    # p 0.002543145534 0.002852872702 (default threshold: p to 7 digits the same)
    res = meta_regression("d", "se_d", "year", data=paluck)
    est, se, p = _coefs(res)
    assert est == pytest.approx([33.5772784434895, -0.0165750392973], rel=1e-8)
    assert se == pytest.approx([11.12502824525136, 0.00555617183256], rel=1e-8)
    assert res.tau2 == pytest.approx(0.126690960627, rel=1e-8)
    assert p == pytest.approx([0.002543145534, 0.002852872702], rel=1e-4)
    assert res.method == "REML" and res.k == 27 and res.details["converged"]


def test_reml_log_delay_matches_metafor(paluck):
    # R: rma(yi = d, sei = se_d, mods = ~ log(days_delay), data = d, method = "REML",
    #        control = list(threshold = 1e-12, maxiter = 1000))
    # coef 0.5489919087953 -0.0311654198958; SE 0.4045558521280 0.0839816819909; tau2 0.206920266895;
    # p 0.174773656998 0.710564667680
    res = meta_regression("d", "se_d", ["log_delay"], data=paluck)
    est, se, p = _coefs(res)
    assert est == pytest.approx([0.5489919087953, -0.0311654198958], rel=1e-8)
    assert se == pytest.approx([0.4045558521280, 0.0839816819909], rel=1e-8)
    assert p == pytest.approx([0.174773656998, 0.710564667680], rel=1e-8)
    assert res.tau2 == pytest.approx(0.206920266895, rel=1e-8)


def test_wls_pet_and_peese_match_lm(paluck):
    # R: summary(lm(d ~ se_d, weights = 1/se_d^2, data = d))$coef      (PET)
    #    (Intercept) 0.02752755952 (0.1636673024) t 0.1681921748 p 0.86778538997
    #    se_d        1.87584934534 (1.0710734040) t 1.7513732843 p 0.09214333004
    #    summary(lm(d ~ var_d, weights = 1/se_d^2, data = d))$coef     (PEESE)
    #    (Intercept) 0.1731346231 (0.09593204862) p 0.08317217230; var_d 4.7448735242 (2.66693454134) p 0.08737810884
    pet = meta_regression("d", "se_d", "se_d", data=paluck, method="WLS")
    est, se, p = _coefs(pet)
    assert est == pytest.approx([0.02752755952, 1.87584934534], rel=1e-9)
    assert se == pytest.approx([0.1636673024, 1.0710734040], rel=1e-9)
    assert p == pytest.approx([0.86778538997, 0.09214333004], rel=1e-9)
    assert pet.table["df"].tolist() == [25.0, 25.0]
    peese = meta_regression("d", "se_d", "var_d", data=paluck, method="WLS")
    est, se, p = _coefs(peese)
    assert est == pytest.approx([0.1731346231, 4.7448735242], rel=1e-9)
    assert se == pytest.approx([0.09593204862, 2.66693454134], rel=1e-9)
    assert p == pytest.approx([0.08317217230, 0.08737810884], rel=1e-9)
    # PET is Egger's regression turned round: its intercept is Egger's slope, its slope Egger's intercept
    eg = egger_test(paluck["d"], paluck["se_d"])
    assert pet.coef("intercept").estimate == pytest.approx(eg.slope, rel=1e-12)
    assert pet.coef("se_d").estimate == pytest.approx(eg.intercept, rel=1e-12)
    assert pet.coef("intercept").std_error == pytest.approx(eg.details["slope_se"], rel=1e-12)


def test_fixed_effect_matches_metafor(paluck):
    # R: r <- rma(yi = d, sei = se_d, mods = ~ se_d, data = d, method = "FE"); coef(r); r$se
    # 0.02752755952 1.87584934534; SE 0.06588943677 0.43119439443
    res = meta_regression("d", "se_d", "se_d", data=paluck, method="FE")
    est, se, _ = _coefs(res)
    assert est == pytest.approx([0.02752755952, 1.87584934534], rel=1e-9)
    assert se == pytest.approx([0.06588943677, 0.43119439443], rel=1e-9)
    assert res.tau2 == 0.0 and res.table["df"].isna().all()


def test_arrays_with_a_mapping_and_variances_give_the_same(paluck):
    a = meta_regression(paluck["d"].to_numpy(), None, {"year": paluck["year"]}, variances=paluck["se_d"] ** 2)
    b = meta_regression("d", "se_d", "year", data=paluck)
    assert a.table["estimate"].tolist() == pytest.approx(b.table["estimate"].tolist(), rel=1e-10)


def test_missing_moderators_are_dropped_and_counted(paluck):
    d = paluck.copy()
    d.loc[[0, 5], "year"] = np.nan
    d.loc[7, "d"] = np.nan
    res = meta_regression("d", "se_d", "year", data=d)
    assert res.k == 24
    assert res.details["dropped"] == {"missing moderator": 2, "missing effect or standard error": 1}
    ref = meta_regression("d", "se_d", "year", data=paluck.drop([0, 5, 7]))
    assert res.table["estimate"].tolist() == pytest.approx(ref.table["estimate"].tolist(), rel=1e-12)
    assert d["year"].isna().sum() == 2  # the input is not modified


def test_bad_input_is_said_plainly(paluck):
    with pytest.raises(DataError, match="column not found") as err:
        meta_regression("d", "se_d", "decade", data=paluck)
    assert "decade" in str(err.value)
    with pytest.raises(DataError, match="must be numeric"):
        meta_regression("d", "se_d", "target", data=paluck)
    with pytest.raises(DataError, match="collinear"):
        meta_regression("d", "se_d", ["year", "year"], data=paluck)
    with pytest.raises(DataError, match="at least one moderator"):
        meta_regression("d", "se_d", [], data=paluck)
    with pytest.raises(DesignError, match="unknown meta-regression method"):
        meta_regression("d", "se_d", "year", data=paluck, method="DL")
    with pytest.raises(DataError, match="needs more than 2 studies"):
        meta_regression("d", "se_d", "year", data=paluck.head(2))
