"""Power and MDES by formula (against statsmodels, R and Cohen's table) and by simulation."""

from __future__ import annotations

import pytest
from references import REFERENCES

import evaltoolkit as et
from evaltoolkit.errors import DesignError
from evaltoolkit.plan.power import simulate_power


def test_individual_posttest_matches_cohen_and_r():
    # Cohen (1988) Table 2.4.1: d = 0.5, alpha .05 two-sided, power .80 -> 64 per group.
    # R: power.t.test(delta=0.5, sd=1, power=0.8, sig.level=0.05)$n  -> 63.76576
    # statsmodels TTestIndPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8, ratio=1) -> 63.76561
    r = et.power(effect=0.5, power=0.8)
    assert r.n / 2 == REFERENCES["power_t_test_n"].approx()
    # power of 64 per group: statsmodels TTestIndPower().power(0.5, nobs1=64, alpha=0.05) = 0.8014596
    assert et.power(effect=0.5, n=128).power == REFERENCES["statsmodels_power_64"].approx()
    # unequal allocation 90:210, MDES at 80%: statsmodels solve_power(nobs1=90, ratio=210/90) = 0.354109
    assert et.power(n=300, power=0.8, treated_share=0.3).effect == pytest.approx(0.354109, abs=1e-5)


def test_cluster_assignment_matches_powerup_formula():
    # Bloom (2006); Dong & Maynard (2013) PowerUp! CRA2_2: J = 20 clusters of 25, ICC .15, P = .5, no covariates.
    # R: J=20; n=25; rho=.15; P=.5
    #    se=sqrt(rho/(P*(1-P)*J) + (1-rho)/(P*(1-P)*J*n))                     -> 0.191833
    #    f=function(d){tc=qt(.975,J-2); 1-pt(tc,J-2,ncp=d/se)+pt(-tc,J-2,ncp=d/se)}
    #    uniroot(function(d) f(d)-.8, c(0.01,3), tol=1e-10)$root                -> 0.568339
    #    (Bloom's multiplier approximation (qt(.975,18)+qt(.8,18))*se gives 0.568396)
    r = et.power(n_clusters=20, cluster_size=25, icc=0.15, assignment="cluster", power=0.8)
    assert r.se == pytest.approx(0.191833, abs=1e-6)
    assert r.df == 18
    assert r.effect == REFERENCES["powerup_cra2_mdes"].approx()


def test_baseline_adjustment_and_design_effect():
    base = et.power(n=1000, power=0.8).effect
    # ANCOVA with r = .6 shrinks the SE by sqrt(1 - .36) = 0.8; DiD by sqrt(2 (1 - .6)) = 0.894
    ancova = et.power(n=1000, power=0.8, analysis="ancova", pre_post_corr=0.6).effect
    did = et.power(n=1000, power=0.8, analysis="did", pre_post_corr=0.6).effect
    assert ancova / base == pytest.approx(0.8, rel=2e-3)
    assert did / base == pytest.approx(0.8944, rel=2e-3)
    # teams of 14 with ICC .05: design effect 1.65 inflates the MDES by sqrt(1.65)
    teams = et.power(n=1000, power=0.8, cluster_size=14, icc=0.05)
    assert teams.design_effect == pytest.approx(1.65)
    assert teams.effect / base == pytest.approx(1.65**0.5, rel=2e-3)
    # attrition of 40% is the same as analysing 600 people
    assert et.power(n=1000, power=0.8, attrition=0.4).effect == pytest.approx(
        et.power(n=600, power=0.8).effect
    )


def test_solving_for_clusters_round_trips():
    r = et.power(effect=0.25, icc=0.1, cluster_size=25, assignment="cluster", power=0.8)
    back = et.power(n_clusters=r.n_clusters, cluster_size=25, icc=0.1, assignment="cluster", effect=0.25)
    assert back.power == pytest.approx(0.8, abs=1e-6)
    assert "minimum detectable" not in r.summary()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"effect": 0.3}, "give exactly two"),
        ({"effect": 0.3, "n": 100, "power": 0.8}, "give exactly two"),
        ({"n": 100, "power": 1.2}, "power must be"),
        ({"n": 100, "power": 0.8, "icc": -0.1}, "icc must be"),
        ({"n": 100, "power": 0.8, "attrition": 1.0}, "attrition must be"),
        ({"n": -5, "power": 0.8}, "n must be"),
        ({"effect": 0.0, "power": 0.8}, "non-zero"),
        (
            {
                "effect": 0.1,
                "power": 0.99,
                "icc": 0.5,
                "cluster_size": 50,
                "n_clusters": None,
                "assignment": "x",
            },
            "assignment",
        ),
    ],
)
def test_bad_arguments(kwargs, words):
    with pytest.raises(DesignError, match=words):
        et.power(**kwargs)


def test_simulated_power_agrees_with_truth_and_formula(seed):
    # A clean design (no selection, MCAR attrition): the DiD is unbiased for the simulator's truth and
    # its intervals cover; power rises with n. Long-run values (120 simulations each): power 0.59 at
    # n = 150 and 1.0 at n = 1500 (true effect ~0.30 points, SE ~0.04), coverage ~0.95.
    d = et.load_design("ncs_prepost_control")
    clean = {k: {**v.model_dump(), "selection": 0.0} for k, v in d.simulation.constructs.items()}
    d = d.with_simulation(constructs=clean, attrition_on_baseline=0.0)
    n_sims = 40
    small = simulate_power(d, n=150, outcome="positive_contact", n_sims=n_sims, seed=seed(1))
    large = simulate_power(d, n=1500, outcome="positive_contact", n_sims=n_sims, seed=seed(1))
    assert large.power > small.power  # 0.59 +- 0.08 against ~1
    assert large.power >= 0.85
    # the mean of 40 estimates lies within 4 Monte Carlo SEs (~0.027) of the truth
    assert abs(large.bias) < 4 * large.details["estimates"].std() / n_sims**0.5
    # coverage at least nominal less 4 binomial SEs (0.95 - 4 x 0.034 = 0.81)
    assert large.coverage >= 0.95 - 4 * (0.95 * 0.05 / n_sims) ** 0.5
