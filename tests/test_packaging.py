"""Packaging: every subpackage ships in the wheel, and the YAML libraries are found through importlib.resources."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(cfg["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "evaltoolkit").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_libraries_found_through_importlib_resources():
    designs = {p.name for p in resources.files("evaltoolkit.designs_library").iterdir()}
    instruments = {p.name for p in resources.files("evaltoolkit.instruments_library").iterdir()}
    assert {
        "ncs_prepost_control.yaml",
        "best_of_us_children.yaml",
        "best_of_us_adults.yaml",
        "cluster_rct.yaml",
    } <= designs
    assert {"ncs_social_mixing.yaml", "best_of_us_children.yaml", "best_of_us_adults.yaml"} <= instruments
    assert resources.files("evaltoolkit.report").joinpath("templates/report.html").is_file()


def test_public_names_resolve_even_after_submodule_import():
    # et.did, et.power... must stay functions after `import evaltoolkit.estimators.did` binds the submodule
    import importlib
    import types

    import evaltoolkit as et

    for name, module in et._LAZY.items():
        importlib.import_module(module)
        obj = getattr(et, name)
        assert not isinstance(obj, types.ModuleType), name
        assert callable(obj), name
