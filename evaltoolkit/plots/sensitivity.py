"""Sensitivity figures: how the conclusion changes under a threat (unobserved confounding, ...).

* :func:`confounding_contour_plot` - the adjusted estimate (or its interval limit, or t) over the strength of an
  unobserved confounder, with the observed covariates' benchmarks marked (Cinelli & Hazlett 2020, figure 2;
  sensemakr's ``ovb_contour_plot``).
"""

from __future__ import annotations

import numpy as np

from evaltoolkit.errors import DataError, UsageError
from evaltoolkit.estimators.sensitivity.ovb import OVBSensitivity
from evaltoolkit.plots.style import PALETTE, figure_and_axes, finish

__all__ = ["confounding_contour_plot"]

_OF = {
    "estimate": ("estimate", "adjusted estimate"),
    "lower": ("ci_lower", "lower limit of the adjusted interval"),
    "upper": ("ci_upper", "upper limit of the adjusted interval"),
    "t": ("t_value", "adjusted t"),
}


def confounding_contour_plot(
    result: OVBSensitivity,
    *,
    sensitivity_of: str = "estimate",
    threshold: float | None = None,
    lim: float | None = None,
    n_grid: int = 151,
    title: str | None = None,
    ax=None,
):
    """Contours of the adjusted estimate over the confounder's partial R-squareds, benchmarks marked.

    The horizontal axis is the confounder's partial R-squared with the treatment (``R2_{D~Z|X}``), the vertical
    its partial R-squared with the outcome (``R2_{Y~Z|D,X}``); each contour joins confounders that would leave
    the same adjusted value (:meth:`OVBSensitivity.adjusted`). The dashed red contour is ``threshold`` (0 for
    the estimate and the limits, the critical t for ``"t"``): confounders beyond it change the conclusion. Each
    benchmark bound (``result.bounds``) is a red diamond labelled with its adjusted value; the unadjusted
    estimate is the black triangle at the origin.

    Parameters
    ----------
    result : OVBSensitivity
        From :func:`~evaltoolkit.estimators.sensitivity.ovb.ovb_sensitivity` (or ``ovb_did`` / ``ovb_ancova``).
    sensitivity_of : {"estimate", "lower", "upper", "t"}
    threshold : float, optional
    lim : float, optional
        Upper limit of both axes (default: 0.4, or beyond the largest benchmark).
    n_grid : int
        Grid points per axis.
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    sensemakr's darfur contour plot (Cinelli & Hazlett 2020, figure 3a): the 1x/2x/3x female bounds at
    adjusted estimates 0.075, 0.053 and 0.030:

    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from evaltoolkit.estimators.sensitivity.ovb import ovb_formula
    >>> darfur = pd.read_csv(Path(__file__).parents[2] / "tests" / "data" / "darfur.csv")
    >>> s = ovb_formula(darfur, "peacefactor ~ directlyharmed + age + farmer_dar + herder_dar + pastvoted"
    ...                 " + hhsize_darfur + female + C(village)", "directlyharmed",
    ...                 benchmarks=["female"], kd=[1, 2, 3], vcov="classical")
    >>> from evaltoolkit.plots.style import describe
    >>> describe(confounding_contour_plot(s)).split(";")[1].strip()
    'a confounder 1x as strong as female: 0.075, 2x: 0.053, 3x: 0.03'
    """
    if not isinstance(result, OVBSensitivity):
        raise DataError(
            "confounding_contour_plot needs the result of ovb_sensitivity() (or ovb_did / ovb_ancova)"
        )
    if sensitivity_of not in _OF:
        raise UsageError(f"sensitivity_of must be one of {', '.join(_OF)}, not {sensitivity_of!r}")
    key, what = _OF[sensitivity_of]
    if threshold is None:
        threshold = result.t_critical if key == "t_value" else 0.0
    b = result.bounds
    if lim is None:
        top = float(np.nanmax(b[["r2dz_x", "r2yz_dx"]].to_numpy())) if len(b) else 0.0
        lim = min(0.99, max(0.4, top + 0.1))
    grid = np.linspace(0.0, lim, n_grid)
    r2d, r2y = np.meshgrid(grid, grid)
    z = result.adjusted(r2d, r2y)[key]
    fig, ax = figure_and_axes(ax, width=6.0, height=5.0)
    cs = ax.contour(
        r2d, r2y, z, levels=_levels(z, threshold), colors="0.35", linewidths=0.8, linestyles="solid"
    )
    ax.clabel(cs, inline=True, fontsize=7, fmt="%.3g")
    if np.nanmin(z) < threshold < np.nanmax(z):
        ct = ax.contour(r2d, r2y, z, levels=[threshold], colors=PALETTE[1], linewidths=1.6, linestyles="--")
        ax.clabel(ct, inline=True, fontsize=8, fmt=f"{threshold:.3g}")
    start = float(result.adjusted(0.0, 0.0)[key])
    ax.plot([0], [0], marker="^", color="black", markersize=8, clip_on=False, linestyle="none")
    ax.annotate(f"Unadjusted ({start:.3g})", (0, 0), xytext=(6, 6), textcoords="offset points", fontsize=8)
    labels = []
    for row in b.itertuples():
        val = float(result.adjusted(row.r2dz_x, row.r2yz_dx)[key])
        ax.plot([row.r2dz_x], [row.r2yz_dx], marker="D", color=PALETTE[1], markersize=6, linestyle="none")
        ax.annotate(f"{row.bound_label} ({val:.3g})", (row.r2dz_x, row.r2yz_dx), xytext=(6, -10),
                    textcoords="offset points", fontsize=8, color=PALETTE[1])  # fmt: skip
        labels.append((row.bound_label, val))
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("Partial R² of the confounder with the treatment")
    ax.set_ylabel("Partial R² of the confounder with the outcome")
    ax.set_title(title or f"Sensitivity of the {what} for {result.treatment} to unobserved confounding")
    return finish(fig, _description(result, what, start, threshold, labels))


def _levels(z: np.ndarray, threshold: float) -> np.ndarray:
    """About ten round contour levels over the surface, without the threshold (drawn on its own)."""
    finite = z[np.isfinite(z)]
    from matplotlib.ticker import MaxNLocator

    levels = MaxNLocator(nbins=10).tick_values(float(finite.min()), float(finite.max()))
    return levels[~np.isclose(levels, threshold)]


def _description(result: OVBSensitivity, what: str, start: float, threshold: float, labels) -> str:
    """The figure's alt text: the unadjusted value, each benchmark's adjusted value, the robustness value."""
    parts = [f"Contours of the {what} for {result.treatment} (unadjusted {start:.3g}) over the partial R-squareds "
             "of an unobserved confounder with the treatment and with the outcome"]  # fmt: skip
    if labels:
        first = f"a confounder {labels[0][0].split(' ', 1)[0]} as strong as {labels[0][0].split(' ', 1)[1]}: {labels[0][1]:.2g}"
        parts.append(", ".join([first, *(f"{lab.split(' ', 1)[0]}: {v:.2g}" for lab, v in labels[1:])]))
    parts.append(f"confounders explaining more than {100 * result.rv_q:.1f}% of both bring the estimate to zero; "
                 f"the dashed line marks {threshold:.3g}.")  # fmt: skip
    return "; ".join(parts)
