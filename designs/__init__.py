"""Bundled design library (YAML analysis plans); located with importlib.resources."""
