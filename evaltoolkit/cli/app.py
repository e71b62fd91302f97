"""The ``evaltoolkit`` command line.

Usage errors (a missing argument or option, an unknown command or option, a value of the wrong type) print
the usual short usage message and exit with status 2. Every deliberate error
(:class:`~evaltoolkit.errors.EvalToolkitError`: a file, column or design field that is wrong) is printed as
one plain line and also exits with 2; anything unexpected prints one line and exits with 3. When the report was
written but the design's primary analysis failed, ``analyse`` and ``demo`` exit with 1. Only
``-v/--verbose`` shows a traceback (for bug reports). ``-q/--quiet`` prints errors and cautions only.
Heavy libraries are imported inside commands so ``evaltoolkit --help`` stays fast.

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
evaltoolkit 0...
0
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from evaltoolkit.cli.common import STATE, example
from evaltoolkit.cli.common import console as _console
from evaltoolkit.cli.common import err_console as _err_console
from evaltoolkit.cli.common import progress as _progress
from evaltoolkit.io.outputs import refuse_overwriting_inputs, write_csv, write_excel, write_text
from evaltoolkit.io.readers import suffix_list


def plain_errors(fn: Callable) -> Callable:
    """Wrap a command so a deliberate error is one plain line on stderr and an exit status, wherever the app runs.

    :class:`~evaltoolkit.errors.AnalysisFailed` and :class:`~evaltoolkit.errors.StrictStop` exit with 1, any other
    :class:`~evaltoolkit.errors.EvalToolkitError` with 2; ``-v`` adds the traceback. Done inside the command (not
    only in :func:`main`) so the app behaves the same when a test or notebook invokes it directly.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from evaltoolkit.errors import AnalysisFailed, EvalToolkitError, StrictStop

        try:
            return fn(*args, **kwargs)
        except EvalToolkitError as exc:
            if STATE.verbose:
                import traceback

                traceback.print_exc()
            _err_console().print(f"[red]error:[/red] {_escape(' '.join(str(exc).split()))}")
            raise typer.Exit(1 if isinstance(exc, AnalysisFailed | StrictStop) else 2) from None
        except (FileExistsError, NotADirectoryError, PermissionError) as exc:
            # the file system refused an output (--out names a file, or a folder that cannot be written)
            if STATE.verbose:
                import traceback

                traceback.print_exc()
            what = "is a file, not a folder" if not isinstance(exc, PermissionError) else "cannot be written"
            where = exc.filename or "the output"
            _err_console().print(
                f"[red]error:[/red] {_escape(str(where))}: {what}; choose another --out "
                "(evaltoolkit never changes an input file)"
            )
            raise typer.Exit(2) from None

    return wrapper


