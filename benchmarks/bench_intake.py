"""Intake + validation + scoring of 100,000 respondents x 60 items.

A synthetic 60-item instrument (12 five-item scales on a 1-5 agree scale, two items per
scale reverse keyed, missing codes -99/-98) and a CSV export of 100,000 respondents in two
waves are written to a temporary folder (not timed). The export is messy the way real ones
are: about 2% missing codes, 1% blank answers, 0.5% answers given as labels ("Agree") and
0.05% out-of-range values, a few duplicate IDs and blank rows.

A fresh subprocess then times ``et.read_responses`` (read, recode, validate: every problem
listed with its row) followed by ``et.score`` (reverse keys, mean scores, minimum-items rule,
standardised scores), best of ``--repeat`` runs, and reports the peak resident memory of
that process (``ru_maxrss``; Python, pandas and the data included) and the tracemalloc
peak of one further run.

    .venv/bin/python benchmarks/bench_intake.py [--n 100000] [--repeat 2]

Targets (issue 4): under 5 s and under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

N_SCALES, PER_SCALE = 12, 5
LABELS = {
    1: "Strongly disagree",
    2: "Disagree",
    3: "Neither agree nor disagree",
    4: "Agree",
    5: "Strongly agree",
}

CHILD = r"""
import json, resource, sys, time, tracemalloc, warnings
import evaltoolkit as et
from evaltoolkit.intake.read import read_responses
from evaltoolkit.scoring.scales import score
data_path, inst_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
inst = et.load_instrument(inst_path)
warnings.simplefilter("ignore")

def run():
    data, report = read_responses(data_path, inst, id_col="pid", wave_col="wave")
    scored = score(data, inst, standardise=True, by="wave")
    return data, report, scored

times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    data, report, scored = run()
    times.append(time.perf_counter() - t0)
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
tracemalloc.start()
run()
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print(json.dumps({
    "best_s": min(times), "times": times, "peak_rss_mb": peak_rss, "tracemalloc_peak_mb": traced,
    "rows_in": report.n_rows_in, "rows_out": report.n_rows_out, "n_issues": len(report.issues),
    "counts": report.counts()[["problem", "n"]].values.tolist(),
    "n_below_min_items": sum(scored.n_below_min_items.values()),
}))
"""


def write_instrument(path: Path) -> None:
    items, scales = [], []
    for s in range(N_SCALES):
        codes = [f"s{s:02d}_q{i}" for i in range(PER_SCALE)]
        for i, c in enumerate(codes):
            items.append(
                {
                    "code": c,
                    "wording": f"Benchmark item {c}",
                    "response_scale": "agree5",
                    "reverse": i in (1, 3),
                    "source": "synthetic benchmark item",
                    "licence": "CC0",
                    "verified": "user",
                }
            )
        scales.append(
            {"id": f"scale_{s:02d}", "label": f"Scale {s}", "items": codes, "method": "mean", "min_items": 3}
        )
    doc = {
        "id": path.stem,
        "version": "1.0",
        "title": "Benchmark instrument (60 items)",
        "construct": "synthetic",
        "response_scales": {
            "agree5": {
                "type": "ordinal",
                "labels": LABELS,
                "missing": {-99: "Don't know", -98: "Prefer not to say"},
            }
        },
        "items": items,
        "scales": scales,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def write_export(path: Path, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, N_SCALES))
    cols: dict[str, object] = {
        "pid": [f"P{i % (n // 2):07d}" for i in range(n)],
        "wave": np.where(np.arange(n) < n // 2, "baseline", "post"),
        "arm": rng.choice(["ncs", "control"], n),
    }
    for s in range(N_SCALES):
        for i in range(PER_SCALE):
            x = np.clip(np.round(3 + latent[:, s] + rng.normal(size=n)), 1, 5)
            if i in (1, 3):
                x = 6 - x
            col = x.astype(int).astype(object)
            u = rng.random(n)
            col[u < 0.02] = -99
            col[(u >= 0.02) & (u < 0.03)] = ""
            lab = (u >= 0.03) & (u < 0.035)
            col[lab] = [LABELS[int(v)] for v in x[lab]]
            col[(u >= 0.035) & (u < 0.0355)] = 7
            cols[f"s{s:02d}_q{i}"] = col
    df = pd.DataFrame(cols)
    df.iloc[10:15, 0] = df.iloc[0, 0]  # a few duplicate IDs
    text = df.to_csv(index=False, lineterminator="\n")
    lines = text.split("\n")
    for k in (100, 5000, 50000):  # blank rows
        if k < len(lines):
            lines.insert(k, "")
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        inst = tmpd / "bench60.yaml"
        data = tmpd / "export.csv"
        write_instrument(inst)
        write_export(data, args.n)
        size_mb = data.stat().st_size / 2**20
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), str(inst), str(args.repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(out.stderr)
            raise SystemExit(out.returncode)
        res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"respondents x items      : {args.n:,} x {N_SCALES * PER_SCALE} (CSV {size_mb:.1f} MB)")
    print(f"rows in / out            : {res['rows_in']:,} / {res['rows_out']:,}")
    print(f"issues listed            : {res['n_issues']:,}  {res['counts']}")
    print(f"scores NA by min-items   : {res['n_below_min_items']:,}")
    ok_t = "OK" if res["best_s"] < 5 else "SLOWER THAN TARGET"
    ok_m = "OK" if res["peak_rss_mb"] < 2048 else "OVER TARGET"
    print(
        f"time (best of {args.repeat})        : {res['best_s']:.2f} s  (target < 5 s: {ok_t}); runs {[round(t, 2) for t in res['times']]}"
    )
    print(f"peak memory (RSS)        : {res['peak_rss_mb']:.0f} MB  (target < 2048 MB: {ok_m})")
    print(f"tracemalloc peak (1 run) : {res['tracemalloc_peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
