"""From a survey export to a report with no hand edits: `design init` -> `score` -> `analyse`.

The exports are written the way the tools write them (evaltoolkit.simulate.exports: Kobo CSV/XLSX with XML values
or labels and an admin group, Qualtrics CSV with question IDs, the wording row, preview and unfinished responses,
SPSS .sav and Stata .dta with value-labelled wave, arm and clusters), each of the bundled NCS questionnaire and
simulated from one design with one seed - so every format holds the same answers and must give the same estimate.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evaltoolkit.cli.app import app
from evaltoolkit.simulate.study import simulate_study
from evaltoolkit.simulate.surveys import design_answers, simulate_exports

FORMATS = ["kobo", "kobo-labels", "kobo-xlsx", "qualtrics", "qualtrics-text", "spss", "stata"]
N, SEED = 240, 7
WAVES = "baseline,post,followup"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return res.output


def _digest(files: list[Path]) -> list[str]:
    return [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> dict[str, dict]:
    """Every format through design init -> score -> analyse (shared by the tests below)."""
    out: dict[str, dict] = {}
    for fmt in FORMATS:
        d = tmp_path_factory.mktemp(fmt.replace("-", "_"))
        files = simulate_exports("ncs_prepost_control", d / "raw", format=fmt, n=N, seed=SEED, n_preview=2,
                                 n_unfinished=3)  # fmt: skip
        before = _digest(files)
        waves = ["--waves", WAVES] if len(files) > 1 else []
        init = _run("design", "init", *files, "-i", "ncs_social_mixing", *waves, "--out", d / "design.yaml",
                    "--no-interactive")  # fmt: skip
        score = _run("score", *files, "--design", d / "design.yaml", *waves, "--out", d / "scored")
        analyse = _run(
            "analyse", d / "scored" / "scored.csv", "--design", d / "design.yaml", "--out", d / "report"
        )
        out[fmt] = {
            "dir": d,
            "files": files,
            "before": before,
            "init": init,
            "score": score,
            "analyse": analyse,
        }
    return out


def _estimate(run: dict, analysis: str = "did_primary", outcome: str = "ncs_attitudes") -> pd.Series:
    est = pd.read_csv(run["dir"] / "report" / "estimates.csv")
    row = est[(est["analysis"] == analysis) & (est["outcome"] == outcome)]
    assert len(row) >= 1, est[["analysis", "outcome"]].drop_duplicates()
    return row.iloc[0]


def test_every_format_reaches_the_same_estimate(pipelines):
    """The same answers in seven formats: the same DiD estimate to the last digit."""
    first = _estimate(pipelines["kobo"])
    for fmt, run in pipelines.items():
        got = _estimate(run)
        assert got["estimate"] == pytest.approx(first["estimate"], abs=1e-12), fmt
        assert got["std_error"] == pytest.approx(first["std_error"], abs=1e-12), fmt
        assert int(got["n_obs"]) == int(first["n_obs"]), fmt


def test_the_estimate_recovers_the_simulated_effect(pipelines):
    """ncs_attitudes follows the simulated `attitudes` score (both 1-5), so the DiD on the scored export estimates
    the design's true effect; the margin (5 standard errors plus the attenuation that rounding answers to codes
    can cause, at most 0.1 points) holds for any seed."""
    truth = simulate_study("ncs_prepost_control", n=N, seed=SEED).true_effect("attitudes", "post")
    got = _estimate(pipelines["kobo"])
    assert abs(got["estimate"] - truth) < 5 * got["std_error"] + 0.1


def test_inputs_are_never_modified(pipelines):
    for fmt, run in pipelines.items():
        assert _digest(run["files"]) == run["before"], fmt


def test_design_init_finds_the_columns_and_plans_did_and_ancova(pipelines):
    import evaltoolkit as et

    for fmt, run in pipelines.items():
        d = et.load_design(run["dir"] / "design.yaml")
        assert (d.columns.id, d.columns.arm, d.columns.clusters) == ("pid", "arm", ["site", "team"]), fmt
        assert d.covariates == ["age", "female", "segregation"], fmt
        assert [a.type for a in d.analyses] == ["balance", "did", "ancova"], fmt
        assert d.outcome("ncs_attitudes").scale == "ncs_attitudes" and d.families["primary"] == [
            "ncs_attitudes"
        ]
        assert len(d.waves) == 3 and d.baseline == d.wave_names[0], fmt
        # the programme group is recognised from its label ("NCS participants") or its code name ("ncs")
        assert d.arms.label(d.arms.treated) in ("NCS participants", "ncs"), fmt
        assert "looks like the programme group" in run["init"], fmt


def test_value_labelled_wave_and_arm_are_decoded(pipelines):
    """SPSS/Stata hold wave and arm as 1, 2, 3 with value labels: the design takes the labels, scoring decodes
    every row (none is 'unknown wave' or 'unknown arm')."""
    for fmt in ("spss", "stata"):
        run = pipelines[fmt]
        issues = pd.read_csv(run["dir"] / "scored" / "validation_issues.csv")
        assert not issues["problem"].isin(["unknown wave", "unknown arm"]).any(), fmt
        scored = pd.read_csv(run["dir"] / "scored" / "scored.csv")
        assert set(scored["arm"]) == {"ncs_participants", "interested_non_participants"}, fmt
        assert set(scored["wave"]) == {"before_the_programme", "3_5_months_after", "about_a_year_after"}, fmt
        assert scored["site"].str.match(r"S\d\d$").all(), fmt  # cluster codes decoded to their labels


def test_qualtrics_previews_and_unfinished_responses_are_left_out_and_counted(pipelines):
    for fmt in ("qualtrics", "qualtrics-text"):
        run = pipelines[fmt]
        issues = pd.read_csv(run["dir"] / "scored" / "validation_issues.csv")
        assert (issues["problem"] == "test response").sum() == 2 * 3, fmt  # 2 previews in each of 3 waves
        assert (issues["problem"] == "unfinished response").sum() == 3 * 3, fmt
        scored = pd.read_csv(run["dir"] / "scored" / "scored.csv")
        kobo = pd.read_csv(pipelines["kobo"]["dir"] / "scored" / "scored.csv")
        assert len(scored) == len(kobo), fmt  # exactly the real respondents remain
        assert "question-text row" in run["score"], fmt  # Q1, Q2_1... matched through the wording


def test_no_identifier_reaches_any_output(pipelines):
    """Qualtrics writes IP addresses and locations; scored.csv carries pseudonymous IDs; nothing written quotes a
    raw ID, an IP address or a coordinate."""
    raw_ids = {str(i) for i in design_answers(simulate_study("ncs_prepost_control", n=N, seed=SEED))["pid"]}
    for fmt, run in pipelines.items():
        scored = pd.read_csv(run["dir"] / "scored" / "scored.csv", dtype=str)
        assert scored["pid"].str.fullmatch(r"P[0-9a-f]{12}").all(), fmt
        assert not set(scored["pid"]) & raw_ids
        banned = {
            "IPAddress",
            "LocationLatitude",
            "LocationLongitude",
            "RecipientEmail",
            "_uuid",
            "ResponseId",
        }
        assert not banned & set(scored.columns), fmt
        for f in (run["dir"] / "scored").glob("*.csv"):
            text = f.read_text(encoding="utf-8")
            assert "192.0.2." not in text, (fmt, f.name)
        for f in (run["dir"] / "report").rglob("*"):
            if f.suffix in (".html", ".csv"):
                text = f.read_text(encoding="utf-8")
                assert "192.0.2." not in text and not EMAIL.search(text), (fmt, f.name)


def test_bundled_designs_take_scored_exports_straight_into_analyse(tmp_path):
    """No design init: the bundled designs name their instruments' scales, so `score --design` output is
    analysed as it is (outcome 'attitudes' is read from the scored column 'ncs_attitudes')."""
    for name in ("ncs_prepost_control", "best_of_us_children", "best_of_us_adults"):
        files = simulate_exports(name, tmp_path / name / "raw", format="kobo", n=200, seed=3)
        _run("score", *files, "--design", name, "--out", tmp_path / name / "scored")
        out = _run(
            "analyse",
            tmp_path / name / "scored" / "scored.csv",
            "--design",
            name,
            "--out",
            tmp_path / name / "r",
        )
        assert "Report:" in out
        est = pd.read_csv(tmp_path / name / "r" / "estimates.csv")
        assert est["estimate"].notna().any(), name


def test_design_init_asks_about_each_guess_when_interactive(tmp_path):
    [f] = simulate_exports("ncs_prepost_control", tmp_path, format="spss", n=120, seed=2)
    # keep every guess but the programme group: answer the comparison group's name (a deliberate swap)
    answers = "\n\n\ninterested_non_participants\n\n\n"
    res = CliRunner().invoke(app, ["design", "init", str(f), "-i", "ncs_social_mixing", "--out",
                                   str(tmp_path / "d.yaml"), "--interactive"], input=answers)  # fmt: skip
    assert res.exit_code == 0, res.output
    import evaltoolkit as et

    d = et.load_design(tmp_path / "d.yaml")
    assert d.arms.treated == "interested_non_participants" and d.arms.control == ["ncs_participants"]


def test_design_init_refuses_unknown_columns_and_existing_files(tmp_path, capsys):
    from evaltoolkit.cli.app import main

    [f] = simulate_exports("ncs_prepost_control", tmp_path, format="stata", n=120, seed=2)
    assert (
        main(
            [
                "design",
                "init",
                str(f),
                "-i",
                "ncs_social_mixing",
                "--arm",
                "arms",
                "--out",
                str(tmp_path / "d.yaml"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "did you mean 'arm'" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "d.yaml").write_text("keep me")
    assert main(["design", "init", str(f), "-i", "ncs_social_mixing", "--out", str(tmp_path / "d.yaml")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "d.yaml").read_text() == "keep me"


def test_the_report_says_which_scored_columns_it_read(tmp_path):
    files = simulate_exports("cluster_rct", tmp_path / "raw", format="kobo", n=150, seed=5)
    _run("score", *files, "--design", "cluster_rct", "--out", tmp_path / "scored")
    _run("analyse", tmp_path / "scored" / "scored.csv", "--design", "cluster_rct", "--out", tmp_path / "r")
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "Attitudes to other ethnic groups from &#39;ncs_attitudes&#39;" in html or (
        "Attitudes to other ethnic groups from 'ncs_attitudes'" in html
    )
