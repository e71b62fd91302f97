"""Bayesian hierarchical difference-in-differences with partial pooling across sites and teams.

:func:`bayes_did` answers the funder's question ("how likely is it that the programme improved
attitudes?") for a two-wave panel (baseline and post) in which people sit in teams within sites. It
fits a multilevel model with **varying intercepts and varying treatment effects by site and team**
(integrated out exactly), handles person-level heterogeneity exactly, states its priors, samples with NUTS
(nutpie by default) and returns the ArviZ ``InferenceData`` with a plain summary: posterior mean and
median, 95% highest-density interval (HDI), P(effect > 0), P(|effect| < ROPE) and partially pooled
site-level effects. :func:`prior_sensitivity` refits under the weakly informative default, the
"contact literature" prior (Paluck, Green & Green 2019) and a sceptical prior, and says in one
sentence how much the conclusion rests on the prior.

The model
---------
For person *i* in team *j* of site *s*, arm ``T_i`` (1 = treated) and waves *t* = 0, 1, the long-form
model that ``bambi``/``lme4`` users would write is::

    y_it = a + b T_i + c post_t + δ T_i post_t + u_s + u_j + v_i
           + (α_s + α_j) post_t + (δ_s + δ_j) T_i post_t + ε_it,      ε_it ~ N(0, σ²_ε)

i.e. ``y ~ treat*post + (1 + post + treat:post | site) + (1 + post + treat:post | team) + (1 | person)``
with independent random effects. **Within-person differencing** (the change score
``d_i = y_i1 - y_i0``) removes every level (``a``, ``b``, ``u_s``, ``u_j`` and the person intercept
``v_i``) exactly, leaving::

    d_i = c + α_s + α_j + (δ + δ_s + δ_j) T_i + x_i'β + e_i,           e_i ~ N(0, σ² = 2σ²_ε)

so the "varying intercepts" of the change-score model are varying *trends* (the control arm's change
may differ by site and team) and the varying slopes on ``T`` are the varying treatment effects. For
a balanced two-wave panel the likelihood of the long model factorises into this within-person part
and a between-person part (person sums) that depends on ``b``, the level intercepts and the person
variance; because ``b`` and the level intercepts are unrestricted there, the between part carries no
information about ``δ`` (the classical result that the random- and fixed-effects DiD estimators of
``δ`` coincide in a balanced two-period panel). Inference about the programme effect from the
change scores is therefore the same as from the person-random-intercept model, without sampling
5,000 person effects. People observed at only one wave carry no within-person information; they are
excluded, counted in ``details["n_single_wave"]`` and reported in a warning.

**Sufficient statistics.** The Gaussian change-score likelihood depends on the data only through
each cell's (team × arm) size ``n_c`` and mean change ``m_c``, the pooled within-cell residual sum of
squares and, with covariates, the within-cell regression of change on the covariates. Exactly::

    Σ_i log N(d_i | μ_c(i) + x_i'β, σ)
      = Σ_c log N(m_c | μ_c + x̄_c'β, σ/√n_c) + log N_k(β̂_w | β, σ² S_w⁻¹)
        + log Gamma(SSR_w | (N - C - k)/2, rate = 1/(2σ²)) + constant,

where ``S_w`` is the within-cell cross-product matrix of the covariates, ``β̂_w`` the within-cell OLS
slope and ``SSR_w`` its residual sum of squares. The sampler therefore evaluates ~200 cell terms
instead of 10,000 observations.

**Parameterisation: every level integrated out (the default, ``parameterisation="marginal"``).**
Whether a level should be sampled centred (informative data: many people per cluster, a
well-identified SD) or non-centred (little data per cluster) stops mattering for a Gaussian model:
given β, σ and the cluster SDs, the cell means, the population trend and effect ``(c, δ)`` and every
cluster's deviations are jointly Gaussian on the cluster tree, so the deviations and ``(c, δ)`` are
**integrated out exactly** at every level, whatever its information. One upward pass over the tree
(each cluster's evidence in information form, integrated over its deviation into its parent; the
root is ``(c, δ)`` with its prior) gives the marginal likelihood, and the gradient follows from
Fisher's identity with the moments of one downward pass - O(cells) work, no matrix bigger than
2 x 2. NUTS then samples only β, log σ and two SDs per level, each SD as ``scale · |z|`` with
z ~ N(0, 1) (exactly the half-normal prior; the log of a half-normal SD has a double-exponential
right tail whose curvature made the sampler diverge when, with three schools, the posterior of the
SD is its prior). Afterwards ``(c, δ)`` and the deviations are drawn from their exact conditional
distribution for every draw (downward sampling), and reported as the non-centred model's ``z``.
There is no funnel (deviations vs SDs), no ridge (δ vs the mean deviation) and no funnel between δ
and the SDs that set its uncertainty: with three schools the previous model diverged in every fit
(``benchmarks/bench_bayes_few_clusters.py``, ``docs/bayes.md``).

``parameterisation="noncentred"`` keeps the previous model, which samples the deviations: with
``z`` standard normal, one standard-normal deviation per one-arm cluster scaled by
``sqrt(σ²_trend + σ²_effect)`` (treated-only) or ``σ_trend`` (control-only), the exact marginal of
the sum its data see, and the effect sampled as ``u = δ + Σ_level σ_effect · mean(z_effect)`` (a
shear with unit Jacobian) to remove the ridge between ``δ`` and the mean of the ``z``.
``sampler="pymc"`` builds that non-centred model in PyMC (a slower, independent cross-check).

Priors (standardised scale: outcome divided by its baseline SD, ``sd_y``)
------------------------------------------------------------------------
* effect ``δ``: the chosen prior (:func:`evaltoolkit.estimators.bayes.priors.get_prior`, given on the outcome scale);
* mean change in the control arm ``c``: Normal(0, 2.5);
* covariate slopes (per covariate SD): Normal(0, 1);
* SD of person change scores ``σ``: Exponential(1);
* SDs of the varying trends and varying effects at every level: Half-Normal(``hyper_scale`` = 0.1141),
  on the ICC scale: a cluster SD σ stands for the share ICC = σ² of the baseline variance, and the
  prior puts 95% of its mass below ICC 0.05 (σ 0.224), median ICC 0.006 (σ 0.077), from published
  ICCs of attitude, social-emotional and cohesion outcomes in schools and neighbourhoods
  (:func:`evaltoolkit.estimators.bayes.priors.icc_prior`, :data:`~evaltoolkit.estimators.bayes.priors.CLUSTER_ICC_SOURCES`).

The sampler (``sampler="nutpie"``) runs nutpie's NUTS on the hand-written log density with its
analytic gradient (numba-compiled).

Examples
--------
>>> from evaltoolkit.estimators.bayes.did import bayes_did
>>> from evaltoolkit.simulate.dgps import simulate_panel
>>> df = simulate_panel(n_sites=4, teams_per_site=4, people_per_team=20, effect=0.8, seed=1)
>>> res = bayes_did(df, "y", "arm", "wave", "pid", treated="treated", draws=300, chains=2, seed=1)
>>> bool(res.std_error <= 0.8 / 3)  # posterior SD (~0.14) at most a third of the effect: informative
True
>>> bool(abs(res.estimate - 0.8) < 4 * res.std_error)  # the true effect lies well inside, for any seed
True
>>> res.p_value != res.p_value  # p-value is NaN by design
True
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning, file_row
from evaltoolkit.estimators.balance import resolve_control
from evaltoolkit.estimators.bayes.priors import CLUSTER_ICC_UPPER
from evaltoolkit.inference.policy import BAYES_FEW_TOP_CLUSTERS
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult

__all__ = [
    "BayesDiDResult",
    "PriorSensitivityResult",
    "bayes_did",
    "convergence_stats",
    "diagnose",
    "hdi",
    "prior_sensitivity",
]

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere

#: Half-Normal scale of the SDs of varying trends and effects (standardised units), on the ICC scale: 95% of
#: the prior below an SD of sqrt(0.05) = 0.224 (``priors.icc_prior``; it was 0.5 until 0.2)
HYPER_SCALE = math.sqrt(CLUSTER_ICC_UPPER) / 1.959963984540054
#: Normal SD of the mean change in the control arm (standardised units)
TREND_PRIOR_SD = 2.5
#: Exponential rate of the SD of person change scores (standardised units)
SIGMA_RATE = 1.0
#: R-hat above this is a convergence problem (Vehtari et al. 2021)
RHAT_MAX = 1.01
#: E-BFMI below this signals poor exploration of the energy distribution (Betancourt 2016)
BFMI_MIN = 0.3
#: ESS below this many per chain is too few for stable intervals (Vehtari et al. 2021: 100 per chain)
ESS_PER_CHAIN = 100
#: sample the population trend / effect shifted by the mean cluster deviation (see the log density)
SHIFT = (False, True)
#: prior names compared by :func:`prior_sensitivity`
SENSITIVITY_PRIORS = ("default", "contact", "sceptical")


# --------------------------------------------------------------------------------------------------
# small numeric helpers
# --------------------------------------------------------------------------------------------------
def hdi(x: np.ndarray, prob: float = 0.95) -> tuple[float, float]:
    """Highest-density interval of a sample (the shortest interval holding ``prob`` of the draws).

    Parameters
    ----------
    x : array-like
        Posterior draws (flattened).
    prob : float
        Interval probability.

    Returns
    -------
    (float, float)

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = hdi(np.random.default_rng(0).normal(size=200_000))
    >>> bool(abs(hi - lo - 3.92) < 0.04)  # the width is precise (SD ~0.008 over seeds) ...
    True
    >>> bool(abs(lo + 1.96) < 0.08 and abs(hi - 1.96) < 0.08)  # ... the ends less so (SD ~0.018)
    True
    """
    s = np.sort(np.asarray(x, dtype=float).ravel())
    n = s.size
    if n == 0:
        return (math.nan, math.nan)
    k = max(1, min(n - 1, math.floor(prob * n)))
    widths = s[k:] - s[: n - k]
    i = int(np.argmin(widths))
    return float(s[i]), float(s[i + k])


def _check_normal(p: Any) -> None:
    dist = getattr(p, "distribution", "normal")
    if dist != "normal":
        raise DesignError(
            f"the effect prior must be a normal prior, but '{getattr(p, 'name', p)}' is {dist} "
            "(half-distributions are for standard deviations)",
            field="prior",
        )


def _resolve_prior(prior: Any, sd_y: float) -> tuple[str, float, float]:
    """(name, mu, sigma) of the effect prior on the outcome scale."""
    if isinstance(prior, str):
        try:
            from evaltoolkit.estimators.bayes.priors import get_prior
        except ImportError:  # pragma: no cover - the priors module ships with the package
            if prior != "default":
                raise DesignError(
                    f"prior '{prior}' needs evaltoolkit.estimators.bayes.priors, which is not available",
                    field="prior",
                ) from None
            return ("default", 0.0, float(sd_y))
        p = get_prior(prior, outcome_sd=sd_y)
        _check_normal(p)
        return (str(getattr(p, "name", prior)), float(p.mu), float(p.sigma))
    if hasattr(prior, "mu") and hasattr(prior, "sigma"):
        _check_normal(prior)
        return (str(getattr(prior, "name", "custom")), float(prior.mu), float(prior.sigma))
    if isinstance(prior, Sequence) and len(prior) == 2:
        mu, sigma = (float(v) for v in prior)
        return ("custom", mu, sigma)
    raise DesignError(
        "prior must be a name ('default', 'contact', 'sceptical'), a Prior object with mu and sigma, "
        f"or a (mu, sigma) pair on the outcome scale; got {prior!r}",
        field="prior",
    )


# --------------------------------------------------------------------------------------------------
# data preparation: long panel -> one row per person with the change score
# --------------------------------------------------------------------------------------------------
def _as_tuple(x: str | Sequence[str] | None) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def _check_change_score_columns(data, outcome, arm, wave, unit, groups, covariates, pre, post) -> list[str]:
    """Column roles, presence and the two waves; returns the columns used."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for role, col in [("outcome", outcome), ("arm", arm), ("wave", wave), ("unit", unit)]:
        if not isinstance(col, str):
            raise DesignError(f"{role} must be a column name (str), got {col!r}", field=role)
    names = [outcome, arm, wave, unit, *groups, *covariates]
    if len(set(names)) != len(names):
        raise DesignError(f"the same column is used for two roles: {names}", field="groups")
    for col in names:
        if col not in data.columns:
            raise DataError(f"column not found (available: {', '.join(map(str, data.columns))})", column=col)
    waves_present = set(data[wave].dropna().unique())
    for label, role in [(pre, "pre"), (post, "post")]:
        if label not in waves_present:
            raise DataError(
                f"{role} wave {label!r} does not occur (waves present: {sorted(map(str, waves_present))})",
                column=wave,
            )
    if pre == post:
        raise DesignError("pre and post must be different waves", field="post")
    return names


