"""The whole workflow on survey exports: Kobo files per wave -> intake -> scoring -> study -> plan -> report.

A known programme effect is planted in the answers, and the toolkit's DiD must equal the difference in mean
changes computed by hand from the same answers (the textbook 2x2 DiD identity on a balanced panel).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import evaltoolkit as et
from evaltoolkit.plan.run import run_plan
from evaltoolkit.simulate.exports import simulate_kobo_export

N = 120  # 60 participants in 6 teams, 60 controls in 6 cohorts


@pytest.fixture(scope="module")
def exports(tmp_path_factory, seed):
    ins = et.load_instrument("ncs_social_mixing")
    rng = np.random.default_rng(seed(42))
    ids = [f"p{i:03d}" for i in range(N)]
    treated = np.arange(N) < N // 2
    level = rng.normal(0, 0.8, N)

    def answers(effect: float) -> pd.DataFrame:
        a = pd.DataFrame({"respondent_id": ids})
        for item in ins.items:
            rs = ins.response_scales[item.response_scale]
            if rs.type == "numeric":
                a[item.code] = np.clip(
                    np.round(50 + 10 * level + rng.normal(0, 8, N) + 10 * effect * treated), 0, 100
                )
            else:
                latent = 3 + level + rng.normal(0, 0.7, N) + effect * treated
                a[item.code] = np.clip(np.round(latent), rs.min_code, rs.max_code).astype(int)
        return a

    folder = tmp_path_factory.mktemp("exports")
    paths = {"baseline": folder / "baseline.csv", "post": folder / "post.csv"}
    simulate_kobo_export(ins, answers(0.0), paths["baseline"])
    simulate_kobo_export(ins, answers(1.0), paths["post"])
    register = pd.DataFrame(
        {
            "respondent_id": ids,
            "arm": np.where(treated, "ncs", "control"),
            "team": [f"{'T' if t else 'C'}{i // 10}" for i, t in zip(range(N), treated)],
        }
    )
    return ins, paths, register


def test_exports_to_report(exports, tmp_path):
    ins, paths, register = exports
    digests = {w: hashlib.sha256(p.read_bytes()).hexdigest() for w, p in paths.items()}
    intake = et.read_waves({w: str(p) for w, p in paths.items()}, ins)
    assert intake.report.n_rows_in == 2 * N and intake.report.n_rows_out == 2 * N
    scored = et.score(intake.data, ins).data
    data = scored.merge(register, on="respondent_id", how="left", validate="many_to_one")
    design = et.load_design(
        {
            "name": "kobo_panel",
            "title": "Two-wave Kobo panel",
            "columns": {"id": "respondent_id", "arm": "arm", "wave": "wave", "clusters": ["team"]},
            "arms": {"treated": "ncs", "control": ["control"]},
            "waves": [{"name": "baseline"}, {"name": "post"}],
            "instruments": ["ncs_social_mixing"],
            "outcomes": [
                {"name": "ncs_warmth", "scale": "ncs_warmth", "family": "primary"},
                {"name": "ncs_cohesion", "scale": "ncs_cohesion", "family": "primary"},
            ],
            "analyses": [{"id": "did", "type": "did", "cluster": "team", "primary": True}],
            "families": {"primary": ["ncs_warmth", "ncs_cohesion"]},
        }
    )
    res = run_plan(et.Study(design, data))
    # the DiD equals the difference in mean changes computed by hand (balanced panel, person FE)
    wide = data.pivot_table(
        index=["respondent_id", "arm"], columns="wave", values="ncs_cohesion"
    ).reset_index()
    change = (wide["post"] - wide["baseline"]).groupby(wide["arm"]).mean()
    row = res.estimates.query("analysis == 'did' and outcome == 'ncs_cohesion'").iloc[0]
    assert row["estimate"] == pytest.approx(change["ncs"] - change["control"], abs=1e-10)
    # the planted effect: 1.0 on the latent scale, before rounding and clipping; over seeds the estimate
    # is ~1.0 with SD ~0.2 (120 people), so it clears 0.2 by 4 SDs whatever the stream
    assert row["estimate"] > 0.2
    assert row["n_clusters"] == 12 and "wild cluster bootstrap" in row["method"]
    # measurement section uses the instrument's scale definitions (warmth: four thermometer items)
    assert "ncs_warmth" in set(res.extras["reliability"].scales["scale"])
    paths_out = et.write_report(res, tmp_path / "out")
    html = paths_out["report"].read_text()
    assert "p000" not in html  # no raw respondent ids
    assert {w: hashlib.sha256(p.read_bytes()).hexdigest() for w, p in paths.items()} == digests
