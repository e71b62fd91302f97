"""What survey platforms add to an export, undone: test responses, group prefixes, coded design columns.

Each step takes the cleaned frame from :func:`~evaltoolkit.intake.read.read_responses` (index = the file's row
numbers), records what it did in the :class:`~evaltoolkit.intake.report.ValidationReport` and never quotes a
respondent's value:

* :func:`drop_test_responses` - Qualtrics preview, test and spam responses and unfinished responses are left out
  by default and counted (``Status``, ``DistributionChannel``, ``Finished``).
* :func:`strip_group_prefixes` - Kobo group paths (``admin/site``) become the question name (``site``) unless two
  columns would then share a name; ``select_multiple`` questions in either of Kobo's forms become 0/1 columns
  ``<question>_<choice>``; design columns are also found ignoring case (``Site``).
* :func:`decode_design_columns` - wave and arm values given as codes with value labels (SPSS/Stata), as labels
  (Kobo "labels" exports, Qualtrics choice text) or as the design's labels become the design's names; labelled
  cluster columns become their labels, and labelled covariates with three or more categories too.

Examples
--------
>>> import pandas as pd
>>> from evaltoolkit.intake.report import ValidationReport
>>> rep = ValidationReport(file="f.csv")
>>> df = pd.DataFrame({"admin/site": ["S1", "S2", "S1", "S2"], "admin/langs": ["en cy", "en", "cy", "en cy"]})
>>> strip_group_prefixes(df, set(), rep, "f.csv").columns.tolist()
['site', 'langs', 'langs_cy', 'langs_en']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.intake.labels import norm_label
from evaltoolkit.intake.report import ValidationReport

__all__ = [
    "META_COLUMNS",
    "decode_design_columns",
    "drop_identifier_columns",
    "drop_test_responses",
    "is_metadata",
    "strip_group_prefixes",
]

#: metadata columns of KoboToolbox and Qualtrics exports (kept by read_responses, noted once; never written to scored data)
META_COLUMNS = {
    "start", "end", "today", "deviceid", "subscriberid", "simserial", "phonenumber", "username",
    "audit", "__version__", "_version_", "_id", "_uuid", "_submission_time", "_validation_status",
    "_notes", "_status", "_submitted_by", "_tags", "_index", "_parent_index", "_parent_table_name",
    "_attachments", "_geolocation", "_xform_id_string", "formhub/uuid", "meta/instanceid",
    "meta/instancename", "meta/rootuuid", "meta/deprecatedid",
    "startdate", "enddate", "status", "ipaddress", "progress", "duration (in seconds)", "finished",
    "recordeddate", "responseid", "recipientlastname", "recipientfirstname", "recipientemail",
    "externalreference", "locationlatitude", "locationlongitude", "distributionchannel", "userlanguage",
}  # fmt: skip


def is_metadata(column: str) -> bool:
    """A survey platform's bookkeeping column (``_uuid``, ``StartDate``, ``meta/instanceID``...)."""
    name = str(column).lower()
    return name in META_COLUMNS or name.rsplit("/", 1)[-1] in META_COLUMNS


#: Qualtrics ``Status`` values of responses that are not real respondents (choice-text and numeric exports)
_NOT_RESPONDENTS = {
    "survey preview": "preview",
    "survey test": "test",
    "spam": "spam",
    "survey preview spam": "preview",
    "offline survey preview": "preview",
    "1": "preview",
    "2": "test",
    "8": "spam",
    "9": "preview",
    "17": "preview",
}
_UNFINISHED = {"false", "0", "0.0", "no"}


def _column(data: pd.DataFrame, name: str) -> str | None:
    """The column called ``name`` ignoring case and spaces, or None."""
    want = norm_label(name).replace(" ", "")
    return next((c for c in data.columns if norm_label(c).replace(" ", "") == want), None)


