"""Simulated survey-platform exports: what KoboToolbox, Qualtrics, SPSS and Stata would write for a form and a
set of answers.

Used to test intake end to end (the export is read back by :func:`evaltoolkit.read_responses`) and by the demo.
Every function takes the instruments (laid out as :func:`~evaltoolkit.instruments.export.layout` does, so the
wordings and groups are those of the questionnaire made by
:func:`~evaltoolkit.instruments.export.to_xlsform`), one row of answers per respondent (item codes holding the
numeric codes, missing codes such as -99 allowed, NA = unanswered) and optionally ``extra``: non-item columns
aligned with the answers' rows (respondent ID, arm, wave, site, covariates).

* :func:`simulate_kobo_export`: KoboToolbox CSV or XLSX ("XML values and headers" or "Labels").
* :func:`simulate_qualtrics_export`: Qualtrics CSV with its three header rows, metadata columns, survey-preview
  and unfinished responses.
* :func:`simulate_spss_export`: SPSS ``.sav`` with value labels and user-missing codes.
* :func:`simulate_stata_export`: Stata ``.dta`` with value labels.
"""

from __future__ import annotations

import json
import random
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evaltoolkit.errors import DataError
from evaltoolkit.instruments.export import InstrumentsLike, Layout, Question, SlotPolicy, fmt_num, layout

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "QUALTRICS_META_COLUMNS",
    "simulate_kobo_export",
    "simulate_qualtrics_export",
    "simulate_spss_export",
    "simulate_stata_export",
]

#: Qualtrics metadata columns (in this order): column name, question-text row, ImportId.
_QUALTRICS_META: tuple[tuple[str, str, str], ...] = (
    ("StartDate", "Start Date", "startDate"),
    ("EndDate", "End Date", "endDate"),
    ("Status", "Response Type", "status"),
    ("IPAddress", "IP Address", "ipAddress"),
    ("Progress", "Progress", "progress"),
    ("Duration (in seconds)", "Duration (in seconds)", "duration"),
    ("Finished", "Finished", "finished"),
    ("RecordedDate", "Recorded Date", "recordedDate"),
    ("ResponseId", "Response ID", "_recordId"),
    ("RecipientLastName", "Recipient Last Name", "recipientLastName"),
    ("RecipientFirstName", "Recipient First Name", "recipientFirstName"),
    ("RecipientEmail", "Recipient Email", "recipientEmail"),
    ("ExternalReference", "External Data Reference", "externalDataReference"),
    ("LocationLatitude", "Location Latitude", "locationLatitude"),
    ("LocationLongitude", "Location Longitude", "locationLongitude"),
    ("DistributionChannel", "Distribution Channel", "distributionChannel"),
    ("UserLanguage", "User Language", "userLanguage"),
)
#: Columns a Qualtrics CSV export starts with (before the questions and the embedded data), in this order.
QUALTRICS_META_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _QUALTRICS_META)
_QUALTRICS_DATES = {"startDate", "endDate", "recordedDate"}  # their ImportId also names the time zone

_STATA_LABEL_MAX = 80  # characters in a Stata variable label
_EXCEL_SHEET_MAX = 31  # characters in an Excel worksheet name


# ------------------------------------------------------------------ shared helpers
def _blank(v: Any) -> bool:
    """True for None/NA/NaN (not for the empty string, which is a value in a text column)."""
    import pandas as pd

    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _check_answers(answers: Any, known: set[str], hint: str = "") -> None:
    import pandas as pd

    if not isinstance(answers, pd.DataFrame):
        raise DataError("answers must be a pandas DataFrame with one column per item code")
    unknown = [c for c in answers.columns if c not in known]
    if unknown:
        raise DataError(
            f"answer column(s) {unknown} are not questions of this form (items: {', '.join(sorted(known))})"
            + hint
        )


def _codes(q: Question, answers: pd.DataFrame) -> list[float | None]:
    """The answers to one question as validated codes (None = unanswered); items without a column are empty."""
    if q.code not in answers.columns:
        return [None] * len(answers)
    rs = q.scale
    out: list[float | None] = []
    for row, v in enumerate(answers[q.code]):
        if _blank(v):
            out.append(None)
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise DataError(f"answer {v!r} is not a numeric code", column=q.code, row=row) from None
        allowed = (
            x in rs.labels or x in rs.missing or (rs.type == "numeric" and rs.min_code <= x <= rs.max_code)  # type: ignore[operator]
        )
        if not allowed:
            raise DataError(
                f"answer {v!r} is not a valid code of response scale '{q.scale_name}'", column=q.code, row=row
            )
        out.append(x)
    return out


