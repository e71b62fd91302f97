"""Reading tabular files: one registry of readers for raw survey exports and scored data tables.

:data:`READERS` maps each file format to its reader; :func:`read_raw` picks one by suffix (or ``fmt=``) and
returns a :class:`RawTable` (columns by position, the header names, the row number the user sees in the file);
:func:`read_table` turns it into a typed DataFrame for data that are already scored. Both
:func:`evaltoolkit.intake.read.read_responses` and ``evaltoolkit analyse`` read through here, so a file that
one accepts the other reads the same way.

* **CSV / TSV / TXT**: the delimiter (``,`` ``;`` or tab) is sniffed from the header; UTF-8 with or without
  BOM, UTF-16 (BOM), else Windows-1252 or Latin-1 (with a note); a row with more values than the header is
  refused, never silently cut; a Qualtrics export's two extra header rows are recognised and skipped.
* **Excel** ``.xlsx``/``.xlsm``/``.xls``: one sheet (``sheet=``), Qualtrics layout recognised.
* **SPSS** ``.sav``/``.zsav`` and **Stata** ``.dta``: with value labels and user-missing ranges.
* **Parquet**.

A new format costs one reader function and one :data:`READERS` entry. pandas and the format libraries are
imported inside the readers, so importing this module (the CLI's help text does) stays cheap.

Examples
--------
>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
>>> _ = p.write_text("pid;arm;wave\\n1;a;pre\\n2;b;pre\\n", encoding="utf-8")
>>> read_table(p).columns.tolist()          # ';'-separated: sniffed, not read as one column
['pid', 'arm', 'wave']
>>> read_raw(p).notes
["read as delimited text, separator ';'"]
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import numbers
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaltoolkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "FORMATS",
    "READERS",
    "RawTable",
    "ReadOptions",
    "Reader",
    "fmt_value",
    "is_number",
    "read_raw",
    "read_table",
    "suffix_list",
]


@dataclass
class RawTable:
    """A file read into columns numbered 0..k-1 with its header names, before any validation."""

    frame: pd.DataFrame  # columns are positions 0..k-1
    names: list[str]  # header names as in the file
    rows: np.ndarray  # row number the user sees, one per data row
    fmt: str
    notes: list[str] = field(default_factory=list)
    value_labels: dict[str, dict[float, str]] = field(default_factory=dict)
    user_missing: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    encoding_note: str | None = None
    #: Qualtrics: the question-text row and the import-id row, one entry per column (else empty)
    header_rows: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class ReadOptions:
    """How to read: the name to give the file in messages, a forced text encoding, the Excel sheet, and the ID
    columns (read as text, so ``007`` stays ``007``)."""

    file: str
    encoding: str | None = None
    sheet: str | int = 0
    id_names: Sequence[str] = ()


@dataclass(frozen=True)
class Reader:
    """One file format: its name (``fmt=``), the suffixes that select it, and the function that reads it."""

    name: str
    suffixes: tuple[str, ...]
    label: str
    read: Callable[[Path, ReadOptions], RawTable]


def _arange(n: int) -> np.ndarray:
    import numpy as np

    return np.arange(n)


# --------------------------------------------------------------------------- helpers
def fmt_value(v: Any) -> str:
    """A cell value as text, with whole floats without ".0" (``3.0`` -> ``"3"``)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _decode(raw: bytes, encoding: str | None, file: str) -> tuple[str, str | None]:
    """Bytes to text; returns the text and a note if a fallback encoding was used."""
    if encoding:
        try:
            return raw.decode(encoding), None
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"cannot decode the file as {encoding}: {exc}", file=file) from None
    if raw.startswith(codecs.BOM_UTF8):
        try:
            return raw[len(codecs.BOM_UTF8) :].decode("utf-8"), None
        except UnicodeDecodeError:
            pass
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), "decoded as UTF-16 (byte-order mark found)"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "not valid UTF-8; decoded as Windows-1252 (check accented characters)"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "not valid UTF-8; decoded as Latin-1 (check accented characters)"


