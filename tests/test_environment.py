"""The environment the suite runs in is exactly the lock, and the three locks agree with each other.

``make test`` sets ``EVALTOOLKIT_LOCK=requirements/dev.lock``; then every installed distribution must be
the locked version and nothing else may be installed (what ``pip freeze`` shows equals the lock). Outside
``make test`` (``make test-latest``, a user's own environment) the first check is skipped with its reason.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"


def _sync_module():
    spec = importlib.util.spec_from_file_location("_et_sync", REQ / "sync.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sync = _sync_module()


def test_installed_packages_are_exactly_the_lock():
    lock = os.environ.get("EVALTOOLKIT_LOCK")
    if not lock:
        pytest.skip("not run by 'make test' (EVALTOOLKIT_LOCK unset): the environment is not a locked one")
    diff = sync.differences(sync.read_lock(ROOT / lock), sync.installed())
    assert diff == [], "the environment differs from the lock:\n" + "\n".join(diff)


def test_differences_names_every_kind_of_drift():
    lock = {"numpy": "2.4.6", "pandas": "3.1.1"}
    have = {"numpy": "2.5.0", "scipy": "1.17.1", "evaltoolkit": "0.1.0"}
    assert sync.differences(lock, have) == [
        "numpy is 2.5.0, the lock pins 2.4.6",
        "pandas==3.1.1 is in the lock but not installed",
        "scipy==1.17.1 is installed but not in the lock",
    ]
    assert sync.differences(lock, have, keep_extras=True) == sync.differences(lock, have)[:2]


@pytest.mark.parametrize("name", ["runtime", "dev", "bench"])
def test_each_lock_pins_everything_with_hashes_for_python_311(name):
    text = (REQ / f"{name}.lock").read_text(encoding="utf-8")
    assert "--python-version 3.11" in text and "x86_64-manylinux" in text
    pins = sync.read_lock(REQ / f"{name}.lock")
    assert len(pins) > 40
    # every requirement line is an exact pin followed by its hashes (pip then runs in hash-checking mode)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for block in blocks:
        head = block.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+", head), head
        assert "--hash=sha256:" in block, head


def test_locks_agree_and_cover_pyproject():
    runtime, dev, bench = (sync.read_lock(REQ / f"{n}.lock") for n in ("runtime", "dev", "bench"))
    assert set(runtime) <= set(dev) <= set(bench)
    for name, version in runtime.items():
        assert dev[name] == version == bench[name], name
    for name, version in dev.items():
        assert bench[name] == version, name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(reqs):
        return {sync._norm(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in reqs}

    extras = project["optional-dependencies"]
    assert names(project["dependencies"]) <= set(runtime)
    assert names(extras["app"]) <= set(runtime)  # `make app` runs from the runtime lock
    assert names(extras["dev"]) - {"evaltoolkit"} <= set(dev)
    assert names(extras["app"]) | names(extras["docs"]) <= set(dev)  # dev = evaltoolkit[app,docs] + tools
    assert names(project["optional-dependencies"]["bench"]) <= set(bench)
    assert {"pip", "setuptools", "wheel"} <= set(runtime)  # the build tools are locked too


def test_every_dependency_has_an_upper_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    unbounded = [r for r in reqs if "<" not in r and not r.startswith("evaltoolkit[")]
    assert unbounded == []
