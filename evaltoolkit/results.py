"""Small typed result objects shared by every estimator.

Every effect estimate in evaltoolkit is an :class:`EffectResult`: it exposes
``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value``, ``n_obs``,
``n_clusters`` and a tidy ``table`` (one row per reported term, with the columns
of :data:`ESTIMATE_COLUMNS`). Estimators that report several terms (mediation
paths, multi-wave DiD) keep the headline term in the attributes and all terms in
``table``.

Examples
--------
>>> from evaltoolkit.results import EffectResult
>>> r = EffectResult(analysis="did", outcome="attitudes", term="treat:post",
...                  estimate=0.25, std_error=0.05, ci_lower=0.15, ci_upper=0.35,
...                  p_value=1e-6, n_obs=800, n_clusters=40, method="OLS, CR1 by team")
>>> float(r.table.loc[0, "estimate"])
0.25
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from importlib import import_module
from typing import Any

from evaltoolkit.labels import column_label, label_table, plain, term_label

#: Columns of ``estimates.csv`` and of every result's ``table`` (the public contract).
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "analysis",
    "outcome",
    "term",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "n_obs",
    "n_clusters",
    "method",
)


class DroppedRows:
    """Mixin for results: :attr:`dropped`, the rows left out of the analysis counted by reason.

    Every estimator counts what it leaves out (non-negotiable: nothing is lost silently). Estimators that know
    the reasons store them as ``details["dropped"]`` (``{"missing values": 3, "other arms": 12}``); those that
    only count store ``details["n_dropped"]``, reported as missing values.
    """

    details: dict[str, Any]

    @property
    def dropped(self) -> dict[str, int]:
        """Rows not analysed, by reason (reasons with a zero count left out)."""
        by_reason = self.details.get("dropped")
        if isinstance(by_reason, dict):
            return {str(k): int(v) for k, v in by_reason.items() if v}
        n = int(self.details.get("n_dropped", 0) or 0)
        return {"missing values": n} if n else {}


#: ``analysis`` values in words (for notebook tables and :func:`evaltoolkit.report.etable.etable` headers)
ANALYSIS_LABELS: dict[str, str] = {
    "did": "DiD", "ancova": "ANCOVA", "bayes_did": "Bayesian DiD", "multilevel": "Multilevel model",
    "moderation": "Moderation", "mediation": "Mediation", "causal_mediation": "Causal mediation",
    "moderated_mediation": "Moderated mediation", "prepost_mediation": "Pre/post mediation",
    "meta": "Meta-analysis",
}  # fmt: skip

#: the columns a notebook shows of a result's table (``outcome`` too when there are several)
_SHOWN = ("term", "estimate", "std_error", "ci_lower", "ci_upper", "p_value")


def analysis_label(name: Any) -> str:
    """The analysis in words: ``"did" -> "DiD"``; unknown names in plain words.

    Examples
    --------
    >>> analysis_label("ancova"), analysis_label("prepost_moderated_mediation")
    ('ANCOVA', 'Prepost moderated mediation')
    """
    return ANALYSIS_LABELS.get(str(name), plain(str(name)))


def outcome_label(name: Any, names: dict[str, str] | None = None) -> str:
    """An outcome column in words: from ``names`` if given there, else plain words (``"positive_contact"``).

    Examples
    --------
    >>> outcome_label("positive_contact"), outcome_label("att", {"att": "Attitudes"})
    ('Positive contact', 'Attitudes')
    """
    return (names or {}).get(str(name), plain(str(name)))


def format_number(x: Any, sig: int = 3) -> str:
    """A number for a reader: ``sig`` significant digits, whole numbers from ``10**sig`` up, "" for missing.

    Examples
    --------
    >>> [format_number(v) for v in (0.25, -12.345, 0.000123456, 123456.7, float("nan"), 0)]
    ['0.250', '-12.3', '0.000123', '123,457', '', '0.00']
    """
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "" if x is None or x != x else str(x)  # NaN != NaN; infinities shown as such
    if x == 0:
        return f"{0:.{sig - 1}f}"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= sig:
        return f"{x:,.0f}"
    return f"{x:.{min(max(sig - 1 - magnitude, 0), 8)}f}"


def _shown_table(result: Any, names: dict[str, str] | None = None):
    """The reader's view of ``result.table``: shown columns, numbers rounded, terms and headers labelled."""
    t = result.table
    cols = [
        c for c in ("outcome", *_SHOWN) if c in t.columns and (c != "outcome" or t["outcome"].nunique() > 1)
    ]
    out = t[cols].copy()
    unbounded = unbounded_intervals(t["ci_lower"], t["ci_upper"], t["std_error"])
    for c in ("estimate", "std_error", "ci_lower", "ci_upper"):
        out[c] = [format_number(float(v)) for v in t[c]]
    out.loc[unbounded, ["ci_lower", "ci_upper"]] = "unbounded"
    out["p_value"] = [format_p(float(v)) for v in t["p_value"]]
    if "outcome" in out:
        out["outcome"] = [outcome_label(v, names) for v in out["outcome"]]
    return label_table(out, names=names)


