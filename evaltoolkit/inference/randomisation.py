"""Randomisation inference over the assignments of clusters to arms, and the effective number of clusters.

With very few treated clusters no design-based test that treats clusters as the unit can support a p-value at 5%:
with 1 programme school and 2 comparison schools there are only 3 ways the programme could have gone to one of the
3 schools, so the smallest p-value any such test can give is 1/3. :func:`randomisation_test` says exactly that. It
re-estimates the model under every assignment of the treatment to the same number of clusters (all of them when
they can be enumerated, else a random sample) and compares the estimate with the observed one (Fisher 1935; the
"RI-beta" of MacKinnon & Webb 2020, *Randomization inference for difference-in-differences with few treated
clusters*, J. Econometrics 218). The interval is every effect size the test does not reject, found exactly: under
the sharp null of a constant effect ``b0`` each re-estimate is linear in ``b0``.

:func:`effective_clusters` is Carter, Schnepel & Steigerwald's (2017, *Asymptotic behavior of a t-test robust to
cluster heterogeneity*, Review of Economics and Statistics 99(4)) effective number of clusters ``G*``: with very
unequal cluster sizes, or one treated cluster among many, ``G*`` is far below the number of clusters and CR1's
t(G - 1) reference distribution is too optimistic.

Examples
--------
Three schools, one in the programme (its pupils improve by 1 point): however large the effect, the test cannot
give p below 1/3.

>>> import numpy as np
>>> from evaltoolkit.inference.core import ols
>>> school = np.repeat([0, 1, 2], 20)
>>> t = school == 0
>>> y = 1.0 * t + np.random.default_rng(1).normal(size=60)
>>> def columns(treated):
...     return np.column_stack([treated.astype(float)])
>>> fit = ols(y, np.column_stack([t.astype(float), np.ones(60)]), names=["treatment", "const"])
>>> ri = randomisation_test(fit, ["treatment"], t, school, columns)["treatment"]
>>> ri["n_assignments"], ri["enumerated"], round(ri["min_p"], 4), round(ri["p_value"], 4)
(3, True, 0.3333, 0.3333)
>>> ri["ci_lower"], ri["ci_upper"]
(-inf, inf)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evaltoolkit.errors import EstimationError
from evaltoolkit.inference.core import OLSFit
from evaltoolkit.inference.fixed_effects import encode

__all__ = ["MAX_ENUMERATED", "RI_DRAWS", "cluster_counts", "effective_clusters", "randomisation_test"]

#: assignments are enumerated when there are at most this many; otherwise :data:`RI_DRAWS` are sampled
MAX_ENUMERATED = 5000
#: random assignments drawn when there are too many to enumerate
RI_DRAWS = 1999


def cluster_counts(treated: np.ndarray, cluster: np.ndarray) -> tuple[int, int, bool]:
    """Clusters with treated rows, clusters with comparison rows, and whether each cluster is all one arm.

    Examples
    --------
    >>> cluster_counts(np.array([1, 1, 0, 0, 0], bool), np.array(["a", "a", "b", "c", "c"]))
    (1, 2, True)
    """
    codes, g = encode(np.asarray(cluster))
    t = np.asarray(treated, dtype=bool)
    n_t = np.bincount(codes, weights=t, minlength=g)
    n = np.bincount(codes, minlength=g)
    return int((n_t > 0).sum()), int((n_t < n).sum()), bool(np.all((n_t == 0) | (n_t == n)))


def effective_clusters(
    fit: OLSFit, term: str | int, cluster: np.ndarray, *, within: np.ndarray | None = None
) -> float:
    """Carter, Schnepel & Steigerwald's (2017) effective number of clusters ``G*`` for one coefficient.

    ``G* = G / (1 + Gamma)``, where ``Gamma`` is the squared coefficient of variation of
    ``gamma_g = (sum over cluster g of a_i)^2`` and ``a = X (X'X)^-1 e_term`` (the coefficient's weights on the
    observations); this is their measure for errors perfectly correlated within a cluster (rho = 1), the case
    that matters for cluster-level treatments. Equal clusters with the treatment balanced across them give
    ``G* = G``; one treated cluster of ``G`` equal ones gives about 1.2 whatever ``G``.

    Examples
    --------
    ``within`` (e.g. the wave of each row) splits each cluster into blocks whose shocks are common, so
    ``gamma_g = sum over blocks b of g of (sum over b of a_i)^2`` (their ``a_g' Omega_g a_g`` with ``Omega_g``
    block-diagonal). A panel with person fixed effects nested in the clusters needs it: there every cluster's
    ``sum of a_i`` is zero (each person's demeaned rows sum to zero), so a shock common to a cluster at all waves
    is absorbed and the measure is only defined by cluster-wave shocks. When every block sum is zero to rounding,
    ``G*`` is undefined and NaN is returned (the rule then uses the cluster count).

    One treated cluster among ten of equal size (the paper's leading example):

    >>> from evaltoolkit.inference.core import ols
    >>> g = np.repeat(np.arange(10), 5)
    >>> d = (g == 0).astype(float)
    >>> fit = ols(np.arange(50.0), np.column_stack([np.ones(50), d]), names=["const", "treated"])
    >>> round(effective_clusters(fit, "treated", g), 4)
    1.2329
    """
    j = fit.index(term) if isinstance(term, str) else int(term)
    codes, g = encode(np.asarray(cluster))
    a = fit.X @ fit.bread[:, j]
    if within is None:
        gamma = np.bincount(codes, weights=a, minlength=g) ** 2
    else:
        block, n_blocks = encode(np.asarray(codes) * (int(np.max(within)) + 1) + np.asarray(within))
        first = np.zeros(n_blocks, dtype=np.int64)
        first[block] = codes
        gamma = np.bincount(
            first, weights=np.bincount(block, weights=a, minlength=n_blocks) ** 2, minlength=g
        )
    mean = float(gamma.mean())
    if mean <= (1e-12 * float(np.abs(a).sum())) ** 2:  # zero but for rounding: undefined
        return float("nan")
    big_gamma = float(np.mean((gamma - mean) ** 2)) / mean**2
    return g / (1.0 + big_gamma)


def _assignments(
    treated_clusters: np.ndarray, max_enumerated: int, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """Every assignment of the treatment to as many clusters (observed first), or a random sample of them."""
    g, k = treated_clusters.size, int(treated_clusters.sum())
    observed = treated_clusters.astype(bool)
    if math.comb(g, k) <= max_enumerated:
        rows = []
        for chosen in itertools.combinations(range(g), k):
            a = np.zeros(g, dtype=bool)
            a[list(chosen)] = True
            if not np.array_equal(a, observed):
                rows.append(a)
        return np.vstack([observed, *rows]) if rows else observed[None, :], True
    draws = np.zeros((n_draws + 1, g), dtype=bool)
    draws[0] = observed
    for b in range(1, n_draws + 1):
        draws[b, rng.choice(g, size=k, replace=False)] = True
    return draws, False


def randomisation_test(
    fit: OLSFit,
    terms: Sequence[str],
    treated: np.ndarray,
    cluster: np.ndarray,
    columns: Callable[[np.ndarray], np.ndarray],
    *,
    alpha: float = 0.05,
    max_enumerated: int = MAX_ENUMERATED,
    n_draws: int = RI_DRAWS,
    seed: int | np.random.Generator | None = None,
) -> dict[str, dict[str, Any]]:
    """Randomisation inference for the treatment terms, re-assigning the treatment across clusters.

    Parameters
    ----------
    fit : OLSFit
        The model as fitted (working arrays: weighted, fixed effects removed).
    terms : list of str
        The treatment terms of ``fit``, in the order ``columns`` returns them.
    treated : array of bool
        The observed treatment of each row of the fit.
    cluster : array
        Cluster of each row; the treatment must be the same for every row of a cluster.
    columns : callable
        ``columns(treated_rows) -> array (n, len(terms))``: the treatment terms' working columns (built, weighted
        and demeaned exactly as ``fit.X``) when ``treated_rows`` had been the treatment.
    alpha : float
        For the interval.
    max_enumerated, n_draws, seed
        Every assignment is used when there are at most ``max_enumerated``; otherwise ``n_draws`` random ones
        (plus the observed), drawn with ``seed``.

    Returns
    -------
    dict
        For each term: ``p_value`` (the share of assignments whose estimate is at least as far from the null as
        the observed one, the observed included), ``ci_lower``, ``ci_upper`` (every constant effect not
        rejected at ``alpha``; infinite when no effect size can be rejected), ``min_p`` (the smallest p-value
        this test could give, for an arbitrarily large effect), ``n_assignments``, ``enumerated``.

    Raises
    ------
    EstimationError
        A cluster has rows in both arms (the treatment was not assigned by cluster).
    """
    t = np.asarray(treated, dtype=bool)
    codes, g = encode(np.asarray(cluster))
    n_t = np.bincount(codes, weights=t, minlength=g)
    size = np.bincount(codes, minlength=g)
    if not np.all((n_t == 0) | (n_t == size)):
        raise EstimationError(
            "randomisation inference over clusters needs the treatment to be the same for everyone in a cluster"
        )
    idx = [fit.index(name) for name in terms]
    others = [i for i in range(fit.k) if i not in idx]
    W = fit.X[:, others]
    Q = np.linalg.qr(W, mode="reduced")[0] if others else np.zeros((fit.n_obs, 0))

    def residualise(v: np.ndarray) -> np.ndarray:
        return v - Q @ (Q.T @ v)

    y = residualise(fit.y)
    z_obs = residualise(np.asarray(columns(t), dtype=float).reshape(fit.n_obs, -1))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    assign, enumerated = _assignments(n_t > 0, max_enumerated, n_draws, rng)
    n_a, k = len(assign), len(idx)
    b = np.empty((n_a, k))  # each assignment's estimates
    c = np.empty((n_a, k))  # ... and how they move with the null effect b0 (per term: own observed column)
    for r, a in enumerate(assign):
        z = (
            z_obs
            if r == 0
            else residualise(np.asarray(columns(a[codes]), dtype=float).reshape(fit.n_obs, -1))
        )
        zz = z.T @ z
        try:
            coef = np.linalg.solve(zz, z.T @ np.column_stack([y, z_obs]))
        except np.linalg.LinAlgError:  # an assignment the model cannot estimate (e.g. a wave without treated)
            b[r], c[r] = np.nan, np.nan
            continue
        b[r] = coef[:, 0]
        c[r] = np.diag(coef[:, 1:])
    ok = np.isfinite(b).all(axis=1)
    b, c = b[ok], c[ok]
    out = {}
    for j, name in enumerate(terms):
        out[name] = {
            **_invert(b[:, j], c[:, j], alpha),
            "n_assignments": int(ok.sum()),
            "enumerated": enumerated,
        }
    return out


def _invert(b: np.ndarray, c: np.ndarray, alpha: float) -> dict[str, float]:
    """p-value at 0, the exact interval and the smallest attainable p from the linear re-estimates.

    Under the null effect ``b0`` assignment ``r`` re-estimates ``b[r] - b0 c[r]`` (the observed: ``b[0] - b0``,
    ``c[0] = 1``); ``p(b0)`` is the share with ``|b[r] - b0 c[r]| >= |b[0] - b0|``, constant between the roots
    of ``(b[r] - b0 c[r])^2 = (b[0] - b0)^2``, so the interval's ends are among those roots.
    """
    tol = 1e-9 * max(1.0, float(np.max(np.abs(b))))

    def p_at(b0: np.ndarray) -> np.ndarray:
        dev = np.abs(b[None, :] - b0[:, None] * c[None, :])
        return np.mean(dev >= np.abs(b[0] - b0)[:, None] - tol, axis=1)

    p0 = float(p_at(np.array([0.0]))[0])
    min_p = float(np.mean(np.abs(c) >= 1.0 - 1e-9))  # the limit of p for an arbitrarily large effect
    # roots of (b_r - b0 c_r)^2 = (b_0 - b0)^2: b_r - b0 c_r = +-(b_0 - b0)
    roots = []
    for sign in (1.0, -1.0):
        den = sign - c[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            roots.append(np.where(np.abs(den) > 1e-12, (sign * b[0] - b[1:]) / den, np.nan))
    pts = np.unique(np.concatenate([r[np.isfinite(r)] for r in roots] + [np.array([b[0]])]))
    if len(pts) > 4000:  # keep the grid affordable: the ends are found to the nearest kept root
        pts = np.unique(np.quantile(pts, np.linspace(0, 1, 4000)))
    mids = np.concatenate([[pts[0] - 1.0], (pts[:-1] + pts[1:]) / 2, [pts[-1] + 1.0]])
    keep = np.concatenate([p_at(mids[i : i + 500]) for i in range(0, len(mids), 500)]) > alpha
    keep_at_pts = p_at(pts) > alpha
    inside = np.concatenate([mids[keep], pts[keep_at_pts]])
    lo, hi = (float(inside.min()), float(inside.max())) if inside.size else (float(b[0]), float(b[0]))
    if keep[0]:
        lo = -math.inf
    if keep[-1]:
        hi = math.inf
    if math.isfinite(lo):  # the end is the root bounding the kept region
        lo = float(pts[pts <= lo].max()) if np.any(pts <= lo) else lo
    if math.isfinite(hi):
        hi = float(pts[pts >= hi].min()) if np.any(pts >= hi) else hi
    return {"p_value": p0, "ci_lower": lo, "ci_upper": hi, "min_p": min_p}
