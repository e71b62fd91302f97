"""The pooled report: several studies' estimates combined by random-effects meta-analysis, with forest plots.

The pooling itself is :func:`evaltoolkit.plan.pool.pool_estimates`; this module lays it out as a report context
for :func:`evaltoolkit.report.render.render_context` (``evaltoolkit report DIR1 DIR2 ...``).
"""

from __future__ import annotations

import pandas as pd

from evaltoolkit.plan.pool import pool_estimates
from evaltoolkit.plan.registry import FigureBlock, Section, Table
from evaltoolkit.plots.forest import forest_plot
from evaltoolkit.report.render import section_context

__all__ = ["pooled_context"]


def pooled_context(studies: dict[str, pd.DataFrame], title: str | None = None, max_plots: int = 12) -> tuple:
    """Report context and pooled table for several studies (see :func:`evaltoolkit.report.render.render_context`)."""
    import datetime as dt

    import evaltoolkit

    pooled, fits = pool_estimates(studies)
    section = Section(id="pooled", title="Pooled estimates")
    section.blocks.append(Table(pooled, caption="Pooled estimates (random effects)", kind="estimates"))
    for key, fit in list(fits.items())[:max_plots]:
        section.blocks.append(FigureBlock(forest_plot(fit, title=" - ".join(key)), "forest plot"))
    n = len(studies)
    headline = [
        f"{r.outcome} ({r.term}, {r.analysis.removeprefix('pooled:')}): pooled {r.estimate:+.3f} "
        f"(95% CI {r.ci_lower:+.3f} to {r.ci_upper:+.3f}) across {r.k} studies; I² {r.i2:.0f}%."
        for r in pooled.itertuples()
        if r.analysis.removeprefix("pooled:") in ("did_primary", "ancova") or len(pooled) <= 4
    ][:6]
    context = {
        "title": title or f"Pooled results of {n} studies",
        "description": "Results of several evaluations (sites, years or programmes) pooled by random-effects "
        "meta-analysis: each estimate found in at least two studies is combined, allowing the true effect to "
        "differ between studies (tau squared).",
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": evaltoolkit.__version__,
        "headline": headline,
        "rating": "Depends on the pooled studies' designs",
        "rating_why": "Pooling adds precision, not validity: biases shared by the studies remain in the pooled "
        "estimate. With few studies the between-study variation is poorly estimated, so Knapp-Hartung "
        "intervals are used.",
        "warnings": [],
        "design_rows": [["Studies", ", ".join(studies)]],
        "before_sections": [],
        "after_sections": [],
        "sections": [section_context(section)],
        "seed": None,
        "methods": [
            "Random-effects meta-analysis: REML between-study variance (DerSimonian-Laird with two studies), "
            "Knapp-Hartung intervals with fewer than 10 studies (as R metafor::rma)."
        ],
        "design_source": "several results folders",
        "design_name": "pooled",
    }
    return context, pooled
