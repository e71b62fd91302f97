"""The report's summary answers the four questions a funder asks, and cautions are grouped and ranked."""

from __future__ import annotations

import re

import pytest

import evaltoolkit as et
from evaltoolkit.plan.summary import PALUCK_2019_D, group_cautions


@pytest.fixture(scope="module")
def results():
    sim = et.simulate_study("ncs_prepost_control", n=900, seed=4)
    keep = [a for a in sim.design.analyses if a.type in ("did", "moderation", "balance")]
    return et.run_plan(et.Study(sim.design.model_copy(update={"analyses": keep}), sim.data))


def test_the_four_questions_in_order_with_the_numbers_of_the_estimates(results):
    summary = dict(results.extras["summary"])
    assert list(summary)[:4] == ["Did it work?", "How sure are we?", "For whom?", "Does it last?"]
    est = results.estimates
    row = est[
        (est.analysis == "did_primary") & (est.outcome == "attitudes") & (est.term == "treat:post")
    ].iloc[0]
    worked = summary["Did it work?"]
    assert (
        f"{abs(row.estimate):.2f} points" in worked
        and f"{row.ci_lower:+.2f} to {row.ci_upper:+.2f}" in worked
    )
    assert "standard deviations" in worked
    assert "self-selection" in summary["How sure are we?"] and "moderate" in summary["How sure are we?"]
    mod = est[(est.analysis == "moderation_segregation") & est.term.str.contains(":")].iloc[0]
    assert "segregation" in summary["For whom?"] and f"{mod.estimate:+.2f}" in summary["For whom?"]
    last = est[
        (est.analysis == "did_primary") & (est.outcome == "attitudes") & (est.term == "treat:followup")
    ].iloc[0]
    assert (
        "about a year after" in summary["Does it last?"]
        and f"{last.estimate:+.2f}" in summary["Does it last?"]
    )
    assert str(PALUCK_2019_D) in summary["Beside other contact programmes"]
    # cost per 0.1 SD: 1800 * 0.1 / g, with g the SD-unit effect quoted in "Did it work?"
    g = float(re.search(r"about (-?\d\.\d\d) standard deviations", worked).group(1))
    cost = float(re.search(r"about £([\d,]+) per participant", summary["Cost"]).group(1).replace(",", ""))
    assert cost == pytest.approx(1800 * 0.1 / g, rel=0.04)  # g is quoted to 2 decimals


def test_the_report_shows_the_answers_and_grouped_cautions(results, tmp_path):
    html = (et.write_report(results, tmp_path)["report"]).read_text(encoding="utf-8")
    for q in ("Did it work?", "How sure are we?", "For whom?", "Does it last?"):
        assert f"<dt>{q}</dt>" in html
    assert "<h4>Data handling</h4>" in html
    assert (
        '<section id="glossary">' in html and "Hedges&#39; g" in html
    )  # technical words explained at the end


def test_cautions_are_grouped_threats_first():
    groups = group_cautions([
        "Attitudes (Bayesian): The chains disagree (largest R-hat 1.02 > 1.01)",
        "Only 3 schools: the programme is confounded with the cluster",
        "Cohesion: 12 of 300 rows were not analysed: 12 missing outcome",
        "Connectedness to the local community: 5 of 300 rows were not analysed",
    ])  # fmt: skip
    assert [g for g, _ in groups] == ["Threats to the design", "Data handling", "Model diagnostics"]
    assert len(groups[1][1]) == 2  # "connectedness" is data handling, not a diagnostic


def test_rows_left_out_are_one_table_that_adds_up_to_what_each_analysis_was_given(results, tmp_path):
    """Data handling: the rows each analysis left out, by reason, in one compact table; the estimators' own
    sentences about them are not repeated beside it, every other caution still is."""
    import io

    import pandas as pd

    from evaltoolkit.plan.summary import left_out_table, ranked_cautions

    tab = left_out_table(results)
    assert list(tab.columns) == ["Analysis", "What", "Left out", "Why"]
    did = results.extras["left_out"]
    for rec in did:  # each record adds up: the reasons' counts are the rows left out of those given
        if rec["lost"] and rec["analysis"] == "did_primary":
            row = tab[(tab["What"] == rec["label"]) & tab["Analysis"].str.startswith("Difference")].iloc[0]
            n = sum(rec["lost"].values())
            assert row["Left out"] == f"{n:,} of {rec['n_total']:,} rows" and n < rec["n_total"]
            assert all(reason in row["Why"] for reason in rec["lost"])
    assert not tab["Why"].str.contains(r"[a-z]+_[a-z]+").any()  # reasons in words
    groups, _ = ranked_cautions(results)
    shown = [w for _, items in groups for w in items]
    assert not [w for w in shown if "rows were not analysed" in w]  # in the table instead
    hidden = [w for w in results.warnings if w not in shown]
    assert hidden and all(
        re.search(r": ([a-z_]+: )?[\d,]+ (of [\d,]+ )?(rows|row\(s\)|person\(s\))", w) for w in hidden
    ), hidden
    html = et.write_report(results, tmp_path)["report"].read_text(encoding="utf-8")
    block = html[html.index('id="warnings"') : html.index("</div>", html.index('id="warnings"'))]
    shown_tab = pd.read_html(io.StringIO(block))[0]
    assert len(shown_tab) == len(tab) and "Rows not analysed, by reason" in block
