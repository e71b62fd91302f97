"""``evaltoolkit redesign``: diagnose a grid of designs and name the cheapest one reaching the target power.

Wire it into the main CLI with ``app.command("redesign", epilog=EPILOG)(plain_errors(redesign_cmd))``. Grid values
are comma-separated; a value that is not a number is a usage error (one plain line, exit status 2). Only typer
is imported at start-up; the grid (:mod:`evaltoolkit.plan.grid`) and Dask are imported inside.

Examples
--------
>>> import tempfile, typer
>>> from typer.testing import CliRunner
>>> app = typer.Typer()
>>> _ = app.command("redesign")(redesign_cmd)
>>> res = CliRunner().invoke(app, ["--design", "ncs_prepost_control", "--n", "1000,2000", "--effect", "0.2",
...                                "--scheduler", "serial", "--cache", tempfile.mkdtemp()])
>>> res.exit_code
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evaltoolkit.cli.common import console as _console
from evaltoolkit.cli.common import example

__all__ = ["EPILOG", "redesign_cmd"]

EPILOG = example(
    "evaltoolkit redesign --design ncs_prepost_control --n 1000,1500,2000 --effect 0.1,0.2 --sims 200 "
    "--scheduler serial --cache grid-cache"
)


def _values(option: str, text: str | None) -> list[float] | None:
    """``"1000,1500"`` -> ``[1000, 1500]`` (whole numbers stay whole); a bad value is one plain DesignError."""
    from evaltoolkit.errors import DesignError

    if text is None:
        return None
    out: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            x = float(part)
        except ValueError:
            raise DesignError(
                f"--{option}: '{part}' is not a number; give comma-separated numbers, e.g. --{option} 1000,1500"
            ) from None
        out.append(int(x) if x.is_integer() and option in ("n", "clusters", "cluster-size") else x)
    if not out:
        raise DesignError(f"--{option} has no values; give comma-separated numbers")
    return out


def redesign_cmd(
    design: Annotated[str, typer.Option(help="Design name or YAML file.")],
    n: Annotated[str | None, typer.Option("--n", help="People at baseline, comma-separated.")] = None,
    effect: Annotated[str | None, typer.Option(help="Effects (outcome SD units), comma-separated.")] = None,
    clusters: Annotated[str | None, typer.Option(help="Clusters (sites), comma-separated.")] = None,
    cluster_size: Annotated[str | None, typer.Option(help="People per cluster, comma-separated.")] = None,
    treated_share: Annotated[str | None, typer.Option(help="Share treated, comma-separated.")] = None,
    attrition: Annotated[str | None, typer.Option(help="Attrition shares, comma-separated.")] = None,
    icc: Annotated[str | None, typer.Option(help="Intra-cluster correlations, comma-separated.")] = None,
    sims: Annotated[int, typer.Option(help="Simulations per cell.")] = 1000,
    seed: Annotated[int, typer.Option(help="Master seed (each cell's seed comes from it and the cell).")] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://...), or 'serial'; default: a local cluster."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Folder of finished cells (default ~/.cache/evaltoolkit/grids).")
    ] = None,
    target_power: Annotated[float, typer.Option(help="Power the cheapest design must reach.")] = 0.8,
    cost_per_participant: Annotated[
        float | None, typer.Option(help="Cost per person (default: the design's, else £1,800).")
    ] = None,
    cost_per_cluster: Annotated[float, typer.Option(help="Cost per cluster.")] = 0.0,
    out: Annotated[
        Path | None, typer.Option(help="Write the tidy table (cell x diagnosand) to this CSV.")
    ] = None,
) -> None:
    """Diagnose every combination of the values given and say which design is cheapest at the target power."""
    from rich.table import Table

    from evaltoolkit.cli.common import STATE
    from evaltoolkit.io.outputs import write_csv
    from evaltoolkit.plan.grid import redesign

    lists = {
        "n": _values("n", n),
        "clusters": _values("clusters", clusters),
        "cluster_size": _values("cluster-size", cluster_size),
        "treated_share": _values("treated-share", treated_share),
        "attrition": _values("attrition", attrition),
        "icc": _values("icc", icc),
        "effect": _values("effect", effect),
    }
    grid = {k: v for k, v in lists.items() if v is not None}
    result = redesign(
        design,
        grid,
        sims=sims,
        seed=seed,
        scheduler=scheduler,
        cache=cache,
        cost_per_participant=cost_per_participant,
        cost_per_cluster=cost_per_cluster,
        target_power=target_power,
        progress=None if not STATE.quiet else False,
    )
    table = Table(title=f"Design grid ({result.computed} cells computed, {result.from_cache} from the cache)")
    shown = [*result.parameters, *result.diagnosands, "cost"]
    for col in shown:
        table.add_column(col, justify="right")
    for _, row in result.cells.iterrows():
        cells = [f"{row[c]:g}" for c in result.parameters]
        cells += [f"{row[c]:.3f}" for c in result.diagnosands]
        cells.append(f"{result.currency}{row['cost']:,.0f}")
        table.add_row(*cells)
    con = _console()
    con.print(table)
    con.print(result.sentence())
    if out is not None:
        write_csv(result.table, out, index=False)
        con.print(f"Table: {out.resolve()}")
