"""One label registry: what a reader sees for each column name and model term, in HTML, Excel and Word alike.

Machine names stay in the data contract (``estimates.csv`` keeps ``term = "treat:post"``); every table a person
reads goes through :func:`label_table`, which renames columns (:func:`column_label`) and rewrites the cells of
term-like columns (:func:`term_label`). Unknown snake_case names fall back to plain words, so no
``snake_case`` identifier or ``a@b`` / ``a:b`` term reaches a reader; :data:`GLOSSARY` explains the technical words
that remain.

Examples
--------
>>> column_label("smd_unadjusted"), column_label("omega_total"), column_label("retention_1")
('Standardised difference (unweighted)', "McDonald's omega", 'Retention (wave 2)')
>>> term_label("treat:post", waves={"post": "3-5 months after"})
'Programme effect, 3-5 months after'
>>> term_label("hedges_g_total@post", waves={"post": "3-5 months after"})
"Hedges' g (total SD), 3-5 months after"
>>> term_label("b[d_positive_contact->d_attitudes]", names={"positive_contact": "Positive contact"})
'Path b: change in Positive contact to change in attitudes'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

__all__ = ["COLUMN_LABELS", "GLOSSARY", "TERM_COLUMNS", "column_label", "label_table", "plain", "term_label"]

#: column name -> the header a reader sees
COLUMN_LABELS: dict[str, str] = {
    "analysis": "Analysis", "outcome": "Outcome", "term": "Term", "estimate": "Estimate", "std_error": "Std. error",
    "ci_lower": "95% CI low", "ci_upper": "95% CI high", "p_value": "p", "p": "p", "n_obs": "Rows",
    "n_clusters": "Clusters", "method": "Method", "family": "Outcome family", "p_adjusted": "p (adjusted)",
    "adjustment": "Adjustment", "arm": "Group", "wave": "Wave", "n": "People", "mean": "Mean", "sd": "SD",
    "df": "Degrees of freedom", "alpha": "Cronbach's alpha", "omega_total": "McDonald's omega",
    "n_items": "Items", "scale": "Scale", "label": "Description", "flag": "Below 0.7", "note": "Note",
    "covariate": "Characteristic", "variable": "Characteristic", "smd": "Standardised difference",
    "smd_unadjusted": "Standardised difference (unweighted)", "smd_adjusted": "Standardised difference (weighted)",
    "var_ratio_unadjusted": "Variance ratio (unweighted)", "var_ratio_adjusted": "Variance ratio (weighted)",
    "imbalanced": "Imbalanced", "mean_treated": "Mean, programme group", "mean_control": "Mean, comparison group",
    "mean_treated_adj": "Mean, programme group (weighted)", "mean_control_adj": "Mean, comparison group (weighted)",
    "mean_completers": "Mean, stayed in the study", "mean_dropouts": "Mean, dropped out",
    "n_baseline": "People at baseline", "n_completers": "Stayed in the study", "n_dropouts": "Dropped out",
    "overall_attrition": "Attrition, overall", "differential_attrition": "Attrition, difference between groups",
    "posterior_mean": "Posterior mean", "posterior_median": "Posterior median", "posterior_sd": "Posterior SD",
    "hdi_lower": "95% HDI low", "hdi_upper": "95% HDI high", "prob_positive": "Probability the effect is positive",
    "prob_rope": "Probability the effect is negligible", "prior": "Prior", "prior_mean": "Prior mean",
    "prior_sd": "Prior SD", "diagnostics_ok": "Sampler checks passed", "checks": "Sampler checks", "group": "Level", "variance": "Variance",
    "sd_cor": "SD or correlation", "term1": "Term", "term2": "Second term", "test": "Test", "type": "Type",
    "moderator_value": "Moderator value", "ci_low": "95% CI low", "ci_high": "95% CI high",
    "retention": "Retention", "hedges_g": "Hedges' g", "icc": "Intra-cluster correlation",
    "smallest_p": "Smallest possible p", "inference": "Inference",
    "check": "Check", "question": "What it asks", "finding": "What it found",
    "bound_label": "Hidden confounder", "benchmark": "Compared with", "kd": "Times as strong with taking part",
    "ky": "Times as strong with the outcome", "r2dz_x": "R² with taking part", "r2yz_dx": "R² with the outcome",
    "adjusted_estimate": "Adjusted estimate", "adjusted_se": "Adjusted SE", "adjusted_t": "Adjusted t",
    "adjusted_lower": "Adjusted 95% CI low", "adjusted_upper": "Adjusted 95% CI high",
    "Mbar": "Mbar (times the largest pre-programme difference)", "M": "M (change in slope per wave)",
    "lb": "95% set low", "ub": "95% set high", "delta": "Shift of non-completers (points)",
    "excludes_zero": "Interval excludes zero", "lower": "Lower", "upper": "Upper",
}  # fmt: skip

#: columns whose cells are model terms (rewritten by :func:`term_label`)
TERM_COLUMNS: tuple[str, ...] = ("term", "term1", "term2")

#: technical words that remain in a readable report, and what they mean
GLOSSARY: dict[str, str] = {
    "95% CI": "confidence interval: the range of effects compatible with the data at the 95% level",
    "Cluster": "a group whose members answer alike (a team, school or site); inference allows for it",
    "Difference-in-differences": "the change in the programme group minus the change in the comparison group",
    "Hedges' g": "an effect in standard deviations, corrected for small samples",
    "HDI": "highest-density interval: the 95% most probable effects under a Bayesian model",
    "p": "the chance of an effect at least this large if the programme made no difference",
    "Standardised difference": "a group difference in standard deviations; above 0.1 is a notable imbalance",
    "Cronbach's alpha": "how consistently a scale's items measure the same thing (0.7 or more is usual)",
    "Randomisation inference": "a test that re-estimates the effect for every way the programme could have gone "
    "to as many clusters; with few clusters there are few ways, so small p-values are impossible",
    "Robustness value": "how much of the remaining variation in taking part and in the outcome a hidden "
    "confounder would have to explain to overturn the result",
    "E-value": "how strongly (as a risk ratio) a hidden confounder would have to be tied to both taking part and "
    "the outcome to explain the effect away",
    "Lee bounds": "the effect in the most and least favourable cases for the people lost to follow-up",
    "Tipping point": "how much worse the people lost would have to have done for the conclusion to change",
    "Wild cluster bootstrap": "a test that re-draws the data cluster by cluster to judge the effect when clusters "
    "are few",
}

_RETENTION = re.compile(r"^retention_(\d+)$")
_AT = re.compile(r"^(?P<what>.+)@(?P<wave>[^@]+)$")
_PATH = re.compile(r"^(?P<path>[abc]|indirect)\[(?P<inside>[^\]]*)\]$")


def plain(name: str) -> str:
    """Plain words for an unknown machine name: ``"n_completers" -> "N completers"``."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else text


