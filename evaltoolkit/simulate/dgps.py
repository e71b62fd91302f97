"""Small closed-form data-generating processes for tests, doctests and benchmarks.

* :func:`did_panel` - two-arm panel in teams for difference-in-differences;
* :func:`simulate_panel` - people in teams in sites with varying effects (the Bayesian model's own DGP);
* :func:`nested_panel` - the same structure drawn independently of :func:`simulate_panel`;
* :func:`simulate_likert` - one Likert item from a cumulative-logit model, in teams and waves;
* :func:`likert_item` - one post-only 5-point item from a proportional-odds model;
* :func:`instrument_answers` - random answers to every item of an instrument (with missing codes and blanks).

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

__all__ = [
    "did_panel",
    "instrument_answers",
    "likert_item",
    "nested_panel",
    "simulate_likert",
    "simulate_panel",
]


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


def simulate_panel(
    n_sites: int = 10,
    teams_per_site: int = 10,
    people_per_team: int = 50,
    effect: float = 0.3,
    trend: float = 0.1,
    sd_site: float = 0.3,
    sd_team: float = 0.3,
    sd_person: float = 0.7,
    sd_noise: float = 0.5,
    sd_effect_site: float = 0.1,
    sd_effect_team: float = 0.15,
    sd_trend_site: float = 0.0,
    sd_trend_team: float = 0.0,
    treated_share: float = 0.5,
    cluster_randomised: bool = False,
    seed: int | None = None,
) -> pd.DataFrame:
    """Simulate a two-wave panel of people in teams in sites with varying effects (long format).

    Treatment is assigned to people within teams (``cluster_randomised=False``) or to whole teams.
    The model is the long-form model in the module docstring: level intercepts (``sd_site``,
    ``sd_team``), person intercepts (``sd_person``), varying trends and varying effects.

    Returns
    -------
    DataFrame
        Columns ``pid, site, team, arm ("treated"/"control"), wave ("baseline"/"post"), y``.

    Examples
    --------
    >>> df = simulate_panel(n_sites=2, teams_per_site=2, people_per_team=5, seed=0)
    >>> df.shape
    (40, 6)
    """
    rng = np.random.default_rng(seed)
    n_teams = n_sites * teams_per_site
    n = n_teams * people_per_team
    team = np.repeat(np.arange(n_teams), people_per_team)
    site = team // teams_per_site
    if cluster_randomised:
        tt = np.zeros(n_teams)
        tt[rng.permutation(n_teams)[: round(treated_share * n_teams)]] = 1
        T = tt[team]
    else:
        T = np.zeros(n)
        for j in range(n_teams):
            idx = np.flatnonzero(team == j)
            T[rng.permutation(idx)[: round(treated_share * len(idx))]] = 1
    lvl = (
        rng.normal(0, sd_site, n_sites)[site]
        + rng.normal(0, sd_team, n_teams)[team]
        + rng.normal(0, sd_person, n)
    )
    tr = trend + rng.normal(0, sd_trend_site, n_sites)[site] + rng.normal(0, sd_trend_team, n_teams)[team]
    fx = effect + rng.normal(0, sd_effect_site, n_sites)[site] + rng.normal(0, sd_effect_team, n_teams)[team]
    y0 = lvl + rng.normal(0, sd_noise, n)
    y1 = lvl + tr + fx * T + rng.normal(0, sd_noise, n)
    base = pd.DataFrame(
        {
            "pid": np.arange(n),
            "site": [f"s{s:02d}" for s in site],
            "team": [f"t{t:03d}" for t in team],
            "arm": np.where(T > 0, "treated", "control"),
        }
    )
    a = base.assign(wave="baseline", y=y0)
    b = base.assign(wave="post", y=y1)
    return pd.concat([a, b], ignore_index=True)


def simulate_likert(
    n_teams: int = 10,
    people_per_team: int = 20,
    effect: float = 0.5,
    n_cat: int = 5,
    sd_team: float = 0.4,
    sd_person: float = 1.0,
    waves: bool = True,
    seed: int | None = None,
) -> pd.DataFrame:
    """Simulate answers to one Likert item from a cumulative-logit model (treatment within teams).

    Returns
    -------
    DataFrame
        ``pid, team, arm, wave, item`` (item coded 1..n_cat); with ``waves=False`` only the post wave.

    Examples
    --------
    >>> simulate_likert(n_teams=2, people_per_team=3, seed=0).shape
    (12, 5)
    """
    rng = np.random.default_rng(seed)
    n = n_teams * people_per_team
    team = np.repeat(np.arange(n_teams), people_per_team)
    T = (rng.random(n) < 0.5).astype(float)
    u = rng.normal(0, sd_team, n_teams)[team] + rng.normal(0, sd_person, n)
    cuts = np.linspace(-2.0, 1.5, n_cat - 1)
    rows = []
    for w, post in [("baseline", 0.0), ("post", 1.0)] if waves else [("post", 1.0)]:
        eta = u + 0.2 * post + effect * T * (post if waves else 1.0)
        lat = eta + rng.logistic(size=n)
        item = 1 + (lat[:, None] > cuts[None, :]).sum(axis=1)
        rows.append(
            pd.DataFrame(
                {
                    "pid": np.arange(n),
                    "team": [f"t{t}" for t in team],
                    "arm": np.where(T > 0, "treated", "control"),
                    "wave": w,
                    "item": item,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def nested_panel(
    n_sites=6,
    teams=10,
    per_team=40,
    effect=0.3,
    sd_fx_site=0.1,
    sd_fx_team=0.15,
    seed=11,
    cluster_randomised=False,
):
    """Long two-wave panel: site/team/person intercepts, varying effects, half treated in each team.

    Written independently of :func:`simulate_panel` (different draws), so the Bayesian model is also checked on
    data its own simulator did not make. Treated people are ``arm == "ncs"``.
    """
    rng = np.random.default_rng(seed)
    n_t = n_sites * teams
    team = np.repeat(np.arange(n_t), per_team)
    site = team // teams
    if cluster_randomised:
        tt = (rng.permutation(n_t) < n_t // 2).astype(float)
        T = tt[team]
    else:
        T = np.concatenate(
            [
                rng.permutation(np.r_[np.ones(per_team // 2), np.zeros(per_team - per_team // 2)])
                for _ in range(n_t)
            ]
        )
    level = rng.normal(0, 0.3, n_sites)[site] + rng.normal(0, 0.3, n_t)[team] + rng.normal(0, 0.7, team.size)
    fx = effect + rng.normal(0, sd_fx_site, n_sites)[site] + rng.normal(0, sd_fx_team, n_t)[team]
    y0 = level + rng.normal(0, 0.5, team.size)
    y1 = level + 0.1 + fx * T + rng.normal(0, 0.5, team.size)
    base = pd.DataFrame(
        {
            "pid": np.arange(team.size),
            "site": [f"s{s}" for s in site],
            "team": [f"t{t}" for t in team],
            "arm": np.where(T > 0, "ncs", "control"),
        }
    )
    return pd.concat([base.assign(wave="baseline", y=y0), base.assign(wave="post", y=y1)], ignore_index=True)


def likert_item(n=300, effect=0.8, seed=7):
    """One post-only 5-point item from a proportional-odds model (no clustering)."""
    rng = np.random.default_rng(seed)
    T = (rng.random(n) < 0.5).astype(float)
    lat = effect * T + rng.logistic(size=n)
    item = 1 + (lat[:, None] > np.array([-1.5, -0.5, 0.5, 1.5])[None, :]).sum(axis=1)
    return pd.DataFrame({"pid": np.arange(n), "arm": np.where(T > 0, "ncs", "control"), "item": item})


def instrument_answers(
    instrument, n: int = 100, seed: int = 0, id_col: str = "respondent_id"
) -> pd.DataFrame:
    """Random answers to every item of an instrument: valid codes, 10% missing codes, 5% blanks.

    Feed them to :func:`evaltoolkit.simulate.exports.simulate_kobo_export` for an export to read back.

    Examples
    --------
    >>> ans = instrument_answers("ncs_social_mixing", n=5, seed=1)
    >>> ans.shape[0], ans.columns[0]
    (5, 'respondent_id')
    """
    from evaltoolkit.instruments.library import Instrument, load_instrument

    inst = instrument if isinstance(instrument, Instrument) else load_instrument(instrument)
    rng = np.random.default_rng(seed)
    ans = pd.DataFrame({id_col: [f"r{i:03d}" for i in range(n)]})
    for it in inst.items:
        rs = inst.response_scales[it.response_scale]
        if rs.type == "numeric":
            v = rng.integers(int(rs.min_code), int(rs.max_code) + 1, n).astype(float)
        else:
            v = rng.choice(rs.valid_codes, n).astype(float)
        v[rng.random(n) < 0.1] = next(iter(rs.missing)) if rs.missing else np.nan
        v[rng.random(n) < 0.05] = np.nan
        ans[it.code] = v
    return ans
