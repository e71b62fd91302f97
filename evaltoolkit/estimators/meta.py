"""Meta-analysis of effect estimates: fixed effect, random effects (DL, REML, ML), Bayesian, meta-regression.

Pool several sites, years or programmes (or published studies) from their effect
estimates and standard errors. The frequentist estimators reproduce R ``metafor``
(``rma(yi, vi, method=...)``) to the printed digits; the Bayesian estimator fits the
normal-normal hierarchical model (non-centred) with PyMC and stated priors.

Public functions
----------------
meta_analysis
    Pool effects; returns a :class:`MetaResult` (an :class:`~evaltoolkit.results.EffectResult`).
egger_test
    Egger's regression test for funnel-plot asymmetry (small-study effects).
meta_regression
    Effects on study-level moderators (REML mixed-effects, fixed-effect, or the WLS form of PET-PEESE).
forest and funnel plots (:mod:`evaltoolkit.plots.forest`, :mod:`evaltoolkit.plots.meta`)
    Matplotlib figures for a report.

Examples
--------
>>> from evaltoolkit.estimators.meta import meta_analysis
>>> res = meta_analysis([0.1, 0.3, 0.5, 0.2], [0.10, 0.12, 0.20, 0.15], method="DL")
>>> round(res.estimate, 3), round(res.tau2, 3)
(0.229, 0.005)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult, p_label

if TYPE_CHECKING:  # pragma: no cover
    from evaltoolkit.estimators.bayes.priors import Prior

__all__ = [
    "EggerResult",
    "MetaRegressionResult",
    "MetaResult",
    "contact_meta_analysis",
    "egger_test",
    "meta_analysis",
    "meta_regression",
]

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere

_METHODS = ("FE", "DL", "REML", "ML", "bayes")
_METHOD_ALIASES = {
    "fe": "FE",
    "fixed": "FE",
    "ee": "FE",
    "common": "FE",
    "dl": "DL",
    "dersimonian-laird": "DL",
    "reml": "REML",
    "ml": "ML",
    "bayes": "bayes",
    "bayesian": "bayes",
}
_METHOD_LABELS = {
    "FE": "fixed effect (inverse variance)",
    "DL": "random effects, DerSimonian-Laird tau^2",
    "REML": "random effects, REML tau^2 (Fisher scoring)",
    "ML": "random effects, ML tau^2 (Fisher scoring)",
}


# --------------------------------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------------------------------
@dataclass(repr=False)
class MetaResult(EffectResult):
    """Pooled estimate of a meta-analysis, with heterogeneity statistics and per-study rows.

    Attributes
    ----------
    estimate, std_error, ci_lower, ci_upper, p_value : float
        Pooled effect (posterior mean, posterior SD and 95% HDI for ``method="bayes"``; ``p_value`` is
        NaN there and ``details["prob_positive"]`` holds P(mu > 0)).
    tau2 : float
        Between-study variance (0 for the fixed-effect model; posterior mean of tau^2 for Bayes).
    i2, h2 : float
        I^2 (percent) and H^2 (metafor's definitions: ``I^2 = 100 tau^2 / (tau^2 + s^2)`` with the
        "typical" within-study variance ``s^2``; for the fixed-effect model ``I^2 = (Q - df) / Q``).
    q, q_df, q_p : float, int, float
        Cochran's Q test of homogeneity.
    pi_lower, pi_upper : float
        Prediction interval for the true effect in a new study (NaN for the fixed-effect model).
    studies : pandas.DataFrame
        One row per study: label, effect, std_error, ci_lower, ci_upper, weight (percent).
    idata : arviz.InferenceData or None
        Posterior draws (``method="bayes"`` only).
    """

    tau2: float = 0.0
    i2: float = float("nan")
    h2: float = float("nan")
    q: float = float("nan")
    q_df: int = 0
    q_p: float = float("nan")
    pi_lower: float = float("nan")
    pi_upper: float = float("nan")
    studies: pd.DataFrame | None = None
    idata: Any = None

    @property
    def k(self) -> int:
        """Number of studies pooled."""
        return int(self.n_obs)

    @property
    def tau(self) -> float:
        """Between-study standard deviation (sqrt of ``tau2``; posterior mean of tau for Bayes)."""
        return float(self.details.get("tau_mean", math.sqrt(self.tau2)))

    @property
    def weights(self) -> pd.Series:
        """Per-study weights in percent (sum to 100), indexed by study label."""
        assert self.studies is not None
        return self.studies.set_index("label")["weight"]

    @property
    def table(self) -> pd.DataFrame:
        """Tidy table: the pooled row, then one row per study, with an extra ``weight`` column (percent).

        The first eleven columns are :data:`~evaltoolkit.results.ESTIMATE_COLUMNS`; per-study rows have
        ``term = "study: <label>"``, their own estimate, SE and Wald interval, and ``n_obs = 1``.
        """
        pooled = self.headline_row()
        pooled["weight"] = 100.0
        rows = [pooled]
        if self.studies is not None:
            for r in self.studies.itertuples(index=False):
                rows.append(
                    {
                        "analysis": self.analysis,
                        "outcome": self.outcome,
                        "term": f"study: {r.label}",
                        "estimate": r.effect,
                        "std_error": r.std_error,
                        "ci_lower": r.ci_lower,
                        "ci_upper": r.ci_upper,
                        "p_value": float(2 * stats.norm.sf(abs(r.effect / r.std_error))),
                        "n_obs": 1,
                        "n_clusters": None,
                        "method": "study estimate, Wald interval",
                        "weight": r.weight,
                    }
                )
        rows.extend({**row, "weight": np.nan} for row in self.extra_rows)
        return pd.DataFrame(rows, columns=[*ESTIMATE_COLUMNS, "weight"])

    @property
    def heterogeneity(self) -> pd.DataFrame:
        """Heterogeneity statistics as a one-row DataFrame (tau2, tau, I2, H2, Q, df, p)."""
        return pd.DataFrame(
            [
                {
                    "tau2": self.tau2,
                    "tau": self.tau,
                    "i2": self.i2,
                    "h2": self.h2,
                    "q": self.q,
                    "q_df": self.q_df,
                    "q_p": self.q_p,
                    "pi_lower": self.pi_lower,
                    "pi_upper": self.pi_upper,
                }
            ]
        )

    def summary(self, units: str = "effect-size units") -> str:
        """Plain-language summary of the pooled effect and the heterogeneity."""
        lvl = round(100 * self.details.get("level", 0.95))
        if self.details.get("method_code") == "bayes":
            text = (
                f"Pooling {self.k} estimates ({self.method}), the posterior mean effect is "
                f"{self.estimate:+.3f} {units} ({lvl}% HDI {self.ci_lower:+.3f} to {self.ci_upper:+.3f}); "
                f"P(effect > 0) = {self.details['prob_positive']:.2f}. Between-study SD tau has posterior mean "
                f"{self.tau:.3f}."
            )
        else:
            text = (
                f"Pooling {self.k} estimates ({self.method}), the average effect is {self.estimate:+.3f} "
                f"{units} ({lvl}% CI {self.ci_lower:+.3f} to {self.ci_upper:+.3f}, "
                f"{p_label(self.p_value)}). Heterogeneity: tau^2 = {self.tau2:.4f}, I^2 = {self.i2:.1f}%, "
                f"Q({self.q_df}) = {self.q:.2f}, {p_label(self.q_p)}."
            )
        if np.isfinite(self.pi_lower):
            text += (
                f" The true effect in a new, similar setting is expected between {self.pi_lower:+.3f} and "
                f"{self.pi_upper:+.3f} ({lvl}% prediction interval)."
            )
        if self.warnings:
            text += " Caution: " + " ".join(self.warnings)
        return text

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (
            f"MetaResult(k={self.k}, {self.method}: {self.estimate:.4g} [{self.ci_lower:.4g}, "
            f"{self.ci_upper:.4g}], tau2={self.tau2:.4g}, I2={self.i2:.1f}%)"
        )


@dataclass
class EggerResult:
    """Egger's regression test for funnel-plot asymmetry.

    Attributes
    ----------
    intercept, std_error, t, df, p_value : float
        Intercept of the regression of ``y/se`` on ``1/se`` (the asymmetry, "bias" coefficient), its
        standard error, t statistic, residual degrees of freedom (k - 2) and two-sided p-value.
    slope : float
        Slope of that regression: the effect "as se -> 0" (metafor's "limit estimate").
    k : int
        Number of studies.
    """

    intercept: float
    std_error: float
    t: float
    df: int
    p_value: float
    slope: float
    k: int
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One sentence in plain language."""
        verdict = (
            "evidence of small-study effects (funnel asymmetry)"
            if self.p_value < 0.10
            else "no clear evidence of funnel asymmetry"
        )
        return (
            f"Egger's test (k = {self.k}): intercept {self.intercept:+.3f} (SE {self.std_error:.3f}), "
            f"t({self.df}) = {self.t:.3f}, {p_label(self.p_value)}: {verdict}. With fewer than about "
            "10 studies the test has little power."
        )


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------
def _column(data: pd.DataFrame, name: Any, what: str) -> pd.Series:
    if not isinstance(name, str):
        raise DataError(
            f"when data are a DataFrame, '{what}' must be a column name, not {type(name).__name__}"
        )
    if name not in data.columns:
        raise DataError(
            f"column not found (for {what}); available columns: {', '.join(map(str, data.columns))}",
            column=name,
        )
    return data[name]


def _as_float_array(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numbers: {exc}") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 or arr.size == max(arr.shape) else arr
    if arr.ndim != 1:
        raise DataError(f"{what} must be a one-dimensional sequence of numbers (got shape {arr.shape})")
    return arr


def _prepare(
    effects: Any,
    std_errors: Any,
    labels: Any,
    data: pd.DataFrame | None,
    variances: Any,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """Validate input; return effects, standard errors, labels and notes (n_dropped...)."""
    if isinstance(effects, pd.DataFrame):
        raise DataError(
            "pass a DataFrame as data= and name its columns, e.g. "
            "meta_analysis('d', 'se_d', data=df, labels='study')"
        )
    names: dict[str, str] = {}
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
        if effects is None:
            raise DataError("name the column of effect estimates (effects=...)")
        if std_errors is None and variances is None:
            raise DataError(
                "name the column of standard errors (std_errors=...) or of variances (variances=...)"
            )
        names["effects"] = effects
        y_s = _column(data, effects, "effects")
        if std_errors is not None:
            names["std_errors"] = std_errors
            se_s = _column(data, std_errors, "std_errors")
        else:
            names["variances"] = variances
            se_s = None
        v_s = (
            _column(data, variances, "variances") if (variances is not None and std_errors is None) else None
        )
        lab = _column(data, labels, "labels").astype(str).tolist() if labels is not None else None
        if lab is None:
            lab = [str(i) for i in data.index]
        y = _as_float_array(y_s, "effects")
        se = _as_float_array(se_s, "std_errors") if se_s is not None else None
        v = _as_float_array(v_s, "variances") if v_s is not None else None
    else:
        if effects is None:
            raise DataError("give the effect estimates (effects=...)")
        y = _as_float_array(effects, "effects")
        if std_errors is not None and variances is not None:
            raise DataError("give either std_errors or variances, not both")
        if std_errors is None and variances is None:
            raise DataError("give the standard errors of the effects (std_errors=...)")
        se = _as_float_array(std_errors, "std_errors") if std_errors is not None else None
        v = _as_float_array(variances, "variances") if variances is not None else None
        if labels is None:
            lab = list(effects.index.astype(str)) if isinstance(effects, pd.Series) else None
            lab = lab or [f"study {i + 1}" for i in range(len(y))]
        else:
            lab = [str(x) for x in labels]
    if se is None:
        assert v is not None
        if len(v) != len(y):
            raise DataError(f"effects has {len(y)} values but variances has {len(v)}; they must match")
        bad = np.isfinite(v) & (v < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"variances must be non-negative; study '{lab[i]}' has {v[i]}", row=i)
        se = np.sqrt(v)
    if len(se) != len(y):
        raise DataError(
            f"effects has {len(y)} values but std_errors has {len(se)}; they must be the same length"
        )
    if len(lab) != len(y):
        raise DataError(
            f"effects has {len(y)} values but labels has {len(lab)}; they must be the same length"
        )
    bad = np.isfinite(se) & (se <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        col = names.get("std_errors")
        raise DataError(
            f"standard errors must be positive; study '{lab[i]}' has {se[i]:g}", column=col, row=i
        )
    for arr, what in ((y, "effects"), (se, "std_errors")):
        if np.isinf(arr).any():
            i = int(np.flatnonzero(np.isinf(arr))[0])
            raise DataError(
                f"{what} must be finite; study '{lab[i]}' has {arr[i]}", column=names.get(what), row=i
            )
    keep = np.isfinite(y) & np.isfinite(se)
    notes: dict[str, Any] = {"n_dropped": int((~keep).sum()), "dropped_labels": []}
    if not keep.all():
        notes["dropped_labels"] = [lab[i] for i in np.flatnonzero(~keep)]
        y, se = y[keep], se[keep]
        lab = [lab[i] for i in np.flatnonzero(keep)]
    if len(y) < 2:
        raise DataError(
            f"a meta-analysis needs at least 2 studies with an effect and a standard error; got {len(y)}"
            + (f" after dropping {notes['n_dropped']} with missing values" if notes["n_dropped"] else "")
        )
    if len(set(lab)) != len(lab):
        seen: set[str] = set()
        dup = next(x for x in lab if x in seen or seen.add(x))  # type: ignore[func-returns-value]
        raise DataError(f"study labels must be unique; '{dup}' appears more than once")
    return y, se, lab, notes


# --------------------------------------------------------------------------------------------------
# estimators of tau^2
# --------------------------------------------------------------------------------------------------
def _fe(y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    w = 1.0 / v
    mu = float(np.sum(w * y) / np.sum(w))
    return mu, float(np.sum(w * (y - mu) ** 2))


def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    w = 1.0 / v
    _, q = _fe(y, v)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return float(max(0.0, (q - (len(y) - 1)) / c))


def _tau2_fisher(y: np.ndarray, v: np.ndarray, reml: bool, tol: float = 1e-10, maxiter: int = 200) -> dict:
    """REML or ML estimate of tau^2 by Fisher scoring with step halving, truncated at 0 (as metafor)."""
    tau2 = _tau2_dl(y, v)  # a consistent start; the iterations do not depend on it at convergence
    converged = False
    it = 0
    info = float("nan")
    for it in range(1, maxiter + 1):  # noqa: B007 - "it" is reported
        w = 1.0 / (v + tau2)
        sw = np.sum(w)
        mu = np.sum(w * y) / sw
        r = y - mu
        if reml:
            # P = W - w w' / sum(w); score uses y'PPy - tr(P), information tr(PP) / 2
            py = w * r
            trp = sw - np.sum(w**2) / sw
            trpp = np.sum(w**2) - 2 * np.sum(w**3) / sw + (np.sum(w**2) / sw) ** 2
            step = (np.sum(py**2) - trp) / trpp
            info = trpp
        else:
            step = (np.sum(w**2 * r**2) - sw) / np.sum(w**2)
            info = np.sum(w**2)
        new = tau2 + step
        while new < 0 and step != 0:  # step halving at the boundary, as metafor
            step /= 2
            new = tau2 + step
            if abs(step) < tol:
                new = 0.0
                break
        new = max(0.0, float(new))
        if abs(new - tau2) < tol:
            tau2 = new
            converged = True
            break
        tau2 = new
    se_tau2 = float(math.sqrt(2.0 / info)) if info > 0 else float("nan")
    return {"tau2": tau2, "converged": converged, "iterations": it, "se_tau2": se_tau2}


# --------------------------------------------------------------------------------------------------
# main function
# --------------------------------------------------------------------------------------------------
def meta_analysis(
    effects: Any,
    std_errors: Any = None,
    *,
    labels: Any = None,
    method: str = "REML",
    data: pd.DataFrame | None = None,
    variances: Any = None,
    knapp_hartung: bool = False,
    level: float = 0.95,
    outcome: str = "effect",
    analysis: str = "meta_analysis",
    mu_prior: Prior | str | tuple[float, float] | None = None,
    tau_prior: Prior | str | tuple[str, float] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    target_accept: float = 0.9,
    seed: int | None = None,
) -> MetaResult:
    """Pool effect estimates: fixed effect, random effects (DL, REML, ML) or Bayesian hierarchical.

    Parameters
    ----------
    effects : array-like or str
        Study (site, year, programme) effect estimates, e.g. standardised mean differences or log risk
        ratios; or, when ``data`` is given, the name of its column of effects.
    std_errors : array-like or str
        Standard errors of the effects (strictly positive), or a column name. Alternatively pass
        ``variances``.
    labels : array-like or str, optional
        Study labels (unique), or a column name. Defaults to the index / ``"study 1"``...
    method : {"REML", "DL", "ML", "FE", "bayes"}
        Estimator of the between-study variance tau^2: restricted maximum likelihood (Fisher scoring,
        as metafor ``rma(method="REML")``), DerSimonian-Laird, maximum likelihood, the fixed-effect
        (common-effect, inverse-variance) model, or a Bayesian normal-normal hierarchical model fitted
        with PyMC (non-centred: ``theta_i = mu + tau * z_i``).
    data : pandas.DataFrame, optional
        Data holding the columns named by ``effects``, ``std_errors``, ``labels``.
    variances : array-like or str, optional
        Sampling variances instead of standard errors.
    knapp_hartung : bool
        Knapp-Hartung(-Sidik-Jonkman) adjustment: SE scaled by the weighted residual variance and t
        reference distribution on k - 1 df (metafor ``test="knha"``, no truncation). Recommended with few
        studies. Ignored for ``method="bayes"``.
    level : float
        Confidence / credible level (0.95).
    outcome, analysis : str
        Labels for the tidy table.
    mu_prior, tau_prior : Prior or str or tuple, optional
        Bayesian only. Prior for the mean effect mu (default: ``priors.get_prior("default")``,
        Normal(0, 1) on the standardised-effect scale) and for the between-study SD tau (default:
        ``priors.get_prior("heterogeneity")``, HalfNormal(0.5)). A string is a name for
        :func:`evaltoolkit.estimators.bayes.priors.get_prior`; a tuple ``(mu, sigma)`` is a Normal prior for mu and
        ``("halfcauchy", scale)`` / ``("halfnormal", scale)`` a prior for tau. **Rescale them** (e.g.
        ``get_prior("default", outcome_sd=...)``) when effects are not standardised.
    draws, tune, chains, sampler, target_accept, seed :
        Bayesian only: posterior draws and tuning steps per chain, number of chains, ``"nutpie"``
        (default; falls back to PyMC NUTS if nutpie is not installed) or ``"pymc"``, target acceptance
        rate and random seed.

    Returns
    -------
    MetaResult
        ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value``, ``tau2``, ``i2``, ``h2``,
        ``q`` (with ``q_df``, ``q_p``), the prediction interval ``pi_lower``/``pi_upper``, per-study
        ``studies`` and ``weights``, a tidy ``table``; ``idata`` (ArviZ InferenceData) for Bayes.

    Raises
    ------
    DataError
        Non-positive standard errors, length mismatch, missing columns, fewer than two studies.
    DesignError
        Unknown method or options.

    Notes
    -----
    Formulas follow Viechtbauer (2010, *J. Stat. Softw.* 36(3)) and metafor 3.8: inverse-variance
    weights ``1 / (v_i + tau^2)``; Wald (z) inference, or t(k - 1) with Knapp-Hartung; prediction
    interval ``mu +/- crit * sqrt(SE^2 + tau^2)`` with the same critical value; ``I^2 = 100 tau^2 /
    (tau^2 + s^2)`` with ``s^2 = (k - 1) sum(w) / ((sum w)^2 - sum(w^2))``, ``w = 1 / v_i``. Studies
    with a missing effect or SE are dropped, counted in ``details["n_dropped"]`` and warned about.

    Examples
    --------
    BCG vaccine trials (log risk ratios, metafor's ``dat.bcg``), first three trials:

    >>> import evaltoolkit as et
    >>> res = et.meta_analysis([-0.889, -1.585, -1.348], [0.571, 0.441, 0.645], method="DL")
    >>> round(res.estimate, 3), round(res.tau2, 3)
    (-1.33, 0.0)

    From a DataFrame with column names:

    >>> import pandas as pd
    >>> df = pd.DataFrame({"site": ["A", "B", "C"], "d": [0.2, 0.5, 0.1], "se": [0.1, 0.2, 0.15]})
    >>> res = et.meta_analysis("d", "se", data=df, labels="site", method="FE")
    >>> row = res.table.iloc[0]
    >>> row["term"], round(float(row["estimate"]), 3), float(row["weight"])
    ('pooled (fixed effect)', 0.218, 100.0)
    """
    code = _METHOD_ALIASES.get(str(method).lower())
    if code is None:
        raise DesignError(f"unknown meta-analysis method '{method}'; choose one of {', '.join(_METHODS)}")
    if not (0 < level < 1):
        raise DesignError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    y, se, lab, notes = _prepare(effects, std_errors, labels, data, variances)
    warns: list[str] = []
    if notes["n_dropped"]:
        msg = (
            f"{notes['n_dropped']} stud{'y' if notes['n_dropped'] == 1 else 'ies'} with a missing effect or "
            f"standard error dropped: {', '.join(notes['dropped_labels'])}."
        )
        warns.append(msg)
        _warn(msg)
    if code == "bayes":
        return _meta_bayes(
            y, se, lab, notes, warns, level, outcome, analysis, mu_prior, tau_prior, draws, tune, chains,
            sampler, target_accept, seed,
        )  # fmt: skip

    k = len(y)
    v = se**2
    w_fe = 1.0 / v
    mu_fe, q = _fe(y, v)
    q_df = k - 1
    q_p = float(stats.chi2.sf(q, q_df))
    s2 = q_df * np.sum(w_fe) / (np.sum(w_fe) ** 2 - np.sum(w_fe**2))
    details: dict[str, Any] = {"method_code": code, "level": level, "k": k, **notes, "typical_v": float(s2)}

    tau2 = _tau2(code, y, v, details)
    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se_mu = float(math.sqrt(1.0 / np.sum(w)))
    se_mu, crit, p = _pooled_test(y, w, mu, se_mu, k, level, knapp_hartung, details, warns)
    if code == "FE":
        i2 = max(0.0, 100 * (q - q_df) / q) if q > 0 else 0.0
        h2 = q / q_df
        pi_lo = pi_hi = float("nan")
    else:
        i2 = 100 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2
        half = crit * math.sqrt(se_mu**2 + tau2)
        pi_lo, pi_hi = mu - half, mu + half
    if k < 5 and code != "FE":
        warns.append(
            f"Only {k} studies: tau^2 is estimated very imprecisely"
            + ("" if knapp_hartung else "; consider knapp_hartung=True or method='bayes' with stated priors")
            + "."
        )
    weights = 100 * w / np.sum(w)
    crit_z = float(stats.norm.ppf(0.5 + level / 2))
    studies = pd.DataFrame(
        {
            "label": lab,
            "effect": y,
            "std_error": se,
            "ci_lower": y - crit_z * se,
            "ci_upper": y + crit_z * se,
            "weight": weights,
        }
    )
    method_text = _METHOD_LABELS[code] + (", Knapp-Hartung t" if knapp_hartung else ", z test")
    term = "pooled (fixed effect)" if code == "FE" else "pooled (random effects)"
    details["mu_fe"] = mu_fe
    return MetaResult(
        analysis=analysis,
        outcome=outcome,
        term=term,
        estimate=mu,
        std_error=se_mu,
        ci_lower=mu - crit * se_mu,
        ci_upper=mu + crit * se_mu,
        p_value=p,
        n_obs=k,
        n_clusters=None,
        method=method_text,
        warnings=warns,
        details=details,
        tau2=float(tau2),
        i2=float(i2),
        h2=float(h2),
        q=float(q),
        q_df=int(q_df),
        q_p=q_p,
        pi_lower=float(pi_lo),
        pi_upper=float(pi_hi),
        studies=studies,
    )


def _tau2(code: str, y: np.ndarray, v: np.ndarray, details: dict[str, Any]) -> float:
    """Between-study variance: 0 (FE), DerSimonian-Laird, or REML/ML by Fisher scoring (recorded in details)."""
    if code == "FE":
        return 0.0
    elif code == "DL":
        return _tau2_dl(y, v)
    fit = _tau2_fisher(y, v, reml=code == "REML")
    details.update(se_tau2=fit["se_tau2"], iterations=fit["iterations"], converged=fit["converged"])
    if not fit["converged"]:
        raise EstimationError(
            f"{code} estimation of tau^2 did not converge in {fit['iterations']} Fisher-scoring steps; "
            "try method='DL'"
        )
    return fit["tau2"]


def _pooled_test(y, w, mu, se_mu, k, level, knapp_hartung, details, warns):
    """SE, critical value and p of the pooled estimate: Knapp-Hartung t on k - 1 df, or z."""
    if knapp_hartung:
        if k < 3:
            warns.append(
                "Knapp-Hartung with 2 studies uses a t distribution on 1 df: intervals are very wide."
            )
        qkh = float(np.sum(w * (y - mu) ** 2) / (k - 1))
        se_mu = float(math.sqrt(qkh / np.sum(w)))
        crit = float(stats.t.ppf(0.5 + level / 2, k - 1))
        stat = mu / se_mu
        p = float(2 * stats.t.sf(abs(stat), k - 1))
        details.update(test="t", df=k - 1, statistic=stat)
    else:
        crit = float(stats.norm.ppf(0.5 + level / 2))
        stat = mu / se_mu
        p = float(2 * stats.norm.sf(abs(stat)))
        details.update(test="z", df=None, statistic=stat)
    return se_mu, crit, p


def _warn(msg: str) -> None:
    import warnings

    warnings.warn(msg, EvalToolkitWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------------
# Bayesian normal-normal hierarchical model
# --------------------------------------------------------------------------------------------------
def _resolve_priors(mu_prior: Any, tau_prior: Any) -> tuple[Prior, Prior]:
    from evaltoolkit.estimators.bayes.priors import Prior, get_prior

    if mu_prior is None:
        mu_p = get_prior("default")
    elif isinstance(mu_prior, Prior):
        mu_p = mu_prior
    elif isinstance(mu_prior, str):
        mu_p = get_prior(mu_prior)
    elif isinstance(mu_prior, Sequence) and len(mu_prior) == 2:
        mu_p = Prior(
            "custom", "normal", float(mu_prior[0]), float(mu_prior[1]), "user-supplied prior", "user"
        )
    else:
        raise DesignError(f"mu_prior must be a Prior, a prior name or (mean, sd); got {mu_prior!r}")
    if tau_prior is None:
        tau_p = get_prior("heterogeneity")
    elif isinstance(tau_prior, Prior):
        tau_p = tau_prior
    elif isinstance(tau_prior, str):
        tau_p = get_prior(tau_prior)
    elif isinstance(tau_prior, Sequence) and len(tau_prior) == 2 and isinstance(tau_prior[0], str):
        tau_p = Prior("custom", str(tau_prior[0]).lower(), 0.0, float(tau_prior[1]), "user-supplied", "user")
    else:
        raise DesignError(
            f"tau_prior must be a Prior, a prior name or ('halfnormal', scale); got {tau_prior!r}"
        )
    if mu_p.distribution not in ("normal", "student_t"):
        raise DesignError(f"mu_prior must be a normal prior for an effect, got a {mu_p.distribution} prior")
    if tau_p.distribution not in ("halfnormal", "halfcauchy"):
        raise DesignError(
            f"tau_prior must be a half-normal or half-Cauchy prior for a standard deviation, got "
            f"'{tau_p.distribution}'"
        )
    return mu_p, tau_p


def _meta_bayes(
    y: np.ndarray,
    se: np.ndarray,
    lab: list[str],
    notes: dict[str, Any],
    warns: list[str],
    level: float,
    outcome: str,
    analysis: str,
    mu_prior: Any,
    tau_prior: Any,
    draws: int,
    tune: int,
    chains: int,
    sampler: str,
    target_accept: float,
    seed: int | None,
) -> MetaResult:
    for name, val, lo in (("draws", draws, 100), ("tune", tune, 100), ("chains", chains, 1)):
        if not isinstance(val, int | np.integer) or val < lo:
            raise DesignError(f"{name} must be an integer >= {lo}, got {val!r}")
    if sampler not in ("nutpie", "pymc"):
        raise DesignError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    mu_p, tau_p = _resolve_priors(mu_prior, tau_prior)
    import arviz as az

    k = len(y)
    model, idata, used = _sample_meta_model(y, se, lab, mu_p, tau_p, sampler, draws, tune, chains, seed,
                                            target_accept)  # fmt: skip
    post = idata.posterior
    mu_draws = post["mu"].values.reshape(-1)
    tau_draws = post["tau"].values.reshape(-1)
    rng = np.random.default_rng(seed)
    theta_new = mu_draws + tau_draws * rng.standard_normal(mu_draws.size)
    hdi_mu = az.hdi(mu_draws, hdi_prob=level)
    alpha = 1 - level
    pi = np.quantile(theta_new, [alpha / 2, 1 - alpha / 2])
    summ = az.summary(idata, var_names=["mu", "tau", "theta"], hdi_prob=level)
    diag = _diagnostics(idata, summ)
    for msg in diag["messages"]:
        warns.append(msg)
        _warn(msg)
    # classic statistics for the shrinkage display: posterior mean of theta and its weight-free table
    theta_mean = post["theta"].mean(("chain", "draw")).values
    studies = pd.DataFrame(
        {
            "label": lab,
            "effect": y,
            "std_error": se,
            "ci_lower": y - stats.norm.ppf(0.5 + level / 2) * se,
            "ci_upper": y + stats.norm.ppf(0.5 + level / 2) * se,
            "weight": _bayes_weights(se, tau_draws),
            "theta_mean": theta_mean,
        }
    )
    v = se**2
    _, q = _fe(y, v)
    w_fe = 1 / v
    s2 = (k - 1) * np.sum(w_fe) / (np.sum(w_fe) ** 2 - np.sum(w_fe**2))
    tau2_mean = float(np.mean(tau_draws**2))
    details = {
        "method_code": "bayes",
        "level": level,
        "k": k,
        **notes,
        "sampler": used,
        "mu_prior": mu_p,
        "tau_prior": tau_p,
        "posterior_summary": summ,
        "mu_median": float(np.median(mu_draws)),
        "tau_mean": float(np.mean(tau_draws)),
        "tau_median": float(np.median(tau_draws)),
        "tau_hdi": tuple(float(x) for x in az.hdi(tau_draws, hdi_prob=level)),
        "prob_positive": float(np.mean(mu_draws > 0)),
        "mcse_mu": float(summ.loc["mu", "mcse_mean"]),
        "mcse_tau": float(summ.loc["tau", "mcse_mean"]),
        "diagnostics": diag,
        "model": model,
    }
    method_text = (
        f"Bayesian normal-normal hierarchical model (mu ~ {mu_p.label()}, tau ~ {tau_p.label()}), "
        f"{round(level * 100)}% HDI; {used} NUTS, {chains}x{draws} draws"
    )
    return MetaResult(
        analysis=analysis,
        outcome=outcome,
        term="pooled (Bayesian random effects)",
        estimate=float(np.mean(mu_draws)),
        std_error=float(np.std(mu_draws, ddof=1)),
        ci_lower=float(hdi_mu[0]),
        ci_upper=float(hdi_mu[1]),
        p_value=float("nan"),
        n_obs=k,
        n_clusters=None,
        method=method_text,
        warnings=warns,
        details=details,
        tau2=tau2_mean,
        i2=float(np.mean(100 * tau_draws**2 / (tau_draws**2 + s2))),
        h2=float(np.mean((tau_draws**2 + s2) / s2)),
        q=float(q),
        q_df=k - 1,
        q_p=float(stats.chi2.sf(q, k - 1)),
        pi_lower=float(pi[0]),
        pi_upper=float(pi[1]),
        studies=studies,
        idata=idata,
    )


def _sample_meta_model(y, se, lab, mu_p, tau_p, sampler, draws, tune, chains, seed, target_accept):
    """The normal-normal hierarchical model (non-centred), sampled with nutpie (or PyMC's NUTS)."""
    import pymc as pm

    with pm.Model(coords={"study": lab}) as model:
        mu = mu_p.to_pymc("mu")
        tau = tau_p.to_pymc("tau")
        z = pm.Normal("z", 0.0, 1.0, dims="study")
        theta = pm.Deterministic("theta", mu + tau * z, dims="study")
        pm.Normal("y", mu=theta, sigma=se, observed=y, dims="study")

    used = sampler
    if sampler == "nutpie":
        try:
            import nutpie
        except ImportError:  # pragma: no cover - nutpie is a declared dependency
            used = "pymc"
    if used == "nutpie":
        compiled = nutpie.compile_pymc_model(model)
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=False,
            cores=chains,
            target_accept=target_accept,
        )
    else:
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=1,
                random_seed=seed,
                target_accept=target_accept,
                progressbar=False,
                compute_convergence_checks=False,
            )
    return model, idata, used


def _bayes_weights(se: np.ndarray, tau_draws: np.ndarray) -> np.ndarray:
    """Posterior-averaged inverse-variance weights (percent) - for display only."""
    w = 1.0 / (se[None, :] ** 2 + tau_draws[:, None] ** 2)
    w = w / w.sum(axis=1, keepdims=True)
    return 100 * w.mean(axis=0)


def _diagnostics(idata: Any, summ: pd.DataFrame) -> dict[str, Any]:
    """R-hat, bulk/tail ESS, divergences; plain-language messages for any problem."""
    msgs: list[str] = []
    rhat = float(summ["r_hat"].max())
    ess_bulk = float(summ["ess_bulk"].min())
    ess_tail = float(summ["ess_tail"].min())
    div = 0
    ss = getattr(idata, "sample_stats", None)
    if ss is not None:
        for name in ("diverging", "divergences"):
            if name in ss:
                div = int(np.asarray(ss[name]).sum())
                break
    n_draws = int(idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])
    if np.isfinite(rhat) and rhat > 1.01:
        msgs.append(f"R-hat up to {rhat:.3f} (> 1.01): the chains disagree; run longer or check the model.")
    if np.isfinite(ess_bulk) and ess_bulk < 400:
        msgs.append(f"Bulk ESS as low as {ess_bulk:.0f} (< 400): posterior summaries are imprecise.")
    if np.isfinite(ess_tail) and ess_tail < 400:
        msgs.append(f"Tail ESS as low as {ess_tail:.0f} (< 400): interval limits are imprecise.")
    if div:
        msgs.append(f"{div} divergent transition(s) out of {n_draws}: the posterior may be biased.")
    return {"r_hat_max": rhat, "ess_bulk_min": ess_bulk, "ess_tail_min": ess_tail, "divergences": div,
            "messages": msgs}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Egger's regression test
# --------------------------------------------------------------------------------------------------
def contact_meta_analysis(subset: str | None = None, method: str = "DL"):
    """Random-effects meta-analysis of the Paluck et al. (2019) studies (the basis of the contact priors).

    Parameters
    ----------
    subset : {None, "race", "preregistered"}
        All 27 studies, the 11 with a race/ethnicity target, or the 3 with a pre-analysis plan.
    method : str
        Passed to :func:`meta_analysis` (``"DL"`` reproduces the paper).

    Returns
    -------
    evaltoolkit.estimators.meta.MetaResult

    Examples
    --------
    >>> from evaltoolkit.estimators.meta import contact_meta_analysis
    >>> res = contact_meta_analysis()
    >>> round(res.estimate, 3), round(res.std_error, 3), round(res.tau2, 3)
    (0.393, 0.082, 0.137)
    """
    from evaltoolkit.estimators.bayes.priors import load_paluck2019

    df = load_paluck2019()
    if subset == "race":
        df = df[df["target"] == "race"]
    elif subset == "preregistered":
        df = df[df["pap"] == 1]
    elif subset is not None:
        raise DesignError(f"unknown subset '{subset}'; use None, 'race' or 'preregistered'")
    return meta_analysis(
        "d", "se_d", data=df, labels="name_short", method=method, outcome="prejudice reduction (Glass's Δ)",
        analysis="paluck2019_contact",
    )  # fmt: skip


def egger_test(
    result_or_effects: MetaResult | Any, std_errors: Any = None, *, labels: Any = None
) -> EggerResult:
    """Egger's regression test for funnel-plot asymmetry (small-study effects).

    Ordinary least squares of the standardised effect ``y_i / se_i`` on the precision ``1 / se_i``
    (Egger et al. 1997, *BMJ* 315:629); the intercept measures asymmetry and is tested with t on
    k - 2 df. This equals metafor's ``regtest(rma(yi, vi, method="FE"), model="lm")`` (the coefficient
    of ``sei`` in a weighted regression of ``yi`` on ``sei`` with multiplicative dispersion).

    Parameters
    ----------
    result_or_effects : MetaResult or array-like
        A meta-analysis result, or the effects (then give ``std_errors``).
    std_errors : array-like, optional
        Standard errors when effects are given.
    labels : array-like, optional
        Study labels (only used for error messages).

    Returns
    -------
    EggerResult

    Examples
    --------
    >>> from evaltoolkit.estimators.meta import egger_test
    >>> r = egger_test([0.9, 0.6, 0.4, 0.3, 0.25], [0.40, 0.30, 0.20, 0.10, 0.05])
    >>> r.intercept > 0, r.df
    (True, 3)
    """
    if isinstance(result_or_effects, MetaResult):
        assert result_or_effects.studies is not None
        y = result_or_effects.studies["effect"].to_numpy()
        se = result_or_effects.studies["std_error"].to_numpy()
    else:
        y, se, _, _ = _prepare(result_or_effects, std_errors, labels, None, None)
    k = len(y)
    if k < 3:
        raise DataError(f"Egger's test needs at least 3 studies (it fits a line and tests it); got {k}")
    z = y / se
    prec = 1.0 / se
    x = np.column_stack([np.ones(k), prec])
    beta, *_ = np.linalg.lstsq(x, z, rcond=None)
    resid = z - x @ beta
    df = k - 2
    sigma2 = float(resid @ resid / df)
    cov = sigma2 * np.linalg.inv(x.T @ x)
    b0_se = float(math.sqrt(cov[0, 0]))
    t = float(beta[0] / b0_se) if b0_se > 0 else float("nan")
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else float("nan")
    return EggerResult(
        intercept=float(beta[0]),
        std_error=b0_se,
        t=t,
        df=df,
        p_value=p,
        slope=float(beta[1]),
        k=k,
        details={"slope_se": float(math.sqrt(cov[1, 1]))},
    )


# --------------------------------------------------------------------------------------------------
# meta-regression (moderators; PET-PEESE)
# --------------------------------------------------------------------------------------------------
_REG_METHODS = {"FE": "FE", "fe": "FE", "REML": "REML", "reml": "REML", "WLS": "WLS", "wls": "WLS"}
_REG_LABELS = {
    "FE": "fixed-effect meta-regression (weights 1/v_i, z tests)",
    "REML": "mixed-effects meta-regression, REML residual tau^2 (Fisher scoring), z tests",
    "WLS": "weighted least squares (weights 1/v_i, multiplicative dispersion, t tests on k - p df)",
}


@dataclass
class MetaRegressionResult:
    """Coefficients of a meta-regression of study effects on study-level moderators.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per coefficient (``intercept`` first, then each moderator): ``term, estimate, std_error,
        statistic, df, p_value, ci_lower, ci_upper`` (``df`` is NaN for z tests).
    tau2 : float
        Residual between-study variance (0 for ``FE`` and ``WLS``).
    method : str
        ``"FE"``, ``"REML"`` or ``"WLS"``.
    k : int
        Studies used.
    details : dict
        ``n_dropped`` and ``dropped`` (counts by reason), ``moderators``, ``dispersion`` (WLS),
        ``converged`` and ``iterations`` (REML), ``level``.
    """

    table: pd.DataFrame
    tau2: float
    method: str
    k: int
    details: dict[str, Any] = field(default_factory=dict)

    def coef(self, term: str) -> pd.Series:
        """The row of :attr:`table` for one term (``"intercept"`` or a moderator name)."""
        rows = self.table[self.table["term"] == term]
        if rows.empty:
            raise DataError(
                f"no term '{term}' in this meta-regression; terms: {', '.join(self.table['term'])}"
            )
        return rows.iloc[0]

    def summary(self) -> str:
        """One sentence per moderator, in plain language."""
        parts = []
        for r in self.table.iloc[1:].itertuples(index=False):
            parts.append(
                f"{r.term}: {r.estimate:+.4g} per unit (SE {r.std_error:.3g}, 95% CI {r.ci_lower:+.3g} to "
                f"{r.ci_upper:+.3g}, {p_label(r.p_value)})"
            )
        text = f"Meta-regression of {self.k} studies ({_REG_LABELS[self.method]}): " + "; ".join(parts) + "."
        if self.method == "REML":
            text += f" Residual tau^2 = {self.tau2:.4f}."
        return text


def _tau2_reml_mods(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, tol: float = 1e-10, maxiter: int = 500
) -> dict:
    """REML residual tau^2 of ``y = X b + u + e`` by Fisher scoring with step halving at 0 (as metafor)."""
    tau2 = 0.0
    converged = False
    it = 0
    for it in range(1, maxiter + 1):  # noqa: B007 - "it" is reported
        w = 1.0 / (v + tau2)
        xw = X.T * w
        inv = np.linalg.inv(xw @ X)
        P = np.diag(w) - xw.T @ inv @ xw
        py = P @ y
        step = float((py @ py - np.trace(P)) / np.sum(P * P))
        new = tau2 + step
        while new < 0 and abs(step) > tol:
            step /= 2
            new = tau2 + step
        new = max(0.0, float(new))
        if abs(new - tau2) < tol:
            tau2, converged = new, True
            break
        tau2 = new
    return {"tau2": tau2, "converged": converged, "iterations": it}


def meta_regression(
    effects: Any,
    std_errors: Any = None,
    moderators: Any = (),
    *,
    data: pd.DataFrame | None = None,
    variances: Any = None,
    method: str = "REML",
    level: float = 0.95,
) -> MetaRegressionResult:
    """Meta-regression: study effects on study-level moderators (publication year, delay, standard error).

    The model is ``y_i = x_i' b + u_i + e_i`` with ``e_i ~ N(0, v_i)`` (``v_i`` the squared standard error) and
    ``u_i ~ N(0, tau^2)``:

    * ``"REML"`` (default): residual tau^2 by restricted maximum likelihood, then weights ``1/(v_i + tau^2)``
      and z tests, as metafor ``rma(yi, sei = se, mods = ~ x, method = "REML")``;
    * ``"FE"``: tau^2 = 0, weights ``1/v_i``, z tests (metafor ``method = "FE"``);
    * ``"WLS"``: weights ``1/v_i`` with a multiplicative dispersion estimated from the residuals and t tests on
      k - p df, i.e. R ``lm(yi ~ x, weights = 1/vi)``: the form of the PET and PEESE regressions (Stanley &
      Doucouliagos 2014, *Research Synthesis Methods* 5:60), where the moderator is the standard error (PET) or
      the variance (PEESE) and the intercept is the effect of a study with no sampling error.

    Parameters
    ----------
    effects, std_errors : str or array-like
        Column names in ``data`` or arrays of the study effects and their standard errors.
    moderators : str, sequence of str, or mapping
        Column name(s) in ``data``, or (without ``data``) a mapping of name to values. Numeric only.
    data : DataFrame, optional
        The study table.
    variances : str or array-like, optional
        Sampling variances instead of standard errors.
    method : {"REML", "FE", "WLS"}
    level : float
        Confidence level of the intervals.

    Returns
    -------
    MetaRegressionResult

    Raises
    ------
    DataError
        A missing or non-numeric moderator column, non-positive standard errors, or too few studies.
    DesignError
        An unknown method.

    Examples
    --------
    PET on the 27 contact studies (R ``lm(d ~ se_d, weights = 1/se_d^2)``: intercept 0.0275, SE 0.1637):

    >>> from evaltoolkit.estimators.bayes.priors import load_paluck2019
    >>> pet = meta_regression("d", "se_d", "se_d", data=load_paluck2019(), method="WLS")
    >>> round(float(pet.coef("intercept").estimate), 4), round(float(pet.coef("intercept").std_error), 4)
    (0.0275, 0.1637)
    """
    code = _REG_METHODS.get(str(method))
    if code is None:
        raise DesignError(f"unknown meta-regression method '{method}'; use REML, FE or WLS", field="method")
    if not 0 < level < 1:
        raise DesignError(f"level must be between 0 and 1, got {level}", field="level")
    if data is None:
        if isinstance(moderators, Mapping):
            frame = pd.DataFrame(
                {str(k): _as_float_array(v, f"moderator '{k}'") for k, v in moderators.items()}
            )
        else:
            raise DataError("without data=, give the moderators as a mapping of name to values")
        frame["__y"] = _as_float_array(effects, "effects")
        if std_errors is not None:
            frame["__se"] = _as_float_array(std_errors, "std_errors")
            effects, std_errors = "__y", "__se"
        else:
            frame["__v"] = _as_float_array(variances, "variances")
            effects, variances = "__y", "__v"
        data = frame
        names = [c for c in frame.columns if not c.startswith("__")]
    else:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
        names = [moderators] if isinstance(moderators, str) else list(moderators)
    if not names:
        raise DataError("give at least one moderator (a column of study-level values)")
    mods = {}
    for name in names:
        col = _column(data, name, "moderators")
        if not pd.api.types.is_numeric_dtype(col):
            raise DataError(
                f"moderator '{name}' must be numeric; code categories as 0/1 columns", column=name
            )
        mods[name] = col.astype(float)
    missing = pd.concat(mods, axis=1).isna().any(axis=1)
    dropped = {"missing moderator": int(missing.sum())} if missing.any() else {}
    y, se, _, notes = _prepare(
        effects, std_errors, None, data.loc[~missing], variances if std_errors is None else None
    )
    if notes["n_dropped"]:
        dropped["missing effect or standard error"] = notes["n_dropped"]
    kept = data.loc[~missing]
    kept = kept.loc[
        np.isfinite(kept[effects].astype(float))
        & np.isfinite(kept[std_errors if std_errors is not None else variances].astype(float))
    ]
    X = np.column_stack([np.ones(len(y))] + [kept[n].to_numpy(float) for n in names])
    k, p = X.shape
    if k <= p:
        raise DataError(f"a meta-regression with {p} coefficients needs more than {p} studies; got {k}")
    if np.linalg.matrix_rank(X) < p:
        raise DataError("the moderators are constant or collinear across the studies; drop one")
    v = se**2
    details: dict[str, Any] = {"moderators": names, "n_dropped": sum(dropped.values()), "dropped": dropped}
    tau2 = 0.0
    if code == "REML":
        fit = _tau2_reml_mods(y, v, X)
        tau2 = fit["tau2"]
        details.update(converged=fit["converged"], iterations=fit["iterations"])
    w = 1.0 / (v + tau2)
    xw = X.T * w
    cov = np.linalg.inv(xw @ X)
    beta = cov @ (xw @ y)
    if code == "WLS":
        resid = y - X @ beta
        dispersion = float(np.sum(w * resid**2) / (k - p))
        cov = cov * dispersion
        details["dispersion"] = dispersion
        df = float(k - p)
        crit = float(stats.t.ppf(0.5 + level / 2, df))
    else:
        df = float("nan")
        crit = float(stats.norm.ppf(0.5 + level / 2))
    se_b = np.sqrt(np.diag(cov))
    stat = beta / se_b
    pval = 2 * (stats.t.sf(np.abs(stat), df) if code == "WLS" else stats.norm.sf(np.abs(stat)))
    table = pd.DataFrame(
        {
            "term": ["intercept", *names],
            "estimate": beta,
            "std_error": se_b,
            "statistic": stat,
            "df": df,
            "p_value": pval,
            "ci_lower": beta - crit * se_b,
            "ci_upper": beta + crit * se_b,
        }
    )
    details["level"] = level
    return MetaRegressionResult(table=table, tau2=float(tau2), method=code, k=k, details=details)


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------
