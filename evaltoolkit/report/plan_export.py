"""The pre-registered statistical analysis plan, written from a design file (HTML, Markdown, Word, JSON).

:func:`export_plan` turns a :class:`~evaltoolkit.design.schema.Design` into the document evaluators register
before the data come in, with the sections of the EEF statistical analysis plan template and SPIRIT 2013
(:data:`PLAN_SECTIONS`): background and hypotheses, design and comparison group, assignment, outcomes (instrument,
items, scoring, reliability rule, time points), sample size (the analytic :func:`~evaltoolkit.plan.power.power`
under the design's simulation assumptions), analysis models and inference (the few-cluster rule of
:mod:`evaltoolkit.inference.policy`), covariates, missing data, moderators, mediators, multiple comparisons,
sensitivity analyses, the evidence rating the design can earn, and deviations (none at registration). Every
format embeds the design's canonical JSON and its SHA-256 hash (:mod:`evaltoolkit.plan.deviations`), so the
plan an analysis ran can be checked against the registered one (``evaltoolkit analyse --registered plan.json``).

Examples
--------
>>> import tempfile, json
>>> from pathlib import Path
>>> paths = export_plan("ncs_prepost_control", tempfile.mkdtemp(), formats=("json", "md"))
>>> plan = json.loads(paths["json"].read_text())
>>> [s["heading"] for s in plan["sections"]][:3]
['Background and hypotheses', 'Design and comparison group', 'Assignment and selection']
>>> round(plan["sample_size"]["mdes"]["effect"], 3)   # power(n=2400, power=0.8, ...): see tests/test_plan_export.py
0.109
"""

from __future__ import annotations

import html as _html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from evaltoolkit.design.schema import Design, load_design
from evaltoolkit.errors import UsageError
from evaltoolkit.inference.policy import (
    FEW_CLUSTERS,
    FEW_TREATED_CLUSTERS,
    VERY_FEW_TREATED,
    choose_inference,
)
from evaltoolkit.io.outputs import atomic_write, refuse_overwriting_inputs, write_text
from evaltoolkit.labels import plain
from evaltoolkit.plan.deviations import canonical_json, deviations, plan_hash
from evaltoolkit.plan.power import PowerResult, power
from evaltoolkit.plan.registry import AnalysisResults, Section
from evaltoolkit.plan.summary import evidence_strength
from evaltoolkit.results import analysis_label

__all__ = ["FORMATS", "PLAN_SECTIONS", "deviations_section", "export_plan", "plan_sections", "sample_size"]

#: the formats :func:`export_plan` writes, and the file each goes to
FORMATS: dict[str, str] = {"html": "plan.html", "md": "plan.md", "docx": "plan.docx", "json": "plan.json"}

#: the plan's section headings, in order (EEF analysis-plan template; SPIRIT 2013 items 6-7, 12, 14, 20)
PLAN_SECTIONS: tuple[str, ...] = (
    "Background and hypotheses",
    "Design and comparison group",
    "Assignment and selection",
    "Outcomes",
    "Sample size and power",
    "Analysis models and inference",
    "Covariates",
    "Missing data and attrition",
    "Moderators and subgroups",
    "Mediators",
    "Multiple comparisons",
    "Sensitivity analyses",
    "Evidence rating",
    "Deviations from the registered plan",
    "The registered design",
)

#: the power the minimum detectable effect is stated at, and the reliability flag of the scoring module
TARGET_POWER = 0.8
RELIABILITY_THRESHOLD = 0.7

_KIND_WORDS = {
    "panel": "a before-and-after comparison of the programme group with a comparison group (difference-in-"
    "differences on a panel of the same people)",
    "post_only": "an after-only comparison of the programme group with a comparison group",
    "cluster_rct": "a cluster-randomised trial: whole sites are allocated to the programme or the comparison at "
    "random, and everyone is surveyed before and after",
}
_CHECK_WORDS = {
    "few_clusters": "inference with few clusters (the wild cluster bootstrap and randomisation inference beside "
    "the conventional standard errors)",
    "confounding": "an unobserved confounder (omitted-variable bias, Cinelli & Hazlett 2020)",
    "parallel_trends": "departures from parallel trends (pre-trend test and honest bounds, Rambachan & Roth 2023)",
    "attrition": "attrition (response weights, Lee bounds, multiple imputation and a tipping point)",
}
_OWN_INFERENCE = {
    "mediation": "(cluster) bootstrap BCa interval of the indirect effect",
    "bayes_did": "posterior mean and 95% credible interval",
    "multilevel": "REML, Satterthwaite degrees of freedom",
    "balance": "descriptive (standardised differences)",
    "attrition": "descriptive (retention by arm and wave)",
    "measurement": "descriptive (reliability)",
    "robustness": "the sensitivity analyses below",
}
_MISSING_WORDS = {
    "MCAR": "missing completely at random (dropout unrelated to anything measured or not)",
    "MAR": "missing at random given the baseline answers and the covariates (and the clusters, where there are any)",
    "MNAR": "missing not at random (the non-completers' scores shifted by the stated deltas)",
}