def drop_test_responses(
    data: pd.DataFrame,
    report: ValidationReport,
    file: str,
    *,
    keep_previews: bool = False,
    keep_unfinished: bool = False,
) -> pd.DataFrame:
    """Leave out Qualtrics preview/test/spam and unfinished responses (each counted, by row); returns the rest.

    Examples
    --------
    >>> from evaltoolkit.intake.report import ValidationReport
    >>> rep = ValidationReport(file="q.csv")
    >>> df = pd.DataFrame({"Status": ["IP Address", "Survey Preview", "IP Address"],
    ...                    "Finished": ["True", "True", "False"]}, index=[4, 5, 6])
    >>> drop_test_responses(df, rep, "q.csv").index.tolist()
    [4]
    >>> rep.of("test response")["row"].tolist(), rep.of("unfinished response")["row"].tolist()
    ([5], [6])
    """
    keep = np.ones(len(data), dtype=bool)
    rows = np.asarray(data.index)
    kind = pd.Series("", index=data.index, dtype=object)
    for col in filter(None, (_column(data, "Status"), _column(data, "DistributionChannel"))):
        text = data[col].map(lambda v: norm_label(v).removesuffix(".0") if pd.notna(v) else "")
        kind = kind.where(kind != "", text.map(lambda t: _NOT_RESPONDENTS.get(t, "")))
    tests = (kind != "").to_numpy()
    if tests.any() and not keep_previews:
        for what in sorted(set(kind[tests])):
            hit = (kind == what).to_numpy()
            report.add_many(file, None, rows[hit], [""] * int(hit.sum()), "test response", "info",
                            f"a {what} response, not a respondent; left out (keep with --keep-previews)")  # fmt: skip
        keep &= ~tests
    fin = _column(data, "Finished")
    if fin is not None:
        unfinished = (
            data[fin].map(lambda v: pd.notna(v) and norm_label(v) in _UNFINISHED).to_numpy(dtype=bool)
        )
        unfinished = unfinished & keep
        if unfinished.any() and not keep_unfinished:
            report.add_many(file, None, rows[unfinished], [""] * int(unfinished.sum()), "unfinished response", "info",
                            "the respondent did not finish the survey; left out (keep with --keep-unfinished)")  # fmt: skip
            keep &= ~unfinished
    return data.loc[keep]


