"""Figures into the report: a matplotlib figure as a self-contained base64 PNG ``<img>``.

Examples
--------
>>> from evaltoolkit.plots.style import new_figure
>>> fig, ax = new_figure(width=2.0, height=2.0)
>>> figure_to_html(fig, alt="empty").startswith('<img class="figure" alt="empty"')
True
>>> 'alt="Tom &amp; Jo &lt;3"' in figure_to_html(new_figure(width=1.0, height=1.0)[0], alt="Tom & Jo <3")
True
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = ["figure_to_html", "small_png"]


def figure_to_html(fig: Any, alt: str = "figure", dpi: int = 96) -> str:
    """Embed a figure as a small base64 PNG ``<img>`` (no external files or requests) and release it.

    The figure is saved with ``bbox_inches="tight"`` (nothing clipped), then optimised by :func:`small_png`.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    if getattr(fig, "number", None) is not None:  # a pyplot-managed figure (e.g. from a user's own code)
        import matplotlib.pyplot as plt

        plt.close(fig)
    data = base64.b64encode(small_png(buf.getvalue())).decode("ascii")
    return f'<img class="figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def small_png(png: bytes, colours: int = 64) -> bytes:
    """The same picture as a smaller PNG: a palette image (exact when it has few colours), optimised.

    Figures are flat colours plus anti-aliased edges, so an adaptive palette of ``colours`` entries is
    visually identical and several times smaller; the smaller of that and the original is returned.

    Examples
    --------
    >>> from evaltoolkit.plots.style import new_figure
    >>> fig, ax = new_figure(width=3.0, height=2.0)
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> buf = io.BytesIO(); fig.savefig(buf, format="png")
    >>> len(small_png(buf.getvalue())) < len(buf.getvalue())
    True
    """
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    exact = img.getcolors(maxcolors=256)
    pal = img.quantize(
        colors=len(exact) if exact else colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    pal.save(out, format="PNG", optimize=True)
    return min(out.getvalue(), png, key=len)
