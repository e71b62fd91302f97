"""Tests for evaltoolkit.estimators.meta: metafor reference numbers, Paluck et al. (2019), eight schools (Bayes).

Reference numbers were computed with R 4.2.2, metafor 3.8-1 (metadat 1.2-0). The R code is next to each
pinned number. The tests never call R.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from references import REFERENCES

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.bayes.priors import Prior, load_paluck2019
from evaltoolkit.estimators.meta import MetaResult, egger_test, meta_analysis
from evaltoolkit.plots.forest import forest_plot
from evaltoolkit.plots.meta import funnel_plot
from evaltoolkit.results import ESTIMATE_COLUMNS

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    """metafor's dat.bcg with log risk ratios computed as escalc(measure="RR") does."""
    df = pd.read_csv(DATA / "dat_bcg.csv")
    df["yi"] = np.log((df.tpos / (df.tpos + df.tneg)) / (df.cpos / (df.cpos + df.cneg)))
    df["vi"] = 1 / df.tpos - 1 / (df.tpos + df.tneg) + 1 / df.cpos - 1 / (df.cpos + df.cneg)
    df["label"] = df["author"] + " " + df["year"].astype(str)
    return df


def test_bcg_effect_sizes_match_escalc(bcg):
    # R: dat <- escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)
    #    print(dat[, c("yi", "vi")], digits = 10)   (trials 1, 8, 13)
    assert bcg["yi"].iloc[[0, 7, 12]].tolist() == pytest.approx(
        [-0.8893113339, 0.0119523335, -0.0173139482], abs=1e-9
    )
    assert bcg["vi"].iloc[[0, 7, 12]].tolist() == pytest.approx(
        [0.3255847650, 0.0039615793, 0.0714046597], abs=1e-9
    )


def test_bcg_reml_matches_metafor(bcg):
    # R: r <- rma(yi, vi, data = dat, method = "REML")
    #    b -0.714532, se 0.179782, tau2 0.313243 (se.tau2 0.166426), I2 92.221386, H2 12.855761,
    #    QE 152.233008 (df 12), ci -1.066898 to -0.362167, pval 0.000071 (z -3.974448)
    #    predict(r): pi -1.866692 to 0.4376276; weights(r)[1] 5.059483 (%)
    #    (Viechtbauer 2010, J Stat Softw 36(3), section 4: -0.7145, SE 0.1798, tau^2 0.3132, I^2 92.22%)
    r = meta_analysis("yi", variances="vi", data=bcg, labels="label", method="REML")
    assert isinstance(r, MetaResult)
    assert r.estimate == REFERENCES["metafor_bcg_reml"].approx()
    assert r.std_error == pytest.approx(0.179782, abs=1e-6)
    assert r.tau2 == REFERENCES["metafor_bcg_tau2"].approx()
    assert r.details["se_tau2"] == pytest.approx(0.166426, abs=1e-5)
    assert r.i2 == pytest.approx(92.221386, abs=1e-4)
    assert r.h2 == pytest.approx(12.855761, abs=1e-4)
    assert r.q == pytest.approx(152.233008, abs=1e-5)
    assert r.q_df == 12
    assert r.q_p < 1e-20
    assert (r.ci_lower, r.ci_upper) == pytest.approx((-1.066898, -0.362167), abs=1e-6)
    assert r.p_value == pytest.approx(0.000071, abs=5e-7)
    assert (r.pi_lower, r.pi_upper) == pytest.approx((-1.866692, 0.4376276), abs=1e-6)
    assert r.weights.iloc[0] == pytest.approx(5.059483, abs=1e-5)
    assert r.weights.sum() == pytest.approx(100)
    assert r.n_obs == 13 and r.k == 13


