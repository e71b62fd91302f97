"""Scale scores (``scales``) and their reliability (``reliability``)."""

from evaltoolkit._compat import forward_names

__all__ = ["ScaleSpec", "ScoreResult", "keyed_items", "resolve_scales", "score"]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.scoring.scales", __all__)
