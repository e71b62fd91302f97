"""Survey instruments: the YAML library (``library``) and questionnaire export (``export``)."""

from evaltoolkit._compat import forward_names

__all__ = [
    "VERIFIED_MARKS",
    "Instrument",
    "Item",
    "ResponseScale",
    "Scale",
    "Section",
    "Verified",
    "library_path",
    "list_instruments",
    "load_instrument",
    "load_instruments",
]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.instruments.library", __all__)
