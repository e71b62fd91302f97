"""Diagnose a design before fielding it: simulate it many times and run its planned primary analysis on each.

:func:`diagnose` simulates the design as declared (arms, waves, teams and their ICC, selection into the
programme, overall and differential attrition; :func:`evaltoolkit.simulate.study.simulate_study`, drawn as arrays by
:func:`evaltoolkit.simulate.batched.replicate_arrays`) and runs the primary DiD as ``analyse`` runs it (the design's
primary ``did`` analysis, its first outcome, every later wave of its ``post``; the first is the headline) with the
inference :func:`evaltoolkit.estimators.did.did` would choose (:mod:`evaltoolkit.inference.policy`, from each
replicate's cluster counts and effective number of clusters). Where the policy gives CR1, every replicate is
estimated at once by :func:`evaltoolkit.estimators.batched.did_cr1_panel` (or ``did_cr1`` for two waves; identical
to ``did(..., vcov="CR1")``); replicates the policy sends to the wild cluster bootstrap or randomisation inference
are each run through ``did()`` and counted.

The diagnosands (DeclareDesign's word; Blair, Cooper, Coppock & Humphreys 2019), each with its Monte Carlo SE over
the ``sims`` replicates, against the design's true effect in scale points (``SimulatedStudy.truth``):

* ``power``: share with p < alpha; MC SE ``sqrt(p (1 - p) / R)``;
* ``bias``: mean estimate minus the truth; MC SE ``sd(estimate) / sqrt(R)``;
* ``rmse``: root mean squared error; MC SE by the delta method, ``sd((est - truth)^2) / (2 rmse sqrt(R))``;
* ``coverage``: share of intervals holding the truth; binomial MC SE;
* ``mean_ci_width``: mean interval width; MC SE ``sd(width) / sqrt(R)``;
* ``type_s``: among significant replicates, the share with the wrong sign (Gelman & Carlin 2014); binomial over
  the significant ones;
* ``type_m``: among significant replicates, the mean of ``|estimate| / |truth|`` (the exaggeration ratio,
  Gelman & Carlin 2014); MC SE ``sd / sqrt(R_sig)``;
* ``share_<caution>``: share of replicates raising each caution (few clusters for CR1, differential attrition of
  more than 5 percentage points, evidence weakened by very few sites); binomial MC SE;
* ``share_rated_<level>``: share given each evidence rating (:func:`evaltoolkit.plan.summary.evidence_strength`).

Examples
--------
>>> import evaltoolkit as et
>>> dx = et.diagnose("ncs_prepost_control", n=600, sims=20, seed=1)
>>> list(dx.table.columns)
['diagnosand', 'estimate', 'mc_se']
>>> sum(dx.method_counts.values()), dx.method_counts["CR1"] > 15  # CR1 batched; the rest by did() one at a time
(20, True)
>>> dx.evidence_rating
'Moderate (before-and-after with a comparison group; Maryland SMS level 3)'
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.design.schema import Analysis, Design, load_design
from evaltoolkit.errors import DesignError, EvalToolkitWarning
from evaltoolkit.estimators.batched import BatchedEstimates, did_cr1, did_cr1_panel
from evaltoolkit.inference.policy import choose_inference
from evaltoolkit.plan.summary import evidence_rating, padlock_rating
from evaltoolkit.simulate.batched import replicate_arrays
from evaltoolkit.simulate.study import simulate_study, true_effects

__all__ = ["DIFFERENTIAL_ATTRITION", "Diagnosis", "diagnosands", "diagnose"]

#: differential attrition (difference in the share lost between arms) above which a replicate raises the caution
DIFFERENTIAL_ATTRITION = 0.05
#: replicates simulated, then estimated at once, per batch
BATCH = 250


@dataclass
class Diagnosis:
    """What :func:`diagnose` found: one row per diagnosand with its Monte Carlo SE.

    Attributes
    ----------
    table : DataFrame
        ``diagnosand, estimate, mc_se`` (tidy; one row per diagnosand).
    design, analysis, outcome, wave : str
        What was diagnosed.
    n, sims, seed : int
        People at baseline, replicates, first seed (replicate ``i`` uses ``seed + i``).
    true_effect : float
        The truth the estimates are compared with (scale points).
    alpha : float
    method_counts : dict
        Replicates by the inference method used (``CR1`` batched; ``wild``/``ri`` one ``did()`` each).
    evidence_rating : str
        The rating most replicates would get, in words (Maryland SMS level).
    padlocks : int
        The padlock rating (0-5, EEF rules: :data:`evaltoolkit.plan.summary.PADLOCK_RULES`) most replicates get.
    notes : list of str
        Plain sentences about how the diagnosis was done.
    estimates : DataFrame
        One row per replicate: ``estimate, std_error, ci_lower, ci_upper, p_value, method`` (no person data).
    """

    table: pd.DataFrame
    design: str
    analysis: str
    outcome: str
    wave: str
    n: int
    sims: int
    seed: int
    true_effect: float
    alpha: float
    method_counts: dict[str, int]
    evidence_rating: str
    padlocks: int = 0
    notes: list[str] = field(default_factory=list)
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The diagnosands flat (``power``, ``power_mc_se``, ...) with what was diagnosed (one grid cell)."""
        out: dict[str, Any] = {
            "design": self.design, "analysis": self.analysis, "outcome": self.outcome, "wave": self.wave,
            "n": self.n, "sims": self.sims, "seed": self.seed, "true_effect": self.true_effect,
            "evidence_rating": self.evidence_rating, "padlocks": self.padlocks,
        }  # fmt: skip
        for row in self.table.itertuples(index=False):
            out[row.diagnosand] = float(row.estimate)
            out[f"{row.diagnosand}_mc_se"] = float(row.mc_se)
        return out

    def value(self, diagnosand: str) -> tuple[float, float]:
        """``(estimate, mc_se)`` of one diagnosand."""
        rows = self.table[self.table["diagnosand"] == diagnosand]
        if rows.empty:
            raise DesignError(f"no diagnosand '{diagnosand}' (have {', '.join(self.table['diagnosand'])})")
        return float(rows["estimate"].iloc[0]), float(rows["mc_se"].iloc[0])

    def summary(self) -> str:
        """The diagnosis in words."""
        p, p_se = self.value("power")
        b, _ = self.value("bias")
        c, _ = self.value("coverage")
        return (
            f"In {self.sims:,} simulated studies of {self.n:,} people, the DiD on {self.outcome} at {self.wave} "
            f"detected the true effect ({self.true_effect:.3f} points) {p:.0%} of the time (Monte Carlo SE "
            f"{p_se:.1%}); bias {b:+.3f} points, 95% interval coverage {c:.0%}. Expected evidence rating: "
            f"{self.evidence_rating}; {self.padlocks} of 5 padlocks by the EEF rules (the design, the minimum "
            "detectable effect and attrition each allow so many; the lowest counts)."
        )


