"""Attrition made explicit: response weights, Lee (2009) bounds, multiple imputation and a tipping point.

A study that loses people between baseline and follow-up (the NCS demo loses 29% at 3-5 months and 51% at a
year, more among controls) answers "did it work?" only under an assumption about the people lost. This module
makes the assumption explicit four ways:

1. :func:`response_weights` models *responding* at a follow-up on baseline covariates and the baseline
   outcome (logistic, separately in each arm, with team means of the predictors so that the model sees the
   clusters; CR1 cluster-robust standard errors for its coefficients), stabilises and trims the weights and
   counts what it trimmed; :func:`weighted_estimates` then runs ``did`` and ``ancova`` with and without them
   ("missing at random given baseline" against "missing completely at random").
2. :func:`lee_bounds`: Lee (2009) bounds, which assume only that the programme moves response in one
   direction: the arm that kept more people is trimmed by the excess share at the top (lower bound) or the
   bottom (upper bound) of its outcome distribution; analytic standard errors (Lee 2009, Proposition 3) or a
   cluster bootstrap, and the Imbens & Manski (2004) interval for the effect.
3. :func:`impute_chained` / :func:`multiple_imputation`: multiple imputation by chained equations (predictive
   mean matching or normal linear regression for scores, logistic regression for 0/1 variables), with the
   cluster (team) means of the other variables as extra predictors, optionally separately in each arm;
   :func:`rubin_pool` pools with Rubin's rules and the Barnard & Rubin (1999) small-sample degrees of freedom.
4. :func:`tipping_point`: delta adjustment: impute under MAR, shift the imputed follow-up scores of the
   non-completers (in the programme arm, the comparison arm or both) by ``delta``, re-pool, and find the
   ``delta`` at which the pooled interval reaches zero.

Everything takes **wide** data (one row per randomised person: arm, cluster, baseline score, follow-up score
with NaN for the people lost, baseline covariates), except :func:`response_weights` and
:func:`weighted_estimates`, which take the long panel that ``did`` takes. :func:`wide_panel` turns the long
panel into the wide frame.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from evaltoolkit.estimators.sensitivity.missing_data import rubin_pool
>>> # mice 3.15: pool.scalar(c(1.20, 0.95, 1.41, 1.08, 1.30), c(0.090, 0.085, 0.100, 0.088, 0.095), n = 40, k = 3)
>>> # $qbar 1.188, $t 0.130684, $df 15.885756925574, $fmi 0.373300725080
>>> p = rubin_pool([1.20, 0.95, 1.41, 1.08, 1.30], [0.090, 0.085, 0.100, 0.088, 0.095], df_complete=37)
>>> round(p.estimate, 3), round(p.total, 6), round(p.df, 6), round(p.fmi, 6)
(1.188, 0.130684, 15.885757, 0.373301)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.ancova import ancova
from evaltoolkit.estimators.balance import (
    _require_columns,
    arm_indicator,
    covariate_columns,
    covariate_frame,
    effective_sample_size,
)
from evaltoolkit.estimators.did import did
from evaltoolkit.estimators.weighting import _logit_irls
from evaltoolkit.inference.core import cluster_scores
from evaltoolkit.inference.fixed_effects import encode
from evaltoolkit.privacy import format_count
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult

__all__ = [
    "LeeBounds",
    "PooledEstimate",
    "ResponseWeights",
    "TippingPoint",
    "WeightedEstimates",
    "ancova_analysis",
    "did_analysis",
    "impute_chained",
    "lee_bounds",
    "multiple_imputation",
    "response_weights",
    "rubin_pool",
    "tipping_point",
    "weighted_estimates",
    "wide_panel",
]


# --------------------------------------------------------------------------- shared helpers
def wide_panel(
    data: pd.DataFrame,
    unit: str,
    wave: str,
    outcome: str,
    *,
    baseline: Any,
    follow_up: Any,
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per person seen at baseline: ``keep`` columns from the baseline row, ``<outcome>_pre`` and
    ``<outcome>_post`` (NaN for the people not followed up).

    Examples
    --------
    >>> long = pd.DataFrame({"pid": [1, 1, 2], "wave": ["pre", "post", "pre"], "y": [1.0, 2.0, 3.0],
    ...                      "arm": ["a", "a", "b"]})
    >>> wide_panel(long, "pid", "wave", "y", baseline="pre", follow_up="post", keep=["arm"]).to_dict("list")
    {'arm': ['a', 'b'], 'y_pre': [1.0, 3.0], 'y_post': [2.0, nan]}
    """
    _require_columns(data, [unit, wave, outcome, *keep])
    base = data[data[wave] == baseline]
    if base.empty:
        raise DesignError(f"no rows in the baseline wave {baseline!r}", column=wave, field="baseline")
    if base[unit].duplicated().any():
        raise DataError(
            f"{int(base[unit].duplicated().sum())} people have more than one baseline row", column=unit
        )
    post = data[data[wave] == follow_up]
    if post.empty:
        raise DesignError(f"no rows in the follow-up wave {follow_up!r}", column=wave, field="follow_up")
    if post[unit].duplicated().any():
        raise DataError(
            f"{int(post[unit].duplicated().sum())} people have more than one follow-up row", column=unit
        )
    out = base[list(dict.fromkeys([*keep]))].copy()
    out[f"{outcome}_pre"] = base[outcome].to_numpy(dtype=float)
    out[f"{outcome}_post"] = base[unit].map(post.set_index(unit)[outcome]).to_numpy(dtype=float)
    return out.reset_index(drop=True)


