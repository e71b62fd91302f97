"""The contract every estimator and every registered analysis type keeps (issue 11), scikit-learn style.

For each estimator: its table has the ``ESTIMATE_COLUMNS`` (the ``estimates.csv`` contract) in order; rows it
leaves out are counted by reason in ``result.dropped``; a missing column is a project error that names it; each
caution appears once. For each analysis type in the plan's registry: it runs in a full plan, its rows keep the
contract and its section carries data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
import evaltoolkit.plan.runners
from evaltoolkit.errors import EvalToolkitError
from evaltoolkit.plan.registry import REGISTRY, Callout, FigureBlock, Table
from evaltoolkit.results import ESTIMATE_COLUMNS
from evaltoolkit.simulate.dgps import did_panel, likert_item, nested_panel

N_BLANK = 3  # outcome cells blanked in each case; every estimator must count them


def _long(seed: int = 1) -> pd.DataFrame:
    return did_panel(n_teams=30, size=10, seed=seed)


def _wide(seed: int = 1) -> pd.DataFrame:
    df = _long(seed)
    base = df.loc[df["wave"] == "baseline", ["pid", "y"]].rename(columns={"y": "y0"})
    post = df[df["wave"] == "post"].merge(base, on="pid")
    return post.assign(x=(post["arm"] == "ncs").astype(float))


#: estimator -> (data maker, call, the outcome column to blank, a column the call needs)
CASES = {
    "did": (_long, lambda d: et.did(d, "y", "arm", "wave", treated="ncs", pre="baseline", post="post", unit="pid",
                                    cluster="team", n_boot=199, seed=1), "y", "team"),
    "ancova": (_wide, lambda d: et.ancova(d, "y", "arm", treated="ncs", baseline="y0", cluster="team"), "y", "y0"),
    "moderation": (_wide, lambda d: et.moderation(d, "y", "arm", "y0", treated="ncs", cluster="team"), "y", "y0"),
    "multilevel": (_wide, lambda d: et.multilevel(d, "y ~ x + y0", ["team"], term="x"), "y", "team"),
    "mediation": (_wide, lambda d: et.mediation(d, "x", ["y0"], ["y"], n_boot=199, seed=1), "y", "y0"),
    "causal_mediation": (_wide, lambda d: et.causal_mediation(d, "x", "y0", "y", n_sims=99, seed=1), "y", "y0"),
    "meta_analysis": (
        lambda seed=1: pd.DataFrame({"d": [0.1, 0.4, 0.3, 0.2, 0.5, 0.0], "se": [0.1, 0.2, 0.15, 0.1, 0.3, 0.2]}),
        lambda d: et.meta_analysis("d", "se", data=d, method="REML"), "d", "se",
    ),
}  # fmt: skip


def _blank(df: pd.DataFrame, column: str) -> pd.DataFrame:
    out = df.copy()
    out.loc[out.index[:N_BLANK], column] = np.nan
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_table_keeps_the_estimates_contract(name):
    make, call, _, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = call(make())
    assert list(res.table.columns)[: len(ESTIMATE_COLUMNS)] == list(ESTIMATE_COLUMNS)
    assert len(res.table) >= 1 and res.table["estimate"].notna().all()
    # the table is the source of the numbers: the headline is one of its rows, exactly
    head = res.table[res.table["estimate"] == res.estimate]
    assert (
        len(head) >= 1
        and (head["std_error"] == res.std_error).any()
        and (head["ci_lower"] == res.ci_lower).any()
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_left_out_rows_are_counted_by_reason(name):
    make, call, column, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = call(make())
        res = call(_blank(make(), column))
    assert clean.dropped == {}
    assert all(isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in res.dropped.items())
    assert sum(res.dropped.values()) >= N_BLANK  # a panel also loses the blanked people's other wave


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_missing_column_is_a_project_error_that_names_it(name):
    make, call, _, needed = CASES[name]
    with pytest.raises(EvalToolkitError, match=needed):
        call(make().drop(columns=[needed]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_caution_once(name):
    make, call, column, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = call(_blank(make(), column))
    assert len(res.warnings) == len(set(res.warnings))


def test_bayesian_estimators_keep_the_contract_too():
    # sampled: asserts only structure and counts, which no random stream can change
    from evaltoolkit.estimators.bayes.ordinal import bayes_ordinal

    panel = _blank(nested_panel(n_sites=3, teams=2, per_team=10, seed=2), "y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = et.bayes_did(panel, "y", "arm", "wave", "pid", treated="ncs", draws=100, chains=2, seed=1)
        item = likert_item(n=120, seed=3)
        item.loc[:1, "item"] = np.nan
        ordinal = bayes_ordinal(item, "item", "arm", treated="ncs", groups=(), draws=100, chains=2, seed=1)
    for r, lost in ((res, N_BLANK), (ordinal, 2)):
        assert list(r.table.columns)[: len(ESTIMATE_COLUMNS)] == list(ESTIMATE_COLUMNS)
        assert sum(r.dropped.values()) >= lost and len(r.warnings) == len(set(r.warnings))


# ---- every registered analysis type, in one full plan ----------------------------------------------------------
@pytest.fixture(scope="module")
def plan_results():
    from evaltoolkit.plan.run import run_plan

    sim = et.simulate_study("ncs_prepost_control", n=500, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_plan(et.Study(sim.design, sim.data))


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_analysis_type_runs_in_the_plan_and_keeps_the_contract(plan_results, kind):
    res = plan_results
    assert kind in res.extras["types_run"], f"{kind} did not run: {res.warnings}"
    ids = [a.id for a in res.design.analyses if a.type == kind] or [kind]
    for analysis_id in ids:
        sec = res.section(f"analysis-{analysis_id}")
        assert sec is not None and all(isinstance(b, Table | FigureBlock | Callout) for b in sec.blocks)
        rows = res.estimates[res.estimates["analysis"] == analysis_id]
        if kind not in (
            "measurement",
            "balance",
        ):  # descriptive: their tables are in the report, not estimates.csv
            assert len(rows) > 0 and rows["method"].notna().all()
    assert list(res.estimates.columns)[: len(ESTIMATE_COLUMNS)] == list(ESTIMATE_COLUMNS)
    assert len(res.warnings) == len(set(res.warnings))
    # one warnings channel: every caution reached the report through a result or a runner note, none only as a
    # stray Python warning that the plan had to catch
    assert res.extras.get("unrouted_warnings", []) == []


@pytest.mark.slow
@pytest.mark.parametrize("design", ["best_of_us_children", "best_of_us_adults", "cluster_rct"])
def test_every_bundled_design_routes_each_caution_through_its_results(design):
    from evaltoolkit.plan.run import run_plan

    sim = et.simulate_study(design, n=300, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_plan(et.Study(sim.design, sim.data))
    assert res.extras.get("unrouted_warnings", []) == []
    assert len(res.warnings) == len(set(res.warnings))
