"""The house rules that are not numbers (issue 11): registries in sync, sections carry data, the map is true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import evaltoolkit.plan.runners  # noqa: F401  (registers the analysis types)
from evaltoolkit.plan.registry import REGISTRY, Callout, FigureBlock, Table

ROOT = Path(__file__).resolve().parents[1]


def _schema_types() -> set[str]:
    from evaltoolkit.design.schema import ANALYSIS_TYPES

    return set(ANALYSIS_TYPES)


def test_analysis_types_agree_between_schema_registry_and_docs():
    # the design schema (design layer) cannot import the plan's registry (plan layer), so this test keeps them equal
    assert set(REGISTRY) == _schema_types()
    line = next(ln for ln in (ROOT / "docs/designs.md").read_text().splitlines() if "type: did" in ln)
    assert set(re.findall(r"[a-z_]+", line.split("#", 1)[1])) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_analysis_type_describes_its_methods(name):
    kind = REGISTRY[name]
    assert kind.name == name and callable(kind.run)
    assert len(kind.methods) > 80 and kind.methods.endswith(".")


def test_sections_carry_data_not_html():
    import evaltoolkit as et
    from evaltoolkit.plan.run import run_plan

    sim = et.simulate_study("ncs_prepost_control", n=300, seed=3)
    res = run_plan(et.Study(sim.design, sim.data))
    blocks = [b for s in res.sections for b in s.blocks]
    assert blocks and all(isinstance(b, Table | FigureBlock | Callout) for b in blocks)
    assert not any("<" in t for s in res.sections for t in s.text)
    assert any(t.kind == "estimates" for s in res.sections for t in s.tables())


# ---- the "add an estimator" recipe of ARCHITECTURE.md, end to end --------------------------------------------
# Everything a new analysis type needs is below: the estimator (its own module in real life), one @runner
# registration with its methods text, and this test. Nothing else in the package changes.
def difference_in_means(data, outcome: str, arm: str, *, treated: str, cluster: str | None = None, seed=None):
    """Toy estimator: the post-programme difference in means, with the toolkit's inference policy."""
    import numpy as np

    from evaltoolkit.inference.core import ols
    from evaltoolkit.inference.policy import InferenceSpec, decide, infer
    from evaltoolkit.results import EffectResult

    use = data[[outcome, arm, *([cluster] if cluster else [])]].dropna()
    t = (use[arm] == treated).to_numpy(dtype=float)
    fit = ols(
        use[outcome].to_numpy(dtype=float), np.column_stack([np.ones(len(use)), t]), names=["const", "treat"]
    )
    spec = InferenceSpec(
        cluster=use[cluster].to_numpy() if cluster else None, cluster_name=cluster, seed=seed
    )
    decision = decide(spec)
    inf = infer(fit, "treat", spec, decision)
    return EffectResult(
        analysis="", outcome=outcome, term="treat", estimate=inf.estimate, std_error=inf.std_error,
        ci_lower=inf.ci_lower, ci_upper=inf.ci_upper, p_value=inf.p_value, n_obs=len(use),
        n_clusters=inf.n_clusters, method=f"difference in means (OLS); {inf.method}", warnings=list(decision.notes),
        details={"dropped": {"missing values": len(data) - len(use)}},
    )  # fmt: skip


@pytest.fixture()
def toy_type():
    from evaltoolkit.design.schema import ANALYSIS_TYPES
    from evaltoolkit.plan.registry import Section, Table, runner

    @runner(
        "toy_means", methods="Toy: the difference in post-programme means, with the toolkit's inference rule."
    )
    def run_toy(study, analysis, out):
        d, c = study.design, study.design.columns
        post = study.data[study.data[c.wave] == d.post_waves[0]]
        res = difference_in_means(
            post, analysis.outcomes[0], c.arm, treated=d.arms.treated, cluster=c.clusters[-1]
        )
        res.analysis = analysis.id
        out.add(res)
        sec = Section(id=f"analysis-{analysis.id}", title="Toy: difference in means")
        sec.text.append(res.summary())
        sec.blocks.append(Table(res.table, caption="Toy estimate", kind="estimates"))
        out.sections.append(sec)

    yield "toy_means"
    REGISTRY.pop("toy_means")
    ANALYSIS_TYPES.remove("toy_means")


