"""How strong would an unobserved confounder have to be? Omitted-variable bias for an OLS treatment effect.

The framework of Cinelli & Hazlett (2020, "Making sense of sensitivity: extending omitted variable bias",
JRSS-B 82(1):39-67; R package **sensemakr**), on the toolkit's least-squares fits, with cluster-robust
standard errors:

* :func:`ovb_sensitivity` - from an :class:`~evaltoolkit.inference.core.OLSFit` (the working arrays: any
  weights and absorbed fixed effects are already in them, so a DiD's partial R-squareds are *within person*,
  by Frisch-Waugh-Lovell). The partial R-squared of the treatment with the outcome, the robustness values
  RV_q and RV_{q,alpha}, bounds benchmarked on observed covariates ("a confounder as strong as baseline contact
  would reduce the estimate to ..."), the adjusted estimate, standard error and interval.
* :func:`ovb_formula` (data and ``"y ~ d + x1 + C(x2)"``), :func:`ovb_did` and :func:`ovb_ancova` rebuild the
  fit of :func:`~evaltoolkit.estimators.did.did` / :func:`~evaltoolkit.estimators.ancova.ancova` from the same
  arguments and, given the estimator's ``result``, use the standard error and degrees of freedom it reported.
* :func:`e_value` - VanderWeele & Ding's (2017) E-value for a risk ratio or a standardised effect.
* :func:`robustness_value` and :func:`benchmark_bounds` - the two formulas, on numbers.

Cluster-robust standard errors (``docs/sensitivity.md`` has the derivation and the simulation check). The
bias of the point estimate is SE-free: ``|bias| = sqrt(R2yz.dx R2dz.x / (1 - R2dz.x)) sd(Y.DX) / sd(D.X)``,
computed from the classical pieces (``se_classical * sqrt(df)`` is that ratio of SDs). The adjusted SE is the
classical adjusted SE times the ratio ``rho`` of the reported (cluster-robust) SE to the classical SE, i.e.
the cluster design effect of the model with the confounder is taken to equal the observed one; critical values
are t with the reported df (G - 1 for CR1). RV_{q,alpha} is then Cinelli & Hazlett's formula with the critical
``f* = rho t*_{df} / sqrt(df_resid - 1)``. With ``vcov="classical"`` everything is exactly sensemakr's.

Examples
--------
sensemakr's darfur example (``tests/data/darfur.csv``; Cinelli & Hazlett 2020, section 6; the sensemakr
README prints estimate 0.0973, SE 0.0233, partial R2 0.0219, RV_q 0.1388, RV_qa 0.0763 and, for a confounder
as strong as ``female``, an adjusted estimate 0.0752, SE 0.0219):

>>> from pathlib import Path
>>> darfur = pd.read_csv(Path(__file__).parents[3] / "tests" / "data" / "darfur.csv")
>>> s = ovb_formula(darfur, "peacefactor ~ directlyharmed + age + farmer_dar + herder_dar + pastvoted"
...                 " + hhsize_darfur + female + C(village)", "directlyharmed",
...                 benchmarks=["female"], vcov="classical")
>>> round(s.estimate, 4), round(s.std_error, 4), s.df
(0.0973, 0.0233, 783)
>>> round(s.partial_r2, 4), round(s.rv_q, 4), round(s.rv_qa, 4)
(0.0219, 0.1388, 0.0763)
>>> s.bounds[["adjusted_estimate", "adjusted_se"]].round(4).values.tolist()
[[0.0752, 0.0219]]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltoolkit.errors import DataError, EstimationError, EvalToolkitWarning, UsageError
from evaltoolkit.estimators import ancova as an
from evaltoolkit.estimators import did as dd
from evaltoolkit.estimators.balance import (
    _require_columns,
    _resolve_weights,
    arm_indicator,
    covariate_columns,
    covariate_frame,
)
from evaltoolkit.estimators.formula import covariate_column, outcome_and_covariates, parse_formula
from evaltoolkit.inference.core import OLSFit, coef_test, ols
from evaltoolkit.inference.policy import InferenceSpec, decide

__all__ = [
    "OVBSensitivity",
    "benchmark_bounds",
    "e_value",
    "ovb_ancova",
    "ovb_did",
    "ovb_formula",
    "ovb_sensitivity",
    "robustness_value",
]

#: VanderWeele (2017): a standardised mean difference d is roughly a risk ratio exp(0.91 d)
SMD_TO_LOG_RR = 0.91


# ---- the formulas ----------------------------------------------------------------------------------------
def robustness_value(
    t_statistic: float,
    df: float,
    *,
    q: float = 1.0,
    alpha: float | None = 0.05,
    f_critical: float | None = None,
) -> float:
    """Robustness value RV_q (``alpha=None``) or RV_{q,alpha} of a coefficient (Cinelli & Hazlett 2020, eq. 18-19).

    The partial R-squared that a confounder would need with *both* the treatment and the outcome to reduce the
    estimate by ``100 q`` percent (``alpha=None``) or to make the reduced estimate no longer significant at
    ``alpha``. ``f = |t| / sqrt(df)``, ``f_q = q f``, ``f* = |t_{alpha/2, df-1}| / sqrt(df - 1)`` (or
    ``f_critical``: the cluster-robust ``rho t*_{G-1} / sqrt(df - 1)``) and, with ``f_qa = f_q - f*``,
    ``RV = (sqrt(f_qa^4 + 4 f_qa^2) - f_qa^2) / 2``; 0 if ``f_qa <= 0``; when ``f_q > 1 / f*`` the constraint
    ``R2yz.dx <= 1`` binds and the extreme value ``(f_q^2 - f*^2) / (1 + f_q^2)`` is returned (sensemakr 0.1.6).

    Parameters
    ----------
    t_statistic : float
        Classical t of the coefficient.
    df : float
        Residual degrees of freedom of the model (absorbed fixed effects counted).
    q : float, default 1
        Fraction of the estimate to be explained away.
    alpha : float or None, default 0.05
        Significance level; ``None`` for the point-estimate RV_q.
    f_critical : float, optional
        Critical partial f; overrides ``alpha``.

    Returns
    -------
    float

    Examples
    --------
    sensemakr's README (darfur: t = 4.18445, 783 df) prints RV_q 0.13878 and RV_qa 0.07626:

    >>> round(robustness_value(4.184449984808342, 783, alpha=None), 5)
    0.13878
    >>> round(robustness_value(4.184449984808342, 783, alpha=0.05), 5)
    0.07626
    """
    if df <= 1:
        raise EstimationError(
            f"the model has {df} residual degrees of freedom; the robustness value needs more"
        )
    if q <= 0:
        raise UsageError(f"q must be positive (the share of the estimate to explain away), not {q}")
    fq = q * abs(t_statistic) / math.sqrt(df)
    if f_critical is None:
        f_critical = 0.0 if alpha is None else abs(float(stats.t.ppf(alpha / 2, df - 1))) / math.sqrt(df - 1)
    fqa = fq - f_critical
    if fqa <= 0:
        return 0.0
    if f_critical > 0 and fq > 1 / f_critical:
        return (fq**2 - f_critical**2) / (1 + fq**2)
    return 2 / (1 + math.sqrt(1 + 4 / fqa**2))


def benchmark_bounds(
    r2dxj_x: float, r2yxj_dx: float, kd: float = 1.0, ky: float | None = None
) -> tuple[float, float, bool]:
    """Strength of a confounder ``kd`` (``ky``) times as strong as an observed covariate X_j (Cinelli & Hazlett 2020, sec. 4.4).

    ``R2dz.x = kd R2dxj.x / (1 - R2dxj.x)`` and
    ``R2yz.dx = ((sqrt(ky) + sqrt(r)) / sqrt(1 - r))^2 R2yxj.dx / (1 - R2yxj.dx)`` with
    ``r = kd R2dxj.x^2 / ((1 - kd R2dxj.x)(1 - R2dxj.x))`` (their footnote 10), for a confounder orthogonal to
    X_j given the other covariates; ``R2yz.dx`` is capped at 1.

    Parameters
    ----------
    r2dxj_x : float
        Partial R-squared of X_j with the treatment, given the other covariates.
    r2yxj_dx : float
        Partial R-squared of X_j with the outcome, given the treatment and the other covariates.
    kd, ky : float
        Multiples of X_j's strength with the treatment and with the outcome (``ky`` defaults to ``kd``).

    Returns
    -------
    (r2dz_x, r2yz_dx, capped)

    Examples
    --------
    sensemakr's tests (darfur, 1x female): 0.00916428667504862 and 0.12464092303637.

    >>> d, y, _ = benchmark_bounds(0.00908106519033, 0.10903391542784, kd=1)  # female's partial R2s
    >>> round(d, 6), round(y, 6)
    (0.009164, 0.124641)
    """
    ky = kd if ky is None else ky
    if kd < 0 or ky < 0:
        raise UsageError("kd and ky are multiples of a covariate's strength and cannot be negative")
    r2dz = kd * r2dxj_x / (1 - r2dxj_x)
    if r2dz >= 1:
        raise EstimationError(
            f"a confounder {kd:g} times as strong as this covariate with the treatment is impossible "
            "(its partial R-squared would reach 1); use a smaller kd"
        )
    r = kd * r2dxj_x**2 / ((1 - kd * r2dxj_x) * (1 - r2dxj_x))
    if r >= 1:
        raise EstimationError(f"kd = {kd:g} is impossible for this covariate; use a smaller kd")
    r2yz = ((math.sqrt(ky) + math.sqrt(r)) / math.sqrt(1 - r)) ** 2 * r2yxj_dx / (1 - r2yxj_dx)
    return r2dz, min(r2yz, 1.0), r2yz > 1


def e_value(
    estimate: float,
    ci_lower: float | None = None,
    ci_upper: float | None = None,
    *,
    scale: str = "smd",
) -> dict[str, float]:
    """E-value of an estimate and of the interval limit nearer the null (VanderWeele & Ding 2017).

    The minimum risk ratio that a confounder would need with both the treatment and the outcome to explain
    the estimate away: ``E = RR + sqrt(RR (RR - 1))`` (for ``RR < 1`` its inverse is used); for the limit of
    the interval nearer 1, 1 if the interval includes 1. A standardised mean difference ``d`` (Hedges' g,
    ``scale="smd"``) is converted to ``RR = exp(0.91 d)`` (VanderWeele 2017, Epidemiology 28:e58; as the R
    package EValue's ``evalues.MD``), each interval limit likewise.

    Parameters
    ----------
    estimate : float
        Risk ratio (``scale="rr"``) or standardised effect (``scale="smd"``).
    ci_lower, ci_upper : float, optional
        The interval on the same scale.
    scale : {"smd", "rr"}

    Returns
    -------
    dict
        ``rr, rr_lower, rr_upper, e_value, e_value_ci`` (``e_value_ci`` NaN without an interval).

    Examples
    --------
    VanderWeele & Ding (2017, Ann Intern Med 167:268), breastfeeding and infant respiratory death, RR 3.9
    (95% CI 1.8 to 8.7): E-values 7.26 and 3.0 (EValue's vignette prints 7.263034 and 3.0):

    >>> r = e_value(3.9, 1.8, 8.7, scale="rr")
    >>> round(r["e_value"], 6), round(r["e_value_ci"], 6)
    (7.263034, 3.0)
    """
    if scale not in ("smd", "rr"):
        raise UsageError(f"scale must be 'smd' (a standardised effect) or 'rr' (a risk ratio), not {scale!r}")

    def to_rr(x: float | None) -> float:
        if x is None or not np.isfinite(x):
            return math.nan
        if scale == "rr" and x <= 0:
            raise DataError(f"a risk ratio must be positive, not {x}")
        return math.exp(SMD_TO_LOG_RR * x) if scale == "smd" else float(x)

    rr, lo, hi = to_rr(estimate), to_rr(ci_lower), to_rr(ci_upper)

    def ev(x: float) -> float:
        x = 1 / x if x < 1 else x
        return x + math.sqrt(x * (x - 1))

    if rr >= 1:
        near = lo
        e_ci = math.nan if math.isnan(near) else (1.0 if near <= 1 else ev(near))
    else:
        near = hi
        e_ci = math.nan if math.isnan(near) else (1.0 if near >= 1 else ev(near))
    return {"rr": rr, "rr_lower": lo, "rr_upper": hi, "e_value": ev(rr), "e_value_ci": e_ci}


# ---- the result ------------------------------------------------------------------------------------------
@dataclass
class OVBSensitivity:
    """Sensitivity of one treatment coefficient to unobserved confounding (from :func:`ovb_sensitivity`).

    Attributes
    ----------
    treatment : str
        The coefficient.
    estimate, std_error : float
        The estimate and the standard error used for inference (cluster-robust when clustered).
    std_error_classical : float
        The classical (homoskedastic) SE: with ``sqrt(df)`` it scales the bias.
    df : int
        Residual degrees of freedom of the model (absorbed fixed effects counted).
    df_inference : float
        Degrees of freedom of the critical values (``df - 1`` classical and HC1, ``G - 1`` CR1).
    partial_r2 : float
        Partial R-squared of the treatment with the outcome, ``t^2 / (t^2 + df)`` (classical t).
    rv_q, rv_qa : float
        Robustness values: the strength (partial R-squared with both the treatment and the outcome) of a
        confounder that brings the estimate to ``(1 - q)`` times itself, or makes it no longer significant.
    bounds : DataFrame
        One row per benchmark and multiple: ``bound_label, benchmark, kd, ky, r2dz_x, r2yz_dx,
        adjusted_estimate, adjusted_se, adjusted_t, adjusted_lower, adjusted_upper``.
    benchmarks : DataFrame
        Each benchmark's observed partial R-squareds ``r2dxj_x`` (with the treatment) and ``r2yxj_dx``.
    """

    treatment: str
    estimate: float
    std_error: float
    std_error_classical: float
    df: int
    df_inference: float
    partial_r2: float
    rv_q: float
    rv_qa: float
    q: float
    alpha: float
    reduce: bool
    vcov: str
    n_obs: int
    n_clusters: int | None
    bounds: pd.DataFrame
    benchmarks: pd.DataFrame
    method: str = ""
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def se_ratio(self) -> float:
        """Reported SE over classical SE (the square root of the cluster design effect); 1 when classical."""
        return self.std_error / self.std_error_classical

    @property
    def t_value(self) -> float:
        """The estimate over the SE used for inference."""
        return self.estimate / self.std_error

    @property
    def t_critical(self) -> float:
        """Two-sided critical value, t with ``df_inference`` df."""
        return float(stats.t.ppf(1 - self.alpha / 2, self.df_inference))

    def adjusted(self, r2dz_x: Any, r2yz_dx: Any) -> dict[str, np.ndarray]:
        """Estimate, SE, t and interval adjusted for a confounder of the given strengths (arrays broadcast).

        ``bias = sqrt(R2yz.dx R2dz.x / (1 - R2dz.x)) se_classical sqrt(df)`` moves the estimate towards 0
        (``reduce``) or away from it; ``se = sqrt((1 - R2yz.dx) / (1 - R2dz.x)) sqrt(df / (df - 1)) std_error``;
        interval ``estimate -/+ t_critical se`` (Cinelli & Hazlett 2020, eq. 12 and 15, with the reported SE).
        """
        r2d = np.asarray(r2dz_x, dtype=float)
        r2y = np.asarray(r2yz_dx, dtype=float)
        if np.any((r2d < 0) | (r2d >= 1) | (r2y < 0) | (r2y > 1)):
            raise UsageError(
                "partial R-squareds must be in [0, 1) with the treatment and [0, 1] with the outcome"
            )
        bias = np.sqrt(r2y * r2d / (1 - r2d)) * self.std_error_classical * math.sqrt(self.df)
        sign = -1.0 if self.estimate < 0 else 1.0
        est = sign * (abs(self.estimate) - bias) if self.reduce else sign * (abs(self.estimate) + bias)
        se = np.sqrt((1 - r2y) / (1 - r2d)) * math.sqrt(self.df / (self.df - 1)) * self.std_error
        crit = self.t_critical
        with np.errstate(
            divide="ignore", invalid="ignore"
        ):  # a confounder explaining all of the outcome: se 0
            t_value = est / se
        return {"bias": bias, "estimate": est, "std_error": se, "t_value": t_value,
                "ci_lower": est - crit * se, "ci_upper": est + crit * se}  # fmt: skip

    def sentences(self, *, digits: int = 3) -> list[str]:
        """What the numbers say, in words (one sentence per statistic and per benchmark row)."""
        pct = 100 * (1 - self.alpha)
        out = [
            f"An unobserved confounder would have to explain more than {100 * self.rv_q:.1f}% of the residual "
            "variance of both the treatment and the outcome to "
            + (
                "bring the estimate to zero." if self.q == 1 else f"reduce the estimate by {100 * self.q:g}%."
            ),
            f"More than {100 * self.rv_qa:.1f}% of both would leave the adjusted estimate no longer "
            f"significantly different from {'zero' if self.q == 1 else f'{1 - self.q:g} times the estimate'} "
            f"at the {100 * self.alpha:g}% level.",
        ]
        for row in self.bounds.itertuples():
            lo, hi = round(row.adjusted_lower, digits), round(row.adjusted_upper, digits)
            out.append(
                f"A confounder {row.bound_label.split(' ', 1)[0]} as strong as {row.benchmark} would "
                f"{'reduce' if self.reduce else 'change'} the estimate from {round(self.estimate, digits)} to "
                f"{round(row.adjusted_estimate, digits)} ({pct:g}% CI {lo} to {hi})."
            )
        return out


# ---- from a fit --------------------------------------------------------------------------------------------
def ovb_sensitivity(
    fit: OLSFit,
    treatment: str,
    *,
    benchmarks: Sequence[str] | Mapping[str, Sequence[str]] = (),
    kd: float | Sequence[float] = 1.0,
    ky: float | Sequence[float] | None = None,
    q: float = 1.0,
    alpha: float = 0.05,
    reduce: bool = True,
    vcov: str = "auto",
    cluster: Any = None,
    std_error: float | None = None,
    df_inference: float | None = None,
) -> OVBSensitivity:
    """Sensitivity of a least-squares treatment coefficient to an unobserved confounder (Cinelli & Hazlett 2020).

    Parameters
    ----------
    fit : OLSFit
        From :func:`evaltoolkit.inference.core.ols` (weights and absorbed fixed effects are in its working
        arrays, so every partial R-squared is weighted and within the fixed effects).
    treatment : str
        The treatment coefficient's name.
    benchmarks : list of str, or dict label -> list of str
        Coefficients to benchmark against (a list of names; a dict groups several, e.g. a categorical's dummies).
    kd, ky : float or list of float
        Multiples of each benchmark's strength with the treatment and with the outcome (``ky`` = ``kd``).
    q : float, default 1
        Share of the estimate to explain away (1: to zero).
    alpha : float, default 0.05
    reduce : bool, default True
        Confounding that moves the estimate towards zero.
    vcov : {"auto", "classical", "HC1", "CR1", "CR2", "wild"}
        Inference, resolved by :func:`evaltoolkit.inference.policy.decide` (``wild`` uses its CR2 SE and
        Satterthwaite df). ``"classical"`` reproduces sensemakr.
    cluster : array, optional
        Cluster of each row of the fit.
    std_error, df_inference : float, optional
        The SE and df an estimator reported (e.g. a weighted DiD's stacked SE with G - 1 df); overrides
        ``vcov``.

    Returns
    -------
    OVBSensitivity

    Examples
    --------
    A planted confounder ``z``: with its own (sample) partial R-squareds the adjusted estimate is exactly the
    coefficient of the model that includes it (Cinelli & Hazlett 2020, eq. 11):

    >>> rng = np.random.default_rng(1)
    >>> x, z = rng.normal(size=(2, 500))
    >>> d = 0.5 * x + 0.5 * z + rng.normal(size=500)
    >>> y = 0.3 * d + x + z + rng.normal(size=500)
    >>> one = np.ones(500)
    >>> short = ovb_sensitivity(ols(y, np.column_stack([one, d, x]), names=["1", "d", "x"]), "d",
    ...                         vcov="classical")
    >>> full = ols(y, np.column_stack([one, d, x, z]), names=["1", "d", "x", "z"])
    >>> r2 = ovb_sensitivity(full, "z", benchmarks=["d"], vcov="classical").partial_r2   # R2yz.dx
    >>> r2d = 1 - _rss(d, np.column_stack([one, x, z])) / _rss(d, np.column_stack([one, x]))  # R2dz.x
    >>> bool(np.isclose(short.adjusted(r2d, r2)["estimate"], full.coef[1]))
    True
    """
    j = fit.index(treatment)
    df = fit.df_resid
    if df <= 1:
        raise EstimationError(
            f"the model has {df} residual degrees of freedom; sensitivity analysis needs more"
        )
    est = float(fit.coef[j])
    se_cl = math.sqrt(float(fit.resid @ fit.resid) / df * fit.bread[j, j])
    se, df_inf, used, n_clusters = _inference_se(
        fit, treatment, vcov, cluster, std_error, df_inference, alpha
    )
    t_cl = est / se_cl
    rho = se / se_cl
    f_crit = rho * float(stats.t.ppf(1 - alpha / 2, df_inf)) / math.sqrt(df - 1)
    groups = _benchmark_groups(benchmarks, fit.names, treatment)
    bench = _benchmark_r2(fit, j, groups)
    result = OVBSensitivity(
        treatment=treatment, estimate=est, std_error=se, std_error_classical=se_cl, df=df, df_inference=df_inf,
        partial_r2=t_cl**2 / (t_cl**2 + df), rv_q=robustness_value(t_cl, df, q=q, alpha=None),
        rv_qa=robustness_value(t_cl, df, q=q, f_critical=f_crit), q=q, alpha=alpha, reduce=reduce, vcov=used,
        n_obs=fit.n_obs, n_clusters=n_clusters, bounds=pd.DataFrame(), benchmarks=bench,
    )  # fmt: skip
    result.bounds = _bounds_table(result, bench, kd, ky)
    if result.bounds.get("capped", pd.Series(dtype=bool)).any():
        result.warnings.append(
            "For some benchmark multiples the implied partial R-squared with the outcome exceeds 1 and was set to 1; "
            "use smaller kd or ky."
        )
        warnings.warn(result.warnings[-1], EvalToolkitWarning, stacklevel=2)
    result.method = (
        f"Cinelli & Hazlett (2020) omitted-variable bias for '{treatment}'; SE {used}"
        + (f" ({rho:.2f} times the classical SE)" if used != "classical" else "")
        + f", t with {df_inf:.4g} df"
    )
    return result


def _inference_se(
    fit, treatment, vcov, cluster, std_error, df_inference, alpha
) -> tuple[float, float, str, Any]:
    """The SE used for inference, its df, what it is and the number of clusters."""
    if std_error is not None:
        if df_inference is None or not std_error > 0:
            raise UsageError(
                "give the reported standard error (positive) together with its df (df_inference=)"
            )
        return float(std_error), float(df_inference), "as reported", None
    decision = decide(InferenceSpec(vcov=vcov, cluster=cluster))
    choice = "CR2" if decision.choice == "wild" else decision.choice
    res = coef_test(
        fit, treatment, vcov=choice, cluster=cluster if choice in ("CR1", "CR2") else None, alpha=alpha
    )
    df_inf = float(fit.df_resid - 1) if choice in ("classical", "HC1") else float(res["df"])
    return float(res["std_error"]), df_inf, choice, res["n_clusters"]


def _benchmark_groups(benchmarks, names: list[str], treatment: str) -> dict[str, list[str]]:
    """Benchmark label -> coefficient names: a name, a categorical's dummies (``C(x)`` or ``x``), or a given group."""
    if isinstance(benchmarks, str):
        benchmarks = [benchmarks]
    items = benchmarks.items() if isinstance(benchmarks, Mapping) else ((b, None) for b in benchmarks)
    out: dict[str, list[str]] = {}
    for label, members in items:
        if members is None:
            col = covariate_column(label)[0]
            members = [label] if label in names else [n for n in names if n.startswith(f"{col}_")]
        members = [members] if isinstance(members, str) else list(members)
        bad = [m for m in members if m not in names or m == treatment]
        if not members or bad:
            shown = ", ".join(n for n in names if n != treatment)
            raise DataError(
                f"benchmark '{label}' is not a covariate of the model (covariates: {shown}); covariates constant "
                "within person are absorbed in a DiD with person fixed effects",
                column=str(bad[0] if bad else label),
            )
        out[str(label)] = members
    return out


def _rss(y: np.ndarray, X: np.ndarray) -> float:
    """Residual sum of squares of ``y`` on ``X`` (``y'y`` with no columns)."""
    if X.shape[1] == 0:
        return float(y @ y)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ beta
    return float(r @ r)


def _benchmark_r2(fit: OLSFit, j: int, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Each benchmark's partial R-squared with the treatment (given the other covariates) and with the outcome.

    By residual sums of squares of the working arrays, ``1 - RSS(full) / RSS(without the benchmark)``, which is
    ``t^2 / (t^2 + df)`` for one coefficient and the F-based group partial R-squared for several.
    """
    X, y, d = fit.X, fit.y, fit.X[:, j]
    rss_y = float(fit.resid @ fit.resid)
    others = [i for i in range(fit.k) if i != j]
    rss_d = _rss(d, X[:, others])
    rows = []
    for label, members in groups.items():
        idx = {fit.index(m) for m in members}
        keep_y = [i for i in range(fit.k) if i not in idx]
        keep_d = [i for i in others if i not in idx]
        rows.append({"benchmark": label, "terms": ", ".join(members),
                     "r2dxj_x": 1 - rss_d / _rss(d, X[:, keep_d]),
                     "r2yxj_dx": 1 - rss_y / _rss(y, X[:, keep_y])})  # fmt: skip
    return pd.DataFrame(rows, columns=["benchmark", "terms", "r2dxj_x", "r2yxj_dx"])


def _bounds_table(result: OVBSensitivity, bench: pd.DataFrame, kd, ky) -> pd.DataFrame:
    """One row per benchmark and multiple: the confounder's strengths and the adjusted numbers."""
    kds = [float(kd)] if np.isscalar(kd) else [float(k) for k in kd]
    kys = kds if ky is None else ([float(ky)] * len(kds) if np.isscalar(ky) else [float(k) for k in ky])
    if len(kys) != len(kds):
        raise UsageError(f"give one ky per kd ({len(kds)} kd, {len(kys)} ky)")
    rows = []
    for b in bench.itertuples():
        for k_d, k_y in zip(kds, kys):
            r2d, r2y, capped = benchmark_bounds(b.r2dxj_x, b.r2yxj_dx, k_d, k_y)
            adj = result.adjusted(r2d, r2y)
            label = f"{k_d:g}x {b.benchmark}" if k_d == k_y else f"{k_d:g}/{k_y:g}x {b.benchmark}"
            rows.append({"bound_label": label, "benchmark": b.benchmark, "kd": k_d, "ky": k_y, "r2dz_x": r2d,
                         "r2yz_dx": r2y, "adjusted_estimate": float(adj["estimate"]),
                         "adjusted_se": float(adj["std_error"]), "adjusted_t": float(adj["t_value"]),
                         "adjusted_lower": float(adj["ci_lower"]), "adjusted_upper": float(adj["ci_upper"]),
                         "capped": capped})  # fmt: skip
    cols = ["bound_label", "benchmark", "kd", "ky", "r2dz_x", "r2yz_dx", "adjusted_estimate", "adjusted_se",
            "adjusted_t", "adjusted_lower", "adjusted_upper", "capped"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


# ---- from data -------------------------------------------------------------------------------------------
_OPTIONS = ("benchmarks", "kd", "ky", "q", "alpha", "reduce", "vcov")


def _finish(fit: OLSFit, term: str, cluster, result, dropped: dict[str, int], options: dict[str, Any]):
    """Check a rebuilt fit against the estimator's result, take its SE and df, and run :func:`ovb_sensitivity`."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise UsageError(
            f"unknown option(s) {', '.join(unknown)} (sensitivity options: {', '.join(_OPTIONS)})"
        )
    reported: dict[str, Any] = {}
    if result is not None:
        rows = result.table.loc[result.table["term"] == term] if hasattr(result, "table") else None
        if rows is None or rows.empty:
            raise UsageError(f"the result has no term '{term}'")
        row = rows.iloc[0]
        if not math.isclose(
            float(row["estimate"]), float(fit.coef[fit.index(term)]), rel_tol=1e-7, abs_tol=1e-10
        ):
            raise EstimationError(
                f"the model rebuilt for the sensitivity analysis gives {fit.coef[fit.index(term)]:.6g} for '{term}' "
                f"but the result reports {float(row['estimate']):.6g}: pass the same data and arguments as the estimator"
            )
        df_rep = (result.details or {}).get("df")
        if df_rep is None or not np.isfinite(df_rep):
            raise UsageError("the result does not say the df of its interval (details['df'])")
        reported = {"std_error": float(row["std_error"]), "df_inference": float(df_rep)}
    out = ovb_sensitivity(fit, term, cluster=cluster, **reported, **options)
    if result is not None:
        out.vcov = f"{(result.details or {}).get('vcov', 'reported')} (as reported)"
        out.n_clusters = getattr(result, "n_clusters", None)
        out.method = out.method.replace(
            "SE as reported", f"SE as the result reports ({out.vcov.split(' ')[0]})"
        )
    out.dropped = {k: int(v) for k, v in dropped.items() if v}
    return out


def ovb_formula(
    data: pd.DataFrame,
    formula: str,
    treatment: str,
    *,
    cluster: str | None = None,
    weights: str | None = None,
    categorical: Sequence[str] = (),
    **options: Any,
) -> OVBSensitivity:
    """Sensitivity analysis of ``lm(formula, data)``'s coefficient on ``treatment`` (as sensemakr's formula method).

    Parameters
    ----------
    data : DataFrame
    formula : str
        ``"y ~ d + x1 + C(x2)"`` (:mod:`evaltoolkit.estimators.formula`); text columns are dummy-coded as R
        does (first level dropped). An intercept is included.
    treatment : str
        A numeric column on the right-hand side.
    cluster, weights : str, optional
        Cluster column (for ``vcov`` CR1/CR2/auto) and analytic weights.
    categorical : list of str
        Numeric columns to dummy-code.
    **options
        ``benchmarks, kd, ky, q, alpha, reduce, vcov`` of :func:`ovb_sensitivity`; a benchmark may be a
        formula term (``"C(site)"`` or a text column benchmarks all its dummies together).

    Returns
    -------
    OVBSensitivity
        ``dropped`` counts the rows left out by reason (``missing <column>``).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> df = pd.DataFrame({"x": rng.normal(size=300), "site": rng.choice(list("abc"), 300)})
    >>> df["d"] = (0.3 * df.x + rng.normal(size=300) > 0).astype(float)
    >>> df["y"] = 0.5 * df.d + 0.3 * df.x + rng.normal(size=300)
    >>> s = ovb_formula(df, "y ~ d + x + C(site)", "d", benchmarks=["x", "C(site)"], vcov="classical")
    >>> s.bounds.bound_label.tolist()
    ['1x x', '1x C(site)']
    """
    f = parse_formula(formula)
    terms = list(f.covariates)
    if treatment not in terms:
        raise UsageError(f"the treatment '{treatment}' is not on the right-hand side of {formula!r}")
    cols = [f.outcome, *(covariate_column(t)[0] for t in terms)]
    cols += [c for c in (cluster, weights) if c is not None]
    for c in dict.fromkeys(cols):
        if c not in data.columns:
            raise DataError("column not found in the data", column=c)
    for c in (f.outcome, treatment):
        if not pd.api.types.is_numeric_dtype(data[c]):
            raise DataError("must be numeric", column=c)
    sub, dropped = data, {}
    for c in dict.fromkeys(cols):
        miss = sub[c].isna().to_numpy()
        dropped[f"missing {c}"] = int(miss.sum())
        sub = sub.loc[~miss]
    others = [t for t in terms if t != treatment]
    cat = [*categorical, *(covariate_column(t)[0] for t in others if covariate_column(t)[1])]
    Xdf = pd.concat([pd.DataFrame({"(intercept)": 1.0, treatment: sub[treatment].astype(float)}, index=sub.index),
                     covariate_frame(sub, [covariate_column(t)[0] for t in others], categorical=cat,
                                     drop_first=True)], axis=1)  # fmt: skip
    w = None if weights is None else sub[weights].to_numpy(dtype=float)
    fit = ols(
        sub[f.outcome].to_numpy(dtype=float), Xdf.to_numpy(dtype=float), names=list(Xdf.columns), weights=w
    )
    cl = None if cluster is None else sub[cluster].to_numpy()
    return _finish(fit, treatment, cl, None, dropped, options)


def ovb_ancova(
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
    categorical: Sequence[str] = (),
    result: Any = None,
    **options: Any,
) -> OVBSensitivity:
    """Sensitivity analysis of :func:`~evaltoolkit.estimators.ancova.ancova`'s treatment effect.

    The same arguments as ``ancova`` rebuild its model (rows, design, weights); with ``result`` (that call's
    :class:`~evaltoolkit.results.EffectResult`) its estimate is checked and its SE and df are used, so a
    cluster-robust or wild-bootstrap ANCOVA is adjusted with the SE it reported. A benchmark is the baseline
    score's column name or a covariate term. ``**options`` as :func:`ovb_sensitivity`.

    Examples
    --------
    >>> from evaltoolkit.estimators.ancova import ancova
    >>> rng = np.random.default_rng(3)
    >>> pre = rng.normal(size=300)
    >>> arm = np.where(pre + rng.normal(size=300) > 0, "programme", "control")
    >>> df = pd.DataFrame({"pre": pre, "post": 0.6 * pre + 0.3 * (arm == "programme") + rng.normal(size=300),
    ...                    "arm": arm})
    >>> res = ancova(df, "post", "arm", treated="programme", baseline="pre", vcov="HC1")
    >>> s = ovb_ancova(df, "post", "arm", treated="programme", baseline="pre", result=res, benchmarks=["pre"])
    >>> s.std_error == res.std_error, s.bounds.bound_label.tolist()
    (True, ['1x pre'])
    """
    outcome, covariates = outcome_and_covariates(outcome, covariates)
    _require_columns(data, [outcome, arm, *([baseline] if baseline else []), *([cluster] if cluster else [])])
    cov_cols = covariate_columns(covariates)
    _require_columns(data, cov_cols, "covariate")
    is_t, keep = arm_indicator(data, arm, treated, control)
    w_all = _resolve_weights(data, weights)
    with warnings.catch_warnings():  # ancova() has already said which rows it left out
        warnings.simplefilter("ignore", EvalToolkitWarning)
        use, n_missing, n_zero, _ = an._rows_used(data, keep, w_all, outcome, baseline, cov_cols, cluster)
    sub = data.loc[use]
    Xdf = an._design_matrix(sub, is_t.loc[use].to_numpy(), baseline, covariates, categorical)
    w = None if w_all is None else w_all.loc[use].to_numpy(dtype=float)
    fit = ols(
        sub[outcome].to_numpy(dtype=float), Xdf.to_numpy(dtype=float), names=list(Xdf.columns), weights=w
    )
    cl = None if cluster is None else sub[cluster].to_numpy()
    dropped = {"missing values": n_missing, "weight 0 (trimmed or unmatched)": n_zero}
    return _finish(fit, "treatment", cl, result, dropped, options)


def ovb_did(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    *,
    treated: Any,
    term: str | None = None,
    result: Any = None,
    control: Any = None,
    pre: Any = "baseline",
    post: Any = "post",
    unit: str | None = None,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
    weights: str | None = None,
    fixed_effects: str | bool | Sequence[str] = "auto",
    dichotomise: Any = None,
    pooled: bool = False,
    **options: Any,
) -> OVBSensitivity:
    """Sensitivity analysis of a difference-in-differences effect (:func:`~evaltoolkit.estimators.did.did`).

    The same arguments as ``did`` rebuild its model; with person fixed effects the partial R-squareds are
    *within person* (Frisch-Waugh-Lovell: the fit's working arrays are demeaned), so a confounder is something
    that changes over the waves differently in the two arms, and benchmarks are covariates that vary within
    person (or the wave dummies, ``"wave:<label>"``). With ``result`` (that call's result, or
    :func:`~evaltoolkit.estimators.weighting.weighted_did`'s on the same rows with ``weights=`` its weight
    column) the estimate is checked and the SE and df it reported are used. ``term`` defaults to the first
    follow-up (``treat:<post>``). Clusters (without ``result``): ``cluster``, else the person in a panel.
    ``**options`` as :func:`ovb_sensitivity`.

    Examples
    --------
    >>> from evaltoolkit.simulate.dgps import did_panel
    >>> from evaltoolkit.estimators.did import did
    >>> panel = did_panel(n_teams=40, size=10, seed=4)
    >>> panel["hours"] = np.random.default_rng(4).normal(size=len(panel)) + 0.5 * (panel.wave == "post")
    >>> kw = dict(treated="ncs", unit="pid", cluster="team", covariates=["hours"])
    >>> res = did(panel, "y", "arm", "wave", vcov="CR1", **kw)
    >>> s = ovb_did(panel, "y", "arm", "wave", result=res, benchmarks=["hours"], **kw)
    >>> s.df_inference, s.df == res.n_obs - 400 - 3       # G - 1; N - people - (effect, wave, hours)
    (39.0, True)
    """
    y_name, covs = outcome_and_covariates(outcome, covariates)
    a = dd._arguments(data, y_name, arm, wave, treated, control, pre, post, unit, cluster, covs, weights,
                      fixed_effects)  # fmt: skip
    df, dropped = dd._select_rows(data, a)
    df = dd._outcome_column(df, y_name, dichotomise)
    p = dd._panel_checks(df, a, dropped)
    x = dd._design(p, a, pooled)
    fit = ols(p.y, np.column_stack([*x.tcols, *x.Xcols]), names=[*x.terms, *x.names], weights=x.w_arr,
              absorb=x.fe)  # fmt: skip
    term = x.terms[0] if term is None else term
    cl_col = a.cluster if a.cluster is not None else (a.unit if p.panel else None)
    cl = None if cl_col is None else p.df[cl_col].to_numpy()
    lost = {k: v for k, v in dropped.items() if k not in ("other waves", "other arms")}
    return _finish(fit, term, cl, result, lost, options)