def _select_multiple(data: pd.DataFrame, used: set[str]) -> dict[str, dict[str, str]]:
    """``{question column: {choice: dummy column}}`` for Kobo select_multiple questions.

    Split form: ``q`` with ``q/choice`` columns holding 0/1. Single-column form: a text column whose answers are
    space-separated choice names (letters, digits, ``_``), each name appearing in several answers.
    """
    found: dict[str, dict[str, str]] = {}
    cols = [str(c) for c in data.columns]
    for c in cols:
        parts = {x[len(c) + 1 :]: x for x in cols if x.startswith(c + "/") and "/" not in x[len(c) + 1 :]}
        if parts and all(
            set(pd.to_numeric(data[p], errors="coerce").dropna().unique()) <= {0, 1} for p in parts.values()
        ):
            found[c] = parts
    for c in cols:
        if c in found or c in used or any(c in p.values() for p in found.values()):
            continue
        s = data[c]
        if pd.api.types.is_numeric_dtype(s) or "/" not in c:
            continue
        text = s.dropna().astype(str).str.strip()
        if (
            len(text) < 2
            or not text.str.contains(" ").any()
            or not text.str.fullmatch(r"[A-Za-z0-9_]+( [A-Za-z0-9_]+)*").all()
        ):
            continue
        tokens = [tok for t in text for tok in t.split()]
        choices = sorted(set(tokens))
        # choice names recur: a few distinct names, each chosen by several people (free text and names do not)
        if 1 < len(choices) <= min(30, len(text) // 2) and min(tokens.count(c) for c in choices) >= 2:
            found[c] = {ch: "" for ch in choices}
    return found


def strip_group_prefixes(data: pd.DataFrame, protected: set[str], report: ValidationReport, file: str,
                         design_columns: Iterable[str] = ()) -> pd.DataFrame:  # fmt: skip
    """Kobo group paths to question names (collisions kept and reported), select_multiple to 0/1 columns, and
    design columns found ignoring case. ``protected`` columns (items, id, wave, arm) are left as they are."""
    data = data.copy()
    multi = _select_multiple(data, protected)
    for q, parts in multi.items():
        base = q.rsplit("/", 1)[-1]
        text = data[q].astype("string").str.split()
        for choice in sorted(parts):
            src = parts[choice]
            if src:
                col = pd.to_numeric(data[src], errors="coerce")
            else:
                col = text.map(lambda toks, ch=choice: np.nan if toks is pd.NA else float(ch in toks))
            data[f"{q}_{choice}"] = col.astype(float)
        data = data.drop(columns=[p for p in parts.values() if p])
        report.add(file, base, None, "", "select multiple", "info",
                   f"{len(parts)} choice(s) written as 0/1 columns {base}_<choice>")  # fmt: skip
    tails: dict[str, list[str]] = {}
    for c in data.columns:
        if isinstance(c, str) and "/" in c and c not in protected:
            tails.setdefault(c.rsplit("/", 1)[-1], []).append(c)
    rename: dict[str, str] = {}
    for tail, cols in tails.items():
        if len(cols) == 1 and tail and tail not in data.columns and tail not in protected:
            rename[cols[0]] = tail
        elif len(cols) > 1:
            report.add(file, tail, None, "", "duplicate column", "warning",
                       f"{len(cols)} columns end in '{tail}' ({', '.join(cols[:4])}); kept with their group paths: "
                       "name the one you mean with --map")  # fmt: skip
    if rename:
        data = data.rename(columns=rename)
        report.notes.append(
            f"group prefixes removed from {len(rename)} column name(s) (e.g. {next(iter(rename))})"
        )
    for name in design_columns:
        if name and name not in data.columns:
            found = _column(data, name)
            if found is not None and found not in protected:
                data = data.rename(columns={found: name})
                report.notes.append(f"column '{found}' read as the design's '{name}'")
    return data


def _design_lookup(names: Iterable[str], labels: Mapping[str, str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for name in names:
        for key in (name, labels.get(name, name)):
            table.setdefault(norm_label(key), name)
    return table


def _decode_to(data: pd.DataFrame, column: str, table: Mapping[str, str], value_labels: Mapping[float, str] | None,
               report: ValidationReport, file: str, what: str) -> None:  # fmt: skip
    """Values of ``column`` (codes with value labels, labels, or names) -> the design's names, in place."""
    s = data[column]
    if s.dropna().astype(str).isin(list(table.values())).all():
        return

    def decode(v: Any) -> Any:
        if pd.isna(v):
            return v
        text = value_labels.get(float(v), v) if value_labels and _is_num(v) else v
        key = norm_label(text.removesuffix(".0") if isinstance(text, str) else _num_text(text))
        return table.get(key, text if not _is_num(text) else _num_text(text))

    decoded = s.map(decode)
    if decoded.equals(s):
        return
    data[column] = decoded.astype(object)
    source = "value labels" if value_labels else "labels"
    report.add(
        file,
        column,
        None,
        "",
        "decoded labels",
        "info",
        f"{what} values read through the {source} as the design's names",
    )


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _num_text(v: Any) -> str:
    return f"{float(v):g}" if _is_num(v) else str(v)


def decode_design_columns(data: pd.DataFrame, design: Any, value_labels: Mapping[str, Mapping[float, str]],
                          report: ValidationReport, file: str) -> pd.DataFrame:  # fmt: skip
    """Wave and arm values to the design's names; labelled clusters (and covariates with 3+ categories) to labels.

    Examples
    --------
    >>> import evaltoolkit as et
    >>> from evaltoolkit.intake.report import ValidationReport
    >>> d = et.load_design("ncs_prepost_control")
    >>> df = pd.DataFrame({"arm": [1.0, 2.0], "wave": ["Before the programme", "post"]})
    >>> out = decode_design_columns(df, d, {"arm": {1.0: "NCS participants", 2.0: "Interested non-participants"}},
    ...                             ValidationReport(), "f.sav")
    >>> out[["arm", "wave"]].values.tolist()
    [['ncs', 'baseline'], ['control', 'post']]
    """
    data = data.copy()
    c = design.columns
    if c.arm in data.columns:
        table = _design_lookup(design.arms.all, design.arms.labels)
        _decode_to(data, c.arm, table, value_labels.get(c.arm), report, file, "arm")
    if c.wave in data.columns:
        table = _design_lookup(design.wave_names, {w.name: w.display for w in design.waves})
        table.update(
            {norm_label(f"{i + 1:g}"): w for i, w in enumerate(design.wave_names)}
            if value_labels.get(c.wave) is None and pd.api.types.is_numeric_dtype(data[c.wave])
            else {}
        )
        _decode_to(data, c.wave, table, value_labels.get(c.wave), report, file, "wave")
    for col in [*c.clusters, *design.covariates, *design.moderators]:
        labels = value_labels.get(col)
        if col not in data.columns or not labels:
            continue
        if col in c.clusters or len(labels) >= 3:
            data[col] = data[col].map(
                lambda v, lab=labels: lab.get(float(v), v) if _is_num(v) and not pd.isna(v) else v
            )
            report.add(file, col, None, "", "decoded labels", "info", "codes replaced by their value labels")
    return data


def drop_identifier_columns(data: pd.DataFrame, protected: set[str], id_col: str | None,
                            report: ValidationReport, file: str, keep: bool = False) -> pd.DataFrame:  # fmt: skip
    """Columns (and single cells) that identify people: listed in the report and, unless ``keep``, removed."""
    from evaltoolkit.intake.identifiers import drop_identifiers, find_identifiers

    found = find_identifiers(data, exclude=protected, id_col=id_col)
    # platform bookkeeping (_uuid, timestamps) is never written to scored data; judge it by name only
    found = [f for f in found if not (f.scope == "cells" and is_metadata(f.column))]
    for f in found:
        if f.column == id_col:
            action = "IDs are needed to link waves: scored output replaces them by pseudonymous IDs"
        elif keep:
            action = "kept (--keep-identifiers)"
        else:
            action = "left out of the data" if f.scope == "column" else "set to blank"
        report.add(file, f.column, None, "", "identifier", "warning", f"{f.kind}: {f.reason}; {action}")
    found = [f for f in found if f.column != id_col]
    if keep or not found:
        return data
    cleaned, _notes = drop_identifiers(data, found)
    return cleaned