def test_a_new_estimator_is_one_module_one_registration(toy_type, tmp_path):
    import pandas as pd

    import evaltoolkit as et
    from evaltoolkit.plan.run import run_plan

    src = et.load_design("ncs_prepost_control").source.read_text(encoding="utf-8")
    plan = "analyses:\n  - id: toy\n    type: toy_means\n    outcomes: [attitudes]\n"
    path = tmp_path / "toy.yaml"
    path.write_text(
        src.split("analyses:")[0] + plan + "families:" + src.split("families:")[1], encoding="utf-8"
    )
    design = et.load_design(path)
    sim = et.simulate_study(et.load_design("ncs_prepost_control"), n=400, seed=4)
    res = run_plan(et.Study(design, sim.data))
    paths = et.write_report(res, tmp_path / "out")
    html = paths["report"].read_text(encoding="utf-8")
    assert "Toy: difference in means" in html and "Toy: the difference in post-programme means" in html
    est = pd.read_csv(paths["estimates"])
    row = est[est["analysis"] == "toy"].iloc[0]
    assert row["term"] == "treat" and "difference in means (OLS); CR1 by team" in row["method"]


def test_a_stand_alone_section_is_one_registered_function(tmp_path):
    # ARCHITECTURE.md recipe "add a report section": one decorated function in report/sections.py
    import evaltoolkit as et
    from evaltoolkit.plan.registry import Callout, Section
    from evaltoolkit.plan.run import run_plan
    from evaltoolkit.report.sections import SECTIONS, section

    @section("data-protection", position="after")
    def data_protection(results):
        sec = Section(id="data-protection", title="Data protection")
        sec.blocks.append(Callout("identifiers were removed before analysis.", lead="No names or contacts."))
        return sec

    try:
        sim = et.simulate_study("ncs_prepost_control", n=300, seed=6)
        html = et.write_report(run_plan(et.Study(sim.design, sim.data)), tmp_path)["report"].read_text(
            "utf-8"
        )
    finally:
        SECTIONS.pop("data-protection")
    assert '<a href="#data-protection">Data protection</a>' in html
    assert "<p><strong>No names or contacts.</strong> identifiers were removed before analysis.</p>" in html
    assert html.index('id="data-protection"') > html.index('id="analysis-did_primary"')
    assert html.index('id="flow"') < html.index('id="analysis-did_primary"')  # the built-in "before" section


def test_architecture_md_maps_every_module_and_only_real_ones():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^\| `(evaltoolkit(?:\.[a-z_]+)*)` \|", text, flags=re.M))
    pkg = ROOT / "evaltoolkit"
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in pkg.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules - mapped == set(), "add these modules to ARCHITECTURE.md's map"
    assert mapped - modules == set(), "ARCHITECTURE.md maps modules that do not exist"
    for test in re.findall(r"tests/test_architecture\.py::(test_[a-z_]+)", text):
        assert test in globals(), test


def test_no_function_is_longer_than_about_120_lines():
    # issue 11: long functions are split into named phases (validate -> build -> fit -> infer -> summarise).
    # Lines are counted without the docstring. The one exception is a numba kernel: one fused loop that numba
    # compiles into the hierarchical DiD's gradient; splitting it costs speed and gains no clarity.
    import ast

    limit, exempt = 125, {"_logp_grad_kernel"}
    long = []
    for path in (ROOT / "evaltoolkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in exempt:
                body = node.body
                doc = 0
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(getattr(body[0], "value", None), ast.Constant)
                ):
                    doc = body[0].end_lineno - body[0].lineno + 1
                n = node.end_lineno - node.lineno + 1 - doc
                if n > limit:
                    long.append(f"{path.relative_to(ROOT)}::{node.name} ({n} lines)")
    assert not long, "split into named phases: " + ", ".join(long)
