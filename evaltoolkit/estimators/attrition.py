"""Attrition and participant flow (CONSORT) for panel evaluations.

:func:`attrition` takes long panel data (one row per person per wave answered) and returns

* ``counts``: people responding per arm and wave, how many of them were also assessed at
  baseline, and retention relative to baseline;
* ``differential``: overall and differential attrition at each follow-up -- the difference in
  retention between the treated and the comparison arm (percentage points) with a Wald interval
  and the Pearson chi-square test (Fisher's exact test when an expected count is below 5), the
  two quantities the What Works Clearinghouse attrition standard is built on;
* ``dropout_balance``: completers against dropouts on baseline variables (standardised mean
  differences, overall and within each arm): are the people lost different from those kept?
* ``flow``: the CONSORT-style flow (assessed at baseline, followed up and lost at each wave,
  analysed) drawn by :func:`evaltoolkit.plots.flow.consort_figure`, with every count below 10 shown as ``"<10"``.

Examples
--------
>>> import pandas as pd
>>> from evaltoolkit.estimators.attrition import attrition
>>> panel = pd.DataFrame({
...     "pid": [1, 1, 2, 2, 3, 4, 4, 5, 6, 6],
...     "arm": ["ncs"] * 5 + ["control"] * 5,
...     "wave": ["pre", "post", "pre", "post", "pre", "pre", "post", "pre", "pre", "post"]})
>>> res = attrition(panel, "pid", "arm", "wave", waves=["pre", "post"], treated="ncs")
>>> res.counts[["arm", "wave", "n", "retention"]].round(3).to_dict("records")[1]
{'arm': 'ncs', 'wave': 'post', 'n': 2, 'retention': 0.667}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning, file_row
from evaltoolkit.estimators.balance import smd
from evaltoolkit.privacy import MIN_CELL, format_count, suppress_small_cells
from evaltoolkit.results import ESTIMATE_COLUMNS

__all__ = ["AttritionResult", "attrition"]

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere


@dataclass
class AttritionResult:
    """Result of :func:`attrition`.

    Attributes
    ----------
    counts : pandas.DataFrame
        ``arm, wave, n, n_from_baseline, n_new, retention``: ``n`` responded at the wave,
        ``n_from_baseline`` of them were assessed at baseline, ``n_new`` were not,
        ``retention = n_from_baseline / n at baseline``.
    differential : pandas.DataFrame
        One row per follow-up wave: retention per arm, ``overall_attrition``,
        ``differential_attrition`` (treated minus comparison retention, as a proportion), its
        ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value`` and ``test``.
    dropout_balance : pandas.DataFrame
        ``variable, group, n_completers, n_dropouts, mean_completers, mean_dropouts, smd``
        (completers minus dropouts; ``group`` is ``"all"`` or an arm).
    flow : pandas.DataFrame
        ``arm, stage, wave, n``: the CONSORT stages (``assessed``, ``followed_up``, ``lost``,
        ``analysed``).
    """

    id: str
    arm: str
    wave: str
    waves: list[Any]
    arms: list[Any]
    treated: Any
    control: Any
    analysis_wave: Any
    counts: pd.DataFrame
    differential: pd.DataFrame
    dropout_balance: pd.DataFrame
    flow: pd.DataFrame
    alpha: float = 0.05
    min_cell: int = MIN_CELL
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """Contract-column table: retention per arm and wave, then the differential attrition rows.

        ``n_obs`` is the number assessed at baseline in the arm (or both arms). Counts here are
        not suppressed: use :meth:`report_counts` for anything published.
        """
        rows = []
        z = stats.norm.ppf(1 - self.alpha / 2)
        base = self.counts[self.counts["wave"] == self.waves[0]].set_index("arm")["n"]
        for r in self.counts.itertuples():
            if r.wave == self.waves[0]:
                continue
            nb = int(base[r.arm])
            p = r.retention
            lo, hi = _wilson(r.n_from_baseline, nb, z)
            rows.append(
                {
                    "analysis": "attrition",
                    "outcome": "retention",
                    "term": f"retention {r.arm} at {r.wave}",
                    "estimate": p,
                    "std_error": math.sqrt(p * (1 - p) / nb) if nb else float("nan"),
                    "ci_lower": lo,
                    "ci_upper": hi,
                    "p_value": float("nan"),
                    "n_obs": nb,
                    "n_clusters": None,
                    "method": "proportion of baseline respondents, Wilson interval",
                }
            )
        for r in self.differential.itertuples():
            if self.treated is None:
                continue
            rows.append(
                {
                    "analysis": "attrition",
                    "outcome": "retention",
                    "term": f"differential retention ({self.treated} - {self.control}) at {r.wave}",
                    "estimate": r.differential_attrition,
                    "std_error": r.std_error,
                    "ci_lower": r.ci_lower,
                    "ci_upper": r.ci_upper,
                    "p_value": r.p_value,
                    "n_obs": int(r.n_baseline),
                    "n_clusters": None,
                    "method": f"difference in proportions, Wald CI; {r.test}",
                }
            )
        return pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))

    def report_counts(self) -> pd.DataFrame:
        """``counts`` ready to publish: counts below ``min_cell`` as ``"<10"`` and their retention blanked."""
        out = self.counts.copy()
        out["retention"] = (out["retention"] * 100).round(0)
        small_base = out["n_from_baseline"] < self.min_cell
        out = suppress_small_cells(out, "n", ["retention"], min_n=self.min_cell)
        out["retention"] = out["retention"].where(~small_base)
        for c in ("n_from_baseline", "n_new"):
            out[c] = [format_count(v, self.min_cell) for v in out[c]]
        return out.rename(columns={"retention": "% of baseline"})

    def summary(self) -> str:
        """Plain-language summary of retention and differential attrition."""
        lines = []
        base = self.counts[self.counts["wave"] == self.waves[0]].set_index("arm")["n"]
        lines.append(
            "Assessed at baseline: "
            + ", ".join(f"{a} {format_count(base.get(a, 0), self.min_cell)}" for a in self.arms)
            + "."
        )
        for r in self.differential.itertuples():
            ret = ", ".join(
                f"{a} {100 * getattr(r, f'retention_{i}'):.0f}%"
                if base.get(a, 0) >= self.min_cell
                else f"{a} (fewer than {self.min_cell} at baseline)"
                for i, a in enumerate(self.arms)
            )
            txt = f"At {r.wave}: retention {ret}; overall attrition {100 * r.overall_attrition:.0f}%"
            if self.treated is None and not math.isnan(r.p_value):
                txt += f"; retention differs between arms: p = {r.p_value:.3g} ({r.test})"
            if self.treated is not None:
                txt += (
                    f"; differential {100 * r.differential_attrition:+.1f} percentage points "
                    f"({100 * r.ci_lower:+.1f} to {100 * r.ci_upper:+.1f}), p = {r.p_value:.3g} ({r.test})"
                )
            lines.append(txt + ".")
        big = self.dropout_balance[self.dropout_balance["smd"].abs() > 0.1]
        if len(big):
            lines.append(
                "Completers and dropouts differed at baseline (|SMD| > 0.1) on: "
                + ", ".join(f"{r.variable} ({r.group}, SMD {r.smd:+.2f})" for r in big.itertuples())
                + "."
            )
        if self.warnings:
            lines.append("Caution: " + " ".join(self.warnings))
        return "\n".join(lines)


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def _order_waves(values: pd.Series, waves: Sequence[Any] | None, baseline: Any) -> list[Any]:
    present = list(pd.unique(values.dropna()))
    if waves is not None:
        waves = list(waves)
        missing = [w for w in waves if w not in set(present)]
        if missing:
            raise DesignError(
                f"wave(s) {missing} do not occur in the data (waves found: {present[:10]})", field="waves"
            )
        order = waves
    elif isinstance(values.dtype, pd.CategoricalDtype) and values.cat.ordered:
        order = [w for w in values.cat.categories if w in set(present)]
    elif pd.api.types.is_numeric_dtype(values):
        order = sorted(present)
    else:
        order = present  # order of first appearance
    if baseline is not None:
        if baseline not in set(order):
            raise DesignError(f"baseline wave {baseline!r} does not occur in the data", field="baseline")
        order = [baseline, *[w for w in order if w != baseline]]
    if len(order) < 2:
        raise DesignError(
            f"attrition needs at least two waves (found {order}); a post-only design has no attrition to measure",
            field="waves",
        )
    return order


def attrition(
    data: pd.DataFrame,
    id: str,
    arm: str,
    wave: str,
    *,
    waves: Sequence[Any] | None = None,
    baseline: Any = None,
    treated: Any = None,
    control: Any = None,
    outcome: str | None = None,
    baseline_vars: Sequence[str] = (),
    analysis_wave: Any = None,
    analysed: Mapping[Any, int] | None = None,
    alpha: float = 0.05,
    min_cell: int = MIN_CELL,
) -> AttritionResult:
    """Counts, retention, differential attrition and completer/dropout balance from long panel data.

    Parameters
    ----------
    data : pandas.DataFrame
        Long panel: one row per person per wave responded.
    id, arm, wave : str
        Person identifier, arm and wave columns. A person's arm is taken from their baseline row.
    waves : sequence, optional
        Wave labels in time order (recommended; otherwise ordered categories, sorted numbers or the
        order of first appearance, with ``baseline`` first).
    baseline : label, optional
        Baseline wave (default: the first wave).
    treated, control : label, optional
        Arms compared for differential attrition (``control`` defaults to the only other arm).
        Without ``treated``, only the chi-square test across all arms is reported.
    outcome : str, optional
        If given, a row counts as a response only when the outcome is not missing.
    baseline_vars : sequence of str, optional
        Baseline columns compared between completers and dropouts (numeric or 0/1).
    analysis_wave : label, optional
        Wave defining completers and the "analysed" box (default: the last wave).
    analysed : mapping arm -> int, optional
        Numbers actually analysed per arm, if they differ from "assessed at baseline and
        responded at ``analysis_wave``".
    alpha : float, default 0.05
    min_cell : int, default 10
        Privacy threshold used by :meth:`AttritionResult.report_counts`, :meth:`~AttritionResult.summary`
        and :func:`evaltoolkit.plots.flow.consort_figure`.

    Returns
    -------
    AttritionResult

    Raises
    ------
    DataError
        Missing columns, duplicate person-wave rows, a person in two arms.
    DesignError
        Unknown wave or arm labels, fewer than two waves or arms.

    Examples
    --------
    >>> import pandas as pd
    >>> panel = pd.DataFrame({"pid": [1, 1, 2, 3, 3, 4], "arm": ["t", "t", "t", "c", "c", "c"],
    ...                       "wave": [0, 1, 0, 0, 1, 0]})
    >>> res = attrition(panel, "pid", "arm", "wave", treated="t")
    >>> res.differential[["retention_0", "retention_1", "overall_attrition"]].values.tolist()
    [[0.5, 0.5, 0.5]]
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame (one row per person per wave)")
    baseline_vars = [baseline_vars] if isinstance(baseline_vars, str) else list(baseline_vars)
    for c in [id, arm, wave, *([outcome] if outcome else []), *baseline_vars]:
        if c not in data.columns:
            raise DataError(
                f"column not found (available: {', '.join(map(str, data.columns[:20]))})", column=c
            )
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must be between 0 and 1, got {alpha}", field="alpha")
    warn_msgs: list[str] = []
    d = data
    n_bad = int(d[[id, arm, wave]].isna().any(axis=1).sum())
    if n_bad:
        warn_msgs.append(f"{n_bad} rows without an id, arm or wave were not counted.")
        d = d.loc[d[[id, arm, wave]].notna().all(axis=1)]
    dup = d.duplicated([id, wave], keep=False)
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{int(dup.sum())} rows share an id and wave (wave {d[wave].iloc[pos]!r}); each person may appear "
            "once per wave",
            column=id,
            row=file_row(d.index, pos),
        )
    order = _order_waves(d[wave], waves, baseline)
    base_w = order[0]
    d = d.loc[d[wave].isin(order)]
    if outcome:
        n_miss = int(d[outcome].isna().sum())
        if n_miss:
            warn_msgs.append(f"{n_miss} person-wave rows with a missing '{outcome}' count as non-response.")
        d = d.loc[d[outcome].notna()]
    arms_per_id = d.groupby(id)[arm].nunique()
    if (arms_per_id > 1).any():
        bad = arms_per_id.index[arms_per_id > 1][0]
        raise DataError(
            f"{int((arms_per_id > 1).sum())} person(s) appear in more than one arm (the first at the row named)",
            column=arm,
            row=file_row(d.index, int(np.flatnonzero((d[id] == bad).to_numpy())[0])),
        )
    arms, control = _arms(d, arm, treated, control)
    analysis_wave = order[-1] if analysis_wave is None else analysis_wave
    if analysis_wave not in set(order[1:]):
        raise DesignError(
            f"analysis_wave {analysis_wave!r} is not a follow-up wave ({order[1:]})", field="analysis_wave"
        )

    # response matrix: person x wave (True if responded)
    person_arm = d.groupby(id)[arm].first()
    resp = pd.crosstab(d[id], d[wave]).reindex(columns=order, fill_value=0).astype(bool)
    at_base = resp[base_w]
    if not at_base.any():
        raise DataError(f"nobody responded at the baseline wave {base_w!r}", column=wave)
    n_no_base = int((~at_base).sum())
    if n_no_base:
        warn_msgs.append(
            f"{n_no_base} people responded only after baseline; they are counted as 'new' and left out of the flow."
        )

    counts = _counts(resp, person_arm, at_base, arms, order)

    # differential attrition at each follow-up, among those assessed at baseline
    base_people = resp.index[at_base]
    parm = person_arm.reindex(base_people)
    differential = _differential(resp, base_people, parm, arms, order, treated, alpha)

    # completers vs dropouts at baseline
    completer = resp.loc[base_people, analysis_wave]
    dropout_balance = _dropout_balance(
        data, id, wave, base_w, base_people, completer, parm, arms, baseline_vars
    )

    # CONSORT flow
    flow = _flow(resp, base_people, parm, arms, order, analysis_wave, analysed, min_cell)

    for msg in warn_msgs:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    return AttritionResult(
        id=id,
        arm=arm,
        wave=wave,
        waves=order,
        arms=arms,
        treated=treated,
        control=control,
        analysis_wave=analysis_wave,
        counts=counts,
        differential=differential,
        dropout_balance=dropout_balance,
        flow=flow,
        alpha=alpha,
        min_cell=min_cell,
        warnings=warn_msgs,
        details={"n_without_baseline": n_no_base, "n_rows_unusable": n_bad},
    )