def _change_scores(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    unit: str,
    groups: tuple[str, ...],
    covariates: tuple[str, ...],
    treated: Any,
    control: Any,
    pre: Any,
    post: Any,
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """One row per person with both waves: groups, ``_T``, ``_d`` (change), ``_y0``, covariates."""
    names = _check_change_score_columns(data, outcome, arm, wave, unit, groups, covariates, pre, post)
    warns: list[str] = []
    counts: dict[str, Any] = {"n_rows": len(data)}
    in_waves = data[wave].isin([pre, post])
    counts["n_other_wave_rows"] = int((~in_waves).sum())
    df = data.loc[in_waves, names].copy()

    y = pd.to_numeric(df[outcome], errors="coerce")
    bad = y.isna() & df[outcome].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"non-numeric value {df[outcome].iloc[i]!r}", column=outcome, row=int(df.index[i]))
    df[outcome] = y
    miss = df[[outcome, arm, unit, *groups, *covariates]].isna()
    n_missing = int(miss.any(axis=1).sum())
    counts["n_missing_rows"] = n_missing
    if n_missing:
        per = {c: int(v) for c, v in miss.sum().items() if v}
        warns.append(
            f"{n_missing} row(s) with a missing value were excluded ({', '.join(f'{k}: {v}' for k, v in per.items())})."
        )
        df = df.loc[~miss.any(axis=1)]

    control = resolve_control(df, arm, treated, control)
    other_arm = ~df[arm].isin([treated, control])
    counts["n_other_arm_rows"] = int(other_arm.sum())
    if other_arm.any():
        warns.append(
            f"{int(other_arm.sum())} row(s) in arms other than {treated!r} and {control!r} were excluded."
        )
        df = df.loc[~other_arm]

    dup = df.duplicated([unit, wave], keep="first")
    if dup.any():
        i = df.index[int(np.flatnonzero(dup.to_numpy())[0])]
        raise DataError(
            f"a person appears twice at wave {df.at[i, wave]!r}; each person needs one row per wave",
            column=unit,
            row=file_row(df.index, int(np.flatnonzero(dup.to_numpy())[0])),
        )
    a = df.loc[df[wave] == pre].set_index(unit)
    b = df.loc[df[wave] == post].set_index(unit)
    both = a.index.intersection(b.index)
    n_single = int(len(a.index.union(b.index)) - len(both))
    counts["n_single_wave"] = n_single
    if n_single:
        warns.append(
            f"{n_single} person(s) answered only one of the two waves; they carry no within-person "
            "information and were excluded from the change-score model."
        )
    a, b = a.loc[both], b.loc[both]
    for col in [arm, *groups]:
        differs = a[col].to_numpy() != b[col].to_numpy()
        if differs.any():
            who = both[int(np.flatnonzero(differs)[0])]
            pos = int(np.flatnonzero((df[unit] == who).to_numpy() & (df[wave] == post).to_numpy())[0])
            raise DataError(
                f"a person's {col} changes between {pre!r} and {post!r} ({a.at[who, col]!r}, then "
                f"{b.at[who, col]!r}); arm and groups must not change between waves",
                column=col,
                row=file_row(df.index, pos),
            )
    out = pd.DataFrame({unit: both.to_numpy()})
    for col in groups:
        out[col] = a[col].to_numpy()
    out["_T"] = (a[arm].to_numpy() == treated).astype(float)
    out["_y0"] = a[outcome].to_numpy(dtype=float)
    out["_d"] = b[outcome].to_numpy(dtype=float) - out["_y0"].to_numpy()
    for col in covariates:
        x = pd.to_numeric(a[col], errors="coerce")
        if x.isna().any():
            raise DataError("covariates must be numeric (dummy-code categories first)", column=col)
        out[col] = x.to_numpy(dtype=float)
    counts["n_people"] = len(out)
    counts["n_obs"] = 2 * len(out)
    counts["n_dropped"] = int(counts["n_missing_rows"] + counts["n_other_arm_rows"] + n_single)
    counts["dropped"] = {
        "missing values": int(counts["n_missing_rows"]),
        "other arms": int(counts["n_other_arm_rows"]),
        "answered only one wave": n_single,
    }
    counts["treated"], counts["control"] = treated, control
    if out["_T"].sum() == 0 or out["_T"].sum() == len(out):
        which = "treated" if out["_T"].sum() == 0 else "control"
        raise DesignError(f"no {which} people have both waves; a DiD needs both arms", field="arm")
    if len(out) < 4:
        raise EstimationError(f"only {len(out)} people have both waves; far too few to fit a model")
    return out, counts, warns


# --------------------------------------------------------------------------------------------------
# sufficient statistics and the log density
# --------------------------------------------------------------------------------------------------
@dataclass
class _Level:
    name: str
    labels: list[str]  # cluster labels (nested labels joined by '/')
    cell_cluster: np.ndarray  # cluster index of every cell
    kind: np.ndarray  # per cluster: 0 control only, 1 treated only, 2 both arms
    both_pos: np.ndarray  # per cluster: position in z_effect (or -1)
    parent: np.ndarray | None  # per cluster: index of the parent cluster one level up

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def n_both(self) -> int:
        return int((self.kind == 2).sum())


@dataclass
class _Stats:
    n: np.ndarray  # people per cell
    m: np.ndarray  # mean standardised change per cell
    T: np.ndarray  # treated indicator per cell
    xbar: np.ndarray  # cell means of standardised, centred covariates (C x k)
    ssr: float  # pooled within-cell residual SS (standardised)
    bhat: np.ndarray  # within-cell slope (k)
    S: np.ndarray  # within-cell cross-products (k x k)
    N: int
    levels: list[_Level]
    cell_of_person: np.ndarray
    sd_y: float
    x_mean: np.ndarray
    x_sd: np.ndarray

    @property
    def k(self) -> int:
        return self.xbar.shape[1]


def _sufficient_stats(cs: pd.DataFrame, groups: tuple[str, ...], covariates: tuple[str, ...]) -> _Stats:
    sd_y = float(np.std(cs["_y0"].to_numpy(), ddof=1))
    if not np.isfinite(sd_y) or sd_y <= 0:
        raise EstimationError("the outcome has no variation at baseline; cannot standardise it")
    d = cs["_d"].to_numpy() / sd_y
    T = cs["_T"].to_numpy()
    N = len(cs)
    X = cs[list(covariates)].to_numpy(dtype=float) if covariates else np.zeros((N, 0))
    x_mean = X.mean(axis=0)
    x_sd = X.std(axis=0, ddof=1) if N > 1 else np.ones(X.shape[1])
    for j, col in enumerate(covariates):
        if not np.isfinite(x_sd[j]) or x_sd[j] <= 0:
            raise DataError("covariate has no variation among the people analysed", column=col)
    Xs = (X - x_mean) / np.where(x_sd > 0, x_sd, 1.0)
    keys = [cs[g].astype(str).to_numpy() for g in groups]
    # cells: innermost cluster x arm
    path = (
        np.array(["/".join(t) for t in zip(*keys)], dtype=object) if groups else np.full(N, "", dtype=object)
    )
    cell_key = np.char.add(path.astype(str), np.where(T > 0, "|1", "|0"))
    cell_codes, cell_uniques = pd.factorize(cell_key, sort=True)
    C = len(cell_uniques)
    n = np.bincount(cell_codes, minlength=C).astype(float)
    m = np.bincount(cell_codes, d, minlength=C) / n
    Tc = np.bincount(cell_codes, T, minlength=C) / n
    xbar = np.zeros((C, Xs.shape[1]))
    for j in range(Xs.shape[1]):
        xbar[:, j] = np.bincount(cell_codes, Xs[:, j], minlength=C) / n
    dw = d - m[cell_codes]
    Xw = Xs - xbar[cell_codes]
    k = Xs.shape[1]
    df_w = N - C - k
    if df_w < 1:
        raise EstimationError(
            f"{N} people in {C} team-by-arm cells with {k} covariate(s) leave no within-cell degrees of "
            "freedom to estimate the person-level variation; use fewer groups or covariates"
        )
    if k:
        S = Xw.T @ Xw
        if np.linalg.matrix_rank(S) < k:
            raise DataError(
                "covariates are collinear (or constant) within team-by-arm cells: " + ", ".join(covariates),
                column=covariates[0],
            )
        bhat = np.linalg.solve(S, Xw.T @ dw)
        ssr = float(dw @ dw - bhat @ (Xw.T @ dw))
    else:
        S, bhat = np.zeros((0, 0)), np.zeros(0)
        ssr = float(dw @ dw)
    levels: list[_Level] = []
    prev_codes = None
    for li, g in enumerate(groups):
        lab = np.array(["/".join(t) for t in zip(*keys[: li + 1])], dtype=object)
        codes, uniq = pd.factorize(lab, sort=True)
        K = len(uniq)
        cell_cluster = np.zeros(C, dtype=np.int64)
        cell_cluster[cell_codes] = codes
        has_t = np.bincount(codes, T, minlength=K) > 0
        has_c = np.bincount(codes, 1 - T, minlength=K) > 0
        kind = np.where(has_t & has_c, 2, np.where(has_t, 1, 0))
        both_pos = np.full(K, -1, dtype=np.int64)
        both_pos[kind == 2] = np.arange(int((kind == 2).sum()))
        parent = None
        if prev_codes is not None:
            parent = np.zeros(K, dtype=np.int64)
            parent[codes] = prev_codes
        levels.append(_Level(g, [str(u) for u in uniq], cell_cluster, kind, both_pos, parent))
        prev_codes = codes
    return _Stats(n, m, Tc, xbar, ssr, bhat, S, N, levels, cell_codes, sd_y, x_mean, x_sd)


def _logp_grad_kernel(x, grad, fd, idx):  # pragma: no cover - compiled by numba
    """Log posterior of the change-score model and its gradient (see :class:`_DiDDensity`).

    Data are packed into one float array ``fd`` and one integer array ``idx`` (see
    :meth:`_DiDDensity._pack`) because numba's per-call dispatch cost grows with the number of
    arguments. Written as plain loops so numba can compile it; it also runs (slowly) as Python,
    which the tests check against finite differences.
    """
    C = idx[0]
    k = idx[1]
    L = idx[2]
    m = fd[0:C]
    n = fd[C : 2 * C]
    T = fd[2 * C : 3 * C]
    xbar = fd[3 * C : 3 * C + C * k].reshape((C, k))
    o = 3 * C + C * k
    ssr = fd[o]
    bhat = fd[o + 1 : o + 1 + k]
    S = fd[o + 1 + k : o + 1 + k + k * k].reshape((k, k))
    o = o + 1 + k + k * k
    N = fd[o]
    pmu = fd[o + 1]
    psd = fd[o + 2]
    h2 = fd[o + 3]
    trend_sd = fd[o + 4]
    sig_rate = fd[o + 5]
    shift_c = fd[o + 6] > 0
    shift_d = fd[o + 7] > 0
    cc = idx[3 : 3 + L * C].reshape((L, C))
    o = 3 + L * C
    koff = idx[o : o + L + 1]
    poff = idx[o + L + 1 : o + 2 * L + 1]
    nkt = koff[L]
    kinds = idx[o + 2 * L + 1 : o + 2 * L + 1 + nkt]
    bpos = idx[o + 2 * L + 1 + nkt : o + 2 * L + 1 + 2 * nkt]
    for j in range(x.shape[0]):
        grad[j] = 0.0
    # x[0] and x[1] are the population trend and effect *plus* the mean of the (scaled) cluster
    # deviations at every level: c = x[0] - Σ_l σ_trend,l z̄_trend,l and δ = x[1] - Σ_l σ_effect,l z̄_effect,l
    # (a shift with unit Jacobian). The likelihood then depends on x[0], x[1] and the *centred* z only,
    # which removes the ridge between δ and the mean of the cluster deviations.
    c = x[0]
    delta = x[1]
    na = np.zeros(L)
    za_sum = np.zeros(L)
    nb = np.zeros(L)
    zd_sum = np.zeros(L)
    for lev in range(L):
        p = poff[lev]
        nk = koff[lev + 1] - koff[lev]
        for g in range(nk):
            kd = kinds[koff[lev] + g]
            if kd != 1:
                na[lev] += 1.0
                za_sum[lev] += x[p + 2 + g]
            if kd == 2:
                nb[lev] += 1.0
                zd_sum[lev] += x[p + 2 + nk + bpos[koff[lev] + g]]
        if shift_c and na[lev] > 0:
            c -= math.exp(x[p]) * za_sum[lev] / na[lev]
        if shift_d and nb[lev] > 0:
            delta -= math.exp(x[p + 1]) * zd_sum[lev] / nb[lev]
    ls = x[2 + k]
    sigma = math.exp(ls)
    inv_s2 = 1.0 / (sigma * sigma)
    mu = np.empty(C)
    for i in range(C):
        v = c + delta * T[i]
        for j in range(k):
            v += xbar[i, j] * x[2 + j]
        mu[i] = v
    for lev in range(L):
        p = poff[lev]
        sa = math.exp(x[p])
        sd = math.exp(x[p + 1])
        tot = math.sqrt(sa * sa + sd * sd)
        nk = koff[lev + 1] - koff[lev]
        za0 = p + 2
        zd0 = p + 2 + nk
        for i in range(C):
            g = cc[lev, i]
            kd = kinds[koff[lev] + g]
            s = tot if kd == 1 else sa
            v = s * x[za0 + g]
            if kd == 2:
                v += T[i] * sd * x[zd0 + bpos[koff[lev] + g]]
            mu[i] += v
    Q = ssr
    r = np.empty(C)
    for i in range(C):
        res = m[i] - mu[i]
        Q += n[i] * res * res
        r[i] = n[i] * res * inv_s2
    if k > 0:
        for a in range(k):
            sdb = 0.0
            for b in range(k):
                sdb += S[a, b] * (bhat[b] - x[2 + b])
            Q += (bhat[a] - x[2 + a]) * sdb
            grad[2 + a] = sdb * inv_s2 - x[2 + a]
    logp = -N * ls - 0.5 * Q * inv_s2
    logp += -0.5 * c * c / (trend_sd * trend_sd) - 0.5 * ((delta - pmu) / psd) ** 2
    logp += -sig_rate * sigma + ls
    sr = 0.0
    srt = 0.0
    for i in range(C):
        sr += r[i]
        srt += r[i] * T[i]
        for j in range(k):
            grad[2 + j] += xbar[i, j] * r[i]
    for j in range(k):
        logp += -0.5 * x[2 + j] * x[2 + j]
    grad[0] = sr - c / (trend_sd * trend_sd)
    grad[1] = srt - (delta - pmu) / (psd * psd)
    grad[2 + k] = -N + Q * inv_s2 - sig_rate * sigma + 1.0
    for lev in range(L):
        p = poff[lev]
        sa = math.exp(x[p])
        sd = math.exp(x[p + 1])
        tot = math.sqrt(sa * sa + sd * sd)
        nk = koff[lev + 1] - koff[lev]
        za0 = p + 2
        zd0 = p + 2 + nk
        # chain rule through the shifts (grad[0], grad[1] hold d logp / dc and d logp / dδ here)
        ga = grad[0] * sa / na[lev] if shift_c and na[lev] > 0 else 0.0
        gb = grad[1] * sd / nb[lev] if shift_d and nb[lev] > 0 else 0.0
        R = np.zeros(nk)
        RT = np.zeros(nk)
        for i in range(C):
            g = cc[lev, i]
            R[g] += r[i]
            RT[g] += r[i] * T[i]
        d_sa = 0.0
        d_sd = 0.0
        zz = 0.0
        for g in range(nk):
            kd = kinds[koff[lev] + g]
            za = x[za0 + g]
            zz += za * za
            if kd == 1:
                grad[za0 + g] = R[g] * tot - za
                d_sa += R[g] * za * sa / tot
                d_sd += R[g] * za * sd / tot
            else:
                grad[za0 + g] = R[g] * sa - za - ga
                d_sa += R[g] * za
                if kd == 2:
                    q = zd0 + bpos[koff[lev] + g]
                    zd = x[q]
                    zz += zd * zd
                    grad[q] = RT[g] * sd - zd - gb
                    d_sd += RT[g] * zd
        grad[p] = sa * d_sa - sa * sa / h2 + 1.0 - ga * za_sum[lev]
        grad[p + 1] = sd * d_sd - sd * sd / h2 + 1.0 - gb * zd_sum[lev]
        logp += -0.5 * (sa * sa + sd * sd) / h2 + x[p] + x[p + 1] - 0.5 * zz
    return logp


