"""The README's Python tour runs as written (in a scratch folder), so the first thing a reader tries works."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

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
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "export.csv").is_file()
    assert namespace["report"].n_rows_out == 150
