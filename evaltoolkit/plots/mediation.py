"""Figures for mediation results: path diagrams and sensitivity plots.

matplotlib is imported inside the functions (the CLI imports stay light), and
figures are built with :class:`matplotlib.figure.Figure` directly, so they work
headless and never touch pyplot's global state.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from evaltoolkit.estimators.mediation.paths import mediation
>>> rng = np.random.default_rng(1)
>>> df = pd.DataFrame({"arm": rng.integers(0, 2, 300)})
>>> df["contact"] = 0.5 * df.arm + rng.normal(size=300)
>>> df["attitudes"] = 0.4 * df.contact + rng.normal(size=300)
>>> fig = path_diagram(mediation(df, "arm", "contact", "attitudes", n_boot=300, seed=1))
>>> type(fig).__name__
'Figure'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from evaltoolkit.errors import DataError
from evaltoolkit.plots.style import (
    figure_and_axes,
    finish,
    fit_canvas,
    inches_of,
    renderer_of,
    wrap_to_width,
)

__all__ = ["indirect_effects_plot", "path_diagram", "sensitivity_plot"]


def _stars(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _label(row: Any, standardized: bool, show_ci: bool, digits: int) -> str:
    est = row["std_estimate"] if standardized else row["estimate"]
    text = f"{est:.{digits}f}{_stars(row['std_p_value'] if standardized else row['p_value'])}"
    if show_ci:
        lo, hi = (
            (row["std_ci_lower"], row["std_ci_upper"]) if standardized else (row["ci_lower"], row["ci_upper"])
        )
        if not (math.isnan(lo) or math.isnan(hi)):
            text += f"\n[{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def path_diagram(
    result: Any,
    *,
    standardised: bool | None = None,
    standardized: bool | None = None,
    show_ci: bool = True,
    labels: dict[str, str] | None = None,
    digits: int = 2,
    title: str | None = None,
    ax: Any = None,
):
    """Path diagram of a mediation model: boxes and arrows labelled with coefficients.

    Like Best of Us Figure 3: the predictor on the left, the mediators stacked in
    the middle, the outcomes on the right; a paths (x → m), b paths (m → y) and the
    direct effects c′ (x → y, with the total effect c in brackets), each labelled
    with its estimate, significance stars and bootstrap interval. Every label is
    wrapped and measured: boxes are sized to hold their labels, columns are spaced
    to hold the coefficients, and each coefficient slides along its arrow to a
    place where it covers no box and no other coefficient.

    Parameters
    ----------
    result : MediationResult
        From :func:`evaltoolkit.estimators.mediation.paths.mediation` or
        :func:`~evaltoolkit.estimators.mediation.paths.prepost_mediation`.
    standardised : bool, optional
        Label with standardised coefficients (a, b, c′ in SD units, as in the published Best of Us figure;
        default: as ``result`` was estimated). They come from the result's ``std_estimate`` columns, which
        :func:`~evaltoolkit.estimators.mediation.paths.mediation` computes from the variables' standard
        deviations in every bootstrap draw; a result without them raises :class:`~evaltoolkit.errors.DataError`.
    standardized : bool, optional
        Same as ``standardised`` (the 0.1 spelling).
    show_ci : bool
        Add the bootstrap interval under each coefficient.
    labels : dict, optional
        Display names for variables, e.g. ``{"arm": "Newington (vs matched town)"}``.
    digits : int
    title : str, optional
    ax : matplotlib Axes, optional
        Draw here; the diagram is laid out in inches, so a small Axes may not hold it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from evaltoolkit.estimators.mediation.paths import mediation
    >>> rng = np.random.default_rng(2)
    >>> df = pd.DataFrame({"town": rng.integers(0, 2, 190)})
    >>> df["arts"] = 0.4 * df.town + rng.normal(size=190)
    >>> df["value_arts"] = 0.2 * df.town + rng.normal(size=190)
    >>> df["connected"] = 0.3 * df.arts + 0.2 * df.value_arts + rng.normal(size=190)
    >>> res = mediation(df, "town", ["arts", "value_arts"], "connected", n_boot=300, seed=1,
    ...                 standardize=True)
    >>> fig = path_diagram(res, labels={"town": "Newington"})
    >>> len(fig.axes)
    1
    >>> from evaltoolkit.plots.style import describe
    >>> describe(path_diagram(res, standardised=True)).startswith("Path diagram (standardised")
    True
    """
    std = standardised if standardised is not None else standardized
    if std is None:
        std = bool(result.details.get("standardize", False))
    if std:
        _require_standardised(result.paths)
    labels = labels or {}
    edges, direct = _edges(result, std, show_ci, digits, labels)
    note = _path_note(result, std, show_ci, labels, direct)
    fig, ax = figure_and_axes(ax, width=8.0, height=4.0, layout=None)
    ax.axis("off")
    _draw_paths(fig, ax, result, edges, note, labels, title)
    return finish(fig, _path_description(result, std, edges, labels))


def _require_standardised(paths: Any) -> None:
    """Raise a clear error when the result carries no standardised coefficients."""
    cols = ["std_estimate", "std_ci_lower", "std_ci_upper", "std_p_value"]
    if any(c not in paths for c in cols) or paths["std_estimate"].isna().all():
        raise DataError(
            "path_diagram(standardised=True) needs standardised paths (columns std_estimate, std_ci_lower, "
            "std_ci_upper, std_p_value), which mediation() and prepost_mediation() compute from the variables' "
            "standard deviations; this result has none. Re-run the estimator, or draw standardised=False.",
            column="std_estimate",
        )


@dataclass
class _Edge:
    """One arrow: from, to, its label ("" for none), grey (a direct effect told in the note)."""

    src: str
    dst: str
    text: str
    grey: bool = False


def _edges(result: Any, std: bool, show_ci: bool, digits: int, labels: dict) -> tuple[list[_Edge], list[str]]:
    """The diagram's arrows with their labels; with several outcomes, the direct effects go to the note."""
    paths = result.paths

    def get(term: str, outcome: str) -> Any:
        sel = paths[(paths.term == term) & (paths.outcome == outcome)]
        return None if sel.empty else sel.iloc[0]

    meds, outs = list(result.mediators), list(result.outcomes)
    edges, direct = [], []
    for m in meds:
        if (r := get(f"a[{m}]", m)) is not None:
            edges.append(_Edge(result.x, m, "a = " + _label(r, std, show_ci, digits)))
        for o in outs:
            if (r := get(f"b[{m}->{o}]", o)) is not None:
                edges.append(_Edge(m, o, "b = " + _label(r, std, show_ci, digits)))
    for o in outs:
        r, tot = get("c'", o), get("total", o)
        if r is None:
            continue
        text = "c' = " + _label(r, std, False, digits)
        if tot is not None:
            text += f"\n(c = {_label(tot, std, False, digits)})"
        if len(outs) > 1:
            direct.append(f"{labels.get(o, o)}: {' '.join(text.split())}")
            edges.append(_Edge(result.x, o, "", grey=True))
        else:
            edges.append(_Edge(result.x, o, text))
    return edges, direct


