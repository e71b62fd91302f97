"""The report's summary: the four questions a funder asks, answered in plain words, and the cautions ranked.

:func:`summarise` reads the finished :class:`~evaltoolkit.plan.registry.AnalysisResults` and answers, in this order,

1. **Did it work?** the primary outcome's effect in scale points, in standard deviations, and its interval;
2. **How sure are we?** the strength of the evidence and the two biggest threats for this design (few clusters,
   self-selection or no baseline, differential attrition, baseline imbalance, parallel trends);
3. **For whom?** the moderators the design names, with the interval of the difference;
4. **Does it last?** the latest follow-up;

then sets the effect beside the contact literature (Paluck, Green & Green 2019: about 0.39 SD across contact
studies, smaller for race and ethnicity, near zero in pre-registered studies) and, when the design gives a cost per
participant, the cost per 0.1 SD gained. :func:`group_cautions` sorts the cautions into threats to the design, data
handling and model diagnostics.

Examples
--------
>>> import evaltoolkit as et
>>> sim = et.simulate_study("ncs_prepost_control", n=600, seed=1)
>>> d = sim.design.model_copy(update={"analyses": [a for a in sim.design.analyses if a.type in ("did", "moderation")]})
>>> res = et.run_plan(et.Study(d, sim.data))
>>> [q for q, _ in res.extras["summary"]][:4]
['Did it work?', 'How sure are we?', 'For whom?', 'Does it last?']
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from evaltoolkit.design.schema import Design
from evaltoolkit.inference.policy import FEW_CLUSTERS, VERY_FEW_CLUSTERS
from evaltoolkit.plan.registry import AnalysisResults
from evaltoolkit.privacy import format_count
from evaltoolkit.results import analysis_label, unbounded_intervals

__all__ = [
    "CAUTION_GROUPS",
    "PADLOCK_RULES",
    "PALUCK_2019_D",
    "evidence_rating",
    "evidence_strength",
    "group_cautions",
    "left_out_table",
    "padlock_rating",
    "ranked_cautions",
    "summarise",
]

#: Paluck, Green & Green (2019, Behavioural Public Policy 3(2)), 27 randomised contact studies: mean d
PALUCK_2019_D = 0.39

#: the order the report shows cautions in, with the words that put a caution in each group
CAUTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Threats to the design", ("cluster", "imbalanc", "balance", "attrition", "retention", "selection",
                               "parallel", "trend", "confound", "randomis")),
    ("Data handling", ("rows", "row(s)", "left out", "set aside", "missing", "treated as missing", "merged",
                       "excluded", "dropped", "not a column", "weight 0", "answered only one")),
    ("Model diagnostics", ("r-hat", "divergen", "converge", "effective draws", "singular", "bfmi", "sampler",
                           "bootstrap", "alpha", "omega", "reliab", "failed", "could not be completed")),
)  # fmt: skip
#: words that make a caution a model diagnostic whatever else it mentions (checked first)
_DIAGNOSTIC_FIRST = ("r-hat", "divergen", "converge", "effective draws", "bfmi", "sampler", "singular")


def evidence_strength(results: AnalysisResults) -> tuple[str, str]:
    """A short rating of the design's evidence strength and the reason (Maryland SMS style)."""
    d = results.design
    n_clusters = int(results.study.data[d.columns.clusters[0]].nunique()) if d.columns.clusters else None
    return evidence_rating(d, n_clusters)


#: The padlock rating's rules, as the Education Endowment Foundation writes them ("Classifying the security of
#: EEF findings", 2019): the design, the minimum detectable effect size (MDES, in SDs, 80% power) and attrition
#: each allow at most so many padlocks; the rating is the lowest of the three (before any judgement of balance or
#: other threats, which a simulation cannot make).
PADLOCK_RULES: tuple[str, ...] = (
    "Design: randomised, up to 5; a comparison that allows for some selection on unobservables "
    "(difference-in-differences), up to 4; a comparison matched on some relevant characteristics, up to 2.",
    "MDES: 0.20 SD or less, 5; up to 0.29, 4; up to 0.39, 3; up to 0.49, 2; up to 0.59, 1; 0.60 or more, 0.",
    "Attrition: 10% or less, 5; up to 20%, 4; up to 30%, 3; up to 40%, 2; up to 50%, 1; more than 50%, 0.",
    "The rating is the lowest of the three.",
)
_PADLOCK_DESIGN = {"cluster_rct": 5, "panel": 4, "post_only": 2}
_PADLOCK_MDES = (0.20, 0.29, 0.39, 0.49, 0.59)  # upper ends for 5, 4, 3, 2, 1 padlocks
_PADLOCK_ATTRITION = (10, 20, 30, 40, 50)  # percent, upper ends for 5, 4, 3, 2, 1 padlocks


