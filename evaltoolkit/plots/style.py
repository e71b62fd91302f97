"""The plotting layer's shared style: palette, one way to get a figure and axes, and table helpers.

Every plot in :mod:`evaltoolkit.plots` takes a result or a table first, keyword options after it, and
``ax=None``: given an Axes it draws there (and returns that Axes' figure), otherwise it makes its own
:class:`matplotlib.figure.Figure`. Figures are built in the object-oriented idiom, never through pyplot, so
they work headless, never touch pyplot's global state and need no closing. matplotlib is imported inside the
functions: ``import evaltoolkit`` and the CLI stay light.

New figures use matplotlib's constrained layout, so no label is clipped; :func:`finish` wraps titles and axis
labels wider than their room and attaches the figure's description (:func:`describe`), the alt text a report
shows with it.

Examples
--------
>>> fig, ax = figure_and_axes(width=4.0, height=3.0)
>>> fig.get_size_inches().tolist(), figure_and_axes(ax)[0] is fig
([4.0, 3.0], True)
>>> describe(finish(fig, "An empty figure."))
'An empty figure.'
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = [
    "PALETTE",
    "describe",
    "drop_unbounded",
    "figure_and_axes",
    "finish",
    "fit_canvas",
    "inches_of",
    "new_figure",
    "renderer_of",
    "wrap_to_width",
]

#: colour-blind-safe palette (Okabe-Ito)
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


#: attribute of a Figure that holds its description (see :func:`describe`)
_ALT = "_et_alt"


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    width: float = 7.0,
    height: float = 4.0,
    *,
    layout: str | None = "constrained",
    **kw: Any,
):
    """A new :class:`~matplotlib.figure.Figure` of ``width`` x ``height`` inches and its axes (``Figure.subplots``).

    ``layout="constrained"`` (the default) keeps every title, label, legend and text inside the canvas;
    ``layout=None`` is for diagrams that place everything themselves (flow, path diagram).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    return fig, fig.subplots(nrows, ncols, **kw)


def renderer_of(fig: Any) -> Any:
    """The figure's renderer, for measuring text (an Agg canvas is attached if the figure has none)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def wrap_to_width(text: Any, room_px: float, renderer: Any, *, vertical: bool = False) -> None:
    """Re-wrap a Text artist's string (on word boundaries) until it is no longer than ``room_px``."""
    import textwrap

    def size() -> float:
        ext = text.get_window_extent(renderer)
        return ext.height if vertical else ext.width

    words = " ".join(text.get_text().split())
    width = len(words)
    while width > 8 and size() > room_px:
        width = int(width * 0.9)
        text.set_text(textwrap.fill(words, width))


def inches_of(text: Any, renderer: Any) -> tuple[float, float]:
    """Width and height of a text (with its box, if any) in inches."""
    ext = text.get_window_extent(renderer)
    pad = 0.0
    patch = text.get_bbox_patch()
    if patch is not None:
        pad = 2 * patch.get_boxstyle().pad * text.get_fontsize() / 72 + 2 * patch.get_linewidth() / 72
    dpi = text.figure.dpi
    return ext.width / dpi + pad, ext.height / dpi + pad


def fit_canvas(fig: Any, ax: Any, width: float, height: float, offset: float) -> None:
    """Make data units inches: the axes fills a figure of ``width`` x ``height`` (unless drawn on a given axes)."""
    if fig.get_layout_engine() is None and len(fig.axes) == 1:
        fig.set_size_inches(width, height)
        ax.set_position((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-offset, height - offset)


def finish(fig: Any, description: str | None = None) -> Any:
    """Make a figure readable and self-describing; returns it.

    Titles and axis labels wider than the figure (taller, for y labels) are wrapped onto more lines, so the
    layout engine can fit them rather than letting them run off the canvas; ``description`` (what the figure
    shows, with its key numbers) is attached for :func:`describe`.
    """
    renderer = renderer_of(fig)
    room_w, room_h = 0.95 * fig.bbox.width, 0.9 * fig.bbox.height
    for ax in fig.axes:
        panel_w = max(ax.get_position().width * fig.bbox.width, 150.0)
        wrap_to_width(ax.title, min(room_w, 1.05 * panel_w), renderer)
        wrap_to_width(ax.xaxis.label, room_w / max(1, len(fig.axes) ** 0.5), renderer)
        wrap_to_width(ax.yaxis.label, room_h, renderer, vertical=True)
    if description is not None:
        setattr(fig, _ALT, " ".join(description.split()))
    return fig


def describe(fig: Any) -> str:
    """What a figure from :mod:`evaltoolkit.plots` shows, with its key numbers (its alt text); ``""`` if unknown."""
    return getattr(fig, _ALT, "")


def figure_and_axes(
    ax: Any = None, *, width: float = 7.0, height: float = 4.0, layout: str | None = "constrained"
):
    """``(figure, ax)``: the given Axes and its figure, or a new one-panel figure of the given size."""
    if ax is not None:
        return ax.figure, ax
    return new_figure(width=width, height=height, layout=layout)


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