def _answer_text(q: Question, x: float | None, labels: bool) -> str:
    """One code as an export writes it: the code (``"4"``, ``"-99"``) or its label; numbers stay numbers."""
    if x is None:
        return ""
    rs = q.scale
    if rs.type == "numeric":
        return fmt_num(x)  # integer/decimal questions export the number in both modes
    if labels:
        return rs.labels.get(int(x)) or rs.missing[int(x)]
    return str(int(x))


def _value_text(v: Any) -> str:
    """A non-item value as text: whole floats without ".0", NA as ""."""
    if _blank(v):
        return ""
    if isinstance(v, float):
        return fmt_num(v)
    return str(v)


def _extra_frame(extra: Any, n: int, taken: set[str]) -> pd.DataFrame:
    """``extra`` checked (a DataFrame with the answers' number of rows, no clash with the items) and re-indexed."""
    import pandas as pd

    if extra is None:
        return pd.DataFrame(index=range(n))
    if not isinstance(extra, pd.DataFrame):
        raise DataError("extra must be a pandas DataFrame aligned with the rows of answers")
    if len(extra) != n:
        raise DataError(f"extra has {len(extra)} rows but answers has {n}; they must be aligned row by row")
    clash = sorted(str(c) for c in extra.columns if c in taken)
    if clash:
        raise DataError(f"extra column(s) {clash} clash with question or metadata columns of the export")
    return extra.reset_index(drop=True)


def _extra_labels_ok(extra: pd.DataFrame, extra_labels: Mapping[str, Mapping[Any, str]] | None) -> dict:
    labels = {k: dict(v) for k, v in (extra_labels or {}).items()}
    unknown = sorted(set(labels) - set(extra.columns))
    if unknown:
        raise DataError(f"extra_labels names column(s) {unknown} that are not in extra")
    for col, mapping in labels.items():
        bad = sorted({_value_text(v) for v in extra[col] if not _blank(v) and _label_key(v, mapping) is None})
        if bad:
            raise DataError(f"value(s) {bad} have no label in extra_labels", column=col)
    return labels


def _label_key(v: Any, mapping: Mapping[Any, str]) -> Any:
    """The key of ``mapping`` that ``v`` stands for (``1.0`` finds ``1``, ``"1"`` finds ``1``), or None."""
    if v in mapping:
        return v
    text = _value_text(v)
    return next((k for k in mapping if _value_text(k) == text), None)


def _extra_text(v: Any, mapping: Mapping[Any, str] | None, labels: bool) -> str:
    if _blank(v):
        return ""
    if labels and mapping is not None:
        return mapping[_label_key(v, mapping)]
    return _value_text(v)


def _write_text(df: pd.DataFrame, path: str | Path, *, sep: str = ",", bom: bool = False) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, sep=sep, index=False, encoding="utf-8-sig" if bom else "utf-8")


def _form_title(lay: Layout) -> str:
    """The form title :func:`~evaltoolkit.instruments.export.to_xlsform` gives by default."""
    return lay.instruments[0].title if len(lay.instruments) == 1 else "Questionnaire"


def _xlsx_sheet_name(title: str) -> str:
    """A worksheet name as KoboToolbox (formpack) makes it from the form title: ``[]*?:\\/`` become ``_``, a
    leading or trailing apostrophe too, and names longer than 31 characters end in ``...``."""
    name = re.sub(r"[\[\]*?:\\/]", "_", title)
    name = re.sub(r"(^'|'$)", "_", name)
    return name if len(name) <= _EXCEL_SHEET_MAX else name[: _EXCEL_SHEET_MAX - 3] + "..."


def _write_xlsx(df: pd.DataFrame, path: str | Path, sheet: str) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([None if v == "" else v for v in row])  # empty answers are empty cells
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    wb.save(p)


