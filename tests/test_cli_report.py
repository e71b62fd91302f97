"""End to end: the CLI (demo, simulate, analyse), the report's content and privacy, and rendering in Chromium."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from evaltoolkit.cli.app import main
from evaltoolkit.results import ESTIMATE_COLUMNS


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, seed):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--n", "900", "--seed", str(seed(7))]) == 0
    return out


def test_demo_writes_report_and_estimates(demo_dir):
    est = pd.read_csv(demo_dir / "estimates.csv")
    assert list(est.columns[: len(ESTIMATE_COLUMNS)]) == list(ESTIMATE_COLUMNS)
    att = est[(est["outcome"] == "attitudes")].iloc[0]
    truth = pd.read_csv(demo_dir / "true_effects.csv").set_index(["outcome", "wave"])
    # the primary DiD is in the right region: the true post effect on attitudes is about 0.17 and, with
    # 900 people, its SE ~0.055; over seeds the estimate is unbiased, so it lies within 4 SEs of the truth
    true_att = truth.loc[("attitudes", "post"), "effect"]
    assert att["ci_lower"] < true_att + 0.15
    assert abs(att["estimate"] - true_att) < 4 * att["std_error"]
    assert att["n_clusters"] > 30
    html = (demo_dir / "report.html").read_text()
    for needle in (
        "Summary",
        "Strength of evidence",
        "Difference-in-differences",
        "Who took part",
        "Methods",
    ):
        assert needle in html
    assert "data:image/png;base64," in html


def test_report_is_self_contained_and_private(demo_dir):
    html = (demo_dir / "report.html").read_text()
    # no network requests: no external src/href, no @import, no url(http...)
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", html)
    assert "@import" not in html and "url(http" not in html
    # no raw identifiers: simulated person ids are 'pid' values; team labels look like S03-T12
    data = pd.read_csv(demo_dir / "simulated_data.csv")
    assert "<th>pid</th>" not in html.lower()  # no identifier column in any table
    assert not re.search(r"S\d\d-[TC]\d+", html)
    assert len(data) > 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert (
        main(["simulate", "--design", "ncs_prepost_control", "--n", "-3", "--out", str(tmp_path / "x.csv")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "n must be" in err and "Traceback" not in err
    assert main(["analyse", str(tmp_path / "missing.csv"), "--design", "ncs_prepost_control"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["analyse", str(tmp_path / "x.csv"), "--design", "no_such_design"]) == 2
    assert "no bundled design" in capsys.readouterr().err


def test_analyse_never_modifies_input_and_reports_bad_columns(tmp_path, capsys):
    data = tmp_path / "study.csv"
    assert (
        main(["simulate", "--design", "ncs_prepost_control", "--n", "400", "--seed", "3", "--out", str(data)])
        == 0
    )
    before = hashlib.sha256(data.read_bytes()).hexdigest()
    out = tmp_path / "out"
    assert main(["analyse", str(data), "--design", "ncs_prepost_control", "--out", str(out)]) == 0
    assert hashlib.sha256(data.read_bytes()).hexdigest() == before
    assert (out / "report.html").exists() and (out / "estimates.csv").exists()
    # a missing column is named in a one-line error
    df = pd.read_csv(data).drop(columns=["team"])
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    capsys.readouterr()
    assert main(["analyse", str(bad), "--design", "ncs_prepost_control", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'team'" in err and "columns.clusters" in err and "Traceback" not in err


def test_help_lists_only_working_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "evaltoolkit.cli.app", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    for cmd in ("demo", "simulate", "analyse"):
        assert cmd in proc.stdout


@pytest.mark.browser
def test_report_renders_in_headless_chromium(demo_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.skip(
            "no chromium on this machine: the rendering test needs headless chromium (apt-get install chromium)"
        )
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (demo_dir / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1200, 2400)
    # the page rendered content: many distinct grey levels (text, tables, figures), not a blank page
    assert len(img.histogram()) == 256 and sum(1 for v in img.histogram() if v) > 50


def test_validate_and_score_commands(tmp_path, capsys):
    import numpy as np

    import evaltoolkit as et
    from evaltoolkit.simulate.exports import simulate_kobo_export

    ins = et.load_instrument("ncs_social_mixing")
    rng = np.random.default_rng(0)
    answers = pd.DataFrame({"respondent_id": [f"r{i}" for i in range(30)]})
    for item in ins.items:
        rs = ins.response_scales[item.response_scale]
        answers[item.code] = rng.integers(rs.min_code, rs.max_code + 1, size=30)
    path = tmp_path / "kobo.csv"
    simulate_kobo_export(ins, answers, path)
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    col = next(c for c in raw.columns if c.endswith("ncs_getalong"))
    raw.loc[3, col] = "9"  # out of range on a 1-5 scale
    raw.to_csv(path, sep=";", index=False)
    before = path.read_bytes()
    capsys.readouterr()
    assert main(["validate", str(path), "--instrument", "ncs_social_mixing"]) == 0
    out = capsys.readouterr().out
    assert "ncs_getalong" in out
    assert main(["validate", str(path), "--instrument", "ncs_social_mixing", "--strict"]) == 1
    out = tmp_path / "scored"
    assert main(["score", str(path), "--instrument", "ncs_social_mixing", "--out", str(out)]) == 0
    table = pd.read_csv(out / "scored.csv")
    assert "ncs_cohesion" in table.columns and table["ncs_cohesion"].isna().sum() == 1
    assert path.read_bytes() == before
    assert main(["validate", str(path), "--instrument", "no_such_instrument"]) == 2


def test_report_rerenders_and_pools(demo_dir, tmp_path, seed):
    # re-render one saved report with a new title
    again = tmp_path / "again"
    assert main(["report", str(demo_dir), "--title", "Board summary", "--out", str(again)]) == 0
    assert "Board summary" in (again / "report.html").read_text()
    # results.json carries no images: the figures sit beside it and come back into the re-rendered report
    saved = (demo_dir / "results.json").read_text()
    figures = sorted((demo_dir / "figures").glob("figure-*.png"))
    assert (
        "base64" not in saved and len(figures) >= 3 and saved.count('src=\\"figures/figure-') == len(figures)
    )
    first, second = ((f / "report.html").read_text() for f in (demo_dir, again))
    embedded = re.compile(r'src="data:image/png;base64,[^"]+"')
    assert embedded.findall(first) == embedded.findall(second) and len(embedded.findall(first)) == len(
        figures
    )
    assert len(saved) < 200_000  # the numbers and text only (the images alone are several hundred KB)
    # pool two studies: the pooled DiD lies between the two studies' estimates (random-effects mean)
    other = tmp_path / "other"
    assert main(["demo", "--out", str(other), "--n", "900", "--seed", str(seed(8))]) == 0
    pooled = tmp_path / "pooled"
    assert main(["report", str(demo_dir), str(other), "--out", str(pooled)]) == 0
    est = pd.read_csv(pooled / "estimates.csv")
    row = est.query(
        "analysis == 'pooled:did_primary' and outcome == 'attitudes' and term == 'treat:post'"
    ).iloc[0]
    a = pd.read_csv(demo_dir / "estimates.csv").query(
        "analysis == 'did_primary' and outcome == 'attitudes' and term == 'treat:post'"
    )
    b = pd.read_csv(other / "estimates.csv").query(
        "analysis == 'did_primary' and outcome == 'attitudes' and term == 'treat:post'"
    )
    lo, hi = sorted([a["estimate"].iloc[0], b["estimate"].iloc[0]])
    assert lo <= row["estimate"] <= hi and row["k"] == 2
    # inverse-variance weights: with DL tau^2 = 0 the pooled estimate is the fixed-effect mean
    w = 1 / a["std_error"].iloc[0] ** 2, 1 / b["std_error"].iloc[0] ** 2
    fe = (w[0] * a["estimate"].iloc[0] + w[1] * b["estimate"].iloc[0]) / sum(w)
    if row["tau2"] == 0:
        assert row["estimate"] == pytest.approx(fe, rel=1e-9)
    assert "forest plot" in (pooled / "report.html").read_text()
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
