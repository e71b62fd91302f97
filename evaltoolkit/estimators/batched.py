"""Two-wave DiD and ANCOVA with CR1 cluster-robust SEs for many simulated replicates at once.

Each argument is an ``(R, n)`` array: R replicates of the same n people (``NaN`` where a person gave no score at a
wave). For two waves the panel DiD with person fixed effects equals the regression of the change score on the arm
(fixed effects = first differences for T = 2), so one replicate's estimate is a difference of mean changes and its
CR1 variance has a closed form from cluster sums of the residuals. The small-sample factor is the one
:func:`evaltoolkit.estimators.did.did` applies to its panel fit, ``G/(G-1) (N-1)/(N-K)`` with ``N`` the person-wave
rows (twice the people with both waves) and ``K = 3`` (two coefficients and the one intercept kept of the person
effects nested in the clusters, fixest's ``fixef.K = "nested"``); ANCOVA uses ``N`` people and ``K = 3``. People
missing either wave drop out (``did`` drops them as people seen at one wave only). Cluster sums are one
``bincount`` over ``replicate * G + cluster``; replicates are processed in chunks so memory stays flat.

Examples
--------
Two replicates of 40 people in 8 teams (the second replicate's change scores are the first's plus 1 for the treated);
the results equal ``did(..., vcov="CR1")`` on the same data (see ``tests/test_batched.py``):

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> team = np.repeat(np.arange(8), 5)
>>> treated = team < 4
>>> y0 = rng.normal(size=40)
>>> y1 = y0 + 0.5 * treated + rng.normal(size=40)
>>> b = did_cr1(np.vstack([y0, y0]), np.vstack([y1, y1 + treated]), treated, team)
>>> np.round(b.estimate[1] - b.estimate[0], 12)
np.float64(1.0)
>>> b.df.tolist()
[7.0, 7.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["BatchedEstimates", "ancova_cr1", "did_cr1"]

#: replicates processed at once (memory is about ``CHUNK * n * 8`` bytes per working array)
CHUNK = 256


@dataclass
class BatchedEstimates:
    """Per-replicate results of a batched estimator (each an array of length R).

    Attributes
    ----------
    estimate, std_error, p_value, ci_lower, ci_upper, df : ndarray
        The treatment coefficient, its CR1 SE, two-sided t p-value and interval on ``G - 1`` df.
    n_obs : ndarray
        Rows of the fit (person-waves for DiD, people for ANCOVA).
    n_clusters, n_treated_clusters, n_control_clusters : ndarray
        Clusters among the analysed rows, and those with programme / comparison rows.
    n_people : ndarray
        People analysed.
    one_arm_clusters : ndarray of bool
        Whether every analysed cluster holds one arm only (the programme assigned by cluster).
    """

    estimate: np.ndarray
    std_error: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: np.ndarray
    n_obs: np.ndarray
    n_clusters: np.ndarray
    n_treated_clusters: np.ndarray
    n_control_clusters: np.ndarray
    n_people: np.ndarray
    one_arm_clusters: np.ndarray


def _broadcast(arrays: list[np.ndarray]) -> list[np.ndarray]:
    arrays = [np.atleast_2d(np.asarray(a)) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [np.broadcast_to(a, shape) for a in arrays]


def _codes(cluster: np.ndarray) -> tuple[np.ndarray, int]:
    """Cluster labels (R, n) as 0..G_r - 1 within each replicate, and the largest G_r."""
    out = np.empty(cluster.shape, dtype=np.int64)
    for r in range(cluster.shape[0]):
        _, out[r] = np.unique(cluster[r], return_inverse=True)
    return out, int(out.max()) + 1


def _cluster_sums(values: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    """Sums of ``values`` (R, n) within each replicate's clusters: (R, g)."""
    r = values.shape[0]
    flat = (np.arange(r)[:, None] * g + codes).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=r * g).reshape(r, g)


