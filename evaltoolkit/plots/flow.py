"""Participant flow: the CONSORT-style diagram, with counts under 10 withheld."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.estimators.attrition import AttritionResult
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish, fit_canvas, inches_of, renderer_of
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
    arms = list(pd.unique(flow["arm"]))
    fu_waves = list(pd.unique(flow.loc[flow["stage"] == "followed_up", "wave"]))
    columns = [_arm_column(flow[flow["arm"] == a], fu_waves, dict(wave_labels or {}), min_cell) for a in arms]
    headers = [str(dict(arm_labels or {}).get(a, a)) for a in arms]
    fig = _draw_flow(columns, headers, title, f"Counts below {min_cell} are shown as <{min_cell}.", ax)
    return finish(fig, _flow_description(columns, headers, min_cell))


@dataclass
class _Column:
    """One arm's boxes: the main chain (baseline, each follow-up, analysed) and the losses between them."""

    main: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)


def _arm_column(f: pd.DataFrame, fu_waves: list, wave_labels: dict, min_cell: int) -> _Column:
    """The texts of one arm's boxes, with every count under ``min_cell`` withheld."""

    def cnt(n: int) -> str:
        return format_count(n, min_cell)

    def pct(n: int, base: int) -> str:
        return f" ({100 * n / base:.0f}%)" if n >= min_cell and base >= min_cell and base > 0 else ""

    def total(stage: str, wave: Any = None) -> int:
        sel = f["stage"] == stage if wave is None else (f["stage"] == stage) & (f["wave"] == wave)
        return int(f.loc[sel, "n"].sum())

    col = _Column()
    nb = total("assessed")
    bw = f.loc[f["stage"] == "assessed", "wave"]
    bwl = wave_labels.get(bw.iloc[0], bw.iloc[0]) if len(bw) else "baseline"
    btxt = "Assessed at baseline" + ("" if str(bwl).lower() == "baseline" else f"\n({bwl})")
    col.main.append(f"{btxt}\nn = {cnt(nb)}")
    k, k_txt, exact = nb, cnt(nb), True
    for w in fu_waves:
        k, lost = total("followed_up", w), total("lost", w)
        k_txt, lost_txt, exact = _pair(k, lost, min_cell)
        wl = wave_labels.get(w, w)
        col.main.append(f"Followed up at {wl}\nn = {k_txt}{pct(k, nb) if exact else ''}")
        col.losses.append(f"Not followed up at {wl}:\n{lost_txt}")
    n_an = total("analysed")
    aw = f.loc[f["stage"] == "analysed", "wave"]
    awl = wave_labels.get(aw.iloc[0], aw.iloc[0]) if len(aw) else ""
    shown = f"{cnt(n_an)}{pct(n_an, nb)}" if exact or n_an != k else k_txt
    col.main.append(f"Analysed ({awl})\nn = {shown}")
    col.losses.append("")
    return col


def _pair(kept: int, lost: int, min_cell: int) -> tuple[str, str, bool]:
    """Counts of a followed-up / lost pair with secondary suppression: when one is small, the other
    is rounded to the nearest 10, so the small one cannot be recovered by subtraction."""
    if 0 < lost < min_cell <= kept:
        return f"about {round(kept, -1):,}", format_count(lost, min_cell), False
    if 0 < kept < min_cell <= lost:
        return format_count(kept, min_cell), f"about {round(lost, -1):,}", False
    return format_count(kept, min_cell), format_count(lost, min_cell), True


_MAIN = {"boxstyle": "round,pad=0.4", "fc": "white", "ec": PALETTE[0], "lw": 1.2}
_SIDE_PAD = 0.3
_SIDE = {"boxstyle": f"round,pad={_SIDE_PAD}", "fc": "#f4f4f4", "ec": "grey", "lw": 0.8}
_GAP = 0.3  # inches between boxes
_ARROW = {"arrowstyle": "->", "color": "grey", "shrinkA": 0, "shrinkB": 0}