app = typer.Typer(
    name="evaltoolkit",
    help="Evaluate social-mixing (contact theory) programmes: simulate, analyse and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=example(
        "evaltoolkit demo", "evaltoolkit analyse scored.csv --design ncs_prepost_control --out report"
    ),
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evaltoolkit")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        from evaltoolkit import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        print(f"evaltoolkit {_version()}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only errors and cautions (no progress, no summaries)."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the full traceback of any error (for bug reports).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """Evaluate social-mixing (contact theory) programmes: simulate, analyse and report."""
    STATE.quiet = quiet
    STATE.verbose = verbose


def _analyse_and_report(
    study, out: Path, title: str | None = None, seed: int = 20240601, *, strict: bool = False,
    rows_in_file: int | None = None, pdf: bool = False, extras: dict | None = None,
) -> dict[str, Path]:  # fmt: skip
    import traceback

    from evaltoolkit.errors import AnalysisFailed
    from evaltoolkit.plan.run import run_plan
    from evaltoolkit.report.render import write_report

    with _progress() as progress:
        task = progress.add_task("Running the analysis plan...", total=None)
        results = run_plan(study, seed=seed, strict=strict)
        if rows_in_file is not None:
            results.extras["rows_in_file"] = rows_in_file
        results.extras.update(extras or {})
        progress.update(task, description="Writing the report...")
        paths = write_report(results, out, title=title, pdf=pdf)
    con = _console()
    for sentence in results.headline:
        con.print(f"• {sentence}")
    if results.warnings:
        _err_console().print(f"[yellow]{len(results.warnings)} caution(s) - see the report.[/yellow]")
    failed = set(results.extras.get("failed", []))
    primary = [a.id for a in results.design.analyses if a.primary and a.id in failed]
    if STATE.verbose:
        for exc in results.extras.get("unexpected_errors", []):
            traceback.print_exception(exc)
    if primary:
        reasons = results.extras.get("failure_reasons", {})
        why = "; ".join(f"{p!r}: {reasons[p]}" for p in primary if p in reasons)
        raise AnalysisFailed(
            f"the primary analysis {', '.join(repr(p) for p in primary)} could not be completed"
            + (f" ({why.rstrip('.')})" if why else "")
            + f"; the report ({paths['report']}) says why, and the other analyses are in it",
            file=study.source,
        )
    return paths


def _refuse_file_as_folder(out: Path) -> None:
    """``--out`` names a folder: an existing file there (perhaps the input itself) is refused before any work."""
    from evaltoolkit.errors import UsageError

    if out.exists() and not out.is_dir():
        raise UsageError(
            f"--out {out} is a file; give a folder for the outputs (evaltoolkit never changes an input file)"
        )


@app.command(
    epilog=example(
        "evaltoolkit demo --out my-demo --n 1500 --seed 7",
        "evaltoolkit demo --design best_of_us_children --out bou-demo",
    )
)
@plain_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the report and tables.")] = Path("evaltoolkit-demo"),
    n: Annotated[int | None, typer.Option(help="People at baseline (default: the design's).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2024,
    design_name: Annotated[
        str,
        typer.Option(
            "--design",
            help="Bundled design to simulate: ncs_prepost_control (NCS, many teams) or best_of_us_children "
            "(three schools: what so few clusters can and cannot show).",
        ),
    ] = "ncs_prepost_control",
) -> None:
    """Simulate a bundled example study (the NCS-style one by default), analyse it as planned and write a report."""
    from evaltoolkit.design.schema import load_design
    from evaltoolkit.design.study import Study
    from evaltoolkit.simulate.study import simulate_study

    design = load_design(design_name)
    with _progress() as progress:
        progress.add_task("Simulating the example study...", total=None)
        sim = simulate_study(design, n=n, seed=seed)
    write_csv(sim.data, out / "simulated_data.csv", index=False)
    write_csv(sim.truth, out / "true_effects.csv", index=False)
    study = Study(sim.design, sim.data, source="simulated_data.csv")
    paths = _analyse_and_report(study, out, title=f"{design.title} (simulated example)", seed=seed, pdf=True)
    con = _console()
    con.print(f"Report:    {paths['report'].resolve()}")
    con.print(f"Estimates: {paths['estimates'].resolve()}")
    con.print(
        f"Simulated data (with the true effects in true_effects.csv): {(out / 'simulated_data.csv').resolve()}"
    )


@app.command(
    epilog=example("evaltoolkit simulate --design ncs_prepost_control --out study.csv --n 1200 --seed 1")
)
@plain_errors
def simulate(
    design: Annotated[str, typer.Option(help="Bundled design name or path to a design YAML.")],
    out: Annotated[Path, typer.Option(help="Output data file (.csv or .xlsx).")],
    n: Annotated[int | None, typer.Option(help="People at baseline.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    export: Annotated[
        str | None,
        typer.Option(
            help="Write the design's questionnaire, answered, as survey exports into the --out folder: kobo, "
            "kobo-labels, kobo-xlsx, qualtrics, qualtrics-text, spss or stata (practice data for design init, "
            "score and analyse)."
        ),
    ] = None,
) -> None:
    """Simulate a study from a design's simulation block; the true effects go beside it (*.truth.csv)."""
    from evaltoolkit.design.schema import load_design
    from evaltoolkit.errors import DesignError
    from evaltoolkit.simulate.study import simulate_study

    if n is not None and n < 0:
        raise DesignError(f"n must be a positive number of people (got {n})", field="n")
    if export is not None:
        from evaltoolkit.simulate.surveys import EXPORT_FORMATS, simulate_exports

        if export not in EXPORT_FORMATS:
            from evaltoolkit.errors import UsageError

            raise UsageError(f"--export takes one of {', '.join(EXPORT_FORMATS)}; got '{export}'")
        if out.exists() and not out.is_dir():
            from evaltoolkit.errors import UsageError

            raise UsageError(f"with --export, --out is a folder, but {out} is a file", file=str(out))
        with _progress() as progress:
            progress.add_task("Simulating...", total=None)
            files = simulate_exports(load_design(design), out, format=export, n=n, seed=seed)  # type: ignore[arg-type]
        _console().print(f"Wrote {len(files)} {export} export(s): {', '.join(str(f) for f in files)}")
        return
    with _progress() as progress:
        progress.add_task("Simulating...", total=None)
        sim = simulate_study(load_design(design), n=n, seed=seed)
    truth = out.with_name(out.stem + ".truth.csv")
    refuse_overwriting_inputs([out, truth], [Path(design)])
    if out.suffix.lower() in (".xlsx", ".xls"):
        write_excel(sim.data, out, index=False)
    else:
        write_csv(sim.data, out, index=False)
    write_csv(sim.truth, truth, index=False)
    con = _console()
    con.print(
        f"Wrote {len(sim.data):,} rows ({sim.n_people:,} people at baseline) to {out}; true effects in {truth}."
    )