def _arms(d: pd.DataFrame, arm: str, treated, control):
    """The arms in display order (treated, control, others) and the control arm."""
    arms = sorted(pd.unique(d[arm]), key=lambda v: (str(type(v)), v))
    if len(arms) < 2:
        raise DesignError(f"only one arm ({arms}) in the data; attrition cannot be compared", column=arm)
    if treated is not None:
        if treated not in set(arms):
            raise DesignError(
                f"treated arm {treated!r} does not occur in the data (arms: {arms})", field="treated"
            )
        if control is None:
            others = [a for a in arms if a != treated]
            if len(others) > 1:
                raise DesignError(f"more than two arms ({arms}); say which is the control", field="control")
            control = others[0]
        elif control not in set(arms):
            raise DesignError(
                f"control arm {control!r} does not occur in the data (arms: {arms})", field="control"
            )
        arms = [treated, control, *[a for a in arms if a not in (treated, control)]]
    return arms, control


def _counts(resp, person_arm, at_base, arms, order) -> pd.DataFrame:
    """Respondents per arm and wave: all, those seen at baseline, new ones, retention."""
    count_rows = []
    for a in arms:
        in_arm = person_arm.reindex(resp.index) == a
        nb = int((in_arm & at_base).sum())
        for w in order:
            n_w = int((in_arm & resp[w]).sum())
            n_fb = int((in_arm & resp[w] & at_base).sum())
            count_rows.append(
                {
                    "arm": a,
                    "wave": w,
                    "n": n_w,
                    "n_from_baseline": n_fb,
                    "n_new": n_w - n_fb,
                    "retention": n_fb / nb if nb else float("nan"),
                }
            )
    counts = pd.DataFrame(count_rows, columns=["arm", "wave", "n", "n_from_baseline", "n_new", "retention"])
    return counts