def padlock_rating(kind: str, mdes: float, attrition: float) -> int:
    """Padlocks (0-5) by the EEF rules (:data:`PADLOCK_RULES`): the lowest of design, MDES and attrition.

    Parameters
    ----------
    kind : str
        The design's kind (``cluster_rct``, ``panel``, ``post_only``).
    mdes : float
        Minimum detectable effect size in SDs (80% power, two-sided 5%), rounded to two decimals as EEF reports it.
    attrition : float
        Share of the people at baseline (or randomised) missing from the analysis, 0-1 (rounded to whole percent).

    Examples
    --------
    EEF's table: a randomised trial with MDES 0.25 and 12% attrition gets 4 padlocks (both MDES and attrition
    allow 4); a difference-in-differences with MDES 0.18 and 8% attrition gets 4 (the design allows 4):

    >>> padlock_rating("cluster_rct", 0.25, 0.12), padlock_rating("panel", 0.18, 0.08)
    (4, 4)
    >>> padlock_rating("cluster_rct", 0.62, 0.05), padlock_rating("post_only", 0.1, 0.0)
    (0, 2)
    """

    def level(value: float, ends: tuple[float, ...]) -> int:
        return 5 - sum(value > end for end in ends) if math.isfinite(value) else 0

    by_design = _PADLOCK_DESIGN.get(kind, 0)
    return min(
        by_design, level(round(mdes, 2), _PADLOCK_MDES), level(round(100 * attrition), _PADLOCK_ATTRITION)
    )


def evidence_rating(d: Design, n_clusters: int | None) -> tuple[str, str]:
    """:func:`evidence_strength` of design ``d`` with ``n_clusters`` top-level clusters (sites) in the data."""
    if d.kind == "cluster_rct":
        rating, why = (
            "Strong (randomised; Maryland Scientific Methods Scale level 5)",
            "Sites were allocated to the programme at random, so the groups should differ only by chance.",
        )
    elif d.kind == "panel":
        rating, why = (
            "Moderate (before-and-after with a comparison group; Maryland SMS level 3)",
            "Participants chose to take part, so they may differ from the comparison group in ways the "
            "before-and-after comparison does not remove; the estimate assumes both groups would have "
            "changed in the same way without the programme (parallel trends).",
        )
    else:
        rating, why = (
            "Limited (after-only comparison with a matched group; Maryland SMS level 2)",
            "Without a baseline measurement, differences between the groups that existed before the "
            "programme cannot be separated from its effect.",
        )
    if n_clusters is not None and n_clusters < VERY_FEW_CLUSTERS:
        rating = rating.split(" (")[0] + " - weakened: only " + f"{n_clusters} {d.columns.clusters[0]}s"
        why += (
            f" With only {n_clusters} independent {d.columns.clusters[0]}s, any difference between them is "
            "confounded with the programme and conventional cluster-robust standard errors cannot be trusted."
        )
    return rating, why


def group_cautions(warnings: list[str]) -> list[tuple[str, list[str]]]:
    """Cautions sorted into threats to the design, data handling and model diagnostics (others last), in order.

    Examples
    --------
    >>> group_cautions(["Attitudes (Bayesian): The chains disagree (largest R-hat 1.02)", "12 rows were set aside"])
    [('Data handling', ['12 rows were set aside']), ('Model diagnostics', ['Attitudes (Bayesian): The chains disagree (largest R-hat 1.02)'])]
    """
    groups: dict[str, list[str]] = {name: [] for name, _ in CAUTION_GROUPS}
    other: list[str] = []
    for w in warnings:
        text = w.lower()
        if any(
            k in text for k in _DIAGNOSTIC_FIRST
        ):  # a sampler problem is a diagnostic even if it names clusters
            group: str | None = CAUTION_GROUPS[2][0]
        else:  # rows left out are data handling even when the reason mentions a wave or a weight
            order = (CAUTION_GROUPS[1], CAUTION_GROUPS[0], CAUTION_GROUPS[2])
            group = next((name for name, words in order if any(k in text for k in words)), None)
        (groups[group] if group else other).append(w)
    out = [(name, items) for name, items in groups.items() if items]
    return out + ([("Other notes", other)] if other else [])


