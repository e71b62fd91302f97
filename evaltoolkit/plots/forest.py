"""One forest plot, for an estimates table or a meta-analysis.

Examples
--------
>>> import pandas as pd
>>> tab = pd.DataFrame({"label": ["attitudes", "contact"], "estimate": [0.2, 0.3],
...                     "ci_lower": [0.05, -0.1], "ci_upper": [0.35, 0.7], "std_error": [0.08, 0.2]})
>>> fig = forest_plot(tab, title="Effects")
>>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
['attitudes', 'contact']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.estimators.meta import MetaResult
from evaltoolkit.plots.style import PALETTE, drop_unbounded, figure_and_axes, finish
from evaltoolkit.results import p_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["forest_plot"]


def forest_plot(
    source: pd.DataFrame | MetaResult,
    *,
    label_col: str = "label",
    title: str | None = None,
    xlabel: str | None = None,
    ref: float = 0.0,
    sort: bool = False,
    show_prediction: bool = True,
    ax: Any = None,
) -> Figure:
    """Forest plot: each estimate with its interval, against a dashed "no effect" line at ``ref``.

    Parameters
    ----------
    source : DataFrame or MetaResult
        An estimates table (columns ``label_col, estimate, ci_lower, ci_upper``, optionally ``std_error``;
        unbounded intervals are drawn as a point labelled "(interval unbounded)"), or the result of
        :func:`~evaltoolkit.estimators.meta.meta_analysis`: then each study's square is sized by its weight,
        the pooled estimate is a diamond, the prediction interval a band under it (``show_prediction``) and
        estimate [CI] and weight are printed on the right.
    label_col : str
        Label column of a table.
    title, xlabel : str, optional
        Title (meta-analysis default: the method and heterogeneity) and x-axis label (default: the outcome).
    ref : float
        Where to draw the vertical "no effect" line.
    sort : bool
        Meta-analysis: sort studies by effect size.
    show_prediction : bool
        Meta-analysis: draw the prediction interval (random-effects and Bayesian models).
    ax : matplotlib Axes, optional
        Draw on this Axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from evaltoolkit.estimators.meta import meta_analysis
    >>> fig = forest_plot(meta_analysis([0.1, 0.4, 0.3], [0.1, 0.2, 0.15], method="DL"))
    >>> len(fig.axes)
    1
    """
    if isinstance(source, MetaResult):
        return _forest_meta(
            source,
            title=title,
            xlabel=xlabel,
            sort=sort,
            show_prediction=show_prediction,
            null_value=ref,
            ax=ax,
        )
    if not isinstance(source, pd.DataFrame) or not {label_col, "estimate", "ci_lower", "ci_upper"} <= set(
        source
    ):
        raise DataError(
            f"forest_plot needs a meta-analysis result or a table with columns {label_col}, estimate, "
            "ci_lower and ci_upper"
        )
    return _forest_table(source, label_col, title or "", ref, ax)


def _forest_table(table: pd.DataFrame, label_col: str, title: str, ref: float, ax: Any) -> Figure:
    table = drop_unbounded(table)
    table[label_col] = [
        f"{lab} (interval unbounded)" if bad else lab
        for lab, bad in zip(table[label_col], table["unbounded"], strict=True)
    ]
    fig, ax = figure_and_axes(ax, width=7.0, height=0.45 * len(table) + 1.2)
    y = list(range(len(table)))[::-1]
    ax.errorbar(
        table["estimate"],
        y,
        xerr=[table["estimate"] - table["ci_lower"], table["ci_upper"] - table["estimate"]],
        fmt="o",
        color=PALETTE[0],
        capsize=3,
    )
    ax.axvline(ref, color="grey", lw=1, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels(table[label_col], fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    items = "; ".join(
        f"{lab}: {e:.2f} ({lo:.2f} to {hi:.2f})"
        for lab, e, lo, hi in zip(table[label_col], table["estimate"], table["ci_lower"], table["ci_upper"])
    )
    return finish(fig, f"Forest plot{': ' + title if title else ''}. Estimates with 95% intervals: {items}.")


def _forest_meta(
    result: MetaResult,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    sort: bool = False,
    show_prediction: bool = True,
    null_value: float = 0.0,
    ax: Any = None,
) -> Figure:
    """Forest plot of a :class:`MetaResult` (see :func:`forest_plot`)."""
    from matplotlib.patches import Polygon

    if result.studies is None:
        raise DataError("forest_plot needs the result of meta_analysis() with its study table")
    st = result.studies.sort_values("effect") if sort else result.studies
    k = len(st)
    height = 1.4 + 0.3 * (k + 3)
    fig, ax = figure_and_axes(ax, width=8.5, height=height)
    ypos = np.arange(k, 0, -1) + 2.0
    wmax = float(st["weight"].max())
    for yp, r in zip(ypos, st.itertuples(index=False)):
        ax.plot([r.ci_lower, r.ci_upper], [yp, yp], color="0.25", lw=1)
        size = 30 + 170 * (r.weight / wmax)
        ax.scatter([r.effect], [yp], marker="s", s=size, color=PALETTE[0], zorder=3)
        if result.details.get("method_code") == "bayes":
            ax.scatter([r.theta_mean], [yp], marker="o", s=14, color=PALETTE[2], zorder=4)
    est, lo, hi = result.estimate, result.ci_lower, result.ci_upper
    diamond = Polygon(
        [[lo, 1.0], [est, 1.35], [hi, 1.0], [est, 0.65]], closed=True, color=PALETTE[1], zorder=3
    )
    ax.add_patch(diamond)
    if show_prediction and np.isfinite(result.pi_lower):
        ax.plot([result.pi_lower, result.pi_upper], [0.3, 0.3], color=PALETTE[1], lw=2.5, alpha=0.45)
    ax.axvline(null_value, color="0.5", lw=0.8, ls="--")
    ax.axvline(est, color=PALETTE[1], lw=0.6, ls=":")
    lvl = round(100 * result.details.get("level", 0.95))
    ylabels = [str(x) for x in st["label"]]
    pooled = "Pooled (Bayes)" if result.details.get("method_code") == "bayes" else (
        "Pooled (FE)" if result.details.get("method_code") == "FE" else "Pooled (RE)"
    )  # fmt: skip
    ticks = [*ypos, 1.0]
    names = [*ylabels, pooled]
    if show_prediction and np.isfinite(result.pi_lower):
        ticks.append(0.3)
        names.append(f"{lvl}% prediction")
    ax.set_yticks(ticks)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(-0.3, k + 2.8)
    # right-hand text column: estimate [CI] and weight
    trans = ax.get_yaxis_transform()
    for yp, r in zip(ypos, st.itertuples(index=False)):
        ax.text(1.02, yp, f"{r.effect:6.2f} [{r.ci_lower:5.2f}, {r.ci_upper:5.2f}]  {r.weight:4.1f}%",
                transform=trans, va="center", fontsize=7, family="monospace")  # fmt: skip
    ax.text(1.02, 1.0, f"{est:6.2f} [{lo:5.2f}, {hi:5.2f}]", transform=trans, va="center", fontsize=7,
            family="monospace", fontweight="bold")  # fmt: skip
    ax.text(1.02, k + 2.5, "estimate [CI]   weight", transform=trans, va="center", fontsize=7)
    ax.set_xlabel(xlabel or result.outcome)
    het = (
        f"tau² = {result.tau2:.3f}, I² = {result.i2:.0f}%, Q({result.q_df}) = {result.q:.1f}, "
        f"{p_label(result.q_p)}"
    )
    ax.set_title(title or f"{result.method}\n{het}", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    items = "; ".join(f"{r.label}: {r.effect:.2f}" for r in st.itertuples(index=False))
    return finish(fig, f"Meta-analysis forest plot of {k} studies ({items}). {pooled}: {est:.2f} "
                  f"({lo:.2f} to {hi:.2f}); {het}.")  # fmt: skip
