"""Internal consistency: Cronbach's α with a Feldt interval, McDonald's ω total, item statistics.

The numbers follow R's ``psych`` package, so they can be checked against it:

* :func:`cronbach_alpha` is ``psych::alpha``'s ``raw_alpha``: ``k/(k-1) * (1 - tr(C)/sum(C))``
  with ``C`` the covariance matrix from pairwise-complete observations (pingouin's default
  too). The interval is Feldt's (``psych::alpha.ci``): ``1 - (1 - α) F`` with ``F`` the
  F quantiles on ``n - 1`` and ``(n - 1)(k - 1)`` degrees of freedom, ``n`` the number of rows.
* :func:`omega_total` is ``psych::omega(x, nfactors = 1)$omega.tot``: a one-factor minimum
  residual (``fm = "minres"``) solution on the pairwise correlation matrix, items with a
  negative loading flipped, and ``ω_t = (V_t - Σ u²) / V_t`` with ``V_t`` the sum of the
  (flipped) correlation matrix and ``u²`` the uniquenesses.
* item statistics are ``psych::alpha``'s ``r.drop`` (corrected item-total correlation) and
  ``alpha.drop`` (α if the item is deleted), both from the pairwise covariance matrix.

:func:`reliability` applies these per scale of one or more instruments, and per group
(by default per wave and arm), reverse-keying items first, and flags α or ω below 0.7.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import evaltoolkit as et
>>> rng = np.random.default_rng(1)
>>> f = rng.normal(size=500)
>>> items = pd.DataFrame({f"x{i}": f + rng.normal(size=500) for i in range(4)})
>>> a = et.cronbach_alpha(items)  # population alpha 0.8 (inter-item correlation 0.5)
>>> bool(abs(a.alpha - 0.8) < 0.07), bool(a.ci_lower < a.alpha < a.ci_upper)  # 0.77 here; SD ~0.016
(True, True)
>>> bool(abs(et.omega_total(items) - 0.8) < 0.07)  # 0.77 here; SD over seeds ~0.016
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evaltoolkit.errors import DataError, EstimationError, EvalToolkitWarning
from evaltoolkit.scoring.scales import _numeric_block, keyed_items, resolve_scales

__all__ = [
    "AlphaResult",
    "ReliabilityResult",
    "cronbach_alpha",
    "item_statistics",
    "omega_total",
    "reliability",
]

#: default grouping of :func:`reliability`; columns that are absent are skipped silently
DEFAULT_BY: tuple[str, ...] = ("wave", "arm")


class AlphaResult(NamedTuple):
    """Cronbach's α with its Feldt confidence interval."""

    alpha: float
    ci_lower: float
    ci_upper: float
    n_obs: int
    n_items: int


def _items_frame(items_df: Any, nan_policy: str = "pairwise") -> pd.DataFrame:
    if isinstance(items_df, np.ndarray):
        items_df = pd.DataFrame(items_df)
    if not isinstance(items_df, pd.DataFrame):
        raise DataError(
            f"items must be a pandas DataFrame (one column per item), got {type(items_df).__name__}"
        )
    if items_df.shape[1] < 2:
        raise DataError(f"reliability needs at least two item columns, got {items_df.shape[1]}")
    if nan_policy not in ("pairwise", "listwise"):
        raise DataError(f"nan_policy must be 'pairwise' or 'listwise', got {nan_policy!r}")
    X = pd.DataFrame(
        _numeric_block(items_df, list(items_df.columns), "reliability"),
        index=items_df.index,
        columns=[str(c) for c in items_df.columns],
    )
    if nan_policy == "listwise":
        X = X.dropna()
    return X


def _cov(X: pd.DataFrame) -> np.ndarray:
    C = X.cov().to_numpy()  # pairwise-complete, ddof=1 (as R's cov(use = "pairwise"))
    if not np.isfinite(C).all():
        bad = [X.columns[i] for i in np.flatnonzero(~np.isfinite(C).all(axis=0))]
        raise EstimationError(
            f"covariances cannot be computed for item(s) {bad}: fewer than two respondents answered them "
            "together with the other items"
        )
    zero = [X.columns[i] for i in np.flatnonzero(np.diag(C) <= 0)]
    if zero:
        raise EstimationError(f"item(s) {zero} have no variance (everyone gave the same answer)")
    return C


