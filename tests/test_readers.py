"""One reader registry (issue 11): scored tables for `analyse` and raw exports for `intake` read the same way.

0.1's `tabular.read_table` read a ';'-separated CSV as one column (`['pid;arm;wave']`) while
`read_responses` read it right; now both go through `evaltoolkit.io.readers`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evaltoolkit.errors import DataError
from evaltoolkit.io.readers import FORMATS, READERS, read_raw, read_table, suffix_list

FRAME = pd.DataFrame({"pid": ["007", "008"], "arm": ["ncs", "control"], "score": [3.5, 4.0]})


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimited_text_is_sniffed(tmp_path, sep):
    p = tmp_path / ("d.tsv" if sep == "\t" else "d.csv")
    FRAME.to_csv(p, sep=sep, index=False)
    out = read_table(p)
    assert out.columns.tolist() == ["pid", "arm", "score"]
    assert out["score"].tolist() == [3.5, 4.0] and out["arm"].tolist() == ["ncs", "control"]


def test_excel_parquet_stata_spss_read_typed(tmp_path):
    import pyreadstat

    FRAME.to_excel(tmp_path / "d.xlsx", index=False)
    FRAME.to_parquet(tmp_path / "d.parquet", index=False)
    FRAME.to_stata(tmp_path / "d.dta", write_index=False)
    pyreadstat.write_sav(FRAME, str(tmp_path / "d.sav"))
    for name in ("d.xlsx", "d.parquet", "d.dta", "d.sav"):
        out = read_table(tmp_path / name)
        assert out.columns.tolist() == ["pid", "arm", "score"], name
        assert pd.api.types.is_numeric_dtype(out["score"]) and out["score"].tolist() == [3.5, 4.0], name


def test_windows_1252_and_utf16_are_decoded_with_a_note(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes("name,score\nJosé,1\n".encode("cp1252"))
    out = read_table(p)
    assert out["name"].tolist() == ["José"] and any("Windows-1252" in n for n in out.attrs["read_notes"])
    p.write_bytes("name;score\nZoë;2\n".encode("utf-16"))
    assert read_table(p)["name"].tolist() == ["Zoë"]


def test_bad_files_are_refused_in_one_plain_line(tmp_path):
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(DataError, match=r"unknown file type '\.json'; save the file as one of \.csv"):
        read_table(tmp_path / "d.json")
    (tmp_path / "dup.csv").write_text("pid,score,score\n1,2,3\n")
    with pytest.raises(DataError, match=r"names column 'score' twice \(columns 2 and 3\)"):
        read_table(tmp_path / "dup.csv")
    (tmp_path / "long.csv").write_text("pid,score\n1,2\n2,3,4\n")
    with pytest.raises(
        DataError, match=r"long\.csv, row 3: this row has 3 values but the header has 2 columns"
    ):
        read_table(tmp_path / "long.csv")
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")


def test_qualtrics_layout_is_recognised_for_scored_data_too(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('pid,score\nRespondent ID,Score\n{"ImportId":"pid"},{"ImportId":"QID1"}\n1,3\n2,4\n')
    raw = read_raw(p)
    assert raw.fmt == "qualtrics" and raw.rows.tolist() == [4, 5]
    assert read_table(p)["score"].tolist() == [3, 4]


def test_registry_is_the_one_list_of_formats():
    assert set(FORMATS) == {*READERS, "qualtrics", "kobo"}
    assert suffix_list().split(", ") == [s for r in READERS.values() for s in r.suffixes]


def test_analyse_reads_a_semicolon_csv(tmp_path):
    # the bug of 0.1: `evaltoolkit analyse` saw one column and failed on a file intake read correctly
    import evaltoolkit as et

    sim = et.simulate_study("ncs_prepost_control", n=200, seed=2)
    data = tmp_path / "scored.csv"
    sim.data.to_csv(data, sep=";", index=False)
    before = data.read_bytes()
    exe = Path(sys.executable).with_name("evaltoolkit")
    proc = subprocess.run(
        [
            str(exe),
            "-q",
            "analyse",
            str(data),
            "--design",
            "ncs_prepost_control",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert data.read_bytes() == before
    est = pd.read_csv(tmp_path / "r" / "estimates.csv")
    assert (est["analysis"] == "did_primary").any()


def test_analyse_refuses_decimal_commas_by_name(tmp_path):
    # 0.1: text in an outcome column reached the estimators and crashed (exit 3, "operation 'sub' not supported")
    import evaltoolkit as et

    sim = et.simulate_study("ncs_prepost_control", n=200, seed=2)
    data = tmp_path / "scored.csv"
    sim.data.to_csv(data, sep=";", index=False, decimal=",")
    exe = Path(sys.executable).with_name("evaltoolkit")
    proc = subprocess.run(
        [str(exe), "analyse", str(data), "--design", "ncs_prepost_control", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "scored.csv, column 'attitudes', row 2" in line and "decimal commas" in line, line
    assert not (tmp_path / "r").exists()
