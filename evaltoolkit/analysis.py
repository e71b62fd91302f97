"""Carry out a design's analysis plan on a study and collect everything the report needs.

The runner calls the estimators (which know nothing about YAML or HTML) and gathers their results
into :class:`AnalysisResults`: the tidy ``estimates`` table (the ``estimates.csv`` contract),
plain-language headline sentences, warnings, excluded-row counts and report sections. The report
module only reads these results.

Examples
--------
>>> import evaltoolkit as et
>>> from evaltoolkit.analysis import run_plan
>>> sim = et.simulate_study("ncs_prepost_control", n=400, seed=5)
>>> res = run_plan(et.Study(sim.design, sim.data))
>>> {"analysis", "outcome", "term", "estimate"} <= set(res.estimates.columns)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from evaltoolkit.design import Analysis, Design
from evaltoolkit.errors import EvalToolkitError, EvalToolkitWarning
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult
from evaltoolkit.study import Study


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


def run_plan(study: Study, *, seed: int = 20240601) -> AnalysisResults:
    """Run every analysis in ``study.design.analyses`` and return the collected results.

    Estimation problems in one analysis (e.g. a model that cannot be fitted) are reported as warnings
    in the results and the report; the other analyses still run.
    """
    design = study.design
    out = AnalysisResults(design=design, study=study, estimates=pd.DataFrame(columns=list(ESTIMATE_COLUMNS)))
    out.extras["seed"] = seed
    for ex in study.excluded:
        out.warnings.append(f"{ex.n_rows} rows were set aside before analysis: {ex.reason}.")
    from evaltoolkit import analysis_runners  # noqa: F401  (registers the runners)

    plan = list(design.analyses)
    if design.kind != "post_only" and not any(a.type == "attrition" for a in plan):
        plan.insert(0, Analysis(id="attrition", type="attrition"))  # flow is always reported for panels
    if not any(a.type == "measurement" for a in plan):
        plan.insert(
            0, Analysis(id="measurement", type="measurement")
        )  # reliability whenever items are present
    for analysis in plan:
        fn = _RUNNERS.get(analysis.type)
        if fn is None:
            out.warnings.append(
                f"Analysis '{analysis.id}' ({analysis.type}) is not available in this version."
            )
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EvalToolkitWarning)
            try:
                fn(study, analysis, out)
                if analysis.type not in out.extras.setdefault("types_run", []):
                    out.extras["types_run"].append(analysis.type)
            except EvalToolkitError as exc:
                out.warnings.append(f"Analysis '{analysis.id}' could not be completed: {exc}")
        for w in caught:
            if issubclass(w.category, EvalToolkitWarning):
                if not any(str(w.message) in x for x in out.warnings):
                    out.note(f"{analysis.id}: {w.message}")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if out.tables:
        est = pd.concat(out.tables, ignore_index=True)
        extra = [c for c in ("family", "p_adjusted", "adjustment") if c in est.columns]
        out.estimates = est[[*ESTIMATE_COLUMNS, *extra]]
    return out
