"""Simulate a realistic NCS-style study from a design's ``simulation`` block.

The generator is built so every estimator can be checked against known truth:

* **Structure** - people live in *sites* (local areas) with an area segregation index in [0, 1];
  participants are in teams of 12-15 within sites; controls (interested applicants who did not take
  part) are grouped into applicant cohorts of the same size within sites, so every row has a ``team``.
* **Measurement** - each construct (attitudes, positive contact, ...) is a latent trait; each item is
  an ordered-probit Likert answer of the trait (loading ``lambda``), so scale reliability is realistic
  (alpha about 0.7-0.85). Reverse-keyed items are answered the other way round and must be
  reverse-scored. A small share of item answers are missing.
* **Change** - between waves everybody changes by a common trend plus individual noise; participants
  also receive the treatment effect, which varies by team, grows with area segregation
  (``moderation``) and decays at follow-up (``decay``).
* **Mechanism** - the mediator's change (positive contact) feeds the mediated outcomes' change with
  path ``b`` (``mediated``), so part of the attitude effect runs through positive contact.
* **Selection and attrition** - participants start higher on the constructs with ``selection`` > 0;
  response at each later wave is monotone, differs by arm, and can depend on the baseline level
  (``attrition_on_baseline``: missing at random given baseline).

The **true effect** returned beside the data is the population average effect on the treated, in
scale-score units (expected scale mean with the programme minus without it, for the treated
population), computed by numerical integration over a large reference population with the same
parameters. It is exactly what a difference-in-differences identifies when there is no selection
and no differential attrition; with selection, ceiling effects of Likert scales can make DiD on scale
means differ slightly from it - a real feature of such data.

Examples
--------
>>> import evaltoolkit as et
>>> sim = et.simulate_study("ncs_prepost_control", n=300, seed=3)
>>> sorted(sim.data["wave"].unique())
['baseline', 'followup', 'post']
>>> float(sim.true_effect("positive_contact", "post")) > 0
True
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit, ndtr

from evaltoolkit.design.schema import Design, Simulation, load_design
from evaltoolkit.errors import DesignError

#: size of the reference population used to compute the true effects
_TRUTH_N = 100_000
_TRUTH_SEED = 20_240_601


@dataclass
class SimulatedStudy:
    """A simulated study: observed long data, the truth, and what was generated.

    Attributes
    ----------
    data : DataFrame
        One row per person per wave *responded*: ``pid, arm, wave, site, team, segregation, female,
        age, unemployed`` (id, arm, wave and cluster columns are named as the design's ``columns``
        say), every item, and every scale score (mean of available items after reverse keying, NA if
        fewer than half answered).
    truth : DataFrame
        ``outcome, wave, effect, effect_latent``: population average effect on the treated in scale
        units and in latent SD units.
    design : Design
    seed : int
    n_people : int
        People at baseline (before attrition).
    params : dict
        Path parameters used (``a``: effect on the mediator, ``b``: mediator-to-outcome path...).
    """

    data: pd.DataFrame
    truth: pd.DataFrame
    design: Design
    seed: int
    n_people: int
    params: dict[str, Any] = field(default_factory=dict)

    def true_effect(self, outcome: str, wave: str | None = None, scale: str = "score") -> float:
        """True population effect on the treated for ``outcome`` at ``wave`` (default: first post wave).

        ``scale="score"`` gives scale-score units, ``"latent"`` latent SD units.
        """
        wave = wave or self.design.post_waves[0]
        rows = self.truth[(self.truth["outcome"] == outcome) & (self.truth["wave"] == wave)]
        if rows.empty:
            raise DesignError(f"no true effect for outcome '{outcome}' at wave '{wave}'", field="outcome")
        col = "effect" if scale == "score" else "effect_latent"
        return float(rows[col].iloc[0])


def simulate_study(
    design: Design | str | Path,
    n: int | None = None,
    seed: int = 0,
    **overrides: Any,
) -> SimulatedStudy:
    """Simulate a study described by ``design`` (its ``simulation`` block).

    Parameters
    ----------
    design : Design, str or Path
        A design object, a bundled design name or a YAML path. It must have a ``simulation`` block.
    n : int, optional
        People at baseline (overrides ``simulation.n``).
    seed : int
        Random seed; the same seed always gives the same data.
    **overrides
        Any other ``simulation`` field, e.g. ``treated_share=0.5`` or
        ``retention={"post": {"ncs": 1, "control": 1}}``.

    Returns
    -------
    SimulatedStudy

    Raises
    ------
    DesignError
        For impossible parameters (negative n, retention above 1, an unknown arm...).

    Examples
    --------
    >>> sim = simulate_study("ncs_prepost_control", n=200, seed=1)
    >>> int(sim.data.groupby("wave")["pid"].nunique()["baseline"])
    200
    """
    design = simulation_design(design, n, **overrides)
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise DesignError(f"seed must be a non-negative whole number (got {seed!r})", field="seed")
    sim = design.simulation
    assert sim is not None
    rng, people, panel = simulate_people(design, int(seed))
    data = _observe(rng, people, panel, design, sim)
    truth = true_effects(design)
    params = {
        "a": {c: sim.constructs[c].effect for c in sim.constructs},
        "b": dict(sim.mediated),
        "mediator": sim.mediator,
        "moderation": sim.moderation,
    }
    return SimulatedStudy(data=data, truth=truth, design=design, seed=seed, n_people=sim.n, params=params)


def simulation_design(design: Design | str | Path, n: int | None = None, **overrides: Any) -> Design:
    """The design :func:`simulate_study` simulates: loaded, checked to have a ``simulation`` block, overridden."""
    if not isinstance(design, Design):
        design = load_design(design)
    if design.simulation is None:
        raise DesignError("this design has no simulation block to simulate from", field="simulation")
    if n is not None:
        overrides["n"] = n
    return design.with_simulation(**overrides) if overrides else design


def true_effects(design: Design) -> pd.DataFrame:
    """``SimulatedStudy.truth`` of a simulation design (cached: the same for every seed and every n)."""
    return _truth_table(_design_key(design))


def simulate_people(
    design: Design, seed: int
) -> tuple[np.random.Generator, dict[str, np.ndarray], dict[str, Any]]:
    """The first two steps of :func:`simulate_study`: people (sites, teams, arms) and their latent panel.

    Returns the generator as left after them, ready for :func:`observe_waves`.
    """
    sim = design.simulation
    assert sim is not None
    rng = np.random.default_rng(seed)
    people = _draw_people(rng, design, sim)
    return rng, people, _latent_panel(rng, people, design, sim)


# --------------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------------


def _draw_people(rng: np.random.Generator, design: Design, sim: Simulation) -> dict[str, np.ndarray]:
    n = sim.n
    segregation = rng.beta(2.0, 2.0, size=sim.sites)
    site = rng.integers(0, sim.sites, size=n)
    if sim.assignment == "site":
        k = sim.treated_sites if sim.treated_sites is not None else round(sim.sites * sim.treated_share)
        treated_site = np.zeros(sim.sites, dtype=bool)
        treated_site[rng.choice(sim.sites, size=k, replace=False)] = True
        treated = treated_site[site]
    else:
        treated = rng.random(n) < sim.treated_share
    # teams: split each site x arm block into teams of about (lo + hi) / 2 people
    lo, hi = sim.team_size
    block = site * 2 + treated
    order = np.argsort(block, kind="stable")
    sizes = np.bincount(block, minlength=2 * sim.sites)
    n_teams = np.maximum(1, np.rint(sizes / ((lo + hi) / 2))).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    team_offset = np.concatenate(([0], np.cumsum(n_teams)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, sizes)
    team = team_offset[block] + (rank * n_teams[block]) // np.maximum(sizes[block], 1)
    return {
        "pid": np.arange(1, n + 1),
        "site": site,
        "segregation": segregation[site],
        "treated": treated,
        "team": team,
        "female": (rng.random(n) < 0.5).astype(np.int8),
        "age": rng.integers(15, 18, size=n),
        "unemployed": (rng.random(n) < 0.08).astype(np.int8),
    }


def _latent_panel(
    rng: np.random.Generator, people: dict[str, np.ndarray], design: Design, sim: Simulation
) -> dict[str, Any]:
    """Latent levels: baseline, and per later wave the untreated level and the treatment effect."""
    n = people["pid"].size
    names = list(sim.constructs)
    site_effects = rng.normal(0.0, sim.site_sd, size=(int(people["site"].max()) + 1, len(names)))
    g = rng.normal(size=n)
    base = {}
    for j, c in enumerate(names):
        lam = -0.3 if c.startswith("negative") else 0.5
        e = rng.normal(size=n)
        base[c] = (
            lam * g
            + np.sqrt(1 - lam**2) * e
            + site_effects[people["site"], j]
            + sim.constructs[c].selection * people["treated"]
        )
    multiplier = 1.0 + sim.moderation * (people["segregation"] - 0.5)
    n_teams = int(people["team"].max()) + 1
    team_dev = {c: rng.normal(0.0, sim.team_effect_sd, size=n_teams) for c in names}
    waves: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for w in design.post_waves:
        keep = sim.decay.get(w, 1.0)
        trend = sim.trend.get(w, 0.0)
        untreated: dict[str, np.ndarray] = {}
        effect: dict[str, np.ndarray] = {}
        change: dict[str, np.ndarray] = {}
        # mediator first so mediated outcomes can use its change
        ordered = sorted(names, key=lambda c: c != sim.mediator)
        for c in ordered:
            spec = sim.constructs[c]
            noise = rng.normal(0.0, sim.change_sd, size=n)
            has_effect = spec.effect != 0 or c in sim.mediated
            dev = team_dev[c][people["team"]] if has_effect else 0.0
            tau = keep * (spec.effect * multiplier + dev) * people["treated"]
            d0 = trend + noise
            if c in sim.mediated and sim.mediator is not None:
                b = sim.mediated[c]
                d0 = d0 + b * change[sim.mediator]
                tau = tau + b * effect[sim.mediator]
            change[c] = d0
            effect[c] = tau
            untreated[c] = base[c] + d0
        waves[w] = {"untreated": untreated, "effect": effect}
    return {"base": base, "waves": waves}


def _thresholds(k: int, n_items: int) -> np.ndarray:
    """Item thresholds (n_items x k-1): spread categories, small item-specific shifts."""
    core = np.linspace(-1.7, 1.1, k - 1)
    shifts = np.linspace(-0.25, 0.25, n_items) if n_items > 1 else np.zeros(1)
    return core[None, :] + shifts[:, None]


def _answers(rng: np.random.Generator, latent: np.ndarray, spec) -> np.ndarray:
    k, lam = spec.categories, spec.loading
    thr = _thresholds(k, len(spec.items))
    star = lam * latent[:, None] + np.sqrt(1 - lam**2) * rng.normal(size=(latent.size, len(spec.items)))
    cat = 1 + (star[:, :, None] > thr[None, :, :]).sum(axis=2)
    return cat.astype(float)


def _expected_score(latent: np.ndarray, spec) -> np.ndarray:
    """Expected scale mean (after reverse keying) given the latent level."""
    k, lam = spec.categories, spec.loading
    thr = _thresholds(k, len(spec.items))
    z = (lam * latent[:, None, None] - thr[None, :, :]) / np.sqrt(1 - lam**2)
    return 1 + ndtr(z).sum(axis=2).mean(axis=1)


@dataclass
class ObservedWave:
    """What one wave of a simulated study observed, as arrays over the people at baseline.

    Attributes
    ----------
    responding : ndarray of bool, shape (n,)
        Who answered at this wave (dropout is monotone).
    scores : dict
        Construct -> scale score of each *responding* person (NaN when fewer than half the items answered).
    items : dict
        Item -> raw answer of each responding person (reverse-worded items as answered), only when asked for.
    """

    responding: np.ndarray
    scores: dict[str, np.ndarray]
    items: dict[str, np.ndarray]


def observe_waves(
    rng: np.random.Generator,
    people: dict[str, np.ndarray],
    panel: dict[str, Any],
    design: Design,
    sim: Simulation,
    *,
    items: bool = True,
    constructs: Collection[str] | None = None,
) -> dict[str, ObservedWave]:
    """Who responds at each wave and what they answer: the measurement step of :func:`simulate_study`.

    ``constructs`` limits the scores (and items) computed to those named. The random draws are the same whatever
    is kept, so array consumers (:func:`evaltoolkit.simulate.batched.replicate_arrays`) see exactly the data
    ``simulate_study`` gives.
    """
    n = people["pid"].size
    first = next(iter(sim.constructs))
    z0 = panel["base"][first]
    z0 = (z0 - z0.mean()) / z0.std()
    responding = np.ones(n, dtype=bool)
    out: dict[str, ObservedWave] = {}
    for w in design.wave_names:
        if w == design.baseline:
            latent = panel["base"]
        else:
            pw = panel["waves"][w]
            latent = {c: pw["untreated"][c] + pw["effect"][c] for c in sim.constructs}
            # retention is the cumulative share of baseline still responding; dropout is monotone
            cum = np.array(
                [
                    [sim.retention.get(v, {}).get(a, 1.0) for v in design.post_waves]
                    for a in (design.arms.control[0], design.arms.treated)
                ]
            )
            k = design.post_waves.index(w)
            prev = cum[:, k - 1] if k > 0 else np.ones(2)
            cond = np.minimum(cum[:, k] / np.maximum(prev, 1e-12), 1.0)
            p = np.where(people["treated"], cond[1], cond[0])
            p = np.clip(p, 1e-9, 1 - 1e-9)
            p = np.where(p >= 1 - 1e-9, 1.0, expit(logit(p) + sim.attrition_on_baseline * z0))
            responding = responding & (rng.random(n) < p)
        scores: dict[str, np.ndarray] = {}
        answers: dict[str, np.ndarray] = {}
        for c, spec in sim.constructs.items():
            if constructs is not None and c not in constructs:  # the same draws, nothing computed
                shape = (int(responding.sum()), len(spec.items))
                rng.normal(size=shape), rng.random(shape)
                continue
            ans = _answers(rng, latent[c][responding], spec)
            ans[rng.random(ans.shape) < sim.item_missing] = np.nan
            answered = np.isfinite(ans).sum(axis=1)
            with np.errstate(invalid="ignore"):
                score = np.nansum(ans, axis=1) / np.maximum(answered, 1)
            score[answered < int(np.ceil(len(spec.items) / 2))] = np.nan
            scores[c] = score
            if items:
                k = spec.categories
                for j, item in enumerate(spec.items):
                    # the respondent's raw answer to a reverse-worded item is the other way round
                    answers[item] = k + 1 - ans[:, j] if item in spec.reverse else ans[:, j]
        out[w] = ObservedWave(responding=responding, scores=scores, items=answers)
    return out


def cluster_names(people: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Site and team names of every person (``S03``, ``S03-T12``: team names say the arm)."""
    site_names = np.char.add("S", np.char.zfill(people["site"].astype(str), 2))
    team_prefix = np.where(people["treated"], "T", "C")
    team_names = np.char.add(
        np.char.add(site_names, "-"), np.char.add(team_prefix, people["team"].astype(str))
    )
    return site_names, team_names


