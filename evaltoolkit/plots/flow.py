"""Participant flow: the CONSORT-style diagram, with counts under 10 withheld."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.estimators.attrition import AttritionResult
from evaltoolkit.plots.style import PALETTE, figure_and_axes
from evaltoolkit.privacy import MIN_CELL, format_count

__all__ = ["consort_figure"]


def consort_figure(
    flow: AttritionResult | pd.DataFrame,
    *,
    arm_labels: Mapping[Any, str] | None = None,
    wave_labels: Mapping[Any, str] | None = None,
    title: str | None = "Participant flow",
    min_cell: int | None = None,
    ax: Any = None,
):
    """CONSORT-style flow diagram: baseline, follow-up (and losses) at each wave, analysed, per arm.

    Every count below ``min_cell`` (default 10, the toolkit's privacy rule) is printed as
    ``"<10"`` and its percentage is withheld.

    Parameters
    ----------
    flow : AttritionResult or pandas.DataFrame
        The result of :func:`~evaltoolkit.estimators.attrition.attrition` or its ``flow`` table (``arm, stage, wave, n``).
    arm_labels, wave_labels : mapping, optional
        Display names.
    title : str, optional
    min_cell : int, optional
        Privacy threshold (default: the one used by :func:`~evaltoolkit.estimators.attrition.attrition`, 10).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> flow = pd.DataFrame({"arm": ["t"] * 4, "stage": ["assessed", "followed_up", "lost", "analysed"],
    ...                      "wave": ["pre", "post", "post", "post"], "n": [40, 33, 7, 33]})
    >>> fig = consort_figure(flow)
    >>> any("<10" in t.get_text() for t in fig.axes[0].texts)
    True
    """

    if isinstance(flow, AttritionResult):
        min_cell = flow.min_cell if min_cell is None else min_cell
        flow = flow.flow
    if not isinstance(flow, pd.DataFrame) or not {"arm", "stage", "wave", "n"} <= set(flow.columns):
        raise DataError("consort_figure needs the flow table of attrition() (columns arm, stage, wave, n)")
    min_cell = int(flow.attrs.get("min_cell", MIN_CELL)) if min_cell is None else int(min_cell)
    arm_labels = dict(arm_labels or {})
    wave_labels = dict(wave_labels or {})
    arms = list(pd.unique(flow["arm"]))
    fu_waves = list(pd.unique(flow.loc[flow["stage"] == "followed_up", "wave"]))
    n_rows = 2 + len(fu_waves)
    width = max(6.0, 3.6 * len(arms))
    fig, ax = figure_and_axes(ax, width=width, height=1.25 * n_rows + 0.6)
    ax.set_xlim(0, len(arms))
    ax.set_ylim(-0.5, n_rows - 0.3)
    ax.axis("off")

    def cnt(n: int) -> str:
        return format_count(n, min_cell)

    def pct(n: int, base: int) -> str:
        return f" ({100 * n / base:.0f}%)" if n >= min_cell and base >= min_cell and base > 0 else ""

    def pair(kept: int, lost: int) -> tuple[str, str, bool]:
        """Counts of a followed-up / lost pair with secondary suppression: when one is small, the other
        is rounded to the nearest 10, so the small one cannot be recovered by subtraction."""
        if 0 < lost < min_cell <= kept:
            return f"about {round(kept, -1):,}", cnt(lost), False
        if 0 < kept < min_cell <= lost:
            return cnt(kept), f"about {round(lost, -1):,}", False
        return cnt(kept), cnt(lost), True

    box = {"boxstyle": "round,pad=0.4", "fc": "white", "ec": PALETTE[0], "lw": 1.2}
    side = {"boxstyle": "round,pad=0.3", "fc": "#f4f4f4", "ec": "grey", "lw": 0.8}
    for j, a in enumerate(arms):
        f = flow[flow["arm"] == a]
        x = j + 0.42
        nb = int(f.loc[f["stage"] == "assessed", "n"].sum())
        bw = f.loc[f["stage"] == "assessed", "wave"]
        y = n_rows - 1
        ax.text(
            x, y + 0.45, str(arm_labels.get(a, a)), ha="center", va="bottom", fontsize=10, fontweight="bold"
        )
        bwl = wave_labels.get(bw.iloc[0], bw.iloc[0]) if len(bw) else "baseline"
        btxt = "Assessed at baseline" + ("" if str(bwl).lower() == "baseline" else f" ({bwl})")
        ax.text(x, y, f"{btxt}\nn = {cnt(nb)}", ha="center", va="center", fontsize=8.5, bbox=box)
        prev_y = y
        k, k_txt, exact = nb, cnt(nb), True
        for w in fu_waves:
            y -= 1
            k = int(f.loc[(f["stage"] == "followed_up") & (f["wave"] == w), "n"].sum())
            lost = int(f.loc[(f["stage"] == "lost") & (f["wave"] == w), "n"].sum())
            k_txt, lost_txt, exact = pair(k, lost)
            wl = wave_labels.get(w, w)
            ax.annotate(
                "",
                xy=(x, y + 0.22),
                xytext=(x, prev_y - 0.22),
                arrowprops={"arrowstyle": "->", "color": "grey"},
            )
            ax.text(
                x,
                y,
                f"Followed up at {wl}\nn = {k_txt}{pct(k, nb) if exact else ''}",
                ha="center",
                va="center",
                fontsize=8.5,
                bbox=box,
            )
            ax.text(
                x + 0.33,
                y + 0.5,
                f"Not followed up at {wl}: {lost_txt}",
                ha="left",
                va="center",
                fontsize=7.5,
                bbox=side,
            )
            prev_y = y
        y -= 1
        n_an = int(f.loc[f["stage"] == "analysed", "n"].sum())
        aw = f.loc[f["stage"] == "analysed", "wave"]
        awl = wave_labels.get(aw.iloc[0], aw.iloc[0]) if len(aw) else ""
        ax.annotate(
            "", xy=(x, y + 0.22), xytext=(x, prev_y - 0.22), arrowprops={"arrowstyle": "->", "color": "grey"}
        )
        ax.text(
            x,
            y,
            f"Analysed ({awl})\nn = " + (f"{cnt(n_an)}{pct(n_an, nb)}" if exact or n_an != k else k_txt),
            ha="center",
            va="center",
            fontsize=8.5,
            bbox={**box, "ec": PALETTE[2]},
        )
    if title:
        ax.set_title(title, fontsize=11)
    ax.text(
        0.0,
        -0.45,
        f"Counts below {min_cell} are shown as <{min_cell}.",
        fontsize=7,
        color="grey",
        ha="left",
        va="bottom",
    )
    fig.tight_layout()
    return fig
