"""Questionnaire exports: XLSForm (converted with pyxform), HTML, codebook, simulated Kobo export, CLI."""

from __future__ import annotations

import html
import re
import warnings
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

import evaltoolkit as et
from evaltoolkit.cli.instruments import app as instruments_app
from evaltoolkit.errors import DataError, EvalToolkitWarning, InstrumentError
from evaltoolkit.instruments.export import (
    KOBO_META_COLUMNS,
    codebook,
    codebook_markdown,
    export_questionnaire,
    layout,
    to_codebook,
    to_html,
    to_xlsform,
    xlsform_sheets,
)
from evaltoolkit.instruments.library import library_path
from evaltoolkit.simulate.exports import simulate_kobo_export

pyxform_convert = pytest.importorskip("pyxform.xls2xform").convert

BUNDLED = sorted(p.stem for p in library_path().glob("*.yaml"))
XF = "{http://www.w3.org/2002/xforms}"


def _xform(path):
    """Convert an XLSForm with pyxform and parse the XForm XML."""
    warns: list[str] = []
    result = pyxform_convert(str(path), warnings=warns)
    root = ET.fromstring(result.xform)
    binds = {b.get("nodeset"): b.attrib for b in root.iter(f"{XF}bind")}
    return root, binds, warns


def _sheet(path, name):
    ws = load_workbook(path, read_only=True)[name]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


# ------------------------------------------------------------------ XLSForm
def test_xlsform_has_the_three_sheets_and_converts_to_a_valid_xform(tmp_path):
    path = to_xlsform(
        "ncs_social_mixing", tmp_path / "ncs.xlsx", placeholders={"place": "Leeds"}, version="7"
    )
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == ["survey", "choices", "settings"]
    _root, binds, warns = _xform(path)
    assert warns == []
    inst = et.load_instrument("ncs_social_mixing")
    # every item is a bound question inside its section group
    for it in inst.items:
        assert f"/data/{it.section}/{it.code}" in binds, it.code
    # ordinal items are select_one with the codes as choice names, missing codes included
    assert binds["/data/ncs_local_area/ncs_getalong"]["type"] == "string"
    choices = [r for r in _sheet(path, "choices") if r["list_name"] == "ncs_social_mixing_agree5"]
    assert [r["name"] for r in choices] == ["1", "2", "3", "4", "5", "-98", "-99"]
    assert choices[4]["label"] == "Strongly agree"
    # the thermometer is an integer with a range constraint that admits the missing codes
    therm = binds["/data/ncs_attitudes/ncs_warmth_1"]
    assert therm["type"] == "int"
    assert therm["constraint"] == "(. >= 0 and . <= 100) or . = -99 or . = -98"
    settings = _sheet(path, "settings")[0]
    assert settings == {
        "form_title": "NCS-style social-mixing block",
        "form_id": "ncs_social_mixing",
        "version": "7",
    }
    # placeholders are substituted in the labels
    labels = {r["name"]: r["label"] for r in _sheet(path, "survey")}
    assert "Leeds is a place where people" in labels["ncs_getalong"]
    assert labels["respondent_id"] == "Respondent ID"
    assert not any("{" in str(v) for v in labels.values())


def test_every_bundled_instrument_together_converts_with_pyxform(tmp_path):
    with pytest.warns(EvalToolkitWarning, match="11 user slot"):
        path = to_xlsform(BUNDLED, tmp_path / "all.xlsx", form_id="all")
    root, binds, warns = _xform(path)
    assert warns == []
    n_items = sum(len(et.load_instrument(n).items) for n in BUNDLED)
    questions = [
        k for k in binds if k.count("/") == 3 and not k.endswith("_intro") and "/meta/" not in k
    ]  # /data/group/item
    assert len(questions) == n_items - 11  # unfilled user slots left out
    assert binds["/data/respondent_id"]["required"] == "true()"
    assert root.find(f".//{XF}instance/{XF}data").get("id") == "all"


def test_xlsform_sheet_rows_and_options():
    sheets = xlsform_sheets("feeling_thermometer", id_field=None, include_missing=False, required=True)
    survey = sheets["survey"]
    assert [r["type"] for r in survey[:3]] == ["start", "end", "begin_group"]
    assert survey[3]["type"] == "note" and survey[3]["label"].startswith("We'd like to get your feelings")
    q = survey[4]
    assert (q["name"], q["label"], q["type"], q["required"]) == ("therm_1", "Muslims", "integer", "yes")
    assert q["constraint"] == "(. >= 0 and . <= 100)"
    assert q["hint"].startswith("0 = Very cold or unfavorable feeling; 50 = No feeling at all")
    assert survey[-1] == {"type": "end_group", "name": "therm"}