def _differential(resp, base_people, parm, arms, order, treated, alpha) -> pd.DataFrame:
    """Retention by arm at each follow-up among those assessed at baseline, its difference and test."""
    z = stats.norm.ppf(1 - alpha / 2)
    diff_rows = []
    for w in order[1:]:
        kept = resp.loc[base_people, w]
        tab = pd.crosstab(parm, kept).reindex(index=arms, columns=[True, False], fill_value=0)
        n_arm = tab.sum(axis=1).to_numpy(dtype=float)
        k_arm = tab[True].to_numpy(dtype=float)
        row: dict[str, Any] = {"wave": w, "n_baseline": int(n_arm.sum())}
        for i in range(len(arms)):
            row[f"retention_{i}"] = k_arm[i] / n_arm[i] if n_arm[i] else float("nan")
        row["overall_attrition"] = 1 - k_arm.sum() / n_arm.sum()
        test, p = _attrition_test(tab.to_numpy(dtype=float), two_arm=treated is not None)
        if treated is not None:
            p1, p0 = k_arm[0] / n_arm[0], k_arm[1] / n_arm[1]
            diff = p1 - p0
            se = math.sqrt(p1 * (1 - p1) / n_arm[0] + p0 * (1 - p0) / n_arm[1])
            row.update(
                differential_attrition=diff,
                std_error=se,
                ci_lower=diff - z * se,
                ci_upper=diff + z * se,
            )
        else:
            row.update(differential_attrition=np.nan, std_error=np.nan, ci_lower=np.nan, ci_upper=np.nan)
        row.update(p_value=p, test=test)
        diff_rows.append(row)
    differential = pd.DataFrame(diff_rows)
    differential.attrs["arms"] = {f"retention_{i}": a for i, a in enumerate(arms)}
    return differential