#: an estimator's own sentence about rows it left out ("695 of 5284 rows were not analysed: ...")
_ROWS_LEFT_OUT = re.compile(
    r"(?:^|: )(?:[a-z_]+: )?[\d,]+ (?:of [\d,]+ )?(?:rows?|row\(s\)|person\(s\)|people)(?=[\s,.;:])"
    r".*\b(?:not analysed|left out|dropped|excluded|answered only one)"
)


def left_out_table(results: AnalysisResults) -> pd.DataFrame:
    """The rows each analysis left out, by reason: one compact table for the report's data-handling cautions.

    One row per analysis and outcome that left anything out (from the records of
    :meth:`~evaltoolkit.plan.registry.AnalysisResults.left_out`); counts under 10 are shown as "<10".

    Examples
    --------
    >>> import evaltoolkit as et
    >>> sim = et.simulate_study("ncs_prepost_control", n=400, seed=2)
    >>> d = sim.design.model_copy(update={"analyses": [a for a in sim.design.analyses if a.type == "did"][:1]})
    >>> tab = left_out_table(et.run_plan(et.Study(d, sim.data)))
    >>> list(tab.columns), tab["Analysis"].iloc[0]
    (['Analysis', 'What', 'Left out', 'Why'], 'Difference-in-differences (primary analysis)')
    """
    titles = {s.id.removeprefix("analysis-"): s.title for s in results.sections}
    rows = []
    for rec in results.extras.get("left_out", []):
        lost = rec["lost"]
        if not lost:
            continue
        rows.append(
            {
                "Analysis": titles.get(rec["analysis"], analysis_label(rec["analysis"])),
                "What": rec["label"],
                "Left out": f"{format_count(sum(lost.values()))} of {format_count(rec['n_total'], min_n=0)} "
                f"{rec['unit']}",
                "Why": "; ".join(
                    reason if len(lost) == 1 else f"{reason} ({format_count(k)})"
                    for reason, k in lost.items()
                ),
            }
        )
    return pd.DataFrame(rows, columns=["Analysis", "What", "Left out", "Why"])


def _in_left_out_table(message: str, records: list[dict]) -> bool:
    """Whether ``message`` is an estimator's count of rows left out that the left-out table already gives."""
    if not _ROWS_LEFT_OUT.search(message):
        return False
    where = message.split(": ", 1)[0]
    return any(where == r["analysis"] or where.startswith(r["label"].split(" (")[0]) for r in records)


def ranked_cautions(results: AnalysisResults) -> tuple[list[tuple[str, list[str]]], pd.DataFrame]:
    """The report's cautions in their groups (:func:`group_cautions`), and the table of rows left out.

    Counts of rows left out that the table gives (:func:`left_out_table`) are not repeated as sentences; the
    data-handling group is there whenever the table has a row.
    """
    records = results.extras.get("left_out", [])
    table = left_out_table(results)
    groups = group_cautions([w for w in results.warnings if not _in_left_out_table(w, records)])
    data_group = CAUTION_GROUPS[1][0]
    if len(table) and all(g != data_group for g, _ in groups):
        at = 1 if groups and groups[0][0] == CAUTION_GROUPS[0][0] else 0
        groups.insert(at, (data_group, []))
    return groups, table


# --------------------------------------------------------------------------- finding the numbers
def _primary(results: AnalysisResults) -> tuple[Any, str] | None:
    d = results.design
    plan = [a for a in d.analyses if a.primary] or [a for a in d.analyses if a.type in ("did", "ancova")]
    if not plan:
        return None
    a = plan[0]
    outcomes = a.outcomes or d.outcome_names
    primary = [o for o in outcomes if o in d.families.get("primary", [])] or outcomes
    return a, primary[0]


def _rows(results: AnalysisResults, analysis: str, outcome: str) -> pd.DataFrame:
    est = results.estimates
    if est is None or est.empty:
        return pd.DataFrame()
    return est[(est["analysis"] == analysis) & (est["outcome"] == outcome)]


def _effect_row(rows: pd.DataFrame, wave: str | None) -> pd.Series | None:
    if rows.empty:
        return None
    terms = rows["term"].astype(str)
    for want in (f"treat:{wave}", f"treatment@{wave}", "treatment", "programme"):
        hit = rows[terms == want]
        if len(hit):
            return hit.iloc[0]
    return rows.iloc[0]


