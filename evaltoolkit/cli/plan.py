"""``evaltoolkit plan export``: the statistical analysis plan to register, written from a design file.

Wired into the main CLI with ``app.add_typer(plan_cmd.app, name="plan")``. The plan is written as HTML, Markdown,
Word and JSON (:func:`evaltoolkit.report.plan_export.export_plan`); the JSON is what
``evaltoolkit analyse --registered plan.json`` checks the analysed design against.

Examples
--------
>>> import tempfile, pathlib
>>> from evaltoolkit.cli.app import main
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> main(["-q", "plan", "export", "ncs_prepost_control", "--format", "md,json", "--out", str(d)])
0
>>> sorted(p.name for p in d.iterdir())
['plan.json', 'plan.md']
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evaltoolkit.cli.common import console as _console
from evaltoolkit.cli.common import example

__all__ = ["app", "export"]

app = typer.Typer(
    name="plan",
    help="Write the statistical analysis plan to register, from a design file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=example("evaltoolkit plan export ncs_prepost_control --format html,md,docx,json --out plan"),
)


@app.command(
    no_args_is_help=True,
    epilog=example(
        "evaltoolkit plan export ncs_prepost_control --out plan",
        "evaltoolkit plan export cluster_rct --format docx,json --out registered",
    ),
)
def export(
    design: Annotated[str, typer.Argument(help="Bundled design name or path to a design YAML.")],
    format: Annotated[
        str, typer.Option("--format", help="Comma-separated: html, md, docx, json.")
    ] = "html,md,docx,json",
    out: Annotated[Path, typer.Option(help="Folder for plan.html, plan.md, plan.docx, plan.json.")] = Path(
        "plan"
    ),
) -> None:
    """Write the plan (sections of the EEF template, the sample size, the design's JSON and its SHA-256 hash)."""
    from evaltoolkit.design.schema import load_design
    from evaltoolkit.errors import UsageError
    from evaltoolkit.plan.deviations import plan_hash
    from evaltoolkit.report.plan_export import export_plan

    if out.exists() and not out.is_dir():
        raise UsageError(
            f"--out {out} is a file; give a folder for the plan (evaltoolkit never changes an input)"
        )
    d = load_design(design)
    paths = export_plan(d, out, formats=format.split(","))
    con = _console()
    con.print(f"Plan written ({', '.join(str(p) for p in paths.values())}); design SHA-256 {plan_hash(d)}.")
    con.print("Register it; at analysis: evaltoolkit analyse DATA --design DESIGN --registered plan.json")
