"""Several results side by side, one column per model, as pyfixest's ``etable`` and R's ``modelsummary`` lay them out.

Rows are the model terms in words (:func:`evaltoolkit.labels.term_label`), each estimate with its standard error in
brackets beneath, then the rows, clusters and method of each model. A result whose table holds several outcomes
(mediation) gives one column per outcome. Numbers are ``round(value, digits)`` exactly, so a table can be checked
against ``result.table``.

Examples
--------
>>> from evaltoolkit.results import EffectResult
>>> r = EffectResult(analysis="did", outcome="attitudes", term="treat:post", estimate=0.2468, std_error=0.0812,
...                  ci_lower=0.09, ci_upper=0.41, p_value=0.003, n_obs=800, n_clusters=40, method="OLS, CR1")
>>> print(etable([r], format="markdown", waves={"post": "after"}))
|  | Attitudes (DiD) |
|---|---:|
| Programme effect, after | 0.247 |
|  | (0.081) |
| Rows | 800 |
| Clusters | 40 |
| Method | OLS, CR1 |
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evaltoolkit.errors import UsageError
from evaltoolkit.io.outputs import atomic_write, write_text
from evaltoolkit.labels import column_label, term_label
from evaltoolkit.results import analysis_label, outcome_label

__all__ = ["etable"]

_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
_STARS_NOTE = "* p < 0.05, ** p < 0.01, *** p < 0.001"
_LATEX_SPECIAL = {c: f"\\{c}" for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                                                     "\\": r"\textbackslash{}"}  # fmt: skip


@dataclass
class _Grid:
    """The table as text cells: model headers, term rows (estimate, then std. error) and the footer rows."""

    headers: list[str]
    terms: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    footer: list[tuple[str, list[str]]] = field(default_factory=list)
    note: str | None = None

    def rows(self) -> list[tuple[str, list[str]]]:
        """Every body row as (label, cells): each term's estimate row, its std. error row (no label), the footer."""
        body = [row for label, est, se in self.terms for row in ((label, est), ("", se))]
        return body + self.footer


def etable(
    results: Sequence[Any],
    *,
    format: str = "html",
    digits: int = 3,
    stars: bool = False,
    names: Mapping[str, str] | None = None,
    waves: Mapping[str, str] | None = None,
    path: str | Path | None = None,
) -> Any:
    """Side-by-side table of several results (one column per model and outcome).

    Parameters
    ----------
    results : sequence of results
        Any results with a tidy ``table`` (:class:`~evaltoolkit.results.EffectResult`, mediation, multilevel...).
    format : {"html", "markdown", "latex", "dataframe", "docx"}
        Text for the first three, a DataFrame of the cells shown, or a Word table written to ``path``
        (needs python-docx).
    digits : int
        Decimals of estimates and standard errors (``round(value, digits)``).
    stars : bool
        Mark estimates with p < 0.05 (*), 0.01 (**) and 0.001 (***), with a note below the table.
    names, waves : mapping, optional
        Labels of outcome (and other) columns and of waves, as :func:`evaltoolkit.labels.label_table` takes.
    path : str or Path, optional
        Also write the table there (required for ``"docx"``).

    Returns
    -------
    str, DataFrame or Path
        The table (the path written for ``"docx"``).

    Examples
    --------
    >>> from evaltoolkit.results import EffectResult
    >>> r = EffectResult(analysis="ancova", outcome="contact", term="treatment", estimate=0.5, std_error=0.2,
    ...                  ci_lower=0.1, ci_upper=0.9, p_value=0.01, n_obs=120, n_clusters=None, method="OLS")
    >>> etable([r], format="dataframe", digits=2, stars=True).iloc[0, 0]
    '0.50*'
    """
    if format not in _RENDER:
        raise UsageError(f"format must be one of {', '.join(_RENDER)}; got {format!r}", field="format")
    if not results:
        raise UsageError("give at least one result", field="results")
    grid = _grid(list(results), digits, stars, dict(names or {}), dict(waves or {}))
    if format == "docx":
        if path is None:
            raise UsageError("format='docx' writes a Word file: give path=", field="path")
        return _docx(grid, Path(path))
    out = _RENDER[format](grid)
    if path is not None:
        write_text(path, out if isinstance(out, str) else out.to_csv())
    return out


def _number(x: Any, digits: int) -> str:
    """``round(x, digits)`` with exactly ``digits`` decimals; "" for a missing value."""
    if x is None or not math.isfinite(float(x)):
        return ""
    return f"{round(float(x), digits) + 0.0:.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _star(p: Any) -> str:
    p = float(p) if p is not None else math.nan
    return next((s for cut, s in _STARS if p < cut), "") if math.isfinite(p) else ""


def _columns(results: list[Any], names: dict[str, str]) -> list[tuple[str, pd.DataFrame]]:
    """One (header, rows) per model and outcome; repeated headers numbered. A model's R-squared (its
    ``details["r2"]``, ``["r2_within"]``) goes on its rows as columns ``r2`` and ``r2_within``."""
    cols = []
    for res in results:
        table = res.table
        fit = getattr(res, "details", None) or {}
        for outcome, rows in table.groupby("outcome", sort=False):
            rows = rows.assign(**{k: fit.get(k, math.nan) for k in _FIT_ROWS})
            cols.append(
                (f"{outcome_label(outcome, names)} ({analysis_label(rows['analysis'].iloc[0])})", rows)
            )
    headers = [h for h, _ in cols]
    numbered = [f"{h} [{i + 1}]" if headers.count(h) > 1 else h for i, h in enumerate(headers)]
    return [(h, rows) for h, (_, rows) in zip(numbered, cols)]


