"""The batched two-wave DiD/ANCOVA with CR1 (evaltoolkit.estimators.batched) against one-at-a-time did()/ancova().

Reference: ``did(..., vcov="CR1")`` and ``ancova(..., vcov="CR1")``, themselves pinned to pyfixest/R in
tests/test_did.py and tests/test_ancova.py; here the batched results must equal them to rel 1e-10 on the same data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.estimators.batched import ancova_cr1, did_cr1, did_cr1_panel
from evaltoolkit.simulate.batched import clustered_did_arrays, replicate_arrays, study_arrays

REL = 1e-10
FIELDS = ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def _wide(sim, outcome: str, wave: str) -> pd.DataFrame:
    d = sim.data
    keys = ["pid", "arm", "team", outcome]
    base = d[d["wave"] == "baseline"][keys]
    post = d[d["wave"] == wave][["pid", outcome]]
    return base.merge(post, on="pid", suffixes=("_0", "_1")).dropna()


# heavy, differential attrition: people lost at follow-up drop out of the change score (did() drops them as
# "seen at one wave only"); the first two seeds keep the design's own retention
CASES = [
    (1, {}),
    (2, {}),
    (3, {"retention": {"post": {"ncs": 0.55, "control": 0.85}, "followup": {"ncs": 0.4, "control": 0.7}}}),
]


@pytest.mark.parametrize(("seed", "overrides"), CASES)
def test_batched_did_equals_did_cr1(seed, overrides):
    sims = [et.simulate_study("ncs_prepost_control", n=500, seed=seed + k, **overrides) for k in range(3)]
    arrs = [study_arrays(s, "attitudes", "post") for s in sims]
    stacked = {k: np.vstack([a[k] for a in arrs]) for k in arrs[0]}
    b = did_cr1(stacked["y0"], stacked["y1"], stacked["treated"], stacked["cluster"])
    for i, sim in enumerate(sims):
        r = _quiet(et.did, sim.data, outcome="attitudes", post="post", cluster="team", vcov="CR1",
                   **sim.design.panel_arguments())  # fmt: skip
        for f in FIELDS:
            assert getattr(b, f)[i] == pytest.approx(getattr(r, f), rel=REL), f
        assert b.df[i] == r.details["df"]
        assert b.n_obs[i] == r.table["n_obs"].iloc[0]
        assert b.n_clusters[i] == r.table["n_clusters"].iloc[0]
    if overrides:  # the attrition really bit: many baseline people have no follow-up
        assert np.mean(np.isfinite(stacked["y0"]) & ~np.isfinite(stacked["y1"])) > 0.2


@pytest.mark.parametrize(("seed", "overrides"), CASES[::2])
def test_batched_ancova_equals_ancova_cr1(seed, overrides):
    sims = [et.simulate_study("ncs_prepost_control", n=500, seed=seed + k, **overrides) for k in range(2)]
    arrs = [study_arrays(s, "attitudes", "post") for s in sims]
    stacked = {k: np.vstack([a[k] for a in arrs]) for k in arrs[0]}
    b = ancova_cr1(stacked["y0"], stacked["y1"], stacked["treated"], stacked["cluster"])
    for i, sim in enumerate(sims):
        w = _wide(sim, "attitudes", "post")
        r = _quiet(et.ancova, w, "attitudes_1", "arm", treated="ncs", covariates=["attitudes_0"], cluster="team",
                   vcov="CR1")  # fmt: skip
        for f in FIELDS:
            assert getattr(b, f)[i] == pytest.approx(getattr(r, f), rel=REL), f
        assert b.n_obs[i] == len(w)


@pytest.mark.parametrize(("seed", "overrides"), CASES[1:])
def test_batched_panel_did_equals_did_on_every_wave(seed, overrides):
    # three waves, unbalanced (attrition and item nonresponse): did(post=[post, followup]) as analyse runs it
    sims = [et.simulate_study("ncs_prepost_control", n=400, seed=seed + k, **overrides) for k in range(2)]
    ys, arrs = [], []
    for sim in sims:
        a, b = study_arrays(sim, "attitudes", "post"), study_arrays(sim, "attitudes", "followup")
        ys.append(np.stack([a["y0"], a["y1"], b["y1"]], axis=1))
        arrs.append(a)
    b = did_cr1_panel(np.stack(ys), np.vstack([a["treated"] for a in arrs]), np.vstack([a["cluster"] for a in arrs]),
                      chunk=1)  # fmt: skip
    for i, sim in enumerate(sims):
        r = _quiet(et.did, sim.data, outcome="attitudes", post=["post", "followup"], cluster="team", vcov="CR1",
                   **sim.design.panel_arguments())  # fmt: skip
        for f in FIELDS:
            assert getattr(b, f)[i] == pytest.approx(getattr(r, f), rel=REL), f
        assert b.df[i] == r.details["df"] and b.n_obs[i] == r.n_obs
    two = did_cr1_panel(np.stack(ys)[:, :, :2], arrs[0]["treated"], arrs[0]["cluster"])  # two waves: did_cr1
    ref = did_cr1(ys[0][:, 0], ys[0][:, 1], arrs[0]["treated"], arrs[0]["cluster"])
    assert two.estimate[0] == pytest.approx(ref.estimate[0], rel=REL)
    assert two.std_error[0] == pytest.approx(ref.std_error[0], rel=REL)


def test_chunks_do_not_change_results():
    a = clustered_did_arrays(7, 12, 6, icc=0.2, effect=0.3, attrition=0.2, seed=4)
    whole = did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"])
    parts = did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"], chunk=3)
    for f in (*FIELDS, "n_clusters", "n_people"):
        np.testing.assert_allclose(getattr(parts, f), getattr(whole, f), rtol=REL)


@pytest.mark.parametrize(
    ("outcome", "wave", "cluster", "overrides"),
    [("attitudes", "post", None, {}), ("negative_contact", "followup", "site", CASES[2][1]),
     ("positive_contact", "followup", "team", {"item_missing": 0.3})],
)  # fmt: skip
def test_replicate_arrays_are_simulate_study_per_seed(outcome, wave, cluster, overrides):
    # the array path draws the same numbers as simulate_study (it only skips building the data frame and the
    # items), so every array is identical, not just close
    stacked = replicate_arrays(
        "ncs_prepost_control", 200, [5, 6], outcome, wave, cluster=cluster, **overrides
    )
    for i, s in enumerate((5, 6)):
        sim = et.simulate_study("ncs_prepost_control", n=200, seed=s, **overrides)
        one = study_arrays(sim, outcome, wave, cluster)
        for key, value in one.items():
            np.testing.assert_array_equal(stacked[key][i], value, err_msg=key)
        assert stacked["n_sites"][i] == sim.data["site"].nunique()
    assert stacked["y0"].shape == (2, 200)


def test_replicate_arrays_refuse_what_is_not_simulated():
    from evaltoolkit.errors import DesignError

    with pytest.raises(DesignError, match="not a cluster level"):
        replicate_arrays("ncs_prepost_control", 50, [1], "attitudes", "post", cluster="female")
    with pytest.raises(DesignError, match="not simulated"):
        replicate_arrays("ncs_prepost_control", 50, [1], "wellbeing", "post")


def test_cluster_sums_by_hand():
    # two teams of two, one treated: change scores 1, 3 (treated) and 0, 0 (control): estimate 2;
    # residuals -1, 1, 0, 0; cluster scores (sum e, sum T e) = (0, 0) and (0, 0) -> SE 0.
    # A third team breaks the tie: control changes 1, -1 -> residuals 1, -1 again sum to 0 within the team.
    b = did_cr1(np.zeros(6), np.array([1.0, 3, 0, 0, 1, -1]), np.array([1.0, 1, 0, 0, 0, 0]),
                np.array([0, 0, 1, 1, 2, 2]))  # fmt: skip
    assert b.estimate[0] == pytest.approx(2.0)
    assert b.std_error[0] == pytest.approx(0.0, abs=1e-12)
    assert b.n_treated_clusters[0] == 1 and b.n_control_clusters[0] == 2 and b.one_arm_clusters[0]


def test_shared_and_per_replicate_labels_agree():
    # the same people in a shuffled order, labels shared (one vector) or repeated per replicate: same results
    a = clustered_did_arrays(5, 15, 7, icc=0.2, effect=0.3, attrition=0.25, seed=8)
    order = np.random.default_rng(0).permutation(a["y0"].shape[1])
    shuffled = {k: v[..., order] for k, v in a.items()}
    ref = did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"])
    shared = did_cr1(shuffled["y0"], shuffled["y1"], shuffled["treated"], shuffled["cluster"])
    each = did_cr1(shuffled["y0"], shuffled["y1"], np.tile(shuffled["treated"], (5, 1)),
                   np.tile(shuffled["cluster"], (5, 1)))  # fmt: skip
    for f in (*FIELDS, "n_clusters", "n_treated_clusters"):
        np.testing.assert_allclose(getattr(shared, f), getattr(ref, f), rtol=REL)
        np.testing.assert_allclose(getattr(each, f), getattr(ref, f), rtol=REL)
    for f in FIELDS:
        np.testing.assert_allclose(
            getattr(ancova_cr1(shuffled["y0"], shuffled["y1"], shuffled["treated"], shuffled["cluster"]), f),
            getattr(ancova_cr1(a["y0"], a["y1"], a["treated"], a["cluster"]), f), rtol=REL)  # fmt: skip


def test_effective_clusters_are_the_policys():
    # G* (Carter, Schnepel & Steigerwald 2017) as did()/ancova() hand it to the inference policy, for two and three
    # waves and for ANCOVA, on data with heavy differential attrition (so teams differ in size and G* < G)
    import evaltoolkit.inference.policy as policy

    seen: list[float] = []
    original = policy.choose_inference

    def spy(*args, **kwargs):
        seen.append(kwargs.get("effective"))
        return original(*args, **kwargs)

    sim = et.simulate_study("ncs_prepost_control", n=500, seed=3, **CASES[2][1])
    a, f = study_arrays(sim, "attitudes", "post"), study_arrays(sim, "attitudes", "followup")
    y = np.stack([a["y0"], a["y1"], f["y1"]], axis=1)
    args = sim.design.panel_arguments()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(policy, "choose_inference", spy)
        _quiet(
            et.did,
            sim.data,
            outcome="attitudes",
            post=["post", "followup"],
            cluster="team",
            vcov="CR1",
            **args,
        )
        _quiet(et.did, sim.data, outcome="attitudes", post="post", cluster="team", vcov="CR1", **args)
        w = _wide(sim, "attitudes", "post")
        _quiet(et.ancova, w, "attitudes_1", "arm", treated="ncs", covariates=["attitudes_0"], cluster="team",
               vcov="CR1")  # fmt: skip
    three, two, anc = seen
    assert did_cr1_panel(y, a["treated"], a["cluster"]).effective_clusters[0] == pytest.approx(
        three, rel=1e-10
    )
    assert did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"]).effective_clusters[0] == pytest.approx(
        two, rel=1e-10
    )
    assert ancova_cr1(a["y0"], a["y1"], a["treated"], a["cluster"]).effective_clusters[0] == pytest.approx(
        anc, rel=1e-10
    )
    assert 20 < two < sim.data["team"].nunique()  # unequal teams: fewer effective than actual clusters
