"""Attrition sensitivity (issue 15): response weights, Lee (2009) bounds, multiple imputation, tipping point.

Reference numbers: R 4.2 (glm, lm, sandwich 3.x vcovCL), the R package leebounds (Semenova) on its JobCorps data,
mice 3.15 (pool.scalar; mice() on nhanes over 400 seeds). The R code is beside each number.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaltoolkit.errors import DataError, DesignError
from evaltoolkit.estimators.ancova import ancova
from evaltoolkit.estimators.sensitivity.missing_data import (
    ancova_analysis,
    did_analysis,
    imbens_manski_interval,
    impute_chained,
    lee_bounds,
    multiple_imputation,
    response_weights,
    rubin_pool,
    tipping_point,
    weighted_estimates,
    wide_panel,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- response weights
def _attrition_long() -> pd.DataFrame:
    wide = pd.read_csv(DATA / "attrition_sim.csv")
    long = pd.concat(
        [wide.assign(wave="baseline", y=wide.y_pre), wide.assign(wave="post", y=wide.y_post)],
        ignore_index=True,
    )
    return long[long.y.notna()].drop(columns=["y_pre", "y_post"])


# R 4.2, sandwich 3.x, on tests/data/attrition_sim.csv:
#   d <- read.csv("attrition_sim.csv"); d$resp <- as.numeric(!is.na(d$y_post)); d$treat <- as.numeric(d$arm == "ncs")
#   d$tm_x <- ave(d$x, d$team); d$tm_y <- ave(d$y_pre, d$team)
#   for (a in c("ncs", "control")) { f <- glm(resp ~ x + y_pre + tm_x + tm_y, binomial, data = d[d$arm == a, ])
#     print(cbind(coef(f), sqrt(diag(vcovCL(f, cluster = ~team, type = "HC1"))))); d$p[d$arm == a] <- fitted(f) }
R_RESPONSE = {
    "ncs": [(5.0625031738, 1.2820326571), (0.4486097193, 0.1498098213), (-0.7133061765, 0.1399254545),
            (-0.2953858712, 0.6060649482), (-0.2518646806, 0.4289766630)],
    "control": [(2.8733416446, 1.3005304606), (0.4540674271, 0.1660381103), (-0.3945108264, 0.2356343965),
                (-0.1973840203, 0.4782324594), (-0.1038467416, 0.4803777523)],
}  # fmt: skip
#   d$w <- ifelse(d$resp == 1, ave(d$resp, d$arm) / d$p, 0); cap <- quantile(d$w[d$resp == 1], 0.99)   # 1.35507391268
#   d$w <- pmin(d$w, cap); r <- d[d$resp == 1, ]                                                        # 4 capped
#   coef(lm(y_post ~ treat + y_pre, r, weights = w))[2]        0.375443175877  (unweighted 0.356241809336)
#   sqrt(vcovCL(<that lm>, cluster = ~team, type = "HC1")[2, 2]) 0.0874234814   (unweighted 0.08657546981)
#   coef(lm(I(y_post - y_pre) ~ treat, r, weights = w))[2]      0.355107405559  (unweighted 0.339554922122)


def test_response_model_is_rs_glm_per_arm_with_team_means_and_cr1_ses():
    rw = response_weights(_attrition_long(), "pid", "arm", "wave", outcome="y", baseline="baseline",
                          follow_up="post", covariates=["x"], cluster="team")  # fmt: skip
    for arm, ref in R_RESPONSE.items():
        got = rw.coefficients[rw.coefficients["arm"] == arm]
        assert got["term"].tolist() == ["const", "x", "y_pre", "team mean x", "team mean y_pre"]
        np.testing.assert_allclose(got["estimate"], [b for b, _ in ref], rtol=1e-7)
        # glm stops at a relative deviance change of 1e-8, we at 1e-10: the SEs agree to about 1e-6
        np.testing.assert_allclose(got["std_error"], [s for _, s in ref], rtol=1e-5)
    assert rw.trim_bound == pytest.approx(1.35507391268, rel=1e-9)
    assert rw.n_trimmed == 4
    people = rw.people
    assert (people.loc[~people.responded, "weight"] == 0).all()
    # stabilised (P(respond | arm) / p_hat): each arm's weights sum to about its number of responders
    ratio = people.groupby("arm")["weight"].sum() / people.groupby("arm")["responded"].sum()
    assert ratio.between(0.97, 1.01).all()


def test_weighted_did_and_ancova_are_the_weighted_regressions():
    long = _attrition_long()
    rw = response_weights(long, "pid", "arm", "wave", outcome="y", baseline="baseline", follow_up="post",
                          covariates=["x"], cluster="team")  # fmt: skip
    est = weighted_estimates(long, "y", "arm", "wave", treated="ncs", unit="pid", baseline="baseline",
                             follow_up="post", weights=rw, cluster="team")  # fmt: skip
    res = est.results
    assert res[("ancova", "response-weighted")].estimate == pytest.approx(0.375443175877, abs=1e-10)
    assert res[("ancova", "response-weighted")].std_error == pytest.approx(0.0874234814, abs=1e-9)
    assert res[("ancova", "unweighted")].estimate == pytest.approx(0.356241809336, abs=1e-10)
    assert res[("ancova", "unweighted")].std_error == pytest.approx(0.08657546981, abs=1e-9)
    # two waves with person fixed effects = the change score regressed on the arm (same weights)
    assert res[("did", "response-weighted")].estimate == pytest.approx(0.355107405559, abs=1e-10)
    assert res[("did", "unweighted")].estimate == pytest.approx(0.339554922122, abs=1e-10)
    t = est.table
    assert t["weighting"].tolist() == ["unweighted", "response-weighted"] * 2
    assert set(t["n_clusters"]) == {40}


def test_response_weights_count_rows_left_out_and_check_input():
    long = _attrition_long()
    long.loc[long.index[:3], "x"] = np.nan  # three baseline rows
    rw = response_weights(long, "pid", "arm", "wave", outcome="y", baseline="baseline", follow_up="post",
                          covariates=["x"], cluster="team")  # fmt: skip
    assert rw.dropped == {"missing x at baseline": 3}
    assert (rw.weights.iloc[:3] == 0).all() and len(rw.people) == 480 - 3
    assert "<10" in rw.summary()  # 4 capped: a small count is not printed
    with pytest.raises(DesignError, match="trim"):
        response_weights(
            long, "pid", "arm", "wave", outcome="y", baseline="baseline", follow_up="post", trim=0.2
        )
    with pytest.raises(DataError, match="column 'z'"):
        response_weights(long, "pid", "arm", "wave", outcome="y", baseline="baseline", follow_up="post",
                         covariates=["z"])  # fmt: skip


# --------------------------------------------------------------------------- Lee bounds
def _jobcorps() -> pd.DataFrame:
    return pd.read_csv(DATA / "jobcorps_week208.csv")


def test_lee_bounds_reproduce_the_leebounds_package_jobcorps_example():
    # The R package leebounds (Semenova; github vsemenova/leebounds, README example), its JobCorps data (Lee 2009):
    #   leedata <- data.frame(treat = JobCorps_baseline$TREATMNT.y, selection = JobCorps_employment$week_208,
    #                         outcome = JobCorps_wages$week_208)
    #   print(unlist(leebounds(leedata)[1:2]), digits = 12)   # -0.0158895485181  0.1000648936092
    #   p0 = 0.94229218475 (control / treated retention): 5.77% of the employed programme group is trimmed.
    # (Lee's own Table IV, -0.019 and 0.093, uses the study's design weights, which the package's data lack.)
    b = lee_bounds(_jobcorps(), "lwage", "treat", treated=1, observed="employed")
    assert b.lower == pytest.approx(-0.0158895485181, abs=1e-12)
    assert b.upper == pytest.approx(0.1000648936092, abs=1e-12)
    assert b.trim_share == pytest.approx(1 - 0.94229218475, abs=1e-10)
    assert b.trimmed_arm == 1
    assert b.retention[1] == pytest.approx(3395 / 5546) and b.retention[0] == pytest.approx(2076 / 3599)
    assert b.table["term"].tolist() == ["lee_lower", "lee_upper"]


def test_lee_analytic_se_agrees_with_the_r_bootstrap_and_the_imbens_manski_interval():
    # R: set.seed(20261201); bs <- t(replicate(4000, {i <- sample.int(nrow(leedata), replace = TRUE)
    #    unlist(leebounds(leedata[i, ])[1:2])})); apply(bs, 2, sd)      # 0.0170119  0.0146160
    # The bootstrap SD of a trimmed mean of tied wages is itself noisy (our B = 4000 runs give 0.0140-0.0146 for the
    # upper bound across seeds) and the analytic SE is first-order only: agreement within 8%.
    b = lee_bounds(_jobcorps(), "lwage", "treat", treated=1, observed="employed")
    assert b.se_lower == pytest.approx(0.0170119, rel=0.08)
    assert b.se_upper == pytest.approx(0.0146160, rel=0.08)
    # Imbens & Manski (2004): Phi(C + width / max se) - Phi(-C) = 0.95, then (lower - C se_l, upper + C se_u)
    c = (b.lower - b.ci_lower) / b.se_lower
    width = (b.upper - b.lower) / max(b.se_lower, b.se_upper)
    assert stats.norm.cdf(c + width) - stats.norm.cdf(-c) == pytest.approx(0.95, abs=1e-10)
    assert b.ci_upper == pytest.approx(b.upper + c * b.se_upper, abs=1e-12)
    assert 1.6448 < c < 1.96  # between the one-sided and two-sided critical values
    assert b.set_ci[0] == pytest.approx(b.lower - 1.959963985 * b.se_lower)
    lo, hi = imbens_manski_interval(0.0, 0.0, 1.0, 1.0)  # a point: the usual interval
    assert (lo, hi) == pytest.approx((-1.959963985, 1.959963985))


def test_lee_cluster_bootstrap_with_one_person_per_cluster_is_the_iid_bootstrap(seed):
    # against the same R bootstrap SDs (0.0170119, 0.0146160); 1000 draws: the MC error of a bootstrap SD here is
    # about 3%, so 15% is more than 4 of them for any seed
    d = _jobcorps().assign(team=np.arange(9145))
    b = lee_bounds(
        d, "lwage", "treat", treated=1, observed="employed", cluster="team", n_boot=1000, seed=seed(5)
    )
    assert b.se_lower == pytest.approx(0.0170119, rel=0.15)
    assert b.se_upper == pytest.approx(0.0146160, rel=0.15)
    assert b.n_clusters == 9145 and b.lower == pytest.approx(-0.0158895485181, abs=1e-12)


def test_lee_bounds_trim_the_comparison_arm_when_it_kept_more_people():
    # relabelling the arms swaps the roles: the bounds change sign and swap
    d = _jobcorps()
    b = lee_bounds(d, "lwage", "treat", treated=0, observed="employed")
    assert (b.lower, b.upper) == pytest.approx((-0.1000648936092, 0.0158895485181), abs=1e-12)
    assert b.trimmed_arm == 1
    d["employed"] = 0
    with pytest.raises(DataError, match="no one in the programme arm"):
        lee_bounds(d.assign(lwage=np.nan), "lwage", "treat", treated=1)


# --------------------------------------------------------------------------- Rubin's rules
def test_rubin_pool_matches_mice_pool_scalar_and_the_formulas():
    q = [1.20, 0.95, 1.41, 1.08, 1.30]
    u = [0.090, 0.085, 0.100, 0.088, 0.095]
    # mice 3.15: r <- pool.scalar(q, u, n = 40, k = 3)
    #   qbar 1.188  ubar 0.0916  b 0.03257  t 0.130684  df 15.885756925574  r 0.426681222707  fmi 0.373300725080
    p = rubin_pool(q, u, df_complete=37)
    assert (p.estimate, p.within, p.between, p.total) == pytest.approx(
        (1.188, 0.0916, 0.03257, 0.130684), abs=1e-12
    )
    assert p.df == pytest.approx(15.885756925574, abs=1e-9)
    assert p.riv == pytest.approx(0.426681222707, abs=1e-11)
    assert p.fmi == pytest.approx(0.373300725080, abs=1e-11)
    # by hand (van Buuren, FIMD 2nd ed., eqs 2.30-2.32): lambda = 1.2 * 0.03257 / 0.130684
    lam = 1.2 * 0.03257 / 0.130684
    nu_old, nu_obs = 4 / lam**2, 38 / 40 * 37 * (1 - lam)
    assert p.df == pytest.approx(nu_old * nu_obs / (nu_old + nu_obs), rel=1e-12)
    t_crit = stats.t.ppf(0.975, p.df)
    assert p.ci_lower == pytest.approx(1.188 - t_crit * math.sqrt(0.130684), abs=1e-12)
    # pool.scalar(q, u) (no n: large-sample df): df 44.720517452780, fmi 0.328448926891
    p_inf = rubin_pool(q, u)
    assert (p_inf.df, p_inf.fmi) == pytest.approx((44.720517452780, 0.328448926891), abs=1e-9)


# --------------------------------------------------------------------------- multiple imputation
def _lm_chl(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    X = np.column_stack([np.ones(len(df)), df.age, df.bmi])
    y = df.chl.to_numpy()
    b = np.linalg.solve(X.T @ X, X.T @ y)
    r = y - X @ b
    return b, np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * (r @ r) / (len(y) - 3))


def test_pmm_chained_equations_agree_with_mice_on_nhanes_within_monte_carlo_error(seed):
    # mice 3.15 (default pmm for bmi, hyp, chl; maxit = 5), over 400 seeds:
    #   res <- t(sapply(1:400, function(s) { imp <- mice(nhanes, m = 5, seed = s, printFlag = FALSE)
    #     p <- summary(pool(with(imp, lm(chl ~ age + bmi)))); c(p$estimate, p$std.error) }))
    #   colMeans(res):     -11.8220  32.6393  5.5471   70.7329  11.5257  2.1859
    #   apply(res, 2, sd):  18.2735   3.1104  0.5338    9.3532   1.8283  0.2644
    r_mean = np.array([-11.8220, 32.6393, 5.5471, 70.7329, 11.5257, 2.1859])
    r_sd = np.array([18.2735, 3.1104, 0.5338, 9.3532, 1.8283, 0.2644])
    nhanes = pd.read_csv(DATA / "nhanes.csv")
    runs = 200
    out = np.empty((runs, 6))
    for s in range(runs):
        fits = [_lm_chl(f) for f in impute_chained(nhanes, m=5, maxit=5, seed=seed(100) + s)]
        for j in range(3):
            p = rubin_pool([f[0][j] for f in fits], [f[1][j] ** 2 for f in fits], df_complete=22)
            out[s, j], out[s, 3 + j] = p.estimate, p.std_error
    mc_se = np.sqrt(r_sd**2 / 400 + out.std(axis=0, ddof=1) ** 2 / runs)
    assert np.all(np.abs(out.mean(axis=0) - r_mean) < 4 * mc_se), (out.mean(axis=0), r_mean, mc_se)
    assert np.all(np.abs(out.std(axis=0, ddof=1) / r_sd - 1) < 0.3)  # the spread across seeds too


def test_imputation_uses_team_means_and_keeps_binary_columns_binary(seed):
    # 30 teams, the score is almost all team (SD 2 between, 0.3 within); a 0/1 column depends on the score.
    rng = np.random.default_rng(seed(7))
    team = np.repeat(np.arange(30), 20)
    y = rng.normal(0, 2, 30)[team] + rng.normal(0, 0.3, 600)
    b = (rng.uniform(size=600) < 1 / (1 + np.exp(-y))).astype(float)
    df = pd.DataFrame({"team": team, "y": y, "b": b, "x": rng.normal(size=600)})
    df.loc[rng.uniform(size=600) < 0.3, "y"] = np.nan
    df.loc[rng.uniform(size=600) < 0.2, "b"] = np.nan
    done = impute_chained(df, ["y", "b", "x"], m=2, maxit=3, cluster="team", seed=seed(8))[0]
    miss = df.y.isna()
    team_mean = pd.Series(y).groupby(team).mean()
    # with the team means as predictors an imputed score sits near its team's mean (within-team SD 0.3; 1 is
    # over 3 SDs of the imputation noise); without a cluster term it could not (between-team SD 2)
    assert (done.y[miss] - team_mean.reindex(team[miss]).to_numpy()).abs().mean() < 1.0
    assert set(done.b.unique()) <= {0.0, 1.0} and done.b.notna().all()
    with pytest.raises(DataError, match="nothing to impute"):
        impute_chained(df.dropna(), ["y", "b"])


def test_multiple_imputation_pools_ancova_and_did(dgps, seed):
    long = dgps.did_panel(n_teams=40, size=10, seed=seed(11))
    wide = wide_panel(long, "pid", "wave", "y", baseline="baseline", follow_up="post", keep=["arm", "team"])
    wide.loc[np.random.default_rng(seed(12)).uniform(size=len(wide)) < 0.3, "y_post"] = np.nan
    res = multiple_imputation(wide, ancova_analysis("y_post", "arm", treated="ncs", baseline="y_pre",
                              cluster="team", vcov="CR1"), columns=["y_pre", "y_post"], m=5, maxit=5,
                              cluster="team", by="arm", seed=seed(13))  # fmt: skip
    per = res.details
    p = rubin_pool(per["estimates"], np.square(per["std_errors"]), df_complete=39)  # CR1: G - 1 = 39 df
    assert (res.estimate, res.std_error, res.details["df"]) == pytest.approx((p.estimate, p.std_error, p.df))
    assert res.n_clusters == 40 and res.details["n_imputed"] == {"y_post": int(wide.y_post.isna().sum())}
    # true effect 0.4; SE about 0.15 with 40 teams: a 5-SE margin is 0.75
    assert abs(res.estimate - 0.4) < 0.75
    did_res = did_analysis("y_pre", "y_post", "arm", treated="ncs", cluster="team", vcov="CR1")(wide.dropna())
    direct = ancova(
        wide.dropna().assign(ch=lambda d: d.y_post - d.y_pre), "ch", "arm", treated="ncs", vcov="HC1"
    )
    assert did_res.estimate == pytest.approx(
        direct.estimate, abs=1e-10
    )  # two-wave DiD = change-score difference


# --------------------------------------------------------------------------- tipping point
def test_tipping_point_is_linear_in_delta_and_sits_where_the_interval_reaches_zero(dgps, seed):
    long = dgps.did_panel(
        n_teams=60, size=10, effect=1.0, team_sd=0.2, seed=seed(21)
    )  # effect ~ 1.3, SE ~ 0.12
    wide = wide_panel(long, "pid", "wave", "y", baseline="baseline", follow_up="post", keep=["arm"])
    wide.loc[np.random.default_rng(seed(22)).uniform(size=len(wide)) < 0.35, "y_post"] = np.nan

    def diff_in_means(df):  # a linear estimator: shifting imputed treated scores by delta moves it exactly
        return ancova(df, "y_post", "arm", treated="ncs", vcov="classical")

    deltas = np.linspace(-6, 1, 15)  # delta* is near -3 (est 1.3, 35% of the programme arm imputed)
    tp = tipping_point(wide, diff_in_means, outcome="y_post", arm="arm", treated="ncs", deltas=deltas,
                       columns=["y_pre", "y_post"], m=5, maxit=5, by="arm", seed=seed(23))  # fmt: skip
    t = tp.table.set_index("delta")
    treated = wide.arm == "ncs"
    share = (wide.y_post.isna() & treated).sum() / treated.sum()
    # pooled estimate(delta) = estimate(0) + delta * (share of the programme arm imputed), on every grid point
    np.testing.assert_allclose(t["estimate"] - t.loc[0.0, "estimate"], t.index * share, atol=1e-10)
    d = tp.tipping_delta
    assert d is not None and d < 0
    # the grid brackets it: the lower bound is positive just above, negative just below
    above, below = t.index[t.index > d].min(), t.index[t.index < d].max()
    assert t.loc[above, "ci_lower"] > 0 > t.loc[below, "ci_lower"]
    assert bool(t.loc[0.0, "excludes_zero"])
    # and at delta* the pooled interval touches zero (re-pooled on the same imputations)
    from evaltoolkit.estimators.sensitivity.missing_data import _pool_analyses

    moved = []
    for f in impute_chained(wide, ["y_pre", "y_post"], m=5, maxit=5, by="arm", seed=seed(23)):
        g = f.copy()
        rows = wide.y_post.isna() & treated
        g.loc[rows, "y_post"] += d
        moved.append(g)
    assert _pool_analyses(moved, diff_in_means, 0.05)[0].ci_lower == pytest.approx(0.0, abs=1e-8)
    assert "at least" in tp.summary() and "less than completers" in tp.summary()
    with pytest.raises(DataError, match="nothing to shift"):
        tipping_point(wide.dropna(), diff_in_means, outcome="y_post", arm="arm", treated="ncs")
