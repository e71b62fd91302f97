"""Figures for the Bayesian analyses: shrinkage, posterior, posterior predictive check, prior sensitivity.

Every function takes the result first, options by keyword and ``ax=None``, and returns a matplotlib
``Figure`` (see :mod:`evaltoolkit.plots.style`).

Examples
--------
>>> from evaltoolkit.estimators.bayes.did import bayes_did
>>> from evaltoolkit.simulate.dgps import simulate_panel
>>> from evaltoolkit.plots.bayes import posterior_plot
>>> df = simulate_panel(n_sites=3, teams_per_site=2, people_per_team=20, seed=1)
>>> res = bayes_did(df, "y", "arm", "wave", "pid", treated="treated", draws=200, chains=2, seed=1)
>>> fig = posterior_plot(res)
>>> type(fig).__name__
'Figure'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evaltoolkit.estimators.bayes.did import _flat, hdi
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish
from evaltoolkit.privacy import MIN_CELL

__all__ = ["posterior_plot", "ppc_plot", "prior_sensitivity_plot", "shrinkage_plot"]


def shrinkage_plot(result: Any, *, level: str | None = None, max_clusters: int = 40, ax: Any = None):
    """Raw cluster effects beside their partially pooled posterior means (with 95% HDIs).

    Parameters
    ----------
    result : BayesDiDResult
    level : str, optional
        Grouping level (default: the top level, e.g. sites).
    max_clusters : int
        Show at most this many clusters (the largest by people).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from evaltoolkit.estimators.bayes.did import bayes_did
    >>> from evaltoolkit.simulate.dgps import simulate_panel
    >>> df = simulate_panel(n_sites=4, teams_per_site=2, people_per_team=20, seed=2)
    >>> res = bayes_did(df, "y", "arm", "wave", "pid", treated="treated", draws=200, chains=2, seed=2)
    >>> shrinkage_plot(res).axes[0].get_xlabel()
    'effect (outcome units)'
    """
    if not result.level_effects:
        raise ValueError("the model has no grouping levels, so there is nothing to shrink")
    level = level or next(iter(result.level_effects))
    if level not in result.level_effects:
        raise ValueError(f"no level '{level}' (levels: {list(result.level_effects)})")
    tab = result.level_effects[level].copy()
    tab["n"] = tab["n_treated"] + tab["n_control"]
    tab = tab.sort_values("n", ascending=False).head(max_clusters).sort_values("mean")
    fig, ax = figure_and_axes(ax, width=7.0, height=max(2.5, 0.28 * len(tab) + 1.2))
    y = np.arange(len(tab))
    ax.errorbar(
        tab["mean"],
        y,
        xerr=[tab["mean"] - tab["hdi_lower"], tab["hdi_upper"] - tab["mean"]],
        fmt="o",
        color=PALETTE[0],
        ecolor=PALETTE[0],
        alpha=0.8,
        label="partially pooled (95% HDI)",
    )
    raw = tab["raw_estimate"].to_numpy()
    # privacy: a raw (unpooled) estimate is drawn only when each arm it uses has at least 10 people
    nt, nc = tab["n_treated"].to_numpy(), tab["n_control"].to_numpy()
    ok = np.isfinite(raw) & ((nt == 0) | (nt >= MIN_CELL)) & ((nc == 0) | (nc >= MIN_CELL))
    ax.scatter(raw[ok], y[ok], marker="x", color=PALETTE[1], label="raw (no pooling)", zorder=3)
    for yi, r, m in zip(y[ok], raw[ok], tab["mean"].to_numpy()[ok]):
        ax.annotate(
            "", xy=(m, yi), xytext=(r, yi), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8}
        )
    ax.axvline(result.estimate, color="0.3", ls="--", lw=1, label=f"overall effect {result.estimate:+.2f}")
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(tab["cluster"])
    ax.set_xlabel("effect (outcome units)")
    ax.set_title(f"Shrinkage of {level} effects towards the overall effect")
    ax.legend(fontsize=8, loc="best")
    return finish(fig, f"Raw and partially pooled effects of {len(tab)} {level} groups (from {tab['mean'].min():+.2f} "
                  f"to {tab['mean'].max():+.2f}), towards the overall effect {result.estimate:+.2f}.")  # fmt: skip


def posterior_plot(result: Any, *, bins: int = 60, ax: Any = None):
    """Posterior of the programme effect with its 95% HDI, the ROPE, zero and the prior.

    Parameters
    ----------
    result : BayesDiDResult or BayesOrdinalResult
    bins : int
        Histogram bins.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post = result.idata.posterior
    name = "effect" if "effect" in post else "effect_logodds"
    draws = _flat(result.idata, name)
    fig, ax = figure_and_axes(ax, width=7.0, height=3.6)
    ax.hist(draws, bins=bins, density=True, color=PALETTE[0], alpha=0.6, label="posterior")
    lo, hi = hdi(draws)
    ax.axvspan(lo, hi, color=PALETTE[0], alpha=0.12, label=f"95% HDI {lo:+.2f} to {hi:+.2f}")
    rope = getattr(result, "rope", math.nan)
    if name == "effect" and np.isfinite(rope) and rope > 0:
        ax.axvspan(-rope, rope, color=PALETTE[4], alpha=0.25, label=f"negligible (±{rope:.2g})")
    prior = getattr(result, "prior", {}) or {}
    mu, sd = prior.get("mu"), prior.get("sigma")
    if mu is not None and sd:
        xs = np.linspace(min(draws.min(), mu - 3 * sd), max(draws.max(), mu + 3 * sd), 300)
        xs = xs[(xs >= draws.min() - (hi - lo)) & (xs <= draws.max() + (hi - lo))]
        dens = np.exp(-0.5 * ((xs - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        ax.plot(xs, dens, color="0.35", ls=":", label=f"prior ({prior.get('name')})")
    ax.axvline(0, color="0.2", lw=0.8)
    p = float((draws > 0).mean())
    ax.set_title(f"{result.outcome}: P(effect > 0) = {100 * p:.0f}%")
    ax.set_xlabel("effect (outcome units)" if name == "effect" else "effect (log-odds)")
    ax.set_yticks([])
    ax.legend(fontsize=8)
    return finish(fig, f"Posterior of the effect on {result.outcome}: 95% HDI {lo:+.2f} to {hi:+.2f}; "
                  f"P(effect > 0) = {100 * p:.0f}%.")  # fmt: skip


def ppc_plot(result: Any, *, prob: float = 0.9, min_n: int = MIN_CELL, ax: Any = None):
    """Posterior predictive check: observed team-by-arm mean changes against their predictive intervals.

    A well-fitting model has about ``prob`` of the observed cell means inside their intervals; the
    share is printed in the title.

    Parameters
    ----------
    result : BayesDiDResult
    prob : float
        Predictive interval probability.
    min_n : int
        Cells describing fewer people are not drawn (privacy rule: no cells under 10 people).

    Returns
    -------
    matplotlib.figure.Figure
    """
    idata = result.idata
    if "posterior_predictive" not in idata.groups():
        raise ValueError("the result has no posterior predictive draws")
    rep = idata.posterior_predictive["cell_mean_change"].values
    rep = rep.reshape(-1, rep.shape[-1])
    obs = idata.observed_data["cell_mean_change"].values
    size = idata.observed_data["cell_size"].values
    keep = size >= min_n
    rep, obs, size = rep[:, keep], obs[keep], size[keep]
    if not keep.any():  # every cell describes fewer than min_n people: nothing may be drawn
        fig, ax = figure_and_axes(ax, width=7.0, height=1.6)
        ax.text(0.5, 0.5, f"Posterior predictive check not shown: every team-by-arm cell has fewer than {min_n} "
                "people.", ha="center", va="center", fontsize=9, wrap=True)  # fmt: skip
        ax.set_axis_off()
        return finish(fig, f"Posterior predictive check not shown: every cell has fewer than {min_n} people.")
    lo = np.quantile(rep, (1 - prob) / 2, axis=0)
    hi = np.quantile(rep, 1 - (1 - prob) / 2, axis=0)
    mid = np.median(rep, axis=0)
    order = np.argsort(mid)
    inside = float(((obs >= lo) & (obs <= hi)).mean())
    fig, ax = figure_and_axes(ax, width=7.0, height=3.8)
    x = np.arange(len(obs))
    ax.vlines(x, lo[order], hi[order], color="0.65", lw=2, label=f"{int(100 * prob)}% predictive interval")
    ax.scatter(
        x, obs[order], s=8 + 40 * size[order] / size.max(), color=PALETTE[1], zorder=3, label="observed"
    )
    hidden = int((~keep).sum())
    ax.set_xlabel(
        "team-by-arm cells (sorted by predicted mean change)"
        + (f"; {hidden} cells under {min_n} people not shown" if hidden else "")
    )
    ax.set_ylabel("mean change")
    ax.set_title(f"Posterior predictive check: {100 * inside:.0f}% of cells inside their interval")
    ax.legend(fontsize=8)
    return finish(fig, f"Posterior predictive check: {100 * inside:.0f}% of {len(obs)} team-by-arm cells lie inside "
                  f"their {int(100 * prob)}% predictive intervals (about {int(100 * prob)}% expected).")  # fmt: skip


def prior_sensitivity_plot(sensitivity: Any, *, ax: Any = None):
    """Posterior (mean and 95% HDI) under each prior, with the prior itself (mean ± 2 SD) in grey.

    Parameters
    ----------
    sensitivity : PriorSensitivityResult

    Returns
    -------
    matplotlib.figure.Figure
    """
    comp = sensitivity.comparison
    fig, ax = figure_and_axes(ax, width=7.0, height=0.7 * len(comp) + 1.6)
    y = np.arange(len(comp))[::-1]
    ax.errorbar(
        comp["prior_mean"],
        y + 0.18,
        xerr=2 * comp["prior_sd"],
        fmt="s",
        color="0.6",
        ecolor="0.75",
        label="prior (mean ± 2 SD)",
    )
    ax.errorbar(
        comp["posterior_mean"],
        y - 0.12,
        xerr=[comp["posterior_mean"] - comp["hdi_lower"], comp["hdi_upper"] - comp["posterior_mean"]],
        fmt="o",
        color=PALETTE[0],
        label="posterior (95% HDI)",
    )
    for yi, p in zip(y, comp["prob_positive"]):
        ax.text(
            1.01, yi, f"P(>0) = {100 * p:.0f}%", transform=ax.get_yaxis_transform(), va="center", fontsize=8
        )
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(comp["prior"])
    ax.set_xlabel("effect (outcome units)")
    ax.set_title("How much does the conclusion depend on the prior?")
    ax.legend(fontsize=8, loc="lower right")
    items = "; ".join(
        f"{r.prior}: {r.posterior_mean:+.2f} ({r.hdi_lower:+.2f} to {r.hdi_upper:+.2f}), P(>0) = {100 * r.prob_positive:.0f}%"
        for r in comp.itertuples(index=False)
    )
    return finish(fig, f"Posterior of the effect under each prior: {items}.")
