"""Two-wave DiD and ANCOVA with CR1 cluster-robust SEs for many simulated replicates at once.

Each argument is an ``(R, n)`` array: R replicates of the same n people (``NaN`` where a person gave no score at a
wave). For two waves the panel DiD with person fixed effects equals the regression of the change score on the arm
(fixed effects = first differences for T = 2), so one replicate's estimate is a difference of mean changes and its
CR1 variance has a closed form from cluster sums of the residuals. The small-sample factor is the one
:func:`evaltoolkit.estimators.did.did` applies to its panel fit, ``G/(G-1) (N-1)/(N-K)`` with ``N`` the person-wave
rows (twice the people with both waves) and ``K = 3`` (two coefficients and the one intercept kept of the person
effects nested in the clusters, fixest's ``fixef.K = "nested"``); ANCOVA uses ``N`` people and ``K = 3``. People
missing either wave drop out (``did`` drops them as people seen at one wave only). Cluster sums are one
``np.add.reduceat`` over people sorted by cluster when every replicate shares the labels, else one ``bincount`` over
``replicate * G + cluster``; the DiD needs only four of them (two when whole clusters are in one arm), after which
everything is an ``(R, G)`` array. Replicates are processed in chunks so memory stays flat.

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

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["BatchedEstimates", "ancova_cr1", "did_cr1", "did_cr1_panel"]

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
    effective_clusters : ndarray
        Carter, Schnepel & Steigerwald's effective number of clusters ``G*`` of the estimate, as the inference
        policy computes it for ``did()``/``ancova()`` (NaN when undefined).
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
    effective_clusters: np.ndarray


def _broadcast(arrays: list[np.ndarray]) -> list[np.ndarray]:
    arrays = [np.atleast_2d(np.asarray(a)) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [np.broadcast_to(a, shape) for a in arrays]


class _ClusterSums:
    """Sums of (R, n) values within each replicate's clusters, as (R, G).

    Labels shared by every replicate: people sorted by cluster once, then ``np.add.reduceat`` along the rows;
    labels that differ by replicate: one ``bincount`` over ``replicate * G + cluster``.
    """

    def __init__(self, cluster: np.ndarray) -> None:
        self.shared = cluster.shape[0] == 1 or cluster.strides[0] == 0
        if self.shared:
            _, inv = np.unique(cluster[0], return_inverse=True)
            self.order = None if np.all(inv[1:] >= inv[:-1]) else np.argsort(inv, kind="stable")
            ranked = inv if self.order is None else inv[self.order]
            self.starts = np.flatnonzero(np.r_[True, np.diff(ranked) != 0])
            self.g = int(inv.max()) + 1
        else:
            codes = np.empty(cluster.shape, dtype=np.int64)
            for r in range(cluster.shape[0]):
                _, codes[r] = np.unique(cluster[r], return_inverse=True)
            self.g = int(codes.max()) + 1
            self.flat = (np.arange(cluster.shape[0])[:, None] * self.g + codes).ravel()
        self.r = cluster.shape[0]

    def sort(self, values: np.ndarray) -> np.ndarray:
        """``values`` (R, n) with people in cluster order when labels are shared (the sums need it)."""
        return np.take(values, self.order, axis=1) if self.shared and self.order is not None else values

    def arm_share(self, treated: np.ndarray) -> np.ndarray | None:
        """Share treated in each cluster when labels and the (sorted) arm vector are shared; else None."""
        if not self.shared or treated.ndim != 1:
            return None
        return np.add.reduceat(treated, self.starts) / np.diff(np.r_[self.starts, treated.size])

    def changes(
        self, y0: np.ndarray, y1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per cluster: people with both scores and their summed change; and per person ``ok``, ``y1 - y0``.

        With shared labels one compiled pass (:func:`_change_sums`) gives the two sums without temporaries and
        the per-person arrays are returned as None (the whole-cluster-arm fast path does not need them).
        """
        if self.shared:
            n_g, d = _compiled_change_sums()(np.ascontiguousarray(y0), np.ascontiguousarray(y1), self.starts)
            return n_g, d, None, None
        dy = y1 - y0
        ok = np.isfinite(dy)
        dy = np.where(ok, dy, 0.0)
        return self(ok), self(dy), ok, dy

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.broadcast_to(values, (self.r, values.shape[-1]))
        if self.shared:  # the columns were put in cluster order by ``sort``
            return np.add.reduceat(values, self.starts, axis=1, dtype=np.float64)
        sums = np.bincount(self.flat, weights=values.ravel().astype(float), minlength=self.r * self.g)
        return sums.reshape(self.r, self.g)


