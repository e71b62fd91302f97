"""The installed ``evaltoolkit`` console script fails like a good CLI: short usage, exit 2, no traceback.

Every case runs the console script that ``pip install`` put beside this interpreter, in a subprocess with
its output piped (not a terminal), as a user's shell or a CI log would see it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer

from evaltoolkit.cli.app import app, main

SCRIPT = Path(sys.executable).with_name("evaltoolkit")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"the console script is not installed beside {sys.executable}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=120
    )


def test_version_prints_the_installed_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"evaltoolkit {version('evaltoolkit')}"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["analyse"], "Missing argument"),  # missing argument
        (["analyse", "study.csv"], "Missing option '--design'"),  # missing option
        (["analyze", "study.csv"], "No such command 'analyze'"),  # unknown command (a typo)
        (["simulate", "--seed", "abc"], "Invalid value for '--seed'"),  # a value of the wrong type
        (["validate", "x.csv", "--instruments", "x"], "No such option: --instruments"),  # unknown option
        (["instruments", "shwo"], "No such command 'shwo'"),  # unknown subcommand of a group
    ],
)
def test_usage_errors_print_usage_and_exit_2(args, needle):
    proc = run(*args)
    both = proc.stdout + proc.stderr
    assert proc.returncode == 2, both
    assert needle in proc.stderr
    assert "Usage: evaltoolkit" in proc.stderr and "--help" in proc.stderr
    assert "Traceback" not in both
    assert len(both.strip().splitlines()) <= 6  # a short usage message, not a page


def test_input_errors_are_one_unwrapped_line_and_verbose_shows_the_traceback(tmp_path):
    missing = tmp_path / ("a_file_name_long_enough_to_push_the_message_past_eighty_columns_" * 2 + ".csv")
    proc = run("validate", str(missing), "--instrument", "ncs_social_mixing")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) > 120  # not wrapped at 80 columns in a log
    assert lines[0].startswith("error: ") and "file not found" in lines[0]
    proc = run("--verbose", "validate", str(missing), "--instrument", "ncs_social_mixing")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "DataError" in proc.stderr


def test_quiet_prints_nothing_but_still_works(tmp_path):
    out = tmp_path / "s.csv"
    proc = run(
        "-q", "simulate", "--design", "ncs_prepost_control", "--n", "60", "--seed", "1", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and out.exists()


def _leaf_commands() -> list[tuple[str, ...]]:
    """Every runnable subcommand path, e.g. ('instruments', 'show'), from the app's command tree."""
    root = typer.main.get_command(app)
    out: list[tuple[str, ...]] = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            out.append(path)

    walk(root, ())
    return out


def test_every_subcommand_help_ends_with_a_worked_example():
    leaves = _leaf_commands()
    assert {("demo",), ("analyse",), ("validate",), ("instruments", "export")} <= set(leaves)
    for path in leaves:
        proc = run(*path, "--help")
        assert proc.returncode == 0, path
        tail = [ln.strip() for ln in proc.stdout.strip().splitlines()[-4:]]
        assert any(ln.startswith("evaltoolkit ") for ln in tail), (path, tail)
        assert "Example" in proc.stdout, path


def _examples(path: tuple[str, ...]) -> list[str]:
    proc = run(*path, "--help")
    lines = proc.stdout.splitlines()
    start = max(i for i, ln in enumerate(lines) if ln.strip().startswith("Example"))
    return [ln.strip() for ln in lines[start + 1 :] if ln.strip().startswith("evaltoolkit ")]


# the slow ones (a whole analysis plan, a simulated power curve) are exercised by test_cli_report.py
_HEAVY = ("evaltoolkit demo", "evaltoolkit analyse", "evaltoolkit power --design", "evaltoolkit report")


def test_the_worked_examples_in_help_run(tmp_path, capsys):
    """Each light example in ``--help`` runs as written, in a folder holding the files it names."""
    (tmp_path / "wave1.csv").write_text(
        "id,ncs_getalong,ncs_help_seeking\n1,4,2\n2,5,4\n3,3,4\n4,2,5\n", encoding="utf-8"
    )
    rows = "".join(
        f"{i},{'programme' if i % 2 else 'control'},{1 + i % 5},{1 + i * 3 % 5}\n" for i in range(1, 41)
    )
    (tmp_path / "survey.csv").write_text("id,arm,ncs_getalong,ncs_help_seeking\n" + rows, encoding="utf-8")
    for k in (1, 2):
        (tmp_path / f"w{k}.csv").write_text("id,arm,ncs_getalong,ncs_help_seeking\n" + rows, encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        ran = 0
        for path in _leaf_commands():
            for cmd in _examples(path):
                if cmd.startswith(_HEAVY):
                    continue
                rc = main(shlex.split(cmd)[1:])
                assert rc == 0, (cmd, capsys.readouterr().err)
                ran += 1
    finally:
        os.chdir(cwd)
    assert ran >= 7
    assert (tmp_path / "study.csv").exists() and (tmp_path / "questionnaire").is_dir()
    assert (tmp_path / "scores" / "scored.csv").exists()
