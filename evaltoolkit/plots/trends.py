"""Parallel trends: the usual confidence interval beside the honest sets as the allowed violation grows.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from evaltoolkit.estimators.sensitivity.parallel_trends import HonestBounds
>>> table = pd.DataFrame({"M": [0.0, 0.01, 0.02, 0.03], "lb": [0.0259, 0.0132, 0.0029, -0.0072],
...                       "ub": [0.0607, 0.0787, 0.0907, 0.1007], "method": "FLCI", "open": False})
>>> b = HonestBounds("smoothness", "M", table, 0.0464, (0.0285, 0.0644), 0.0228, np.array([1.0, 0.0]), 0.05)
>>> fig = honest_bounds_plot(b)
>>> [t.get_text() for t in fig.axes[0].get_xticklabels()][:2]
['Original', '0']
"""

from __future__ import annotations

from typing import Any

from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish

__all__ = ["honest_bounds_plot"]


def honest_bounds_plot(bounds: Any, *, title: str | None = None, ax: Any = None):
    """The original CI and the honest confidence sets against ``Mbar`` (or ``M``), with the breakdown value.

    Parameters
    ----------
    bounds : HonestBounds
        From :func:`~evaltoolkit.estimators.sensitivity.parallel_trends.relative_magnitudes_bounds` or
        :func:`~evaltoolkit.estimators.sensitivity.parallel_trends.smoothness_bounds`.
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, width=6.5, height=3.8)
    table = bounds.table.dropna(subset=["lb", "ub"])
    par = bounds.parameter
    xs = list(range(1, len(table) + 1))
    lo, hi = bounds.original
    ax.errorbar([0], [bounds.estimate], yerr=[[bounds.estimate - lo], [hi - bounds.estimate]], fmt="o",
                color=PALETTE[1], capsize=4, label="Original (parallel trends exact)")  # fmt: skip
    mid = (table["lb"] + table["ub"]) / 2
    ax.errorbar(xs, mid, yerr=[mid - table["lb"], table["ub"] - mid], fmt="none", color=PALETTE[0], capsize=4,
                label=f"Honest set ({table['method'].iloc[0]})" if len(table) else "Honest set")  # fmt: skip
    ax.axhline(0, color="grey", lw=1, ls="--")
    ax.set_xticks([0, *xs], ["Original", *[f"{v:g}" for v in table[par]]])
    symbol = par
    ax.set_xlabel(f"{symbol}: " + ("post-programme violation / largest pre-programme one" if par == "Mbar"
                                   else "change in the slope of the difference in trends per wave"))  # fmt: skip
    ax.set_ylabel("Effect")
    ax.set_title(title or f"How robust is the effect to non-parallel trends ({bounds.restriction})?")
    ax.legend(loc="best", fontsize=8)
    if bounds.breakdown is None:
        where = "No set includes zero."
    elif bounds.breakdown == 0:
        where = "The sets include zero at every value."
    else:
        where = f"The sets include zero from {par} = {bounds.breakdown:.3g}."
    rows = "; ".join(
        f"{par} {v:g}: {a:.3g} to {b:.3g}" for v, a, b in zip(table[par], table["lb"], table["ub"])
    )
    return finish(
        fig, f"Original {1 - bounds.alpha:.0%} CI {lo:.3g} to {hi:.3g}; honest sets {rows}. {where}"
    )
