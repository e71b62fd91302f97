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
from typing import Any

from evaltoolkit.plots.style import figure_and_axes

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
    direct effects c′ (x → y, with the total effect c in brackets underneath), each
    labelled with its estimate, significance stars and bootstrap interval.

    Parameters
    ----------
    result : MediationResult
        From :func:`evaltoolkit.estimators.mediation.paths.mediation` or
        :func:`~evaltoolkit.estimators.mediation.paths.prepost_mediation`.
    standardized : bool, optional
        Label with standardised coefficients (default: as ``result`` was estimated).
    show_ci : bool
        Add the bootstrap interval under each coefficient.
    labels : dict, optional
        Display names for variables, e.g. ``{"arm": "Newington (vs matched town)"}``.
    digits : int
    title : str, optional

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
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if standardized is None:
        standardized = bool(result.details.get("standardize", False))
    labels = labels or {}
    paths = result.paths
    meds, outs = list(result.mediators), list(result.outcomes)
    rows = max(len(meds), len(outs), 1)
    height = 2.6 + 1.4 * rows
    fig, ax = figure_and_axes(ax, width=10, height=height)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, height)
    ax.axis("off")
    box_w, box_h = 2.2, 0.75
    base = 1.1  # the predictor (and a single outcome) sit low; the direct path runs along the bottom

    def spread(k: int, low: float, top: float) -> list[float]:
        if k == 1:
            return [top if low > base else low]
        return [top - i * (top - low) / (k - 1) for i in range(k)]

    top = height - 0.7
    pos: dict[str, tuple[float, float]] = {result.x: (1.3, base)}
    for m, y in zip(meds, spread(len(meds), base + 1.4, top)):
        pos[m] = (5.0, y)
    for o, y in zip(outs, spread(len(outs), base, top - 0.5)):
        pos[o] = (8.7, y)

    for name, (cx, cy) in pos.items():
        ax.add_patch(
            FancyBboxPatch(
                (cx - box_w / 2, cy - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.05",
                facecolor="#eef3f8",
                edgecolor="#2b4c7e",
                linewidth=1.4,
            )
        )
        ax.text(cx, cy, labels.get(name, name), ha="center", va="center", fontsize=10, wrap=True)

    def arrow(src: str, dst: str, text: str, frac: float = 0.5, color: str = "#333333") -> None:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        ux, uy = dx / length, dy / length
        # start/end at the box edges (approximately)
        sx = min(box_w / 2 / abs(ux) if ux else 1e9, box_h / 2 / abs(uy) if uy else 1e9) + 0.08
        start = (x0 + ux * sx, y0 + uy * sx)
        end = (x1 - ux * sx, y1 - uy * sx)
        ax.add_patch(
            FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=color, linewidth=1.2)
        )
        if not text:
            return
        mx, my = start[0] + frac * (end[0] - start[0]), start[1] + frac * (end[1] - start[1])
        ax.text(
            mx - uy * 0.3,
            my + ux * 0.3,
            text,
            ha="center",
            va="center",
            fontsize=8.5,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
        )

    def get(term: str, outcome: str) -> Any:
        sel = paths[(paths.term == term) & (paths.outcome == outcome)]
        return None if sel.empty else sel.iloc[0]

    many = len(outs) > 1
    direct: list[str] = []
    for m in meds:
        r = get(f"a[{m}]", m)
        if r is not None:
            arrow(result.x, m, _label(r, standardized, show_ci, digits), frac=0.55)
        for o in outs:
            r = get(f"b[{m}->{o}]", o)
            if r is not None:
                arrow(m, o, _label(r, standardized, show_ci, digits), frac=0.22 if many else 0.5)
    for o in outs:
        r = get("c'", o)
        tot = get("total", o)
        if r is not None:
            text = "c' = " + _label(r, standardized, False, digits)
            if tot is not None:
                text += f"  (c = {_label(tot, standardized, False, digits)})"
            if many:
                direct.append(f"{labels.get(o, o)}: {text}")
                arrow(result.x, o, "", color="#999999")
            else:
                arrow(result.x, o, text)

    scale = "standardised" if standardized else "unstandardised"
    note = f"{scale} coefficients; * p < .05, ** p < .01, *** p < .001"
    if show_ci:
        note += f"; {round(100 * (1 - result.details.get('alpha', 0.05)))}% bootstrap intervals"
    if result.covariates:
        note += f"; adjusted for {', '.join(labels.get(c, c) for c in result.covariates)}"
    note += f"; n = {result.n_obs}" + (f" in {result.n_clusters} clusters" if result.n_clusters else "")
    if direct:
        note = "direct effects " + "; ".join(direct) + "\n" + note
    ax.text(5.0, 0.15, note, ha="center", va="bottom", fontsize=8, color="#555555", wrap=True)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


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
    fig.tight_layout()
    return fig


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
    fig.tight_layout()
    return fig
