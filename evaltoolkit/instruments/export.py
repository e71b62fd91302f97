"""Turn instruments into questionnaires: XLSForm (KoboToolbox/ODK), printable HTML and a codebook.

All exports share one layout: every instrument's items are grouped by their ``section``
(items without a section go into a group named after the instrument). In the XLSForm
each section is a ``begin_group``/``end_group`` block, so KoboToolbox names the exported
columns ``<section>/<item code>``; :func:`simulate_kobo_export` writes such an export for
given answers (used to test reading Kobo data back).

Unfilled ``user`` slots (items whose wording the user must supply, e.g. the five
unpublished Best of Us kindness scenarios) are left out by default with a warning
(``slots="omit"``); pass ``fill={"code": "wording"}`` to supply them, ``slots="keep"``
to print the bracketed instruction (for drafts), or ``slots="error"`` to refuse.

Examples
--------
>>> from evaltoolkit.instruments.export import codebook
>>> cb = codebook("ncs_social_mixing", placeholders={"place": "Leeds"})
>>> cb.loc[cb["code"] == "ncs_getalong", "kobo_column"].item()
'ncs_local_area/ncs_getalong'
"""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evaltoolkit import _compat
from evaltoolkit.errors import EvalToolkitWarning, InstrumentError
from evaltoolkit.instruments.library import VERIFIED_MARKS, Instrument, Item, ResponseScale, load_instruments

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "KOBO_META_COLUMNS",
    "codebook",
    "codebook_markdown",
    "export_questionnaire",
    "fmt_num",
    "layout",
    "to_codebook",
    "to_html",
    "to_xlsform",
    "xlsform_sheets",
]

__getattr__ = _compat.moved_names(__name__)  # simulate_kobo_export moved to evaltoolkit.simulate.exports

InstrumentsLike = str | Path | Instrument | Iterable[str | Path | Instrument]
SlotPolicy = Literal["omit", "keep", "error"]

#: Columns KoboToolbox appends after the questions in a CSV/XLS export (in this order).
KOBO_META_COLUMNS: tuple[str, ...] = (
    "_id",
    "_uuid",
    "_submission_time",
    "_validation_status",
    "_notes",
    "_status",
    "_submitted_by",
    "__version__",
    "_tags",
    "_index",
)


# ------------------------------------------------------------------ layout
@dataclass
class Question:
    """One item as it appears in a questionnaire (wording with placeholders filled)."""

    instrument: Instrument
    item: Item
    scale: ResponseScale
    scale_name: str
    wording: str
    group: str
    list_name: str

    @property
    def code(self) -> str:
        return self.item.code


@dataclass
class Group:
    """A block of questions (a section of one instrument)."""

    name: str
    label: str
    intro: str | None
    instrument: Instrument
    questions: list[Question] = field(default_factory=list)


@dataclass
class Layout:
    """The questionnaire: groups of questions in order, plus what was left out."""

    instruments: list[Instrument]
    groups: list[Group]
    omitted_slots: list[str]
    placeholders: dict[str, str]

    @property
    def questions(self) -> list[Question]:
        return [q for g in self.groups for q in g.questions]


def _check_placeholders(instruments: list[Instrument], placeholders: Mapping[str, Any]) -> None:
    known = {p for inst in instruments for p in inst.placeholders}
    unknown = sorted(set(placeholders) - known)
    if unknown:
        raise InstrumentError(
            f"unknown placeholder(s) {unknown}; these instruments use: {', '.join(sorted(known)) or 'none'}",
            field="placeholders",
        )


