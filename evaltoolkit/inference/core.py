"""Least squares with honest, few-cluster-safe inference.

This module is the numerical core shared by the effect estimators:

* :func:`ols` — (weighted) least squares, optionally absorbing fixed effects
  (see :mod:`evaltoolkit.inference.fixed_effects`), returning an :class:`OLSFit`.
* :func:`vcov` — variance matrices: ``"classical"``, ``"HC1"``, ``"CR1"`` (Stata /
  fixest small-sample factor ``G/(G-1) * (N-1)/(N-K)``; with ``nested=True`` fixed
  effects nested in the clusters are not counted in ``K``, fixest's default) and
  ``"CR2"`` (Bell and McCaffrey 2002 bias-reduced linearisation, as in R's
  ``clubSandwich``).
* :func:`coef_test` — one coefficient's estimate, SE, degrees of freedom, p-value
  and interval; CR2 uses the Satterthwaite degrees of freedom of Pustejovsky and
  Tipton (2018), matching ``clubSandwich::coef_test(..., vcov = "CR2",
  test = "Satterthwaite")``.
* :func:`wild_cluster_bootstrap` — the restricted wild cluster bootstrap (WCR;
  Cameron, Gelbach and Miller 2008; MacKinnon and Webb 2017) with Rademacher or
  Webb weights, a symmetric p-value and a confidence interval by test inversion,
  fully vectorised (the bootstrap t statistics are rational functions of the null
  value, so inverting the test costs almost nothing).
The toolkit's default rule (CR1 with at least 30 clusters, the wild cluster bootstrap with CR2
standard errors below that, a caution below 10) and the code that applies it to an estimator's fit
are in :mod:`evaltoolkit.inference.policy`.

Everything works on "working" arrays: rows multiplied by the square root of the
weights and fixed effects removed (Frisch–Waugh–Lovell), so weighted and absorbed
models need no special cases.

Examples
--------
>>> import numpy as np
>>> from evaltoolkit.inference.core import ols, coef_test
>>> rng = np.random.default_rng(1)
>>> g = np.repeat(np.arange(20), 10)
>>> x = rng.normal(size=200)
>>> y = 1 + 0.5 * x + rng.normal(size=20)[g] + rng.normal(size=200)
>>> fit = ols(y, np.column_stack([np.ones(200), x]), names=["const", "x"])
>>> res = coef_test(fit, "x", vcov="CR2", cluster=g)
>>> # 0.569 (df 14.1) with this seed and the locked versions; over seeds |estimate - 0.5| < 3.6 SEs, df 13-19
>>> bool(abs(res["estimate"] - 0.5) < 5 * res["std_error"]), bool(10 < res["df"] < 20)
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from evaltoolkit.errors import EstimationError
from evaltoolkit.inference.fixed_effects import FixedEffects, encode, fe_dof, is_nested

__all__ = [
    "OLSFit",
    "cluster_scores",
    "coef_test",
    "ols",
    "vcov",
    "wild_cluster_bootstrap",
]

VCOV_TYPES = ("classical", "HC1", "CR1", "CR2")


@dataclass
class OLSFit:
    """A fitted least-squares model on working (weighted, demeaned) arrays.

    Attributes
    ----------
    coef : ndarray
        Estimated coefficients.
    names : list of str
        Coefficient names.
    X, y, resid : ndarray
        Working design, outcome and residuals (rows times sqrt(weight), fixed effects removed).
    bread : ndarray
        ``(X'X)^{-1}`` of the working design.
    n_obs : int
        Rows used.
    fe : FixedEffects or None
        Absorbed fixed effects.
    """

    coef: np.ndarray
    names: list[str]
    X: np.ndarray
    y: np.ndarray
    resid: np.ndarray
    bread: np.ndarray
    n_obs: int
    fe: FixedEffects | None = None
    weights: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of estimated (non-absorbed) coefficients."""
        return len(self.coef)

    @property
    def n_absorbed(self) -> int:
        """Parameters absorbed by fixed effects."""
        return 0 if self.fe is None else self.fe.dof

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom ``N - K`` counting absorbed parameters."""
        return self.n_obs - self.k - self.n_absorbed

    def index(self, term: str | int) -> int:
        """Position of a coefficient given its name or position."""
        if isinstance(term, int | np.integer):
            return int(term)
        try:
            return self.names.index(term)
        except ValueError:
            raise EstimationError(f"no coefficient named '{term}' (have {self.names})") from None


def ols(
    y: np.ndarray,
    X: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
    absorb: Sequence[np.ndarray] | FixedEffects | None = None,
) -> OLSFit:
    """(Weighted) least squares, optionally absorbing fixed effects.

    Parameters
    ----------
    y : array, shape (n,)
    X : array, shape (n, k)
        Regressors (include a constant column yourself when nothing is absorbed).
    names : list of str, optional
        Coefficient names (default ``x0, x1, ...``).
    weights : array, optional
        Non-negative analytic/sampling weights (as ``lm(weights=)``).
    absorb : list of label arrays or FixedEffects, optional
        Fixed effects to absorb by demeaning.

    Returns
    -------
    OLSFit

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0.0, 1, 2, 3]])
    >>> ols(np.array([1.0, 3, 5, 7]), X).coef.round(6)
    array([1., 2.])
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n, k = X.shape
    if len(y) != n:
        raise EstimationError(f"outcome has {len(y)} rows but the design has {n}")
    names = list(names) if names is not None else [f"x{i}" for i in range(k)]
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            raise EstimationError("weights must be finite and non-negative")
    fe = None
    if absorb is not None:
        fe = absorb if isinstance(absorb, FixedEffects) else FixedEffects.from_arrays(absorb, weights=w)
        Xy = fe.demean(np.column_stack([X, y]))
        X, y = Xy[:, :k], Xy[:, k]
    if w is not None:
        sw = np.sqrt(w)
        X = X * sw[:, None]
        y = y * sw
    xtx = X.T @ X
    try:
        bread = np.linalg.inv(xtx)
        cond = np.linalg.cond(xtx)
    except np.linalg.LinAlgError:
        cond = np.inf
    if not np.isfinite(cond) or cond > 1e12:
        bad = _collinear_columns(X, names)
        raise EstimationError(
            "the model cannot be estimated: regressors are collinear or have no variation"
            + (f" ({', '.join(bad)})" if bad else "")
        )
    coef = bread @ (X.T @ y)
    resid = y - X @ coef
    return OLSFit(coef=coef, names=names, X=X, y=y, resid=resid, bread=bread, n_obs=n, fe=fe, weights=w)


