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


def _map_file(path: Path) -> dict[str, str]:
    """A mapping file for renamed questions: a CSV with two columns (file column, item code) or a YAML mapping."""
    from evaltoolkit.errors import DataError

    if not path.is_file():
        raise DataError("mapping file not found", file=str(path))
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError:
            raw = None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise DataError(
                "a YAML mapping file must map each file column to an item code (column: item)", file=path.name
            )
        return {str(k): v for k, v in raw.items()}
    import csv

    out: dict[str, str] = {}
    for i, rec in enumerate(csv.reader(text.splitlines()), start=1):
        if not rec or not any(c.strip() for c in rec):
            continue
        if len(rec) < 2 or not rec[0].strip() or not rec[1].strip():
            raise DataError("each row needs a file column and an item code", file=path.name, row=i)
        if i == 1 and rec[0].strip().lower() in ("column", "file_column", "question"):
            continue  # a header row
        out[rec[0].strip()] = rec[1].strip()
    return out


def _mapping(pairs: list[str] | None, map_file: Path | None = None) -> dict[str, str] | None:
    from evaltoolkit.errors import DataError

    if not pairs and map_file is None:
        return None
    out: dict[str, str] = _map_file(map_file) if map_file is not None else {}
    for pair in pairs or []:
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
        from evaltoolkit.plan.run import check_instruments

        dsg = load_design(design)
        check_instruments(
            dsg
        )  # a misspelt instrument or scale in the design stops here, with the closest match
    names = list(instrument or [])
    if not names and dsg is not None:
        names = list(dsg.instruments)
    if not names:
        raise DataError(
            "name at least one --instrument (or a --design that lists its instruments)", field="--instrument"
        )
    return names, dsg


def _read(
    data: list[Path],
    instrument: list[str] | None,
    design: Path | None,
    strict: bool,
    id_col: str | None,
    wave_col: str | None,
    mapping: list[str] | None,
    waves: str | None = None,
    options: dict[str, Any] | None = None,
    map_file: Path | None = None,
):
    """Read and validate one export, or one per wave (linked by ID); in strict mode print the report and exit 1."""
    from evaltoolkit.errors import DataError
    from evaltoolkit.intake.read import read_responses, read_waves

    names, dsg = _instruments(instrument, design)
    kwargs: dict[str, Any] = {
        "mapping": _mapping(mapping, map_file),
        "design": dsg,
        "strict": strict,
        **(options or {}),
    }
    if id_col:
        kwargs["id_col"] = id_col
    try:
        if len(data) > 1 or waves:
            labels = _wave_labels(data, waves, dsg)
            wave_name = (
                wave_col if wave_col and wave_col.lower() != "none" else (dsg.columns.wave if dsg else "wave")
            )
            return read_waves(dict(zip(labels, data, strict=True)), names, wave_col=wave_name, **kwargs)
        if wave_col:
            kwargs["wave_col"] = None if wave_col.lower() == "none" else wave_col
        return read_responses(data[0], names, **kwargs)
    except DataError as exc:
        report = getattr(exc, "report", None)
        if report is None or not strict:
            raise
        con = _console()
        _print_report(con, report)
        con.print(f"[bold red]Strict mode stopped:[/bold red] {exc}")
        raise typer.Exit(code=1) from None


def _wave_labels(data: list[Path], waves: str | None, dsg: Any) -> list[str]:
    """The wave of each file: ``--waves`` (comma-separated), else the design's waves in order, else the file names."""
    from evaltoolkit.errors import UsageError

    if waves:
        labels = [w.strip() for w in waves.split(",") if w.strip()]
        if len(labels) != len(data):
            raise UsageError(
                f"--waves names {len(labels)} wave(s) for {len(data)} file(s); give one wave per file, in order"
            )
        return labels
    if dsg is not None and len(dsg.wave_names) == len(data):
        return list(dsg.wave_names)
    if dsg is not None:
        raise UsageError(
            f"{len(data)} files but the design has {len(dsg.wave_names)} waves ({', '.join(dsg.wave_names)}): "
            "say which wave each file is with --waves"
        )
    return [p.stem for p in data]


def _print_report(con, report, max_issues: int = 20) -> None:
    from rich.table import Table

    con.print(f"[bold]{report.file}[/bold]: {report.n_rows_in} data row(s) read, {report.n_rows_out} kept")
    for note in dict.fromkeys(report.notes):  # one line per distinct note, also when several files were read
        con.print(f"  [dim]{note}[/dim]")
    if report.links is not None and len(report.links):
        lt = Table(title="Waves linked by ID")
        for col in (
            "wave",
            "file",
            "IDs",
            "linked to baseline",
            "unmatched",
            "duplicated",
            "other ID format",
        ):
            lt.add_column(col)
        for r in report.links.itertuples():
            lt.add_row(str(r.wave), r.file, str(r.ids), str(r.linked), str(r.unmatched), str(r.duplicates),
                       str(r.format_differs))  # fmt: skip
        con.print(lt)
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