def diagnose(
    design: Design | str | Path,
    *,
    n: int | None = None,
    effect: float | None = None,
    sims: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    post: str | list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    **overrides: Any,
) -> Diagnosis:
    """Simulate ``design`` ``sims`` times and diagnose its primary DiD: power, bias, RMSE, coverage, type S/M.

    Parameters
    ----------
    design : Design, str or Path
        A design with a ``simulation`` block and a ``did`` analysis (the one marked ``primary``, else the first).
    n : int, optional
        People at baseline (default: the simulation block's).
    effect : float, optional
        The primary outcome's direct programme effect in latent SD units (the simulation block's ``effect`` of
        that construct); effects through a mediator come on top. The truth is recomputed in scale points.
    sims : int
        Replicates (at least 2); MC SE of power is at most ``0.5 / sqrt(sims)``.
    seed : int
        Replicate ``i`` is ``simulate_study(design, seed=seed + i)``, as in ``simulate_power``.
    alpha : float
        Two-sided level of the tests and ``1 - alpha`` intervals.
    post : str or list of str, optional
        The later waves the DiD fits (default: the analysis's ``post``, else every later wave, as ``analyse``
        does); the first is the headline diagnosed.
    progress : callable, optional
        Called with the number of replicates done.
    **overrides
        Other simulation fields (``treated_share=0.5``, ``retention=...``, ``team_effect_sd=...``).

    Returns
    -------
    Diagnosis

    Raises
    ------
    DesignError
        No simulation block or DiD analysis, ``sims`` below 2, a bad ``effect`` or ``alpha``.

    Examples
    --------
    The design's simulated power against the analytic one (see ``tests/test_diagnose.py`` for the PowerUp! check):

    >>> dx = diagnose("ncs_prepost_control", n=1500, sims=40, seed=2)
    >>> p, se = dx.value("power")
    >>> p > 0.5 and se < 0.1
    True
    """
    d = _prepared(design, n, effect, sims, alpha, overrides)
    a = _primary(d)
    outcome = (a.outcomes or [d.outcomes[0].name])[0]
    waves = [post] if isinstance(post, str) else list(post or a.post or d.post_waves)
    unknown = [w for w in waves if w not in d.post_waves]
    if unknown or not waves:
        raise DesignError(
            f"post: {', '.join(map(str, unknown)) or 'no wave'} is not a later wave of design '{d.name}' "
            f"(its later waves: {', '.join(d.post_waves)})",
            field="post",
        )
    wave = waves[0]
    cluster = a.cluster or (d.columns.clusters[-1] if d.columns.clusters else None)
    if cluster is None:
        raise DesignError(
            "the primary DiD has no cluster (cluster: in the analysis) to diagnose", field="cluster"
        )
    requested = str(a.options.get("vcov", "auto"))
    batchable = set(a.options) <= {"vcov"} and not d.outcome(outcome).dichotomise
    truth = float(true_effects(d).set_index(["outcome", "wave"]).loc[(outcome, wave), "effect"])
    ratings: list[str] = []
    parts: list[tuple[BatchedEstimates, np.ndarray, np.ndarray]] = []
    for start in range(0, sims, BATCH):
        seeds = np.arange(seed + start, seed + min(start + BATCH, sims))
        arr = replicate_arrays(d, None, seeds, outcome, waves, cluster=cluster)
        ratings += [evidence_rating(d, int(k))[0] for k in arr["n_sites"]]
        if len(waves) > 1:
            est_b = did_cr1_panel(arr["y"], arr["treated"], arr["cluster"], alpha=alpha)
        else:
            est_b = did_cr1(arr["y0"], arr["y1"], arr["treated"], arr["cluster"], alpha=alpha)
        parts.append((est_b, _differential(arr), _padlocks(d, est_b, arr, alpha)))
        if progress is not None:
            progress(start + len(seeds))
    est = _concat([p[0] for p in parts])
    diff_attr = np.concatenate([p[1] for p in parts])
    rated = np.concatenate([p[2] for p in parts])
    methods, few = _policy(est, requested, cluster)
    if not batchable:
        methods[:] = "did()"
    frame = _estimates_frame(est, methods)
    _fallback(frame, d, outcome, waves, cluster, requested, seed, alpha)
    cautions = {
        "share_few_clusters": few,
        "share_differential_attrition": diff_attr > DIFFERENTIAL_ATTRITION,
        "share_weakened_evidence": np.array([" - weakened" in r for r in ratings]),
    }
    table = pd.concat([diagnosands(frame, truth, alpha, cautions, ratings), _padlock_rows(rated)],
                      ignore_index=True)  # fmt: skip
    counts = dict(Counter(frame["method"]))
    return Diagnosis(
        table=table, design=d.name, analysis=a.id, outcome=outcome, wave=wave, n=int(d.simulation.n), sims=sims,
        seed=seed, true_effect=truth, alpha=alpha, method_counts=counts,
        evidence_rating=Counter(ratings).most_common(1)[0][0], padlocks=int(np.bincount(rated[:, 0].astype(np.int64)).argmax()),
        notes=_notes(counts, requested, d, a, waves), estimates=frame,
    )  # fmt: skip


