"""Old (0.1) import paths, kept working for one release with a :class:`DeprecationWarning`.

In 0.1 every module sat in one flat folder (``evaltoolkit/did.py``, ``evaltoolkit/inference.py``...).
0.2 groups them into workflow-shaped subpackages (see ``ARCHITECTURE.md``). Two mechanisms keep old code
running:

* :data:`MOVED` maps each old module path to its new home. :class:`_MovedFinder`, put first on
  :data:`sys.meta_path` when ``evaltoolkit`` is imported, answers ``import evaltoolkit.did`` with the module
  ``evaltoolkit.estimators.did`` itself (one module object, so classes compare equal and monkeypatching the old
  name patches the new module) and warns once per old path.
* Where an old module became a package of the same name (``evaltoolkit.inference``, ``evaltoolkit.design``...),
  the package forwards the old module's names with :func:`forward_names`: the names in the package's
  ``__all__`` are its public face, any other name of the old module still resolves but warns.

Nothing here imports pandas or any other heavy dependency: ``import evaltoolkit`` stays fast.

Examples
--------
>>> import importlib, warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", DeprecationWarning)
...     old = importlib.import_module("evaltoolkit.multiple")
>>> old.__name__
'evaltoolkit.inference.multiple'
>>> old is importlib.import_module("evaltoolkit.inference.multiple")
True
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable, Iterable
from importlib import import_module
from types import ModuleType
from typing import Any

#: old module path (0.1) -> new module path (0.2); removed in 0.3
MOVED: dict[str, str] = {
    "evaltoolkit.tabular": "evaltoolkit.io.readers",
    "evaltoolkit.questionnaire": "evaltoolkit.instruments.export",
    "evaltoolkit.validation": "evaltoolkit.intake.report",
    "evaltoolkit.reliability": "evaltoolkit.scoring.reliability",
    "evaltoolkit.study": "evaltoolkit.design.study",
    "evaltoolkit.fixed_effects": "evaltoolkit.inference.fixed_effects",
    "evaltoolkit.multiple": "evaltoolkit.inference.multiple",
    "evaltoolkit.did": "evaltoolkit.estimators.did",
    "evaltoolkit.ancova": "evaltoolkit.estimators.ancova",
    "evaltoolkit.moderation": "evaltoolkit.estimators.moderation",
    "evaltoolkit.attrition": "evaltoolkit.estimators.attrition",
    "evaltoolkit.balance": "evaltoolkit.estimators.balance",
    "evaltoolkit.multilevel": "evaltoolkit.estimators.multilevel",
    "evaltoolkit.meta": "evaltoolkit.estimators.meta",
    "evaltoolkit.propensity": "evaltoolkit.estimators.weighting",
    "evaltoolkit.mediation": "evaltoolkit.estimators.mediation.paths",
    "evaltoolkit.causal_mediation": "evaltoolkit.estimators.mediation.causal",
    "evaltoolkit.bayes": "evaltoolkit.estimators.bayes.did",
    "evaltoolkit.bayes_ordinal": "evaltoolkit.estimators.bayes.ordinal",
    "evaltoolkit.priors": "evaltoolkit.estimators.bayes.priors",
    "evaltoolkit.figures": "evaltoolkit.plots",
    "evaltoolkit.bayes_plots": "evaltoolkit.plots.bayes",
    "evaltoolkit.mediation_plots": "evaltoolkit.plots.mediation",
    "evaltoolkit.analysis": "evaltoolkit.plan.run",
    "evaltoolkit.analysis_runners": "evaltoolkit.plan.runners",
    "evaltoolkit.pooling": "evaltoolkit.plan.pool",
    "evaltoolkit.power": "evaltoolkit.plan.power",
    "evaltoolkit.report_tables": "evaltoolkit.report.tables",
    "evaltoolkit.commands": "evaltoolkit.cli",
    "evaltoolkit.commands.common": "evaltoolkit.cli.common",
    "evaltoolkit.commands.instruments_cmd": "evaltoolkit.cli.instruments",
    "evaltoolkit.commands.intake_cmd": "evaltoolkit.cli.intake",
}

#: names that moved out of a module (module -> name -> new module); removed in 0.3
MOVED_NAMES: dict[str, dict[str, str]] = {
    "evaltoolkit.estimators.bayes.priors": {
        "contact_meta_analysis": "evaltoolkit.estimators.meta",
        "prior_plot": "evaltoolkit.plots.priors",
    },
    # estimators do not draw: their figures moved to the plotting layer
    "evaltoolkit.estimators.meta": {
        "forest_plot": "evaltoolkit.plots.forest",
        "funnel_plot": "evaltoolkit.plots.meta",
    },
    "evaltoolkit.estimators.balance": {"love_plot": "evaltoolkit.plots.balance"},
    "evaltoolkit.estimators.attrition": {"consort_figure": "evaltoolkit.plots.flow"},
    "evaltoolkit.estimators.moderation": {"moderation_plot": "evaltoolkit.plots.moderation"},
    "evaltoolkit.plots": {"figure_to_html": "evaltoolkit.report.embed"},
    "evaltoolkit.plan.pool": {"pooled_context": "evaltoolkit.report.pooled"},
    # simulators live in evaltoolkit.simulate
    "evaltoolkit.estimators.bayes.did": {"simulate_panel": "evaltoolkit.simulate.dgps"},
    "evaltoolkit.estimators.bayes.ordinal": {"simulate_likert": "evaltoolkit.simulate.dgps"},
    "evaltoolkit.instruments.export": {"simulate_kobo_export": "evaltoolkit.simulate.exports"},
}

_WARNED: set[str] = set()


def _warn(old: str, new: str) -> None:
    if old in _WARNED:
        return
    _WARNED.add(old)
    warnings.warn(
        f"{old} moved to {new} in evaltoolkit 0.2; the old path works until 0.3. Import from {new} instead.",
        DeprecationWarning,
        stacklevel=4,
    )


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self._real_spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(self.old, self.new)
        module = import_module(self.new)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system overwrote __spec__ with the old name's spec; give the module its own back
        module.__spec__ = self._real_spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Resolve old 0.1 module paths to the moved modules (see :data:`MOVED`)."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        is_package = new in ("evaltoolkit.cli", "evaltoolkit.plots")
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader(fullname, new), is_package=is_package)


def install() -> None:
    """Put the finder for old module paths first on :data:`sys.meta_path` (idempotent).

    First, because ``evaltoolkit.commands`` resolves to the ``evaltoolkit.cli`` package, whose ``__path__``
    would otherwise let the path finder load a second copy of ``cli/common.py`` as ``evaltoolkit.commands.common``.
    It only answers for the names in :data:`MOVED`, none of which is a real module any more.
    """
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())


def forward_names(
    package: str, target: str, public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__``/``__dir__`` for a package that replaced a 0.1 module of the same name.

    Names in ``public`` are served from ``target`` (imported on first use, so importing the package stays
    cheap); any other public-looking name of ``target`` still resolves, with a :class:`DeprecationWarning`.
    """
    public = tuple(public)

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        module = import_module(target)
        try:
            value = getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        if name not in public:
            _warn(f"{package}.{name}", f"{target}.{name}")
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__


def moved_names(module: str) -> Callable[[str], Any]:
    """Module ``__getattr__`` serving the names listed for ``module`` in :data:`MOVED_NAMES`, with a warning.

    The new module is imported by name at call time: the old home does not depend on the new one.
    """
    table = MOVED_NAMES[module]

    def __getattr__(name: str) -> Any:
        new = table.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        _warn(f"{module}.{name}", f"{new}.{name}")
        return getattr(import_module(new), name)

    return __getattr__


def moved_method(obj: Any, name: str, module: str, **kwargs: Any) -> Any:
    """Call ``module.name(obj, **kwargs)`` for a 0.1 convenience method whose function moved, with a warning."""
    owner = f"{type(obj).__module__}.{type(obj).__name__}.{name}()"
    _warn(owner, f"{module}.{name}(result)")
    return getattr(import_module(module), name)(obj, **kwargs)
