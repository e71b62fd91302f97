"""Sensitivity analyses: how strong a threat (unobserved confounding, non-parallel trends, attrition) would have
to be to change a conclusion."""
