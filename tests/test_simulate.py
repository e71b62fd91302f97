"""The study simulator: structure, determinism, realistic measurement, and known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.errors import DesignError
from evaltoolkit.simulate.study import _expected_score


@pytest.fixture(scope="module")
def sim(seed):
    return et.simulate_study("ncs_prepost_control", n=2400, seed=seed(11))


def test_deterministic_given_seed():
    a = et.simulate_study("ncs_prepost_control", n=300, seed=4).data
    b = et.simulate_study("ncs_prepost_control", n=300, seed=4).data
    c = et.simulate_study("ncs_prepost_control", n=300, seed=5).data
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_structure(sim):
    d = sim.data
    base = d[d["wave"] == "baseline"]
    assert len(base) == 2400 and base["pid"].is_unique
    assert set(d["arm"]) == {"ncs", "control"}
    assert not d.duplicated(["pid", "wave"]).any()
    # participants in teams of about 12-15 within sites (teams never span sites or arms)
    teams = base.groupby("team").agg(n=("pid", "size"), sites=("site", "nunique"), arms=("arm", "nunique"))
    assert (teams["sites"] == 1).all() and (teams["arms"] == 1).all()
    assert teams["n"].median() >= 12 and teams["n"].median() <= 15
    # Likert answers within 1..5, a little item non-response
    items = ["att_comfort_dating", "att_warmth", "pc_friendly", "con_care"]
    vals = d[items].stack()
    assert vals.between(1, 5).all()
    assert 0 < d[items].isna().mean().mean() < 0.03


def test_selection_and_differential_attrition(seed):
    # 12,000 people: over seeds the baseline gap is 0.153 (SD 0.021) and each retention rate has a
    # binomial SE of ~0.006, so every check below holds with a margin of at least 4.5 SDs
    d = et.simulate_study("ncs_prepost_control", n=12_000, seed=seed(11)).data
    base = d[d["wave"] == "baseline"].groupby("arm")["attitudes"].mean()
    assert base["ncs"] > base["control"] + 0.05  # participants start warmer
    n = d.groupby(["wave", "arm"])["pid"].nunique().unstack()
    retention = n.loc[["post", "followup"]] / n.loc["baseline"]
    assert (retention.loc["followup"] < retention.loc["post"]).all()  # more loss at follow-up
    assert (retention["control"] < retention["ncs"]).all()  # more among controls
    # configured: post 0.78 / 0.62, follow-up 0.55 / 0.40 (before the MAR tilt, which moves them < 0.01)
    assert retention.loc["post", "ncs"] == pytest.approx(0.78, abs=0.04)
    assert retention.loc["followup", "control"] == pytest.approx(0.40, abs=0.05)


def test_scale_reliability_is_realistic(sim):
    # Cronbach's alpha from the covariance matrix of keyed items; the generator's loadings of 0.72-0.8
    # on 3-4 ordinal items should give alpha of roughly 0.65-0.85 (Likert coarsening lowers it a little).
    base = sim.data[sim.data["wave"] == "baseline"]
    items = base[["att_comfort_dating", "att_warmth", "att_help_seeking", "att_avoid"]].astype(float).copy()
    items["att_avoid"] = 6 - items["att_avoid"]  # reverse-keyed item
    items = items.dropna()
    k = items.shape[1]
    cov = items.cov().to_numpy()
    alpha = k / (k - 1) * (1 - np.trace(cov) / cov.sum())
    assert 0.65 < alpha < 0.9
    # the reverse-worded item correlates negatively with the others as answered
    raw = base[["att_warmth", "att_avoid"]].astype(float).corr().iloc[0, 1]
    assert raw < -0.2


def test_truth_matches_scoring_formula(sim):
    # Truth in latent units equals the configured effects: positive contact 0.40 x mean moderation
    # multiplier (1 + 0.8 (E[seg] - 0.5) = 1, seg ~ Beta(2,2)); attitudes 0.10 + b 0.35 x 0.40 = 0.24;
    # follow-up keeps 60%. Monte Carlo error of the 100,000-person reference population is ~0.002.
    assert sim.true_effect("positive_contact", "post", scale="latent") == pytest.approx(0.40, abs=0.01)
    assert sim.true_effect("attitudes", "post", scale="latent") == pytest.approx(0.24, abs=0.01)
    assert sim.true_effect("attitudes", "followup", scale="latent") == pytest.approx(0.6 * 0.24, abs=0.01)
    assert sim.true_effect("negative_contact", "post") == 0.0
    # the expected score is increasing in the latent level and bounded by the scale
    spec = sim.design.simulation.constructs["attitudes"]
    grid = np.linspace(-4, 4, 9)
    e = _expected_score(grid, spec)
    assert np.all(np.diff(e) > 0) and e[0] > 1 and e[-1] < 5


def test_did_recovers_truth_when_design_is_clean(seed):
    # Under no selection and random (MCAR) attrition, the 2x2 DiD on scale means estimates exactly the
    # true average effect on the treated in scale units; check the bias over 30 large replications.
    design = et.load_design("ncs_prepost_control").with_simulation(
        constructs={
            k: {**v.model_dump(), "selection": 0.0}
            for k, v in et.load_design("ncs_prepost_control").simulation.constructs.items()
        },
        attrition_on_baseline=0.0,
    )
    truth = et.simulate_study(design, n=100, seed=0).true_effect("attitudes", "post")
    est = []
    for i in range(30):
        d = et.simulate_study(design, n=3000, seed=seed(i)).data
        wide = d.pivot_table(index=["pid", "arm"], columns="wave", values="attitudes").dropna(
            subset=["baseline", "post"]
        )
        ch = (wide["post"] - wide["baseline"]).groupby(level="arm").mean()
        est.append(ch["ncs"] - ch["control"])
    # SE of the mean of 30 estimates is about 0.005: within 4 of them
    assert np.mean(est) == pytest.approx(truth, abs=4 * np.std(est, ddof=1) / np.sqrt(30))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n": -10}, "n must be at least 20"),
        ({"retention": {"post": {"ncs": 1.2}}}, "between 0 and 1"),
        ({"retention": {"post": {"volunteers": 0.5}}}, "not one of the arms"),
        ({"team_size": (15, 12)}, "team_size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_give_clear_errors(kwargs, words):
    seed = kwargs.pop("seed", 0)
    with pytest.raises(DesignError) as info:
        et.simulate_study("ncs_prepost_control", seed=seed, **kwargs)
    assert words in str(info.value)
    assert "\n" not in str(info.value)
