"""Pool several studies' results (sites, years, programmes) by random-effects meta-analysis.

Each input is a results folder written by ``evaltoolkit analyse`` (or ``demo``): its ``estimates.csv``
holds one row per analysis, outcome and term. Estimates present in at least two folders are pooled
with :func:`evaltoolkit.meta_analysis` (REML, Knapp-Hartung intervals when fewer than 10 studies),
and :func:`evaltoolkit.report.pooled.pooled_context` renders them with forest plots.

Examples
--------
>>> import pandas as pd
>>> a = pd.DataFrame({"analysis": ["did"], "outcome": ["attitudes"], "term": ["treat:post"],
...                   "estimate": [0.2], "std_error": [0.05]})
>>> b = a.assign(estimate=0.1, std_error=0.04)
>>> pooled, _ = pool_estimates({"2023": a, "2024": b})
>>> round(float(pooled["estimate"].iloc[0]), 3)   # DerSimonian-Laird with two studies: tau^2 = 0.0030
0.145
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from evaltoolkit import _compat
from evaltoolkit.errors import DataError
from evaltoolkit.results import ESTIMATE_COLUMNS

__all__ = ["KEY", "pool_estimates", "read_results"]
__getattr__ = _compat.moved_names(__name__)  # pooled_context moved to evaltoolkit.report.pooled

KEY = ["analysis", "outcome", "term"]


def read_results(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """``estimates.csv`` and (if present) ``results.json`` of a results folder."""
    path = Path(folder)
    est_path = path / "estimates.csv" if path.is_dir() else path
    if not est_path.exists():
        raise DataError(
            "no estimates.csv here; give a folder written by 'evaltoolkit analyse'", file=str(path)
        )
    est = pd.read_csv(est_path)
    missing = [c for c in ("analysis", "outcome", "term", "estimate", "std_error") if c not in est.columns]
    if missing:
        raise DataError(f"estimates file lacks columns {missing}", file=str(est_path))
    ctx_path = est_path.parent / "results.json"
    ctx = json.loads(ctx_path.read_text(encoding="utf-8")) if ctx_path.exists() else {}
    return est, ctx


def pool_estimates(studies: dict[str, pd.DataFrame], method: str = "REML") -> tuple[pd.DataFrame, dict]:
    """Random-effects pooling of every (analysis, outcome, term) found in at least two studies.

    Returns
    -------
    (pooled, fits)
        ``pooled`` in the contract columns plus ``k`` (studies), ``tau2`` and ``i2``; ``fits`` maps
        each key to its :class:`~evaltoolkit.estimators.meta.MetaResult` (for forest plots).
    """
    from evaltoolkit.estimators.meta import meta_analysis

    if len(studies) < 2:
        raise DataError("pooling needs results from at least two studies")
    frames = []
    for label, est in studies.items():
        e = est[[*KEY, "estimate", "std_error"]].copy()
        e["study"] = label
        frames.append(e)
    allrows = pd.concat(frames, ignore_index=True)
    ok = np.isfinite(allrows["estimate"]) & np.isfinite(allrows["std_error"]) & (allrows["std_error"] > 0)
    allrows = allrows[ok]
    rows, fits = [], {}
    for key, g in allrows.groupby(KEY, sort=False):
        g = g.drop_duplicates("study")
        if len(g) < 2:
            continue
        fit = meta_analysis(
            g["estimate"].to_numpy(),
            g["std_error"].to_numpy(),
            labels=g["study"].tolist(),
            method="DL" if len(g) < 3 else method,
            knapp_hartung=len(g) < 10,
            outcome=key[1],
            analysis="pooled:" + key[0],
        )
        fits[key] = fit
        rows.append(
            {
                "analysis": "pooled:" + key[0],
                "outcome": key[1],
                "term": key[2],
                "estimate": fit.estimate,
                "std_error": fit.std_error,
                "ci_lower": fit.ci_lower,
                "ci_upper": fit.ci_upper,
                "p_value": fit.p_value,
                "n_obs": len(g),
                "n_clusters": np.nan,
                "method": fit.method + f"; {len(g)} studies",
                "k": len(g),
                "tau2": fit.tau2,
                "i2": fit.i2,
            }
        )
    if not rows:
        raise DataError("no estimate (analysis, outcome and term) appears in two or more of the studies")
    return pd.DataFrame(rows, columns=[*ESTIMATE_COLUMNS, "k", "tau2", "i2"]), fits
