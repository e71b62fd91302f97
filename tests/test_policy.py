"""The inference policy (issue 11: one inference layer that decides, applies and describes).

The numerical pieces (CR1, CR2 + Satterthwaite, the wild cluster bootstrap) are pinned to R clubSandwich,
sandwich and wildboottest in tests/test_inference.py; here: the rule's thresholds, that ``infer`` is exactly
those pieces put together, and that ``did`` runs the bootstrap once per term (0.1 ran it once per output column).
"""

from __future__ import annotations

import numpy as np
import pytest

import evaltoolkit.inference.policy as policy
from evaltoolkit.errors import EstimationError
from evaltoolkit.estimators.did import did
from evaltoolkit.inference.core import coef_test, ols, wild_cluster_bootstrap
from evaltoolkit.inference.policy import FEW_CLUSTERS, VERY_FEW_CLUSTERS, InferenceSpec, decide, infer
from evaltoolkit.simulate.dgps import did_panel


def _fit(n_clusters: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), 8)
    x = rng.normal(size=g.size)
    y = 0.5 * x + rng.normal(size=n_clusters)[g] + rng.normal(size=g.size)
    return ols(y, np.column_stack([np.ones(g.size), x]), names=["const", "x"]), g


@pytest.mark.parametrize(
    "g,expected,cautioned",
    [(FEW_CLUSTERS, "CR1", False), (FEW_CLUSTERS - 1, "wild", True), (VERY_FEW_CLUSTERS, "wild", True),
     (VERY_FEW_CLUSTERS - 1, "wild", True)],
)  # fmt: skip
def test_the_rule_at_its_thresholds(g, expected, cautioned):
    _, cl = _fit(g)
    d = decide(InferenceSpec(cluster=cl))
    assert (d.choice, d.n_clusters, bool(d.notes)) == (expected, g, cautioned)
    assert decide(InferenceSpec()).choice == "HC1"


def test_wild_is_cr2_estimate_and_se_with_bootstrap_p_and_interval():
    fit, cl = _fit(12)
    res = infer(fit, "x", InferenceSpec(cluster=cl, n_boot=999, seed=3, compare=True))
    cr2 = coef_test(fit, "x", vcov="CR2", cluster=cl)
    bs = wild_cluster_bootstrap(fit, "x", cl, n_boot=999, seed=3)
    assert (res.estimate, res.std_error, res.df) == (cr2["estimate"], cr2["std_error"], cr2["df"])
    assert (res.p_value, res.ci_lower, res.ci_upper) == (bs["p_value"], bs["ci_lower"], bs["ci_upper"])
    assert list(res.alternatives) == ["CR1", "CR2", "wild"] and res.vcov == "wild" and res.n_clusters == 12
    assert res.alternatives["CR1"] == coef_test(fit, "x", vcov="CR1", cluster=cl)


@pytest.mark.parametrize("vcov", ["classical", "HC1", "CR1", "CR2"])
def test_analytic_methods_are_coef_test(vcov):
    fit, cl = _fit(40)
    res = infer(fit, "x", InferenceSpec(vcov=vcov, cluster=cl))
    ref = coef_test(fit, "x", vcov=vcov, cluster=cl if vcov.startswith("CR") else None)
    assert res.row() == {**{k: ref[k] for k in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value", "df")},
                         "term": "x"}  # fmt: skip


def test_clustered_method_without_clusters_and_unknown_method_are_refused():
    fit, _ = _fit(12)
    with pytest.raises(EstimationError, match="needs clusters"):
        infer(fit, "x", InferenceSpec(vcov="CR2"))
    with pytest.raises(EstimationError, match="only one cluster in 'team'"):
        decide(InferenceSpec(cluster=np.zeros(10), cluster_name="team"))
    with pytest.raises(EstimationError, match="unknown vcov 'HC3'"):
        decide(InferenceSpec(vcov="HC3"))


def test_did_runs_the_bootstrap_once_per_term(monkeypatch):
    # two baseline waves and one follow-up: the headline term and two event-study terms -> 3 bootstraps (0.1: 13)
    calls = []
    real = policy.wild_cluster_bootstrap

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(policy, "wild_cluster_bootstrap", counting)
    df = did_panel(n_teams=12, waves=("b1", "b2", "post"), seed=4)
    res = did(df, "y", "arm", "wave", treated="ncs", pre=["b1", "b2"], post=["post"], unit="pid", cluster="team",
              n_boot=199, seed=1)  # fmt: skip
    assert len(calls) == 3
    assert res.event_study["term"].tolist() == ["treat:b1", "reference", "treat:post"]


def test_every_ols_estimator_describes_inference_the_same_way_and_refuses_one_cluster():
    # the policy writes the inference half of every method string (0.1 had three wordings) and raises the
    # same error for a single cluster (0.1: EstimationError in did and ancova, DesignError in moderation)
    from evaltoolkit.estimators.ancova import ancova
    from evaltoolkit.estimators.moderation import moderation

    df = did_panel(n_teams=40, seed=2)
    post = df[df["wave"] == "post"].merge(
        df.loc[df["wave"] == "baseline", ["pid", "y"]].rename(columns={"y": "y0"}), on="pid"
    )
    cr1 = "CR1 by team (G=40, t with 39 df)"
    assert (
        ancova(post, "y", "arm", treated="ncs", baseline="y0", cluster="team").method
        == f"ANCOVA (OLS); {cr1}"
    )
    mod = moderation(post, "y", "arm", "y0", treated="ncs", cluster="team")
    assert (
        mod.method == f"moderation, ANCOVA (OLS); {cr1}"
        or mod.method == f"moderation, post-only (OLS); {cr1}"
    )
    res = did(df, "y", "arm", "wave", treated="ncs", pre="baseline", post="post", unit="pid", cluster="team")
    assert res.method.endswith(cr1)
    one = post.assign(team=0)
    for call in (
        lambda: ancova(one, "y", "arm", treated="ncs", baseline="y0", cluster="team"),
        lambda: moderation(one, "y", "arm", "y0", treated="ncs", cluster="team"),
    ):
        with pytest.raises(EstimationError, match="only one cluster in 'team'"):
            call()
