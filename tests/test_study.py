"""Binding data to a design: every mismatch is a clear error naming the field; exclusions are counted."""

from __future__ import annotations

import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.errors import DataError, DesignError
from evaltoolkit.plan.run import run_plan


@pytest.fixture(scope="module")
def sim():
    return et.simulate_study("ncs_prepost_control", n=400, seed=8)


def _err(design, data) -> str:
    with pytest.raises((DesignError, DataError)) as info:
        et.Study(design, data)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_column_and_scale(sim):
    msg = _err(sim.design, sim.data.drop(columns=["team"]))
    assert "'team'" in msg and "columns.clusters[1]" in msg
    msg = _err(sim.design, sim.data.drop(columns=["cohesion"]))
    assert (
        "outcome 'cohesion'" in msg
        and "field 'outcomes'" in msg
        and "score the export" in msg
        and "ncs_cohesion" in msg
    )
    msg = _err(sim.design, sim.data.drop(columns=["female"]))
    assert "'female'" in msg and "covariates" in msg


def test_arm_label_absent(sim):
    data = sim.data.replace({"arm": {"ncs": "NCS-2025"}})  # not the arm's name or label, in any case
    msg = _err(sim.design, data)
    assert "arm label 'ncs'" in msg and "field 'arms'" in msg and "NCS-2025" in msg


def test_arm_and_wave_written_as_their_labels_are_read_as_the_design_names(sim):
    """A Kobo "labels" export or Qualtrics choice text: the arm as its label ("NCS participants"), in any case."""
    labelled = sim.data.replace({"arm": {"ncs": "NCS participants", "control": "interested NON-participants"},
                                 "wave": {"post": "3-5 months after"}})  # fmt: skip
    study = et.Study(sim.design, labelled)
    assert set(study.data["arm"]) == {"ncs", "control"} and set(study.data["wave"]) == set(
        sim.design.wave_names
    )


def test_one_cluster(sim):
    data = sim.data.assign(site="S01")
    msg = _err(sim.design, data)
    assert "only one cluster" in msg and "columns.clusters" in msg


def test_wave_with_no_treated_people(sim):
    data = sim.data[~((sim.data["wave"] == "followup") & (sim.data["arm"] == "ncs"))]
    msg = _err(sim.design, data)
    assert "wave 'followup' has no treated" in msg and "field 'waves'" in msg


def test_missing_wave_and_duplicates(sim):
    msg = _err(sim.design, sim.data[sim.data["wave"] != "post"])
    assert "wave 'post' does not occur" in msg
    dup = pd.concat([sim.data, sim.data.iloc[[3]]])
    msg = _err(sim.design, dup)
    assert "share an id and wave" in msg and "column 'pid'" in msg


def test_rows_outside_the_design_are_counted_not_lost(sim):
    extra = sim.data.iloc[:7].assign(arm="pilot")
    study = et.Study(sim.design, pd.concat([sim.data, extra], ignore_index=True))
    assert len(study.data) == len(sim.data)
    # counted, and the value not quoted: arm cells can hold anything, a postcode or an e-mail among them
    assert [(e.n_rows, "pilot" in e.reason, "1 distinct value" in e.reason) for e in study.excluded] == [
        (7, False, True)
    ]
    res = run_plan(study)
    assert any("7 rows were set aside" in w for w in res.warnings)


def test_flow_counts(sim):
    flow = et.Study(sim.design, sim.data).flow()
    n = sim.data.groupby(["arm", "wave"])["pid"].nunique()
    for row in flow.itertuples():
        assert row.n == n[(row.arm, row.wave)]
    base = flow[flow["wave"] == "baseline"]
    assert (base["retention"] == 1).all()


def test_no_error_or_caution_quotes_a_respondent_id():
    # privacy: messages name the column and the row, never an identifier value
    import pytest

    from evaltoolkit.errors import DataError

    sim = et.simulate_study("ncs_prepost_control", n=120, seed=5)
    data = sim.data.copy()
    data["pid"] = "jo.bloggs@example.org-" + data["pid"].astype(str)
    dup = pd.concat([data, data.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError) as err:
        et.Study(sim.design, dup)
    assert "example.org" not in str(err.value) and "row" in str(err.value)
    mixed = data.copy()
    first = mixed["pid"].value_counts().index[0]  # someone who answered every wave
    arm0 = mixed.loc[mixed["pid"] == first, "arm"].iloc[0]
    mixed.loc[(mixed["pid"] == first) & (mixed["wave"] != "baseline"), "arm"] = (
        "control" if arm0 == "ncs" else "ncs"
    )
    with pytest.raises(DataError) as err:
        et.did(mixed, "attitudes", "arm", "wave", treated="ncs", pre="baseline", post="post", unit="pid")
    assert "example.org" not in str(err.value) and "row" in str(err.value)
    odd = data.copy()
    odd.loc[odd.index[:3], "arm"] = "LS6 1AB"
    study = et.Study(sim.design, odd)
    assert not any("LS6" in e.reason for e in study.excluded)


def test_scored_columns_named_by_their_scale_are_read_as_the_design_columns(sim):
    """`evaltoolkit score` names columns by the instrument scale (ncs_attitudes); the design's outcome
    `attitudes` says `scale: ncs_attitudes`, so the study reads that column - and says so."""
    renamed = sim.data.rename(columns={"attitudes": "ncs_attitudes", "cohesion": "ncs_cohesion"})
    study = et.Study(sim.design, renamed)
    assert study.read_as == {"attitudes": "ncs_attitudes", "cohesion": "ncs_cohesion"}
    pd.testing.assert_series_equal(
        study.data["attitudes"], et.Study(sim.design, sim.data).data["attitudes"], check_names=False
    )
    # a column already named as in the design wins over its scale's column
    both = sim.data.assign(ncs_attitudes=-1.0)
    assert "attitudes" not in et.Study(sim.design, both).read_as


def test_a_misspelt_scale_is_named_with_the_closest_match(sim):
    from evaltoolkit.plan.run import check_sources

    d = sim.design
    outcomes = [
        o.model_copy(update={"scale": "ncs_cohesoin"}) if o.name == "cohesion" else o for o in d.outcomes
    ]
    with pytest.raises(DesignError) as info:
        check_sources(d.model_copy(update={"outcomes": outcomes}))
    assert "'cohesion'" in str(info.value) and "did you mean 'ncs_cohesion'" in str(info.value)
    with pytest.raises(DesignError, match="not a mediator or moderator"):
        et.load_design({**d.model_dump(exclude={"source"}), "scales": {"attitude": "ncs_attitudes"}})
