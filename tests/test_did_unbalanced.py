"""et.did on an unbalanced panel: the person-FE DiD keeps everyone seen at two or more waves, as pyfixest does.

Data: ``tests/data/did_unbalanced_3wave.csv`` (see tests/data/README.md): 200 people in 20 teams, three waves;
100 people seen at every wave, 20 without a baseline, 20 without the follow-up, 20 without the post wave, 40 seen
at one wave only (singletons). Reference numbers: pyfixest 0.60.0 (``/work/main/.venv-bench``) and R 4.2.2
``lm`` + sandwich 3.0.2 ``vcovCL``, with their code in comments. The suite never needs R or pyfixest.

pyfixest reference code (``d`` = the CSV; ``tp``, ``tf`` = treated x post, treated x followup)::

    import pandas as pd, pyfixest as pf
    d = pd.read_csv("tests/data/did_unbalanced_3wave.csv")
    t = (d.arm == "ncs").astype(float)
    d["tp"] = t * (d.wave == "post"); d["tf"] = t * (d.wave == "followup"); d["tpost"] = t * (d.wave != "baseline")
    f = pf.feols("y ~ tp + tf + C(wave) | pid", data=d, vcov={"CRV1": "pid"})   # fixef_rm="singleton" (default)
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError, EvalToolkitWarning
from evaltoolkit.estimators.did import PANEL_SAMPLES, SINGLETON_REASON, did

DATA = Path(__file__).parent / "data" / "did_unbalanced_3wave.csv"
KW = dict(treated="ncs", post=["post", "followup"], unit="pid", vcov="CR1")


@pytest.fixture(scope="module")
def unbalanced() -> pd.DataFrame:
    return pd.read_csv(DATA)


def _did(d: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvalToolkitWarning)  # the rows left out are checked below
        return did(d, "y", "arm", "wave", **{**KW, **kw})


def test_unbalanced_sample_equals_pyfixest(unbalanced):
    # pyfixest 0.60.0 (module docstring): 40 singletons dropped, N = 420
    #   feols("y ~ tp + tf + C(wave) | pid", vcov={"CRV1": "pid"}):  tp 0.31860307692307943 (0.2747830752499813),
    #                                                                 tf 0.398214615384618 (0.2941657362010233)
    #   same with vcov={"CRV1": "team"}:                             tp se 0.3972803100341618, tf se 0.4266730704066765
    #   feols("y ~ tpost + C(wave) | pid", ...): 0.35840884615384755 (CRV1 pid 0.24810241965100918,
    #                                                                 CRV1 team 0.3600563387285624)
    #   f._r2, f._r2_within (tp + tf, CRV1 pid): 0.6665078950943384, 0.04761726514742726
    by_pid = _did(unbalanced, sample="unbalanced")
    tab = by_pid.table.set_index("term")
    assert tab.loc["treat:post", "estimate"] == pytest.approx(0.31860307692307943, rel=1e-9)
    assert tab.loc["treat:post", "std_error"] == pytest.approx(0.2747830752499813, rel=1e-9)
    assert tab.loc["treat:followup", "estimate"] == pytest.approx(0.398214615384618, rel=1e-9)
    assert tab.loc["treat:followup", "std_error"] == pytest.approx(0.2941657362010233, rel=1e-9)
    assert by_pid.n_obs == 420 and by_pid.n_clusters == 160 and by_pid.details["df"] == 159
    fit = by_pid.glance().iloc[0]
    assert fit["r2"] == pytest.approx(0.6665078950943384, rel=1e-9)
    assert fit["r2_within"] == pytest.approx(0.04761726514742726, rel=1e-9)
    by_team = _did(unbalanced, cluster="team", sample="unbalanced").table.set_index("term")
    assert by_team.loc["treat:post", "estimate"] == pytest.approx(0.31860307692307943, rel=1e-9)
    assert by_team.loc["treat:post", "std_error"] == pytest.approx(0.3972803100341618, rel=1e-9)
    assert by_team.loc["treat:followup", "std_error"] == pytest.approx(0.4266730704066765, rel=1e-9)
    pooled = _did(unbalanced, pooled=True, sample="unbalanced")
    assert pooled.estimate == pytest.approx(0.35840884615384755, rel=1e-9)
    assert pooled.std_error == pytest.approx(0.24810241965100918, rel=1e-9)
    pooled_team = _did(unbalanced, pooled=True, cluster="team", sample="unbalanced")
    assert pooled_team.std_error == pytest.approx(0.3600563387285624, rel=1e-9)
    # the singletons are counted, as rows and as people
    assert by_pid.details["dropped"] == {SINGLETON_REASON: 40}
    assert by_pid.details["dropped_people"] == {SINGLETON_REASON: 40}
    assert by_pid.details["n_units"] == 160 and by_pid.details["sample"] == "unbalanced"


def test_unbalanced_sample_equals_r_lm_with_person_dummies(unbalanced):
    # R 4.2.2, sandwich 3.0.2 (singletons out, as pyfixest's fixef_rm = "singleton"):
    #   d <- read.csv("tests/data/did_unbalanced_3wave.csv")
    #   d$tp <- (d$arm == "ncs") * (d$wave == "post"); d$tf <- (d$arm == "ncs") * (d$wave == "followup")
    #   d <- d[ave(d$pid, d$pid, FUN = length) >= 2, ]
    #   m <- lm(y ~ tp + tf + factor(wave) + factor(pid), data = d)     # N = 420, 164 coefficients
    #   coef(m)["tp"] -> 0.31860307692307122
    #   sqrt(vcovCL(m, cluster = ~pid, type = "HC1")["tp", "tp"])  -> 0.34985980146401352
    #   sqrt(vcovCL(m, cluster = ~team, type = "HC1")["tp", "tp"]) -> 0.50582595113496742
    # vcovCL's HC1 counts all 164 coefficients in (N-1)/(N-K); pyfixest (k_fixef="nonnested") and evaltoolkit
    # count the person effects, nested in the clusters, as one: K = 5. So SE = SE_R * sqrt((N-164)/(N-5)).
    res = _did(unbalanced, sample="unbalanced")
    assert res.estimate == pytest.approx(0.31860307692307122, rel=1e-9)
    factor = math.sqrt((420 - 164) / (420 - 5))
    assert res.std_error == pytest.approx(0.34985980146401352 * factor, rel=1e-9)
    team = _did(unbalanced, cluster="team", sample="unbalanced")
    assert team.std_error == pytest.approx(0.50582595113496742 * factor, rel=1e-9)


def test_singletons_only_change_the_small_sample_factor(unbalanced):
    # pyfixest 0.60.0 with fixef_rm="none" keeps the 40 singletons (N = 460, G = 200 people):
    #   tp 0.31860307692307926 (CRV1 pid 0.27449516013503134; CRV1 team 0.3971135650578876).
    # A singleton's residual is zero, so keeping it changes only G/(G-1) (N-1)/(N-K) (K = 5).
    res = _did(unbalanced, sample="unbalanced")
    team = _did(unbalanced, cluster="team", sample="unbalanced")

    def cr1(G, N):
        return G / (G - 1) * (N - 1) / (N - 5)

    assert res.estimate == pytest.approx(0.31860307692307926, rel=1e-9)
    assert res.std_error * math.sqrt(cr1(200, 460) / cr1(160, 420)) == pytest.approx(
        0.27449516013503134, rel=1e-9
    )
    assert team.std_error * math.sqrt(cr1(20, 460) / cr1(20, 420)) == pytest.approx(
        0.3971135650578876, rel=1e-9
    )


def test_with_baseline_and_balanced_samples_equal_pyfixest_on_those_people(unbalanced):
    # pyfixest 0.60.0 on the people each sample keeps (n = rows per person, b = seen at baseline):
    #   n = d.groupby("pid")["wave"].transform("size")
    #   b = d.groupby("pid")["wave"].transform(lambda w: (w == "baseline").any())
    #   feols("y ~ tp + tf + C(wave) | pid", data=d[b & (n >= 2)], vcov={"CRV1": "pid"})
    #       -> N 380, tp 0.27861657342657625 (0.28057464152295786)
    #   feols("y ~ tp + tf + C(wave) | pid", data=d[n == 3], vcov={"CRV1": "pid"})
    #       -> N 300, tp 0.22770600000000604 (0.30702934974509044)
    base = _did(unbalanced, sample="with_baseline")
    assert base.estimate == pytest.approx(0.27861657342657625, rel=1e-9)
    assert base.std_error == pytest.approx(0.28057464152295786, rel=1e-9)
    assert base.n_obs == 380
    no_base = PANEL_SAMPLES["with_baseline"]
    assert base.details["dropped"] == {SINGLETON_REASON: 40, no_base: 40}
    assert base.details["dropped_people"] == {SINGLETON_REASON: 40, no_base: 20}
    bal = _did(unbalanced, sample="balanced")
    assert bal.estimate == pytest.approx(0.22770600000000604, rel=1e-9)
    assert bal.std_error == pytest.approx(0.30702934974509044, rel=1e-9)
    assert bal.n_obs == 300 and bal.details["sample"] == "balanced"
    incomplete = PANEL_SAMPLES["balanced"]
    assert bal.details["dropped"] == {SINGLETON_REASON: 40, incomplete: 120}
    assert bal.details["dropped_people"] == {SINGLETON_REASON: 40, incomplete: 60}
    # the rows left out are said in the warning, by reason
    with pytest.warns(EvalToolkitWarning, match=r"160 of 460 rows were not analysed: 40 unmatched waves \(person "
                      r"seen at one wave only\); 120 unmatched waves \(person not seen at every wave"):  # fmt: skip
        did(unbalanced, "y", "arm", "wave", **KW, sample="balanced")


def test_sample_bad_values_give_plain_errors(unbalanced):
    with pytest.raises(
        DataError, match="sample 'complete' is not one of unbalanced, with_baseline, balanced"
    ):
        _did(unbalanced, sample="complete")
    with pytest.raises(DataError, match="sample 'balanced' needs a panel: give the person id"):
        did(unbalanced, "y", "arm", "wave", treated="ncs", post=["post", "followup"], sample="balanced")


def test_a_balanced_panel_is_the_same_under_every_sample(dgps):
    d = dgps.did_panel(n_teams=10, size=10, waves=("baseline", "post", "followup"), seed=3)
    fits = [_did(d, cluster="team", sample=s) for s in PANEL_SAMPLES]
    for f in fits[1:]:
        np.testing.assert_allclose(f.table[["estimate", "std_error"]], fits[0].table[["estimate", "std_error"]],
                                   rtol=1e-12)  # fmt: skip
        assert f.details["dropped"] == {} and f.details["dropped_people"] == {}
