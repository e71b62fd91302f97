"""Design grids: diagnose every combination of sample size, clusters, attrition, ICC and effect (issue 16).

:func:`redesign` takes a design and a grid of values, forms the cartesian grid of *cells* (one cell = one
combination, one call of the cell function, by default :func:`evaltoolkit.plan.diagnose.diagnose`) and runs
them on Dask: a ``LocalCluster`` on this machine's cores with no setup, an existing cluster when given its
address (``scheduler="tcp://..."`` or the environment variable ``EVALTOOLKIT_DASK_SCHEDULER``), or in-process
with ``scheduler="serial"``. Each cell is seeded from ``(seed, cell)`` alone, so serial, local-cluster and
remote runs give identical numbers. Finished cells are cached on disk (default ``~/.cache/evaltoolkit/grids/``)
under a hash of the design's canonical JSON, the cell, the seed, the number of simulations and the cell
function, so an interrupted grid continues where it stopped.

The result (:class:`GridResult`) has a tidy table (one row per cell and diagnosand), power curves
(:meth:`GridResult.plot`), the MDES table (:meth:`GridResult.mdes`: the smallest effect in the grid reaching
the target power per design, and the effect interpolated linearly in power between grid effects) and the
cheapest design meeting the target power (:meth:`GridResult.cheapest`, :meth:`GridResult.sentence`): the cost
of a cell is ``people x cost_per_participant + clusters x cost_per_cluster``.

Until ``diagnose`` is available the default cell function is :func:`formula_cell`, power by formula
(:func:`evaltoolkit.plan.power.power`).

Examples
--------
>>> import tempfile
>>> r = redesign("ncs_prepost_control", grid={"n": [128, 256], "effect": [0.35, 0.5]}, scheduler="serial",
...              cell_function=formula_cell, cache=tempfile.mkdtemp(), progress=False, treated_share=0.5)
>>> round(float(r.value(n=128, effect=0.5)), 4)  # R: power.t.test(n=64, delta=0.5, strict=TRUE) 0.80146
0.8015
>>> r.sentence(target_power=0.8)  # 128 people at the NCS cost of £1,800 each
'The cheapest design in the grid reaching 80% power for an effect of 0.5 SD is 128 people, costing £230,400 (power 80%).'
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.errors import DesignError

__all__ = [
    "GRID_PARAMETERS",
    "NCS_COST_PER_PARTICIPANT",
    "GridResult",
    "cell_key",
    "cell_seed",
    "cells",
    "formula_cell",
    "redesign",
]

#: the parameters a grid may vary, in the order the tables show them
GRID_PARAMETERS = ("n", "clusters", "cluster_size", "treated_share", "attrition", "icc", "effect")
#: what NCS costs per participant (£), the default when the design gives no ``cost_per_participant``
NCS_COST_PER_PARTICIPANT = 1800.0
#: environment variable naming an existing Dask scheduler (``tcp://host:8786``)
SCHEDULER_ENV = "EVALTOOLKIT_DASK_SCHEDULER"
#: default cache folder
DEFAULT_CACHE = Path("~/.cache/evaltoolkit/grids")


def cells(grid: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """The cartesian grid as a list of cells (dicts), parameters in :data:`GRID_PARAMETERS` order.

    Examples
    --------
    >>> cells({"effect": [0.1, 0.2, 0.2], "n": [100]})
    [{'n': 100, 'effect': 0.1}, {'n': 100, 'effect': 0.2}]
    """
    unknown = [k for k in grid if k not in GRID_PARAMETERS]
    if unknown:
        raise DesignError(
            f"grid parameter '{unknown[0]}' is not one of {', '.join(GRID_PARAMETERS)}; rename or remove it",
            field="grid",
        )
    names = [k for k in GRID_PARAMETERS if k in grid]
    values = []
    for k in names:
        raw = grid[k] if isinstance(grid[k], Iterable) and not isinstance(grid[k], str) else [grid[k]]
        v = list(dict.fromkeys(_plain(x) for x in raw))  # a value given twice is one cell
        if not v:
            raise DesignError(f"grid parameter '{k}' has no values; give at least one", field="grid")
        values.append(v)
    if not names:
        raise DesignError(
            "the grid is empty; give at least one of " + ", ".join(GRID_PARAMETERS), field="grid"
        )
    return [dict(zip(names, combo, strict=True)) for combo in product(*values)]


def _plain(x: Any) -> Any:
    """A JSON-stable Python number (numpy scalars and integral floats of counts made plain)."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise DesignError(f"grid values must be numbers (got {x!r})", field="grid")
    return x


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cell_seed(seed: int, cell: Mapping[str, Any]) -> int:
    """The seed of one cell: a 32-bit number from ``(seed, cell)`` only, so the run order does not matter.

    Examples
    --------
    >>> cell_seed(0, {"n": 100, "effect": 0.2}) == cell_seed(0, {"effect": 0.2, "n": 100})
    True
    """
    digest = hashlib.sha256(_canonical({"seed": int(seed), "cell": dict(cell)}).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _design_json(design: Any) -> str:
    return _canonical(design.model_dump(mode="json"))


def _function_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def cell_key(design_json: str, cell: Mapping[str, Any], seed: int, sims: int, function: str = "") -> str:
    """Cache key of a cell: a SHA-256 of the design's canonical JSON, the cell, seed, sims and cell function.

    Examples
    --------
    >>> len(cell_key("{}", {"n": 100}, seed=0, sims=10))
    64
    """
    payload = {
        "design": design_json,
        "cell": dict(cell),
        "seed": int(seed),
        "sims": int(sims),
        "fn": function,
    }
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def formula_cell(
    design: Any,
    *,
    n: float | None = None,
    effect: float | None = None,
    sims: int = 0,
    seed: int = 0,
    clusters: float | None = None,
    cluster_size: float | None = None,
    treated_share: float | None = None,
    attrition: float = 0.0,
    icc: float = 0.0,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Power of one cell by formula (:func:`~evaltoolkit.plan.power.power`, post-test comparison); ``sims`` unused.

    With ``clusters`` the clusters are assigned whole (``cluster_size`` defaults to ``n / clusters``); without,
    people are assigned and ``cluster_size`` (teams) inflates the variance by the design effect.
    ``treated_share`` defaults to the design's simulation block (else 0.5).

    Examples
    --------
    >>> round(formula_cell(None, n=128, effect=0.5, treated_share=0.5)["power"], 4)  # R power.t.test(n=64, delta=0.5, strict=TRUE)
    0.8015
    """
    from evaltoolkit.plan.power import power

    if effect is None:
        raise DesignError("the grid needs an 'effect' (standardised, outcome SD units)", field="grid")
    if treated_share is None:
        sim = getattr(design, "simulation", None)
        treated_share = sim.treated_share if sim is not None else 0.5
    common = {
        "effect": effect,
        "alpha": alpha,
        "icc": icc,
        "treated_share": treated_share,
        "attrition": attrition,
    }
    if clusters is not None:
        m = cluster_size if cluster_size is not None else (n / clusters if n is not None else None)
        if m is None:
            raise DesignError("with 'clusters' the grid also needs 'n' or 'cluster_size'", field="grid")
        r = power(assignment="cluster", n_clusters=clusters, cluster_size=m, **common)
    else:
        if n is None:
            raise DesignError("the grid needs 'n' (people at baseline) or 'clusters'", field="grid")
        r = power(n=n, cluster_size=cluster_size or 1.0, **common)
    return {"power": float(r.power)}


def _default_cell_function() -> Callable:
    try:
        from evaltoolkit.plan.diagnose import diagnose
    except ImportError:  # not merged yet: power by formula
        return formula_cell
    return diagnose


def _run_cell(fn: Callable, design: Any, cell: Mapping[str, Any], sims: int, seed: int) -> dict[str, float]:
    """One grid cell: call the cell function and keep its numeric diagnosands."""
    params = dict(cell)
    n, effect = params.pop("n", None), params.pop("effect", None)
    out = fn(design, n=n, effect=effect, sims=sims, seed=seed, **params)
    values = out.as_dict() if hasattr(out, "as_dict") else dict(out)
    return {
        str(k): float(v)
        for k, v in values.items()
        if isinstance(v, int | float | np.number) and not isinstance(v, bool)
    }


def _people(cell: Mapping[str, Any]) -> float:
    if cell.get("n") is not None:
        return float(cell["n"])
    return float(cell["clusters"]) * float(cell["cluster_size"])


def _clusters(cell: Mapping[str, Any]) -> float:
    if cell.get("clusters") is not None:
        return float(cell["clusters"])
    if cell.get("cluster_size"):
        return float(math.ceil(_people(cell) / float(cell["cluster_size"])))
    return 0.0


def _money(x: float, currency: str) -> str:
    return f"{currency}{x:,.0f}"


@dataclass
class GridResult:
    """Result of :func:`redesign`: one row per cell in :attr:`cells`, with its diagnosands and cost."""

    cells: pd.DataFrame
    parameters: list[str]
    diagnosands: list[str]
    cost_per_participant: float
    cost_per_cluster: float
    currency: str = "£"
    target_power: float = 0.8
    computed: int = 0
    from_cache: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """Tidy table: the cell's parameters, ``diagnosand`` and ``value`` (one row per cell and diagnosand)."""
        return self.cells.melt(
            id_vars=self.parameters, value_vars=self.diagnosands, var_name="diagnosand", value_name="value"
        ).reset_index(drop=True)

    def value(self, diagnosand: str = "power", **cell: Any) -> float:
        """The value of one diagnosand at the cell matching ``cell`` (every parameter named must match)."""
        mask = np.ones(len(self.cells), dtype=bool)
        for k, v in cell.items():
            if k not in self.parameters:
                raise DesignError(f"'{k}' is not a parameter of this grid ({', '.join(self.parameters)})")
            mask &= np.isclose(self.cells[k].to_numpy(dtype=float), float(v))
        hits = self.cells.loc[mask, diagnosand]
        if len(hits) != 1:
            raise DesignError(f"{len(hits)} cells match {cell}; name every parameter of the grid")
        return float(hits.iloc[0])

    @property
    def _design_parameters(self) -> list[str]:
        return [p for p in self.parameters if p != "effect"]

    def mdes(self, target_power: float | None = None) -> pd.DataFrame:
        """Minimum detectable effect per design: the smallest grid effect reaching ``target_power``
        (``mdes_grid``) and the effect where power crosses it, interpolated linearly between grid effects
        (``mdes_interpolated``); both missing when no effect in the grid reaches it."""
        target = self.target_power if target_power is None else target_power
        if "effect" not in self.parameters or "power" not in self.diagnosands:
            raise DesignError("the MDES needs 'effect' in the grid and a 'power' diagnosand")
        rows = []
        groups = (
            self.cells.groupby(self._design_parameters, sort=False)
            if self._design_parameters
            else [((), self.cells)]
        )
        for key, g in groups:
            g = g.sort_values("effect")
            eff, pw = g["effect"].to_numpy(float), g["power"].to_numpy(float)
            reach = np.flatnonzero(pw >= target)
            grid_mdes = interp = float("nan")
            if reach.size:
                i = int(reach[0])
                grid_mdes = interp = eff[i]
                if i > 0 and pw[i] > pw[i - 1]:
                    interp = eff[i - 1] + (target - pw[i - 1]) * (eff[i] - eff[i - 1]) / (pw[i] - pw[i - 1])
            key = key if isinstance(key, tuple) else (key,)
            rows.append(dict(zip(self._design_parameters, key, strict=True)) | {
                "target_power": target, "mdes_grid": grid_mdes, "mdes_interpolated": float(interp)})  # fmt: skip
        return pd.DataFrame(rows)

    def cheapest(
        self, target_power: float | None = None, effect: float | None = None
    ) -> dict[str, Any] | None:
        """The cheapest cell reaching ``target_power`` at ``effect`` (default: the smallest grid effect that
        some design reaches); ties go to the higher power. ``None`` when no cell reaches it."""
        target = self.target_power if target_power is None else target_power
        ok = self.cells[self.cells["power"] >= target]
        if "effect" in self.parameters:
            if effect is None:
                if ok.empty:
                    return None
                effect = float(ok["effect"].min())
            ok = ok[np.isclose(ok["effect"].to_numpy(float), effect)]
        if ok.empty:
            return None
        best = ok.sort_values(["cost", "power"], ascending=[True, False], kind="stable").iloc[0]
        return {k: best[k] for k in [*self.parameters, "people", "clusters_paid", "cost", "power"]} | {
            "target_power": target
        }

    def sentence(self, target_power: float | None = None, effect: float | None = None) -> str:
        """One sentence: the cheapest design meeting the target power and what it costs."""
        target = self.target_power if target_power is None else target_power
        best = self.cheapest(target, effect)
        at = f" for an effect of {effect:g} SD" if effect is not None else ""
        if best is None:
            return f"No design in the grid reaches {target:.0%} power{at}; widen the grid (more people or clusters)."
        if "effect" in best:
            at = f" for an effect of {best['effect']:g} SD"
        what = f"{best['people']:,.0f} people"
        if best["clusters_paid"]:
            what += f" in {best['clusters_paid']:,.0f} clusters"
        extras = [f"{p} {best[p]:g}" for p in ("treated_share", "attrition", "icc") if p in self.parameters]
        if extras:
            what += f" ({', '.join(extras)})"
        return (
            f"The cheapest design in the grid reaching {target:.0%} power{at} is {what}, costing "
            f"{_money(best['cost'], self.currency)} (power {best['power']:.0%})."
        )

    def plot(self, ax: Any = None, diagnosand: str = "power") -> Any:
        """Power curves: ``diagnosand`` against effect (or the first parameter), one line per design."""
        from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish

        fig, ax = figure_and_axes(ax)
        x = "effect" if "effect" in self.parameters else self.parameters[0]
        others = [p for p in self.parameters if p != x]
        groups = self.cells.groupby(others, sort=False) if others else [((), self.cells)]
        for i, (key, g) in enumerate(groups):
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{p} {v:g}" for p, v in zip(others, key, strict=True)) or diagnosand
            g = g.sort_values(x)
            ax.plot(g[x], g[diagnosand], marker="o", color=PALETTE[i % len(PALETTE)], label=label)
        if diagnosand == "power":
            ax.axhline(self.target_power, color="grey", linestyle="--", linewidth=1)
            ax.set_ylim(0, 1.02)
        ax.set_xlabel("effect (SD units)" if x == "effect" else x)
        ax.set_ylabel(diagnosand)
        ax.set_title(f"{diagnosand.capitalize()} across the design grid")
        if others:
            ax.legend(fontsize="small", frameon=False)
        return finish(fig, f"{diagnosand} of {len(self.cells)} designs against {x}. {self.sentence()}")


def _client(scheduler: Any):
    """(client, close): a Dask client for ``scheduler`` and a function that closes what was started here."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(
            n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()

        return client, close
    if isinstance(scheduler, Client):
        return scheduler, lambda: None
    client = Client(scheduler)
    return client, client.close


def _progress(show: bool | None, total: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if show is None:
        show = sys.stderr.isatty()
    return Progress(
        TextColumn("grid cells"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not show or total == 0,
    )


def redesign(
    design: Any,
    grid: Mapping[str, Iterable[Any]],
    *,
    sims: int = 1000,
    seed: int = 0,
    scheduler: Any = None,
    cache: str | Path | None = None,
    cell_function: Callable | None = None,
    cost_per_participant: float | None = None,
    cost_per_cluster: float = 0.0,
    target_power: float = 0.8,
    progress: bool | None = None,
    **fixed: Any,
) -> GridResult:
    """Diagnose every cell of a design grid, on Dask, resumably; see the module docstring.

    Parameters
    ----------
    design : Design or str
        The design (or a bundled design's name / a YAML path).
    grid : mapping
        Parameter -> values, parameters among :data:`GRID_PARAMETERS` (``n``, ``clusters``, ``cluster_size``,
        ``treated_share``, ``attrition``, ``icc``, ``effect``).
    sims : int
        Simulations per cell (passed to the cell function).
    seed : int
        Master seed; each cell's seed is :func:`cell_seed` ``(seed, cell)``.
    scheduler : None, "serial", str or distributed.Client
        ``None``: the scheduler in ``EVALTOOLKIT_DASK_SCHEDULER`` if set, else a ``LocalCluster`` with one
        process per core, closed afterwards; ``"serial"``: in this process; ``"tcp://host:port"``: an existing
        cluster; a ``Client``: used as is (not closed).
    cache : path, optional
        Folder of finished cells (default ``~/.cache/evaltoolkit/grids``); ``False`` turns caching off.
    cell_function : callable, optional
        ``fn(design, *, n, effect, sims, seed, **other_parameters)`` returning a mapping of diagnosands or an
        object with ``.as_dict()``; default ``evaltoolkit.plan.diagnose.diagnose`` (else :func:`formula_cell`).
        With Dask it must be importable (or picklable by value) on the workers.
    cost_per_participant, cost_per_cluster : float
        Costs of one person and one cluster (default: the design's ``cost_per_participant``, else NCS £1,800;
        clusters 0).
    target_power : float
        Power the MDES and the cheapest design aim for.
    progress : bool, optional
        Show a progress bar with ETA (default: when stderr is a terminal).
    **fixed
        Parameters passed unchanged to every cell (e.g. ``treated_share=0.5``); not part of the table.

    Examples
    --------
    >>> r = redesign("ncs_prepost_control", grid={"n": [64, 128]}, scheduler="serial", cache=False,
    ...              cell_function=formula_cell, progress=False, effect=0.5, treated_share=0.5)
    >>> round(float(r.cells.loc[1, "power"]), 4)  # R: power.t.test(n=64, delta=0.5, strict=TRUE)
    0.8015
    """
    from evaltoolkit.design.schema import Design, load_design

    d = design if isinstance(design, Design) else load_design(design)
    if sims < 1:
        raise DesignError(f"sims must be at least 1 (got {sims})", field="sims")
    if not 0 < target_power < 1:
        raise DesignError(f"target_power must be between 0 and 1 (got {target_power})", field="target_power")
    overlap = [k for k in fixed if k in grid]
    if overlap:
        raise DesignError(f"'{overlap[0]}' is both in the grid and fixed; give it once")
    grid_cells = cells(grid)
    parameters = list(grid_cells[0])
    fn = cell_function or _default_cell_function()
    fname = _function_name(fn)
    djson = _design_json(d)
    full = [c | {k: _plain(v) for k, v in fixed.items()} for c in grid_cells]
    keys = [cell_key(djson, c, seed, sims, fname) for c in full]
    seeds = [cell_seed(seed, c) for c in full]

    folder = None if cache is False else Path(cache if cache is not None else DEFAULT_CACHE).expanduser()
    results: dict[int, dict[str, float]] = {}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for i, k in enumerate(keys):
            f = folder / f"{k}.json"
            if f.is_file():
                try:
                    results[i] = dict(json.loads(f.read_text())["diagnosands"])  # pairs: the order kept
                except (ValueError, KeyError):  # a half-written file: compute again
                    pass
    todo = [i for i in range(len(full)) if i not in results]

    def store(i: int, values: dict[str, float]) -> None:
        results[i] = values
        if folder is not None:
            tmp = folder / f"{keys[i]}.tmp{os.getpid()}"
            tmp.write_text(
                _canonical(
                    {
                        "cell": full[i],
                        "seed": seed,
                        "sims": sims,
                        "fn": fname,
                        "diagnosands": list(values.items()),
                    }
                )
            )
            tmp.replace(folder / f"{keys[i]}.json")

    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    with _progress(progress, len(todo)) as bar:
        task = bar.add_task("grid", total=len(todo))
        if todo and scheduler == "serial":
            for i in todo:
                store(i, _run_cell(fn, d, full[i], sims, seeds[i]))
                bar.advance(task)
        elif todo:
            from distributed import as_completed

            client, close = _client(scheduler)
            try:
                futures = {
                    client.submit(
                        _run_cell, fn, d, full[i], sims, seeds[i], pure=False, key=f"cell-{keys[i]}"
                    ): i
                    for i in todo
                }
                for fut in as_completed(futures):
                    store(futures[fut], fut.result())
                    bar.advance(task)
            finally:
                close()

    cpp = cost_per_participant if cost_per_participant is not None else d.cost_per_participant
    cpp = float(NCS_COST_PER_PARTICIPANT if cpp is None else cpp)
    diagnosands = list(dict.fromkeys(k for i in range(len(full)) for k in results[i]))
    rows = []
    for i, c in enumerate(grid_cells):
        people, paid = _people(full[i]), _clusters(full[i])
        rows.append(c | {k: results[i].get(k, float("nan")) for k in diagnosands} | {
            "people": people, "clusters_paid": paid, "cost": people * cpp + paid * float(cost_per_cluster),
            "seed": seeds[i]})  # fmt: skip
    return GridResult(
        cells=pd.DataFrame(rows),
        parameters=parameters,
        diagnosands=diagnosands,
        cost_per_participant=cpp,
        cost_per_cluster=float(cost_per_cluster),
        currency=d.currency,
        target_power=target_power,
        computed=len(todo),
        from_cache=len(full) - len(todo),
        details={"cell_function": fname, "sims": sims, "seed": seed, "fixed": dict(fixed)},
    )
