"""Study designs: the machine-readable, pre-registrable analysis plan.

A design file (YAML) says which columns hold the person id, arm, wave and clusters, which arm is
treated, the waves, the outcome scales, covariates, moderators, mediators, the analyses to run and
the multiple-comparison families. It may also carry a ``simulation`` block: the parameters of a
realistic simulated study used for the demo, for power by simulation and for testing estimators
against known truth.

Bundled designs live in the top-level ``designs/`` folder, installed as the package
``evaltoolkit.designs_library``.

Examples
--------
>>> import evaltoolkit as et
>>> d = et.load_design("ncs_prepost_control")
>>> d.arms.treated, [w.name for w in d.waves]
('ncs', ['baseline', 'post', 'followup'])
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaltoolkit.errors import DesignError

_LIBRARY = "evaltoolkit.designs_library"


def did_you_mean(name: str, choices) -> str:
    """``" (did you mean 'attitudes'?)"`` for the closest of ``choices``, or ``""`` when none is close.

    Examples
    --------
    >>> did_you_mean("atitudes", ["attitudes", "contact"])
    " (did you mean 'attitudes'?)"
    """
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Columns(_Strict):
    """Names of the data columns the design relies on."""

    id: str = "pid"
    arm: str = "arm"
    wave: str = "wave"
    clusters: list[str] = Field(default_factory=list, description="cluster levels, outermost first")


class Arms(_Strict):
    """Arm labels as they appear in the data."""

    treated: str
    control: list[str]
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("control", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _distinct(self) -> Arms:
        if self.treated in self.control:
            raise ValueError(f"arm '{self.treated}' cannot be both treated and control")
        if not self.control:
            raise ValueError("at least one control arm label is needed")
        return self

    def label(self, arm: str) -> str:
        return self.labels.get(arm, arm)

    @property
    def all(self) -> list[str]:
        return [self.treated, *self.control]


class Wave(_Strict):
    name: str
    label: str | None = None
    months: float = 0.0

    @property
    def display(self) -> str:
        return self.label or self.name


class Outcome(_Strict):
    """An outcome: a scale score (or single item) column."""

    name: str
    label: str | None = None
    scale: str | None = Field(
        None,
        description="the instrument scale (or item code) that produces this column; scored data may name the "
        "column by it",
    )
    instrument: str | None = None
    family: str = "primary"
    dichotomise: str | None = Field(None, description="e.g. '>=4' to report % agree (single items)")

    @property
    def display(self) -> str:
        return self.label or self.name.replace("_", " ")


#: the analysis types a design may plan (``analyses[].type``). The plan's registry
#: (:func:`evaltoolkit.plan.registry.runner`) adds each type it registers, so a new analysis type is declared once,
#: where its runner is; a test keeps this built-in list equal to the built-in runners.
ANALYSIS_TYPES: list[str] = [
    "did",
    "ancova",
    "mediation",
    "moderation",
    "multilevel",
    "bayes_did",
    "attrition",
    "balance",
    "measurement",
    "robustness",
]


class Analysis(_Strict):
    """One planned analysis."""

    id: str
    type: str = Field(description="one of ANALYSIS_TYPES")
    outcomes: list[str] = Field(default_factory=list)
    post: list[str] = Field(default_factory=list, description="post waves compared with baseline")
    cluster: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    primary: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ANALYSIS_TYPES:
            raise ValueError(f"unknown analysis type '{value}'; use one of {', '.join(ANALYSIS_TYPES)}")
        return value


class ConfoundingPlan(_Strict):
    """Sensitivity to an unobserved confounder (Cinelli & Hazlett 2020): what to benchmark it on."""

    benchmarks: list[str] = Field(
        default_factory=list,
        description="observed covariates a hidden confounder is compared with (default: the design's covariates)",
    )
    multiples: list[float] = Field(default_factory=lambda: [1.0, 2.0, 3.0], description="k_d = k_y multiples")


class TrendsPlan(_Strict):
    """Honest bounds for parallel trends (Rambachan & Roth 2023); used with two or more pre-programme waves."""

    mbar: list[float] = Field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0], description="relative magnitudes")
    m: list[float] = Field(
        default_factory=list, description="smoothness bounds (default: a grid from the SEs)"
    )


class MissingPlan(_Strict):
    """The missing-data assumption the plan states, and the tipping-point analysis under departures from it."""

    assumption: Literal["MCAR", "MAR", "MNAR"] = Field(
        "MAR", description="MCAR, MAR given baseline answers and covariates, or MNAR (give delta)"
    )
    delta: list[float] = Field(
        default_factory=list,
        description="MNAR shifts of the non-completers' follow-up scores, in scale points (default: +-0.5 SD)",
    )
    imputations: int = Field(20, ge=2, le=200)


SENSITIVITY_CHECKS = ("few_clusters", "confounding", "parallel_trends", "attrition")


class Sensitivity(_Strict):
    """Which sensitivity analyses the plan pre-specifies (the "How robust is this?" section) and their settings."""

    checks: list[str] = Field(default_factory=lambda: list(SENSITIVITY_CHECKS))
    analysis: str | None = Field(None, description="the DiD analysis checked (default: the primary one)")
    outcome: str | None = Field(None, description="the outcome checked (default: the primary one)")
    confounding: ConfoundingPlan = Field(default_factory=ConfoundingPlan)
    parallel_trends: TrendsPlan = Field(default_factory=TrendsPlan)
    missing: MissingPlan = Field(default_factory=MissingPlan)

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in SENSITIVITY_CHECKS]
        if unknown:
            raise ValueError(f"unknown sensitivity check '{unknown[0]}'; use {', '.join(SENSITIVITY_CHECKS)}")
        return value


class SimConstruct(_Strict):
    """Simulation of one latent construct measured by Likert items."""

    items: list[str]
    categories: int = 5
    reverse: list[str] = Field(default_factory=list)
    loading: float = Field(0.75, gt=0, lt=1)
    effect: float = Field(0.0, description="true effect at the first post wave, latent SD units")
    selection: float = Field(0.0, description="baseline advantage of the treated arm, latent SD units")

    @model_validator(mode="after")
    def _check(self) -> SimConstruct:
        unknown = sorted(set(self.reverse) - set(self.items))
        if unknown:
            raise ValueError(f"reverse-keyed items {unknown} are not in items")
        if self.categories < 2:
            raise ValueError("categories must be at least 2")
        return self


class Simulation(_Strict):
    """Parameters of the simulated study (all effects in latent SD units)."""

    n: int = Field(2000, description="people at baseline")
    sites: int = 20
    team_size: tuple[int, int] = (12, 15)
    treated_share: float = 0.6
    assignment: Literal["individual", "site"] = Field(
        "individual",
        description="individual: people choose/are assigned; site: whole sites (schools, towns) are",
    )
    treated_sites: int | None = Field(
        None, description="with site assignment: how many sites get the programme"
    )
    constructs: dict[str, SimConstruct]
    mediator: str | None = Field(None, description="construct whose change carries part of the effect")
    mediated: dict[str, float] = Field(
        default_factory=dict, description="outcome -> b path from the mediator's change (latent units)"
    )
    moderation: float = Field(0.0, description="relative increase of effects per unit of segregation (0-1)")
    decay: dict[str, float] = Field(default_factory=dict, description="wave -> share of the post effect kept")
    trend: dict[str, float] = Field(default_factory=dict, description="wave -> common change, latent SD")
    change_sd: float = Field(0.6, gt=0, description="SD of individual change between waves")
    team_effect_sd: float = Field(0.1, ge=0, description="SD of team deviations in the treatment effect")
    site_sd: float = Field(0.25, ge=0, description="SD of site differences in baseline levels")
    retention: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="wave -> arm -> share of the baseline sample still responding (cumulative, monotone dropout)",
    )
    item_missing: float = Field(0.01, ge=0, lt=1, description="share of item answers left blank")
    attrition_on_baseline: float = Field(
        0.0, description="log-odds change in retention per SD of baseline outcome (MAR dropout)"
    )

    @model_validator(mode="after")
    def _check(self) -> Simulation:
        if self.n < 20:
            raise ValueError(f"n must be at least 20 people (got {self.n})")
        if self.sites < 1:
            raise ValueError(f"sites must be at least 1 (got {self.sites})")
        lo, hi = self.team_size
        if not 1 <= lo <= hi:
            raise ValueError(f"team_size must be two increasing positive numbers (got {lo}, {hi})")
        if not 0 < self.treated_share < 1:
            raise ValueError(f"treated_share must be between 0 and 1 (got {self.treated_share})")
        if self.assignment == "site":
            k = (
                self.treated_sites
                if self.treated_sites is not None
                else round(self.sites * self.treated_share)
            )
            if not 1 <= k < self.sites:
                raise ValueError(
                    f"with site assignment, treated_sites must leave at least one treated and one control site "
                    f"(sites={self.sites}, treated_sites={k})"
                )
        for wave, by_arm in self.retention.items():
            for arm, p in by_arm.items():
                if not 0 <= p <= 1:
                    raise ValueError(
                        f"retention for wave '{wave}', arm '{arm}' must be between 0 and 1 (got {p}); "
                        "retention is the share still responding, i.e. 1 - attrition"
                    )
        if self.mediator is not None and self.mediator not in self.constructs:
            raise ValueError(f"mediator '{self.mediator}' is not one of the constructs")
        for out in self.mediated:
            if out not in self.constructs:
                raise ValueError(f"mediated outcome '{out}' is not one of the constructs")
        return self


class Design(_Strict):
    """A study design / analysis plan. Load with :func:`load_design`."""

    name: str
    title: str
    description: str = ""
    kind: Literal["panel", "post_only", "cluster_rct"] = "panel"
    columns: Columns = Field(default_factory=Columns)
    arms: Arms
    waves: list[Wave]
    baseline: str | None = None
    instruments: list[str] = Field(default_factory=list)
    outcomes: list[Outcome]
    covariates: list[str] = Field(default_factory=list)
    moderators: list[str] = Field(default_factory=list)
    mediators: list[str] = Field(default_factory=list)
    scales: dict[str, str] = Field(
        default_factory=dict,
        description="mediator/moderator column -> the instrument scale (or item) that produces it; outcomes say so "
        "in outcomes[].scale",
    )
    analyses: list[Analysis] = Field(default_factory=list)
    families: dict[str, list[str]] = Field(default_factory=dict)
    multiplicity: Literal["holm", "bh", "bonferroni", "hochberg", "by", "none"] = Field(
        "holm", description="adjustment of p-values for several outcomes within each family"
    )
    cost_per_participant: float | None = Field(
        None,
        ge=0,
        description="what the programme costs per participant (the summary gives the cost per 0.1 SD)",
    )
    currency: str = Field("£", description="currency symbol for the cost")
    sensitivity: Sensitivity = Field(
        default_factory=Sensitivity,
        description="the pre-specified sensitivity analyses (analysis type robustness)",
    )
    simulation: Simulation | None = None
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> Design:
        wave_names = [w.name for w in self.waves]
        if len(set(wave_names)) != len(wave_names):
            raise ValueError(f"wave names must be unique (got {wave_names})")
        if self.baseline is None and self.kind != "post_only":
            self.baseline = wave_names[0]
        if self.baseline is not None and self.baseline not in wave_names:
            raise ValueError(f"baseline '{self.baseline}' is not one of the waves {wave_names}")
        names = [o.name for o in self.outcomes]
        others = [*self.mediators, *self.moderators]
        for column in self.scales:
            if column in names:
                raise ValueError(
                    f"scales names outcome '{column}': give an outcome's scale in outcomes[].scale instead"
                )
            if column not in others:
                raise ValueError(
                    f"scales names '{column}', which is not a mediator or moderator{did_you_mean(column, others)}"
                )
        for family, members in self.families.items():
            for o in members:
                if o not in names:
                    raise ValueError(
                        f"family '{family}' names outcome '{o}', which is not in outcomes {names}"
                        f"{did_you_mean(o, names)}; a misspelt member would silently change the adjustment"
                    )
        for a in self.analyses:
            for o in a.outcomes:
                if o not in names:
                    raise ValueError(
                        f"analysis '{a.id}' uses outcome '{o}', which is not in outcomes {names}{did_you_mean(o, names)}"
                    )
            for w in a.post:
                if w not in wave_names:
                    raise ValueError(f"analysis '{a.id}' uses wave '{w}', which is not in waves {wave_names}")
            if a.cluster is not None and a.cluster not in self.columns.clusters:
                raise ValueError(
                    f"analysis '{a.id}' clusters by '{a.cluster}', which is not in columns.clusters "
                    f"{self.columns.clusters}"
                )
        sens = self.sensitivity
        ids = [a.id for a in self.analyses]
        if sens.analysis is not None and sens.analysis not in ids:
            raise ValueError(
                f"sensitivity.analysis '{sens.analysis}' is not one of the analyses {ids}{did_you_mean(sens.analysis, ids)}"
            )
        if sens.outcome is not None and sens.outcome not in names:
            raise ValueError(
                f"sensitivity.outcome '{sens.outcome}' is not in outcomes {names}{did_you_mean(sens.outcome, names)}"
            )
        for b in sens.confounding.benchmarks:
            if b not in self.covariates:
                raise ValueError(
                    f"sensitivity.confounding.benchmarks names '{b}', which is not a covariate "
                    f"{self.covariates}{did_you_mean(b, self.covariates)}"
                )
        if self.simulation is not None:
            for w in (
                list(self.simulation.retention) + list(self.simulation.decay) + list(self.simulation.trend)
            ):
                if w not in wave_names:
                    raise ValueError(f"simulation refers to wave '{w}', which is not in waves {wave_names}")
            for arm in self.arms.all:
                last, last_wave = 1.0, self.baseline
                for w in self.post_waves:
                    r = self.simulation.retention.get(w, {}).get(arm)
                    if r is None:
                        continue
                    if r > last + 1e-12:
                        raise ValueError(
                            f"simulation.retention for arm '{arm}' rises from {last} ({last_wave}) to {r} ({w}); "
                            "retention is the cumulative share of the baseline sample still responding, so it "
                            "cannot rise"
                        )
                    last, last_wave = r, w
            for w, by_arm in self.simulation.retention.items():
                for arm in by_arm:
                    if arm not in self.arms.all:
                        raise ValueError(
                            f"simulation.retention.{w} names arm '{arm}', which is not one of the arms "
                            f"{self.arms.all}"
                        )
        return self

    # convenience -----------------------------------------------------------------
    @property
    def wave_names(self) -> list[str]:
        return [w.name for w in self.waves]

    @property
    def post_waves(self) -> list[str]:
        """The waves after the baseline (every wave of a post-only design)."""
        names = self.wave_names
        return names[names.index(self.baseline) + 1 :] if self.baseline in names else names

    @property
    def pre_waves(self) -> list[str]:
        """Waves before the baseline (earlier pre-programme waves: they make parallel trends testable)."""
        names = self.wave_names
        return names[: names.index(self.baseline)] if self.baseline in names else []

    def panel_arguments(self) -> dict[str, Any]:
        """Column and label arguments shared by the panel estimators (``did``, ``bayes_did``...).

        Examples
        --------
        >>> load_design("ncs_prepost_control").panel_arguments()["treated"]
        'ncs'
        """
        c = self.columns
        return {
            "arm": c.arm,
            "wave": c.wave,
            "treated": self.arms.treated,
            "control": self.arms.control,
            "pre": self.baseline,
            "unit": c.id,
        }

    @property
    def sources(self) -> dict[str, str]:
        """Design column -> the instrument scale or item that produces it (``outcomes[].scale`` and ``scales:``).

        Scored data (``evaltoolkit score``) name a column by its scale; :class:`~evaltoolkit.design.study.Study`
        reads such a column as the design's outcome, mediator or moderator.

        Examples
        --------
        >>> load_design("ncs_prepost_control").sources["positive_contact"]
        'ncs_positive_contact'
        """
        return {**{o.name: o.scale for o in self.outcomes if o.scale}, **self.scales}

    @property
    def outcome_names(self) -> list[str]:
        return [o.name for o in self.outcomes]

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise DesignError(f"no outcome called '{name}'", field="outcomes")

    def wave(self, name: str) -> Wave:
        for w in self.waves:
            if w.name == name:
                return w
        raise DesignError(f"no wave called '{name}'", field="waves")

    def with_simulation(self, **changes: Any) -> Design:
        """A copy whose simulation parameters are updated (validated again).

        Examples
        --------
        >>> d = load_design("ncs_prepost_control").with_simulation(n=500)
        >>> d.simulation.n
        500
        """
        if self.simulation is None:
            raise DesignError("this design has no simulation block", field="simulation", file=_src(self))
        data = self.simulation.model_dump()
        data.update(changes)
        try:
            sim = Simulation.model_validate(data)
        except ValidationError as exc:
            raise _design_error(exc, _src(self), prefix="simulation") from None
        new = self.model_copy(update={"simulation": sim})
        try:
            return Design.model_validate(new.model_dump() | {"source": self.source})
        except ValidationError as exc:
            raise _design_error(exc, _src(self)) from None


def _src(design: Design) -> str | None:
    return str(design.source) if design.source else None


def _design_error(exc: ValidationError, file: str | None, prefix: str | None = None) -> DesignError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if p not in ("__root__",))
    if prefix:
        loc = f"{prefix}.{loc}" if loc else prefix
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif err["type"] == "missing":
        msg = "this required field is missing"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return DesignError(msg + more, file=file, field=loc or None)


def list_designs():
    """Bundled designs as a DataFrame (name, title, kind, waves, outcomes).

    Examples
    --------
    >>> import evaltoolkit as et
    >>> "ncs_prepost_control" in set(et.list_designs()["name"])
    True
    """
    import pandas as pd

    rows = []
    for entry in sorted(resources.files(_LIBRARY).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            d = load_design(entry.name.removesuffix(".yaml"))
            rows.append(
                {
                    "name": d.name,
                    "title": d.title,
                    "kind": d.kind,
                    "waves": ", ".join(d.wave_names),
                    "outcomes": ", ".join(o.name for o in d.outcomes),
                }
            )
    return pd.DataFrame(rows)


def load_design(name_or_path: str | Path | dict) -> Design:
    """Load and validate a design.

    Parameters
    ----------
    name_or_path : str, Path or dict
        A bundled design name (e.g. ``"ncs_prepost_control"``), a path to a YAML file, or an
        already-parsed mapping.

    Returns
    -------
    Design

    Raises
    ------
    DesignError
        If the file is missing, is not valid YAML, or a field is wrong (the message names the field).

    Examples
    --------
    >>> d = load_design("ncs_prepost_control")
    >>> d.columns.clusters
    ['site', 'team']
    """
    if isinstance(name_or_path, dict):
        raw, source = name_or_path, None
    else:
        path = Path(name_or_path)
        text: str
        if path.suffix in (".yaml", ".yml") or path.exists():
            if not path.exists():
                raise DesignError("design file not found", file=str(path))
            text, source = path.read_text(encoding="utf-8"), path
        else:
            res = resources.files(_LIBRARY) / f"{name_or_path}.yaml"
            if not res.is_file():
                available = sorted(
                    p.name.removesuffix(".yaml")
                    for p in resources.files(_LIBRARY).iterdir()
                    if p.name.endswith(".yaml")
                )
                raise DesignError(
                    f"no bundled design called '{name_or_path}' (available: {', '.join(available)}); "
                    "give a path to a .yaml file for your own design"
                )
            text, source = res.read_text(encoding="utf-8"), Path(str(res))
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise DesignError(
                f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", file=str(source)
            ) from None
        if not isinstance(raw, dict):
            raise DesignError("a design file must be a YAML mapping of fields", file=str(source))
    try:
        design = Design.model_validate(raw)
    except ValidationError as exc:
        raise _design_error(exc, str(source) if source else None) from None
    design.source = source
    return design
