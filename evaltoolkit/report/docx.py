"""``summary.docx``: a two-page summary for funders and boards (python-docx).

It holds the report's headline sentences as the plan wrote them (this module computes no result of its own), the
forest plot when the report has one, an evidence box (a shaded table: design, evidence strength, who took part)
and the programme's costs when the design gives them. Like the report it carries no identifiers and no cell
under 10 people.

Examples
--------
>>> from evaltoolkit.report.docx import summary_parts
>>> class R:  # anything with a headline list
...     headline = ["Attitudes improved by 0.2 points."]
>>> summary_parts(R())
[('What we found', ['Attitudes improved by 0.2 points.'])]
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaltoolkit.io.outputs import atomic_write
from evaltoolkit.plan.registry import AnalysisResults, FigureBlock
from evaltoolkit.privacy import format_count

__all__ = ["evidence_rows", "forest_figure", "summary_parts", "write_summary_docx"]

#: the evidence box's fill (a pale blue) and the figure's width on the page
_SHADE = "E8EEF6"
_FIGURE_WIDTH_CM = 15.5


def summary_parts(results: Any) -> list[tuple[str, list[str]]]:
    """The summary's headed groups of sentences, read from ``results`` (never recomputed).

    A ``summary`` mapping on ``results`` (question -> sentence or sentences, e.g. "Did it work?") is used when
    there is one; otherwise the headline sentences under "What we found".
    """
    summary = getattr(results, "summary", None)
    if isinstance(summary, Mapping) and summary:
        return [(str(k), [v] if isinstance(v, str) else [str(x) for x in v]) for k, v in summary.items() if v]
    headline = list(getattr(results, "headline", []) or [])
    return [("What we found", headline or ["The analyses produced no headline estimate."])]


def forest_figure(results: AnalysisResults) -> tuple[str, FigureBlock] | None:
    """The first forest plot among the report's figures with its section's title, or ``None``."""
    figures = [(s.title, f) for s in results.sections for f in s.figures()]
    return next(((t, f) for t, f in figures if "forest" in f.alt.lower()), None)


def evidence_rows(results: AnalysisResults, rating: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    """The evidence box: design, evidence strength (when given), groups, waves, people and clusters."""
    d, study = results.design, results.study
    rows = [("Design", d.title)]
    if rating is not None:
        rows += [("Strength of evidence", rating[0]), ("Why", rating[1])]
    rows += [
        (
            "Groups compared",
            f"{d.arms.label(d.arms.treated)} and {', '.join(map(d.arms.label, d.arms.control))}",
        ),
        ("When people answered", "; ".join(w.display for w in d.waves)),
        ("People in the data", format_count(study.n_people)),
    ]
    for col in d.columns.clusters:
        rows.append((f"Number of {col}s", format_count(study.data[col].nunique(), min_n=0)))
    if results.warnings:
        n = len(results.warnings)
        rows.append(("Cautions", f"{n} caution{'s' if n > 1 else ''}: see the full report (report.html)."))
    return rows


def _cost_lines(design: Any) -> list[str]:
    """The design's costs as sentences, if it gives any (a mapping of item -> amount, a list or a sentence)."""
    costs = getattr(design, "costs", None)
    if not costs:
        return []
    if isinstance(costs, Mapping):
        return [f"{k}: {v}" for k, v in costs.items()]
    return [str(c) for c in costs] if isinstance(costs, list | tuple) else [str(costs)]


def _shade(cell: Any, fill: str = _SHADE) -> None:
    """Fill a table cell with a colour (python-docx has no API for cell shading)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shd)


def _add_evidence_box(doc: Any, rows: list[tuple[str, str]]) -> None:
    doc.add_heading("The evidence", level=2)
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, text in rows:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, text
        cells[0].paragraphs[0].runs[0].bold = True
        for cell in cells:
            _shade(cell)


def _add_figure(doc: Any, title: str, block: FigureBlock) -> None:
    """The figure as a PNG with its text alternative (as the picture's description and as a caption)."""
    from docx.shared import Cm

    buf = io.BytesIO()
    block.figure.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    buf.seek(0)
    doc.add_heading("The estimates at a glance", level=2)
    shape = doc.add_picture(buf, width=Cm(_FIGURE_WIDTH_CM))
    shape._inline.docPr.set("descr", block.alt)
    doc.add_paragraph(f"{title}: estimated effects with their 95% confidence intervals.", style="Caption")


def write_summary_docx(
    results: AnalysisResults, path: str | Path, *, rating: tuple[str, str] | None = None
) -> Path:
    """Write the funders' summary as a Word document.

    Parameters
    ----------
    results : AnalysisResults
        What the plan produced; the sentences are its headline (or ``summary``), not recomputed here.
    path : str or Path
        The ``.docx`` to write (atomically).
    rating : (str, str), optional
        The evidence strength and its reason (:func:`evaltoolkit.report.render.evidence_strength`), shown in
        the evidence box.

    Returns
    -------
    Path
    """
    import docx

    doc = docx.Document()
    doc.core_properties.title = results.design.title
    doc.add_heading(results.design.title, level=0)
    if results.design.description:
        doc.add_paragraph(results.design.description.strip())
    for heading, sentences in summary_parts(results):
        doc.add_heading(heading, level=2)
        for sentence in sentences:
            doc.add_paragraph(sentence, style="List Bullet")
    figure = forest_figure(results)
    if figure is not None:
        _add_figure(doc, *figure)
    _add_evidence_box(doc, evidence_rows(results, rating))
    costs = _cost_lines(results.design)
    if costs:
        doc.add_heading("Costs", level=2)
        for line in costs:
            doc.add_paragraph(line, style="List Bullet")
    doc.add_paragraph(
        "The full report (report.html) explains the methods and every caution; estimates.xlsx holds the numbers."
    )
    return atomic_write(path, doc.save)
