"""Bundled instrument library (YAML files); located with importlib.resources."""