# ------------------------------------------------------------------ KoboToolbox
def simulate_kobo_export(
    instruments: InstrumentsLike,
    answers: pd.DataFrame,
    path: str | Path | None = None,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
    id_field: str | None = "respondent_id",
    values: Literal["xml", "labels"] = "xml",
    include_groups: bool = True,
    group_separator: str = "/",
    delimiter: str = ";",
    start: datetime | None = None,
    seed: int = 0,
    extra: pd.DataFrame | None = None,
    extra_group: str = "admin",
    extra_labels: Mapping[str, Mapping[Any, str]] | None = None,
    select_multiple: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """Write the CSV (or XLSX) KoboToolbox would export for a form made by
    :func:`~evaltoolkit.instruments.export.to_xlsform` and these answers.

    The layout follows KoboToolbox's export with its default options ("XML values and
    headers" or "Labels", "Include groups in headers" on, group separator ``/``, field
    separator ``;``, select-multiple questions as one column *and* one column per option): columns
    ``start``, ``end``, the ID question, the ``extra`` questions as ``<extra_group>/<name>``, every
    question as ``<group>/<name>`` (notes and groups have no column), then
    :data:`~evaltoolkit.instruments.export.KOBO_META_COLUMNS`.
    Select-one answers are the choice *names* (the codes as text, e.g. ``"4"``, ``"-99"``)
    with ``values="xml"`` or the choice labels with ``values="labels"`` (then the headers
    are ``<group label>/<question label>``, or the question label alone without groups);
    numeric answers are written as numbers in both modes; unanswered questions are empty
    cells. A select-multiple question is written as Kobo does: a column holding the chosen
    names (labels) separated by spaces, then a column ``<group>/<question>/<choice>`` per choice
    holding ``1`` or ``0`` (all empty when the question was not answered).

    Parameters
    ----------
    instruments, placeholders, fill, slots
        As for :func:`~evaltoolkit.instruments.export.to_xlsform` (use the same values so that the columns match the form).
    answers : DataFrame
        One row per submission, one column per item code holding the numeric code (missing
        codes such as -99 allowed; NA = unanswered); optionally the ``id_field`` column.
        Columns for items not in the form raise ``DataError``; items without a column are
        left empty.
    path : str or Path, optional
        Write the export here: a UTF-8 CSV, or an Excel workbook if the name ends in ``.xlsx`` (one sheet named
        after the form title as Kobo names it; the cells hold text, Kobo's default "store numbers as text").
    values : {"xml", "labels"}
        Codes (XML values and headers) or labels.
    include_groups, group_separator, delimiter
        Kobo export options.
    start : datetime, optional
        Time stamp of the first submission (default 2026-01-05 09:00 UTC); later ones are 7 min apart.
    seed : int
        Seed for the ``_uuid`` values.
    extra : DataFrame, optional
        Further questions of the form (site, arm, team, covariates), aligned with the rows of ``answers``;
        written after the ID question in the group ``extra_group`` (a group without a label, so its name is the
        header prefix in both modes). Values are written as text (whole numbers without ``.0``).
    extra_group : str
        Name of the group holding the ``extra`` questions.
    extra_labels : dict, optional
        ``{column: {value: label}}`` for coded ``extra`` columns (select-one questions): the value is the choice
        name written with ``values="xml"``, the label is written with ``values="labels"``.
    select_multiple : dict, optional
        ``{column: {choice name: label}}``: columns of ``extra`` that are select-multiple questions, holding the
        chosen names separated by spaces (NA = not answered); the choices in the order of the form.

    Returns
    -------
    pandas.DataFrame
        The export as strings (exactly what the file holds).

    Examples
    --------
    >>> import pandas as pd
    >>> ans = pd.DataFrame({"respondent_id": ["a1"], "ncs_getalong": [4], "ncs_warmth_1": [70]})
    >>> kobo = simulate_kobo_export("ncs_social_mixing", ans)
    >>> kobo.loc[0, "ncs_local_area/ncs_getalong"], kobo.loc[0, "ncs_attitudes/ncs_warmth_1"]
    ('4', '70')
    >>> more = pd.DataFrame({"site": [2], "activities": ["sport music"]})
    >>> kobo = simulate_kobo_export("ncs_social_mixing", ans, extra=more, extra_labels={"site": {2: "Leeds"}},
    ...                             select_multiple={"activities": {"sport": "Sport", "music": "Music", "art": "Art"}})
    >>> kobo.filter(like="admin/").iloc[0].to_dict()
    {'admin/site': '2', 'admin/activities': 'sport music', 'admin/activities/sport': '1', 'admin/activities/music': '1', 'admin/activities/art': '0'}
    """
    import pandas as pd

    if values not in ("xml", "labels"):
        raise DataError(f"values must be 'xml' or 'labels', not {values!r}")
    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    qs = lay.questions
    _check_answers(answers, {q.code for q in qs} | ({id_field} if id_field else set()))
    n = len(answers)
    labels = values == "labels"
    extra_df = _extra_frame(extra, n, {q.code for q in qs} | {"start", "end", id_field or ""})
    ex_labels = _extra_labels_ok(extra_df, extra_labels)
    multi = {k: dict(v) for k, v in (select_multiple or {}).items()}
    unknown_multi = sorted(set(multi) - set(extra_df.columns))
    if unknown_multi:
        raise DataError(f"select_multiple names column(s) {unknown_multi} that are not in extra")
    rng = random.Random(seed)
    t0 = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    out: dict[str, list[str]] = {}

    def stamp(t: datetime, ms: bool = True) -> str:
        s = t.strftime("%Y-%m-%dT%H:%M:%S")
        return s + (".000+00:00" if ms else "")

    def put(header: str, col: list[str]) -> None:
        if header in out:
            raise DataError(f"two questions would share the export column '{header}'")
        out[header] = col

    times = [t0 + timedelta(minutes=7 * i) for i in range(n)]
    out["start"] = [stamp(t) for t in times]
    out["end"] = [stamp(t + timedelta(minutes=6)) for t in times]
    if id_field:
        ids = (
            answers[id_field]
            if id_field in answers.columns
            else pd.Series([f"R{i + 1:05d}" for i in range(n)])
        )
        put("Respondent ID" if labels else id_field, ["" if pd.isna(v) else str(v) for v in ids])
    for col in extra_df.columns:
        header = f"{extra_group}{group_separator}{col}" if include_groups else str(col)
        if col in multi:
            for h, cells in _kobo_select_multiple(extra_df[col], multi[col], header, group_separator, labels):
                put(h, cells)
        else:
            put(header, [_extra_text(v, ex_labels.get(col), labels) for v in extra_df[col]])
    group_labels = {g.name: g.label for g in lay.groups}
    for q in qs:
        if labels:
            header = f"{group_labels[q.group]}{group_separator}{q.wording}" if include_groups else q.wording
        else:
            header = f"{q.group}{group_separator}{q.code}" if include_groups else q.code
        put(header, [_answer_text(q, x, labels) for x in _codes(q, answers)])
    version = "v" + uuid.UUID(int=rng.getrandbits(128)).hex[:22]
    meta = {
        "_id": [str(100000000 + i) for i in range(n)],
        "_uuid": [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)],
        "_submission_time": [stamp(t + timedelta(minutes=6, seconds=30), ms=False) for t in times],
        "_validation_status": [""] * n,
        "_notes": [""] * n,
        "_status": ["submitted_via_web"] * n,
        "_submitted_by": [""] * n,
        "__version__": [version] * n,
        "_tags": [""] * n,
        "_index": [str(i + 1) for i in range(n)],
    }
    out.update(meta)
    df = pd.DataFrame(out, dtype=str)
    if path is not None:
        if str(path).lower().endswith(".xlsx"):
            _write_xlsx(df, path, _xlsx_sheet_name(_form_title(lay)))
        else:
            _write_text(df, path, sep=delimiter)
    return df


