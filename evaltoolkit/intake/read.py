"""Read a survey export, validate it against instruments and return clean item codes plus a report.

:func:`read_responses` reads CSV (any of ``,`` ``;`` tab as delimiter; UTF-8 with or without
BOM, UTF-16, or Windows-1252/Latin-1), Excel ``.xlsx``, SPSS ``.sav`` and Stata ``.dta`` (with
their value labels), Qualtrics CSV exports (three header rows) and KoboToolbox exports
(CSV or XLSX, group prefixes such as ``grp_att/item``). It

* maps file columns to item codes (exact name, then case-insensitive, then the part after
  the last ``/`` of a Kobo group path; ``mapping=`` overrides),
* recodes answer labels to codes ("Strongly agree" -> 5, also Kobo choice names and
  SPSS/Stata value labels), and missing codes (-99 "Don't know") to NA,
* checks every value, the IDs within each wave and the follow-up IDs against baseline,
* returns the cleaned data (index = the row number the user sees in the file) and a
  :class:`~evaltoolkit.intake.report.ValidationReport` listing every problem with file, column
  and row. Nothing is dropped without being counted; the input file is only read.

Strict mode (``strict=True``) raises :class:`~evaltoolkit.errors.DataError` for the first
problem class that has errors or warnings (the report is attached as ``err.report``).

Examples
--------
>>> import pathlib, tempfile
>>> import evaltoolkit as et
>>> inst = et.load_instrument("ncs_social_mixing")
>>> p = pathlib.Path(tempfile.mkdtemp()) / "w1.csv"
>>> _ = p.write_text("id,ncs_getalong,ncs_pos_contact\\n1,Agree,5\\n2,7,-99\\n")
>>> data, report = et.read_responses(p, inst, wave_col=None)
>>> data["ncs_getalong"].tolist()
[4.0, nan]
>>> report.of("out of range")[["column", "row", "value"]].values.tolist()
[['ncs_getalong', 3, '7']]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from evaltoolkit.errors import DataError
from evaltoolkit.intake import platforms
from evaltoolkit.intake.labels import label_keys as _label_keys
from evaltoolkit.intake.labels import lookup as _lookup
from evaltoolkit.intake.labels import norm_label as _norm_label
from evaltoolkit.intake.labels import slug as _slug
from evaltoolkit.intake.platforms import is_metadata
from evaltoolkit.intake.report import PROBLEMS, ValidationReport
from evaltoolkit.io.readers import fmt_value, read_raw

__all__ = ["IntakeResult", "read_responses", "read_waves"]

_BASELINE_NAMES = (
    "baseline",
    "pre",
    "pretest",
    "pre-test",
    "t0",
    "t1",
    "w1",
    "wave1",
    "wave 1",
    "wave_1",
    "time1",
)


class IntakeResult(NamedTuple):
    """What :func:`read_responses` returns: unpack as ``data, report = et.read_responses(...)``."""

    data: pd.DataFrame
    report: ValidationReport


# --------------------------------------------------------------------------- reading


# --------------------------------------------------------------------------- columns
@dataclass
class _ItemInfo:
    code: str
    wording: str
    rs: Any  # ResponseScale
    lookup: dict[str, float]  # normalised label / slug -> code (answers and missing codes)
    valid: np.ndarray | None  # valid codes (ordinal/nominal) or None (numeric)
    lo: float
    hi: float
    missing: np.ndarray


def _item_infos(instruments: list[Any], placeholders: Mapping[str, Any] | None) -> dict[str, _ItemInfo]:
    infos: dict[str, _ItemInfo] = {}
    for inst in instruments:
        for item in inst.items:
            try:
                wording = inst.wording(item.code, **{k: str(v) for k, v in (placeholders or {}).items()})
            except Exception:  # an odd placeholder must not stop intake; fall back to the raw wording
                wording = item.wording
            rs = inst.response_scales[item.response_scale]
            lookup: dict[str, float] = {}
            for code, lab in list(rs.labels.items()) + list(rs.missing.items()):
                for key in _label_keys(lab):
                    lookup.setdefault(key, float(code))
            infos[item.code] = _ItemInfo(
                code=item.code,
                wording=_norm_label(wording),
                rs=rs,
                lookup=lookup,
                valid=None if rs.valid_codes is None else np.asarray(rs.valid_codes, dtype=float),
                lo=float(rs.min_code),
                hi=float(rs.max_code),
                missing=np.asarray(sorted(rs.missing), dtype=float),
            )
    return infos


def _match_columns(
    names: list[str],
    items: Mapping[str, _ItemInfo],
    mapping: Mapping[str, str] | None,
    specials: Sequence[str],
    wordings: Sequence[str] = (),
) -> tuple[dict[int, str], list[tuple[int, str, str]], list[str]]:
    """Assign file columns (by position) to item codes or special names (id, wave, arm).

    ``wordings`` (Qualtrics: the question-text row) matches columns named by question IDs (``Q2_3``) through the
    item's wording, alone or after a matrix stem (``"Stem - statement"``).

    Returns ``{position: target}``, duplicate assignments ``(position, name, target)`` and
    mapping keys that were not found.
    """
    targets = list(items) + [s for s in specials if s]
    assigned: dict[int, str] = {}
    taken: dict[str, int] = {}
    dups: list[tuple[int, str, str]] = []
    not_found: list[str] = []

    def claim(pos: int, target: str) -> None:
        if target in taken:
            dups.append((pos, names[pos], target))
        else:
            assigned[pos] = target
            taken[target] = pos

    if mapping:
        lower_names = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
        for src, dst in mapping.items():
            pos = names.index(src) if src in names else lower_names.get(str(src).lower())
            if pos is None:
                not_found.append(str(src))
            elif pos not in assigned:
                claim(pos, str(dst))
    by_exact = {t: t for t in targets}
    by_lower = {t.lower(): t for t in targets}
    by_slug = {_slug(t): t for t in targets}
    by_wording: dict[str, str] = {}
    for code, info in items.items():
        if len(info.wording) > 12:  # short wordings ("Age") are too ambiguous to match on
            by_wording.setdefault(info.wording, code)
    for pos, name in enumerate(names):
        if pos in assigned or not name:
            continue
        tail = name.rsplit("/", 1)[-1]
        target = (
            by_exact.get(name)
            or by_lower.get(name.lower())
            or by_exact.get(tail)
            or by_lower.get(tail.lower())
            or (None if is_metadata(name) else by_slug.get(_slug(name)))  # "Respondent ID" -> respondent_id
        )
        if target is None and by_wording:
            # a "Labels" export (Kobo) or a question-text header: <group label>/<wording>, or the wording alone
            norm = _norm_label(name)
            target = by_wording.get(norm)
            start = norm.find("/")
            while target is None and start >= 0:
                target = by_wording.get(norm[start + 1 :])
                start = norm.find("/", start + 1)
        if target is None and by_wording and pos < len(wordings) and wordings[pos]:
            text = _norm_label(wordings[pos])
            target = by_wording.get(text)
            start = text.find(" - ")
            while target is None and start >= 0:
                target = by_wording.get(text[start + 3 :])
                start = text.find(" - ", start + 3)
        if target is not None:
            claim(pos, target)
    return assigned, dups, not_found


# --------------------------------------------------------------------------- values
def _as_text(s: pd.Series, exact: bool = False) -> pd.Series:
    """Non-missing values as stripped strings.

    ``exact=True`` (IDs) writes whole floats without ``.0`` (``1.0`` -> ``"1"``), element by element.
    """
    s = s[s.notna()]
    if s.empty:
        return s.astype(object)
    if pd.api.types.is_float_dtype(s) or (exact and s.dtype == object):
        return pd.Series([fmt_value(v).strip() for v in s.tolist()], index=s.index, dtype=object)
    return s.astype(str).str.strip()


def _parse_item(
    s: pd.Series,
    info: _ItemInfo,
    rows: np.ndarray,
    file: str,
    column: str,
    report: ValidationReport,
    value_labels: dict[float, str] | None,
    user_missing: list[tuple[float, float]] | None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Turn one raw column into float codes (NA for missing/invalid) and record problems."""
    n = len(s)
    out = np.full(n, np.nan)
    n_labels = 0
    n_missing = 0
    n_bad = 0
    is_num = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    if is_num:
        vals = s.to_numpy(dtype=float, na_value=np.nan, copy=True)
        present = ~np.isnan(vals)
    else:
        vals, present, n_labels, n_bad = _parse_text_answers(s, info, rows, file, column, report)
    # value labels from SPSS/Stata: recode file codes whose label is an instrument label with another code
    if value_labels:
        n_labels += _apply_value_labels(vals, value_labels, info, file, column, report)
    # missing codes -> NA
    miss = present & np.isin(vals, info.missing)
    if user_missing:
        for lo, hi in user_missing:
            miss |= present & (vals >= lo) & (vals <= hi)
    n_missing = int(miss.sum())
    present &= ~miss
    # validity
    if info.valid is not None:
        ok = np.isin(vals, info.valid)
        allowed = ", ".join(fmt_value(float(v)) for v in info.valid)
    else:
        ok = (vals >= info.lo) & (vals <= info.hi)
        allowed = f"{info.lo:g} to {info.hi:g}"
    bad = present & ~ok
    if bad.any():
        bad_pos = np.flatnonzero(bad)
        shown_vals = s.iloc[bad_pos].to_numpy() if not is_num else vals[bad_pos]
        mcodes = ", ".join(fmt_value(float(v)) for v in info.missing)
        report.add_many(
            file,
            column,
            rows[bad_pos],
            [fmt_value(v) for v in shown_vals],
            "out of range",
            "error",
            f"allowed: {allowed}" + (f" (missing codes: {mcodes})" if mcodes else "") + "; set to NA",
        )
        n_bad += int(bad.sum())
        present &= ~bad
    out[present] = vals[present]
    counts = {
        "column": column,
        "n_values": int(present.sum()),
        "n_labels_recoded": n_labels,
        "n_missing_codes": n_missing,
        "n_set_na": n_bad,
    }
    return out, counts