_KERNEL = None
_KERNEL_LOCK = threading.Lock()


def _compiled_kernel(use_numba: bool = True):
    """The numba-compiled kernel (cached on disk after the first compilation), or plain Python."""
    global _KERNEL
    if not use_numba:
        return _logp_grad_kernel
    with _KERNEL_LOCK:
        if _KERNEL is None:
            try:
                import numba
            except ImportError:  # pragma: no cover - numba comes with pytensor/pymc
                return _logp_grad_kernel
            kern = numba.njit(cache=True, nogil=True, fastmath=False)(_logp_grad_kernel)
            # compile (or load from the cache) now for the only signature used
            kern(np.zeros(4), np.zeros(4), np.ones(16), np.array([1, 0, 0, 0], dtype=np.int64))
            _KERNEL = kern
    return _KERNEL


def _start_kernel_compilation(marginal: bool = False) -> threading.Thread | None:
    """Compile the kernel in a background thread while the sampler's imports load.

    LLVM's optimisation passes run outside the GIL, so on a multi-core machine most of the
    first-call compilation overlaps with importing nutpie/ArviZ.
    """
    if (_MARGINAL if marginal else _KERNEL) is not None:
        return None
    target = _compiled_marginal if marginal else _compiled_kernel
    th = threading.Thread(target=target, name="evaltoolkit-bayes-compile", daemon=True)
    th.start()
    return th


class _DiDDensity:
    """Log posterior density and its analytic gradient on the unconstrained scale.

    Layout of the parameter vector ``x``: ``[c, δ, β (k), log σ, then per level: log σ_trend,
    log σ_effect, z_trend (K), z_effect (K_both)]``.
    """

    def __init__(
        self,
        st: _Stats,
        prior_mu: float,
        prior_sd: float,
        hyper_scale: float,
        use_numba: bool = True,
        shift: tuple[bool, bool] = SHIFT,
    ) -> None:
        self.st = st
        self.shift = (bool(shift[0]), bool(shift[1]))
        self.pm, self.ps = prior_mu, prior_sd
        self.h2 = hyper_scale**2
        k = st.k
        self.slices: dict[str, slice] = {}
        pos = 0

        def take(name: str, size: int) -> None:
            nonlocal pos
            self.slices[name] = slice(pos, pos + size)
            pos += size

        take("trend", 1)
        take("delta", 1)
        take("beta", k)
        take("log_sigma", 1)
        for lv in st.levels:
            take(f"log_sd_trend_{lv.name}", 1)
            take(f"log_sd_effect_{lv.name}", 1)
            take(f"z_trend_{lv.name}", lv.n)
            take(f"z_effect_{lv.name}", lv.n_both)
        self.ndim = pos
        L = len(st.levels)
        C = len(st.n)
        cc = np.zeros((L, C), dtype=np.int64)
        koff = np.zeros(L + 1, dtype=np.int64)
        poff = np.zeros(L, dtype=np.int64)
        for li, lv in enumerate(st.levels):
            cc[li] = lv.cell_cluster
            koff[li + 1] = koff[li] + lv.n
            poff[li] = self.slices[f"log_sd_trend_{lv.name}"].start
        kinds = np.concatenate([lv.kind for lv in st.levels]).astype(np.int64) if L else np.zeros(0, np.int64)
        bpos = (
            np.concatenate([lv.both_pos for lv in st.levels]).astype(np.int64) if L else np.zeros(0, np.int64)
        )
        fd = np.concatenate(
            [
                st.m,
                st.n,
                st.T,
                st.xbar.ravel(),
                [st.ssr],
                st.bhat,
                st.S.ravel(),
                [
                    st.N,
                    prior_mu,
                    prior_sd,
                    self.h2,
                    TREND_PRIOR_SD,
                    SIGMA_RATE,
                    float(shift[0]),
                    float(shift[1]),
                ],
            ]
        ).astype(float)
        idx = np.concatenate([[C, st.k, L], cc.ravel(), koff, poff, kinds, bpos]).astype(np.int64)
        self._args = (fd, idx)
        self._kernel = _compiled_kernel(use_numba)

    def logp_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density (up to a constant) and its gradient at ``x``."""
        grad = np.empty(self.ndim)
        logp = self._kernel(x, grad, *self._args)
        return float(logp), grad

    def location(self, x: np.ndarray) -> tuple[float, float]:
        """Population trend ``c`` and effect ``δ`` (standardised) from the shifted coordinates."""
        c, delta = float(x[0]), float(x[1])
        for lv in self.st.levels:
            za = x[self.slices[f"z_trend_{lv.name}"]][lv.kind != 1]
            zd = x[self.slices[f"z_effect_{lv.name}"]]
            if self.shift[0] and za.size:
                c -= math.exp(x[self.slices[f"log_sd_trend_{lv.name}"]][0]) * float(za.mean())
            if self.shift[1] and zd.size:
                delta -= math.exp(x[self.slices[f"log_sd_effect_{lv.name}"]][0]) * float(zd.mean())
        return c, delta

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        st, sl = self.st, self.slices
        c, delta = self.location(x)
        out = {
            "effect": np.array(delta * st.sd_y),
            "trend": np.array(c * st.sd_y),
            "sigma_change": np.array(math.exp(x[sl["log_sigma"]][0]) * st.sd_y),
        }
        if st.k:
            out["beta"] = np.asarray(x[sl["beta"]] * st.sd_y / st.x_sd, dtype=float)
        for lv in st.levels:
            out[f"sd_trend_{lv.name}"] = np.array(math.exp(x[sl[f"log_sd_trend_{lv.name}"]][0]) * st.sd_y)
            out[f"sd_effect_{lv.name}"] = np.array(math.exp(x[sl[f"log_sd_effect_{lv.name}"]][0]) * st.sd_y)
            out[f"z_trend_{lv.name}"] = np.array(x[sl[f"z_trend_{lv.name}"]], dtype=float)
            out[f"z_effect_{lv.name}"] = np.array(x[sl[f"z_effect_{lv.name}"]], dtype=float)
        return out

    def init_point(self, rng: np.random.Generator) -> np.ndarray:
        x = rng.uniform(-0.5, 0.5, size=self.ndim) * 0.2
        x[0] += float(np.average(self.st.m, weights=self.st.n))
        sig = math.sqrt(max(self.st.ssr, 1e-8) / max(self.st.N - len(self.st.n), 1))
        x[self.slices["log_sigma"]] += math.log(max(sig, 1e-3))
        for lv in self.st.levels:
            x[self.slices[f"log_sd_trend_{lv.name}"]] += math.log(0.1)
            x[self.slices[f"log_sd_effect_{lv.name}"]] += math.log(0.1)
        return x

    def var_info(self) -> tuple[list[str], list[tuple[int, ...]], dict[str, tuple[str, ...]], dict[str, Any]]:
        st = self.st
        names = ["effect", "trend", "sigma_change"]
        shapes: list[tuple[int, ...]] = [(), (), ()]
        dims: dict[str, tuple[str, ...]] = {}
        coords: dict[str, Any] = {}
        if st.k:
            names.append("beta")
            shapes.append((st.k,))
            dims["beta"] = ("covariate",)
        for lv in st.levels:
            names += [
                f"sd_trend_{lv.name}",
                f"sd_effect_{lv.name}",
                f"z_trend_{lv.name}",
                f"z_effect_{lv.name}",
            ]
            shapes += [(), (), (lv.n,), (lv.n_both,)]
        z_dims, coords = _cluster_coords(st)
        return names, shapes, {**dims, **z_dims}, coords


def _cluster_coords(st: _Stats) -> tuple[dict[str, tuple[str, ...]], dict[str, Any]]:
    """Dimensions and coordinates of the per-cluster variables ``z_trend_<level>`` and ``z_effect_<level>``."""
    dims: dict[str, tuple[str, ...]] = {}
    coords: dict[str, Any] = {}
    for lv in st.levels:
        dims[f"z_trend_{lv.name}"] = (lv.name,)
        dims[f"z_effect_{lv.name}"] = (f"{lv.name}_both_arms",)
        coords[lv.name] = lv.labels
        coords[f"{lv.name}_both_arms"] = [lab for lab, kd in zip(lv.labels, lv.kind) if kd == 2]
    return dims, coords


# --------------------------------------------------------------------------------------------------
# the marginal model: the population trend and effect and every level's cluster deviations integrated out
# --------------------------------------------------------------------------------------------------
# Cluster g at level l has its own deviation v_g = (a_g, b_g) ~ N(0, D_l), D_l = diag(σ²_trend,l, σ²_effect,l),
# and the population (c, δ) is the root of the tree, with its prior N((0, μ_δ), diag(2.5², σ²_δ)). W_g is the
# sum from the root down to g, and a cell c of innermost cluster g has mean e_c'W_g + x̄_c'β, e_c = (1, T_c).
# Given β, σ and the SDs, the cell means, (c, δ) and all the v are jointly Gaussian on a tree, so the
# marginal likelihood is exact from one upward pass (each cluster's evidence about W_g in information form,
# J_g and h_g, integrated over v_g into its parent), and its gradient follows from Fisher's identity (the
# posterior expectation of the complete-data gradient), whose moments come from one downward pass. The
# 2 x 2 algebra uses P_g = (D⁻¹ + J_g)⁻¹ = (I + D J_g)⁻¹ D, which stays finite as an SD goes to 0.
def _mg_data(fd, idx):  # pragma: no cover - compiled by numba
    """Unpack the marginal kernel's data (see :class:`_MarginalDensity`)."""
    C = idx[0]
    k = idx[1]
    m = fd[0:C]
    n = fd[C : 2 * C]
    T = fd[2 * C : 3 * C]
    xbar = fd[3 * C : 3 * C + C * k].reshape((C, k))
    o = 3 * C + C * k
    ssr = fd[o]
    bhat = fd[o + 1 : o + 1 + k]
    S = fd[o + 1 + k : o + 1 + k + k * k].reshape((k, k))
    o = o + 1 + k + k * k
    return m, n, T, xbar, ssr, bhat, S, fd[o : o + 7]


