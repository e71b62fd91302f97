"""The inference policy: decide how to infer, apply it, describe it - in one place, with every threshold.

Every OLS-based estimator (:func:`~evaltoolkit.estimators.did.did`,
:func:`~evaltoolkit.estimators.ancova.ancova`, :func:`~evaltoolkit.estimators.moderation.moderation`) fits
its model and hands the fit to :func:`infer` with an :class:`InferenceSpec`. :func:`decide` resolves
``vcov="auto"`` from the number of clusters (the rule below) and collects the few-cluster cautions;
:func:`infer` applies the choice to one term and returns an :class:`~evaltoolkit.results.Inference`
record (estimate, SE, interval, p, df, what was used and its plain description, and the alternatives
beside it for the report's few-clusters table).

The rule (``docs/did_inference.md``):

* no clusters: HC1 robust standard errors;
* :data:`FEW_CLUSTERS` (30) or more clusters: CR1, t with G - 1 df;
* fewer: the restricted wild cluster bootstrap gives the p-value and interval (test inversion), the
  reported SE is CR2 with Satterthwaite df (Bell & McCaffrey 2002; MacKinnon & Webb 2017);
* fewer than :data:`VERY_FEW_CLUSTERS` (10), whatever was asked for: a caution that cluster-robust
  inference cannot be trusted, and what is used instead.

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

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evaltoolkit.errors import EstimationError, EvalToolkitWarning
from evaltoolkit.inference.core import VCOV_TYPES, OLSFit, coef_test, wild_cluster_bootstrap
from evaltoolkit.inference.fixed_effects import encode
from evaltoolkit.results import Inference

__all__ = [
    "BAYES_FEW_TOP_CLUSTERS",
    "BOOTSTRAP_FEW_CLUSTERS",
    "FEW_CLUSTERS",
    "METHODS",
    "VERY_FEW_CLUSTERS",
    "Decision",
    "InferenceMethod",
    "InferenceSpec",
    "choose_inference",
    "decide",
    "describe",
    "infer",
]

#: below this many clusters, ``vcov="auto"`` uses the wild cluster bootstrap with CR2 standard errors
FEW_CLUSTERS = 30
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


@dataclass(frozen=True)
class Decision:
    """The resolved choice for a spec: the method used, the number of clusters and the cautions."""

    choice: str
    n_clusters: int | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InferenceMethod:
    """One way to infer: its label in tables, whether it needs clusters, and how to apply it to a term."""

    name: str
    label: str
    needs_cluster: bool
    apply: Callable[[OLSFit, str, InferenceSpec], tuple[dict[str, Any], dict[str, dict[str, Any]]]]


def choose_inference(requested: str, n_clusters: int | None, *, warn: bool = True) -> tuple[str, list[str]]:
    """Resolve ``vcov="auto"`` and collect few-cluster cautions (the rule in the module docstring).

    Returns
    -------
    (vcov_type, warnings)

    Examples
    --------
    >>> choose_inference("auto", 40)
    ('CR1', [])
    >>> choose_inference("auto", 20)[0]
    'wild'
    """
    notes: list[str] = []
    choice = requested
    if requested == "auto":
        if not n_clusters:
            choice = "HC1"
        elif n_clusters >= FEW_CLUSTERS:
            choice = "CR1"
        else:
            choice = "wild"
    elif requested not in METHODS:
        raise EstimationError(
            f"unknown vcov '{requested}' (use auto, wild or one of {', '.join(VCOV_TYPES)})"
        )
    if n_clusters is not None and n_clusters < VERY_FEW_CLUSTERS and choice in ("CR1", "CR2", "wild"):
        used = {
            "wild": "the p-value and interval come from the wild cluster bootstrap (Webb weights), with CR2 "
            "standard errors; with so few clusters even these are only indicative",
            "CR2": "CR2 (Bell-McCaffrey) standard errors with Satterthwaite degrees of freedom are used, "
            "which are conservative but only indicative with so few clusters",
            "CR1": "CR1 was requested explicitly; its p-values are likely far too small here "
            "(set vcov: wild or vcov: CR2 in the analysis options)",
        }[choice]
        notes.append(
            f"Only {n_clusters} clusters: conventional cluster-robust inference cannot be trusted with "
            f"fewer than {VERY_FEW_CLUSTERS} clusters; {used}."
        )
    if warn:
        for note in notes:
            warnings.warn(note, EvalToolkitWarning, stacklevel=3)
    return choice, notes


def _n_clusters(cluster: Any) -> int | None:
    return None if cluster is None else int(encode(cluster)[1])


def decide(spec: InferenceSpec, *, count_clusters_for_robust: bool = True) -> Decision:
    """Resolve the spec for a data set: the method used, G and the few-cluster cautions (not yet warned).

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
    choice, notes = choose_inference(spec.vcov, count, warn=False)
    if METHODS[choice].needs_cluster and spec.cluster is None:
        raise EstimationError(
            f"vcov: {choice} needs clusters; name a cluster column (cluster: in the analysis), or use HC1",
            field="vcov",
        )
    return Decision(choice=choice, n_clusters=g, notes=notes)


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
    inference = Inference(
        term=term,
        estimate=float(row["estimate"]),
        std_error=float(row["std_error"]),
        ci_lower=float(row["ci_lower"]),
        ci_upper=float(row["ci_upper"]),
        p_value=float(row["p_value"]),
        df=float(row["df"]),
        statistic=float(row.get("statistic", np.nan)),
        vcov=decision.choice,
        n_clusters=decision.n_clusters if method.needs_cluster else None,
        alternatives=alternatives,
    )
    return replace(inference, method=describe(inference, spec))
