"""Documented prior distributions for programme effects, on the standardised-effect scale.

Every prior here is for an effect measured in **standard deviations of the outcome** (a standardised
mean difference such as Cohen's d or Glass's Δ). :func:`get_prior` rescales it to outcome units with
``outcome_sd``. Four priors for a treatment effect are offered so that a report can show them side by
side (prior sensitivity):

``"default"`` (weakly informative)
    Normal(0, 1): effects beyond ±2 SD are considered implausible, anything smaller is left to the data.
``"contact"`` (informative, contact literature)
    The **predictive distribution** for the effect in a new study from the random-effects meta-analysis
    (DerSimonian-Laird) of the 27 randomised contact studies of Paluck, Green & Green (2019):
    Normal(0.393, sqrt(0.082² + 0.137) = 0.380). It describes the spread of true effects across
    studies, which is what a new programme's effect is drawn from.
``"contact_mean"``
    The random-effects **mean** only, Normal(0.393, 0.082): the average effect of contact
    interventions, far more confident. Use it only for the average of many programmes, not for one.
``"contact_ethnicity"``
    The predictive distribution from the 11 studies whose target group is race/ethnicity (the paper:
    ≈ 0.2): Normal(0.252, 0.174). Closest to NCS and Best of Us outcomes about ethnic mixing.
``"sceptical"``
    Normal(0, 0.239), centred on no effect with only a 5% prior probability that the effect exceeds
    the contact-literature mean 0.393 (Spiegelhalter, Freedman & Parmar 1994 construction). Paluck et al.
    found pre-registered studies near 0 (DL 0.016, SE 0.067, 3 studies), which motivates it.

And two priors for standard deviations (between-site, between-team, between-study heterogeneity):

``"heterogeneity"``
    HalfNormal(0.5): between-site/team SDs of the treatment effect up to about 1 SD; the contact
    literature's between-study SD is sqrt(0.137) = 0.37.
``"heterogeneity_wide"``
    HalfCauchy(1): heavier tail, for when large variation across sites is plausible.
``"cluster_sd"`` (the default of :func:`evaltoolkit.estimators.bayes.did.bayes_did`)
    HalfNormal(0.1141) on the SD of clusters' (schools', classes', neighbourhoods', teams') deviations in
    the change and in the programme effect, set on the **ICC scale** by :func:`icc_prior`: on the
    standardised scale (baseline SD = 1) a cluster SD σ is the square root of the share of the outcome's
    variance it represents, ICC = σ², and the prior puts 95% of its mass below ICC = 0.05 (σ = 0.224),
    with median ICC 0.006 (σ = 0.077). See :data:`CLUSTER_ICC_SOURCES` for the published ICCs behind it.

The contact priors come from the bundled table ``evaltoolkit/data/paluck2019_contact.csv``: its
DerSimonian-Laird summaries are pinned in :data:`CONTACT_META`, and the tests recompute them with
:func:`evaltoolkit.estimators.meta.contact_meta_analysis`, so the provenance is reproducible.

Examples
--------
>>> from evaltoolkit.estimators.bayes.priors import get_prior
>>> p = get_prior("contact")
>>> round(p.mu, 3), round(p.sigma, 3)
(0.393, 0.38)
>>> get_prior("default", outcome_sd=12.0).sigma
12.0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from evaltoolkit import _compat
from evaltoolkit.errors import DesignError

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere

__all__ = [
    "CLUSTER_ICC_SOURCES",
    "CLUSTER_ICC_UPPER",
    "CONTACT_META",
    "PALUCK_CITATION",
    "Prior",
    "get_prior",
    "icc_prior",
    "icc_quantiles",
    "list_priors",
    "load_paluck2019",
    "prior_sensitivity",
    "prior_table",
]

#: Citation for the bundled contact-literature table.
PALUCK_CITATION = (
    'Paluck, E. L., Green, S. A. & Green, D. P. (2019). "The contact hypothesis re-evaluated". '
    "Behavioural Public Policy 3(2), 129-158. doi:10.1017/bpp.2018.25. Per-study data from the "
    "MIT-licensed R package PaluckMetaSOP (contact_data)."
)

_DISTRIBUTIONS = ("normal", "halfnormal", "halfcauchy")


@dataclass(frozen=True)
class Prior:
    """A prior distribution with its provenance.

    Attributes
    ----------
    name : str
        Short name (``"default"``, ``"contact"``...).
    distribution : {"normal", "halfnormal", "halfcauchy"}
        Family. Half-distributions are for standard deviations and are located at 0 (``mu`` is 0).
    mu : float
        Location (mean of a normal prior).
    sigma : float
        Scale (SD of a normal / half-normal prior; scale of a half-Cauchy prior).
    description : str
        What the prior says, in plain words.
    source : str
        Where it comes from (citation, derivation).

    Examples
    --------
    >>> p = Prior("mine", "normal", 0.2, 0.1, "a guess", "me")
    >>> p.label(), [round(x, 3) for x in p.interval(0.95)]
    ('Normal(0.2, 0.1)', [0.004, 0.396])
    """

    name: str
    distribution: str
    mu: float
    sigma: float
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.distribution not in _DISTRIBUTIONS:
            raise DesignError(
                f"prior '{self.name}': unknown distribution '{self.distribution}'; use one of "
                f"{', '.join(_DISTRIBUTIONS)}"
            )
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise DesignError(
                f"prior '{self.name}': sigma (scale) must be a positive number, got {self.sigma}"
            )
        if not math.isfinite(self.mu):
            raise DesignError(f"prior '{self.name}': mu must be a finite number, got {self.mu}")
        if self.distribution != "normal" and self.mu != 0:
            raise DesignError(
                f"prior '{self.name}': a {self.distribution} prior is located at 0 (mu must be 0)"
            )

    # -- presentation ------------------------------------------------------------------------------
    def label(self, digits: int = 3) -> str:
        """Compact text such as ``Normal(0.393, 0.38)`` or ``HalfCauchy(5)``."""

        def f(x: float) -> str:
            return f"{round(x, digits):g}"

        if self.distribution == "normal":
            return f"Normal({f(self.mu)}, {f(self.sigma)})"
        return f"{'HalfNormal' if self.distribution == 'halfnormal' else 'HalfCauchy'}({f(self.sigma)})"

    def as_dict(self) -> dict[str, Any]:
        """The fields plus the label and the central 95% interval."""
        lo, hi = self.interval(0.95)
        return {**asdict(self), "label": self.label(), "lower_95": lo, "upper_95": hi}

    # -- maths -------------------------------------------------------------------------------------
    def _frozen(self) -> Any:
        from scipy import stats

        if self.distribution == "normal":
            return stats.norm(self.mu, self.sigma)
        if self.distribution == "halfnormal":
            return stats.halfnorm(0, self.sigma)
        return stats.halfcauchy(0, self.sigma)

    def pdf(self, x: Any) -> Any:
        """Prior density at ``x`` (numpy array or scalar) - for prior/posterior plots."""
        return self._frozen().pdf(x)

    def interval(self, prob: float = 0.95) -> tuple[float, float]:
        """Central ``prob`` interval (for half-distributions: from 0 to the ``prob`` quantile)."""
        if not 0 < prob < 1:
            raise DesignError(f"prob must be between 0 and 1, got {prob}")
        d = self._frozen()
        if self.distribution == "normal":
            lo, hi = d.interval(prob)
            return float(lo), float(hi)
        return 0.0, float(d.ppf(prob))

    def prob_greater(self, value: float = 0.0) -> float:
        """Prior probability that the quantity exceeds ``value``."""
        return float(self._frozen().sf(value))

    def scaled(self, outcome_sd: float) -> Prior:
        """The same prior in outcome units (location and scale multiplied by ``outcome_sd``)."""
        if not (isinstance(outcome_sd, int | float) and math.isfinite(outcome_sd) and outcome_sd > 0):
            raise DesignError(f"outcome_sd must be a positive number, got {outcome_sd!r}")
        if outcome_sd == 1:
            return self
        return replace(
            self,
            mu=self.mu * outcome_sd,
            sigma=self.sigma * outcome_sd,
            description=f"{self.description} Rescaled to outcome units (outcome SD = {outcome_sd:g}).",
        )

    def to_pymc(self, name: str, **kwargs: Any) -> Any:
        """Create this prior as a PyMC random variable inside the current model context.

        Examples
        --------
        >>> import pymc as pm
        >>> with pm.Model():
        ...     mu = get_prior("contact").to_pymc("mu")
        >>> mu.name
        'mu'
        """
        import pymc as pm

        if self.distribution == "normal":
            return pm.Normal(name, mu=self.mu, sigma=self.sigma, **kwargs)
        if self.distribution == "halfnormal":
            return pm.HalfNormal(name, sigma=self.sigma, **kwargs)
        return pm.HalfCauchy(name, beta=self.sigma, **kwargs)


# --------------------------------------------------------------------------------------------------
# priors for cluster SDs on the ICC scale
# --------------------------------------------------------------------------------------------------
#: ICC (share of the baseline variance) below which a cluster's SD lies with 95% prior probability, for the
#: clusters' deviations in the change (trend) and in the programme effect. Derivation in ``docs/bayes.md``:
#: level ICCs of attitude, social-emotional and cohesion outcomes are mostly below 0.04 and rarely above 0.1
#: (the sources below); a cluster's *change* between two waves has variance 2·ICC·(1 - r), r the correlation of
#: cluster means across the waves, which is 0.059 for ICC 0.1 and r = √0.5 (a pretest explaining only half
#: the between-school variance, the weakest case in Bloom et al. 2007) and about 0.008 for ICC 0.04, r = 0.9.
CLUSTER_ICC_UPPER = 0.05

#: Published ICCs behind :data:`CLUSTER_ICC_UPPER` (what each reports, as used here).
CLUSTER_ICC_SOURCES = (
    "Parker, K., Nunns, M., Xiao, Z. M., Ford, T., Stallard, P., Kuyken, W., Axford, N. & Ukoumunne, O. C. "
    "(2025). Patterns of intra-cluster correlation coefficients in school-based cluster randomised controlled "
    "trials of interventions for improving social-emotional functioning outcomes in pupils: a secondary data "
    "analysis of five UK-based studies. BMC Medical Research Methodology 25, 120. doi:10.1186/s12874-025-02574-6 "
    "- 529 ICCs: most school- and classroom-level ICCs below 0.04 for pupil-reported outcomes, up to 0.1 for "
    "shared experiences such as school climate (teacher reports up to 0.1 school, 0.2 classroom).",
    "Fone, D. L., Farewell, D. M. & Dunstan, F. D. (2006). An ecometric analysis of neighbourhood cohesion. "
    "Population Health Metrics 4, 17. doi:10.1186/1478-7954-4-17 - 11,078 adults in 325 census enumeration "
    "districts: intra-neighbourhood correlation 0.064 (neighbourhood belonging) and 0.010 (social cohesion).",
    "Hedges, L. V. & Hedberg, E. C. (2007). Intraclass correlation values for planning group-randomized trials "
    "in education. Educational Evaluation and Policy Analysis 29(1), 60-87. doi:10.3102/0162373707299706 - "
    "school ICCs for achievement of about 0.1-0.25: an upper bound, attitudes cluster far less.",
    "Bloom, H. S., Richburg-Hayes, L. & Black, A. R. (2007). Using covariates to improve precision for studies "
    "that randomize schools to evaluate educational interventions. Educational Evaluation and Policy Analysis "
    "29(1), 30-59. doi:10.3102/0162373707299550 - a (school-level) pretest cuts the schools needed to about "
    "half (elementary), a fifth (middle) and a tenth (high schools): cluster means are stable over time, so "
    "clusters differ far less in their change than in their level.",
)


def icc_prior(icc_upper: float = CLUSTER_ICC_UPPER, prob: float = 0.95, name: str = "cluster_sd") -> Prior:
    """Half-normal prior on a cluster SD (standardised scale) with ``prob`` of its mass below ``sqrt(icc_upper)``.

    On the standardised scale (outcome divided by its baseline SD) a cluster SD σ stands for the share
    ICC = σ² of the outcome's variance, so an upper ICC of 0.05 is an SD of 0.224; the half-normal scale
    is ``sqrt(icc_upper) / Φ⁻¹((1 + prob) / 2)``.

    Parameters
    ----------
    icc_upper : float
        ICC (between 0 and 1) that the SD exceeds with prior probability ``1 - prob``.
    prob : float
        Prior probability below it.
    name : str
        Name of the returned prior.

    Returns
    -------
    Prior
        A ``halfnormal`` prior.

    Examples
    --------
    >>> p = icc_prior(0.05)
    >>> round(p.sigma, 4), round(p.interval(0.95)[1] ** 2, 4)  # scale; the ICC at its 95% quantile
    (0.1141, 0.05)
    """
    from scipy import stats

    if not (isinstance(icc_upper, int | float) and 0 < icc_upper < 1):
        raise DesignError(f"icc_upper must be a number between 0 and 1, got {icc_upper!r}")
    if not (isinstance(prob, int | float) and 0 < prob < 1):
        raise DesignError(f"prob must be between 0 and 1, got {prob!r}")
    sigma = math.sqrt(icc_upper) / float(stats.norm.ppf((1 + prob) / 2))
    return Prior(
        name,
        "halfnormal",
        0.0,
        sigma,
        f"SD of clusters' deviations (in the change and in the programme effect), in outcome SDs: "
        f"{100 * prob:g}% below {math.sqrt(icc_upper):.3f}, i.e. below an ICC of {icc_upper:g}.",
        "ICC scale; published ICCs of attitude, social-emotional and cohesion outcomes in schools and "
        "neighbourhoods (Parker et al. 2025; Fone, Farewell & Dunstan 2006; Hedges & Hedberg 2007 as an upper "
        "bound; Bloom, Richburg-Hayes & Black 2007 for the stability of cluster means)",
    )


def icc_quantiles(prior: Prior | str = "cluster_sd", probs: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)):
    """Quantiles of a prior on a cluster SD and the ICCs they stand for (ICC = SD² on the standardised scale).

    Parameters
    ----------
    prior : Prior or str
        A half-normal or half-Cauchy prior (or its name).
    probs : tuple of float
        Prior probabilities.

    Returns
    -------
    pandas.DataFrame
        ``prob``, ``sd`` (the quantile) and ``icc`` (its square).

    Examples
    --------
    >>> icc_quantiles("cluster_sd").round(4).values.tolist()
    [[0.5, 0.077, 0.0059], [0.9, 0.1877, 0.0352], [0.95, 0.2236, 0.05], [0.99, 0.2939, 0.0864]]
    """
    import pandas as pd

    p = get_prior(prior)
    if p.distribution == "normal":
        raise DesignError(f"prior '{p.name}' is normal; ICC quantiles are for priors on an SD")
    sd = [float(p._frozen().ppf(q)) for q in probs]
    return pd.DataFrame({"prob": list(probs), "sd": sd, "icc": [v * v for v in sd]})


# --------------------------------------------------------------------------------------------------
# the bundled contact-literature table
# --------------------------------------------------------------------------------------------------
def load_paluck2019():
    """The 27 randomised contact studies of Paluck, Green & Green (2019) as a DataFrame.

    Columns: ``id, name_short, study, year, target, population, statistic, n_t, n_c, n, d, se_d, var_d,
    days_delay, pap, publish``; ``d`` is Glass's Δ (standardised by the control-group SD), ``se_d`` its
    standard error, ``target`` the out-group (race, disability, LGBT, religion...), ``pap`` 1 if the
    study had a pre-analysis plan. See :data:`PALUCK_CITATION` and ``evaltoolkit/data/README.md``.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> df = load_paluck2019()
    >>> df.shape, float(round(df["d"].mean(), 3))
    ((27, 16), 0.436)
    """
    from importlib.resources import files

    import pandas as pd

    with files("evaltoolkit").joinpath("data/paluck2019_contact.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


#: DerSimonian-Laird random-effects summaries of the bundled Paluck et al. (2019) table, pinned as data so the
#: priors need no meta-analysis at run time: subset -> (mean, SE, tau^2, k). Recomputed by
#: :func:`evaltoolkit.estimators.meta.contact_meta_analysis` in tests/test_priors.py (to 1e-12), which also
#: checks them against metafor: ``rma(d, sei = se_d, data = contact_data, method = "DL")``.
CONTACT_META: dict[str | None, tuple[float, float, float, int]] = {
    None: (0.39252187561586366, 0.08245155800593774, 0.1372959260152459, 27),
    "race": (0.2520769070197379, 0.07071511057946596, 0.025292782763062197, 11),
    "preregistered": (0.015818616815660158, 0.06662152382396382, 0.0, 3),
}


def _contact_numbers(subset: str | None) -> tuple[float, float, float, int]:
    return CONTACT_META[subset]


def _build(name: str) -> Prior:
    src = "Paluck, Green & Green (2019), Behavioural Public Policy 3(2); bundled table, DerSimonian-Laird"
    if name == "default":
        return Prior(
            "default",
            "normal",
            0.0,
            1.0,
            "Weakly informative: the effect is probably within ±2 outcome SDs; smaller effects are left to "
            "the data.",
            "evaltoolkit default (Gelman et al. 2008-style weakly informative prior on a standardised scale)",
        )
    if name in ("contact", "contact_mean"):
        mu, se, tau2, k = _contact_numbers(None)
        if name == "contact_mean":
            return Prior(
                "contact_mean",
                "normal",
                mu,
                se,
                f"Average effect of randomised contact interventions (random-effects mean of {k} studies, "
                f"tau^2 = {tau2:.3f}); for the average of many programmes, not for one programme.",
                src,
            )
        return Prior(
            "contact",
            "normal",
            mu,
            math.sqrt(se**2 + tau2),
            f"Informative: the effect of a new contact programme, predicted from {k} randomised contact "
            f"studies (random-effects mean {mu:.3f}, SE {se:.3f}, between-study tau^2 {tau2:.3f}).",
            src,
        )
    if name == "contact_ethnicity":
        mu, se, tau2, k = _contact_numbers("race")
        return Prior(
            "contact_ethnicity",
            "normal",
            mu,
            math.sqrt(se**2 + tau2),
            f"Informative: predicted effect of a new programme on attitudes to other ethnic groups, from the "
            f"{k} race/ethnicity studies (random-effects mean {mu:.3f}, SE {se:.3f}, tau^2 {tau2:.4f}).",
            src + ", studies with target = race",
        )
    if name == "sceptical":
        from scipy import stats

        mu, *_ = _contact_numbers(None)
        return Prior(
            "sceptical",
            "normal",
            0.0,
            mu / float(stats.norm.ppf(0.95)),
            f"Sceptical: centred on no effect, with only a 5% prior chance that the effect exceeds the "
            f"contact-literature average ({mu:.3f} SD). Pre-registered contact studies found about 0.",
            "Spiegelhalter, Freedman & Parmar (1994, JRSS A 157:357) sceptical prior, calibrated to "
            "Paluck et al. (2019)",
        )
    if name == "heterogeneity":
        return Prior(
            "heterogeneity",
            "halfnormal",
            0.0,
            0.5,
            "Between-site/team/study SD of effects: probably below 1 outcome SD (95% below 0.98); the "
            "contact literature's between-study SD is about 0.37.",
            "evaltoolkit default; cf. Paluck et al. (2019) tau = 0.37 and Röver et al. (2021, Res. Synth. "
            "Methods 12:448) half-normal heterogeneity priors",
        )
    if name == "cluster_sd":
        return icc_prior(CLUSTER_ICC_UPPER)
    if name == "heterogeneity_wide":
        return Prior(
            "heterogeneity_wide",
            "halfcauchy",
            0.0,
            1.0,
            "Between-site SD with a heavy tail: large variation across sites is not ruled out.",
            "Gelman (2006, Bayesian Analysis 1:515) half-Cauchy prior for group-level SDs",
        )
    raise DesignError(f"unknown prior '{name}'; choose one of {', '.join(list_priors())}")


_NAMES = (
    "default",
    "contact",
    "contact_mean",
    "contact_ethnicity",
    "sceptical",
    "heterogeneity",
    "heterogeneity_wide",
    "cluster_sd",
)
_ALIASES = {
    "weakly_informative": "default",
    "weak": "default",
    "informative": "contact",
    "contact_literature": "contact",
    "paluck": "contact",
    "skeptical": "sceptical",
    "tau": "heterogeneity",
    "icc": "cluster_sd",
}


def list_priors() -> list[str]:
    """Names accepted by :func:`get_prior`.

    Examples
    --------
    >>> list_priors()[:3]
    ['default', 'contact', 'contact_mean']
    """
    return list(_NAMES)


def get_prior(name: str | Prior = "default", outcome_sd: float = 1.0) -> Prior:
    """Return a named prior, rescaled from standardised-effect units to outcome units.

    Parameters
    ----------
    name : str or Prior
        One of :func:`list_priors` (aliases: ``"weakly_informative"``, ``"informative"``,
        ``"skeptical"``...). A :class:`Prior` is passed through (and rescaled).
    outcome_sd : float
        Standard deviation of the outcome (e.g. the pooled baseline SD). Location and scale are
        multiplied by it, so a prior of 0.39 SD becomes 0.39 * ``outcome_sd`` scale points.

    Returns
    -------
    Prior

    Raises
    ------
    DesignError
        Unknown name or a non-positive ``outcome_sd``.

    Examples
    --------
    >>> p = get_prior("sceptical")
    >>> round(p.sigma, 3), round(p.prob_greater(0.393), 3)
    (0.239, 0.05)
    >>> get_prior("contact", outcome_sd=2.0).label()
    'Normal(0.785, 0.759)'
    """
    if isinstance(name, Prior):
        return name.scaled(outcome_sd)
    if not isinstance(name, str):
        raise DesignError(f"prior must be a name or a Prior, not {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _NAMES:
        raise DesignError(f"unknown prior '{name}'; choose one of {', '.join(_NAMES)}")
    return _build(key).scaled(outcome_sd)


def prior_table(names: tuple[str, ...] = ("default", "contact", "sceptical"), outcome_sd: float = 1.0):
    """The named priors side by side (for the report's prior-sensitivity section).

    Returns
    -------
    pandas.DataFrame
        One row per prior: name, distribution, mu, sigma, label, lower_95, upper_95, P(effect > 0),
        description, source.

    Examples
    --------
    >>> prior_table()["label"].tolist()
    ['Normal(0, 1)', 'Normal(0.393, 0.38)', 'Normal(0, 0.239)']
    """
    import pandas as pd

    rows = []
    for n in names:
        p = get_prior(n, outcome_sd)
        rows.append({**p.as_dict(), "prob_positive": p.prob_greater(0.0)})
    cols = ["name", "distribution", "mu", "sigma", "label", "lower_95", "upper_95", "prob_positive",
            "description", "source"]  # fmt: skip
    return pd.DataFrame(rows)[cols]


def prior_sensitivity(
    estimate: float,
    std_error: float,
    priors: tuple[str | Prior, ...] = ("default", "contact", "sceptical"),
    outcome_sd: float = 1.0,
    rope: float | None = None,
):
    """How much a conclusion rests on the prior: combine an estimate with each prior (normal approximation).

    Treats the estimate as a normal likelihood, ``estimate ~ Normal(effect, std_error)``, and updates each
    normal prior conjugately (Spiegelhalter, Abrams & Myles 2004, *Bayesian Approaches to Clinical Trials*,
    ch. 3): posterior precision = prior precision + 1 / std_error^2. Cheap and exact for a normal
    likelihood; a full Bayesian model (``et.bayes_did``) should agree when the likelihood is close to
    normal. Use it to show, next to the full model, whether the answer changes with the prior.

    Parameters
    ----------
    estimate, std_error : float
        A (frequentist) effect estimate and its standard error, in outcome units.
    priors : tuple of str or Prior
        Priors for the effect (standardised scale; rescaled with ``outcome_sd``). Must be normal.
    outcome_sd : float
        Outcome standard deviation used to rescale the priors to outcome units.
    rope : float, optional
        Half-width of a region of practical equivalence; adds ``prob_rope`` = P(|effect| < rope).

    Returns
    -------
    pandas.DataFrame
        One row per prior: prior, prior_label, post_mean, post_sd, ci_lower, ci_upper (95% credible
        interval), prob_positive, data_weight (share of the posterior precision that comes from the data),
        and prob_rope if requested.

    Examples
    --------
    >>> t = prior_sensitivity(0.30, 0.15)
    >>> t[["prior", "post_mean", "prob_positive"]].round(3).values.tolist()
    [['default', 0.293, 0.976], ['contact', 0.312, 0.987], ['sceptical', 0.215, 0.955]]
    """
    import pandas as pd
    from scipy import stats

    if not (math.isfinite(estimate) and math.isfinite(std_error) and std_error > 0):
        raise DesignError(
            f"need a finite estimate and a positive standard error, got {estimate}, {std_error}"
        )
    rows = []
    for name in priors:
        p = get_prior(name, outcome_sd)
        if p.distribution != "normal":
            raise DesignError(f"prior '{p.name}' is {p.distribution}; an effect prior must be normal")
        prec_prior, prec_data = 1 / p.sigma**2, 1 / std_error**2
        post_var = 1 / (prec_prior + prec_data)
        post_mean = post_var * (prec_prior * p.mu + prec_data * estimate)
        sd = math.sqrt(post_var)
        row = {
            "prior": p.name,
            "prior_label": p.label(),
            "post_mean": post_mean,
            "post_sd": sd,
            "ci_lower": post_mean - 1.959963984540054 * sd,
            "ci_upper": post_mean + 1.959963984540054 * sd,
            "prob_positive": float(stats.norm.sf(0, post_mean, sd)),
            "data_weight": prec_data / (prec_prior + prec_data),
        }
        if rope is not None:
            row["prob_rope"] = float(
                stats.norm.cdf(rope, post_mean, sd) - stats.norm.cdf(-rope, post_mean, sd)
            )
        rows.append(row)
    return pd.DataFrame(rows)
