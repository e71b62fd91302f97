"""The plotting layer's shared style: palette, one way to get a figure and axes, and table helpers.

Every plot in :mod:`evaltoolkit.plots` takes a result or a table first, keyword options after it, and
``ax=None``: given an Axes it draws there (and returns that Axes' figure), otherwise it makes its own
:class:`matplotlib.figure.Figure`. Figures are built in the object-oriented idiom, never through pyplot, so
they work headless, never touch pyplot's global state and need no closing. matplotlib is imported inside the
functions: ``import evaltoolkit`` and the CLI stay light.

Examples
--------
>>> fig, ax = figure_and_axes(width=4.0, height=3.0)
>>> fig.get_size_inches().tolist(), figure_and_axes(ax)[0] is fig
([4.0, 3.0], True)
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["PALETTE", "drop_unbounded", "figure_and_axes", "new_figure"]

#: colour-blind-safe palette (Okabe-Ito)
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def new_figure(nrows: int = 1, ncols: int = 1, width: float = 7.0, height: float = 4.0, **kw: Any):
    """A new :class:`~matplotlib.figure.Figure` of ``width`` x ``height`` inches and its axes (``Figure.subplots``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(nrows, ncols, **kw)


def figure_and_axes(ax: Any = None, *, width: float = 7.0, height: float = 4.0):
    """``(figure, ax)``: the given Axes and its figure, or a new one-panel figure of the given size."""
    if ax is not None:
        return ax.figure, ax
    return new_figure(width=width, height=height)


def drop_unbounded(table: pd.DataFrame) -> pd.DataFrame:
    """Blank interval ends that carry no information (e.g. a wild bootstrap with 3 clusters).

    An interval counts as unbounded when it is infinite, wider than 1,000 standard errors, or wider
    than 1e6; plotting it would squash every other estimate into a point.
    """
    import numpy as np

    from evaltoolkit.results import unbounded_intervals

    out = table.copy()
    lo = pd.to_numeric(out["ci_lower"], errors="coerce")
    hi = pd.to_numeric(out["ci_upper"], errors="coerce")
    se = pd.to_numeric(out.get("std_error", pd.Series(np.nan, index=out.index)), errors="coerce")
    bad = unbounded_intervals(lo, hi, se)
    out["ci_lower"] = lo.where(~bad, out["estimate"])
    out["ci_upper"] = hi.where(~bad, out["estimate"])
    out["unbounded"] = bad
    return out
