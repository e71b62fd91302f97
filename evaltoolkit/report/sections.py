"""Stand-alone report sections: parts of the report that no single analysis owns (who took part, ...).

Each is a function from the plan's :class:`~evaltoolkit.plan.registry.AnalysisResults` to a
:class:`~evaltoolkit.plan.registry.Section` of data (or ``None`` to leave it out), registered with
:func:`section`. ``position="before"`` puts it before the analyses (after the design), ``"after"`` after them
(before the methods). A new stand-alone section is one decorated function in this file.

Examples
--------
>>> sorted(SECTIONS)
['deviations', 'flow']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from evaltoolkit.plan.registry import AnalysisResults, Section, Table
from evaltoolkit.privacy import suppress_small_cells

__all__ = ["SECTIONS", "StandAloneSection", "rows_accounted", "section", "stand_alone"]


@dataclass(frozen=True)
class StandAloneSection:
    """A registered stand-alone section: where it goes and the function that builds it."""

    id: str
    position: Literal["before", "after"]
    build: Callable[[AnalysisResults], Section | None]


#: section id -> stand-alone section, in registration order
SECTIONS: dict[str, StandAloneSection] = {}


def section(id: str, *, position: Literal["before", "after"] = "before"):
    """Register ``fn(results) -> Section | None`` as the stand-alone section ``id``."""

    def deco(fn: Callable[[AnalysisResults], Section | None]):
        SECTIONS[id] = StandAloneSection(id, position, fn)
        return fn

    return deco


def stand_alone(results: AnalysisResults, position: Literal["before", "after"]) -> list[Section]:
    """The stand-alone sections for ``position``, built from ``results`` (those that return ``None`` left out)."""
    built = (s.build(results) for s in SECTIONS.values() if s.position == position)
    return [s for s in built if s is not None]


@section("flow")
def flow(results: AnalysisResults) -> Section:
    """Who took part: people responding in each arm and wave, and retention (cells under 10 withheld)."""
    d = results.design
    counts = results.study.flow()
    counts["arm"] = counts["arm"].map(d.arms.label)
    counts["wave"] = counts["wave"].map(lambda w: d.wave(w).display if w in d.wave_names else w)
    counts["retention"] = (counts["retention"] * 100).round(0)
    shown = suppress_small_cells(counts, "n", ["retention"]).rename(columns={"retention": "% of baseline"})
    sec = Section(id="flow", title="Who took part")
    sec.text.append(rows_accounted(results))
    read_as = results.study.read_as
    if read_as:
        sec.text.append(
            "Scores were read from the scored columns of the instruments' scales: "
            + "; ".join(
                f"{d.outcome(c).display if c in d.outcome_names else c} from '{s}'"
                for c, s in read_as.items()
            )
            + "."
        )
    sec.blocks.append(Table(shown, caption="People responding at each wave", digits=0))
    return sec


@section("deviations", position="after")
def deviations(results: AnalysisResults) -> Section | None:
    """Deviations from the registered plan (``analyse --registered``); built by :mod:`evaltoolkit.report.plan_export`."""
    from evaltoolkit.report.plan_export import deviations_section

    return deviations_section(results)


def rows_accounted(results: AnalysisResults) -> str:
    """The file's data rows: how many were analysed and how many set aside, by reason (they add up).

    ``extras["rows_in_file"]`` (set by ``evaltoolkit analyse``) counts every data row of the file, blank ones
    included; without it the rows given to the study are counted.
    """
    study = results.study
    n_used = len(study.data)
    aside = [(ex.n_rows, ex.reason) for ex in study.excluded if ex.n_rows]
    n_given = n_used + sum(k for k, _ in aside)
    n_file = int(results.extras.get("rows_in_file", n_given))
    if n_file > n_given:
        aside.append((n_file - n_given, "blank: no value in any column"))
    text = f"The data file has {n_file:,} data row{'s' if n_file != 1 else ''}: {n_used:,} analysed"
    if aside:
        text += "; set aside: " + "; ".join(f"{k:,} ({reason})" for k, reason in aside)
    return text + "."