def test_slots_are_omitted_kept_refused_or_filled(tmp_path):
    with pytest.warns(EvalToolkitWarning, match=r"5 user slot\(s\) without wording were left out"):
        lay = layout("best_of_us_children")
    assert lay.omitted_slots == [f"bouc_kind_{i}" for i in range(2, 7)]
    assert [q.code for q in lay.questions] == ["bouc_like_part", "bouc_proud_part", "bouc_kind_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = layout("best_of_us_children", slots="keep")
        assert kept.questions[-1].wording.startswith("[Kindness scenario 6")
    with pytest.raises(InstrumentError, match=r"5 user slot\(s\) have no wording yet"):
        layout("best_of_us_children", slots="error")
    fill = {f"bouc_kind_{i}": f"Scenario {i} text. Would you help?" for i in range(2, 7)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = to_xlsform("best_of_us_children", tmp_path / "bouc.xlsx", fill=fill, slots="error")
    _, binds, _ = _xform(path)
    assert "/data/bouc_kindness/bouc_kind_6" in binds
    with pytest.raises(InstrumentError, match=r"fill: no item\(s\) \['nope'\]"):
        layout("best_of_us_children", fill={"nope": "x"})


def test_unknown_placeholder_is_an_error():
    with pytest.raises(InstrumentError, match=r"unknown placeholder\(s\) \['plaec'\]"):
        layout("best_of_us_adults", placeholders={"plaec": "Ramsgate"}, slots="keep")


# ------------------------------------------------------------------ codebook
def test_codebook_contents():
    cb = codebook(["ncs_social_mixing", "allport_conditions"], placeholders={"place": "Leeds"})
    assert list(cb.columns) == [
        "instrument", "section", "code", "kobo_column", "wording", "type", "response_scale", "values",
        "missing", "min", "max", "reverse", "scales", "verified", "verified_meaning", "source", "licence", "note",
    ]  # fmt: skip
    row = cb.set_index("code").loc["ncs_getalong"]
    assert row["values"] == (
        "1=Strongly disagree; 2=Disagree; 3=Neither agree nor disagree; 4=Agree; 5=Strongly agree"
    )
    assert row["missing"] == "-99=Don't know; -98=Prefer not to say"
    assert (row["min"], row["max"], row["verified"], row["scales"]) == (1, 5, "V", "ncs_cohesion")
    assert row["kobo_column"] == "ncs_local_area/ncs_getalong"
    assert "Leeds" in row["wording"]
    therm = cb.set_index("code").loc["ncs_warmth_2"]
    assert (therm["type"], therm["min"], therm["max"]) == ("numeric", 0, 100)
    assert cb.set_index("code").loc["allport_competition", "reverse"]
    assert (
        cb.set_index("code")
        .loc["ncs_dating_comfort", "verified_meaning"]
        .startswith("recalled, NOT verified")
    )
    assert cb["source"].str.len().gt(0).all() and cb["licence"].str.len().gt(0).all()


def test_codebook_files_csv_and_markdown(tmp_path):
    csv = to_codebook("best_of_us_children", tmp_path / "cb.csv")
    back = pd.read_csv(csv)
    assert len(back) == 8  # user slots are listed (as slots) in the codebook
    assert back.set_index("code").loc["bouc_kind_3", "verified"] == "user"
    md = to_codebook("best_of_us_children", tmp_path / "cb.md").read_text(encoding="utf-8")
    for code in et.load_instrument("best_of_us_children").item_codes:
        assert f"`{code}`" in md
    assert "| `bouc_kindness` |" in md and "**R** recalled, NOT verified" in md
    with pytest.raises(InstrumentError, match=r"must end in .csv or .md"):
        to_codebook("sci2", tmp_path / "cb.txt")
    assert "-sd_exclude" not in codebook_markdown("social_distance")  # not in any scale


# ------------------------------------------------------------------ HTML
@pytest.mark.parametrize("name", BUNDLED)
def test_html_contains_every_item_and_is_self_contained(name):
    inst = et.load_instrument(name)
    page = to_html(name, slots="keep")
    for it in inst.items:
        assert html.escape(inst.wording(it.code), quote=True) in page, it.code
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "src=" not in page


def test_html_placeholders_review_marks_and_grids(tmp_path):
    with pytest.warns(EvalToolkitWarning):
        page = to_html("best_of_us_adults", tmp_path / "q.html", placeholders={"place": "Ramsgate"})
    assert (tmp_path / "q.html").read_text(encoding="utf-8") == page
    assert "I belong in Ramsgate" in page and "Newington" not in page and "{place}" not in page
    assert "[Arts engagement" not in page  # omitted slots
    # the four community items share a scale: one grid with 5 + 2 answer columns
    grid = re.search(r'<table class="grid">(.*?)</table>', page, re.S).group(1)
    assert len(re.findall(r"<th[ >]", grid)) == 1 + 7 and grid.count('<span class="box">') == 4 * 7
    review = to_html("ncs_social_mixing", review=True)
    assert '<span class="mark mark-R"' in review and "[ncs_dating_comfort]" in review
    assert "href=" not in review and "src=" not in review


# ------------------------------------------------------------------ export_questionnaire + CLI
def test_export_questionnaire_writes_all_formats(tmp_path):
    paths = export_questionnaire(
        ["sci2", "demographics"], tmp_path, formats=["xlsform", "html", "review", "codebook"], name="q"
    )
    assert {k: p.name for k, p in paths.items()} == {
        "xlsform": "q.xlsx",
        "html": "q.html",
        "review": "q_review.html",
        "codebook_csv": "q_codebook.csv",
        "codebook_md": "q_codebook.md",
    }
    assert all(p.exists() for p in paths.values())
    with pytest.raises(InstrumentError, match="unknown export format"):
        export_questionnaire("sci2", tmp_path, formats=["pdf"])


def test_cli_list_show_export(tmp_path):
    runner = CliRunner()
    res = runner.invoke(instruments_app, ["list"])
    assert res.exit_code == 0 and "ncs_social_mixing" in res.output
    res = runner.invoke(instruments_app, ["show", "ncs_social_mixing", "--no-sources"])
    assert res.exit_code == 0
    # every item's verification mark is printed next to its code
    inst = et.load_instrument("ncs_social_mixing")
    lines = res.output.splitlines()
    for it in inst.items:
        line = next(ln for ln in lines if f" {it.code} " in ln)
        assert f" {it.verified} " in line, it.code
    assert "recalled (R)" in res.output
    res = runner.invoke(instruments_app, ["show", "best_of_us_children", "-p", "place=Margate"])
    assert res.exit_code == 0 and "user slot(s) need your wording" in res.output
    res = runner.invoke(
        instruments_app,
        ["export", "best_of_us_children", "-o", str(tmp_path), "-f", "xlsform,codebook", "-p", "place=Margate",
         "--fill", "bouc_kind_2=You see a child alone. Would you ask them to play?"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "4 user slot(s)" in res.output
    assert (tmp_path / "best_of_us_children.xlsx").exists() and (
        tmp_path / "best_of_us_children_codebook.md"
    ).exists()
    res = runner.invoke(instruments_app, ["show", "no_such_thing"])
    assert isinstance(res.exception, InstrumentError)
    res = runner.invoke(instruments_app, ["export", "sci2", "-o", str(tmp_path), "-p", "oops"])
    assert isinstance(res.exception, InstrumentError) and "key=value" in str(res.exception)


# ------------------------------------------------------------------ simulated Kobo export
def _answers():
    return pd.DataFrame(
        {
            "respondent_id": ["p01", "p02", "p03"],
            "ncs_getalong": [4, -99, 2],
            "ncs_warmth_1": [70, 55.0, None],
            "ncs_warmth_2": [80, None, None],
            "ncs_pos_contact": [5, 3, pd.NA],
            "demo_ethnic_group": [1, 12, -98],
        }
    )


def test_kobo_export_layout_matches_the_xlsform(tmp_path):
    insts = ["ncs_social_mixing", "demographics"]
    xlsx = to_xlsform(insts, tmp_path / "form.xlsx")
    kobo = simulate_kobo_export(insts, _answers(), tmp_path / "kobo.csv")
    # the question columns are <group>/<name> in XLSForm order, as Kobo names them
    expected, group = [], None
    for r in _sheet(xlsx, "survey"):
        if r["type"] == "begin_group":
            group = r["name"]
        elif r["type"] == "end_group":
            group = None
        elif r["type"] not in ("note",):
            expected.append(f"{group}/{r['name']}" if group else r["name"])
    assert list(kobo.columns) == expected + list(KOBO_META_COLUMNS)
    raw = (tmp_path / "kobo.csv").read_text(encoding="utf-8").splitlines()
    assert raw[0].startswith("start;end;respondent_id;ncs_attitudes/ncs_dating_comfort;")
    assert len(raw) == 4
    row = kobo.iloc[0]
    assert (
        row["ncs_local_area/ncs_getalong"],
        row["ncs_attitudes/ncs_warmth_1"],
        row["demo/demo_ethnic_group"],
    ) == (
        "4",
        "70",
        "1",
    )
    assert kobo.loc[1, "ncs_local_area/ncs_getalong"] == "-99"
    assert (
        kobo.loc[2, "ncs_mixing/ncs_pos_contact"] == "" and kobo.loc[0, "ncs_mixing/ncs_help_seeking"] == ""
    )
    assert list(kobo["_index"]) == ["1", "2", "3"] and kobo["_uuid"].is_unique


def test_kobo_export_round_trip_gives_the_same_scores(tmp_path):
    insts = ["ncs_social_mixing", "demographics"]
    answers = _answers()
    simulate_kobo_export(insts, answers, tmp_path / "kobo.csv")
    back = pd.read_csv(tmp_path / "kobo.csv", sep=";", dtype=str, keep_default_na=False)
    # read back: strip group prefixes, codes to numbers, missing codes and blanks to NA
    items = back[[c for c in back.columns if "/" in c]].rename(columns=lambda c: c.split("/")[-1])
    items = items.replace("", pd.NA).apply(pd.to_numeric)
    items = items.mask(items < 0)
    truth = answers.drop(columns="respondent_id").apply(pd.to_numeric)
    truth = truth.mask(truth < 0)
    for col in truth.columns:
        pd.testing.assert_series_equal(items[col], truth[col], check_dtype=False, check_names=False)
    # the warmth scale (mean of the thermometers, min 1 item) is identical either way:
    # respondent 1: (70 + 80) / 2 = 75; respondent 2: 55; respondent 3: no thermometer -> NA
    warm = items[[f"ncs_warmth_{i}" for i in range(1, 5)]].mean(axis=1)
    assert warm.iloc[:2].tolist() == [75.0, 55.0] and pd.isna(warm.iloc[2])
    assert list(back["respondent_id"]) == ["p01", "p02", "p03"]


def test_kobo_export_labels_mode_and_options():
    kobo = simulate_kobo_export(
        "ncs_social_mixing", _answers().drop(columns="demo_ethnic_group"), values="labels"
    )
    header = "Your local area/" + et.load_instrument("ncs_social_mixing").wording("ncs_getalong")
    assert kobo.loc[0, header] == "Agree" and kobo.loc[1, header] == "Don't know"
    flat = simulate_kobo_export("sci2", pd.DataFrame({"sci2_01": [3]}), include_groups=False, id_field=None)
    assert flat.columns[2] == "sci2_importance" and flat.loc[0, "sci2_01"] == "3"


def test_kobo_export_rejects_bad_answers():
    with pytest.raises(DataError, match=r"not a valid code of response scale 'agree5'") as info:
        simulate_kobo_export("ncs_social_mixing", pd.DataFrame({"ncs_getalong": [4, 9]}))
    assert info.value.column == "ncs_getalong" and info.value.row == 1
    with pytest.raises(DataError, match=r"answer column\(s\) \['nope'\] are not questions"):
        simulate_kobo_export("ncs_social_mixing", pd.DataFrame({"nope": [1]}))
    with pytest.raises(DataError, match="not a numeric code"):
        simulate_kobo_export("ncs_social_mixing", pd.DataFrame({"ncs_getalong": ["Agree"]}))


@pytest.mark.parametrize("values", ["xml", "labels"])
def test_kobo_round_trip_through_read_responses_gives_the_same_scores(tmp_path, values):
    """Acceptance (issue 4): XLSForm -> simulated Kobo export -> read back -> identical scale scores."""
    intake = pytest.importorskip("evaltoolkit.intake.read")
    import numpy as np

    inst = et.load_instrument("ncs_social_mixing")
    rng = np.random.default_rng(4)
    n = 40
    answers = pd.DataFrame({"respondent_id": [f"p{i:03d}" for i in range(n)]})
    for it in inst.items:
        rs = inst.response_scale_of(it.code)
        if rs.type == "numeric":
            col = rng.integers(0, 101, n).astype(float)
        else:
            col = rng.choice([*rs.valid_codes, -99], n).astype(float)
        col[rng.random(n) < 0.1] = np.nan  # some unanswered
        answers[it.code] = col
    path = tmp_path / f"kobo_{values}.csv"
    simulate_kobo_export(inst, answers, path, values=values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvalToolkitWarning)
        read = intake.read_responses(path, inst, id_col="respondent_id")
        truth = answers.drop(columns="respondent_id").mask(answers.drop(columns="respondent_id") < 0)
        got = et.score(read.data, inst).data
        want = et.score(truth, inst).data
    for sc in inst.scales:
        np.testing.assert_allclose(got[sc.id].to_numpy(float), want[sc.id].to_numpy(float), equal_nan=True)