def _effective(gamma: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Carter, Schnepel & Steigerwald's ``G* = G / (1 + CV^2 of gamma_g)`` over the clusters ``used``, per
    replicate (:func:`evaltoolkit.inference.randomisation.effective_clusters`, there from the fit)."""
    g = used.sum(axis=1)
    mean = np.where(used, gamma, 0.0).sum(axis=1) / np.maximum(g, 1)
    var = np.where(used, (gamma - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(g, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, g / (1.0 + var / mean**2), np.nan)


def _finish(coef, v_raw, in_t, n_g, n, k_small: int, alpha: float, gamma) -> dict[str, np.ndarray]:
    """CR1 factor ``G/(G-1) (N-1)/(N-K)`` for ``n`` rows, t inference on G - 1 df, the cluster counts (from the
    people analysed per cluster and arm) and the effective number of clusters (from ``gamma``, per cluster)."""
    people = n_g.sum(axis=1)
    with_t, with_c = in_t > 0.5, n_g - in_t > 0.5
    g = (n_g > 0.5).sum(axis=1).astype(float)
    factor = g / (g - 1) * (n - 1) / (n - k_small)
    se = np.sqrt(factor * v_raw)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = coef / se
    df = g - 1
    levels, idx = np.unique(df, return_inverse=True)  # few distinct cluster counts: one quantile each
    crit = stats.t.ppf(1 - alpha / 2, levels)[idx.reshape(df.shape)]
    return {
        "estimate": coef, "std_error": se, "p_value": 2 * stats.t.sf(np.abs(tstat), df),
        "ci_lower": coef - crit * se, "ci_upper": coef + crit * se, "df": df, "n_obs": n,
        "n_clusters": g, "n_treated_clusters": with_t.sum(axis=1), "n_control_clusters": with_c.sum(axis=1),
        "n_people": np.rint(people).astype(np.int64), "one_arm_clusters": ~np.any(with_t & with_c, axis=1),
        "effective_clusters": _effective(gamma, n_g > 0.5),
    }  # fmt: skip


def _did_chunk(y0, y1, treated, sums: _ClusterSums, alpha: float) -> dict[str, np.ndarray]:
    """Change score on [1, treated]: a difference of means, and CR1 from four cluster sums.

    The treatment row of ``(X'X)^-1 X'`` is ``1/N1`` for participants and ``-1/N0`` for comparison people, so a
    cluster's score is ``(D1_g - m1 n1_g) / N1 - (D0_g - m0 n0_g) / N0`` with ``D`` the cluster's summed changes
    and ``n`` its people in each arm: only ``(R, G)`` arrays after the four sums.
    """
    t = treated if treated.shape[0] == y0.shape[0] else treated[0]  # (R, n), or (n,) shared by all
    n_g, d, ok, dy = sums.changes(y0, y1)
    arm = sums.arm_share(t)
    if arm is not None and np.all((arm == 0) | (arm == 1)):  # whole clusters in one arm: two sums suffice
        in_t, d1 = n_g * arm, d * arm
    else:
        if ok is None:
            dy = y1 - y0
            ok = np.isfinite(dy)
            dy = np.where(ok, dy, 0.0)
        in_t, d1 = sums(ok * t), sums(dy * t)
    n1, n0 = in_t.sum(axis=1), (n_g - in_t).sum(axis=1)
    m1, m0 = d1.sum(axis=1) / n1, (d - d1).sum(axis=1) / n0
    score = (d1 - m1[:, None] * in_t) / n1[:, None] - ((d - d1) - m0[:, None] * (n_g - in_t)) / n0[:, None]
    # G*: each cluster's weight on the estimate, (n1_g / N1 - n0_g / N0), squared (the cluster-by-wave measure
    # did() uses for a panel with person effects, up to a constant)
    gamma = (in_t / n1[:, None] - (n_g - in_t) / n0[:, None]) ** 2
    return _finish(m1 - m0, np.einsum("rg,rg->r", score, score), in_t, n_g, 2 * n_g.sum(axis=1), _K_SMALL, alpha,
                   gamma)  # fmt: skip


def _ancova_chunk(y0, y1, treated, sums: _ClusterSums, alpha: float) -> dict[str, np.ndarray]:
    """OLS of the follow-up on [1, treated, baseline] over people with both scores, CR1 for the treatment."""
    ok = np.isfinite(y0) & np.isfinite(y1)
    t = np.broadcast_to(treated, y0.shape)
    X = np.stack([ok.astype(float), np.where(ok, t, 0.0), np.where(ok, y0, 0.0)], axis=2)
    y = np.where(ok, y1, 0.0)
    bread = np.linalg.inv(np.einsum("rnk,rnl->rkl", X, X))
    coef = np.einsum("rkl,rl->rk", bread, np.einsum("rnk,rn->rk", X, y))
    e = y - np.einsum("rnk,rk->rn", X, coef)  # 0 where not ok (X and y are 0 there)
    a = np.einsum("rnk,rk->rn", X, bread[:, :, 1])  # the treatment row of (X'X)^-1 X'
    v_raw = (sums(a * e) ** 2).sum(axis=1)
    okf = ok.astype(float)
    return _finish(
        coef[:, 1], v_raw, sums(okf * t), sums(okf), okf.sum(axis=1), _K_SMALL, alpha, sums(a) ** 2
    )


def _panel_chunk(y, treated, sums: _ClusterSums, alpha: float) -> dict[str, np.ndarray]:
    """Person fixed effects, wave effects and one treatment term per later wave on an unbalanced panel.

    ``y`` is ``(R, n, W)``, wave 0 the baseline. People seen at fewer than two waves are left out (absorbed by
    their own effect, as ``did(sample="unbalanced")``). Within-person demeaning over each person's observed waves
    (FWL), then the ``2 (W - 1)`` coefficients from ``(R, K, K)`` normal equations and CR1 from cluster sums of the
    person scores; the first treatment term (the first later wave) is returned.
    """
    ok = np.isfinite(y)
    kept = ok.sum(axis=2) >= 2
    ok &= kept[:, :, None]
    okf = ok.astype(float)
    count = np.maximum(okf.sum(axis=2), 1.0)[:, :, None]
    y0 = np.where(ok, y, 0.0)
    yd = np.where(ok, y0 - y0.sum(axis=2, keepdims=True) / count, 0.0)
    w_count = y.shape[2]
    later = np.arange(1, w_count)
    # wave dummies, demeaned within person: (1[v == w] - share of the person's waves that are w) where observed
    dummies = okf[:, :, :, None] * (
        (np.arange(w_count)[:, None] == later[None, :]) - (okf[:, :, later] / count)[:, :, None, :]
    )
    t = np.broadcast_to(treated, kept.shape)[:, :, None, None]
    X = np.concatenate([dummies, t * dummies], axis=3)  # (R, n, W, K)
    r_count, n, _, k = X.shape
    flat = X.reshape(r_count, n * w_count, k)  # batched matrix products (BLAS) over person-waves
    bread = np.linalg.pinv(np.matmul(flat.transpose(0, 2, 1), flat))
    coef = np.matmul(bread, np.matmul(flat.transpose(0, 2, 1), yd.reshape(r_count, -1, 1)))[:, :, 0]
    e = yd - np.matmul(flat, coef[:, :, None]).reshape(yd.shape)
    person_scores = (X * e[:, :, :, None]).sum(axis=2)
    cluster_scores = np.stack([sums(person_scores[:, :, j]) for j in range(k)], axis=2)  # (R, G, K)
    head = w_count - 1  # the first treatment term
    row = bread[:, head, :]
    v_raw = (np.einsum("rk,rgk->rg", row, cluster_scores) ** 2).sum(axis=1)
    keptf = kept.astype(float)
    n_g = sums(keptf)
    in_t = sums(keptf * np.broadcast_to(treated, kept.shape))
    a = np.matmul(flat, bread[:, :, head, None]).reshape(yd.shape)  # weights on the estimate, by cluster-wave
    gamma = sum(sums(a[:, :, v]) ** 2 for v in range(w_count))
    return _finish(coef[:, head], v_raw, in_t, n_g, okf.sum(axis=(1, 2)), k + 1, alpha, gamma)


def _change_sums(y0, y1, starts):  # pragma: no cover - compiled by numba (runs as Python too)
    """Per replicate and cluster (people sorted by cluster, ``starts`` the first of each): the count of people
    with both scores and the sum of their changes ``y1 - y0``, in one pass."""
    r_count, n = y0.shape
    g_count = starts.size
    n_g = np.zeros((r_count, g_count))
    d = np.zeros((r_count, g_count))
    for r in range(r_count):
        for g in range(g_count):
            end = starts[g + 1] if g + 1 < g_count else n
            count = 0.0
            total = 0.0
            for i in range(starts[g], end):
                v = y1[r, i] - y0[r, i]
                if np.isfinite(v):
                    count += 1.0
                    total += v
            n_g[r, g] = count
            d[r, g] = total
    return n_g, d


@functools.cache
def _compiled_change_sums():
    """:func:`_change_sums` compiled by numba (cached on disk after the first compilation), else plain Python."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return _change_sums
    return numba.njit(cache=True, nogil=True)(_change_sums)


#: K in the CR1 factor (N-1)/(N-K): DiD's two coefficients plus the one kept intercept of the nested person
#: effects; ANCOVA's three coefficients
_K_SMALL = 3


def _run(fit, values: list[np.ndarray], treated, cluster, alpha: float, chunk: int) -> BatchedEstimates:
    """``fit(*values, treated, sums, alpha)`` chunk by chunk: each value ``(R, n, ...)``, people along axis 1, put
    in cluster order when the labels are shared (then coded once)."""
    shared_t = treated.shape[0] == 1 or treated.strides[0] == 0
    shared_c = cluster.shape[0] == 1 or cluster.strides[0] == 0
    sums: _ClusterSums | None = None
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, values[0].shape[0], chunk):
        sl = slice(start, start + chunk)
        if sums is None or not shared_c or sums.r != values[0][sl].shape[0]:  # shared labels: coded once
            sums = _ClusterSums(np.asarray(cluster[sl]))
        t = sums.sort(np.asarray(treated[:1] if shared_t else treated[sl], dtype=float))
        parts.append(fit(*(sums.sort(np.asarray(v[sl], dtype=float)) for v in values), t, sums, alpha))
    return BatchedEstimates(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def _run_waves(fit, y0, y1, treated, cluster, alpha: float, chunk: int) -> BatchedEstimates:
    y0, y1, treated, cluster = _broadcast([y0, y1, treated, cluster])
    return _run(fit, [y0, y1], treated, cluster, alpha, chunk)


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
    return _run_waves(_did_chunk, y0, y1, treated, cluster, alpha, chunk)


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
    return _run_waves(_ancova_chunk, y0, y1, treated, cluster, alpha, chunk)


def did_cr1_panel(
    y: np.ndarray,
    treated: np.ndarray,
    cluster: np.ndarray,
    *,
    alpha: float = 0.05,
    chunk: int = 32,
) -> BatchedEstimates:
    """Panel DiD over several waves (person and wave fixed effects, one treatment term per later wave) with CR1.

    Identical (to rounding) to ``did(data, outcome, post=[<wave 1>, <wave 2>, ...], unit=<id>, cluster=<cluster>,
    vcov="CR1")`` on each replicate's long data (its default ``sample="unbalanced"``: people seen at two or more
    waves), with people nested in clusters; the result is the first later wave's term, ``did()``'s headline.

    Parameters
    ----------
    y : array, shape (R, n, W) or (n, W)
        Scores at each wave (``NaN``: not observed); wave 0 is the baseline.
    treated, cluster : array, shape (R, n) or (n,)
        As in :func:`did_cr1`.
    alpha : float
        For the ``1 - alpha`` interval (t with ``G - 1`` df).
    chunk : int
        Replicates processed at once (memory about ``chunk * n * W * 2 (W - 1) * 8`` bytes per working array).

    Returns
    -------
    BatchedEstimates

    Examples
    --------
    With two waves it is :func:`did_cr1`:

    >>> rng = np.random.default_rng(2)
    >>> team = np.repeat(np.arange(8), 5)
    >>> t = (team < 4).astype(float)
    >>> y = rng.normal(size=(40, 2)) + np.c_[np.zeros(40), 0.5 * t]
    >>> a, b = did_cr1_panel(y, t, team), did_cr1(y[:, 0], y[:, 1], t, team)
    >>> bool(np.allclose([a.estimate, a.std_error], [b.estimate, b.std_error], rtol=1e-12))
    True
    """
    y = np.asarray(y, dtype=float)
    y = y[None] if y.ndim == 2 else y
    treated, cluster = (np.broadcast_to(np.atleast_2d(a), y.shape[:2]) for a in (treated, cluster))
    return _run(_panel_chunk, [y], treated, cluster, alpha, chunk)
