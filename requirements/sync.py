"""Make a virtual environment hold exactly what a lock file pins, or check that it does.

Used by the Makefile (``make demo``, ``make test``, ``make bench``) and by the test suite's environment
check; it needs nothing but the standard library and pip.

    python requirements/sync.py requirements/dev.lock            # install; remove what the lock lacks
    python requirements/sync.py requirements/runtime.lock --keep  # install; keep packages the lock lacks
    python requirements/sync.py requirements/dev.lock --check     # exit 1 and list differences

Installing goes in two steps: every pinned package with ``--no-deps`` and its hashes checked (so pip never
resolves anything), then evaltoolkit itself in editable mode with ``--no-build-isolation`` (so the
setuptools that builds it is the locked one too).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "evaltoolkit"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """Return ``{normalised name: version}`` for every ``name==version`` line of a lock file."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def installed() -> dict[str, str]:
    """Return ``{normalised name: version}`` for every distribution in this interpreter's environment."""
    return {_norm(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def differences(lock: dict[str, str], have: dict[str, str], *, keep_extras: bool = False) -> list[str]:
    """Describe how ``have`` differs from ``lock``, one line per package (empty when they agree)."""
    out = []
    for name, version in sorted(lock.items()):
        if name not in have:
            out.append(f"{name}=={version} is in the lock but not installed")
        elif have[name] != version:
            out.append(f"{name} is {have[name]}, the lock pins {version}")
    if not keep_extras:
        for name in sorted(set(have) - set(lock) - {PROJECT}):
            out.append(f"{name}=={have[name]} is installed but not in the lock")
    return out


def _pip(*args: str) -> None:
    """Run pip, dropping its notes about package-index folders this machine's pip config names but lacks."""
    proc = subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr.splitlines():
        if not line.startswith("WARNING: Location '"):
            print(line, file=sys.stderr)
    if proc.returncode:
        raise SystemExit(f"pip {args[0]} failed (exit {proc.returncode}); see the lines above")


def sync(lock_path: Path, *, keep_extras: bool) -> None:
    """Install ``lock_path`` exactly, then evaltoolkit (editable) on top."""
    _pip("install", "--require-hashes", "--no-deps", "-r", str(lock_path))
    if not keep_extras:
        extras = sorted(set(installed()) - set(read_lock(lock_path)) - {PROJECT})
        if extras:
            _pip("uninstall", "--yes", *extras)
    _pip("install", "--no-deps", "--no-build-isolation", "-e", str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep installed packages the lock does not name")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on any difference")
    args = parser.parse_args(argv)
    if args.check:
        diff = differences(read_lock(args.lock), installed(), keep_extras=args.keep)
        for line in diff:
            print(line)
        return 1 if diff else 0
    sync(args.lock, keep_extras=args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