def _prepared(design, n, effect, sims, alpha, overrides) -> Design:
    """The design with ``n``, ``effect`` and other simulation overrides applied; arguments checked."""
    d = design if isinstance(design, Design) else load_design(design)
    if d.simulation is None:
        raise DesignError("this design has no simulation block to diagnose", field="simulation")
    if not isinstance(sims, int | np.integer) or sims < 2:
        raise DesignError(f"sims must be a whole number of at least 2 (got {sims!r})", field="sims")
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must be between 0 and 1 (got {alpha})", field="alpha")
    if n is not None:
        overrides["n"] = n
    overrides = _grid_overrides(d, overrides)
    if effect is not None:
        if not np.isfinite(effect):
            raise DesignError(f"effect must be a number of latent SDs (got {effect})", field="effect")
        a = _primary(d)
        name = (a.outcomes or [d.outcomes[0].name])[0]
        constructs = overrides.pop("constructs", None) or d.simulation.model_dump()["constructs"]
        if name not in constructs:
            raise DesignError(
                f"the simulation block has no construct '{name}' to set the effect of", field="effect"
            )
        constructs[name] = {**constructs[name], "effect": float(effect)}
        overrides["constructs"] = constructs
    return d.with_simulation(**overrides) if overrides else d


def _grid_overrides(d: Design, overrides: dict[str, Any]) -> dict[str, Any]:
    """The grid's words (``clusters``, ``cluster_size``, ``attrition``, ``icc``) as simulation-block changes.

    * ``clusters``: the number of sites (the top-level clusters; with site assignment, the units assigned);
    * ``cluster_size``: teams of exactly that size (``team_size = (k, k)``);
    * ``attrition``: the share lost by the first follow-up, averaged over the arms; every arm's retention at every
      follow-up is scaled by the same factor, so the design's differential attrition is kept in proportion;
    * ``icc``: of baseline levels between sites, ``site_sd = sqrt(icc / (1 - icc))`` (person SD 1).

    Examples
    --------
    >>> d = load_design("ncs_prepost_control")
    >>> o = _grid_overrides(d, {"icc": 0.2, "cluster_size": 10, "clusters": 30})
    >>> round(o["site_sd"], 4), o["team_size"], o["sites"]
    (0.5, (10, 10), 30)
    """
    out = dict(overrides)
    sim = d.simulation
    if "clusters" in out:
        out["sites"] = int(out.pop("clusters"))
    if "cluster_size" in out:
        k = int(out.pop("cluster_size"))
        out["team_size"] = (k, k)
    if "icc" in out:
        icc = float(out.pop("icc"))
        if not 0 <= icc < 1:
            raise DesignError(f"icc must be at least 0 and below 1 (got {icc})", field="icc")
        out["site_sd"] = (icc / (1 - icc)) ** 0.5
    if "attrition" in out:
        lost = float(out.pop("attrition"))
        if not 0 <= lost < 1:
            raise DesignError(
                f"attrition must be a share at least 0 and below 1 (got {lost})", field="attrition"
            )
        first = next((w for w in d.post_waves if w in sim.retention), None)
        if first is None:
            raise DesignError(
                "the simulation block gives no retention to scale", field="simulation.retention"
            )
        kept = float(np.mean(list(sim.retention[first].values())))
        factor = (1 - lost) / kept if kept > 0 else 0.0
        out["retention"] = {
            w: {arm: min(1.0, r * factor) for arm, r in arms.items()} for w, arms in sim.retention.items()
        }
    return out