def _mg_integrate(info, pmat, g, q, da, db, m1, m2):  # pragma: no cover - compiled by numba
    """Integrate node g's deviation ~ N((m1, m2), diag(da, db)) out of its evidence ``info[g]``.

    Stores P_g in ``pmat[g]``, adds the message (J - J P J, h̃ - J P h̃ with h̃ = h - J m) to ``info[q]`` (no
    parent when q < 0) and returns the log normalising constant.
    """
    j11, j12, j22 = info[g, 0], info[g, 1], info[g, 2]
    h1 = info[g, 3] - (j11 * m1 + j12 * m2)
    h2 = info[g, 4] - (j12 * m1 + j22 * m2)
    # det(I + D J) = 1 + da j11 + db j22 + da db (j11 j22 - j12²) >= 1; written so that a rank-one J (a
    # cluster with one arm) cannot cancel to 0 when its entries are huge
    det = 1.0 + da * j11 + db * j22 + da * db * max(j11 * j22 - j12 * j12, 0.0)
    p11 = da * (1.0 + db * j22) / det
    p12 = -da * db * j12 / det
    p22 = db * (1.0 + da * j11) / det
    pmat[g, 0], pmat[g, 1], pmat[g, 2] = p11, p12, p22
    ph1 = p11 * h1 + p12 * h2
    ph2 = p12 * h1 + p22 * h2
    if q >= 0:
        b11 = p11 * j11 + p12 * j12
        b12 = p11 * j12 + p12 * j22
        b21 = p12 * j11 + p22 * j12
        b22 = p12 * j12 + p22 * j22
        info[q, 0] += j11 - (j11 * b11 + j12 * b21)
        info[q, 1] += j12 - (j11 * b12 + j12 * b22)
        info[q, 2] += j22 - (j12 * b12 + j22 * b22)
        info[q, 3] += h1 - (j11 * ph1 + j12 * ph2)
        info[q, 4] += h2 - (j12 * ph1 + j22 * ph2)
    lin = info[g, 3] * m1 + info[g, 4] * m2 - 0.5 * (j11 * m1 * m1 + 2.0 * j12 * m1 * m2 + j22 * m2 * m2)
    return lin + 0.5 * (h1 * ph1 + h2 * ph2) - 0.5 * math.log(det)


def _mg_upward(x, fd, idx, info, pmat, r, w):  # pragma: no cover - compiled by numba
    """Upward pass: log ∫ Π_c exp(-w_c (r_c - o_c)² / 2) p(c, δ) p(v) d(c, δ) dv, filling ``info``, ``pmat``, ``r``, ``w``.

    ``info[g]`` = (J11, J12, J22, h1, h2), node g's evidence about W_g (row K is the root, (c, δ));
    ``pmat[g]`` = (P11, P12, P22); ``r`` = cell mean - x̄'β, ``w`` = n / σ².
    """
    C = idx[0]
    k = idx[1]
    L = idx[2]
    m, n, T, xbar, _, _, _, par = _mg_data(fd, idx)
    leaf = idx[3 : 3 + C]
    koff = idx[3 + C : 4 + C + L]
    parent = idx[4 + C + L : 4 + C + L + koff[L]]
    K = koff[L]
    inv_s2 = math.exp(-2.0 * x[k])
    ll = 0.0
    for i in range(C):
        mu = 0.0
        for j in range(k):
            mu += xbar[i, j] * x[j]
        r[i] = m[i] - mu
        w[i] = n[i] * inv_s2
        ll -= 0.5 * w[i] * r[i] * r[i]
        g = leaf[i] if L > 0 else K
        info[g, 0] += w[i]
        info[g, 1] += w[i] * T[i]
        info[g, 2] += w[i] * T[i] * T[i]
        info[g, 3] += w[i] * r[i]
        info[g, 4] += w[i] * r[i] * T[i]
    for lev in range(L - 1, -1, -1):
        da = max(par[3] * x[k + 1 + 2 * lev] ** 2, 1e-200)  # σ = scale · |z|
        db = max(par[4] * x[k + 2 + 2 * lev] ** 2, 1e-200)
        for g in range(koff[lev], koff[lev + 1]):
            ll += _mg_integrate(info, pmat, g, parent[g] if lev > 0 else K, da, db, 0.0, 0.0)
    # the root: (c, δ) ~ N((0, μ_δ), diag(trend_sd², σ_δ²))
    ll += _mg_integrate(info, pmat, K, -1, par[5] * par[5], par[2] * par[2], 0.0, par[1])
    return ll


def _mg_moments(fd, idx, info, pmat, eo, vo, ea2, eb2):  # pragma: no cover - compiled by numba
    """Downward pass: posterior mean ``eo`` and variance ``vo`` of every cell's e_c'W, and E a², E b² per cluster."""
    C = idx[0]
    L = idx[2]
    T = fd[2 * C : 3 * C]
    par = _mg_data(fd, idx)[7]
    leaf = idx[3 : 3 + C]
    koff = idx[3 + C : 4 + C + L]
    parent = idx[4 + C + L : 4 + C + L + koff[L]]
    K = koff[L]
    wm = np.zeros((K + 1, 2))  # posterior mean of W
    wc = np.zeros((K + 1, 3))  # posterior covariance of W
    h1 = info[K, 3] - info[K, 1] * par[1]  # the root: mean m + P (h - J m), covariance P
    h2 = info[K, 4] - info[K, 2] * par[1]
    wm[K, 0] = pmat[K, 0] * h1 + pmat[K, 1] * h2
    wm[K, 1] = par[1] + pmat[K, 1] * h1 + pmat[K, 2] * h2
    wc[K, 0], wc[K, 1], wc[K, 2] = pmat[K, 0], pmat[K, 1], pmat[K, 2]
    for lev in range(L):
        for g in range(koff[lev], koff[lev + 1]):
            q = parent[g] if lev > 0 else K
            p11, p12, p22 = pmat[g, 0], pmat[g, 1], pmat[g, 2]
            j11, j12, j22 = info[g, 0], info[g, 1], info[g, 2]
            b11 = p11 * j11 + p12 * j12
            b12 = p11 * j12 + p12 * j22
            b21 = p12 * j11 + p22 * j12
            b22 = p12 * j12 + p22 * j22
            m1, m2 = wm[q, 0], wm[q, 1]
            s11, s12, s22 = wc[q, 0], wc[q, 1], wc[q, 2]
            # v = P (h - J W_parent) + noise(P): mean, and covariance B Σ B' + P (B = P J)
            v1 = p11 * info[g, 3] + p12 * info[g, 4] - (b11 * m1 + b12 * m2)
            v2 = p12 * info[g, 3] + p22 * info[g, 4] - (b21 * m1 + b22 * m2)
            t11, t12 = b11 * s11 + b12 * s12, b11 * s12 + b12 * s22
            t21, t22 = b21 * s11 + b22 * s12, b21 * s12 + b22 * s22
            c11 = t11 * b11 + t12 * b12 + p11
            c12 = t11 * b21 + t12 * b22 + p12
            c22 = t21 * b21 + t22 * b22 + p22
            ea2[g] = c11 + v1 * v1
            eb2[g] = c22 + v2 * v2
            wm[g, 0], wm[g, 1] = m1 + v1, m2 + v2
            wc[g, 0] = s11 - 2.0 * t11 + c11  # cov(W_parent + v) = Σ - Σ B' - B Σ + cov(v)
            wc[g, 1] = s12 - t12 - t21 + c12
            wc[g, 2] = s22 - 2.0 * t22 + c22
    for i in range(C):
        g = leaf[i] if L > 0 else K
        eo[i] = wm[g, 0] + T[i] * wm[g, 1]
        vo[i] = wc[g, 0] + 2.0 * T[i] * wc[g, 1] + T[i] * T[i] * wc[g, 2]


def _marginal_kernel(x, grad, fd, idx):  # pragma: no cover - compiled by numba
    """Log posterior of the marginal change-score model and its gradient (see :class:`_MarginalDensity`).

    ``x = [β (k), log σ, then per level z_trend, z_effect]`` with σ_trend = scale · |z_trend| (and the same for
    the effect), so that z ~ N(0, 1) is the half-normal prior. Written as plain loops so numba can compile
    it; it also runs (slowly) as Python, which the tests check.
    """
    C = idx[0]
    k = idx[1]
    L = idx[2]
    K = idx[3 + C + L]
    for j in range(x.shape[0]):
        grad[j] = 0.0
    if abs(x[k]) > 25.0:  # a person-level SD below 1e-11 or above 1e11 outcome SDs: outside any posterior
        return -np.inf
    _, _, _, xbar, ssr, bhat, S, par = _mg_data(fd, idx)
    info = np.zeros((K + 1, 5))
    pmat = np.zeros((K + 1, 3))
    r = np.empty(C)
    w = np.empty(C)
    ll = _mg_upward(x, fd, idx, info, pmat, r, w)
    eo = np.zeros(C)
    vo = np.zeros(C)
    ea2 = np.zeros(K)
    eb2 = np.zeros(K)
    _mg_moments(fd, idx, info, pmat, eo, vo, ea2, eb2)
    sigma = math.exp(x[k])
    inv_s2 = 1.0 / (sigma * sigma)
    Q = ssr  # the within-cell part of the likelihood: SSR and the within-cell slope
    for a in range(k):
        sdb = 0.0
        for b in range(k):
            sdb += S[a, b] * (bhat[b] - x[b])
        Q += (bhat[a] - x[a]) * sdb
        grad[a] = sdb * inv_s2 - x[a]
    logp = -par[0] * x[k] - 0.5 * Q * inv_s2 + ll - par[6] * sigma + x[k]
    dls = 0.0
    for i in range(C):
        e = r[i] - eo[i]
        for j in range(k):  # Fisher's identity: E[d log p(m, c, δ, v) / d β | m]
            grad[j] += xbar[i, j] * w[i] * e
        dls += w[i] * (e * e + vo[i])
    for j in range(k):
        logp += -0.5 * x[j] * x[j]
    grad[k] = -par[0] + Q * inv_s2 + dls - par[6] * sigma + 1.0
    koff = idx[3 + C : 4 + C + L]
    for lev in range(L):
        pa = k + 1 + 2 * lev
        za = x[pa]
        zb = x[pa + 1]
        da = max(par[3] * za * za, 1e-200)
        db = max(par[4] * zb * zb, 1e-200)
        ga = 0.0
        gb = 0.0
        for g in range(koff[lev], koff[lev + 1]):
            ga += ea2[g] / da - 1.0  # d log p / d log σ, by Fisher's identity; d log σ / d z = 1 / z
            gb += eb2[g] / db - 1.0
        grad[pa] = (ga / za if za != 0.0 else 0.0) - za
        grad[pa + 1] = (gb / zb if zb != 0.0 else 0.0) - zb
        logp += -0.5 * (za * za + zb * zb)
    return logp


def _mg_sample(x, fd, idx, eps, out):  # pragma: no cover - compiled by numba
    """Draw (c, δ) and every cluster's deviation (a, b) from their exact conditional distribution given ``x``.

    ``eps`` holds (K + 1) x 2 standard-normal numbers; ``out`` ((K + 1) x 2) receives the clusters' draws
    in rows 0..K-1 and (c, δ) in row K (downward sampling on the tree after the upward pass).
    """
    C = idx[0]
    L = idx[2]
    koff = idx[3 + C : 4 + C + L]
    parent = idx[4 + C + L : 4 + C + L + koff[L]]
    K = koff[L]
    par = _mg_data(fd, idx)[7]
    info = np.zeros((K + 1, 5))
    pmat = np.zeros((K + 1, 3))
    _mg_upward(x, fd, idx, info, pmat, np.empty(C), np.empty(C))
    wv = np.zeros((K + 1, 2))
    for step in range(K + 1):  # the root first, then the clusters level by level, the top level first
        g = K if step == 0 else step - 1
        if g == K:
            b1, b2 = 0.0, par[1]
        else:
            q = parent[g] if g >= koff[1] else K
            b1, b2 = wv[q, 0], wv[q, 1]
        # v = P (h - J b) + chol(P) ε, with b the parent's W (the prior mean for the root)
        u1 = info[g, 3] - (info[g, 0] * b1 + info[g, 1] * b2)
        u2 = info[g, 4] - (info[g, 1] * b1 + info[g, 2] * b2)
        p11, p12, p22 = pmat[g, 0], pmat[g, 1], pmat[g, 2]
        l11 = math.sqrt(p11)
        l21 = p12 / l11
        l22 = math.sqrt(max(p22 - l21 * l21, 0.0))
        v1 = p11 * u1 + p12 * u2 + l11 * eps[g, 0]
        v2 = p12 * u1 + p22 * u2 + l21 * eps[g, 0] + l22 * eps[g, 1]
        out[g, 0], out[g, 1] = (v1, v2) if g < K else (b1 + v1, b2 + v2)
        wv[g, 0], wv[g, 1] = b1 + v1, b2 + v2


