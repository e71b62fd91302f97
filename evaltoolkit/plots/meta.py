"""Meta-analysis figures beyond the forest plot (:func:`evaltoolkit.plots.forest.forest_plot`): the funnel plot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from evaltoolkit.errors import DataError
from evaltoolkit.estimators.meta import MetaResult, egger_test
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish
from evaltoolkit.results import p_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["funnel_plot"]


def funnel_plot(
    result: MetaResult,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    egger: bool = True,
    ax: Any = None,
) -> Figure:
    """Funnel plot: effect against standard error (inverted), with the pseudo 95% confidence funnel.

    The funnel is centred on the pooled estimate; asymmetry (small studies with larger effects) hints at
    publication bias or small-study effects. With ``egger=True`` (and at least 3 studies) Egger's test
    (:func:`~evaltoolkit.estimators.meta.egger_test`) is printed on the figure.

    Parameters
    ----------
    result : MetaResult
        From :func:`~evaltoolkit.estimators.meta.meta_analysis`.
    title, xlabel : str, optional
        Title and x-axis label.
    egger : bool
        Add Egger's test result in the title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from evaltoolkit.estimators.meta import meta_analysis
    >>> fig = funnel_plot(meta_analysis([0.1, 0.4, 0.3, 0.5], [0.1, 0.2, 0.15, 0.3], method="DL"))
    >>> fig.axes[0].get_ylabel()
    'standard error'
    """

    if not isinstance(result, MetaResult) or result.studies is None:
        raise DataError("funnel_plot needs the result of meta_analysis()")
    st = result.studies
    fig, ax = figure_and_axes(ax, width=6, height=4.5)
    se_max = float(st["std_error"].max()) * 1.08
    grid = np.linspace(0, se_max, 50)
    z = stats.norm.ppf(0.975)
    centre = result.estimate
    ax.fill_betweenx(grid, centre - z * grid, centre + z * grid, color="0.92", zorder=0)
    ax.plot(centre - z * grid, grid, color="0.55", lw=0.8, ls="--")
    ax.plot(centre + z * grid, grid, color="0.55", lw=0.8, ls="--")
    ax.axvline(centre, color=PALETTE[1], lw=1)
    ax.scatter(st["effect"], st["std_error"], color=PALETTE[0], s=22, zorder=3)
    ax.set_ylim(se_max, 0)
    ax.set_ylabel("standard error")
    ax.set_xlabel(xlabel or result.outcome)
    text = title or "Funnel plot (pseudo 95% limits around the pooled estimate)"
    if egger and len(st) >= 3:
        eg = egger_test(result)
        text += (
            f"\nEgger's test: intercept {eg.intercept:+.2f}, t({eg.df}) = {eg.t:.2f}, {p_label(eg.p_value)}"
        )
    ax.set_title(text, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return finish(fig, f"Funnel plot of {len(st)} studies around the pooled estimate {centre:.2f}. "
                  + " ".join(text.splitlines()[1:]))  # fmt: skip