def _parse_text_answers(s, info, rows, file, column, report):
    """Text answers to codes: numbers as numbers, labels looked up; anything else reported and set to NA.

    Survey answers take few distinct values, so each distinct value is parsed once.
    """
    n = len(s)
    n_bad = 0
    if pd.api.types.is_string_dtype(s) and s.dtype != object:
        idx, uniq = pd.factorize(s, use_na_sentinel=True)  # Arrow strings: dictionary-encoded, fast
    else:
        idx, uniq = pd.factorize(s.to_numpy(dtype=object, na_value=None), use_na_sentinel=True)
    idx = np.asarray(idx)
    ukind = np.zeros(len(uniq), dtype=np.int8)  # 0 blank, 1 number or label found, 2 not understood
    uval = np.full(len(uniq), np.nan)
    utext: list[str] = []
    for i, u in enumerate(uniq):
        t = fmt_value(u).strip() if isinstance(u, float) else str(u).strip()
        utext.append(t)
        if not t:
            continue
        x = _to_float(t)
        if x is None:
            code = _lookup(info.lookup, t)
            if code is None:
                ukind[i] = 2
                continue
            x = code
            ukind[i] = 3  # label
        else:
            ukind[i] = 1
        uval[i] = x
    has = idx >= 0
    kind = np.zeros(n, dtype=np.int8)
    kind[has] = ukind[idx[has]]
    vals = np.full(n, np.nan)
    vals[has] = uval[idx[has]]
    present = (kind == 1) | (kind == 3)
    n_labels = int((kind == 3).sum())
    bad = kind == 2
    if bad.any():
        bad_pos = np.flatnonzero(bad)
        texts = np.asarray(utext, dtype=object)[idx[bad_pos]]
        if info.rs.type == "numeric":
            problem, detail = (
                "wrong type",
                f"text in a numeric item ({info.lo:g} to {info.hi:g}); set to NA",
            )
        else:
            shown = "; ".join(f"{c}={lab}" for c, lab in list(info.rs.labels.items())[:7])
            problem, detail = "unknown label", f"not a label of the response scale ({shown}); set to NA"
        report.add_many(file, column, rows[bad_pos], texts, problem, "error", detail)
        n_bad += int(bad.sum())
    return vals, present, n_labels, n_bad


