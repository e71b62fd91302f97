"""Multiple-outcome correction: Holm and Benjamini–Hochberg within families.

A design file groups outcomes into *families* (e.g. primary attitudes; secondary
contact measures). Within each family the p-values are adjusted together:

* ``holm`` (default) — Holm (1979) step-down, controls the family-wise error rate;
* ``bh`` — Benjamini and Hochberg (1995) step-up, controls the false discovery rate;
* ``bonferroni``, ``hochberg`` and ``by`` (Benjamini–Yekutieli) are also available.

The adjusted values equal R's ``p.adjust`` (missing p-values are left missing and
not counted, as ``p.adjust`` does) and ``statsmodels.stats.multitest.multipletests``.

Examples
--------
>>> from evaltoolkit.inference.multiple import adjust_pvalues
>>> adjust_pvalues([0.01, 0.04, 0.03, 0.20], "holm").round(3).tolist()
[0.04, 0.09, 0.09, 0.2]
>>> adjust_pvalues([0.01, 0.04, 0.03, 0.20], "bh").round(4).tolist()
[0.04, 0.0533, 0.0533, 0.2]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from evaltoolkit.errors import DataError, DesignError

__all__ = ["METHODS", "adjust_pvalues", "correct"]

METHODS = ("holm", "bh", "bonferroni", "hochberg", "by")
_ALIASES = {"fdr_bh": "bh", "fdr": "bh", "benjamini-hochberg": "bh", "fdr_by": "by", "BH": "bh", "BY": "by"}


def _method(name: str) -> str:
    m = _ALIASES.get(name, name)
    m = _ALIASES.get(m.lower(), m.lower())
    if m not in METHODS:
        raise DesignError(
            f"unknown multiple-comparison method '{name}' (use {', '.join(METHODS)})", field="method"
        )
    return m


def adjust_pvalues(p: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjust one family of p-values.

    Parameters
    ----------
    p : array-like of float
        p-values (NaN allowed: kept as NaN and not counted in the family size).
    method : {"holm", "bh", "bonferroni", "hochberg", "by"}

    Returns
    -------
    ndarray
        Adjusted p-values, in the input order, capped at 1.

    Examples
    --------
    >>> adjust_pvalues([0.02, np.nan, 0.04], "bonferroni").tolist()
    [0.04, nan, 0.08]
    """
    m_name = _method(method)
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise DataError("p-values must lie between 0 and 1")
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    if m_name == "bonferroni":
        adj = np.minimum(1.0, m * q)
    elif m_name == "holm":
        order = np.argsort(q, kind="stable")
        steps = (m - np.arange(m)) * q[order]
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    elif m_name == "hochberg":
        order = np.argsort(q, kind="stable")[::-1]
        steps = (np.arange(m) + 1) * q[order]  # i-th largest times i
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, np.minimum.accumulate(steps))
    else:  # bh / by
        order = np.argsort(q, kind="stable")[::-1]
        rank = m - np.arange(m)  # rank of each in ascending order
        c = np.sum(1.0 / np.arange(1, m + 1)) if m_name == "by" else 1.0
        steps = c * m / rank * q[order]
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, np.minimum.accumulate(steps))
    out[ok] = adj
    return out


def correct(
    table: pd.DataFrame,
    method: str = "holm",
    *,
    families: str | Mapping[str, str] | Mapping[str, Sequence[str]] | None = None,
    p_col: str = "p_value",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Adjust the p-values of a results table within families.

    Parameters
    ----------
    table : DataFrame
        Tidy results (e.g. ``pd.concat([r.table for r in results])``) with a p-value column.
    method : str
        See :func:`adjust_pvalues`.
    families : column name, mapping outcome -> family, or mapping family -> outcomes, optional
        Which rows are corrected together. A mapping is applied to the ``outcome``
        column (``Design.families`` can be passed as it is); outcomes it does not list
        form their own family named after themselves. Default: the whole table is one family.
    p_col : str
        The p-value column.
    alpha : float
        Level for the ``reject`` column.

    Returns
    -------
    DataFrame
        A copy with ``family``, ``p_adjusted``, ``adjustment`` (method and family size)
        and ``reject`` columns added.

    Examples
    --------
    >>> t = pd.DataFrame({"outcome": ["a", "b", "c"], "p_value": [0.01, 0.04, 0.03]})
    >>> out = correct(t, "holm", families={"a": "primary", "b": "primary", "c": "secondary"})
    >>> out["p_adjusted"].round(3).tolist()
    [0.02, 0.04, 0.03]
    """
    m_name = _method(method)
    if p_col not in table.columns:
        raise DataError("no p-value column in the results table", column=p_col)
    out = table.copy()
    if families is None:
        fam = pd.Series("all", index=out.index)
    elif isinstance(families, str):
        if families not in out.columns:
            raise DataError("family column not found in the results table", column=families)
        fam = out[families].astype(str)
    else:
        if "outcome" not in out.columns:
            raise DataError("a family mapping needs an 'outcome' column", column="outcome")
        lookup: dict[str, str] = {}
        for key, val in families.items():
            if isinstance(val, str):
                lookup[key] = val  # outcome -> family
            else:
                lookup.update({o: key for o in val})  # family -> [outcomes] (design files)
        fam = out["outcome"].map(lambda o: lookup.get(o, o)).astype(str)
    out["family"] = fam.to_numpy()
    out["p_adjusted"] = np.nan
    out["adjustment"] = ""
    for name, idx in out.groupby("family", sort=False).groups.items():
        p = out.loc[idx, p_col].to_numpy(dtype=float)
        out.loc[idx, "p_adjusted"] = adjust_pvalues(p, m_name)
        out.loc[idx, "adjustment"] = f"{m_name} within '{name}' (m={int(np.sum(~np.isnan(p)))})"
    out["reject"] = out["p_adjusted"] < alpha
    return out
