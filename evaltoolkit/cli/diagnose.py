"""``evaltoolkit diagnose``: simulate a design many times and say how its primary analysis would fare.

Wired into the main CLI with ``app.add_typer(diagnose_cmd.app, name="diagnose")``. Prints power, bias, coverage
and the other diagnosands with their Monte Carlo SEs (:func:`evaltoolkit.plan.diagnose.diagnose`) and the
evidence rating the report would give, in words. Errors are :class:`~evaltoolkit.errors.EvalToolkitError`,
printed by the main CLI as one line (exit 2).

Examples
--------
>>> from evaltoolkit.cli.app import main
>>> main(["-q", "diagnose", "--design", "ncs_prepost_control", "--n", "400", "--sims", "5"])
0
>>> main(["-q", "diagnose", "--design", "ncs_prepost_control", "--sims", "1"])
2
"""

from __future__ import annotations

from typing import Annotated

import typer

from evaltoolkit.cli.common import STATE, example
from evaltoolkit.cli.common import console as _console

__all__ = ["app", "diagnose_cmd"]

app = typer.Typer(
    name="diagnose",
    help="Diagnose a design before fielding it: power, bias, coverage and the expected evidence rating.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: the diagnosands printed, with their labels and whether they are shares (printed as percentages)
_ROWS = (
    ("power", "Power (share of studies detecting the effect)", True),
    ("bias", "Bias (points)", False),
    ("rmse", "RMSE (points)", False),
    ("coverage", "95% interval coverage", True),
    ("mean_ci_width", "Mean interval width (points)", False),
    ("type_s", "Type S error (wrong sign when significant)", True),
    ("type_m", "Type M (exaggeration when significant)", False),
    ("share_few_clusters", "Studies with the few-clusters caution", True),
    ("share_differential_attrition", "Studies with differential attrition > 5 points", True),
    ("mdes", "Minimum detectable effect (SDs, 80% power)", False),
    ("attrition", "Attrition (share lost from baseline)", True),
    ("mean_padlocks", "Padlocks (EEF rating, 0-5), mean", False),
)


@app.callback(
    invoke_without_command=True,
    epilog=example(
        "evaltoolkit diagnose --design ncs_prepost_control --n 600 --sims 40",
        "evaltoolkit diagnose --design ncs_prepost_control --n 600 --sims 40 --effect 0.3 --seed 7",
    ),
)
def diagnose_cmd(
    design: Annotated[str, typer.Option(help="Bundled design name or path to a design YAML.")],
    n: Annotated[int | None, typer.Option(help="People at baseline (default: the design's).")] = None,
    sims: Annotated[int, typer.Option(help="Simulated studies.")] = 1000,
    effect: Annotated[
        float | None,
        typer.Option(help="Direct effect on the primary outcome, latent SD units (default: the design's)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first simulated study.")] = 0,
) -> None:
    """Simulate the design --sims times and run its primary DiD on each: power, bias, coverage, evidence rating."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from evaltoolkit.plan.diagnose import diagnose
    from evaltoolkit.plan.summary import PADLOCK_RULES

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), transient=True, disable=STATE.quiet,
    ) as progress:  # fmt: skip
        task = progress.add_task("Simulating studies", total=sims)
        dx = diagnose(design, n=n, effect=effect, sims=sims, seed=seed,
                      progress=lambda k: progress.update(task, completed=k))  # fmt: skip
    table = Table(
        title=f"{dx.design}: {dx.analysis} on {dx.outcome} at {dx.wave}, {dx.n:,} people, {dx.sims:,} studies"
    )
    table.add_column("Diagnosand")
    table.add_column("Estimate", justify="right")
    table.add_column("MC SE", justify="right")
    for key, label, share in _ROWS:
        est, se = dx.value(key)
        text = [f"{v:.1%}" if share else f"{v:.3f}" for v in (est, se)]
        if key == "bias" and est == est:
            text[0] = f"{est:+.3f}"
        table.add_row(label, *("-" if v != v else t for v, t in zip((est, se), text)))
    con = _console()
    con.print(table)
    con.print(f"True effect: {dx.true_effect:.3f} points. Expected evidence rating: {dx.evidence_rating}.")
    share, _ = dx.value(f"share_padlocks_{dx.padlocks}")
    con.print(
        f"Padlock rating (EEF rules) in most simulated studies ({share:.0%}): {dx.padlocks} of 5. "
        + " ".join(PADLOCK_RULES)
    )
    for note in dx.notes[1:]:
        con.print(note)
