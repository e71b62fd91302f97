"""Bayesian models: difference-in-differences (``did``), ordinal outcomes (``ordinal``), priors."""
