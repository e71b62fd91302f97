"""Standard errors, small-sample and few-cluster inference (``core``), fixed effects, multiple testing."""

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
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.inference.core", __all__)
