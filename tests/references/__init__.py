"""The reference registry shared by the tests and ``notebooks/06_method_validation.ipynb``.

``REFERENCES`` maps an id to a :class:`~references.registry.Reference` (what the number is, its source and
code, the published value, the tolerance, and a function computing evaltoolkit's value);
``reference_table()`` is the validation table. ``tests/`` is on ``sys.path`` under pytest, so tests import it
as ``from references import REFERENCES``; the notebook adds ``tests/`` to ``sys.path`` itself.
"""

from .registry import REFERENCES, Reference, check_registry, reference_table

__all__ = ["REFERENCES", "Reference", "check_registry", "reference_table"]