def layout(
    instruments: InstrumentsLike,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
) -> Layout:
    """Resolve instruments into groups of questions with their final wording.

    Parameters
    ----------
    instruments : id, path, Instrument or a list of these
        Instruments in questionnaire order (item codes must not clash).
    placeholders : dict, optional
        Values for ``{placeholders}`` (e.g. ``{"place": "Ramsgate"}``), applied to every
        instrument that uses them; an unknown name raises ``InstrumentError``.
    fill : dict, optional
        Wordings for ``user`` slots, ``{item code: wording}``.
    slots : {"omit", "keep", "error"}
        What to do with ``user`` slots that are still unfilled.

    Returns
    -------
    Layout

    Examples
    --------
    >>> lay = layout("best_of_us_children", placeholders={"place": "Ramsgate"})
    >>> [q.code for q in lay.questions][:3], lay.omitted_slots[:1]
    (['bouc_like_part', 'bouc_proud_part', 'bouc_kind_1'], ['bouc_kind_2'])
    """
    if slots not in ("omit", "keep", "error"):
        raise InstrumentError(f"slots must be 'omit', 'keep' or 'error', not {slots!r}")
    insts = load_instruments(instruments)
    values = {k: str(v) for k, v in (placeholders or {}).items()}
    _check_placeholders(insts, values)
    if fill:
        remaining = dict(fill)
        new = []
        for inst in insts:
            mine = {c: w for c, w in remaining.items() if c in inst.item_codes}
            for c in mine:
                remaining.pop(c)
            new.append(inst.fill_slots(mine) if mine else inst)
        if remaining:
            raise InstrumentError(f"fill: no item(s) {sorted(remaining)} in these instruments", field="fill")
        insts = new
    unfilled = [c for inst in insts for c in inst.unfilled_slots()]
    if unfilled and slots == "error":
        raise InstrumentError(
            f"{len(unfilled)} user slot(s) have no wording yet: {', '.join(unfilled)}; supply them with "
            "fill={code: wording} (CLI: --fill code='wording')",
            field="wording",
        )
    omitted = unfilled if slots == "omit" else []
    if omitted:
        warnings.warn(
            f"{len(omitted)} user slot(s) without wording were left out of the questionnaire: "
            f"{', '.join(omitted)}. Supply them with fill={{code: wording}} (CLI: --fill code='wording').",
            EvalToolkitWarning,
            stacklevel=2,
        )
    item_codes = {c for inst in insts for c in inst.item_codes}
    groups: list[Group] = []
    by_key: dict[tuple[str, str], Group] = {}
    used_names: dict[str, str] = {}
    for inst in insts:
        for item in inst.items:
            if item.code in omitted:
                continue
            sec = item.section or inst.id
            key = (inst.id, sec)
            grp = by_key.get(key)
            if grp is None:
                name = sec
                if (name in used_names and used_names[name] != inst.id) or name in item_codes:
                    name = f"{inst.id}_{sec}"
                used_names[name] = inst.id
                label = inst.fill(inst.section_label(item.section), **values) if item.section else inst.title
                intro = inst.fill(inst.sections[sec].intro, **values) if sec in inst.sections else None
                grp = Group(name=name, label=label or name, intro=intro, instrument=inst)
                by_key[key] = grp
                groups.append(grp)
            rs = inst.response_scales[item.response_scale]
            grp.questions.append(
                Question(
                    instrument=inst,
                    item=item,
                    scale=rs,
                    scale_name=item.response_scale,
                    wording=inst.wording(item.code, **values),
                    group=grp.name,
                    list_name=f"{inst.id}_{item.response_scale}",
                )
            )
    merged = {}
    for inst in insts:
        merged.update(inst.placeholders)
    merged.update(values)
    return Layout(instruments=insts, groups=groups, omitted_slots=omitted, placeholders=merged)


def fmt_num(x: float | int | None) -> str:
    """A code or bound as text: whole numbers without ".0", missing as ""."""
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _labels_text(labels: Mapping[int, str]) -> str:
    return "; ".join(f"{c}={lab}" for c, lab in sorted(labels.items()))


# ------------------------------------------------------------------ XLSForm
def xlsform_sheets(
    instruments: InstrumentsLike,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
    form_title: str | None = None,
    form_id: str | None = None,
    version: str | None = None,
    id_field: str | None = "respondent_id",
    include_missing: bool = True,
    required: bool = False,
) -> dict[str, list[dict[str, str]]]:
    """The rows of the XLSForm ``survey``, ``choices`` and ``settings`` sheets.

    Returns
    -------
    dict
        ``{"survey": [...], "choices": [...], "settings": [...]}``, each a list of row dicts
        (column -> cell text). :func:`to_xlsform` writes them to an ``.xlsx`` file.

    Examples
    --------
    >>> sheets = xlsform_sheets("ncs_social_mixing")
    >>> [r["type"] for r in sheets["survey"][:4]]
    ['start', 'end', 'text', 'begin_group']
    """
    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    return _sheets_from_layout(
        lay,
        form_title=form_title,
        form_id=form_id,
        version=version,
        id_field=id_field,
        include_missing=include_missing,
        required=required,
    )