def _utf16_without_bom(raw: bytes) -> str | None:
    """``"utf-16-le"``/``"utf-16-be"`` when text without a byte-order mark is UTF-16 (every other byte zero)."""
    head = raw[:4096]
    if len(head) < 8 or raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    even, odd = head[0::2], head[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zeros_odd > 0.6 and zeros_even < 0.05:
        return "utf-16-le"
    if zeros_even > 0.6 and zeros_odd < 0.05:
        return "utf-16-be"
    return None


def _refuse_title_row(names: list[str], second: list[str], file: str) -> None:
    """A title line above the header (one filled cell, then a row of many): say so instead of reading it."""
    filled = [n for n in names if n.strip()]
    below = [v for v in second if str(v).strip()]
    if len(filled) <= 2 and len(below) >= max(4, 2 * len(filled) + 1):
        raise DataError(
            f"row 1 looks like a title above the header ({len(filled)} filled cell(s), row 2 has {len(below)}); "
            "delete the rows above the column names so that they are on the first row",
            file=file,
            row=1,
        )


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


# --------------------------------------------------------------------------- readers
def _read_csv(path: Path, opts: ReadOptions) -> RawTable:
    import pandas as pd

    file, encoding, id_names = opts.file, opts.encoding, opts.id_names
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("the file is empty", file=file)
    utf16 = None if encoding else _utf16_without_bom(raw)
    if utf16:
        encoding = utf16
    elif b"\x00" in raw[:4096] and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError("this is not a text (CSV) file: it contains binary data", file=file)
    text, enc_note = _decode(raw, encoding, file)
    if utf16:
        enc_note = (
            f"decoded as UTF-16 ({'little' if utf16.endswith('le') else 'big'}-endian, no byte-order mark)"
        )
    text = text.lstrip("\ufeff")
    del raw
    first_line = text.split("\n", 1)[0]
    sep = _sniff_delimiter(first_line)
    try:
        head_rows = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=sep), 3))
    except csv.Error as exc:
        raise DataError(f"cannot parse the header rows: {exc}", file=file) from None
    if not head_rows or not any(c.strip() for c in head_rows[0]):
        raise DataError("the first row (the header with column names) is empty", file=file)
    names = [c.strip() for c in head_rows[0]]
    _refuse_title_row(names, head_rows[1] if len(head_rows) > 1 else [], file)
    fmt = "csv"
    skip: list[int] = []
    if len(head_rows) >= 3 and any(c.strip().startswith('{"ImportId"') for c in head_rows[2]):
        fmt, skip = "qualtrics", [1, 2]
    id_pos = {i for i, n in enumerate(names) if n.lower() in {x.lower() for x in id_names}}
    k = len(names)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=None,
                skiprows=[0, *skip],
                names=list(range(k)),
                index_col=False,
                dtype={i: str for i in id_pos} or None,
                skip_blank_lines=False,
                on_bad_lines="error",
                engine="c",
                low_memory=False,
            )
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=list(range(k)))
        caught = []
    except (pd.errors.ParserError, ValueError, csv.Error, OverflowError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        line = re.search(r"line (\d+)", msg)
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if fields:
            raise DataError(
                f"this row has {fields.group(3)} values but the header has {k} columns; check for an unquoted "
                f"'{sep}' inside a text answer or a missing column name",
                file=file,
                row=int(fields.group(2)),
            ) from None
        raise DataError(
            f"cannot parse the file as delimited text ('{sep}' separated): {msg}",
            file=file,
            row=int(line.group(1)) if line else None,
        ) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas would silently cut the surplus values of rows longer than the header: refuse instead
        row = _first_long_row(text, sep, k)
        raise DataError(
            f"a row has more values than the header has columns ({k}); check for an unquoted "
            f"'{sep}' inside a text answer or a missing column name",
            file=file,
            row=row,
        )
    offset = 2 + len(skip)
    rows = _arange(len(frame)) + offset
    notes = [f"read as {'Qualtrics CSV' if fmt == 'qualtrics' else 'delimited text'}, separator {sep!r}"]
    if fmt == "qualtrics":
        notes.append("Qualtrics export: rows 2-3 (question text and import ids) skipped")
    extra_rows = [[c.strip() for c in r] for r in head_rows[1:3]] if fmt == "qualtrics" else []
    return RawTable(
        frame=frame,
        names=names,
        rows=rows,
        fmt=fmt,
        notes=notes,
        encoding_note=enc_note,
        header_rows=extra_rows,
    )


def _first_long_row(text: str, sep: str, k: int) -> int | None:
    """Spreadsheet row number of the first record with more than ``k`` fields."""
    try:
        for i, rec in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sep)):
            if len(rec) > k:
                return i + 1
    except csv.Error:
        return None
    return None


