"""Simulated studies from a design (``study``), for the demo, power and tests."""

from evaltoolkit._compat import forward_names

__all__ = ["SimulatedStudy", "simulate_study"]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.simulate.study", __all__)