def _sheets_from_layout(
    lay: Layout,
    *,
    form_title: str | None,
    form_id: str | None,
    version: str | None,
    id_field: str | None,
    include_missing: bool,
    required: bool,
) -> dict[str, list[dict[str, str]]]:
    survey: list[dict[str, str]] = [
        {"type": "start", "name": "start"},
        {"type": "end", "name": "end"},
    ]
    codes = {q.code for q in lay.questions}
    if id_field:
        if id_field in codes:
            raise InstrumentError(f"id_field '{id_field}' clashes with an item code", field="id_field")
        survey.append(
            {
                "type": "text",
                "name": id_field,
                "label": "Respondent ID",
                "hint": "The ID that links this person's answers across survey waves.",
                "required": "yes",
            }
        )
    choices: list[dict[str, str]] = []
    lists_done: set[str] = set()
    for grp in lay.groups:
        survey.append({"type": "begin_group", "name": grp.name, "label": grp.label})
        if grp.intro:
            survey.append({"type": "note", "name": f"{grp.name}_intro", "label": grp.intro})
        for q in grp.questions:
            rs = q.scale
            row: dict[str, str] = {"name": q.code, "label": q.wording}
            if required:
                row["required"] = "yes"
            if rs.type == "numeric":
                row["type"] = "integer" if rs.is_integer else "decimal"
                lo, hi = fmt_num(rs.min_code), fmt_num(rs.max_code)
                alts = [f". = {fmt_num(c)}" for c in sorted(rs.missing)] if include_missing else []
                row["constraint"] = " or ".join([f"(. >= {lo} and . <= {hi})", *alts])
                miss = "; ".join(f"{fmt_num(c)} = {lab}" for c, lab in sorted(rs.missing.items()))
                msg = f"Enter a number from {lo} to {hi}"
                row["constraint_message"] = msg + (f" (or {miss})" if include_missing and miss else "")
                hint = [f"{fmt_num(c)} = {lab}" for c, lab in sorted(rs.labels.items())]
                if include_missing and rs.missing:
                    hint.append(f"Enter {miss}")
                if hint:
                    row["hint"] = "; ".join(hint)
            else:
                row["type"] = f"select_one {q.list_name}"
                if q.list_name not in lists_done:
                    lists_done.add(q.list_name)
                    for code, lab in sorted(rs.labels.items()):
                        choices.append({"list_name": q.list_name, "name": str(code), "label": lab})
                    if include_missing:
                        for code, lab in sorted(rs.missing.items(), reverse=True):
                            choices.append({"list_name": q.list_name, "name": str(code), "label": lab})
            survey.append(row)
        survey.append({"type": "end_group", "name": grp.name})
    first = lay.instruments[0]
    title = form_title or (first.title if len(lay.instruments) == 1 else "Questionnaire")
    fid = form_id or "_".join(i.id for i in lay.instruments)[:60]
    ver = version or datetime.now(UTC).strftime("%Y%m%d%H%M")
    settings = [{"form_title": title, "form_id": re.sub(r"[^A-Za-z0-9_]", "_", fid), "version": ver}]
    return {"survey": survey, "choices": choices, "settings": settings}


_SHEET_COLUMNS = {
    "survey": ["type", "name", "label", "hint", "required", "constraint", "constraint_message"],
    "choices": ["list_name", "name", "label"],
    "settings": ["form_title", "form_id", "version"],
}


