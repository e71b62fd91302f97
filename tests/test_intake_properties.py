"""Property-based tests: malformed survey exports end in a ValidationReport or an EvalToolkitError.

Hypothesis writes hundreds of broken exports (wrong types, stray labels, blank rows, duplicate
IDs, extra/missing/duplicate columns, odd delimiters, Qualtrics header rows, ragged rows,
latin-1 / UTF-8-with-BOM / UTF-16 encodings, random bytes) and checks that intake never fails
with any other exception, never changes the file, and never drops a row without counting it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evaltoolkit as et
from evaltoolkit.errors import EvalToolkitError
from evaltoolkit.intake.report import ValidationReport

INST = et.load_instrument("ncs_social_mixing")
CODES = INST.item_codes
LABELS = sorted(
    {lab for rs in INST.response_scales.values() for lab in [*rs.labels.values(), *rs.missing.values()]}
)

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=True,
)

cell = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "5", "-99", "-98", "50", "100"]),  # plausible codes
    st.sampled_from(LABELS),  # valid labels
    st.sampled_from(
        ["", " ", "NA", "n/a", "nan", "inf", "-inf", "1e309", "3.5", "0", "101", "-1", "1,5", "TRUE"]
    ),
    st.sampled_from(
        ["Strongly agreee", "agree ", "STRONGLY AGREE", "Don’t know", "2024-01-01", "5 - Strongly agree"]
    ),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)

column_name = st.one_of(
    st.sampled_from(CODES),
    st.sampled_from([f"grp/{c}" for c in CODES] + [c.upper() for c in CODES]),
    st.sampled_from(["id", "ID", "wave", "arm", "", "notes", "_uuid", "start", "id"]),
    st.text(max_size=10),
)


@st.composite
def messy_table(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    cols = draw(st.lists(column_name, min_size=1, max_size=9))
    if draw(st.booleans()):
        cols = ["id", *cols]
    n = draw(st.integers(0, 12))
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(["normal", "normal", "normal", "blank", "separators", "short", "long"]))
        if kind == "blank":
            rows.append([])
        elif kind == "separators":
            rows.append([""] * len(cols))
        else:
            width = len(cols) + {"normal": 0, "short": -1, "long": 1}[kind]
            rows.append([draw(cell) for _ in range(max(width, 0))])
    if rows and draw(st.booleans()):  # duplicate a row (duplicate ID)
        rows.append(list(draw(st.sampled_from(rows))))
    return cols, rows


def _to_text(cols: list[str], rows: list[list[str]], sep: str, qualtrics: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\n")
    w.writerow(cols)
    if qualtrics:
        w.writerow([f"Question {i}" for i in range(len(cols))])
        w.writerow([f'{{"ImportId":"QID{i}"}}' for i in range(len(cols))])
    for r in rows:
        if r:
            w.writerow(r)
        else:
            buf.write("\n")
    return buf.getvalue()


def _check_outcome(path: Path, **kwargs) -> None:
    before = path.read_bytes()
    try:
        data, rep = et.read_responses(path, INST, **kwargs)
    except EvalToolkitError:
        assert path.read_bytes() == before
        return
    assert path.read_bytes() == before
    assert isinstance(rep, ValidationReport)
    assert isinstance(data, pd.DataFrame)
    # nothing dropped without being counted: removed rows are exactly the blank rows and removed duplicates
    removed = rep.issues[
        (rep.issues["problem"] == "blank row")
        | ((rep.issues["problem"] == "duplicate id") & (rep.issues["severity"] == "info"))
    ]
    assert rep.n_rows_in - rep.n_rows_out == len(removed)
    assert len(data) == rep.n_rows_out
    # every item is a float column of valid codes or NA
    for code in CODES:
        vals = data[code].to_numpy(dtype=float)
        rs = INST.response_scale_of(code)
        ok = np.isnan(vals)
        ok |= (
            np.isin(vals, rs.valid_codes)
            if rs.valid_codes is not None
            else (vals >= rs.min_code) & (vals <= rs.max_code)
        )
        assert ok.all()
    # every row-level issue points at a row the user can find in the file
    rows = rep.issues["row"].dropna()
    assert (rows >= 1).all()
    rep.summary()
    rep.counts()


@SETTINGS
@given(
    table=messy_table(),
    sep=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]),
    qualtrics=st.booleans(),
    strict=st.booleans(),
    duplicates=st.sampled_from(["keep", "first", "last"]),
)
def test_malformed_csv_exports_end_in_report_or_clear_error(
    tmp_path_factory: pytest.TempPathFactory,
    table,
    sep: str,
    encoding: str,
    qualtrics: bool,
    strict: bool,
    duplicates: str,
) -> None:
    cols, rows = table
    text = _to_text(cols, rows, sep, qualtrics)
    path = tmp_path_factory.mktemp("csv") / "export.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    _check_outcome(path, strict=strict, duplicates=duplicates)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".xlsx", ".sav", ".dta", ".tsv"]))
def test_random_bytes_never_crash(
    tmp_path_factory: pytest.TempPathFactory, content: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("bin") / f"export{suffix}"
    path.write_bytes(content)
    _check_outcome(path)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(table=messy_table())
def test_malformed_excel_exports(tmp_path_factory: pytest.TempPathFactory, table) -> None:
    cols, rows = table
    width = max([len(cols), *(len(r) for r in rows)])
    grid = [[_excel_text(c) for c in cols] + [None] * (width - len(cols))] + [
        [_excel_value(v) for v in r] + [None] * (width - len(r)) for r in rows
    ]
    path = tmp_path_factory.mktemp("xlsx") / "export.xlsx"
    pd.DataFrame(grid).to_excel(path, index=False, header=False)
    _check_outcome(path)


def _excel_value(v: str):
    """Numbers as numbers (as Excel stores them), other text as text; strip characters Excel refuses."""
    try:
        x = float(v)
        if np.isfinite(x):
            return x
    except ValueError:
        pass
    return _excel_text(v)


def _excel_text(v: str) -> str:
    return "".join(ch for ch in v if ch in "\t\n\r" or (ord(ch) >= 32 and ch not in "\x7f\ufffe\uffff"))


def test_huge_number_in_excel_is_a_clear_error(tmp_path) -> None:
    # Found by hypothesis in CI: openpyxl raises OverflowError converting 1.797e308; it must be a DataError.
    path = tmp_path / "export.xlsx"
    pd.DataFrame([["ncs_dating_comfort"] * 2, [1.0, 1.7976931348623155e308]]).to_excel(
        path, index=False, header=False
    )
    before = path.read_bytes()
    with pytest.raises(EvalToolkitError, match="cannot read the Excel file"):
        et.read_responses(path, "ncs_social_mixing")
    assert path.read_bytes() == before
