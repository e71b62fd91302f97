"""Read an already-scored data table (CSV, TSV, Excel, SPSS, Stata, Parquet) without changing it.

For raw survey exports that still need validating against an instrument and scoring, use
:func:`evaltoolkit.read_responses` instead.

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
>>> pd.DataFrame({"pid": [1, 2], "arm": ["a", "b"]}).to_csv(p, index=False)
>>> read_table(p).shape
(2, 2)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaltoolkit.errors import DataError

SUPPORTED = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".sav", ".dta", ".parquet")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a data file into a DataFrame; the file is opened read-only and never modified.

    Raises
    ------
    DataError
        If the file is missing, has an unsupported type, or cannot be parsed (the message says why).
    """
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", file=str(p))
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            try:
                return pd.read_csv(p, encoding="utf-8-sig")
            except UnicodeDecodeError:
                return pd.read_csv(p, encoding="latin-1")
        if suffix == ".tsv":
            return pd.read_csv(p, sep="\t", encoding="utf-8-sig")
        if suffix in (".xlsx", ".xls"):
            return pd.read_excel(p)
        if suffix == ".sav":
            import pyreadstat

            df, _ = pyreadstat.read_sav(str(p), apply_value_formats=False)
            return df
        if suffix == ".dta":
            return pd.read_stata(p, convert_categoricals=False)
        if suffix == ".parquet":
            return pd.read_parquet(p)
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        raise DataError(f"could not read the file: {exc}", file=str(p)) from None
    raise DataError(f"unsupported file type '{suffix}' (supported: {', '.join(SUPPORTED)})", file=str(p))