def _sd_units(results: AnalysisResults, analysis: str, outcome: str, wave: str | None) -> float | None:
    for r in results.results:
        if getattr(r, "analysis", None) == analysis and getattr(r, "outcome", None) == outcome:
            g = getattr(r, "hedges_g", None)
            if isinstance(g, pd.DataFrame) and not g.empty and "g" in g.columns:
                return float(g["g"].iloc[0])
    rows = _rows(results, analysis, outcome)
    hit = rows[rows["term"].astype(str).str.startswith("hedges_g_total")] if not rows.empty else rows
    return float(hit["estimate"].iloc[0]) if len(hit) else None


def _interval(row: pd.Series) -> str:
    if unbounded_intervals(row["ci_lower"], row["ci_upper"], row["std_error"]):
        return "95% CI unbounded"
    return f"95% CI {row['ci_lower']:+.2f} to {row['ci_upper']:+.2f}"


def _smallest_p(results: AnalysisResults, analysis: str, outcome: str, term: str) -> float | None:
    """The smallest p-value the randomisation test of this estimate could give (None: not that test)."""
    for r in results.results:
        if getattr(r, "analysis", None) == analysis and getattr(r, "outcome", None) == outcome:
            ri = (getattr(r, "details", {}) or {}).get("inference", {}).get(term, {}).get("ri")
            if ri:
                return float(ri["min_p"])
    return None


def _excludes_zero(row: pd.Series) -> bool:
    return bool(row["ci_lower"] > 0 or row["ci_upper"] < 0)


# --------------------------------------------------------------------------- the four answers
def _worked(results, a, outcome) -> tuple[str, float | None]:
    d = results.design
    o = d.outcome(outcome)
    wave = a.post[0] if a.post else (d.post_waves[0] if d.post_waves else None)
    row = _effect_row(_rows(results, a.id, outcome), wave)
    if row is None:
        return f"{o.display}: the primary analysis gave no estimate (see the cautions).", None
    units = "percentage points" if o.dichotomise else "points"
    g = None if o.dichotomise else _sd_units(results, a.id, outcome, wave)
    when = f" {d.wave(wave).display.lower()}" if wave in d.wave_names and d.kind != "post_only" else ""
    more = "more" if row["estimate"] >= 0 else "less"
    text = (
        f"{o.display}{when}: the programme group improved {abs(row['estimate']):.2f} {units} {more} than the "
        f"comparison group"
        + (f" (about {g:.2f} standard deviations)" if g is not None else "")
        + f"; {_interval(row)}."
    )
    floor = _smallest_p(results, a.id, outcome, str(row["term"]))
    if floor is not None and floor > 0.05:
        d_cl = d.columns.clusters[0] if d.columns.clusters else "cluster"
        text += (
            f" With so few {d_cl}s no test that compares them can give a p-value below {floor:.2f}, so these data "
            "cannot show an effect at the 5% level whatever its size; the Bayesian analysis, with its stated "
            "prior, is the better guide to its likely size."
        )
    elif _excludes_zero(row):
        text += " The interval excludes zero: a clear effect."
    else:
        text += " The interval includes no effect, so the data cannot rule out that the programme made no difference."
    return text, g


def _threats(results: AnalysisResults) -> list[str]:
    d = results.design
    found: list[tuple[int, str]] = []
    if d.columns.clusters:
        top = d.columns.clusters[0]
        k = int(results.study.data[top].nunique())
        if k < VERY_FEW_CLUSTERS:
            found.append(
                (
                    0,
                    f"only {k} {top}s, so the programme cannot be told apart from what else differs about them",
                )
            )
        elif k < FEW_CLUSTERS:
            found.append((4, f"few {top}s ({k}), so the intervals rest on small-sample corrections"))
    if d.kind == "panel":
        found.append((1, "self-selection: participants chose to take part and may differ in ways the comparison does "
                         "not remove"))  # fmt: skip
        found.append((5, "the assumption that both groups would have changed alike without the programme"))
    elif d.kind == "post_only":
        found.append(
            (1, "no baseline: differences that existed before the programme cannot be separated from it")
        )
    att = results.estimates
    if att is not None and not att.empty:
        diff = att[att["term"].astype(str).str.startswith("differential retention")]
        if len(diff) and diff["estimate"].abs().max() > 0.05:
            pts = 100 * float(diff["estimate"].abs().max())
            found.append(
                (
                    2,
                    f"differential attrition: retention differs by {pts:.0f} percentage points between the groups",
                )
            )
    bal = results.extras.get("balance")
    if isinstance(bal, pd.DataFrame) and "imbalanced" in bal and int(bal["imbalanced"].sum()):
        found.append((3, f"baseline imbalance in {int(bal['imbalanced'].sum())} characteristic(s)"))
    return [t for _, t in sorted(found)[:2]]