def _dropout_balance(
    data, id, wave, base_w, base_people, completer, parm, arms, baseline_vars
) -> pd.DataFrame:
    """Completers against dropouts on each baseline variable, overall and by arm (SMD)."""
    bal_rows = []
    if baseline_vars:
        bdat = data.loc[data[wave] == base_w].drop_duplicates(id).set_index(id).reindex(base_people)
        for v in baseline_vars:
            if not (pd.api.types.is_numeric_dtype(bdat[v]) or pd.api.types.is_bool_dtype(bdat[v])):
                raise DataError(
                    "baseline variables must be numeric or 0/1 (dummy-code text columns first)", column=v
                )
            for grp in ["all", *arms]:
                sel = np.ones(len(bdat), bool) if grp == "all" else (parm == grp).to_numpy()
                x = bdat[v].to_numpy(dtype=float)[sel]
                c = completer.to_numpy()[sel]
                ok = ~np.isnan(x)
                x, c = x[ok], c[ok]
                nc, nd = int(c.sum()), int((~c).sum())
                s = smd(x, c) if nc >= 2 and nd >= 2 else float("nan")
                bal_rows.append(
                    {
                        "variable": v,
                        "group": grp,
                        "n_completers": nc,
                        "n_dropouts": nd,
                        "mean_completers": float(x[c].mean()) if nc else float("nan"),
                        "mean_dropouts": float(x[~c].mean()) if nd else float("nan"),
                        "smd": s,
                        "n_missing": int((~ok).sum()),
                    }
                )
    dropout_balance = pd.DataFrame(
        bal_rows,
        columns=[
            "variable",
            "group",
            "n_completers",
            "n_dropouts",
            "mean_completers",
            "mean_dropouts",
            "smd",
            "n_missing",
        ],
    )
    return dropout_balance


