"""The plotting layer's contract (issue 11): one place, one signature, estimators never draw.

Like CausalPy's ``test_public_plot_signatures.py``: every public plot takes its result or table first, every
option by keyword, and ``ax=None``; and no estimator module imports matplotlib.
"""

from __future__ import annotations

import ast
import inspect
from importlib import import_module
from pathlib import Path

import pandas as pd
import pytest

from evaltoolkit import plots

PKG = Path(__file__).resolve().parents[1] / "evaltoolkit"
HELPERS = {"PALETTE", "describe", "drop_unbounded", "figure_and_axes", "finish", "new_figure", "renderer_of"}
PLOTS = sorted(set(plots.__all__) - HELPERS)


@pytest.mark.parametrize("name", PLOTS)
def test_plot_signature(name):
    fn = getattr(plots, name)
    params = list(inspect.signature(fn).parameters.values())
    assert "ax" in inspect.signature(fn).parameters, f"{name} must accept ax="
    assert params[-1].name == "ax" and params[-1].default is None
    if name == "prior_plot":  # draws the priors themselves: no result to take
        return
    first, rest = params[0], params[1:]
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), (
        f"{name}: options must be keyword-only"
    )


def test_every_plot_module_is_listed():
    modules = {p.stem for p in (PKG / "plots").glob("*.py")} - {"__init__"}
    assert modules == set(plots._WHERE.values())


def test_estimators_do_not_import_matplotlib():
    offenders = []
    for path in (PKG / "estimators").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(PKG)}: {n}" for n in names if n.split(".")[0] == "matplotlib"]
    assert not offenders


def test_ax_draws_on_the_given_axes():
    from evaltoolkit.plots.style import new_figure

    fig, (left, right) = new_figure(1, 2)
    tab = pd.DataFrame(
        {"label": ["a", "b"], "estimate": [0.1, 0.3], "ci_lower": [0.0, 0.1], "ci_upper": [0.2, 0.5]}
    )
    out = plots.forest_plot(tab, ax=right)
    assert out is fig and len(right.get_lines()) > 0 and len(left.get_lines()) == 0


def test_moved_plot_names_still_resolve_from_their_0_1_homes():
    from evaltoolkit import _compat

    _compat._WARNED.difference_update(
        {"evaltoolkit.estimators.meta.forest_plot", "evaltoolkit.plots.figure_to_html"}
    )
    meta = import_module("evaltoolkit.estimators.meta")
    with pytest.warns(DeprecationWarning, match="evaltoolkit.plots.forest"):
        assert meta.forest_plot is plots.forest_plot
    with pytest.warns(DeprecationWarning, match="evaltoolkit.report.embed"):
        assert callable(plots.figure_to_html)
