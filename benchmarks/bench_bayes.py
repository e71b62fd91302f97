"""Benchmark: Bayesian hierarchical DiD (evaltoolkit.bayes_did) against bambi + nutpie.

Data: 5,000 people x 2 waves (10,000 observations) in 100 teams within 10 sites, half of each team
treated; varying intercepts and varying treatment effects by site and team, person intercepts
(person-level heterogeneity), true effect 0.3.

* ours: ``bayes_did(..., groups=("site", "team"), draws=1000, chains=4)`` -- change scores
  (within-person differencing, exact for the effect in a two-wave panel), sufficient statistics per
  team x arm cell, non-centred varying trends and effects, nutpie NUTS on an analytic gradient
  (numba-compiled). It is fitted once per sampler seed (``--sampler-seeds``, default 1-5), each in a
  fresh process with an empty numba cache so compilation is included; the worst case over the seeds
  (slowest time, smallest ESS, largest R-hat, total divergences) is checked against the goal, and
  one more run with a warm numba cache is shown.
* peer: bambi with the nutpie sampler, ``y ~ treat + post + treat:post + (1 + treat:post | site) +
  (1 + treat:post | team) + (1 | person)``, 4 chains x 1,000 draws (bambi's default 1,000 tuning
  steps), compilation included.

Each fit runs in a fresh Python process, so imports and compilation count. Both report wall time,
bulk ESS and R-hat of the treatment effect and divergences; the ratio ours / peer is printed. The
REML estimate (equal to the difference in mean change because every team has 25 treated and 25
control people) is printed for comparison. ``--coverage N`` adds a repeated-simulation check of
95% interval coverage in two heterogeneity scenarios (100 replicates each by default).

Run::

    .venv/bin/python benchmarks/bench_bayes.py            # ours (cold + warm), peer once, coverage
    .venv/bin/python benchmarks/bench_bayes.py --no-peer  # skip the slow peer
    .venv/bin/python benchmarks/bench_bayes.py --peer-seconds 43 --coverage 0  # peer time as measured
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

OURS = textwrap.dedent(
    """
    import json, sys, time, warnings
    t0 = time.perf_counter()
    import pandas as pd
    from evaltoolkit.estimators.bayes.did import bayes_did
    df = pd.read_csv(sys.argv[1])
    t_data = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = bayes_did(df, "y", "arm", "wave", "pid", groups=("site", "team"), treated="treated",
                      draws=1000, chains=4, seed=int(sys.argv[2]))
    t1 = time.perf_counter()
    d = r.diagnostics
    print(json.dumps({"total": t1 - t0, "read_data": t_data - t0, "estimate": r.estimate, "sd": r.std_error,
                      "hdi": [r.ci_lower, r.ci_upper], "ess_bulk": d["effect_ess_bulk"],
                      "ess_tail": d["effect_ess_tail"], "rhat": d["effect_rhat"], "max_rhat": d["max_rhat"],
                      "divergences": d["divergences"], "warnings": r.warnings}))
    """
)

PEER = textwrap.dedent(
    """
    import json, sys, time, warnings
    t0 = time.perf_counter()
    import pandas as pd
    import bambi as bmb
    import arviz as az
    df = pd.read_csv(sys.argv[1])
    df["treat"] = (df["arm"] == "treated").astype(float)
    df["post"] = (df["wave"] == "post").astype(float)
    df["person"] = df["pid"].astype(str)
    df["team"] = df["site"] + "/" + df["team"]
    warnings.simplefilter("ignore")
    m = bmb.Model("y ~ treat + post + treat:post + (1 + treat:post | site) + (1 + treat:post | team)"
                  " + (1 | person)", df)
    idata = m.fit(draws=1000, tune=1000, chains=4, inference_method="nutpie", random_seed=1)
    t1 = time.perf_counter()
    x = idata.posterior["treat:post"]
    print(json.dumps({"total": t1 - t0, "estimate": float(x.mean()), "sd": float(x.std()),
                      "ess_bulk": float(az.ess(x, method="bulk").values), "rhat": float(az.rhat(x).values),
                      "divergences": int(idata.sample_stats["diverging"].values.sum())}))
    """
)


def run(
    code: str, data: Path, env: dict | None = None, timeout: float | None = None, seed: int | None = None
) -> dict:
    t = time.perf_counter()
    try:
        out = _run(code, data, env, timeout, seed)
    except subprocess.TimeoutExpired:
        nan = float("nan")
        return {
            "process_wall": timeout,
            "timed_out": True,
            "estimate": nan,
            "sd": nan,
            "ess_bulk": nan,
            "rhat": nan,
            "divergences": -1,
        }
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_wall"] = wall
    return res


def _run(code: str, data: Path, env: dict | None, timeout: float | None, seed: int | None = None):
    return subprocess.run(
        [PY, "-c", code, str(data)] + ([] if seed is None else [str(seed)]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


SCENARIOS = {
    "small heterogeneity (SDs 0.05-0.15, below the prior scale)": dict(
        sd_effect_site=0.1, sd_effect_team=0.15, sd_trend_site=0.05, sd_trend_team=0.1
    ),
    "moderate heterogeneity (SDs 0.2-0.3)": dict(
        sd_effect_site=0.3, sd_effect_team=0.3, sd_trend_site=0.2, sd_trend_team=0.2
    ),
}


def coverage(reps: int, seed: int = 0, **het) -> dict:
    """95% HDI coverage and bias over repeated simulated studies (5 sites x 4 teams x 20 people)."""
    import warnings

    import numpy as np

    from evaltoolkit.estimators.bayes.did import bayes_did
    from evaltoolkit.simulate.dgps import simulate_panel

    hits, bias, widths, bad = 0, [], [], 0
    for r in range(reps):
        df = simulate_panel(n_sites=5, teams_per_site=4, people_per_team=20, effect=0.3, seed=seed + r, **het)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bayes_did(df, "y", "arm", "wave", "pid", treated="treated", draws=500, chains=2, seed=r)
        hits += res.ci_lower <= 0.3 <= res.ci_upper
        bias.append(res.estimate - 0.3)
        widths.append(res.ci_upper - res.ci_lower)
        bad += not res.diagnostics["ok"]
    n = reps
    return {
        "reps": n,
        "coverage": hits / n,
        "mc_se": (0.95 * 0.05 / n) ** 0.5,
        "mean_bias": float(np.mean(bias)),
        "mean_width": float(np.mean(widths)),
        "runs_with_diagnostic_warnings": bad,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-peer", action="store_true", help="skip the bambi peer (slow)")
    ap.add_argument("--coverage", type=int, default=100, help="coverage replicates per scenario (0 to skip)")
    ap.add_argument("--seed", type=int, default=2024, help="data seed")
    ap.add_argument(
        "--sampler-seeds",
        default="1,2,3,4,5",
        help="comma-separated sampler seeds; each is fitted in a fresh process with an empty numba cache",
    )
    ap.add_argument("--peer-timeout", type=float, default=1800, help="stop the peer after this many seconds")
    ap.add_argument(
        "--peer-seconds",
        type=float,
        default=None,
        help="use this measured peer wall time instead of running the peer",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from evaltoolkit.simulate.dgps import simulate_panel

    df = simulate_panel(n_sites=10, teams_per_site=10, people_per_team=50, effect=0.3, seed=args.seed)
    w = df.pivot(index="pid", columns="wave", values="y")
    arm = df.drop_duplicates("pid").set_index("pid")["arm"]
    ch = w["post"] - w["baseline"]
    reml = ch[arm == "treated"].mean() - ch[arm == "control"].mean()
    sd_y = df.loc[df.wave == "baseline", "y"].std()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "panel.csv"
        df.to_csv(data, index=False)
        print(
            f"data: {len(df)} observations, {df.pid.nunique()} people, {df.team.nunique()} teams in "
            f"{df.site.nunique()} sites; REML (= difference in mean change, balanced) {reml:.4f}; SD {sd_y:.3f}"
        )
        seeds = [int(v) for v in args.sampler_seeds.split(",") if v.strip()]
        colds = []
        for i, sd in enumerate(seeds):
            cache = str(Path(tmp) / f"numba_cache_{i}")
            colds.append(run(OURS, data, env={"NUMBA_CACHE_DIR": cache}, seed=sd))
        warm = run(OURS, data, env={"NUMBA_CACHE_DIR": str(Path(tmp) / "numba_cache_0")}, seed=seeds[0])
        if args.peer_seconds is not None:
            nan = float("nan")
            peer = {
                "process_wall": args.peer_seconds,
                "estimate": nan,
                "sd": nan,
                "ess_bulk": nan,
                "rhat": nan,
                "divergences": -1,
                "given": True,
            }
        else:
            peer = None if args.no_peer else run(PEER, data, timeout=args.peer_timeout)
    rows = [(f"evaltoolkit cold, sampler seed {sd}", r) for sd, r in zip(seeds, colds)]
    rows.append((f"evaltoolkit warm numba cache, seed {seeds[0]}", warm))
    if peer:
        label = "bambi + nutpie (peer)" + (" [time given]" if peer.get("given") else "")
        label += " [TIMED OUT]" if peer.get("timed_out") else ""
        rows.append((label, peer))
    print(
        f"\n{'method':45s} {'wall s':>8s} {'estimate':>9s} {'post SD':>8s} {'ESS bulk':>9s} {'R-hat':>7s} {'div':>5s}"
    )
    for name, r in rows:
        print(
            f"{name:45s} {r['process_wall']:8.1f} {r['estimate']:9.4f} {r['sd']:8.4f} {r['ess_bulk']:9.0f} "
            f"{r['rhat']:7.4f} {r['divergences']:5d}"
        )
    worst_dev = max(abs(r["estimate"] - reml) for r in colds)
    print(
        f"\nlargest |posterior mean - REML| over seeds = {worst_dev:.4f} = {worst_dev / sd_y:.4f} SD (goal < 0.02 SD)"
    )
    min_ess = min(r["ess_bulk"] for r in colds)
    max_rhat = max(r["rhat"] for r in colds)
    n_div = sum(r["divergences"] for r in colds)
    runs_div = sum(r["divergences"] > 0 for r in colds)
    max_time = max(r["process_wall"] for r in colds)
    n_ok = sum(r["ess_bulk"] >= 400 and r["rhat"] <= 1.01 and r["divergences"] == 0 for r in colds)
    print(
        f"over {len(colds)} sampler seeds (cold): min bulk ESS {min_ess:.0f} (goal >= 400), max R-hat "
        f"{max_rhat:.4f} (goal <= 1.01), divergences {n_div} in {runs_div} run(s) (goal 0), wall time "
        f"{min(r['process_wall'] for r in colds):.1f}-{max_time:.1f} s; runs meeting every goal: {n_ok}/{len(colds)}; "
        f"largest R-hat over all parameters {max(r['max_rhat'] for r in colds):.4f}"
    )
    if peer:
        ratio = max_time / peer["process_wall"]
        print(
            f"time ratio ours (slowest cold run) / peer = {max_time:.1f} / {peer['process_wall']:.1f} = {ratio:.3f} "
            f"(goal <= 0.333); warm: {warm['process_wall'] / peer['process_wall']:.3f}"
        )
    if args.coverage:
        for label, het in SCENARIOS.items():
            t = time.perf_counter()
            cov = coverage(args.coverage, seed=args.seed, **het)
            print(
                f"\ncoverage of 95% HDIs, {cov['reps']} simulated studies (5 sites x 4 teams x 20 people), {label}: "
                f"{100 * cov['coverage']:.1f}% (Monte Carlo SE {100 * cov['mc_se']:.1f}), mean bias "
                f"{cov['mean_bias']:+.4f}, mean width {cov['mean_width']:.3f}, runs with diagnostic warnings "
                f"{cov['runs_with_diagnostic_warnings']}  [{time.perf_counter() - t:.0f} s]"
            )


if __name__ == "__main__":
    main()