@dataclass
class PlanSection:
    """One section of the plan: a heading, paragraphs and an optional table (header row first)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "heading": self.heading,
            "paragraphs": list(self.paragraphs),
            "table": [list(r) for r in self.table],
        }


# --------------------------------------------------------------------------- sample size
def _planning_assumptions(d: Design) -> dict[str, Any] | None:
    """The power calculation's inputs, read from the design's simulation block (``None`` without one)."""
    sim = d.simulation
    if sim is None:
        return None
    first = d.post_waves[0] if d.post_waves else None
    ret = sim.retention.get(first, {}) if first else {}
    cluster = sim.assignment == "site"
    share = (
        (sim.treated_sites or round(sim.sites * sim.treated_share)) / sim.sites
        if cluster
        else sim.treated_share
    )
    control = sum(ret.get(c, 1.0) for c in d.arms.control) / len(d.arms.control)
    kept = share * ret.get(d.arms.treated, 1.0) + (1 - share) * control
    return {
        "assignment": "cluster" if cluster else "individual",
        "n": sim.n,
        "n_clusters": sim.sites if cluster else None,
        "cluster_size": sim.n / sim.sites if cluster else sum(sim.team_size) / 2,
        # latent outcome SD 1: the share of its variance between sites
        "icc": sim.site_sd**2 / (1 + sim.site_sd**2),
        # Var(post - pre) = 2 (1 - r) with unit variances, so r = 1 - change_sd^2 / 2
        "pre_post_corr": max(-0.99, min(0.99, 1 - sim.change_sd**2 / 2)),
        "analysis": "posttest" if d.kind == "post_only" else "did",
        "treated_share": share,
        "attrition": 1 - kept,
        "wave": first,
    }


def _power_args(a: dict[str, Any]) -> dict[str, Any]:
    size = {"n_clusters": a["n_clusters"]} if a["assignment"] == "cluster" else {"n": a["n"]}
    keys = ("assignment", "cluster_size", "icc", "pre_post_corr", "analysis", "treated_share", "attrition")
    return size | {k: a[k] for k in keys}


def _primary_outcome(d: Design) -> str | None:
    primary = d.families.get("primary") or [o.name for o in d.outcomes if o.family == "primary"]
    return (primary or d.outcome_names or [None])[0]


def sample_size(design: Design | str) -> dict[str, Any] | None:
    """The sample-size diagnosis: the assumptions, the MDES at 80% power and the power at the simulated effect.

    The inputs come from the design's ``simulation`` block: people (or sites, when whole sites are assigned),
    team or site size, the ICC (the share of the latent outcome's variance between sites,
    ``site_sd**2 / (1 + site_sd**2)``), the pre-post correlation (``1 - change_sd**2 / 2``), the share in the
    programme and attrition at the first follow-up (one minus the retention, averaged over the arms by their
    shares). ``None`` when the design has no simulation block.

    Returns
    -------
    dict or None
        ``{"assumptions": ..., "mdes": PowerResult, "outcome": str, "effect": float | None,
        "power_at_effect": PowerResult | None}``.

    Examples
    --------
    >>> s = sample_size("ncs_prepost_control")
    >>> round(s["assumptions"]["attrition"], 3), round(s["assumptions"]["icc"], 4)   # 1 - (.6*.78 + .4*.62)
    (0.284, 0.0588)
    """
    d = design if isinstance(design, Design) else load_design(design)
    a = _planning_assumptions(d)
    if a is None:
        return None
    args = _power_args(a)
    mdes = power(power=TARGET_POWER, **args)
    outcome = _primary_outcome(d)
    construct = d.simulation.constructs.get(outcome) if outcome else None  # type: ignore[union-attr]
    effect = construct.effect if construct is not None and construct.effect else None
    at = power(effect=effect, **args) if effect else None
    return {"assumptions": a, "mdes": mdes, "outcome": outcome, "effect": effect, "power_at_effect": at}


def _try_sample_size(d: Design) -> tuple[dict[str, Any] | None, str | None]:
    """:func:`sample_size`, or why the formula cannot be computed for this design."""
    from evaltoolkit.errors import DesignError

    try:
        return sample_size(d), None
    except DesignError as exc:
        return None, str(exc)


def _power_json(r: PowerResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    keys = ("effect", "n", "n_clusters", "power", "alpha", "se", "df", "icc", "cluster_size", "attrition",
            "pre_post_corr", "treated_share", "analysis", "assignment", "design_effect", "solved_for")  # fmt: skip
    return {k: getattr(r, k) for k in keys}


# --------------------------------------------------------------------------- the sections
def _outcome_words(d: Design, name: str) -> str:
    return d.outcome(name).display if name in d.outcome_names else plain(name)


def _find_scale(d: Design, code: str | None) -> tuple[Any, Any, Any]:
    """(instrument, scale or None, item or None) producing ``code`` among the design's instruments."""
    from evaltoolkit.errors import InstrumentError
    from evaltoolkit.instruments.library import load_instrument

    if not code:
        return None, None, None
    for ref in d.instruments:
        try:
            inst = load_instrument(ref)
        except InstrumentError:
            continue
        for sc in inst.scales:
            if sc.id == code:
                return inst, sc, None
        if code in inst.item_codes:
            return inst, None, inst.item(code)
    return None, None, None