def _cluster_means(values: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    """Column means within clusters, spread back to the rows (``values`` is n x k)."""
    n_g = np.bincount(codes, minlength=g).astype(float)
    out = np.empty_like(values, dtype=float)
    for j in range(values.shape[1]):
        out[:, j] = (np.bincount(codes, weights=values[:, j], minlength=g) / n_g)[codes]
    return out


def _independent_columns(X: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Positions of columns that are not linear combinations of earlier ones (as mice's ``remove.lindep``)."""
    keep: list[int] = []
    for j in range(X.shape[1]):
        cand = X[:, [*keep, j]]
        if np.linalg.matrix_rank(cand, tol=tol * max(1.0, np.abs(cand).max())) > len(keep):
            keep.append(j)
    return np.array(keep, dtype=int)


# --------------------------------------------------------------------------- 1. response weights
@dataclass
class ResponseWeights:
    """Inverse-probability-of-response weights for one follow-up wave.

    Attributes
    ----------
    weights : Series
        One weight per row of the long input data: the person's weight on every wave for the people who
        responded at the follow-up, 0 for the others (and for rows outside the model).
    people : DataFrame
        One row per person in the model: ``arm``, ``responded``, ``p_response``, ``weight`` (index: row
        labels of the baseline rows; no identifiers).
    coefficients : DataFrame
        The response model (``arm``, ``term``, ``estimate``, ``std_error``; CR1 by cluster when clustered).
    n_trimmed : int
        Weights capped at the trimming bound.
    trim_bound : float or None
    ess : dict
        Kish's effective sample size of the responders' weights, by arm, beside the number of responders.
    dropped : dict
        Baseline rows left out of the response model, by reason.
    warnings : list of str
    """

    weights: pd.Series
    people: pd.DataFrame
    coefficients: pd.DataFrame
    n_trimmed: int
    trim_bound: float | None
    ess: dict[str, float]
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """The weighting in two plain sentences (counts under 10 shown as ``"<10"``)."""
        resp = self.people[self.people["responded"]]
        text = (
            f"Response weights: a logistic model of responding at follow-up on baseline covariates and the "
            f"baseline score ({'separately in each arm' if self.details.get('by_arm') else 'with the arm'}"
            f"{', with team means' if self.details.get('cluster') else ''}) weights the "
            f"{format_count(len(resp))} responders to stand for the {format_count(len(self.people))} people at "
            f"baseline; weights range {resp['weight'].min():.2f}-{resp['weight'].max():.2f}."
        )
        if self.n_trimmed:
            text += f" {format_count(self.n_trimmed)} weight(s) were capped at {self.trim_bound:.2f}."
        return text


def response_weights(
    data: pd.DataFrame,
    unit: str,
    arm: str,
    wave: str,
    *,
    outcome: str,
    baseline: Any,
    follow_up: Any,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    by_arm: bool = True,
    cluster_means: bool = True,
    stabilize: bool = True,
    trim: float | None = 0.99,
    categorical: Sequence[str] = (),
) -> ResponseWeights:
    """Inverse-probability-of-response weights for a follow-up wave, from the baseline wave.

    Response (a non-missing ``outcome`` at ``follow_up``) is modelled by logistic regression on the baseline
    covariates and the baseline ``outcome``; with ``by_arm`` one model per arm (every term interacts with the
    arm), otherwise one model with the arm as a term. With a ``cluster`` and ``cluster_means`` the cluster
    (team) means of the numeric predictors are added, so that people in teams that lost many are weighted up
    (Mundlak's device); the coefficients' standard errors are CR1 by cluster. A responder's weight is
    ``P(respond | arm) / p_hat`` (stabilised) or ``1 / p_hat``; weights above the ``trim`` quantile of the
    responders' weights are capped there and counted.

    Parameters
    ----------
    data : DataFrame
        Long panel (one row per person and wave answered), as for :func:`~evaltoolkit.estimators.did.did`.
    unit, arm, wave, outcome : str
        Person, arm, wave and outcome columns.
    baseline, follow_up : scalar
        Wave labels.
    covariates : list of str
        Baseline covariate terms (``"x"``, ``"x^2"``, ``"C(x)"``), read from the baseline rows.
    cluster : str, optional
        Team column.
    by_arm, cluster_means, stabilize : bool
    trim : float or None, default 0.99
        Quantile of the responders' weights at which to cap (``None``: no trimming).
    categorical : list of str
        Numeric covariates to dummy-code.

    Returns
    -------
    ResponseWeights

    Examples
    --------
    >>> long = pd.DataFrame({"pid": [1, 1, 2, 3, 3, 4, 5, 5, 6, 6], "wave": ["pre", "post", "pre"] + ["pre", "post",
    ...     "pre", "pre", "post", "pre", "post"], "arm": [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    ...     "y": [1.0, 2.0, 3.0, 2.0, 2.5, 0.5, 1.5, 1.0, 2.5, 3.0]})
    >>> w = response_weights(long, "pid", "arm", "wave", outcome="y", baseline="pre", follow_up="post", trim=None)
    >>> w.people["responded"].tolist()
    [True, False, True, False, True, True]
    """
    cov_cols = covariate_columns(covariates)
    _require_columns(data, [unit, arm, wave, outcome, *cov_cols, *([cluster] if cluster else [])])
    if trim is not None and not 0.5 < float(trim) <= 1:
        raise DesignError("trim must be a quantile between 0.5 and 1 (e.g. 0.99), or None", field="trim")
    wide = wide_panel(data, unit, wave, outcome, baseline=baseline, follow_up=follow_up,
                      keep=[unit, arm, *cov_cols, *([cluster] if cluster else [])])  # fmt: skip
    base_index = data.index[data[wave] == baseline]
    wide.index = base_index
    dropped: dict[str, int] = {}
    use = pd.Series(True, index=wide.index)
    for col in [arm, f"{outcome}_pre", *cov_cols, *([cluster] if cluster else [])]:
        miss = use & wide[col].isna()
        if miss.any():
            dropped[f"missing {col.removesuffix('_pre') if col.endswith('_pre') else col} at baseline"] = int(
                miss.sum()
            )
            use &= ~miss
    sub = wide.loc[use]
    responded = sub[f"{outcome}_post"].notna().to_numpy()
    X, names = _response_design(sub, covariates, f"{outcome}_pre", cluster, cluster_means, categorical)
    arms = list(pd.unique(sub[arm]))
    p_hat = np.empty(len(sub))
    coef_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    groups = [(a, (sub[arm] == a).to_numpy()) for a in arms] if by_arm else [("all", np.ones(len(sub), bool))]
    if not by_arm:
        dummies = pd.get_dummies(sub[arm].astype("category"), prefix=arm, drop_first=True, dtype=float)
        X, names = np.column_stack([X, dummies.to_numpy()]), [*names, *dummies.columns]
    for label, rows in groups:
        p_hat[rows] = _fit_response(X[rows], responded[rows], names, label, sub[cluster].to_numpy()[rows]
                                    if cluster else None, coef_rows, notes)  # fmt: skip
    weights_u, n_trimmed, bound = _weights_from_scores(sub[arm].to_numpy(), responded, p_hat, stabilize, trim)
    people = pd.DataFrame({"arm": sub[arm].to_numpy(), "responded": responded, "p_response": p_hat,
                           "weight": weights_u}, index=sub.index)  # fmt: skip
    unit_w = pd.Series(weights_u, index=sub[unit].to_numpy())
    w_long = data[unit].map(unit_w).fillna(0.0).where(data[wave].isin([baseline, follow_up]), 0.0)
    ess = {}
    for a in arms:
        r = people[(people["arm"] == a) & people["responded"]]
        ess[f"{a} responders"] = float(len(r))
        ess[f"{a} effective"] = effective_sample_size(r["weight"].to_numpy())
    if n_trimmed:
        notes.append(
            f"{format_count(n_trimmed)} response weight(s) above the {trim:.0%} quantile were capped at {bound:.2f}"
        )
    if dropped:
        notes.append(
            "left out of the response model: "
            + "; ".join(f"{format_count(v)} {k}" for k, v in dropped.items())
        )
    for msg in notes:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    return ResponseWeights(
        weights=w_long.astype(float).rename("response_weight"), people=people,
        coefficients=pd.DataFrame(coef_rows), n_trimmed=n_trimmed, trim_bound=bound, ess=ess, dropped=dropped,
        warnings=notes, details={"by_arm": by_arm, "cluster": cluster, "stabilize": stabilize, "trim": trim,
                                 "terms": names, "follow_up": follow_up, "baseline": baseline},
    )  # fmt: skip


def _response_design(sub, covariates, base_col, cluster, cluster_means, categorical):
    """Constant, covariates, the baseline score and (clustered) their cluster means, collinear columns removed."""
    frame = (
        covariate_frame(sub, [*covariates], categorical=categorical, drop_first=True) if covariates else None
    )
    parts = [np.ones(len(sub))]
    names = ["const"]
    if frame is not None:
        parts.extend(frame.to_numpy(dtype=float).T)
        names.extend(frame.columns)
    parts.append(sub[base_col].to_numpy(dtype=float))
    names.append(base_col)
    X = np.column_stack(parts)
    if cluster and cluster_means:
        codes, g = encode(sub[cluster].to_numpy())
        means = _cluster_means(X[:, 1:], codes, g)
        X = np.column_stack([X, means])
        names = [*names, *(f"team mean {n}" for n in names[1:])]
    keep = _independent_columns(X)
    return X[:, keep], [names[i] for i in keep]


def _fit_response(X, y, names, label, cluster, coef_rows, notes) -> np.ndarray:
    """Logistic response model in one arm: fitted probabilities; coefficients with CR1 (or model) SEs."""
    if y.all() or not y.any():
        notes.append(
            f"everyone in arm {label!r} {'responded' if y.all() else 'was lost'}, so its weights are 1"
        )
        return np.full(len(y), 1.0 if y.all() else np.nan)
    keep = _independent_columns(X)
    Xk = X[:, keep]
    beta, cov, converged = _logit_irls(Xk, y.astype(float))
    p = expit(Xk @ beta)
    if not converged:
        notes.append(
            f"the response model in arm {label!r} did not converge (near-separation); weights are unstable"
        )
    se = np.sqrt(np.diag(cov))
    if cluster is not None:
        codes, g = encode(cluster)
        n, k = Xk.shape
        s = cluster_scores(Xk, y - p, codes, g)
        V = cov @ (s.T @ s) @ cov * (g / (g - 1)) * ((n - 1) / (n - k))
        se = np.sqrt(np.diag(V))
    for j, b, e in zip(keep, beta, se):
        coef_rows.append({"arm": label, "term": names[j], "estimate": float(b), "std_error": float(e)})
    return p


def _weights_from_scores(arms, responded, p_hat, stabilize, trim):
    """Stabilised (or plain) inverse-probability weights for responders, 0 for the others; capped at a quantile."""
    w = np.zeros(len(arms))
    for a in pd.unique(arms):
        rows = arms == a
        num = responded[rows].mean() if stabilize else 1.0
        w[rows] = np.where(responded[rows], num / p_hat[rows], 0.0)
    n_trimmed, bound = 0, None
    if trim is not None and responded.any():
        bound = float(np.quantile(w[responded], trim))
        over = responded & (w > bound)
        n_trimmed = int(over.sum())
        w[over] = bound
    return w, n_trimmed, bound


@dataclass
class WeightedEstimates:
    """``did`` and ``ancova`` on the completers, unweighted and with response weights, side by side.

    ``results`` maps ``(estimator, weighting)`` to the :class:`~evaltoolkit.results.EffectResult`;
    ``table`` has the headline rows in :data:`~evaltoolkit.results.ESTIMATE_COLUMNS` plus ``weighting``.
    """

    results: dict[tuple[str, str], EffectResult]
    weights: ResponseWeights

    @property
    def table(self) -> pd.DataFrame:
        rows = [{**r.headline_row(), "weighting": w} for (_, w), r in self.results.items()]
        return pd.DataFrame(rows, columns=[*ESTIMATE_COLUMNS, "weighting"])


def weighted_estimates(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    *,
    treated: Any,
    unit: str,
    baseline: Any,
    follow_up: Any,
    weights: ResponseWeights,
    control: Any = None,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
    vcov: str = "auto",
    estimators: Sequence[str] = ("did", "ancova"),
    seed: int | None = 20240601,
) -> WeightedEstimates:
    """The DiD and ANCOVA estimates at one follow-up without and with the response weights.

    The unweighted rows assume the people lost are like those kept (missing completely at random); the
    weighted rows assume they are like the kept people with the same baseline covariates, score and team
    (missing at random given baseline). A large gap says the conclusion leans on who was lost.

    Examples
    --------
    >>> from evaltoolkit.simulate.dgps import did_panel
    >>> long = did_panel(n_teams=40, size=10, seed=3)
    >>> lost = (long.wave == "post") & (np.random.default_rng(1).uniform(size=len(long)) < 0.3)
    >>> long = long[~lost]
    >>> rw = response_weights(long, "pid", "arm", "wave", outcome="y", baseline="baseline", follow_up="post",
    ...                       cluster="team")
    >>> est = weighted_estimates(long, "y", "arm", "wave", treated="ncs", unit="pid", baseline="baseline",
    ...                          follow_up="post", weights=rw, cluster="team")
    >>> est.table["weighting"].tolist()
    ['unweighted', 'response-weighted', 'unweighted', 'response-weighted']
    """
    if not weights.weights.index.equals(data.index):
        raise DataError("these response weights were computed for a different data frame (index differs)")
    long = data[data[wave].isin([baseline, follow_up])].assign(response_weight=weights.weights)
    results: dict[tuple[str, str], EffectResult] = {}
    wide = None
    if "ancova" in estimators:
        keep = [arm, "response_weight", *covariate_columns(covariates), *([cluster] if cluster else [])]
        wide = wide_panel(long, unit, wave, outcome, baseline=baseline, follow_up=follow_up, keep=keep)
    common = dict(
        treated=treated, control=control, covariates=covariates, cluster=cluster, vcov=vcov, seed=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvalToolkitWarning)  # each result keeps its cautions in .warnings
        for est in estimators:
            for label, w in (("unweighted", None), ("response-weighted", "response_weight")):
                if est == "did":
                    d = long if w is None else long[long[w] > 0]
                    res = did(
                        d, outcome, arm, wave, pre=baseline, post=follow_up, unit=unit, weights=w, **common
                    )
                elif est == "ancova":
                    d = wide if w is None else wide[wide[w] > 0]
                    weight = None if w is None else d[w]
                    res = ancova(
                        d, f"{outcome}_post", arm, baseline=f"{outcome}_pre", weights=weight, **common
                    )
                else:
                    raise DesignError(
                        f"estimators must be 'did' and/or 'ancova', not {est!r}", field="estimators"
                    )
                results[(est, label)] = res
    return WeightedEstimates(results, weights)


# --------------------------------------------------------------------------- 2. Lee bounds
@dataclass
class LeeBounds:
    """Lee (2009) bounds on the effect among people who would respond whatever their arm.

    Attributes
    ----------
    lower, upper : float
        The bounds (treated minus control).
    se_lower, se_upper : float
        Their standard errors (Lee 2009, Proposition 3; or the cluster bootstrap).
    ci_lower, ci_upper : float
        Imbens & Manski (2004) interval: covers the effect with probability ``1 - alpha``.
    set_ci : tuple of float
        ``(lower - z se_lower, upper + z se_upper)``: covers the whole identified set (Lee's interval).
    trim_share : float
        Share of the observed people in the trimmed arm that is trimmed: ``(s_high - s_low) / s_high``.
    trimmed_arm : label
        The arm with the higher retention.
    retention : dict
        Share observed in each arm.
    """

    lower: float
    upper: float
    se_lower: float
    se_upper: float
    ci_lower: float
    ci_upper: float
    set_ci: tuple[float, float]
    trim_share: float
    trimmed_arm: Any
    retention: dict[Any, float]
    n_obs: int
    n_clusters: int | None
    outcome: str
    method: str
    alpha: float = 0.05
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """The two bounds in :data:`~evaltoolkit.results.ESTIMATE_COLUMNS`; each row's interval is ``bound
        +/- z se``; the Imbens-Manski interval for the effect is ``ci_lower``/``ci_upper`` of the object."""
        z = stats.norm.ppf(1 - self.alpha / 2)
        rows = [
            dict(analysis="lee_bounds", outcome=self.outcome, term=t, estimate=b, std_error=s, ci_lower=b - z * s,
                 ci_upper=b + z * s, p_value=np.nan, n_obs=self.n_obs, n_clusters=self.n_clusters, method=self.method)
            for t, b, s in (("lee_lower", self.lower, self.se_lower), ("lee_upper", self.upper, self.se_upper))
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))

    def summary(self) -> str:
        """What the bounds say, in plain words."""
        side = "excludes zero" if self.ci_lower > 0 or self.ci_upper < 0 else "includes zero"
        return (
            f"{self.outcome}: if the programme only ever made people more (or only ever less) likely to respond, "
            f"the effect among people who would respond in either arm lies between {self.lower:+.3f} and "
            f"{self.upper:+.3f} (95% interval {self.ci_lower:+.3f} to {self.ci_upper:+.3f}, which {side}). "
            f"The bounds trim {self.trim_share:.1%} of the observed {self.trimmed_arm} arm, the share by which its "
            f"retention exceeds the other arm's."
        )


def lee_bounds(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    *,
    treated: Any,
    control: Any = None,
    observed: str | None = None,
    cluster: str | None = None,
    n_boot: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
) -> LeeBounds:
    """Lee (2009) trimming bounds for an effect under differential attrition.

    With retention ``s_t`` and ``s_c`` the arm with the higher retention is trimmed by ``p = (s_high -
    s_low) / s_high`` of its observed people: dropping its top ``p`` share gives the lower bound, its bottom
    ``p`` share the upper bound (Lee 2009, *Review of Economic Studies* 76:1071, Proposition 1). The cut-offs
    are the sample quantiles ``p`` and ``1 - p`` interpolated as R's ``quantile`` (type 7), and every observed
    value at or beyond the cut-off is kept, as the R package ``leebounds`` (Semenova) does. Standard errors are
    Lee's (Proposition 3: the trimmed mean's variance, the cut-off term and the error in ``p``) or, with a
    ``cluster``, the bootstrap over clusters. The interval for the effect is Imbens & Manski's (2004).

    Parameters
    ----------
    data : DataFrame
        One row per randomised person; ``outcome`` is missing (NaN) for the people lost.
    outcome, arm : str
    treated, control : scalar
    observed : str, optional
        A 0/1 column saying who was followed up (default: ``outcome`` is not missing).
    cluster : str, optional
        Team column: standard errors by the cluster bootstrap (``n_boot`` draws, ``seed``).
    alpha : float

    Returns
    -------
    LeeBounds

    Examples
    --------
    >>> df = pd.DataFrame({"arm": [1] * 5 + [0] * 5, "y": [1, 2, 3, 4, np.nan, 1, 2, 3, np.nan, np.nan]})
    >>> b = lee_bounds(df, "y", "arm", treated=1)
    >>> # by hand: retention 0.8 vs 0.6, p = 0.25; the 0.25 and 0.75 quantiles of 1..4 are 1.75 and 3.25, so the
    >>> # trimmed means are 3 (2, 3, 4) and 2 (1, 2, 3), against a control mean of 2
    >>> round(b.trim_share, 4), round(b.lower, 4), round(b.upper, 4)
    (0.25, 0.0, 1.0)
    """
    cols = [outcome, arm, *([observed] if observed else []), *([cluster] if cluster else [])]
    _require_columns(data, cols)
    if not pd.api.types.is_numeric_dtype(data[outcome]):
        raise DataError("must be numeric (a score) for Lee bounds", column=outcome)
    is_t, keep = arm_indicator(data, arm, treated, control)
    dropped = {"other arms or arm missing": int((~keep).sum())}
    if cluster:
        miss = keep & data[cluster].isna()
        dropped[f"missing {cluster}"] = int(miss.sum())
        keep &= ~miss
    sub = data.loc[keep]
    t = is_t.loc[keep].to_numpy()
    s = sub[observed].to_numpy(dtype=float) == 1 if observed else sub[outcome].notna().to_numpy()
    y = sub[outcome].to_numpy(dtype=float)
    if observed and np.isnan(y[s]).any():
        raise DataError(f"{int(np.isnan(y[s]).sum())} people marked observed have no outcome", column=outcome)
    for lab, grp in (("programme", t), ("comparison", ~t)):
        if not (s & grp).any():
            raise DataError(
                f"no one in the {lab} arm was followed up, so nothing can be bounded", column=outcome
            )
    est = _lee_point(y, s, t)
    labels = {True: treated, False: control if control is not None else sub.loc[~is_t.loc[keep], arm].iloc[0]}
    if cluster:
        se_l, se_u, g = _lee_cluster_bootstrap(y, s, t, sub[cluster].to_numpy(), n_boot, seed)
        how = f"cluster bootstrap over {g} {cluster}s ({n_boot} draws)"
    else:
        se_l, se_u = _lee_analytic_se(y, s, t, est)
        g = None
        how = "analytic SEs (Lee 2009, Prop. 3)"
    ci_l, ci_u = imbens_manski_interval(est["lower"], est["upper"], se_l, se_u, alpha)
    z = stats.norm.ppf(1 - alpha / 2)
    notes = []
    if est["p"] > 0.5:
        notes.append(
            f"retention differs so much between arms that {est['p']:.0%} of one arm is trimmed; the bounds are wide"
        )
    return LeeBounds(
        lower=est["lower"], upper=est["upper"], se_lower=se_l, se_upper=se_u, ci_lower=ci_l, ci_upper=ci_u,
        set_ci=(est["lower"] - z * se_l, est["upper"] + z * se_u), trim_share=est["p"],
        trimmed_arm=labels[est["trim_treated"]], retention={treated: est["s1"], labels[False]: est["s0"]},
        n_obs=len(sub), n_clusters=g, outcome=outcome, alpha=alpha,
        method=f"Lee (2009) trimming bounds; {how}; Imbens-Manski (2004) interval",
        dropped={k: v for k, v in dropped.items() if v}, warnings=notes,
        details={"trimmed_means": (est["mean_low"], est["mean_high"]), "cutoffs": est["cutoffs"],
                 "n_observed": {treated: int((s & t).sum()), labels[False]: int((s & ~t).sum())}},
    )  # fmt: skip


def _lee_point(y: np.ndarray, s: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    """The bounds and their ingredients (trim share, cut-offs, trimmed means)."""
    s1, s0 = s[t].mean(), s[~t].mean()
    trim_treated = s1 >= s0
    hi_arm = t if trim_treated else ~t
    p = (s1 - s0) / s1 if trim_treated else (s0 - s1) / s0
    yt = y[s & hi_arm]
    other = float(y[s & ~hi_arm].mean())
    q_low, q_high = np.quantile(yt, [p, 1 - p])  # numpy "linear" = R type 7
    mean_high = float(yt[yt >= q_low].mean())  # bottom p trimmed
    mean_low = float(yt[yt <= q_high].mean())  # top p trimmed
    if trim_treated:
        lower, upper = mean_low - other, mean_high - other
    else:
        lower, upper = other - mean_high, other - mean_low
    return dict(lower=lower, upper=upper, p=float(p), s1=float(s1), s0=float(s0), trim_treated=bool(trim_treated),
                mean_low=mean_low, mean_high=mean_high, cutoffs=(float(q_low), float(q_high)), yt=yt,
                other=y[s & ~hi_arm], n_hi=int(hi_arm.sum()), n_lo=int((~hi_arm).sum()))  # fmt: skip


def _lee_analytic_se(y, s, t, est) -> tuple[float, float]:
    """Lee (2009) Proposition 3: trimmed-mean variance + cut-off term + the error in ``p``, plus the other arm."""
    p, yt, other = est["p"], est["yt"], est["other"]
    s_hi, s_lo = (est["s1"], est["s0"]) if est["trim_treated"] else (est["s0"], est["s1"])
    var_p = (1 - p) ** 2 * ((1 - s_lo) / (s_lo * est["n_lo"]) + (1 - s_hi) / (s_hi * est["n_hi"]))
    var_other = other.var(ddof=1) / other.size
    q_low, q_high = est["cutoffs"]
    out = {}
    for name, kept, cut in (("high", yt[yt >= q_low], q_low), ("low", yt[yt <= q_high], q_high)):
        mu = kept.mean()
        v_trim = (kept.var(ddof=0) + p * (cut - mu) ** 2) / ((1 - p) * yt.size)
        out[name] = v_trim + ((cut - mu) / (1 - p)) ** 2 * var_p + var_other
    # the lower bound uses the top-trimmed mean when the programme arm is trimmed, the bottom-trimmed otherwise
    v_lower, v_upper = (out["low"], out["high"]) if est["trim_treated"] else (out["high"], out["low"])
    return math.sqrt(v_lower), math.sqrt(v_upper)


def _lee_cluster_bootstrap(y, s, t, cluster, n_boot, seed) -> tuple[float, float, int]:
    """Standard errors of both bounds from resampling whole clusters."""
    codes, g = encode(cluster)
    if g < 2:
        raise EstimationError("the cluster bootstrap needs at least two clusters", field="cluster")
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(g + 1))
    sizes = np.diff(starts)
    rng = np.random.default_rng(seed)
    draws = np.full((n_boot, 2), np.nan)
    for b in range(n_boot):
        pick = rng.integers(0, g, g)
        lengths = sizes[pick]
        first = np.repeat(starts[pick] - np.cumsum(lengths) + lengths, lengths)
        idx = order[first + np.arange(int(lengths.sum()))]
        sb, tb = s[idx], t[idx]
        if (sb & tb).any() and (sb & ~tb).any() and tb.any() and (~tb).any():
            e = _lee_point(y[idx], sb, tb)
            draws[b] = e["lower"], e["upper"]
    ok = ~np.isnan(draws[:, 0])
    if ok.sum() < 0.9 * n_boot:
        warnings.warn(f"{n_boot - int(ok.sum())} bootstrap draws had an arm with no one observed and were skipped",
                      EvalToolkitWarning, stacklevel=3)  # fmt: skip
    sd = draws[ok].std(axis=0, ddof=1)
    return float(sd[0]), float(sd[1]), g


def imbens_manski_interval(lower: float, upper: float, se_lower: float, se_upper: float,
                           alpha: float = 0.05) -> tuple[float, float]:  # fmt: skip
    """Imbens & Manski (2004, *Econometrica* 72:1845) interval for a partially identified parameter.

    ``C`` solves ``Phi(C + (upper - lower) / max(se_lower, se_upper)) - Phi(-C) = 1 - alpha``; the interval is
    ``(lower - C se_lower, upper + C se_upper)``. ``C`` runs from ``z_{1-alpha}`` (wide set) to ``z_{1-alpha/2}``
    (a point).

    Examples
    --------
    >>> lo, hi = imbens_manski_interval(0.0, 0.0, 1.0, 1.0)   # a point: the usual 95% interval
    >>> round(lo, 4), round(hi, 4)
    (-1.96, 1.96)
    """
    width = max(upper - lower, 0.0) / max(se_lower, se_upper)
    c = optimize.brentq(lambda c: stats.norm.cdf(c + width) - stats.norm.cdf(-c) - (1 - alpha), 0.0, 10.0)
    return lower - c * se_lower, upper + c * se_upper


# --------------------------------------------------------------------------- 3. multiple imputation
_METHODS = ("pmm", "norm", "logreg")


def impute_chained(
    data: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    m: int = 20,
    maxit: int = 10,
    method: dict[str, str] | None = None,
    cluster: str | None = None,
    by: str | None = None,
    donors: int = 5,
    seed: int | np.random.Generator | None = None,
) -> list[pd.DataFrame]:
    """``m`` completed copies of ``data`` by multiple imputation by chained equations (van Buuren's FCS).

    Each incomplete column is filled with random draws of its observed values, then, ``maxit`` times in turn,
    re-imputed from a model on every other column of ``columns`` (at their current values):

    * ``"pmm"`` (default for scores): predictive mean matching as mice's ``mice.impute.pmm`` (type-1 matching:
      a Bayesian draw of the regression coefficients for the people missing, their estimate for the donors;
      one of the ``donors`` closest observed people is drawn at random);
    * ``"norm"``: Bayesian linear regression (mice's ``norm``);
    * ``"logreg"`` (default for 0/1 and boolean columns): logistic regression with a normal draw of the
      coefficients from their sampling distribution (mice's ``logreg``, without its data augmentation).

    **Clustering** (``cluster``): the cluster (team) means of the other columns, recomputed from the current
    completed data, are added as predictors (the "manifest cluster means" approach, Enders, Mistler & Keller
    2016, *Psychological Methods* 21:222), so imputations keep between-team differences; no random
    intercept is fitted. ``by`` imputes separately in each group (e.g. the arm), which lets every relation
    differ between the arms, as trial guidance recommends.

    Parameters
    ----------
    data : DataFrame
    columns : list of str, optional
        The imputation model's variables (default: every numeric column but ``cluster`` and ``by``). Complete
        columns are predictors only.
    m, maxit : int
        Imputations, and iterations of the chain in each.
    method : dict, optional
        ``{column: "pmm" | "norm" | "logreg"}`` for some columns.
    cluster, by : str, optional
    donors : int
        Candidate donors for predictive mean matching.
    seed : int or Generator, optional

    Returns
    -------
    list of DataFrame
        ``m`` copies of ``data`` with the missing values of ``columns`` filled in.

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [1.1, np.nan, 2.9, 4.2, np.nan, 6.1]})
    >>> imps = impute_chained(df, m=2, seed=1)
    >>> [bool(d["y"].notna().all()) for d in imps], bool(set(imps[0]["y"]) <= {1.1, 2.9, 4.2, 6.1})
    ([True, True], True)
    """
    cols, methods = _imputation_columns(data, columns, method, cluster, by)
    if m < 1 or maxit < 1:
        raise DesignError("m and maxit must be at least 1", field="m")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    groups = (
        [np.ones(len(data), bool)]
        if by is None
        else [(data[by] == g).to_numpy() for g in pd.unique(data[by])]
    )
    if by is not None and data[by].isna().any():
        raise DataError(
            f"{int(data[by].isna().sum())} rows have no {by}; imputation by group needs it", column=by
        )
    if cluster is not None and data[cluster].isna().any():
        raise DataError(
            f"{int(data[cluster].isna().sum())} rows have no {cluster}; fill it in first", column=cluster
        )
    values = data[cols].to_numpy(dtype=float)
    out = []
    for _ in range(m):
        filled = values.copy()
        for rows in groups:
            codes = encode(data.loc[rows, cluster].to_numpy()) if cluster is not None else None
            filled[rows] = _chain(values[rows], [methods[c] for c in cols], codes, maxit, donors, rng, cols)
        done = data.copy()
        for j, c in enumerate(cols):
            if np.isnan(values[:, j]).any():
                done[c] = filled[:, j]
        out.append(done)
    return out


def _imputation_columns(data, columns, method, cluster, by):
    """The model's columns and each one's method (checked)."""
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame (one row per person)")
    skip = {cluster, by}
    cols = list(columns) if columns is not None else [
        c for c in data.columns
        if c not in skip and (pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]))
    ]  # fmt: skip
    _require_columns(data, [*cols, *([cluster] if cluster else []), *([by] if by else [])])
    methods: dict[str, str] = {}
    for c in cols:
        x = data[c]
        if not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)):
            raise DataError("must be numeric (code categories as 0/1 columns) to be imputed", column=c)
        binary = pd.api.types.is_bool_dtype(x) or set(pd.unique(x.dropna())) <= {0, 1}
        methods[c] = (method or {}).get(c, "logreg" if binary else "pmm")
        if methods[c] not in _METHODS:
            raise DesignError(
                f"imputation method for {c} must be one of {', '.join(_METHODS)}", field="method"
            )
        if x.notna().sum() < 2:
            raise DataError("has fewer than two observed values, so it cannot be imputed", column=c)
    if not any(data[c].isna().any() for c in cols):
        raise DataError("none of the columns has a missing value; there is nothing to impute")
    return cols, methods


