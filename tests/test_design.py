"""Design files: bundled designs load; bad designs give one clear error naming the field."""

from __future__ import annotations

import pytest
import yaml

import evaltoolkit as et
from evaltoolkit.errors import DesignError


def test_bundled_designs_load():
    table = et.list_designs()
    assert {"ncs_prepost_control"} <= set(table["name"])
    d = et.load_design("ncs_prepost_control")
    assert d.arms.treated == "ncs"
    assert d.arms.control == ["control"]
    assert d.baseline == "baseline"
    assert d.post_waves == ["post", "followup"]
    assert d.columns.clusters == ["site", "team"]


def _raw():
    d = et.load_design("ncs_prepost_control")
    return yaml.safe_load(d.source.read_text())


def _write(tmp_path, raw):
    p = tmp_path / "design.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda r: r["simulation"].update(n=-5), "simulation", "n must be at least 20"),
        (lambda r: r["simulation"]["retention"]["post"].update(ncs=1.4), "simulation", "between 0 and 1"),
        (lambda r: r["simulation"]["retention"]["post"].update(volunteers=0.5), "", "not one of the arms"),
        (lambda r: r["simulation"]["retention"]["followup"].update(ncs=0.9), "", "cannot rise"),
        (lambda r: r["analyses"][0].update(outcomes=["nonsense"]), "", "not in outcomes"),
        (lambda r: r["analyses"][0].update(cluster="school"), "", "columns.clusters"),
        (lambda r: r.update(baseline="wave0"), "", "not one of the waves"),
        (lambda r: r.update(colour="blue"), "colour", "unknown field"),
        (lambda r: r.pop("arms"), "arms", "required field is missing"),
    ],
)
def test_bad_design_gives_one_line_error(tmp_path, mutate, field, words):
    raw = _raw()
    mutate(raw)
    with pytest.raises(DesignError) as info:
        et.load_design(_write(tmp_path, raw))
    msg = str(info.value)
    assert "\n" not in msg
    assert words in msg
    assert "design.yaml" in msg
    if field:
        assert field in msg


def test_missing_and_unknown_designs(tmp_path):
    with pytest.raises(DesignError, match="no bundled design called 'nope'"):
        et.load_design("nope")
    with pytest.raises(DesignError, match="not found"):
        et.load_design(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(DesignError, match="not valid YAML at line"):
        et.load_design(bad)


def test_with_simulation_validates():
    d = et.load_design("ncs_prepost_control")
    assert d.with_simulation(n=100).simulation.n == 100
    with pytest.raises(DesignError, match="treated_share"):
        d.with_simulation(treated_share=1.5)
