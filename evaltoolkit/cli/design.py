"""``evaltoolkit design init``: draft a validated design (analysis plan) from instruments and the data.

Wire it into the main CLI with ``app.add_typer(design_cmd.app, name="design")``. Every guess is printed with
its reason; in a terminal each one is also asked (Enter keeps it), and every choice is a flag, so the command
scripts. Errors are :class:`~evaltoolkit.errors.EvalToolkitError`, printed by the main CLI as one line.

Examples
--------
>>> import tempfile, pathlib
>>> from evaltoolkit.cli.app import main
>>> from evaltoolkit.simulate.surveys import simulate_exports
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> [f] = simulate_exports("ncs_prepost_control", d, format="stata", n=120, seed=2)
>>> main(["-q", "design", "init", str(f), "-i", "ncs_social_mixing", "--out", str(d / "design.yaml")])
0
>>> (d / "design.yaml").is_file()
True
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from evaltoolkit.cli.common import console as _console
from evaltoolkit.cli.common import example

__all__ = ["app", "init"]

app = typer.Typer(
    name="design",
    help="Draft a design (the analysis plan) from your instruments and data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=example(
        "evaltoolkit design init w1.csv w2.csv -i ncs_social_mixing --waves baseline,post --out design.yaml",
        "evaltoolkit design init survey.sav -i best_of_us_children --treated 'Arts school' --out design.yaml",
    ),
)

_ASKED = (("columns.id", "id"), ("columns.arm", "arm"), ("columns.wave", "wave"), ("arms.treated", "treated"),
          ("columns.clusters", "clusters"), ("covariates", "covariates"))  # fmt: skip


def _split(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


@app.command(
    no_args_is_help=True,
    epilog=example(
        "evaltoolkit design init survey.csv -i ncs_social_mixing --out design.yaml",
        "evaltoolkit design init w1.csv w2.csv -i ncs_social_mixing --waves baseline,post --treated programme --out plan.yaml",
    ),
)
def init(
    data: Annotated[list[Path], typer.Argument(help="One export, or one per wave in wave order.")],
    instrument: Annotated[
        list[str], typer.Option("--instrument", "-i", help="Instrument id or YAML (repeatable).")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the design YAML (must not exist).")] = Path(
        "design.yaml"
    ),
    waves: Annotated[str | None, typer.Option(help="Wave of each file, comma-separated.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Respondent ID column.")] = None,
    wave: Annotated[str | None, typer.Option(help="Wave column (one file holding every wave).")] = None,
    arm: Annotated[str | None, typer.Option(help="Arm (group) column.")] = None,
    treated: Annotated[str | None, typer.Option(help="The programme group's value or label.")] = None,
    control: Annotated[str | None, typer.Option(help="Comparison group value(s), comma-separated.")] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Cluster columns, outermost first, comma-separated.")
    ] = None,
    covariate: Annotated[str | None, typer.Option(help="Covariate columns, comma-separated.")] = None,
    primary: Annotated[str | None, typer.Option(help="Primary outcome scale(s), comma-separated.")] = None,
    name: Annotated[str | None, typer.Option(help="Design name.")] = None,
    title: Annotated[str | None, typer.Option(help="Design title.")] = None,
    interactive: Annotated[
        bool | None,
        typer.Option("--interactive/--no-interactive", help="Ask about each guess (default: in a terminal)."),
    ] = None,
) -> None:
    """Guess id/wave/arm/cluster/covariate columns and the analyses, and write a validated design."""
    from evaltoolkit.io.outputs import refuse_overwriting_inputs
    from evaltoolkit.plan.draft import design_from

    refuse_overwriting_inputs([out], list(data))
    choices: dict[str, Any] = {
        "waves": _split(waves), "id": id, "wave": wave, "arm": arm, "treated": treated, "control": _split(control),
        "clusters": _split(cluster), "covariates": _split(covariate), "primary": _split(primary), "name": name,
        "title": title,
    }  # fmt: skip
    draft = design_from(data, instrument, **choices)
    ask = sys.stdin.isatty() if interactive is None else interactive
    if ask:
        draft = _confirm(draft, data, instrument, choices)
    con = _console()
    con.print("[bold]Guesses[/bold] (check each; every one is also a flag):")
    for g in draft.guesses:
        value = ", ".join(map(str, g.value)) if isinstance(g.value, list) else str(g.value)
        con.print(f"  {g.field}: [bold]{value or '(none)'}[/bold] - {g.reason}")
    d = draft.design
    con.print(
        f"  outcomes: {', '.join(d.outcome_names)} (primary: {', '.join(d.families.get('primary', []))})"
    )
    con.print(f"  analyses: {', '.join(f'{a.type}' for a in d.analyses)} ({d.kind})")
    path = draft.write(out)
    con.print(
        f"Design written to {path}. Next: evaltoolkit score DATA --design {path}, then evaltoolkit analyse."
    )


def _confirm(draft, data, instrument, choices):
    """Ask about each guess (Enter keeps it); draft again with the answers."""
    from evaltoolkit.plan.draft import design_from

    changed = False
    for fld, key in _ASKED:
        guess = next((g for g in draft.guesses if g.field == fld), None)
        shown = (
            ", ".join(map(str, guess.value))
            if guess and isinstance(guess.value, list)
            else (guess.value if guess else "")
        )
        answer = typer.prompt(f"{fld} ({guess.reason if guess else 'none found'})", default=str(shown or ""),
                              show_default=True)  # fmt: skip
        if answer.strip() != str(shown or ""):
            choices[key] = _split(answer) if key in ("clusters", "covariates") else (answer.strip() or None)
            changed = True
    return design_from(data, instrument, **choices) if changed else draft