def column_label(name: str) -> str:
    """The header a reader sees for a column name (never a snake_case identifier)."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    m = _RETENTION.match(str(name))
    if m:
        return f"Retention (wave {int(m.group(1)) + 1})"
    return plain(name) if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+|[a-z]+", str(name)) else str(name)


def _name(x: str, names: Mapping[str, str]) -> str:
    change = x.startswith("d_")
    base = x[2:] if change else x
    shown = names.get(base, base.replace("_", " "))
    return f"change in {shown}" if change else shown


def term_label(
    term: str, *, waves: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None
) -> str:
    """A model term in words: ``treat:post`` -> "Programme effect, 3-5 months after"; unknown terms in plain words.

    ``waves`` maps wave names to their labels and ``names`` column names to labels (outcomes, mediators).
    """
    waves, names = dict(waves or {}), dict(names or {})
    t = str(term)
    prior = re.search(r"\s*\[prior=(\w+)\]$", t)
    if prior:
        return f"{term_label(t[: prior.start()], waves=waves, names=names)} ({prior.group(1)} prior)"
    if t.startswith("treat:"):
        return f"Programme effect, {waves.get(t[6:], t[6:])}"
    m = _AT.match(t)
    if m:
        what = {"treatment": "Programme effect", "hedges_g_total": "Hedges' g (total SD)",
                "hedges_g_conditional": "Hedges' g (residual SD)"}.get(m["what"], plain(m["what"]))  # fmt: skip
        return f"{what}, {waves.get(m['wave'], m['wave'])}"
    m = _PATH.match(t)
    if m:
        inside = m["inside"]
        if "->" in inside:
            src, dst = inside.split("->", 1)
            return f"Path {m['path']}: {_name(src, names)} to {_name(dst, names)}"
        if m["path"] == "indirect":
            return f"Indirect effect through {_name(inside, names)}"
        return f"Path {m['path']}: programme to {_name(inside, names)}"
    special = {"c'": "Direct effect (c')", "total_indirect": "Total indirect effect", "total": "Total effect",
               "Intercept": "Intercept", "treatment": "Programme effect", "programme": "Programme effect",
               "hedges_g_total": "Hedges' g (total SD)", "hedges_g_conditional": "Hedges' g (residual SD)"}  # fmt: skip
    if t in special:
        return special[t]
    if ":" in t:  # an interaction such as arm[ncs]:segregation
        parts = [
            re.sub(r"^(\w+)\[(.+)\]$", lambda g: f"{names.get(g[1], g[1])} = {g[2]}", p) for p in t.split(":")
        ]
        return " × ".join(_name(p, names) if re.fullmatch(r"\w+", p) else p for p in parts)
    if t.endswith("_baseline"):
        return f"{_name(t.removesuffix('_baseline'), names)} at baseline"
    return _name(t, names) if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", t) else t


def label_table(
    df: pd.DataFrame, *, waves: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """A copy of ``df`` for a reader: term cells in words, outcome/analysis cells via ``names``, headers labelled.

    Examples
    --------
    >>> t = pd.DataFrame({"term": ["treat:post"], "std_error": [0.1], "outcome": ["attitudes"]})
    >>> label_table(t, waves={"post": "after"}, names={"attitudes": "Attitudes"}).to_dict("records")
    [{'Term': 'Programme effect, after', 'Std. error': 0.1, 'Outcome': 'Attitudes'}]
    """
    out = df.copy()
    for col in TERM_COLUMNS:
        if col in out.columns:
            out[col] = out[col].map(
                lambda v: term_label(v, waves=waves, names=names) if isinstance(v, str) else v
            )
    for col in ("outcome", "analysis", "variable", "covariate", "scale", "arm", "group"):
        if col in out.columns and names:
            out[col] = out[col].map(lambda v: names.get(v, v) if isinstance(v, str) else v)
    if "wave" in out.columns and waves:
        out["wave"] = out["wave"].map(lambda v: waves.get(v, v) if isinstance(v, str) else v)
    return out.rename(columns={c: column_label(c) for c in out.columns})