def _kobo_select_multiple(
    series: pd.Series, choices: Mapping[str, str], header: str, sep: str, labels: bool
) -> list[tuple[str, list[str]]]:
    """Kobo's two forms of a select-multiple answer: the summary column and one 0/1 column per choice."""
    picked: list[list[str] | None] = []
    for row, v in enumerate(series):
        if _blank(v):
            picked.append(None)
            continue
        names = str(v).split()
        bad = [c for c in names if c not in choices]
        if bad:
            raise DataError(
                f"choice(s) {bad} are not among {list(choices)}", column=str(series.name), row=row
            )
        picked.append(names)
    summary = ["" if p is None else " ".join(choices[c] if labels else c for c in p) for p in picked]
    cols = [(header, summary)]
    for name, label in choices.items():
        cells = ["" if p is None else ("1" if name in p else "0") for p in picked]
        cols.append((f"{header}{sep}{label if labels else name}", cells))
    return cols


# ------------------------------------------------------------------ Qualtrics
@dataclass
class _QColumn:
    """One question column of a Qualtrics export."""

    question: Question
    qid: str  # "Q3" or "Q3_2"
    import_id: str  # "QID3" or "QID3_2"
    text: str  # the question-text row


def _qualtrics_columns(lay: Layout) -> list[_QColumn]:
    """Number the questions as a Qualtrics survey built from the layout would: consecutive items of one group
    that share a response scale form one matrix question ``Qn`` with statements ``Qn_1, Qn_2, ...`` (question
    text ``"<group label> - <item wording>"``); any other item is a single question ``Qn`` (its wording)."""
    cols: list[_QColumn] = []
    n = 0
    for grp in lay.groups:
        qs = grp.questions
        i = 0
        while i < len(qs):
            run = [qs[i]]
            while i + len(run) < len(qs) and qs[i + len(run)].scale_name == qs[i].scale_name:
                run.append(qs[i + len(run)])
            n += 1
            if len(run) == 1:
                cols.append(_QColumn(run[0], f"Q{n}", f"QID{n}", run[0].wording))
            else:
                cols += [
                    _QColumn(q, f"Q{n}_{k}", f"QID{n}_{k}", f"{grp.label} - {q.wording}")
                    for k, q in enumerate(run, start=1)
                ]
            i += len(run)
    return cols


def _import_id(key: str) -> str:
    d = {"ImportId": key}
    if key in _QUALTRICS_DATES:
        d["timeZone"] = "Z"
    return json.dumps(d, separators=(",", ":"))


def _float32_text(x: float) -> str:
    """A coordinate as Qualtrics writes it: the exact decimal value of a single-precision float."""
    f = struct.unpack("f", struct.pack("f", x))[0]
    return format(Decimal(f), "f")


def _random_code(q: Question, rng: random.Random) -> float:
    rs = q.scale
    if rs.type == "numeric":
        return float(rng.randint(int(rs.min_code), int(rs.max_code)))
    return float(rng.choice(rs.valid_codes or []))


