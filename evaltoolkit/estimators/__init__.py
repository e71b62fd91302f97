"""Estimators: difference-in-differences, ANCOVA, moderation, attrition, balance, weighting,
multilevel models, meta-analysis, mediation (``mediation/``) and Bayesian models (``bayes/``)."""