def _observe(
    rng: np.random.Generator,
    people: dict[str, np.ndarray],
    panel: dict[str, Any],
    design: Design,
    sim: Simulation,
) -> pd.DataFrame:
    arm_labels = np.where(people["treated"], design.arms.treated, design.arms.control[0])
    site_names, team_names = cluster_names(people)
    frames = []
    for w, obs in observe_waves(rng, people, panel, design, sim).items():
        r = obs.responding
        cols: dict[str, Any] = {
            "pid": people["pid"][r],
            "arm": arm_labels[r],
            "wave": np.full(int(r.sum()), w),
            "site": site_names[r],
            "team": team_names[r],
            "segregation": np.round(people["segregation"][r], 3),
            "female": people["female"][r],
            "age": people["age"][r],
            "unemployed": people["unemployed"][r],
        }
        for c, spec in sim.constructs.items():
            for item in spec.items:
                cols[item] = obs.items[item]
            cols[c] = obs.scores[c]
        frames.append(pd.DataFrame(cols))
    data = pd.concat(frames, ignore_index=True)
    for spec in sim.constructs.values():
        for item in spec.items:
            data[item] = data[item].astype("Int64")
    data["wave"] = pd.Categorical(data["wave"], categories=design.wave_names)
    data = data.sort_values(["pid", "wave"]).reset_index(drop=True).astype({"wave": str})
    return data.rename(columns=_column_names(design))