def _read_excel(path: Path, opts: ReadOptions) -> RawTable:
    import pandas as pd

    file, sheet = opts.file, opts.sheet
    try:
        frame = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DataError(f"cannot open the file as an Excel workbook: {exc}", file=file) from None
    except (ValueError, OverflowError) as exc:
        # OverflowError: openpyxl cannot convert a cell (e.g. a number too large for a date or integer)
        raise DataError(f"cannot read the Excel file: {exc}", file=file) from None
    except ImportError as exc:
        raise DataError(f"reading this Excel format needs an extra package: {exc}", file=file) from None
    if frame.empty:
        raise DataError("the sheet is empty", file=file)
    names = [("" if pd.isna(v) else fmt_value(v)).strip() for v in frame.iloc[0].tolist()]
    second = frame.iloc[1].tolist() if len(frame) > 1 else []
    _refuse_title_row(names, ["" if pd.isna(v) else str(v) for v in second], file)
    fmt = "excel"
    skip = 1
    if len(frame) >= 3 and any(str(v).strip().startswith('{"ImportId"') for v in frame.iloc[2].tolist()):
        fmt, skip = "qualtrics", 3
    body = frame.iloc[skip:].reset_index(drop=True)
    body.columns = list(range(body.shape[1]))
    rows = _arange(len(body)) + skip + 1
    notes = [f"read as Excel, sheet {sheet!r}"]
    if fmt == "qualtrics":
        notes.append("Qualtrics export: rows 2-3 (question text and import ids) skipped")
    extra_rows = (
        [[("" if pd.isna(v) else fmt_value(v)).strip() for v in frame.iloc[i].tolist()] for i in (1, 2)]
        if fmt == "qualtrics"
        else []
    )
    return RawTable(frame=body, names=names, rows=rows, fmt=fmt, notes=notes, header_rows=extra_rows)


def _read_stat(path: Path, opts: ReadOptions, kind: str) -> RawTable:
    import pyreadstat

    file = opts.file
    try:
        if kind == "spss":
            df, meta = pyreadstat.read_sav(str(path), user_missing=True, apply_value_formats=False)
        else:
            df, meta = pyreadstat.read_dta(str(path), apply_value_formats=False)
    except Exception as exc:  # pyreadstat raises its own error types (ReadstatError, PyreadstatError)
        raise DataError(
            f"cannot read the file as {'SPSS .sav' if kind == 'spss' else 'Stata .dta'}: {exc}", file=file
        ) from None
    names = [str(c) for c in df.columns]
    frame = df.copy()
    frame.columns = list(range(frame.shape[1]))
    labels = {
        str(k): {float(c): str(lab) for c, lab in v.items() if is_number(c)}
        for k, v in (meta.variable_value_labels or {}).items()
    }
    missing: dict[str, list[tuple[float, float]]] = {}
    for col, ranges in (getattr(meta, "missing_ranges", None) or {}).items():
        spans = []
        for r in ranges:
            lo, hi = r.get("lo"), r.get("hi")
            if is_number(lo) and is_number(hi):
                spans.append((float(lo), float(hi)))
        if spans:
            missing[str(col)] = spans
    rows = _arange(len(frame)) + 1
    notes = [f"read as {'SPSS .sav' if kind == 'spss' else 'Stata .dta'}; rows are case numbers"]
    return RawTable(
        frame=frame, names=names, rows=rows, fmt=kind, notes=notes, value_labels=labels, user_missing=missing
    )


def _read_parquet(path: Path, opts: ReadOptions) -> RawTable:
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as exc:
        raise DataError(f"cannot read the file as Parquet: {exc}", file=opts.file) from None
    names = [str(c) for c in df.columns]
    frame = df.copy()
    frame.columns = list(range(frame.shape[1]))
    return RawTable(frame=frame, names=names, rows=_arange(len(frame)) + 1, fmt="parquet",
                    notes=["read as Parquet; rows are record numbers"])  # fmt: skip


