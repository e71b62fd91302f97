"""The pre-registered statistical analysis plan (``evaltoolkit plan export``) and deviations at analysis (issue 16)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from evaltoolkit.cli.app import main
from evaltoolkit.design.schema import load_design
from evaltoolkit.errors import DesignError
from evaltoolkit.plan.deviations import canonical_json, deviations, load_registered, plan_hash
from evaltoolkit.plan.power import power
from evaltoolkit.report.plan_export import PLAN_SECTIONS, export_plan, sample_size

NCS = "ncs_prepost_control"


@pytest.fixture(scope="module")
def ncs_plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan")
    return export_plan(NCS, out)


def _sha(design_dict: dict) -> str:
    text = json.dumps(design_dict, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the four formats
def test_json_plan_is_parsed_and_its_hash_recomputed(ncs_plan):
    plan = json.loads(ncs_plan["json"].read_text(encoding="utf-8"))
    assert [s["heading"] for s in plan["sections"]] == list(PLAN_SECTIONS)
    assert "source" not in plan["design"]
    assert plan["design_sha256"] == _sha(plan["design"]) == plan_hash(load_design(NCS))
    assert plan_hash(load_design(plan["design"])) == plan["design_sha256"]  # the embedded design re-validates
    devs = next(s for s in plan["sections"] if s["heading"] == "Deviations from the registered plan")
    assert devs["paragraphs"] == ["None (this is the plan as registered)."]


def test_markdown_and_html_have_every_section_and_the_canonical_design(ncs_plan):
    md = ncs_plan["md"].read_text(encoding="utf-8")
    assert [h for h in re.findall(r"^## (.+)$", md, flags=re.M)] == list(PLAN_SECTIONS)
    embedded = re.search(r"```json\n(.+?)\n```", md, flags=re.S).group(1)
    assert embedded == canonical_json(load_design(NCS))
    assert hashlib.sha256(embedded.encode("utf-8")).hexdigest() in md
    html = ncs_plan["html"].read_text(encoding="utf-8")
    assert re.findall(r"<h2>(.+?)</h2>", html) == [h for h in PLAN_SECTIONS]
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    assert plan_hash(load_design(NCS)) in html
    assert "did_primary" not in re.sub(
        r'<pre id="design-json">.*?</pre>', "", html, flags=re.S
    )  # labels in words


def test_docx_plan_reads_back_with_python_docx(ncs_plan):
    import docx

    doc = docx.Document(str(ncs_plan["docx"]))
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert headings == list(PLAN_SECTIONS)
    assert doc.paragraphs[-1].text == canonical_json(load_design(NCS))
    outcomes = doc.tables[0]
    assert (
        outcomes.cell(0, 0).text == "Outcome"
        and outcomes.cell(1, 0).text == "Attitudes to other ethnic groups"
    )


def test_outcomes_section_names_instrument_items_scoring_reliability_and_time_points(ncs_plan):
    plan = json.loads(ncs_plan["json"].read_text(encoding="utf-8"))
    table = next(s for s in plan["sections"] if s["heading"] == "Outcomes")["table"]
    header, rows = table[0], {r[0]: dict(zip(table[0], r, strict=True)) for r in table[1:]}
    assert header == [
        "Outcome",
        "Family",
        "Instrument",
        "Items",
        "Scoring",
        "Reliability rule",
        "Time points",
    ]
    att = rows["Attitudes to other ethnic groups"]
    # instruments/ncs_social_mixing.yaml, scale ncs_attitudes: items ncs_dating_comfort and ncs_help_seeking, mean
    assert att["Family"] == "Primary" and "ncs_social_mixing" in att["Instrument"]
    assert att["Items"] == "2 items (ncs_dating_comfort, ncs_help_seeking)"
    assert att["Scoring"].startswith("mean of the items") and "at least 1 of 2" in att["Scoring"]
    assert "flagged below 0.7" in att["Reliability rule"]  # scoring.reliability's threshold
    assert att["Time points"] == "Before the programme, 3-5 months after, About a year after"
    dating = rows["Comfort with a relative dating across ethnic lines (% agree)"]
    assert dating["Items"] == "1 item (ncs_dating_comfort)" and "% answering >=4" in dating["Scoring"]


# --------------------------------------------------------------------------- sample size = power()
def test_sample_size_section_says_power_numbers_ncs(ncs_plan):
    # R 4.2 reference (noncentral t, two-sided alpha .05; ICC = site_sd^2 / (1 + site_sd^2), r = 1 - change_sd^2/2,
    # attrition = 1 - (.6 * .78 + .4 * .62), teams of 13.5):
    #   icc <- .25^2/(1+.25^2); r <- 1-.6^2/2; m <- 13.5; P <- .6; n <- 2400*(.6*.78+.4*.62)
    #   se <- sqrt((1+(m-1)*icc)*2*(1-r)/(P*(1-P)*n)); df <- n-2
    #   pw <- function(d){tc <- qt(.975,df); pt(tc,df,ncp=d/se,lower.tail=FALSE)+pt(-tc,df,ncp=d/se)}
    #   uniroot(function(d) pw(d)-.8, c(1e-6,1), tol=1e-12)$root  -> 0.10909792;  pw(0.10) -> 0.72840516
    s = sample_size(NCS)
    args = dict(n=2400, cluster_size=13.5, icc=0.0625 / 1.0625, pre_post_corr=0.82, analysis="did",
                treated_share=0.6, attrition=1 - (0.6 * 0.78 + 0.4 * 0.62))  # fmt: skip
    mdes, at = power(power=0.8, **args), power(effect=0.10, **args)
    assert s["mdes"].effect == pytest.approx(mdes.effect, rel=1e-12)
    assert s["power_at_effect"].power == pytest.approx(at.power, rel=1e-12)
    assert mdes.effect == pytest.approx(0.10909792, abs=1e-7)
    assert at.power == pytest.approx(0.72840516, abs=1e-7)
    plan = json.loads(ncs_plan["json"].read_text(encoding="utf-8"))
    assert plan["sample_size"]["mdes"]["effect"] == pytest.approx(mdes.effect, rel=1e-12)
    text = " ".join(
        next(x for x in plan["sections"] if x["heading"] == "Sample size and power")["paragraphs"]
    )
    for said in (f"{mdes.effect:.3f} SD", f"{at.power:.1%}", "ICC) 0.0588", "attrition by 3-5 months after 28.4%",
                 f"standard error {mdes.se:.4f}"):  # fmt: skip
        assert said in text


def test_sample_size_cluster_randomised_sites():
    # R 4.2 (Bloom 2006 variance, J - 2 df): icc <- .25^2/(1+.25^2); f <- .6^2; J <- 20; P <- .5
    #   m <- 60*(.5*.85+.5*.8); se <- sqrt((icc*f+(1-icc)*f/m)/(P*(1-P)*J)); df <- J-2
    #   -> se 0.07486173, MDES 0.22179077, power at 0.10 = 0.24420820 (pw and uniroot as above)
    s = sample_size("cluster_rct")
    assert s["assumptions"]["assignment"] == "cluster" and s["assumptions"]["n_clusters"] == 20
    assert s["mdes"].se == pytest.approx(0.07486173, abs=1e-8)
    assert s["mdes"].effect == pytest.approx(0.22179077, abs=1e-7)
    assert s["power_at_effect"].power == pytest.approx(0.24420820, abs=1e-7)


def test_too_few_sites_for_the_formula_is_said_not_raised(tmp_path):
    # best_of_us_adults plans 2 towns: power() needs at least 3 clusters (its own DesignError, said in words)
    md = export_plan("best_of_us_adults", tmp_path, formats=["md"])["md"].read_text(encoding="utf-8")
    assert "The power formula cannot be applied to the planned sample" in md and "got 2" in md


def test_inference_and_evidence_rating_follow_the_policy_and_summary_rules(tmp_path):
    # inference.policy: 178 teams with 107 programme teams >= FEW_TREATED_CLUSTERS (20) -> CR1;
    # 3 schools, 1 in the programme < VERY_FEW_TREATED (5), assigned by school -> randomisation inference ('ri')
    ncs = export_plan(NCS, tmp_path / "a", formats=["md"])["md"].read_text(encoding="utf-8")
    bou = export_plan("best_of_us_children", tmp_path / "b", formats=["md"])["md"].read_text(encoding="utf-8")
    rct = export_plan("cluster_rct", tmp_path / "c", formats=["md"])["md"].read_text(encoding="utf-8")
    assert "with about 178 teams (107 in the programme): CR1" in ncs
    assert "with about 3 schools (1 in the programme): ri" in bou
    assert "at least 20 programme and comparison clusters and at least 30 effective clusters" in ncs
    # plan.summary.evidence_strength: panel -> SMS level 3; cluster_rct -> level 5; < 10 clusters -> weakened
    assert "At best: Moderate (before-and-after with a comparison group; Maryland SMS level 3)." in ncs
    assert "At best: Strong (randomised; Maryland Scientific Methods Scale level 5)." in rct
    assert "At best: Moderate - weakened: only 3 schools." in bou


def test_unknown_format_is_refused_and_the_design_is_never_overwritten(tmp_path):
    from evaltoolkit.errors import UsageError

    with pytest.raises(UsageError, match="unknown plan format 'pdf'"):
        export_plan(NCS, tmp_path, formats=["pdf"])
    design = tmp_path / "plan.md"
    design.write_text(library_path_for(NCS).read_text(encoding="utf-8"), encoding="utf-8")
    before = design.read_bytes()
    with pytest.raises(UsageError, match="overwrite the input"):
        export_plan(design, tmp_path, formats=["md"])
    assert design.read_bytes() == before


def library_path_for(name: str):
    from importlib import resources

    return resources.files("evaltoolkit.designs_library") / f"{name}.yaml"


# --------------------------------------------------------------------------- deviations
def _raw() -> dict:
    return yaml.safe_load(library_path_for(NCS).read_text(encoding="utf-8"))


def _analysis(raw: dict, aid: str) -> dict:
    return next(a for a in raw["analyses"] if a["id"] == aid)


def _outcome(raw: dict, name: str) -> dict:
    return next(o for o in raw["outcomes"] if o["name"] == name)


def _drop_dating(raw):
    raw["outcomes"] = [o for o in raw["outcomes"] if o["name"] != "att_comfort_dating"]
    _analysis(raw, "did_primary")["outcomes"].remove("att_comfort_dating")
    raw["families"]["secondary"].remove("att_comfort_dating")


def _swap_primary(raw):
    _analysis(raw, "did_primary")["primary"] = False
    _analysis(raw, "ancova")["primary"] = True


def _move_family(raw):
    raw["families"]["primary"].remove("positive_contact")
    raw["families"]["secondary"].append("positive_contact")


EDITS = {
    "outcome added": (
        lambda r: r["outcomes"].append({"name": "trust", "scale": "ncs_trust", "family": "secondary"}),
        ["Outcome added: 'trust'."],
    ),
    "outcome removed": (
        _drop_dating,
        [
            "Outcome removed: 'att_comfort_dating'.",
            "Analysis 'did_primary': outcomes changed from 'attitudes', 'positive_contact', 'negative_contact', "
            "'cohesion', 'connectedness', 'att_comfort_dating' to 'attitudes', 'positive_contact', 'negative_contact', "
            "'cohesion', 'connectedness'.",
            "Family 'secondary': outcome removed: 'att_comfort_dating'.",
        ],
    ),
    "outcome scale changed": (
        lambda r: _outcome(r, "attitudes").update(scale="ncs_warmth"),
        ["Outcome 'attitudes': scale changed from 'ncs_attitudes' to 'ncs_warmth'."],
    ),
    "outcome family changed": (
        lambda r: _outcome(r, "cohesion").update(family="exploratory"),
        ["Outcome 'cohesion': family changed from 'secondary' to 'exploratory'."],
    ),
    "covariate added": (lambda r: r["covariates"].append("ethnicity"), ["Covariate added: 'ethnicity'."]),
    "covariate removed": (lambda r: r["covariates"].remove("age"), ["Covariate removed: 'age'."]),
    "inference method changed": (
        lambda r: _analysis(r, "did_primary").update(options={"vcov": "wild"}),
        ["Analysis 'did_primary': inference method (vcov) changed from 'auto' to 'wild'."],
    ),
    "family membership changed": (
        _move_family,
        [
            "Family 'primary': outcome removed: 'positive_contact'.",
            "Family 'secondary': outcome added: 'positive_contact'.",
        ],
    ),
    "family added": (
        lambda r: r["families"].update(exploratory=["cohesion"]),
        ["Multiple-comparison family added: 'exploratory'."],
    ),
    "multiplicity changed": (
        lambda r: r.update(multiplicity="bh"),
        ["Multiple-comparison method changed from 'holm' to 'bh'."],
    ),
    "analysis added": (
        lambda r: r["analyses"].append(
            {"id": "ancova_followup", "type": "ancova", "outcomes": ["attitudes"], "post": ["followup"]}
        ),
        ["Analysis added: 'ancova_followup'."],
    ),
    "analysis removed": (
        lambda r: r.update(analyses=[a for a in r["analyses"] if a["id"] != "bayes_attitudes"]),
        ["Analysis removed: 'bayes_attitudes'."],
    ),
    "analysis option changed": (
        lambda r: _analysis(r, "mediation_contact")["options"].update(n_boot=500),
        ["Analysis 'mediation_contact': option 'n_boot' changed from '2000' to '500'."],
    ),
    "primary changed": (
        _swap_primary,
        [
            "Analysis 'ancova' is now the primary analysis.",
            "Analysis 'did_primary' is no longer the primary analysis.",
        ],
    ),
    "analysis waves changed": (
        lambda r: _analysis(r, "did_primary").update(post=["post"]),
        ["Analysis 'did_primary': waves compared with baseline changed from 'post', 'followup' to 'post'."],
    ),
    "wave added": (
        lambda r: r["waves"].append({"name": "followup2", "months": 24}),
        ["Wave added: 'followup2'."],
    ),
    "cluster changed": (
        lambda r: _analysis(r, "ancova").update(cluster="site"),
        ["Analysis 'ancova': clustered by changed from 'team' to 'site'."],
    ),
    "moderator added": (lambda r: r["moderators"].append("female"), ["Moderator added: 'female'."]),
    "sensitivity check removed": (
        lambda r: r["sensitivity"]["checks"].remove("parallel_trends"),
        ["Sensitivity check removed: 'parallel_trends'."],
    ),
    "missing-data assumption changed": (
        lambda r: r["sensitivity"]["missing"].update(assumption="MNAR", delta=[-0.3, 0.3]),
        [
            "Sensitivity (missing): assumption changed from 'MAR' to 'MNAR'.",
            "Sensitivity (missing): delta changed from none to '-0.3', '0.3'.",
        ],
    ),
    "imputations changed": (
        lambda r: r["sensitivity"]["missing"].update(imputations=50),
        ["Sensitivity (missing): imputations changed from '20' to '50'."],
    ),
    "confounding benchmarks changed": (
        lambda r: r["sensitivity"]["confounding"].update(benchmarks=["female", "age"]),
        ["Sensitivity (confounding): benchmarks changed from 'female' to 'female', 'age'."],
    ),
    "sensitivity outcome changed": (
        lambda r: r["sensitivity"].update(outcome="positive_contact"),
        ["Sensitivity: outcome checked changed from 'attitudes' to 'positive_contact'."],
    ),
    # planning assumptions and wording are not the analysis: no deviation
    "simulation only": (lambda r: r["simulation"].update(n=3000), []),
    "title only": (lambda r: r.update(title="Renamed"), []),
}


@pytest.mark.parametrize("kind", list(EDITS))
def test_each_kind_of_change_is_one_plain_deviation(kind):
    edit, expected = EDITS[kind]
    raw = _raw()
    edit(raw)
    assert sorted(deviations(load_design(NCS), load_design(raw))) == sorted(expected)


def test_no_change_no_deviation_and_the_hash_ignores_the_file_path(tmp_path):
    copy = tmp_path / "same.yaml"
    copy.write_text(library_path_for(NCS).read_text(encoding="utf-8"), encoding="utf-8")
    assert deviations(load_design(NCS), load_design(copy)) == []
    assert plan_hash(load_design(copy)) == plan_hash(load_design(NCS))
    raw = _raw()
    raw["covariates"].append("ethnicity")
    assert plan_hash(load_design(raw)) != plan_hash(load_design(NCS))


def test_a_registered_plan_edited_after_export_is_refused(ncs_plan, tmp_path):
    assert plan_hash(load_registered(ncs_plan["json"])) == plan_hash(load_design(NCS))
    plan = json.loads(ncs_plan["json"].read_text(encoding="utf-8"))
    plan["design"]["covariates"].append("ethnicity")
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(plan), encoding="utf-8")
    with pytest.raises(DesignError, match="edited after registration"):
        load_registered(edited)
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DesignError, match="no 'design' in this JSON"):
        load_registered(tmp_path / "bad.json")


# --------------------------------------------------------------------------- the CLI
def test_cli_writes_the_plan(tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "export", NCS, "--format", "html,md,docx,json", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["plan.docx", "plan.html", "plan.json", "plan.md"]
    assert plan_hash(load_design(NCS)) in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, says",
    [
        (["plan", "export", NCS, "--format", "pdf"], "unknown plan format 'pdf'"),
        (["plan", "export", "no_such_design"], "no bundled design called 'no_such_design'"),
        (["plan", "export", NCS, "--colour"], "No such option: --colour"),
        (["plan", "export", NCS, "--out", "FILE"], "is a file; give a folder"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(args, says, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me", encoding="utf-8")
    args = [str(a_file) if x == "FILE" else x for x in args]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "rror" in line]
    assert len(err) == 1 and says in err[0]
    assert a_file.read_text(encoding="utf-8") == "keep me"


def test_cli_never_overwrites_the_design(tmp_path, capsys):
    design = tmp_path / "plan.md"  # a design file whose name is an output's
    design.write_text(library_path_for(NCS).read_text(encoding="utf-8"), encoding="utf-8")
    before = design.read_bytes()
    assert main(["plan", "export", str(design), "--format", "md", "--out", str(tmp_path)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert design.read_bytes() == before


# --------------------------------------------------------------------------- analyse --registered
def test_analyse_stores_the_plan_hash_and_lists_deviations(tmp_path, capsys):
    import evaltoolkit as et

    raw = _raw()
    raw["analyses"] = [_analysis(raw, "did_primary")]
    _analysis(raw, "did_primary").update(outcomes=["attitudes"], post=["post"])
    registered = tmp_path / "registered.yaml"
    registered.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert (
        main(["-q", "plan", "export", str(registered), "--format", "json", "--out", str(tmp_path / "reg")])
        == 0
    )
    used = dict(raw, covariates=["female"])
    used_path = tmp_path / "used.yaml"
    used_path.write_text(yaml.safe_dump(used), encoding="utf-8")
    sim = et.simulate_study(load_design(raw), n=300, seed=3)
    data = tmp_path / "data.csv"
    sim.data.to_csv(data, index=False)
    plan_json = tmp_path / "reg" / "plan.json"
    args = ["-q", "analyse", str(data), "--design", str(used_path), "--registered", str(plan_json)]
    assert main([*args, "--out", str(tmp_path / "r1")]) == 0
    html = (tmp_path / "r1" / "report.html").read_text(encoding="utf-8")
    ctx = json.loads((tmp_path / "r1" / "results.json").read_text(encoding="utf-8"))
    assert ctx["plan_sha256"] == plan_hash(load_design(used_path)) and ctx["plan_sha256"] in html
    assert "Deviations from the registered plan" in html and "Covariate removed: &#39;age&#39;." in html
    same = ["-q", "analyse", str(data), "--design", str(registered), "--registered", str(plan_json)]
    assert main([*same, "--out", str(tmp_path / "r2")]) == 0
    html2 = (tmp_path / "r2" / "report.html").read_text(encoding="utf-8")
    assert "None: the analysis followed the registered plan." in html2
    assert main(["-q", "analyse", str(data), "--design", str(registered), "--out", str(tmp_path / "r3")]) == 0
    assert "Deviations from the registered plan" not in (tmp_path / "r3" / "report.html").read_text("utf-8")
