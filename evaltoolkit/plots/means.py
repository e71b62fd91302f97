"""Means by arm and wave, and the event study (effect at each wave relative to baseline).

Examples
--------
>>> import pandas as pd
>>> cells = pd.DataFrame({"arm": ["t", "t", "c", "c"], "wave": ["pre", "post"] * 2,
...                       "mean": [3.0, 3.4, 3.0, 3.1], "ci_lower": [2.9, 3.3, 2.9, 3.0],
...                       "ci_upper": [3.1, 3.5, 3.1, 3.2], "n": [50, 40, 50, 40], "outcome": "att"})
>>> fig = means_plot(cells, waves=["pre", "post"], arms=["t", "c"])
>>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
['pre', 'post']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.plots.style import PALETTE, drop_unbounded, figure_and_axes, finish, new_figure
from evaltoolkit.privacy import MIN_CELL

__all__ = ["event_study_plot", "means_plot"]


def means_plot(
    cells: pd.DataFrame,
    *,
    waves: Sequence[str],
    arms: Sequence[str],
    arm_labels: dict[str, str] | None = None,
    wave_labels: dict[str, str] | None = None,
    outcomes: Sequence[str] | None = None,
    outcome_labels: dict[str, str] | None = None,
    min_n: int = MIN_CELL,
    ax: Any = None,
):
    """Mean and 95% CI per wave per arm, one panel per outcome (like Best of Us Figure 1).

    Parameters
    ----------
    cells : DataFrame
        Columns ``outcome, arm, wave, mean, ci_lower, ci_upper, n`` (e.g. from
        :meth:`evaltoolkit.design.study.Study.cell_means`). Cells with fewer than ``min_n`` people are not drawn.
    waves, arms : sequences of labels in display order.
    ax : matplotlib Axes, optional
        Draw one outcome on this Axes (then ``outcomes`` must name one outcome, or ``cells`` hold one).

    Returns
    -------
    matplotlib.figure.Figure
    """
    outcomes = list(outcomes or dict.fromkeys(cells["outcome"]))
    ncols = min(3, len(outcomes))
    nrows = -(-len(outcomes) // ncols)
    if ax is not None:
        if len(outcomes) != 1:
            raise DataError(f"means_plot draws {len(outcomes)} outcomes; give ax only with one outcome")
        fig, axes = ax.figure, [[ax]]
    else:
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
    fig.legend(handles, labels, loc="outside lower center", ncol=len(arms), frameon=False)
    return finish(fig, _means_description(cells, outcomes, arms, waves, min_n, arm_labels, outcome_labels))


def _means_description(cells, outcomes, arms, waves, min_n, arm_labels, outcome_labels) -> str:
    """Each outcome's mean per arm at the first and last wave (for alt text)."""
    parts = []
    for outcome in outcomes:
        sub = cells[(cells["outcome"] == outcome) & (cells["n"] >= min_n)].set_index(["arm", "wave"])["mean"]
        arms_txt = [
            f"{arm_labels.get(a, a)} {sub[(a, waves[0])]:.2f} to {sub[(a, waves[-1])]:.2f}"
            for a in arms
            if (a, waves[0]) in sub.index and (a, waves[-1]) in sub.index
        ]
        parts.append(f"{outcome_labels.get(outcome, outcome)}: {', '.join(arms_txt) or 'not shown'}")
    return f"Mean scores by arm from the first to the last wave. {'; '.join(parts)}."


def event_study_plot(
    studies: Mapping[str, pd.DataFrame],
    *,
    waves: Sequence[str],
    wave_labels: Mapping[str, str] | None = None,
    title: str = "Event study: the effect at each wave",
    ylabel: str = "effect relative to baseline (points)",
    ax: Any = None,
):
    """Effect at each wave relative to baseline (0 at baseline), one line per outcome.

    Parameters
    ----------
    studies : mapping of label -> DataFrame
        Each an event-study table (columns ``wave, estimate, ci_lower, ci_upper``, e.g.
        :attr:`evaltoolkit.estimators.did.DiDResult.event_study`); empty tables are skipped.
    waves : sequence of str
        All waves in display order (the x axis).
    wave_labels : mapping, optional
        Display names of the waves.
    title, ylabel : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> es = pd.DataFrame({"wave": ["post", "follow_up"], "estimate": [0.2, 0.1],
    ...                    "ci_lower": [0.0, -0.1], "ci_upper": [0.4, 0.3], "std_error": [0.1, 0.1]})
    >>> fig = event_study_plot({"attitudes": es}, waves=["baseline", "post", "follow_up"])
    >>> len(fig.axes[0].get_xticklabels())
    3
    """
    fig, ax = figure_and_axes(ax, width=7.0, height=3.6)
    wave_labels = dict(wave_labels or {})
    position = {w: i for i, w in enumerate(waves)}
    for k, (label, es) in enumerate(studies.items()):
        if es is None or es.empty:
            continue
        es = drop_unbounded(es)
        x = es["wave"].map(position).astype(float) + (k - len(studies) / 2) * 0.05
        ax.errorbar(
            x,
            es["estimate"],
            yerr=[es["estimate"] - es["ci_lower"], es["ci_upper"] - es["estimate"]],
            marker="o",
            capsize=3,
            color=PALETTE[k % len(PALETTE)],
            label=label,
        )
    ax.axhline(0, color="grey", lw=1, ls="--")
    ax.set_xticks(range(len(waves)))
    ax.set_xticklabels([wave_labels.get(w, w) for w in waves], fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", alpha=0.3)
    items = "; ".join(
        f"{label}: "
        + ", ".join(f"{wave_labels.get(w, w)} {e:+.2f}" for w, e in zip(es["wave"], es["estimate"]))
        for label, es in studies.items()
        if es is not None and not es.empty
    )
    return finish(fig, f"{title}, relative to baseline. {items}.")