def _outcome_row(d: Design, o) -> list[str]:
    inst, sc, item = _find_scale(d, o.scale)
    waves = [d.baseline] if d.baseline else []
    for a in d.analyses:
        if o.name in a.outcomes:
            waves += [w for w in a.post if w not in waves]
    when = ", ".join(d.wave(w).display for w in waves if w in d.wave_names) or "every wave"
    if sc is not None:
        k = len(sc.items)
        least = sc.min_items or math.ceil(k / 2)
        rs = inst.response_scale_of(sc.items[0])
        items = f"{k} item{'s' if k > 1 else ''} ({', '.join(sc.items)})"
        scoring = (f"{sc.method} of the items (reverse-keyed items reversed), scored when at least {least} of {k} "
                   f"are answered; answers {rs.min_code:g}-{rs.max_code:g}")  # fmt: skip
        rule = (f"Cronbach's alpha and McDonald's omega at each wave and arm; flagged below "
                f"{RELIABILITY_THRESHOLD:g}") if k > 1 else "single item: not applicable"  # fmt: skip
    elif item is not None:
        rs = inst.response_scale_of(item.code)
        items = f"1 item ({item.code})"
        scoring = f"the answer as given ({rs.min_code:g}-{rs.max_code:g})"
        rule = "single item: not applicable"
    else:
        items, scoring, rule = "the column as given", "as supplied in the data", "not applicable"
    if o.dichotomise:
        scoring += f"; reported as the % answering {o.dichotomise} (effects in percentage points)"
    family = "Primary" if o.family == "primary" else plain(o.family)
    source = f"{inst.title} ({inst.id})" if inst is not None else "not from a bundled instrument"
    return [o.display, family, source, items, scoring, rule, when]


def _background(d: Design) -> PlanSection:
    sec = PlanSection(PLAN_SECTIONS[0], [d.title + "."] + ([d.description] if d.description else []))
    treated, control = d.arms.label(d.arms.treated), ", ".join(d.arms.label(a) for a in d.arms.control)
    for o in d.outcomes:
        if o.family == "primary":
            sec.paragraphs.append(
                f"Hypothesis: taking part ({treated}) changes {o.display.lower()} compared with {control.lower()} "
                f"(two-sided test of no difference)."
            )
    if d.mediators:
        sec.paragraphs.append(
            "Part of the effect is hypothesised to come through "
            + ", ".join(_outcome_words(d, m).lower() for m in d.mediators)
            + "."
        )
    return sec


