"""Sensitivity to unobserved confounding (evaltoolkit.estimators.sensitivity.ovb) against sensemakr, R and the
E-value papers; the cluster-robust version against R and by simulation."""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError, EstimationError, UsageError
from evaltoolkit.estimators.ancova import ancova
from evaltoolkit.estimators.did import did
from evaltoolkit.estimators.sensitivity.ovb import (
    _rss,
    e_value,
    ovb_ancova,
    ovb_did,
    ovb_formula,
    ovb_sensitivity,
    robustness_value,
)
from evaltoolkit.inference.core import coef_test, ols

DATA = Path(__file__).parent / "data"
DARFUR = "peacefactor ~ directlyharmed + age + farmer_dar + herder_dar + pastvoted + hhsize_darfur + female + C(village)"


@pytest.fixture(scope="module")
def darfur_sens():
    darfur = pd.read_csv(DATA / "darfur.csv")
    return ovb_formula(
        darfur, DARFUR, "directlyharmed", benchmarks=["female"], kd=[1, 2, 3], vcov="classical"
    )


def test_darfur_reproduces_sensemakr(darfur_sens):
    s = darfur_sens
    # sensemakr 0.1.6 (R), README "Basic usage" and tests/testthat/test-02-darfur.R:
    #   model <- lm(peacefactor ~ directlyharmed + age + farmer_dar + herder_dar + pastvoted + hhsize_darfur +
    #               female + village, data = darfur)
    #   sensemakr(model, treatment = "directlyharmed", benchmark_covariates = "female", kd = 1:3)
    # prints estimate 0.09732, SE 0.02326, t 4.18445, partial R2 0.02187, RV_q 0.13878, RV_qa 0.07626, df 783;
    # PySensemakr 0.0.8 on statsmodels OLS gives 0.09731581928495897, 0.023256537809811167, 0.021873093341110848,
    # 0.13877635389359166, 0.0762579655448609.
    assert s.df == 783
    assert s.estimate == pytest.approx(0.09731581928495897, rel=1e-10)
    assert s.std_error == pytest.approx(0.023256537809811167, rel=1e-10)
    assert s.t_value == pytest.approx(4.184449984808342, rel=1e-10)
    assert s.partial_r2 == pytest.approx(0.021873093341110848, rel=1e-9)
    assert s.rv_q == pytest.approx(0.13877635389359166, rel=1e-9)
    assert s.rv_qa == pytest.approx(0.0762579655448609, rel=1e-9)
    b = s.bounds
    assert b.bound_label.tolist() == ["1x female", "2x female", "3x female"]
    # sensemakr tests/testthat/test-02-darfur.R, check_bounds (full precision)
    np.testing.assert_allclose(
        b.r2dz_x, [0.00916428667504862, 0.0183285733500972, 0.0274928600251459], rtol=1e-9
    )
    np.testing.assert_allclose(b.r2yz_dx, [0.12464092303637, 0.249324064199975, 0.374050471038094], rtol=1e-9)
    np.testing.assert_allclose(
        b.adjusted_estimate, [0.0752202712144491, 0.0529151723844518, 0.0303960234641548], rtol=1e-9
    )
    np.testing.assert_allclose(
        b.adjusted_se, [0.0218733277437572, 0.0203500620779637, 0.0186700648170924], rtol=1e-9
    )
    np.testing.assert_allclose(
        b.adjusted_t, [3.43890386024675, 2.60024623913809, 1.62806202131271], rtol=1e-9
    )
    # sensemakr's bounds table uses t(783) for the interval, its adjusted_ci() and Theorem 3 t(782) (the adjusted
    # model has one more parameter); we use t(df - 1) throughout: the limits differ by < 1e-7 at 783 df.
    np.testing.assert_allclose(b.adjusted_lower, [0.032282966, 0.012968035, -0.006253282], atol=2e-7)
    np.testing.assert_allclose(b.adjusted_upper, [0.11815758, 0.09286231, 0.06704533], atol=2e-7)
    # the README's summary prints the same rounded: 0.0323 / 0.0130 / -0.0063
    assert b.adjusted_lower.round(4).tolist() == [0.0323, 0.013, -0.0063]


