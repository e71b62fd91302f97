"""Survey exports in: reading and cleaning waves (``read``) and the data-quality report (``report``)."""

from evaltoolkit._compat import forward_names

__all__ = ["FORMATS", "IntakeResult", "read_responses", "read_waves"]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.intake.read", __all__)