def _apply_value_labels(vals, value_labels, info, file, column, report) -> int:
    """SPSS/Stata value labels: recode file codes whose label is an instrument label with another code (in
    place); returns the number of values recoded."""
    n_recoded = 0
    recode: dict[float, float] = {}
    unmatched: list[str] = []
    for fcode, lab in value_labels.items():
        icode = _lookup(info.lookup, lab)
        if icode is None:
            unmatched.append(f"{fmt_value(fcode)}={lab}")
        elif icode != fcode:
            recode[fcode] = icode
    if recode:
        keys = np.fromiter(recode, dtype=float)
        hit = np.isin(vals, keys)
        vals[hit] = pd.Series(vals[hit]).map(recode).to_numpy(dtype=float)
        n_recoded = int(hit.sum())
        report.add(
            file,
            column,
            None,
            "; ".join(f"{fmt_value(a)}->{fmt_value(b)}" for a, b in recode.items()),
            "value labels",
            "warning",
            "the file's codes differ from the instrument's; recoded by matching the value labels",
        )
    if unmatched:
        report.add(
            file,
            column,
            None,
            "; ".join(unmatched[:8]),
            "value labels",
            "warning",
            "value label(s) not found in the instrument's response scale; their codes were used as they are",
        )
    return n_recoded


def _to_float(text: str) -> float | None:
    """A number written as text (``"3"``, ``" 4.0"``, ``"1e3"``), or None; NaN is not a number."""
    if "_" in text:
        return None
    try:
        x = float(text)
    except ValueError:
        return None
    return None if x != x else x


def _ids_as_text(s: pd.Series) -> pd.Series:
    """IDs as strings: ``1.0`` -> ``"1"``, whitespace stripped, blanks -> NA."""
    out = pd.Series(pd.NA, index=s.index, dtype=object)
    txt = _as_text(s, exact=True)
    out.loc[txt.index] = txt
    out[out == ""] = pd.NA
    return out


def _baseline_of(waves: pd.Series, baseline: Any) -> Any:
    if baseline is not None:
        return baseline
    vals = pd.unique(waves.dropna())
    if len(vals) == 0:
        return None
    nums = pd.to_numeric(pd.Series(vals), errors="coerce")
    if nums.notna().all():
        return vals[int(np.argmin(nums.to_numpy()))]
    for v in vals:
        if _norm_label(v) in _BASELINE_NAMES:
            return v
    return None


