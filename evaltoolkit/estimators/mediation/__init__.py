"""Mediation: product-of-paths (``paths``) and causal mediation with sensitivity (``causal``)."""
