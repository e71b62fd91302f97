"""The inference policy: decide how to infer, apply it, describe it - in one place, with every threshold.

Every OLS-based estimator (:func:`~evaltoolkit.estimators.did.did`,
:func:`~evaltoolkit.estimators.ancova.ancova`, :func:`~evaltoolkit.estimators.moderation.moderation`) fits
its model and hands the fit to :func:`infer` with an :class:`InferenceSpec`. :func:`decide` resolves
``vcov="auto"`` from the number of clusters (the rule below) and collects the few-cluster cautions;
:func:`infer` applies the choice to one term and returns an :class:`~evaltoolkit.results.Inference`
record (estimate, SE, interval, p, df, what was used and its plain description, and the alternatives
beside it for the report's few-clusters table).

The rule (``docs/did_inference.md``), decided by the number of clusters **on each side** - the smaller of the
number of clusters with programme rows and the number with comparison rows (``m``) - and by Carter, Schnepel &
Steigerwald's (2017) effective number of clusters ``G*`` for the treatment term:

* no clusters: HC1 robust standard errors;
* ``m >=`` :data:`FEW_TREATED_CLUSTERS` (20) and ``G* >=`` :data:`FEW_CLUSTERS` (30): CR1, t with G - 1 df;
* ``m >=`` :data:`VERY_FEW_TREATED` (5): the restricted wild cluster bootstrap gives the p-value and interval (test
  inversion), the reported SE is CR2 with Satterthwaite df (Bell & McCaffrey 2002; MacKinnon & Webb 2017);
* fewer (and the treatment assigned by cluster): **randomisation inference** over the assignments of clusters to
  arms (:mod:`evaltoolkit.inference.randomisation`), with a plain statement of the smallest p-value any such test
  can give (1/3 with 3 schools) and the smallest the wild bootstrap can give;
* every departure from CR1, and CR1 asked for where it should not be, is said in one sentence naming the counts.

The thresholds come from the simulation in ``benchmarks/bench_few_clusters.py`` (true effect zero; the table is
in ``docs/did_inference.md``): CR1 rejected 7% of true nulls with 14 treated teams and 182 singleton controls, 11%
with 5 treated teams, 26-28% with 1 treated school of 3.

A new inference method is one function here plus an entry in :data:`METHODS`.

Examples
--------
>>> import numpy as np
>>> from evaltoolkit.inference.core import ols
>>> rng = np.random.default_rng(0)
>>> g = np.repeat(np.arange(12), 10)
>>> x = rng.normal(size=120)
>>> fit = ols(0.5 * x + rng.normal(size=12)[g] + rng.normal(size=120), np.column_stack([np.ones(120), x]),
...           names=["const", "x"])
>>> spec = InferenceSpec(cluster=g, cluster_name="team", n_boot=999, seed=1)
>>> decide(spec).choice                     # 12 clusters: fewer than 30
'wild'
>>> res = infer(fit, "x", spec)
>>> res.vcov, sorted(res.alternatives)
('wild', ['CR2', 'wild'])
>>> round(res.estimate, 3), round(res.ci_lower, 3), round(res.ci_upper, 3)  # exact for these seeds, locked versions
(0.612, 0.234, 1.008)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evaltoolkit.errors import EstimationError, EvalToolkitWarning
from evaltoolkit.inference.core import VCOV_TYPES, OLSFit, coef_test, wild_cluster_bootstrap
from evaltoolkit.inference.fixed_effects import encode
from evaltoolkit.inference.randomisation import cluster_counts, effective_clusters, randomisation_test
from evaltoolkit.results import Inference

__all__ = [
    "BAYES_FEW_TOP_CLUSTERS",
    "BOOTSTRAP_FEW_CLUSTERS",
    "FEW_CLUSTERS",
    "FEW_TREATED_CLUSTERS",
    "METHODS",
    "VERY_FEW_CLUSTERS",
    "VERY_FEW_TREATED",
    "Decision",
    "InferenceMethod",
    "InferenceSpec",
    "choose_inference",
    "decide",
    "describe",
    "infer",
]

#: below this many (effective) clusters, ``vcov="auto"`` uses the wild cluster bootstrap with CR2 standard errors
FEW_CLUSTERS = 30
#: below this many programme (or comparison) clusters, ``vcov="auto"`` uses the wild cluster bootstrap
FEW_TREATED_CLUSTERS = 20
#: below this many programme (or comparison) clusters, ``vcov="auto"`` uses randomisation inference
VERY_FEW_TREATED = 5
#: below this many clusters, every clustered analysis carries a caution (and the evidence rating is weakened)
VERY_FEW_CLUSTERS = 10
#: below this many clusters, cluster-bootstrap intervals (mediation) are flagged as rough
BOOTSTRAP_FEW_CLUSTERS = 20
#: below this many top-level clusters (e.g. sites), a Bayesian model's between-cluster SD leans on its prior
BAYES_FEW_TOP_CLUSTERS = 5


@dataclass(frozen=True)
class InferenceSpec:
    """What the analyst asked for: the variance estimator and the clusters.

    Attributes
    ----------
    vcov : {"auto", "classical", "HC1", "CR1", "CR2", "wild"}
        ``"auto"`` follows the rule in the module docstring.
    cluster : array-like, optional
        Cluster label of each row of the fit.
    cluster_name : str, optional
        What a cluster is ("team"), for descriptions and messages.
    treated : array of bool, optional
        The programme indicator of each row: the rule counts clusters on each side.
    ri_terms, ri_columns : optional
        The treatment terms and ``ri_columns(treated_rows)``, their working columns under another assignment
        (see :func:`~evaltoolkit.inference.randomisation.randomisation_test`): with them, randomisation inference
        is available.
    n_boot, boot_weights, seed : wild cluster bootstrap settings (see
        :func:`~evaltoolkit.inference.core.wild_cluster_bootstrap`).
    alpha : float
        1 - confidence level.
    compare : bool
        Also compute CR1 beside the bootstrap (for the report's "how the conclusion depends on the
        inference method" table).
    """

    vcov: str = "auto"
    cluster: Any = None
    cluster_name: str | None = None
    n_boot: int = 9999
    boot_weights: str = "auto"
    seed: int | np.random.Generator | None = None
    alpha: float = 0.05
    compare: bool = False
    treated: Any = None
    ri_terms: tuple[str, ...] = ()
    ri_columns: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class Decision:
    """The resolved choice for a spec: the method used, the cluster counts and the cautions.

    ``n_treated`` and ``n_control`` count the clusters with programme and with comparison rows (None when the
    spec gives no treatment); ``effective`` is the effective number of clusters ``G*`` of the tested term.
    """

    choice: str
    n_clusters: int | None
    notes: list[str] = field(default_factory=list)
    n_treated: int | None = None
    n_control: int | None = None
    effective: float | None = None


@dataclass(frozen=True)
class InferenceMethod:
    """One way to infer: its label in tables, whether it needs clusters, and how to apply it to a term."""

    name: str
    label: str
    needs_cluster: bool
    apply: Callable[[OLSFit, str, InferenceSpec], tuple[dict[str, Any], dict[str, dict[str, Any]]]]


def choose_inference(
    requested: str,
    n_clusters: int | None,
    *,
    n_treated: int | None = None,
    n_control: int | None = None,
    effective: float | None = None,
    ri: bool = False,
    name: str = "cluster",
    warn: bool = True,
) -> tuple[str, list[str]]:
    """Resolve ``vcov="auto"`` and say, in one sentence, why when clusters are few (the rule in the module docstring).

    ``n_treated``/``n_control`` are the clusters with programme and with comparison rows, ``effective`` the
    effective number of clusters; ``ri`` whether randomisation inference is possible (treatment by cluster).

    Returns
    -------
    (vcov_type, notes)

    Examples
    --------
    >>> choose_inference("auto", 40, n_treated=20, n_control=20)
    ('CR1', [])
    >>> choose_inference("auto", 196, n_treated=14, n_control=182, warn=False)[0]  # few treated teams
    'wild'
    >>> choose_inference("auto", 3, n_treated=1, n_control=2, ri=True, name="school", warn=False)[0]
    'ri'
    """
    if requested != "auto" and requested not in METHODS:
        raise EstimationError(
            f"unknown vcov '{requested}' (use auto, wild, ri or one of {', '.join(VCOV_TYPES)})"
        )
    side = min(n_treated, n_control) if n_treated is not None and n_control is not None else n_clusters
    g_eff = effective if effective is not None and np.isfinite(effective) else n_clusters
    choice = requested
    if requested == "auto":
        if not n_clusters:
            choice = "HC1"
        elif side >= FEW_TREATED_CLUSTERS and g_eff >= FEW_CLUSTERS:
            choice = "CR1"
        elif side >= VERY_FEW_TREATED or not ri:
            choice = "wild"
        else:
            choice = "ri"
    notes = (
        []
        if not n_clusters or choice in ("classical", "HC1")
        else _few_clusters_note(choice, requested, n_clusters, n_treated, n_control, effective, name)
    )
    if warn:
        for note in notes:
            warnings.warn(note, EvalToolkitWarning, stacklevel=3)
    return choice, notes


def _few_clusters_note(
    choice: str,
    requested: str,
    g: int,
    n_t: int | None,
    n_c: int | None,
    effective: float | None,
    name: str,
) -> list[str]:
    """The one sentence that says why the clusters are too few for conventional inference (or nothing)."""
    plural = f"{name}s"
    if n_t is not None and n_c is not None:
        counts = f"{n_t} {name if n_t == 1 else plural} with programme participants and {n_c} with comparison people"
        side = min(n_t, n_c)
    else:
        counts, side = f"{g} {plural}", g
    g_eff = effective if effective is not None and np.isfinite(effective) else g
    few_sides = side < FEW_TREATED_CLUSTERS
    if not few_sides and g_eff >= FEW_CLUSTERS:
        return []
    why = (
        f"Only {counts}" + (f" (of {g} {plural})" if n_t is not None and n_t + n_c != g else "") + ": "
        if few_sides
        else f"The {g} {plural} differ so much in size that they carry about as much information as "
        f"{g_eff:.0f} equal ones (effective number of clusters, Carter, Schnepel & Steigerwald 2017): "
    )
    if choice == "CR1":
        return [
            why
            + "conventional cluster-robust (CR1) p-values are likely too small here, yet CR1 was requested "
            "(leave vcov at auto, or set vcov: wild)."
        ]
    if choice == "CR2":
        return [
            why
            + "conventional cluster-robust p-values are too small with so few; CR2 with Satterthwaite degrees "
            "of freedom was requested, which is better but can still reject too often (vcov: wild is safer)."
        ]
    if choice == "ri":
        ways = math.comb(g, n_t) if n_t is not None else 0
        if ways and 1 / ways > 0.05:
            return [
                why
                + f"there are only {ways} ways the programme could have gone to {n_t} of the {g} {plural}, so "
                f"no test that compares {plural} can give a p-value below 1/{ways} = {1 / ways:.2f}: these data "
                "cannot show an effect at the 5% level, whatever its size. The p-value is from randomisation "
                "inference over those assignments; read the Bayesian model, with its stated prior, as the "
                "summary of what the data say."
            ]
        return [
            why
            + "cluster-robust and wild-bootstrap tests are unreliable with fewer than 5 on one side, so the "
            f"p-value and interval are from randomisation inference over the {ways:,} ways the programme could "
            f"have gone to {n_t} of the {g} {plural} (it assumes {plural} of different sizes are exchangeable)."
        ]
    if choice == "wild":
        tail = (
            " Even so, with fewer than 5 on one side it can rarely reject: read the interval as indicative."
            if side < VERY_FEW_TREATED
            else ""
        )
        return [
            why + "conventional cluster-robust p-values are too small with so few (MacKinnon & Webb 2017), "
            "so the p-value and interval come from the wild cluster bootstrap, with CR2 standard errors."
            + tail
        ]
    return []


def _n_clusters(cluster: Any) -> int | None:
    return None if cluster is None else int(encode(cluster)[1])


def decide(
    spec: InferenceSpec,
    *,
    count_clusters_for_robust: bool = True,
    fit: OLSFit | None = None,
    term: str | None = None,
    within: np.ndarray | None = None,
) -> Decision:
    """Resolve the spec for a data set: the method used, the cluster counts and the cautions (not yet warned).

    With ``fit`` and ``term`` the effective number of clusters of that term enters the rule (``within``: blocks
    within clusters, the waves of a panel with person fixed effects; see
    :func:`evaltoolkit.inference.randomisation.effective_clusters`).

    ``count_clusters_for_robust=False`` passes no cluster count to the rule when ``vcov`` is ``classical`` or
    ``HC1`` (no caution about clusters the analyst chose not to use), as :func:`did` does.

    Raises
    ------
    EstimationError
        Only one cluster among the analysed rows; a cluster-robust method asked for without clusters; an
        unknown method.
    """
    g = _n_clusters(spec.cluster)
    name = spec.cluster_name or "cluster"
    if g is not None and g < 2:
        raise EstimationError(
            f"only one cluster in '{name}' among the analysed rows: cluster-robust inference needs several",
            column=spec.cluster_name,
        )
    count = g
    if not count_clusters_for_robust and spec.vcov in ("classical", "HC1"):
        count = None
    n_t = n_c = None
    by_cluster = False
    if spec.treated is not None and spec.cluster is not None:
        n_t, n_c, by_cluster = cluster_counts(spec.treated, spec.cluster)
    effective = None
    if fit is not None and term is not None and spec.cluster is not None:
        effective = effective_clusters(fit, term, spec.cluster, within=within)
    ri = by_cluster and spec.ri_columns is not None and bool(spec.ri_terms)
    choice, notes = choose_inference(
        spec.vcov, count, n_treated=n_t, n_control=n_c, effective=effective, ri=ri, name=name, warn=False
    )
    if METHODS[choice].needs_cluster and spec.cluster is None:
        raise EstimationError(
            f"vcov: {choice} needs clusters; name a cluster column (cluster: in the analysis), or use HC1",
            field="vcov",
        )
    if choice == "ri" and not ri:
        raise EstimationError(
            "vcov: ri needs the programme to be assigned by cluster (everyone in a cluster in the same arm)",
            field="vcov",
        )
    return Decision(
        choice=choice, n_clusters=g, notes=notes, n_treated=n_t, n_control=n_c, effective=effective
    )


def describe(inference: Inference, spec: InferenceSpec) -> str:
    """The plain description of the inference used, for a result's ``method`` (and ``estimates.csv``).

    Examples
    --------
    >>> from evaltoolkit.results import Inference
    >>> inf = Inference("x", 0.1, 0.05, 0.0, 0.2, 0.04, 11.0, 2.0, vcov="CR1", n_clusters=12)
    >>> describe(inf, InferenceSpec(vcov="CR1", cluster_name="team"))
    'CR1 by team (G=12, t with 11 df)'
    """
    name, g = spec.cluster_name or "cluster", inference.n_clusters
    if inference.vcov == "wild":
        bs = inference.alternatives["wild"]
        draws = f"all {bs['n_boot']} combinations" if bs["enumerated"] else f"{bs['n_boot']} draws"
        return (
            f"wild cluster bootstrap by {name} (G={g}, restricted, {bs['weights']} weights, {draws}): "
            "p-value and CI by test inversion; SE CR2"
        )
    if inference.vcov == "ri":
        ri = inference.alternatives["ri"]
        draws = (
            f"all {ri['n_assignments']:,} assignments"
            if ri["enumerated"]
            else f"{ri['n_assignments']:,} random assignments"
        )
        return (
            f"randomisation inference by {name} (G={g}, {draws}): p-value and CI; smallest possible p "
            f"{ri['min_p']:.3g}; SE CR2"
        )
    if inference.vcov == "CR1":
        return f"CR1 by {name} (G={g}, t with {g - 1} df)"
    if inference.vcov == "CR2":
        return f"CR2 by {name} (G={g}, Satterthwaite df {inference.df:.1f})"
    return f"{inference.vcov} standard errors (t with {inference.df:.0f} df)"


def _classical(fit: OLSFit, term: str, spec: InferenceSpec, vcov: str):
    res = coef_test(fit, term, vcov=vcov, cluster=None, alpha=spec.alpha)
    return res, {vcov: res}


def _clustered(fit: OLSFit, term: str, spec: InferenceSpec, vcov: str):
    res = coef_test(fit, term, vcov=vcov, cluster=spec.cluster, alpha=spec.alpha)
    return res, {vcov: res}


def _wild(fit: OLSFit, term: str, spec: InferenceSpec):
    cr2 = coef_test(fit, term, vcov="CR2", cluster=spec.cluster, alpha=spec.alpha)
    alternatives = {}
    if spec.compare:
        alternatives["CR1"] = coef_test(fit, term, vcov="CR1", cluster=spec.cluster, alpha=spec.alpha)
    alternatives["CR2"] = cr2
    bs = wild_cluster_bootstrap(
        fit,
        term,
        spec.cluster,
        n_boot=spec.n_boot,
        weights=spec.boot_weights,
        seed=spec.seed,
        alpha=spec.alpha,
    )
    alternatives["wild"] = {k: v for k, v in bs.items() if k != "t_star"}
    row = {**cr2, "p_value": bs["p_value"], "ci_lower": bs["ci_lower"], "ci_upper": bs["ci_upper"]}
    return row, alternatives


def _ri(fit: OLSFit, term: str, spec: InferenceSpec):
    """Randomisation inference for the p-value and interval; CR2 estimate, SE and df; the wild bootstrap beside
    it with the smallest p-value it could give (its limit for an arbitrarily large effect)."""
    row, alternatives = _wild(fit, term, spec)
    if term not in spec.ri_terms:  # not a treatment term: the bootstrap stays
        return row, alternatives
    ri = randomisation_test(
        fit,
        list(spec.ri_terms),
        spec.treated,
        spec.cluster,
        spec.ri_columns,
        alpha=spec.alpha,
        seed=spec.seed,
    )[term]
    j, shift = fit.index(term), 1e6 * max(row["std_error"], 1e-12)
    big = replace(fit, y=fit.y + shift * fit.X[:, j], coef=fit.coef + shift * np.eye(fit.k)[j])
    limit = wild_cluster_bootstrap(
        big, term, spec.cluster, n_boot=spec.n_boot, weights=spec.boot_weights, seed=spec.seed, ci=False
    )
    alternatives["wild"]["min_p"] = limit["p_value"]
    alternatives["ri"] = ri
    return {
        **row,
        "p_value": ri["p_value"],
        "ci_lower": ri["ci_lower"],
        "ci_upper": ri["ci_upper"],
    }, alternatives


#: every inference method by name (the values of ``vcov``); "auto" resolves to one of them
METHODS: dict[str, InferenceMethod] = {
    "classical": InferenceMethod(
        "classical", "classical (homoskedastic) SE", False, lambda f, t, s: _classical(f, t, s, "classical")
    ),
    "HC1": InferenceMethod("HC1", "HC1 robust SE", False, lambda f, t, s: _classical(f, t, s, "HC1")),
    "CR1": InferenceMethod(
        "CR1", "CR1 (conventional cluster-robust)", True, lambda f, t, s: _clustered(f, t, s, "CR1")
    ),
    "CR2": InferenceMethod("CR2", "CR2 + Satterthwaite df", True, lambda f, t, s: _clustered(f, t, s, "CR2")),
    "wild": InferenceMethod("wild", "wild cluster bootstrap", True, _wild),
    "ri": InferenceMethod("ri", "randomisation inference", True, _ri),
}


def infer(fit: OLSFit, term: str, spec: InferenceSpec, decision: Decision | None = None) -> Inference:
    """Apply the inference the spec resolves to (or ``decision``, if already made) to one term of ``fit``.

    Returns
    -------
    evaltoolkit.results.Inference
        ``estimate, std_error, ci_lower, ci_upper, p_value, df`` of the method used (with the wild bootstrap:
        CR2 estimate, SE and df, bootstrap p-value and interval), ``vcov`` (the method used) and
        ``alternatives`` (each method's raw output: ``CR2`` and ``wild``, and ``CR1`` with ``compare=True``).
    """
    decision = decision or decide(spec)
    method = METHODS[decision.choice]
    row, alternatives = method.apply(fit, term, spec)
    used = (
        decision.choice if decision.choice != "ri" or "ri" in alternatives else "wild"
    )  # ri: treatment terms only
    inference = Inference(
        term=term,
        estimate=float(row["estimate"]),
        std_error=float(row["std_error"]),
        ci_lower=float(row["ci_lower"]),
        ci_upper=float(row["ci_upper"]),
        p_value=float(row["p_value"]),
        df=float(row["df"]),
        statistic=float(row.get("statistic", np.nan)),
        vcov=used,
        n_clusters=decision.n_clusters if method.needs_cluster else None,
        alternatives=alternatives,
    )
    return replace(inference, method=describe(inference, spec))
