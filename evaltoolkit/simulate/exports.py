"""Simulated survey-platform exports: what KoboToolbox would write for a form and a set of answers.

Used to test intake end to end (the export is read back by :func:`evaltoolkit.read_responses`) and by the demo.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evaltoolkit.errors import DataError
from evaltoolkit.instruments.export import InstrumentsLike, SlotPolicy, fmt_num, layout

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["simulate_kobo_export"]


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
) -> pd.DataFrame:
    """Write the CSV KoboToolbox would export for a form made by
    :func:`~evaltoolkit.instruments.export.to_xlsform` and these answers.

    The layout follows KoboToolbox's CSV export with its default options ("XML values and
    headers" or "Labels", "Include groups in headers" on, group separator ``/``, field
    separator ``;``): columns ``start``, ``end``, the ID question, every question as
    ``<group>/<name>`` (notes and groups have no column), then :data:`KOBO_META_COLUMNS`.
    Select-one answers are the choice *names* (the codes as text, e.g. ``"4"``, ``"-99"``)
    with ``values="xml"`` or the choice labels with ``values="labels"`` (then the headers
    are ``<group label>/<question label>``, or the question label alone without groups);
    numeric answers are written as numbers in both modes; unanswered questions are empty
    cells.

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
        Write the CSV here (UTF-8).
    values : {"xml", "labels"}
        Codes (XML values and headers) or labels.
    include_groups, group_separator, delimiter
        Kobo export options.
    start : datetime, optional
        Time stamp of the first submission (default 2026-01-05 09:00 UTC); later ones are 7 min apart.
    seed : int
        Seed for the ``_uuid`` values.

    Returns
    -------
    pandas.DataFrame
        The export as strings (exactly what the CSV holds).

    Examples
    --------
    >>> import pandas as pd
    >>> ans = pd.DataFrame({"respondent_id": ["a1"], "ncs_getalong": [4], "ncs_warmth_1": [70]})
    >>> kobo = simulate_kobo_export("ncs_social_mixing", ans)
    >>> kobo.loc[0, "ncs_local_area/ncs_getalong"], kobo.loc[0, "ncs_attitudes/ncs_warmth_1"]
    ('4', '70')
    """
    import random

    import pandas as pd

    if values not in ("xml", "labels"):
        raise DataError(f"values must be 'xml' or 'labels', not {values!r}")
    if not isinstance(answers, pd.DataFrame):
        raise DataError("answers must be a pandas DataFrame with one column per item code")
    lay = layout(instruments, placeholders=placeholders, fill=fill, slots=slots)
    qs = lay.questions
    known = {q.code for q in qs} | ({id_field} if id_field else set())
    extra = [c for c in answers.columns if c not in known]
    if extra:
        raise DataError(
            f"answer column(s) {extra} are not questions of this form (items: {', '.join(sorted(known))})"
        )
    n = len(answers)
    rng = random.Random(seed)
    t0 = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    out: dict[str, list[str]] = {}

    def stamp(t: datetime, ms: bool = True) -> str:
        s = t.strftime("%Y-%m-%dT%H:%M:%S")
        return s + (".000+00:00" if ms else "")

    times = [t0 + timedelta(minutes=7 * i) for i in range(n)]
    out["start"] = [stamp(t) for t in times]
    out["end"] = [stamp(t + timedelta(minutes=6)) for t in times]
    if id_field:
        ids = (
            answers[id_field]
            if id_field in answers.columns
            else pd.Series([f"R{i + 1:05d}" for i in range(n)])
        )
        header = "Respondent ID" if values == "labels" else id_field
        out[header] = ["" if pd.isna(v) else str(v) for v in ids]
    group_labels = {g.name: g.label for g in lay.groups}
    for q in qs:
        rs = q.scale
        if values == "labels":
            header = f"{group_labels[q.group]}{group_separator}{q.wording}" if include_groups else q.wording
        else:
            header = f"{q.group}{group_separator}{q.code}" if include_groups else q.code
        if header in out:
            raise DataError(f"two questions would share the export column '{header}'")
        col: list[str] = []
        series = answers[q.code] if q.code in answers.columns else pd.Series([pd.NA] * n)
        for row, v in enumerate(series):
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                col.append("")
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise DataError(f"answer {v!r} is not a numeric code", column=q.code, row=row) from None
            allowed = (
                x in rs.labels
                or x in rs.missing
                or (rs.type == "numeric" and rs.min_code <= x <= rs.max_code)  # type: ignore[operator]
            )
            if not allowed:
                raise DataError(
                    f"answer {v!r} is not a valid code of response scale '{q.scale_name}'",
                    column=q.code,
                    row=row,
                )
            if rs.type == "numeric":
                col.append(fmt_num(x))  # integer/decimal questions export the number in both modes
            elif values == "labels":
                col.append(rs.labels.get(int(x)) or rs.missing[int(x)])
            else:
                col.append(str(int(x)))
        out[header] = col
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
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(p, sep=delimiter, index=False, encoding="utf-8")
    return df
