"""``evaltoolkit validate`` and ``evaltoolkit score``: check a survey export, then score it.

The two commands are plain functions; wire them into the main CLI with
``app.command("validate")(validate_cmd)`` and ``app.command("score")(score_cmd)``.
Only typer is imported at start-up; pandas and the intake modules are imported inside.

Exit codes: 0 when the file was read (problems, if any, are listed); 1 when ``--strict``
found a problem; deliberate errors (unreadable file, unknown instrument) are raised as
:class:`~evaltoolkit.errors.EvalToolkitError` for the main CLI to print (status 2).

Examples
--------
>>> import pathlib, tempfile, typer
>>> from typer.testing import CliRunner
>>> app = typer.Typer()
>>> _ = app.command("validate")(validate_cmd)
>>> _ = app.command("score")(score_cmd)
>>> p = pathlib.Path(tempfile.mkdtemp()) / "w1.csv"
>>> _ = p.write_text("id,ncs_getalong\\n1,Agree\\n2,9\\n")
>>> res = CliRunner().invoke(app, ["validate", str(p), "--instrument", "ncs_social_mixing", "--strict"])
>>> res.exit_code
1
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from evaltoolkit.cli.common import console as _console
from evaltoolkit.io.outputs import refuse_overwriting_inputs, write_csv
from evaltoolkit.io.readers import suffix_list

__all__ = ["score_cmd", "validate_cmd"]

_SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _mapping(pairs: list[str] | None) -> dict[str, str] | None:
    from evaltoolkit.errors import DataError

    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise DataError(f"--map expects FILE_COLUMN=ITEM_CODE, got {pair!r}", field="--map")
        out[src.strip()] = dst.strip()
    return out


def _instruments(instrument: list[str] | None, design: Path | None) -> tuple[list[str], Any]:
    from evaltoolkit.errors import DataError

    dsg = None
    if design is not None:
        from evaltoolkit.design.schema import load_design

        dsg = load_design(design)
    names = list(instrument or [])
    if not names and dsg is not None:
        names = list(dsg.instruments)
    if not names:
        raise DataError(
            "name at least one --instrument (or a --design that lists its instruments)", field="--instrument"
        )
    return names, dsg


def _read(
    data: Path,
    instrument: list[str] | None,
    design: Path | None,
    strict: bool,
    id_col: str | None,
    wave_col: str | None,
    mapping: list[str] | None,
):
    """Read and validate; in strict mode print the report and exit 1 on the first problem."""
    from evaltoolkit.errors import DataError
    from evaltoolkit.intake.read import read_responses

    names, dsg = _instruments(instrument, design)
    kwargs: dict[str, Any] = {"mapping": _mapping(mapping), "design": dsg, "strict": strict}
    if id_col:
        kwargs["id_col"] = id_col
    if wave_col:
        kwargs["wave_col"] = None if wave_col.lower() == "none" else wave_col
    try:
        return read_responses(data, names, **kwargs)
    except DataError as exc:
        report = getattr(exc, "report", None)
        if report is None:
            raise
        con = _console()
        _print_report(con, report)
        con.print(f"[bold red]Strict mode stopped:[/bold red] {exc}")
        raise typer.Exit(code=1) from None


def _print_report(con, report, max_issues: int = 20) -> None:
    from rich.table import Table

    con.print(f"[bold]{report.file}[/bold]: {report.n_rows_in} data row(s) read, {report.n_rows_out} kept")
    for note in report.notes:
        con.print(f"  [dim]{note}[/dim]")
    counts = report.counts()
    if counts.empty:
        con.print("[green]No problems found.[/green]")
        return
    t = Table(title="Problems by type", show_lines=False)
    for col in ("severity", "problem", "n", "columns"):
        t.add_column(col, justify="right" if col == "n" else "left")
    for r in counts.itertuples():
        style = _SEV_STYLE.get(r.severity, "")
        t.add_row(f"[{style}]{r.severity}[/{style}]", r.problem, str(r.n), r.columns)
    con.print(t)
    serious = report.issues[report.issues["severity"] != "info"]
    if len(serious):
        t2 = Table(title=f"First {min(max_issues, len(serious))} of {len(serious)} errors and warnings")
        for col in ("column", "row", "value", "problem", "detail"):
            t2.add_column(col)
        for r in serious.head(max_issues).itertuples():
            t2.add_row(
                str(r.column),
                "" if r.row is None or str(r.row) == "<NA>" else str(r.row),
                str(r.value)[:30],
                r.problem,
                str(r.detail)[:70],
            )
        con.print(t2)


def _issues_path(out: Path, default_name: str) -> Path:
    if out.suffix.lower() == ".csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / default_name


# options shared by `validate` and `score`
DataArg = Annotated[
    Path, typer.Argument(help=f"Survey export ({suffix_list()}; Qualtrics and Kobo layouts recognised).")
]
InstrumentOpt = Annotated[
    list[str] | None, typer.Option("--instrument", "-i", help="Instrument id or YAML path (repeatable).")
]
DesignOpt = Annotated[Path | None, typer.Option(help="Design YAML (or bundled name): columns, waves, arms.")]
IdColOpt = Annotated[str | None, typer.Option(help="Respondent ID column (default: design's, else 'id').")]
WaveColOpt = Annotated[str | None, typer.Option(help="Wave column ('none' for a single-wave file).")]
MapOpt = Annotated[list[str] | None, typer.Option("--map", help="FILE_COLUMN=ITEM_CODE (repeatable).")]


def validate_cmd(
    data: DataArg,
    instrument: InstrumentOpt = None,
    design: DesignOpt = None,
    strict: Annotated[bool, typer.Option(help="Stop with exit code 1 at the first problem class.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write all issues to this CSV file (or folder).")] = None,
    id_col: IdColOpt = None,
    wave_col: WaveColOpt = None,
    map: MapOpt = None,
) -> None:
    """Check a survey export against instruments: every problem with its column and row."""
    data_out, report = _read(data, instrument, design, strict, id_col, wave_col, map)
    del data_out
    con = _console()
    _print_report(con, report)
    if out is not None:
        target = out if out.suffix.lower() == ".csv" else out / "validation_issues.csv"
        refuse_overwriting_inputs([target], [data, design])
        path = report.to_csv(_issues_path(out, "validation_issues.csv"))
        con.print(f"All {len(report.issues)} issue(s) written to {path}")


def score_cmd(
    data: DataArg,
    instrument: InstrumentOpt = None,
    design: DesignOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for scored.csv, reliability.csv and the issues.")] = Path(
        "evaltoolkit-scores"
    ),
    strict: Annotated[
        bool, typer.Option(help="Stop with exit code 1 if validation finds a problem.")
    ] = False,
    standardise: Annotated[bool, typer.Option(help="Add standardised <scale>_z columns.")] = False,
    by: Annotated[
        list[str] | None,
        typer.Option(help="Reliability (and standardisation) groups (default: wave and arm)."),
    ] = None,
    id_col: IdColOpt = None,
    wave_col: WaveColOpt = None,
    map: MapOpt = None,
) -> None:
    """Validate, score the scales (reverse keys, minimum items) and report reliability by wave and arm."""
    import warnings

    from rich.table import Table

    from evaltoolkit.errors import EvalToolkitWarning
    from evaltoolkit.scoring.reliability import DEFAULT_BY, reliability
    from evaltoolkit.scoring.scales import score

    names, _ = _instruments(instrument, design)
    files = ("scored.csv", "reliability.csv", "reliability_items.csv", "validation_issues.csv")
    refuse_overwriting_inputs([out / f for f in files], [data, design])
    clean, report = _read(data, instrument, design, strict, id_col, wave_col, map)
    con = _console()
    _print_report(con, report, max_issues=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvalToolkitWarning)
        scored = score(clean, names, standardise=standardise, by=by or None)
        rel = reliability(clean, names, by=tuple(by) if by else DEFAULT_BY)
    write_csv(scored.data, out / "scored.csv")
    write_csv(rel.scales, out / "reliability.csv", index=False)
    write_csv(rel.items, out / "reliability_items.csv", index=False)
    report.to_csv(out / "validation_issues.csv")

    t = Table(title="Scale scores")
    for col in ("scale", "method", "items", "min items", "scored", "NA (min items)", "mean", "sd"):
        t.add_column(col)
    for r in scored.scales.itertuples():
        t.add_row(
            r.scale, r.method, str(r.n_items), str(r.min_items), str(r.n_scored), str(r.n_below_min_items),
            f"{r.mean:.2f}", f"{r.sd:.2f}",
        )  # fmt: skip
    con.print(t)
    t2 = Table(title=f"Reliability (flag: below {rel.threshold:g})")
    for col in ("scale", *rel.by, "n", "alpha (95% CI)", "omega", "flag"):
        t2.add_column(col)
    for _, r in rel.scales.iterrows():
        alpha = (
            "" if r["alpha"] != r["alpha"] else f"{r['alpha']:.2f} ({r['ci_lower']:.2f}-{r['ci_upper']:.2f})"
        )
        omega = "" if r["omega_total"] != r["omega_total"] else f"{r['omega_total']:.2f}"
        flag = "[red]LOW[/red]" if r["flag"] else (r["note"] or "")
        t2.add_row(str(r["scale"]), *(str(r[b]) for b in rel.by), str(r["n"]), alpha, omega, flag)
    con.print(t2)
    for w in caught:
        con.print(f"[yellow]caution:[/yellow] {w.message}")
    con.print(f"Written: {out / 'scored.csv'}, {out / 'reliability.csv'}, {out / 'reliability_items.csv'}, "
              f"{out / 'validation_issues.csv'}")  # fmt: skip