_MARGINAL_HELPERS = ("_mg_data", "_mg_integrate", "_mg_upward", "_mg_moments")
_MARGINAL: tuple[Any, Any] | None = None


def _compiled_marginal(use_numba: bool = True):
    """(log density kernel, sampler of the integrated-out parameters) of the marginal model, compiled by numba.

    The helpers are compiled first and put in the module namespace under their own names, which is where
    numba looks up the functions the kernels call; everything is cached on disk after the first compilation.
    """
    global _MARGINAL
    if not use_numba:
        return _marginal_kernel, _mg_sample
    with _KERNEL_LOCK:
        if _MARGINAL is None:
            try:
                import numba
            except ImportError:  # pragma: no cover - numba comes with pytensor/pymc
                return _marginal_kernel, _mg_sample
            jit = numba.njit(cache=True, nogil=True, fastmath=False)
            space = globals()
            for name in _MARGINAL_HELPERS:
                space[name] = jit(getattr(space[name], "py_func", space[name]))
            kern, samp = jit(_marginal_kernel), jit(_mg_sample)
            fd = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
            idx = np.array([1, 0, 0, -1, 0], dtype=np.int64)
            kern(np.zeros(1), np.zeros(1), fd, idx)  # compile (or load from the cache) the signatures used
            samp(np.zeros(1), fd, idx, np.zeros((1, 2)), np.zeros((1, 2)))
            _MARGINAL = (kern, samp)
    return _MARGINAL


class _MarginalDensity:
    """Log posterior of the change-score model with (c, δ) and every cluster deviation integrated out.

    The sampler sees ``x = [β (k), log σ, then per level: z_trend, z_effect]`` - a handful of variance
    parameters whatever the number of clusters: no funnel between cluster deviations and their SDs, no
    ridge between δ and their mean, and no funnel between δ and the SDs that set its uncertainty. The
    cluster SDs are ``σ = scale · |z|`` with z ~ N(0, 1), which is exactly the half-normal prior: the
    log of a half-normal SD has a double-exponential right tail whose curvature made the sampler
    diverge with few clusters (where the posterior of an SD is its prior), while z has Gaussian tails
    and the likelihood is smooth in z (it depends on σ² only; the posterior is symmetric in z). (c, δ) and the deviations are then drawn from their exact conditional (Gaussian)
    distribution given each draw (:meth:`conditional_draws`).
    """

    def __init__(
        self,
        st: _Stats,
        prior_mu: float,
        prior_sd: float,
        sd_scale: float,
        use_numba: bool = True,
    ) -> None:
        self.st = st
        self.pm, self.ps = prior_mu, prior_sd
        self.h2 = sd_scale**2
        k, L, C = st.k, len(st.levels), len(st.n)
        self.slices: dict[str, slice] = {"beta": slice(0, k), "log_sigma": slice(k, k + 1)}
        for li, lv in enumerate(st.levels):
            self.slices[f"z_sd_trend_{lv.name}"] = slice(k + 1 + 2 * li, k + 2 + 2 * li)
            self.slices[f"z_sd_effect_{lv.name}"] = slice(k + 2 + 2 * li, k + 3 + 2 * li)
        self.scale = sd_scale
        self.ndim = 1 + k + 2 * L
        koff = np.zeros(L + 1, dtype=np.int64)
        for li, lv in enumerate(st.levels):
            koff[li + 1] = koff[li] + lv.n
        parent = np.full(int(koff[L]), -1, dtype=np.int64)
        for li, lv in enumerate(st.levels[1:], start=1):
            parent[koff[li] : koff[li + 1]] = koff[li - 1] + lv.parent
        leaf = st.levels[-1].cell_cluster + koff[L - 1] if L else np.full(C, -1, dtype=np.int64)
        par = [st.N, prior_mu, prior_sd, self.h2, self.h2, TREND_PRIOR_SD, SIGMA_RATE]
        fd = np.concatenate([st.m, st.n, st.T, st.xbar.ravel(), [st.ssr], st.bhat, st.S.ravel(), par])
        fd = fd.astype(float)
        idx = np.concatenate([[C, k, L], leaf, koff, parent]).astype(np.int64)
        self._args = (fd, idx)
        self.n_clusters = int(koff[L])
        self._kernel, self._sampler = _compiled_marginal(use_numba)

    def logp_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density (up to a constant) and its gradient at ``x``."""
        grad = np.empty(self.ndim)
        logp = self._kernel(x, grad, *self._args)
        return float(logp), grad

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        st, sl = self.st, self.slices
        out = {"sigma_change": np.array(math.exp(x[sl["log_sigma"]][0]) * st.sd_y)}
        if st.k:
            out["beta"] = np.asarray(x[sl["beta"]] * st.sd_y / st.x_sd, dtype=float)
        for lv in st.levels:
            for part in ("trend", "effect"):
                z = x[sl[f"z_sd_{part}_{lv.name}"]][0]
                out[f"sd_{part}_{lv.name}"] = np.array(self.scale * abs(z) * st.sd_y)
        return out

    def init_point(self, rng: np.random.Generator) -> np.ndarray:
        x = rng.uniform(-0.5, 0.5, size=self.ndim) * 0.2
        sig = math.sqrt(max(self.st.ssr, 1e-8) / max(self.st.N - len(self.st.n), 1))
        x[self.slices["log_sigma"]] += math.log(max(sig, 1e-3))
        for lv in self.st.levels:
            x[self.slices[f"z_sd_trend_{lv.name}"]] += 0.7
            x[self.slices[f"z_sd_effect_{lv.name}"]] += 0.7
        return x

    def var_info(self) -> tuple[list[str], list[tuple[int, ...]], dict[str, tuple[str, ...]], dict[str, Any]]:
        names = ["sigma_change"]
        shapes: list[tuple[int, ...]] = [()]
        dims: dict[str, tuple[str, ...]] = {}
        if self.st.k:
            names.append("beta")
            shapes.append((self.st.k,))
            dims["beta"] = ("covariate",)
        for lv in self.st.levels:
            names += [f"sd_trend_{lv.name}", f"sd_effect_{lv.name}"]
            shapes += [(), ()]
        return names, shapes, dims, {}

    def unconstrained(self, idata) -> np.ndarray:
        """The sampler's coordinates of every posterior draw, (draws, ndim), from the reported variables."""
        st = self.st
        x = np.empty((_flat(idata, "sigma_change").shape[0], self.ndim))
        if st.k:
            x[:, self.slices["beta"]] = _flat(idata, "beta") * st.x_sd / st.sd_y
        x[:, st.k] = np.log(_flat(idata, "sigma_change") / st.sd_y)
        for lv in st.levels:
            for part in ("trend", "effect"):
                col = self.slices[f"z_sd_{part}_{lv.name}"].start
                x[:, col] = _flat(idata, f"sd_{part}_{lv.name}") / (st.sd_y * self.scale)
        return x

    def conditional_draws(self, idata, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``effect``, ``trend`` and every cluster's deviations drawn from their exact conditional posterior.

        The deviations are returned as the non-centred model's variables, so both models report alike:
        ``z_trend`` is a / σ_trend (for a cluster with treated people only: (a + b) / sqrt(σ²_trend +
        σ²_effect), the only combination its data see) and ``z_effect`` is b / σ_effect for clusters with
        both arms.
        """
        x = self.unconstrained(idata)
        S, K = x.shape[0], self.n_clusters
        dev = np.empty((S, K + 1, 2))
        eps = rng.standard_normal((S, K + 1, 2))
        one = np.empty((K + 1, 2))
        for s in range(S):
            self._sampler(x[s], *self._args, eps[s], one)
            dev[s] = one
        out = {"effect": dev[:, K, 1] * self.st.sd_y, "trend": dev[:, K, 0] * self.st.sd_y}
        start = 0
        for li, lv in enumerate(self.st.levels):
            a, b = dev[:, start : start + lv.n, 0], dev[:, start : start + lv.n, 1]
            sa = self.scale * np.abs(x[:, self.st.k + 1 + 2 * li])[:, None]
            sb = self.scale * np.abs(x[:, self.st.k + 2 + 2 * li])[:, None]
            out[f"z_trend_{lv.name}"] = np.where(
                lv.kind[None, :] == 1, (a + b) / np.sqrt(sa**2 + sb**2), a / sa
            )
            out[f"z_effect_{lv.name}"] = (b / sb)[:, lv.kind == 2]
            start += lv.n
        return out


# --------------------------------------------------------------------------------------------------
# samplers
# --------------------------------------------------------------------------------------------------
def _sample_nutpie(dens: _DiDDensity, draws: int, tune: int, chains: int, seed: int, covariates, **kw):
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    names, shapes, dims, coords = dens.var_info()
    if covariates:
        coords["covariate"] = list(covariates)

    def make_logp():
        return lambda x, **_: dens.logp_grad(np.asarray(x))

    def make_expand(seed1, seed2, chain):
        return lambda x, **_: dens.expand(np.asarray(x))

    model = from_pyfunc(
        dens.ndim,
        make_logp,
        make_expand,
        [np.dtype("float64")] * len(names),
        shapes,
        names,
        coords=coords,
        dims=dims,
        make_initial_point_fn=lambda s: dens.init_point(np.random.default_rng(s)),
    )
    # The log density is a Python callback, which holds the GIL: chains in one thread run about twice
    # as fast as chains in competing threads (measured on 2 cores).
    kw.setdefault("cores", 1)
    kw.setdefault("progress_bar", False)
    return nutpie.sample(model, draws=draws, tune=tune, chains=chains, seed=seed, save_warmup=False, **kw)


def _sample_pymc(dens: _DiDDensity, draws: int, tune: int, chains: int, seed: int, covariates, **kw):
    """The same model written in PyMC (cross-check; slower)."""
    import pymc as pm
    import pytensor.tensor as pt

    st = dens.st
    *_, coords = dens.var_info()
    if covariates:
        coords["covariate"] = list(covariates)
    with pm.Model(coords=coords):
        c = pm.Normal("trend_std", 0.0, TREND_PRIOR_SD)
        delta = pm.Normal("delta_std", dens.pm, dens.ps)
        sigma = pm.Exponential("sigma_std", SIGMA_RATE)
        mu = c + delta * st.T
        pm.Deterministic("effect", delta * st.sd_y)
        pm.Deterministic("trend", c * st.sd_y)
        pm.Deterministic("sigma_change", sigma * st.sd_y)
        Q = st.ssr
        if st.k:
            beta = pm.Normal("beta_std", 0.0, 1.0, shape=st.k)
            pm.Deterministic("beta", beta * st.sd_y / st.x_sd, dims="covariate")
            mu = mu + pt.dot(st.xbar, beta)
            db = st.bhat - beta
            Q = Q + pt.dot(db, pt.dot(st.S, db))
        hs = math.sqrt(dens.h2)
        for lv in st.levels:
            sa = pm.HalfNormal(f"sd_trend_{lv.name}_std", hs)
            sd = pm.HalfNormal(f"sd_effect_{lv.name}_std", hs)
            za = pm.Normal(f"z_trend_{lv.name}", 0.0, 1.0, dims=lv.name)
            zd = pm.Normal(f"z_effect_{lv.name}", 0.0, 1.0, dims=f"{lv.name}_both_arms")
            pm.Deterministic(f"sd_trend_{lv.name}", sa * st.sd_y)
            pm.Deterministic(f"sd_effect_{lv.name}", sd * st.sd_y)
            tot = pt.sqrt(sa**2 + sd**2)
            s = pt.switch(pt.eq(lv.kind, 1), tot, sa)
            zd_full = pt.zeros(lv.n)
            if lv.n_both:
                zd_full = pt.set_subtensor(zd_full[np.flatnonzero(lv.kind == 2)], zd)
            g = lv.cell_cluster
            mu = mu + s[g] * za[g] + st.T * sd * zd_full[g]
        resid = st.m - mu
        Q = Q + pt.sum(st.n * resid**2)
        pm.Potential("loglik", -st.N * pt.log(sigma) - 0.5 * Q / sigma**2)
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=min(chains, 2),
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
            **kw,
        )
    return idata


# --------------------------------------------------------------------------------------------------
# convergence statistics, vectorised over parameters (same definitions as ArviZ / Vehtari et al. 2021)
# --------------------------------------------------------------------------------------------------
def _split(x: np.ndarray) -> np.ndarray:
    """(chains, draws, P) -> (2 chains, draws // 2, P)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    from scipy import special, stats

    m, n, p = x.shape
    r = stats.rankdata(x.reshape(m * n, p), method="average", axis=0)
    size = m * n
    return special.ndtri((r - 0.375) / (size - 0.75 + 1)).reshape(m, n, p)


def _rhat_basic(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    b = n * np.var(x.mean(axis=1), axis=0, ddof=1)
    w = np.mean(np.var(x, axis=1, ddof=1), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((b / w + n - 1) / n)


def _ess_basic(x: np.ndarray) -> np.ndarray:
    """Geyer initial-monotone-sequence ESS of (chains, draws, P) arrays (ArviZ's ``_ess``)."""
    m, n, p = x.shape
    out = np.empty(p)
    xc = x - x.mean(axis=1, keepdims=True)
    nfft = 1 << math.ceil(math.log2(2 * n))
    f = np.fft.rfft(xc, n=nfft, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=nfft, axis=1)[:, :n] / n  # (m, n, p)
    mean_acov = acov.mean(axis=0)  # (n, p)
    mean_var = mean_acov[0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=1), axis=0, ddof=1)
    const = (x.max(axis=(0, 1)) - x.min(axis=(0, 1))) < np.finfo(float).resolution
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_all = 1.0 - (mean_var[None, :] - mean_acov) / var_plus[None, :]
    for j in range(p):
        if const[j]:
            out[j] = m * n
            continue
        rho_col = rho_all[:, j]
        rho = np.zeros(n)
        rho[0] = 1.0
        even, odd = 1.0, float(rho_col[1])
        rho[1] = odd
        t = 1
        while t < n - 3 and even + odd > 0.0:
            even, odd = float(rho_col[t + 1]), float(rho_col[t + 2])
            if even + odd >= 0:
                rho[t + 1], rho[t + 2] = even, odd
            t += 2
        max_t = t - 2
        if even > 0:
            rho[max_t + 1] = even
        t = 1
        while t <= max_t - 2:
            if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
                rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
            t += 2
        tau = -1.0 + 2.0 * rho[: max_t + 1].sum() + rho[max_t + 1 : max_t + 2].sum()
        tau = max(tau, 1.0 / math.log10(m * n))
        out[j] = np.nan if np.isnan(rho).any() else m * n / tau
    return out


def convergence_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS for every column of (chains, draws, P) draws.

    The definitions are those of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021, *Bayesian
    Analysis* 16(2)) as implemented in ArviZ (``az.rhat``, ``az.ess(method="bulk"/"tail")``), computed
    for all parameters at once (ArviZ loops over parameters, which is slow for hundreds of cluster
    effects); the tests check agreement with ArviZ.

    Examples
    --------
    >>> import numpy as np
    >>> rh, eb, et = convergence_stats(np.random.default_rng(1).normal(size=(4, 500, 3)))
    >>> bool((rh < 1.01).all() and (eb > 1000).all())
    True
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        x = x[:, :, None]
    sx = _split(x)
    zs = _z_scale(sx)
    rhat_bulk = _rhat_basic(zs)
    folded = np.abs(sx - np.median(sx.reshape(-1, sx.shape[2]), axis=0))
    rhat = np.maximum(rhat_bulk, _rhat_basic(_z_scale(folded)))
    if x.shape[0] < 2:
        rhat = np.full(x.shape[2], np.nan)
    ess_bulk = _ess_basic(zs)
    flat = x.reshape(-1, x.shape[2])
    q05 = np.quantile(flat, 0.05, axis=0)
    q95 = np.quantile(flat, 0.95, axis=0)
    ess_tail = np.minimum(
        _ess_basic(_split((x <= q05).astype(float))), _ess_basic(_split((x <= q95).astype(float)))
    )
    return rhat, ess_bulk, ess_tail


# --------------------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------------------
def diagnose(idata, var_names: Sequence[str] | None = None, headline: str = "effect") -> dict[str, Any]:
    """Convergence diagnostics with plain-language warnings.

    Parameters
    ----------
    idata : arviz.InferenceData
        Posterior draws with ``sample_stats`` (``diverging``, ``energy``).
    var_names : sequence of str, optional
        Variables to check (default: every posterior variable).
    headline : str
        The variable whose R-hat and ESS are reported separately.

    Returns
    -------
    dict
        ``table`` (per-variable worst R-hat, bulk and tail ESS), ``max_rhat``, ``min_ess_bulk``,
        ``min_ess_tail``, ``effect_rhat``, ``effect_ess_bulk``, ``effect_ess_tail``, ``divergences``,
        ``bfmi`` (per chain), ``ok`` and ``warnings`` (plain sentences; empty when all checks pass).

    Examples
    --------
    >>> import arviz as az, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> idata = az.from_dict(posterior={"effect": rng.normal(size=(4, 500))},
    ...                      sample_stats={"diverging": np.zeros((4, 500), bool),
    ...                                    "energy": rng.normal(size=(4, 500)).cumsum(1)})
    >>> diagnose(idata)["divergences"]
    0
    """
    post = idata.posterior
    if var_names is None:
        var_names = [v for v in post.data_vars if post[v].size > 0]
    n_chains = int(post.sizes["chain"])
    rows = []
    for v in var_names:
        arr = np.asarray(post[v].values, dtype=float)
        arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
        if arr.shape[2] == 0:
            continue
        rh, eb, et_ = convergence_stats(arr)
        rows.append(
            {
                "variable": v,
                "r_hat": float(np.nanmax(rh)) if np.isfinite(rh).any() else math.nan,
                "ess_bulk": float(np.nanmin(eb)),
                "ess_tail": float(np.nanmin(et_)),
            }
        )
    table = pd.DataFrame(rows)
    ss = getattr(idata, "sample_stats", None)
    div = int(ss["diverging"].values.sum()) if ss is not None and "diverging" in ss else 0
    if ss is not None and "energy" in ss:  # E-BFMI (Betancourt 2016), as arviz.bfmi
        energy = np.asarray(ss["energy"].values, dtype=float)
        bfmi = np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)
    else:
        bfmi = np.full(n_chains, math.nan)
    min_ess = ESS_PER_CHAIN * n_chains
    out: dict[str, Any] = {
        "table": table,
        "max_rhat": float(table["r_hat"].max()),
        "min_ess_bulk": float(table["ess_bulk"].min()),
        "min_ess_tail": float(table["ess_tail"].min()),
        "divergences": div,
        "bfmi": bfmi.tolist(),
        "n_chains": n_chains,
        "n_draws": int(post.sizes["draw"]),
        "min_ess_required": min_ess,
    }
    if headline in table["variable"].values:
        h = table.set_index("variable").loc[headline]
        out.update(
            effect_rhat=float(h["r_hat"]),
            effect_ess_bulk=float(h["ess_bulk"]),
            effect_ess_tail=float(h["ess_tail"]),
        )
    w: list[str] = []
    if div:
        w.append(
            f"The sampler reported {div} divergent transition(s): parts of the posterior may not have been "
            "explored, so estimates and intervals may be biased. Do not rely on them without checking "
            "(more data per cluster, fewer varying effects, or a more informative prior on the SDs)."
        )
    if out["max_rhat"] > RHAT_MAX or not np.isfinite(out["max_rhat"]):
        bad = table.loc[table["r_hat"] > RHAT_MAX, "variable"].tolist()
        w.append(
            f"The chains disagree (largest R-hat {out['max_rhat']:.3f} > {RHAT_MAX}; {', '.join(bad[:5])}): "
            "the sampler has not converged; run longer or simplify the model."
        )
    if out["min_ess_bulk"] < min_ess or out["min_ess_tail"] < min_ess:
        w.append(
            f"Too few effective draws (smallest bulk ESS {out['min_ess_bulk']:.0f}, tail ESS "
            f"{out['min_ess_tail']:.0f}; at least {min_ess} wanted): posterior means and interval ends "
            "are imprecise; run more draws."
        )
    if np.any(bfmi < BFMI_MIN):
        w.append(
            f"Low energy-BFMI ({np.nanmin(bfmi):.2f} < {BFMI_MIN}) in at least one chain: the sampler "
            "explores the tails poorly (often a sign of a funnel in the variance parameters)."
        )
    out["warnings"] = w
    out["ok"] = not w
    return out


# --------------------------------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------------------------------
@dataclass(repr=False)
class BayesDiDResult(EffectResult):
    """Result of :func:`bayes_did`: an :class:`~evaltoolkit.results.EffectResult` plus the posterior.

    ``estimate`` is the posterior mean of the programme effect (outcome units), ``std_error`` the
    posterior SD, ``ci_lower``/``ci_upper`` the 95% HDI and ``p_value`` is NaN (a Bayesian model has
    no p-value; read ``prob_positive`` instead).

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior (``effect``, ``trend``, ``sigma_change``, ``sd_trend_<level>``,
        ``sd_effect_<level>``, non-centred ``z_*``), sample statistics and a posterior predictive
        check of the team-by-arm mean changes.
    posterior_median, prob_positive, prob_rope : float
        Posterior median, P(effect > 0) and P(|effect| < ROPE).
    rope : float
        Half-width of the region of practical equivalence, in outcome units.
    prior : dict
        ``name``, ``mu`` and ``sigma`` of the effect prior (outcome units) and the other priors.
    diagnostics : dict
        Output of :func:`diagnose`.
    level_effects : dict of DataFrame
        Partially pooled effects per cluster for every level (``site_effects`` is the top level).
    """

    idata: Any = None
    posterior_median: float = math.nan
    prob_positive: float = math.nan
    prob_rope: float = math.nan
    rope: float = math.nan
    prior: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    level_effects: dict[str, pd.DataFrame] = field(default_factory=dict)
    change_data: pd.DataFrame | None = None

    @property
    def site_effects(self) -> pd.DataFrame | None:
        """Partially pooled effects of the top grouping level (e.g. sites)."""
        if not self.level_effects:
            return None
        return next(iter(self.level_effects.values()))

    def summary(self, units: str = "scale points") -> str:
        """The effect in plain words, with the probabilities a funder can read."""
        txt = (
            f"{self.outcome}: the programme effect is estimated at {self.estimate:+.3f} {units} "
            f"(posterior median {self.posterior_median:+.3f}; 95% credible interval {self.ci_lower:+.3f} "
            f"to {self.ci_upper:+.3f}). There is a {100 * self.prob_positive:.0f}% probability that the "
            f"programme improved {self.outcome} and a {100 * self.prob_rope:.0f}% probability that the "
            f"effect is negligible (smaller than ±{self.rope:.3g} {units}). "
            f"Prior on the effect: {self.prior.get('name')} (Normal with mean {self.prior.get('mu', math.nan):.3g}, "
            f"SD {self.prior.get('sigma', math.nan):.3g}); n = {self.n_obs} observations"
            + (f" in {self.n_clusters} clusters" if self.n_clusters else "")
            + "."
        )
        if self.warnings:
            txt += " Caution: " + " ".join(self.warnings)
        return txt

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (
            f"BayesDiDResult({self.outcome}: {self.estimate:.4g} [{self.ci_lower:.4g}, {self.ci_upper:.4g}], "
            f"P(>0)={self.prob_positive:.3f}, n={self.n_obs}, clusters={self.n_clusters}, "
            f"diagnostics {'ok' if self.diagnostics.get('ok') else 'WITH PROBLEMS'})"
        )


def _flat(idata, name: str) -> np.ndarray:
    v = idata.posterior[name].values
    return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])


