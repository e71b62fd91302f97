"""Tests for evaltoolkit.estimators.bayes.priors: the contact-literature priors are derived from the bundled Paluck table.

Reference numbers: R 4.2.2, metafor 3.8-1, on the same table (PaluckMetaSOP contact_data):
    pal <- read.csv("paluck2019_contact.csv")
    r <- rma(yi = d, sei = se_d, data = pal, method = "DL")
    # b 0.392522, se 0.082452, tau2 0.137296; predict(r): pi.lb -0.3514754, pi.ub 1.136519
    rr <- rma(yi = d, sei = se_d, data = subset(pal, target == "race"), method = "DL")
    # b 0.25207691, se 0.07071511, tau2 0.02529278, k 11
    rp <- rma(yi = d, sei = se_d, data = subset(pal, pap == 1), method = "DL")
    # b 0.01581862, se 0.06662152, tau2 0, k 3
Paper (Paluck, Green & Green 2019, Behav. Public Policy 3(2)): overall ≈ 0.39; race/ethnicity ≈ 0.2;
pre-registered studies ≈ 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evaltoolkit.errors import DesignError
from evaltoolkit.estimators.bayes.priors import (
    CONTACT_META,
    PALUCK_CITATION,
    Prior,
    get_prior,
    icc_prior,
    icc_quantiles,
    list_priors,
    load_paluck2019,
    prior_table,
)
from evaltoolkit.estimators.meta import contact_meta_analysis


def test_bundled_table_is_the_paluck_data():
    df = load_paluck2019()
    assert df.shape == (27, 16)
    # first and last rows of PaluckMetaSOP::contact_data: Meshel 04 d = 0.119 (se 0.303); Yablon 12 0.579 (0.161)
    assert df.loc[0, ["name_short", "d", "se_d"]].tolist() == ["Meshel 04", 0.119, 0.303]
    assert df.loc[26, ["name_short", "d", "se_d"]].tolist() == ["Yabon 12", 0.579, 0.161]
    assert (df["target"] == "race").sum() == 11 and df["pap"].sum() == 3
    assert "Behavioural Public Policy" in PALUCK_CITATION


def test_contact_prior_is_the_dl_predictive_distribution():
    p = get_prior("contact")
    assert p.distribution == "normal"
    assert p.mu == pytest.approx(0.392522, abs=1e-6)
    assert p.sigma == pytest.approx(math.sqrt(0.082452**2 + 0.137296), abs=1e-6)
    # its central 95% interval is metafor's prediction interval (z-based): -0.3514754 to 1.136519
    assert p.interval(0.95) == pytest.approx((-0.3514754, 1.136519), abs=1e-6)
    m = get_prior("contact_mean")
    assert (m.mu, m.sigma) == pytest.approx((0.392522, 0.082452), abs=1e-6)
    assert "Paluck" in p.source and "27" in p.description


def test_contact_ethnicity_and_preregistered_subsets():
    p = get_prior("contact_ethnicity")
    assert p.mu == pytest.approx(0.25207691, abs=1e-7)
    assert p.sigma == pytest.approx(math.sqrt(0.07071511**2 + 0.02529278), abs=1e-7)
    pre = contact_meta_analysis("preregistered")
    assert (pre.estimate, pre.std_error, pre.tau2) == pytest.approx((0.01581862, 0.06662152, 0.0), abs=1e-7)
    assert pre.k == 3


def test_pinned_contact_numbers_are_the_meta_analysis_of_the_bundled_table():
    # priors.CONTACT_META pins what contact_meta_analysis computes (so priors need no meta-analysis at run time);
    # R: metafor::rma(d, sei = se_d, data = contact_data, method = "DL") gives 0.3925, SE 0.0825, tau^2 0.1373
    for subset, pinned in CONTACT_META.items():
        res = contact_meta_analysis(subset, method="DL")
        assert (res.estimate, res.std_error, res.tau2) == pytest.approx(pinned[:3], abs=1e-12, rel=0)
        assert res.k == pinned[3]


def test_sceptical_prior_calibration():
    # Spiegelhalter, Freedman & Parmar (1994): centred on 0 with P(effect > plausible effect) = 5%;
    # plausible effect = contact-literature mean 0.392522, so sigma = 0.392522 / qnorm(0.95) = 0.238636
    p = get_prior("sceptical")
    assert p.mu == 0 and p.sigma == pytest.approx(0.392522 / 1.6448536, abs=1e-6)
    assert p.prob_greater(0.392522) == pytest.approx(0.05, abs=1e-6)
    assert get_prior("skeptical") == p


def test_default_and_heterogeneity_priors():
    d = get_prior("default")
    assert (d.distribution, d.mu, d.sigma) == ("normal", 0.0, 1.0)
    assert d.interval(0.95) == pytest.approx((-1.959964, 1.959964), abs=1e-6)  # qnorm(0.975)
    h = get_prior("heterogeneity")
    assert h.distribution == "halfnormal" and h.sigma == 0.5
    # 95% quantile of HalfNormal(0.5) = 0.5 * qnorm(0.975) = 0.979982
    assert h.interval(0.95) == pytest.approx((0.0, 0.979982), abs=1e-6)
    w = get_prior("heterogeneity_wide")
    # 95% quantile of HalfCauchy(1) = tan(0.95 * pi / 2) = 12.7062
    assert w.interval(0.95)[1] == pytest.approx(math.tan(0.95 * math.pi / 2), rel=1e-9)
    assert h.pdf(np.array([0.0]))[0] == pytest.approx(2 * stats.norm.pdf(0, 0, 0.5))


def test_outcome_sd_rescales_location_and_scale():
    p = get_prior("contact", outcome_sd=12.5)
    base = get_prior("contact")
    assert (p.mu, p.sigma) == pytest.approx((base.mu * 12.5, base.sigma * 12.5))
    assert "outcome SD = 12.5" in p.description
    assert get_prior(base, outcome_sd=2.0).mu == pytest.approx(2 * base.mu)
    with pytest.raises(DesignError, match="outcome_sd must be a positive number"):
        get_prior("default", outcome_sd=0)


def test_prior_table_side_by_side():
    t = prior_table()
    assert t["name"].tolist() == ["default", "contact", "sceptical"]
    assert t["label"].tolist() == ["Normal(0, 1)", "Normal(0.393, 0.38)", "Normal(0, 0.239)"]
    # P(effect > 0) under the contact prior = pnorm(0.392522 / 0.379597) = 0.849443
    assert t.loc[1, "prob_positive"] == pytest.approx(0.849443, abs=1e-5)
    assert set(list_priors()) >= {"default", "contact", "sceptical", "heterogeneity"}


def test_bad_priors_raise_clear_errors():
    with pytest.raises(DesignError, match="unknown prior 'optimistic'"):
        get_prior("optimistic")
    with pytest.raises(DesignError, match=r"sigma .* must be a positive number"):
        Prior("x", "normal", 0.0, -1.0)
    with pytest.raises(DesignError, match="unknown distribution 'gamma'"):
        Prior("x", "gamma", 0.0, 1.0)
    with pytest.raises(DesignError, match="located at 0"):
        Prior("x", "halfnormal", 1.0, 1.0)


def test_to_pymc_builds_the_stated_distribution():
    pm = pytest.importorskip("pymc")
    with pm.Model():
        mu = get_prior("contact").to_pymc("mu")
        tau = get_prior("heterogeneity_wide").to_pymc("tau")
        h = get_prior("heterogeneity").to_pymc("h")

    def params(rv):  # (op name, constant parameters) without compiling a function
        return type(rv.owner.op).__name__, [float(i.data) for i in rv.owner.inputs[2:]]

    op, (loc, scale) = params(mu)
    assert op == "NormalRV" and (loc, scale) == pytest.approx((0.392522, 0.379597), abs=1e-6)
    assert params(tau) == ("HalfCauchyRV", [1.0])
    assert params(h) == ("HalfNormalRV", [0.0, 0.5])


def test_prior_sensitivity_conjugate_update():
    # Normal-normal conjugate update (Spiegelhalter, Abrams & Myles 2004, eq. 3.15), by hand for the
    # sceptical prior N(0, 0.238636) and an estimate 0.30 (SE 0.15):
    #   precision 1/0.238636^2 + 1/0.15^2 = 17.560 + 44.444 = 62.004 -> sd 0.126995
    #   mean (44.444 * 0.30) / 62.004 = 0.215038; P(>0) = pnorm(0.215038 / 0.126995) = 0.954798
    from evaltoolkit.estimators.bayes.priors import prior_sensitivity

    t = prior_sensitivity(0.30, 0.15, rope=0.1).set_index("prior")
    assert t.loc["sceptical", "post_mean"] == pytest.approx(0.215038, abs=1e-6)
    assert t.loc["sceptical", "post_sd"] == pytest.approx(0.126995, abs=1e-6)
    assert t.loc["sceptical", "prob_positive"] == pytest.approx(0.954798, abs=1e-6)
    assert t.loc["sceptical", "data_weight"] == pytest.approx(44.4444 / 62.0036, abs=1e-4)
    # with a tiny SE the data dominate whatever the prior
    t2 = prior_sensitivity(0.30, 0.001)
    assert t2["post_mean"].to_numpy() == pytest.approx([0.30] * 3, abs=1e-4)
    with pytest.raises(DesignError, match="must be normal"):
        prior_sensitivity(0.3, 0.1, priors=("heterogeneity",))
    with pytest.raises(DesignError, match="positive standard error"):
        prior_sensitivity(0.3, -0.1)


def test_prior_plot_draws_priors_and_conjugate_posteriors():
    from evaltoolkit.plots.priors import prior_plot

    fig = prior_plot(estimate=0.30, std_error=0.15)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    post = lines["posterior (sceptical)"]
    x, y = post.get_xdata(), post.get_ydata()
    # mode of the sceptical posterior = conjugate mean 0.215038 (see test above), to the grid spacing
    assert x[np.argmax(y)] == pytest.approx(0.215038, abs=(x[1] - x[0]))
    assert "contact: Normal(0.393, 0.38)" in lines


def test_icc_prior_gives_the_documented_sd_quantiles():
    # The default prior on cluster SDs (bayes_did's hyper_scale): HalfNormal with 95% of its mass below the SD
    # sqrt(0.05) that stands for an ICC of 0.05 on the standardised scale. Analytic reference, R 4.2:
    #   s <- sqrt(0.05) / qnorm(0.975)                      # 0.1140871973
    #   q <- s * qnorm((1 + c(.5, .9, .95, .99)) / 2)       # 0.07695064519 0.18765674022 0.22360679775 0.29386914589
    #   q^2                                                 # 0.005921401795 0.035215052151 0.05 0.086359074908
    p = get_prior("cluster_sd")
    assert p == icc_prior(0.05) and p.distribution == "halfnormal"
    assert p.sigma == pytest.approx(0.1140871973, abs=1e-10)
    t = icc_quantiles(p)
    assert t["prob"].tolist() == [0.5, 0.9, 0.95, 0.99]
    assert t["sd"].tolist() == pytest.approx(
        [0.07695064519, 0.18765674022, 0.22360679775, 0.29386914589], abs=1e-10
    )
    assert t["icc"].tolist() == pytest.approx(
        [0.005921401795, 0.035215052151, 0.05, 0.086359074908], abs=1e-11
    )
    # the half-normal quantile is the scale times the normal quantile at (1 + q) / 2, for any upper ICC and prob
    assert icc_prior(0.1, prob=0.9).interval(0.9)[1] == pytest.approx(math.sqrt(0.1), rel=1e-12)
    assert get_prior("icc") == p  # alias
    from evaltoolkit.estimators.bayes.did import HYPER_SCALE

    assert HYPER_SCALE == pytest.approx(p.sigma, rel=1e-12)  # the Bayesian DiD's default uses it
    assert "Parker" in p.source and "Fone" in p.source and "Hedges" in p.source
    with pytest.raises(DesignError, match="icc_upper"):
        icc_prior(1.5)
    with pytest.raises(DesignError, match="ICC quantiles are for priors on an SD"):
        icc_quantiles("default")