def _alpha_from_cov(C: np.ndarray) -> float:
    k = C.shape[0]
    total = C.sum()
    if total <= 0:
        return math.nan
    return k / (k - 1) * (1.0 - np.trace(C) / total)


def _feldt(alpha: float, n: int, k: int, ci: float) -> tuple[float, float]:
    if not 0 < ci < 1:
        raise DataError(f"ci must be between 0 and 1, got {ci}")
    if n < 2 or not math.isfinite(alpha):
        return math.nan, math.nan
    df1, df2 = n - 1, (n - 1) * (k - 1)
    p = (1 - ci) / 2
    lower = 1 - (1 - alpha) * stats.f.ppf(1 - p, df1, df2)
    upper = 1 - (1 - alpha) * stats.f.ppf(p, df1, df2)
    return float(lower), float(upper)


def cronbach_alpha(items_df: pd.DataFrame, ci: float = 0.95, *, nan_policy: str = "pairwise") -> AlphaResult:
    """Cronbach's α (``psych::alpha`` raw alpha) with Feldt's confidence interval.

    Parameters
    ----------
    items_df : DataFrame
        One numeric column per item, already reverse-keyed; rows are respondents.
    ci : float
        Confidence level of the interval.
    nan_policy : {"pairwise", "listwise"}
        ``pairwise`` (default, as psych and pingouin): covariances from pairwise-complete
        observations and ``n`` = number of rows; ``listwise``: drop rows with any missing item.

    Returns
    -------
    AlphaResult
        Named tuple ``(alpha, ci_lower, ci_upper, n_obs, n_items)``.

    Raises
    ------
    DataError
        Fewer than two items or a non-numeric column.
    EstimationError
        An item has no variance or cannot be paired with the others.

    Examples
    --------
    >>> import pandas as pd
    >>> import evaltoolkit as et
    >>> df = pd.DataFrame({"a": [1, 2, 3, 4, 5, 3], "b": [2, 2, 3, 5, 4, 3], "c": [1, 3, 3, 4, 5, 2]})
    >>> res = et.cronbach_alpha(df)
    >>> round(res.alpha, 3), res.n_obs
    (0.932, 6)
    """
    X = _items_frame(items_df, nan_policy)
    C = _cov(X)
    k = C.shape[0]
    alpha = _alpha_from_cov(C)
    n = len(X)
    lo, hi = _feldt(alpha, n, k, ci)
    return AlphaResult(float(alpha), lo, hi, int(n), int(k))


def _minres_one_factor(R: np.ndarray) -> np.ndarray:
    """Loadings of a one-factor minimum-residual (ULS) fit: minimise Σ_{i<j} (r_ij - λ_i λ_j)²."""
    k = R.shape[0]
    iu = np.triu_indices(k, 1)

    def fun(lam: np.ndarray) -> tuple[float, np.ndarray]:
        resid = R - np.outer(lam, lam)
        np.fill_diagonal(resid, 0.0)
        return float((resid[iu] ** 2).sum()), -2.0 * resid @ lam

    w, v = np.linalg.eigh(R)
    start = v[:, -1] * math.sqrt(max(w[-1], 1e-8))
    res = optimize.minimize(fun, start, jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 2000})
    if not np.all(np.isfinite(res.x)):
        raise EstimationError("the one-factor model for omega did not converge")
    lam = res.x
    return -lam if lam.sum() < 0 else lam