def test_bcg_dl_fe_ml_match_metafor(bcg):
    # R: rma(yi, vi, data=dat, method="DL"): b -0.714117, se 0.178742, tau2 0.308760, I2 92.117347,
    #    H2 12.686084; predict: -1.858154 to 0.4299193
    r = meta_analysis(bcg["yi"], np.sqrt(bcg["vi"]), method="DL")
    assert (r.estimate, r.std_error, r.tau2) == pytest.approx((-0.714117, 0.178742, 0.308760), abs=1e-6)
    assert (r.i2, r.h2) == pytest.approx((92.117347, 12.686084), abs=1e-5)
    assert (r.pi_lower, r.pi_upper) == pytest.approx((-1.858154, 0.4299193), abs=1e-6)
    # R: rma(yi, vi, data=dat, method="FE"): b -0.430285, se 0.040499, ci -0.509661 to -0.350909,
    #    z -10.624653, I2 92.117347, H2 12.686084; weights(r)[8] 41.40139
    r = meta_analysis(bcg["yi"], np.sqrt(bcg["vi"]), method="FE")
    assert (r.estimate, r.std_error) == pytest.approx((-0.430285, 0.040499), abs=1e-6)
    assert (r.ci_lower, r.ci_upper) == pytest.approx((-0.509661, -0.350909), abs=1e-6)
    assert r.details["statistic"] == pytest.approx(-10.624653, abs=1e-5)
    assert (
        r.tau2 == 0
        and r.i2 == pytest.approx(92.117347, abs=1e-5)
        and r.h2 == pytest.approx(12.686084, abs=1e-5)
    )
    assert math.isnan(r.pi_lower)
    assert r.weights.iloc[7] == pytest.approx(41.40139, abs=1e-5)
    # R: rma(yi, vi, data=dat, method="ML"): b -0.711199, se 0.171897, tau2 0.280028, I2 91.378285
    r = meta_analysis(bcg["yi"], np.sqrt(bcg["vi"]), method="ML")
    assert (r.estimate, r.std_error, r.tau2) == pytest.approx((-0.711199, 0.171897, 0.280028), abs=1e-6)
    assert r.i2 == pytest.approx(91.378285, abs=1e-4)


def test_bcg_knapp_hartung_matches_metafor(bcg):
    # R: r <- rma(yi, vi, data=dat, method="REML", test="knha"): b -0.714532, se 0.180792,
    #    ci -1.108444 to -0.320621, pval 0.00192002 (t -3.9522, df 12); predict(r): -1.996017 to 0.5669523
    r = meta_analysis(bcg["yi"], variances=bcg["vi"], method="REML", knapp_hartung=True)
    assert r.std_error == pytest.approx(0.180792, abs=1e-6)
    assert (r.ci_lower, r.ci_upper) == pytest.approx((-1.108444, -0.320621), abs=1e-6)
    assert r.p_value == pytest.approx(0.00192002, abs=1e-8)
    assert r.details["df"] == 12 and r.details["statistic"] == pytest.approx(-3.9522, abs=1e-4)
    assert (r.pi_lower, r.pi_upper) == pytest.approx((-1.996017, 0.5669523), abs=1e-6)


def test_egger_matches_metafor_regtest(bcg):
    # R: regtest(rma(yi, vi, data=dat, method="FE"), model="lm")  -> t = -1.4012820, df = 11,
    #    p = 0.1887070, limit estimate b = -0.1909286;
    #    summary(lm(I(yi/sqrt(vi)) ~ I(1/sqrt(vi)), data=dat)): intercept -2.1120421 (SE 1.5072213)
    e = egger_test(bcg["yi"], np.sqrt(bcg["vi"]))
    assert (e.intercept, e.std_error, e.t) == pytest.approx((-2.1120421, 1.5072213, -1.4012820), abs=1e-6)
    assert e.df == 11 and e.p_value == pytest.approx(0.1887070, abs=1e-6)
    assert e.slope == pytest.approx(-0.1909286, abs=1e-6)
    # Paluck et al. table: regtest(rma(yi=d, sei=se_d, data=pal, method="FE"), model="lm")
    #    -> t = 1.75137328, df = 25, p = 0.09214333 (intercept 1.87584935, SE 1.0710734)
    pal = load_paluck2019()
    e = egger_test(meta_analysis("d", "se_d", data=pal, method="DL"))
    assert (e.intercept, e.std_error, e.t) == pytest.approx((1.87584935, 1.0710734, 1.75137328), abs=1e-6)
    assert e.p_value == pytest.approx(0.09214333, abs=1e-7)