#: every file format, by the name ``fmt=`` takes; the first matching suffix picks the reader
READERS: dict[str, Reader] = {
    "csv": Reader("csv", (".csv", ".tsv", ".txt"), "CSV/TSV (, ; or tab)", _read_csv),
    "excel": Reader("excel", (".xlsx", ".xlsm", ".xls"), "Excel", _read_excel),
    "spss": Reader("spss", (".sav", ".zsav"), "SPSS", lambda p, o: _read_stat(p, o, "spss")),
    "stata": Reader("stata", (".dta",), "Stata", lambda p, o: _read_stat(p, o, "stata")),
    "parquet": Reader("parquet", (".parquet",), "Parquet", _read_parquet),
}
#: survey-platform exports read by the CSV or Excel reader (detected automatically, or forced with ``fmt=``)
EXPORTS = ("qualtrics", "kobo")
#: every value ``fmt=`` accepts
FORMATS = (*READERS, *EXPORTS)


def suffix_list() -> str:
    """The file types read, for help texts and messages (``".csv, .tsv, .txt, .xlsx, ..."``)."""
    return ", ".join(s for r in READERS.values() for s in r.suffixes)


def read_raw(
    path: str | Path,
    *,
    file: str | None = None,
    fmt: str | None = None,
    encoding: str | None = None,
    sheet: str | int = 0,
    id_names: Sequence[str] = (),
) -> RawTable:
    """Read any supported file into a :class:`RawTable`; the file is opened read-only and never modified.

    Parameters
    ----------
    path : str or Path
    file : str, optional
        The name used in messages (default: ``path``).
    fmt : str, optional
        One of :data:`FORMATS`; default: by suffix (Qualtrics and Kobo layouts are recognised).
    encoding : str, optional
        Force a text encoding (CSV).
    sheet : str or int
        Excel sheet.
    id_names : sequence of str
        Columns read as text (identifiers keep leading zeros).

    Raises
    ------
    DataError
        Missing file, unknown type, or a file that cannot be parsed (the message says where and why).
    """
    p = Path(path)
    file = str(p) if file is None else file
    if not p.exists():
        raise DataError("file not found", file=file)
    opts = ReadOptions(file=file, encoding=encoding, sheet=sheet, id_names=tuple(id_names))
    suffix = p.suffix.lower()
    by_suffix = next((r for r in READERS.values() if suffix in r.suffixes), None)
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", file=file)
    if fmt in READERS:
        reader = READERS[fmt]
    elif fmt in EXPORTS:  # a platform export: its layout is detected by the CSV or Excel reader
        reader = READERS["excel"] if by_suffix is READERS["excel"] else READERS["csv"]
    elif by_suffix is not None:
        reader = by_suffix
    else:
        raise DataError(f"unknown file type '{suffix}'; save the file as one of {suffix_list()}", file=file)
    raw = reader.read(p, opts)
    if fmt == "kobo":
        raw.fmt = "kobo"
    return raw


def read_table(path: str | Path) -> pd.DataFrame:
    """Read an already-scored data table into a typed DataFrame, through the same readers as raw exports.

    Blank lines are skipped and counted (``frame.attrs["blank_rows"]``); numbers, text and dates get their types
    (Excel cells are typed as pandas would read them). Notes from reading (separator, encoding fallback) are in
    ``frame.attrs["read_notes"]``.

    Raises
    ------
    DataError
        As :func:`read_raw`, for a header that names a column twice, and for a file without data rows.
    """
    raw = read_raw(path)
    seen: dict[str, int] = {}
    for pos, name in enumerate(raw.names):
        if name in seen:
            raise DataError(
                f"the header names column '{name}' twice (columns {seen[name] + 1} and {pos + 1}); "
                "rename one so every column has its own name",
                file=str(path),
                column=name,
            )
        seen[name] = pos
    if raw.frame.empty:
        raise DataError("the file has a header but no data rows", file=str(path))
    frame = raw.frame.dropna(how="all").infer_objects()
    blank = len(raw.frame) - len(frame)
    if frame.empty:
        raise DataError(f"the file has a header but no data: all {blank} rows are blank", file=str(path))
    frame.columns = raw.names
    frame = frame.reset_index(drop=True)
    frame.attrs["read_notes"] = [*raw.notes, *([raw.encoding_note] if raw.encoding_note else [])]
    frame.attrs["blank_rows"] = blank  # rows with no value at all (a line of commas): left out, and counted
    return frame