def omega_total(items_df: pd.DataFrame, *, flip: bool = True) -> float:
    """McDonald's ω total from a one-factor model, as ``psych::omega(x, nfactors = 1)$omega.tot``.

    Parameters
    ----------
    items_df : DataFrame
        One numeric column per item (at least three); missing values are handled pairwise.
    flip : bool
        Reverse items that load negatively on the factor (psych's default ``flip = TRUE``).
        With ``flip=False`` a negatively keyed item lowers ω, as it should if the data were
        meant to be keyed already.

    Returns
    -------
    float
        ``(V_t - Σ u²) / V_t``; ``V_t`` is the sum of the item correlation matrix and ``u²``
        the uniquenesses (``1 - λ²``, Heywood cases bounded at 0.005 as in psych).

    Raises
    ------
    EstimationError
        Fewer than three items (one factor is not identified), or an item without variance.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import evaltoolkit as et
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=2000)
    >>> df = pd.DataFrame({f"x{i}": 0.7 * f + 0.71 * rng.normal(size=2000) for i in range(5)})
    >>> bool(abs(et.omega_total(df) - 0.83) < 0.03)  # population omega 0.829; SD over seeds ~0.006
    True
    """
    X = _items_frame(items_df)
    k = X.shape[1]
    if k < 3:
        raise EstimationError(f"omega needs at least three items (one factor is not identified with {k})")
    _cov(X)  # checks variances and pairings
    R = X.corr().to_numpy()
    if not np.isfinite(R).all():
        raise EstimationError("the item correlation matrix has undefined entries (too few paired answers)")
    lam = _minres_one_factor(R)
    sign = np.where(lam < 0, -1.0, 1.0) if flip else np.ones(k)
    Rf = R * np.outer(sign, sign)
    uniq = np.clip(1.0 - lam**2, 0.005, None)
    vt = Rf.sum()
    return float((vt - uniq.sum()) / vt)


def item_statistics(items_df: pd.DataFrame) -> pd.DataFrame:
    """Per item: n answered, mean, sd, corrected item-total correlation and α if the item is deleted.

    Matches ``psych::alpha``'s ``item.stats$r.drop`` and ``alpha.drop$raw_alpha``
    (both from the pairwise covariance matrix).

    Parameters
    ----------
    items_df : DataFrame
        One numeric column per item, already reverse-keyed.

    Returns
    -------
    DataFrame
        Columns ``item, n, mean, sd, r_drop, alpha_if_deleted``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1, 2, 3, 4, 5, 3], "b": [2, 2, 3, 5, 4, 3], "c": [1, 3, 3, 4, 5, 2]})
    >>> item_statistics(df)["alpha_if_deleted"].round(3).tolist()
    [0.832, 0.947, 0.908]
    """
    X = _items_frame(items_df)
    C = _cov(X)
    k = C.shape[0]
    rows = []
    for i, name in enumerate(X.columns):
        rest = [j for j in range(k) if j != i]
        sub = C[np.ix_(rest, rest)]
        r_drop = C[i, rest].sum() / math.sqrt(C[i, i] * sub.sum()) if sub.sum() > 0 else math.nan
        a_drop = _alpha_from_cov(sub) if k > 2 else math.nan
        col = X[name]
        rows.append(
            {
                "item": name,
                "n": int(col.notna().sum()),
                "mean": float(col.mean()),
                "sd": float(col.std()),
                "r_drop": float(r_drop),
                "alpha_if_deleted": float(a_drop),
            }
        )
    return pd.DataFrame(rows, columns=["item", "n", "mean", "sd", "r_drop", "alpha_if_deleted"])


