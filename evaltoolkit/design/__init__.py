"""Study designs: the YAML schema (``schema``) and a study bound to its data (``study``)."""

from evaltoolkit._compat import forward_names

__all__ = [
    "Analysis",
    "Arms",
    "Columns",
    "Design",
    "Outcome",
    "SimConstruct",
    "Simulation",
    "Wave",
    "list_designs",
    "load_design",
]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.design.schema", __all__)
