"""Start-up time: `import evaltoolkit` and `evaltoolkit --help` (goal: under 0.5 s each).

Run by hand: `.venv/bin/python benchmarks/bench_import.py`. Prints a table; not a test.
Heavy libraries (pandas, statsmodels, PyMC, matplotlib) are imported lazily, so neither should load them.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.5
REPEATS = 7


def _time(cmd: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    exe = Path(sys.executable)
    cli = shutil.which("evaltoolkit", path=str(exe.parent)) or "evaltoolkit"
    rows = [
        ("python -c pass (interpreter floor)", _time([str(exe), "-c", "pass"])),
        ("import evaltoolkit", _time([str(exe), "-c", "import evaltoolkit"])),
        ("evaltoolkit --help", _time([cli, "--help"])),
    ]
    heavy = subprocess.run(
        [
            str(exe),
            "-c",
            "import sys, evaltoolkit; print(sorted(m for m in ('pandas','pymc','matplotlib',"
            "'statsmodels','scipy') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"{'what':40s} {'median s':>9s} {'goal s':>7s} {'ok':>4s}")
    for name, t in rows:
        goal = "" if "floor" in name else f"{GOAL_S:.2f}"
        ok = "" if "floor" in name else ("yes" if t < GOAL_S else "NO")
        print(f"{name:40s} {t:9.3f} {goal:>7s} {ok:>4s}")
    print(f"heavy modules loaded by `import evaltoolkit`: {heavy}")


if __name__ == "__main__":
    main()
