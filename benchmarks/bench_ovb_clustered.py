"""Does the cluster-robust omitted-variable-bias interval hold its rate? A simulation with a planted confounder.

People in teams; a confounder ``z`` as strong as an observed covariate ``x`` (the same distribution and the same
coefficients in the treatment and the outcome equations, independent of ``x``: ``kd = ky = 1``) is left out of
the analysed model ``y ~ d + x``. Two kinds of selection:

* ``team``: the programme is assigned by team, on the team means of ``x`` and ``z`` (ICC 0.5 each);
* ``person``: people choose, on their own ``x`` and ``z`` (ICC 0.2) and a team-level propensity.

The outcome has team effects (SD 0.5) and the true effect is 0.3. For each replicate it prints how often the
interval covers the true effect:

* ``oracle``: adjusted for ``z``'s own sample partial R-squareds (Cinelli & Hazlett's identity makes the adjusted
  estimate equal the long model's), with the classical adjusted SE (sensemakr) or the cluster-robust one
  (classical adjusted SE times the CR1 / classical ratio, t with G - 1 df: ``ovb_sensitivity(vcov="CR1")``);
* ``bound``: adjusted for a confounder 1x as strong as ``x`` (the benchmark bound), the same two SEs;
* ``long CR1``: the infeasible model that includes ``z``, CR1 by team (what the adjustment tries to reproduce).

    .venv/bin/python benchmarks/bench_ovb_clustered.py [--reps 2000] [--teams 40] [--size 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from evaltoolkit.estimators.sensitivity.ovb import _rss, ovb_sensitivity
from evaltoolkit.inference.core import coef_test, ols

TRUE_EFFECT = 0.3


def confounded_teams(
    n_teams: int, size: int, selection: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One data set: ``y, d, x, z, team`` with ``z`` as strong as ``x`` (see the module docstring)."""
    team = np.repeat(np.arange(n_teams), size)
    icc = 0.5 if selection == "team" else 0.2

    def covariate() -> np.ndarray:
        return np.sqrt(icc) * rng.normal(size=n_teams)[team] + np.sqrt(1 - icc) * rng.normal(size=team.size)

    x, z = covariate(), covariate()
    if selection == "team":
        means = np.bincount(team, weights=x + z) / size
        d = (means + 0.5 * rng.normal(size=n_teams) > 0).astype(float)[team]
    else:
        d = (0.5 * (x + z) + 0.5 * rng.normal(size=n_teams)[team] + rng.normal(size=team.size) > 0).astype(
            float
        )
    y = (
        TRUE_EFFECT * d
        + 0.5 * x
        + 0.5 * z
        + 0.5 * rng.normal(size=n_teams)[team]
        + rng.normal(size=team.size)
    )
    return {"y": y, "d": d, "x": x, "z": z, "team": team}


def one_replicate(data: dict[str, np.ndarray], alpha: float = 0.05) -> dict[str, bool | None]:
    """Whether each interval covers the true effect in one data set (None: not counted in this data set)."""
    one = np.ones_like(data["y"])
    short = ols(data["y"], np.column_stack([one, data["d"], data["x"]]), names=["1", "d", "x"])
    long = ols(data["y"], np.column_stack([one, data["d"], data["x"], data["z"]]), names=["1", "d", "x", "z"])
    r2yz = coef_test(long, "z", vcov="classical")["statistic"] ** 2
    r2yz = r2yz / (r2yz + long.df_resid)
    Xd = np.column_stack([one, data["x"]])
    r2dz = 1 - _rss(data["d"], np.column_stack([Xd, data["z"]])) / _rss(data["d"], Xd)
    out: dict[str, bool | None] = {}
    for label, vcov in (("classical", "classical"), ("CR1 ratio", "CR1")):
        s = ovb_sensitivity(short, "d", benchmarks=["x"], vcov=vcov, cluster=data["team"], alpha=alpha)
        oracle = s.adjusted(r2dz, r2yz)
        out[f"oracle, {label}"] = bool(oracle["ci_lower"] <= TRUE_EFFECT <= oracle["ci_upper"])
        b = s.bounds.iloc[0]
        out[f"bound 1x x, {label}"] = bool(b.adjusted_lower <= TRUE_EFFECT <= b.adjusted_upper)
        within = bool(r2dz <= b.r2dz_x and r2yz <= b.r2yz_dx)
        if label == "classical":
            out["z within the 1x x bound"] = within
        # the bound's promise: when z is no stronger than the bound, the lower limit stays below the truth
        out[f"lower at bound <= truth | within, {label}"] = (
            bool(b.adjusted_lower <= TRUE_EFFECT) if within else None
        )
    lc = coef_test(long, "d", vcov="CR1", cluster=data["team"], alpha=alpha)
    out["long CR1 (infeasible)"] = bool(lc["ci_lower"] <= TRUE_EFFECT <= lc["ci_upper"])
    return out


def coverage(reps: int, n_teams: int, size: int, selection: str, seed: int) -> dict[str, tuple[float, int]]:
    """Share of the replicates in which each interval covers the true effect, and how many counted."""
    rng = np.random.default_rng(seed)
    hits: dict[str, list[int]] = {}
    for _ in range(reps):
        for k, v in one_replicate(confounded_teams(n_teams, size, selection, rng)).items():
            h = hits.setdefault(k, [0, 0])
            if v is not None:
                h[0] += v
                h[1] += 1
    return {k: (h / n if n else float("nan"), n) for k, (h, n) in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--teams", type=int, default=40)
    ap.add_argument("--size", type=int, default=15)
    ap.add_argument("--seed", type=int, default=20260115)
    args = ap.parse_args()
    mc = 4 * np.sqrt(0.95 * 0.05 / args.reps)
    print(f"{args.reps} replicates, {args.teams} teams of {args.size}, true effect {TRUE_EFFECT}, nominal 95%;"
          f" 4 Monte Carlo SEs at 95% = {mc:.3f}")  # fmt: skip
    for selection in ("team", "person"):
        t0 = time.perf_counter()
        cov = coverage(args.reps, args.teams, args.size, selection, args.seed)
        print(f"\nselection by {selection} ({time.perf_counter() - t0:.1f} s)")
        print(f"  {'interval':<44} {'rate':>6} {'of':>6}")
        for k, (v, n) in cov.items():
            print(f"  {k:<44} {v:>6.3f} {n:>6}")
    print(f"\n(t critical with G - 1 = {args.teams - 1} df: {stats.t.ppf(0.975, args.teams - 1):.3f})")


if __name__ == "__main__":
    main()
