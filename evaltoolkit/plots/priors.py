"""Prior figure: the priors for the programme effect, and their posteriors given an estimate."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from evaltoolkit.estimators.bayes.priors import Prior, get_prior, prior_sensitivity
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish

__all__ = ["prior_plot"]


def prior_plot(
    priors: tuple[str | Prior, ...] = ("default", "contact", "sceptical"),
    outcome_sd: float = 1.0,
    estimate: float | None = None,
    std_error: float | None = None,
    xlabel: str = "programme effect (outcome SD units)",
    ax: Any = None,
):
    """Densities of the effect priors side by side; with an estimate, also the likelihood and posteriors.

    Parameters
    ----------
    priors : tuple of str or Prior
        Normal effect priors to draw.
    outcome_sd : float
        Rescale the priors to outcome units (then change ``xlabel``).
    estimate, std_error : float, optional
        A (frequentist) estimate: adds its normal likelihood (black) and the conjugate posterior under
        each prior (solid; priors dashed), as in :func:`~evaltoolkit.estimators.bayes.priors.prior_sensitivity`.
    xlabel : str
        Axis label.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = prior_plot(estimate=0.2, std_error=0.15)
    >>> len(fig.axes[0].get_lines())  # 3 priors, 3 posteriors, the likelihood and the zero line
    8
    """

    ps = [get_prior(n, outcome_sd) for n in priors]
    lo = min(p.interval(0.995)[0] for p in ps)
    hi = max(p.interval(0.995)[1] for p in ps)
    if estimate is not None and std_error is not None:
        lo, hi = min(lo, estimate - 4 * std_error), max(hi, estimate + 4 * std_error)
    x = np.linspace(lo, hi, 400)
    fig, ax = figure_and_axes(ax, width=6.5, height=3.6)
    colours = PALETTE[:7]
    post = prior_sensitivity(estimate, std_error, tuple(ps)) if std_error is not None else None
    for i, p in enumerate(ps):
        c = colours[i % len(colours)]
        ax.plot(x, p.pdf(x), color=c, ls="--" if post is not None else "-", label=f"{p.name}: {p.label()}")
        if post is not None:
            r = post.iloc[i]
            ax.plot(x, stats.norm.pdf(x, r.post_mean, r.post_sd), color=c, label=f"posterior ({p.name})")
    if post is not None:
        ax.plot(x, stats.norm.pdf(x, estimate, std_error), color="black", lw=1.2, label="data (likelihood)")
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(
        "Priors" + (" and posteriors" if post is not None else "") + " for the programme effect", fontsize=9
    )
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    what = "; ".join(f"{p.name}: {p.label()}" for p in ps)
    data = (
        "" if post is None else f" Estimate {estimate:.2f} (SE {std_error:.2f}) and the posterior under each."
    )
    return finish(fig, f"Densities of the effect priors ({what}).{data}")
