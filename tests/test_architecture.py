"""The house rules that are not numbers (issue 11): registries in sync, sections carry data, the map is true."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

import evaltoolkit.plan.runners  # noqa: F401  (registers the analysis types)
from evaltoolkit.design.schema import Analysis
from evaltoolkit.plan.registry import REGISTRY, Callout, FigureBlock, Table

ROOT = Path(__file__).resolve().parents[1]


def _schema_types() -> set[str]:
    return set(typing.get_args(Analysis.model_fields["type"].annotation))


def test_analysis_types_agree_between_schema_registry_and_docs():
    # the design schema (design layer) cannot import the plan's registry (plan layer), so this test keeps them equal
    assert set(REGISTRY) == _schema_types()
    line = next(ln for ln in (ROOT / "docs/designs.md").read_text().splitlines() if "type: did" in ln)
    assert set(re.findall(r"[a-z_]+", line.split("#", 1)[1])) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_analysis_type_describes_its_methods(name):
    kind = REGISTRY[name]
    assert kind.name == name and callable(kind.run)
    assert len(kind.methods) > 80 and kind.methods.endswith(".")


def test_sections_carry_data_not_html():
    import evaltoolkit as et
    from evaltoolkit.plan.run import run_plan

    sim = et.simulate_study("ncs_prepost_control", n=300, seed=3)
    res = run_plan(et.Study(sim.design, sim.data))
    blocks = [b for s in res.sections for b in s.blocks]
    assert blocks and all(isinstance(b, Table | FigureBlock | Callout) for b in blocks)
    assert not any("<" in t for s in res.sections for t in s.text)
    assert any(t.kind == "estimates" for s in res.sections for t in s.tables())
