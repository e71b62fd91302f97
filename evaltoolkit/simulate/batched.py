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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evaltoolkit.simulate.study import SimulatedStudy, simulate_study

__all__ = ["replicate_arrays", "study_arrays"]


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
    wave: str,
    *,
    cluster: str | None = None,
    keep: Callable[[SimulatedStudy], None] | None = None,
    **overrides: Any,
) -> dict[str, np.ndarray]:
    """``study_arrays`` of one simulated study per seed, stacked: each value of shape ``(len(seeds), n)``.

    ``keep``, if given, is called with every simulated study (to record what else a diagnosis needs).
    """
    rows: list[dict[str, np.ndarray]] = []
    for s in seeds:
        sim = simulate_study(design, n=n, seed=int(s), **overrides)
        if keep is not None:
            keep(sim)
        rows.append(study_arrays(sim, outcome, wave, cluster))
    return {k: np.vstack([r[k] for r in rows]) for k in rows[0]}
