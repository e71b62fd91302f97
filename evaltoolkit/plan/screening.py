"""Screening the analysed values before any analysis: missing-value codes and out-of-range scores are never data.

A scored outcome, mediator or moderator that still holds a survey's missing-value code (``-99`` "don't know",
``999``...) or a value outside its scale's range would be analysed as a real score and can move an effect
many times over. :func:`screen_values` runs before the plan: each such value is set to missing, counted per
column, and reported as a caution that names the column, the rule and the first row (never a respondent's ID).

* **Range**: when the design says which instrument scale produces a column (``outcomes[].scale``), values outside
  the scale's possible range (the mean or sum of its items' codes) are out of range. Without a named scale, a
  column the design's ``simulation`` block describes (a construct, the mean of Likert items coded
  ``1..categories``, or one of its items) has that range.
* **Strict** (``evaltoolkit analyse --strict``): the first such column stops the run instead
  (:class:`~evaltoolkit.errors.StrictStop`, naming the file, column, first row and the count).
* **Missing-value codes** (any analysed column): the codes the design's instruments declare as missing, and the
  survey conventions :data:`MISSING_CODES`, when they lie outside the column's other values.

Examples
--------
>>> import evaltoolkit as et
>>> sim = et.simulate_study("ncs_prepost_control", n=200, seed=1)
>>> data = sim.data.copy()
>>> data.loc[data.index[:3], "attitudes"] = -99
>>> screened, notes = screen_values(et.Study(sim.design, data))
>>> int(screened.data["attitudes"].isna().sum() - sim.data["attitudes"].isna().sum()), len(notes)
(3, 1)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaltoolkit.design.study import Study

__all__ = ["MISSING_CODES", "OTHER", "merge_small_categories", "scale_ranges", "screen_values"]

#: the category that text covariates' categories of fewer than ``MIN_CELL`` people are merged into
OTHER = "other (categories of fewer than 10 people)"

#: values that survey tools write for "don't know", "refused", "not asked"... and are never a scored answer
MISSING_CODES: tuple[float, ...] = (-999.0, -99.0, -98.0, -97.0, -96.0, -9.0, -8.0, -7.0, 99.0, 999.0, 9999.0)


def scale_ranges(study: Study) -> dict[str, tuple[float, float]]:
    """The possible range of each design column produced by an instrument scale or item (``Design.sources``), else
    of a column that the design's simulation block describes as a Likert construct or item (1 to ``categories``)."""
    from evaltoolkit.instruments.library import load_instruments
    from evaltoolkit.scoring.scales import resolve_scales

    d = study.design
    ranges: dict[str, tuple[float, float]] = {}
    sources = d.sources
    if d.simulation is not None:
        analysed = ({o.name for o in d.outcomes} | set(d.mediators)) - set(sources)
        for name, spec in d.simulation.constructs.items():
            for col in (name, *spec.items):
                if col in analysed:
                    ranges[col] = (1.0, float(spec.categories))
    if not (d.instruments and sources):
        return ranges
    insts = load_instruments(list(d.instruments))
    scale_ids = {sc.id for inst in insts for sc in inst.scales}
    for inst in insts:  # single items: the response scale's valid codes
        for item in inst.items:
            rs = inst.response_scales[item.response_scale]
            for column, source in sources.items():
                if source == item.code and source not in scale_ids:
                    ranges[column] = (float(rs.min_code), float(rs.max_code))
    by_scale = {source: column for column, source in sources.items() if source in scale_ids}
    if not by_scale:
        return ranges
    for spec in resolve_scales(list(d.instruments), scales=list(by_scale)):
        lo = [x for x in spec.lo if x is not None]
        hi = [x for x in spec.hi if x is not None]
        if len(lo) != spec.n_items or len(hi) != spec.n_items:
            continue
        if spec.method.startswith("sum"):
            ranges[by_scale[spec.id]] = (float(sum(lo)), float(sum(hi)))
        else:
            ranges[by_scale[spec.id]] = (float(min(lo)), float(max(hi)))
    return ranges


def _declared_missing(study: Study) -> set[float]:
    from evaltoolkit.instruments.library import load_instruments

    d = study.design
    if not d.instruments:
        return set()
    codes: set[float] = set()
    for inst in load_instruments(list(d.instruments)):
        for rs in inst.response_scales.values():
            codes |= {float(c) for c in rs.missing}
    return codes


def _row_label(study: Study, pos: int) -> int:
    """The file's row (header on row 1) of the study's ``pos``-th data row, counted before rows were set aside."""
    if study.file_rows is not None and pos < len(study.file_rows):
        return int(study.file_rows[pos])
    return pos + 2