@app.command(
    epilog=example(
        "evaltoolkit simulate --design ncs_prepost_control --out study.csv --seed 1",
        "evaltoolkit analyse study.csv --design ncs_prepost_control --out report",
    )
)
@plain_errors
def analyse(
    data: Annotated[Path, typer.Argument(help=f"Scored data ({suffix_list()}).")],
    design: Annotated[str, typer.Option(help="Bundled design name or path to a design YAML.")],
    out: Annotated[Path, typer.Option(help="Folder for report.html and estimates.csv.")] = Path(
        "evaltoolkit-report"
    ),
    seed: Annotated[int, typer.Option(help="Random seed for bootstraps and samplers.")] = 20240601,
    strict: Annotated[
        bool,
        typer.Option(
            help="Stop (exit 1) at a missing-value code or out-of-range value in an outcome, mediator or "
            "moderator, instead of setting it to missing with a caution."
        ),
    ] = False,
    pdf: Annotated[bool, typer.Option(help="Also print report.pdf (A4) through headless Chromium.")] = False,
    registered: Annotated[
        Path | None,
        typer.Option(
            help="The registered plan (plan.json from 'plan export', or a design YAML): list deviations."
        ),
    ] = None,
) -> None:
    """Run a design's analysis plan on DATA and write DIR/report.html, estimates.csv/.xlsx and summary.docx."""
    from evaltoolkit.design.schema import load_design
    from evaltoolkit.design.study import Study
    from evaltoolkit.io.readers import read_table
    from evaltoolkit.plan.deviations import load_registered

    d = load_design(design)
    extras = {"registered_plan": load_registered(registered)} if registered is not None else {}
    _refuse_file_as_folder(out)
    refuse_overwriting_inputs(
        [
            out / n
            for n in (
                "report.html",
                "estimates.csv",
                "estimates.xlsx",
                "results.json",
                "summary.docx",
                "report.pdf",
            )
        ],
        [data, Path(design), registered],
    )  # before any work: nothing is lost if the answer is no
    frame = read_table(data)
    study = Study(d, frame, source=str(data))
    rows = len(frame) + int(frame.attrs.get("blank_rows", 0))
    paths = _analyse_and_report(
        study, out, seed=seed, strict=strict, rows_in_file=rows, pdf=pdf, extras=extras
    )
    _console().print(f"Report: {paths['report'].resolve()}\nEstimates: {paths['estimates'].resolve()}")