def _level_effect_draws(idata, st: _Stats, rng: np.random.Generator) -> list[np.ndarray]:
    """Per level, draws (S x K) of each cluster's own effect deviation (outcome units)."""
    out = []
    for lv in st.levels:
        sa = _flat(idata, f"sd_trend_{lv.name}")
        sd = _flat(idata, f"sd_effect_{lv.name}")
        za = _flat(idata, f"z_trend_{lv.name}")
        zd = _flat(idata, f"z_effect_{lv.name}")
        S = sa.shape[0]
        dev = np.empty((S, lv.n))
        tot2 = sa**2 + sd**2
        for k in range(lv.n):
            if lv.kind[k] == 2:
                dev[:, k] = sd * zd[:, lv.both_pos[k]]
            elif lv.kind[k] == 1:  # exact conditional of the effect part given the sum
                u = np.sqrt(tot2) * za[:, k]
                mean = u * sd**2 / tot2
                var = sa**2 * sd**2 / tot2
                dev[:, k] = mean + np.sqrt(var) * rng.standard_normal(S)
            else:  # no treated people: the effect there is a prediction from the population
                dev[:, k] = sd * rng.standard_normal(S)
        out.append(dev)
    return out


def _level_tables(idata, st: _Stats, cs: pd.DataFrame, rng, rope: float) -> dict[str, pd.DataFrame]:
    eff = _flat(idata, "effect")
    devs = _level_effect_draws(idata, st, rng)
    T = cs["_T"].to_numpy() > 0
    d = cs["_d"].to_numpy()
    ctrl_mean = float(d[~T].mean())
    tables: dict[str, pd.DataFrame] = {}
    cum = None
    for li, (lv, dev) in enumerate(zip(st.levels, devs)):
        total = dev if cum is None else dev + cum[:, lv.parent]
        draws = eff[:, None] + total
        codes = pd.factorize(
            np.array(
                [
                    "/".join(t)
                    for t in zip(*[cs[g].astype(str) for g in [x.name for x in st.levels[: li + 1]]])
                ]
            ),
            sort=True,
        )[0]
        rows = []
        for k in range(lv.n):
            sel = codes == k
            nt, nc = int((sel & T).sum()), int((sel & ~T).sum())
            if nt and nc:
                raw = float(d[sel & T].mean() - d[sel & ~T].mean())
                note = ""
            elif nt:
                raw = float(d[sel & T].mean() - ctrl_mean)
                note = "treated only: compared with all controls"
            else:
                raw = math.nan
                note = "no treated people: predicted effect"
            lo, hi = hdi(draws[:, k])
            rows.append(
                {
                    "level": lv.name,
                    "cluster": lv.labels[k],
                    "n_treated": nt,
                    "n_control": nc,
                    "raw_estimate": raw,
                    "mean": float(draws[:, k].mean()),
                    "median": float(np.median(draws[:, k])),
                    "sd": float(draws[:, k].std(ddof=1)),
                    "hdi_lower": lo,
                    "hdi_upper": hi,
                    "prob_positive": float((draws[:, k] > 0).mean()),
                    "prob_rope": float((np.abs(draws[:, k]) < rope).mean()),
                    "note": note,
                }
            )
        tables[lv.name] = pd.DataFrame(rows)
        cum = total
    return tables