# --------------------------------------------------------------------------- main
def read_responses(
    path: str | Path,
    instruments: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    id_col: str | None = None,
    wave_col: str | None = "auto",
    baseline: Any = None,
    baseline_ids: Iterable[Any] | None = None,
    design: Any = None,
    strict: bool = False,
    duplicates: str = "keep",
    format: str | None = None,
    sheet: str | int = 0,
    encoding: str | None = None,
    placeholders: Mapping[str, Any] | None = None,
    keep_previews: bool = False,
    keep_unfinished: bool = False,
    keep_identifiers: bool = False,
) -> IntakeResult:
    """Read a survey export, recode labels and missing codes, and validate it against instruments.

    Parameters
    ----------
    path : str or Path
        CSV/TSV/TXT, XLSX, SPSS ``.sav`` or Stata ``.dta``; Qualtrics and KoboToolbox
        exports are recognised automatically (or say ``format="qualtrics"`` / ``"kobo"``).
    instruments : Instrument, str, Path or list of these
        The instruments whose items the file holds (ids of bundled instruments, YAML paths
        or loaded :class:`~evaltoolkit.instruments.library.Instrument` objects). ``None``: the
        design's instruments.
    mapping : dict, optional
        ``{file column: item code (or id/wave column name)}`` for columns whose names differ.
        Other columns are matched by name: exactly, ignoring case, or by the part after the
        last ``/`` (Kobo group prefixes).
    id_col : str, optional
        Respondent ID column (default: the design's, else ``"id"``). IDs are returned as text.
    wave_col : str or None
        Wave column. ``"auto"`` (default): the design's wave column, else a column called
        ``wave`` if there is one. ``None``: the file is one wave.
    baseline : optional
        The baseline wave value (default: the design's baseline, the smallest numeric wave,
        or a wave called baseline/pre/t0/t1/w1).
    baseline_ids : iterable, optional
        IDs seen at baseline in another file; with them, every row of this file (or every
        follow-up row) is checked for an unmatched ID.
    design : Design or str, optional
        A design (object, bundled name or YAML path): supplies id/wave/arm columns and the
        baseline, and the wave and arm values are checked against it.
    strict : bool
        Raise :class:`~evaltoolkit.errors.DataError` on the first problem class with errors or
        warnings (``err.report`` holds the full report) instead of reporting and continuing.
    duplicates : {"keep", "first", "last"}
        Rows with a duplicate ID within a wave are always reported; ``"first"``/``"last"``
        also keeps only that occurrence (removed rows are counted and listed).
    format : {"csv", "excel", "spss", "stata", "qualtrics", "kobo"}, optional
        Override detection by file extension.
    sheet : str or int
        Excel sheet (name or 0-based position).
    encoding : str, optional
        Text encoding of a CSV file (default: detect UTF-8/UTF-16 BOM, else UTF-8, else Windows-1252).
    placeholders : dict, optional
        Placeholder values used in the questionnaire (``{"place": "Leeds"}``); only needed to
        match columns headed by the question wording (Kobo "Labels" exports).
    keep_previews, keep_unfinished : bool
        Qualtrics: keep preview/test/spam responses, or unfinished ones (left out and counted by default).
    keep_identifiers : bool
        Keep columns that identify people (IP address, location, names, e-mails, phones, postcodes); by default
        they are listed in the report and left out of ``data``.

    Returns
    -------
    IntakeResult
        ``(data, report)``. ``data`` has the ID column (text), the wave column, one float column
        per item code (codes; NA for missing, missing codes and invalid values; items absent from
        the file are all-NA columns), and every other column of the file unchanged; its index is
        the row number the user sees in the file (named ``row``). ``report`` is a
        :class:`~evaltoolkit.intake.report.ValidationReport`.

    Raises
    ------
    DataError
        The file cannot be read, or (strict mode) a problem was found.
    InstrumentError
        An instrument cannot be loaded.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import evaltoolkit as et
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "kobo.csv"
    >>> _ = p.write_text("pid;wave;grp/ncs_getalong\\n7;1;Strongly agree\\n7;1;2\\n8;2;4\\n")
    >>> data, rep = et.read_responses(p, "ncs_social_mixing", id_col="pid")
    >>> data[["pid", "ncs_getalong"]].values.tolist()
    [['7', 5.0], ['7', 2.0], ['8', 4.0]]
    >>> sorted(set(rep.issues["problem"]) - {"missing column"})
    ['duplicate id', 'unmatched follow-up id']
    """
    from evaltoolkit.instruments.library import load_instruments

    p = Path(path)
    file = p.name
    if not p.exists():
        raise DataError("file not found", file=str(p))
    if not p.is_file():
        raise DataError("not a file", file=str(p))
    if duplicates not in ("keep", "first", "last"):
        raise DataError(f"duplicates must be 'keep', 'first' or 'last', got {duplicates!r}")
    dsg = None
    if design is not None:
        from evaltoolkit.design.schema import Design, load_design

        dsg = design if isinstance(design, Design) else load_design(design)
    if instruments is None:
        if dsg is None or not dsg.instruments:
            raise DataError("name the instruments (or pass a design that lists them)")
        instruments = list(dsg.instruments)
    insts = load_instruments(instruments)
    items = _item_infos(insts, placeholders)

    id_name = id_col or (dsg.columns.id if dsg else "id")
    wave_name = wave_col
    if wave_col == "auto":
        wave_name = dsg.columns.wave if dsg else "wave"
    arm_name = dsg.columns.arm if dsg else None
    if dsg is not None and baseline is None:
        baseline = dsg.baseline

    mapped_ids = [k for k, v in (mapping or {}).items() if v == id_name]
    raw = read_raw(p, file=file, fmt=format, encoding=encoding, sheet=sheet, id_names=[id_name, *mapped_ids])
    report = ValidationReport(file=file, n_rows_in=len(raw.frame))
    report.notes.extend(raw.notes)
    if raw.encoding_note:
        report.add(file, None, None, "", "encoding", "info", raw.encoding_note)
    if raw.fmt == "qualtrics":
        report.add(
            file, None, None, "", "header rows", "info", "Qualtrics question-text and import-id rows skipped"
        )

    frame = raw.frame
    names = raw.names
    if len(names) < frame.shape[1]:
        names = names + [""] * (frame.shape[1] - len(names))
    rows = raw.rows

    frame, rows = _drop_blank_rows(frame, rows, report, file)
    if len(frame) == 0:
        blanks = f" (only {report.n_rows_in} blank row(s))" if report.n_rows_in else ""
        raise _error_with_report(report, f"the file has a header but no data rows{blanks}")

    wordings = raw.header_rows[0] if raw.header_rows else []
    assigned, dups, has_id, has_wave = _assign_columns(
        names, items, mapping, id_name, wave_name, wave_col, arm_name, report, file, wordings,
        needs_wave=dsg is not None and dsg.kind != "post_only" and len(dsg.wave_names) > 1,
    )  # fmt: skip
    if wordings:
        by_wording = sum(
            1
            for pos, t in assigned.items()
            if t in items and names[pos] != t and t.lower() != names[pos].lower()
        )
        if by_wording:
            report.notes.append(
                f"{by_wording} question column(s) matched to items through the question-text row"
            )

    data = _build_data(
        frame, names, rows, assigned, dups, items, id_name, wave_name, has_wave, raw, report, file
    )

    data = _platform_steps(data, raw, names, assigned, items, dsg, id_name, wave_name, arm_name, report, file,
                           keep_previews, keep_unfinished, keep_identifiers)  # fmt: skip
    rows = np.asarray(data.index)
    keep = _check_keys(data, rows, id_name, wave_name, has_id, has_wave, arm_name, dsg, duplicates, baseline,
                      baseline_ids, report, file)  # fmt: skip
    if not keep.all():
        data = data.loc[keep]
    report.n_rows_out = len(data)
    if strict:
        err = _first_problem(report)
        if err is not None:
            raise err
    return IntakeResult(data, report)


