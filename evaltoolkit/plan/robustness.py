"""The "How robust is this?" section: every pre-specified sensitivity analysis of the primary effect, in one table.

The design's ``sensitivity:`` block (:class:`~evaltoolkit.design.schema.Sensitivity`) names the checks and their
settings; an analysis of type ``robustness`` runs them on the primary difference-in-differences estimate (or the
analysis and outcome the block names), after that analysis has run:

* **few clusters** - which inference the few-cluster rule chose, what conventional CR1 would have claimed, and
  the smallest p-value the data could give (:mod:`evaltoolkit.inference.policy`);
* **confounding** - how strong an unobserved confounder would have to be, beside the observed covariates
  (:mod:`evaltoolkit.estimators.sensitivity.ovb`);
* **parallel trends** - with earlier pre-programme waves, the pre-trend test and the honest bounds with their
  breakdown value; with one, a plain statement that it cannot be checked
  (:mod:`evaltoolkit.estimators.sensitivity.parallel_trends`);
* **attrition** - response weights, Lee bounds, multiple imputation and the tipping point
  (:mod:`evaltoolkit.estimators.sensitivity.missing_data`).

Each check gives one row (what it asks, what it found, in words) and a *margin*: how strong the threat would have
to be to overturn the conclusion, relative to a yardstick (a confounder as strong as the strongest observed
covariate; violations of parallel trends as large as the largest before the programme; non-completers changing
half a standard deviation less). The summary names the check with the smallest margin.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.design.schema import Analysis
from evaltoolkit.design.study import Study
from evaltoolkit.plan.registry import AnalysisResults, FigureBlock, Section, Table, runner
from evaltoolkit.results import ESTIMATE_COLUMNS

__all__ = ["Check", "closest_threat", "run_robustness"]


@dataclass
class Check:
    """One row of the section: the check, its question, its finding in words, and how close it comes.

    ``margin`` is the threat's strength needed to overturn the conclusion over its yardstick (below 1: a threat
    of yardstick size overturns it; 0: already overturned or untestable with these data); None when it does
    not bear on the conclusion.
    """

    check: str
    question: str
    finding: str
    margin: float | None = None
    why: str = ""
    #: rows for estimates.csv: ``term, estimate, std_error, ci_lower, ci_upper, method``
    rows: list[dict[str, Any]] = field(default_factory=list)


def _target(study: Study, out: AnalysisResults) -> tuple[Analysis, str, Any] | None:
    d = study.design
    sens = d.sensitivity
    dids = [a for a in d.analyses if a.type == "did" and not a.options.get("weighting")]
    chosen = [a for a in d.analyses if a.id == sens.analysis] or [a for a in dids if a.primary] or dids
    if not chosen:
        return None
    a = chosen[0]
    outcome = sens.outcome or next(
        (o for o in (a.outcomes or d.outcome_names) if o in d.families.get("primary", [])),
        (a.outcomes or d.outcome_names)[0],
    )
    res = next(
        (
            r
            for r in out.results
            if getattr(r, "analysis", None) == a.id and getattr(r, "outcome", None) == outcome
        ),
        None,
    )
    return (a, outcome, res) if res is not None else None


def _significant(res: Any) -> bool:
    return bool(res.ci_lower > 0 or res.ci_upper < 0)


# --------------------------------------------------------------------------- the checks
def _few_clusters(study: Study, a: Analysis, res: Any) -> Check:
    from evaltoolkit.inference.randomisation import cluster_counts

    d = study.design
    cluster = a.cluster or (d.columns.clusters[-1] if d.columns.clusters else None)
    question = "Are there enough clusters for the p-value and interval to be trusted?"
    if cluster is None:
        return Check("Few clusters", question, "No clusters are named: people are the independent units.")
    rows = study.data[study.data[d.columns.wave] == d.baseline]
    n_t, n_c, _ = cluster_counts((rows[d.columns.arm] == d.arms.treated).to_numpy(), rows[cluster].to_numpy())
    used = res.details.get("vcov")
    inf = next(iter(getattr(res, "inference", {}).values()), None)
    alt = inf.alternatives if inf is not None else {}
    counts = f"{n_t} {cluster}s with participants and {n_c} with comparison people"
    if used == "CR1":
        return Check(
            "Few clusters", question, f"Yes: {counts}; conventional cluster-robust inference (CR1).", None
        )
    ri = alt.get("ri")
    if ri is not None and ri["min_p"] > 0.05:
        return Check(
            "Few clusters",
            question,
            f"No: {counts}. No test that compares {cluster}s can give p below {ri['min_p']:.2f}, so these data "
            "cannot show an effect at the 5% level whatever its size.",
            0.0,
            f"with {n_t + n_c} {cluster}s no test can reach the 5% level",
        )
    cr1 = alt.get("CR1")
    said = (
        f"p = {res.p_value:.3f} by the {'randomisation test' if used == 'ri' else 'wild cluster bootstrap'}"
    )
    if cr1 is not None:
        said += f"; conventional CR1 would have said p = {cr1['p_value']:.3f}"
    flips = cr1 is not None and (cr1["p_value"] < 0.05) != (res.p_value < 0.05)
    return Check(
        "Few clusters",
        question,
        f"Only {counts}: {said}" + (" - the conclusion depends on the method." if flips else "."),
        0.5 if flips else None,
        "the conclusion depends on the few-cluster method" if flips else "",
    )


def _parallel_trends(
    study: Study, a: Analysis, outcome: str, res: Any, out: AnalysisResults, sec: Section
) -> Check:
    from evaltoolkit.estimators.sensitivity import parallel_trends as pt

    d = study.design
    question = "Would the groups have changed alike without the programme (parallel trends)?"
    if not d.pre_waves:
        return Check("Parallel trends", question, pt.one_pre_wave_statement().text, None)
    kw = d.panel_arguments()
    cluster = a.cluster or (d.columns.clusters[-1] if d.columns.clusters else None)
    post = (a.post or d.post_waves)[0]
    vcov_type = "CR1" if res.details.get("vcov") == "CR1" else "CR2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = pt.event_study_estimates(
            study.data, outcome, kw["arm"], kw["wave"], treated=kw["treated"], control=kw["control"],
            pre=[*d.pre_waves, d.baseline], post=post, unit=kw["unit"], cluster=cluster,
            dichotomise=d.outcome(outcome).dichotomise, vcov_type=vcov_type,
        )  # fmt: skip
        test = pt.pretrend_test(es)
        rm = pt.relative_magnitudes_bounds(es, mbar=[0.0, *d.sensitivity.parallel_trends.mbar])
    from evaltoolkit.plots.trends import honest_bounds_plot

    sec.text.append(test.text)
    sec.text.append(rm.text)
    sec.blocks.append(Table(rm.table, caption="Honest bounds for the effect (relative magnitudes)"))
    sec.blocks.append(FigureBlock(honest_bounds_plot(rm), "honest bounds for parallel trends"))
    b = rm.breakdown
    finding = f"{test.text} {rm.text}"
    if not _significant(res):
        return Check("Parallel trends", question, finding, None)
    margin = 0.0 if b is None or b == 0 else float(b)
    return Check(
        "Parallel trends",
        question,
        finding,
        margin,
        f"the conclusion holds only while trends differ by less than {b:.2g} times the largest pre-programme "
        "difference"
        if b
        else "the effect is not distinguishable from a violation of parallel trends",
    )


_NAMES = {"did": "DiD", "ancova": "ANCOVA"}


def _attrition(
    study: Study, a: Analysis, outcome: str, res: Any, out: AnalysisResults, sec: Section
) -> Check:
    from evaltoolkit.estimators.sensitivity import missing_data as md

    d, c = study.design, study.design.columns
    plan = d.sensitivity.missing
    question = "Could the people lost to follow-up change the conclusion?"
    post = (a.post or d.post_waves)[0]
    cluster = a.cluster or (c.clusters[-1] if c.clusters else None)
    covs = [v for v in d.covariates if pd.api.types.is_numeric_dtype(study.data[v])]
    keep = [c.arm, *([cluster] if cluster else []), *covs]
    base = study.data[study.data[c.wave].isin([d.baseline, post])]
    wide = md.wide_panel(base, c.id, c.wave, outcome, baseline=d.baseline, follow_up=post, keep=keep)
    pre, post_col = f"{outcome}_pre", f"{outcome}_post"
    wide = wide[wide[pre].notna()]
    lost = int(wide[post_col].isna().sum())
    if lost == 0:
        return Check("Attrition", question, "Everyone at baseline was followed up.", None)
    seed = out.extras.get("seed")
    seed = 20240601 if seed is None else int(seed)
    rows, sentences = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lee = md.lee_bounds(
            wide.assign(change=wide[post_col] - wide[pre]), "change", c.arm, treated=d.arms.treated,
            cluster=cluster, n_boot=499, seed=seed,
        )  # fmt: skip
        rows.append(("Lee (2009) bounds, change score", lee.lower, lee.upper, lee.ci_lower, lee.ci_upper))
        rw = md.response_weights(base, c.id, c.arm, c.wave, outcome=outcome, baseline=d.baseline, follow_up=post,
                                 covariates=covs, cluster=cluster)  # fmt: skip
        cmp_ = md.weighted_estimates(base, outcome, c.arm, c.wave, treated=d.arms.treated, unit=c.id,
                                     baseline=d.baseline, follow_up=post, weights=rw, cluster=cluster,
                                     covariates=covs, vcov="CR1" if cluster else "HC1")  # fmt: skip
        for (est_name, weighting), r in cmp_.results.items():
            if weighting != "unweighted":
                rows.append((f"{_NAMES.get(est_name, est_name)}, response-weighted",
                             r.estimate, r.estimate, r.ci_lower, r.ci_upper))  # fmt: skip
        sd = float(np.nanstd(wide[pre], ddof=1))
        toward_null = -1.0 if res.estimate >= 0 else 1.0  # shifts that move the effect toward zero
        deltas = plan.delta or list(np.round(np.linspace(0.0, 1.5, 16) * sd * toward_null, 4))
        an = md.ancova_analysis(post_col, c.arm, treated=d.arms.treated, baseline=pre, covariates=covs,
                                cluster=cluster, vcov="CR1")  # fmt: skip
        m = plan.imputations
        cols = [pre, post_col, *covs]
        mi = md.multiple_imputation(wide, an, columns=cols, m=m, cluster=cluster, by=c.arm, seed=seed)
        rows.append(
            (f"multiple imputation (m = {m}), ANCOVA", mi.estimate, mi.estimate, mi.ci_lower, mi.ci_upper)
        )
        tp = md.tipping_point(wide, an, outcome=post_col, arm=c.arm, treated=d.arms.treated, deltas=deltas,
                              shift="treated", columns=cols, m=m, cluster=cluster, by=c.arm, seed=seed)  # fmt: skip
    sentences.append(
        f"{lost:,} of {len(wide):,} people at baseline were not followed up at {d.wave(post).display.lower()}."
    )
    weighted = [(n, r) for (n, w), r in cmp_.results.items() if w != "unweighted"]
    if weighted:
        sentences.append(
            "Weighting those followed up by their inverse probability of answering (modelled on baseline answers, "
            f"covariates and the {cluster or 'group'}): "
            + "; ".join(
                f"{_NAMES.get(n, n)} {r.estimate:+.2f} (95% CI {r.ci_lower:+.2f} to {r.ci_upper:+.2f})"
                for n, r in weighted
            )
            + "."
        )
    sentences.append(
        f"Lee bounds on the effect on the change: {lee.lower:+.2f} to {lee.upper:+.2f} (95% CI {lee.ci_lower:+.2f} "
        f"to {lee.ci_upper:+.2f}): the effect if those lost were the most or the least favourable."
    )
    sentences.append(
        f"Multiple imputation ({plan.assumption}: missing follow-ups predicted from baseline answers, covariates "
        f"and the {cluster or 'group'}): {mi.estimate:+.2f} (95% CI {mi.ci_lower:+.2f} to {mi.ci_upper:+.2f})."
    )
    if tp.tipping_delta is None:
        reach = max(abs(float(x)) for x in deltas)
        sentences.append(
            f"Tipping point: the conclusion holds even if programme non-completers changed {reach:.2f} points "
            f"({reach / sd:.1f} SD) {'less' if res.estimate >= 0 else 'more'} than similar completers (the widest "
            "departure from missing at random tried)."
        )
    else:
        sentences.append(
            f"Tipping point: the conclusion holds unless programme non-completers changed at least "
            f"{abs(tp.tipping_delta):.2f} points ({abs(tp.tipping_delta) / sd:.2f} SD) "
            f"{'less' if res.estimate >= 0 else 'more'} than similar completers."
        )
    sec.text.extend(sentences)
    table = pd.DataFrame(rows, columns=["method", "lower", "upper", "ci_lower", "ci_upper"])
    est_rows = [
        {"term": f"{r.method} (lower)" if r.lower != r.upper else r.method, "estimate": r.lower,
         "ci_lower": r.ci_lower, "ci_upper": r.ci_upper, "method": f"attrition sensitivity: {r.method}"}
        for r in table.itertuples()
    ] + [
        {"term": "Lee (2009) bounds, change score (upper)", "estimate": lee.upper, "ci_lower": lee.ci_lower,
         "ci_upper": lee.ci_upper, "method": "attrition sensitivity: Lee (2009) bounds, change score"}
    ]  # fmt: skip
    if tp.tipping_delta is not None:
        est_rows.append({"term": "tipping point (shift of programme non-completers, points)",
                         "estimate": tp.tipping_delta, "method": "attrition sensitivity: delta-adjusted MI"})  # fmt: skip
    sec.blocks.append(Table(table, caption="Attrition: the effect under other assumptions about those lost"))
    sec.blocks.append(Table(tp.table, caption="Tipping point: the effect if non-completers changed less"))
    margin = None
    why = ""
    if _significant(res):
        if tp.tipping_delta is None:
            margin = math.inf
        else:
            margin = abs(tp.tipping_delta) / (0.5 * sd) if sd > 0 else 0.0
            why = (
                f"it is overturned if programme non-completers changed {abs(tp.tipping_delta):.2f} points "
                f"({abs(tp.tipping_delta) / sd:.2f} SD) less than completers"
            )
        if lee.ci_lower <= 0 <= lee.ci_upper:  # the worst case for those lost includes no effect
            margin = min(margin, 0.9) if margin is not None else 0.9
            why = "the Lee bounds (the most and least favourable cases for those lost) include no effect" + (
                f", and {why}" if why else ""
            )
    return Check("Attrition", question, " ".join(sentences[1:]), margin, why, est_rows)


@runner(
    "robustness",
    methods=(
        "How robust is this? The primary effect is checked against each threat the design names: the few-cluster "
        "rule and randomisation inference (MacKinnon & Webb 2020); parallel trends, with earlier pre-programme "
        "waves, by a joint pre-trend test (with its power, Roth 2022) and honest bounds under relative magnitudes "
        "(Rambachan & Roth 2023); attrition by Lee (2009) bounds, multiple imputation by chained equations with "
        "cluster means (Rubin's rules, Barnard-Rubin df) and a delta-adjusted tipping point."
    ),
)
def run_robustness(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Every pre-specified sensitivity analysis of the primary effect; one table, one sentence each."""
    target = _target(study, out)
    if target is None:
        out.note(
            "robustness: no difference-in-differences estimate to check (plan a did analysis before it)."
        )
        return
    a, outcome, res = target
    d = study.design
    o = d.outcome(outcome)
    sec = Section(id=f"analysis-{analysis.id}", title="How robust is this?")
    sec.text.append(
        f"Each check asks how strong a threat would have to be to change the conclusion about {o.display.lower()} "
        f"({res.estimate:+.2f} points, 95% CI {res.ci_lower:+.2f} to {res.ci_upper:+.2f})."
    )
    checks: list[Check] = []
    for name in d.sensitivity.checks:
        fn = {"few_clusters": lambda: _few_clusters(study, a, res),
              "parallel_trends": lambda: _parallel_trends(study, a, outcome, res, out, sec),
              "attrition": lambda: _attrition(study, a, outcome, res, out, sec),
              "confounding": lambda: _confounding(study, a, outcome, res, out, sec)}[name]  # fmt: skip
        try:
            checks.append(fn())
        except Exception as exc:
            out.note(f"robustness: the {name.replace('_', ' ')} check could not be completed ({exc}).")
    table = pd.DataFrame([{"check": c.check, "question": c.question, "finding": c.finding} for c in checks])
    sec.blocks.insert(0, Table(table, caption="How robust is this? One row per check"))
    out.extras["robustness"] = checks
    rows = [r for c in checks for r in c.rows]
    if rows:
        est = pd.DataFrame(rows).assign(analysis=analysis.id, outcome=outcome, n_obs=res.n_obs,
                                        n_clusters=res.n_clusters)  # fmt: skip
        for col in ("std_error", "ci_lower", "ci_upper", "p_value"):
            if col not in est:
                est[col] = np.nan
        out.tables.append(est[list(ESTIMATE_COLUMNS)])
    out.sections.append(sec)