def _design_sections(d: Design) -> list[PlanSection]:
    treated, control = d.arms.label(d.arms.treated), ", ".join(d.arms.label(a) for a in d.arms.control)
    waves = "; ".join(f"{w.display} ({w.months:g} months)" for w in d.waves)
    clusters = ", ".join(plain(c).lower() for c in d.columns.clusters) or "none"
    design = PlanSection(PLAN_SECTIONS[1], [
        f"Design: {_KIND_WORDS[d.kind]}.",
        f"Programme group: {treated}. Comparison group: {control}.",
        f"Waves: {waves}." + (f" Baseline: {d.wave(d.baseline).display}." if d.baseline else ""),
        f"People are nested in: {clusters} (outermost first).",
    ])  # fmt: skip
    sim = d.simulation
    if d.kind == "cluster_rct" or (sim is not None and sim.assignment == "site"):
        how = "Whole sites receive the programme or not"
        how += " at random." if d.kind == "cluster_rct" else " (not at random)."
    else:
        how = ("People take part by choice; the comparison group is formed from people who did not take part, "
               "so the groups may differ before the programme (selection), which the baseline wave and the "
               "covariates address.")  # fmt: skip
    assign = PlanSection(PLAN_SECTIONS[2], [how])
    if sim is not None:
        k = sim.treated_sites or round(sim.sites * sim.treated_share)
        assign.paragraphs.append(
            f"Planned: {sim.n:,} people at baseline in {sim.sites} sites"
            + (f", {k} of them in the programme." if sim.assignment == "site" else f", "
               f"{sim.treated_share:.0%} of people in the programme, in teams of {sim.team_size[0]}-{sim.team_size[1]}.")
        )  # fmt: skip
    return [design, assign]


def _outcomes_section(d: Design) -> PlanSection:
    sec = PlanSection(
        PLAN_SECTIONS[3], ["Primary and secondary outcomes, each with its instrument and scoring."]
    )
    sec.table = [["Outcome", "Family", "Instrument", "Items", "Scoring", "Reliability rule", "Time points"]]
    sec.table += [_outcome_row(d, o) for o in d.outcomes]
    return sec


def _sample_size_section(d: Design) -> PlanSection:
    sec = PlanSection(PLAN_SECTIONS[4])
    s, why = _try_sample_size(d)
    if why is not None:
        sec.paragraphs.append(f"The power formula cannot be applied to the planned sample: {why}.")
        return sec
    if s is None:
        sec.paragraphs.append("The design has no simulation block, so no sample size was planned in it.")
        return sec
    a, m = s["assumptions"], s["mdes"]
    sec.paragraphs.append(
        "Assumptions (from the design's simulation block): "
        + (f"{a['n_clusters']} sites of about {a['cluster_size']:.1f} people assigned as whole sites"
           if a["assignment"] == "cluster" else f"{a['n']:,} people in teams of about {a['cluster_size']:g}")
        + f"; {a['treated_share']:.0%} in the programme; intra-cluster correlation (ICC) {a['icc']:.4f}; "
        f"pre-post correlation {a['pre_post_corr']:.2f}; attrition by {d.wave(a['wave']).display if a['wave'] else 'the follow-up'} "
        f"{a['attrition']:.1%}; analysis: {a['analysis']}; two-sided alpha {m.alpha:g}."
    )  # fmt: skip
    sec.paragraphs.append(
        f"Minimum detectable effect at {TARGET_POWER:.0%} power: {m.effect:.3f} SD (standard error {m.se:.4f}, "
        f"{m.df:,.0f} degrees of freedom, design effect {m.design_effect:.3f})."
    )
    if s["power_at_effect"] is not None:
        p = s["power_at_effect"]
        sec.paragraphs.append(
            f"Power to detect the assumed effect on {_outcome_words(d, s['outcome']).lower()} "
            f"({s['effect']:.3f} SD): {p.power:.1%}."
        )
    sec.paragraphs += list(m.notes)
    sec.paragraphs.append("Computed with evaltoolkit.plan.power.power (noncentral t; Bloom 2006 for sites).")
    return sec


def _planned_clusters(d: Design, cluster: str | None) -> tuple[int, int, int] | None:
    """(clusters, programme clusters, comparison clusters) the simulation block plans for ``cluster``."""
    sim = d.simulation
    if sim is None or cluster is None:
        return None
    if cluster == d.columns.clusters[0]:
        if sim.assignment == "site":
            k = sim.treated_sites or round(sim.sites * sim.treated_share)
            return sim.sites, k, sim.sites - k
        return sim.sites, sim.sites, sim.sites  # people assigned within every site
    teams = round(sim.n / (sum(sim.team_size) / 2))
    t = round(teams * sim.treated_share)
    return teams, t, teams - t