def _platform_steps(data, raw, names, assigned, items, dsg, id_name, wave_name, arm_name, report, file,
                    keep_previews, keep_unfinished, keep_identifiers) -> pd.DataFrame:  # fmt: skip
    """Test responses out, identifying columns out, group prefixes off, design columns decoded (platforms.py)."""
    if raw.fmt == "qualtrics":
        data = platforms.drop_test_responses(data, report, file, keep_previews=keep_previews,
                                             keep_unfinished=keep_unfinished)  # fmt: skip
    protected = {*items, id_name, *(x for x in (wave_name, arm_name) if x)}
    design_cols = [*dsg.columns.clusters, *dsg.covariates, *dsg.moderators] if dsg is not None else []
    # identifying columns go first, before any of their text can be taken for a select_multiple question
    known = protected | set(design_cols)
    exclude = {c for c in data.columns if str(c).rsplit("/", 1)[-1] in known}
    data = platforms.drop_identifier_columns(data, exclude, id_name, report, file, keep=keep_identifiers)
    data = platforms.strip_group_prefixes(data, protected, report, file, design_columns=design_cols)
    if dsg is not None:
        labels = {
            assigned.get(pos, name): raw.value_labels[name]
            for pos, name in enumerate(names)
            if name in raw.value_labels
        }
        data = platforms.decode_design_columns(data, dsg, labels, report, file)
    return data


def _drop_blank_rows(frame: pd.DataFrame, rows: np.ndarray, report: ValidationReport, file: str):
    """Rows with no value (or only spaces) in every column: reported and removed."""
    blank = np.ones(len(frame), dtype=bool)
    order = sorted(frame.columns, key=lambda c: not pd.api.types.is_numeric_dtype(frame[c]))
    for c in order:
        if not blank.any():
            break
        col = frame[c]
        nn = col.notna().to_numpy()
        if pd.api.types.is_numeric_dtype(col):
            blank &= ~nn
            continue
        pos = np.flatnonzero(blank & nn)
        if len(pos):
            sub = col.iloc[pos].to_numpy(dtype=object)
            filled = np.fromiter(
                (not (isinstance(v, str) and not v.strip()) for v in sub), dtype=bool, count=len(sub)
            )
            blank[pos[filled]] = False
    if blank.any():
        report.add_many(
            file,
            None,
            rows[blank],
            [""] * int(blank.sum()),
            "blank row",
            "info",
            "row has no values; removed",
        )
        frame = frame.loc[~blank]
        rows = rows[~blank]
    return frame, rows