def to_xlsform(
    instruments: InstrumentsLike,
    path: str | Path,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
    form_title: str | None = None,
    form_id: str | None = None,
    version: str | None = None,
    id_field: str | None = "respondent_id",
    include_missing: bool = True,
    required: bool = False,
) -> Path:
    """Write an XLSForm (``survey``, ``choices``, ``settings`` sheets) for KoboToolbox / ODK.

    Parameters
    ----------
    instruments : id, path, Instrument or a list of these
        Instruments in questionnaire order.
    path : str or Path
        The ``.xlsx`` file to write.
    placeholders, fill, slots
        See :func:`layout`.
    form_title, form_id, version : str, optional
        The ``settings`` sheet (defaults: the instrument title, the instrument ids, a UTC timestamp).
    id_field : str or None
        Name of a required text question for the respondent ID (linking waves); ``None`` to omit.
    include_missing : bool
        Offer the missing codes (e.g. -99 "Don't know") as answers.
    required : bool
        Make every item required (default: respondents may skip).

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = to_xlsform("ncs_social_mixing", pathlib.Path(tempfile.mkdtemp()) / "ncs.xlsx")
    >>> out.suffix
    '.xlsx'
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    sheets = xlsform_sheets(
        instruments,
        placeholders=placeholders,
        fill=fill,
        slots=slots,
        form_title=form_title,
        form_id=form_id,
        version=version,
        id_field=id_field,
        include_missing=include_missing,
        required=required,
    )
    wb = Workbook()
    wb.remove(wb.active)
    for name in ("survey", "choices", "settings"):
        ws = wb.create_sheet(name)
        cols = _SHEET_COLUMNS[name]
        ws.append(cols)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in sheets[name]:
            ws.append([row.get(c, "") or None for c in cols])
        ws.freeze_panes = "A2"
        for i, c in enumerate(cols):
            width = 60 if c in ("label", "hint", "constraint_message") else 24
            ws.column_dimensions[chr(ord("A") + i)].width = width
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# ------------------------------------------------------------------ codebook
def codebook(
    instruments: InstrumentsLike,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "keep",
) -> pd.DataFrame:
    """One row per item: wording, codes, missing codes, keying, scales, verification, source, licence.

    Returns
    -------
    pandas.DataFrame
        Columns ``instrument, section, code, kobo_column, wording, type, response_scale, values,
        missing, min, max, reverse, scales, verified, verified_meaning, source, licence, note``.
        ``kobo_column`` is the header KoboToolbox gives the item in an export with groups.

    Examples
    --------
    >>> cb = codebook("best_of_us_children")
    >>> cb.loc[cb["code"] == "bouc_kind_2", "verified"].item()
    'user'
    """
    import pandas as pd

    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    rows = []
    for q in lay.questions:
        inst, it, rs = q.instrument, q.item, q.scale
        rows.append(
            {
                "instrument": inst.id,
                "section": q.group,
                "code": it.code,
                "kobo_column": f"{q.group}/{it.code}",
                "wording": q.wording,
                "type": rs.type,
                "response_scale": q.scale_name,
                "values": _labels_text(rs.labels),
                "missing": _labels_text(rs.missing),
                "min": rs.min_code,
                "max": rs.max_code,
                "reverse": bool(it.reverse),
                "scales": ", ".join(s.id for s in inst.scales if it.code in s.items),
                "verified": it.verified,
                "verified_meaning": VERIFIED_MARKS[it.verified],
                "source": it.source,
                "licence": it.licence,
                "note": it.note or "",
            }
        )
    return pd.DataFrame(rows)


def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def codebook_markdown(
    instruments: InstrumentsLike,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "keep",
) -> str:
    """The codebook as Markdown: per instrument a description, an item table, response scales and scales.

    Examples
    --------
    >>> md = codebook_markdown("ncs_social_mixing")
    >>> md.startswith("# Codebook")
    True
    """
    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    cb = codebook(lay.instruments, placeholders=placeholders, slots="keep")
    out = ["# Codebook", ""]
    out.append("Verification marks: " + "; ".join(f"**{k}** {v}" for k, v in VERIFIED_MARKS.items()) + ".")
    out.append("")
    for inst in lay.instruments:
        out += [f"## {inst.title} (`{inst.id}`, version {inst.version})", ""]
        out += [f"Construct: {inst.construct}", ""]
        if inst.description:
            out += [inst.description, ""]
        if inst.notes:
            out += [f"Notes: {inst.notes}", ""]
        if inst.placeholders:
            out += [
                "Placeholders (defaults): "
                + "; ".join(f"`{{{k}}}` = {v}" for k, v in inst.placeholders.items()),
                "",
            ]
        sub = cb[cb["instrument"] == inst.id]
        out += [
            "| code | Kobo column | wording | response scale | reverse | scales | verified | source | licence |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for _, r in sub.iterrows():
            out.append(
                "| "
                + " | ".join(
                    _md_cell(x)
                    for x in (
                        f"`{r['code']}`",
                        f"`{r['kobo_column']}`",
                        r["wording"],
                        r["response_scale"],
                        "yes" if r["reverse"] else "",
                        r["scales"],
                        r["verified"],
                        r["source"],
                        r["licence"],
                    )
                )
                + " |"
            )
        out += ["", "Response scales:", ""]
        for name, rs in inst.response_scales.items():
            if rs.type == "numeric":
                desc = f"numeric {fmt_num(rs.min)}-{fmt_num(rs.max)}"
                if rs.labels:
                    desc += f" (anchors {_labels_text(rs.labels)})"
            else:
                desc = f"{rs.type}: {_labels_text(rs.labels)}"
            if rs.missing:
                desc += f"; missing: {_labels_text(rs.missing)}"
            if rs.note:
                desc += f". {rs.note}"
            out.append(f"- `{name}`: {_md_cell(desc)}")
        if inst.scales:
            out += ["", "| scale | label | items | method | min items |", "|---|---|---|---|---|"]
            for sc in inst.scales:
                items = ", ".join(("-" if inst.item(c).reverse else "") + c for c in sc.items)
                out.append(f"| `{sc.id}` | {_md_cell(sc.label)} | {items} | {sc.method} | {sc.min_items} |")
            out += ["", "A leading `-` marks a reverse-keyed item (scored as min + max - x)."]
        out.append("")
    return "\n".join(out)


def to_codebook(
    instruments: InstrumentsLike,
    path: str | Path,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "keep",
) -> Path:
    """Write the codebook as CSV (``.csv``) or Markdown (``.md``), chosen by the file suffix.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = to_codebook("sci2", pathlib.Path(tempfile.mkdtemp()) / "sci2.csv")
    >>> p.read_text(encoding="utf-8").splitlines()[0].split(",")[:3]
    ['instrument', 'section', 'code']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        codebook(instruments, placeholders=placeholders, fill=fill, slots=slots).to_csv(
            path, index=False, encoding="utf-8"
        )
    elif path.suffix.lower() in (".md", ".markdown"):
        path.write_text(
            codebook_markdown(instruments, placeholders=placeholders, fill=fill, slots=slots),
            encoding="utf-8",
        )
    else:
        raise InstrumentError(f"codebook file must end in .csv or .md, not '{path.suffix}'", file=str(path))
    return path