def _posterior_predictive(idata, st: _Stats, rng: np.random.Generator):
    """Replicated team-by-arm mean changes (outcome units) for every draw."""
    c = _flat(idata, "trend") / st.sd_y
    delta = _flat(idata, "effect") / st.sd_y
    sigma = _flat(idata, "sigma_change") / st.sd_y
    mu = c[:, None] + delta[:, None] * st.T[None, :]
    if st.k:
        beta_std = _flat(idata, "beta") * st.x_sd / st.sd_y
        mu = mu + beta_std @ st.xbar.T
    for lv in st.levels:
        sa = _flat(idata, f"sd_trend_{lv.name}") / st.sd_y
        sd = _flat(idata, f"sd_effect_{lv.name}") / st.sd_y
        za = _flat(idata, f"z_trend_{lv.name}")
        zd = _flat(idata, f"z_effect_{lv.name}")
        s = np.where(lv.kind[None, :] == 1, np.sqrt(sa**2 + sd**2)[:, None], sa[:, None])
        zd_full = np.zeros_like(za)
        zd_full[:, lv.kind == 2] = zd
        g = lv.cell_cluster
        mu = mu + s[:, g] * za[:, g] + st.T[None, :] * sd[:, None] * zd_full[:, g]
    rep = mu + sigma[:, None] / np.sqrt(st.n)[None, :] * rng.standard_normal(mu.shape)
    return mu * st.sd_y, rep * st.sd_y


def bayes_did(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    unit: str,
    groups: str | Sequence[str] = ("site", "team"),
    covariates: Sequence[str] = (),
    prior: Any = "default",
    sampler: str = "nutpie",
    draws: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    *,
    treated: Any,
    control: Any = None,
    pre: Any = "baseline",
    post: Any = "post",
    rope: float = 0.1,
    tune: int | None = None,
    hyper_scale: float = HYPER_SCALE,
    parameterisation: str = "marginal",
    analysis: str = "bayes_did",
    **sampler_kwargs: Any,
) -> BayesDiDResult:
    """Bayesian hierarchical difference-in-differences for a two-wave panel with partial pooling.

    Parameters
    ----------
    data : DataFrame
        Long panel: one row per person and wave.
    outcome, arm, wave, unit : str
        Columns: the (scored) outcome, the arm, the wave and the person identifier.
    groups : str or sequence of str
        Grouping columns, outermost first (default ``("site", "team")``); teams are nested in
        sites (labels are made unique within their parent). ``()`` fits no varying effects.
    covariates : sequence of str
        Numeric baseline covariates (taken from the ``pre`` row); they predict the change, which is
        the long-form model's covariate × post interaction.
    prior : str, Prior or (mu, sigma)
        Prior for the programme effect: ``"default"`` (weakly informative), ``"contact"`` (Paluck,
        Green & Green 2019 meta-analysis) or ``"sceptical"`` from :mod:`evaltoolkit.estimators.bayes.priors`, any
        object with ``mu`` and ``sigma``, or a ``(mu, sigma)`` pair, all on the outcome scale.
    sampler : {"nutpie", "pymc"}
        ``"nutpie"`` (fast, analytic gradient) or ``"pymc"`` (same model in PyMC; slower).
    draws, chains : int
        Posterior draws per chain and number of chains.
    tune : int, optional
        Warm-up (adaptation) iterations per chain; default ``2 * draws // 5`` clipped to 200-1000
        (400 for 1,000 draws: with the shifted effect this was enough on every seed tried; see
        ``docs/bayes.md``), raised to ``draws`` (at most 1000) when a grouping level has fewer than
        5 clusters, where the variance components are barely identified.
    seed : int, optional
        Random seed (results are reproducible with a seed).
    treated, control : scalar
        Label of the programme arm and (if the arm column has more than two values) the comparison.
    pre, post : scalar
        Wave labels of the baseline and post measurement; other waves are ignored (counted in
        ``details["n_other_wave_rows"]``).
    rope : float
        Half-width of the region of practical equivalence in **baseline-SD units** (0.1 SD).
    hyper_scale : float
        Half-Normal scale of the SDs of varying trends and effects at every level (standardised
        units). The default, 0.1141 (``priors.get_prior("cluster_sd")``), puts 95% of the prior below
        an SD of 0.224, an ICC of 0.05: set on the ICC scale from published ICCs of attitude and
        cohesion outcomes in schools and neighbourhoods (see
        :func:`~evaltoolkit.estimators.bayes.priors.icc_prior`). Until 0.2 it was 0.5 (95% below an SD
        of 0.98, an ICC of 0.96).
    parameterisation : {"marginal", "noncentred"}
        How the cluster deviations are handled. ``"marginal"`` (default) integrates every level's
        deviations out exactly - the change-score model is Gaussian, so this is exact whatever the
        number of clusters or people per cluster - and samples only the population parameters and
        the SDs; the deviations are then drawn from their exact conditional distribution. This is the
        rule whatever each level's information: the sampler never meets the funnel of a non-centred
        level with informative data nor that of a centred level with an unidentified SD.
        ``"noncentred"`` samples them (the model before 0.2; kept for comparison). ``sampler="pymc"``
        always fits the non-centred model, an independent cross-check.
    analysis : str
        Label for the ``analysis`` column of ``table``.
    **sampler_kwargs
        Passed to ``nutpie.sample`` or ``pymc.sample``.

    Returns
    -------
    BayesDiDResult
        ``estimate`` (posterior mean), ``std_error`` (posterior SD), ``ci_lower``/``ci_upper`` (95%
        HDI), ``p_value`` = NaN (no p-value in a Bayesian analysis: see ``prob_positive``),
        ``n_obs`` (observations: 2 per person analysed), ``n_clusters`` (top-level clusters),
        ``idata``, ``diagnostics``, ``level_effects``/``site_effects`` and a tidy ``table``.

    Raises
    ------
    DataError
        Missing columns, a wave or arm label that does not occur, duplicate person-waves, an arm or
        group that changes between waves.
    DesignError
        Bad arguments (unknown sampler or prior, non-positive draws, ambiguous control arm).
    EstimationError
        Too few people, or no variation in the outcome.

    Examples
    --------
    >>> from evaltoolkit.simulate.dgps import simulate_panel
    >>> df = simulate_panel(n_sites=3, teams_per_site=2, people_per_team=30, effect=0.4, seed=2)
    >>> res = bayes_did(df, "y", "arm", "wave", "pid", treated="treated", draws=300, chains=2, seed=3)
    >>> list(res.table.columns)[:4]
    ['analysis', 'outcome', 'term', 'estimate']

    Three schools, whole schools in one arm (Best of Us children), at the defaults:

    >>> import evaltoolkit as et, warnings
    >>> sim = et.simulate_study("best_of_us_children", seed=0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     r = bayes_did(sim.data, "connectedness", "arm", "wave", "child_id", groups="school",
    ...                   treated="arts_school", pre="before", post="after", seed=20240601)
    >>> r.diagnostics["divergences"], bool(r.diagnostics["max_rhat"] <= 1.01)  # exact for the locked versions
    (0, True)
    """
    groups_t = _as_tuple(groups)
    covs = _as_tuple(covariates)
    _check_sampler_arguments(sampler, draws, chains, tune, rope, hyper_scale)
    marginal = _use_marginal(parameterisation, sampler)

    if sampler == "nutpie":
        compiling = _start_kernel_compilation(marginal)
        import nutpie  # noqa: F401  (the heavy import overlaps with the kernel compilation)

        if compiling is not None:
            compiling.join()
    cs, counts, warns = _change_scores(
        data, outcome, arm, wave, unit, groups_t, covs, treated, control, pre, post
    )
    st = _sufficient_stats(cs, groups_t, covs)
    prior_name, prior_mu, prior_sd = _resolve_prior(prior, st.sd_y)
    if not (math.isfinite(prior_sd) and prior_sd > 0 and math.isfinite(prior_mu)):
        raise DesignError(
            f"the effect prior needs a finite mean and positive SD, got ({prior_mu}, {prior_sd})",
            field="prior",
        )
    tune = _default_tune(draws, st) if tune is None else tune
    model = _MarginalDensity if marginal else _DiDDensity
    dens = model(st, prior_mu / st.sd_y, prior_sd / st.sd_y, hyper_scale)
    seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else int(seed)
    fit = _sample_nutpie if sampler == "nutpie" else _sample_pymc
    idata = fit(dens, int(draws), int(tune), int(chains), seed, covs, **sampler_kwargs)
    if marginal:
        _attach_conditional_draws(idata, dens, np.random.default_rng([seed, 2]))

    rng = np.random.default_rng(seed + 1)
    _attach_predictive(idata, st, rng)
    diag_vars = [v for v in idata.posterior.data_vars if idata.posterior[v].size > 0]
    diag = diagnose(idata, diag_vars)
    eff = _flat(idata, "effect")
    lo, hi = hdi(eff)
    rope_units = rope * st.sd_y
    level_tabs = _level_tables(idata, st, cs, rng, rope_units) if groups_t else {}

    warns = list(warns) + diag["warnings"]
    n_top = st.levels[0].n if st.levels else None
    if st.levels and n_top < BAYES_FEW_TOP_CLUSTERS:
        warns.append(
            f"Only {n_top} {st.levels[0].name} cluster(s): how much {st.levels[0].name}s differ is informed "
            "mostly by the prior, so the interval leans on it; see prior_sensitivity()."
        )
    method = (
        f"Bayesian hierarchical DiD on change scores ({' > '.join(groups_t) or 'no groups'}; varying trends "
        f"and effects{', integrated out exactly' if marginal and groups_t else ''}), NUTS via {sampler}; "
        "posterior mean, 95% HDI; no p-value"
    )
    extra = _extra_rows(idata, st, level_tabs, groups_t, analysis, outcome, method, counts, n_top)
    details = dict(counts)
    details.update(
        n_cells=len(st.n),
        n_clusters_by_level={lv.name: lv.n for lv in st.levels},
        cluster_randomised_levels=[lv.name for lv in st.levels if lv.n_both == 0],
        sd_baseline=st.sd_y,
        effect_sd_units=float(eff.mean() / st.sd_y),
        rope_sd_units=rope,
        seed=seed,
        sampler=sampler,
        draws=int(draws),
        chains=int(chains),
        tune=int(tune),
        parameterisation="marginal" if marginal else "noncentred",
        p_value_note="NaN by design: a Bayesian posterior has no p-value; see prob_positive.",
    )
    if warns:
        for w in warns:
            warnings.warn(w, EvalToolkitWarning, stacklevel=2)
    return BayesDiDResult(
        analysis=analysis,
        outcome=outcome,
        term="treat:post",
        estimate=float(eff.mean()),
        std_error=float(eff.std(ddof=1)),
        ci_lower=lo,
        ci_upper=hi,
        p_value=math.nan,
        n_obs=int(counts["n_obs"]),
        n_clusters=n_top,
        method=method,
        extra_rows=extra,
        warnings=warns,
        details=details,
        idata=idata,
        posterior_median=float(np.median(eff)),
        prob_positive=float((eff > 0).mean()),
        prob_rope=float((np.abs(eff) < rope_units).mean()),
        rope=rope_units,
        prior=_prior_record(prior_name, prior_mu, prior_sd, hyper_scale),
        diagnostics=diag,
        level_effects=level_tabs,
        change_data=cs,
    )


