"""The plan's registry and the records it fills: analysis types, report sections, collected results.

Below both :mod:`evaltoolkit.plan.run` (which walks a design's plan) and :mod:`evaltoolkit.plan.runners`
(one function per analysis type), so neither imports the other's upward.

Sections carry **data, not HTML**: paragraphs (``str``), :class:`Table` (a DataFrame with its caption),
:class:`FigureBlock` (a matplotlib figure with its alt text) and :class:`Callout` (a paragraph with a bold
lead). Only :mod:`evaltoolkit.report` turns them into HTML, so the same sections can be exported elsewhere
(a spreadsheet, a document, a web page) or re-styled without re-running the analysis.

Examples
--------
>>> import pandas as pd
>>> sec = Section(id="analysis-x", title="An analysis")
>>> sec.blocks.append(Table(pd.DataFrame({"term": ["a"], "estimate": [0.1]}), caption="Estimates"))
>>> [type(b).__name__ for b in sec.blocks], sec.tables()[0].caption
(['Table'], 'Estimates')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from evaltoolkit.design.schema import ANALYSIS_TYPES, Analysis, Design
from evaltoolkit.design.study import Study
from evaltoolkit.results import EffectResult

__all__ = [
    "REGISTRY",
    "AnalysisResults",
    "AnalysisType",
    "Block",
    "Callout",
    "FigureBlock",
    "Section",
    "Table",
    "left_out_text",
    "runner",
]


@dataclass
class Table:
    """A table for a report: the numbers as a DataFrame, with its caption.

    ``kind="estimates"`` marks an estimates table in the ``ESTIMATE_COLUMNS`` contract (the report moves its
    long descriptive columns - method, adjustment - into a note under it). ``digits`` is the display rounding.
    Identifying columns are dropped and small cells withheld when it is rendered.
    """

    frame: pd.DataFrame
    caption: str | None = None
    kind: Literal["plain", "estimates"] = "plain"
    digits: int = 3

    def __post_init__(self) -> None:
        self.frame = (
            self.frame.copy()
        )  # a snapshot: later changes to the caller's frame do not reach the report


@dataclass
class FigureBlock:
    """A figure for a report: a :class:`matplotlib.figure.Figure` and the text alternative that describes it."""

    figure: Any
    alt: str


@dataclass
class Callout:
    """A highlighted paragraph: ``lead`` in bold, then ``text`` (e.g. "Only 6 teams. Conventional ...")."""

    text: str
    lead: str = ""


#: what a section holds: a paragraph (str), a table, a figure or a callout
Block = str | Table | FigureBlock | Callout


@dataclass
class Section:
    """A report section: a title, explanatory paragraphs and blocks (tables, figures, callouts) as data."""

    id: str
    title: str
    text: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def tables(self) -> list[Table]:
        """The section's tables, in order."""
        return [b for b in self.blocks if isinstance(b, Table)]

    def figures(self) -> list[FigureBlock]:
        """The section's figures, in order."""
        return [b for b in self.blocks if isinstance(b, FigureBlock)]


def left_out_text(label: str, dropped: dict[str, int], n_total: int, unit: str = "rows") -> str:
    """What an analysis left out, by reason, for its own report section ("5 of 209 people left out: ...").

    The count analysed and the counts left out add up to ``n_total`` (the rows the analysis was given).

    Examples
    --------
    >>> left_out_text("Attitudes", {"missing age": 5, "other arms": 0}, 209, "people")
    'Attitudes: 5 of 209 people left out: missing age (5); 204 analysed.'
    """
    lost = {k: int(v) for k, v in dropped.items() if v}
    if not lost:
        return f"{label}: all {n_total:,} {unit} analysed, none left out."
    reasons = ", ".join(f"{reason} ({k:,})" for reason, k in lost.items())
    n_lost = sum(lost.values())
    return f"{label}: {n_lost:,} of {n_total:,} {unit} left out: {reasons}; {n_total - n_lost:,} analysed."


@dataclass
class AnalysisResults:
    """Everything one run of the plan produced."""

    design: Design
    study: Study
    estimates: pd.DataFrame
    results: list[EffectResult] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    tables: list[pd.DataFrame] = field(default_factory=list)

    def add(self, result: EffectResult, table: pd.DataFrame | None = None) -> None:
        """Record a result and its rows for ``estimates.csv`` (default: ``result.table``)."""
        self.results.append(result)
        self.tables.append(result.table if table is None else table)

    def left_out(
        self, analysis: str, label: str, dropped: dict[str, int], n_total: int, unit: str = "rows"
    ) -> str:
        """Record what ``analysis`` left out of ``label``, by reason, and say it in a sentence.

        The records (``extras["left_out"]``) become the report's one table of rows not analysed; the sentence
        (:func:`left_out_text`) goes in the analysis's own section.
        """
        lost = {str(k): int(v) for k, v in dropped.items() if v}
        self.extras.setdefault("left_out", []).append(
            {"analysis": analysis, "label": label, "n_total": int(n_total), "lost": lost, "unit": unit}
        )
        return left_out_text(label, lost, n_total, unit)

    def note(self, message: str) -> None:
        """Add a caution for the report, once."""
        if not any(message in w or w in message for w in self.warnings):
            self.warnings.append(message)

    @property
    def summary(self) -> dict[str, str]:
        """The report summary's answers, question -> answer ("Did it work?", ...; see plan.summary)."""
        return dict(self.extras.get("summary", []))

    def section(self, id: str) -> Section | None:
        return next((s for s in self.sections if s.id == id), None)


@dataclass(frozen=True)
class AnalysisType:
    """One kind of analysis a design can plan: how to run it and how the report's methods appendix describes it."""

    name: str
    run: Callable[[Study, Analysis, AnalysisResults], None]
    methods: str


#: analysis type name (``analyses[].type`` in a design) -> its runner and methods text
REGISTRY: dict[str, AnalysisType] = {}


def runner(kind: str, *, methods: str):
    """Register ``fn(study, analysis, results)`` as the runner of analyses of type ``kind``.

    ``methods`` is the paragraph of the report's methods appendix for this type (what is estimated, how, and
    the references); it is shown whenever an analysis of the type ran. Registering a new ``kind`` also lets
    designs plan it (:data:`evaltoolkit.design.schema.ANALYSIS_TYPES`).
    """

    def deco(fn):
        REGISTRY[kind] = AnalysisType(kind, fn, methods)
        if kind not in ANALYSIS_TYPES:  # a design may now plan it
            ANALYSIS_TYPES.append(kind)
        return fn

    return deco