@dataclass
class ReliabilityResult:
    """What :func:`reliability` returns.

    Attributes
    ----------
    scales : DataFrame
        One row per scale and group: ``scale, label, <by columns>, n, n_items, alpha, ci_lower,
        ci_upper, omega_total, flag, note``. Group columns hold ``"all"`` on the overall rows.
        ``flag`` is True when α or ω is below the threshold.
    items : DataFrame
        One row per item, scale and group: ``scale, <by columns>, item, reversed, n, mean, sd,
        r_drop, alpha_if_deleted``.
    threshold : float
        The flagging threshold (0.7 by default).
    by : list of str
        The grouping columns used.
    warnings : list of str
        Problems met (scales skipped, groups too small...).
    """

    scales: pd.DataFrame
    items: pd.DataFrame
    threshold: float = 0.7
    by: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        """The per-scale table (same as :attr:`scales`)."""
        return self.scales

    @property
    def flagged(self) -> pd.DataFrame:
        """Rows of :attr:`scales` with α or ω below the threshold."""
        return self.scales[self.scales["flag"]]

    def summary(self) -> str:
        """Plain-text summary: one line per scale and group."""
        lines = [f"Reliability (flag: alpha or omega below {self.threshold:g})"]
        for _, r in self.scales.iterrows():
            grp = ", ".join(f"{b}={r[b]}" for b in self.by)
            grp = f" [{grp}]" if grp else ""
            lines.append(
                f"  {r['scale']}{grp}: n={r['n']}, alpha={r['alpha']:.3f} "
                f"({r['ci_lower']:.3f}-{r['ci_upper']:.3f}), omega={r['omega_total']:.3f}"
                + ("  LOW" if r["flag"] else "")
                + (f"  ({r['note']})" if r["note"] else "")
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_html(self) -> str:
        """An HTML fragment (heading, explanation and table) for the report's measurement section.

        Group sizes below 10 are shown as ``"<10"`` (no small cells in a report).
        """
        from evaltoolkit.privacy import format_count

        cols = ["scale", "label", *self.by, "n", "n_items", "alpha", "ci_lower", "ci_upper", "omega_total"]
        t = self.scales[cols].copy()
        for c in ("alpha", "ci_lower", "ci_upper", "omega_total"):
            t[c] = t[c].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
        t["alpha"] = np.where(
            self.scales["alpha"].isna(),
            "not estimated",
            t["alpha"] + " (" + t["ci_lower"] + " to " + t["ci_upper"] + ")",
        )
        t = t.drop(columns=["ci_lower", "ci_upper"]).rename(
            columns={"alpha": "Cronbach's α (95% CI)", "omega_total": "ω total", "n_items": "items"}
        )
        t["flag"] = np.where(self.scales["flag"], f"below {self.threshold:g}", "")
        t["n"] = [format_count(n) for n in self.scales["n"]]  # no small cells in a report
        n_flag = int(self.scales["flag"].sum())
        text = (
            f"<p>Internal consistency of each scale{' by ' + ' and '.join(self.by) if self.by else ''}. "
            f"α is Cronbach's alpha with a Feldt 95% interval; ω total is McDonald's omega from a "
            f"one-factor model. {n_flag} scale-group row(s) fall below {self.threshold:g}.</p>"
        )
        return (
            "<section class='measurement'><h2>Measurement</h2>" + text + t.to_html(index=False) + "</section>"
        )


def _resolve_by(data: pd.DataFrame, by: Any) -> list[str]:
    if by is None:
        return []
    cols = [by] if isinstance(by, str) else list(by)
    if by is DEFAULT_BY:
        return [c for c in cols if c in data.columns]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DataError(f"'by' column(s) {missing} are not in the data")
    return cols


def reliability(
    data: pd.DataFrame,
    instruments_or_items: Any,
    *,
    by: str | Sequence[str] | None = DEFAULT_BY,
    scales: Sequence[str] | None = None,
    threshold: float = 0.7,
    ci: float = 0.95,
    overall: bool = True,
    min_n: int = 10,
) -> ReliabilityResult:
    """Per scale and group: α with a Feldt CI, ω total, item-total correlations, α if item deleted.

    Parameters
    ----------
    data : DataFrame
        Item codes (missing as NA), e.g. from :func:`evaltoolkit.read_responses`.
    instruments_or_items : Instrument, str, list, or mapping
        Instruments whose scales to analyse (reverse keys from the instrument), or a mapping
        ``{"scale": ["item1", "-item2"]}`` (``-`` = reverse-keyed, psych convention).
        Single-item scales are skipped.
    by : str or list of str, optional
        Grouping columns. The default ``("wave", "arm")`` uses whichever of those columns
        exist; columns named explicitly must exist. ``None``: whole sample only.
    scales : list of str, optional
        Only these scales.
    threshold : float
        Flag α or ω below this value (0.7).
    ci : float
        Confidence level of the α interval.
    overall : bool
        Also report each scale on the whole sample (group columns ``"all"``).
    min_n : int
        Groups with fewer respondents are not analysed (too few for a stable estimate, and
        small cells must not be reported); they appear with a note.

    Returns
    -------
    ReliabilityResult
        ``.scales`` and ``.items`` tables, ``.summary()``, ``.to_html()``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import evaltoolkit as et
    >>> rng = np.random.default_rng(2)
    >>> f = rng.normal(size=400)
    >>> df = pd.DataFrame({f"q{i}": np.clip(np.round(3 + f + rng.normal(size=400)), 1, 5) for i in range(4)})
    >>> df["q3"] = 6 - df["q3"]  # a reverse-worded item
    >>> df["wave"] = np.repeat(["baseline", "post"], 200)
    >>> res = et.reliability(df, {"att": ["q0", "q1", "q2", "-q3"]})
    >>> res.scales[["scale", "wave", "n"]].values.tolist()
    [['att', 'all', 400], ['att', 'baseline', 200], ['att', 'post', 200]]
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    by_cols = _resolve_by(data, by)
    specs = resolve_scales(instruments_or_items, scales=scales, data=data)
    scale_rows: list[dict[str, Any]] = []
    item_rows: list[pd.DataFrame] = []
    messages: list[str] = []
    if not data.index.is_unique:  # several files stacked (row numbers repeat): group by position
        data = data.reset_index(drop=True)
    for spec in specs:
        if spec.n_items < 2:
            continue
        absent = [c for c in spec.items if c not in data.columns]
        if absent:
            messages.append(f"scale '{spec.id}' skipped: item column(s) {absent} are not in the data")
            continue
        keyed = keyed_items(data, spec)
        keyed = keyed[keyed.notna().any(axis=1)]  # respondents who answered none of the items do not count
        groups: list[tuple[dict[str, Any], pd.DataFrame]] = []
        if overall or not by_cols:
            groups.append(({b: "all" for b in by_cols}, keyed))
        if by_cols:
            keys = data.loc[keyed.index, by_cols]
            for key, sub in keys.groupby(by_cols, dropna=False, sort=True):
                key = key if isinstance(key, tuple) else (key,)
                groups.append((dict(zip(by_cols, key, strict=True)), keyed.loc[sub.index]))
        for gkey, X in groups:
            row: dict[str, Any] = {
                "scale": spec.id,
                "label": spec.label,
                **gkey,
                "n": len(X),
                "n_items": spec.n_items,
            }
            row.update(alpha=math.nan, ci_lower=math.nan, ci_upper=math.nan, omega_total=math.nan, note="")
            if len(X) < min_n:
                row["note"] = f"fewer than {min_n} respondents: not estimated"
                scale_rows.append(row)
                continue
            try:
                a = cronbach_alpha(X, ci=ci)
                row.update(alpha=a.alpha, ci_lower=a.ci_lower, ci_upper=a.ci_upper)
                its = item_statistics(X)
                its.insert(0, "scale", spec.id)
                for j, b in enumerate(by_cols):
                    its.insert(1 + j, b, gkey[b])
                its.insert(2 + len(by_cols), "reversed", list(spec.reverse))
                item_rows.append(its)
                if spec.n_items >= 3:
                    row["omega_total"] = omega_total(X, flip=False)
                else:
                    row["note"] = "omega needs at least 3 items"
            except EstimationError as exc:
                row["note"] = exc.message
            scale_rows.append(row)
    cols = ["scale", "label", *by_cols, "n", "n_items", "alpha", "ci_lower", "ci_upper", "omega_total"]
    table = pd.DataFrame(scale_rows, columns=[*cols, "note"])
    low = (table["alpha"] < threshold) | (table["omega_total"] < threshold)
    table.insert(len(cols), "flag", low.astype(bool))
    item_cols = ["scale", *by_cols, "item", "reversed", "n", "mean", "sd", "r_drop", "alpha_if_deleted"]
    items = (
        pd.concat(item_rows, ignore_index=True)[item_cols] if item_rows else pd.DataFrame(columns=item_cols)
    )
    n_flag = int(table["flag"].sum())
    if n_flag:
        messages.append(f"{n_flag} scale-group row(s) have alpha or omega below {threshold:g}")
    for msg in messages:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    return ReliabilityResult(scales=table, items=items, threshold=threshold, by=by_cols, warnings=messages)
