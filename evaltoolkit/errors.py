"""Exceptions with plain-language messages.

Every error raised on purpose by evaltoolkit derives from :class:`EvalToolkitError`.
The CLI catches these and prints the message on one line (no traceback), so the
message must say *what* is wrong and *where* (file, column, row, field).

Examples
--------
>>> from evaltoolkit.errors import DataError
>>> str(DataError("value 7 is outside 1-5", file="wave1.csv", column="att_1", row=12))
"wave1.csv, column 'att_1', row 12: value 7 is outside 1-5"
"""

from __future__ import annotations


class EvalToolkitError(ValueError):
    """Base class for every deliberate evaltoolkit error.

    Parameters
    ----------
    message : str
        What is wrong, in plain words.
    file, column, row, field : optional
        Where it is wrong. Any that are given are prefixed to the message.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.column = column
        self.row = row
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.field:
            where.append(f"field '{self.field}'")
        if self.column:
            where.append(f"column '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


def file_row(index, pos: int) -> int:
    """The row of a data file a frame position came from: header on line 1, first data row on line 2.

    Used instead of quoting an identifier: no message ever carries a respondent's ID value.

    Examples
    --------
    >>> import pandas as pd
    >>> file_row(pd.RangeIndex(5), 3)
    5
    """
    label = index[pos]
    is_int = isinstance(label, int) or type(label).__name__.startswith(("int", "uint"))
    return int(label) + 2 if is_int and index.is_unique else pos + 2


class DesignError(EvalToolkitError):
    """A design (analysis plan) file or design parameter is invalid."""


class InstrumentError(EvalToolkitError):
    """An instrument definition is invalid or cannot be found."""


class DataError(EvalToolkitError):
    """Survey data do not fit what the design or instrument expects."""


class EstimationError(EvalToolkitError):
    """A model cannot be estimated (too few clusters, no variation, non-convergence...)."""


class UsageError(EvalToolkitError):
    """The command or call asks for something that cannot be done safely (e.g. writing over an input file)."""


class AnalysisFailed(EvalToolkitError):
    """The report was written, but the design's primary analysis could not be completed (CLI exit status 1)."""


class StrictStop(DataError):
    """``--strict`` found values it would otherwise set to missing with a caution (CLI exit status 1)."""


class EvalToolkitWarning(UserWarning):
    """Warnings a user should read (few clusters, weak overlap, low reliability...)."""