def _collinear_columns(X: np.ndarray, names: list[str]) -> list[str]:
    """Names of columns that add nothing given the earlier ones."""
    bad, keep = [], []
    for j in range(X.shape[1]):
        cols = X[:, [*keep, j]]
        if np.linalg.matrix_rank(cols) <= len(keep):
            bad.append(names[j])
        else:
            keep.append(j)
    return bad


def _cluster_codes(cluster, n: int) -> tuple[np.ndarray, int]:
    codes, g = encode(cluster)
    if len(codes) != n:
        raise EstimationError(f"cluster has {len(codes)} values but the model has {n} rows")
    return codes, g


def cluster_scores(X: np.ndarray, e: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    """Cluster sums of the scores ``X_g' e_g`` (shape ``G x k``), via :func:`numpy.bincount`."""
    out = np.empty((g, X.shape[1]))
    for j in range(X.shape[1]):
        out[:, j] = np.bincount(codes, weights=X[:, j] * e, minlength=g)
    return out


def _k_small_sample(fit: OLSFit, codes: np.ndarray | None, nested: bool) -> int:
    """K in ``(N-1)/(N-K)``: coefficients plus absorbed parameters (minus nested ones)."""
    k = fit.k
    if fit.fe is None:
        return k
    total = fe_dof(fit.fe.codes, fit.fe.n_levels)
    if nested and codes is not None:
        for c, levels in zip(fit.fe.codes, fit.fe.n_levels):
            if is_nested(c, codes):
                # pyfixest/fixest "nested": drop the nested levels, keep one (its intercept)
                total -= levels - 1
    return k + total


def vcov(
    fit: OLSFit,
    type: str = "HC1",
    *,
    cluster: np.ndarray | None = None,
    nested: bool = True,
) -> np.ndarray:
    """Variance–covariance matrix of the coefficients.

    Parameters
    ----------
    fit : OLSFit
    type : {"classical", "HC1", "CR1", "CR2"}
        ``classical``: ``s^2 (X'X)^{-1}`` with ``s^2 = e'e/(N-K)``. ``HC1``: White's
        estimator times ``N/(N-K)`` (``sandwich::vcovHC(type="HC1")``). ``CR1``:
        Liang–Zeger times ``G/(G-1) (N-1)/(N-K)`` (Stata, fixest). ``CR2``: Bell–McCaffrey
        (``clubSandwich::vcovCR(type="CR2")`` with the identity working model, or inverse-
        variance weights when weighted).
    cluster : array, optional
        Cluster labels (required for CR1/CR2).
    nested : bool
        For CR1 with absorbed fixed effects: do not count fixed effects nested within the
        clusters in ``K`` (fixest's default ``fixef.K = "nested"``). ``False`` counts every
        absorbed parameter (as ``lm`` with dummies and ``sandwich::vcovCL(type = "HC1")``).

    Returns
    -------
    ndarray, shape (k, k)

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), [0.0, 1, 2, 3, 4, 5]])
    >>> fit = ols(np.array([0.1, 1.2, 1.9, 3.2, 3.9, 5.1]), X)
    >>> round(float(np.sqrt(vcov(fit, "classical")[1, 1])), 4)
    0.0355
    """
    X, e, M, n = fit.X, fit.resid, fit.bread, fit.n_obs
    if type == "classical":
        return M * (e @ e) / fit.df_resid
    if type == "HC1":
        meat = (X * (e**2)[:, None]).T @ X
        return n / fit.df_resid * (M @ meat @ M)
    if type not in ("CR1", "CR2"):
        raise EstimationError(f"unknown vcov type '{type}' (use one of {', '.join(VCOV_TYPES)})")
    if cluster is None:
        raise EstimationError(f"vcov='{type}' needs a cluster variable")
    codes, g = _cluster_codes(cluster, n)
    if g < 2:
        raise EstimationError("cluster-robust standard errors need at least 2 clusters", column=None)
    if type == "CR1":
        S = cluster_scores(X, e, codes, g)
        K = _k_small_sample(fit, codes, nested)
        factor = g / (g - 1) * (n - 1) / (n - K)
        return factor * (M @ (S.T @ S) @ M)
    _check_cr2_absorbed(fit, codes)
    S = _cr2_scores(fit, codes, g)
    return M @ (S.T @ S) @ M


_vcov_matrix = vcov


def _check_cr2_absorbed(fit: OLSFit, codes: np.ndarray) -> None:
    if fit.fe is None:
        return
    for c in fit.fe.codes:
        if not is_nested(c, codes):
            raise EstimationError(
                "CR2 with absorbed fixed effects needs the fixed effects nested within clusters; "
                "include non-nested fixed effects (e.g. waves) as dummy regressors instead"
            )


def _cluster_slices(codes: np.ndarray, g: int) -> list[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=g))[:-1]
    return np.split(order, bounds)


