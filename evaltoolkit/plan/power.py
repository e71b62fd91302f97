"""Power, sample size and minimum detectable effect (MDES), by formula and by simulation.

By formula (:func:`power`): give any two of ``effect``, ``n`` (or ``n_clusters``) and ``power`` and the
third is solved. Effects are standardised (outcome SD units). The variance of the estimated effect is

* people assigned individually (participants may sit in teams, which inflates the variance by the
  design effect ``1 + (m - 1) * icc``):
  ``Var = deff * f / (P (1 - P) N)``, with ``f = 1`` (post-test only), ``1 - r**2`` (ANCOVA on the
  baseline score, r = pre-post correlation) or ``2 (1 - r)`` (change scores / DiD); degrees of
  freedom ``N - 2``;
* whole clusters assigned (schools, sites, towns; ``assignment="cluster"``), following Bloom (2006)
  and Dong & Maynard (2013, PowerUp!):
  ``Var = [icc (1 - R2_2) + (1 - icc)(1 - R2_1) / m] / (P (1 - P) J)`` with J clusters of m people,
  ``R2_1 = R2_2 = f``-equivalent share explained by the baseline, and ``J - 2`` degrees of freedom.

Power is computed from the noncentral t distribution (as statsmodels' ``TTestIndPower``), so
``power(effect=0.5, power=0.8)`` gives the textbook 64 people per arm (Cohen 1988, Table 2.4.1).
Attrition shrinks the analysed sample: ``N_analysed = N (1 - attrition)``.

By simulation (:func:`simulate_power`): simulate the design's study many times, run its primary
DiD each time, and count how often the effect is detected - this includes everything the formula
ignores (differential attrition, selection, Likert coarsening, clustering in one arm only).

Examples
--------
>>> import evaltoolkit as et
>>> r = et.power(effect=0.5, power=0.8)
>>> round(r.n / 2, 1)   # per arm; statsmodels TTestIndPower gives 63.77
63.8
>>> r = et.power(n=1200, power=0.8, icc=0.05, cluster_size=14, pre_post_corr=0.5, analysis="ancova")
>>> 0.15 < r.effect < 0.25
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evaltoolkit.errors import DesignError
from evaltoolkit.inference.policy import VERY_FEW_CLUSTERS

Analysis = Literal["posttest", "ancova", "did"]


@dataclass
class PowerResult:
    """Solved power calculation. ``effect`` is the MDES when it was the unknown."""

    effect: float
    n: float
    power: float
    alpha: float
    se: float
    df: float
    n_clusters: float | None
    cluster_size: float
    icc: float
    assignment: str
    analysis: str
    treated_share: float
    attrition: float
    pre_post_corr: float
    solved_for: str
    design_effect: float
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        keys = [
            "solved_for", "effect", "n", "n_clusters", "cluster_size", "power", "alpha", "icc",
            "pre_post_corr", "treated_share", "attrition", "assignment", "analysis", "design_effect", "se", "df",
        ]  # fmt: skip
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])

    def summary(self, outcome_sd: float | None = None, units: str = "points") -> str:
        """The calculation in words."""
        who = (
            f"{self.n_clusters:,.0f} clusters of {self.cluster_size:g} people"
            if self.assignment == "cluster"
            else f"{self.n:,.0f} people"
            + (f" in teams of {self.cluster_size:g}" if self.cluster_size > 1 else "")
        )
        text = (
            f"With {who} ({self.treated_share:.0%} in the programme, {self.attrition:.0%} lost before analysis, "
            f"ICC {self.icc:g}, {self.analysis} analysis"
            + (f" with pre-post correlation {self.pre_post_corr:g}" if self.analysis != "posttest" else "")
            + f"), a true effect of {self.effect:.3f} SD would be detected with {self.power:.0%} power "
            f"(two-sided alpha {self.alpha:g})."
        )
        if self.solved_for == "effect":
            text = text.replace("a true effect of", "the minimum detectable effect is").replace(
                " SD would be detected with", " SD, detected with"
            )
        if outcome_sd:
            text += f" On the outcome scale that is {self.effect * outcome_sd:.3f} {units}."
        for note in self.notes:
            text += " " + note
        return text


def _check(name: str, value: float | None, lo: float, hi: float, *, lo_open=False, hi_open=False) -> None:
    if value is None:
        return
    bad = (
        not np.isfinite(value)
        or (value <= lo if lo_open else value < lo)
        or (value >= hi if hi_open else value > hi)
    )
    if bad:
        lo_s = f"{'>' if lo_open else '>='} {lo}"
        hi_s = f"{'<' if hi_open else '<='} {hi}"
        raise DesignError(f"{name} must be {lo_s} and {hi_s} (got {value})", field=name)


def power(
    effect: float | None = None,
    n: float | None = None,
    power: float | None = None,
    *,
    alpha: float = 0.05,
    assignment: Literal["individual", "cluster"] = "individual",
    n_clusters: float | None = None,
    cluster_size: float = 1.0,
    icc: float = 0.0,
    pre_post_corr: float = 0.0,
    analysis: Analysis = "posttest",
    treated_share: float = 0.5,
    attrition: float = 0.0,
) -> PowerResult:
    """Solve for the one unknown of effect (MDES), sample size and power.

    Parameters
    ----------
    effect : float, optional
        Standardised effect (outcome SD units). Leave out to get the minimum detectable effect.
    n : float, optional
        People at baseline (individual assignment). For ``assignment="cluster"`` give ``n_clusters``
        and ``cluster_size`` instead (``n`` is then their product).
    power : float, optional
        Probability of detecting ``effect``; leave out to compute it.
    alpha : float
        Two-sided significance level.
    assignment : {"individual", "cluster"}
        Whether people or whole clusters (schools, sites) receive the programme.
    n_clusters : float, optional
        Clusters (cluster assignment); solved when it is the unknown and ``n`` is not given.
    cluster_size : float
        People per team/cluster (m). With individual assignment this inflates the variance by the
        design effect ``1 + (m - 1) icc`` (people in the same team resemble each other).
    icc : float
        Intra-cluster correlation of the outcome.
    pre_post_corr : float
        Correlation of baseline and follow-up scores (used by ``ancova`` and ``did``).
    analysis : {"posttest", "ancova", "did"}
    treated_share : float
        Share of people (or clusters) in the programme arm.
    attrition : float
        Share of baseline people not analysed (the analysed sample is ``n (1 - attrition)``).

    Returns
    -------
    PowerResult

    Examples
    --------
    >>> r = power(n_clusters=20, cluster_size=25, icc=0.15, assignment="cluster", power=0.8)
    >>> round(r.effect, 3)   # Bloom (2006) / PowerUp! formula; see tests for the R check
    0.568
    """
    _check_power_arguments(alpha, power, icc, pre_post_corr, treated_share, attrition, cluster_size, effect,
                           analysis, assignment)  # fmt: skip

    r = pre_post_corr
    f = {"posttest": 1.0, "ancova": 1.0 - r**2, "did": 2.0 * (1.0 - r)}[analysis]
    P = treated_share
    keep = 1.0 - attrition
    notes: list[str] = []

    if assignment == "cluster":
        if n is not None and n_clusters is None:
            n_clusters = n / cluster_size
        if n_clusters is not None:
            _check("n_clusters", n_clusters, 3, math.inf)

        def se_df(j: float) -> tuple[float, float]:
            m = cluster_size * keep
            var = (icc * f + (1 - icc) * f / m) / (P * (1 - P) * j)
            return math.sqrt(var), j - 2

        size_known = n_clusters is not None
        deff = 1 + (cluster_size - 1) * icc
        if icc == 0:
            notes.append("With an ICC of 0 clusters add no uncertainty; real clusters rarely behave so.")
    else:
        if n is not None:
            _check("n", n, 4, math.inf)
        deff = 1 + (cluster_size - 1) * icc

        def se_df(nn: float) -> tuple[float, float]:
            n_an = nn * keep
            return math.sqrt(deff * f / (P * (1 - P) * n_an)), n_an - 2

        size_known = n is not None

    unknowns = [
        name for name, v in (("effect", effect), ("size", size_known or None), ("power", power)) if not v
    ]
    if len(unknowns) != 1:
        raise DesignError(
            "give exactly two of effect, sample size (n, or n_clusters for cluster assignment) and power; "
            f"missing: {', '.join(unknowns) or 'none'}",
            field="power",
        )
    unknown = unknowns[0]

    def pow_at(delta: float, size: float) -> float:
        return _power_at(delta, *se_df(size), alpha)

    size_val = n_clusters if assignment == "cluster" else n
    if unknown == "power":
        power = pow_at(effect, size_val)
    elif unknown == "effect":
        se, df = se_df(size_val)
        if df < 1:
            raise DesignError("too few people or clusters to estimate anything", field="n")
        effect = optimize.brentq(lambda d: pow_at(d, size_val) - power, 1e-6, 100 * se + 10)
    else:
        lo = 3.0 + 1e-9 if assignment == "cluster" else 4.0
        if pow_at(effect, 1e7) < power:
            raise DesignError(
                f"no sample size reaches power {power} for effect {effect}"
                + (
                    " with these clusters (the ICC limits what more clusters can do)"
                    if assignment == "cluster"
                    else ""
                ),
                field="power",
            )
        size_val = optimize.brentq(lambda s: pow_at(effect, s) - power, lo, 1e7)
        if assignment == "cluster":
            n_clusters = size_val
        else:
            n = size_val
    se, df = se_df(size_val)
    if assignment == "cluster":
        n = n_clusters * cluster_size
        if n_clusters < VERY_FEW_CLUSTERS:
            notes.append(
                f"With only {n_clusters:.0f} clusters, inference rests on very few independent units; "
                "plan for a wild cluster bootstrap or randomisation inference."
            )
    return PowerResult(
        effect=float(effect),
        n=float(n),
        power=float(power),
        alpha=alpha,
        se=se,
        df=df,
        n_clusters=float(n_clusters) if n_clusters is not None else None,
        cluster_size=cluster_size,
        icc=icc,
        assignment=assignment,
        analysis=analysis,
        treated_share=treated_share,
        attrition=attrition,
        pre_post_corr=pre_post_corr,
        solved_for=unknown if unknown != "size" else ("n_clusters" if assignment == "cluster" else "n"),
        design_effect=deff,
        notes=notes,
    )


def _check_power_arguments(alpha, power, icc, pre_post_corr, treated_share, attrition, cluster_size, effect,
                           analysis, assignment) -> None:  # fmt: skip
    """Every argument of :func:`power` in its range, refused by name otherwise."""
    _check("alpha", alpha, 0, 1, lo_open=True, hi_open=True)
    _check("power", power, 0, 1, lo_open=True, hi_open=True)
    _check("icc", icc, 0, 1, hi_open=True)
    _check("pre_post_corr", pre_post_corr, -1, 1, lo_open=True, hi_open=True)
    _check("treated_share", treated_share, 0, 1, lo_open=True, hi_open=True)
    _check("attrition", attrition, 0, 1, hi_open=True)
    _check("cluster_size", cluster_size, 1, math.inf)
    if effect is not None and (not np.isfinite(effect) or effect == 0):
        raise DesignError(f"effect must be a non-zero number of SDs (got {effect})", field="effect")
    if analysis not in ("posttest", "ancova", "did"):
        raise DesignError(f"analysis must be posttest, ancova or did (got {analysis!r})", field="analysis")
    if assignment not in ("individual", "cluster"):
        raise DesignError(
            f"assignment must be individual or cluster (got {assignment!r})", field="assignment"
        )


def _power_at(delta: float, se: float, df: float, alpha: float) -> float:
    """Two-sided power of a t test of an effect ``delta`` with standard error ``se`` on ``df`` (noncentral t)."""
    if df <= 0:
        return float("nan")
    lam = abs(delta) / se
    tcrit = stats.t.ppf(1 - alpha / 2, df)
    value = float(stats.nct.sf(tcrit, df, lam) + stats.nct.cdf(-tcrit, df, lam))
    if not np.isfinite(value):  # far tail: the noncentral t is effectively normal there
        value = float(stats.norm.sf(tcrit - lam) + stats.norm.cdf(-tcrit - lam))
    return value


@dataclass
class SimulatedPower:
    """Result of :func:`simulate_power`."""

    outcome: str
    wave: str
    n: int
    n_sims: int
    power: float
    power_mc_se: float
    mean_estimate: float
    true_effect: float
    bias: float
    coverage: float
    rmse: float
    alpha: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in self.__dict__.items() if k != "details"}])

    def summary(self) -> str:
        return (
            f"In {self.n_sims} simulated studies of {self.n:,} people, the DiD on {self.outcome} at "
            f"{self.wave} detected the true effect ({self.true_effect:.3f} points) {self.power:.0%} of the time "
            f"(Monte Carlo SE {self.power_mc_se:.1%}); bias {self.bias:+.3f}, 95% interval coverage "
            f"{self.coverage:.0%}."
        )


def simulate_power(
    design,
    n: int,
    outcome: str | None = None,
    wave: str | None = None,
    n_sims: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    progress=None,
    **overrides: Any,
) -> SimulatedPower:
    """Power, bias and coverage of the design's DiD by simulating the study ``n_sims`` times.

    Parameters
    ----------
    design : Design or str
        A design with a ``simulation`` block.
    n : int
        People at baseline.
    outcome, wave : str, optional
        Outcome and post wave (default: the first outcome and first post wave).
    n_sims : int
        Simulated studies (Monte Carlo SE of power is about ``sqrt(p (1 - p) / n_sims)``).
    progress : callable, optional
        Called with the number of finished simulations (for progress bars).
    **overrides
        Simulation parameters to change (e.g. ``treated_share``).

    Examples
    --------
    >>> r = simulate_power("ncs_prepost_control", n=600, n_sims=20, seed=1)
    >>> 0 <= r.power <= 1
    True
    """
    import warnings

    from evaltoolkit.design.schema import Design, load_design
    from evaltoolkit.errors import EvalToolkitWarning
    from evaltoolkit.estimators.did import did
    from evaltoolkit.simulate.study import simulate_study

    d = design if isinstance(design, Design) else load_design(design)
    if n_sims < 2:
        raise DesignError(f"n_sims must be at least 2 (got {n_sims})", field="n_sims")
    outcome = outcome or d.outcomes[0].name
    wave = wave or d.post_waves[0]
    c = d.columns
    cluster = next((a.cluster for a in d.analyses if a.type == "did" and a.cluster), None) or (
        c.clusters[-1] if c.clusters else None
    )
    est, lo, hi, p = [], [], [], []
    truth = None
    for i in range(n_sims):
        sim = simulate_study(d, n=n, seed=seed + i, **overrides)
        truth = sim.true_effect(outcome, wave)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvalToolkitWarning)
            res = did(
                sim.data, outcome=outcome, post=wave, cluster=cluster, alpha=alpha, seed=seed + i,
                **d.panel_arguments(),
            )  # fmt: skip
        est.append(res.estimate)
        lo.append(res.ci_lower)
        hi.append(res.ci_upper)
        p.append(res.p_value)
        if progress is not None:
            progress(i + 1)
    est_a, lo_a, hi_a, p_a = map(np.asarray, (est, lo, hi, p))
    pw = float(np.mean(p_a < alpha))
    return SimulatedPower(
        outcome=outcome,
        wave=wave,
        n=n,
        n_sims=n_sims,
        power=pw,
        power_mc_se=math.sqrt(max(pw * (1 - pw), 1e-12) / n_sims),
        mean_estimate=float(est_a.mean()),
        true_effect=float(truth),
        bias=float(est_a.mean() - truth),
        coverage=float(np.mean((lo_a <= truth) & (truth <= hi_a))),
        rmse=float(np.sqrt(np.mean((est_a - truth) ** 2))),
        alpha=alpha,
        details={"estimates": est_a, "p_values": p_a},
    )