def _inference_section(d: Design) -> PlanSection:
    sec = PlanSection(PLAN_SECTIONS[5])
    sec.table = [["Analysis", "Outcomes", "Compared waves", "Clustered by", "Inference"]]
    for a in d.analyses:
        vcov = a.options.get("vcov", "auto")
        planned = _planned_clusters(d, a.cluster)
        how = _OWN_INFERENCE.get(a.type, "as asked for") if vcov == "auto" else f"asked for: {vcov}"
        if vcov == "auto" and a.type in ("did", "ancova", "moderation"):
            if planned is None:
                how = "robust standard errors (HC1)" if a.cluster is None else "the few-cluster rule"
            else:
                g, t, c = planned
                choice, _ = choose_inference("auto", g, n_treated=t, n_control=c, ri=d.kind == "cluster_rct"
                                             or (d.simulation is not None and d.simulation.assignment == "site"),
                                             warn=False)  # fmt: skip
                how = f"the few-cluster rule; with about {g} {plain(a.cluster).lower()}s ({t} in the programme): {choice}"
        sec.table.append([
            f"{analysis_label(a.type)}{' (primary)' if a.primary else ''}: {plain(a.id)}",
            ", ".join(_outcome_words(d, o) for o in a.outcomes) or "all outcomes",
            ", ".join(d.wave(w).display for w in a.post) or "-",
            plain(a.cluster).lower() if a.cluster else "none",
            how,
        ])  # fmt: skip
    sec.paragraphs.append(
        f"The few-cluster rule (evaltoolkit.inference.policy), by the clusters on each side: with at least "
        f"{FEW_TREATED_CLUSTERS} programme and comparison clusters and at least {FEW_CLUSTERS} effective clusters, "
        f"cluster-robust standard errors (CR1) with t on G - 1 degrees of freedom; with at least {VERY_FEW_TREATED} "
        "on each side, the restricted wild cluster bootstrap (CR2 standard errors with Satterthwaite degrees of "
        f"freedom); with fewer than {VERY_FEW_TREATED} and treatment assigned by cluster, randomisation inference. "
        "Effects are reported with 95% intervals and two-sided p-values."
    )
    return sec


def _people_sections(d: Design) -> list[PlanSection]:
    cov = PlanSection(PLAN_SECTIONS[6], [
        ("Adjusted for: " + ", ".join(plain(c).lower() for c in d.covariates) + ", and the baseline score where "
         "the analysis has one.") if d.covariates else "No covariates beyond the baseline score.",
    ])  # fmt: skip
    m = d.sensitivity.missing
    miss = PlanSection(PLAN_SECTIONS[7], [
        f"Assumption: {_MISSING_WORDS[m.assumption]}."
        + (f" Shifts (scale points): {', '.join(f'{x:g}' for x in m.delta)}." if m.delta else ""),
        f"Multiple imputation with {m.imputations} imputations (Rubin's rules) and a tipping point, beside the "
        "complete-case estimate; attrition is reported by arm and wave (a CONSORT-style flow), with differential "
        "attrition tested. Every row left out is counted by reason; cells under 10 people are not shown.",
    ])  # fmt: skip
    if d.simulation is not None and d.simulation.retention:
        for w, by_arm in d.simulation.retention.items():
            miss.paragraphs.append(f"Planned retention at {d.wave(w).display.lower()}: " + "; ".join(
                f"{d.arms.label(arm)} {r:.0%}" for arm, r in by_arm.items()) + ".")  # fmt: skip
    mods = [a for a in d.analyses if a.type == "moderation"]
    mod = PlanSection(PLAN_SECTIONS[8], [
        ("Moderators: " + ", ".join(plain(x).lower() for x in d.moderators) + " (treatment by moderator "
         "interaction, simple slopes and Johnson-Neyman intervals).") if d.moderators else "No moderators planned.",
    ] + ([f"Planned in: {', '.join(plain(a.id) for a in mods)}."] if mods else []))  # fmt: skip
    meds = [a for a in d.analyses if a.type == "mediation"]
    med = PlanSection(PLAN_SECTIONS[9], [
        ("Mediators: " + ", ".join(_outcome_words(d, x).lower() for x in d.mediators) + " (product of paths with "
         "a (cluster) bootstrap interval).") if d.mediators else "No mediators planned.",
    ] + [f"{plain(a.id)}: {a.options.get('n_boot', 'default')} bootstrap resamples." for a in meds])  # fmt: skip
    return [cov, miss, mod, med]