def _assign_columns(names, items, mapping, id_name, wave_name, wave_col, arm_name, report, file, wordings=(),
                    needs_wave=False):  # fmt: skip
    """File columns to item codes and the id/wave/arm columns; duplicate, missing and unmatched columns reported."""
    specials = [id_name, wave_name if wave_name else "", arm_name or ""]
    assigned, dups, not_found = _match_columns(names, items, mapping, specials, wordings)
    for src in not_found:
        report.add(file, src, None, "", "missing column", "warning", "named in mapping= but not in the file")
    seen_names: dict[str, int] = {}
    for pos, name in enumerate(names):
        if name and name in seen_names and pos not in assigned:
            dups.append((pos, name, name))
        seen_names.setdefault(name, pos)
    for pos, name, target in dups:
        first = _pos_of(assigned, target)
        first_txt = f"column {first + 1}" if first is not None else "an earlier column"
        report.add(
            file,
            name or f"column {pos + 1}",
            None,
            "",
            "duplicate column",
            "error",
            f"also maps to '{target}', already read from {first_txt}; this one is kept unchanged under its own name",
        )
    present_targets = set(assigned.values())
    has_id = id_name in present_targets
    has_wave = bool(wave_name) and wave_name in present_targets
    if not has_id:
        report.add(
            file,
            id_name,
            None,
            "",
            "missing id column",
            "error",
            "no ID column: name it with --id-col or --map COLUMN=id, or in the design's columns: id:",
        )
    wave_missing = not has_wave and (wave_col not in (None, "auto") or (wave_col == "auto" and needs_wave))
    if wave_missing:
        detail = (
            "the design has several waves but the file has no wave column: give one file per wave (in wave order, "
            "with --waves) or name the wave column with --wave-col"
            if wave_col == "auto"
            else "no wave column: name it with --wave-col (or 'none' for a one-wave file), or in the design's "
            "columns: wave:"
        )
        report.add(file, wave_name, None, "", "missing wave column", "error", detail)

    return assigned, dups, has_id, has_wave


def _build_data(frame, names, rows, assigned, dups, items, id_name, wave_name, has_wave, raw, report, file):
    """The cleaned frame: items parsed and recoded, ids as text, other columns kept; index = the file's row."""
    out_cols: dict[str, Any] = {}
    recode_rows: list[dict[str, int | str]] = []
    meta_cols: list[str] = []
    index = pd.Index(rows, name="row")
    for pos in range(frame.shape[1]):
        name = names[pos]
        col = frame.iloc[:, pos]
        target = assigned.get(pos)
        if target is not None and target in items:
            vals, counts = _parse_item(
                col,
                items[target],
                rows,
                file,
                name,
                report,
                raw.value_labels.get(name),
                raw.user_missing.get(name),
            )
            out_cols[target] = vals
            recode_rows.append(counts)
            if counts["n_values"] == 0 and counts["n_missing_codes"] == 0 and counts["n_set_na"] == 0:
                report.add(file, name, None, "", "empty column", "warning",
                           "the item's column holds no answers at all: check the export (or the column mapping)")  # fmt: skip
        elif target is not None and target == id_name:
            out_cols[target] = _ids_as_text(col).to_numpy()
        elif target is not None:
            out_cols[target] = col.to_numpy()
        else:
            label = name or f"column_{pos + 1}"
            while label in out_cols:
                label = f"{label}_dup"
            if is_metadata(name):
                meta_cols.append(label)
            elif not any(d[0] == pos for d in dups):
                report.add(
                    file,
                    label,
                    None,
                    "",
                    "extra column",
                    "info",
                    "not an item of the instruments; kept unchanged",
                )
            out_cols[label] = col.to_numpy()
    if meta_cols:
        report.notes.append(
            f"{len(meta_cols)} export metadata column(s) kept: {', '.join(meta_cols[:6])}{'...' if len(meta_cols) > 6 else ''}"
        )
    for code in items:
        if code not in out_cols:
            report.add(
                file,
                code,
                None,
                "",
                "missing column",
                "warning",
                "item of the instrument not in the file; added as all-NA",
            )
            out_cols[code] = np.full(len(frame), np.nan)
    data = pd.DataFrame(out_cols, index=index)
    if has_wave and pd.api.types.is_float_dtype(data[wave_name]):
        w = data[wave_name]
        if w.notna().all() and np.isfinite(w).all() and (w == np.round(w)).all():
            data[wave_name] = w.astype("int64")  # a blank row had made an integer column float
    report.recodes = pd.DataFrame(recode_rows, columns=report.recodes.columns)

    return data