def _path_note(result: Any, std: bool, show_ci: bool, labels: dict, direct: list[str]) -> str:
    """The line under the diagram: scale, stars, intervals, covariates, n (and direct effects)."""
    note = f"{'standardised' if std else 'unstandardised'} coefficients; * p < .05, ** p < .01, *** p < .001"
    if show_ci:
        note += f"; {round(100 * (1 - result.details.get('alpha', 0.05)))}% bootstrap intervals"
    if result.covariates:
        note += f"; adjusted for {', '.join(labels.get(c, c) for c in result.covariates)}"
    note += f"; n = {result.n_obs}" + (f" in {result.n_clusters} clusters" if result.n_clusters else "")
    if direct:
        note = "direct effects " + "; ".join(direct) + ". " + note
    return note


_BOX = {"boxstyle": "round,pad=0.05", "facecolor": "#eef3f8", "edgecolor": "#2b4c7e", "linewidth": 1.4}
_COEF = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}
_PAD = 0.12  # inches between a label and its box edge


def _draw_paths(
    fig: Any, ax: Any, result: Any, edges: list[_Edge], note: str, labels: dict, title: str | None
):
    """Measure the labels, place the boxes (in inches), draw the arrows and slide each label to a free spot."""
    import textwrap

    r = renderer_of(fig)
    meds, outs = list(result.mediators), list(result.outcomes)
    names = [result.x, *meds, *outs]
    node = {n: ax.text(0, 0, textwrap.fill(str(labels.get(n, n)), 24, break_long_words=False), ha="center", va="center", fontsize=10,
                       gid=f"label:{n}") for n in names}  # fmt: skip
    coef = [ax.text(0, 0, e.text, ha="center", va="center", fontsize=8.5, bbox=_COEF) if e.text else None
            for e in edges]  # fmt: skip
    w = max(inches_of(t, r)[0] for t in node.values()) + 2 * _PAD
    h = max(inches_of(t, r)[1] for t in node.values()) + 2 * _PAD
    sizes = [inches_of(t, r) if t is not None else (0.0, 0.0) for t in coef]
    gap = max(1.4, max(s[0] for s in sizes) + 0.5) * (1.4 if len(outs) > 1 else 1.0)
    pitch = (h + max(s[1] for s in sizes) + 0.5) * (1.25 if len(outs) > 1 else 1.0)
    xs = (0.2 + w / 2, 0.2 + 1.5 * w + gap, 0.2 + 2.5 * w + 2 * gap)
    pos = {result.x: (xs[0], 0.0)}
    pos.update({m: (xs[1], (len(meds) - i) * pitch) for i, m in enumerate(meds)})
    lift = pitch / 2 if len(outs) > 1 else 0.0  # several outcomes sit between the mediators' rows
    pos.update({o: (xs[2], (len(outs) - 1 - i) * pitch + lift) for i, o in enumerate(outs)})
    width = xs[2] + w / 2 + 0.2
    note_t = ax.text(0, 0, note, ha="center", va="top", fontsize=8, color="#555555")
    wrap_to_width(note_t, (width - 0.3) * fig.dpi, r)
    note_h = inches_of(note_t, r)[1]
    top = max(y for _, y in pos.values()) + h / 2 + (0.5 if title else 0.2)
    fit_canvas(fig, ax, width, top + h / 2 + 0.3 + note_h, offset=h / 2 + 0.3 + note_h)
    note_t.set_position((width / 2, -h / 2 - 0.15))
    if title:
        ax.text(width / 2, top - 0.1, title, ha="center", va="top", fontsize=12)
    taken = []
    for n, (cx, cy) in pos.items():
        node[n].set_position((cx, cy))
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, gid=f"box:{n}", **_BOX))
        taken.append((cx - w / 2 - 0.05, cy - h / 2 - 0.05, cx + w / 2 + 0.05, cy + h / 2 + 0.05))
    for e, t, size in zip(edges, coef, sizes):
        start, end = _box_edge(pos[e.src], pos[e.dst], w, h), _box_edge(pos[e.dst], pos[e.src], w, h)
        color = "#999999" if e.grey else "#333333"
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=color, lw=1.2))
        if t is not None:
            t.set_position(_free_spot(start, end, size, taken))