def _multiplicity_section(d: Design) -> PlanSection:
    words = {"holm": "Holm", "bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni", "hochberg": "Hochberg",
             "by": "Benjamini-Yekutieli", "none": "no adjustment"}  # fmt: skip
    sec = PlanSection(
        PLAN_SECTIONS[10], [f"P-values are adjusted within each family by {words[d.multiplicity]}."]
    )
    sec.table = [["Family", "Outcomes"]] + [
        [plain(f), ", ".join(_outcome_words(d, o) for o in members)] for f, members in d.families.items()
    ]
    return sec


def _sensitivity_section(d: Design) -> PlanSection:
    s = d.sensitivity
    target = s.analysis or next((a.id for a in d.analyses if a.primary), None)
    sec = PlanSection(PLAN_SECTIONS[11], [
        f"Checked on {plain(target) if target else 'the primary analysis'} and "
        f"{_outcome_words(d, s.outcome) if s.outcome else 'the primary outcome'}:",
    ])  # fmt: skip
    sec.paragraphs += [f"- {_CHECK_WORDS[c]}" for c in s.checks]
    bench = s.confounding.benchmarks or d.covariates
    if "confounding" in s.checks:
        sec.paragraphs.append(
            "A hidden confounder is benchmarked on "
            + (", ".join(plain(b).lower() for b in bench) or "none")
            + f" at {', '.join(f'{k:g}' for k in s.confounding.multiples)} times its strength."
        )
    if "parallel_trends" in s.checks:
        sec.paragraphs.append(
            "Honest bounds at relative magnitudes "
            + ", ".join(f"{x:g}" for x in s.parallel_trends.mbar)
            + " (used when there are two or more waves before the programme)."
        )
    return sec


def _rating_section(d: Design) -> PlanSection:
    planned = _planned_clusters(d, d.columns.clusters[0]) if d.columns.clusters else None
    k = planned[0] if planned else 10
    data = SimpleNamespace(nunique=lambda: k)
    rating, why = evidence_strength(SimpleNamespace(design=d, study=SimpleNamespace(
        data={c: data for c in d.columns.clusters})))  # type: ignore[arg-type]  # fmt: skip
    return PlanSection(
        PLAN_SECTIONS[12],
        [f"At best: {rating}.", why]
        + (
            []
            if planned or not d.columns.clusters
            else ["(Rated assuming at least 10 top-level clusters; the design does not plan them.)"]
        ),
    )


def plan_sections(design: Design, deviation_list: Iterable[str] = ()) -> list[PlanSection]:
    """The plan's sections (:data:`PLAN_SECTIONS`, in order) as data; deviations are none at registration."""
    d = design
    devs = list(deviation_list)
    return [
        _background(d),
        *_design_sections(d),
        _outcomes_section(d),
        _sample_size_section(d),
        _inference_section(d),
        *_people_sections(d),
        _multiplicity_section(d),
        _sensitivity_section(d),
        _rating_section(d),
        PlanSection(PLAN_SECTIONS[13], devs or ["None (this is the plan as registered)."]),
        PlanSection(PLAN_SECTIONS[14], [f"SHA-256 of the canonical design JSON below: {plan_hash(d)}"]),
    ]


# --------------------------------------------------------------------------- the formats
def _md(title: str, sections: list[PlanSection], canonical: str) -> str:
    lines = [f"# Statistical analysis plan: {title}", ""]
    for s in sections:
        lines += [f"## {s.heading}", ""]
        for p in s.paragraphs:
            lines += [p, ""]
        if s.table:
            lines.append("| " + " | ".join(s.table[0]) + " |")
            lines.append("|" + "---|" * len(s.table[0]))
            lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in s.table[1:]]
            lines.append("")
    lines += ["```json", canonical, "```", ""]
    return "\n".join(lines)


def _html_doc(title: str, sections: list[PlanSection], canonical: str) -> str:
    e = lambda t: _html.escape(str(t), quote=False)  # noqa: E731
    body = [f"<h1>Statistical analysis plan: {e(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{e(s.heading)}</h2>")
        body += [f"<p>{e(p)}</p>" for p in s.paragraphs]
        if s.table:
            head = "".join(f"<th>{e(c)}</th>" for c in s.table[0])
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in s.table[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    body.append(f'<pre id="design-json">{e(canonical)}</pre>')
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em;vertical-align:top}"
             "pre{white-space:pre-wrap;word-break:break-all;font-size:.8em}")  # fmt: skip
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")  # fmt: skip