def _footer(result: Any) -> str:
    """``method; n = 800 rows in 40 clusters``, the line below a result's table."""
    n = f"n = {result.n_obs:,} {column_label('n_obs').lower()}"
    if getattr(result, "n_clusters", None):
        n += f" in {result.n_clusters:,} {column_label('n_clusters').lower()}"
    return f"{result.method}; {n}"


#: result class name -> figure function ``f(result, **options) -> Figure`` (see :func:`register_plot`)
PLOTS: dict[str, Callable[..., Any]] = {}


def register_plot(*kinds: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the figure that ``.plot()`` draws for results of the classes named ``kinds``.

    The plotting layer sits above results, so results never import it; figures are registered here by name
    (``"EffectResult"`` is the fallback for every result), and ``.plot()`` finds the nearest class in the
    result's MRO.

    Examples
    --------
    >>> @register_plot("ToyResult")
    ... def toy_figure(result, **options):
    ...     return "a figure"
    >>> PLOTS["ToyResult"] is toy_figure
    True
    >>> del PLOTS["ToyResult"]
    """

    def add(func: Callable[..., Any]) -> Callable[..., Any]:
        for kind in kinds:
            PLOTS[kind] = func
        return func

    return add


class ResultViews(DroppedRows):
    """Mixin for every result: the notebook and broom-style views of its ``table``.

    ``_repr_html_`` (Jupyter shows a labelled, rounded table with the method and n below), :meth:`tidy`,
    :meth:`glance` and :meth:`plot`. A result needs ``table``, ``n_obs``, ``n_clusters``, ``method``,
    ``warnings`` and ``details``.
    """

    table: Any
    n_obs: int
    n_clusters: int | None
    method: str
    warnings: list[str]

    def _repr_html_(self) -> str:
        """The labelled table as compact HTML (Jupyter's rich display), the method and n below it."""
        shown = _shown_table(self)
        t = self.table
        title = f"{outcome_label(t['outcome'].iloc[0])}: {analysis_label(t['analysis'].iloc[0])}"
        cautions = len(self.warnings)
        caution = (
            f"<br>{cautions} caution{'s' * (cautions > 1)}: see <code>.warnings</code>" if cautions else ""
        )
        return (
            f'<div class="evaltoolkit-result"><strong>{html.escape(title)}</strong>'
            + shown.to_html(index=False, border=0, escape=True)
            + f"<small>{html.escape(_footer(self))}{caution}</small></div>"
        )

    def tidy(self):  # -> pandas.DataFrame
        """The table broom-style: ``outcome, term, estimate, std_error, statistic, p_value, conf_low, conf_high``.

        ``statistic`` is the Wald ratio ``estimate / std_error``; the rows and numbers are those of ``table``.

        Examples
        --------
        >>> r = EffectResult(analysis="did", outcome="y", term="treat:post", estimate=0.5, std_error=0.25,
        ...                  ci_lower=0.0, ci_upper=1.0, p_value=0.05, n_obs=10, n_clusters=None, method="OLS")
        >>> r.tidy().iloc[0].to_dict()["statistic"], list(r.tidy())[-2:]
        (2.0, ['conf_low', 'conf_high'])
        """
        t = self.table
        out = t[["outcome", "term", "estimate", "std_error"]].copy()
        out["statistic"] = t["estimate"] / t["std_error"]
        out["p_value"] = t["p_value"]
        out["conf_low"], out["conf_high"] = t["ci_lower"], t["ci_upper"]
        return out.reset_index(drop=True)

    def glance(self):  # -> pandas.DataFrame
        """One row about the model: ``analysis, outcome, n_obs, n_clusters, method, df, r2, r2_within``.

        ``r2_within`` is the R-squared within the absorbed fixed effects (DiD with person effects); NaN where a
        model has no such number.

        Examples
        --------
        >>> r = EffectResult(analysis="did", outcome="y", term="treat:post", estimate=0.5, std_error=0.25,
        ...                  ci_lower=0.0, ci_upper=1.0, p_value=0.05, n_obs=10, n_clusters=None, method="OLS",
        ...                  details={"df": 8})
        >>> r.glance().iloc[0].to_dict()
        {'analysis': 'did', 'outcome': 'y', 'n_obs': 10, 'n_clusters': None, 'method': 'OLS', 'df': 8, 'r2': nan, 'r2_within': nan}
        """
        import pandas as pd

        head = self.table.iloc[0]
        details = getattr(self, "details", {}) or {}
        row = {"analysis": head["analysis"], "outcome": head["outcome"], "n_obs": self.n_obs,
               "n_clusters": self.n_clusters, "method": self.method, "df": details.get("df", math.nan),
               "r2": details.get("r2", math.nan), "r2_within": details.get("r2_within", math.nan)}  # fmt: skip
        return pd.DataFrame([row], dtype=object).infer_objects()

    def plot(self, **options: Any):  # -> matplotlib.figure.Figure
        """The result's figure: the one registered for its class (:data:`PLOTS`), else a forest plot of the table.

        Options go to the figure function (``title=``, ``ax=``...); the figures are those of
        :mod:`evaltoolkit.plots`, found by name when drawn (see :func:`register_plot`).
        """
        for cls in type(self).__mro__:
            if cls.__name__ in PLOTS:
                return PLOTS[cls.__name__](self, **options)
        raise TypeError(f"no figure is registered for {type(self).__name__}")  # pragma: no cover


def _figure(name: str) -> Callable[..., Any]:
    """A figure function of :mod:`evaltoolkit.plots`, by name at call time (results never import the plots)."""
    return getattr(import_module("evaltoolkit.plots"), name)


@register_plot("EffectResult", "TableHeadline")
def _forest(result: Any, *, names: dict[str, str] | None = None, **options: Any):
    """Forest plot of every row of the table, labelled (outcome first when there are several)."""
    t = result.table
    several = t["outcome"].nunique() > 1
    labels = [
        (f"{outcome_label(o, names)}: " if several else "") + term_label(term, names=names)
        for o, term in zip(t["outcome"], t["term"])
    ]
    options.setdefault(
        "title", f"{outcome_label(t['outcome'].iloc[0], names)}: {analysis_label(t['analysis'].iloc[0])}"
    )
    return _figure("forest_plot")(t.assign(label=labels), **options)


@register_plot("DiDResult")
def _event_study(result: Any, *, names: dict[str, str] | None = None, **options: Any):
    """The event study (the effect at each wave against baseline); a forest plot when there is none."""
    es = getattr(result, "event_study", None)
    if es is None or es.empty or "wave" not in es:
        return _forest(result, names=names, **options)
    return _figure("event_study_plot")(
        {outcome_label(result.outcome, names): es}, waves=list(es["wave"]), **options
    )


@register_plot("MetaResult")
def _meta_forest(result: Any, **options: Any):
    """The meta-analysis forest plot (studies, pooled diamond, prediction interval)."""
    return _figure("forest_plot")(result, **options)


@register_plot("ModerationResult")
def _moderation(result: Any, **options: Any):
    """The conditional effect across the moderator with its Johnson-Neyman boundaries."""
    return _figure("moderation_plot")(result, **options)


@register_plot("MediationResult")
def _paths(result: Any, **options: Any):
    """The path diagram of a mediation model."""
    return _figure("path_diagram")(result, **options)


@register_plot("BayesDiDResult", "BayesOrdinalResult")
def _posterior(result: Any, **options: Any):
    """The posterior of the programme effect with its HDI, the ROPE and the prior."""
    return _figure("posterior_plot")(result, **options)


class TableHeadline(ResultViews):
    """Mixin for results whose numbers live in a tidy ``table``: the headline attributes are read from it.

    The table is the single source of numbers (pyfixest's ``TidyColumnAccessors`` idea); a result says which row
    is its headline (:meth:`_headline_row`) and ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper`` and
    ``p_value`` follow from that row.
    """

    def _headline_row(self) -> Any:  # pragma: no cover - each result defines it
        raise NotImplementedError

    @property
    def estimate(self) -> float:
        return float(self._headline_row()["estimate"])

    @property
    def std_error(self) -> float:
        return float(self._headline_row()["std_error"])

    @property
    def ci_lower(self) -> float:
        return float(self._headline_row()["ci_lower"])

    @property
    def ci_upper(self) -> float:
        return float(self._headline_row()["ci_upper"])

    @property
    def p_value(self) -> float:
        return float(self._headline_row()["p_value"])


@dataclass(frozen=True)
class Inference:
    """The inference for one model term: what was used, the numbers, and the alternatives beside it.

    Built by :func:`evaltoolkit.inference.policy.infer` (defined here so that results stay below the
    inference layer). ``alternatives`` maps each method computed (``"CR1"``, ``"CR2"``, ``"wild"``...) to its
    raw output, for the report's "how the conclusion depends on the inference method" table; ``method`` is
    the plain description (e.g. ``"CR1 by team (G=40, t with 39 df)"``).
    """

    term: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    df: float
    statistic: float
    vcov: str
    n_clusters: int | None
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    method: str = ""

    def row(self) -> dict[str, Any]:
        """``estimate, std_error, ci_lower, ci_upper, p_value, df`` and ``term``, as a dict."""
        keys = ("estimate", "std_error", "ci_lower", "ci_upper", "p_value", "df")
        return {**{k: getattr(self, k) for k in keys}, "term": self.term}


@dataclass
class EffectResult(ResultViews):
    """One headline effect estimate with its uncertainty, table-first.

    The tidy ``table`` (one row per reported term, :data:`ESTIMATE_COLUMNS`) is the single source of the numbers:
    the headline attributes are views of its first row, and ``extra_rows`` of the rows after it. A result is
    built with keyword arguments for the headline row (as in 0.1) and ``extra_rows`` for the others.

    Attributes
    ----------
    analysis, outcome, term : str
        Which analysis, outcome and model term the headline row describes.
    estimate, std_error, ci_lower, ci_upper, p_value : float
        The headline estimate (in outcome units unless ``method`` says otherwise).
    n_obs : int
        Observations (rows) used in the model.
    n_clusters : int or None
        Independent clusters used for inference (``None`` if not clustered).
    method : str
        A short description of estimator and inference (e.g. ``"OLS, CR1 by team"``).
    extra_rows : list of dict
        Further terms for ``table`` (same keys as :data:`ESTIMATE_COLUMNS`).
    warnings : list of str
        Plain-language cautions a reader must see (few clusters, weak overlap...).
    details : dict
        Estimator-specific extras (effect sizes, df, dropped-row counts, fitted objects).
    """

    analysis: InitVar[str]
    outcome: InitVar[str]
    term: InitVar[str]
    estimate: InitVar[float]
    std_error: InitVar[float]
    ci_lower: InitVar[float]
    ci_upper: InitVar[float]
    p_value: InitVar[float]
    n_obs: InitVar[int]
    n_clusters: InitVar[int | None]
    method: InitVar[str]
    extra_rows: InitVar[list[dict[str, Any]] | None] = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    _rows: list[dict[str, Any]] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self, analysis, outcome, term, estimate, std_error, ci_lower, ci_upper, p_value, n_obs,
                      n_clusters, method, extra_rows) -> None:  # fmt: skip
        values = (
            analysis,
            outcome,
            term,
            estimate,
            std_error,
            ci_lower,
            ci_upper,
            p_value,
            n_obs,
            n_clusters,
            method,
        )
        self._rows = [dict(zip(ESTIMATE_COLUMNS, values)), *(dict(r) for r in (extra_rows or []))]

    def headline_row(self) -> dict[str, Any]:
        """The headline estimate as a dict keyed by :data:`ESTIMATE_COLUMNS`."""
        return {c: self._rows[0].get(c) for c in ESTIMATE_COLUMNS}

    @property
    def table(self):  # -> pandas.DataFrame (pandas imported lazily)
        """Tidy table: the headline row followed by the extra rows (the source of every number)."""
        import pandas as pd

        return pd.DataFrame(self._rows, columns=list(ESTIMATE_COLUMNS))

    def summary(self, units: str = "scale points") -> str:
        """The effect in one or two plain-language sentences (CausalPy style)."""
        sig = (
            "The interval excludes zero"
            if (self.ci_lower > 0 or self.ci_upper < 0)
            else "The interval includes zero, so the data are also consistent with no effect"
        )
        direction = "higher" if self.estimate >= 0 else "lower"
        text = (
            f"{self.outcome}: the estimated effect ({self.term}) is {self.estimate:+.3f} {units} "
            f"({direction} than without the programme), 95% CI {self.ci_lower:+.3f} to "
            f"{self.ci_upper:+.3f}, p {p_phrase(self.p_value)}; n = {self.n_obs}"
            + (f" in {self.n_clusters} clusters" if self.n_clusters else "")
            + f". {sig}."
        )
        if self.warnings:
            text += " Caution: " + " ".join(self.warnings)
        return text

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (
            f"EffectResult({self.analysis}, {self.outcome}, {self.term}: {self.estimate:.4g} "
            f"[{self.ci_lower:.4g}, {self.ci_upper:.4g}], p={format_p(self.p_value)}, "
            f"n={self.n_obs}, clusters={self.n_clusters}, {self.method})"
        )


def _headline_view(name: str) -> property:
    def get(self: EffectResult) -> Any:
        return self._rows[0].get(name)

    def set_(self: EffectResult, value: Any) -> None:
        self._rows[0][name] = value

    return property(get, set_, doc=f"``{name}`` of the headline row of :attr:`EffectResult.table`.")


for _name in ESTIMATE_COLUMNS:  # set after @dataclass so the InitVars above keep no default
    setattr(EffectResult, _name, _headline_view(_name))
EffectResult.extra_rows = property(  # type: ignore[assignment]
    lambda self: self._rows[1:], doc="The rows of :attr:`EffectResult.table` after the headline."
)


def p_phrase(p: float) -> str:
    """A p-value for a sentence: ``"< 0.001"`` or ``"= 0.042"``.

    Examples
    --------
    >>> p_phrase(0.00001), p_phrase(0.0421)
    ('< 0.001', '= 0.042')
    """
    text = format_p(p)
    return text.replace("<", "< ") if text.startswith("<") else f"= {text}"


def unbounded_intervals(lo, hi, se):
    """Which intervals carry no information: infinite, wider than 1e6, or wider than 1,000 SEs.

    A wild cluster bootstrap with three clusters, for example, inverts to an effectively unlimited
    interval; tables, sentences and figures all use this one rule to show it as "unbounded".
    Missing intervals (both ends NA) are not flagged. Works on scalars and arrays.

    Examples
    --------
    >>> unbounded_intervals([0.1, -2e11], [0.3, 3e9], [0.05, 0.001]).tolist()
    [False, True]
    """
    import numpy as np

    lo, hi, se = (np.asarray(v, dtype=float) for v in (lo, hi, se))
    width = np.abs(hi - lo)
    has_ci = ~(np.isnan(lo) & np.isnan(hi))
    with np.errstate(invalid="ignore"):
        too_wide = np.isfinite(se) & (width > 1e3 * np.maximum(np.abs(se), 1e-12))
        return has_ci & (~np.isfinite(width) | (width > 1e6) | too_wide)


def p_label(p: float | None) -> str:
    """A p-value as a figure or table label: ``"p < 0.001"``, ``"p = 0.123"`` or ``"p n/a"``.

    Examples
    --------
    >>> p_label(0.0004), p_label(0.0421), p_label(float("nan"))
    ('p < 0.001', 'p = 0.042', 'p n/a')
    """
    if p is None or not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def format_p(p: float) -> str:
    """Format a p-value for prose: ``"<0.001"`` or three decimals.

    Examples
    --------
    >>> format_p(0.00001), format_p(0.0421)
    ('<0.001', '0.042')
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
