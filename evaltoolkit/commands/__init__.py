"""Sub-commands of the ``evaltoolkit`` command line, one module per command group."""