def _confounding(
    study: Study, a: Analysis, outcome: str, res: Any, out: AnalysisResults, sec: Section
) -> Check:
    """Cinelli & Hazlett on the covariate-adjusted comparison at the first follow-up (baseline score and covariates
    as benchmarks: a hidden confounder "as strong as the baseline score"), with the cluster-robust SE; E-value."""
    from evaltoolkit.estimators.ancova import ancova
    from evaltoolkit.estimators.sensitivity.ovb import e_value, ovb_ancova
    from evaltoolkit.plots.sensitivity import confounding_contour_plot

    d, c = study.design, study.design.columns
    plan = d.sensitivity.confounding
    question = (
        "How strong would a hidden difference between the groups have to be to explain the effect away?"
    )
    post = (a.post or d.post_waves)[0]
    cluster = a.cluster or (c.clusters[-1] if c.clusters else None)
    data = study.data
    base = data[data[c.wave] == d.baseline][[c.id, outcome]].rename(columns={outcome: f"{outcome}_baseline"})
    wide = data[data[c.wave] == post].merge(base, on=c.id, how="inner", validate="one_to_one")
    covs = list(d.covariates)
    kw = dict(treated=d.arms.treated, baseline=f"{outcome}_baseline", covariates=covs, cluster=cluster)  # the
    # study has already set aside arms outside the design, so every other arm is the comparison (as ANCOVA's runner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ancova(wide, outcome, c.arm, vcov="CR1" if cluster else "HC1", **kw)
        benchmarks = [f"{outcome}_baseline", *(plan.benchmarks or covs)]
        s = ovb_ancova(wide, outcome, c.arm, result=fit, benchmarks=benchmarks, kd=plan.multiples, **kw)
    g = next(
        (float(r["estimate"]) for _, r in fit.table.iterrows() if str(r["term"]).startswith("hedges_g")), None
    )
    ev = e_value(g) if g is not None else None
    labels = {f"{outcome}_baseline": f"the baseline {d.outcome(outcome).display.lower()} score"}
    sentences = [
        f"Confounding is judged on the covariate-adjusted comparison at {d.wave(post).display.lower()} (ANCOVA, "
        f"{s.estimate:+.2f}), where the baseline score and the covariates are observed yardsticks for a hidden one.",
        *s.sentences(digits=2),
    ]
    for k, v in labels.items():
        sentences = [x.replace(f"as strong as {k}", f"as strong as {v}") for x in sentences]
    if ev is not None:
        sentences.append(
            f"E-value: a confounder associated with both taking part and the outcome by a risk ratio of "
            f"{ev['e_value']:.2f} each could explain the effect (about {g:.2f} SD) away (VanderWeele & Ding 2017)."
        )
    # a benchmark whose outcome strength is capped at 1 gives a degenerate interval: its sentence is left out
    sec.text.extend(x for x in sentences if not re.search(r"CI (\S+) to \1\)", x))
    bounds = s.bounds.copy()
    for col in ("benchmark", "bound_label"):  # the baseline score in words, not its column name
        bounds[col] = [
            str(v).replace(f"{outcome}_baseline", "baseline score").replace("_", " ") for v in bounds[col]
        ]
    sec.blocks.append(
        Table(bounds, caption="Confounding: the effect adjusted for a confounder as strong as each benchmark")
    )
    sec.blocks.append(FigureBlock(confounding_contour_plot(s), "confounding contour plot"))
    margin, why = None, ""
    if _significant(res) and len(s.benchmarks):
        both = s.benchmarks.assign(both=s.benchmarks[["r2dxj_x", "r2yxj_dx"]].min(axis=1))
        top = both.loc[both["both"].idxmax()]
        if top["both"] > 0:
            margin = float(s.rv_qa / top["both"])
            name = labels.get(str(top["benchmark"]), str(top["benchmark"]))
            why = (
                f"a hidden confounder would need {margin:.1f} times the strength of {name} (with both taking part "
                "and the outcome) to leave the effect no longer distinguishable from zero"
            )
    finding = " ".join(sentences[:3] + ([sentences[-1]] if ev is not None else []))
    method = f"confounding sensitivity (Cinelli & Hazlett 2020) on the ANCOVA at {post}; {s.method}".rstrip(
        "; "
    )
    est_rows = [
        {"term": "robustness value (to zero)", "estimate": s.rv_q, "method": method},
        {"term": "robustness value (to not significant at 5%)", "estimate": s.rv_qa, "method": method},
        *(
            [{"term": "E-value", "estimate": ev["e_value"], "method": "E-value (VanderWeele & Ding 2017)"}]
            if ev is not None
            else []
        ),
    ]
    return Check("Confounding", question, finding, margin, why, est_rows)


def closest_threat(checks: list[Check]) -> str | None:
    """The summary's sentence: which check comes closest to overturning the conclusion (None: no check bears)."""
    bearing = [c for c in checks if c.margin is not None]
    if not bearing:
        return None
    c = min(bearing, key=lambda x: x.margin)
    if math.isinf(c.margin):
        return "None of the checks could overturn the conclusion within the ranges tried."
    if c.margin < 1:
        return f"Closest to overturning the conclusion: {c.check.lower()} - {c.why}."
    return f"The conclusion survives every check; the closest is {c.check.lower()}: {c.why}."