def screen_values(study: Study, *, strict: bool = False) -> tuple[Study, list[str]]:
    """Set missing-value codes and out-of-range values of the analysed columns to missing; say what was done.

    With ``strict=True`` the first column holding such values raises
    :class:`~evaltoolkit.errors.StrictStop` (file, column, first row, count) instead.

    Returns
    -------
    (Study, list of str)
        A study over the screened data (the input study and its data are not modified) and one caution per
        column that had such values (column, how many, the rule, the first row in the file's numbering).
    """
    d = study.design
    ranges = scale_ranges(study)
    codes = set(MISSING_CODES) | _declared_missing(study)
    columns = list(dict.fromkeys([*(o.name for o in d.outcomes), *d.mediators, *d.moderators]))
    data = study.data
    screened = None
    notes: list[str] = []
    for name in columns:
        if name not in data.columns or not pd.api.types.is_numeric_dtype(data[name]):
            continue
        x = data[name].to_numpy(dtype=float)
        bad = np.zeros(len(x), dtype=bool)
        rule = ""
        if name in ranges:
            lo, hi = ranges[name]
            bad = (x < lo - 1e-9) | (x > hi + 1e-9)
            coded = sorted(set(x[bad]) & codes)
            rule = f"outside the scale's range {lo:g} to {hi:g}"
            if coded and len(coded) == len(set(x[bad])):
                rule = "a missing-value code (" + ", ".join(f"{v:g}" for v in coded) + ")"
            elif coded:
                rule = f"missing-value codes ({', '.join(f'{v:g}' for v in coded)}) or otherwise {rule}"
        else:
            is_code = np.isin(x, list(codes))
            others = x[~is_code & ~np.isnan(x)]
            if is_code.any() and len(others):
                # a code counts as missing only when it lies outside the column's other values
                bad = is_code & ((x < others.min()) | (x > others.max()))
                rule = "a missing-value code (" + ", ".join(f"{v:g}" for v in sorted(set(x[bad]))) + ")"
        if not bad.any():
            continue
        first = _row_label(study, int(np.flatnonzero(bad)[0]))
        if strict:
            from evaltoolkit.errors import StrictStop

            raise StrictStop(
                f"holds {int(bad.sum())} value(s) that are {rule} (the first at this row); --strict stops here (without it they "
                "are set to missing, counted and named in the report)",
                file=study.source,
                column=name,
                row=first,
            )
        if screened is None:
            screened = data.copy()
        screened.loc[bad, name] = np.nan
        label = next((o.display for o in d.outcomes if o.name == name), name.replace("_", " "))
        notes.append(
            f"{label} (column '{name}'): {int(bad.sum())} value(s) {rule} were treated as missing, not as scores "
            f"(first at row {first}); check the export's missing-value codes."
        )
    if screened is None:
        return study, notes
    out = Study(d, screened, source=study.source)
    out.excluded = [*study.excluded, *out.excluded]
    out.read_as = {**study.read_as, **out.read_as}
    out.file_rows = study.file_rows
    return out, notes


def merge_small_categories(study: Study) -> tuple[Study, list[str]]:
    """Merge the categories of text covariates and moderators held by fewer than ``MIN_CELL`` people into one.

    A category label is a data value (one person's free-text answer can be a name or a postcode) and a
    coefficient or balance row for a handful of people describes them: neither may reach the report. Returns a
    study over the merged data (the input is not modified) and one caution per column merged (never quoting
    the labels).
    """
    from evaltoolkit.privacy import MIN_CELL

    d = study.design
    data = study.data
    merged = None
    notes: list[str] = []
    for col in dict.fromkeys([*d.covariates, *d.moderators]):
        if (
            col not in data.columns
            or pd.api.types.is_numeric_dtype(data[col])
            or pd.api.types.is_bool_dtype(data[col])
        ):
            continue
        people = data.dropna(subset=[col]).groupby(data[col].dropna().astype(str))[d.columns.id].nunique()
        small = people.index[people < MIN_CELL]
        if not len(small):
            continue
        if merged is None:
            merged = data.copy()
        hit = merged[col].notna() & merged[col].astype(str).isin(small)
        merged[col] = merged[col].astype(object)
        merged.loc[hit, col] = OTHER
        notes.append(
            f"Column '{col}': {len(small)} categor{'y' if len(small) == 1 else 'ies'} with fewer than {MIN_CELL} "
            f"people ({int(people[small].sum())} people) merged into '{OTHER}', so that no category names or "
            "describes a few people."
        )
    if merged is None:
        return study, notes
    out = Study(d, merged, source=study.source)
    out.excluded = [*study.excluded, *out.excluded]
    out.read_as, out.file_rows = dict(study.read_as), study.file_rows
    return out, notes
