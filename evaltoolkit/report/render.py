"""Write the self-contained HTML report and the exported tables.

The report only reads :class:`~evaltoolkit.plan.registry.AnalysisResults`, and is the only code that
turns its sections' data (tables, figures) into HTML. It has a plain-language
summary, the design and its evidence strength, the flow of people through the waves, every
analysis section (tables and embedded figures), warnings, and a methods appendix. It makes no
network requests (figures are embedded PNGs, the style sheet is inline), carries no identifiers and
withholds cells under 10 people.

Examples
--------
>>> import tempfile, evaltoolkit as et
>>> from evaltoolkit.plan.run import run_plan
>>> sim = et.simulate_study("ncs_prepost_control", n=400, seed=5)
>>> res = run_plan(et.Study(sim.design, sim.data))
>>> paths = et.write_report(res, tempfile.mkdtemp())
>>> sorted(p.name for p in paths.values())
['estimates.csv', 'estimates.xlsx', 'report.html', 'results.json', 'summary.docx']
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.inference.policy import FEW_CLUSTERS
from evaltoolkit.io.outputs import atomic_write, refuse_overwriting_inputs, write_csv, write_text
from evaltoolkit.labels import GLOSSARY
from evaltoolkit.plan.deviations import plan_hash
from evaltoolkit.plan.registry import REGISTRY, AnalysisResults, Block, Callout, FigureBlock, Section, Table
from evaltoolkit.plan.summary import evidence_strength, ranked_cautions
from evaltoolkit.plots.style import describe
from evaltoolkit.privacy import format_count
from evaltoolkit.report.embed import figure_to_html
from evaltoolkit.report.sections import stand_alone
from evaltoolkit.report.tables import estimates_html, table_html

_TEMPLATE = "report.html"


def methods_text(types_run: list[str]) -> list[str]:
    """The methods appendix: each analysis type's own paragraph (:class:`~evaltoolkit.plan.registry.AnalysisType`)."""
    import evaltoolkit.plan.runners  # noqa: F401  (registers the analysis types)

    return [REGISTRY[t].methods for t in types_run if t in REGISTRY]


