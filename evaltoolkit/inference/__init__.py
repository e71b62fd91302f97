"""Inference: the numerical core (``core``: OLS, CR1/CR2, Satterthwaite, wild cluster bootstrap), the policy
that decides, applies and describes it (``policy``: :func:`~evaltoolkit.inference.policy.infer` and every
threshold), fixed effects and multiple testing."""

from typing import Any

from evaltoolkit._compat import forward_names

__all__ = [
    "FEW_CLUSTERS",
    "VCOV_TYPES",
    "VERY_FEW_CLUSTERS",
    "OLSFit",
    "choose_inference",
    "cluster_scores",
    "coef_test",
    "ols",
    "satterthwaite_df",
    "vcov",
    "wild_cluster_bootstrap",
]
_POLICY = {"FEW_CLUSTERS", "VERY_FEW_CLUSTERS", "choose_inference"}
_core_getattr, __dir__ = forward_names(__name__, "evaltoolkit.inference.core", __all__)
_policy_getattr, _ = forward_names(__name__, "evaltoolkit.inference.policy", __all__)


def __getattr__(name: str) -> Any:
    return (_policy_getattr if name in _POLICY else _core_getattr)(name)
