"""HTML tables for the report: rounded numbers, readable p-values, no identifiers.

Examples
--------
>>> import pandas as pd
>>> html = table_html(pd.DataFrame({"term": ["x"], "estimate": [0.123456], "p_value": [0.00001]}))
>>> "0.123" in html and "&lt;0.001" in html
True
"""

from __future__ import annotations

import html as _html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from evaltoolkit.io.outputs import atomic_write
from evaltoolkit.labels import GLOSSARY, TERM_COLUMNS, column_label, label_table, plain, term_label
from evaltoolkit.plan.registry import REGISTRY, AnalysisResults
from evaltoolkit.plan.summary import CAUTION_GROUPS, ranked_cautions
from evaltoolkit.privacy import MIN_CELL, drop_identifiers
from evaltoolkit.report.sections import stand_alone
from evaltoolkit.results import format_p, unbounded_intervals

#: what a reader's table needs to put names into words: wave labels and column/outcome labels
ReaderNames = dict[str, dict[str, str]]
_NAMED_CELLS = ("outcome", "analysis", "variable", "covariate", "scale", "moderator", "arm")


def _fmt(value, col: str, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if col in ("p_value", "p", "p_adjusted") or col.startswith("p_"):
        try:
            return format_p(float(value))
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if float(value).is_integer() and col in ("n_obs", "n_clusters", "n"):
            return f"{int(value):,}"
        return f"{float(value):.{digits}f}"
    return str(value)


def mark_unbounded(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with interval limits that carry no information (see :func:`~evaltoolkit.results.unbounded_intervals`)
    replaced by the word "unbounded" (a copy when anything changes)."""
    if not {"ci_lower", "ci_upper", "std_error"} <= set(df.columns):
        return df
    unbounded = unbounded_intervals(
        pd.to_numeric(df["ci_lower"], errors="coerce"),
        pd.to_numeric(df["ci_upper"], errors="coerce"),
        pd.to_numeric(df["std_error"], errors="coerce"),
    )
    if not unbounded.any():
        return df
    df = df.copy()
    df[["ci_lower", "ci_upper"]] = df[["ci_lower", "ci_upper"]].astype(object)
    df.loc[unbounded, ["ci_lower", "ci_upper"]] = "unbounded"
    return df


def _cell_text(value, col: str, digits: int, names: ReaderNames | None) -> str:
    """A cell as the reader sees it: terms and known names in words (evaltoolkit.labels), numbers rounded."""
    if isinstance(value, str) and names is not None:
        if col in TERM_COLUMNS:
            return term_label(value, waves=names.get("waves"), names=names.get("names"))
        if col == "wave" and value in names.get("waves", {}):
            return names["waves"][value]
        if col in _NAMED_CELLS:
            known = names.get("names", {})
            return known.get(value) or term_label(value, waves=names.get("waves"), names=known)
    return _fmt(value, col, digits)


def table_html(
    df: pd.DataFrame,
    caption: str | None = None,
    digits: int = 3,
    index: bool = False,
    names: ReaderNames | None = None,
) -> str:
    """Render ``df`` as an HTML table (identifying columns removed, numbers rounded, headers and terms labelled).

    ``names`` (``{"waves": {name: label}, "names": {column: label}}``) puts wave and outcome names into words.
    The table sits in a container that scrolls sideways, so the page is never wider than the screen.
    """
    df = mark_unbounded(drop_identifiers(df.reset_index() if index else df))
    head = "".join(f'<th scope="col">{_html.escape(column_label(str(c)))}</th>' for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = "".join(
            f'<td class="{"num" if isinstance(v, int | float | np.number) else "txt"}">'
            f"{_html.escape(_cell_text(v, str(c), digits, names))}</td>"
            for c, v in zip(df.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    table = f'<table class="data">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    label = _html.escape(caption or "table", quote=True)
    return f'<div class="table-wrap" tabindex="0" role="region" aria-label="{label}">{table}</div>'


def estimates_html(est: pd.DataFrame, caption: str, digits: int = 3, names: ReaderNames | None = None) -> str:
    """An estimates table for the report: long descriptive columns (method, adjustment) become notes below."""
    shown = est.copy()
    notes = []
    for col in ("analysis", "n_clusters"):
        if col in shown and shown[col].nunique(dropna=False) == 1:
            value = shown[col].iloc[0]
            if col == "n_clusters" and pd.notna(value):
                notes.append(f"Clusters: {int(value):,}.")
            shown = shown.drop(columns=col)
    if "method" in shown:
        methods = list(dict.fromkeys(shown["method"].dropna()))
        notes.append(("Method: " if len(methods) == 1 else "Methods: ") + "; ".join(methods) + ".")
        shown = shown.drop(columns="method")
    if "adjustment" in shown:
        adjustments = list(dict.fromkeys(shown["adjustment"].dropna()))
        if adjustments:
            notes.append("Adjusted p-values: " + "; ".join(adjustments) + ".")
        shown = shown.drop(columns="adjustment")
    html = table_html(shown, caption=caption, digits=digits, names=names)
    if notes:
        html += '<p class="note">' + _html.escape(" ".join(notes)) + "</p>"
    return html


# --- estimates.xlsx: the report's tables for analysts, one sheet per kind ---------------------------------------

#: the workbook's sheets, in order
SHEETS: tuple[str, ...] = ("Summary", "Estimates", "Reliability", "Balance", "Attrition", "Means", "Notes")

#: analysis type (or stand-alone section id) -> the sheet its tables go to (others are sorted by their columns)
_SHEET_OF_TYPE = {
    "measurement": "Reliability",
    "balance": "Balance",
    "attrition": "Attrition",
    "flow": "Attrition",
}
_PERCENT = re.compile(
    r"^(retention(_\d+)?|Retention, .+|overall_attrition|differential_attrition|prob_\w+|% of baseline)$"
)
_COUNT = re.compile(r"^(n|n_\w+|df)$")
_FORMATS = {"estimate": "0.00", "p": '[<0.001]"<0.001";0.000', "percent": "0%", "count": "#,##0"}


def reader_names(results: AnalysisResults) -> tuple[dict[str, str], dict[str, str]]:
    """The ``waves`` and ``names`` mappings :func:`evaltoolkit.labels.label_table` needs for this study.

    ``names`` maps outcomes (and their changes, ``d_<outcome>``) to their labels, analyses to their section
    titles and covariates, moderators and mediators to plain words.
    """
    d = results.design
    waves = {w.name: w.display for w in d.waves}
    names = {c: plain(c) for c in (*d.covariates, *d.moderators, *d.mediators)}
    for o in d.outcomes:
        names[o.name] = o.display
        names[f"d_{o.name}"] = f"Change in {o.display[:1].lower()}{o.display[1:]}"
    titles = {s.id: s.title for s in results.sections}
    names.update({a.id: titles.get(f"analysis-{a.id}", plain(a.id)) for a in d.analyses})
    return waves, names


def reader_table(frame: pd.DataFrame, results: AnalysisResults) -> pd.DataFrame:
    """A table as a reader sees it: identifiers dropped, waves and arms named, headers and terms labelled."""
    d = results.design
    waves, names = reader_names(results)
    df = mark_unbounded(drop_identifiers(frame))
    if "wave" in df:
        df = df.assign(wave=df["wave"].map(lambda w: waves.get(w, w)))
    for col in ("arm", "group"):
        if col in df:
            df = df.assign(**{col: df[col].map(lambda a: d.arms.label(a) if a in d.arms.all else a)})
    for col in df.columns.difference(["term", "term1", "term2"]):  # machine names in any other text column
        if not pd.api.types.is_numeric_dtype(df[col]):
            df = df.assign(**{col: df[col].map(lambda v: names.get(v, v) if isinstance(v, str) else v)})
    return label_table(df, waves=waves, names=names)


def _sheet_for(section_type: str | None, frame: pd.DataFrame) -> str:
    cols = set(frame.columns)
    if section_type in _SHEET_OF_TYPE:
        return _SHEET_OF_TYPE[section_type]
    if {"alpha", "omega_total"} & cols:
        return "Reliability"
    if {"smd_unadjusted", "covariate"} & cols:
        return "Balance"
    if {"arm", "wave", "mean"} <= cols:
        return "Means"
    return "Estimates"


def sheet_tables(results: AnalysisResults) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """The tables of each data sheet as ``(caption, machine-named frame)``: the report's own tables.

    The Estimates sheet starts with every row of ``estimates.csv``; the report's estimates tables (the same rows)
    are not repeated, and a table the report shows twice (means under two analyses) appears once.
    """
    types = {f"analysis-{a.id}": a.type for a in results.design.analyses}
    sheets: dict[str, list[tuple[str, pd.DataFrame]]] = {s: [] for s in SHEETS[1:-1]}
    sheets["Estimates"].append(("All estimates (the rows of estimates.csv)", results.estimates))
    sections = [*stand_alone(results, "before"), *results.sections, *stand_alone(results, "after")]
    for sec in sections:
        for table in sec.tables():
            if table.kind == "estimates":
                continue
            sheet = _sheet_for(types.get(sec.id, sec.id.removeprefix("analysis-")), table.frame)
            if any(table.frame.equals(f) for _, f in sheets[sheet]):
                continue
            sheets[sheet].append(
                (f"{sec.title}: {table.caption}" if table.caption else sec.title, table.frame)
            )
    return sheets


def _number_format(col: str) -> str:
    if _PERCENT.match(col):
        return _FORMATS["percent"]
    if col in ("p", "p_value", "p_adjusted") or col.startswith("p_"):
        return _FORMATS["p"]
    return _FORMATS["count"] if _COUNT.match(col) else _FORMATS["estimate"]


def _cell_value(value, col: str):
    """A value for a cell: numbers stay numbers (percent columns as fractions), missing becomes empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.integer | np.floating):
        return (
            float(value) / 100
            if col == "% of baseline"
            else value.item()
            if hasattr(value, "item")
            else value
        )
    if (
        _COUNT.match(col) and str(value).replace(",", "").isdigit()
    ):  # a count made text by the small-cell rule
        return int(str(value).replace(",", ""))
    return str(value)


def _width(value, fmt: str | None) -> int:
    if isinstance(value, int | float) and fmt:
        return len(f"{value:,.0f}") + (3 if fmt == _FORMATS["estimate"] else 4 if "0.000" in fmt else 1)
    return len(str(value)) if value is not None else 0


def _write_table(
    ws, row: int, caption: str, frame: pd.DataFrame, results: AnalysisResults, widths: dict
) -> int:
    """Write a caption, a bold header of labels and the rows from ``row``; return the next free row."""
    from openpyxl.styles import Font

    machine = list(mark_unbounded(drop_identifiers(frame)).columns)
    shown = reader_table(frame, results)
    ws.cell(row=row, column=1, value=caption).font = Font(bold=True, size=12)
    for j, label in enumerate(shown.columns, start=1):
        ws.cell(row=row + 1, column=j, value=str(label)).font = Font(bold=True)
        widths[j] = max(widths.get(j, 8), len(str(label)))
    for i, values in enumerate(shown.itertuples(index=False), start=row + 2):
        for j, (col, v) in enumerate(zip(machine, values, strict=True), start=1):
            cell = ws.cell(row=i, column=j, value=_cell_value(v, col))
            fmt = _number_format(col) if isinstance(cell.value, int | float) else None
            if fmt:
                cell.number_format = fmt
            widths[j] = max(widths[j], _width(cell.value, fmt))
    return row + len(shown) + 3


def _write_lines(ws, groups: list[tuple[str, list[str]]], width: int = 110) -> None:
    """Write headed groups of sentences, one per row, wrapped in one wide column."""
    from openpyxl.styles import Alignment, Font

    row = 1
    for heading, lines in groups:
        ws.cell(row=row, column=1, value=heading).font = Font(bold=True, size=12)
        for row, line in enumerate(lines, start=row + 1):  # noqa: B020  (row continues after the loop)
            ws.cell(row=row, column=1, value=line).alignment = Alignment(wrap_text=True, vertical="top")
        row += 2
    ws.column_dimensions["A"].width = width


def _left_out_lines(table: pd.DataFrame) -> list[str]:
    """The table of rows not analysed as lines ("Analysis - what: 12 of 300 rows left out (why)")."""
    return [
        f"{r['Analysis']} - {r['What']}: {r['Left out']} left out ({r['Why']})" for _, r in table.iterrows()
    ]


def _notes(results: AnalysisResults) -> list[tuple[str, list[str]]]:
    """The Notes sheet: cautions, methods, the small-cell rule and the glossary."""
    import evaltoolkit.plan.runners  # noqa: F401  (registers the analysis types and their methods text)

    types_run = results.extras.get("types_run", [])
    methods = [REGISTRY[t].methods for t in types_run if t in REGISTRY]
    rule = (
        f"Counts under {MIN_CELL} people are shown as <{MIN_CELL} and the values they describe are withheld."
    )
    groups, left_out = ranked_cautions(results)
    cautions: list[tuple[str, list[str]]] = [
        (group, items + (_left_out_lines(left_out) if group == CAUTION_GROUPS[1][0] else []))
        for group, items in groups
    ]
    return [
        *(cautions or [("Cautions", ["None."])]),
        ("Methods", methods),
        ("Privacy", [rule, "No names, e-mail addresses, ids or other identifying columns are included."]),
        ("Glossary", [f"{k}: {v}" for k, v in GLOSSARY.items()]),
    ]


def write_xlsx(results: AnalysisResults, path: str | Path) -> Path:
    """Write ``estimates.xlsx``: Summary, Estimates, Reliability, Balance, Attrition, Means and Notes sheets.

    The data sheets hold the report's own tables (small cells already withheld, identifiers dropped) with
    labelled headers and terms, number formats (estimates 0.00, p-values 0.000, percentages 0%), a bold frozen
    header row and columns as wide as their contents.

    Parameters
    ----------
    results : AnalysisResults
        What the plan produced.
    path : str or Path
        The workbook to write (atomically).

    Returns
    -------
    Path
    """
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    tables = sheet_tables(results)
    answers = [f"{q} {a}" for q, a in results.extras.get("summary", [])]
    _write_lines(
        wb.create_sheet("Summary"),
        [(results.design.title, answers or list(results.headline) or ["No headline."])]
        + ([("Every primary estimate", list(results.headline))] if answers and results.headline else []),
    )
    for name, items in tables.items():
        ws = wb.create_sheet(name)
        widths: dict[int, int] = {}
        row = 1
        for caption, frame in items or [("No table of this kind in this report.", pd.DataFrame())]:
            row = _write_table(ws, row, caption, frame, results, widths)
        ws.freeze_panes = "A3"
        for j, w in widths.items():
            ws.column_dimensions[get_column_letter(j)].width = min(w + 2, 60)
    _write_lines(wb.create_sheet("Notes"), _notes(results))
    return atomic_write(path, wb.save)
