"""evaltoolkit: evaluate social-mixing (contact theory) interventions.

Instruments -> intake and validation -> scoring and reliability -> design and
study -> estimators -> results -> report.

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

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first use)
_LAZY: dict[str, str] = {
    # instruments, intake, scoring
    "list_instruments": "evaltoolkit.instruments",
    "load_instrument": "evaltoolkit.instruments",
    "read_responses": "evaltoolkit.intake",
    "read_waves": "evaltoolkit.intake",
    "score": "evaltoolkit.scoring",
    "reliability": "evaltoolkit.reliability",
    "cronbach_alpha": "evaltoolkit.reliability",
    "omega_total": "evaltoolkit.reliability",
    # designs and studies
    "load_design": "evaltoolkit.design",
    "list_designs": "evaltoolkit.design",
    "Design": "evaltoolkit.design",
    "Study": "evaltoolkit.study",
    "simulate_study": "evaltoolkit.simulate",
    # estimators
    "did": "evaltoolkit.did",
    "ancova": "evaltoolkit.ancova",
    "mediation": "evaltoolkit.mediation",
    "multilevel": "evaltoolkit.multilevel",
    "bayes_did": "evaltoolkit.bayes",
    "power": "evaltoolkit.power",
    "meta_analysis": "evaltoolkit.meta",
    "causal_mediation": "evaltoolkit.causal_mediation",
    "mediation_sensitivity": "evaltoolkit.causal_mediation",
    "attrition": "evaltoolkit.attrition",
    "moderation": "evaltoolkit.moderation",
    "icc": "evaltoolkit.multilevel",
    # results and report
    "EffectResult": "evaltoolkit.results",
    "write_report": "evaltoolkit.report",
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

    Several functions live in a module of the same name (``evaltoolkit.did.did``,
    ``evaltoolkit.power.power``...). Importing such a submodule would normally rebind
    ``evaltoolkit.did`` to the module; here the function stays bound, so ``et.did(...)`` always works.
    Use ``from evaltoolkit.did import DiDResult`` for other names in those modules.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__ and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PublicAPI
