"""What survey platforms add to an export, undone at intake: Kobo group prefixes and select_multiple, identifying
columns, IDs whose format changes between waves, mapping files for renamed questions.

The Kobo files are written by evaltoolkit.simulate.exports.simulate_kobo_export, which follows KoboToolbox's export
(formpack: one summary column of space-separated choice names plus one 0/1 column per choice by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import evaltoolkit as et
from evaltoolkit.cli.app import app
from evaltoolkit.simulate.exports import simulate_kobo_export

INST = "ncs_social_mixing"


def _kobo(tmp_path: Path, extra: pd.DataFrame, **kwargs) -> Path:
    n = len(extra)
    answers = pd.DataFrame(
        {"ncs_getalong": np.arange(n) % 5 + 1.0, "ncs_pos_contact": np.arange(n) % 4 + 2.0}
    )
    path = tmp_path / "kobo.csv"
    simulate_kobo_export(INST, answers, path, id_field=None, extra=extra, **kwargs)
    return path


@pytest.fixture
def extra() -> pd.DataFrame:
    n = 12
    return pd.DataFrame({
        "pid": [f"p{i}" for i in range(n)],
        "site": ["S1", "S2", "S3"] * 4,
        "activities": ["sport music", "art", None, "music"] * 3,
    })  # fmt: skip


@pytest.mark.parametrize("split", [True, False], ids=["split-columns", "one-column"])
def test_select_multiple_in_both_kobo_forms_becomes_0_1_columns(tmp_path, extra, split):
    path = _kobo(
        tmp_path, extra, select_multiple={"activities": {"sport": "Sport", "music": "Music", "art": "Art"}}
    )
    if not split:  # the export option "split select multiples" off: only the summary column
        raw = pd.read_csv(path, sep=";", dtype=str)
        raw.drop(columns=[c for c in raw.columns if c.startswith("admin/activities/")]).to_csv(
            path, sep=";", index=False
        )
    data, rep = et.read_responses(path, INST, id_col="pid", wave_col=None)
    assert {"site", "activities_sport", "activities_music", "activities_art"} <= set(data.columns)
    assert data["activities_sport"].iloc[:2].tolist() == [1.0, 0.0] or split
    assert data["activities_music"].iloc[0] == 1.0 and data["activities_art"].iloc[1] == 1.0
    if not split:
        assert np.isnan(data["activities_sport"].iloc[2])  # unanswered stays missing
    assert len(rep.of("select multiple")) == 1


def test_group_prefixes_are_removed_unless_two_columns_would_share_a_name(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text(
        "admin/pid;admin/site;school/site;grp/ncs_getalong\n1;S1;A;4\n2;S2;B;5\n", encoding="utf-8"
    )
    data, rep = et.read_responses(path, INST, id_col="pid", wave_col=None)
    assert {"admin/site", "school/site"} <= set(data.columns) and "site" not in data.columns
    dup = rep.of("duplicate column")
    assert len(dup) == 1 and "2 columns end in 'site'" in dup["detail"].iloc[0]


def test_identifying_columns_are_listed_and_left_out(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text(
        "pid;admin/phone;consent/name;notes;ncs_getalong\n"
        "1;07700 900123;Jo Bloggs;fine;4\n2;07700 900456;Sam Smith;write to jo@example.org;5\n"
        "3;07700 900789;Alex Jones;ok;3\n4;07700 900111;Kim Lee;great trip;2\n5;07700 900222;Ann Ray;more please;4\n",
        encoding="utf-8",
    )
    data, rep = et.read_responses(path, INST, id_col="pid", wave_col=None)
    assert not {"phone", "name", "admin/phone", "consent/name"} & set(data.columns)
    assert data["notes"].isna().tolist() == [False, True, False, False, False]  # the e-mail cell blanked
    found = rep.of("identifier")
    assert set(found["column"]) == {"admin/phone", "consent/name", "notes"}  # the file's column names
    text = found.to_string() + rep.summary()
    for planted in ("07700", "Bloggs", "jo@example.org"):
        assert planted not in text
    kept, _ = et.read_responses(path, INST, id_col="pid", wave_col=None, keep_identifiers=True)
    assert "phone" in kept.columns


def test_waves_are_linked_by_id_and_a_changed_id_format_is_reported(tmp_path):
    (tmp_path / "w1.csv").write_text("id,ncs_getalong\nRX-0001,4\nRX-0002,5\nRX-0003,2\n", encoding="utf-8")
    (tmp_path / "w2.csv").write_text("id,ncs_getalong\n1,3\nRX-0002,2\n9,1\n", encoding="utf-8")
    _data, rep = et.read_waves({"baseline": tmp_path / "w1.csv", "post": tmp_path / "w2.csv"}, INST)
    links = rep.links.set_index("wave")
    assert links.loc["post", ["ids", "linked", "unmatched", "format_differs"]].tolist() == [3, 1, 2, 1]
    fmt = rep.of("id format")
    assert len(fmt) == 1 and "1 of the 2 ID(s)" in fmt["detail"].iloc[0]
    assert "RX-" not in fmt.to_string()  # the example in the message is generic, never a respondent's ID
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "w1.csv"), str(tmp_path / "w2.csv"), "-i", INST,
                                   "--waves", "baseline,post"])  # fmt: skip
    assert res.exit_code == 0 and "Waves linked by ID" in res.output


def test_a_mapping_file_matches_renamed_questions(tmp_path):
    (tmp_path / "w.csv").write_text("id,area_q,contact_q\n1,4,2\n2,5,3\n", encoding="utf-8")
    (tmp_path / "map.csv").write_text(
        "column,item\narea_q,ncs_getalong\ncontact_q,ncs_pos_contact\n", encoding="utf-8"
    )
    (tmp_path / "map.yaml").write_text("area_q: ncs_getalong\ncontact_q: ncs_pos_contact\n", encoding="utf-8")
    for m in ("map.csv", "map.yaml"):
        out = tmp_path / f"scored_{m}"
        res = CliRunner().invoke(app, ["score", str(tmp_path / "w.csv"), "-i", INST, "--wave-col", "none",
                                       "--map-file", str(tmp_path / m), "--out", str(out)])  # fmt: skip
        assert res.exit_code == 0, res.output
        scored = pd.read_csv(out / "scored.csv")
        assert scored["ncs_cohesion"].tolist() == [4.0, 5.0] and scored["ncs_positive_contact"].tolist() == [
            2.0,
            3.0,
        ]


def test_scored_ids_are_pseudonyms_that_link_waves_scored_apart(tmp_path):
    (tmp_path / "w1.csv").write_text("id,ncs_getalong\nA7,4\nB8,5\n", encoding="utf-8")
    (tmp_path / "w2.csv").write_text("id,ncs_getalong\nB8,3\nA7,2\n", encoding="utf-8")
    key = tmp_path / "k.key"
    for w in ("w1", "w2"):
        args = ["score", str(tmp_path / f"{w}.csv"), "-i", INST, "--wave-col", "none", "--id-key", str(key)]
        res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / w)])
        assert res.exit_code == 0, res.output
    s1 = pd.read_csv(tmp_path / "w1" / "scored.csv")
    s2 = pd.read_csv(tmp_path / "w2" / "scored.csv")
    assert not {"A7", "B8"} & set(s1["id"]) and s1["id"].str.fullmatch(r"P[0-9a-f]{12}").all()
    assert set(s1["id"]) == set(s2["id"])  # the same key, the same pseudonyms
    assert s1.set_index("id")["ncs_getalong"].to_dict() != s2.set_index("id")["ncs_getalong"].to_dict()
    raw = CliRunner().invoke(app, ["score", str(tmp_path / "w1.csv"), "-i", INST, "--wave-col", "none",
                                   "--raw-ids", "--out", str(tmp_path / "raw")])  # fmt: skip
    assert raw.exit_code == 0 and set(pd.read_csv(tmp_path / "raw" / "scored.csv")["id"]) == {"A7", "B8"}