def _keep(keep: list[str] | None) -> dict[str, bool]:
    """``--keep previews/unfinished/identifiers`` as read_responses options."""
    from evaltoolkit.errors import UsageError

    allowed = ("previews", "unfinished", "identifiers")
    for k in keep or []:
        if k not in allowed:
            raise UsageError(f"--keep takes {', '.join(allowed)}; got '{k}'")
    return {f"keep_{k}": True for k in keep or []}


def _key_path(id_key: Path | None) -> Path:
    import os

    if id_key is not None:
        return id_key
    if os.environ.get("EVALTOOLKIT_ID_KEY"):
        return Path(os.environ["EVALTOOLKIT_ID_KEY"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "evaltoolkit" / "id.key"


def _shareable(data, id_name: str, raw_ids: bool, id_key: Path | None):
    """Scored data without platform bookkeeping columns, with pseudonymous IDs unless ``raw_ids``."""
    from evaltoolkit.intake.identifiers import load_or_create_key, pseudonymise
    from evaltoolkit.intake.platforms import is_metadata

    table = data.drop(columns=[c for c in data.columns if is_metadata(c)])
    if raw_ids or id_name not in table.columns:
        return table, ""
    path = _key_path(id_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key, created = load_or_create_key(path)
    table[id_name] = pseudonymise(table[id_name], key).to_numpy()
    made = "a new key, written to" if created else "the key in"
    return table, (
        f"IDs in scored.csv are pseudonyms made with {made} {path}: keep that file private; the same key gives the "
        "same pseudonyms, so waves scored apart still link (--raw-ids keeps the original IDs)."
    )


# options shared by `validate` and `score`
DataArg = Annotated[
    list[Path],
    typer.Argument(
        help=f"Survey export(s) ({suffix_list()}; Qualtrics and Kobo layouts recognised): one file, or one per wave "
        "in wave order (IDs are linked to the first)."
    ),
]
WavesOpt = Annotated[
    str | None,
    typer.Option(help="The wave of each file, comma-separated (default: the design's waves in order)."),
]
MapFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="Mapping file for renamed questions: CSV (file column, item code) or YAML (column: item)."
    ),
]
KeepOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--keep",
        help="Keep what is left out by default: 'previews' (Qualtrics preview/test responses), 'unfinished', "
        "'identifiers' (columns that identify people). Repeatable.",
    ),
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
    waves: WavesOpt = None,
    keep: KeepOpt = None,
    map_file: MapFileOpt = None,
) -> None:
    """Check a survey export (or one per wave) against instruments: every problem with its column and row."""
    data_out, report = _read(
        data, instrument, design, strict, id_col, wave_col, map, waves, _keep(keep), map_file
    )
    del data_out
    con = _console()
    _print_report(con, report)
    if out is not None:
        target = out if out.suffix.lower() == ".csv" else out / "validation_issues.csv"
        refuse_overwriting_inputs([target], [*data, design])
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
    waves: WavesOpt = None,
    keep: KeepOpt = None,
    map_file: MapFileOpt = None,
    raw_ids: Annotated[
        bool, typer.Option(help="Write the respondents' own IDs to scored.csv (default: pseudonymous IDs).")
    ] = False,
    id_key: Annotated[
        Path | None,
        typer.Option(
            help="Key file for pseudonymous IDs (created if absent; default: $EVALTOOLKIT_ID_KEY or "
            "~/.config/evaltoolkit/id.key). The same key gives the same pseudonyms, so waves scored apart still link."
        ),
    ] = None,
) -> None:
    """Validate, score the scales (reverse keys, minimum items) and report reliability by wave and arm.

    scored.csv holds the design columns, items and scale scores, with pseudonymous IDs; columns that identify
    people and the platforms' bookkeeping columns are left out.
    """
    import warnings

    from rich.table import Table

    from evaltoolkit.errors import EvalToolkitWarning
    from evaltoolkit.scoring.reliability import DEFAULT_BY, reliability
    from evaltoolkit.scoring.scales import score

    names, dsg = _instruments(instrument, design)
    files = ("scored.csv", "reliability.csv", "reliability_items.csv", "validation_issues.csv")
    refuse_overwriting_inputs([out / f for f in files], [*data, design])
    clean, report = _read(
        data, instrument, design, strict, id_col, wave_col, map, waves, _keep(keep), map_file
    )
    con = _console()
    _print_report(con, report, max_issues=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvalToolkitWarning)
        scored = score(clean, names, standardise=standardise, by=by or None)
        rel = reliability(clean, names, by=tuple(by) if by else DEFAULT_BY)
    ids = id_col or (dsg.columns.id if dsg is not None else "id")
    table, id_note = _shareable(scored.data, ids, raw_ids, id_key)
    write_csv(table, out / "scored.csv")
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
    if id_note:
        con.print(id_note)
    con.print(f"Written: {out / 'scored.csv'}, {out / 'reliability.csv'}, {out / 'reliability_items.csv'}, "
              f"{out / 'validation_issues.csv'}")  # fmt: skip
