"""Runners that carry out each analysis type of a design and add report sections.

Each runner takes the study, the planned analysis and the growing :class:`AnalysisResults`. Runners
call the estimators with plain DataFrames and column names, then build tables and figures; they are
the only place where design fields are translated into estimator arguments.
"""

from __future__ import annotations

import html

import pandas as pd

from evaltoolkit.analysis import AnalysisResults, Section, runner
from evaltoolkit.design import Analysis
from evaltoolkit.figures import figure_to_html, forest_plot, means_plot
from evaltoolkit.privacy import suppress_small_cells
from evaltoolkit.report_tables import table_html
from evaltoolkit.study import Study


@runner("did")
def run_did(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Difference-in-differences for each outcome, each post wave against baseline."""
    from evaltoolkit.did import did

    d, c = study.design, study.design.columns
    outcomes = analysis.outcomes or [o.name for o in d.outcomes]
    post = analysis.post or d.post_waves
    cluster = analysis.cluster or (c.clusters[-1] if c.clusters else None)
    sec = Section(
        id=f"analysis-{analysis.id}",
        title="Difference-in-differences" + (" (primary analysis)" if analysis.primary else ""),
    )
    sec.text.append(
        "For each outcome, the change among participants from baseline to each later wave is compared with "
        "the change among the comparison group over the same period; the difference between the two changes "
        "is the estimated effect of the programme. Each person is compared with themselves (individual fixed "
        "effects), so stable differences between the groups - participants starting warmer, for example - "
        "do not bias the estimate. "
        + (
            f"Standard errors allow for people in the same {cluster} being alike (clustered by {cluster})."
            if cluster
            else ""
        )
    )
    results = []
    tables = []
    for name in outcomes:
        o = d.outcome(name)
        res = did(
            study.data,
            outcome=name,
            arm=c.arm,
            wave=c.wave,
            treated=d.arms.treated,
            control=d.arms.control,
            pre=d.baseline,
            post=post,
            unit=c.id,
            cluster=cluster,
            dichotomise=o.dichotomise,
            seed=out.extras.get("seed"),
            **analysis.options,
        )
        res.analysis = analysis.id
        res.outcome = name
        tab = res.table
        tab["analysis"] = analysis.id
        tab["outcome"] = name
        out.add(res, tab)
        tables.append(tab)
        results.append((o, res))
        if analysis.primary and (o.family == "primary" or len(outcomes) == 1):
            out.headline.append(
                did_sentence(o.display, res, d.arms.label(d.arms.treated), d.wave(post[0]).display)
            )
        for w in res.warnings:
            out.note(f"{o.display}: {w}")
    est = pd.concat(tables, ignore_index=True)
    sec.blocks.append(table_html(est, caption="Estimated effects (scale points unless stated)"))
    labels = {o.name: o.display for o, _ in results}
    fp = est.copy()
    fp["label"] = fp["outcome"].map(labels) + " - " + fp["term"]
    sec.blocks.append(
        figure_to_html(forest_plot(fp, title="Effects with 95% confidence intervals"), "forest plot")
    )
    cells = pd.concat([study.cell_means(name) for name in outcomes], ignore_index=True)
    fig = means_plot(
        cells,
        waves=d.wave_names,
        arms=d.arms.all,
        arm_labels=d.arms.labels,
        wave_labels={w.name: w.display for w in d.waves},
        outcome_labels=labels,
    )
    sec.blocks.append(figure_to_html(fig, "means by arm and wave"))
    show = suppress_small_cells(cells, "n", ["mean", "sd", "ci_lower", "ci_upper"])
    show["outcome"] = show["outcome"].map(labels)
    show["arm"] = show["arm"].map(d.arms.label)
    sec.blocks.append(
        table_html(
            show[["outcome", "arm", "wave", "n", "mean", "sd", "ci_lower", "ci_upper"]],
            caption="Means by arm and wave (everyone who answered that wave; cells under 10 people withheld)",
        )
    )
    out.sections.append(sec)


def did_sentence(label: str, res, treated_label: str, control_label: str, wave_label: str) -> str:
    """One plain-language sentence for a DiD headline (CausalPy-style effect summary)."""
    from evaltoolkit.results import format_p

    dich = bool(res.details.get("dichotomised"))
    units = "percentage points" if dich else "points"
    scale = 100 if dich else 1
    est, lo, hi = (scale * v for v in (res.estimate, res.ci_lower, res.ci_upper))
    bigger = "larger" if est >= 0 else "smaller"
    p = format_p(res.p_value)
    text = (
        f"{label} ({wave_label.lower()}): the change in the programme group ({treated_label}) was "
        f"{abs(est):.2f} {units} {bigger} than in the comparison group ({control_label}); "
        f"95% CI {ci_text(lo, hi, res.std_error * scale)}, p {'< 0.001' if p == '<0.001' else '= ' + p}."
    )
    g = res.details.get("hedges_g")
    if isinstance(g, pd.DataFrame) and not g.empty and "g" in g.columns and not dich:
        text += f" That is about {g['g'].iloc[0]:.2f} standard deviations (Hedges' g)."
    if not ci_bounded(lo, hi, res.std_error * scale):
        text += " The data cannot bound the effect: the interval is effectively unlimited."
    elif lo > 0 or hi < 0:
        text += " The interval excludes zero."
    else:
        text += " The interval includes zero, so no effect is also consistent with the data."
    return text


def ci_bounded(lo: float, hi: float, se: float) -> bool:
    """False when an interval is so wide it carries no information (e.g. a wild bootstrap with 3 clusters)."""
    import math

    if not (math.isfinite(lo) and math.isfinite(hi)):
        return False
    ref = max(abs(se), 1e-12) if math.isfinite(se) else 1.0
    return (hi - lo) < 1e3 * ref and (hi - lo) < 1e6


def ci_text(lo: float, hi: float, se: float) -> str:
    return f"{lo:+.2f} to {hi:+.2f}" if ci_bounded(lo, hi, se) else "unbounded"


def escape(text: str) -> str:
    return html.escape(str(text))
