"""Runners that carry out each analysis type of a design and add report sections.

Each runner takes the study, the planned analysis and the growing :class:`AnalysisResults`. Runners
call the estimators with plain DataFrames and column names, then build tables and figures; they are
the only place where design fields are translated into estimator arguments.
"""

from __future__ import annotations

import pandas as pd

from evaltoolkit.design.schema import Analysis
from evaltoolkit.design.study import Study
from evaltoolkit.inference.policy import FEW_CLUSTERS, FEW_TREATED_CLUSTERS, METHODS, VERY_FEW_TREATED
from evaltoolkit.plan.registry import AnalysisResults, Callout, FigureBlock, Section, Table, runner
from evaltoolkit.plots.balance import love_plot
from evaltoolkit.plots.flow import consort_figure
from evaltoolkit.plots.forest import forest_plot
from evaltoolkit.plots.means import event_study_plot, means_plot
from evaltoolkit.plots.moderation import moderation_plot
from evaltoolkit.privacy import suppress_small_cells
from evaltoolkit.results import p_phrase, unbounded_intervals

_WEIGHT_REASON = "weight 0 (a baseline covariate missing, trimmed or unmatched)"


@runner(
    "did",
    methods=(
        "Difference-in-differences: OLS with person fixed effects and wave effects (panel), each follow-up "
        "against baseline. Cluster-robust inference is chosen by the clusters on each side: CR1 with t(G-1) "
        f"when at least {FEW_TREATED_CLUSTERS} clusters have programme participants and {FEW_TREATED_CLUSTERS} "
        f"comparison people, and the effective number of clusters (Carter, Schnepel & Steigerwald 2017) is at "
        f"least {FEW_CLUSTERS}; below that, the wild cluster bootstrap (restricted, Rademacher or Webb weights; "
        "MacKinnon & Webb 2017) for p-values and intervals by test inversion, with CR2 standard errors and "
        "Satterthwaite degrees of freedom (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, as R clubSandwich); "
        f"with fewer than {VERY_FEW_TREATED} on one side, randomisation inference over the assignments of "
        "clusters to arms (exact when they can be listed; MacKinnon & Webb 2020), with the smallest p-value it "
        "can give. Hedges' g "
        "divides by the pooled baseline SD. p-values are adjusted within outcome families (Holm 1979 or "
        "Benjamini & Hochberg 1995). Propensity-score weighting uses a logistic model of baseline "
        "characteristics and ATT odds weights (Hernán & Robins, What If, ch. 12); its standard errors allow for "
        "the estimated weights (the logit's score equations stacked with the DiD's, one cluster sandwich)."
    ),
)
def run_did(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Difference-in-differences for each outcome, each post wave against baseline."""
    from evaltoolkit.estimators.did import did

    d, c = study.design, study.design.columns
    outcomes = analysis.outcomes or [o.name for o in d.outcomes]
    post = analysis.post or d.post_waves
    cluster = analysis.cluster or (c.clusters[-1] if c.clusters else None)
    sec = Section(
        id=f"analysis-{analysis.id}",
        title="Difference-in-differences"
        + (" (primary analysis)" if analysis.primary else "")
        + (" with propensity-score weights" if analysis.options.get("weighting") else ""),
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
    options = dict(analysis.options)
    data = study.data
    weighting = options.pop("weighting", None)
    weight_covs = options.pop("weighting_covariates", None)
    n_total = len(data)
    zero_weight = 0
    if weighting:
        # with propensity weighting `did` becomes weighted_did: SEs that allow for the estimated weights
        data, did = _propensity_weights(study, data, outcomes, weighting, weight_covs, options, sec, out)
        zero_weight = int(data.attrs.get("n_zero_weight", n_total - len(data)))
    results = []
    tables = []
    for name in outcomes:
        o = d.outcome(name)
        res = did(
            data,
            outcome=name,
            post=post,
            cluster=cluster,
            dichotomise=o.dichotomise,
            seed=out.extras.get("seed"),
            **d.panel_arguments(),
            **options,
        )
        res.analysis = analysis.id
        res.outcome = name
        tab = res.table
        tab["analysis"] = analysis.id
        tab["outcome"] = name
        out.results.append(res)
        tables.append(tab)
        results.append((o, res))
        if analysis.primary and (o.family == "primary" or len(outcomes) == 1):
            out.headline.append(
                did_sentence(
                    o.display,
                    res,
                    d.arms.label(d.arms.treated),
                    ", ".join(d.arms.label(a) for a in d.arms.control),
                    d.wave(post[0]).display,
                )
            )
        for w in res.warnings:
            out.note(f"{o.display}: {w}")
        lost = {_WEIGHT_REASON: zero_weight} if zero_weight else {}
        lost.update({k.replace("missing _ps_weight", "no weight"): v for k, v in res.dropped.items()})
        sec.text.append(out.left_out(analysis.id, o.display, lost, n_total))
    est = pd.concat(tables, ignore_index=True)
    if d.families and d.multiplicity != "none":
        from evaltoolkit.inference.multiple import correct

        est = correct(est, d.multiplicity, families=d.families).drop(columns=["reject"], errors="ignore")
        sec.text.append(
            f"p-values are also adjusted for testing several outcomes ({d.multiplicity.upper()} within each "
            "family of outcomes named in the design: column 'p_adjusted')."
        )
    out.tables.append(est)
    sec.blocks.append(Table(est, caption="Estimated effects (scale points unless stated)", kind="estimates"))
    event_studies = {o.display: None if r.dichotomised else r.event_study for o, r in results}
    waves = [w.name for w in d.waves]
    fig = event_study_plot(event_studies, waves=waves, wave_labels={w.name: w.display for w in d.waves})
    sec.blocks.append(FigureBlock(fig, "event study"))
    few = [(o, r) for o, r in results if r.details.get("vcov") in ("wild", "ri")]  # the policy left CR1
    if few:
        sec.blocks.extend(_inference_comparison(few, cluster))
    _did_figures(study, est, results, outcomes, sec)
    out.sections.append(sec)


def _missing_counts(frame: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Rows left out for a missing value, by the first missing column in ``columns`` (each row counted once)."""
    left = pd.Series(True, index=frame.index)
    lost: dict[str, int] = {}
    for col in dict.fromkeys(columns):
        if col not in frame:
            continue
        miss = left & frame[col].isna()
        if miss.any():
            words = col.removesuffix("_baseline").replace("_", " ")  # reasons are read: no snake_case names
            lost[f"no baseline {words} score" if col.endswith("_baseline") else f"missing {words}"] = int(
                miss.sum()
            )
            left &= ~miss
    return lost


def _missing_by_column(frame, dropped: dict[str, int], columns: list[str], arm: str, arms: list[str]) -> dict:
    """An estimator's "missing values" count split by column (the rest of its reasons as they are)."""
    rest = {k: v for k, v in dropped.items() if k != "missing values"}
    if not dropped.get("missing values"):
        return rest
    by_col = _missing_counts(frame[frame[arm].isin(arms)], columns)
    if sum(by_col.values()) != dropped["missing values"]:  # not the same rows: keep the estimator's own count
        return dropped
    return {**by_col, **rest}


def _propensity_weights(study: Study, data, outcomes, weighting, weight_covs, options, sec: Section, out):
    """Re-weight the comparison group by propensity scores (or match); the balance it achieves goes in ``sec``.

    Returns the weighted data and the DiD estimator to call on it: with weighting,
    :func:`~evaltoolkit.estimators.weighting.weighted_did` (standard errors that allow for the estimated
    weights); with matching, :func:`~evaltoolkit.estimators.did.did` (matching weights taken as fixed).
    """
    from functools import partial

    d, c = study.design, study.design.columns
    from evaltoolkit.estimators.did import did
    from evaltoolkit.estimators.weighting import did_weights, weighted_did

    covs = list(weight_covs or [*d.covariates, *outcomes])
    wres = did_weights(
        data, c.arm, covs, treated=d.arms.treated, unit=c.id, wave=c.wave,
        baseline=d.baseline, method="matching" if weighting == "matching" else "weighting",
    )  # fmt: skip
    data = wres.attach(data, "_ps_weight")
    for msg in wres.warnings:
        out.note(f"{sec.id.removeprefix('analysis-')}: {msg}")
    options["weights"] = "_ps_weight"
    sec.text.append(
        "The comparison group is re-weighted by propensity scores so that its baseline profile matches the "
        "participants' (the weighted difference-in-differences of the NCS evaluations). " + wres.summary()
    )
    estimator = did
    if wres.method == "weighting":
        estimator = partial(weighted_did, weighting=wres)
        sec.text.append(
            "The standard errors allow for the weights having been estimated: the propensity model's equations "
            "are solved together with the difference-in-differences (stacked M-estimation, clustered as above; "
            "Lunceford & Davidian 2004, Sant'Anna & Zhao 2020), rather than treating the weights as known."
        )
    else:
        sec.text.append("The standard errors treat the matching weights as fixed (as MatchIt does).")
    sec.blocks.append(
        Table(wres.balance.reset_index(), caption="Baseline balance before and after weighting")
    )
    sec.blocks.append(FigureBlock(love_plot(wres), "love plot"))
    return data, estimator


def _did_figures(study: Study, est, results, outcomes, sec: Section) -> None:
    """The forest plot, the means by arm and wave and their table (cells under 10 people withheld)."""
    d = study.design
    labels = {o.name: o.display for o, _ in results}
    dichotomised = {o.name for o, r in results if r.dichotomised}
    fp = est[~est["outcome"].isin(dichotomised)].copy()  # % agree (percentage points) is on another scale
    fp["label"] = fp["outcome"].map(labels) + " - " + fp["term"]
    sec.blocks.append(
        FigureBlock(forest_plot(fp, title="Effects with 95% confidence intervals"), "forest plot")
    )
    from evaltoolkit.estimators.did import parse_dichotomise

    def percent(name: str):  # % agree outcomes are described in percentages everywhere
        rule = parse_dichotomise(d.outcome(name).dichotomise) if name in dichotomised else None
        return None if rule is None else (lambda s: rule(s) * 100)

    cells = pd.concat(
        [study.cell_means(name, transform=percent(name)) for name in outcomes], ignore_index=True
    )
    fig = means_plot(
        cells,
        waves=d.wave_names,
        arms=d.arms.all,
        arm_labels=d.arms.labels,
        wave_labels={w.name: w.display for w in d.waves},
        outcome_labels=labels,
    )
    sec.blocks.append(FigureBlock(fig, "means by arm and wave"))
    if dichotomised:
        sec.text.append(
            "For "
            + ", ".join(labels[n] for n in outcomes if n in dichotomised)
            + " the means are percentages of people (e.g. % who agree), and its effects are in percentage points."
        )
    show = suppress_small_cells(cells, "n", ["mean", "sd", "ci_lower", "ci_upper"])
    show["outcome"] = show["outcome"].map(labels)
    show["arm"] = show["arm"].map(d.arms.label)
    sec.blocks.append(
        Table(
            show[["outcome", "arm", "wave", "n", "mean", "sd", "ci_lower", "ci_upper"]],
            caption="Means by arm and wave (everyone who answered that wave; cells under 10 people withheld)",
        )
    )


def _inference_comparison(results, cluster: str | None) -> list[Callout | Table]:
    """With few clusters: what conventional cluster-robust inference would claim, beside what is used."""
    rows = []
    for o, r in results:
        for term, inf in r.inference.items():
            for method, v in inf.alternatives.items():
                label = METHODS[method].label if method in METHODS else method
                if "weights" in v:
                    label += f" ({v['weights']} weights)"
                if method == "ri":
                    label += (
                        f" ({'all' if v['enumerated'] else 'a sample of'} {v['n_assignments']:,} assignments)"
                    )
                rows.append(
                    {
                        "outcome": o.display,
                        "term": term,
                        "inference": label,
                        "std_error": v.get("std_error", float("nan")),
                        "ci_lower": v.get("ci_lower"),
                        "ci_upper": v.get("ci_upper"),
                        "p_value": v.get("p_value"),
                        "smallest_p": v.get("min_p", float("nan")),
                        "df": v.get("df", float("nan")),
                    }
                )
    if not rows:
        return []
    first = results[0][1]
    g, name = first.n_clusters, cluster or "cluster"
    table = pd.DataFrame(rows)
    if table["smallest_p"].isna().all():
        table = table.drop(columns="smallest_p")
    if first.details.get("vcov") == "ri":
        ri = next(iter(first.inference.values())).alternatives["ri"]
        used = (
            f"The report uses randomisation inference: it re-estimates the effect for each of the "
            f"{ri['n_assignments']:,} ways the programme could have gone to as many {name}s, so its p-value "
            f"cannot go below {ri['min_p']:.2g}"
            + (" - no effect, however large, could be shown at the 5% level." if ri["min_p"] > 0.05 else ".")
        )
    else:
        used = "The report uses the wild cluster bootstrap, whose interval shows how little so few clusters can tell us."
    note = Callout(
        "Conventional cluster-robust standard errors (CR1) are too small when clusters are few, and with a single "
        "programme cluster the programme cannot be told apart from everything else that differs about it. The "
        f"table shows what each method would say (and the smallest p-value each could give). {used}",
        lead=f"Only {g} {name}s.",
    )
    return [note, Table(table, caption="How the conclusion depends on the inference method")]


def did_sentence(label: str, res, treated_label: str, control_label: str, wave_label: str) -> str:
    """One plain-language sentence for a DiD headline (CausalPy-style effect summary)."""
    dich = res.dichotomised
    units = "percentage points" if dich else "points"  # did() already reports % agree in percentage points
    scale = 1
    est, lo, hi = res.estimate, res.ci_lower, res.ci_upper
    bigger = "larger" if est >= 0 else "smaller"
    text = (
        f"{label} ({wave_label.lower()}): the change in the programme group ({treated_label}) was "
        f"{abs(est):.2f} {units} {bigger} than in the comparison group ({control_label}); "
        f"95% CI {ci_text(lo, hi, res.std_error * scale)}, p {p_phrase(res.p_value)}."
    )
    g = res.hedges_g
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
    """False when an interval is missing or so wide it carries no information (see ``unbounded_intervals``)."""
    import math

    return math.isfinite(lo) and math.isfinite(hi) and not bool(unbounded_intervals(lo, hi, se))


def ci_text(lo: float, hi: float, se: float) -> str:
    return f"{lo:+.2f} to {hi:+.2f}" if ci_bounded(lo, hi, se) else "unbounded"


def _baseline_wide(study: Study, outcomes: list[str], post: str) -> pd.DataFrame:
    """Rows of wave ``post`` with each outcome's baseline value as ``<outcome>_baseline``."""
    d, c = study.design, study.design.columns
    data = study.data
    post_rows = data[data[c.wave] == post]
    base = data[data[c.wave] == d.baseline][[c.id, *outcomes]]
    base = base.rename(columns={o: f"{o}_baseline" for o in outcomes})
    return post_rows.merge(base, on=c.id, how="left", validate="one_to_one")


def _adjusted(
    study: Study, analysis: Analysis, out: AnalysisResults, outcome: str, cluster: str | None
) -> dict:
    """Common arguments of the covariate-adjusted estimators (ANCOVA, moderation) for one outcome."""
    d = study.design
    return {
        "treated": d.arms.treated,
        "baseline": None if d.kind == "post_only" else f"{outcome}_baseline",
        "covariates": list(d.covariates),
        "cluster": cluster,
        "seed": out.extras.get("seed"),
        "analysis": analysis.id,
    }


@runner(
    "ancova",
    methods=(
        "ANCOVA: follow-up score on arm, baseline score and covariates; Hedges' g with the total "
        "(unconditional) variance as denominator, as the EEF Statistical Analysis Guidance (2022)."
    ),
)
def run_ancova(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """ANCOVA: outcome at each post wave on arm, the baseline score (panel designs) and covariates."""
    from evaltoolkit.estimators.ancova import ancova

    d, c = study.design, study.design.columns
    outcomes = analysis.outcomes or [o.name for o in d.outcomes]
    cluster = analysis.cluster or (c.clusters[-1] if c.clusters else None)
    post_only = d.kind == "post_only"
    waves = ["post"] if post_only else (analysis.post or d.post_waves)
    sec = Section(id=f"analysis-{analysis.id}", title="Covariate-adjusted comparison (ANCOVA)")
    sec.text.append(
        "The programme and comparison groups are compared on each outcome"
        + (" after the programme" if post_only else ", adjusting for each person's baseline score")
        + (f" and for {', '.join(d.covariates)}" if d.covariates else "")
        + ". Hedges' g expresses the difference in standard deviations of the outcome (the EEF convention: "
        "total variance in the denominator)."
    )
    if post_only:
        sec.text.append(
            "Without a baseline measurement this comparison cannot separate the programme from differences "
            "that existed between the groups beforehand."
        )
    tables = []
    for w in waves:
        frame = study.data if post_only else _baseline_wide(study, outcomes, w)
        for name in outcomes:
            o = d.outcome(name)
            res = ancova(
                frame, name, c.arm, **_adjusted(study, analysis, out, name, cluster), **analysis.options
            )
            tab = res.table
            tab["analysis"] = analysis.id
            tab["term"] = tab["term"] if post_only else tab["term"] + f"@{w}"
            out.add(res, tab)
            tables.append(tab)
            if analysis.primary and (o.family == "primary" or len(outcomes) == 1) and w == waves[0]:
                out.headline.append(
                    f"{o.display}: adjusted difference {res.estimate:+.2f} points "
                    f"(95% CI {ci_text(res.ci_lower, res.ci_upper, res.std_error)}), "
                    f"p {p_phrase(res.p_value)}."
                )
            for msg in res.warnings:
                out.note(f"{o.display}: {msg}")
            where = "" if post_only else f" ({d.wave(w).display.lower()})"
            sec.text.append(
                out.left_out(
                    analysis.id,
                    o.display + where,
                    _missing_by_column(
                        frame,
                        res.dropped,
                        [
                            name,
                            *([] if post_only else [f"{name}_baseline"]),
                            *d.covariates,
                            *([cluster] if cluster else []),
                        ],
                        c.arm,
                        d.arms.all,
                    ),
                    len(frame),
                    "people",
                )
            )
    sec.blocks.append(
        Table(pd.concat(tables, ignore_index=True), caption="ANCOVA estimates", kind="estimates")
    )
    out.sections.append(sec)


@runner(
    "balance",
    methods=(
        "Baseline balance: standardised mean differences (treated-group SD for the ATT, as cobalt) and "
        "variance ratios; |SMD| > 0.1 flagged (Austin 2009)."
    ),
)
def run_balance(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Baseline balance: standardised mean differences of covariates and baseline outcomes, love plot."""
    from evaltoolkit.estimators.balance import balance_table

    d, c = study.design, study.design.columns
    data = study.data if d.kind == "post_only" else study.data[study.data[c.wave] == d.baseline]
    covs = list(analysis.options.get("covariates", [*d.covariates, *(analysis.outcomes or [])]))
    if d.kind != "post_only" and not analysis.outcomes:
        covs += [o.name for o in d.outcomes]
    covs = list(dict.fromkeys(covs))
    # Study has already set aside arms outside the design, so every other arm is a comparison arm
    tab = balance_table(data, c.arm, covs, treated=d.arms.treated, estimand="ATT")
    n_bad = int(tab["imbalanced"].sum())
    sec = Section(id=f"analysis-{analysis.id}", title="Baseline balance")
    sec.text.append(
        "Standardised mean differences (SMD) between the programme and comparison groups "
        + ("at baseline" if d.kind != "post_only" else "on background characteristics")
        + ". Differences above 0.1 SD are flagged: "
        + (f"{n_bad} of {len(tab)} characteristics are imbalanced." if n_bad else "none are.")
        + (
            " Difference-in-differences removes stable differences in outcome levels, but imbalance warns that "
            "the groups may also differ in how they would have changed."
            if n_bad and d.kind == "panel"
            else ""
        )
    )
    sec.blocks.append(Table(tab.reset_index(), caption="Baseline balance"))
    sec.text.append(
        out.left_out(analysis.id, "Baseline characteristics", tab.attrs.get("dropped", {}), len(data))
    )
    for msg in tab.attrs.get("warnings", []):
        out.note(f"{analysis.id}: {msg}")
    sec.blocks.append(FigureBlock(love_plot(tab), "love plot"))
    out.extras["balance"] = tab
    out.sections.append(sec)


@runner(
    "attrition",
    methods=(
        "Attrition: retention per arm and wave relative to baseline, differential attrition (difference in "
        "retention with a chi-square or Fisher test) and standardised differences between completers and "
        "dropouts at baseline; CONSORT-style flow diagram (Schulz et al. 2010)."
    ),
)
def run_attrition(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Who stayed: counts per arm and wave, differential attrition, completers vs dropouts, CONSORT flow."""
    from evaltoolkit.estimators.attrition import attrition

    d, c = study.design, study.design.columns
    primary = next((o.name for o in d.outcomes if o.family == "primary"), d.outcomes[0].name)
    res = attrition(
        study.data,
        c.id,
        c.arm,
        c.wave,
        waves=d.wave_names,
        baseline=d.baseline,
        treated=d.arms.treated,
        outcome=analysis.outcomes[0] if analysis.outcomes else primary,
        baseline_vars=[*d.covariates, *[o.name for o in d.outcomes]],
    )
    sec = Section(id=f"analysis-{analysis.id}", title="Attrition: who answered each wave")
    sec.text.extend(line for line in res.summary().splitlines() if line.strip())
    sec.text.append(
        "Losing people between waves is harmless only if those who leave resemble those who stay. Where "
        "completers and dropouts differ at baseline, or one group loses more people than the other, the "
        "estimates rest on the assumption that dropout is unrelated to how people would have changed."
    )
    labels = {a: d.arms.label(a) for a in d.arms.all}
    waves = {w.name: w.display for w in d.waves}
    sec.blocks.append(FigureBlock(consort_figure(res, arm_labels=labels, wave_labels=waves), "CONSORT flow"))
    arms = res.differential.attrs.get("arms", {})  # retention_0, retention_1 -> the arm each one is
    shown = res.differential.rename(columns={k: f"Retention, {d.arms.label(a)}" for k, a in arms.items()})
    sec.blocks.append(Table(shown, caption="Differential attrition (retention by arm)"))
    shown = res.dropout_balance.drop(columns=["n_missing"], errors="ignore")
    for col in ("n_completers", "n_dropouts"):
        if col in shown:
            shown = suppress_small_cells(shown, col, [x for x in shown.columns if x.startswith("mean")])
    sec.blocks.append(
        Table(shown, caption="Completers and dropouts at baseline (SMD > 0.1 flags a difference)")
    )
    tab = res.table
    tab["analysis"] = analysis.id
    out.tables.append(tab)
    out.extras["attrition"] = res
    out.sections.append(sec)


def _baseline_moderators(study: Study, frame: pd.DataFrame, moderators: list[str]) -> pd.DataFrame:
    """Moderators measured at baseline (person-level) attached to ``frame``."""
    d, c = study.design, study.design.columns
    missing = [m for m in moderators if m not in frame.columns]
    if not missing:
        return frame
    base = study.data[study.data[c.wave] == d.baseline][[c.id, *missing]]
    return frame.merge(base, on=c.id, how="left")


@runner(
    "moderation",
    methods=(
        "Moderation: programme-by-moderator interaction in an ANCOVA model, simple slopes at the mean and +/- "
        "1 SD, and the Johnson-Neyman interval (Hayes 2013; as R interactions::johnson_neyman)."
    ),
)
def run_moderation(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Treatment x moderator (e.g. area segregation): simple slopes and the Johnson-Neyman interval."""
    from evaltoolkit.estimators.moderation import moderation

    d, c = study.design, study.design.columns
    outcomes = analysis.outcomes or [d.outcomes[0].name]
    moderators = list(analysis.options.get("moderators", d.moderators))
    cluster = analysis.cluster or (c.clusters[-1] if c.clusters else None)
    post_only = d.kind == "post_only"
    wave = "post" if post_only else (analysis.post or d.post_waves)[0]
    frame = study.data if post_only else _baseline_wide(study, outcomes, wave)
    sec = Section(id=f"analysis-{analysis.id}", title="Moderation: for whom did the programme work?")
    sec.text.append(
        "Does the effect depend on "
        + ", ".join(m.replace("_", " ") for m in moderators)
        + "? The interaction of the programme with each moderator is estimated"
        + ("" if post_only else f" at {d.wave(wave).display.lower()}, adjusting for baseline scores")
        + "; simple slopes give the effect at typical values and the Johnson-Neyman interval the range of the "
        "moderator where the effect is distinguishable from zero."
    )
    for name in outcomes:
        for mod in moderators:
            res = moderation(frame, name, c.arm, mod, **_adjusted(study, analysis, out, name, cluster))
            tab = res.table
            tab["analysis"] = analysis.id
            out.tables.append(tab)
            sec.text.append(f"{d.outcome(name).display} by {mod.replace('_', ' ')}: {res.summary()}")
            sec.text.append(
                out.left_out(
                    analysis.id,
                    f"{d.outcome(name).display} by {mod.replace('_', ' ')}",
                    res.dropped,
                    len(frame),
                    "people",
                )
            )
            sec.blocks.append(FigureBlock(moderation_plot(res), f"moderation of {name} by {mod}"))
            sec.blocks.append(Table(res.simple_slopes, caption=f"Simple slopes: {name} by {mod}"))
    out.sections.append(sec)


@runner(
    "multilevel",
    methods=(
        "Multilevel model: linear mixed model with random intercepts for the design's clusters, fitted by "
        "REML with lme4's profiled-deviance method (Bates et al. 2015); fixed effects tested with t and "
        "Satterthwaite degrees of freedom (as lmerTest); intra-class correlations per level."
    ),
)
def run_multilevel(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Random-intercept model for teams within sites at each post wave, with ICCs."""
    from evaltoolkit.estimators.multilevel import multilevel

    d, c = study.design, study.design.columns
    outcomes = analysis.outcomes or [d.outcomes[0].name]
    post_only = d.kind == "post_only"
    wave = "post" if post_only else (analysis.post or d.post_waves)[0]
    frame = study.data.copy() if post_only else _baseline_wide(study, outcomes, wave)
    frame["programme"] = (frame[c.arm] == d.arms.treated).astype(float)
    groups = list(analysis.options.get("groups", c.clusters))
    sec = Section(id=f"analysis-{analysis.id}", title="Multilevel model (teams within sites)")
    sec.text.append(
        "A linear mixed model with random intercepts for "
        + " and ".join(groups)
        + " (REML, as lme4) estimates the programme effect while allowing people in the same group to resemble "
        "each other; the intra-class correlations (ICC) say how much of the variation lies between groups."
    )
    for name in outcomes:
        rhs = ["programme"] + ([] if post_only else [f"{name}_baseline"]) + list(d.covariates)
        lost = _missing_counts(frame, [name, *rhs[1:], *groups])
        sec.text.append(out.left_out(analysis.id, d.outcome(name).display, lost, len(frame), "people"))
        fit = multilevel(
            frame.dropna(subset=[name, *rhs[1:]]),
            f"{name} ~ " + " + ".join(rhs),
            groups,
            term="programme",
            analysis=analysis.id,
            on_nonconvergence="warn",
        )
        tab = fit.table
        tab["analysis"] = analysis.id
        tab["outcome"] = name
        out.tables.append(tab)
        icc = fit.icc
        icc_text = (
            "; ".join(f"{r.level}: {r.icc:.3f}" for r in icc.itertuples())
            if isinstance(icc, pd.DataFrame)
            else ""
        )
        sec.text.append(
            f"{d.outcome(name).display}: programme effect {fit.estimate:+.3f} points "
            f"(95% CI {ci_text(fit.ci_lower, fit.ci_upper, fit.std_error)}), p {p_phrase(fit.p_value)}, "
            f"{fit.n_obs:,} people. Intra-class correlations: {icc_text}."
        )
        sec.blocks.append(Table(tab, caption=f"Fixed effects: {name}", kind="estimates"))
        sec.blocks.append(Table(fit.variance_components, caption=f"Variance components: {name}"))
        for msg in getattr(fit, "warnings", []):
            out.note(f"{d.outcome(name).display} (multilevel): {msg}")
    out.sections.append(sec)


def outcome_scales(study: Study):
    """What to pass to :func:`~evaltoolkit.scoring.reliability.reliability` for the design's multi-item outcomes.

    Returns ``(scales, names)``: the design's instruments restricted to the outcomes' instrument scales
    (reverse keys and code ranges from the instrument), or - for simulated data - a psych-style mapping
    ``{outcome: ["item", "-reversed_item", ...]}``; ``names`` maps each scale id to its outcome.
    Scales with fewer than two items, or with items missing from the data, are left out.
    """
    from evaltoolkit.scoring.scales import resolve_scales

    d = study.design
    cols = set(study.data.columns)
    scaled = {o.scale: o.name for o in d.outcomes if o.scale}
    if d.instruments and scaled:
        from evaltoolkit.instruments.library import load_instruments

        scale_ids = {sc.id for inst in load_instruments(list(d.instruments)) for sc in inst.scales}
        specs = resolve_scales(list(d.instruments), scales=[s for s in scaled if s in scale_ids])
        keep = [sp.id for sp in specs if sp.n_items > 1 and set(sp.items) <= cols]
        if keep or d.simulation is None:  # simulated data carry the simulation's items, not the instrument's
            return ({"instruments": list(d.instruments), "scales": keep} if keep else None), scaled
    if d.simulation is None:
        return None, {}
    mapping = {
        name: [("-" if i in spec.reverse else "") + i for i in spec.items]
        for name, spec in d.simulation.constructs.items()
        if name in d.outcome_names and len(spec.items) > 1 and set(spec.items) <= cols
    }
    return ({"instruments": mapping, "scales": None} if mapping else None), {k: k for k in mapping}


@runner(
    "measurement",
    methods=(
        "Scale reliability: Cronbach's alpha with the Feldt confidence interval and McDonald's omega total "
        "from a one-factor model (as R psych::alpha and psych::omega), by wave and arm; item-total "
        "correlations and alpha if an item is deleted."
    ),
)
def run_measurement(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Reliability of each outcome scale by wave and arm (alpha with CI, omega, item-total correlations)."""
    from evaltoolkit.scoring.reliability import reliability

    what, names = outcome_scales(study)
    if what is None:
        return
    c = study.design.columns
    data = study.data.rename(columns={c.wave: "wave", c.arm: "arm"}) if c.wave in study.data else study.data
    by = [b for b in ("wave", "arm") if b in data.columns]
    res = reliability(data, what["instruments"], scales=what["scales"], by=by)
    d = study.design
    sec = Section(id=f"analysis-{analysis.id}", title="Measurement: how reliable are the scales?")
    sec.text.append(
        "Each outcome is the mean of several questionnaire items (reverse-worded items reversed first). "
        "Cronbach's alpha (with a 95% interval) and McDonald's omega say how consistently the items measure "
        "the same thing, for each wave and group; values below 0.7 are flagged. Unreliable scales make effects "
        "look smaller than they are and comparisons between groups less certain."
    )
    flagged = res.flagged
    overall = res.scales[res.scales[[b for b in res.by]].eq("all").all(axis=1)] if res.by else res.scales
    sec.text.append(
        "Across the whole sample: "
        + "; ".join(
            f"{d.outcome(names[r['scale']]).display if r['scale'] in names else r['scale']} "
            f"alpha {r['alpha']:.2f}, omega {r['omega_total']:.2f}"
            for _, r in overall.iterrows()
        )
        + ". "
        + (
            f"{len(flagged)} scale-by-group combination(s) fall below {res.threshold:g}: "
            + ", ".join(sorted(set(flagged["scale"])))
            + "."
            if len(flagged)
            else f"Every scale reaches {res.threshold:g} in every wave and group."
        )
    )
    scales = res.scales.copy()
    # one name column for the reader: the outcome's label (the instrument's own scale label when it has none)
    labels = dict(zip(scales["scale"], scales["label"], strict=False)) if "label" in scales else {}
    scales["scale"] = scales["scale"].map(
        lambda s: d.outcome(names[s]).display if s in names else (labels.get(s) or s)
    )
    scales = scales.drop(columns=[c for c in ("label",) if c in scales])
    if "arm" in scales:
        scales["arm"] = scales["arm"].map(lambda a: d.arms.label(a) if a in d.arms.all else a)
    sec.blocks.append(Table(scales, caption="Reliability by scale, wave and group"))
    out.extras["reliability"] = res
    for msg in res.warnings:
        out.note(f"measurement: {msg}")
    out.sections.append(sec)


@runner(
    "mediation",
    methods=(
        "Mediation: product-of-coefficients indirect effects (Hayes 2013) with BCa bootstrap intervals "
        "(cluster bootstrap when clusters are named) and p-values from the inverted BCa interval, so p < 0.05 "
        "exactly when the interval excludes zero; pre/post mediation on change scores adjusting for "
        "baselines; sensitivity of the indirect effect to mediator-outcome confounding (rho at which it "
        "vanishes; Imai, Keele & Yamamoto 2010)."
    ),
)
def run_mediation(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Path model through the design's mediators (pre/post change scores for panels), a path diagram,
    the indirect-effects table, moderated mediation by the design's moderators and the ρ sensitivity plot."""
    from evaltoolkit.estimators.mediation.causal import mediation_sensitivity
    from evaltoolkit.estimators.mediation.paths import mediation, prepost_mediation
    from evaltoolkit.plots.mediation import path_diagram, sensitivity_plot

    d, c = study.design, study.design.columns
    mediators = list(analysis.options.get("mediators", d.mediators))
    if not mediators:
        out.note(
            f"Analysis '{analysis.id}': the design names no mediators, so no mediation analysis was run."
        )
        return
    outcomes = [o for o in (analysis.outcomes or [o.name for o in d.outcomes]) if o not in mediators]
    cluster = analysis.cluster or (c.clusters[-1] if c.clusters else None)
    post_only = d.kind == "post_only"
    wave = "post" if post_only else (analysis.post or d.post_waves)[0]
    n_boot = int(analysis.options.get("n_boot", 5000))
    seed = out.extras.get("seed")
    if post_only:
        frame = study.data.copy()
    else:
        frame = _baseline_wide(study, [*mediators, *outcomes], wave)
    frame["programme"] = (frame[c.arm] == d.arms.treated).astype(float)
    labels = {
        "programme": d.arms.labels.get(d.arms.treated, d.arms.treated) if d.arms.labels else "programme"
    }
    labels.update({o.name: o.display for o in d.outcomes})
    sec = Section(
        id=f"analysis-{analysis.id}",
        title="Mediation: does the programme work through "
        + " and ".join(m.replace("_", " ") for m in mediators)
        + "?",
    )
    if post_only:
        res = mediation(
            frame,
            "programme",
            mediators,
            outcomes,
            covariates=list(d.covariates),
            cluster=cluster,
            n_boot=n_boot,
            seed=seed,
        )
        sens_m, sens_y, sens_cov, sens_frame = mediators[0], outcomes[0], list(d.covariates), frame
    else:
        res = prepost_mediation(
            frame,
            "programme",
            {m: (f"{m}_baseline", m) for m in mediators},
            {o: (f"{o}_baseline", o) for o in outcomes},
            covariates=list(d.covariates),
            cluster=cluster,
            n_boot=n_boot,
            seed=seed,
        )
        labels.update(
            {f"d_{k}": "change in " + _lower_first(labels.get(k, k)) for k in [*mediators, *outcomes]}
        )
        sens_frame = frame.assign(
            **{f"d_{k}": frame[k] - frame[f"{k}_baseline"] for k in [*mediators, *outcomes]}
        )
        sens_m, sens_y = f"d_{mediators[0]}", f"d_{outcomes[0]}"
        sens_cov = [f"{k}_baseline" for k in [*mediators, *outcomes]] + list(d.covariates)
    tab = res.table
    tab["analysis"] = analysis.id
    out.tables.append(tab)
    sec.text.extend(_mediation_sentences(res, labels, post_only))
    sec.text.append(
        out.left_out(
            analysis.id,
            " and ".join(labels.get(o, o) for o in outcomes) + " (mediation)",
            res.dropped,
            len(frame),
            "people",
        )
    )
    sec.blocks.append(FigureBlock(path_diagram(res, labels=labels), "path diagram"))
    sec.blocks.append(Table(res.indirect, caption="Indirect effects"))
    for msg in res.warnings:
        out.note(f"{analysis.id}: {msg}")
    # sensitivity to unmeasured mediator-outcome confounding (first mediator and outcome)
    sens = mediation_sensitivity(
        sens_frame, "programme", sens_m, sens_y, covariates=sens_cov, n_boot=min(n_boot, 1000), seed=seed
    )
    sec.text.append(
        f"Randomising (or matching on) the programme does not randomise {mediators[0].replace('_', ' ')}: "
        f"the indirect effect through it would vanish if unmeasured factors made the errors of the mediator and "
        f"outcome models correlate at ρ = {sens.rho_at_zero:.2f}."
    )
    sec.blocks.append(FigureBlock(sensitivity_plot(sens), "sensitivity of the indirect effect"))
    out.sections.append(sec)


def _mediation_sentences(res, labels: dict[str, str], post_only: bool) -> list[str]:
    """Indirect effects in words: how much of each outcome's total effect runs through each mediator."""
    tab = res.table
    out = []
    for outcome in dict.fromkeys(tab.loc[tab["term"] == "total", "outcome"]):
        rows = tab[tab["outcome"] == outcome].set_index("term")
        total = rows.loc["total"]
        name = labels.get(outcome, outcome.replace("_", " "))
        for term, r in rows.iterrows():
            if not term.startswith("indirect["):
                continue
            med = term[len("indirect[") : -1]
            share = r["estimate"] / total["estimate"] if total["estimate"] else float("nan")
            out.append(
                f"{name[0].upper() + name[1:]}: of a total effect of {total['estimate']:+.3f}, "
                f"{r['estimate']:+.3f} (95% CI {r['ci_lower']:+.3f} to {r['ci_upper']:+.3f}) runs through "
                f"{labels.get(med, med.replace('_', ' '))}"
                + (f" - about {share:.0%} of it" if 0 < share < 1.5 else "")
                + "."
            )
    if not post_only:
        out.append(
            "Changes from baseline are modelled, adjusting for baseline levels of the mediators and outcomes; "
            "intervals are cluster bootstrap intervals (BCa)."
        )
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


@runner(
    "bayes_did",
    methods=(
        "Bayesian hierarchical DiD: within-person change scores with varying trends and programme effects by "
        "site and team, the cluster deviations integrated out exactly (the Gaussian model's marginal likelihood) "
        "and drawn afterwards from their exact conditional, sampled with NUTS (nutpie); 95% highest-density "
        "intervals, P(effect > 0) and P(|effect| < ROPE). Priors on the standardised scale: weakly informative "
        "default Normal(0, 1) for the effect; cluster SDs half-normal on the ICC scale (95% below an ICC of 0.05; "
        "published ICCs for pupil-reported and neighbourhood-cohesion outcomes); 'contact', the predictive distribution of 27 randomised contact studies (Paluck, Green & Green "
        "2019); 'sceptical', centred on zero. Convergence checked with R-hat, bulk and tail ESS, divergences "
        "and E-BFMI."
    ),
)
def run_bayes_did(study: Study, analysis: Analysis, out: AnalysisResults) -> None:
    """Hierarchical Bayesian DiD with partial pooling over the design's clusters, and prior sensitivity."""
    from evaltoolkit.estimators.bayes.did import bayes_did, prior_sensitivity
    from evaltoolkit.plots.bayes import posterior_plot, ppc_plot, prior_sensitivity_plot, shrinkage_plot

    d, c = study.design, study.design.columns
    outcomes = analysis.outcomes or [d.outcomes[0].name]
    post = (analysis.post or d.post_waves)[0]
    options = dict(analysis.options)
    sensitivity = options.pop("prior_sensitivity", True)
    kwargs = {
        "treated": d.arms.treated,
        "pre": d.baseline,
        "post": post,
        "groups": tuple(options.pop("groups", c.clusters)),
        "seed": out.extras.get("seed"),
        "draws": int(options.pop("draws", 1000)),
        "chains": int(options.pop("chains", 4)),
        **options,
    }
    sec = Section(id=f"analysis-{analysis.id}", title="Bayesian multilevel difference-in-differences")
    sec.text.append(
        "A hierarchical model lets the programme's effect differ between "
        + " and ".join(kwargs["groups"])
        + " while pooling what they have in common, and gives the probability that the programme improved each "
        "outcome. Priors are stated on the standardised scale; the default is weakly informative, the "
        "'contact' prior summarises 27 randomised contact studies (Paluck, Green & Green 2019) and the "
        "sceptical prior is centred on no effect."
    )
    for name in outcomes:
        o = d.outcome(name)
        data = study.data[study.data[c.wave].isin([d.baseline, post])]
        if sensitivity:
            sens = prior_sensitivity(data, name, c.arm, c.wave, c.id, **kwargs)
            res = next(iter(sens.results.values()))
            tab = sens.table
            for prior, fit in list(sens.results.items())[1:]:  # the other priors' fits: their own warnings
                for msg in fit.warnings:
                    out.note(f"{o.display} (Bayesian, {prior} prior): {msg}")
            sec.text.append(f"{o.display}: {sens.sentence}")
            if sens.rests_on_prior:  # say it plainly in the summary too
                out.headline.append(f"{o.display} (Bayesian analysis): {sens.sentence}")
            sec.blocks.append(Table(sens.comparison, caption=f"{o.display}: results under each prior"))
            sec.blocks.append(FigureBlock(prior_sensitivity_plot(sens), f"prior sensitivity for {name}"))
        else:
            res = bayes_did(data, name, c.arm, c.wave, c.id, **kwargs)
            tab = res.table
        tab["analysis"] = analysis.id
        tab["outcome"] = name
        out.tables.append(tab)
        out.results.append(res)
        sec.text.append(f"{o.display}: {res.summary().removeprefix(f'{name}: ')}")
        sec.text.append(out.left_out(analysis.id, o.display, res.dropped, len(data)))
        sec.blocks.append(FigureBlock(posterior_plot(res), f"posterior of the effect on {name}"))
        sec.blocks.append(FigureBlock(ppc_plot(res), f"posterior predictive check for {name}"))
        if kwargs["groups"]:
            sec.blocks.append(FigureBlock(shrinkage_plot(res), f"group effects for {name}"))
        for msg in res.warnings:
            out.note(f"{o.display} (Bayesian): {msg}")
    out.sections.append(sec)


from evaltoolkit.plan import robustness as _robustness  # noqa: E402, F401  (registers "robustness")
