"""0.1 import paths and saved results keep working for one release (issue 11: "public API unchanged for users").

Old module paths (``evaltoolkit.did``, ``evaltoolkit.inference``...) resolve to the moved modules with a
DeprecationWarning; the public ``et.*`` names are untouched; a ``results.json`` written by 0.1 re-renders.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

import evaltoolkit as et
from evaltoolkit import _compat

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("old,new", sorted(_compat.MOVED.items()))
def test_old_module_path_is_the_new_module_and_warns(old, new):
    _compat._WARNED.discard(old)
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        mod = importlib.import_module(old)
    assert mod is importlib.import_module(new)
    assert mod.__spec__.name == new  # the module keeps its own spec


def test_old_from_imports_still_work():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evaltoolkit.did import DiDResult  # 0.1 path

        from evaltoolkit.estimators.did import DiDResult as New
    assert DiDResult is New


def test_packages_that_replaced_modules_forward_their_public_names_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from evaltoolkit.design import load_design
        from evaltoolkit.inference import choose_inference, wild_cluster_bootstrap
        from evaltoolkit.instruments import load_instrument
        from evaltoolkit.intake import read_responses
        from evaltoolkit.report import write_report
        from evaltoolkit.scoring import score
        from evaltoolkit.simulate import simulate_study
    assert load_design is et.load_design and read_responses is et.read_responses
    assert score is et.score and simulate_study is et.simulate_study and write_report is et.write_report
    assert (
        load_instrument is et.load_instrument
        and callable(choose_inference)
        and callable(wild_cluster_bootstrap)
    )


def test_private_names_of_replaced_modules_resolve_with_a_warning():
    import evaltoolkit.inference as inference
    from evaltoolkit.inference import core

    name = next(
        n for n in vars(core) if n.startswith("_") and not n.startswith("__") and callable(vars(core)[n])
    )
    _compat._WARNED.discard(f"evaltoolkit.inference.{name}")
    with pytest.warns(DeprecationWarning, match="evaltoolkit.inference.core"):
        assert getattr(inference, name) is getattr(core, name)
    with pytest.raises(AttributeError):
        inference.no_such_name  # noqa: B018


def test_public_functions_stay_functions_after_old_module_imports():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for old in _compat.MOVED:
            importlib.import_module(old)
    for name in et._LAZY:
        assert not isinstance(getattr(et, name), types.ModuleType), name


def test_new_module_paths_give_modules():
    # issue 11: `import evaltoolkit.<module>` yields a module (0.1 gave the function for 9 of them)
    import evaltoolkit.estimators.did as m
    import evaltoolkit.plan.power as p

    assert isinstance(m, types.ModuleType) and hasattr(m, "DiDResult")
    assert isinstance(p, types.ModuleType) and hasattr(p, "PowerResult")


def test_v0_1_results_json_rerenders(tmp_path):
    # tests/data/v0_1_results: written by `evaltoolkit demo` of 0.1 (see tests/data/README.md)
    src = DATA / "v0_1_results"
    folder = tmp_path / "old"
    shutil.copytree(src, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "new"
    exe = Path(sys.executable).with_name("evaltoolkit")
    proc = subprocess.run(
        [str(exe), "report", str(folder), "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    for heading in (
        "<h2>Summary",
        "<h2>Difference-in-differences (primary analysis)",
        "<h2>Mediation",
        "<h2>Methods",
    ):
        assert heading in html, heading
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # input folder untouched
