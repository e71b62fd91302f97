"""Benchmark: the Bayesian DiD (evaltoolkit.bayes_did) with 3-4 clusters - divergences, R-hat and coverage.

Best-of-Us-like designs: one arts school against two comparison schools (about 85 pupils each, three classes per
school), pre and post, whole schools in one arm. Each replicate simulates a new study and fits ``bayes_did`` at its
defaults (4 chains x 1,000 draws, ``groups=("school",)`` as the design plans it); the table gives, per scenario:

* fits with no divergence (goal: at least 9 in 10), the largest R-hat over all parameters (goal: <= 1.01),
* coverage of the 95% HDI of the effect and its Monte Carlo SE (goal: 92-98% over >= 100 replicates),
* mean posterior SD / sampling SD (the SD of the posterior means over replicates): 1 when the intervals are as wide
  as the data warrant, above 1 when they also carry uncertainty the data cannot remove (how much schools differ).

Scenarios:

``bou``        ``simulate_study("best_of_us_children")`` as bundled: schools differ at baseline (SD 0.2) but not
               in their change, classes differ a little in the effect (SD 0.05); the truth is the simulation's
               population effect on the treated (scale points).
``bou4``       the same with 4 schools, 2 of them treated.
``prior``      own generator, the schools' SDs of trend and effect drawn for each replicate from the default prior
               (HalfNormal(0.1141) in baseline SDs): the prior is true, so 95% coverage is what a correct model
               and sampler must give (a calibration check of the computation).
``typical``    own generator, fixed SDs of 0.10 (ICC 0.01) for the schools' trend and effect and 0.05 for classes:
               typical of the ICCs behind the prior (docs/bayes.md).
``previous``   the model before issue 14 (non-centred, HalfNormal(0.5) on the cluster SDs) on ``bou``: the
               problem as it was measured.

Run by hand (takes a few minutes; a process pool over replicates)::

    .venv/bin/python benchmarks/bench_bayes_few_clusters.py                 # 200 replicates per scenario
    .venv/bin/python benchmarks/bench_bayes_few_clusters.py --reps 20 --scenarios bou,previous
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np
import pandas as pd

SCENARIOS = ("bou", "bou4", "prior", "typical", "previous")
EFFECT = 0.25  # own generator: true effect in outcome units (baseline SD about 1.04)


def own_study(rng: np.random.Generator, sd_trend: float, sd_effect: float, sd_class: float) -> pd.DataFrame:
    """3 schools (school 0 treated), 3 classes of 26-30 pupils each; change = trend + deviations + effect + noise."""
    rows = []
    pid = 0
    a = rng.normal(0, sd_trend, 3)
    b = rng.normal(0, sd_effect, 3)
    for s in range(3):
        level = rng.normal(0, 0.3)
        for c in range(3):
            n = int(rng.integers(26, 31))
            treated = s == 0
            dev = rng.normal(0, sd_class) + (rng.normal(0, sd_class) if treated else 0.0)
            y0 = level + rng.normal(0, 1, n)
            y1 = y0 + a[s] + dev + treated * (EFFECT + b[s]) + rng.normal(0, 0.6, n)
            for i in range(n):
                base = {
                    "pid": pid,
                    "school": f"S{s}",
                    "team": f"S{s}-{c}",
                    "arm": "arts" if treated else "comp",
                }
                rows.append({**base, "wave": "before", "y": y0[i]})
                rows.append({**base, "wave": "after", "y": y1[i]})
                pid += 1
    return pd.DataFrame(rows)


def one_fit(args: tuple[str, int]) -> dict:
    scenario, rep = args
    import evaltoolkit as et
    from evaltoolkit.estimators.bayes.did import bayes_did
    from evaltoolkit.estimators.bayes.priors import get_prior

    rng = np.random.default_rng([2026, rep, SCENARIOS.index(scenario)])
    kw: dict = {}
    if scenario in ("bou", "bou4", "previous"):
        extra = {"sites": 4, "treated_sites": 2, "n": 340} if scenario == "bou4" else {}
        sim = et.simulate_study("best_of_us_children", seed=rep, **extra)
        data, outcome, unit, truth = sim.data, "connectedness", "child_id", sim.true_effect("connectedness")
        treated, pre, post = "arts_school", "before", "after"
        if scenario == "previous":
            kw = {"parameterisation": "noncentred", "hyper_scale": 0.5}
    else:
        scale = get_prior("cluster_sd").sigma * math.sqrt(
            1.09
        )  # the prior in outcome units (baseline SD ~1.04)
        if scenario == "prior":
            sd_t, sd_e = (abs(v) for v in rng.normal(0, scale, 2))
            sd_c = 0.05
        else:
            sd_t, sd_e, sd_c = 0.10, 0.10, 0.05
        data, outcome, unit, truth = own_study(rng, sd_t, sd_e, sd_c), "y", "pid", EFFECT
        treated, pre, post = "arts", "before", "after"
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = bayes_did(
            data, outcome, "arm", "wave", unit, groups=("school",), treated=treated, pre=pre, post=post,
            seed=rep, **kw,
        )  # fmt: skip
    d = r.diagnostics
    return {
        "scenario": scenario,
        "rep": rep,
        "seconds": time.perf_counter() - t0,
        "divergences": d["divergences"],
        "max_rhat": d["max_rhat"],
        "effect_ess": d.get("effect_ess_bulk", math.nan),
        "ok": d["ok"],
        "estimate": r.estimate,
        "sd": r.std_error,
        "covered": bool(r.ci_lower <= truth <= r.ci_upper),
        "truth": truth,
    }


def summarise(res: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for sc, g in res.groupby("scenario", sort=False):
        n = len(g)
        cov = g["covered"].mean()
        rows.append(
            {
                "scenario": sc,
                "fits": n,
                "fits with 0 divergences": f"{int((g['divergences'] == 0).sum())}/{n}",
                "divergences per fit (median, max)": f"{g['divergences'].median():.0f}, {g['divergences'].max()}",
                "max R-hat (worst fit)": f"{g['max_rhat'].max():.4f}",
                "fits with R-hat <= 1.01": f"{int((g['max_rhat'] <= 1.01).sum())}/{n}",
                "coverage 95% HDI (MC SE)": f"{100 * cov:.1f}% ({100 * math.sqrt(cov * (1 - cov) / n):.1f})",
                "posterior SD / sampling SD": f"{g['sd'].mean() / g['estimate'].std(ddof=1):.2f}",
                "bias": f"{(g['estimate'] - g['truth']).mean():+.3f}",
                "min effect ESS": f"{g['effect_ess'].min():.0f}",
                "s per fit (median)": f"{g['seconds'].median():.1f}",
            }
        )
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (no tabulate dependency)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def versions() -> str:
    import arviz
    import numba
    import nutpie

    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, nutpie {nutpie.__version__}, "
        f"numba {numba.__version__}, arviz {arviz.__version__}; {os.cpu_count()} cores"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="replicates per scenario (previous: at most 10)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from {SCENARIOS}")
    ap.add_argument(
        "--workers", type=int, default=2, help="processes (each fit samples its chains in one thread)"
    )
    ap.add_argument("--csv", default=None, help="also write every fit's row to this CSV")
    args = ap.parse_args()
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SCENARIOS]
    if bad:
        sys.exit(f"unknown scenario(s) {bad}; choose from {SCENARIOS}")
    jobs = [(s, r) for s in chosen for r in range(min(args.reps, 10) if s == "previous" else args.reps)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        res = pd.DataFrame(list(pool.map(one_fit, jobs, chunksize=4)))
    if args.csv:
        res.to_csv(args.csv, index=False)
    print(f"# bench_bayes_few_clusters, {date.today().isoformat()}: {versions()}")
    print(f"# {len(jobs)} fits in {time.perf_counter() - t0:.0f} s with {args.workers} processes\n")
    print(markdown(summarise(res)))


if __name__ == "__main__":
    main()
