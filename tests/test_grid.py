"""Design grids (:mod:`evaltoolkit.plan.grid`): Dask gives the serial numbers, the cache resumes, the cheapest
design is picked exactly, and ``evaltoolkit redesign`` prints the table and the sentence.

The cell functions here stand in for ``evaltoolkit.plan.diagnose.diagnose`` (not merged yet): a simulated
two-arm t-test (seeded only by the cell's seed) and fixed lookup tables whose answers are known by hand.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy import stats

import evaltoolkit.plan.grid as grid_module
from evaltoolkit.cli.app import main
from evaltoolkit.errors import DesignError
from evaltoolkit.plan.grid import cell_key, cell_seed, cells, formula_cell, redesign
from evaltoolkit.plots.style import describe

DESIGN = "ncs_prepost_control"


def ttest_cell(design, *, n, effect, sims, seed, **_):
    """Power of a two-sided t-test of two equal arms of n/2 people, by simulation (seeded by the cell)."""
    rng = np.random.default_rng(seed)
    m = int(n) // 2
    treated = rng.standard_normal((sims, m)) + effect
    control = rng.standard_normal((sims, m))
    p = stats.ttest_ind(treated, control, axis=1).pvalue
    pw = float(np.mean(p < 0.05))
    return {
        "power": pw,
        "power_mc_se": math.sqrt(max(pw * (1 - pw), 1e-12) / sims),
        "mean_p": float(p.mean()),
    }


CALLS: list[dict] = []
INTERRUPT_AFTER: list[int] = []


def counting_cell(design, *, n, effect, sims, seed, **rest):
    """``ttest_cell``, recording each call; raises KeyboardInterrupt once INTERRUPT_AFTER calls were made."""
    if INTERRUPT_AFTER and len(CALLS) >= INTERRUPT_AFTER[0]:
        raise KeyboardInterrupt
    CALLS.append({"n": n, "effect": effect, **rest})
    return ttest_cell(design, n=n, effect=effect, sims=sims, seed=seed)


# power of each (people, clusters) design at effect 0.2, chosen by hand so the pick is known exactly
POWER_AT = {(100, 10): 0.62, (200, 10): 0.79, (200, 20): 0.85, (400, 10): 0.83, (400, 20): 0.95}


def lookup_cell(design, *, n, effect, sims, seed, clusters, **_):
    return {"power": POWER_AT[(n, clusters)] * effect / 0.2}


def test_formula_cell_matches_r_power_t_test(tmp_path):
    # R 4.2 (both tails of the noncentral t, as statsmodels' TTestIndPower):
    #   power.t.test(n = c(64, 50, 100), delta = c(0.5, 0.4, 0.4), strict = TRUE)$power
    #   -> 0.8014595579 0.5081857353 0.8036475044
    r = redesign(DESIGN, {"n": [128, 100, 200], "effect": [0.5, 0.4]}, scheduler="serial", cache=tmp_path,
                 cell_function=formula_cell, progress=False, treated_share=0.5)  # fmt: skip
    assert r.value(n=128, effect=0.5) == pytest.approx(0.8014595579, abs=1e-6)
    assert r.value(n=100, effect=0.4) == pytest.approx(0.5081857353, abs=1e-6)
    assert r.value(n=200, effect=0.4) == pytest.approx(0.8036475044, abs=1e-6)
    tidy = r.table
    assert list(tidy.columns) == ["n", "effect", "diagnosand", "value"] and len(tidy) == 6
    # the cost: the design gives no cost_per_participant, so NCS's £1,800 a person
    assert r.cells.loc[0, "cost"] == 128 * 1800


def test_cells_and_seeds_do_not_depend_on_order():
    grid = cells({"effect": [0.1, 0.2], "n": [100, 200]})
    assert grid[0] == {"n": 100, "effect": 0.1} and len(grid) == 4
    assert cell_seed(3, {"n": 100, "effect": 0.1}) == cell_seed(3, {"effect": 0.1, "n": 100})
    assert len({cell_seed(3, c) for c in grid}) == 4
    assert cell_seed(3, grid[0]) != cell_seed(4, grid[0])
    k = cell_key("{}", grid[0], seed=3, sims=10)
    assert k != cell_key("{}", grid[0], seed=3, sims=11) != cell_key('{"a":1}', grid[0], seed=3, sims=10)


def test_simulated_power_is_within_monte_carlo_margin(tmp_path, seed):
    # R 4.2: power.t.test(n = 64, delta = 0.5, strict = TRUE)$power -> 0.8014596; 400 simulations have MC SE 0.020, so a
    # margin of 0.1 (5 SE) holds for any seed
    r = redesign(DESIGN, {"n": [128], "effect": [0.5]}, sims=400, seed=seed(11), scheduler="serial",
                 cache=False, cell_function=ttest_cell, progress=False)  # fmt: skip
    assert abs(r.value(n=128, effect=0.5) - 0.8014596) < 0.1


def test_two_worker_local_cluster_matches_serial(tmp_path, seed, monkeypatch):
    import cloudpickle
    from distributed import LocalCluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
    grid = {"n": [60, 120], "effect": [0.2, 0.5], "attrition": [0.0, 0.1]}
    kw = {"sims": 30, "seed": seed(5), "cell_function": ttest_cell, "progress": False}
    serial = redesign(DESIGN, grid, scheduler="serial", cache=tmp_path / "serial", **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = redesign(DESIGN, grid, scheduler=cluster.scheduler_address, cache=tmp_path / "dask", **kw)
        monkeypatch.setenv("EVALTOOLKIT_DASK_SCHEDULER", cluster.scheduler_address)
        from_env = redesign(DESIGN, grid, cache=False, **kw)
    assert remote.computed == from_env.computed == 8
    for other in (remote, from_env):
        assert other.table.equals(serial.table)  # identical, not merely close


def test_interrupted_grid_resumes_where_it_stopped(tmp_path):
    grid = {"n": [40, 80, 120], "effect": [0.2, 0.4]}
    kw = {"sims": 20, "seed": 9, "scheduler": "serial", "cell_function": counting_cell, "progress": False}
    CALLS.clear()
    INTERRUPT_AFTER[:] = [3]
    with pytest.raises(KeyboardInterrupt):
        redesign(DESIGN, grid, cache=tmp_path, **kw)
    assert len(CALLS) == 3 and len(list(tmp_path.glob("*.json"))) == 3
    INTERRUPT_AFTER.clear()
    CALLS.clear()
    resumed = redesign(DESIGN, grid, cache=tmp_path, **kw)
    assert (resumed.computed, resumed.from_cache) == (3, 3)
    assert {(c["n"], c["effect"]) for c in CALLS} == {(80, 0.4), (120, 0.2), (120, 0.4)}
    CALLS.clear()
    fresh = redesign(DESIGN, grid, cache=False, **kw)
    assert fresh.table.equals(resumed.table)  # cached cells give the numbers a fresh run gives
    CALLS.clear()
    again = redesign(DESIGN, grid, cache=tmp_path, **kw)
    assert CALLS == [] and again.from_cache == 6
    # another seed or design is another cell: nothing is taken from the cache
    assert redesign(DESIGN, grid, cache=tmp_path, **(kw | {"seed": 10})).computed == 6


def test_cheapest_design_with_known_costs(tmp_path):
    grid = {"n": [100, 200, 400], "clusters": [10], "effect": [0.2]}
    kw = {"scheduler": "serial", "cache": False, "cell_function": lookup_cell, "progress": False, "sims": 1}
    r = redesign(DESIGN, grid, cost_per_participant=100, cost_per_cluster=2000, **kw)
    # by hand: 100 people miss 80%; 200 x 10 clusters reach 0.79 (no); 400 x 10 reach 0.83 -> 400*100 + 10*2000
    best = r.cheapest(target_power=0.8)
    assert (best["n"], best["clusters"], best["cost"]) == (400, 10, 60_000)
    assert r.sentence(target_power=0.8) == (
        "The cheapest design in the grid reaching 80% power for an effect of 0.2 SD is 400 people in 10 clusters, "
        "costing £60,000 (power 83%)."
    )
    # at 75%: 200 people in 10 clusters (200*100 + 10*2000 = £40,000)
    assert r.cheapest(target_power=0.75)["cost"] == 40_000
    assert r.sentence(target_power=0.99).startswith("No design in the grid reaches 99% power")


def test_cheapest_trades_people_against_clusters():
    import pandas as pd

    from evaltoolkit.plan.grid import GridResult

    # the three designs reaching 80%: 200 x 20 (200*100 + 20*2000 = 60,000), 400 x 10 (40,000 + 20,000 = 60,000,
    # a tie broken by the higher power: 0.85 > 0.83) and 400 x 20 (80,000)
    rows = [{"n": n, "clusters": c, "power": p, "people": n, "clusters_paid": c, "cost": n * 100 + c * 2000}
            for (n, c), p in POWER_AT.items()]  # fmt: skip
    r = GridResult(pd.DataFrame(rows), ["n", "clusters"], ["power"], 100, 2000)
    best = r.cheapest()
    assert (best["n"], best["clusters"], best["cost"], best["power"]) == (200, 20, 60_000, 0.85)


def test_mdes_table_interpolates_linearly():
    # lookup_cell's power is linear in effect: 200 people in 10 clusters have 0.79 at 0.2, so 0.5925 at 0.15 and
    # 0.9875 at 0.25; 80% is crossed at 0.2 + (0.80 - 0.79) / (0.9875 - 0.79) * 0.05 = 0.202532 (exact line)
    r = redesign(DESIGN, {"n": [200], "clusters": [10], "effect": [0.15, 0.2, 0.25]}, scheduler="serial",
                 cache=False, cell_function=lookup_cell, progress=False, sims=1)  # fmt: skip
    m = r.mdes(0.8)
    assert m.loc[0, "mdes_grid"] == 0.25
    assert m.loc[0, "mdes_interpolated"] == pytest.approx(0.2 + 0.01 / 0.1975 * 0.05, abs=1e-12)
    fig = r.plot()
    assert "Power" in fig.axes[0].get_title() and "cheapest" in describe(fig)


def test_bad_grids_are_one_plain_line():
    for grid, needle in [
        ({"people": [100]}, "grid parameter 'people' is not one of"),
        ({"n": []}, "grid parameter 'n' has no values"),
        ({"n": ["many"]}, "grid values must be numbers"),
    ]:
        with pytest.raises(DesignError, match=needle) as exc:
            redesign(DESIGN, grid, scheduler="serial", cache=False, cell_function=formula_cell)
        assert "\n" not in str(exc.value)


def test_cli_prints_table_and_sentence(tmp_path, capsys, monkeypatch):
    # the power-by-formula cell, so the printed numbers can be checked against R (the default is diagnose)
    monkeypatch.setattr(grid_module, "_default_cell_function", lambda: grid_module.formula_cell)
    argv = ["redesign", "--design", DESIGN, "--n", "1000,1500,2000", "--effect", "0.1,0.2", "--sims", "200",
            "--scheduler", "serial", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "grid.csv")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    # formula: treated share 0.6 (the design's simulation block); R 4.2, pwr-free check of the cheapest cell:
    #   n <- 1000; se <- sqrt(1 / (0.6 * 0.4 * n)); df <- n - 2
    #   1 - pt(qt(.975, df), df, ncp = 0.2 / se) + pt(-qt(.975, df), df, ncp = 0.2 / se)   -> 0.8718
    assert "0.872" in out and "1000" in out
    assert "is 1,000 people, costing £1,800,000 (power 87%)" in out
    assert (tmp_path / "grid.csv").read_text().startswith("n,effect,diagnosand,value")
    assert main(["redesign", "--design", DESIGN, "--n", "1000,lots", "--effect", "0.2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--n: 'lots' is not a number" in err[0]