def _flow(resp, base_people, parm, arms, order, analysis_wave, analysed, min_cell) -> pd.DataFrame:
    """The CONSORT flow table: assessed, followed up and lost at each wave, analysed, per arm."""
    base_w = order[0]
    flow_rows = []
    for a in arms:
        sel = parm == a
        nb = int(sel.sum())
        flow_rows.append({"arm": a, "stage": "assessed", "wave": base_w, "n": nb})
        for w in order[1:]:
            k = int((resp.loc[base_people, w] & sel).sum())
            flow_rows.append({"arm": a, "stage": "followed_up", "wave": w, "n": k})
            flow_rows.append({"arm": a, "stage": "lost", "wave": w, "n": nb - k})
        n_an = (
            int(analysed[a])
            if analysed is not None and a in analysed
            else int((resp.loc[base_people, analysis_wave] & sel).sum())
        )
        flow_rows.append({"arm": a, "stage": "analysed", "wave": analysis_wave, "n": n_an})
    flow = pd.DataFrame(flow_rows, columns=["arm", "stage", "wave", "n"])
    flow.attrs["min_cell"] = min_cell
    return flow


def _attrition_test(tab: np.ndarray, two_arm: bool) -> tuple[str, float]:
    """Pearson chi-square (no continuity correction) of arm x retained; Fisher for sparse 2 x 2."""
    t = tab[:2] if two_arm else tab
    t = t[t.sum(axis=1) > 0]
    if t.shape[0] < 2 or (t.sum(axis=0) == 0).any():
        return "no test (no variation)", float("nan")
    expected = t.sum(axis=1, keepdims=True) * t.sum(axis=0, keepdims=True) / t.sum()
    if t.shape == (2, 2) and (expected < 5).any():
        return "Fisher's exact test", float(stats.fisher_exact(t)[1])
    _chi2, p, dof, _ = stats.chi2_contingency(t, correction=False)
    return f"Pearson chi-square({dof})", float(p)
