"""et.diagnose: diagnosands of a design's primary DiD against published numbers and their Monte Carlo SEs.

Margin tests take seeds through the ``seed`` fixture and assert within 4 Monte Carlo SEs (CONTRIBUTING.md).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import evaltoolkit as et
from evaltoolkit.errors import DesignError
from evaltoolkit.estimators.batched import did_cr1
from evaltoolkit.plan.diagnose import diagnosands
from evaltoolkit.plan.power import simulate_power
from evaltoolkit.simulate.batched import clustered_did_arrays


def _frame(b) -> pd.DataFrame:
    return pd.DataFrame({k: getattr(b, k) for k in ("estimate", "ci_lower", "ci_upper", "p_value")})


def test_simulated_power_matches_powerup(seed):
    # Dong & Maynard (2013) PowerUp! CRA2_2 (Bloom 2006), the formula et.power matches (tests/test_power.py):
    # J = 140 teams of 14, ICC .10, P = .5, no covariates, MDES at 80% power. R:
    #   J=140; n=14; rho=.10; P=.5
    #   se=sqrt(rho/(P*(1-P)*J) + (1-rho)/(P*(1-P)*J*n))                  -> 0.0685118789
    #   f=function(d){tc=qt(.975,J-2); 1-pt(tc,J-2,ncp=d/se)+pt(-tc,J-2,ncp=d/se)}
    #   uniroot(function(d) f(d)-.8, c(0.01,3), tol=1e-12)$root            -> 0.1932903031
    r = et.power(n_clusters=140, cluster_size=14, icc=0.1, assignment="cluster", power=0.8)
    assert r.effect == pytest.approx(0.1932903031, abs=1e-8)
    # the same design simulated 4,000 times (whole teams in one arm, post-test comparison), CR1 by team:
    # power within 4 MC SEs (0.025) of 0.80 and 95% interval coverage within 4 binomial SEs of 0.95
    a = clustered_did_arrays(4000, 140, 14, icc=0.1, effect=r.effect, baseline=False, seed=seed(11))
    tab = diagnosands(_frame(did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"])), r.effect).set_index(
        "diagnosand"
    )
    p, p_se = tab.loc["power"]
    assert p_se == pytest.approx(math.sqrt(0.8 * 0.2 / 4000), rel=0.1)
    assert abs(p - 0.8) < 4 * math.sqrt(0.8 * 0.2 / 4000)
    assert abs(tab.loc["coverage", "estimate"] - 0.95) < 4 * math.sqrt(0.95 * 0.05 / 4000)
    # bias within 4 MC SEs of 0 (the estimator is unbiased here)
    assert abs(tab.loc["bias", "estimate"]) < 4 * tab.loc["bias", "mc_se"]


def test_declaredesign_readme_diagnosis(seed):
    # DeclareDesign's documented diagnosis (package README, CRAN 1.0.x; Blair, Cooper, Coppock & Humphreys 2019):
    #   declare_model(N = 100, U = rnorm(N), potential_outcomes(Y ~ 0.2 * Z + U)) +
    #   declare_inquiry(ATE = mean(Y_Z_1 - Y_Z_0)) + declare_assignment(Z = complete_ra(N)) +
    #   declare_measurement(Y = reveal_outcomes(Y ~ Z)) +
    #   declare_estimator(Y ~ Z, .method = difference_in_means, inquiry = "ATE")
    #   diagnose_design(design)   # 500 sims, bootstrap SEs (100 replicates) in parentheses:
    #   Mean Estimand 0.20 (0.00), Mean Estimate 0.20 (0.01), Bias 0.00 (0.01), SD Estimate 0.20 (0.01),
    #   RMSE 0.20 (0.01), Power 0.17 (0.02), Coverage 0.96 (0.01)
    # The same design here: 100 people, 50 in each arm, Y = 0.2 Z + N(0, 1), a post-only difference in means (each
    # person their own cluster: CR1 = HC1 x G/(G-1), within 1% of the Neyman SE estimatr uses). Ours and theirs
    # agree to Monte Carlo error: within 4 combined MC SEs plus their rounding to two decimals.
    published = {"mean_estimate": (0.20, 0.01), "bias": (0.00, 0.01), "rmse": (0.20, 0.01),
                 "power": (0.17, 0.02), "coverage": (0.96, 0.01)}  # fmt: skip
    sims = 4000
    a = clustered_did_arrays(sims, 100, 1, icc=0.0, effect=0.2, baseline=False, seed=seed(21))
    tab = diagnosands(_frame(did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"])), 0.2).set_index(
        "diagnosand"
    )
    for name, (value, their_se) in published.items():
        ours, our_se = tab.loc[name]
        assert abs(ours - value) < 4 * math.hypot(their_se, our_se) + 0.005, name
    # and to the exact values (a t test with noncentrality 0.2 / sqrt(4/100) = 1 on 98 df): power 0.1677
    tc = stats.t.ppf(0.975, 98)
    exact = stats.nct.sf(tc, 98, 1.0) + stats.nct.cdf(-tc, 98, 1.0)
    assert exact == pytest.approx(0.1677, abs=5e-4)
    assert abs(tab.loc["power", "estimate"] - exact) < 4 * math.sqrt(exact * (1 - exact) / sims)
    assert abs(tab.loc["coverage", "estimate"] - 0.95) < 4 * math.sqrt(0.95 * 0.05 / sims) + 0.003  # CR1 vs t


def test_padlocks_follow_the_eef_table():
    # Education Endowment Foundation (2019), "Classifying the security of EEF findings": design, MDES and attrition
    # each allow a number of padlocks; the initial rating is the lowest. Rows of the table at each boundary:
    from evaltoolkit.plan.summary import padlock_rating

    assert [padlock_rating("cluster_rct", m, 0.0) for m in (0.20, 0.21, 0.29, 0.30, 0.49, 0.50, 0.59, 0.60)] == [
        5, 4, 4, 3, 2, 1, 1, 0,
    ]  # fmt: skip
    assert [padlock_rating("cluster_rct", 0.1, a) for a in (0.10, 0.11, 0.20, 0.21, 0.40, 0.41, 0.50, 0.51)] == [
        5, 4, 4, 3, 2, 1, 1, 0,
    ]  # fmt: skip
    assert padlock_rating("panel", 0.1, 0.0) == 4 and padlock_rating("post_only", 0.1, 0.0) == 2
    assert padlock_rating("cluster_rct", float("nan"), 0.0) == 0


def test_diagnose_rates_padlocks_from_mdes_and_attrition():
    # NCS simulation block: 22% of the comparison group and 12% of participants lost by the post wave (about 29%
    # of all with the baseline-dependent dropout), so attrition (21-30%: 3 padlocks) limits the rating below the
    # design's 4; the MDES (1,500 people) is well under 0.2
    dx = et.diagnose("ncs_prepost_control", n=1500, sims=40, seed=3)
    mdes, attrition = dx.value("mdes")[0], dx.value("attrition")[0]
    assert mdes < 0.2 and 0.2 < attrition <= 0.3
    assert dx.padlocks == 3 and dx.value("share_padlocks_3")[0] > 0.5
    assert "3 of 5 padlocks" in dx.summary()


def test_type_s_and_m_match_gelman_carlin(seed):
    # Gelman & Carlin (2014, Perspectives on Psychological Science 9:641), the beauty and sex ratio example:
    # true effect D = 2, SE s = 8.1 -> power 0.06 and Type S error rate 0.24 as printed there.
    # Closed forms (their retrodesign()): z = qnorm(.975), l = D/s; power = 1 - Phi(z - l) + Phi(-z - l);
    # type S = Phi(-z - l) / power. retrodesign() estimates the exaggeration ratio by simulation; here it is
    # exact, E|est| among significant estimates from the truncated normal moments, over D: 9.5.
    D, s, R = 2.0, 8.1, 400_000
    z, lam = stats.norm.ppf(0.975), D / s
    hi, lo = stats.norm.sf(z - lam), stats.norm.cdf(-z - lam)
    power = hi + lo
    type_s = lo / power
    a, b = z - lam, -z - lam
    e_abs = (D * stats.norm.sf(a) + s * stats.norm.pdf(a)) + (-D * stats.norm.cdf(b) + s * stats.norm.pdf(b))
    type_m = e_abs / power / D
    assert (round(power, 2), round(type_s, 2), round(type_m, 1)) == (0.06, 0.24, 9.5)
    est = np.random.default_rng(seed(12)).normal(D, s, size=R)
    f = pd.DataFrame({"estimate": est, "ci_lower": est - z * s, "ci_upper": est + z * s,
                      "p_value": 2 * stats.norm.sf(np.abs(est) / s)})  # fmt: skip
    tab = diagnosands(f, D).set_index("diagnosand")
    for name, exact in (("power", power), ("type_s", type_s), ("type_m", type_m), ("coverage", 0.95)):
        got, mc_se = tab.loc[name]
        assert abs(got - exact) < 4 * mc_se, name


def test_mc_se_formulas_by_hand():
    # Morris, White & Crowther (2019, Stat Med 38:2074), Table 6: MC SEs of bias sqrt(var(est)/R), coverage and
    # power sqrt(p(1-p)/R); RMSE by the delta method from the MSE's SE sqrt(var((est-truth)^2)/R).
    f = pd.DataFrame({"estimate": [1.0, 2.0, 3.0, 0.5, -1.0], "ci_lower": [0.1, 1.0, 2.0, -0.5, -2.0],
                      "ci_upper": [1.9, 3.0, 4.0, 1.5, -0.1], "p_value": [0.01, 0.001, 0.0001, 0.3, 0.04]})  # fmt: skip
    tab = diagnosands(f, truth=1.5).set_index("diagnosand")
    est = f["estimate"].to_numpy()
    err = est - 1.5
    assert tuple(tab.loc["bias"]) == pytest.approx((err.mean(), est.std(ddof=1) / math.sqrt(5)))
    mse_se = (err**2).std(ddof=1) / math.sqrt(5)
    rmse = math.sqrt((err**2).mean())
    assert tuple(tab.loc["rmse"]) == pytest.approx((rmse, mse_se / (2 * rmse)))
    assert tuple(tab.loc["power"]) == pytest.approx((0.8, math.sqrt(0.8 * 0.2 / 5)))
    assert tuple(tab.loc["coverage"]) == pytest.approx((0.6, math.sqrt(0.6 * 0.4 / 5)))  # 1.0, 2.0, 0.5 cover
    widths = (f["ci_upper"] - f["ci_lower"]).to_numpy()
    assert tuple(tab.loc["mean_ci_width"]) == pytest.approx(
        (widths.mean(), widths.std(ddof=1) / math.sqrt(5))
    )
    # significant: 1, 2, 3, -1 -> one wrong sign of four; |est|/truth = 2/3, 4/3, 2, 2/3
    assert tuple(tab.loc["type_s"]) == pytest.approx((0.25, math.sqrt(0.25 * 0.75 / 4)))
    ratios = np.array([1, 2, 3, 1]) / 1.5
    assert tuple(tab.loc["type_m"]) == pytest.approx((ratios.mean(), ratios.std(ddof=1) / 2))


def test_diagnose_equals_simulate_power_on_the_same_replicates():
    # both run the design's primary DiD on simulate_study(seed + i); diagnose in one batch, simulate_power with one
    # did() each, so power, bias, coverage and RMSE agree to rounding
    # (1,500 people: about 108 teams, G* about 60, so the policy gives CR1 in every replicate)
    dx = et.diagnose("ncs_prepost_control", n=1500, sims=12, seed=5, post="post")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = simulate_power("ncs_prepost_control", n=1500, n_sims=12, seed=5)
    assert dx.method_counts == {"CR1": 12}
    assert dx.value("power")[0] == sp.power
    assert dx.true_effect == sp.true_effect
    for name, ref in (("bias", sp.bias), ("coverage", sp.coverage), ("rmse", sp.rmse)):
        assert dx.value(name)[0] == pytest.approx(ref, rel=1e-10), name
    np.testing.assert_allclose(dx.estimates["estimate"], sp.details["estimates"], rtol=1e-10)
    np.testing.assert_allclose(dx.estimates["p_value"], sp.details["p_values"], rtol=1e-10)


def test_diagnose_runs_the_primary_analysis_as_analyse_does():
    # the NCS design's primary DiD fits baseline, post and followup at once (post: [post, followup]); diagnose
    # batches that same model, so each replicate equals did() on the simulated study with the analysis's arguments
    dx = et.diagnose("ncs_prepost_control", n=1500, sims=4, seed=8)
    d = et.load_design("ncs_prepost_control")
    a = next(x for x in d.analyses if x.primary)
    assert a.post == ["post", "followup"] and "post, followup" in dx.notes[0]
    for i in range(4):
        sim = et.simulate_study("ncs_prepost_control", n=1500, seed=8 + i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = et.did(sim.data, outcome=a.outcomes[0], post=a.post, cluster=a.cluster, **d.panel_arguments())
        assert r.details["vcov"] == "CR1"
        for f in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value"):
            assert dx.estimates[f].iloc[i] == pytest.approx(getattr(r, f), rel=1e-10), f


def test_result_table_dict_and_cautions():
    dx = et.diagnose("ncs_prepost_control", n=500, sims=6, seed=1)
    assert list(dx.table.columns) == ["diagnosand", "estimate", "mc_se"]
    d = dx.as_dict()
    assert d["power"] == dx.value("power")[0] and "power_mc_se" in d and d["sims"] == 6
    # the NCS design loses more comparison people than participants by the post wave (retention 0.78 vs 0.88
    # in its simulation block), so every replicate raises the differential-attrition caution
    assert dx.value("share_differential_attrition") == (1.0, 0.0)
    assert dx.evidence_rating.startswith("Moderate") and dx.value("share_rated_moderate")[0] == 1.0
    assert dx.true_effect == pytest.approx(
        et.simulate_study("ncs_prepost_control", n=500, seed=1).true_effect("attitudes", "post")
    )


def test_few_clusters_fall_back_to_did_per_replicate():
    # cluster_rct: 20 sites (10 per arm) -> the policy sends every replicate to the wild bootstrap
    dx = et.diagnose("cluster_rct", sims=2, seed=3, n=300)
    assert dx.method_counts == {"wild": 2}
    assert dx.value("share_few_clusters")[0] == 1.0
    assert any("one at a time" in n for n in dx.notes)
    sim = et.simulate_study("cluster_rct", n=300, seed=4)
    d = sim.design
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = et.did(sim.data, outcome=dx.outcome, post="post", cluster=d.analyses[[a.id for a in d.analyses].index(
            dx.analysis)].cluster, seed=4, **d.panel_arguments())  # fmt: skip
    assert dx.estimates["p_value"].iloc[1] == pytest.approx(r.p_value, rel=1e-10)
    assert dx.estimates["estimate"].iloc[1] == pytest.approx(r.estimate, rel=1e-10)


def test_effect_override_sets_the_truth():
    dx = et.diagnose("ncs_prepost_control", n=300, sims=3, effect=0.0)
    # with no direct effect on attitudes the truth is only what runs through positive contact (b x a)
    assert 0 < dx.true_effect < et.diagnose("ncs_prepost_control", n=300, sims=3).true_effect


def test_bad_arguments_are_one_plain_line():
    with pytest.raises(DesignError, match="sims must be"):
        et.diagnose("ncs_prepost_control", sims=1)
    with pytest.raises(DesignError, match="effect must be"):
        et.diagnose("ncs_prepost_control", sims=3, effect=float("nan"))
    with pytest.raises(DesignError, match="alpha"):
        et.diagnose("ncs_prepost_control", sims=3, alpha=1.5)
    for bad in ("nope", "baseline"):
        with pytest.raises(DesignError, match=f"post: {bad} is not a later wave.*post, followup"):
            et.diagnose("ncs_prepost_control", sims=3, post=bad)


def test_cli_prints_power_bias_coverage_and_rating(capsys):
    from evaltoolkit.cli.app import main

    assert (
        main(["diagnose", "--design", "ncs_prepost_control", "--n", "1500", "--sims", "12", "--seed", "5"])
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    # the same 12 replicates as test_diagnose_equals_simulate_power_on_the_same_replicates
    power = et.diagnose("ncs_prepost_control", n=1500, sims=12, seed=5).value("power")[0]
    assert f"{power:.1%}" in out and "Bias" in out and "coverage" in out
    assert "Expected evidence rating: Moderate" in out
    assert main(["diagnose", "--design", "ncs_prepost_control", "--sims", "1"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_grid_words_become_simulation_settings():
    # redesign grids vary clusters, cluster size, attrition and ICC; diagnose reads them into the simulation block
    import numpy as np

    from evaltoolkit.design.schema import load_design
    from evaltoolkit.plan.diagnose import _grid_overrides

    d = load_design("ncs_prepost_control")
    o = _grid_overrides(d, {"attrition": 0.4, "icc": 0.0588, "clusters": 12})
    first = d.post_waves[0]
    assert np.mean(list(o["retention"][first].values())) == pytest.approx(0.6)
    old = d.simulation.retention[first]
    ratio = {a: o["retention"][first][a] / old[a] for a in old}
    assert max(ratio.values()) == pytest.approx(
        min(ratio.values())
    )  # differential attrition kept in proportion
    assert o["site_sd"] ** 2 / (1 + o["site_sd"] ** 2) == pytest.approx(0.0588) and o["sites"] == 12
    assert d.with_simulation(**o).simulation.sites == 12
    with pytest.raises(Exception, match="attrition must be a share"):
        _grid_overrides(d, {"attrition": 1.2})
