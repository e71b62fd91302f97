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

__all__ = ["figure_to_html"]


def figure_to_html(fig: Any, alt: str = "figure", dpi: int = 110) -> str:
    """Embed a figure as a base64 PNG ``<img>`` (no external files or requests) and release it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if getattr(fig, "number", None) is not None:  # a pyplot-managed figure (e.g. from a user's own code)
        import matplotlib.pyplot as plt

        plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
