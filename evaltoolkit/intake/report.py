"""The validation report returned by :func:`evaltoolkit.read_responses`.

Every problem found while reading a survey export is one row of
:attr:`ValidationReport.issues`, with the file, the column, the row (as the user sees
it: the spreadsheet row number for CSV/Excel, where the header is row 1; the case
number for SPSS/Stata), the offending value, the problem and its severity:

``error``
    a value or row that cannot be used as it is (it was set to NA, or the row needs a
    decision): out-of-range values, unknown labels, wrong types, duplicate or missing IDs.
``warning``
    something that may be fine but must be checked: an item column that is absent, a
    follow-up ID never seen at baseline, value labels in the file that differ from the instrument.
``info``
    a note for the audit trail: blank rows removed, extra columns kept, encoding guessed,
    Qualtrics header rows skipped.

Problem names are stable strings (see :data:`PROBLEMS`) so reports can be filtered.

Examples
--------
>>> rep = ValidationReport(file="w1.csv", n_rows_in=3, n_rows_out=3)
>>> rep.add("w1.csv", "att_1", 2, 7, "out of range", "error", "allowed 1-5; set to NA")
>>> rep.ok
False
>>> rep.issues[["column", "row", "value", "problem"]].values.tolist()
[['att_1', 2, '7', 'out of range']]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evaltoolkit.io.outputs import write_csv

__all__ = ["ISSUE_COLUMNS", "PROBLEMS", "SEVERITIES", "ValidationReport"]

#: Columns of :attr:`ValidationReport.issues`.
ISSUE_COLUMNS: tuple[str, ...] = ("file", "column", "row", "value", "problem", "severity", "detail")

#: Severity levels, most serious first.
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")

#: Problem names and what they mean (also the order in which strict mode checks them).
PROBLEMS: dict[str, str] = {
    "encoding": "the file is not UTF-8; it was decoded with another encoding",
    "header rows": "extra header rows (Qualtrics question text / import ids) were skipped",
    "duplicate column": "two columns map to the same item, or a column name is repeated",
    "missing id column": "the ID column was not found; ID checks were skipped",
    "missing wave column": "the wave column was not found; wave checks were skipped",
    "missing column": "an item of the instruments has no column; it was added as all-NA",
    "empty column": "an item column without a single answer",
    "extra column": "a column that is not an item of the instruments; kept unchanged",
    "value labels": "the file's value labels differ from the instrument's labels",
    "identifier": "a column (or cells) that identify people; left out of the data unless asked to keep it",
    "test response": "a Qualtrics preview, test or spam response; left out",
    "unfinished response": "a response whose respondent did not finish; left out",
    "select multiple": "a Kobo select_multiple question; written as one 0/1 column per choice",
    "decoded labels": "codes or labels of a design column read as the design's names",
    "blank row": "a row with no values at all; removed",
    "wrong type": "a value of the wrong type (text or a date in a numeric item); set to NA",
    "unknown label": "text that is not a label of the item's response scale; set to NA",
    "out of range": "a number that is not a valid answer code or lies outside the range; set to NA",
    "missing id": "a row without an ID",
    "unknown wave": "a wave value that the design does not list",
    "unknown arm": "an arm value that the design does not list",
    "duplicate id": "the same ID more than once in a wave",
    "unmatched follow-up id": "an ID at a follow-up wave that was never seen at baseline",
    "id format": "follow-up IDs that match baseline IDs only once their format is ignored (prefix, zeros)",
}


@dataclass
class ValidationReport:
    """Every problem found while reading and validating one or more survey exports.

    Attributes
    ----------
    file : str
        The file (or files, comma-separated) that were read.
    n_rows_in : int
        Data rows in the file(s), blank rows included (header rows excluded).
    n_rows_out : int
        Rows in the cleaned data. ``n_rows_in - n_rows_out`` rows were removed; each is an
        issue row (``blank row`` or a removed duplicate).
    recodes : DataFrame
        Per item column: ``column, n_values, n_labels_recoded, n_missing_codes, n_set_na`` -
        how many answers were given as labels and recoded to codes, how many were missing codes
        (e.g. -99 "Don't know") turned into NA, and how many invalid values were set to NA.
    notes : list of str
        How the file was read (format, encoding, delimiter, header rows).
    """

    file: str = ""
    n_rows_in: int = 0
    n_rows_out: int = 0
    recodes: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["column", "n_values", "n_labels_recoded", "n_missing_codes", "n_set_na"]
        )
    )
    notes: list[str] = field(default_factory=list)
    #: wave linking (:func:`~evaltoolkit.intake.read.read_waves`): per wave ``wave, file, rows, ids, linked,
    #: unmatched, duplicates, format_differs`` (counts; no ID values)
    links: pd.DataFrame | None = None
    _parts: list[pd.DataFrame] = field(default_factory=list, repr=False)
    _cache: pd.DataFrame | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ building
    def add(
        self,
        file: str,
        column: str | None,
        row: int | None,
        value: Any,
        problem: str,
        severity: str,
        detail: str = "",
    ) -> None:
        """Record one problem."""
        self.add_many(file, column, [row], [value], problem, severity, detail)

    def add_many(
        self,
        file: str,
        column: str | None,
        rows: Sequence[int | None] | Any,
        values: Sequence[Any] | Any,
        problem: str,
        severity: str,
        detail: str = "",
    ) -> None:
        """Record the same problem for many rows of one column (vectorised)."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        rows = list(rows)
        if not rows:
            return
        from evaltoolkit.intake.identifiers import mask_value

        vals = ["" if _isna(v) else mask_value(str(v)) for v in values]  # never a phone number or an e-mail
        part = pd.DataFrame(
            {
                "file": file,
                "column": column if column is not None else "",
                "row": pd.array(rows, dtype="Int64"),
                "value": vals,
                "problem": problem,
                "severity": severity,
                "detail": detail,
            }
        )
        self._parts.append(part)
        self._cache = None

    def extend(self, other: ValidationReport) -> None:
        """Append another report's issues and counts (used when several files are read)."""
        self._parts.extend(other._parts)
        self._cache = None
        self.n_rows_in += other.n_rows_in
        self.n_rows_out += other.n_rows_out
        self.recodes = (
            pd.concat([self.recodes, other.recodes], ignore_index=True)
            if len(other.recodes)
            else self.recodes
        )
        self.notes.extend(other.notes)
        self.file = ", ".join(x for x in (self.file, other.file) if x)

    # ------------------------------------------------------------------ reading
    @property
    def issues(self) -> pd.DataFrame:
        """One row per problem: ``file, column, row, value, problem, severity, detail``."""
        if self._cache is None:
            if self._parts:
                df = pd.concat(self._parts, ignore_index=True)
            else:
                df = pd.DataFrame(
                    {c: pd.Series(dtype="Int64" if c == "row" else object) for c in ISSUE_COLUMNS}
                )
            self._cache = df[list(ISSUE_COLUMNS)]
        return self._cache

    @property
    def n_errors(self) -> int:
        """Number of error-level issues."""
        return int((self.issues["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        """Number of warning-level issues."""
        return int((self.issues["severity"] == "warning").sum())

    @property
    def ok(self) -> bool:
        """True if there are no errors and no warnings (info notes are fine)."""
        return not self.issues["severity"].isin(["error", "warning"]).any()

    @property
    def n_dropped(self) -> int:
        """Rows removed from the data (blank rows, removed duplicates)."""
        return self.n_rows_in - self.n_rows_out

    def counts(self) -> pd.DataFrame:
        """Number of issues per problem and severity (most serious first), with the columns involved."""
        iss = self.issues
        if iss.empty:
            return pd.DataFrame(columns=["problem", "severity", "n", "columns"])
        g = iss.groupby(["problem", "severity"], sort=False)
        out = g.size().rename("n").reset_index()
        cols = g["column"].agg(lambda s: ", ".join(sorted({c for c in s if c})[:8]))
        out["columns"] = cols.to_numpy()
        order = {s: i for i, s in enumerate(SEVERITIES)}
        porder = {p: i for i, p in enumerate(PROBLEMS)}
        out = out.sort_values(
            ["severity", "problem"], key=lambda s: s.map(order if s.name == "severity" else porder).fillna(99)
        )
        return out.reset_index(drop=True)

    def of(self, problem: str | Iterable[str]) -> pd.DataFrame:
        """Issues of one problem type (or several)."""
        probs = [problem] if isinstance(problem, str) else list(problem)
        return self.issues[self.issues["problem"].isin(probs)]

    def summary(self) -> str:
        """A plain-text summary: rows in and out, then one line per problem type."""
        lines = [
            f"Validation of {self.file or 'data'}: {self.n_rows_in} data row(s) read, {self.n_rows_out} kept"
            + (f" ({self.n_dropped} removed, see issues)" if self.n_dropped else "")
        ]
        lines += [f"  {n}" for n in self.notes]
        if self.links is not None and len(self.links):
            for r in self.links.itertuples():
                lines.append(
                    f"  Wave {r.wave} ({r.file}): {r.ids} ID(s), {r.linked} linked to baseline, {r.unmatched} "
                    f"unmatched, {r.duplicates} duplicated"
                    + (f", {r.format_differs} in another ID format" if r.format_differs else "")
                )
        c = self.counts()
        if c.empty:
            lines.append("  No problems found.")
        for _, r in c.iterrows():
            where = f" (columns: {r['columns']})" if r["columns"] else ""
            lines.append(f"  {r['severity'].upper():7s} {r['problem']}: {r['n']}{where}")
        if len(self.recodes):
            rc = self.recodes[["n_labels_recoded", "n_missing_codes", "n_set_na"]].sum()
            lines.append(
                f"  Recoded: {int(rc['n_labels_recoded'])} label(s) to codes, {int(rc['n_missing_codes'])} "
                f"missing code(s) to NA, {int(rc['n_set_na'])} invalid value(s) to NA"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`issues` to a CSV file (UTF-8) and return its path."""
        p = Path(path)
        write_csv(self.issues, p, index=False)
        return p

    def to_html(self, max_rows: int = 200) -> str:
        """An HTML fragment (summary counts and the first ``max_rows`` issues) for a report."""
        c = self.counts()
        head = (
            f"<p>{self.n_rows_in} data rows read, {self.n_rows_out} kept. "
            f"{self.n_errors} error(s), {self.n_warnings} warning(s).</p>"
        )
        more = (
            f"<p>First {max_rows} of {len(self.issues)} issues shown; see the CSV for all.</p>"
            if len(self.issues) > max_rows
            else ""
        )
        return (
            "<section class='validation'><h2>Data validation</h2>"
            + head
            + c.to_html(index=False)
            + more
            + self.issues.head(max_rows).to_html(index=False)
            + "</section>"
        )


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
