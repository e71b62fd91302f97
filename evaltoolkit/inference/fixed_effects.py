"""Absorbing fixed effects: within-group demeaning without building dummy matrices.

One fixed effect is absorbed exactly (one pass of group means computed with
:func:`numpy.bincount`); two or more are absorbed by alternating projections
(the method of alternating projections of Gaure 2013, as in R's ``fixest``/``lfe``
and ``pyfixest``), iterated until the largest change is below ``tol``.

By the Frisch–Waugh–Lovell theorem, regressing the demeaned outcome on the
demeaned regressors gives the same slopes and residuals as the regression with
a full set of dummy variables, at a fraction of the memory.

Examples
--------
>>> import numpy as np
>>> from evaltoolkit.inference.fixed_effects import demean
>>> x = np.array([[1.0], [3.0], [10.0], [14.0]])
>>> demean(x, [np.array([0, 0, 1, 1])])[:, 0]
array([-1.,  1., -2.,  2.])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaltoolkit.errors import EstimationError

__all__ = ["FixedEffects", "demean", "encode", "fe_dof", "is_nested"]


def encode(values) -> tuple[np.ndarray, int]:
    """Integer codes ``0..n_levels-1`` for any 1-d array of labels.

    Integer labels are recoded in linear time (no sort or hash) when their range is
    not much larger than the number of rows; other labels go through
    :func:`pandas.factorize` (order of first appearance).

    Returns
    -------
    codes : ndarray of intp
    n_levels : int

    Examples
    --------
    >>> encode(np.array(["b", "a", "b"]))
    (array([0, 1, 0]), 2)
    >>> encode(np.array([10, 30, 10]))
    (array([0, 1, 0]), 2)
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iub" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo <= 4 * arr.size + 1000:
            shifted = arr.astype(np.intp, copy=False) - lo
            present = np.bincount(shifted, minlength=hi - lo + 1) > 0
            remap = np.cumsum(present) - 1
            return remap[shifted].astype(np.intp, copy=False), int(present.sum())
    import pandas as pd

    codes, uniques = pd.factorize(arr, sort=False)
    if (codes < 0).any():
        raise EstimationError("fixed-effect or cluster labels contain missing values")
    return codes.astype(np.intp, copy=False), len(uniques)


def _group_means(x: np.ndarray, codes: np.ndarray, n: int, w: np.ndarray | None, wsum: np.ndarray):
    """Weighted group means of every column of ``x`` (shape ``n x p``)."""
    out = np.empty((n, x.shape[1]))
    for j in range(x.shape[1]):
        col = x[:, j] if w is None else x[:, j] * w
        out[:, j] = np.bincount(codes, weights=col, minlength=n)
    out /= wsum[:, None]
    return out


@dataclass
class FixedEffects:
    """One or more categorical fixed effects, encoded once and reused.

    Parameters
    ----------
    codes : list of ndarray
        Integer codes per fixed effect (from :func:`encode`).
    n_levels : list of int
        Number of levels of each fixed effect.
    weights : ndarray, optional
        Observation weights (weighted demeaning).

    Examples
    --------
    >>> fe = FixedEffects.from_arrays([np.array([0, 0, 1, 1])])
    >>> fe.demean(np.array([1.0, 3.0, 10.0, 14.0]))
    array([-1.,  1., -2.,  2.])
    """

    codes: list[np.ndarray]
    n_levels: list[int]
    weights: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, arrays: Sequence, weights: np.ndarray | None = None) -> FixedEffects:
        """Build from label arrays (any dtype)."""
        codes, sizes = [], []
        for a in arrays:
            c, k = encode(a)
            codes.append(c)
            sizes.append(k)
        return cls(codes, sizes, None if weights is None else np.asarray(weights, float))

    def __post_init__(self) -> None:
        w = self.weights
        self._wsum = [
            np.bincount(c, weights=w, minlength=k).astype(float) for c, k in zip(self.codes, self.n_levels)
        ]

    def demean(self, x: np.ndarray, *, tol: float = 1e-10, maxiter: int = 10_000) -> np.ndarray:
        """Remove all fixed effects from ``x`` (1-d or 2-d, rows = observations).

        One fixed effect: exact. Several: alternating projections until the
        largest absolute change in an iteration is below ``tol`` times the scale
        of ``x``; raises :class:`EstimationError` if ``maxiter`` is reached.
        """
        x = np.asarray(x, dtype=float)
        one_d = x.ndim == 1
        out = np.array(x[:, None] if one_d else x, dtype=float, copy=True)
        w = self.weights
        if len(self.codes) == 1:
            c, k = self.codes[0], self.n_levels[0]
            out -= _group_means(out, c, k, w, self._wsum[0])[c]
            return out[:, 0] if one_d else out
        scale = max(1.0, float(np.max(np.abs(out)))) if out.size else 1.0
        for _ in range(maxiter):
            prev = out.copy()
            for c, k, ws in zip(self.codes, self.n_levels, self._wsum):
                out -= _group_means(out, c, k, w, ws)[c]
            if np.max(np.abs(out - prev)) < tol * scale:
                break
        else:  # pragma: no cover - pathological designs only
            raise EstimationError(
                f"absorbing {len(self.codes)} fixed effects did not converge in {maxiter} iterations"
            )
        return out[:, 0] if one_d else out

    @property
    def dof(self) -> int:
        """Parameters absorbed (see :func:`fe_dof`)."""
        return fe_dof(self.codes, self.n_levels)


def demean(x: np.ndarray, fe_codes: Sequence[np.ndarray], weights: np.ndarray | None = None) -> np.ndarray:
    """Demean ``x`` by one or more fixed effects given as integer or label arrays.

    Examples
    --------
    >>> demean(np.array([1.0, 2.0, 3.0, 7.0]), [np.array(["a", "a", "b", "b"])])
    array([-0.5,  0.5, -2. ,  2. ])
    """
    return FixedEffects.from_arrays(fe_codes, weights).demean(x)


def fe_dof(codes: Sequence[np.ndarray], n_levels: Sequence[int]) -> int:
    """Number of parameters absorbed by the fixed effects.

    The first fixed effect counts all its levels and each further one its levels
    minus one (a reference level), the convention of ``fixest`` and ``pyfixest``.

    Examples
    --------
    >>> fe_dof([np.array([0, 1, 2]), np.array([0, 1, 0])], [3, 2])
    4
    """
    if not codes:
        return 0
    return int(n_levels[0]) + sum(int(k) - 1 for k in n_levels[1:])


def is_nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """True when every level of ``inner`` lies within a single level of ``outer``.

    Linear time: each inner level remembers one outer code, then all rows are compared.

    Examples
    --------
    >>> is_nested(np.array([0, 0, 1, 2]), np.array([5, 5, 5, 6]))
    True
    >>> is_nested(np.array([0, 0, 1]), np.array([5, 6, 6]))
    False
    """
    ic, ni = encode(inner)
    oc, _ = encode(outer)
    first = np.empty(ni, dtype=np.intp)
    first[ic] = oc
    return bool(np.array_equal(first[ic], oc))