def test_paluck_table_reproduces_paper():
    # Paluck, Green & Green (2019, Behav. Public Policy 3(2)): overall random-effects estimate ~ 0.39.
    # R: pal <- read.csv("paluck2019_contact.csv"); rma(yi=d, sei=se_d, data=pal, method="DL")
    #    b 0.392522, se 0.082452, tau2 0.137296, I2 84.986556, QE 173.178122 (df 26), ci 0.230920 to 0.554124,
    #    predict: -0.3514754 to 1.136519
    #    method="FE": b 0.284037 (se 0.029408); method="REML": b 0.401938 (se 0.095088), tau2 0.195891
    pal = load_paluck2019()
    r = meta_analysis("d", "se_d", data=pal, labels="name_short", method="DL")
    assert r.estimate == REFERENCES["paluck_overall"].approx()
    assert r.std_error == REFERENCES["paluck_overall_se"].approx()
    assert r.tau2 == REFERENCES["paluck_tau2"].approx()
    assert round(r.estimate, 3) == 0.393 and round(r.std_error, 3) == 0.082 and round(r.tau2, 3) == 0.137
    assert (r.i2, r.q) == pytest.approx((84.986556, 173.178122), abs=1e-5)
    assert (r.ci_lower, r.ci_upper) == pytest.approx((0.230920, 0.554124), abs=1e-6)
    assert (r.pi_lower, r.pi_upper) == pytest.approx((-0.3514754, 1.136519), abs=1e-6)
    fe = meta_analysis("d", "se_d", data=pal, method="FE")
    assert (fe.estimate, fe.std_error) == pytest.approx((0.284037, 0.029408), abs=1e-6)
    reml = meta_analysis("d", "se_d", data=pal, method="REML")
    # metafor stops Fisher scoring at |change| < 1e-5 (rma threshold), we iterate to 1e-10: tau2 agrees to 2e-6
    assert (reml.estimate, reml.std_error) == pytest.approx((0.401938, 0.095088), abs=1e-5)
    assert reml.tau2 == pytest.approx(0.195891, abs=1e-5)


def test_table_contract_and_summary(bcg):
    r = meta_analysis("yi", variances="vi", data=bcg, labels="label", method="REML", outcome="log RR")
    t = r.table
    assert list(t.columns) == [*ESTIMATE_COLUMNS, "weight"]
    assert len(t) == 14 and t.loc[0, "term"] == "pooled (random effects)"
    assert t.loc[0, "estimate"] == pytest.approx(-0.714532, abs=1e-6)
    assert t.loc[1, "term"] == "study: Aronson 1948" and t.loc[1:, "weight"].sum() == pytest.approx(100)
    # a study row: Aronson yi -0.8893, SE sqrt(0.3255848) = 0.570600, Wald CI -2.007667 to 0.229045
    assert (t.loc[1, "ci_lower"], t.loc[1, "ci_upper"]) == pytest.approx((-2.007667, 0.229045), abs=1e-6)
    assert "I^2 = 92.2%" in r.summary()
    h = r.heterogeneity
    assert h.loc[0, "tau"] == pytest.approx(math.sqrt(0.313243), abs=1e-6)


def test_missing_studies_are_counted_and_warned():
    # the three complete studies give the FE estimate sum(y/v)/sum(1/v)
    y = [0.2, np.nan, 0.5, 0.1]
    se = [0.1, 0.2, 0.2, 0.15]
    with pytest.warns(EvalToolkitWarning, match="1 study with a missing"):
        r = meta_analysis(y, se, labels=["a", "b", "c", "d"], method="FE")
    w = np.array([100, 25, 1 / 0.0225])
    assert r.estimate == pytest.approx(np.sum(w * [0.2, 0.5, 0.1]) / w.sum())
    assert r.details["n_dropped"] == 1 and r.details["dropped_labels"] == ["b"] and r.k == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"effects": [0.1, 0.2], "std_errors": [0.1, -0.2]}, "must be positive; study 'study 2'"),
        ({"effects": [0.1, 0.2], "std_errors": [0.1, 0.0]}, "must be positive"),
        ({"effects": [0.1, 0.2, 0.3], "std_errors": [0.1, 0.2]}, "3 values but std_errors has 2"),
        ({"effects": [0.1], "std_errors": [0.1]}, "at least 2 studies"),
        ({"effects": [0.1, np.nan], "std_errors": [0.1, 0.1]}, "at least 2 studies .* after dropping 1"),
        ({"effects": [0.1, 0.2], "std_errors": [0.1, 0.2], "labels": ["a"]}, "labels has 1"),
        (
            {"effects": [0.1, 0.2], "std_errors": [0.1, 0.2], "labels": ["a", "a"]},
            "'a' appears more than once",
        ),
        ({"effects": ["x", 0.2], "std_errors": [0.1, 0.2]}, "effects must be numbers"),
        ({"effects": [0.1, 0.2]}, "standard errors"),
        ({"effects": [0.1, 0.2], "variances": [0.1, -0.2]}, "variances must be non-negative"),
    ],
)
def test_bad_arguments_give_clear_errors(kwargs, match):
    with pytest.raises(DataError, match=match):
        meta_analysis(**kwargs)