def _column_names(design: Design) -> dict[str, str]:
    """Generated column -> the name the design expects (id, arm, wave and cluster levels)."""
    c = design.columns
    names = {"pid": c.id, "arm": c.arm, "wave": c.wave}
    if len(c.clusters) == 1:
        names["site"] = c.clusters[0]
    elif len(c.clusters) >= 2:
        names["site"], names["team"] = c.clusters[0], c.clusters[1]
    return names


# --------------------------------------------------------------------------------------------------
# truth
# --------------------------------------------------------------------------------------------------


def _design_key(design: Design) -> str:
    """Everything the truth depends on (not n, which only changes the sample)."""
    dumped = design.model_dump(mode="json", exclude={"source"})
    dumped["simulation"]["n"] = _TRUTH_N
    return json.dumps(dumped, sort_keys=True)


@lru_cache(maxsize=32)
def _truth_table(key: str) -> pd.DataFrame:
    design = Design.model_validate(json.loads(key))
    sim = design.simulation
    assert sim is not None
    big = sim.model_copy(
        update={"treated_share": 0.999, "sites": max(sim.sites, 2000), "assignment": "individual"}
    )
    rng = np.random.default_rng(_TRUTH_SEED)
    people = _draw_people(rng, design, big)
    panel = _latent_panel(rng, people, design, big)
    treated = people["treated"]
    rows = []
    for w in design.post_waves:
        pw = panel["waves"][w]
        for c, spec in sim.constructs.items():
            y0 = pw["untreated"][c][treated]
            tau = pw["effect"][c][treated]
            effect = float(np.mean(_expected_score(y0 + tau, spec) - _expected_score(y0, spec)))
            rows.append({"outcome": c, "wave": w, "effect": effect, "effect_latent": float(tau.mean())})
    return pd.DataFrame(rows)
