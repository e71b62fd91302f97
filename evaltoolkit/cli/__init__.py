"""The ``evaltoolkit`` command line (typer): ``app`` and one module per command group."""

from evaltoolkit._compat import forward_names

__all__ = ["app", "main"]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.cli.app", __all__)