def _box_edge(a: tuple[float, float], b: tuple[float, float], w: float, h: float) -> tuple[float, float]:
    """Where the line from box centre ``a`` towards ``b`` leaves a ``w`` x ``h`` box (plus a small gap)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    ux, uy = dx / length, dy / length
    t = min(w / 2 / abs(ux) if ux else math.inf, h / 2 / abs(uy) if uy else math.inf) + 0.08
    return a[0] + ux * t, a[1] + uy * t


def _free_spot(start, end, size, taken: list[tuple[float, float, float, float]]) -> tuple[float, float]:
    """The point along an arrow where a label of ``size`` covers no box or label yet placed (it is then taken)."""
    w, h = size
    best = None
    fracs = (0.5, 0.4, 0.6, 0.3, 0.7, 0.25, 0.75, 0.2, 0.8, 0.15, 0.85)
    for lift, frac in ((lift, frac) for lift in (0.0, 0.6 * h, -0.6 * h) for frac in fracs):
        x, y = start[0] + frac * (end[0] - start[0]), start[1] + frac * (end[1] - start[1]) + lift
        rect = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        clash = sum(max(0.0, min(rect[2], o[2]) - max(rect[0], o[0])) * max(0.0, min(rect[3], o[3]) - max(rect[1], o[1]))
                    for o in taken)  # fmt: skip
        if best is None or clash < best[0]:
            best = (clash, rect, (x, y))
        if clash == 0:
            break
    taken.append(best[1])
    return best[2]


def _path_description(result: Any, std: bool, edges: list[_Edge], labels: dict) -> str:
    """The diagram in words (for alt text): every path with its coefficient."""
    items = [
        f"{labels.get(e.src, e.src)} to {labels.get(e.dst, e.dst)}: {' '.join(e.text.split())}"
        for e in edges
        if e.text
    ]
    scale = "standardised" if std else "unstandardised"
    return f"Path diagram ({scale} coefficients, n = {result.n_obs}). " + "; ".join(items) + "."


def indirect_effects_plot(result: Any, *, standardized: bool | None = None, ax: Any = None):
    """Forest plot of the indirect effects (specific, total, conditional) with intervals.

    Parameters
    ----------
    result : MediationResult
    standardized : bool, optional
        Default: as ``result`` was estimated.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from evaltoolkit.estimators.mediation.paths import mediation
    >>> rng = np.random.default_rng(3)
    >>> df = pd.DataFrame({"x": rng.integers(0, 2, 200)})
    >>> df["m"] = df.x + rng.normal(size=200)
    >>> df["y"] = df.m + rng.normal(size=200)
    >>> indirect_effects_plot(mediation(df, "x", "m", "y", n_boot=200, seed=1)).axes[0].get_xlabel()
    'indirect effect (unstandardised)'
    """

    if standardized is None:
        standardized = bool(result.details.get("standardize", False))
    p = result.paths
    p = p[p.kind.isin(["indirect", "total_indirect", "index"])]
    est = p.std_estimate if standardized else p.estimate
    lo = p.std_ci_lower if standardized else p.ci_lower
    hi = p.std_ci_upper if standardized else p.ci_upper
    fig, ax = figure_and_axes(ax, width=7, height=0.5 * len(p) + 1.2)
    yy = list(range(len(p)))[::-1]
    ax.errorbar(est, yy, xerr=[est - lo, hi - est], fmt="o", color="#2b4c7e", capsize=3)
    ax.axvline(0, color="#999999", linewidth=1, linestyle="--")
    ax.set_yticks(yy)
    ax.set_yticklabels([f"{o}: {t}" for o, t in zip(p.outcome, p.term)])
    ax.set_xlabel(f"indirect effect ({'standardised' if standardized else 'unstandardised'})")
    items = "; ".join(
        f"{o}: {t} {e:.2f} ({a:.2f} to {b:.2f})" for o, t, e, a, b in zip(p.outcome, p.term, est, lo, hi)
    )
    return finish(fig, f"Indirect effects with intervals: {items}.")


def sensitivity_plot(sens: Any, *, title: str | None = None, ax: Any = None):
    """ACME against the error correlation ρ, with its band and the ρ at which ACME = 0.

    Parameters
    ----------
    sens : SensitivityResult
        From :func:`evaltoolkit.estimators.mediation.causal.mediation_sensitivity`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from evaltoolkit.estimators.mediation.causal import mediation_sensitivity
    >>> rng = np.random.default_rng(4)
    >>> df = pd.DataFrame({"t": rng.integers(0, 2, 300)})
    >>> df["m"] = df.t + rng.normal(size=300)
    >>> df["y"] = 0.5 * df.m + rng.normal(size=300)
    >>> fig = sensitivity_plot(mediation_sensitivity(df, "t", "m", "y", n_boot=100, seed=1))
    >>> fig.axes[0].get_xlabel()
    'sensitivity parameter ρ (correlation of mediator and outcome errors)'
    """
    import numpy as np

    c = sens.curve
    fig, ax = figure_and_axes(ax, width=7, height=4.5)
    if np.isfinite(c.ci_lower).any():
        ax.fill_between(c.rho, c.ci_lower, c.ci_upper, color="#9db4d6", alpha=0.5, label="95% bootstrap band")
    ax.plot(c.rho, c.acme, color="#2b4c7e", linewidth=2, label="ACME(ρ)")
    ax.axhline(0, color="#666666", linewidth=1)
    ax.axhline(
        sens.acme, color="#2b4c7e", linewidth=1, linestyle=":", label=f"ACME at ρ = 0: {sens.acme:.3f}"
    )
    ax.axvline(sens.rho_at_zero, color="#b03a2e", linewidth=1, linestyle="--")
    ax.annotate(
        f"ACME = 0 at ρ = {sens.rho_at_zero:.2f}",
        xy=(sens.rho_at_zero, 0),
        xytext=(10, 20),
        textcoords="offset points",
        color="#b03a2e",
        fontsize=9,
    )
    ax.set_xlabel("sensitivity parameter ρ (correlation of mediator and outcome errors)")
    ax.set_ylabel("average causal mediation effect")
    ax.set_xlim(float(c.rho.min()), float(c.rho.max()))
    ax.legend(loc="best", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return finish(fig, f"Sensitivity of the average causal mediation effect ({sens.acme:.3f} at ρ = 0) to the "
                  f"error correlation ρ; it is zero at ρ = {sens.rho_at_zero:.2f}.")  # fmt: skip
