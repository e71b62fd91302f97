"""Many simulated studies of one design as ``(R, n)`` arrays for the batched estimators.

Each replicate is :func:`evaltoolkit.simulate.study.simulate_study` with its own seed (the same data a one-at-a-time
analysis sees); this module only lays one outcome at the baseline and one later wave out as arrays, one row per
replicate and one column per person at baseline (``NaN`` where the person did not respond or has no score).

Examples
--------
>>> from evaltoolkit.simulate.study import simulate_study
>>> sim = simulate_study("ncs_prepost_control", n=200, seed=1)
>>> a = study_arrays(sim, "attitudes", "post")
>>> a["y0"].shape, int(np.isfinite(a["y0"]).sum()) >= 190
((200,), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evaltoolkit.errors import DesignError
from evaltoolkit.simulate.study import (
    SimulatedStudy,
    cluster_names,
    observe_waves,
    simulate_people,
    simulation_design,
)

__all__ = ["clustered_did_arrays", "replicate_arrays", "study_arrays"]


def study_arrays(
    sim: SimulatedStudy, outcome: str, wave: str, cluster: str | None = None
) -> dict[str, np.ndarray]:
    """One simulated study as person arrays: ``y0``, ``y1`` (baseline and ``wave``), ``treated``, ``cluster``.

    ``cluster`` defaults to the design's last cluster level (teams). Clusters are coded 0..G-1; people are in
    ``pid`` order (1..n).
    """
    d = sim.design
    c = d.columns
    cl = cluster or c.clusters[-1]
    data = sim.data
    pid = data[c.id].to_numpy(dtype=np.int64) - 1
    n = sim.n_people
    out: dict[str, np.ndarray] = {}
    for key, w in (("y0", d.baseline), ("y1", wave)):
        rows = (data[c.wave] == w).to_numpy()
        y = np.full(n, np.nan)
        y[pid[rows]] = data.loc[rows, outcome].to_numpy(dtype=float)
        out[key] = y
    base = (data[c.wave] == d.baseline).to_numpy()
    treated = np.zeros(n)
    treated[pid[base]] = (data.loc[base, c.arm] == d.arms.treated).to_numpy(dtype=float)
    codes = np.zeros(n, dtype=np.int64)
    _, inv = np.unique(data.loc[base, cl].to_numpy(), return_inverse=True)
    codes[pid[base]] = inv
    out["treated"], out["cluster"] = treated, codes
    return out


def replicate_arrays(
    design: Any,
    n: int | None,
    seeds: Sequence[int],
    outcome: str,
    wave: str | Sequence[str],
    *,
    cluster: str | None = None,
    **overrides: Any,
) -> dict[str, np.ndarray]:
    """``study_arrays`` of one simulated study per seed, stacked: each value of shape ``(len(seeds), n)``.

    The same data as ``simulate_study(design, n=n, seed=s)`` for each seed, drawn through the same steps
    (:func:`evaltoolkit.simulate.study.observe_waves`) without building the long data frame or the items, so it
    is several times faster. Also returns ``n_sites`` (shape ``(len(seeds),)``): the sites in each study. With
    several waves, ``y1`` is the first and ``y`` holds the baseline and every wave named, ``(len(seeds), n, W)``.
    """
    waves = [wave] if isinstance(wave, str) else list(wave)
    d = simulation_design(design, n, **overrides)
    sim = d.simulation
    assert sim is not None
    c = d.columns
    cl = cluster or c.clusters[-1]
    level = {name: i for i, name in enumerate(c.clusters[:2])}
    if cl not in level:
        raise DesignError(
            f"cluster '{cl}' is not a cluster level of the simulated design ({', '.join(c.clusters) or 'none'})",
            field="cluster",
        )
    if outcome not in sim.constructs:
        raise DesignError(f"outcome '{outcome}' is not simulated by this design", field="outcome")
    rows: dict[str, list[np.ndarray]] = {"y0": [], "y1": [], "treated": [], "cluster": [], "n_sites": []}
    if len(waves) > 1:
        rows["y"] = []
    for s in seeds:
        rng, people, panel = simulate_people(d, int(s))
        obs = observe_waves(rng, people, panel, d, sim, items=False, constructs=(outcome,))
        scores = []
        for w in (d.baseline, *waves):
            y = np.full(people["pid"].size, np.nan)
            y[obs[w].responding] = obs[w].scores[outcome]
            scores.append(y)
        rows["y0"].append(scores[0])
        rows["y1"].append(scores[1])
        if len(waves) > 1:
            rows["y"].append(np.stack(scores, axis=1))
        rows["treated"].append(people["treated"].astype(float))
        rows["cluster"].append(np.unique(cluster_names(people)[level[cl]], return_inverse=True)[1])
        rows["n_sites"].append(np.array(np.unique(people["site"]).size))
    return {k: np.stack(v) for k, v in rows.items()}


def clustered_did_arrays(
    sims: int,
    n_clusters: int,
    cluster_size: int,
    *,
    icc: float = 0.1,
    effect: float = 0.0,
    pre_post_corr: float = 0.5,
    treated_share: float = 0.5,
    attrition: float = 0.0,
    baseline: bool = True,
    n_people: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``sims`` replicates of a simple two-wave study with whole teams in one arm, as ``(sims, n)`` arrays.

    Team ``j`` of ``cluster_size`` people; the first ``round(treated_share * n_clusters)`` teams are in the
    programme. The follow-up score is ``u_j + e_i + effect * treated`` with ``Var(u) = icc`` and
    ``Var(e) = 1 - icc`` (outcome SD 1, so ``effect`` is in SD units: the model of
    :func:`evaltoolkit.plan.power.power` with ``assignment="cluster"``); the baseline score correlates
    ``pre_post_corr`` with the untreated follow-up score (``baseline=False``: baseline 0, a post-test-only
    comparison). A random ``attrition`` share of people is missing at follow-up. ``n_people`` (default
    ``n_clusters * cluster_size``) spreads that many people over the teams (sizes differ by one at most), in team order.

    Examples
    --------
    >>> a = clustered_did_arrays(3, 10, 5, effect=0.5, seed=1)
    >>> a["y1"].shape, int(a["treated"].sum())
    ((3, 50), 25)
    """
    rng = np.random.default_rng(seed)
    n = n_people or n_clusters * cluster_size
    cluster = (
        np.sort(np.arange(n) % n_clusters) if n_people else np.repeat(np.arange(n_clusters), cluster_size)
    )
    treated = (cluster < round(treated_share * n_clusters)).astype(float)
    u = rng.normal(0.0, np.sqrt(icc), size=(sims, n_clusters))[:, cluster]
    y_untreated = u + rng.normal(0.0, np.sqrt(1 - icc), size=(sims, n))
    r = pre_post_corr
    y0 = r * y_untreated + np.sqrt(1 - r**2) * rng.normal(size=(sims, n)) if baseline else np.zeros((sims, n))
    y1 = y_untreated + effect * treated
    if attrition > 0:
        y1[rng.random((sims, n)) < attrition] = np.nan
    return {"y0": y0, "y1": y1, "treated": treated, "cluster": cluster}