def test_bad_columns_and_methods():
    df = pd.DataFrame({"d": [0.1, 0.2], "se": [0.1, 0.1]})
    with pytest.raises(DataError, match="column 'sd'"):
        meta_analysis("d", "sd", data=df)
    with pytest.raises(DataError, match="data="):
        meta_analysis(df, "se")
    with pytest.raises(DesignError, match="unknown meta-analysis method 'HS'"):
        meta_analysis([0.1, 0.2], [0.1, 0.1], method="HS")
    with pytest.raises(DesignError, match="tau_prior must be a half-normal"):
        meta_analysis([0.1, 0.2], [0.1, 0.1], method="bayes", tau_prior=Prior("x", "normal", 0, 1))
    with pytest.raises(DataError, match="at least 3 studies"):
        egger_test([0.1, 0.2], [0.1, 0.1])


def test_homogeneous_studies_give_tau2_zero_and_re_equals_fe():
    # identical effects: Q = 0, so DL and REML truncate tau^2 at 0 and equal the fixed-effect estimate
    # (analytically sum(w y)/sum(w) = 0.3, SE = 1/sqrt(sum(1/se^2)))
    se = np.array([0.1, 0.2, 0.3])
    for m in ("DL", "REML", "ML"):
        r = meta_analysis([0.3, 0.3, 0.3], se, method=m)
        assert r.tau2 == 0 and r.estimate == pytest.approx(0.3)
        assert r.std_error == pytest.approx(1 / math.sqrt(np.sum(1 / se**2)))
        assert r.i2 == 0


def test_figures(bcg):
    r = meta_analysis("yi", variances="vi", data=bcg, labels="label")
    fig = forest_plot(r, xlabel="log risk ratio")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Aronson 1948" and "Pooled (RE)" in labels and "95% prediction" in labels
    fig2 = funnel_plot(r)
    # Egger's t for dat.bcg is -1.40 (metafor regtest model="lm", see above)
    assert "t(11) = -1.40" in fig2.axes[0].get_title()


# --------------------------------------------------------------------------------------------------
# Bayesian: eight schools (Rubin 1981; Gelman et al. BDA3 section 5.5)
# --------------------------------------------------------------------------------------------------
EIGHT_Y = [28, 8, -3, 7, -1, 1, 18, 12]
EIGHT_SE = [15, 10, 16, 11, 9, 11, 10, 18]
# Prior, as in the PyMC/ArviZ example data `non_centered_eight`: mu ~ Normal(0, 5), tau ~ HalfCauchy(5),
# theta = mu + tau * z, z ~ Normal(0, 1).
# Exact posterior means by 1-D quadrature over tau (mu integrated analytically; scipy.integrate.quad):
#   E[mu | y] = 4.3968, E[tau | y] = 3.5979
#   p(tau | y) ∝ HalfCauchy(tau; 5) * |P|^-1/2 * prod(v_j)^-1/2 * exp(-(sum y_j^2/v_j - P m^2)/2) / 5,
#   v_j = se_j^2 + tau^2, P = sum 1/v_j + 1/25, m = sum(y_j/v_j) / P.
EXACT_MU, EXACT_TAU = 4.3968, 3.5979
# Published: arviz.load_arviz_data("non_centered_eight") (PyMC 4.2.2, 4 x 500 draws), az.summary:
#   mu mean 4.366 (mcse 0.081), tau mean 3.717 (mcse 0.079)
PUB_MU, PUB_MU_MCSE, PUB_TAU, PUB_TAU_MCSE = 4.366, 0.081, 3.717, 0.079


