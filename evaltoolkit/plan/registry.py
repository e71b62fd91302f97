"""The plan's registry and the records it fills: analysis types, report sections, collected results.

Below both :mod:`evaltoolkit.plan.run` (which walks a design's plan) and :mod:`evaltoolkit.plan.runners`
(one function per analysis type), so neither imports the other's upward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from evaltoolkit.design.schema import Analysis, Design
from evaltoolkit.design.study import Study
from evaltoolkit.results import EffectResult

__all__ = ["AnalysisResults", "Section", "runner"]


@dataclass
class Section:
    """A report section: a title, explanatory text and HTML blocks (tables, figures)."""

    id: str
    title: str
    text: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)


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

    def note(self, message: str) -> None:
        """Add a caution for the report, once."""
        if not any(message in w or w in message for w in self.warnings):
            self.warnings.append(message)

    def section(self, id: str) -> Section | None:
        return next((s for s in self.sections if s.id == id), None)


#: analysis type -> function(study, analysis, results) adding results and sections
_RUNNERS: dict[str, Callable[[Study, Analysis, AnalysisResults], None]] = {}


def runner(kind: str):
    """Register a function that carries out analyses of type ``kind``."""

    def deco(fn):
        _RUNNERS[kind] = fn
        return fn

    return deco