def _chain(values, methods, codes, maxit, donors, rng, names) -> np.ndarray:
    """One imputation: random start from observed values, then ``maxit`` rounds over the incomplete columns."""
    miss = np.isnan(values)
    x = values.copy()
    todo = [j for j in range(x.shape[1]) if miss[:, j].any()]
    for j in todo:
        obs = x[~miss[:, j], j]
        x[miss[:, j], j] = rng.choice(obs, size=int(miss[:, j].sum()))
    for _ in range(maxit):
        for j in todo:
            others = np.delete(x, j, axis=1)
            pred = [np.ones((len(x), 1)), others]
            if codes is not None:
                pred.append(_cluster_means(others, *codes))
            X = np.column_stack(pred)
            ry = ~miss[:, j]
            X = X[:, _independent_columns(X[ry])]
            x[~ry, j] = _draw(methods[j], x[ry, j], X[ry], X[~ry], donors, rng, names[j])
    return x


def _draw(method, yobs, xobs, xmis, donors, rng, name) -> np.ndarray:
    """Imputed values for the missing rows of one column (mice's pmm / norm / logreg)."""
    if method == "logreg":
        beta, cov, _ = _logit_irls(xobs, yobs)
        if not np.all(np.isfinite(cov)):
            raise EstimationError("the logistic imputation model cannot be fitted (separation)", column=name)
        b_star = beta + np.linalg.cholesky(cov + 1e-12 * np.eye(len(beta))) @ rng.standard_normal(len(beta))
        return (rng.uniform(size=len(xmis)) < expit(xmis @ b_star)).astype(float)
    coef, *_ = np.linalg.lstsq(xobs, yobs, rcond=None)
    resid = yobs - xobs @ coef
    df = max(len(yobs) - xobs.shape[1], 1)
    sigma = math.sqrt(float(resid @ resid) / rng.chisquare(df))
    v = np.linalg.inv(xobs.T @ xobs)
    beta_star = coef + np.linalg.cholesky((v + v.T) / 2) @ rng.standard_normal(len(coef)) * sigma
    if method == "norm":
        return xmis @ beta_star + rng.standard_normal(len(xmis)) * sigma
    return yobs[_match(xobs @ coef, xmis @ beta_star, donors, rng)]


