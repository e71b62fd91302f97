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

import math
from dataclasses import InitVar, dataclass, field
from typing import Any

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


class TableHeadline(DroppedRows):
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
class EffectResult(DroppedRows):
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
