"""Small closed-form data-generating processes for tests, doctests and benchmarks.

:func:`evaltoolkit.simulate.study.simulate_study` simulates a whole study from a design; the functions here
make the few-column frames that a test of one estimator needs, with a known true effect (pyfixest's
``utils/dgps.py`` pattern). ``tests/conftest.py`` exposes them as fixtures.

Examples
--------
>>> df = did_panel(n_teams=4, size=5, seed=1)
>>> df.shape, sorted(df["arm"].unique())
((40, 5), ['control', 'ncs'])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["did_panel"]


def did_panel(
    n_teams: int = 40,
    size: int = 10,
    waves: Sequence[str] = ("baseline", "post"),
    effect: float = 0.4,
    seed: int = 0,
    team_sd: float = 0.5,
) -> pd.DataFrame:
    """Balanced panel for difference-in-differences: team-level assignment, person and team effects, wave shifts.

    Even-numbered teams are treated (``arm == "ncs"``), the rest are ``"control"``; ``y`` rises by 0.2 per
    wave for everyone and by ``effect`` in treated teams from the second wave on; each wave draws a new team
    shock (SD ``team_sd``) and person noise (SD 1). Columns ``pid, team, wave, y, arm``.
    """
    rng = np.random.default_rng(seed)
    n = n_teams * size
    team = np.repeat(np.arange(n_teams), size)
    treated = (np.arange(n_teams) % 2 == 0)[team]
    person = rng.normal(size=n) + 0.3 * treated
    rows = []
    for t, w in enumerate(waves):
        y = person + 0.2 * t + effect * treated * (t > 0) + team_sd * rng.normal(size=n_teams)[team]
        y = y + rng.normal(size=n)
        rows.append(pd.DataFrame({"pid": np.arange(n), "team": team, "wave": w, "y": y,
                                  "arm": np.where(treated, "ncs", "control")}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)
