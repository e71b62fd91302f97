"""Outputs for each audience: estimates.xlsx for analysts, summary.docx for funders, report.pdf for print."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.plan.registry import Section, Table
from evaltoolkit.plan.run import run_plan
from evaltoolkit.privacy import suppress_small_cells
from evaltoolkit.report.pdf import find_chromium, write_pdf
from evaltoolkit.report.render import write_report
from evaltoolkit.report.tables import SHEETS, write_xlsx

openpyxl = pytest.importorskip("openpyxl")
SNAKE = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")
#: a mean computed from 4 people: it must appear nowhere
SECRET_MEAN = 4.123456


@pytest.fixture(scope="module")
def results():
    sim = et.simulate_study("ncs_prepost_control", n=400, seed=5)
    res = run_plan(et.Study(sim.design, sim.data))
    cells = pd.DataFrame(
        {"outcome": ["attitudes"] * 2, "arm": ["ncs", "control"], "wave": ["post"] * 2, "n": [40, 4],
         "mean": [3.2, SECRET_MEAN], "sd": [0.8, 0.9]}
    )  # fmt: skip
    sec = Section(id="analysis-small", title="A small group")  # as a runner shows means: small cells withheld
    sec.blocks.append(
        Table(suppress_small_cells(cells, "n", ["mean", "sd"]), caption="Means by arm and wave")
    )
    res.sections.append(sec)
    return res


@pytest.fixture(scope="module")
def workbook(results, tmp_path_factory):
    path = write_xlsx(results, tmp_path_factory.mktemp("xlsx") / "estimates.xlsx")
    return openpyxl.load_workbook(path)


def test_the_workbook_has_the_seven_sheets(workbook):
    assert workbook.sheetnames == list(SHEETS)
    assert SHEETS == ("Summary", "Estimates", "Reliability", "Balance", "Attrition", "Means", "Notes")


def test_headers_and_cells_are_labels_not_machine_names(workbook):
    snake = [
        (ws.title, c.coordinate, c.value)
        for ws in workbook
        for row in ws.iter_rows()
        for c in row
        if isinstance(c.value, str) and (SNAKE.match(c.value) or re.fullmatch(r"treat:\w+|\w+@\w+", c.value))
    ]
    assert snake == []
    assert workbook["Estimates"].cell(2, 4).value == "Estimate"


def test_header_rows_are_bold_and_frozen(workbook):
    for name in SHEETS[1:-1]:
        ws = workbook[name]
        row = 2  # row 1 is the first table's caption
        header = [c for c in ws[row] if c.value is not None]
        assert header and all(c.font.bold for c in header), name
        assert ws.freeze_panes == f"A{row + 1}", name
        assert ws.column_dimensions["A"].width >= 8


def test_number_formats(workbook):
    ws = workbook["Estimates"]
    headers = {c.value: c.column for c in ws[2]}
    row = next(r for r in range(3, ws.max_row) if isinstance(ws.cell(r, headers["p"]).value, float))
    assert ws.cell(row, headers["Estimate"]).number_format == "0.00"
    assert "0.000" in ws.cell(row, headers["p"]).number_format
    attrition = workbook["Attrition"]
    pct = [
        c
        for row in attrition.iter_rows()
        for c in row
        if isinstance(c.value, float) and "%" in c.number_format
    ]
    assert pct and all(0 <= c.value <= 1 for c in pct)


def test_small_cells_are_withheld_as_in_the_report(workbook):
    means = workbook["Means"]
    values = [c.value for row in means.iter_rows() for c in row]
    assert "<10" in values and SECRET_MEAN not in values
    for row in means.iter_rows(values_only=True):
        if "<10" in row:
            assert all(v is None for v in row[row.index("<10") + 1 :]), row


def test_summary_and_notes_sheets(workbook, results):
    summary = [c.value for c in workbook["Summary"]["A"] if c.value]
    assert summary[0] == results.design.title and results.headline[0] in summary
    for question, answer in results.extras["summary"]:  # the four answers first, as in the report
        assert f"{question} {answer}" in summary
    notes = [c.value for c in workbook["Notes"]["A"] if c.value]
    assert {"Methods", "Privacy", "Glossary"} <= set(notes)
    from evaltoolkit.plan.summary import left_out_table, ranked_cautions

    groups, left_out = ranked_cautions(results)
    assert left_out.equals(left_out_table(results))
    assert [g for g, _ in groups] == [
        n for n in notes if n in {g for g, _ in groups}
    ]  # in the report's order
    assert all(w in notes for _, items in groups for w in items)
    assert len([n for n in notes if " left out (" in n]) == len(left_out_table(results))


def test_summary_docx_reads_back_with_the_headline(results, tmp_path):
    docx = pytest.importorskip("docx")
    from evaltoolkit.report.docx import write_summary_docx

    path = write_summary_docx(results, tmp_path / "summary.docx", rating=("Moderate", "Participants chose."))
    doc = docx.Document(path)
    text = [p.text for p in doc.paragraphs]
    assert text[0] == results.design.title
    wanted = list(results.summary.values()) or list(results.headline)  # the four answers (else the headline)
    assert wanted and all(any(h in t for t in text) for h in wanted)
    assert len(doc.inline_shapes) == 1  # the forest plot
    box = [[c.text for c in row.cells] for row in doc.tables[0].rows]
    assert ["Strength of evidence", "Moderate"] in box and "shd" in doc.tables[0]._tbl.xml


def test_pdf_is_printed_when_chromium_exists(results, tmp_path, capsys):
    paths = write_report(results, tmp_path)
    if find_chromium() is None:
        assert write_pdf(paths["report"], tmp_path / "report.pdf") is None
        assert "Chromium was not found" in capsys.readouterr().err
        pytest.skip("no Chromium on this machine: report.pdf cannot be printed")
    pdf = write_pdf(paths["report"], tmp_path / "report.pdf")
    assert pdf is not None and pdf.read_bytes()[:5] == b"%PDF-"
    assert re.search(rb"/MediaBox\s*\[0 0 59[45]\.\d+ 84[12]\.\d+\]", pdf.read_bytes())  # A4 in points


def test_pdf_without_chromium_says_why(tmp_path, capsys):
    (tmp_path / "report.html").write_text("<html><head></head><body>x</body></html>")
    missing = write_pdf(tmp_path / "report.html", tmp_path / "r2.pdf", chromium="/nonexistent/chromium")
    assert missing is None and not (tmp_path / "r2.pdf").exists()
    assert "report.pdf not written" in capsys.readouterr().err