def _match(yhat_obs, yhat_mis, k, rng) -> np.ndarray:
    """For each recipient, one of the ``k`` donors with the nearest predicted values, at random."""
    k = min(k, len(yhat_obs))
    order = np.argsort(yhat_obs, kind="stable")
    sorted_obs = yhat_obs[order]
    pos = np.searchsorted(sorted_obs, yhat_mis)
    window = pos[:, None] + np.arange(-k, k)[None, :]
    valid = (window >= 0) & (window < len(sorted_obs))
    dist = np.where(
        valid, np.abs(sorted_obs[np.clip(window, 0, len(sorted_obs) - 1)] - yhat_mis[:, None]), np.inf
    )
    dist = dist + rng.uniform(0, 1e-12, size=dist.shape)  # random tie-breaking
    nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
    pick = nearest[np.arange(len(yhat_mis)), rng.integers(0, k, len(yhat_mis))]
    return order[np.clip(window[np.arange(len(yhat_mis)), pick], 0, len(sorted_obs) - 1)]


@dataclass
class PooledEstimate:
    """Rubin's rules for one estimate over ``m`` imputations.

    ``within`` (mean of the squared SEs), ``between`` (variance of the estimates), ``total = within + (1 +
    1/m) between``, ``riv`` (relative increase in variance), ``lambda_`` (share of the variance due to the
    missing data), ``fmi`` (fraction of missing information, as mice), ``df`` (Barnard & Rubin 1999).
    """

    estimate: float
    std_error: float
    df: float
    ci_lower: float
    ci_upper: float
    p_value: float
    within: float
    between: float
    total: float
    riv: float
    lambda_: float
    fmi: float
    m: int


