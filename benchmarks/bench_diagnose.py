"""Benchmark: the batched DiD with CR1 (evaltoolkit.estimators.batched.did_cr1) against a statsmodels loop.

Design: 1,000 replicates of a two-wave clustered DiD, 2,000 people in 140 teams (whole teams in one arm, half the
teams in the programme), ICC 0.1, pre-post correlation 0.5, effect 0.2 SD, 15% lost at follow-up
(:func:`evaltoolkit.simulate.batched.clustered_did_arrays`, generated once, outside the timings).

* ours: ``did_cr1(y0, y1, treated, team)`` on the ``(R, n)`` arrays, all replicates at once (chunks of 256);
* peer: one ``sm.OLS(change, [1, treated]).fit(cov_type="cluster", cov_kwds={"groups": team})`` per replicate on the
  people with both waves (the usual loop).

Both are timed side by side in one run (best of ``--repeats``); the ratio peer / ours is printed (target >= 50),
then power, bias, RMSE and coverage from both (they agree within Monte Carlo error; here exactly, same data).
Estimates agree to rounding; the SEs differ only by the small-sample factor (statsmodels counts N people and
K = 2, ``did()`` and ``did_cr1`` N person-waves and K = 3), which is checked. Then the peak memory that
``did_cr1`` allocates (tracemalloc, inputs excluded) for 250 to 8,000 replicates: flat, as the chunks bound it.
A last line times ``et.diagnose`` on the NCS design (simulation included) for reference.

Run::

    .venv/bin/python benchmarks/bench_diagnose.py
    .venv/bin/python benchmarks/bench_diagnose.py --sims 200 --no-diagnose   # quick
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def _peer(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    import statsmodels.api as sm

    est, se = [], []
    X_all = sm.add_constant(a["treated"])
    for r in range(a["y1"].shape[0]):
        ok = np.isfinite(a["y1"][r]) & np.isfinite(a["y0"][r])
        fit = sm.OLS(a["y1"][r, ok] - a["y0"][r, ok], X_all[ok]).fit(
            cov_type="cluster", cov_kwds={"groups": a["cluster"][ok]}
        )
        est.append(fit.params[1])
        se.append(fit.bse[1])
    return np.array(est), np.array(se)


def _compare_diagnosands(b, est, se, df, effect: float) -> None:
    """Power, bias, RMSE and coverage from the batched results and from the loop's (SEs on the same factor)."""
    import pandas as pd
    from scipy import stats

    from evaltoolkit.plan.diagnose import diagnosands

    def frame(e, s):
        crit = stats.t.ppf(0.975, df)
        p = 2 * stats.t.sf(np.abs(e / s), df)
        return pd.DataFrame({"estimate": e, "ci_lower": e - crit * s, "ci_upper": e + crit * s, "p_value": p})

    ours = diagnosands(frame(b.estimate, b.std_error), effect).set_index("diagnosand")
    peer = diagnosands(frame(est, se), effect).set_index("diagnosand")
    print(f"{'diagnosand':<14}{'batched':>10}{'loop':>10}{'MC SE':>10}")
    for name in ("power", "bias", "rmse", "coverage"):
        print(f"{name:<14}{ours.loc[name, 'estimate']:>10.4f}{peer.loc[name, 'estimate']:>10.4f}"
              f"{ours.loc[name, 'mc_se']:>10.4f}")  # fmt: skip
        assert abs(ours.loc[name, "estimate"] - peer.loc[name, "estimate"]) <= ours.loc[name, "mc_se"]


def _best(f, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    from evaltoolkit.estimators.batched import did_cr1
    from evaltoolkit.simulate.batched import clustered_did_arrays

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-diagnose", action="store_true", help="skip timing et.diagnose on the NCS design")
    args = ap.parse_args()

    def data(r: int) -> dict[str, np.ndarray]:
        return clustered_did_arrays(r, 140, 14, n_people=2000, icc=0.1, effect=0.2, pre_post_corr=0.5,
                                    attrition=0.15, seed=1)  # fmt: skip

    a = data(args.sims)
    ours_t, b = _best(lambda: did_cr1(a["y0"], a["y1"], a["treated"], a["cluster"]), 3 * args.repeats)
    peer_t, (p_est, p_se) = _best(lambda: _peer(a), 1 if args.sims > 200 else args.repeats)
    n = b.n_people
    g = b.n_clusters
    # statsmodels: G/(G-1) (N-1)/(N-2) on people; did(): G/(G-1) (2N-1)/(2N-3) on person-waves
    adjust = np.sqrt(((2 * n - 1) / (2 * n - 3)) / ((n - 1) / (n - 2)))
    assert np.allclose(b.estimate, p_est, rtol=1e-10, atol=1e-12)
    assert np.allclose(b.std_error, p_se * adjust, rtol=1e-8)
    print(f"{args.sims:,} replicates, {a['y1'].shape[1]:,} people in {int(g[0])} teams, CR1 by team")
    print(f"{'method':<44}{'seconds':>10}{'per 1,000':>12}")
    print(f"{'ours: did_cr1, all replicates at once':<44}{ours_t:>10.3f}{ours_t / args.sims * 1000:>12.3f}")
    print(
        f"{'peer: statsmodels OLS cluster, one per fit':<44}{peer_t:>10.3f}{peer_t / args.sims * 1000:>12.3f}"
    )
    print(f"ratio peer / ours: {peer_t / ours_t:.0f}x (target >= 50)")
    print("estimates equal to 1e-10; SEs equal after the small-sample factor")
    _compare_diagnosands(b, p_est, p_se * adjust, b.df, effect=0.2)
    print()
    print(f"{'replicates':>10}{'peak MB (did_cr1, inputs excluded)':>38}{'inputs MB':>12}")
    for r in (250, 1000, 4000, 8000):
        big = data(r)
        tracemalloc.start()
        did_cr1(big["y0"], big["y1"], big["treated"], big["cluster"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        inputs = sum(v.nbytes for v in big.values()) / 1e6
        print(f"{r:>10,}{peak / 1e6:>38.1f}{inputs:>12.1f}")
        del big
    if not args.no_diagnose:
        import evaltoolkit as et

        et.diagnose("ncs_prepost_control", n=1500, sims=2)  # the truth table is computed once per design
        t0 = time.perf_counter()
        et.diagnose("ncs_prepost_control", n=1500, sims=args.sims)
        t = time.perf_counter() - t0
        print()
        print(
            f"et.diagnose(ncs_prepost_control, n=1500, sims={args.sims:,}): {t:.1f} s (simulation included)"
        )


if __name__ == "__main__":
    main()