def simulate_qualtrics_export(
    instruments: InstrumentsLike,
    answers: pd.DataFrame,
    path: str | Path | None = None,
    *,
    extra: pd.DataFrame | None = None,
    extra_labels: Mapping[str, Mapping[Any, str]] | None = None,
    values: Literal["text", "numeric"] = "numeric",
    question_ids: bool = True,
    n_preview: int = 0,
    n_unfinished: int = 0,
    seed: int = 0,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
    start: datetime | None = None,
) -> pd.DataFrame:
    """Write the CSV Qualtrics would export ("Download data table", CSV) for a survey holding these instruments.

    The file has Qualtrics' three header rows: the column names, the question text, and the import IDs as JSON
    (``{"ImportId":"QID2_1"}``; the date columns also name the time zone, ``"timeZone":"Z"`` for UTC). The
    columns are :data:`QUALTRICS_META_COLUMNS` (``StartDate`` ... ``UserLanguage``), the questions, then the
    ``extra`` columns as embedded data fields (question text and ImportId are the field name).

    With ``question_ids=True`` the questions are named as Qualtrics numbers them: consecutive items of one
    section sharing a response scale form a matrix question whose statements are columns ``Qn_1, Qn_2, ...``
    with the question text ``"<section label> - <item wording>"``; other items are single questions ``Qn``
    with the item wording as text (placeholders filled as in
    :func:`~evaltoolkit.instruments.export.to_xlsform`). With ``question_ids=False`` the columns are named by
    the item codes (a survey whose questions were renamed to the codes); text and import IDs stay the same.

    ``values="numeric"`` ("Use numeric values") writes the codes, missing codes as the instrument codes them
    (``-99``), ``Status`` as ``0`` (a response) or ``1`` (survey preview) and ``Finished`` as ``1``/``0``;
    ``values="text"`` ("Use choice text") writes the choice labels, ``Status`` as ``IP Address`` or
    ``Survey Preview`` and ``Finished`` as ``True``/``False``. Numeric questions (sliders, text entry) hold the
    number in both modes; unanswered questions are empty.

    The rows are the ``n_preview`` survey-preview responses (recorded two days before ``start``,
    ``DistributionChannel`` ``preview``), then one response per row of ``answers`` (anonymous link), then the
    ``n_unfinished`` unfinished responses (``Finished`` false, ``Progress`` below 100, only the first questions
    answered, recorded when Qualtrics closed them a week after their last activity). Preview and unfinished
    responses get random valid answers (from ``seed``) and empty embedded data. Metadata: IP addresses from the
    documentation range ``192.0.2.0/24``, coordinates in Great Britain, ``ResponseId`` ``R_`` and 15 letters
    and digits, recipient names, e-mail and external reference empty (anonymous link), ``UserLanguage`` ``EN``.

    Parameters
    ----------
    instruments, placeholders, fill, slots
        As for :func:`~evaltoolkit.instruments.export.to_xlsform`.
    answers : DataFrame
        One row per response, one column per item code holding the numeric code (missing codes allowed,
        NA = unanswered). Other columns raise ``DataError``: pass IDs and the like in ``extra``.
    path : str or Path, optional
        Write the CSV here (UTF-8 with byte-order mark, ``,`` separated).
    extra : DataFrame, optional
        Embedded data fields (respondent ID, arm, wave...), aligned with the rows of ``answers``.
    extra_labels : dict, optional
        ``{column: {value: label}}``: coded embedded data written as the label in text exports and as the value
        in numeric ones (as if the field were a recoded question).
    values : {"numeric", "text"}
        Numeric values or choice text.
    question_ids : bool
        Name question columns ``Q1, Q2_1, ...`` (default) or by the item codes.
    n_preview, n_unfinished : int
        Survey-preview and unfinished responses added to the rows of ``answers``.
    seed : int
        Seed for the metadata and the answers of the added responses.
    start : datetime, optional
        Start of the first response (default 2026-01-05 09:00 UTC); later ones are 11 min apart.

    Returns
    -------
    pandas.DataFrame
        The file exactly as written, as strings, read the way ``pd.read_csv(path, dtype=str,
        keep_default_na=False)`` reads it: the columns are the first header row, row 0 is the question-text row,
        row 1 the ImportId row, and the responses start at row 2.

    Examples
    --------
    >>> import pandas as pd
    >>> ans = pd.DataFrame({"ncs_warmth_1": [70], "ncs_warmth_2": [65], "ncs_getalong": [-99]})
    >>> q = simulate_qualtrics_export("ncs_social_mixing", ans, extra=pd.DataFrame({"respondent_id": ["a1"]}))
    >>> q.columns[:4].tolist(), q.columns[-1]
    (['StartDate', 'EndDate', 'Status', 'IPAddress'], 'respondent_id')
    >>> q["Q2_1"].tolist()
    ['Feelings about other groups - Using the thermometer below, in general how cold or warm do you feel towards White British people?', '{"ImportId":"QID2_1"}', '70']
    >>> q.loc[2, ["Status", "Finished", "Q5"]].tolist()
    ['0', '1', '-99']
    """
    import pandas as pd

    if values not in ("text", "numeric"):
        raise DataError(f"values must be 'text' or 'numeric', not {values!r}")
    for name, k in (("n_preview", n_preview), ("n_unfinished", n_unfinished)):
        if not isinstance(k, int) or k < 0:
            raise DataError(f"{name} must be a whole number >= 0, not {k!r}")
    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    qcols = _qualtrics_columns(lay)
    _check_answers(answers, {c.question.code for c in qcols}, "; pass IDs and other columns in extra=")
    n = len(answers)
    text = values == "text"
    names = [c.qid if question_ids else c.question.code for c in qcols]
    extra_df = _extra_frame(extra, n, set(names) | set(QUALTRICS_META_COLUMNS))
    ex_labels = _extra_labels_ok(extra_df, extra_labels)
    rng = random.Random(seed)
    t0 = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    codes = {c.question.code: _codes(c.question, answers) for c in qcols}
    rows: list[dict[str, str]] = []

    def stamp(t: datetime) -> str:
        return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def response(t: datetime, kind: str, answered: list[float | None], extras: list[str]) -> dict[str, str]:
        done = kind != "unfinished"
        duration = rng.randint(240, 1500) if done else rng.randint(30, 400)
        end = t + timedelta(seconds=duration)
        n_done = sum(a is not None for a in answered)
        row = {
            "StartDate": stamp(t),
            "EndDate": stamp(end),
            "Status": ("Survey Preview" if text else "1")
            if kind == "preview"
            else ("IP Address" if text else "0"),
            "IPAddress": f"192.0.2.{rng.randint(1, 254)}",
            "Progress": "100" if done else str(min(99, max(1, round(100 * n_done / (len(qcols) + 1))))),
            "Duration (in seconds)": str(duration),
            "Finished": ("True" if text else "1") if done else ("False" if text else "0"),
            "RecordedDate": stamp(end + (timedelta(seconds=1) if done else timedelta(days=7))),
            "ResponseId": "R_" + "".join(rng.choice(_ALNUM) for _ in range(15)),
            "RecipientLastName": "",
            "RecipientFirstName": "",
            "RecipientEmail": "",
            "ExternalReference": "",
            "LocationLatitude": _float32_text(rng.uniform(50.2, 55.8)),
            "LocationLongitude": _float32_text(rng.uniform(-4.5, 1.5)),
            "DistributionChannel": "preview" if kind == "preview" else "anonymous",
            "UserLanguage": "EN",
        }
        for name, c, x in zip(names, qcols, answered):
            row[name] = _answer_text(c.question, x, text)
        row.update(zip(extra_df.columns, extras))
        return row

    blank_extras = [""] * extra_df.shape[1]
    for k in range(n_preview):
        t = t0 - timedelta(days=2) + timedelta(minutes=13 * k)
        rows.append(response(t, "preview", [_random_code(c.question, rng) for c in qcols], blank_extras))
    for i in range(n):
        answered = [codes[c.question.code][i] for c in qcols]
        extras = [_extra_text(extra_df.at[i, col], ex_labels.get(col), text) for col in extra_df.columns]
        rows.append(response(t0 + timedelta(minutes=11 * i), "response", answered, extras))
    for k in range(n_unfinished):
        stop = rng.randint(1, max(1, len(qcols) - 1))
        answered = [_random_code(c.question, rng) if j < stop else None for j, c in enumerate(qcols)]
        t = t0 + timedelta(minutes=11 * n + 17 * k)
        rows.append(response(t, "unfinished", answered, blank_extras))
    header_text = {m: txt for m, txt, _ in _QUALTRICS_META}
    header_text.update(zip(names, (c.text for c in qcols)))
    header_text.update({str(col): str(col) for col in extra_df.columns})
    import_ids = {m: _import_id(key) for m, _, key in _QUALTRICS_META}
    import_ids.update(zip(names, (_import_id(c.import_id) for c in qcols)))
    import_ids.update({str(col): _import_id(str(col)) for col in extra_df.columns})
    columns = [*QUALTRICS_META_COLUMNS, *names, *(str(c) for c in extra_df.columns)]
    df = pd.DataFrame([header_text, import_ids, *rows], columns=columns, dtype=str)
    if path is not None:
        _write_text(df, path, bom=True)
    return df


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


