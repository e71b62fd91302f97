"""Figures shared by the report: embedding and the pre/post means-by-arm plot.

matplotlib is imported lazily (inside functions) with the non-interactive Agg backend.

Examples
--------
>>> import pandas as pd
>>> cells = pd.DataFrame({"arm": ["t", "t", "c", "c"], "wave": ["pre", "post"] * 2,
...                       "mean": [3.0, 3.4, 3.0, 3.1], "ci_lower": [2.9, 3.3, 2.9, 3.0],
...                       "ci_upper": [3.1, 3.5, 3.1, 3.2], "n": [50, 40, 50, 40], "outcome": "att"})
>>> fig = means_plot(cells, waves=["pre", "post"], arms=["t", "c"])
>>> figure_to_html(fig).startswith("<img")
True
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from evaltoolkit.privacy import MIN_CELL

#: colour-blind-safe palette (Okabe-Ito)
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(nrows: int = 1, ncols: int = 1, width: float = 7.0, height: float = 4.0, **kw: Any):
    """A matplotlib figure and axes with the report's style."""
    plt = _plt()
    fig, ax = plt.subplots(nrows, ncols, figsize=(width, height), **kw)
    return fig, ax


def figure_to_html(fig, alt: str = "figure", dpi: int = 110) -> str:
    """Embed a matplotlib figure as a base64 PNG ``<img>`` (no external files or requests); closes it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="figure" alt="{alt}" src="data:image/png;base64,{data}">'


def means_plot(
    cells: pd.DataFrame,
    waves: Sequence[str],
    arms: Sequence[str],
    arm_labels: dict[str, str] | None = None,
    wave_labels: dict[str, str] | None = None,
    outcomes: Sequence[str] | None = None,
    outcome_labels: dict[str, str] | None = None,
    min_n: int = MIN_CELL,
):
    """Mean and 95% CI per wave per arm, one panel per outcome (like Best of Us Figure 1).

    Parameters
    ----------
    cells : DataFrame
        Columns ``outcome, arm, wave, mean, ci_lower, ci_upper, n`` (e.g. from
        :meth:`evaltoolkit.Study.cell_means`). Cells with fewer than ``min_n`` people are not drawn.
    waves, arms : sequences of labels in display order.

    Returns
    -------
    matplotlib.figure.Figure
    """
    outcomes = list(outcomes or dict.fromkeys(cells["outcome"]))
    ncols = min(3, len(outcomes))
    nrows = -(-len(outcomes) // ncols)
    fig, axes = new_figure(nrows, ncols, width=4.2 * ncols, height=3.3 * nrows, squeeze=False)
    arm_labels = arm_labels or {}
    wave_labels = wave_labels or {}
    outcome_labels = outcome_labels or {}
    x_of = {w: i for i, w in enumerate(waves)}
    for k, outcome in enumerate(outcomes):
        ax = axes[k // ncols][k % ncols]
        sub = cells[(cells["outcome"] == outcome) & (cells["n"] >= min_n)]
        for j, arm in enumerate(arms):
            s = sub[sub["arm"] == arm].copy()
            s["x"] = s["wave"].map(x_of) + (j - (len(arms) - 1) / 2) * 0.06
            s = s.dropna(subset=["x"]).sort_values("x")
            ax.errorbar(
                s["x"],
                s["mean"],
                yerr=[s["mean"] - s["ci_lower"], s["ci_upper"] - s["mean"]],
                marker="o",
                capsize=3,
                color=PALETTE[j % len(PALETTE)],
                label=arm_labels.get(arm, arm),
            )
        ax.set_xticks(range(len(waves)))
        ax.set_xticklabels([wave_labels.get(w, w) for w in waves], fontsize=8)
        ax.set_title(outcome_labels.get(outcome, outcome), fontsize=10)
        ax.set_ylabel("mean score (95% CI)", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for k in range(len(outcomes), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=len(arms), frameon=False, bbox_to_anchor=(0.5, -0.02)
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


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


def forest_plot(table: pd.DataFrame, label_col: str = "label", title: str = "", ref: float = 0.0):
    """Horizontal estimates with 95% CIs (columns ``label_col, estimate, ci_lower, ci_upper``).

    Unbounded intervals are drawn as a point with the note "(interval unbounded)" in the label.
    """
    table = drop_unbounded(table)
    table[label_col] = [
        f"{lab} (interval unbounded)" if bad else lab
        for lab, bad in zip(table[label_col], table["unbounded"], strict=True)
    ]
    fig, ax = new_figure(width=7.0, height=0.45 * len(table) + 1.2)
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
    fig.tight_layout()
    return fig
