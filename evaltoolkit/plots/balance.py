"""Covariate balance figure: the Love plot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish

__all__ = ["love_plot"]


def love_plot(
    table: pd.DataFrame | Any,
    *,
    threshold: float | None = None,
    absolute: bool = True,
    title: str | None = None,
    ax=None,
):
    """Love plot: SMD per covariate before (open circles) and after (filled) adjustment.

    Parameters
    ----------
    table : DataFrame or WeightingResult
        Output of :func:`~evaltoolkit.estimators.balance.balance_table`, or a weighting result (its ``balance``).
    threshold : float, optional
        Dashed reference line(s); defaults to the table's threshold (0.1).
    absolute : bool, default True
        Plot ``|SMD|`` (cobalt's ``abs = TRUE``).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from evaltoolkit.estimators.balance import balance_table
    >>> df = pd.DataFrame({"arm": [1, 1, 0, 0, 0], "x": [1.0, 3.0, 2.0, 4.0, 6.0]})
    >>> fig = love_plot(balance_table(df, "arm", ["x"], treated=1))
    >>> fig.axes[0].get_xlabel()
    'Absolute standardised mean difference'
    """

    table = getattr(table, "balance", table)
    if "smd_unadjusted" not in getattr(table, "columns", ()):
        raise DataError("love_plot needs a balance table from balance_table()", column="smd_unadjusted")
    fig, ax = figure_and_axes(ax, width=6.5, height=0.35 * len(table) + 1.6)
    thr = table.attrs.get("threshold", 0.1) if threshold is None else threshold
    un = table["smd_unadjusted"].astype(float)
    adj = table["smd_adjusted"].astype(float) if "smd_adjusted" in table.columns else None
    if absolute:
        un = un.abs()
        adj = None if adj is None else adj.abs()
    order = np.argsort(un.fillna(0).to_numpy(), kind="stable")
    labels = [str(i) for i in table.index[order]]
    ypos = np.arange(len(order))
    ax.scatter(
        un.to_numpy()[order], ypos, facecolors="none", edgecolors="#555555", label="Unadjusted", zorder=3
    )
    if adj is not None:
        ax.scatter(adj.to_numpy()[order], ypos, color=PALETTE[0], label="Adjusted", zorder=4)
        for y, a, b in zip(ypos, un.to_numpy()[order], adj.to_numpy()[order]):
            ax.plot([a, b], [y, y], color="#bbbbbb", lw=0.8, zorder=2)
    ax.axvline(thr, ls="--", color=PALETTE[1], lw=1)
    if absolute:
        ax.axvline(0, color="black", lw=0.6)
    else:
        ax.axvline(-thr, ls="--", color=PALETTE[1], lw=1)
        ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels)
    ax.set_xlabel("Absolute standardised mean difference" if absolute else "Standardised mean difference")
    est = table.attrs.get("estimand")
    ax.set_title(title or ("Covariate balance" + (f" ({est})" if est else "")))
    ax.legend(loc="lower right", frameon=False)
    worst = un.abs().max()
    after = "" if adj is None else f"; after adjustment the largest is {adj.abs().max():.2f}"
    return finish(fig, f"Love plot of standardised mean differences for {len(table)} covariates; the largest "
                  f"before adjustment is {worst:.2f} ({table.index[np.nanargmax(un.abs().to_numpy())]}){after}; "
                  f"reference line at {thr:g}.")  # fmt: skip