def _draw_flow(columns: list[_Column], headers: list[str], title: str | None, note: str, ax: Any):
    """Place every box from its measured size (in inches), then draw the arrows between box edges."""
    fig, ax = figure_and_axes(ax, width=7.0, height=5.0, layout=None)
    ax.axis("off")
    r = renderer_of(fig)
    heads = [ax.text(0, 0, h, ha="center", va="bottom", fontsize=10, fontweight="bold") for h in headers]
    mains = [
        [ax.text(0, 0, t, ha="center", va="center", fontsize=8.5, bbox=_MAIN) for t in c.main]
        for c in columns
    ]
    sides = [[ax.text(0, 0, t, ha="left", va="center", fontsize=7.5, bbox=_SIDE) if t else None
              for t in c.losses] for c in columns]  # fmt: skip
    size = {
        t: inches_of(t, r)
        for t in [*heads, *(t for c in mains for t in c), *(t for c in sides for t in c if t)]
    }
    main_w = [max(size[t][0] for t in c) for c in mains]
    side_w = [max([size[t][0] for t in c if t] or [0.0]) for c in sides]
    box_h = max(size[t][1] for c in mains for t in c)
    step = box_h + max([size[t][1] for c in sides for t in c if t] or [0.0]) + 2 * _GAP
    # columns left to right: each holds its main boxes, the loss boxes right of its arrows and its header
    xs, right = [], 0.0
    for j, (mw, sw) in enumerate(zip(main_w, side_w)):
        half = max(mw / 2, size[heads[j]][0] / 2)
        xs.append(right + _GAP + half)
        right = xs[-1] + max(half, _GAP + sw)
        mains[j][-1].get_bbox_patch().set_edgecolor(PALETTE[2])  # analysed: green, as before
    n_rows = len(mains[0])
    top = (n_rows - 1) * step + box_h / 2
    head_h = max(size[h][1] for h in heads)
    height = top + _GAP + head_h + (0.45 if title else 0.1) + box_h / 2 + 0.45
    width = right + _GAP
    fit_canvas(fig, ax, width, height, offset=box_h / 2 + 0.4)
    for j, x in enumerate(xs):
        heads[j].set_position((x, top + _GAP))
        for i, t in enumerate(mains[j]):
            t.set_position((x, top - box_h / 2 - i * step))
        for i, t in enumerate(sides[j]):
            lower, upper = mains[j][i + 1 : i + 2], mains[j][i]
            y_mid = upper.get_position()[1] - step / 2
            if lower:
                y0 = upper.get_position()[1] - size[upper][1] / 2
                y1 = lower[0].get_position()[1] + size[lower[0]][1] / 2
                ax.annotate("", xy=(x, y1), xytext=(x, y0), arrowprops=_ARROW)
            if t is not None:
                pad = _SIDE_PAD * t.get_fontsize() / 72
                t.set_position((x + _GAP + pad, y_mid))
                ax.annotate("", xy=(x + _GAP, y_mid), xytext=(x, y_mid), arrowprops=_ARROW)
    if title:
        ax.text(width / 2, top + _GAP + head_h + 0.15, title, ha="center", va="bottom", fontsize=11)
    ax.text(_GAP, -box_h / 2 - 0.35, note, fontsize=7, color="grey", ha="left", va="bottom")
    return fig


def _flow_description(columns: list[_Column], headers: list[str], min_cell: int) -> str:
    """The flow in words (for alt text): each arm's boxes in order."""
    arms = []
    for head, col in zip(headers, columns):
        steps = [" ".join(t.split()) for t in col.main]
        lost = [" ".join(t.split()) for t in col.losses if t]
        arms.append(f"{head}: " + "; ".join(steps) + (" (" + "; ".join(lost) + ")" if lost else ""))
    return f"Participant flow diagram. {' '.join(a + '.' for a in arms)} Counts below {min_cell} shown as <{min_cell}."