@app.command(
    "power",
    epilog=example(
        "evaltoolkit power --effect 0.2 --power 0.8 --assignment cluster --cluster-size 12 --icc 0.05",
        "evaltoolkit power --design ncs_prepost_control --n 1200 --sims 200",
    ),
)
@plain_errors
def power_cmd(
    effect: Annotated[
        float | None, typer.Option(help="Standardised effect (SD units); omit to get the MDES.")
    ] = None,
    n: Annotated[float | None, typer.Option(help="People at baseline; omit to solve for it.")] = None,
    power: Annotated[float | None, typer.Option(help="Target power; omit to compute it.")] = None,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    assignment: Annotated[
        str, typer.Option(help="individual or cluster (whole schools/sites assigned).")
    ] = "individual",
    clusters: Annotated[float | None, typer.Option(help="Clusters (cluster assignment).")] = None,
    cluster_size: Annotated[float, typer.Option(help="People per team or cluster.")] = 1.0,
    icc: Annotated[float, typer.Option(help="Intra-cluster correlation.")] = 0.0,
    pre_post_corr: Annotated[float, typer.Option(help="Baseline-follow-up correlation.")] = 0.0,
    analysis: Annotated[str, typer.Option(help="posttest, ancova or did.")] = "posttest",
    treated_share: Annotated[float, typer.Option(help="Share in the programme arm.")] = 0.5,
    attrition: Annotated[float, typer.Option(help="Share of baseline people not analysed.")] = 0.0,
    design: Annotated[
        str | None, typer.Option(help="Simulate this design instead of using the formula.")
    ] = None,
    sims: Annotated[int, typer.Option(help="Simulated studies (with --design).")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (with --design).")] = 0,
    outcome: Annotated[str | None, typer.Option(help="Outcome to simulate (with --design).")] = None,
) -> None:
    """Minimum detectable effect, sample size or power - by formula, or by simulating a design (--design)."""
    from evaltoolkit.errors import DesignError
    from evaltoolkit.plan.power import power as solve
    from evaltoolkit.plan.power import simulate_power

    con = _console()
    if design is not None:
        if n is None:
            raise DesignError("give --n (people at baseline) to simulate a design", field="n")
        from rich.progress import Progress

        with Progress(transient=True, disable=STATE.quiet) as progress:
            task = progress.add_task(f"Simulating {sims} studies...", total=sims)
            res = simulate_power(
                design, n=int(n), outcome=outcome, n_sims=sims, seed=seed, alpha=alpha,
                progress=lambda k: progress.update(task, completed=k),
            )  # fmt: skip
        con.print(res.summary())
        return
    res = solve(
        effect=effect, n=n, power=power, alpha=alpha, assignment=assignment, n_clusters=clusters,
        cluster_size=cluster_size, icc=icc, pre_post_corr=pre_post_corr, analysis=analysis,
        treated_share=treated_share, attrition=attrition,
    )  # fmt: skip
    con.print(res.summary())


@app.command(
    epilog=example(
        'evaltoolkit report evaltoolkit-demo --title "NCS 2026: re-rendered"',
        "evaltoolkit report site-a site-b --out pooled",
    )
)
@plain_errors
def report(
    results: Annotated[
        list[Path], typer.Argument(help="Results folder(s) written by 'evaltoolkit analyse'.")
    ],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: re-render in place).")] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
) -> None:
    """Re-render a saved report (one folder), or pool several studies' results by meta-analysis."""
    from evaltoolkit.errors import DataError
    from evaltoolkit.plan.pool import read_results
    from evaltoolkit.report.pooled import pooled_context
    from evaltoolkit.report.render import load_context, render_context, save_context

    if len(results) == 1:
        folder = results[0]
        _, ctx = read_results(folder)
        if not ctx:
            raise DataError(
                "no results.json here (written by 'evaltoolkit analyse' from version 0.1)", file=str(folder)
            )
        ctx = load_context(folder, ctx)
        if title:
            ctx["title"] = title
        target = out or folder
        refuse_overwriting_inputs(
            [target / "report.html"], [folder / "estimates.csv", folder / "results.json"]
        )
        write_text(target / "report.html", render_context(ctx))
        _console().print(f"Report: {(target / 'report.html').resolve()}")
        return
    studies = {}
    for folder in results:
        est, ctx = read_results(folder)
        label = folder.name
        studies[label] = est
    ctx, pooled = pooled_context(studies, title=title)
    target = out or Path("evaltoolkit-pooled")
    outputs = [target / "report.html", target / "estimates.csv", target / "results.json"]
    refuse_overwriting_inputs(outputs, [f / n for f in results for n in ("estimates.csv", "results.json")])
    write_text(outputs[0], render_context(ctx))
    write_csv(pooled, outputs[1], index=False)
    save_context(ctx, target)
    _console().print(f"Pooled {len(pooled)} estimates across {len(studies)} studies.")
    _console().print(f"Report: {(target / 'report.html').resolve()}")