#: goodness-of-fit rows of the footer, shown when some model has them
_FIT_ROWS = {"r2": "R²", "r2_within": "Within R²"}


def _grid(
    results: list[Any], digits: int, stars: bool, names: dict[str, str], waves: dict[str, str]
) -> _Grid:
    """The cells: a row per term (in order of first appearance), estimates and std. errors, then the footer."""
    cols = _columns(results, names)
    grid = _Grid([h for h, _ in cols], note=_STARS_NOTE if stars else None)
    terms = list(dict.fromkeys(t for _, rows in cols for t in rows["term"]))
    for term in terms:
        est, se = [], []
        for _, rows in cols:
            hit = rows[rows["term"] == term]
            row = hit.iloc[0] if len(hit) else None
            est.append(
                "" if row is None else _number(row["estimate"], digits) + (_star(row["p_value"]) * stars)
            )
            se.append(
                ""
                if row is None or not _number(row["std_error"], digits)
                else f"({_number(row['std_error'], digits)})"
            )
        grid.terms.append((term_label(term, waves=waves, names=names), est, se))
    for key in ("n_obs", "n_clusters", "method"):
        cells = [rows[key].iloc[0] for _, rows in cols]
        shown = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v) if key != "method" else v)
                 for v in cells]  # fmt: skip
        grid.footer.append((column_label(key), shown))
    for key, label in _FIT_ROWS.items():
        shown = [_number(rows[key].iloc[0], digits) for _, rows in cols]
        if any(shown):
            grid.footer.append((label, shown))
    return grid


def _dataframe(grid: _Grid) -> pd.DataFrame:
    """The cells shown, indexed by (term, "Estimate" | "Std. error") and the footer rows."""
    index, data = [], []
    for label, est, se in grid.terms:
        index += [(label, column_label("estimate")), (label, column_label("std_error"))]
        data += [est, se]
    for label, cells in grid.footer:
        index.append((label, ""))
        data.append(cells)
    return pd.DataFrame(data, index=pd.MultiIndex.from_tuples(index, names=[column_label("term"), ""]),
                        columns=grid.headers)  # fmt: skip


def _markdown(grid: _Grid) -> str:
    """A pipe table (GitHub/Quarto Markdown), numbers right-aligned."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    lines = [line(["", *grid.headers]), "|---|" + "---:|" * len(grid.headers)]
    lines += [line([label, *cells]) for label, cells in grid.rows()]
    return "\n".join(lines + ([f"\n{grid.note}"] if grid.note else []))


def _latex(grid: _Grid) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""

    def esc(text: str) -> str:
        return "".join(_LATEX_SPECIAL.get(c, c) for c in text)

    def line(cells: list[str]) -> str:
        return " & ".join(esc(c) for c in cells) + r" \\"

    n_terms = 2 * len(grid.terms)
    body = [line([label, *cells]) for label, cells in grid.rows()]
    lines = [rf"\begin{{tabular}}{{l{'r' * len(grid.headers)}}}", r"\toprule", line(["", *grid.headers]),
             r"\midrule", *body[:n_terms], r"\midrule", *body[n_terms:], r"\bottomrule", r"\end{tabular}"]  # fmt: skip
    if grid.note:
        lines.append(esc(grid.note))
    return "\n".join(lines)


def _html(grid: _Grid) -> str:
    """A ``<table>`` with the model headers, the terms in the body and the footer rows in ``<tfoot>``."""

    def row(label: str, cells: list[str], tag: str = "td") -> str:
        inner = "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells)
        return f"<tr><th>{html.escape(label)}</th>{inner}</tr>"

    n_terms = 2 * len(grid.terms)
    rows = grid.rows()
    note = f'<caption style="caption-side: bottom">{html.escape(grid.note)}</caption>' if grid.note else ""
    return (
        f'<table class="evaltoolkit-etable">{note}<thead>{row("", grid.headers, "th")}</thead>'
        + "<tbody>" + "".join(row(label, cells) for label, cells in rows[:n_terms]) + "</tbody>"
        + "<tfoot>" + "".join(row(label, cells) for label, cells in rows[n_terms:]) + "</tfoot></table>"
    )  # fmt: skip


def _docx(grid: _Grid, path: Path) -> Path:
    """A Word document holding the table (python-docx), written atomically."""
    try:
        import docx
    except ImportError as exc:
        raise UsageError("format='docx' needs python-docx (pip install python-docx)", field="format") from exc
    doc = docx.Document()
    rows = [("", grid.headers), *grid.rows()]
    table = doc.add_table(rows=len(rows), cols=len(grid.headers) + 1)
    for i, (label, cells) in enumerate(rows):
        for j, text in enumerate([label, *cells]):
            table.cell(i, j).text = text
    if grid.note:
        doc.add_paragraph(grid.note)
    return atomic_write(path, lambda tmp: doc.save(str(tmp)))


_RENDER = {"html": _html, "markdown": _markdown, "latex": _latex, "dataframe": _dataframe, "docx": None}