def rubin_pool(
    estimates: Sequence[float],
    variances: Sequence[float],
    *,
    df_complete: float | None = None,
    alpha: float = 0.05,
) -> PooledEstimate:
    """Pool ``m`` estimates and their squared standard errors by Rubin's rules (van Buuren, *Flexible
    Imputation of Missing Data*, 2nd ed., section 2.3; Little & Rubin 2019, section 5.4).

    ``Q = mean(q)``, ``U = mean(u)``, ``B = var(q)``, ``T = U + (1 + 1/m) B``, ``lambda = (1 + 1/m) B / T``;
    the degrees of freedom are Barnard & Rubin's (1999) ``nu = nu_old nu_obs / (nu_old + nu_obs)`` with
    ``nu_old = (m - 1) / lambda^2`` and ``nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda)``, or
    ``nu_old`` when the complete-data df ``nu_com`` is infinite (``None``).

    Examples
    --------
    >>> # mice 3.15: pool.scalar(Q, U) without n: $df 44.720517452780, $fmi 0.328448926891
    >>> p = rubin_pool([1.20, 0.95, 1.41, 1.08, 1.30], [0.090, 0.085, 0.100, 0.088, 0.095])
    >>> round(p.df, 6), round(p.fmi, 6)
    (44.720517, 0.328449)
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = q.size
    if m < 2 or u.size != m:
        raise EstimationError(
            "Rubin's rules need at least two imputations, each with an estimate and a variance"
        )
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(u)) and np.all(u >= 0)):
        raise EstimationError(
            "an imputed-data analysis returned a missing or infinite estimate or standard error"
        )
    qbar, ubar, b = float(q.mean()), float(u.mean()), float(q.var(ddof=1))
    t = ubar + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / t if t > 0 else 0.0
    riv = (1 + 1 / m) * b / ubar if ubar > 0 else np.inf
    nu_old = (m - 1) / lam**2 if lam > 0 else np.inf
    if df_complete is None or not np.isfinite(df_complete):
        nu = nu_old
    else:
        nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
        nu = nu_obs if not np.isfinite(nu_old) else nu_old * nu_obs / (nu_old + nu_obs)
    se = math.sqrt(t)
    crit = stats.t.ppf(1 - alpha / 2, nu) if np.isfinite(nu) else stats.norm.ppf(1 - alpha / 2)
    p = 2 * stats.t.sf(abs(qbar) / se, nu) if se > 0 else np.nan
    fmi = (riv + 2 / (nu + 3)) / (riv + 1) if np.isfinite(nu) else lam
    return PooledEstimate(qbar, se, float(nu), qbar - crit * se, qbar + crit * se, float(p), ubar, b, t,
                          float(riv), float(lam), float(fmi), m)  # fmt: skip


def _estimate_of(result: Any) -> tuple[float, float, float | None]:
    """``(estimate, variance, df_complete)`` from an analysis' output: an EffectResult or a tuple."""
    if isinstance(result, EffectResult):
        df = result.details.get("df")
        return float(result.estimate), float(result.std_error) ** 2, None if df is None else float(df)
    if isinstance(result, tuple) and len(result) in (2, 3):
        df = result[2] if len(result) == 3 else None
        return float(result[0]), float(result[1]) ** 2, None if df is None else float(df)
    raise DesignError(
        "the analysis must return an EffectResult or (estimate, std_error[, df])", field="analysis"
    )