def _primary(d: Design) -> Analysis:
    dids = [a for a in d.analyses if a.type == "did"]
    if not dids:
        raise DesignError("the design plans no did analysis to diagnose", field="analyses")
    return next((a for a in dids if a.primary), dids[0])


def _differential(arr: dict[str, np.ndarray]) -> np.ndarray:
    """Per replicate: |share lost by the follow-up, programme minus comparison| among people with a baseline."""
    base = np.isfinite(arr["y0"])
    lost = base & ~np.isfinite(arr["y1"])
    t = arr["treated"] > 0
    rate_t = (lost & t).sum(axis=1) / np.maximum((base & t).sum(axis=1), 1)
    rate_c = (lost & ~t).sum(axis=1) / np.maximum((base & ~t).sum(axis=1), 1)
    return np.abs(rate_t - rate_c)


def _concat(parts: list[BatchedEstimates]) -> BatchedEstimates:
    fields = BatchedEstimates.__dataclass_fields__
    return BatchedEstimates(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in fields})


def _policy(est: BatchedEstimates, requested: str, cluster: str) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: the method the inference policy picks, and whether it raises a few-clusters caution."""
    methods, few = [], []
    for i in range(est.estimate.size):
        choice, notes = choose_inference(
            requested, int(est.n_clusters[i]), n_treated=int(est.n_treated_clusters[i]),
            n_control=int(est.n_control_clusters[i]), effective=float(est.effective_clusters[i]),
            ri=bool(est.one_arm_clusters[i]), name=cluster, warn=False,
        )  # fmt: skip
        methods.append(choice)
        few.append(bool(notes))
    return np.array(methods, dtype=object), np.array(few)


def _estimates_frame(est: BatchedEstimates, methods: np.ndarray) -> pd.DataFrame:
    cols = {k: getattr(est, k) for k in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")}
    return pd.DataFrame({**cols, "method": methods})


def _fallback(
    frame, d: Design, outcome: str, waves: list[str], cluster: str, requested: str, seed: int, alpha: float
):
    """Replicates the batched CR1 does not cover: one ``did()`` each, on the same simulated data."""
    from evaltoolkit.estimators.did import did

    a = _primary(d)
    options = {k: v for k, v in a.options.items() if k != "vcov"}
    for i in np.flatnonzero(frame["method"].to_numpy() != "CR1"):
        sim = simulate_study(d, seed=seed + int(i))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvalToolkitWarning)
            res = did(sim.data, outcome=outcome, post=waves, cluster=cluster, vcov=requested, alpha=alpha,
                      dichotomise=d.outcome(outcome).dichotomise, seed=seed + int(i), **d.panel_arguments(),
                      **options)  # fmt: skip
        frame.loc[i, ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]] = [
            res.estimate, res.std_error, res.ci_lower, res.ci_upper, res.p_value,
        ]  # fmt: skip
        frame.loc[i, "method"] = str(res.details.get("vcov"))


def _padlocks(d: Design, est: BatchedEstimates, arr: dict[str, np.ndarray], alpha: float) -> np.ndarray:
    """Per replicate (rows): padlocks, MDES (80% power, in baseline SDs) and attrition (share lost from baseline)."""
    from scipy import stats

    base = np.isfinite(arr["y0"])
    sd = np.nanstd(arr["y0"], axis=1, ddof=1)
    df = np.maximum(est.df, 1)
    mdes = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(0.8, df)) * est.std_error / sd
    attrition = 1 - (base & np.isfinite(arr["y1"])).sum(axis=1) / np.maximum(base.sum(axis=1), 1)
    locks = [padlock_rating(d.kind, m, a) for m, a in zip(mdes, attrition)]
    return np.column_stack([locks, mdes, attrition])


def _padlock_rows(rated: np.ndarray) -> pd.DataFrame:
    padlocks = rated[:, 0].astype(np.int64)
    rows = [("mdes", *_mean_se(rated[:, 1])), ("attrition", *_mean_se(rated[:, 2]))]
    rows += [("mean_padlocks", *_mean_se(padlocks.astype(float)))]
    rows += [
        (f"share_padlocks_{k}", *_share_se(padlocks == k)) for k in range(5, -1, -1) if (padlocks == k).any()
    ]
    return pd.DataFrame(rows, columns=["diagnosand", "estimate", "mc_se"])


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def _share_se(flags: np.ndarray) -> tuple[float, float]:
    if flags.size == 0:
        return math.nan, math.nan
    p = float(np.mean(flags))
    return p, math.sqrt(p * (1 - p) / flags.size)


def diagnosands(
    frame: pd.DataFrame,
    truth: float,
    alpha: float = 0.05,
    cautions: dict[str, np.ndarray] | None = None,
    ratings: list[str] | None = None,
) -> pd.DataFrame:
    """One row per diagnosand: estimate and Monte Carlo SE (formulas in the module docstring).

    Parameters
    ----------
    frame : DataFrame
        One row per replicate: ``estimate, ci_lower, ci_upper, p_value``.
    truth : float
        The estimand's true value.
    alpha : float
        Level of the tests.
    cautions : dict, optional
        ``share_<name>`` -> one flag per replicate.
    ratings : list of str, optional
        The evidence rating of each replicate.

    Returns
    -------
    DataFrame
        ``diagnosand, estimate, mc_se``.

    Examples
    --------
    Four replicates, three significant (Morris, White & Crowther 2019, Table 6: power MC SE
    ``sqrt(p (1 - p) / R)`` = ``sqrt(.75 * .25 / 4)`` = 0.2165):

    >>> f = pd.DataFrame({"estimate": [1.0, 2.0, 3.0, 0.5], "ci_lower": [0.1, 1.0, 2.0, -0.5],
    ...                   "ci_upper": [1.9, 3.0, 4.0, 1.5], "p_value": [0.01, 0.001, 0.0001, 0.3]})
    >>> t = diagnosands(f, truth=1.5).set_index("diagnosand")
    >>> round(float(t.loc["power", "mc_se"]), 4), float(t.loc["bias", "estimate"])
    (0.2165, 0.125)
    """
    cautions = cautions or {}
    ratings = ratings or []
    est = frame["estimate"].to_numpy(dtype=float)
    lo, hi = frame["ci_lower"].to_numpy(dtype=float), frame["ci_upper"].to_numpy(dtype=float)
    sig = frame["p_value"].to_numpy(dtype=float) < alpha
    err = est - truth
    mse, mse_se = _mean_se(err**2)
    rmse = math.sqrt(mse)
    bias = _mean_se(err)
    rows: dict[str, tuple[float, float]] = {
        "power": _share_se(sig),
        "mean_estimate": _mean_se(est),
        "bias": bias,
        "rmse": (rmse, mse_se / (2 * rmse) if rmse > 0 else math.nan),
        "coverage": _share_se((lo <= truth) & (truth <= hi)),
        "mean_ci_width": _mean_se(hi - lo),
        "type_s": _share_se(np.sign(est[sig]) != np.sign(truth)) if truth != 0 else (math.nan, math.nan),
        "type_m": _mean_se(np.abs(est[sig]) / abs(truth)) if truth != 0 else (math.nan, math.nan),
    }
    for name, flags in cautions.items():
        rows[name] = _share_se(np.asarray(flags, dtype=bool))
    for rating, _ in Counter(ratings).most_common():
        level = rating.split(" (")[0].split(" - ")[0].lower().replace(" ", "_")
        rows[f"share_rated_{level}"] = _share_se(np.array([r == rating for r in ratings]))
    return pd.DataFrame(
        [{"diagnosand": k, "estimate": v[0], "mc_se": v[1]} for k, v in rows.items()],
        columns=["diagnosand", "estimate", "mc_se"],
    )


def _notes(counts: dict[str, int], requested: str, d: Design, a: Analysis, waves: list[str]) -> list[str]:
    fitted = (
        f"{d.baseline} and {', '.join(waves)}, the estimate at {waves[0]} diagnosed"
        if len(waves) > 1
        else (f"{d.baseline} against {waves[0]}")
    )
    notes = [
        f"The primary analysis '{a.id}' was diagnosed as analyse runs it: a DiD with person fixed effects on "
        f"{fitted}, inference as the policy chooses (vcov: {requested})."
    ]
    batched = counts.get("CR1", 0)
    others = {k: v for k, v in counts.items() if k != "CR1"}
    if batched:
        notes.append(
            f"{batched} replicates used CR1 and were estimated at once (identical to did(vcov='CR1'))."
        )
    if others:
        notes.append(
            "The inference policy sent "
            + ", ".join(f"{v} replicates to {k}" for k, v in others.items())
            + ": each of those was run through did() one at a time (slower)."
        )
    return notes
