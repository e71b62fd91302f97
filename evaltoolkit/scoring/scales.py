"""Scale scores: reverse keys, mean or sum scores with a minimum-items rule, standardised scores.

:func:`score` takes clean item data (as returned by :func:`evaltoolkit.read_responses`:
item codes as columns, missing codes already NA) and one or more instruments, and
adds one column per scale (named by the scale id) and, on request, a standardised
``<scale>_z`` column. Item columns are left as they are (reverse keying is applied
only inside the computation), so the same data can go to :func:`evaltoolkit.scoring.reliability`.

Scoring rules
-------------
* reverse-keyed items are recoded as ``min_code + max_code - x`` of their response scale;
* ``method: mean``: mean of the answered items; ``method: sum``: *prorated* sum, i.e. the
  mean of the answered items times the number of items (identical to the plain sum when
  every item is answered, and not biased downwards when one is skipped);
* a respondent with fewer than ``min_items`` answered items gets NA; these are counted
  per scale in :attr:`ScoreResult.n_below_min_items` and announced in a warning;
* ``standardise=True`` adds ``(score - mean) / sd`` (sd with ``ddof=1``), within the
  groups in ``by`` if given.

Examples
--------
>>> import pandas as pd
>>> import evaltoolkit as et
>>> df = pd.DataFrame({"a": [1, 2, 5], "b": [5, 4, 1]})
>>> data, n_na = et.score(df, {"ab": ["a", "-b"]}, standardise=True)
>>> data["ab"].tolist(), n_na
([1.0, 2.0, 5.0], {'ab': 0})
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.errors import DataError, EvalToolkitWarning, InstrumentError

__all__ = ["ScaleSpec", "ScoreResult", "keyed_items", "resolve_scales", "score"]


@dataclass(frozen=True)
class ScaleSpec:
    """A scale resolved to plain data: items, reverse keys, valid values and scoring rule.

    Built by :func:`resolve_scales` from instruments (or from a ``{scale: [items]}``
    mapping) so that scoring and reliability need no knowledge of the YAML schema.
    """

    id: str
    label: str
    items: tuple[str, ...]
    reverse: tuple[bool, ...]
    lo: tuple[float | None, ...]
    hi: tuple[float | None, ...]
    codes: tuple[tuple[float, ...] | None, ...]
    method: str = "mean"
    min_items: int = 1
    instrument: str | None = None

    @property
    def n_items(self) -> int:
        """Number of items in the scale."""
        return len(self.items)


def _instrument_list(instruments: Any) -> list[Any]:
    from evaltoolkit.instruments.library import load_instruments

    return load_instruments(instruments)


def resolve_scales(
    instruments_or_items: Any,
    scales: Sequence[str] | None = None,
    data: pd.DataFrame | None = None,
) -> list[ScaleSpec]:
    """Turn instruments, or a ``{scale: [items]}`` mapping, into :class:`ScaleSpec` objects.

    Parameters
    ----------
    instruments_or_items : Instrument, str, Path, list of these, mapping or list of column names
        Instruments (ids, YAML paths or loaded objects) whose scales are used; or a mapping
        ``{"scale": ["item1", "-item2", ...]}`` where a leading ``-`` marks a reverse-keyed
        item (the psych ``keys`` convention; reversed as ``min + max - x`` with the observed
        minimum and maximum of the scale's items in ``data``); or a plain list of columns
        (one scale called ``"scale"``).
    scales : list of str, optional
        Keep only these scale ids (``InstrumentError`` if one is unknown).
    data : DataFrame, optional
        Needed only for the mapping form with reversed items.

    Returns
    -------
    list of ScaleSpec

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1, 2, 5], "b": [5, 4, 1]})
    >>> spec = resolve_scales({"s": ["a", "-b"]}, data=df)[0]
    >>> spec.items, spec.reverse, spec.lo, spec.hi
    (('a', 'b'), (False, True), (1.0, 1.0), (5.0, 5.0))
    """
    specs: list[ScaleSpec] = []
    if isinstance(instruments_or_items, Mapping) or (
        isinstance(instruments_or_items, Sequence)
        and not isinstance(instruments_or_items, str)
        and instruments_or_items
        and all(isinstance(c, str) and not c.endswith((".yaml", ".yml")) for c in instruments_or_items)
        and data is not None
        and all(c.lstrip("-") in data.columns for c in instruments_or_items)
    ):
        mapping = (
            dict(instruments_or_items)
            if isinstance(instruments_or_items, Mapping)
            else {"scale": list(instruments_or_items)}
        )
        for sid, raw_items in mapping.items():
            raw = [str(c) for c in raw_items]
            if not raw:
                raise InstrumentError(f"scale '{sid}' has no items")
            names = tuple(c[1:] if c.startswith("-") else c for c in raw)
            rev = tuple(c.startswith("-") for c in raw)
            lo: float | None = None
            hi: float | None = None
            if any(rev):
                if data is None:
                    raise InstrumentError(f"scale '{sid}': reversed items need the data to find min and max")
                missing = [c for c in names if c not in data.columns]
                if missing:
                    raise DataError(f"scale '{sid}': no column(s) {missing} in the data")
                vals = data[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
                lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
            specs.append(
                ScaleSpec(
                    id=str(sid),
                    label=str(sid),
                    items=names,
                    reverse=rev,
                    lo=(lo,) * len(names),
                    hi=(hi,) * len(names),
                    codes=(None,) * len(names),
                    method="mean",
                    min_items=math.ceil(len(names) / 2),
                )
            )
    else:
        for inst in _instrument_list(instruments_or_items):
            for sc in inst.scales:
                rss = [inst.response_scale_of(c) for c in sc.items]
                specs.append(
                    ScaleSpec(
                        id=sc.id,
                        label=sc.label,
                        items=tuple(sc.items),
                        reverse=tuple(inst.item(c).reverse for c in sc.items),
                        lo=tuple(float(rs.min_code) for rs in rss),
                        hi=tuple(float(rs.max_code) for rs in rss),
                        codes=tuple(
                            None if rs.valid_codes is None else tuple(float(v) for v in rs.valid_codes)
                            for rs in rss
                        ),
                        method=sc.method,
                        min_items=int(sc.min_items or math.ceil(len(sc.items) / 2)),
                        instrument=inst.id,
                    )
                )
    ids = [s.id for s in specs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InstrumentError(f"scale id(s) {dup} defined more than once; pick scales with scales=[...]")
    if scales is not None:
        wanted = [scales] if isinstance(scales, str) else list(scales)
        unknown = [s for s in wanted if s not in ids]
        if unknown:
            raise InstrumentError(f"unknown scale(s) {unknown} (available: {', '.join(ids) or 'none'})")
        specs = [s for s in specs if s.id in wanted]
    return specs


def _numeric_block(data: pd.DataFrame, columns: Sequence[str], where: str) -> np.ndarray:
    """The columns as a float matrix; ``DataError`` naming the first non-numeric column."""
    for c in columns:
        s = data[c]
        if not (pd.api.types.is_numeric_dtype(s) or s.isna().all()) or pd.api.types.is_bool_dtype(s):
            bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
            if bad.any():
                pos = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{where}: value {s.iloc[pos]!r} is not a number (read the file with "
                    "et.read_responses, which recodes labels to codes)",
                    column=str(c),
                    row=_row_label(data, pos),
                )
    block = data[list(columns)].apply(pd.to_numeric, errors="coerce")
    return np.array(block.to_numpy(dtype=float), dtype=float, copy=True)


def _row_label(data: pd.DataFrame, pos: int) -> int | None:
    """The row number to show a user: the index label if it is an integer (read_responses sets it)."""
    label = data.index[pos]
    if isinstance(label, int | np.integer):
        return int(label)
    return pos + 1


def keyed_items(data: pd.DataFrame, spec: ScaleSpec, *, check: bool = True) -> pd.DataFrame:
    """The scale's item columns as floats with reverse-keyed items recoded.

    Parameters
    ----------
    data : DataFrame
        Item data (codes, missing as NA).
    spec : ScaleSpec
        From :func:`resolve_scales`.
    check : bool
        Raise ``DataError`` for values that are not valid codes of the item's response scale
        (e.g. a missing code such as -99 left in the data).

    Returns
    -------
    DataFrame
        Same index, one column per item.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1, 2], "b": [5, 4]})
    >>> keyed_items(df, resolve_scales({"s": ["a", "-b"]}, data=df)[0])["b"].tolist()
    [1.0, 2.0]
    """
    missing = [c for c in spec.items if c not in data.columns]
    if missing:
        raise DataError(f"scale '{spec.id}' needs item column(s) {missing}, which are not in the data")
    X = _numeric_block(data, spec.items, f"scale '{spec.id}'")
    if check:
        for j, c in enumerate(spec.items):
            col = X[:, j]
            ok = np.isnan(col)
            if spec.codes[j] is not None:
                ok |= np.isin(col, np.asarray(spec.codes[j]))
            elif spec.lo[j] is not None:
                ok |= (col >= spec.lo[j]) & (col <= spec.hi[j])  # type: ignore[operator]
            else:
                ok[:] = True
            if not ok.all():
                pos = int(np.flatnonzero(~ok)[0])
                allowed = (
                    ", ".join(f"{v:g}" for v in spec.codes[j])  # type: ignore[union-attr]
                    if spec.codes[j] is not None
                    else f"{spec.lo[j]:g} to {spec.hi[j]:g}"
                )
                raise DataError(
                    f"value {col[pos]:g} is not a valid answer (allowed: {allowed}); "
                    f"{int((~ok).sum())} such value(s) in this column. Missing codes such as -99 must be NA: "
                    "read the file with et.read_responses, which does this and reports every problem",
                    column=c,
                    row=_row_label(data, pos),
                )
    for j, rev in enumerate(spec.reverse):
        if rev:
            X[:, j] = spec.lo[j] + spec.hi[j] - X[:, j]  # type: ignore[operator]
    return pd.DataFrame(X, index=data.index, columns=list(spec.items))


@dataclass
class ScoreResult:
    """What :func:`score` returns.

    Attributes
    ----------
    data : DataFrame
        The input data with one column per scale (and ``<scale>_z`` if standardised).
    n_below_min_items : dict[str, int]
        Per scale, the number of scores set to NA because fewer than ``min_items`` items were answered.
    scales : DataFrame
        One row per scale: ``scale, label, instrument, method, n_items, min_items, n_scored,
        n_below_min_items, n_partial`` (``n_partial``: scored with some items missing),
        ``mean, sd``.
    warnings : list of str
        The warnings that were issued.

    The result unpacks as ``data, n_below_min_items = et.score(...)``.
    """

    data: pd.DataFrame
    n_below_min_items: dict[str, int]
    scales: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.data, self.n_below_min_items))

    @property
    def table(self) -> pd.DataFrame:
        """The per-scale summary (same as :attr:`scales`)."""
        return self.scales


def score(
    data: pd.DataFrame,
    instruments: Any,
    *,
    scales: Sequence[str] | None = None,
    standardise: bool = False,
    by: str | Sequence[str] | None = None,
) -> ScoreResult:
    """Score scales: reverse keys, mean or (prorated) sum, minimum-items rule, standardised scores.

    Parameters
    ----------
    data : DataFrame
        Item codes in columns named by item code; missing answers as NA (missing codes
        such as -99 must already be NA: :func:`evaltoolkit.read_responses` does this).
    instruments : Instrument, str, Path, list of these, or mapping
        Where the scales are defined (see :func:`resolve_scales`).
    scales : list of str, optional
        Score only these scale ids. Without it every scale of the instruments whose item
        columns are all present is scored (scales with absent columns are skipped with a warning).
    standardise : bool
        Add ``<scale>_z`` = (score - mean) / sd.
    by : str or list of str, optional
        Standardise within these groups (e.g. ``"wave"``).

    Returns
    -------
    ScoreResult
        ``.data`` (input plus score columns), ``.n_below_min_items`` (scores set to NA by the
        minimum-items rule, per scale) and ``.scales`` (a summary table).

    Raises
    ------
    DataError
        A needed column is absent (for a requested scale), is not numeric, or holds a value
        that is not a valid answer code (names column and row).

    Examples
    --------
    >>> import pandas as pd
    >>> import evaltoolkit as et
    >>> df = pd.DataFrame({"a": [1, 2, 4], "b": [5, None, 2], "c": [4, None, None]})
    >>> res = et.score(df, {"abc": ["a", "-b", "c"]})
    >>> res.data["abc"].tolist()
    [2.0, nan, 4.0]
    >>> res.n_below_min_items
    {'abc': 1}
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    specs = resolve_scales(instruments, scales=scales, data=data)
    by_cols = [by] if isinstance(by, str) else list(by or [])
    for b in by_cols:
        if b not in data.columns:
            raise DataError(
                f"'by' column '{b}' is not in the data (columns: {', '.join(map(str, data.columns))})"
            )
    out = data.copy()
    new_cols: dict[str, pd.Series] = {}
    counts: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    messages: list[str] = []
    for spec in specs:
        absent = [c for c in spec.items if c not in data.columns]
        if absent:
            if scales is not None:
                raise DataError(f"scale '{spec.id}' needs item column(s) {absent}, which are not in the data")
            messages.append(f"scale '{spec.id}' not scored: item column(s) {absent} are not in the data")
            continue
        if spec.id in data.columns:
            raise DataError(
                f"the data already have a column '{spec.id}', the name of a scale score; rename it first",
                column=spec.id,
            )
        X = keyed_items(data, spec).to_numpy()
        answered = (~np.isnan(X)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(X, axis=1) / answered
        value = mean * spec.n_items if spec.method == "sum" else mean
        below = answered < spec.min_items
        value[below] = np.nan
        n_below = int(below.sum())
        counts[spec.id] = n_below
        if n_below:
            rule = (
                "the item was not answered"
                if spec.n_items == 1
                else f"fewer than {spec.min_items} of {spec.n_items} items were answered"
            )
            messages.append(f"scale '{spec.id}': {n_below} score(s) set to NA because {rule}")
        s = pd.Series(value, index=data.index, name=spec.id)
        new_cols[spec.id] = s
        if standardise:
            if by_cols:
                grp = s.groupby([data[b] for b in by_cols], dropna=False)
                z = (s - grp.transform("mean")) / grp.transform("std")
            else:
                z = (s - s.mean()) / s.std()
            new_cols[f"{spec.id}_z"] = z.rename(f"{spec.id}_z")
        rows.append(
            {
                "scale": spec.id,
                "label": spec.label,
                "instrument": spec.instrument,
                "method": spec.method if spec.method == "mean" else "sum (prorated)",
                "n_items": spec.n_items,
                "min_items": spec.min_items,
                "n_scored": int(np.isfinite(value).sum()),
                "n_below_min_items": n_below,
                "n_partial": int(((answered < spec.n_items) & ~below).sum()),
                "mean": float(np.nanmean(value)) if np.isfinite(value).any() else math.nan,
                "sd": float(np.nanstd(value, ddof=1)) if np.isfinite(value).sum() > 1 else math.nan,
            }
        )
    if new_cols:
        out = pd.concat([out, pd.DataFrame(new_cols, index=data.index)], axis=1)
    for msg in messages:
        warnings.warn(msg, EvalToolkitWarning, stacklevel=2)
    cols = [
        "scale",
        "label",
        "instrument",
        "method",
        "n_items",
        "min_items",
        "n_scored",
        "n_below_min_items",
        "n_partial",
        "mean",
        "sd",
    ]
    return ScoreResult(
        data=out, n_below_min_items=counts, scales=pd.DataFrame(rows, columns=cols), warnings=messages
    )
