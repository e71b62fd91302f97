"""Shared test machinery: the shared DGPs (the ``dgps`` fixture) and re-running the sampled tests on other
random streams.

Tests that assert something about a sampled, bootstrapped or simulated quantity either

* (a) assert with a margin that holds for any seed (truth within 4 posterior SDs / standard errors on an
  informative design, Monte Carlo margins from the number of replicates, ...) and take every seed, for
  the data and for the sampler or bootstrap, through the ``seed`` fixture below; or
* (b) pin the exact number that the locked versions (requirements/dev.lock) produce for one seed, say so
  in a comment, and carry the ``pinned_seed`` marker.

``pytest --reseed K`` shifts every seed taken through ``seed(base)`` by ``1000 * K`` and skips the
``pinned_seed`` tests, so ``pytest --reseed 3 tests/test_bayes.py`` runs the same assertions on other
random streams. See CONTRIBUTING.md, "Tests and random streams".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reseed",
        type=int,
        default=0,
        metavar="K",
        help="shift the seeds of margin-based sampled tests by 1000*K (0 = the default streams); "
        "tests marked pinned_seed are skipped when K is not 0",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pinned_seed: asserts a number that holds only for one seed with the locked versions "
        "(requirements/dev.lock); skipped under --reseed K != 0",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    k = config.getoption("--reseed")
    if not k:
        return
    skip = pytest.mark.skip(
        reason=f"pinned to one random stream of the locked versions; not meaningful with --reseed {k}"
    )
    for item in items:
        if item.get_closest_marker("pinned_seed") is not None:
            item.add_marker(skip)


def shifted(base: int, k: int) -> int:
    """The seed that ``seed(base)`` gives under ``--reseed k``."""
    return base + 1000 * k


@pytest.fixture(scope="session")
def reseed(request: pytest.FixtureRequest) -> int:
    """The ``--reseed`` value K (0 unless given)."""
    return int(request.config.getoption("--reseed"))


@pytest.fixture(scope="session")
def seed(reseed: int) -> Callable[[int], int]:
    """``seed(base)`` -> ``base + 1000 * K``: the seed a margin-based sampled test must use."""

    def _seed(base: int) -> int:
        return shifted(base, reseed)

    return _seed


@pytest.fixture(scope="session")
def dgps():
    """The shared data-generating processes (:mod:`evaltoolkit.simulate.dgps`): ``dgps.did_panel(...)``,
    ``dgps.nested_panel(...)``, ``dgps.simulate_panel(...)``, ``dgps.likert_item(...)``. Write a new test DGP
    there, not in a test file, so each is written once."""
    from evaltoolkit.simulate import dgps as module

    return module


@pytest.fixture(autouse=True, scope="session")
def _private_id_key(tmp_path_factory: pytest.TempPathFactory):
    """Pseudonymous IDs are keyed by a private file; tests use their own, never the user's
    (~/.config/evaltoolkit/id.key)."""
    import os

    key = tmp_path_factory.mktemp("idkey") / "id.key"
    old = os.environ.get("EVALTOOLKIT_ID_KEY")
    os.environ["EVALTOOLKIT_ID_KEY"] = str(key)
    yield key
    if old is None:
        os.environ.pop("EVALTOOLKIT_ID_KEY", None)
    else:
        os.environ["EVALTOOLKIT_ID_KEY"] = old
