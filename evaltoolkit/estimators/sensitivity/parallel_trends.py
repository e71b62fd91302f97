"""Parallel trends made explicit: a pre-trend test with its power, and honest bounds.

A difference-in-differences estimate is only as good as its parallel-trends assumption. With two or more
pre-programme waves the event study (:func:`~evaltoolkit.estimators.did.did`'s ``event_study``) shows the arms'
difference before the programme; this module turns that into numbers a report can stand behind:

* :func:`event_study_estimates` - the event-study coefficients (every wave against the last pre-programme
  wave) and their cluster-robust covariance matrix, refitted from the data exactly as :func:`did` fits them;
  :meth:`EventStudyEstimates.from_arrays` takes published ones.
* :func:`pretrend_test` - the joint Wald test that every pre-programme coefficient is zero (F with the
  cluster degrees of freedom ``G - 1``).
* :func:`pretrend_power` - following Roth (2022, *AER: Insights* 4(3), "Pretest with caution"): the power of
  that test against a linear violation of parallel trends (a slope the user names, and the slopes the test
  detects half and four-fifths of the time), the bias such a trend puts into each post-programme estimate, and
  the bias that remains *when the pre-test is passed* (conditioning on passing can make it worse).
* :func:`relative_magnitudes_bounds` and :func:`smoothness_bounds` - Rambachan & Roth (2023, *Review of
  Economic Studies* 90(5), "A more credible approach to parallel trends") confidence sets for the
  post-programme effect (or any ``l_vec`` combination of the post-programme effects) when parallel trends
  may fail: by at most ``Mbar`` times the largest pre-programme wave-to-wave change (Delta^RM, the
  conditional-least-favourable hybrid test of Andrews, Roth & Pakes, inverted over a grid), or by a change in
  slope of at most ``M`` per wave (Delta^SD, the optimal fixed-length interval). Each has its breakdown
  value: the smallest ``Mbar`` or ``M`` at which the set includes zero.
* :func:`one_pre_wave_statement` - with a single pre-programme wave there is no pre-trend to test; it says so
  and names the checks that carry the weight instead.

Waves are taken as equally spaced: event time ``-K, ..., -1`` for the pre-programme waves, ``0`` for the
reference (last pre-programme) wave and ``1, ..., T`` after it.

Examples
--------
HonestDiD's README example (Medicaid expansion and insurance coverage, five pre-periods and two post-periods;
the event study of ``dins ~ i(year, D, ref = 2013) | stfips + year`` clustered by state):

>>> es = EventStudyEstimates.from_arrays(MEDICAID_BETAHAT, MEDICAID_SIGMA, n_pre=5)
>>> sd = smoothness_bounds(es, m=[0.01])
>>> sd.table[["M", "lb", "ub"]].round(4).values.tolist()  # HonestDiD README: 0.0132 0.0787
[[0.01, 0.0132, 0.0787]]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, optimize, stats

from evaltoolkit.errors import DataError, DesignError, EstimationError
from evaltoolkit.estimators import did as _did
from evaltoolkit.estimators.formula import outcome_and_covariates
from evaltoolkit.inference.core import ols, vcov

__all__ = [
    "MEDICAID_BETAHAT",
    "MEDICAID_SIGMA",
    "EventStudyEstimates",
    "HonestBounds",
    "PreWaveStatement",
    "PretrendPower",
    "PretrendTest",
    "event_study_estimates",
    "one_pre_wave_statement",
    "pretrend_power",
    "pretrend_test",
    "relative_magnitudes_bounds",
    "smoothness_bounds",
]

#: HonestDiD README's event study (Medicaid expansion in 2014, share of low-income childless adults insured;
#: ``fixest::feols(dins ~ i(year, D, ref = 2013) | stfips + year, cluster = "stfips")`` on the Mixtape
#: Sessions ``ehec_data``, years 2008-2015 without the 2015 cohort; 43 states, 344 rows; refitted with
#: pyfixest 0.60, which matches fixest): coefficients for 2008-2012, then 2014-2015.
MEDICAID_BETAHAT = np.array(
    [-0.00528534242424266, -0.0112973183982686, -0.00267597554112577, -0.00141931190476211,
     0.00033967748917726, 0.04644686450216422, 0.06920618030302997]
)  # fmt: skip
#: the CR1 (by state) covariance matrix of :data:`MEDICAID_BETAHAT` (lower triangle, row by row).
MEDICAID_SIGMA = np.zeros((7, 7))
MEDICAID_SIGMA[np.tril_indices(7)] = [
    7.4884847103993406e-05,
    6.0398755243522357e-05, 7.2664990607520797e-05,
    4.4446186904778161e-05, 3.7893281156989398e-05, 5.0520507244055174e-05,
    3.3857655990030821e-05, 2.8665763072405852e-05, 2.6736779513640397e-05, 4.0032217795014939e-05,
    4.3280135086531132e-05, 4.5433213430977600e-05, 2.7781938330120696e-05, 2.4128608688486604e-05,
    5.4626653870843621e-05,
    4.7658821837674083e-05, 4.4288526851647148e-05, 3.0606454242834554e-05, 2.3808693710838627e-05,
    3.6825353163576007e-05, 8.3756740285161746e-05,
    2.4251295373345637e-05, 2.8246557930493337e-05, 9.6375480161745432e-06, 2.9239019090999072e-06,
    9.7229777899507756e-06, 6.3214033033887930e-05, 1.0712358152956362e-04,
]  # fmt: skip
MEDICAID_SIGMA = MEDICAID_SIGMA + np.tril(MEDICAID_SIGMA, -1).T


# ---- the event study ----------------------------------------------------------------------------------------
@dataclass
class EventStudyEstimates:
    """Event-study coefficients (pre-programme waves first, then post-programme waves) and their covariance.

    The reference wave (the last pre-programme wave) is left out: its coefficient is zero by construction.

    Attributes
    ----------
    betahat : ndarray, shape (K + T,)
    sigma : ndarray, shape (K + T, K + T)
    n_pre : int
        K, the number of pre-programme coefficients (pre-programme waves minus the reference wave).
    labels : list
        Wave of each coefficient.
    reference : label or None
        The reference wave.
    df : int or None
        Degrees of freedom of the pre-trend F test (clusters minus one); ``None`` uses the chi-squared test.
    n_clusters, n_obs : int or None
    vcov : str
        How ``sigma`` was estimated.
    dropped : dict
        Rows not analysed, by reason.
    """

    betahat: np.ndarray
    sigma: np.ndarray
    n_pre: int
    labels: list = field(default_factory=list)
    reference: Any = None
    df: int | None = None
    n_clusters: int | None = None
    n_obs: int | None = None
    vcov: str = "given"
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.betahat = np.asarray(self.betahat, dtype=float).ravel()
        self.sigma = np.asarray(self.sigma, dtype=float)
        k = len(self.betahat)
        if self.sigma.shape != (k, k):
            raise DataError(
                f"sigma must be {k} x {k} (one row and column per coefficient), not {self.sigma.shape}"
            )
        if not 1 <= self.n_pre < k:
            raise DataError(
                f"n_pre must be between 1 and {k - 1} (at least one pre- and one post-programme coefficient)"
            )
        if (
            not np.allclose(self.sigma, self.sigma.T, rtol=1e-8, atol=0)
            or np.linalg.eigvalsh(self.sigma)[0] < -1e-12 * np.abs(self.sigma).max()
        ):
            raise DataError("sigma must be a symmetric positive semi-definite covariance matrix")
        if not self.labels:
            self.labels = [*range(-self.n_pre, 0), *range(1, self.n_post + 1)]

    @classmethod
    def from_arrays(cls, betahat: Sequence[float], sigma: Any, n_pre: int, *, df: int | None = None,
                    labels: Sequence | None = None) -> EventStudyEstimates:  # fmt: skip
        """Published (or elsewhere estimated) coefficients: ``n_pre`` pre-programme ones first.

        Examples
        --------
        >>> EventStudyEstimates.from_arrays([0.1, 0.0, 0.5], np.eye(3) / 100, n_pre=2).times.tolist()
        [-2, -1, 1]
        """
        return cls(np.asarray(betahat, dtype=float), np.asarray(sigma, dtype=float), int(n_pre), df=df,
                   labels=list(labels) if labels is not None else [])  # fmt: skip

    @property
    def n_post(self) -> int:
        """T, the number of post-programme coefficients."""
        return len(self.betahat) - self.n_pre

    @property
    def times(self) -> np.ndarray:
        """Event time of each coefficient: ``-K..-1`` before, ``1..T`` after the reference wave."""
        return np.r_[np.arange(-self.n_pre, 0), np.arange(1, self.n_post + 1)]

    def default_l(self, l_vec: Sequence[float] | None) -> np.ndarray:
        """``l_vec`` checked (default: the first post-programme wave)."""
        if l_vec is None:
            return np.eye(self.n_post)[0]
        out = np.asarray(l_vec, dtype=float).ravel()
        if len(out) != self.n_post or not np.any(out):
            raise DataError(f"l_vec needs {self.n_post} weights (one per post-programme wave), not all zero")
        return out


def event_study_estimates(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    *,
    treated,
    pre: Sequence,
    post,
    control=None,
    unit: str | None = None,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
    weights: str | None = None,
    dichotomise=None,
    vcov_type: str = "CR1",
    result: Any = None,
) -> EventStudyEstimates:
    """The event study of :func:`~evaltoolkit.estimators.did.did` with its full covariance matrix.

    The same rows, design and fixed effects as ``did(data, outcome, arm, wave, ...)`` (same arguments), the
    wave-by-arm terms against the last ``pre`` wave, and the covariance matrix of all of them: CR1 by
    ``cluster`` (by ``unit`` in a panel without one), or ``vcov_type="CR2"``/``"HC1"``.

    Parameters
    ----------
    data, outcome, arm, wave, treated, pre, post, control, unit, cluster, covariates, weights, dichotomise
        As for :func:`~evaltoolkit.estimators.did.did`; ``pre`` must list two or more waves.
    vcov_type : {"CR1", "CR2", "HC1"}
    result : DiDResult, optional
        The ``did()`` result these arguments gave: its event-study estimates are checked against the refit.

    Returns
    -------
    EventStudyEstimates

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n = 200
    >>> people = pd.DataFrame({"pid": range(n), "arm": np.where(np.arange(n) < 100, "ncs", "control")})
    >>> long = pd.concat([people.assign(wave=w) for w in ("w1", "w2", "w3", "w4")], ignore_index=True)
    >>> long["y"] = rng.normal(size=n)[long.pid] + rng.normal(size=len(long))
    >>> es = event_study_estimates(long, "y", "arm", "wave", treated="ncs", pre=["w1", "w2", "w3"],
    ...                            post="w4", unit="pid")
    >>> es.labels, es.reference, es.n_clusters, es.df
    (['w1', 'w2', 'w4'], 'w3', 200, 199)
    """
    outcome, covariates = outcome_and_covariates(outcome, covariates)
    a = _did._arguments(data, outcome, arm, wave, treated, control, pre, post, unit, cluster, covariates, weights,
                        "auto")  # fmt: skip
    if len(a.pres) < 2:
        raise DesignError(
            "parallel trends cannot be checked with one pre-programme wave: give two or more waves in pre "
            "(or use one_pre_wave_statement() to say which other checks carry the weight)",
            field="pre",
        )
    df, dropped = _did._select_rows(data, a)
    df = _did._outcome_column(df, outcome, dichotomise)
    p = _did._panel_checks(df, a, dropped)
    x = _did._design(p, a, pooled=False)
    ref = len(a.pres) - 1
    waves = [(i, w) for i, w in enumerate(a.all_waves) if i != ref]
    cols = [(p.is_t & (p.wcode == i)).astype(float) for i, _ in waves]
    fit = ols(p.y, np.column_stack([*cols, *x.Xcols]), names=[f"treat:{w}" for _, w in waves] + x.names,
              weights=x.w_arr, absorb=x.fe)  # fmt: skip
    cl_col = a.cluster if a.cluster is not None else (a.unit if p.panel else None)
    if vcov_type in ("CR1", "CR2") and cl_col is None:
        raise DataError("cluster-robust covariance needs cluster (or unit, for a panel)", field="cluster")
    cl = p.df[cl_col].to_numpy() if cl_col is not None else None
    V = vcov(fit, vcov_type, cluster=cl) if vcov_type != "HC1" else vcov(fit, "HC1")
    k = len(waves)
    n_clusters = int(pd.unique(cl).size) if cl is not None and vcov_type != "HC1" else None
    es = EventStudyEstimates(
        fit.coef[:k], V[:k, :k], n_pre=ref, labels=[w for _, w in waves], reference=a.all_waves[ref],
        df=n_clusters - 1 if n_clusters else None, n_clusters=n_clusters, n_obs=len(p.df),
        vcov=f"{vcov_type} by {cl_col}" if n_clusters else vcov_type,
        dropped={r: v for r, v in dropped.items() if v},
    )  # fmt: skip
    if result is not None:
        _check_against(es, result)
    return es


def _check_against(es: EventStudyEstimates, result: Any) -> None:
    """The refit must be the event study of ``result`` (the same arguments were passed)."""
    table = getattr(result, "event_study", None)
    if table is None or table.empty:
        raise DataError(
            "result has no event study: pass the did() result of a design with two or more pre waves"
        )
    by_wave = dict(zip(table["wave"], table["estimate"]))
    theirs = np.array([by_wave.get(w, np.nan) for w in es.labels], dtype=float)
    if not np.allclose(theirs, es.betahat, rtol=1e-7, atol=1e-10):
        raise DataError(
            "the event study refitted from these arguments differs from result.event_study: pass the same "
            "data and arguments as the did() call"
        )


# ---- the pre-trend test and its power (Roth 2022) -----------------------------------------------------------
@dataclass
class PretrendTest:
    """Joint Wald test that every pre-programme event-study coefficient is zero.

    ``statistic`` is ``W / K`` (F with ``df1 = K``, ``df2`` = clusters - 1) when ``df2`` is known, else
    ``W`` (chi-squared with ``K`` df); ``critical_wald`` is the value of ``W`` above which it rejects.
    """

    wald: float
    df1: int
    df2: int | None
    statistic: float
    p_value: float
    critical_wald: float
    alpha: float

    @property
    def rejected(self) -> bool:
        """Whether the pre-trend test rejects parallel pre-trends at ``alpha``."""
        return bool(self.p_value < self.alpha)

    @property
    def text(self) -> str:
        """One plain sentence for a report."""
        test = f"F({self.df1}, {self.df2}) = {self.statistic:.2f}" if self.df2 else (
            f"chi-squared({self.df1}) = {self.statistic:.2f}")  # fmt: skip
        verdict = (
            "the arms were already moving apart before the programme"
            if self.rejected
            else "no clear difference in trends before the programme (which does not show that there was none)"
        )
        return f"Joint test of the {self.df1} pre-programme differences: {test}, p = {self.p_value:.3g}; {verdict}."


def _critical_wald(k: int, df2: int | None, alpha: float) -> float:
    return float(k * stats.f.ppf(1 - alpha, k, df2)) if df2 else float(stats.chi2.ppf(1 - alpha, k))


def pretrend_test(es: EventStudyEstimates, *, alpha: float = 0.05) -> PretrendTest:
    """Joint Wald test of the pre-programme coefficients (F with the cluster df, or chi-squared).

    Examples
    --------
    >>> es = EventStudyEstimates.from_arrays(MEDICAID_BETAHAT, MEDICAID_SIGMA, n_pre=5, df=42)
    >>> t = pretrend_test(es)
    >>> round(t.statistic, 4), round(t.p_value, 4)  # R: pf(W / 5, 5, 42, lower.tail = FALSE)
    (0.8294, 0.5361)
    """
    b, V = es.betahat[: es.n_pre], es.sigma[: es.n_pre, : es.n_pre]
    k = es.n_pre
    w = float(b @ np.linalg.solve(V, b))
    if es.df:
        stat, p = w / k, float(stats.f.sf(w / k, k, es.df))
    else:
        stat, p = w, float(stats.chi2.sf(w, k))
    return PretrendTest(w, k, es.df, stat, p, _critical_wald(k, es.df, alpha), alpha)


@dataclass
class PretrendPower:
    """Power of the pre-trend test against linear trends, and the bias they leave (Roth 2022).

    ``table`` has one row per slope and post-programme wave: ``slope`` (difference in trends per wave, in
    outcome units), ``scenario``, ``power`` (chance the pre-trend test rejects), ``wave``, ``bias`` (what the
    trend adds to that wave's estimate) and ``bias_if_passed`` (its expected value given the test is passed).
    """

    table: pd.DataFrame
    alpha: float
    slope_50: float
    slope_80: float


def _wald_power(ncp: float, k: int, crit: float) -> float:
    return float(stats.ncx2.sf(crit, k, ncp)) if ncp > 0 else float(stats.chi2.sf(crit, k))


def _slope_for_power(q: float, k: int, crit: float, power: float, alpha: float) -> float:
    """Slope whose trend the Wald test rejects with probability ``power`` (``q = t' Sigma^-1 t``)."""
    if power <= alpha:
        return 0.0
    f = lambda ncp: _wald_power(ncp, k, crit) - power  # noqa: E731
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    ncp = optimize.brentq(f, 0.0, hi, xtol=1e-12, rtol=1e-12)
    return math.sqrt(ncp / q)


def _mean_given_pass(r: float, k: int, crit: float) -> tuple[float, float]:
    """For ``z ~ N(r e1, I_k)``: P(|z|^2 <= crit) and E[z1 | |z|^2 <= crit] (one integral over z1)."""
    c = math.sqrt(crit)

    def rest(z1: float) -> float:  # P(chi2_{k-1} <= crit - z1^2)
        return stats.chi2.cdf(crit - z1 * z1, k - 1) if k > 1 else 1.0

    pdf = lambda z1: stats.norm.pdf(z1 - r) * rest(z1)  # noqa: E731
    p = integrate.quad(pdf, -c, c, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    m = integrate.quad(lambda z1: z1 * pdf(z1), -c, c, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    return p, m / p


def pretrend_power(
    es: EventStudyEstimates,
    slope: float | Sequence[float] | None = None,
    *,
    alpha: float = 0.05,
) -> PretrendPower:
    """Power of :func:`pretrend_test` against ``delta_t = slope * t`` and the bias that trend leaves.

    With the covariance treated as known (Roth's setting), the Wald statistic under a linear trend is
    non-central chi-squared with ``K`` df and non-centrality ``slope^2 t' Sigma_pre^-1 t``; the power is that
    of the chi-squared test (the F test with few clusters rejects a little less often). The bias of a post-programme estimate is
    ``slope * t``; given the pre-test is passed it is ``slope * t + Sigma_post,pre Sigma_pre^-1
    (E[beta_pre | pass] - slope * t_pre)`` (Roth 2022, section 3), computed by one numerical integral.

    Parameters
    ----------
    es : EventStudyEstimates
    slope : float or list of float, optional
        Difference in trends per wave to evaluate (outcome units); the slopes the test detects with 50% and
        80% power are always included.
    alpha : float
        Level of the pre-trend test.

    Returns
    -------
    PretrendPower

    Examples
    --------
    >>> es = EventStudyEstimates.from_arrays(MEDICAID_BETAHAT, MEDICAID_SIGMA, n_pre=5, df=42)
    >>> pw = pretrend_power(es)
    >>> round(pw.slope_50, 6), round(pw.slope_80, 6)  # R: uniroot on pchisq(qchisq(.95, 5), 5, ncp, FALSE)
    (0.003835, 0.005195)
    """
    K = es.n_pre
    t_pre, t_post = es.times[:K].astype(float), es.times[K:].astype(float)
    S_pre = es.sigma[:K, :K]
    S_post_pre = es.sigma[K:, :K]
    L = np.linalg.cholesky(S_pre)
    crit = _critical_wald(K, None, alpha)  # Sigma taken as known (Roth 2022): the chi-squared test
    q = float(t_pre @ np.linalg.solve(S_pre, t_pre))
    s50 = _slope_for_power(q, K, crit, 0.5, alpha)
    s80 = _slope_for_power(q, K, crit, 0.8, alpha)
    chosen = [] if slope is None else [float(s) for s in np.atleast_1d(slope)]
    rows = []
    for scenario, s in [*(("chosen", s) for s in chosen), ("50% power", s50), ("80% power", s80)]:
        mu = np.linalg.solve(L, s * t_pre)  # whitened mean of beta_pre
        r = float(np.linalg.norm(mu))
        if r > 0:
            p_pass, m1 = _mean_given_pass(r, K, crit)
            shift = L @ (mu / r) * (m1 - r)  # E[beta_pre | pass] - delta_pre
        else:
            p_pass, shift = 1 - _wald_power(0.0, K, crit), np.zeros(K)
        cond = s * t_post + S_post_pre @ np.linalg.solve(S_pre, shift)
        for j, w in enumerate(es.labels[K:]):
            rows.append(dict(scenario=scenario, slope=s, power=1 - p_pass, wave=w, bias=s * t_post[j],
                             bias_if_passed=cond[j]))  # fmt: skip
    return PretrendPower(pd.DataFrame(rows), alpha, s50, s80)


# ---- honest bounds (Rambachan & Roth 2023) ------------------------------------------------------------------
@dataclass
class HonestBounds:
    """Confidence sets for ``theta = l_vec' tau_post`` when parallel trends may fail by up to ``Mbar`` or ``M``.

    Attributes
    ----------
    restriction : {"relative magnitudes", "smoothness"}
    parameter : {"Mbar", "M"}
        The name of the column of ``table`` that holds the size of the allowed violation.
    table : DataFrame
        One row per value: the value, ``lb``, ``ub``, ``method`` ("C-LF" or "FLCI") and ``open`` (the set
        reaches the end of the grid of effects tested, so it may be wider than shown).
    estimate : float
        ``l_vec' beta_post``, the event-study estimate of ``theta``.
    original : tuple of float
        The usual confidence interval (parallel trends taken as exact).
    breakdown : float or None
        The smallest ``Mbar`` (``M``) at which the set includes zero (0 when even the smallest does; ``None``
        when no value up to 16 times the largest one asked for does).
    l_vec : ndarray
    alpha : float
    """

    restriction: str
    parameter: str
    table: pd.DataFrame
    estimate: float
    original: tuple[float, float]
    breakdown: float | None
    l_vec: np.ndarray
    alpha: float

    @property
    def text(self) -> str:
        """One plain sentence for a report."""
        what = (
            "post-programme violations of parallel trends up to Mbar times the largest pre-programme one"
            if self.parameter == "Mbar"
            else "a change in the slope of the difference in trends of up to M per wave"
        )
        if self.breakdown is None:
            return f"Allowing {what}, the {1 - self.alpha:.0%} set excludes zero at every value examined."
        if self.breakdown == 0:
            return f"Allowing {what}, the {1 - self.alpha:.0%} set includes zero even at the smallest value."
        return (f"Allowing {what}, the {1 - self.alpha:.0%} set excludes zero until {self.parameter} = "
                f"{self.breakdown:.3g} (the breakdown value).")  # fmt: skip


def _original(es: EventStudyEstimates, lv: np.ndarray, alpha: float) -> tuple[float, tuple[float, float]]:
    K = es.n_pre
    est = float(lv @ es.betahat[K:])
    se = math.sqrt(float(lv @ es.sigma[K:, K:] @ lv))
    z = stats.norm.ppf(1 - alpha / 2)
    return est, (est - z * se, est + z * se)


# Delta^RM: the conditional-least-favourable hybrid (Andrews, Roth & Pakes), as HonestDiD's "C-LF" -----------
def _rm_constraints(K: int, T: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """``A`` with ``A delta <= 0`` iff every wave-to-wave change is at most the pre-programme change ending at
    ``s`` (times ``Mbar`` after the programme); HonestDiD's ``.create_A_RM``."""
    n = K + T
    At = np.zeros((n, n + 1))
    At[np.arange(n), np.arange(n)], At[np.arange(n), np.arange(n) + 1] = -1.0, 1.0
    v = np.zeros(n + 1)
    v[K + s - 1], v[K + s] = -1.0, 1.0
    v = v if positive else -v
    ub = np.vstack([np.tile(v, (K, 1)), np.tile(mbar * v, (T, 1))])
    A = np.vstack([At - ub, -At - ub])
    A = A[(A * A).sum(axis=1) > 1e-10]
    return np.delete(A, K, axis=1)  # event time 0 is the reference


def _gamma(lv: np.ndarray) -> np.ndarray:
    """An invertible matrix with first row ``l`` (HonestDiD's ``.construct_Gamma``)."""
    last = int(np.flatnonzero(lv)[-1])
    return np.vstack([lv, np.eye(len(lv))[[j for j in range(len(lv)) if j != last]]])


def _dual_vertices(sd: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Vertices of ``{lam >= 0: lam' sd = 1, lam' X = 0}``: the test statistic is ``max_v v'y``."""
    m, k = X.shape
    W = np.column_stack([sd, X])
    e1 = np.eye(k + 1)[0]
    out = []
    for rows in itertools.combinations(range(m), k + 1):
        Msub = W[list(rows)].T
        if abs(np.linalg.det(Msub)) < 1e-12 * max(1.0, np.abs(Msub).max()) ** (k + 1):
            continue
        lam = np.linalg.solve(Msub, e1)
        if (lam >= -1e-10).all():
            v = np.zeros(m)
            v[list(rows)] = np.clip(lam, 0, None)
            out.append(v)
    if not out:
        raise EstimationError("the moment inequalities have no feasible dual vertex (check sigma)")
    return np.unique(np.round(np.array(out), 12), axis=0)


def _lf_cv(Sy: np.ndarray, V: np.ndarray, kappa: float, n_sims: int, seed: int, normal_draws) -> float:
    """The least-favourable critical value: the ``1 - kappa`` quantile of the statistic at ``E y = 0``."""
    m = len(Sy)
    if normal_draws is not None:
        flat = np.asarray(normal_draws, dtype=float).ravel()
        if flat.size < n_sims * m:
            raise DataError(f"normal_draws needs at least {n_sims * m} values")
        Z = flat[: n_sims * m].reshape(n_sims, m)  # filled row by row, as mvtnorm::rmvnorm
    else:
        Z = np.random.default_rng(seed).standard_normal((n_sims, m))
    lam, vec = np.linalg.eigh(Sy)
    root = (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T  # mvtnorm's symmetric square root
    return float(np.quantile(((Z @ root) @ V.T).max(axis=1), 1 - kappa))


def _arp_accepts(Y, a1, X, Sy, theta, alpha, kappa, lf_cv) -> np.ndarray:
    """Conditional (hybrid) test of ``E[Y - a1 theta - X d] <= 0`` for some ``d``, at each ``theta``."""
    sd = np.sqrt(np.diag(Sy))
    V = _dual_vertices(sd, X)
    y = Y[None, :] - theta[:, None] * a1[None, :]
    vals = y @ V.T
    j = vals.argmax(axis=1)
    eta = vals[np.arange(len(theta)), j]
    g = V[j]
    sg = g @ Sy
    s2 = (sg * g).sum(axis=1)
    b = sg / s2[:, None]
    num = (y - b * eta[:, None]) @ V.T
    den = 1.0 - b @ V.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
    vlo = np.where(den > 1e-9, ratio, -np.inf).max(axis=1)
    vup = np.where(den < -1e-9, ratio, np.inf).min(axis=1)
    sb = np.sqrt(s2)
    first = eta > lf_cv
    size = (alpha - kappa) / (1 - kappa)
    zlo, zup, stat = vlo / sb, np.minimum(vup, lf_cv) / sb, eta / sb
    inside = (zlo <= stat) & (stat <= zup) & ~first
    cval = np.zeros_like(stat)
    if inside.any():
        cval[inside] = np.maximum(0.0, stats.truncnorm.ppf(1 - size, zlo[inside], zup[inside]))
    return ~(first | (inside & (stat > cval)))


def _rm_accepts(es, lv, mbar, theta, alpha, n_sims, seed, normal_draws) -> np.ndarray:
    """Whether each ``theta`` is in the Delta^RM(Mbar) set: the union over the pre-programme change that binds."""
    K, T = es.n_pre, es.n_post
    Ginv = np.linalg.inv(_gamma(lv))
    kappa = alpha / 10
    accept = np.zeros(len(theta), dtype=bool)
    for s, positive in itertools.product(range(-(K - 1), 1), (True, False)):
        A = _rm_constraints(K, T, mbar, s, positive)
        A = A[np.abs(A[:, K:]).sum(axis=1) > 0]  # the moments that involve post-programme waves
        AG = A[:, K:] @ Ginv
        Y, Sy = A @ es.betahat, A @ es.sigma @ A.T
        V = _dual_vertices(np.sqrt(np.diag(Sy)), AG[:, 1:])
        lf = _lf_cv(Sy, V, kappa, n_sims, seed, normal_draws)
        accept |= _arp_accepts(Y, AG[:, 0], AG[:, 1:], Sy, theta, alpha, kappa, lf)
    return accept


def relative_magnitudes_bounds(
    es: EventStudyEstimates,
    mbar: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    *,
    l_vec: Sequence[float] | None = None,
    alpha: float = 0.05,
    grid: tuple[float, float] | None = None,
    grid_points: int = 1000,
    n_sims: int = 1000,
    seed: int = 0,
    normal_draws: np.ndarray | None = None,
) -> HonestBounds:
    """Honest confidence sets under relative magnitudes, Delta^RM(Mbar) (Rambachan & Roth 2023).

    Every post-programme wave-to-wave change in the difference in trends is at most ``Mbar`` times the largest
    pre-programme one. The set is the effects not rejected by the conditional-least-favourable hybrid test of
    Andrews, Roth & Pakes (first-stage size ``alpha / 10``), over ``grid_points`` effects from ``grid``
    (default ``+-20`` standard errors of the estimate around zero, as HonestDiD), for each pre-programme change
    that may be the largest, either sign (HonestDiD's ``createSensitivityResults_relativeMagnitudes``, method
    "C-LF"). Its least-favourable critical value is simulated from ``n_sims`` draws (``seed``, or your own
    standard normal ``normal_draws``, read row by row as R's ``mvtnorm::rmvnorm``). Unlike HonestDiD's
    one-post-wave shortcut, the second stage is always conditioned on passing the first (as in the paper).

    Parameters
    ----------
    es : EventStudyEstimates
    mbar : list of float
        Values of Mbar (0 allows no post-programme violation at all; 1 one as large as the largest before).
    l_vec : list of float, optional
        Weights of the post-programme effects in ``theta`` (default: the first post-programme wave).
    alpha : float
        1 - coverage.

    Returns
    -------
    HonestBounds

    Examples
    --------
    >>> es = EventStudyEstimates.from_arrays(MEDICAID_BETAHAT, MEDICAID_SIGMA, n_pre=5)
    >>> rm = relative_magnitudes_bounds(es, mbar=[1.0])
    >>> rm.table[["Mbar", "lb", "ub"]].round(4).values.tolist()  # HonestDiD README (2022-24): 0.0170 0.0720
    [[1.0, 0.017, 0.072]]
    """
    lv = es.default_l(l_vec)
    est, orig = _original(es, lv, alpha)
    K = es.n_pre
    sd_theta = math.sqrt(float(lv @ es.sigma[K:, K:] @ lv))
    lo, hi = grid if grid is not None else (-20 * sd_theta, 20 * sd_theta)
    theta = np.linspace(lo, hi, grid_points)
    rows = []
    for mb in mbar:
        acc = _rm_accepts(es, lv, float(mb), theta, alpha, n_sims, seed, normal_draws)
        inside = theta[acc]
        rows.append(dict(Mbar=float(mb), lb=inside.min() if acc.any() else np.nan,
                         ub=inside.max() if acc.any() else np.nan, method="C-LF",
                         open=bool(acc[0] or acc[-1])))  # fmt: skip
    zero = np.zeros(1)
    breakdown = _breakdown(
        lambda mb: bool(_rm_accepts(es, lv, mb, zero, alpha, n_sims, seed, normal_draws)[0]), max(mbar)
    )
    return HonestBounds("relative magnitudes", "Mbar", pd.DataFrame(rows), est, orig, breakdown, lv, alpha)


def _breakdown(includes_zero, top: float, tol: float = 1e-3) -> float | None:
    """The smallest value at which ``includes_zero`` holds (bisection), searching up to 16 x ``top``."""
    if includes_zero(0.0):
        return 0.0
    hi = top if top > 0 else 1.0
    for _ in range(5):
        if includes_zero(hi):
            break
        hi *= 2
    else:
        return None
    lo = 0.0
    while hi - lo > tol * max(hi, 1e-12):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if includes_zero(mid) else (mid, hi)
    return hi


# Delta^SD: the optimal fixed-length confidence interval (Armstrong & Kolesar; HonestDiD's FLCI) --------------
def _folded_cv(t: float, alpha: float) -> float:
    """The ``1 - alpha`` quantile of ``|N(t, 1)|``."""
    t = abs(t)
    f = lambda c: stats.norm.cdf(c - t) - stats.norm.cdf(-c - t) - (1 - alpha)  # noqa: E731
    lo, hi = max(0.0, t + stats.norm.ppf(1 - alpha) - 1e-9), t + stats.norm.ppf(1 - alpha / 2) + 1e-9
    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14))


def _flci(es: EventStudyEstimates, lv: np.ndarray, M: float, alpha: float,
          normal_draws: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:  # fmt: skip
    """Centre, half-length and pre-programme weights of the shortest fixed-length CI over Delta^SD(M).

    The estimator is ``l_pre' beta_pre + l' beta_post`` with ``l_pre`` the second differences of
    ``u = (u_1, ..., u_{K-1}, sum_t t l_t)``, so that it is unbiased under a linear trend; its worst-case bias
    is ``M (c + sum |u|)`` and the half-length ``sd * cv_alpha(bias / sd)``, which is convex in ``u``.
    With ``normal_draws`` the final critical value is their ``|z + t|`` quantile (HonestDiD simulates it).
    """
    K, T = es.n_pre, es.n_post
    S = float(np.arange(1, T + 1) @ lv)
    const = sum(abs(float(np.arange(1, s + 1) @ lv[T - s :])) for s in range(1, T + 1)) - S + abs(S)
    D = np.eye(K) - np.eye(K, k=-1)
    D2 = D @ D
    B, c0 = D2[:, : K - 1], D2[:, K - 1] * S  # l_pre = B u + c0
    scale = math.sqrt(float(lv @ es.sigma[K:, K:] @ lv))
    Sg = es.sigma / scale**2
    P, Q = Sg[:K, :K], Sg[:K, K:] @ lv
    post = float(lv @ Sg[K:, K:] @ lv)
    m = M / scale

    def sd_of(u):
        lp = B @ u + c0
        return math.sqrt(max(float(lp @ P @ lp + 2 * lp @ Q + post), 1e-300)), lp

    def half(x):
        u = x[: K - 1] - x[K - 1 :]
        s, lp = sd_of(u)
        bias = m * (const + float(x.sum()))
        t = bias / s
        c = _folded_cv(t, alpha)
        dc = (stats.norm.pdf(c - t) - stats.norm.pdf(-c - t)) / (
            stats.norm.pdf(c - t) + stats.norm.pdf(-c - t)
        )
        ds_du = B.T @ (P @ lp + Q) / s
        grad_u = (c - t * dc) * ds_du
        return s * c, np.r_[m * dc + grad_u, m * dc - grad_u]

    if K == 1:
        best = np.zeros(0)
    else:
        u_var = np.linalg.lstsq(B.T @ P @ B, -B.T @ (P @ c0 + Q), rcond=None)[0]  # the minimum-variance u
        fits = [
            optimize.minimize(half, np.r_[np.clip(u0, 0, None), np.clip(-u0, 0, None)], jac=True,
                              method="L-BFGS-B", bounds=[(0, None)] * (2 * (K - 1)),
                              options=dict(ftol=1e-15, gtol=1e-12, maxiter=2000))
            for u0 in (u_var, np.zeros(K - 1))
        ]  # fmt: skip
        x = min(fits, key=lambda r: r.fun).x
        best = x[: K - 1] - x[K - 1 :]
    s, lp = sd_of(best)
    t = m * (const + float(np.abs(best).sum())) / s
    cv = (
        _folded_cv(t, alpha)
        if normal_draws is None
        else float(np.quantile(np.abs(normal_draws + t), 1 - alpha))
    )
    hl = s * cv * scale
    centre = float(lp @ es.betahat[:K] + lv @ es.betahat[K:])
    return centre, hl, lp


def _sd_upper_bound(es: EventStudyEstimates, alpha: float) -> float:
    """HonestDiD's ``DeltaSD_upperBound_Mpre``: the largest one-sided upper bound of a pre-programme second
    difference (with one pre-programme coefficient: its standard error)."""
    K = es.n_pre
    if K < 2:
        return math.sqrt(es.sigma[0, 0])
    A = np.zeros((K - 1, K))
    for r in range(K - 2):
        A[r, r : r + 3] = [1, -2, 1]
    A[K - 2, K - 2 :] = [1, -2]
    se = np.sqrt(np.diag(A @ es.sigma[:K, :K] @ A.T))
    return float((A @ es.betahat[:K] + stats.norm.ppf(1 - alpha) * se).max())


def smoothness_bounds(
    es: EventStudyEstimates,
    m: Sequence[float] | None = None,
    *,
    l_vec: Sequence[float] | None = None,
    alpha: float = 0.05,
    normal_draws: np.ndarray | None = None,
) -> HonestBounds:
    """Honest confidence intervals under smoothness, Delta^SD(M) (Rambachan & Roth 2023).

    The difference in trends may bend: its slope may change by at most ``M`` (outcome units per wave) from
    one wave to the next; ``M = 0`` allows only a linear trend, extrapolated from the pre-programme waves.
    Each interval is the optimal fixed-length confidence interval (FLCI) of Armstrong & Kolesar, the
    procedure Rambachan & Roth recommend for Delta^SD (HonestDiD's ``createSensitivityResults``, method
    "FLCI"); the folded-normal critical value is computed exactly (HonestDiD simulates it from 10^6 draws:
    give ``normal_draws`` to do the same).

    Parameters
    ----------
    es : EventStudyEstimates
    m : list of float, optional
        Values of M (default: ten from 0 to the pre-programme upper bound, as HonestDiD).
    l_vec : list of float, optional
        Weights of the post-programme effects (default: the first post-programme wave).
    alpha : float

    Returns
    -------
    HonestBounds

    Examples
    --------
    >>> es = EventStudyEstimates.from_arrays(MEDICAID_BETAHAT, MEDICAID_SIGMA, n_pre=5)
    >>> smoothness_bounds(es, m=[0.03]).table[["lb", "ub"]].round(3).values.tolist()  # README: -0.00714 0.101
    [[-0.007, 0.101]]
    """
    lv = es.default_l(l_vec)
    est, orig = _original(es, lv, alpha)
    values = list(m) if m is not None else np.linspace(0, _sd_upper_bound(es, alpha), 10).tolist()
    rows = []
    for M in values:
        centre, hl, _ = _flci(es, lv, float(M), alpha, normal_draws)
        rows.append(dict(M=float(M), lb=centre - hl, ub=centre + hl, method="FLCI", open=False))

    def includes_zero(M: float) -> bool:
        centre, hl, _ = _flci(es, lv, M, alpha, normal_draws)
        return abs(centre) <= hl

    breakdown = _breakdown(includes_zero, max(values) if values else 0.0)
    return HonestBounds("smoothness", "M", pd.DataFrame(rows), est, orig, breakdown, lv, alpha)


# ---- one pre-programme wave ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreWaveStatement:
    """What a report says when parallel trends cannot be checked: a headline and the checks that carry it."""

    headline: str
    checks: tuple[tuple[str, str], ...]

    @property
    def text(self) -> str:
        """The headline and the checks as one paragraph."""
        return self.headline + " " + " ".join(f"{name}: {why}" for name, why in self.checks)


def one_pre_wave_statement() -> PreWaveStatement:
    """The statement for a design with a single pre-programme wave: no pre-trend test is possible.

    Examples
    --------
    >>> s = one_pre_wave_statement()
    >>> s.headline.split(":")[0]
    'Parallel trends cannot be checked with one pre-programme wave'
    >>> [name for name, _ in s.checks]
    ['Balance at baseline', 'Confounding sensitivity', 'Choice of comparison group']
    """
    return PreWaveStatement(
        "Parallel trends cannot be checked with one pre-programme wave: with a single survey before the "
        "programme there is no earlier trend to compare, so no test of it is reported, and the estimate rests "
        "on the assumption that the arms would have changed alike without the programme. Other checks carry "
        "the weight.",
        (
            ("Balance at baseline", "how alike the arms were before the programme, in background "
             "characteristics and in the outcome's level (standardised mean differences); arms that start "
             "alike are more likely to change alike."),
            ("Confounding sensitivity", "how strong an unmeasured difference between the arms would have to "
             "be to explain the effect away (omitted-variable bias bounds, E-value)."),
            ("Choice of comparison group", "whether the comparison people were recruited like the participants "
             "(same places, same time, same route in) and whether another comparison group gives the same "
             "answer."),
        ),
    )  # fmt: skip
