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

import numpy as np
import pandas as pd

from evaltoolkit.labels import TERM_COLUMNS, column_label, term_label
from evaltoolkit.privacy import drop_identifiers
from evaltoolkit.results import format_p, unbounded_intervals

#: what a reader's table needs to put names into words: wave labels and column/outcome labels
ReaderNames = dict[str, dict[str, str]]
_NAMED_CELLS = ("outcome", "analysis", "variable", "covariate", "scale", "moderator")


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


def _cell_text(value, col: str, digits: int, names: ReaderNames | None) -> str:
    """A cell as the reader sees it: terms and known names in words (evaltoolkit.labels), numbers rounded."""
    if isinstance(value, str) and names is not None:
        if col in TERM_COLUMNS:
            return term_label(value, waves=names.get("waves"), names=names.get("names"))
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
    df = drop_identifiers(df.reset_index() if index else df)
    if {"ci_lower", "ci_upper", "std_error"} <= set(df.columns):
        df = df.copy()
        unbounded = unbounded_intervals(
            pd.to_numeric(df["ci_lower"], errors="coerce"),
            pd.to_numeric(df["ci_upper"], errors="coerce"),
            pd.to_numeric(df["std_error"], errors="coerce"),
        )
        if unbounded.any():
            df[["ci_lower", "ci_upper"]] = df[["ci_lower", "ci_upper"]].astype(object)
            df.loc[unbounded, ["ci_lower", "ci_upper"]] = "unbounded"
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
    return f'<div class="table-wrap">{table}</div>'


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
