"""The report: HTML rendering (``render``), estimate tables (``tables``) and the template."""

from evaltoolkit._compat import forward_names

__all__ = ["METHODS", "evidence_strength", "render_context", "render_html", "report_context", "write_report"]
__getattr__, __dir__ = forward_names(__name__, "evaltoolkit.report.render", __all__)
