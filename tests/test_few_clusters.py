"""Few clusters, told the truth (issue 14): the policy counts clusters on each side, uses the effective number of
clusters, and with very few programme clusters reports randomisation inference and what no test can show."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.cli.app import main
from evaltoolkit.inference.core import ols
from evaltoolkit.inference.policy import InferenceSpec, choose_inference, decide
from evaltoolkit.inference.randomisation import effective_clusters


def _panel(treated_sizes, control_sizes, seed=0, effect=0.0):
    """Two waves, the programme assigned by cluster (the benchmark's design: benchmarks/bench_few_clusters.py)."""
    sizes = list(treated_sizes) + list(control_sizes)
    cl = np.repeat(np.arange(len(sizes)), sizes)
    n = cl.size
    rng = np.random.default_rng(seed)
    treated = cl < len(treated_sizes)
    person = rng.normal(size=n)
    post = person + 0.2 + effect * treated + 0.4 * rng.normal(size=len(sizes))[cl] + rng.normal(size=n)
    return pd.DataFrame(
        {
            "pid": np.tile(np.arange(n), 2),
            "team": np.tile(cl, 2),
            "arm": np.tile(np.where(treated, "ncs", "control"), 2),
            "wave": np.repeat(["baseline", "post"], n),
            "y": np.concatenate([person + rng.normal(size=n), post]),
        }
    )


def _fit_did(data, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = et.did(
            data, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", n_boot=199, seed=1, **kw
        )
    return res, [str(w.message) for w in rec]


@pytest.mark.parametrize(
    "treated,control,expected",
    [
        ([85], [85, 85], "ri"),  # Best of Us: 1 arts school v 2 comparison schools
        ([12] * 7, [12] * 7, "wild"),  # 14 teams
        ([12] * 20, [12] * 20, "CR1"),  # 40 teams
        ([12] * 14, [1] * 182, "wild"),  # 14 programme teams + 182 singleton comparison applicants
        ([12] * 5, [1] * 182, "wild"),  # 5 programme teams + 182 singletons
        ([12] * 3, [12] * 30, "ri"),  # 3 programme teams of 33
    ],
)
def test_the_default_is_decided_by_the_clusters_on_each_side(treated, control, expected):
    # the rates behind these choices: docs/did_inference.md (benchmarks/bench_few_clusters.py)
    res, msgs = _fit_did(_panel(treated, control))
    assert res.details["vcov"] == expected
    g = len(treated) + len(control)
    if expected != "CR1":  # every departure from CR1 is said once, naming the counts
        said = [m for m in msgs if "with programme participants" in m]
        team = "team" if len(treated) == 1 else "teams"
        assert (
            len(said) == 1
            and f"{len(treated)} {team} with programme participants and {len(control)}" in said[0]
        )
    else:
        assert not [m for m in msgs if "programme participants" in m] and res.n_clusters == g


def test_many_clusters_but_few_treated_never_get_cr1_silently():
    # 5 programme teams and 182 singletons: 187 clusters, so a rule by the total would pick CR1 (11% false
    # positives in the simulation); asking for CR1 explicitly is allowed but warned about
    res, msgs = _fit_did(_panel([12] * 5, [1] * 182), vcov="CR1")
    assert res.details["vcov"] == "CR1" and res.n_clusters == 187
    assert any(
        "Only 5 teams with programme participants and 182" in m and "yet CR1 was requested" in m for m in msgs
    )
    assert choose_inference("auto", 187, warn=False)[0] == "CR1"  # the old rule by the total, for contrast
    assert choose_inference("auto", 187, n_treated=5, n_control=182, warn=False)[0] == "wild"


def test_effective_number_of_clusters_one_treated_of_g():
    # Carter, Schnepel & Steigerwald (2017), G* = G / (1 + Gamma), Gamma = CV^2 of gamma_g = (sum_g a_i)^2 with
    # a = X (X'X)^-1 e_treated. For one treated cluster of G equal clusters (regressors: constant, treated),
    # a sums to 1 over the treated cluster and to -1/(G-1) over each other, so by hand:
    for g in (3, 10, 50):
        gamma = np.array([1.0] + [1 / (g - 1) ** 2] * (g - 1))
        by_hand = g / (1 + np.mean((gamma - gamma.mean()) ** 2) / gamma.mean() ** 2)
        cl = np.repeat(np.arange(g), 4)
        d = (cl == 0).astype(float)
        fit = ols(
            np.sin(np.arange(cl.size)), np.column_stack([np.ones(cl.size), d]), names=["const", "treated"]
        )
        assert effective_clusters(fit, "treated", cl) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand < 1.3  # whatever G: one treated cluster carries the information of about one
    # balanced: 20 v 20 equal clusters give G* = G
    cl = np.repeat(np.arange(40), 3)
    fit = ols(np.cos(np.arange(120.0)), np.column_stack([np.ones(120), cl % 2]), names=["const", "treated"])
    assert effective_clusters(fit, "treated", cl) == pytest.approx(40.0, rel=1e-12)


def test_very_unequal_clusters_fall_back_from_cr1_by_the_effective_number():
    # 20 v 20 clusters, but one huge programme cluster: G* is far below 30, so auto leaves CR1 and says why
    sizes_t = [400] + [3] * 19
    data = _panel(sizes_t, [3] * 20)
    res, msgs = _fit_did(data)
    assert res.details["vcov"] == "wild"
    assert any("effective number of clusters" in m for m in msgs)
    spec = InferenceSpec(cluster=data.loc[data.wave == "post", "team"].to_numpy())
    assert (
        decide(spec).choice == "CR1"
    )  # without the fit the counts alone would have allowed CR1 (40 clusters)


def test_randomisation_interval_is_finite_with_enough_assignments():
    # 3 programme teams of 33: C(33, 3) = 5,456 assignments, more than are listed (MAX_ENUMERATED), so 1,999 are
    # drawn; only the observed one moves with the effect, so p can go down to 1/2000 for any draw and a large
    # effect is detected, with a finite interval around the estimate
    from evaltoolkit.inference.randomisation import MAX_ENUMERATED, RI_DRAWS

    assert math.comb(33, 3) > MAX_ENUMERATED
    res, _ = _fit_did(_panel([12] * 3, [12] * 30, seed=4, effect=2.0))
    ri = res.details["inference"]["treat:post"]["ri"]
    assert ri["n_assignments"] == RI_DRAWS + 1 and not ri["enumerated"] and ri["min_p"] < 0.001
    assert res.p_value < 0.05 and res.ci_lower < res.estimate < res.ci_upper
    assert np.isfinite([res.ci_lower, res.ci_upper]).all()


@pytest.fixture(scope="module")
def bou(tmp_path_factory):
    out = tmp_path_factory.mktemp("bou")
    assert main(["demo", "--design", "best_of_us_children", "--out", str(out), "--seed", "3"]) == 0
    return out


def test_best_of_us_demo_reports_randomisation_inference_and_what_three_schools_cannot_show(bou):
    est = pd.read_csv(bou / "estimates.csv")
    did_rows = est[est["analysis"] == "did_schools"]
    assert len(did_rows) and did_rows["method"].str.contains("randomisation inference by school").all()
    assert (did_rows["p_value"] >= 1 / 3 - 1e-12).all()  # 3 schools: no p below 1/3
    html = (bou / "report.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    summary = text[text.index("Did it work?") : text.index("Does it last?")]
    assert "cannot show an effect at the 5% level whatever its size" in summary
    assert "only 3 schools" in summary  # the main threat, named
    assert "How the conclusion depends on the inference method" in text and "Smallest possible p" in text
    assert "randomisation inference" in text.lower() and "1/3 = 0.33" in text


def test_best_of_us_demo_bayesian_section_samples_cleanly(bou):
    # issue 14: at default settings the three-school Bayesian fits (every prior of the sensitivity check) carry
    # no convergence warning - the marginal model integrates the school effects out (exact for the locked versions
    # and this seed; benchmarks/bench_bayes_few_clusters.py: 0 divergences in 800 fits)
    import json

    ctx = json.loads((bou / "results.json").read_text(encoding="utf-8"))
    diagnostics = dict(ctx["caution_groups"]).get("Model diagnostics", [])
    assert not [w for w in diagnostics if "Bayesian" in w], diagnostics
    assert any(
        "(Bayesian" in w for _, items in ctx["caution_groups"] for w in items
    )  # its other cautions remain


def test_effective_clusters_of_a_panel_with_person_effects_come_from_cluster_wave_shocks():
    # Person effects nested in clusters absorb a shock common to a cluster at every wave: each cluster's share of
    # the estimate sums to zero over its rows, so G* with Omega_g = 1 (Carter, Schnepel & Steigerwald 2017) is
    # undefined (NaN, not rounding noise). With cluster-by-wave shocks (within=wave) a two-wave panel's G* equals
    # the G* of the change-score regression on [1, treated] by hand: gamma_g ~ (n1_g / N1 - n0_g / N0)^2.
    from evaltoolkit.inference.randomisation import effective_clusters

    sizes = np.array([3, 5, 2, 6, 4, 4, 7, 1])  # people per team; teams 0-3 in the programme
    team = np.repeat(np.arange(8), sizes)
    treated = (team < 4).astype(float)
    n = team.size
    rng = np.random.default_rng(0)
    y = rng.normal(size=(n, 2))
    person, wave = np.repeat(np.arange(n), 2), np.tile([0, 1], n)
    X = np.column_stack([wave, treated[person] * wave]).astype(float)
    fit = ols(y.ravel(), X, names=["post", "treat:post"], absorb=[person])
    assert math.isnan(effective_clusters(fit, "treat:post", team[person]))
    n1, n0 = sizes[:4].sum(), sizes[4:].sum()
    gamma = np.r_[sizes[:4] / n1, sizes[4:] / n0] ** 2
    by_hand = 8 / (1 + gamma.var() / gamma.mean() ** 2)
    assert effective_clusters(fit, "treat:post", team[person], within=wave) == pytest.approx(
        by_hand, rel=1e-12
    )
    change = ols(y[:, 1] - y[:, 0], np.column_stack([np.ones(n), treated]), names=["const", "treated"])
    assert effective_clusters(change, "treated", team) == pytest.approx(by_hand, rel=1e-12)