def _for_whom(results: AnalysisResults, outcome: str) -> str:
    d = results.design
    mods = [a for a in d.analyses if a.type == "moderation"]
    if not mods:
        return "The design plans no moderation analysis, so differences between groups of people were not tested."
    est = results.estimates
    sentences = []
    for a in mods:
        name = (a.outcomes or [outcome])[0]
        rows = _rows(results, a.id, name)
        inter = rows[rows["term"].astype(str).str.contains(":")] if not rows.empty else rows
        if inter.empty or est is None:
            sentences.append(f"{a.id}: no estimate (see the cautions).")
            continue
        r = inter.iloc[0]
        moderator = str(r["term"]).split(":")[-1].replace("_", " ")
        way = "larger" if r["estimate"] > 0 else "smaller"
        sure = "" if _excludes_zero(r) else " - but the interval includes no difference, so this is uncertain"
        sentences.append(
            f"{d.outcome(name).display}: the effect was {way} where {moderator} is higher "
            f"({r['estimate']:+.2f} per unit of {moderator}; {_interval(r)}){sure}."
        )
    return " ".join(sentences)


def _lasts(results: AnalysisResults, a, outcome: str) -> str:
    d = results.design
    if len(a.post) < 2:
        return "The design has no later follow-up, so whether the effect lasts was not measured."
    first, last = a.post[0], a.post[-1]
    rows = _rows(results, a.id, outcome)
    r0, r1 = _effect_row(rows, first), _effect_row(rows, last)
    if r1 is None or str(r1["term"]) == str(getattr(r0, "term", "")):
        return "No estimate at the latest follow-up (see the cautions)."
    share = ""
    if r0 is not None and r0["estimate"] and math.isfinite(r0["estimate"]) and r0["estimate"] > 0:
        share = f", {100 * r1['estimate'] / r0['estimate']:.0f}% of the first effect"
    return (
        f"{d.outcome(outcome).display}, {d.wave(last).display.lower()}: {r1['estimate']:+.2f} points ({_interval(r1)}"
        f"{share})." + ("" if _excludes_zero(r1) else " The interval includes no effect.")
    )


def summarise(results: AnalysisResults) -> list[tuple[str, str]]:
    """The summary as ``(question, answer)`` pairs (also stored in ``results.extras["summary"]``)."""
    found = _primary(results)
    if found is None:
        return []
    a, outcome = found
    worked, g = _worked(results, a, outcome)
    rating, _ = evidence_strength(results)
    threats = _threats(results)
    sure = f"Evidence strength: {rating.split(' (')[0].lower()}." + (
        " The main threats: " + "; ".join(threats) + "." if threats else ""
    )
    checks = results.extras.get("robustness")
    if checks:
        from evaltoolkit.plan.robustness import closest_threat

        sure += " " + (closest_threat(checks) or "")
        sure = sure.rstrip()
    out = [("Did it work?", worked), ("How sure are we?", sure), ("For whom?", _for_whom(results, outcome)),
           ("Does it last?", _lasts(results, a, outcome))]  # fmt: skip
    if g is not None:
        rel = (
            "smaller than"
            if g < PALUCK_2019_D * 0.75
            else ("larger than" if g > PALUCK_2019_D * 1.25 else "close to")
        )
        out.append((
            "Beside other contact programmes",
            f"About {g:.2f} standard deviations: {rel} the average of about {PALUCK_2019_D} in randomised contact "
            "studies (Paluck, Green & Green 2019), whose effects were smaller for race and ethnicity and near zero in "
            "pre-registered studies.",
        ))  # fmt: skip
        cost = results.design.cost_per_participant
        if cost:
            money = f"{results.design.currency}{cost:,.0f}"
            per = (
                f"about {results.design.currency}{cost * 0.1 / g:,.0f} per participant for each 0.1 SD"
                if g > 0
                else "no measurable gain for the cost"
            )
            out.append(("Cost", f"At {money} per participant, {per}."))
    results.extras["summary"] = out
    return out