# workflow order in --help: instruments, validate, score (intake commands are light: typer only at import)
import evaltoolkit.cli.design as design_cmd  # noqa: E402
import evaltoolkit.cli.diagnose as diagnose_cmd  # noqa: E402
import evaltoolkit.cli.instruments as instruments_cmd  # noqa: E402
import evaltoolkit.cli.intake as intake_cmd  # noqa: E402
import evaltoolkit.cli.plan as plan_cmd  # noqa: E402
import evaltoolkit.cli.redesign as redesign_cmd  # noqa: E402

app.add_typer(instruments_cmd.app, name="instruments")
app.add_typer(design_cmd.app, name="design")
app.add_typer(plan_cmd.app, name="plan")
app.command("redesign", epilog=redesign_cmd.EPILOG)(plain_errors(redesign_cmd.redesign_cmd))
app.add_typer(diagnose_cmd.app, name="diagnose")
app.command(
    "validate",
    epilog=example("evaltoolkit validate wave1.csv --instrument ncs_social_mixing --out issues.csv"),
)(plain_errors(intake_cmd.validate_cmd))
app.command(
    "score", epilog=example("evaltoolkit score wave1.csv --instrument ncs_social_mixing --out scores")
)(plain_errors(intake_cmd.score_cmd))
import evaltoolkit.cli.serve as serve_cmd  # noqa: E402  (light: FastAPI is imported when it runs)

app.command("serve", epilog=serve_cmd.EPILOG)(plain_errors(serve_cmd.serve_cmd))


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status (see the module docstring for the codes)."""

    STATE.quiet = STATE.verbose = False
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    finally:  # in-process callers (tests, notebooks) get the default state back
        STATE.quiet = STATE.verbose = False


def _run(args: list[str]) -> int:
    from evaltoolkit.errors import AnalysisFailed, EvalToolkitError, StrictStop

    try:
        # standalone mode: typer prints usage errors itself (short usage + one error line, status 2)
        app(args=args, prog_name="evaltoolkit", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except (AnalysisFailed, StrictStop) as exc:
        _err_console().print(f"[red]error:[/red] {_escape(' '.join(str(exc).split()))}")
        return 1
    except EvalToolkitError as exc:
        _show_traceback_if_verbose(args)
        _err_console().print(f"[red]error:[/red] {_escape(' '.join(str(exc).split()))}")
        return 2
    except KeyboardInterrupt:
        _err_console().print("aborted")
        return 130
    except Exception as exc:
        _show_traceback_if_verbose(args)
        msg = " ".join(str(exc).split())
        _err_console().print(
            f"[red]unexpected error:[/red] {type(exc).__name__}: {_escape(msg)} "
            "(please report this; run again with --verbose to see the traceback)"
        )
        return 3
    return 0  # pragma: no cover - standalone mode always exits


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _show_traceback_if_verbose(args: list[str]) -> None:
    # STATE.verbose is set by the callback; the flag is also honoured when the error came before it ran
    if STATE.verbose or "-v" in args or "--verbose" in args:
        import traceback

        traceback.print_exc()


def _entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