# ------------------------------------------------------------------ HTML
_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:1px solid #444;margin-top:2rem;page-break-after:avoid}
.intro{font-style:italic}.q{margin:1rem 0;page-break-inside:avoid}.qt{font-weight:bold}
.num{color:#555;margin-right:.4rem}
table.grid{border-collapse:collapse;width:100%;margin:.6rem 0;page-break-inside:avoid}
table.grid th,table.grid td{border:1px solid #999;padding:.3rem;text-align:center;font-size:.9rem}
table.grid td.stem{text-align:left;width:40%}
.opts{list-style:none;padding-left:1rem;margin:.3rem 0}.opts li{margin:.15rem 0}
.box{display:inline-block;width:.9em;height:.9em;border:1px solid #222;margin-right:.4rem;vertical-align:middle}
.write{display:inline-block;min-width:6rem;border-bottom:1px solid #222;height:1.2rem}
.miss{color:#555}.meta{font-size:.8rem;color:#444;font-family:Arial,sans-serif}
.mark{font-family:Arial,sans-serif;font-size:.75rem;padding:0 .3rem;border:1px solid #888;border-radius:3px}
.mark-R,.mark-user{background:#fde2e2;border-color:#c33}
footer{margin-top:2rem;font-size:.8rem;color:#444;font-family:Arial,sans-serif}
@media print{body{margin:0;max-width:none}.noprint{display:none}}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _choices(rs: ResponseScale, include_missing: bool) -> list[tuple[str, str]]:
    out = [(str(c), lab) for c, lab in sorted(rs.labels.items())]
    if include_missing:
        out += [(str(c), lab) for c, lab in sorted(rs.missing.items(), reverse=True)]
    return out


def _review_bits(q: Question) -> str:
    it = q.item
    return (
        f' <span class="meta">[{_esc(it.code)}]</span> <span class="mark mark-{_esc(it.verified)}" '
        f'title="{_esc(VERIFIED_MARKS[it.verified])}">{_esc(it.verified)}</span>'
        + (' <span class="meta">(reverse-keyed)</span>' if it.reverse else "")
        + f'<div class="meta">Source: {_esc(it.source)}. Licence: {_esc(it.licence)}.'
        + (f" Note: {_esc(it.note)}" if it.note else "")
        + "</div>"
    )


def to_html(
    instruments: InstrumentsLike,
    path: str | Path | None = None,
    *,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
    title: str | None = None,
    include_missing: bool = True,
    review: bool = False,
    id_field: str | None = "respondent_id",
) -> str:
    """A printable, self-contained HTML questionnaire (inline CSS, no scripts, no external links).

    Consecutive items of a section that share an ordinal response scale are printed as a
    grid (one row per item, one tick-box column per answer); other items list their answers.

    Parameters
    ----------
    instruments, placeholders, fill, slots
        See :func:`layout`.
    path : str or Path, optional
        Write the page here as well as returning it.
    title : str, optional
        Page heading (default: the instrument title).
    include_missing : bool
        Print the missing-code answers ("Don't know") as options.
    review : bool
        Reviewer version: print item codes, verification marks, sources and licences.
    id_field : str or None
        Print a "Respondent ID" box at the top (``None`` to omit).

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> page = to_html("best_of_us_adults", placeholders={"place": "Ramsgate"}, slots="keep")
    >>> "I belong in Ramsgate" in page and "http" not in page
    True
    """
    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    heading = title or (lay.instruments[0].title if len(lay.instruments) == 1 else "Questionnaire")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(heading)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(heading)}</h1>",
    ]
    if id_field:
        parts.append('<p class="q"><span class="qt">Respondent ID:</span> <span class="write"></span></p>')
    if review:
        parts.append(
            '<p class="meta">Reviewer version: item codes, verification marks and sources are shown. '
            + "; ".join(f"<b>{_esc(k)}</b> {_esc(v)}" for k, v in VERIFIED_MARKS.items())
            + ".</p>"
        )
    n = 0
    for grp in lay.groups:
        parts.append(f"<section><h2>{_esc(grp.label)}</h2>")
        if grp.intro:
            parts.append(f'<p class="intro">{_esc(grp.intro)}</p>')
        qs = grp.questions
        i = 0
        while i < len(qs):
            q = qs[i]
            if q.scale.type == "ordinal":
                run = [q]
                while (
                    i + len(run) < len(qs)
                    and qs[i + len(run)].scale_name == q.scale_name
                    and (qs[i + len(run)].instrument is q.instrument)
                ):
                    run.append(qs[i + len(run)])
                if len(run) > 1:
                    opts = _choices(q.scale, include_missing)
                    parts.append('<table class="grid"><thead><tr><th></th>')
                    parts += [
                        (
                            f'<th class="miss">{_esc(lab)}</th>'
                            if int(c) in q.scale.missing
                            else f"<th>{_esc(lab)}</th>"
                        )
                        for c, lab in opts
                    ]
                    parts.append("</tr></thead><tbody>")
                    for rq in run:
                        n += 1
                        stem = f'<span class="num">{n}.</span>{_esc(rq.wording)}'
                        if review:
                            stem += _review_bits(rq)
                        parts.append(f'<tr><td class="stem">{stem}</td>')
                        parts += ['<td><span class="box"></span></td>' for _ in opts]
                        parts.append("</tr>")
                    parts.append("</tbody></table>")
                    i += len(run)
                    continue
            n += 1
            parts.append(
                f'<div class="q"><div class="qt"><span class="num">{n}.</span>{_esc(q.wording)}</div>'
            )
            if review:
                parts.append(_review_bits(q))
            rs = q.scale
            if rs.type == "numeric":
                rng = f"{fmt_num(rs.min_code)} to {fmt_num(rs.max_code)}"
                parts.append(f'<p>Write a number from {_esc(rng)}: <span class="write"></span></p>')
                if rs.labels:
                    parts.append(
                        '<p class="meta">'
                        + "; ".join(f"{fmt_num(c)} = {_esc(lab)}" for c, lab in sorted(rs.labels.items()))
                        + "</p>"
                    )
                if include_missing and rs.missing:
                    parts.append('<ul class="opts">')
                    parts += [
                        f'<li class="miss"><span class="box"></span>{_esc(lab)}</li>'
                        for _, lab in sorted(rs.missing.items(), reverse=True)
                    ]
                    parts.append("</ul>")
            else:
                parts.append('<ul class="opts">')
                for c, lab in _choices(rs, include_missing):
                    cls = ' class="miss"' if int(c) in rs.missing else ""
                    parts.append(f'<li{cls}><span class="box"></span>{_esc(lab)}</li>')
                parts.append("</ul>")
            parts.append("</div>")
            i += 1
        parts.append("</section>")
    sources = sorted({q.item.licence for q in lay.questions})
    parts.append(
        "<footer>Questionnaire generated by evaltoolkit from instrument(s) "
        + ", ".join(f"{_esc(i.id)} v{_esc(i.version)}" for i in lay.instruments)
        + ". Item licences: "
        + "; ".join(_esc(s) for s in sources)
        + ".</footer></body></html>"
    )
    page = "\n".join(parts)
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(page, encoding="utf-8")
    return page


# ------------------------------------------------------------------ all formats
def export_questionnaire(
    instruments: InstrumentsLike,
    out_dir: str | Path,
    *,
    formats: Iterable[str] = ("xlsform", "html", "codebook"),
    name: str | None = None,
    placeholders: Mapping[str, Any] | None = None,
    fill: Mapping[str, str] | None = None,
    slots: SlotPolicy = "omit",
    **xlsform_options: Any,
) -> dict[str, Path]:
    """Write several exports at once (used by ``evaltoolkit instruments export``).

    Parameters
    ----------
    formats : iterable of {"xlsform", "html", "review", "codebook"}
        ``codebook`` writes both ``.csv`` and ``.md``; ``review`` is the reviewer HTML.
    name : str, optional
        File stem (default: the instrument ids joined by ``-``).

    Returns
    -------
    dict
        Format -> path written (``codebook_csv``, ``codebook_md`` for the codebook).

    Examples
    --------
    >>> import tempfile
    >>> paths = export_questionnaire("sci2", tempfile.mkdtemp(), formats=["html"])
    >>> sorted(paths)
    ['html']
    """
    insts = load_instruments(instruments)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or "-".join(i.id for i in insts)
    wanted = [f.lower() for f in formats]
    unknown = sorted(set(wanted) - {"xlsform", "html", "review", "codebook"})
    if unknown:
        raise InstrumentError(f"unknown export format(s) {unknown}; use xlsform, html, review, codebook")
    paths: dict[str, Path] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if "xlsform" in wanted:
            paths["xlsform"] = to_xlsform(
                insts,
                out / f"{stem}.xlsx",
                placeholders=placeholders,
                fill=fill,
                slots=slots,
                **xlsform_options,
            )
        if "html" in wanted:
            to_html(insts, out / f"{stem}.html", placeholders=placeholders, fill=fill, slots=slots)
            paths["html"] = out / f"{stem}.html"
        if "review" in wanted:
            to_html(
                insts,
                out / f"{stem}_review.html",
                placeholders=placeholders,
                fill=fill,
                slots="keep",
                review=True,
            )
            paths["review"] = out / f"{stem}_review.html"
        if "codebook" in wanted:
            paths["codebook_csv"] = to_codebook(
                insts, out / f"{stem}_codebook.csv", placeholders=placeholders, fill=fill
            )
            paths["codebook_md"] = to_codebook(
                insts, out / f"{stem}_codebook.md", placeholders=placeholders, fill=fill
            )
    seen: set[str] = set()
    for w in caught:  # re-emit each distinct warning once
        msg = str(w.message)
        if msg not in seen:
            seen.add(msg)
            warnings.warn(msg, w.category, stacklevel=2)
    return paths


# ------------------------------------------------------------------ Kobo export simulation
