"""Simulation, in one package: whole studies from a design (``study``), small closed-form DGPs for tests and
benchmarks (``dgps``) and survey-platform exports (``exports``)."""

from evaltoolkit._compat import forward_names

__all__ = ["SimulatedStudy", "simulate_study"]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.simulate.study", __all__)
