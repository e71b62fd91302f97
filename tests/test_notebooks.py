"""The notebooks in ``notebooks/`` run top to bottom in a fresh kernel, and are committed without outputs.

Each notebook is copied to a temporary directory and executed there with nbclient (so whatever it writes,
e.g. the NCS report, lands outside the repository). The kernel is started from a kernelspec written for
this test by ipykernel, whose command is this interpreter (``sys.executable``): a user-level ``python3``
kernelspec (``~/.local/share/jupyter/kernels``) that points at another Python cannot be picked up. A probe
cell appended to the executed copy checks that the kernel really is this environment's Python.

The notebooks are found by glob (``notebooks/*.ipynb``, sorted) and hold their own checks: ``assert`` cells
against published or reference numbers (with the source beside each) and, for simulated data, against margins
that hold for any seed or values pinned to the locked versions (said in a comment). A failing cell is reported
with its source and error. Outputs are handled one way: notebooks are committed without outputs, and executed
here (and by the documentation build).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient
from nbclient.exceptions import CellControlSignal, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
#: every notebook in notebooks/, found by glob so a new one is run without editing this file (each runs in
#: ~2-30 s, so none is marked slow)
NOTEBOOKS = tuple(sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")))
CELL_TIMEOUT = 300  # seconds, per cell
KERNEL_NAME = "evaltoolkit-test-python"
PROBE = "import json, sys\nprint(json.dumps({'executable': sys.executable, 'prefix': sys.prefix}))"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    """A JUPYTER_PATH entry holding one kernelspec whose argv starts with this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / KERNEL_NAME, overrides={"display_name": "evaltoolkit tests"})
    argv = json.loads((root / "kernels" / KERNEL_NAME / "kernel.json").read_text(encoding="utf-8"))["argv"]
    assert argv[0] == sys.executable
    return root


def _execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell of a copy of ``path`` in ``workdir``, then the probe; fail with the failing cell."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    failure = None
    with client.setup_kernel():  # starts a fresh kernel, shuts it down on leaving
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except (CellControlSignal, DeadKernelError) as err:
                error = ANSI.sub("", str(err))
                source = "" if cell.source in error else f"--- source ---\n{cell.source}\n--- error ---\n"
                failure = f"{path.name}: cell {index} (id {cell.get('id')!r}) failed.\n{source}{error}"
                break
    if failure:
        pytest.fail(failure, pytrace=False)
    return nb


@pytest.mark.parametrize("name", NOTEBOOKS, ids=lambda n: n.removesuffix(".ipynb"))
def test_notebook_runs_top_to_bottom(name, jupyter_path, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    shutil.copy2(NOTEBOOKS_DIR / name, workdir / name)
    before = sorted(p.name for p in NOTEBOOKS_DIR.iterdir())

    nb = _execute(workdir / name, workdir)

    probe = nb.cells[-1]
    kernel = json.loads("".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream"))
    assert kernel == {"executable": sys.executable, "prefix": sys.prefix}, "the kernel is another Python"
    assert sorted(p.name for p in NOTEBOOKS_DIR.iterdir()) == before, "the notebook wrote into notebooks/"


def test_every_notebook_is_listed_in_the_readme():
    """The README's Notebooks section links every notebook, each link resolves, and none is missing here."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Notebooks\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    assert section, "README.md has no '## Notebooks' section"
    linked = re.findall(r"\]\((notebooks/[^)]+\.ipynb)\)", section.group(1))
    assert sorted(Path(link).name for link in linked) == list(NOTEBOOKS), "README and notebooks/ differ"
    assert all((ROOT / link).is_file() for link in linked)
    assert len(NOTEBOOKS) >= 5 and all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS, ids=lambda n: n.removesuffix(".ipynb"))
def test_committed_notebook_has_no_outputs(name):
    raw = json.loads((NOTEBOOKS_DIR / name).read_text(encoding="utf-8"))
    nbformat.validate(nbformat.from_dict(raw))  # also requires cell ids (nbformat 4.5)
    stale = [
        f"cell {i} (id {cell.get('id')!r})"
        for i, cell in enumerate(raw["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not stale, f"{name} holds outputs or execution counts in {', '.join(stale)}: clear them first"
    timing = [i for i, cell in enumerate(raw["cells"]) if "execution" in cell.get("metadata", {})]
    assert not timing, f"{name}: execution timing metadata in cells {timing}"
    assert "widgets" not in raw["metadata"], f"{name}: widget state in the notebook metadata"