def _inv_sqrt_psd(A: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Symmetric Moore–Penrose inverse square root of a PSD matrix."""
    vals, vecs = np.linalg.eigh(A)
    keep = vals > tol * max(1.0, vals.max(initial=0.0))
    inv = np.zeros_like(vals)
    inv[keep] = 1.0 / np.sqrt(vals[keep])
    return (vecs * inv) @ vecs.T


_CR2_MAX_CLUSTER = 6000


def _original_space(fit: OLSFit) -> tuple[np.ndarray, np.ndarray]:
    """Square-root weights and weights (ones when unweighted)."""
    if fit.weights is None:
        one = np.ones(fit.n_obs)
        return one, one
    return np.sqrt(fit.weights), fit.weights


def _fe_projection(fit: OLSFit, idx: np.ndarray, sw: np.ndarray) -> np.ndarray | None:
    """Projection onto the (sqrt-weighted) dummies of fixed effects nested in one cluster."""
    if fit.fe is None:
        return None
    blocks = []
    for c in fit.fe.codes:
        _, inv = np.unique(c[idx], return_inverse=True)
        D = np.zeros((len(idx), inv.max() + 1))
        D[np.arange(len(idx)), inv] = 1.0
        blocks.append(D)
    D = np.hstack(blocks) * sw[idx, None]
    return D @ np.linalg.pinv(D)


def _cr2_adjustments(fit: OLSFit, codes: np.ndarray, g: int) -> list[tuple]:
    """Per cluster: row indices, the CR2 adjustment ``A_g`` and the fixed-effect projection.

    clubSandwich's choice for ``lm``: identity working model (target), weights ``W`` used
    in estimation only, hat matrix ``H = X M X'W`` of the full design (slopes and the
    dummies of any absorbed fixed effects, which must be nested in the clusters) and
    ``A_g = [(I - H)_g (I - H)_g']^{+1/2}`` (Moore–Penrose), where ``(I - H)_g`` are the
    rows of cluster g. Unweighted this is ``(I - H_gg)^{-1/2}`` (Bell and McCaffrey 2002).
    Computed in the working (sqrt-weighted) space, where ``P = S H S^{-1}`` is symmetric
    and splits into the projection on the demeaned design plus the within-cluster
    projection on the dummies.
    """
    key = ("cr2", g, hash(codes.tobytes()))
    cached = fit.info.get(key)
    if cached is not None:
        return cached
    slices = _cluster_slices(codes, g)
    biggest = max(len(s) for s in slices)
    if biggest > _CR2_MAX_CLUSTER:
        raise EstimationError(
            f"CR2 needs an n_g x n_g matrix per cluster and the largest cluster has {biggest} rows; "
            "use the wild cluster bootstrap (vcov='wild') for so few, so large clusters"
        )
    M = fit.bread
    sw, w = _original_space(fit)
    weighted = fit.weights is not None
    F = (fit.X * w[:, None]).T @ fit.X if weighted else None
    out = []
    for idx in slices:
        Xg = fit.X[idx]
        Pt = Xg @ M @ Xg.T
        PD = _fe_projection(fit, idx, sw)
        if not weighted:
            C = np.eye(len(idx)) - Pt - (PD if PD is not None else 0.0)
        else:
            P = Pt + PD if PD is not None else Pt
            wg = w[idx]
            IP = np.eye(len(idx)) - P
            C = (IP * wg[None, :]) @ IP + Xg @ M @ F @ M @ Xg.T - (Pt * wg[None, :]) @ Pt
            C = C / sw[idx, None] / sw[idx][None, :]
        out.append((idx, _inv_sqrt_psd(C), PD))
    fit.info[key] = out
    return out


def _cr2_scores(fit: OLSFit, codes: np.ndarray, g: int) -> np.ndarray:
    """Adjusted cluster scores ``X_g' W_g A_g e_g`` (G x k), original units."""
    sw, _ = _original_space(fit)
    S = np.empty((g, fit.k))
    for j, (idx, A, _) in enumerate(_cr2_adjustments(fit, codes, g)):
        S[j] = fit.X[idx].T @ (sw[idx] * (A @ (fit.resid[idx] / sw[idx])))
    return S


def satterthwaite_df(fit: OLSFit, contrast: np.ndarray, cluster: np.ndarray) -> float:
    """Satterthwaite degrees of freedom of a CR2 contrast (Pustejovsky and Tipton 2018).

    ``df = (sum_g p_g'p_g)^2 / sum_{g,h} (p_g'p_h)^2`` with
    ``p_g = (I - H)_g' A_g W_g X_g M c`` and the identity working model. In the working
    space, with ``t_g = S_g^{-1} A_g W_g X_g M c``, ``alpha_g = (I - P_D,g) t_g``,
    ``beta_g = M X_g' t_g`` and ``a_g = X_g' W_g alpha_g``:
    ``p_g'p_h = alpha_g'W_g alpha_g [g = h] - a_g'beta_h - beta_g'a_h + beta_g' X'WX beta_h``,
    so only G x G matrices are formed.
    """
    codes, g = _cluster_codes(cluster, fit.n_obs)
    _check_cr2_absorbed(fit, codes)
    M = fit.bread
    sw, w = _original_space(fit)
    mc = M @ np.asarray(contrast, float)
    Amat = np.empty((g, fit.k))
    Bmat = np.empty((g, fit.k))
    diag = np.empty(g)
    for j, (idx, A, PD) in enumerate(_cr2_adjustments(fit, codes, g)):
        Xg = fit.X[idx]
        t = (A @ (sw[idx] * (Xg @ mc))) / sw[idx]
        alpha = t - PD @ t if PD is not None else t
        wa = w[idx] * alpha
        diag[j] = alpha @ wa
        Amat[j] = Xg.T @ wa
        Bmat[j] = M @ (Xg.T @ t)
    F = (fit.X * w[:, None]).T @ fit.X if fit.weights is not None else fit.X.T @ fit.X
    cross = Amat @ Bmat.T
    P = np.diag(diag) - cross - cross.T + Bmat @ F @ Bmat.T
    return float(np.trace(P) ** 2 / np.sum(P * P))


def coef_test(
    fit: OLSFit,
    term: str | int,
    *,
    vcov: str = "HC1",
    cluster: np.ndarray | None = None,
    nested: bool = True,
    alpha: float = 0.05,
    h0: float = 0.0,
) -> dict[str, Any]:
    """Test one coefficient with a given variance estimator.

    Degrees of freedom: ``N - K`` for classical and HC1, ``G - 1`` for CR1 (Stata,
    fixest) and Satterthwaite for CR2 (clubSandwich).

    Returns
    -------
    dict
        ``estimate, std_error, statistic, df, p_value, ci_lower, ci_upper, vcov, n_clusters``.

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), [0.0, 1, 2, 3, 4, 5]])
    >>> fit = ols(np.array([0.1, 1.2, 1.9, 3.2, 3.9, 5.1]), X, names=["const", "x"])
    >>> round(coef_test(fit, "x", vcov="classical")["p_value"], 7)
    1.01e-05
    """
    j = fit.index(term)
    V = _vcov_matrix(fit, vcov, cluster=cluster, nested=nested)
    est = float(fit.coef[j])
    se = float(math.sqrt(V[j, j]))
    g = None
    if vcov in ("classical", "HC1"):
        df = float(fit.df_resid)
    else:
        _, g = encode(cluster)
        if vcov == "CR1":
            df = float(g - 1)
        else:
            c = np.zeros(fit.k)
            c[j] = 1.0
            df = satterthwaite_df(fit, c, cluster)
    stat = (est - h0) / se if se > 0 else np.nan
    p = float(2 * stats.t.sf(abs(stat), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return {
        "estimate": est,
        "std_error": se,
        "statistic": float(stat),
        "df": df,
        "p_value": p,
        "ci_lower": est - q * se,
        "ci_upper": est + q * se,
        "vcov": vcov,
        "n_clusters": g,
    }


# --------------------------------------------------------------------------------------
# Wild cluster restricted bootstrap
# --------------------------------------------------------------------------------------

_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


def _draws(kind: str, g: int, n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Bootstrap weights, shape (G, B); enumerates every combination when that is cheaper."""
    if kind == "rademacher":
        support = np.array([-1.0, 1.0])
    elif kind == "webb":
        support = _WEBB
    else:
        raise EstimationError(f"unknown bootstrap weights '{kind}' (use 'rademacher', 'webb' or 'auto')")
    m = len(support)
    if g * math.log(m) <= math.log(n_boot):
        # full enumeration: exact distribution (MacKinnon and Webb 2017)
        idx = np.indices((m,) * g).reshape(g, -1)
        return support[idx], True
    return support[rng.integers(0, m, size=(g, n_boot))], False


def wild_cluster_bootstrap(
    fit: OLSFit,
    term: str | int,
    cluster: np.ndarray,
    *,
    n_boot: int = 9999,
    weights: str = "auto",
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
    h0: float = 0.0,
    ci: bool = True,
    draws: np.ndarray | None = None,
) -> dict[str, Any]:
    """Restricted wild cluster bootstrap (WCR) test and test-inversion interval.

    The model is re-estimated imposing ``beta_term = h0``; bootstrap outcomes are the
    restricted fitted values plus the restricted residuals multiplied by one random
    weight per cluster; the bootstrap statistic is the CR1 t statistic. The p-value is
    symmetric: the share of ``|t*| >= |t|``. The interval collects every ``h0`` the
    test does not reject at ``alpha`` (same draws for every ``h0``).

    Parameters
    ----------
    fit : OLSFit
    term : str or int
        The coefficient tested.
    cluster : array
        Cluster labels (the fixed effects absorbed in ``fit`` must be nested in them).
    n_boot : int
        Number of draws. If every combination of weights is fewer (``2^G`` Rademacher,
        ``6^G`` Webb), all are enumerated instead.
    weights : {"auto", "rademacher", "webb"}
        ``auto``: Webb's six-point weights with fewer than 12 clusters (MacKinnon and
        Webb 2017), otherwise Rademacher.
    seed : int or Generator, optional
    alpha : float
        For the interval.
    h0 : float
        Null value for the p-value.
    ci : bool
        Compute the interval by test inversion.
    draws : array (G, B), optional
        Explicit weights (for testing); overrides ``weights``/``n_boot``.

    Returns
    -------
    dict
        ``p_value, ci_lower, ci_upper``, ``statistic`` (the CR1 t statistic), ``n_boot``,
        ``weights``, ``enumerated`` and ``t_star`` (bootstrap CR1 t statistics at ``h0``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(12), 15)
    >>> x = rng.normal(size=180) + rng.normal(size=12)[g]
    >>> y = 1.5 * x + rng.normal(size=12)[g] + rng.normal(size=180)
    >>> fit = ols(y, np.column_stack([np.ones(180), x]), names=["const", "x"])
    >>> res = wild_cluster_bootstrap(fit, "x", g, n_boot=999, seed=1)
    >>> bool(res["p_value"] < 0.05)  # a slope of 1.5: p is below 0.01 for every one of 150 seeds tried
    True
    >>> bool(0 < res["ci_lower"] < fit.coef[1] < res["ci_upper"])  # the interval is around the estimate
    True
    """
    j = fit.index(term)
    codes, g = _cluster_codes(cluster, fit.n_obs)
    if g < 2:
        raise EstimationError("the wild cluster bootstrap needs at least 2 clusters")
    if fit.fe is not None:
        for c in fit.fe.codes:
            if not is_nested(c, codes):
                raise EstimationError(
                    "the wild cluster bootstrap with absorbed fixed effects needs them nested in the "
                    "clusters; include non-nested fixed effects (e.g. waves) as dummy regressors"
                )
    X, y, M = fit.X, fit.y, fit.bread
    k = fit.k
    others = [i for i in range(k) if i != j]
    Xr = X[:, others]
    xj = X[:, j]
    if others:
        Mr = np.linalg.inv(Xr.T @ Xr)

        def annihilate(v: np.ndarray) -> np.ndarray:
            return v - Xr @ (Mr @ (Xr.T @ v))

    else:

        def annihilate(v: np.ndarray) -> np.ndarray:
            return v

    e0 = annihilate(y)  # restricted residuals at beta_j = 0
    r = annihilate(xj)  # e(b0) = e0 - b0 * r
    m = M[:, j]
    Xm = X @ m
    # cluster-level pieces (G-vectors / G x k matrices)
    d0 = np.bincount(codes, weights=Xm * e0, minlength=g)
    dr = np.bincount(codes, weights=Xm * r, minlength=g)
    S0 = cluster_scores(X, e0, codes, g)
    Sr = cluster_scores(X, r, codes, g)
    C = cluster_scores(X, Xm, codes, g)  # rows: m' X_g' X_g
    CM = C @ M

    # observed statistic as a function of b0 (CR1 scale; the factor cancels)
    Sfull = cluster_scores(X, fit.resid, codes, g)
    se_obs = math.sqrt(float(np.sum((Sfull @ m) ** 2)))
    bhat = float(fit.coef[j])

    if draws is not None:
        V = np.asarray(draws, float)
        if V.shape[0] != g:
            raise EstimationError(f"draws must have {g} rows (one per cluster)")
        enumerated, kind = False, "given"
    else:
        kind = weights
        if kind == "auto":
            kind = "webb" if g < 12 else "rademacher"
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        V, enumerated = _draws(kind, g, n_boot, rng)
    B = V.shape[1]
    # per draw: numerator alpha - b0*gamma ; score vector a - b0*c
    al, ga, aa, ac, cc = (np.empty(B) for _ in range(5))
    step = max(1, int(2e7 // max(g, 1)))
    for s in range(0, B, step):
        v = V[:, s : s + step]
        a = d0[:, None] * v - CM @ (S0.T @ v)
        c = dr[:, None] * v - CM @ (Sr.T @ v)
        al[s : s + step] = d0 @ v
        ga[s : s + step] = dr @ v
        aa[s : s + step] = np.einsum("gb,gb->b", a, a)
        ac[s : s + step] = np.einsum("gb,gb->b", a, c)
        cc[s : s + step] = np.einsum("gb,gb->b", c, c)

    def tstar2(b0: float) -> np.ndarray:
        num = (al - b0 * ga) ** 2
        den = aa - 2 * b0 * ac + b0 * b0 * cc
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / den, 0.0)

    def pval(b0: float) -> float:
        t2 = ((bhat - b0) / se_obs) ** 2 if se_obs > 0 else np.inf
        # tolerance so that ties (e.g. full enumeration) count as "at least as extreme"
        return float(np.mean(tstar2(b0) >= t2 * (1 - 1e-10)))

    # report t statistics on the CR1 scale (the small-sample factor cancels in the test)
    K = _k_small_sample(fit, codes, True)
    scale = 1.0 / math.sqrt(g / (g - 1) * (fit.n_obs - 1) / (fit.n_obs - K))
    out: dict[str, Any] = {
        "p_value": pval(h0),
        "statistic": scale * (bhat - h0) / se_obs if se_obs > 0 else np.nan,
        "n_boot": B,
        "weights": kind,
        "enumerated": enumerated,
        "t_star": scale * np.sign(al - h0 * ga) * np.sqrt(tstar2(h0)),
        "ci_lower": np.nan,
        "ci_upper": np.nan,
    }
    if ci:
        lo, hi = _invert(pval, bhat, se_obs, alpha)
        out["ci_lower"], out["ci_upper"] = lo, hi
    return out


def _invert(pval, bhat: float, scale: float, alpha: float) -> tuple[float, float]:
    """Ends of ``{b0 : p(b0) > alpha}`` found by bracketing and bisection."""
    if scale <= 0:
        return bhat, bhat
    ends = []
    for sign in (-1.0, 1.0):
        inner, step = bhat, scale
        outer = bhat + sign * step
        n = 0
        while pval(outer) > alpha:
            inner = outer
            step *= 2
            outer = bhat + sign * step
            n += 1
            if n > 60:
                ends.append(sign * np.inf)
                break
        else:
            for _ in range(60):
                mid = 0.5 * (inner + outer)
                if pval(mid) > alpha:
                    inner = mid
                else:
                    outer = mid
                if abs(outer - inner) < 1e-8 * max(1.0, abs(bhat), scale):
                    break
            ends.append(0.5 * (inner + outer))
    return float(ends[0]), float(ends[1])


# --------------------------------------------------------------------------------------
# Default choice
# --------------------------------------------------------------------------------------
