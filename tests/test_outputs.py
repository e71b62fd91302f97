"""Inputs are never touched (issue 12, item 5): an output that would replace an input is refused before any work,
in one line with exit 2, and outputs are written atomically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import evaltoolkit as et
from evaltoolkit.errors import UsageError
from evaltoolkit.io.outputs import atomic_write, refuse_overwriting_inputs, write_csv

EXE = str(Path(sys.executable).with_name("evaltoolkit"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def study_csv(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("study")
    sim = et.simulate_study("ncs_prepost_control", n=200, seed=4)
    write_csv(
        sim.data, d / "estimates.csv", index=False
    )  # a data file that happens to be called estimates.csv
    return d / "estimates.csv"


def _refused(proc: subprocess.CompletedProcess, path: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "would overwrite the input file" in line and path.name in line and "Traceback" not in proc.stderr


def test_analyse_refuses_to_write_over_its_data(study_csv):
    before = study_csv.read_bytes()
    proc = _run(
        "analyse", study_csv.name, "--design", "ncs_prepost_control", "--out", ".", cwd=study_csv.parent
    )
    _refused(proc, study_csv)
    assert study_csv.read_bytes() == before and not (study_csv.parent / "report.html").exists()


def test_validate_and_score_refuse_to_write_over_the_export(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("id,ncs_getalong\n1,Agree\n2,4\n")
    before = export.read_bytes()
    _refused(
        _run("validate", "export.csv", "-i", "ncs_social_mixing", "--out", "export.csv", cwd=tmp_path), export
    )
    scored = tmp_path / "scored.csv"
    scored.write_bytes(before)
    _refused(_run("score", "scored.csv", "-i", "ncs_social_mixing", "--out", ".", cwd=tmp_path), scored)
    assert export.read_bytes() == before and scored.read_bytes() == before


def test_pooling_refuses_to_write_over_a_study_it_reads(tmp_path):
    for name, shift in (("a", 0.0), ("b", 0.1)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "estimates.csv").write_text(
            f"analysis,outcome,term,estimate,std_error\ndid,att,treat:post,{0.2 + shift},0.05\n"
        )
    before = (tmp_path / "a" / "estimates.csv").read_bytes()
    _refused(_run("report", "a", "b", "--out", "a", cwd=tmp_path), tmp_path / "a" / "estimates.csv")
    assert (tmp_path / "a" / "estimates.csv").read_bytes() == before


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_refusal_names_both_paths(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("x\n1\n")
    with pytest.raises(
        UsageError, match=r"data\.csv would overwrite the input file .*data\.csv; choose another --out"
    ):
        refuse_overwriting_inputs([tmp_path / "sub" / ".." / "data.csv"], [f])


def test_outputs_get_the_permissions_a_plain_write_would(tmp_path):
    """Atomic writes go through a private (0600) temporary file; the result has the umask's permissions, as any
    file the user writes (0644 under the usual umask 022), not 0600."""
    from evaltoolkit.io.outputs import _umask, write_text

    p = write_text(tmp_path / "report.html", "<p>x</p>")
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert 0o666 & ~_umask() != 0o600 or _umask() == 0o066  # the check can fail: 0600 only under umask 066
