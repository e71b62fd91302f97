"""Panel DiD with person fixed effects and team-clustered SEs: evaltoolkit vs pyfixest.

1,000,000 rows (500,000 people x 2 waves, 40,000 teams of 12–13), the programme
assigned by team. Both fit ``y ~ treat:post | person + wave`` with CR1 standard
errors clustered by team:

* evaltoolkit: ``et.did(data, "y", "arm", "wave", treated="ncs", unit="person",
  cluster="team", vcov="CR1")`` (the full public function: validation, dropped-row
  accounting, cell means, Hedges' g);
* pyfixest: ``pf.feols("y ~ treat:post | person + wave", data, vcov={"CRV1": "team"})``.

Each runs in its own fresh subprocess (so peak memory is clean), on the same data
written once to a temporary ``.parquet`` file (or pickle if pyarrow is missing).
Prints wall-clock times (best of ``--repeat``), peak resident memory (the process's
``ru_maxrss``, data loading included), the ratio, and that the estimates and SEs agree.

    .venv/bin/python benchmarks/bench_did.py [--people 500000] [--teams 40000] [--repeat 2]

Acceptance (issue 5): under 4 GB and no slower than pyfixest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHILD = r"""
import json, resource, sys, time, warnings
import pandas as pd
path, which, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = pd.read_pickle(path)
warnings.simplefilter("ignore")
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    if which == "evaltoolkit":
        import evaltoolkit as et
        r = et.did(data, "y", "arm", "wave", treated="ncs", pre="baseline", post="post",
                   unit="person", cluster="team", vcov="CR1")
        est, se = r.estimate, r.std_error
    else:
        import pyfixest as pf
        d = data.assign(treat=(data["arm"] == "ncs").astype(float), post=(data["wave"] == "post").astype(float))
        m = pf.feols("y ~ treat:post | person + wave", data=d, vcov={"CRV1": "team"})
        est, se = float(m.coef().iloc[0]), float(m.se().iloc[0])
    best = min(best, time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB -> GB
print(json.dumps({"time": best, "peak_gb": peak, "estimate": est, "se": se}))
"""


def make_data(people: int, teams: int, seed: int = 0) -> pd.DataFrame:
    """Long panel: person effects, team shocks, common wave shift, effect 0.2 in treated teams."""
    rng = np.random.default_rng(seed)
    team = rng.integers(0, teams, size=people)
    treated_team = rng.random(teams) < 0.5
    treated = treated_team[team]
    alpha = rng.normal(size=people) + 0.3 * treated
    team_shock = rng.normal(scale=0.3, size=(teams, 2))
    y0 = alpha + team_shock[team, 0] + rng.normal(size=people)
    y1 = alpha + 0.1 + 0.2 * treated + team_shock[team, 1] + rng.normal(size=people)
    arm = np.where(treated, "ncs", "control")
    pid = np.arange(people)
    return pd.DataFrame(
        {
            "person": np.concatenate([pid, pid]),
            "team": np.concatenate([team, team]),
            "arm": np.concatenate([arm, arm]),
            "wave": np.repeat(["baseline", "post"], people),
            "y": np.concatenate([y0, y1]),
        }
    )


def run(which: str, path: Path, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), which, str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=500_000)
    ap.add_argument("--teams", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = make_data(args.people, args.teams)
    print(
        f"data: {len(data):,} rows, {args.people:,} people, {args.teams:,} teams "
        f"(built in {time.perf_counter() - t0:.1f} s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.pkl"
        data.to_pickle(path)
        del data
        ours = run("evaltoolkit", path, args.repeat)
        try:
            theirs = run("pyfixest", path, args.repeat)
        except (RuntimeError, ModuleNotFoundError) as err:  # pragma: no cover
            theirs = None
            print(f"pyfixest unavailable: {err}")
    print(f"{'':14s}{'time (s)':>10s}{'peak RSS (GB)':>15s}{'estimate':>12s}{'SE':>12s}")
    print(
        f"{'evaltoolkit':14s}{ours['time']:10.2f}{ours['peak_gb']:15.2f}{ours['estimate']:12.5f}{ours['se']:12.6f}"
    )
    if theirs:
        print(
            f"{'pyfixest':14s}{theirs['time']:10.2f}{theirs['peak_gb']:15.2f}"
            f"{theirs['estimate']:12.5f}{theirs['se']:12.6f}"
        )
        ratio = theirs["time"] / ours["time"]
        print(f"speed ratio pyfixest / evaltoolkit = {ratio:.2f} (>= 1 means evaltoolkit is no slower)")
        agree = (
            abs(ours["estimate"] - theirs["estimate"]) < 1e-8 and abs(ours["se"] / theirs["se"] - 1) < 1e-6
        )
        print(f"estimates and CR1 SEs agree: {agree}")
    print(f"peak memory under 4 GB: {ours['peak_gb'] < 4}")


if __name__ == "__main__":
    main()