def test_robustness_value_at_its_own_point_leaves_the_critical_t(darfur_sens):
    # Cinelli & Hazlett (2020) eq. 19 / sensemakr test-10-rv-xrv.R: a confounder with R2dz.x = R2yz.dx = RV_qa
    # leaves exactly the critical t - for the classical and, by the same algebra, for the cluster-robust version
    s = darfur_sens
    assert float(s.adjusted(s.rv_qa, s.rv_qa)["t_value"]) == pytest.approx(s.t_critical, rel=1e-9)
    assert float(s.adjusted(s.rv_q, s.rv_q)["estimate"]) == pytest.approx(0.0, abs=1e-12)
    # sensemakr's reference page for robustness_value (darfur model): q = 1/2, alpha = 1 prints 0.072 and
    # q = 1/2, alpha = 0.05 prints 0.00456
    assert round(robustness_value(s.t_value, 783, q=0.5, alpha=None), 3) == 0.072
    assert round(robustness_value(s.t_value, 783, q=0.5, alpha=0.05), 5) == 0.00456
    # the extreme branch (sensemakr test-10: dof 7, t = 1/0.3): R2yz.dx = 1 binds, XRV = (fq^2 - f*^2)/(1 + fq^2)
    fq2, fs2 = (1 / 0.3) ** 2 / 7, 2.446911851144969**2 / 6  # qt(0.975, 6) = 2.446911851144969
    assert robustness_value(1 / 0.3, 7, alpha=0.05) == pytest.approx((fq2 - fs2) / (1 + fq2), rel=1e-9)


def _panel(dgps):
    """did_panel with a time-varying covariate that moves with the programme (the data of the R reference)."""
    p = dgps.did_panel(n_teams=40, size=10, seed=4)
    rng = np.random.default_rng(4)
    post, t = (p.wave == "post").to_numpy(), (p.arm == "ncs").to_numpy()
    p["hours"] = rng.normal(size=len(p)) + 0.5 * post + 0.4 * t * post
    p["y"] = p.y + 0.3 * p.hours
    return p


def test_did_within_person_and_cluster_robust_against_r(dgps):
    p = _panel(dgps)
    s = ovb_did(p, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", covariates=["hours"],
                benchmarks=["hours"], kd=[1, 2], vcov="CR1")  # fmt: skip
    # R 4.2 (the same data written to CSV, p$treat_post = treated x post):
    #   m <- lm(y ~ treat_post + wave + hours + factor(pid), data = p)       # person effects as dummies (FWL)
    #   se_cr1 <- sqrt(sandwich::vcovCL(m, cluster = ~team, type = "HC0", cadjust = FALSE)[2, 2] *
    #                  G/(G-1) * (N-1)/(N-4))                               # fixest CR1, pid nested in team
    #   t <- est/se_cl; r2 <- t^2/(t^2 + dof); fq <- abs(t)/sqrt(dof); rvq <- (sqrt(fq^4 + 4 fq^2) - fq^2)/2
    #   fcrit <- se_cr1/se_cl * qt(0.975, G-1)/sqrt(dof-1); fqa <- fq - fcrit; rvqa <- (sqrt(fqa^4+4fqa^2)-fqa^2)/2
    #   r2y: t of hours in m; r2d: t of hours in lm(treat_post ~ wave + hours + factor(pid)); bounds by
    #   Cinelli & Hazlett footnote 10; adj_se <- sqrt((1-r2yz)/(1-r2dz)) sqrt(dof/(dof-1)) se_cr1; t(G-1) limits
    assert s.df == 397 and s.df_inference == 39
    assert s.estimate == pytest.approx(0.5970309128936055, rel=1e-9)
    assert s.std_error_classical == pytest.approx(0.1676928600448584, rel=1e-9)
    assert s.std_error == pytest.approx(0.2745164234807662, rel=1e-9)
    assert s.partial_r2 == pytest.approx(0.0309402999547908, rel=1e-9)
    assert s.rv_q == pytest.approx(0.1634321789421288, rel=1e-9)
    assert s.rv_qa == pytest.approx(0.0122159948865881, rel=1e-8)
    assert s.benchmarks.r2dxj_x.iloc[0] == pytest.approx(0.0189363844126685, rel=1e-9)
    assert s.benchmarks.r2yxj_dx.iloc[0] == pytest.approx(0.0459213685679285, rel=1e-9)
    b = s.bounds
    np.testing.assert_allclose(b.r2dz_x, [0.0193018924683410, 0.0386037849366819], rtol=1e-9)
    np.testing.assert_allclose(b.r2yz_dx, [0.0500262727810007, 0.1001284441132296], rtol=1e-9)
    np.testing.assert_allclose(b.adjusted_estimate, [0.4921874936942748, 0.3851692880175390], rtol=1e-9)
    np.testing.assert_allclose(b.adjusted_se, [0.2705229540092446, 0.2659224789692844], rtol=1e-9)
    np.testing.assert_allclose(b.adjusted_lower, [-0.0549968290417464, -0.1527096956272990], rtol=1e-8)
    np.testing.assert_allclose(b.adjusted_upper, [1.0393718164302961, 0.9230482716623770], rtol=1e-9)