def __getattr__(name: str) -> Any:
    if name == "METHODS":  # 0.1: a dict in this module; now each analysis type carries its methods text
        import evaltoolkit.plan.runners  # noqa: F401

        return {k: v.methods for k, v in REGISTRY.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reader_names(results: AnalysisResults) -> dict[str, dict[str, str]]:
    """Wave labels and the labels of outcomes, mediators, moderators and analyses, for putting names into words."""
    d = results.design
    names = {o.name: o.display for o in d.outcomes}
    for col in (*d.mediators, *d.moderators, *d.covariates):
        names.setdefault(col, col.replace("_", " "))
    names.update({f"{o.name}_baseline": f"{o.display} at baseline" for o in d.outcomes})
    names.update({a.id: a.id.replace("_", " ").capitalize() for a in d.analyses})
    names.update({a: d.arms.label(a) for a in d.arms.all})
    return {"waves": {w.name: w.display for w in d.waves}, "names": names}


def render_block(block: Block, names: dict[str, dict[str, str]] | None = None) -> str:
    """One section block as HTML: a paragraph, a table, an embedded figure or a callout."""
    if isinstance(block, Table):
        if block.kind == "estimates":
            return estimates_html(block.frame, caption=block.caption or "", digits=block.digits, names=names)
        return table_html(block.frame, caption=block.caption, digits=block.digits, names=names)
    if isinstance(
        block, FigureBlock
    ):  # the figure's own description (what it shows, its numbers) as alt text
        return figure_to_html(block.figure, describe(block.figure) or block.alt)
    if isinstance(block, Callout):
        lead = f"<strong>{_html.escape(block.lead, quote=False)}</strong> " if block.lead else ""
        return f"<p>{lead}{_html.escape(block.text, quote=False)}</p>"
    return f"<p>{_html.escape(str(block), quote=False)}</p>"


def section_context(section: Section, names: dict[str, dict[str, str]] | None = None) -> dict:
    """A section as the template's JSON-serialisable dict (its blocks rendered to HTML)."""
    return {
        "id": section.id,
        "title": section.title,
        "text": list(section.text),
        "blocks": [render_block(b, names) for b in section.blocks],
    }


def report_context(results: AnalysisResults, title: str | None = None) -> dict:
    """Everything the template shows, as plain JSON-serialisable values (saved as ``results.json``)."""
    import evaltoolkit

    d = results.design
    rating, why = evidence_strength(results)
    names = reader_names(results)
    study = results.study
    caution_groups, left_out = ranked_cautions(results)
    design_rows = [
        ("Design", d.title),
        ("Programme arm", d.arms.label(d.arms.treated)),
        ("Comparison", ", ".join(d.arms.label(a) for a in d.arms.control)),
        ("Waves", "; ".join(w.display for w in d.waves)),
        ("Outcomes", "; ".join(o.display for o in d.outcomes)),
        ("Clusters", ", ".join(d.columns.clusters) or "none"),
        ("People in the data", format_count(study.n_people)),
    ]
    for col in d.columns.clusters:
        design_rows.append((f"Number of {col}s", format_count(study.data[col].nunique(), min_n=0)))
    return {
        "title": title or d.title,
        "description": d.description,
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": evaltoolkit.__version__,
        "headline": list(results.headline),
        "summary": [list(qa) for qa in results.extras.get("summary", [])],
        "caution_groups": [[g, items] for g, items in caution_groups],
        "left_out_html": table_html(left_out, "Rows not analysed, by reason") if len(left_out) else "",
        "rating": rating,
        "rating_why": why,
        "warnings": list(results.warnings),
        "design_rows": [list(r) for r in design_rows],
        "before_sections": [section_context(s, names) for s in stand_alone(results, "before")],
        "after_sections": [section_context(s, names) for s in stand_alone(results, "after")],
        "sections": [section_context(x, names) for x in results.sections],
        "seed": results.extras.get("seed"),
        "methods": methods_text(results.extras.get("types_run", [])),
        "few_clusters": FEW_CLUSTERS,
        "glossary": [[k, v] for k, v in GLOSSARY.items()],
        "design_source": str(d.source.name) if d.source else "(in memory)",
        "design_name": d.name,
        "plan_sha256": plan_hash(d),
    }


def render_context(context: dict) -> str:
    """Render a report context (see :func:`report_context`) with the bundled template."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evaltoolkit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    return env.get_template(_TEMPLATE).render(**context)


def render_html(results: AnalysisResults, title: str | None = None) -> str:
    """The report as one self-contained HTML string."""
    return render_context(report_context(results, title))


def write_report(
    results: AnalysisResults,
    out_dir: str | Path,
    title: str | None = None,
    *,
    inputs: tuple = (),
    pdf: bool = False,
) -> dict[str, Path]:
    """Write ``report.html``, ``estimates.csv``, ``estimates.xlsx`` (seven sheets), ``summary.docx`` (the funders'
    summary) and ``results.json`` into ``out_dir``; with ``pdf=True`` also ``report.pdf`` (A4, through headless
    Chromium when it is installed).

    ``results.json`` holds the rendered report context (no data, no identifiers, no images: the figures are
    ``figures/figure-NN.png`` beside it, see :func:`save_context`), so ``evaltoolkit report DIR`` can
    re-render or pool reports later. Nothing is written if an output would
    replace the study's data file or any of ``inputs`` (:class:`~evaltoolkit.errors.UsageError`); each file is
    written atomically.

    Returns
    -------
    dict
        ``{"report": path, "estimates": path, "xlsx": path, "summary": path, "json": path}`` (and ``"pdf"``).
    """
    from evaltoolkit.report.docx import write_summary_docx
    from evaltoolkit.report.pdf import write_pdf
    from evaltoolkit.report.tables import write_xlsx

    out = Path(out_dir)
    paths = {k: out / name for k, name in
             (("report", "report.html"), ("estimates", "estimates.csv"), ("xlsx", "estimates.xlsx"),
              ("summary", "summary.docx"), ("json", "results.json"))}  # fmt: skip
    if pdf:
        paths["pdf"] = out / "report.pdf"
    refuse_overwriting_inputs(paths.values(), [results.study.source, *inputs])
    context = report_context(results, title)
    write_text(paths["report"], render_context(context))
    est: pd.DataFrame = results.estimates
    write_csv(est, paths["estimates"], index=False)
    write_xlsx(results, paths["xlsx"])
    write_summary_docx(results, paths["summary"], rating=evidence_strength(results))
    save_context(context, out)
    if pdf:
        printed = write_pdf(paths["report"], paths["pdf"])
        if printed is None:
            del paths["pdf"]
    return paths


# --------------------------------------------------------------------------- results.json and its figures
_EMBEDDED = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
_FIGURE_FILE = re.compile(r'src="(figures/figure-\d+\.png)"')


def _map_strings(obj: Any, f: Callable[[str], str]) -> Any:
    """``obj`` (JSON-like: dicts, lists, strings, numbers) with ``f`` applied to every string value."""
    if isinstance(obj, str):
        return f(obj)
    if isinstance(obj, dict):
        return {k: _map_strings(v, f) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_map_strings(v, f) for v in obj]
    return obj


def save_context(context: dict, out_dir: str | Path) -> Path:
    """Write ``results.json`` without images: each embedded figure goes to ``figures/figure-NN.png``.

    The JSON refers to each figure by that relative path; :func:`load_context` puts them back, so a
    re-rendered report is as self-contained as the first. Figure files of an earlier run that this one no
    longer has are removed. Returns the path of ``results.json``.

    Examples
    --------
    >>> import tempfile
    >>> from evaltoolkit.plots.style import new_figure
    >>> out = Path(tempfile.mkdtemp())
    >>> ctx = {"sections": [{"blocks": [figure_to_html(new_figure(width=1.0, height=1.0)[0], alt="a box")]}]}
    >>> path = save_context(ctx, out)
    >>> "base64" in path.read_text(), sorted(p.name for p in (out / "figures").iterdir())
    (False, ['figure-01.png'])
    >>> load_context(out) == ctx
    True
    """
    out = Path(out_dir)
    figures: dict[str, bytes] = {}

    def detach(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = f"figures/figure-{len(figures) + 1:02d}.png"
            figures[name] = base64.b64decode(m.group(1))
            return f'src="{name}"'

        return _EMBEDDED.sub(one, text)

    lean = _map_strings(context, detach)
    for name, png in figures.items():
        atomic_write(out / name, lambda tmp, png=png: tmp.write_bytes(png))
    folder = out / "figures"
    if folder.is_dir():
        for old in folder.glob("figure-*.png"):
            if f"figures/{old.name}" not in figures:
                old.unlink()
    return write_text(out / "results.json", json.dumps(lean))


def load_context(folder: str | Path, context: dict | None = None) -> dict:
    """The report context saved by :func:`save_context` in ``folder``, its figures embedded again.

    ``context`` is the already-read ``results.json`` (read from ``folder`` when not given). A context
    written before figures were kept apart (images inside the JSON) is returned as it is.
    """
    base = Path(folder)
    if context is None:
        context = json.loads((base / "results.json").read_text(encoding="utf-8"))

    def attach(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            path = base / m.group(1)
            if not path.exists():
                raise DataError(
                    "a figure of this report is missing; re-run 'evaltoolkit analyse' to write it again",
                    file=str(path),
                )
            return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}"'

        return _FIGURE_FILE.sub(one, text)

    return _map_strings(context, attach)