def _check_keys(data, rows, id_name, wave_name, has_id, has_wave, arm_name, dsg, duplicates, baseline, baseline_ids,
                report, file) -> np.ndarray:  # fmt: skip
    """IDs present and unique per wave, waves and arms known to the design, follow-up IDs seen at baseline.

    Returns the rows to keep (``duplicates="first"/"last"`` drops the other answers of a repeated ID).
    """
    keep = np.ones(len(data), dtype=bool)
    if has_id:
        ids = data[id_name]
        no_id = ids.isna().to_numpy()
        if no_id.any():
            report.add_many(
                file, id_name, rows[no_id], [""] * int(no_id.sum()), "missing id", "error", "row has no ID"
            )

        def flag_outside(column: str, allowed: list, problem: str, detail: str) -> None:
            values = data[column]
            outside = values.notna() & ~values.astype(str).isin([str(a) for a in allowed])
            if outside.any():
                report.add_many(
                    file,
                    column,
                    rows[outside.to_numpy()],
                    values[outside].astype(str).tolist(),
                    problem,
                    "error",
                    detail,
                )

        if dsg is not None and has_wave:
            flag_outside(
                wave_name, dsg.wave_names, "unknown wave", f"design '{dsg.name}' has waves {dsg.wave_names}"
            )
        if dsg is not None and arm_name and arm_name not in data.columns:
            report.add(
                file, arm_name, None, "", "missing column", "error",
                f"the design's arm column '{arm_name}' (the group each person is in) is not in the export: add it, "
                f"or name the column that holds it with --map COLUMN={arm_name}",
            )  # fmt: skip
        if dsg is not None and arm_name and arm_name in data.columns:
            flag_outside(
                arm_name,
                dsg.arms.all,
                "unknown arm",
                f"arm value not in design '{dsg.name}' arms {dsg.arms.all}",
            )
        keys = [data[wave_name].astype(str)] if has_wave else []
        key_df = pd.DataFrame({"id": ids, **({"wave": keys[0]} if keys else {})})
        dup_all = key_df.duplicated(keep=False).to_numpy() & ~no_id
        if dup_all.any():
            detail = "same ID more than once" + (" in the same wave" if has_wave else "")
            if duplicates != "keep":
                kept = ~key_df.duplicated(keep=duplicates).to_numpy() | no_id
                detail += f"; only the {duplicates} occurrence kept"
                keep &= kept
            # never the ID itself in the report: point to the first row holding the same ID instead
            group = key_df.groupby(list(key_df.columns), sort=False, dropna=False).ngroup().to_numpy()
            first_pos = pd.Series(np.arange(len(group))).groupby(group).transform("min").to_numpy()
            same_as = np.array([f"same ID as row {rows[i]}" for i in first_pos], dtype=object)
            report.add_many(
                file, id_name, rows[dup_all], same_as[dup_all].tolist(), "duplicate id", "error", detail
            )
            if duplicates != "keep":
                removed = dup_all & ~keep
                report.add_many(
                    file,
                    id_name,
                    rows[removed],
                    same_as[removed].tolist(),
                    "duplicate id",
                    "info",
                    f"row removed: only the {duplicates} answer of a repeated ID is kept",
                )

        def report_unmatched(unmatched: np.ndarray, detail: str) -> None:
            if unmatched.any():
                report.add_many(file, id_name, rows[unmatched], [""] * int(unmatched.sum()), "unmatched follow-up id",
                                "warning", detail)  # fmt: skip

        known: set[str] = (
            {str(x) for x in _ids_as_text(pd.Series(list(baseline_ids))).dropna()}
            if baseline_ids is not None
            else set()
        )
        if has_wave:
            base = _baseline_of(data[wave_name], baseline)
            if base is None:
                report.notes.append(
                    "baseline wave not identified (name it in the design's baseline: field): follow-up IDs not checked"
                )
            else:
                is_base = (data[wave_name].astype(str) == str(base)).to_numpy()
                known |= set(ids[is_base & ~no_id].tolist())
                follow = ~is_base & ~no_id & data[wave_name].notna().to_numpy(copy=True)
                if is_base.any() or baseline_ids is not None:
                    report_unmatched(
                        follow & ~_in_set(ids, known), f"ID not seen at baseline ({wave_name} = {base})"
                    )
                else:
                    report.notes.append(
                        f"no rows at baseline ({wave_name} = {base}) in this file: follow-up IDs are checked only when the baseline wave is in the same file"
                    )
        elif baseline_ids is not None:
            report_unmatched(~no_id & ~_in_set(ids, known), "ID not among baseline_ids")
    return keep


