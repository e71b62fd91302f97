"""Simulation, in one package: whole studies from a design (``study``), small closed-form DGPs for tests and
benchmarks (``dgps``) and survey-platform exports (``exports``)."""
