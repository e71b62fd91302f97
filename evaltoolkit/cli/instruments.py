"""``evaltoolkit instruments list|show|export``: browse the item library and export questionnaires.

Wire it into the main CLI with ``app.add_typer(instruments_cmd.app, name="instruments")``.
Only typer is imported at start-up; the instrument and export modules are imported inside
the commands. Errors are raised as :class:`~evaltoolkit.errors.InstrumentError`, which the
main CLI prints as one line.

Examples
--------
>>> from typer.testing import CliRunner
>>> result = CliRunner().invoke(app, ["show", "best_of_us_children"])
>>> "V-seed" in result.output
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evaltoolkit.cli.common import console as _console
from evaltoolkit.cli.common import example

app = typer.Typer(
    name="instruments",
    help="Browse the bundled instrument library and export questionnaires (XLSForm, HTML, codebook).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=example("evaltoolkit instruments list", "evaltoolkit instruments show ncs_social_mixing"),
)

_MARK_STYLE = {
    "V": "green",
    "V-seed": "green",
    "V-secondary": "cyan",
    "R": "bold red",
    "user": "bold magenta",
}


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """Parse repeated ``key=value`` options."""
    from evaltoolkit.errors import InstrumentError

    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key.strip():
            raise InstrumentError(f"{option} expects key=value, got {v!r}", field=option)
        out[key.strip()] = val
    return out


@app.command("list", epilog=example("evaltoolkit instruments list"))
def list_cmd() -> None:
    """List the bundled instruments with their item counts and how many items are unverified."""
    from rich.table import Table

    from evaltoolkit.instruments.library import list_instruments

    df = list_instruments()
    table = Table(title="Bundled instruments", show_lines=False)
    for col, just in [
        ("id", "left"),
        ("version", "left"),
        ("title", "left"),
        ("items", "right"),
        ("scales", "right"),
        ("recalled (R)", "right"),
        ("user slots", "right"),
    ]:
        table.add_column(col, justify=just, no_wrap=col == "id")  # type: ignore[arg-type]
    for r in df.itertuples(index=False):
        n_r = r.n_unverified - r.n_user_slots
        table.add_row(
            r.id,
            r.version,
            r.title,
            str(r.n_items),
            str(r.n_scales),
            f"[red]{n_r}[/red]" if n_r else "0",
            f"[magenta]{r.n_user_slots}[/magenta]" if r.n_user_slots else "0",
        )
    con = _console()
    con.print(table)
    con.print("Show one with: evaltoolkit instruments show ID")


@app.command("show", epilog=example("evaltoolkit instruments show best_of_us_children -p place=Ramsgate"))
def show_cmd(
    name: Annotated[str, typer.Argument(help="Instrument id or path to a YAML file.")],
    placeholder: Annotated[
        list[str] | None,
        typer.Option("--placeholder", "-p", help="Fill a placeholder, e.g. -p place=Ramsgate."),
    ] = None,
    sources: Annotated[bool, typer.Option(help="Show each item's source and licence.")] = True,
) -> None:
    """Show an instrument: every item with its verification mark, response scales and scales."""
    from rich.table import Table

    from evaltoolkit.instruments.library import VERIFIED_MARKS, load_instrument

    inst = load_instrument(name)
    values = _pairs(placeholder, "--placeholder")
    unknown = sorted(set(values) - set(inst.placeholders))
    if unknown:
        from evaltoolkit.errors import InstrumentError

        raise InstrumentError(
            f"unknown placeholder(s) {unknown}; '{inst.id}' uses: {', '.join(inst.placeholders) or 'none'}",
            field="placeholder",
        )
    con = _console()
    con.print(f"[bold]{inst.title}[/bold]  ({inst.id}, version {inst.version})")
    con.print(f"Construct: {inst.construct}")
    if inst.description:
        con.print(inst.description)
    if inst.placeholders:
        con.print(
            "Placeholders: "
            + "; ".join(f"{{{k}}} = {values.get(k, v)!r}" for k, v in inst.placeholders.items())
        )
    table = Table(title="Items", show_lines=True)
    table.add_column("code", no_wrap=True)
    table.add_column("mark", no_wrap=True)
    table.add_column("wording")
    table.add_column("scale", no_wrap=True)
    table.add_column("rev")
    if sources:
        table.add_column("source / licence")
    for it in inst.items:
        style = _MARK_STYLE.get(it.verified, "")
        row = [
            it.code,
            f"[{style}]{it.verified}[/{style}]",
            inst.wording(it.code, **values),
            it.response_scale,
            "yes" if it.reverse else "",
        ]
        if sources:
            row.append(f"{it.source}\n[dim]{it.licence}[/dim]")
        table.add_row(*row)
    con.print(table)
    rs_table = Table(title="Response scales")
    for col in ("name", "type", "codes", "missing"):
        rs_table.add_column(col)
    for rname, rs in inst.response_scales.items():
        if rs.type == "numeric":
            codes = f"{rs.min_code}-{rs.max_code}"
            if rs.labels:
                codes += " (" + "; ".join(f"{c}={lab}" for c, lab in sorted(rs.labels.items())) + ")"
        else:
            codes = "; ".join(f"{c}={lab}" for c, lab in sorted(rs.labels.items()))
        missing = "; ".join(f"{c}={lab}" for c, lab in sorted(rs.missing.items()))
        rs_table.add_row(rname, rs.type, codes, missing)
    con.print(rs_table)
    if inst.scales:
        sc_table = Table(title="Scales")
        for col in ("id", "label", "items", "method", "min items"):
            sc_table.add_column(col)
        for sc in inst.scales:
            items = ", ".join(("-" if inst.item(c).reverse else "") + c for c in sc.items)
            sc_table.add_row(sc.id, sc.label, items, sc.method, str(sc.min_items))
        con.print(sc_table)
    counts = {m: sum(it.verified == m for it in inst.items) for m in VERIFIED_MARKS}
    con.print("Marks: " + "; ".join(f"{m} = {VERIFIED_MARKS[m]} ({n})" for m, n in counts.items() if n))
    if counts["R"]:
        con.print(
            f"[red]{counts['R']} item(s) are recalled (R): check the wording against the source before fielding.[/red]"
        )
    if inst.unfilled_slots():
        con.print(
            f"[magenta]{len(inst.unfilled_slots())} user slot(s) need your wording: "
            f"{', '.join(inst.unfilled_slots())} (export with --fill code='wording').[/magenta]"
        )


@app.command(
    "export",
    epilog=example(
        "evaltoolkit instruments export ncs_social_mixing best_of_us_children -p place=Ramsgate --out questionnaire"
    ),
)
def export_cmd(
    names: Annotated[list[str], typer.Argument(help="Instrument ids or YAML paths, in questionnaire order.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("questionnaire"),
    fmt: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="xlsform, html, review, codebook (repeat or comma-separate; default all but review).",
        ),
    ] = None,
    placeholder: Annotated[
        list[str] | None,
        typer.Option("--placeholder", "-p", help="Fill a placeholder, e.g. -p place=Ramsgate."),
    ] = None,
    fill: Annotated[
        list[str] | None, typer.Option("--fill", help="Supply a user slot's wording: --fill code='wording'.")
    ] = None,
    slots: Annotated[
        str, typer.Option(help="Unfilled user slots: omit (warn), keep (print the instruction) or error.")
    ] = "omit",
    name: Annotated[str | None, typer.Option(help="File name stem (default: the instrument ids).")] = None,
    title: Annotated[str | None, typer.Option(help="Form title (XLSForm settings).")] = None,
    form_id: Annotated[str | None, typer.Option(help="Form id (XLSForm settings).")] = None,
    required: Annotated[bool, typer.Option(help="Make every question required in the XLSForm.")] = False,
) -> None:
    """Export a questionnaire: XLSForm for KoboToolbox/ODK, printable HTML and a codebook (CSV + Markdown)."""
    import warnings

    from evaltoolkit.instruments.export import export_questionnaire

    formats = [f.strip() for v in (fmt or ["xlsform,html,codebook"]) for f in v.split(",") if f.strip()]
    con = _console()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = export_questionnaire(
            names,
            out,
            formats=formats,
            name=name,
            placeholders=_pairs(placeholder, "--placeholder"),
            fill=_pairs(fill, "--fill"),
            slots=slots,  # type: ignore[arg-type]
            form_title=title,
            form_id=form_id,
            required=required,
        )
    for w in caught:
        con.print(f"[yellow]warning:[/yellow] {w.message}")
    for kind, p in paths.items():
        con.print(f"{kind}: {p.resolve()}")
