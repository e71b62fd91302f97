"""The plotting layer: every figure of the toolkit, in one place and one idiom.

Each function takes a result or a table first, options by keyword, and ``ax=None``, and returns a
:class:`matplotlib.figure.Figure` (see :mod:`evaltoolkit.plots.style`). Plots may read estimator results;
estimators never draw. Names load on first use, so ``import evaltoolkit.plots`` does not import matplotlib.

Examples
--------
>>> from evaltoolkit import plots
>>> plots.forest_plot.__module__
'evaltoolkit.plots.forest'
"""

from importlib import import_module
from typing import Any

from evaltoolkit import _compat

#: public plot name -> module of evaltoolkit.plots that defines it
_WHERE: dict[str, str] = {
    "PALETTE": "style",
    "drop_unbounded": "style",
    "figure_and_axes": "style",
    "new_figure": "style",
    "finish": "style",
    "describe": "style",
    "renderer_of": "style",
    "forest_plot": "forest",
    "funnel_plot": "meta",
    "means_plot": "means",
    "event_study_plot": "means",
    "love_plot": "balance",
    "consort_figure": "flow",
    "moderation_plot": "moderation",
    "prior_plot": "priors",
    "shrinkage_plot": "bayes",
    "posterior_plot": "bayes",
    "ppc_plot": "bayes",
    "prior_sensitivity_plot": "bayes",
    "path_diagram": "mediation",
    "indirect_effects_plot": "mediation",
    "sensitivity_plot": "mediation",
    "confounding_contour_plot": "sensitivity",
    "honest_bounds_plot": "trends",
}

__all__ = sorted(_WHERE)
_moved = _compat.moved_names(__name__)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        return _moved(name)
    return getattr(import_module(f"{__name__}.{where}"), name)


def __dir__() -> list[str]:
    return __all__