def _docx(path: Path, title: str, sections: list[PlanSection], canonical: str) -> None:
    import docx

    doc = docx.Document()
    doc.add_heading(f"Statistical analysis plan: {title}", level=0)
    for s in sections:
        doc.add_heading(s.heading, level=1)
        for p in s.paragraphs:
            doc.add_paragraph(p)
        if s.table:
            table = doc.add_table(rows=len(s.table), cols=len(s.table[0]))
            table.style = "Table Grid"
            for i, row in enumerate(s.table):
                for j, cell in enumerate(row):
                    table.cell(i, j).text = cell
    doc.add_paragraph(canonical)
    atomic_write(path, lambda tmp: doc.save(str(tmp)))


def _plan_json(d: Design, sections: list[PlanSection]) -> str:
    import evaltoolkit

    s, _ = _try_sample_size(d)
    size = None if s is None else {
        "assumptions": s["assumptions"], "outcome": s["outcome"], "effect": s["effect"],
        "mdes": _power_json(s["mdes"]), "power_at_effect": _power_json(s["power_at_effect"]),
    }  # fmt: skip
    doc = {
        "title": d.title, "evaltoolkit_version": evaltoolkit.__version__, "design_sha256": plan_hash(d),
        "design": json.loads(canonical_json(d)), "sections": [x.as_dict() for x in sections], "sample_size": size,
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False)


def export_plan(
    design: Design | str | Path,
    out_dir: str | Path,
    formats: Iterable[str] = ("html", "md", "docx", "json"),
) -> dict[str, Path]:
    """Write the statistical analysis plan of ``design`` into ``out_dir`` (``plan.html``, ``.md``, ``.docx``, ``.json``).

    Parameters
    ----------
    design : Design, str or Path
        A design, a bundled design name or a design YAML.
    out_dir : str or Path
        The folder to write into (created if needed). An output that would replace the design file is refused.
    formats : iterable of str
        Any of ``html``, ``md``, ``docx``, ``json``.

    Returns
    -------
    dict
        Format -> path written.

    Raises
    ------
    UsageError
        An unknown format, or an output that would replace the design file.

    Examples
    --------
    >>> import tempfile
    >>> paths = export_plan("cluster_rct", tempfile.mkdtemp(), formats=["md"])
    >>> "## Sample size and power" in paths["md"].read_text()
    True
    """
    d = design if isinstance(design, Design) else load_design(design)
    wanted = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise UsageError(f"unknown plan format '{(unknown or [''])[0]}'; use any of {', '.join(FORMATS)}")
    out = Path(out_dir)
    paths = {f: out / FORMATS[f] for f in dict.fromkeys(wanted)}
    refuse_overwriting_inputs(paths.values(), [d.source])
    sections = plan_sections(d)
    canonical = canonical_json(d)
    writers = {
        "md": lambda p: write_text(p, _md(d.title, sections, canonical)),
        "html": lambda p: write_text(p, _html_doc(d.title, sections, canonical)),
        "docx": lambda p: _docx(p, d.title, sections, canonical),
        "json": lambda p: write_text(p, _plan_json(d, sections)),
    }
    for f, p in paths.items():
        writers[f](p)
    return paths


# --------------------------------------------------------------------------- the report's deviations section
def deviations_section(results: AnalysisResults) -> Section | None:
    """The report's "Deviations from the registered plan" (``None`` unless ``analyse --registered`` gave a plan).

    ``results.extras["registered_plan"]`` holds the registered design (a :class:`Design`); the section lists
    every :func:`~evaltoolkit.plan.deviations.deviations` from it to the design analysed, or says none.
    """
    registered = results.extras.get("registered_plan")
    if registered is None:
        return None
    found = deviations(registered, results.design)
    sec = Section(id="deviations", title=PLAN_SECTIONS[13])
    sec.text.append(
        f"Registered plan: SHA-256 {plan_hash(registered)}; plan analysed: SHA-256 {plan_hash(results.design)}."
    )
    sec.text += found or ["None: the analysis followed the registered plan."]
    return sec
