"""Baseline balance: standardised mean differences, variance ratios and a love plot.

Balance is measured the way R's **cobalt** (Greifer) and **MatchIt** ``summary()``
measure it, so numbers can be checked against either package:

* the standardised mean difference (SMD) is ``(mean_treated - mean_control) / s*``,
  where weighted means are used after weighting or matching;
* the standardisation factor ``s*`` is computed **once, in the unweighted sample**,
  and reused after adjustment (Stuart 2008; cobalt FAQ), so an SMD can only change
  because the means moved;
* ``s*`` depends on the estimand: the treated-group SD for the ATT (cobalt
  ``s.d.denom = "treated"``, MatchIt's default), the control-group SD for the ATC,
  and the pooled SD ``sqrt((s1^2 + s0^2) / 2)`` for the ATE (``"pooled"``);
* continuous covariates use the usual ``n - 1`` SD; binary covariates use
  ``sqrt(p (1 - p))``;
* variance ratios (treated / control, weighted with the unbiased
  "reliability weights" formula) are reported for continuous covariates only.

Covariates may be written as ``"age"`` (a column; text columns are dummy-coded),
``"age^2"`` (the square of a numeric column) or ``"C(education)"`` (dummy-coded,
one indicator per level, as cobalt shows factors). The same mini-language is used
by :mod:`evaltoolkit.estimators.weighting` to build the propensity model.

Examples
--------
>>> import pandas as pd
>>> from evaltoolkit.estimators.balance import balance_table
>>> df = pd.DataFrame({"arm": [1, 1, 1, 0, 0, 0], "age": [20, 22, 24, 30, 32, 34.0]})
>>> tab = balance_table(df, "arm", ["age"], treated=1)
>>> float(tab.loc["age", "smd_unadjusted"])
-5.0
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning

__all__ = [
    "arm_indicator",
    "balance_table",
    "covariate_frame",
    "effective_sample_size",
    "resolve_control",
    "smd",
    "weighted_var",
]

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere

_SQUARE = re.compile(r"^\s*([^\s^]+)\s*\^\s*2\s*$")
_CATEG = re.compile(r"^\s*C\(\s*([^)]+?)\s*\)\s*$")


def _require_columns(data: pd.DataFrame, columns: Sequence[str], what: str = "column") -> None:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(data).__name__}")
    for col in columns:
        if col not in data.columns:
            raise DataError(
                f"{what} is not in the data (available: {', '.join(map(str, data.columns[:20]))})",
                column=str(col),
            )


def parse_covariate(term: str) -> tuple[str, str]:
    """Split a covariate term into ``(column, kind)`` with kind ``"plain"``, ``"square"`` or ``"factor"``.

    Examples
    --------
    >>> parse_covariate("age^2"), parse_covariate("C(education)"), parse_covariate("wt71")
    (('age', 'square'), ('education', 'factor'), ('wt71', 'plain'))
    """
    if not isinstance(term, str) or not term.strip():
        raise DesignError(f"covariate names must be non-empty strings, got {term!r}", field="covariates")
    m = _SQUARE.match(term)
    if m:
        return m.group(1), "square"
    m = _CATEG.match(term)
    if m:
        return m.group(1), "factor"
    return term.strip(), "plain"


def covariate_columns(covariates: Sequence[str]) -> list[str]:
    """The data columns a covariate specification needs (no duplicates, in order).

    Examples
    --------
    >>> covariate_columns(["age", "age^2", "C(education)"])
    ['age', 'education']
    """
    if isinstance(covariates, str):
        covariates = [covariates]
    out: list[str] = []
    for term in covariates:
        col, _ = parse_covariate(term)
        if col not in out:
            out.append(col)
    return out


def covariate_frame(
    data: pd.DataFrame,
    covariates: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    drop_first: bool = False,
    check_constant: bool = True,
) -> pd.DataFrame:
    """Numeric covariate matrix (one column per balance term / model regressor).

    Parameters
    ----------
    data : DataFrame
        The data (rows with missing covariates must already be removed).
    covariates : list of str
        Terms: ``"x"``, ``"x^2"`` or ``"C(x)"``. Non-numeric columns and those in
        ``categorical`` are dummy-coded.
    categorical : list of str, optional
        Columns to treat as categorical even if numeric.
    drop_first : bool, default False
        Drop the first level of each factor (needed for regression models with an
        intercept; balance tables keep every level, as cobalt does).
    check_constant : bool, default True
        Raise :class:`~evaltoolkit.errors.DataError` for a covariate that does not vary.

    Returns
    -------
    DataFrame
        Float columns named ``x``, ``x^2`` and ``x_<level>``, indexed like ``data``.

    Examples
    --------
    >>> df = pd.DataFrame({"age": [20, 30, 40], "sex": ["f", "m", "f"]})
    >>> covariate_frame(df, ["age", "age^2", "sex"]).columns.tolist()
    ['age', 'age^2', 'sex_f', 'sex_m']
    """
    if isinstance(covariates, str):
        covariates = [covariates]
    _require_columns(data, covariate_columns(covariates), "covariate")
    cat = set(categorical)
    parts: dict[str, pd.Series] = {}
    for term in covariates:
        col, kind = parse_covariate(term)
        x = data[col]
        if check_constant and x.nunique(dropna=True) < 2:
            raise DataError(
                "covariate is constant (it has one value), so it cannot be balanced or "
                "used in a model; remove it",
                column=col,
            )
        is_num = pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)
        if kind == "factor" or col in cat or not is_num:
            if kind == "square":
                raise DesignError(f"'{term}' squares a categorical column", field="covariates", column=col)
            levels = sorted(pd.unique(x.dropna()), key=lambda v: (str(type(v)), v))
            if drop_first:
                levels = levels[1:]
            for lev in levels:
                parts[f"{col}_{lev}"] = (x == lev).astype(float)
        elif kind == "square":
            parts[f"{col}^2"] = x.astype(float) ** 2
        else:
            parts[col] = x.astype(float)
    return pd.DataFrame(parts, index=data.index)


def resolve_control(df: pd.DataFrame, arm: str, treated: Any, control: Any = None) -> Any:
    """The comparison arm: as given (it must occur), or the only other arm present.

    Examples
    --------
    >>> resolve_control(pd.DataFrame({"arm": ["ncs", "control", "ncs"]}), "arm", "ncs")
    'control'
    """
    arms = list(pd.unique(df[arm]))
    if treated not in arms:
        raise DataError(f"treated arm {treated!r} does not occur (arms: {arms})", column=arm)
    if control is None:
        others = [a for a in arms if a != treated]
        if len(others) != 1:
            raise DesignError(
                f"column '{arm}' has {len(arms)} arms {arms}; say which is the comparison with control=",
                field="control",
            )
        control = others[0]
    elif control not in arms:
        raise DataError(f"control arm {control!r} does not occur (arms: {arms})", column=arm)
    return control


def arm_indicator(
    data: pd.DataFrame, arm: str, treated: Any, control: Any = None
) -> tuple[pd.Series, pd.Series]:
    """Validate a two-arm column and return ``(is_treated, in_comparison)`` boolean Series.

    Rows whose arm is neither ``treated`` nor ``control`` (or missing) have
    ``in_comparison`` False. With ``control=None`` every non-missing arm value other
    than ``treated`` must be a single control label.

    Examples
    --------
    >>> d = pd.DataFrame({"g": ["ncs", "ctl", "ncs"]})
    >>> t, keep = arm_indicator(d, "g", treated="ncs")
    >>> t.tolist(), keep.tolist()
    ([True, False, True], [True, True, True])
    """
    _require_columns(data, [arm], "arm column")
    a = data[arm]
    levels = pd.unique(a.dropna())
    if treated not in set(levels):
        raise DesignError(
            f"treated arm label {treated!r} does not occur in the data "
            f"(arm values: {', '.join(map(repr, levels[:10]))})",
            column=arm,
            field="treated",
        )
    if control is None:
        others = [v for v in levels if v != treated]
        if len(others) == 0:
            raise DesignError(
                "the arm column has only one level, so there is no comparison group", column=arm
            )
        if len(others) > 1:
            raise DesignError(
                f"the arm column has more than two levels ({', '.join(map(repr, levels))}); "
                "say which is the control with control=...",
                column=arm,
                field="control",
            )
        control = others[0]
    elif control not in set(levels):
        raise DesignError(
            f"control arm label {control!r} does not occur in the data", column=arm, field="control"
        )
    is_t = a == treated
    keep = is_t | (a == control)
    if not (keep & ~is_t).any():
        raise DesignError("the arm column has only one level, so there is no comparison group", column=arm)
    return is_t, keep


def weighted_var(x: np.ndarray, w: np.ndarray | None = None, binary: bool = False) -> float:
    """Variance as cobalt computes it.

    Continuous: the ``n - 1`` variance, or with weights the unbiased
    "reliability weights" form ``sum(w) / (sum(w)^2 - sum(w^2)) * sum(w (x - m_w)^2)``.
    Binary: ``p (1 - p)`` (weighted ``p`` with weights).

    Examples
    --------
    >>> weighted_var(np.array([1.0, 2.0, 3.0]))
    1.0
    >>> weighted_var(np.array([0.0, 1.0, 1.0, 1.0]), binary=True)
    0.1875
    """
    x = np.asarray(x, dtype=float)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=float)
    sw = w.sum()
    if sw <= 0:
        return float("nan")
    m = np.sum(w * x) / sw
    if binary:
        return float(m * (1 - m))
    denom = sw**2 - np.sum(w**2)
    if denom <= 0:
        return float("nan")
    return float(sw / denom * np.sum(w * (x - m) ** 2))


def _denominator(x1, x0, binary: bool, s_d_denom: str) -> float:
    v1, v0 = weighted_var(x1, binary=binary), weighted_var(x0, binary=binary)
    if s_d_denom == "treated":
        v = v1
    elif s_d_denom == "control":
        v = v0
    elif s_d_denom == "pooled":
        v = (v1 + v0) / 2
    elif s_d_denom == "all":
        v = weighted_var(np.concatenate([x1, x0]), binary=binary)
    else:
        raise DesignError(
            f"s_d_denom must be 'treated', 'control', 'pooled' or 'all', not {s_d_denom!r}", field="s_d_denom"
        )
    return float(np.sqrt(v))


def smd(
    x: np.ndarray,
    treat: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    s_d_denom: str = "pooled",
    binary: bool | None = None,
) -> float:
    """Standardised mean difference of one covariate (cobalt's ``col_w_smd``).

    The standardisation factor always comes from the unweighted sample.

    Parameters
    ----------
    x : array
        Covariate values.
    treat : array of bool
        Treated indicator.
    weights : array, optional
        Balancing weights (applied to the means only).
    s_d_denom : {"pooled", "treated", "control", "all"}
    binary : bool, optional
        Force the binary SD ``sqrt(p (1 - p))``; detected from the values if omitted.

    Examples
    --------
    >>> smd(np.array([1.0, 2, 3, 2, 3, 4]), np.array([1, 1, 1, 0, 0, 0], bool))
    -1.0
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(treat, dtype=bool)
    if binary is None:
        binary = bool(np.isin(x, (0.0, 1.0)).all())
    s = _denominator(x[t], x[~t], binary, s_d_denom)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    m1 = np.sum(w[t] * x[t]) / np.sum(w[t])
    m0 = np.sum(w[~t] * x[~t]) / np.sum(w[~t])
    if not np.isfinite(s) or s == 0:
        return float("nan") if m1 != m0 else 0.0
    return float((m1 - m0) / s)


_DENOM_FOR = {"ATT": "treated", "ATC": "control", "ATE": "pooled"}


def balance_table(
    data: pd.DataFrame,
    arm: str,
    covariates: Sequence[str],
    *,
    treated: Any,
    control: Any = None,
    weights: str | Sequence[float] | pd.Series | None = None,
    estimand: str = "ATT",
    s_d_denom: str | None = None,
    binary: str = "std",
    threshold: float = 0.1,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """Balance of covariates between arms, before and (optionally) after weighting.

    Parameters
    ----------
    data : DataFrame
        One row per unit (use the baseline wave of a panel).
    arm : str
        Column holding the arm labels.
    covariates : list of str
        Covariate terms (``"x"``, ``"x^2"``, ``"C(x)"``); factors give one row per level.
    treated, control : scalar
        Arm labels (``control`` may be omitted when the arm has two levels).
    weights : str, array or Series, optional
        Balancing weights (a column name, or values aligned with ``data``), e.g.
        :attr:`~evaltoolkit.estimators.weighting.WeightingResult.weights`. Units with weight 0
        (unmatched) drop out of the adjusted means.
    estimand : {"ATT", "ATE", "ATC"}, default "ATT"
        Sets the SD denominator when ``s_d_denom`` is not given (treated / pooled /
        control SD, as cobalt and MatchIt do).
    s_d_denom : {"treated", "control", "pooled", "all"}, optional
        Override the denominator.
    binary : {"std", "raw"}, default "std"
        Standardise binary covariates by ``sqrt(p(1-p))`` (MatchIt ``summary()``) or
        report the raw difference in proportions (cobalt's default).
    threshold : float, default 0.1
        Rows with ``|SMD| > threshold`` are flagged (``imbalanced``).
    categorical : list of str, optional
        Numeric columns to treat as categorical.

    Returns
    -------
    DataFrame
        Indexed by covariate term, with columns ``type``, ``mean_treated``,
        ``mean_control``, ``smd_unadjusted``, ``var_ratio_unadjusted`` and, with
        weights, ``mean_treated_adj``, ``mean_control_adj``, ``smd_adjusted``,
        ``var_ratio_adjusted``; then ``imbalanced`` (judged on the adjusted SMD when
        weights are given). ``attrs`` records estimand, denominator, threshold and
        the effective sample sizes.

    Examples
    --------
    >>> df = pd.DataFrame({"arm": ["t", "t", "c", "c", "c"], "x": [1.0, 3.0, 2.0, 4.0, 6.0]})
    >>> tab = balance_table(df, "arm", ["x"], treated="t")
    >>> round(float(tab.loc["x", "smd_unadjusted"]), 4), bool(tab.loc["x", "imbalanced"])
    (-1.4142, True)
    """
    estimand = str(estimand).upper()
    if estimand not in _DENOM_FOR:
        raise DesignError(f"estimand must be 'ATT', 'ATE' or 'ATC', not {estimand!r}", field="estimand")
    denom = s_d_denom or _DENOM_FOR[estimand]
    if binary not in ("std", "raw"):
        raise DesignError("binary must be 'std' or 'raw'", field="binary")
    is_t, keep = arm_indicator(data, arm, treated, control)
    w_all = _resolve_weights(data, weights)
    cols = covariate_columns(covariates)
    _require_columns(data, cols, "covariate")
    miss = data[cols].isna().any(axis=1) & keep
    cautions = (
        [f"balance_table: {int(miss.sum())} row(s) with missing covariates left out"] if miss.any() else []
    )
    for msg in cautions:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    use = keep & ~miss
    X = covariate_frame(data.loc[use], covariates, categorical=categorical)
    t = is_t.loc[use].to_numpy()
    if t.all() or not t.any():
        raise DesignError("after removing missing values only one arm is left", column=arm)
    w = None if w_all is None else w_all.loc[use].to_numpy()
    rows = []
    for name in X.columns:
        x = X[name].to_numpy()
        is_bin = bool(np.isin(x, (0.0, 1.0)).all())
        row: dict[str, Any] = {"covariate": name, "type": "binary" if is_bin else "continuous"}
        std = not (is_bin and binary == "raw")
        for suffix, ww in (("", None), ("_adj", w)):
            if suffix == "_adj" and w is None:
                continue
            wv = np.ones_like(x) if ww is None else ww
            m1 = np.sum(wv[t] * x[t]) / np.sum(wv[t])
            m0 = np.sum(wv[~t] * x[~t]) / np.sum(wv[~t])
            row[f"mean_treated{suffix}"] = m1
            row[f"mean_control{suffix}"] = m0
            key = "unadjusted" if suffix == "" else "adjusted"
            row[f"smd_{key}"] = smd(x, t, ww, s_d_denom=denom, binary=is_bin) if std else m1 - m0
            if is_bin:
                row[f"var_ratio_{key}"] = np.nan
            else:
                v1 = weighted_var(x[t], None if ww is None else ww[t])
                v0 = weighted_var(x[~t], None if ww is None else ww[~t])
                row[f"var_ratio_{key}"] = v1 / v0 if v0 > 0 else np.nan
        rows.append(row)
    out = pd.DataFrame(rows).set_index("covariate")
    judge = out["smd_adjusted"] if w is not None else out["smd_unadjusted"]
    out["imbalanced"] = judge.abs() > threshold
    out.attrs["warnings"] = cautions  # the result carries its cautions (the plan reads them from here)
    out.attrs["dropped"] = {"missing covariates": int(miss.sum())} if miss.any() else {}
    out.attrs.update(
        estimand=estimand,
        s_d_denom=denom,
        binary=binary,
        threshold=threshold,
        n_treated=int(t.sum()),
        n_control=int((~t).sum()),
    )
    if w is not None:
        out.attrs["ess_treated"] = effective_sample_size(w[t])
        out.attrs["ess_control"] = effective_sample_size(w[~t])
    return out


def effective_sample_size(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``.

    Examples
    --------
    >>> effective_sample_size([1, 1, 1, 1])
    4.0
    >>> round(effective_sample_size([1, 1, 1, 5]), 3)
    2.286
    """
    w = np.asarray(weights, dtype=float)
    s2 = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


def _resolve_weights(data: pd.DataFrame, weights) -> pd.Series | None:
    if weights is None:
        return None
    if isinstance(weights, str):
        _require_columns(data, [weights], "weights column")
        w = data[weights]
    elif isinstance(weights, pd.Series):
        if weights.index.equals(data.index):
            w = weights
        else:
            if not data.index.is_unique or not weights.index.is_unique:
                raise DataError(
                    "weights given as a Series need a unique index matching the data's rows", field="weights"
                )
            w = weights.reindex(data.index)
            n_missing = int(w.isna().sum())
            if n_missing:
                raise DataError(
                    f"the weights Series has no value for {n_missing} row(s) of the data "
                    "(its index does not match the data's index)",
                    field="weights",
                )
    else:
        arr = np.asarray(weights, dtype=float)
        if arr.shape != (len(data),):
            raise DataError(
                f"weights have length {arr.size} but the data have {len(data)} rows", field="weights"
            )
        w = pd.Series(arr, index=data.index)
    w = pd.to_numeric(w, errors="coerce").astype(float)
    if w.isna().any() or not np.isfinite(w.to_numpy()).all():
        raise DataError("weights contain missing or non-finite values", field="weights")
    if (w < 0).any():
        raise DataError("weights must not be negative", field="weights")
    return w
