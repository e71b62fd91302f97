"""The README's Python tour runs as written (in a scratch folder), so the first thing a reader tries works."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.search(r"### Python\n\n.*?```python\n(.*?)\n```", text, flags=re.S).group(1)


@pytest.mark.slow
def test_readme_python_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(_tour(), "README.md (Python tour)", "exec"), namespace)
    res = namespace["res"]
    # the simulated design's true effect on attitudes at post is about 0.17 scale points
    truth = namespace["sim"].true_effect("attitudes", "post")
    assert abs(res.estimate - truth) < 4 * res.std_error
    assert (tmp_path / "out" / "report.html").is_file() and namespace["sav"].is_file()
    assert namespace["draft"].design.arms.treated == "ncs_participants"  # recognised from its value label
    rows = len(et_simulate(namespace["design"]))
    assert namespace["report"].n_rows_out == rows  # every answer of every wave read, none dropped


def et_simulate(design):
    from evaltoolkit.simulate.study import simulate_study

    return simulate_study(design, n=150, seed=1).data


def _cli_tour() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Command line\n\n.*?```bash\n(.*?)\n```", text, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("evaltoolkit")]


@pytest.mark.slow
def test_readme_command_line_tour_runs(tmp_path, monkeypatch, capsys):
    """Every command of the README's command-line tour, in order, in an empty folder: from the questionnaire
    through the exports it creates to a report (the lines marked slow are run by `make demo` and the power tests)."""
    import shlex

    from evaltoolkit.cli.app import main

    monkeypatch.chdir(tmp_path)
    ran = 0
    for line in _cli_tour():
        command, _, comment = line.partition("#")
        if comment.strip().startswith("slow"):
            continue
        rc = main(shlex.split(command)[1:])
        assert rc == 0, (command, capsys.readouterr())
        ran += 1
    assert ran >= 11
    est = pd.read_csv(tmp_path / "results" / "estimates.csv")
    assert {"did_primary", "ancova"} <= set(est["analysis"])
    assert (tmp_path / "results" / "report.html").is_file() and (
        tmp_path / "results-ncs" / "report.html"
    ).is_file()
    scored = pd.read_csv(tmp_path / "scored" / "scored.csv", dtype=str)
    assert scored["pid"].str.fullmatch(r"P[0-9a-f]{12}").all()  # pseudonymous IDs