@pytest.fixture(scope="module")
def eight_schools(seed):
    return meta_analysis(
        EIGHT_Y,
        EIGHT_SE,
        labels=list("ABCDEFGH"),
        method="bayes",
        mu_prior=Prior("eight_mu", "normal", 0.0, 5.0),
        tau_prior=Prior("eight_tau", "halfcauchy", 0.0, 5.0),
        draws=1000,
        tune=1000,
        chains=2,
        seed=seed(20261123),
    )


@pytest.mark.slow
def test_eight_schools_posterior_means(eight_schools):
    r = eight_schools
    mcse_mu, mcse_tau = r.details["mcse_mu"], r.details["mcse_tau"]
    # within 4 Monte Carlo standard errors of the exact posterior mean
    assert abs(r.estimate - EXACT_MU) < 4 * mcse_mu
    assert abs(r.details["tau_mean"] - EXACT_TAU) < 4 * mcse_tau
    # and of the published ArviZ/PyMC run (both estimates carry MC error)
    assert abs(r.estimate - PUB_MU) < 4 * math.hypot(mcse_mu, PUB_MU_MCSE)
    assert abs(r.details["tau_mean"] - PUB_TAU) < 4 * math.hypot(mcse_tau, PUB_TAU_MCSE)
    assert "mu ~ Normal(0, 5), tau ~ HalfCauchy(5)" in r.method


@pytest.mark.slow
def test_eight_schools_result_shape_and_diagnostics(eight_schools):
    r = eight_schools
    idata = r.idata
    assert set(idata.posterior.data_vars) >= {"mu", "tau", "z", "theta"}
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 1000
    d = r.details["diagnostics"]
    assert {"r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "messages"} <= set(d)
    # diagnostics reported as found: any problem must also be in the result's warnings
    assert all(m in r.warnings for m in d["messages"])
    assert math.isnan(r.p_value) and 0.5 < r.details["prob_positive"] < 1
    assert r.ci_lower < r.estimate < r.ci_upper
    # posterior school effects are shrunk towards mu: school A (y = 28) posterior mean far below 28
    theta_a = r.studies.set_index("label").loc["A", "theta_mean"]
    assert r.estimate < theta_a < 28
    assert r.table.loc[0, "term"] == "pooled (Bayesian random effects)"


def test_knapp_hartung_coverage_small_simulation(seed):
    # Random-effects data, k = 8, mu = 0.3, tau = 0.25, se ~ U(0.1, 0.4). Knapp-Hartung intervals are
    # known to hold close to nominal coverage here (IntHout, Ioannidis & Borm 2014, BMC Med Res Methodol
    # 14:25), while Wald-z REML intervals under-cover with few studies. Over 6,000 replications KH covers
    # 93.8% and z 90.5% (z misses where KH covers in 3.6%, the reverse in 0.3%). With 1,000 replications
    # KH's coverage is within 4 binomial SEs (3 points) of 93.8%, and the paired difference is ~5 SEs.
    rng = np.random.default_rng(seed(7))
    k, mu, tau, reps = 8, 0.3, 0.25, 1000
    cover_kh = cover_z = n_failed = 0
    for _ in range(reps):
        se = rng.uniform(0.1, 0.4, k)
        y = mu + tau * rng.standard_normal(k) + se * rng.standard_normal(k)
        try:
            kh = meta_analysis(y, se, method="REML", knapp_hartung=True)
        except EstimationError:
            # about 1 data set in 300 (tau^2 near 0): REML Fisher scoring does not converge in 200 steps
            # and meta_analysis says so; such data sets are left out of both coverages
            n_failed += 1
            continue
        z = meta_analysis(y, se, method="REML")
        cover_kh += kh.ci_lower <= mu <= kh.ci_upper
        cover_z += z.ci_lower <= mu <= z.ci_upper
    n = reps - n_failed
    assert n_failed <= 0.02 * reps
    assert abs(cover_kh / n - 0.938) <= 4 * math.sqrt(0.938 * 0.062 / n)
    assert cover_z / n < cover_kh / n
