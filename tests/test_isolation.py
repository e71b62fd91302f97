"""Every analysis is isolated (issue 12, item 8): an unexpected failure in one analysis becomes a named caution and
the others still run; a failed *primary* analysis makes `analyse` exit 1 after writing the report."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import evaltoolkit as et
import evaltoolkit.plan.runners
from evaltoolkit.cli.app import main
from evaltoolkit.plan.registry import REGISTRY


@pytest.fixture()
def broken(monkeypatch):
    """Make one analysis type fail with an unexpected error whose text quotes a (fake) respondent ID."""

    def boom(kind: str) -> None:
        def run(study, analysis, out):
            raise TypeError("cannot compare person 'ID-100178' with 3.5")

        monkeypatch.setitem(REGISTRY, kind, dataclasses.replace(REGISTRY[kind], run=run))

    return boom


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    sim = et.simulate_study("ncs_prepost_control", n=300, seed=9)
    sim.data.to_csv(d / "study.csv", index=False)
    return d / "study.csv"


def test_a_failed_secondary_analysis_is_a_caution_and_the_run_succeeds(broken, data_file, tmp_path, capsys):
    broken("moderation")
    assert (
        main(["-q", "analyse", str(data_file), "--design", "ncs_prepost_control", "--out", str(tmp_path)])
        == 0
    )
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert (
        "Analysis &#39;moderation_segregation&#39; (moderation) failed unexpectedly (TypeError)" in html
        or ("Analysis 'moderation_segregation' (moderation) failed unexpectedly (TypeError)" in html)
    )
    assert "ID-100178" not in html  # an unexpected error's text may quote data: it is not shown
    est = pd.read_csv(tmp_path / "estimates.csv")
    assert (est["analysis"] == "did_primary").any() and not (
        est["analysis"] == "moderation_segregation"
    ).any()


def test_a_failed_primary_analysis_exits_1_after_writing_the_report(broken, data_file, tmp_path, capsys):
    broken("did")
    code = main(["-q", "analyse", str(data_file), "--design", "ncs_prepost_control", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "the primary analysis 'did_primary' could not be completed" in " ".join(err.split())
    assert (tmp_path / "report.html").is_file() and "ID-100178" not in err