def _prior_record(name: str, mu: float, sigma: float, hyper_scale: float) -> dict[str, Any]:
    """Every prior of the fit, as stored in ``BayesDiDResult.prior``."""
    return {
        "name": name,
        "mu": mu,
        "sigma": sigma,
        "trend": f"Normal(0, {TREND_PRIOR_SD} SD)",
        "sigma_change": f"Exponential(rate {SIGMA_RATE} per SD)",
        "varying_sds": f"Half-Normal({hyper_scale:.4g} SD)"
        + (" (ICC scale: 95% below an ICC of 0.05)" if hyper_scale == HYPER_SCALE else ""),
        "covariates": "Normal(0, 1) per covariate SD, in outcome SDs",
    }


def _check_sampler_arguments(sampler, draws, chains, tune, rope, hyper_scale) -> None:
    """The sampler settings, refused in plain words when they cannot work."""
    if sampler not in ("nutpie", "pymc"):
        raise DesignError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}", field="sampler")
    for nm, val in [("draws", draws), ("chains", chains)]:
        if not isinstance(val, (int, np.integer)) or isinstance(val, bool) or val < 1:
            raise DesignError(f"{nm} must be a positive whole number, got {val!r}", field=nm)
    if draws < 20:
        raise DesignError(
            f"draws={draws} is too few to summarise a posterior (use at least 20)", field="draws"
        )
    if tune is not None and (not isinstance(tune, (int, np.integer)) or tune < 0):
        raise DesignError(f"tune must be a non-negative whole number, got {tune!r}", field="tune")
    if not (isinstance(rope, (int, float)) and rope >= 0 and math.isfinite(rope)):
        raise DesignError(
            f"rope must be a non-negative number (baseline-SD units), got {rope!r}", field="rope"
        )
    if not (isinstance(hyper_scale, (int, float)) and hyper_scale > 0 and math.isfinite(hyper_scale)):
        raise DesignError(f"hyper_scale must be positive, got {hyper_scale!r}", field="hyper_scale")


def _use_marginal(parameterisation: str, sampler: str) -> bool:
    """True for the marginal model (nutpie only: the PyMC cross-check is the non-centred model)."""
    if parameterisation not in ("marginal", "noncentred"):
        raise DesignError(
            f"parameterisation must be 'marginal' or 'noncentred', got {parameterisation!r}",
            field="parameterisation",
        )
    return parameterisation == "marginal" and sampler == "nutpie"


def _attach_conditional_draws(idata, dens: _MarginalDensity, rng: np.random.Generator) -> None:
    """Add the effect, the trend and every cluster's deviations (exact conditional draws) to ``idata.posterior``."""
    import xarray as xr

    n_ch, n_dr = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    dims, coords = _cluster_coords(dens.st)
    base = {"chain": idata.posterior.chain.values, "draw": idata.posterior.draw.values}
    data = {
        name: (("chain", "draw", *dims.get(name, ())), z.reshape(n_ch, n_dr, *z.shape[1:]))
        for name, z in dens.conditional_draws(idata, rng).items()
    }
    used = {d for name in data for d in dims.get(name, ())}
    extra = xr.Dataset(data, coords={**base, **{d: coords[d] for d in used}})
    idata.posterior = xr.merge([extra, idata.posterior], combine_attrs="override")


def _default_tune(draws: int, st) -> int:
    """Warm-up length: 40% of the draws (200 to 1000), longer when a level has fewer than 5 clusters."""
    tune = int(min(1000, max(200, 2 * draws // 5)))
    if any(level.n < 5 for level in st.levels):
        # few clusters leave the variance components weakly identified: the short warm-up tuned on
        # the 100-team benchmark then diverges (three schools: R-hat 1.45, 600 divergences at 400)
        tune = max(tune, min(1000, int(draws)))
    return tune


def _attach_predictive(idata, st, rng) -> None:
    """Add the posterior predictive cell mean changes and the observed ones to ``idata`` (for ppc_plot)."""
    import xarray as xr

    _, rep_c = _posterior_predictive(idata, st, rng)
    n_ch, n_dr = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    cell_dim = np.arange(len(st.n))
    ppc = xr.Dataset(
        {"cell_mean_change": (("chain", "draw", "cell"), rep_c.reshape(n_ch, n_dr, -1))},
        coords={"chain": idata.posterior.chain.values, "draw": idata.posterior.draw.values, "cell": cell_dim},
    )
    obs = xr.Dataset(
        {"cell_mean_change": (("cell",), st.m * st.sd_y), "cell_size": (("cell",), st.n)},
        coords={"cell": cell_dim},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        idata.add_groups(posterior_predictive=ppc, observed_data=obs)


def _extra_rows(idata, st, level_tabs, groups_t, analysis, outcome, method, counts, n_top) -> list[dict]:
    """Rows for the estimates table: the effect in each top-level cluster, the varying-effect SDs and sigma."""
    extra = []
    for name, tab in level_tabs.items():
        if name != groups_t[0]:
            continue
        for _, r in tab.iterrows():
            extra.append(
                {
                    "analysis": analysis,
                    "outcome": outcome,
                    "term": f"effect[{name}={r['cluster']}]",
                    "estimate": r["mean"],
                    "std_error": r["sd"],
                    "ci_lower": r["hdi_lower"],
                    "ci_upper": r["hdi_upper"],
                    "p_value": math.nan,
                    "n_obs": 2 * (r["n_treated"] + r["n_control"]),
                    "n_clusters": 1,
                    "method": method,
                }
            )
    for v in [f"sd_effect_{lv.name}" for lv in st.levels] + ["sigma_change"]:
        x = _flat(idata, v)
        a, b = hdi(x)
        extra.append(
            {
                "analysis": analysis,
                "outcome": outcome,
                "term": v,
                "estimate": float(x.mean()),
                "std_error": float(x.std(ddof=1)),
                "ci_lower": a,
                "ci_upper": b,
                "p_value": math.nan,
                "n_obs": counts["n_obs"],
                "n_clusters": n_top,
                "method": method,
            }
        )
    return extra


# --------------------------------------------------------------------------------------------------
# prior sensitivity
# --------------------------------------------------------------------------------------------------
@dataclass
class PriorSensitivityResult:
    """Fits under several effect priors, side by side.

    Attributes
    ----------
    results : dict of str -> BayesDiDResult
    sentence : str
        How much the conclusion rests on the prior, in plain words.
    rests_on_prior : bool
        True when the choice of prior changes the conclusion materially.
    """

    results: dict[str, BayesDiDResult]
    sentence: str
    rests_on_prior: bool
    comparison: pd.DataFrame

    @property
    def table(self) -> pd.DataFrame:
        """Contract columns, one row per prior (``term`` = ``treat:post [prior=...]``)."""
        rows = []
        for name, r in self.results.items():
            row = r.headline_row()
            row["term"] = f"treat:post [prior={name}]"
            rows.append(row)
        return pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))


def prior_sensitivity(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    unit: str,
    priors: Sequence[Any] = SENSITIVITY_PRIORS,
    **kwargs: Any,
) -> PriorSensitivityResult:
    """Fit :func:`bayes_did` under several effect priors and say how much the conclusion rests on them.

    Parameters
    ----------
    data, outcome, arm, wave, unit
        As in :func:`bayes_did`.
    priors : sequence
        Priors to compare (names from :mod:`evaltoolkit.estimators.bayes.priors`, Prior objects or (mu, sigma) pairs);
        default ``("default", "contact", "sceptical")``.
    **kwargs
        Everything else :func:`bayes_did` takes (``treated=`` is required). The same seed is used for
        every fit.

    Returns
    -------
    PriorSensitivityResult
        ``comparison`` (prior mean and SD, posterior mean, SD, HDI, P(effect > 0), P(negligible)),
        ``table`` (contract columns), ``sentence`` and ``rests_on_prior``.

    Examples
    --------
    >>> from evaltoolkit.simulate.dgps import simulate_panel
    >>> df = simulate_panel(n_sites=3, teams_per_site=1, people_per_team=40, effect=0.3, seed=5)
    >>> ps = prior_sensitivity(df, "y", "arm", "wave", "pid", treated="treated",
    ...                        priors=[(0, 1), (0, 0.1)], draws=200, chains=2, seed=1)
    >>> len(ps.comparison)
    2
    """
    if not priors:
        raise DesignError("priors must list at least one prior", field="priors")
    kwargs.setdefault("seed", 20240601)
    results: dict[str, BayesDiDResult] = {}
    rows = []
    for p in priors:
        with warnings.catch_warnings(record=True):  # each fit keeps its own warnings in r.warnings
            warnings.simplefilter("always", EvalToolkitWarning)
            r = bayes_did(data, outcome, arm, wave, unit, prior=p, **kwargs)
        label = r.prior["name"] if isinstance(p, str) or hasattr(p, "mu") else f"N({p[0]:g}, {p[1]:g})"
        if label in results:
            label = f"{label} #{len(results) + 1}"
        results[label] = r
        rows.append(
            {
                "prior": label,
                "prior_mean": r.prior["mu"],
                "prior_sd": r.prior["sigma"],
                "posterior_mean": r.estimate,
                "posterior_median": r.posterior_median,
                "posterior_sd": r.std_error,
                "hdi_lower": r.ci_lower,
                "hdi_upper": r.ci_upper,
                "prob_positive": r.prob_positive,
                "prob_rope": r.prob_rope,
                "diagnostics_ok": bool(r.diagnostics.get("ok")),
                "checks": _checks_text(r.diagnostics),
            }
        )
    comp = pd.DataFrame(rows)
    sentence, rests = _sensitivity_sentence(comp, next(iter(results.values())))
    return PriorSensitivityResult(results=results, sentence=sentence, rests_on_prior=rests, comparison=comp)


def _checks_text(diag: dict) -> str:
    """The sampler checks of one fit in a few words: "passed", or what failed (shown beside its numbers)."""
    if diag.get("ok"):
        return "passed"
    failed = []
    if diag.get("divergences"):
        failed.append(f"{diag['divergences']} divergent transition(s)")
    rhat = diag.get("max_rhat", float("nan"))
    if not np.isfinite(rhat) or rhat > RHAT_MAX:
        failed.append(f"R-hat {rhat:.3f} > {RHAT_MAX}")
    ess = min(diag.get("min_ess_bulk", math.inf), diag.get("min_ess_tail", math.inf))
    if ess < diag.get("min_ess_required", 0):
        failed.append(f"effective draws {ess:.0f} < {diag['min_ess_required']}")
    if np.any(np.asarray(diag.get("bfmi", []), dtype=float) < BFMI_MIN):
        failed.append(f"energy-BFMI < {BFMI_MIN}")
    return "failed: " + "; ".join(failed or ["see the warnings"])


def _sensitivity_sentence(comp: pd.DataFrame, first: BayesDiDResult) -> tuple[str, bool]:
    means = comp["posterior_mean"].to_numpy()
    sds = comp["posterior_sd"].to_numpy()
    pp = comp["prob_positive"].to_numpy()
    spread = float(means.max() - means.min())
    ratio = spread / float(np.median(sds)) if np.median(sds) > 0 else math.inf
    excl = (comp["hdi_lower"] > 0) | (comp["hdi_upper"] < 0)
    conclusion_flips = bool(excl.any() and not excl.all()) or bool((pp > 0.9).any() and (pp < 0.9).any())
    rests = conclusion_flips or ratio > 0.5
    parts = [
        f"{r.prior} prior: {r.posterior_mean:+.2f} (95% HDI {r.hdi_lower:+.2f} to {r.hdi_upper:+.2f}, "
        f"P(effect > 0) = {100 * r.prob_positive:.0f}%)"
        for r in comp.itertuples()
    ]
    clusters = (
        f" With only {first.n_clusters} clusters"
        if first.n_clusters and first.n_clusters < BAYES_FEW_TOP_CLUSTERS
        else ""
    )
    if rests:
        verdict = (
            f"The posterior mean moves by {spread:.2f} ({ratio:.1f} posterior SDs) across priors"
            + (
                " and whether the interval excludes zero or P(effect > 0) exceeds 90% depends on the prior"
                if conclusion_flips
                else ""
            )
            + ", so the conclusion rests substantially on the prior:"
            + (
                clusters.lower() + " the data alone cannot settle it."
                if clusters
                else " the data alone cannot settle it."
            )
        )
    else:
        verdict = (
            f"The posterior mean moves by only {spread:.2f} ({ratio:.1f} posterior SDs) across priors, so "
            "the conclusion is driven by the data, not the prior."
        )
    failed = [str(p) for p, ok in zip(comp["prior"], comp["diagnostics_ok"], strict=True) if not ok]
    if failed:  # never "driven by the data" when a fit did not pass its checks
        failure = (
            f"The fit under the {', '.join(failed)} prior{'s' if len(failed) > 1 else ''} failed the sampler's "
            "checks (see 'Sampler checks' in the table)"
        )
        verdict = (
            f"{verdict} {failure}, too." if rests
            else f"{failure}, so how much the conclusion rests on the prior cannot be judged yet: run longer "
            "chains (more draws and warm-up) before relying on this comparison."
        )  # fmt: skip
    return "; ".join(parts) + ". " + verdict, rests


# --------------------------------------------------------------------------------------------------
# simulation (used by tests, benchmarks and examples)
# --------------------------------------------------------------------------------------------------