def _pool_analyses(frames: Sequence[pd.DataFrame], analysis: Callable[[pd.DataFrame], Any], alpha: float):
    """Run ``analysis`` on every completed frame and pool; also the per-imputation estimates and SEs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvalToolkitWarning)  # m copies of the same caution help no one
        parts = [_estimate_of(analysis(f)) for f in frames]
    dfs = [d for _, _, d in parts if d is not None]
    pooled = rubin_pool([e for e, _, _ in parts], [v for _, v, _ in parts],
                        df_complete=float(np.mean(dfs)) if dfs else None, alpha=alpha)  # fmt: skip
    return pooled, parts


def multiple_imputation(
    data: pd.DataFrame,
    analysis: Callable[[pd.DataFrame], Any],
    *,
    columns: Sequence[str] | None = None,
    outcome: str = "",
    m: int = 20,
    maxit: int = 10,
    method: dict[str, str] | None = None,
    cluster: str | None = None,
    by: str | None = None,
    seed: int | None = None,
    alpha: float = 0.05,
) -> EffectResult:
    """Impute (:func:`impute_chained`), analyse each completed data set, pool by Rubin's rules.

    Parameters
    ----------
    data : DataFrame
        Wide data, one row per randomised person.
    analysis : callable
        ``analysis(completed) -> EffectResult`` (its ``details["df"]`` is the complete-data df) or
        ``(estimate, std_error[, df])``; :func:`ancova_analysis` and :func:`did_analysis` make one.
    columns, m, maxit, method, cluster, by, seed
        As :func:`impute_chained`.
    outcome : str
        Label for the result's ``outcome``.

    Returns
    -------
    EffectResult
        ``analysis="multiple_imputation"``; ``details`` holds the :class:`PooledEstimate`, the estimates and
        SEs of each imputation, and the number of values imputed in each column.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"arm": np.repeat([0, 1], 100), "pre": rng.normal(size=200)})
    >>> df["post"] = 0.5 * df.pre + 0.4 * df.arm + rng.normal(size=200)
    >>> df.loc[rng.uniform(size=200) < 0.3, "post"] = np.nan
    >>> res = multiple_imputation(df, ancova_analysis("post", "arm", treated=1, baseline="pre", vcov="classical"),
    ...                           m=5, maxit=5, by="arm", seed=1)
    >>> res.term, res.details["n_imputed"]
    ('treatment', {'post': 53})
    """
    frames = impute_chained(data, columns, m=m, maxit=maxit, method=method, cluster=cluster, by=by, seed=seed)
    pooled, parts = _pool_analyses(frames, analysis, alpha)
    n_imp = {
        c: int(data[c].isna().sum()) for c in (columns or data.columns) if c in data and data[c].isna().any()
    }
    return _pooled_result(pooled, parts, outcome, len(data), cluster, data, n_imp, m, by)


def _pooled_result(pooled, parts, outcome, n, cluster, data, n_imp, m, by) -> EffectResult:
    g = int(data[cluster].nunique()) if cluster else None
    method = (f"multiple imputation by chained equations (m = {m}{', team means as predictors' if cluster else ''}"
              f"{f', separately by {by}' if by else ''}); Rubin's rules, Barnard-Rubin df {pooled.df:.1f}")  # fmt: skip
    return EffectResult(
        analysis="multiple_imputation", outcome=outcome, term="treatment", estimate=pooled.estimate,
        std_error=pooled.std_error, ci_lower=pooled.ci_lower, ci_upper=pooled.ci_upper, p_value=pooled.p_value,
        n_obs=n, n_clusters=g, method=method,
        details={"pooled": pooled, "df": pooled.df, "fmi": pooled.fmi, "n_imputed": n_imp,
                 "estimates": [e for e, _, _ in parts], "std_errors": [math.sqrt(v) for _, v, _ in parts]},
    )  # fmt: skip


def ancova_analysis(outcome: str, arm: str, *, treated: Any, baseline: str | None = None,
                    covariates: Sequence[str] = (), cluster: str | None = None, vcov: str = "auto",
                    seed: int | None = 20240601) -> Callable[[pd.DataFrame], EffectResult]:  # fmt: skip
    """An ``analysis`` for :func:`multiple_imputation`: :func:`~evaltoolkit.estimators.ancova.ancova` on the
    completed wide data.

    Examples
    --------
    >>> f = ancova_analysis("post", "arm", treated=1, baseline="pre")
    >>> callable(f)
    True
    """

    def run(df: pd.DataFrame) -> EffectResult:
        return ancova(df, outcome, arm, treated=treated, baseline=baseline, covariates=covariates,
                      cluster=cluster, vcov=vcov, seed=seed)  # fmt: skip

    return run


def did_analysis(pre: str, post: str, arm: str, *, treated: Any, cluster: str | None = None, vcov: str = "auto",
                 seed: int | None = None) -> Callable[[pd.DataFrame], EffectResult]:  # fmt: skip
    """An ``analysis`` for :func:`multiple_imputation`: the completed wide data back to two waves and
    :func:`~evaltoolkit.estimators.did.did` with person fixed effects.

    Examples
    --------
    >>> wide = pd.DataFrame({"arm": [1, 1, 0, 0], "y_pre": [1.0, 2, 1, 2], "y_post": [2.5, 3.0, 1.5, 2.0]})
    >>> round(did_analysis("y_pre", "y_post", "arm", treated=1, vcov="HC1")(wide).estimate, 3)
    1.0
    """

    def run(df: pd.DataFrame) -> EffectResult:
        keep = [arm, *([cluster] if cluster else [])]
        people = df[keep].reset_index(drop=True).assign(__unit=np.arange(len(df)))
        long = pd.concat([people.assign(__wave="pre", __y=df[pre].to_numpy()),
                          people.assign(__wave="post", __y=df[post].to_numpy())], ignore_index=True)  # fmt: skip
        res = did(long, "__y", arm, "__wave", treated=treated, pre="pre", post="post", unit="__unit",
                  cluster=cluster, vcov=vcov, seed=seed)  # fmt: skip
        return res

    return run


# --------------------------------------------------------------------------- 4. tipping point
@dataclass
class TippingPoint:
    """A delta-adjusted sensitivity analysis.

    Attributes
    ----------
    table : DataFrame
        One row per ``delta``: the pooled ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``,
        ``p_value``, ``df`` and whether the interval excludes zero.
    tipping_delta : float or None
        The ``delta`` nearest 0 at which the pooled interval reaches zero (the conclusion changes); ``None``
        when it does not happen inside the grid.
    shift : str
        Whose imputed scores were shifted (``"treated"``, ``"control"`` or ``"both"``).
    """

    table: pd.DataFrame
    tipping_delta: float | None
    shift: str
    outcome: str
    treated: Any
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """The tipping point in one sentence."""
        row0 = self.table.loc[self.table["delta"].abs().idxmin()]
        who = {"treated": f"the {self.treated} arm's", "control": "the comparison arm's", "both": "every"}[
            self.shift
        ]
        if self.tipping_delta is None:
            return (f"{self.outcome}: the conclusion at delta = 0 (interval {row0.ci_lower:+.3f} to "
                    f"{row0.ci_upper:+.3f}) "
                    f"does not change anywhere in the delta range tried.")  # fmt: skip
        direction = "less" if self.tipping_delta < 0 else "more"
        return (
            f"{self.outcome}: the conclusion holds unless {who} non-completers changed at least "
            f"{abs(self.tipping_delta):.3g} points {direction} than completers like them (the pooled interval "
            f"reaches zero at delta = {self.tipping_delta:+.3g})."
        )


def tipping_point(
    data: pd.DataFrame,
    analysis: Callable[[pd.DataFrame], Any],
    *,
    outcome: str,
    arm: str,
    treated: Any,
    deltas: Sequence[float] | None = None,
    shift: str = "treated",
    columns: Sequence[str] | None = None,
    m: int = 20,
    maxit: int = 10,
    method: dict[str, str] | None = None,
    cluster: str | None = None,
    by: str | None = None,
    seed: int | None = None,
    alpha: float = 0.05,
) -> TippingPoint:
    """Delta-adjusted multiple imputation: how different would the people lost have to be to change the answer?

    The data are imputed once under MAR (:func:`impute_chained`); for each ``delta`` the imputed values of
    ``outcome`` of the non-completers in the shifted arm(s) are moved by ``delta``, every completed data set
    is analysed and the results pooled (:func:`rubin_pool`). The tipping value is found where the pooled
    interval's bound nearest zero crosses zero: bracketed by the grid and then solved with Brent's method on
    the same imputations.

    Parameters
    ----------
    data : DataFrame
        Wide data; ``outcome`` is the follow-up score (NaN for non-completers).
    analysis : callable
        As :func:`multiple_imputation`.
    outcome, arm, treated
    deltas : list of float, optional
        Default: 21 values from -1 to +1 SD of the observed ``outcome`` (0 included).
    shift : {"treated", "control", "both"}
    columns, m, maxit, method, cluster, by, seed, alpha
        As :func:`impute_chained`.

    Returns
    -------
    TippingPoint

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> df = pd.DataFrame({"arm": np.repeat([0, 1], 150), "pre": rng.normal(size=300)})
    >>> df["post"] = 0.5 * df.pre + 0.5 * df.arm + rng.normal(size=300)
    >>> df.loc[rng.uniform(size=300) < 0.3, "post"] = np.nan
    >>> tp = tipping_point(df, ancova_analysis("post", "arm", treated=1, baseline="pre", vcov="classical"),
    ...                    outcome="post", arm="arm", treated=1, m=5, maxit=5, by="arm", seed=3)
    >>> bool(tp.tipping_delta < 0)
    True
    """
    if shift not in ("treated", "control", "both"):
        raise DesignError("shift must be 'treated', 'control' or 'both'", field="shift")
    _require_columns(data, [outcome, arm])
    missing = data[outcome].isna().to_numpy()
    is_t = (data[arm] == treated).to_numpy()
    rows = missing & {"treated": is_t, "control": ~is_t, "both": np.ones_like(is_t)}[shift]
    if not rows.any():
        raise DataError(
            f"no non-completers in the shifted arm ({shift}), so there is nothing to shift", column=outcome
        )
    if deltas is None:
        sd = float(data[outcome].std())
        deltas = np.round(np.linspace(-1, 1, 21) * sd, 10)
    grid = np.unique(np.append(np.asarray(deltas, dtype=float), 0.0))
    frames = impute_chained(data, columns, m=m, maxit=maxit, method=method, cluster=cluster, by=by, seed=seed)
    col = data.columns.get_loc(outcome)

    def pooled_at(delta: float) -> PooledEstimate:
        shifted = []
        for f in frames:
            g = f.copy()
            g.iloc[np.flatnonzero(rows), col] = f[outcome].to_numpy()[rows] + delta
            shifted.append(g)
        return _pool_analyses(shifted, analysis, alpha)[0]

    table = pd.DataFrame([{"delta": d, **_pooled_row(pooled_at(d))} for d in grid])
    tip = _tipping(table, pooled_at)
    return TippingPoint(table=table, tipping_delta=tip, shift=shift, outcome=outcome, treated=treated,
                        details={"m": m, "n_shifted": int(rows.sum()), "alpha": alpha})  # fmt: skip


def _pooled_row(p: PooledEstimate) -> dict[str, Any]:
    return {"estimate": p.estimate, "std_error": p.std_error, "ci_lower": p.ci_lower, "ci_upper": p.ci_upper,
            "p_value": p.p_value, "df": p.df, "excludes_zero": bool(p.ci_lower > 0 or p.ci_upper < 0)}  # fmt: skip


def _tipping(table: pd.DataFrame, pooled_at: Callable[[float], PooledEstimate]) -> float | None:
    """The delta nearest 0 at which a pooled interval bound crosses zero (grid bracket, then Brent)."""
    d = table["delta"].to_numpy()
    candidates = []
    for bound in ("ci_lower", "ci_upper"):
        v = table[bound].to_numpy()
        for i in np.flatnonzero(np.sign(v[:-1]) * np.sign(v[1:]) < 0):
            f = lambda x, b=bound: getattr(pooled_at(x), b)  # noqa: E731
            candidates.append(optimize.brentq(f, d[i], d[i + 1], xtol=1e-10))
        candidates.extend(d[v == 0].tolist())
    if not candidates:
        return None
    return float(min(candidates, key=abs))
