"""Simulated platform exports (evaltoolkit.simulate.exports): every file is read back with the raw format tools
(csv, openpyxl, pyreadstat) and checked against the structure the real tools write, then read back through
``read_responses`` for the formats intake supports."""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.errors import DataError
from evaltoolkit.instruments.export import KOBO_META_COLUMNS, layout
from evaltoolkit.simulate.dgps import instrument_answers
from evaltoolkit.simulate.exports import (
    QUALTRICS_META_COLUMNS,
    _xlsx_sheet_name,
    simulate_kobo_export,
    simulate_qualtrics_export,
    simulate_spss_export,
    simulate_stata_export,
)

pyreadstat = pytest.importorskip("pyreadstat")

INST = "ncs_social_mixing"
ARM = {1: "NCS participants", 2: "Interested non-participants"}
WAVE = {1: "Before the programme", 2: "After the programme"}
CHOICES = {"sport": "Sport", "music": "Music", "volunteering": "Volunteering"}


@pytest.fixture(scope="module")
def inst():
    return et.load_instrument(INST)


@pytest.fixture(scope="module")
def ans(inst) -> pd.DataFrame:
    return instrument_answers(inst, 24, seed=7)  # respondent_id + every item, with -99 codes and blanks


@pytest.fixture(scope="module")
def extra(ans) -> pd.DataFrame:
    n = len(ans)
    return pd.DataFrame(
        {
            "respondent_id": ans["respondent_id"],
            "arm": np.tile([1, 2], n // 2),
            "wave": [1] * n,
            "site": ["Leeds", "Hull"] * (n // 2),
        }
    )


def _rows(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


def _truth(inst, ans: pd.DataFrame) -> pd.DataFrame:
    missing = [c for rs in inst.response_scales.values() for c in rs.missing]
    items = ans[inst.item_codes]
    return items.mask(items.isin(missing))


# ------------------------------------------------------------------ KoboToolbox
def test_kobo_extras_group_prefix_labels_and_select_multiple(tmp_path: Path, ans, extra) -> None:
    more = extra[["arm", "site"]].assign(activities=["sport music", "volunteering", None] * 8)
    opts = dict(extra=more, extra_labels={"arm": ARM}, select_multiple={"activities": CHOICES})
    simulate_kobo_export(INST, ans, tmp_path / "xml.csv", **opts)
    rows = _rows(tmp_path / "xml.csv", delimiter=";")
    head, first, third = rows[0], rows[1], rows[3]
    assert head[:3] == ["start", "end", "respondent_id"]
    assert head[3:9] == [
        "admin/arm",
        "admin/site",
        "admin/activities",
        "admin/activities/sport",
        "admin/activities/music",
        "admin/activities/volunteering",
    ]
    assert head[-len(KOBO_META_COLUMNS) :] == list(KOBO_META_COLUMNS)
    assert first[3:9] == ["1", "Leeds", "sport music", "1", "1", "0"]  # XML: choice names; one 0/1 per choice
    assert third[5:9] == ["", "", "", ""]  # not answered: every column empty, no zeros
    assert rows[2][3:9] == ["2", "Hull", "volunteering", "0", "0", "1"]

    simulate_kobo_export(INST, ans, tmp_path / "lab.csv", values="labels", **opts)
    rows = _rows(tmp_path / "lab.csv", delimiter=";")
    assert rows[0][3:9] == [
        "admin/arm",
        "admin/site",
        "admin/activities",
        "admin/activities/Sport",
        "admin/activities/Music",
        "admin/activities/Volunteering",
    ]
    assert rows[1][3:9] == ["NCS participants", "Leeds", "Sport Music", "1", "1", "0"]

    flat = simulate_kobo_export(INST, ans, include_groups=False, **opts)
    assert list(flat.columns[3:6]) == ["arm", "site", "activities"]
    assert "activities/sport" in flat.columns and "ncs_getalong" in flat.columns


def test_kobo_extras_are_checked(ans, extra) -> None:
    with pytest.raises(DataError, match="rows"):
        simulate_kobo_export(INST, ans, extra=extra.iloc[:3])
    with pytest.raises(DataError, match="not among"):
        simulate_kobo_export(
            INST, ans, extra=pd.DataFrame({"act": ["dance"] * len(ans)}), select_multiple={"act": CHOICES}
        )
    with pytest.raises(DataError, match="no label"):
        simulate_kobo_export(INST, ans, extra=extra[["arm"]], extra_labels={"arm": {1: "NCS participants"}})
    with pytest.raises(DataError, match="clash"):
        simulate_kobo_export(INST, ans, extra=extra[["respondent_id"]])


def test_kobo_xlsx_one_sheet_named_after_the_form(tmp_path: Path, inst, ans) -> None:
    from openpyxl import load_workbook

    csv_df = simulate_kobo_export(INST, ans, tmp_path / "k.csv")
    simulate_kobo_export(INST, ans, tmp_path / "k.xlsx")
    wb = load_workbook(tmp_path / "k.xlsx", read_only=True)
    assert wb.sheetnames == [inst.title]
    cells = list(wb[inst.title].iter_rows(values_only=True))
    assert list(cells[0]) == list(csv_df.columns)
    body = [["" if v is None else v for v in row] for row in cells[1:]]
    assert body == csv_df.to_numpy().tolist()  # the same text as the CSV; empty answers are empty cells
    assert all(isinstance(v, str) for row in cells[1:] for v in row if v is not None)
    # Kobo's worksheet names: forbidden characters replaced, 31 characters at most
    assert _xlsx_sheet_name("Wave 1: pre/post [draft]") == "Wave 1_ pre_post _draft_"
    assert (
        _xlsx_sheet_name("A questionnaire title longer than thirty-one") == "A questionnaire title longer..."
    )


# ------------------------------------------------------------------ Qualtrics
def test_qualtrics_header_rows_and_question_ids(tmp_path: Path, inst, ans, extra) -> None:
    items = ans[inst.item_codes]
    df = simulate_qualtrics_export(
        INST, items, tmp_path / "q.csv", extra=extra, placeholders={"place": "Leeds"}
    )
    raw = (tmp_path / "q.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfStartDate,EndDate,Status,")
    rows = _rows(tmp_path / "q.csv", encoding="utf-8-sig")
    names, texts, ids = rows[0], rows[1], rows[2]
    assert len(rows) == 3 + len(items)
    meta = len(QUALTRICS_META_COLUMNS)
    assert names[:meta] == list(QUALTRICS_META_COLUMNS)
    assert names[:6] == ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)"]
    assert names[meta : meta + 9] == ["Q1", "Q2_1", "Q2_2", "Q2_3", "Q2_4", "Q3", "Q4_1", "Q4_2", "Q5"]
    assert len(names) == meta + len(inst.item_codes) + 4
    assert all(re.fullmatch(r"Q\d+(_\d+)?", n) for n in names[meta:-4])
    assert names[-4:] == ["respondent_id", "arm", "wave", "site"]  # embedded data at the end
    assert texts[:3] == ["Start Date", "End Date", "Response Type"]
    parsed = [json.loads(c) for c in ids]
    assert all(set(p) <= {"ImportId", "timeZone"} for p in parsed)
    assert parsed[0] == {"ImportId": "startDate", "timeZone": "Z"}
    assert parsed[8] == {"ImportId": "_recordId"}
    assert [p["ImportId"] for p in parsed[meta:-4]] == [f"QID{n[1:]}" for n in names[meta:-4]]
    assert parsed[-4] == {"ImportId": "respondent_id"} and texts[-4] == "respondent_id"
    qs = {q.code: q for q in layout(INST, placeholders={"place": "Leeds"}).questions}
    by_name = dict(zip(names, texts))
    assert by_name["Q1"] == qs["ncs_dating_comfort"].wording  # a single question: the exact wording
    assert (
        by_name["Q2_3"] == f"Feelings about other groups - {qs['ncs_warmth_3'].wording}"
    )  # matrix statement
    assert by_name["Q5"] == qs["ncs_getalong"].wording and "Leeds" in by_name["Q5"]
    # the returned frame is the file read as pandas reads it
    back = pd.read_csv(tmp_path / "q.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(df, back)
    # numeric values: codes, missing codes as coded
    col = dict(zip(names, zip(*rows[3:])))
    codes = [str(int(v)) if not np.isnan(v) else "" for v in items["ncs_getalong"]]
    assert list(col["Q5"]) == codes and "-99" in codes


def test_qualtrics_item_code_headers(inst, ans) -> None:
    df = simulate_qualtrics_export(INST, ans[inst.item_codes], question_ids=False)
    assert list(df.columns[len(QUALTRICS_META_COLUMNS) :]) == inst.item_codes
    assert df.loc[1, "ncs_warmth_2"] == '{"ImportId":"QID2_2"}'


@pytest.mark.parametrize("values", ["numeric", "text"])
def test_qualtrics_preview_and_unfinished_rows(tmp_path: Path, inst, ans, extra, values: str) -> None:
    items = ans[inst.item_codes]
    simulate_qualtrics_export(
        INST, items, tmp_path / "q.csv", extra=extra, values=values, n_preview=2, n_unfinished=3, seed=3
    )
    rows = _rows(tmp_path / "q.csv", encoding="utf-8-sig")
    names = rows[0]
    data = [dict(zip(names, r)) for r in rows[3:]]
    assert len(data) == 2 + len(items) + 3
    text = values == "text"
    preview, real, unfinished = data[:2], data[2:-3], data[-3:]
    assert {r["Status"] for r in preview} == {"Survey Preview" if text else "1"}
    assert {r["DistributionChannel"] for r in preview} == {"preview"}
    assert {r["Status"] for r in real + unfinished} == {"IP Address" if text else "0"}
    assert {r["DistributionChannel"] for r in real + unfinished} == {"anonymous"}
    assert {r["Finished"] for r in preview + real} == {"True" if text else "1"}
    assert {r["Progress"] for r in preview + real} == {"100"}
    assert {r["Finished"] for r in unfinished} == {"False" if text else "0"}
    q_names = names[len(QUALTRICS_META_COLUMNS) : -4]
    for r in unfinished:
        assert 0 < int(r["Progress"]) < 100
        answered = [r[q] != "" for q in q_names]
        assert answered[0] and not answered[-1] and answered == sorted(answered, reverse=True)
        assert r["respondent_id"] == ""  # no embedded data for added responses
    for r in data:
        assert ipaddress.ip_address(r["IPAddress"]) in ipaddress.ip_network("192.0.2.0/24")
        assert re.fullmatch(r"R_[A-Za-z0-9]{15}", r["ResponseId"])
        assert r["RecipientEmail"] == r["RecipientLastName"] == r["ExternalReference"] == ""
        assert 49 < float(r["LocationLatitude"]) < 56 and -6 < float(r["LocationLongitude"]) < 2
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["StartDate"])
        assert r["EndDate"] >= r["StartDate"] and r["RecordedDate"] > r["EndDate"]
        assert int(r["Duration (in seconds)"]) > 0
    assert len({r["ResponseId"] for r in data}) == len(data)
    getalong = [r["Q5"] for r in real]
    scale = inst.response_scales[inst.item("ncs_getalong").response_scale]
    if text:
        assert set(getalong) - {""} <= set(scale.labels.values()) | set(scale.missing.values())
        assert "Don't know" in getalong
    else:
        assert "-99" in getalong and all(v == "" or re.fullmatch(r"-?\d+", v) for v in getalong)
    assert {r["Q2_1"] for r in real} - {""} <= {str(i) for i in range(101)} | {"-99", "-98"}


def test_qualtrics_refuses_non_item_answers(ans) -> None:
    with pytest.raises(DataError, match="extra="):
        simulate_qualtrics_export(INST, ans)  # respondent_id belongs in extra
    with pytest.raises(DataError, match="values"):
        simulate_qualtrics_export(INST, ans.drop(columns="respondent_id"), values="labels")  # type: ignore[arg-type]


# ------------------------------------------------------------------ SPSS and Stata
def test_spss_value_labels_missing_ranges_and_variable_labels(tmp_path: Path, inst, ans, extra) -> None:
    items = ans[inst.item_codes]
    labels = {"arm": ARM, "wave": WAVE}
    simulate_spss_export(INST, items, tmp_path / "w.sav", extra=extra, extra_labels=labels)
    _, meta = pyreadstat.read_sav(str(tmp_path / "w.sav"), metadataonly=True, user_missing=True)
    assert meta.column_names == [*extra.columns, *inst.item_codes]
    assert meta.variable_value_labels["arm"] == {1.0: "NCS participants", 2.0: "Interested non-participants"}
    assert meta.variable_value_labels["wave"][1.0] == "Before the programme"
    scale = inst.response_scales["agree5"]
    assert meta.variable_value_labels["ncs_getalong"] == {
        **{float(c): lab for c, lab in scale.labels.items()},
        **{float(c): lab for c, lab in scale.missing.items()},
    }
    assert meta.variable_value_labels["ncs_warmth_1"][-99.0] == "Don't know"  # anchors and missing codes
    assert meta.missing_ranges["ncs_getalong"] == [{"lo": -99.0, "hi": -99.0}, {"lo": -98.0, "hi": -98.0}]
    assert "arm" not in meta.missing_ranges
    wording = {q.code: q.wording for q in layout(INST).questions}
    assert meta.column_names_to_labels["ncs_getalong"] == wording["ncs_getalong"]
    assert meta.readstat_variable_types["respondent_id"] == "string"
    assert (
        meta.variable_measure["ncs_getalong"] == "ordinal"
        and meta.variable_measure["ncs_warmth_1"] == "scale"
    )
    df, _ = pyreadstat.read_sav(str(tmp_path / "w.sav"), user_missing=True)
    np.testing.assert_array_equal(
        df["ncs_getalong"].to_numpy(), items["ncs_getalong"].to_numpy()
    )  # raw codes
    assert df["arm"].tolist() == extra["arm"].astype(float).tolist()
    plain, _ = pyreadstat.read_sav(str(tmp_path / "w.sav"))  # without user_missing: -99 is missing
    assert not (plain["ncs_getalong"] < 0).any()

    simulate_spss_export(INST, items, tmp_path / "n.sav", user_missing=False, variable_labels=False)
    _, meta = pyreadstat.read_sav(str(tmp_path / "n.sav"), metadataonly=True, user_missing=True)
    assert meta.missing_ranges == {} and meta.column_names_to_labels["ncs_getalong"] is None
    assert meta.variable_value_labels["ncs_getalong"][-99.0] == "Don't know"


def test_stata_value_labels_and_codes_as_they_are(tmp_path: Path, inst, ans, extra) -> None:
    items = ans[inst.item_codes]
    simulate_stata_export(INST, items, tmp_path / "w.dta", extra=extra, extra_labels={"arm": ARM})
    df, meta = pyreadstat.read_dta(str(tmp_path / "w.dta"))
    assert meta.column_names == [*extra.columns, *inst.item_codes]
    assert meta.variable_value_labels["arm"] == ARM
    assert meta.variable_value_labels["ncs_getalong"][-99] == "Don't know"
    assert meta.variable_value_labels["ncs_getalong"][5] == "Strongly agree"
    assert len(meta.value_labels) == 1 + len(inst.item_codes)  # one label set per variable (pyreadstat)
    np.testing.assert_array_equal(df["ncs_getalong"].to_numpy(), items["ncs_getalong"].to_numpy())
    wording = {q.code: q.wording for q in layout(INST).questions}
    label = meta.column_names_to_labels["ncs_getalong"]
    assert len(label) <= 80 and wording["ncs_getalong"].startswith(label)
    assert meta.missing_ranges == {}
    with pytest.raises(DataError, match="numeric codes"):
        simulate_stata_export(
            INST, items, tmp_path / "x.dta", extra=extra, extra_labels={"site": {"Leeds": "L", "Hull": "H"}}
        )
    # SPSS can label text values
    simulate_spss_export(
        INST, items, tmp_path / "s.sav", extra=extra, extra_labels={"site": {"Leeds": "L", "Hull": "H"}}
    )
    _, meta = pyreadstat.read_sav(str(tmp_path / "s.sav"), metadataonly=True)
    assert meta.variable_value_labels["site"] == {"Leeds": "L", "Hull": "H"}


# ------------------------------------------------------------------ read back through intake
@pytest.mark.parametrize(
    "name", ["kobo.csv", "kobo.xlsx", "spss.sav", "stata.dta", "qualtrics_numeric.csv", "qualtrics_text.csv"]
)
def test_read_responses_reads_the_item_values_back(tmp_path: Path, inst, ans, extra, name: str) -> None:
    path = tmp_path / name
    items = ans[inst.item_codes]
    if name.startswith("kobo"):
        simulate_kobo_export(INST, ans, path, extra=extra[["arm", "site"]], extra_labels={"arm": ARM})
    elif name.startswith("spss"):
        simulate_spss_export(INST, items, path, extra=extra, extra_labels={"arm": ARM})
    elif name.startswith("stata"):
        simulate_stata_export(INST, items, path, extra=extra, extra_labels={"arm": ARM})
    else:
        values = "numeric" if "numeric" in name else "text"
        simulate_qualtrics_export(INST, items, path, extra=extra, values=values, question_ids=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, rep = et.read_responses(path, inst, id_col="respondent_id", wave_col=None)
    assert rep.n_errors == 0 and rep.n_rows_out == len(ans)
    assert list(data["respondent_id"]) == list(ans["respondent_id"])
    truth = _truth(inst, ans)
    for code in inst.item_codes:
        np.testing.assert_array_equal(data[code].to_numpy(dtype=float), truth[code].to_numpy(dtype=float))
