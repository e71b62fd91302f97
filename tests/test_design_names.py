"""Designs are checked against themselves and the data before anything runs (issue 12, item 9): a misspelt name is
an error naming the field, with the closest match."""

from __future__ import annotations

import pytest

import evaltoolkit as et
from evaltoolkit.errors import DesignError, InstrumentError
from evaltoolkit.plan.run import run_plan


def _design_text(**replace: str) -> str:
    text = et.load_design("ncs_prepost_control").source.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


def test_a_misspelt_family_member_is_refused(tmp_path):
    path = tmp_path / "d.yaml"
    text = _design_text()
    fam = text.split("families:")[1].split("\n")[1]  # first family line, e.g. "  primary: [attitudes]"
    path.write_text(text.replace(fam, fam.replace("attitudes", "atitudes"), 1), encoding="utf-8")
    with pytest.raises(
        DesignError, match=r"family 'primary' names outcome 'atitudes'.*did you mean 'attitudes'\?"
    ):
        et.load_design(path)


def test_a_misspelt_column_or_mediator_names_the_closest_one():
    sim = et.simulate_study("ncs_prepost_control", n=150, seed=2)
    with pytest.raises(DesignError, match=r"outcome 'attitudes'.*did you mean 'attitude'\?"):
        et.Study(sim.design, sim.data.rename(columns={"attitudes": "attitude"}))
    design = sim.design.model_copy(deep=True)
    design.mediators = ["positve_contact"]
    with pytest.raises(DesignError, match=r"field 'mediators'.*did you mean 'positive_contact'\?"):
        et.Study(design, sim.data)


def test_a_misspelt_instrument_stops_the_plan_before_anything_runs():
    sim = et.simulate_study("ncs_prepost_control", n=150, seed=2)
    design = sim.design.model_copy(deep=True)
    design.instruments = ["ncs_social_mixng"]
    with pytest.raises(InstrumentError, match=r"field 'instruments'.*did you mean 'ncs_social_mixing'\?"):
        run_plan(et.Study(design, sim.data))