def test_did_result_supplies_its_se_and_is_checked(dgps):
    p = _panel(dgps)
    kw = dict(treated="ncs", unit="pid", cluster="team", covariates=["hours"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = did(p, "y", "arm", "wave", vcov="CR1", **kw)
    s = ovb_did(p, "y", "arm", "wave", result=res, benchmarks=["hours"], **kw)
    # the same numbers as the R reference above: the result's CR1 SE and its G - 1 df
    assert s.std_error == res.std_error == pytest.approx(0.2745164234807662, rel=1e-9)
    assert s.df_inference == 39 and s.bounds.adjusted_se.iloc[0] == pytest.approx(
        0.2705229540092446, rel=1e-9
    )
    assert "CR1" in s.vcov and s.n_clusters == 40
    with pytest.raises(EstimationError, match="rebuilt"):  # a different model than the result's
        ovb_did(
            p,
            "y",
            "arm",
            "wave",
            result=res,
            benchmarks=["wave:post"],
            treated="ncs",
            unit="pid",
            cluster="team",
        )
    with pytest.raises(DataError, match="absorbed") as err:  # constant within person: not a DiD benchmark
        ovb_did(p.assign(girl=p.pid % 2), "y", "arm", "wave", treated="ncs", unit="pid", covariates=["girl", "hours"],
                benchmarks=["girl"])  # fmt: skip
    assert "girl" in str(err.value)


def test_ancova_uses_the_reported_wild_bootstrap_se():
    rng = np.random.default_rng(11)
    team = np.repeat(np.arange(16), 20)
    pre = rng.normal(size=320) + 0.5 * rng.normal(size=16)[team]
    arm = np.where((np.arange(16) % 2 == 0)[team], "ncs", "control")
    post = 0.6 * pre + 0.3 * (arm == "ncs") + 0.4 * rng.normal(size=16)[team] + rng.normal(size=320)
    df = pd.DataFrame({"pre": pre, "post": post, "arm": arm, "team": team})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ancova(df, "post", "arm", treated="ncs", baseline="pre", cluster="team", n_boot=199, seed=1)
    s = ovb_ancova(
        df, "post", "arm", treated="ncs", baseline="pre", cluster="team", result=res, benchmarks=["pre"]
    )
    # 16 clusters: the ANCOVA reports the CR2 SE with Satterthwaite df (and a bootstrap interval); the sensitivity
    # analysis adjusts that SE (the CR2 reference numbers are pinned against clubSandwich in test_inference.py)
    fit = ols(
        post, np.column_stack([np.ones(320), (arm == "ncs").astype(float), pre]), names=["1", "t", "pre"]
    )
    cr2 = coef_test(fit, "t", vcov="CR2", cluster=team)
    assert s.std_error == pytest.approx(cr2["std_error"], rel=1e-10) and s.df_inference == pytest.approx(
        cr2["df"]
    )
    assert s.se_ratio > 1.5  # the team effects: the classical SE is far too small here


def test_planted_confounder_identity_on_a_fixed_data_set():
    # Cinelli & Hazlett (2020) eq. 11-12 are identities of least squares: with the omitted z's own sample partial
    # R2s, the adjusted estimate is the long model's coefficient and the classical adjusted SE its classical SE
    rng = np.random.default_rng(5)
    team = np.repeat(np.arange(30), 12)
    x, z = rng.normal(size=(2, 360))
    d = (0.5 * x + 0.5 * z + rng.normal(size=30)[team] > 0).astype(float)
    y = 0.3 * d + 0.5 * x + 0.5 * z + 0.5 * rng.normal(size=30)[team] + rng.normal(size=360)
    one = np.ones(360)
    short = ols(y, np.column_stack([one, d, x]), names=["1", "d", "x"])
    long = ols(y, np.column_stack([one, d, x, z]), names=["1", "d", "x", "z"])
    tz = coef_test(long, "z", vcov="classical")["statistic"]
    r2yz = tz**2 / (tz**2 + long.df_resid)
    r2dz = 1 - _rss(d, np.column_stack([one, x, z])) / _rss(d, np.column_stack([one, x]))
    s = ovb_sensitivity(short, "d", vcov="classical")
    adj = s.adjusted(r2dz, r2yz)
    assert float(adj["estimate"]) == pytest.approx(long.coef[1], rel=1e-10)
    assert float(adj["std_error"]) == pytest.approx(
        coef_test(long, "d", vcov="classical")["std_error"], rel=1e-10
    )
    # clustered: the adjusted SE is the classical adjusted SE times the short model's CR1 / classical ratio
    c = ovb_sensitivity(short, "d", vcov="CR1", cluster=team)
    ratio = coef_test(short, "d", vcov="CR1", cluster=team)["std_error"] / s.std_error
    assert float(c.adjusted(r2dz, r2yz)["std_error"]) == pytest.approx(
        float(adj["std_error"]) * ratio, rel=1e-12
    )
    assert c.df_inference == 29


def _bench():
    path = Path(__file__).parents[1] / "benchmarks" / "bench_ovb_clustered.py"
    spec = importlib.util.spec_from_file_location("bench_ovb_clustered", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cluster_robust_adjusted_interval_holds_its_rate(seed):
    # 300 replicates of 40 teams of 15 chosen by team on x and an omitted z as strong as x (kd = ky = 1);
    # benchmarks/bench_ovb_clustered.py with 2,000 replicates: adjusted for z's own strengths the interval covers
    # 0.963 with the cluster-robust SE and 0.720 with the classical one; at the 1x-x bound, when z is no stronger
    # than the bound, the lower limit is below the truth in 0.998 (classical 0.983). Margins: 4 binomial SEs.
    cov = _bench().coverage(300, 40, 15, "team", seed(20260115))
    se95 = math.sqrt(0.95 * 0.05 / 300)
    assert cov["oracle, CR1 ratio"][0] >= 0.95 - 4 * se95  # 0.888
    assert cov["oracle, classical"][0] <= 0.72 + 4 * math.sqrt(
        0.72 * 0.28 / 300
    )  # 0.824: sensemakr's SE fails
    rate, n = cov["lower at bound <= truth | within, CR1 ratio"]
    assert n > 50 and rate >= 0.975 - 4 * math.sqrt(0.975 * 0.025 / n)


def test_e_value_reproduces_vanderweele_and_ding():
    # VanderWeele & Ding (2017, Ann Intern Med 167:268), EValue vignette "unmeasured-confounding":
    #   evalues.OR(est = 3.9, lo = 1.8, hi = 8.7, rare = TRUE) -> 7.263034, 3.0
    #   evalues.RR(est = 0.80, lo = 0.71, hi = 0.91) -> 1.809017, upper 1.428571
    r = e_value(3.9, 1.8, 8.7, scale="rr")
    assert (round(r["e_value"], 6), round(r["e_value_ci"], 6)) == (7.263034, 3.0)
    r = e_value(0.80, 0.71, 0.91, scale="rr")
    assert (round(r["e_value"], 6), round(r["e_value_ci"], 6)) == (1.809017, 1.428571)
    assert e_value(3.9, 0.9, 8.7, scale="rr")["e_value_ci"] == 1.0  # the interval includes 1
    # standardised effects, RR = exp(0.91 d) (VanderWeele 2017; EValue's evalues.MD), in R 4.2:
    #   ev <- function(rr) { rr <- ifelse(rr < 1, 1/rr, rr); rr + sqrt(rr * (rr - 1)) }
    #   ev(exp(0.91 * 0.5)); ev(exp(0.91 * (0.5 - 1.96 * 0.25))); ev(exp(0.91 * -0.3)); ev(exp(0.91 * -0.1))
    #   -> 2.52914198186127 1.10518890704689 1.95611018598555 1.41829406407187
    r = e_value(0.5, 0.5 - 1.96 * 0.25, 0.5 + 1.96 * 0.25)
    assert r["e_value"] == pytest.approx(2.52914198186127, rel=1e-12)
    assert r["e_value_ci"] == pytest.approx(1.10518890704689, rel=1e-12)
    r = e_value(-0.3, -0.5, -0.1)
    assert r["e_value"] == pytest.approx(1.95611018598555, rel=1e-12)
    assert r["e_value_ci"] == pytest.approx(1.41829406407187, rel=1e-12)
    with pytest.raises(UsageError):
        e_value(0.2, scale="or")


def test_bad_input_is_one_plain_error(darfur_sens):
    darfur = pd.read_csv(DATA / "darfur.csv")
    small = "peacefactor ~ directlyharmed + age + female"  # no village dummies: quick
    with pytest.raises(DataError, match="benchmark 'height'"):
        ovb_formula(darfur, small, "directlyharmed", benchmarks=["height"], vcov="classical")
    with pytest.raises(EstimationError, match="smaller kd"):
        ovb_formula(darfur, small, "directlyharmed", benchmarks=["female"], kd=10_000, vcov="classical")
    with pytest.raises(UsageError, match="unknown option"):
        ovb_formula(darfur, small, "directlyharmed", benchmark=["female"])
    with pytest.raises(UsageError, match="right-hand side"):
        ovb_formula(darfur, small, "wouldvote")
    with pytest.raises(DataError, match="column 'wave'"):
        ovb_formula(darfur, "peacefactor ~ directlyharmed + wave", "directlyharmed")
    missing = darfur.assign(age=darfur.age.where(darfur.index % 50 != 0))
    s = ovb_formula(missing, small, "directlyharmed", vcov="classical")
    assert s.dropped == {"missing age": 26} and s.n_obs == len(darfur) - 26


def test_sentences_and_contour_plot(darfur_sens):
    from evaltoolkit.plots.sensitivity import confounding_contour_plot
    from evaltoolkit.plots.style import describe

    text = darfur_sens.sentences()
    # sensemakr's summary: 13.88% / 7.63%; the 1x female bound 0.0752 (95% CI 0.0323 to 0.1182)
    assert "more than 13.9% of the residual variance" in text[0] and "7.6%" in text[1]
    assert (
        text[2]
        == "A confounder 1x as strong as female would reduce the estimate from 0.097 to 0.075 (95% CI 0.032 to 0.118)."
    )
    fig = confounding_contour_plot(darfur_sens, sensitivity_of="t")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, pytest.approx(0.4741, abs=1e-3))  # the 3x bound's 0.374 + 0.1
    assert "1.96" in describe(fig)  # the dashed contour at the critical t (t with 782 df)
    with pytest.raises(UsageError):
        confounding_contour_plot(darfur_sens, sensitivity_of="p")