# ------------------------------------------------------------------ SPSS and Stata
@dataclass
class _StatFile:
    """The content of a ``.sav``/``.dta`` export: data, labels, missing codes, formats."""

    data: pd.DataFrame
    value_labels: dict[str, dict[Any, str]]
    missing: dict[str, list[Any]]
    variable_labels: dict[str, str]
    measure: dict[str, str]
    formats: dict[str, str]
    valid: dict[str, tuple[float, float]]  # lowest and highest valid code of each item


def _stat_file(
    instruments: InstrumentsLike,
    answers: pd.DataFrame,
    extra: pd.DataFrame | None,
    extra_labels: Mapping[str, Mapping[Any, str]] | None,
    placeholders: Mapping[str, Any] | None,
    fill: Mapping[str, str] | None,
    slots: SlotPolicy,
) -> _StatFile:
    import pandas as pd

    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    qs = lay.questions
    _check_answers(answers, {q.code for q in qs}, "; pass IDs and other columns in extra=")
    n = len(answers)
    extra_df = _extra_frame(extra, n, {q.code for q in qs})
    ex_labels = _extra_labels_ok(extra_df, extra_labels)
    data: dict[str, Any] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    missing: dict[str, list[Any]] = {}
    var_labels: dict[str, str] = {}
    measure: dict[str, str] = {}
    formats: dict[str, str] = {}
    valid: dict[str, tuple[float, float]] = {}
    for col in extra_df.columns:
        s = extra_df[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        data[str(col)] = s.astype(float) if numeric else s.map(lambda v: "" if _blank(v) else str(v))
        if col in ex_labels:
            value_labels[str(col)] = {
                (_num_key(k) if numeric else str(k)): lab for k, lab in ex_labels[col].items()
            }
            measure[str(col)] = "nominal"
        else:
            measure[str(col)] = "scale" if numeric else "nominal"
        if numeric and s.dropna().map(lambda v: float(v).is_integer()).all():
            formats[str(col)] = "F8.0"
    for q in qs:
        rs = q.scale
        data[q.code] = pd.Series([float("nan") if x is None else x for x in _codes(q, answers)], dtype=float)
        value_labels[q.code] = {**dict(sorted(rs.labels.items())), **dict(sorted(rs.missing.items()))}
        if rs.missing:
            missing[q.code] = sorted(rs.missing)
        var_labels[q.code] = q.wording
        measure[q.code] = {"ordinal": "ordinal", "nominal": "nominal"}.get(rs.type, "scale")
        formats[q.code] = "F8.0" if rs.is_integer else "F8.2"
        valid[q.code] = (float(rs.min_code), float(rs.max_code))
    return _StatFile(pd.DataFrame(data), value_labels, missing, var_labels, measure, formats, valid)


def _num_key(k: Any) -> int | float:
    x = float(k)
    return int(x) if x.is_integer() else x


def _spss_missing(codes: list[Any], valid_lo: float, valid_hi: float, column: str) -> list[Any]:
    """SPSS user-missing values: up to three discrete values, or a range (plus one value) outside the valid codes."""
    if len(codes) <= 3:
        return list(codes)
    lo, hi = min(codes), max(codes)
    if hi < valid_lo or lo > valid_hi:
        return [{"lo": lo, "hi": hi}]
    raise DataError(
        f"{len(codes)} missing codes {codes} cannot be declared in SPSS (at most three values, or a range "
        "that holds no valid code)",
        column=column,
    )


def _write_stat(kind: str, write: Any, path: str | Path, **kwargs: Any) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(dst_path=str(p), **kwargs)
    except Exception as exc:  # pyreadstat raises its own error types (ReadstatError, PyreadstatError)
        raise DataError(f"cannot write the {kind} file: {exc}", file=str(p)) from None


def simulate_spss_export(
    instruments: InstrumentsLike,
    answers: pd.DataFrame,
    path: str | Path,
    *,
    extra: pd.DataFrame | None = None,
    extra_labels: Mapping[str, Mapping[Any, str]] | None = None,
    user_missing: bool = True,
    variable_labels: bool = True,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
) -> pd.DataFrame:
    """Write an SPSS ``.sav`` file of these answers, as a survey exported to SPSS (or prepared in SPSS) holds
    them, with :func:`pyreadstat.write_sav`.

    The variables are the ``extra`` columns (ID, arm, wave..., first) then one per item in questionnaire order.
    Items hold the numeric codes (missing codes such as -99 as they are, blanks as system-missing) with the
    instrument's value labels, missing codes included; with ``user_missing`` the missing codes are declared
    user-missing (up to three values, else a range); with ``variable_labels`` each item is labelled with its
    wording (SPSS keeps the first 256 characters). Items are measured as ordinal, nominal or scale after their
    response scale. ``extra`` columns keep their values (numbers stay numeric, the rest is text) and get the value
    labels of ``extra_labels`` (e.g. ``{"arm": {1: "NCS participants", 2: "Interested non-participants"}}``).

    Parameters
    ----------
    instruments, placeholders, fill, slots
        As for :func:`~evaltoolkit.instruments.export.to_xlsform`.
    answers : DataFrame
        One column per item code holding the numeric code (missing codes allowed, NA = unanswered); other
        columns raise ``DataError`` (pass them in ``extra``).
    path : str or Path
        The ``.sav`` file to write.
    extra : DataFrame, optional
        Non-item variables aligned with the rows of ``answers``.
    extra_labels : dict, optional
        ``{column: {value: label}}`` value labels for ``extra`` columns.
    user_missing, variable_labels : bool
        Declare the missing codes user-missing; label the item variables with their wording.

    Returns
    -------
    pandas.DataFrame
        The data written (numeric codes; text for the text variables).

    Examples
    --------
    >>> import pandas as pd, pyreadstat, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w1.sav"
    >>> ans = pd.DataFrame({"ncs_getalong": [4, -99]})
    >>> extra = pd.DataFrame({"respondent_id": ["a1", "a2"], "arm": [1, 2]})
    >>> _ = simulate_spss_export("ncs_social_mixing", ans, p, extra=extra,
    ...                          extra_labels={"arm": {1: "NCS participants", 2: "Interested non-participants"}})
    >>> _, meta = pyreadstat.read_sav(str(p), metadataonly=True, user_missing=True)
    >>> meta.missing_ranges["ncs_getalong"], meta.variable_value_labels["arm"][2.0]
    ([{'lo': -99.0, 'hi': -99.0}, {'lo': -98.0, 'hi': -98.0}], 'Interested non-participants')
    """
    import pyreadstat

    sf = _stat_file(instruments, answers, extra, extra_labels, placeholders, fill, slots)
    missing = {}
    if user_missing:
        missing = {c: _spss_missing(codes, *sf.valid[c], c) for c, codes in sf.missing.items()}
    _write_stat(
        "SPSS .sav",
        pyreadstat.write_sav,
        path,
        df=sf.data,
        column_labels=sf.variable_labels if variable_labels else None,
        variable_value_labels=sf.value_labels,
        missing_ranges=missing or None,
        variable_measure=sf.measure,
        variable_format=sf.formats,
    )
    return sf.data


def simulate_stata_export(
    instruments: InstrumentsLike,
    answers: pd.DataFrame,
    path: str | Path,
    *,
    extra: pd.DataFrame | None = None,
    extra_labels: Mapping[str, Mapping[Any, str]] | None = None,
    variable_labels: bool = True,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
) -> pd.DataFrame:
    """Write a Stata ``.dta`` file of these answers with :func:`pyreadstat.write_dta`: the content of
    :func:`simulate_spss_export` as far as Stata can hold it.

    The variables are the ``extra`` columns then one per item; items hold the numeric codes with the
    instrument's value labels (missing codes included). Stata has no user-missing declaration for ordinary
    values (only the extended missing values ``.a`` ... ``.z``), so missing codes such as -99 are written as
    they are, as a Stata user's file holds them; blanks are system-missing (``.``). Variable labels (the item
    wordings) are cut to Stata's 80 characters. Stata value labels need whole-number codes: a labelled ``extra``
    column that is not numeric raises ``DataError``. pyreadstat gives every variable its own value-label set
    (named after the variable), where a Stata user would attach one set to all items of a scale.

    Parameters
    ----------
    instruments, answers, path, extra, extra_labels, variable_labels, placeholders, fill, slots
        As for :func:`simulate_spss_export` (``path`` is the ``.dta`` file).

    Returns
    -------
    pandas.DataFrame
        The data written.

    Examples
    --------
    >>> import pandas as pd, pyreadstat, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w1.dta"
    >>> _ = simulate_stata_export("ncs_social_mixing", pd.DataFrame({"ncs_getalong": [4, -99]}), p)
    >>> df, meta = pyreadstat.read_dta(str(p))
    >>> df["ncs_getalong"].tolist(), meta.variable_value_labels["ncs_getalong"][-99]
    ([4.0, -99.0], "Don't know")
    """
    import pandas as pd
    import pyreadstat

    sf = _stat_file(instruments, answers, extra, extra_labels, placeholders, fill, slots)
    for col, labels in sf.value_labels.items():
        if not pd.api.types.is_numeric_dtype(sf.data[col]):
            raise DataError(
                "Stata value labels need numeric codes; recode this column to numbers", column=col
            )
        bad = [k for k in labels if not float(k).is_integer()]
        if bad:
            raise DataError(f"Stata value labels need whole-number codes, not {bad}", column=col)
    _write_stat(
        "Stata .dta",
        pyreadstat.write_dta,
        path,
        df=sf.data,
        column_labels={c: lab[:_STATA_LABEL_MAX] for c, lab in sf.variable_labels.items()}
        if variable_labels
        else None,
        variable_value_labels=sf.value_labels,
    )
    return sf.data