def read_waves(
    files: Mapping[Any, str | Path],
    instruments: Any,
    *,
    wave_col: str = "wave",
    id_col: str | None = None,
    strict: bool = False,
    **kwargs: Any,
) -> IntakeResult:
    """Read one export per wave, check follow-up IDs against the baseline file, and stack them.

    Parameters
    ----------
    files : mapping
        ``{wave value: path}`` in wave order; the first entry is the baseline.
    instruments : Instrument, str, Path or list of these
        As for :func:`read_responses`.
    wave_col : str
        Name of the wave column added to the stacked data.
    id_col : str, optional
        Respondent ID column (as for :func:`read_responses`).
    strict : bool
        Stop at the first problem (see :func:`read_responses`).
    **kwargs
        Passed to :func:`read_responses` for every file (``mapping``, ``design``, ``duplicates``...).

    Returns
    -------
    IntakeResult
        ``data`` with a ``source_file`` column and the wave column (index: row number within
        its file) and one combined :class:`~evaltoolkit.intake.report.ValidationReport`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "w1.csv").write_text("id,ncs_getalong\\n1,4\\n2,5\\n")
    >>> _ = (d / "w2.csv").write_text("id,ncs_getalong\\n1,3\\n3,2\\n")
    >>> data, rep = read_waves({"baseline": d / "w1.csv", "post": d / "w2.csv"}, "ncs_social_mixing")
    >>> data[["id", "wave", "ncs_getalong"]].values.tolist()
    [['1', 'baseline', 4.0], ['2', 'baseline', 5.0], ['1', 'post', 3.0], ['3', 'post', 2.0]]
    >>> rep.of("unmatched follow-up id")[["file", "row", "value"]].values.tolist()
    [['w2.csv', 3, '']]
    """
    if not files:
        raise DataError("give at least one {wave: file}")
    frames: list[pd.DataFrame] = []
    combined = ValidationReport()
    baseline_ids: list[Any] | None = None
    for wave, path in files.items():
        data, rep = read_responses(
            path,
            instruments,
            id_col=id_col,
            wave_col=None,
            baseline_ids=baseline_ids,
            strict=strict,
            **kwargs,
        )
        ids_col = id_col or _id_column_used(kwargs.get("design"))
        if baseline_ids is None and ids_col in data.columns:
            baseline_ids = data[ids_col].dropna().tolist()
        if wave_col in data.columns:
            raise DataError(
                f"the file already has a column '{wave_col}'; pass another wave_col=", file=Path(path).name
            )
        frames.append(data.assign(**{wave_col: wave, "source_file": Path(path).name}))
        combined.extend(rep)
    ids_col = id_col or _id_column_used(kwargs.get("design"))
    combined.links = _link_waves(frames, list(files), ids_col, combined)
    return IntakeResult(pd.concat(frames), combined)


def _id_shape(text: str) -> str:
    """An ID without its format: digits only, leading zeros dropped (``"ID-0001"`` -> ``"1"``); else lower case."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits.lstrip("0") or ("0" if digits else text.strip().lower())


def _link_waves(
    frames: list[pd.DataFrame], waves: list[Any], id_col: str, report: ValidationReport
) -> pd.DataFrame:
    """Per wave: IDs, how many link to baseline, unmatched, duplicated, and those differing only in format."""
    rows = []
    base: set[str] = set()
    base_shapes: set[str] = set()
    for k, (wave, data) in enumerate(zip(waves, frames, strict=True)):
        ids = data[id_col].dropna().astype(str) if id_col in data.columns else pd.Series(dtype=str)
        uniq = set(ids)
        file = str(data["source_file"].iloc[0]) if len(data) else ""
        if k == 0:
            base, base_shapes = uniq, {_id_shape(i) for i in uniq}
            linked, unmatched, differs = len(uniq), 0, 0
        else:
            missing = uniq - base
            linked, unmatched = len(uniq) - len(missing), len(missing)
            differs = sum(1 for i in missing if _id_shape(i) in base_shapes)
            if differs:
                report.add(file, id_col, None, "", "id format", "warning",
                           f"{differs} of the {unmatched} ID(s) not seen at baseline match a baseline ID once the "
                           "format is ignored (a prefix, leading zeros or case, e.g. 'ID-0001' and '1'); they were "
                           "not linked: make the ID formats agree across waves (or map them) and read the files again")  # fmt: skip
        rows.append({"wave": wave, "file": file, "rows": len(data), "ids": len(uniq), "linked": linked,
                     "unmatched": unmatched, "duplicates": int(ids.duplicated().sum()), "format_differs": differs})  # fmt: skip
    return pd.DataFrame(rows)


def _id_column_used(design: Any) -> str:
    if design is not None:
        from evaltoolkit.design.schema import Design, load_design

        dsg = design if isinstance(design, Design) else load_design(design)
        return dsg.columns.id
    return "id"


def _in_set(values: pd.Series, known: set[str]) -> np.ndarray:
    arr = values.to_numpy(dtype=object)
    return np.fromiter((v in known for v in arr), dtype=bool, count=len(arr))


def _pos_of(assigned: Mapping[int, str], target: str) -> int | None:
    for pos, t in assigned.items():
        if t == target:
            return pos
    return None


def _first_problem(report: ValidationReport) -> DataError | None:
    iss = report.issues
    serious = iss[iss["severity"].isin(["error", "warning"])]
    if serious.empty:
        return None
    for problem in PROBLEMS:
        sub = serious[serious["problem"] == problem]
        if len(sub):
            first = sub.iloc[0]
            val = f" (value '{first['value']}')" if first["value"] else ""
            more = f"; {len(sub)} such problem(s) in all" if len(sub) > 1 else ""
            msg = f"{problem}{val}: {first['detail'] or PROBLEMS[problem]}{more}. Run without strict mode for the full report"
            err = DataError(
                msg,
                file=first["file"] or None,
                column=first["column"] or None,
                row=None if pd.isna(first["row"]) else int(first["row"]),
            )
            err.report = report  # type: ignore[attr-defined]
            return err
    return None  # pragma: no cover - every problem name is in PROBLEMS


def _error_with_report(report: ValidationReport, message: str) -> DataError:
    err = DataError(message, file=report.file)
    err.report = report  # type: ignore[attr-defined]
    return err
