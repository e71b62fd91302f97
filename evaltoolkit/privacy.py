"""Privacy rules for everything that leaves the toolkit (reports, exported tables).

* No personal identifiers: columns whose names look like names, e-mails, postcodes, phone numbers,
  addresses, dates of birth or raw ids are never written to a report or an exported table.
* No small cells: any count of people below :data:`MIN_CELL` (10) is shown as ``"<10"``, and any
  summary (mean, SD) computed from fewer than 10 people is withheld.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"arm": ["a", "b"], "n": [25, 4], "mean": [3.1, 2.9]})
>>> suppress_small_cells(t, count_col="n", value_cols=["mean"])["n"].tolist()
['25', '<10']
"""

from __future__ import annotations

import re

import pandas as pd

#: smallest number of people a published cell may describe
MIN_CELL = 10

_IDENTIFYING = re.compile(
    r"(^|_)(name|first_?name|surname|last_?name|full_?name|e_?mail|postcode|post_code|zip|phone|mobile|"
    r"address|dob|date_of_birth|birth_?date|nhs|ni_?number|ip_?address|pid|person_?id|respondent_?id|"
    r"id)($|_)",
    re.IGNORECASE,
)


def identifying_columns(columns) -> list[str]:
    """Columns whose names suggest personal identifiers.

    Examples
    --------
    >>> identifying_columns(["pid", "Email", "postcode", "attitudes", "team"])
    ['pid', 'Email', 'postcode']
    """
    return [c for c in columns if _IDENTIFYING.search(str(c))]


def drop_identifiers(df: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A copy of ``df`` without identifying columns (and without ``extra`` columns)."""
    drop = set(identifying_columns(df.columns)) | set(extra)
    return df.drop(columns=[c for c in df.columns if c in drop])


def suppress_small_cells(
    table: pd.DataFrame,
    count_col: str = "n",
    value_cols: list[str] | tuple[str, ...] = (),
    min_n: int = MIN_CELL,
) -> pd.DataFrame:
    """Replace counts below ``min_n`` by ``"<10"`` and blank the values they describe.

    Parameters
    ----------
    table : DataFrame
    count_col : str
        Column of people counts.
    value_cols : sequence of str
        Columns (means, SDs, percentages) computed from those people; set to NA when suppressed.
    min_n : int
        Threshold (default 10).

    Returns
    -------
    DataFrame
        A copy; ``count_col`` becomes text.
    """
    out = table.copy()
    small = out[count_col].astype(float) < min_n
    for c in value_cols:
        out[c] = out[c].astype(float).where(~small)
    out[count_col] = [f"<{min_n}" if s else str(int(v)) for s, v in zip(small, out[count_col], strict=True)]
    return out


def format_count(n: int | float, min_n: int = MIN_CELL) -> str:
    """A people count for prose: ``"<10"`` when small.

    Examples
    --------
    >>> format_count(3), format_count(1234)
    ('<10', '1,234')
    """
    return f"<{min_n}" if n < min_n else f"{int(n):,}"