def _fit_chunk(y: np.ndarray, X: np.ndarray, ok: np.ndarray, codes: np.ndarray, g_max: int, rows_per: int,
               k_small: int, treated: np.ndarray, alpha: float) -> dict[str, np.ndarray]:  # fmt: skip
    """OLS of ``y`` on ``X`` (R, n, k) over the rows ``ok``, CR1 by cluster, for the coefficient 1 (treatment)."""
    w = ok.astype(float)
    Xw = X * w[:, :, None]
    yw = np.where(ok, y, 0.0)
    xtx = np.einsum("rnk,rnl->rkl", Xw, X)
    bread = np.linalg.inv(xtx)
    coef = np.einsum("rkl,rl->rk", bread, np.einsum("rnk,rn->rk", Xw, yw))
    e = np.where(ok, y - np.einsum("rnk,rk->rn", np.where(ok[:, :, None], X, 0.0), coef), 0.0)
    k = X.shape[2]
    scores = np.stack([_cluster_sums(Xw[:, :, j] * e, codes, g_max) for j in range(k)], axis=2)
    meat = np.einsum("rgk,rgl->rkl", scores, scores)
    people = ok.sum(axis=1)
    present = _cluster_sums(w, codes, g_max) > 0
    with_t = _cluster_sums(w * treated, codes, g_max) > 0
    with_c = _cluster_sums(w * (1 - treated), codes, g_max) > 0
    g = present.sum(axis=1).astype(float)
    n = rows_per * people.astype(float)
    factor = g / (g - 1) * (n - 1) / (n - k_small)
    v = factor * np.einsum("rk,rkl,rl->r", bread[:, :, 1], meat, bread[:, :, 1])
    se = np.sqrt(v)
    df = g - 1
    t = coef[:, 1] / se
    crit = stats.t.ppf(1 - alpha / 2, df)
    return {
        "estimate": coef[:, 1], "std_error": se, "p_value": 2 * stats.t.sf(np.abs(t), df),
        "ci_lower": coef[:, 1] - crit * se, "ci_upper": coef[:, 1] + crit * se, "df": df, "n_obs": n,
        "n_clusters": g, "n_treated_clusters": with_t.sum(axis=1), "n_control_clusters": with_c.sum(axis=1),
        "n_people": people, "one_arm_clusters": ~np.any(with_t & with_c, axis=1),
    }  # fmt: skip


def _run(kind: str, y0, y1, treated, cluster, alpha: float, chunk: int) -> BatchedEstimates:
    y0, y1, treated, cluster = _broadcast([y0, y1, treated, cluster])
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, y0.shape[0], chunk):
        sl = slice(start, start + chunk)
        a, b, t = (np.asarray(v[sl], dtype=float) for v in (y0, y1, treated))
        codes, g_max = _codes(np.asarray(cluster[sl]))
        ok = np.isfinite(a) & np.isfinite(b)
        ones = np.ones_like(a)
        if kind == "did":
            X, y, rows_per = np.stack([ones, t], axis=2), b - a, 2
        else:
            X, y, rows_per = np.stack([ones, t, np.where(ok, a, 0.0)], axis=2), b, 1
        parts.append(_fit_chunk(y, X, ok, codes, g_max, rows_per, 3, t, alpha))
    return BatchedEstimates(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def did_cr1(
    y0: np.ndarray,
    y1: np.ndarray,
    treated: np.ndarray,
    cluster: np.ndarray,
    *,
    alpha: float = 0.05,
    chunk: int = CHUNK,
) -> BatchedEstimates:
    """Two-wave panel DiD (person fixed effects) with CR1 SEs, for R replicates at once.

    Identical (to rounding) to ``did(data, outcome, ..., post=<wave>, unit=<id>, cluster=<cluster>, vcov="CR1")``
    on each replicate's long data, with people nested in clusters.

    Parameters
    ----------
    y0, y1 : array, shape (R, n)
        Baseline and follow-up scores (``NaN``: not observed); a person missing either is left out.
    treated : array, shape (R, n) or (n,)
        1 for programme participants.
    cluster : array, shape (R, n) or (n,)
        Cluster labels (teams).
    alpha : float
        For the ``1 - alpha`` interval (t with ``G - 1`` df).
    chunk : int
        Replicates processed at once.

    Returns
    -------
    BatchedEstimates

    Examples
    --------
    >>> team = np.repeat(np.arange(6), 4)
    >>> t = (team % 2).astype(float)
    >>> y0 = np.zeros(24)
    >>> y1 = t * 2.0 + np.tile([0.1, -0.1, 0.2, -0.2], 6)
    >>> float(did_cr1(y0, y1, t, team).estimate[0])
    2.0
    """
    return _run("did", y0, y1, treated, cluster, alpha, chunk)


def ancova_cr1(
    y0: np.ndarray,
    y1: np.ndarray,
    treated: np.ndarray,
    cluster: np.ndarray,
    *,
    alpha: float = 0.05,
    chunk: int = CHUNK,
) -> BatchedEstimates:
    """ANCOVA (follow-up on arm and baseline score) with CR1 SEs, for R replicates at once.

    Identical (to rounding) to ``ancova(wide, outcome=<follow-up>, arm, covariates=[<baseline>], cluster=...,
    vcov="CR1")`` on each replicate's one-row-per-person data with both scores present.

    Parameters
    ----------
    y0, y1, treated, cluster, alpha, chunk
        As in :func:`did_cr1`.

    Returns
    -------
    BatchedEstimates

    Examples
    --------
    >>> team = np.repeat(np.arange(6), 4)
    >>> t = (team % 2).astype(float)
    >>> y0 = np.tile([0.0, 1.0, 2.0, 3.0], 6)
    >>> y1 = 0.5 * y0 + 1.5 * t
    >>> round(float(ancova_cr1(y0, y1, t, team).estimate[0]), 12)
    1.5
    """
    return _run("ancova", y0, y1, treated, cluster, alpha, chunk)
