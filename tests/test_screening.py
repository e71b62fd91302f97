"""Missing-value codes and out-of-range scores are never analysed as data (issue 12, item 4).

0.1: eleven -99s in a scored 1-5 outcome moved the headline DiD from about +0.28 to "+5.18 points", with no caution.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import evaltoolkit as et
from evaltoolkit.plan.run import run_plan
from evaltoolkit.plan.screening import screen_values


@pytest.fixture(scope="module")
def sim():
    return et.simulate_study("ncs_prepost_control", n=400, seed=12)


def _headline(res):
    est = res.estimates
    return est[(est["analysis"] == "did_primary") & (est["outcome"] == "attitudes")].iloc[0]["estimate"]


def test_missing_codes_in_an_outcome_are_set_to_missing_and_reported(sim):
    data = sim.data.copy()
    rows = data.index[(data["arm"] == "ncs") & (data["wave"] == "post")][:11]
    coded = data.copy()
    coded.loc[rows, "attitudes"] = -99
    blanked = data.copy()
    blanked.loc[rows, "attitudes"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = run_plan(et.Study(sim.design, coded))
        ref = run_plan(et.Study(sim.design, blanked))
    # the codes are treated exactly as blanks: the same estimate to the last digit
    assert _headline(got) == _headline(ref)
    note = next(w for w in got.warnings if "missing-value code" in w)
    assert (
        "column 'attitudes'" in note and "11 value(s)" in note and "(-99)" in note and "first at row" in note
    )


def test_values_outside_the_scale_range_are_caught_when_the_design_names_the_scale(sim):
    # an outcome produced by an instrument scale: the scale's range is known (a 1-5 item mean)
    from evaltoolkit.plan.screening import scale_ranges

    design = sim.design.model_copy(deep=True)
    design.instruments = ["ncs_social_mixing"]
    scale = next(iter(et.load_instrument("ncs_social_mixing").scales)).id
    design.outcomes[0].scale = scale
    lo, hi = scale_ranges(et.Study(design, sim.data))[design.outcomes[0].name]
    data = sim.data.copy()
    data.loc[data.index[:2], design.outcomes[0].name] = hi + 40
    screened, notes = screen_values(et.Study(design, data))
    assert screened.data[design.outcomes[0].name].iloc[:2].isna().all()
    assert len(notes) == 1 and f"outside the scale's range {lo:g} to {hi:g}" in notes[0]
    assert sim.data is not screened.data and not np.isnan(
        data[design.outcomes[0].name].iloc[0]
    )  # input untouched


def test_a_code_inside_the_observed_values_is_left_alone(sim):
    data = sim.data.copy()
    data["segregation"] = data["segregation"] * 200  # a 0-200 scale where 99 is an ordinary value
    data.loc[data.index[:5], "segregation"] = 99.0
    screened, notes = screen_values(et.Study(sim.design, data))
    assert not any("segregation" in n for n in notes)
    assert (screened.data["segregation"].iloc[:5] == 99.0).all()
