"""Intake: every supported format, every problem class with file/column/row, strict mode, round trips.

Expected issue rows are worked out by hand from the small files written in each test (row numbers
are the spreadsheet rows a user sees: header = row 1, so the first respondent of a CSV is row 2;
a Qualtrics export's first respondent is row 4; SPSS/Stata rows are case numbers).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.errors import DataError, EvalToolkitWarning, InstrumentError
from evaltoolkit.intake.report import ValidationReport
from evaltoolkit.simulate.dgps import instrument_answers
from evaltoolkit.simulate.exports import simulate_kobo_export

INST = "ncs_social_mixing"


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _issues(rep: ValidationReport, problem: str) -> list[tuple]:
    sub = rep.of(problem)
    return [(r.column, None if pd.isna(r.row) else int(r.row), r.value) for r in sub.itertuples()]


@pytest.fixture(scope="module")
def inst():
    return et.load_instrument(INST)


MESSY = (
    "id,wave,ncs_getalong,ncs_pos_contact,ncs_warmth_1,arm,notes\n"
    "1,1,Agree,5,50,ncs,ok\n"  # row 2
    "\n"  # row 3: blank
    "2,1,Strongly disagree,-99,101,control,\n"  # row 4: -99 missing code, 101 out of range
    "2,1,Dont know,often,abc,ncs,dup\n"  # row 5: dup id; "Dont know" = missing label; unknown label; wrong type
    "3,2,4,3,20,ncs,never at baseline\n"  # row 6: follow-up id not at baseline
    ",2,3,3.5,3,ncs,no id\n"  # row 7: missing id; 3.5 not a code
    ",,,,,,\n"  # row 8: blank (only separators)
)


@pytest.fixture()
def messy_csv(tmp_path: Path) -> Path:
    p = tmp_path / "wave_all.csv"
    p.write_text(MESSY, encoding="utf-8")
    return p


def test_every_problem_is_listed_with_column_and_row(messy_csv: Path, inst) -> None:
    before = _digest(messy_csv)
    data, rep = et.read_responses(messy_csv, inst)
    assert _digest(messy_csv) == before  # the input file is never changed
    assert _issues(rep, "blank row") == [("", 3, ""), ("", 8, "")]
    assert _issues(rep, "out of range") == [("ncs_pos_contact", 7, "3.5"), ("ncs_warmth_1", 4, "101")]
    assert _issues(rep, "unknown label") == [("ncs_pos_contact", 5, "often")]
    assert _issues(rep, "wrong type") == [("ncs_warmth_1", 5, "abc")]
    assert _issues(rep, "missing id") == [("id", 7, "")]
    assert _issues(rep, "duplicate id") == [
        ("id", 4, "same ID as row 4"),
        ("id", 5, "same ID as row 4"),
    ]  # no ID values
    assert _issues(rep, "unmatched follow-up id") == [("id", 6, "")]
    assert {c for c, _, _ in _issues(rep, "extra column")} == {"arm", "notes"}
    assert {c for c, _, _ in _issues(rep, "missing column")} == {
        "ncs_dating_comfort",
        "ncs_warmth_2",
        "ncs_warmth_3",
        "ncs_warmth_4",
        "ncs_help_seeking",
        "ncs_neg_contact",
        "ncs_belong",
    }
    assert set(rep.issues["file"]) == {"wave_all.csv"}
    # rows: 7 data rows in, 2 blank removed, nothing else dropped
    assert (rep.n_rows_in, rep.n_rows_out, rep.n_dropped) == (7, 5, 2)
    assert data.index.tolist() == [2, 4, 5, 6, 7]
    # labels -> codes, missing codes and invalid values -> NA
    np.testing.assert_array_equal(data["ncs_getalong"].to_numpy(), [4.0, 1.0, np.nan, 4.0, 3.0])
    np.testing.assert_array_equal(data["ncs_pos_contact"].to_numpy(), [5.0, np.nan, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(data["ncs_warmth_1"].to_numpy(), [50.0, np.nan, np.nan, 20.0, 3.0])
    assert data["ncs_neg_contact"].isna().all()
    assert data["id"].tolist()[:4] == ["1", "2", "2", "3"] and pd.isna(data["id"].iloc[4])
    assert data["wave"].tolist() == [1, 1, 1, 2, 2]
    assert data["notes"].iloc[0] == "ok"
    rc = rep.recodes.set_index("column")
    assert rc.loc["ncs_getalong", "n_labels_recoded"] == 3  # Agree, Strongly disagree, Dont know
    assert rc.loc["ncs_getalong", "n_missing_codes"] == 1  # Dont know
    assert rc.loc["ncs_pos_contact", "n_missing_codes"] == 1  # -99
    assert rc.loc["ncs_pos_contact", "n_set_na"] == 2  # often, 3.5
    assert not rep.ok and rep.n_errors == 7
    text = rep.summary()
    assert "7 data row(s) read, 5 kept" in text and "duplicate id: 2" in text


def test_strict_mode_raises_first_problem_class_with_location(messy_csv: Path, inst) -> None:
    with pytest.raises(DataError) as exc_info:
        et.read_responses(messy_csv, inst, strict=True)
    err = exc_info.value
    # problem classes are checked in the order of validation.PROBLEMS: missing columns come first here
    assert "missing column" in str(err) and err.column == "ncs_dating_comfort"
    assert isinstance(err.report, ValidationReport) and err.report.n_errors == 7
    # with only the present items, the first class is an out-of-range value
    one = et.load_instrument(INST).model_copy(deep=True)
    one.items = [it for it in one.items if it.code in ("ncs_getalong", "ncs_pos_contact", "ncs_warmth_1")]
    one.scales = []
    with pytest.raises(DataError, match="wrong type") as exc_info:
        et.read_responses(messy_csv, one, strict=True, mapping={"notes": "notes"})
    assert exc_info.value.column == "ncs_warmth_1" and exc_info.value.row == 5


def test_strict_mode_passes_clean_file(tmp_path: Path) -> None:
    p = tmp_path / "clean.csv"
    p.write_text("id,ncs_getalong,ncs_pos_contact\na,1,2\nb,Agree,-98\n", encoding="utf-8")
    inst = et.load_instrument(INST).model_copy(deep=True)
    inst.items = [it for it in inst.items if it.code in ("ncs_getalong", "ncs_pos_contact")]
    inst.scales = []
    data, rep = et.read_responses(p, inst, strict=True)
    assert rep.ok and rep.n_rows_out == 2
    assert data["ncs_pos_contact"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("latin-1", b""), ("cp1252", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16", b"")],
)
def test_odd_encodings(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    p = tmp_path / "enc.csv"
    p.write_bytes(prefix + "id,ncs_getalong,Région\nx1,Agree,Île-de-France\nx2,2,Créteil\n".encode(encoding))
    before = _digest(p)
    data, rep = et.read_responses(p, INST)
    assert _digest(p) == before
    assert "id" in data.columns  # the BOM is not part of the first column name
    assert data["ncs_getalong"].tolist() == [4.0, 2.0]
    assert data["Région"].tolist() == ["Île-de-France", "Créteil"]
    enc_notes = rep.of("encoding")
    if encoding in ("latin-1", "cp1252"):
        assert len(enc_notes) == 1 and enc_notes["severity"].iloc[0] == "info"
    elif encoding == "utf-8":
        assert enc_notes.empty


def test_qualtrics_three_header_rows(tmp_path: Path) -> None:
    p = tmp_path / "qualtrics.csv"
    p.write_text(
        "StartDate,EndDate,Progress,ResponseId,pid,ncs_getalong\n"
        '"Start Date","End Date","Progress","Response ID","Participant ID","My local area is..."\n'
        '"{""ImportId"":""startDate""}","{""ImportId"":""endDate""}","{""ImportId"":""progress""}",'
        '"{""ImportId"":""_recordId""}","{""ImportId"":""QID1_TEXT""}","{""ImportId"":""QID2""}"\n'
        "2024-01-01,2024-01-01,100,R_1,p1,Strongly agree\n"
        "2024-01-01,2024-01-01,100,R_2,p2,9\n",
        encoding="utf-8",
    )
    data, rep = et.read_responses(p, INST, id_col="pid")
    assert data.index.tolist() == [4, 5]
    assert data["ncs_getalong"].tolist()[0] == 5.0
    assert _issues(rep, "out of range") == [("ncs_getalong", 5, "9")]
    assert len(rep.of("header rows")) == 1
    assert rep.of("extra column").empty  # Qualtrics metadata columns are noted, not reported
    assert any("metadata" in n for n in rep.notes)


def test_kobo_group_prefixes_and_semicolons(tmp_path: Path) -> None:
    p = tmp_path / "kobo.csv"
    p.write_text(
        "start;end;respondent_id;ncs_local_area/ncs_getalong;grp/ncs_pos_contact;_uuid\n"
        "t;t;a;5;very_often;u1\n"
        "t;t;b;-99;quite often;u2\n",
        encoding="utf-8",
    )
    data, rep = et.read_responses(p, INST, id_col="respondent_id")
    assert data["ncs_getalong"].tolist()[0] == 5.0 and np.isnan(data["ncs_getalong"].iloc[1])
    assert data["ncs_pos_contact"].tolist() == [5.0, 4.0]  # slugged choice name and label
    assert rep.of(["extra column", "unknown label", "wrong type"]).empty


def _simulated_answers(inst, n: int, seed: int) -> pd.DataFrame:
    return instrument_answers(inst, n, seed)  # the shared DGP (evaltoolkit.simulate.dgps)


@pytest.mark.parametrize("values", ["xml", "labels"])
def test_round_trip_simulated_kobo_export_gives_same_scores(tmp_path: Path, inst, values: str) -> None:
    # issue 4 acceptance: an instrument's simulated Kobo export read back gives the same scores
    pytest.importorskip("evaltoolkit.instruments.export")
    ans = _simulated_answers(inst, 80, seed=11)
    path = tmp_path / f"kobo_{values}.csv"
    simulate_kobo_export(inst, ans, path, values=values)
    # in a Labels export the ID header is "Respondent ID": matched to respondent_id by its slug
    data, rep = et.read_responses(path, inst, id_col="respondent_id")
    assert rep.n_errors == 0 and rep.n_rows_out == 80
    missing_codes = {c for rs in inst.response_scales.values() for c in rs.missing}
    truth = ans.mask(ans.isin(list(missing_codes)))
    with pytest.warns(EvalToolkitWarning):
        expected = et.score(truth, inst).data
    with pytest.warns(EvalToolkitWarning):
        got = et.score(data.reset_index(drop=True), inst).data
    assert list(data["respondent_id"]) == list(ans["respondent_id"])
    for sc in inst.scales:
        np.testing.assert_allclose(got[sc.id].to_numpy(), expected[sc.id].to_numpy(), equal_nan=True)
    for it in inst.items:
        np.testing.assert_array_equal(data[it.code].to_numpy(), truth[it.code].to_numpy())


def test_spss_value_labels_and_user_missing(tmp_path: Path) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "ncs_getalong": [1.0, 5.0, -99.0, 8.0],
            "ncs_pos_contact": [2.0, np.nan, 3.0, -1.0],
        }
    )
    p = tmp_path / "w1.sav"
    # the file codes agreement the other way round (1 = Strongly agree); -1 is declared user-missing
    pyreadstat.write_sav(
        df,
        str(p),
        variable_value_labels={
            "ncs_getalong": {1: "Strongly agree", 5: "Strongly disagree", -99: "Don't know"}
        },
        missing_ranges={"ncs_pos_contact": [-1]},
    )
    before = _digest(p)
    data, rep = et.read_responses(p, INST)
    assert _digest(p) == before
    np.testing.assert_array_equal(data["ncs_getalong"].to_numpy(), [5.0, 1.0, np.nan, np.nan])
    np.testing.assert_array_equal(data["ncs_pos_contact"].to_numpy(), [2.0, np.nan, 3.0, np.nan])
    assert data.index.tolist() == [1, 2, 3, 4]  # case numbers
    assert _issues(rep, "out of range") == [("ncs_getalong", 4, "8")]
    vl = rep.of("value labels")
    assert len(vl) == 1 and vl["value"].iloc[0] == "1->5; 5->1"
    assert rep.recodes.set_index("column").loc["ncs_pos_contact", "n_missing_codes"] == 1


def test_stata_dta(tmp_path: Path) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame({"id": ["a", "b"], "ncs_getalong": [4.0, 6.0]})
    p = tmp_path / "w1.dta"
    pyreadstat.write_dta(df, str(p), variable_value_labels={"ncs_getalong": {4: "Agree", 6: "Fully agree"}})
    data, rep = et.read_responses(p, INST)
    assert data["ncs_getalong"].tolist()[0] == 4.0
    assert _issues(rep, "out of range") == [("ncs_getalong", 2, "6")]
    assert "6=Fully agree" in rep.of("value labels")["value"].iloc[0]


def test_excel_rows_ids_and_dates(tmp_path: Path) -> None:
    p = tmp_path / "w.xlsx"
    df = pd.DataFrame(
        {
            "ID": [1, 2, 3],
            "ncs_getalong": ["Agree", 3, pd.Timestamp("2024-01-01")],
            "ncs_warmth_1": [55.5, "n/a", 70],
        }
    )
    df.to_excel(p, index=False)
    before = _digest(p)
    data, rep = et.read_responses(p, INST)
    assert _digest(p) == before
    assert data.index.tolist() == [2, 3, 4]
    assert data["id"].tolist() == ["1", "2", "3"]
    np.testing.assert_array_equal(data["ncs_getalong"].to_numpy(), [4.0, 3.0, np.nan])
    np.testing.assert_array_equal(data["ncs_warmth_1"].to_numpy(), [55.5, np.nan, 70.0])
    assert [r[:2] for r in _issues(rep, "unknown label")] == [("ncs_getalong", 4)]


def test_design_checks_waves_arms_and_follow_up(tmp_path: Path) -> None:
    p = tmp_path / "panel.csv"
    p.write_text(
        "pid,wave,arm,ncs_getalong\n"
        "1,baseline,ncs,4\n"
        "2,baseline,control,3\n"
        "1,post,ncs,5\n"
        "9,post,ncs,5\n"  # row 5: never at baseline
        "2,post-test,control,2\n"  # row 6: unknown wave
        "3,baseline,placebo,2\n",  # row 7: unknown arm
        encoding="utf-8",
    )
    _data, rep = et.read_responses(p, INST, design="ncs_prepost_control")
    assert _issues(rep, "unmatched follow-up id") == [("pid", 5, "")]
    assert _issues(rep, "unknown wave") == [("wave", 6, "post-test")]
    assert _issues(rep, "unknown arm") == [("arm", 7, "placebo")]
    assert rep.of("duplicate id").empty  # the same ID in two waves is not a duplicate
    # another file's baseline IDs
    q = tmp_path / "post.csv"
    q.write_text("pid,ncs_getalong\n1,4\n7,3\n", encoding="utf-8")
    _, rep2 = et.read_responses(q, INST, id_col="pid", wave_col=None, baseline_ids=[1, 2, 3])
    assert _issues(rep2, "unmatched follow-up id") == [("pid", 3, "")]


def test_duplicates_first_removes_and_counts(tmp_path: Path) -> None:
    p = tmp_path / "dup.csv"
    p.write_text("id,ncs_getalong\na,1\na,2\nb,3\na,4\n", encoding="utf-8")
    data, rep = et.read_responses(p, INST, duplicates="first")
    assert data["ncs_getalong"].tolist() == [1.0, 3.0]
    assert (rep.n_rows_in, rep.n_rows_out) == (4, 2)
    removed = rep.issues[(rep.issues["problem"] == "duplicate id") & (rep.issues["severity"] == "info")]
    assert removed["row"].tolist() == [3, 5]
    assert len(rep.of("duplicate id")) == 5  # three flagged occurrences + two removals


def test_mapping_and_duplicate_columns(tmp_path: Path) -> None:
    p = tmp_path / "map.csv"
    p.write_text("Participant,Q1,ncs_getalong,Q1\nx,2,3,4\n", encoding="utf-8")
    data, rep = et.read_responses(p, INST, mapping={"Participant": "id", "Q1": "ncs_pos_contact"})
    assert data["id"].tolist() == ["x"]
    assert data["ncs_pos_contact"].tolist() == [2.0]
    dups = rep.of("duplicate column")
    assert len(dups) == 1 and dups["column"].iloc[0] == "Q1"
    assert "Q1_dup" in data.columns or "Q1" in data.columns


def test_report_to_csv_and_counts(messy_csv: Path, tmp_path: Path) -> None:
    _, rep = et.read_responses(messy_csv, INST)
    out = rep.to_csv(tmp_path / "issues.csv")
    back = pd.read_csv(out)
    assert list(back.columns[:6]) == ["file", "column", "row", "value", "problem", "severity"]
    assert len(back) == len(rep.issues)
    counts = rep.counts()
    assert counts.iloc[0]["severity"] == "error"
    assert int(counts.loc[counts["problem"] == "duplicate id", "n"].iloc[0]) == 2
    assert "<section" in rep.to_html()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", b"", "empty"),
        ("header_only.csv", b"id,ncs_getalong\n", "no data rows"),
        ("binary.csv", b"\x00\x01\x02PK\x03", "binary"),
        (
            "ragged.csv",
            b"id,ncs_getalong\n1,2\n3,4,5,6\n",
            "row 3: this row has 4 values but the header has 2",
        ),
        ("notes.pdf", b"%PDF", "unknown file type"),
        ("bad.xlsx", b"not a zip", "Excel"),
        ("bad.sav", b"not spss", "SPSS"),
    ],
)
def test_unreadable_files_raise_data_error(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DataError, match=match):
        et.read_responses(p, INST)
    assert p.read_bytes() == content


def test_missing_file_and_bad_instrument(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        et.read_responses(tmp_path / "nope.csv", INST)
    p = tmp_path / "a.csv"
    p.write_text("id,x\n1,2\n", encoding="utf-8")
    with pytest.raises(InstrumentError):
        et.read_responses(p, "no_such_instrument")


def test_cli_validate_and_score_exit_codes(messy_csv: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from evaltoolkit.cli.intake import score_cmd, validate_cmd

    app = typer.Typer()
    app.command("validate")(validate_cmd)
    app.command("score")(score_cmd)
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(messy_csv), "-i", INST, "--out", str(tmp_path / "issues.csv")])
    assert res.exit_code == 0, res.output
    assert "duplicate id" in res.output
    assert (
        len(pd.read_csv(tmp_path / "issues.csv")) == 19
    )  # 2 blank + 2 extra + 7 missing + 7 errors + 1 unmatched
    res = runner.invoke(app, ["validate", str(messy_csv), "-i", INST, "--strict"])
    assert res.exit_code == 1 and "Strict mode stopped" in res.output
    res = runner.invoke(app, ["score", str(messy_csv), "-i", INST, "--out", str(tmp_path / "scores")])
    assert res.exit_code == 0, res.output
    scored = pd.read_csv(tmp_path / "scores" / "scored.csv")
    assert scored["ncs_cohesion"].tolist()[:2] == [4.0, 1.0]
    assert (tmp_path / "scores" / "reliability.csv").exists()


def test_read_waves_checks_follow_up_files_against_baseline(tmp_path: Path) -> None:
    from evaltoolkit.intake.read import read_waves

    (tmp_path / "w1.csv").write_text("pid,ncs_getalong\n1,4\n2,5\n2,5\n", encoding="utf-8")
    (tmp_path / "w2.csv").write_text("pid,ncs_getalong\n1,3\n\n3,Agree\n", encoding="utf-8")
    data, rep = read_waves(
        {"baseline": tmp_path / "w1.csv", "post": tmp_path / "w2.csv"}, INST, design="ncs_prepost_control"
    )
    assert data[["pid", "wave", "source_file"]].values.tolist() == [
        ["1", "baseline", "w1.csv"],
        ["2", "baseline", "w1.csv"],
        ["2", "baseline", "w1.csv"],
        ["1", "post", "w2.csv"],
        ["3", "post", "w2.csv"],
    ]
    assert data.index.tolist() == [2, 3, 4, 2, 4]
    assert rep.of("unmatched follow-up id")[["file", "row", "value"]].values.tolist() == [["w2.csv", 4, ""]]
    assert rep.of("duplicate id")[["file", "row"]].values.tolist() == [["w1.csv", 3], ["w1.csv", 4]]
    assert (rep.n_rows_in, rep.n_rows_out) == (6, 5)


def test_an_export_without_the_designs_arm_column_is_an_error_that_says_what_to_do(tmp_path):
    # Kobo exports of the NCS design (one per wave) with the group column deleted: read_waves with the design says,
    # for each file, that the design's arm column is missing and how to supply it (before any analysis runs)
    from evaltoolkit.intake.read import read_waves

    files = et.simulate_exports("ncs_prepost_control", tmp_path / "ex", format="kobo", n=60, seed=2)
    design = et.load_design("ncs_prepost_control")
    stripped = {}
    for wave, f in zip(
        design.wave_names, sorted(files, key=lambda p: design.wave_names.index(p.stem.split("_")[-1]))
    ):
        d = pd.read_csv(f, sep=";")
        out = tmp_path / f"{wave}.csv"
        d.drop(columns=[c for c in d.columns if c.endswith("/arm")]).to_csv(out, sep=";", index=False)
        stripped[wave] = out
    res = read_waves(stripped, list(design.instruments), design=design, wave_col=design.columns.wave)
    issues = res.report.issues
    missing = issues[(issues["problem"] == "missing column") & (issues["column"] == "arm")]
    assert len(missing) == 3 and set(missing["severity"]) == {"error"}
    assert "--map COLUMN=arm" in missing["detail"].iloc[0] and "\n" not in missing["detail"].iloc[0]
