"""evaltoolkit: evaluate social-mixing (contact theory) interventions.

Instruments -> intake -> scoring -> design -> estimators (with inference) -> plan ->
report, one subpackage per step; ``ARCHITECTURE.md`` has the map and the dependency rule.

Public functions are loaded lazily (PEP 562), so ``import evaltoolkit`` and the
CLI's ``--help`` stay fast: pandas, statsmodels, PyMC and matplotlib are only
imported when a function that needs them is first used.

Examples
--------
>>> import evaltoolkit as et
>>> design = et.load_design("ncs_prepost_control")
>>> sim = et.simulate_study(design, n=600, seed=1)
>>> res = et.did(sim.data, outcome="attitudes", arm="arm", wave="wave",
...              treated="ncs", control="control", pre="baseline", post="post",
...              cluster="team", unit="pid")
>>> truth = sim.true_effect("attitudes", "post")  # about 0.17; the estimate's SE is about 0.07
>>> bool(abs(res.estimate - truth) < 4 * res.std_error)
True
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

from evaltoolkit import _compat

__version__ = "0.1.0"

_compat.install()  # old 0.1 module paths (evaltoolkit.did, ...) keep working, with a DeprecationWarning

#: public name -> module that defines it (imported on first use)
_LAZY: dict[str, str] = {
    # instruments, intake, scoring
    "list_instruments": "evaltoolkit.instruments.library",
    "load_instrument": "evaltoolkit.instruments.library",
    "read_responses": "evaltoolkit.intake.read",
    "read_waves": "evaltoolkit.intake.read",
    "score": "evaltoolkit.scoring.scales",
    "reliability": "evaltoolkit.scoring.reliability",
    "cronbach_alpha": "evaltoolkit.scoring.reliability",
    "omega_total": "evaltoolkit.scoring.reliability",
    # designs and studies
    "load_design": "evaltoolkit.design.schema",
    "list_designs": "evaltoolkit.design.schema",
    "Design": "evaltoolkit.design.schema",
    "Study": "evaltoolkit.design.study",
    "design_from": "evaltoolkit.plan.draft",
    "simulate_study": "evaltoolkit.simulate.study",
    "simulate_exports": "evaltoolkit.simulate.surveys",
    "run_plan": "evaltoolkit.plan.run",
    # estimators
    "did": "evaltoolkit.estimators.did",
    "ancova": "evaltoolkit.estimators.ancova",
    "mediation": "evaltoolkit.estimators.mediation.paths",
    "multilevel": "evaltoolkit.estimators.multilevel",
    "bayes_did": "evaltoolkit.estimators.bayes.did",
    "power": "evaltoolkit.plan.power",
    "diagnose": "evaltoolkit.plan.diagnose",
    "meta_analysis": "evaltoolkit.estimators.meta",
    "causal_mediation": "evaltoolkit.estimators.mediation.causal",
    "mediation_sensitivity": "evaltoolkit.estimators.mediation.causal",
    "attrition": "evaltoolkit.estimators.attrition",
    "moderation": "evaltoolkit.estimators.moderation",
    "icc": "evaltoolkit.estimators.multilevel",
    # results and report
    "EffectResult": "evaltoolkit.results",
    "write_report": "evaltoolkit.report.render",
    "etable": "evaltoolkit.report.etable",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evaltoolkit' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _PublicAPI(types.ModuleType):
    """Keep public functions bound when a submodule of the same name is imported.

    In 0.1 several functions lived in a module of the same name (``evaltoolkit/did.py`` defined ``did``).
    Their modules now live in subpackages (``evaltoolkit.estimators.did``), but the old paths still import
    (see :mod:`evaltoolkit._compat`), and importing one would normally rebind ``evaltoolkit.did`` to the
    module; here the function stays bound, so ``et.did(...)`` always works.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _LAZY and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PublicAPI
