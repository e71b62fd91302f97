"""A simulated study as the survey exports an evaluator would download: the design's questionnaire, answered.

:func:`design_answers` turns a :func:`~evaltoolkit.simulate.study.simulate_study` panel into answers to the
design's *instrument* items: each item of a scale that measures an outcome (``outcomes[].scale``) follows that
outcome's simulated score, so the effects survive scoring; other items are answered at random. A few answers are
"Don't know" (the instrument's missing code) or blank, as in real data. :func:`simulate_exports` writes them the
way KoboToolbox, Qualtrics, SPSS or Stata write them (one file per wave for the survey platforms, one long file
with value-labelled wave and arm for SPSS/Stata), ready for ``evaltoolkit design init`` / ``score`` / ``analyse``.

Examples
--------
>>> import tempfile
>>> files = simulate_exports("ncs_prepost_control", tempfile.mkdtemp(), format="kobo", n=60, seed=1)
>>> [f.name for f in files]
['ncs_prepost_control_baseline.csv', 'ncs_prepost_control_post.csv', 'ncs_prepost_control_followup.csv']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaltoolkit.design.schema import Design, load_design
from evaltoolkit.errors import DesignError
from evaltoolkit.simulate.study import SimulatedStudy, simulate_study

__all__ = ["EXPORT_FORMATS", "design_answers", "practice_fill", "simulate_exports"]

#: what :func:`simulate_exports` can write
EXPORT_FORMATS: tuple[str, ...] = (
    "kobo",
    "kobo-labels",
    "kobo-xlsx",
    "qualtrics",
    "qualtrics-text",
    "spss",
    "stata",
)

ExportFormat = Literal["kobo", "kobo-labels", "kobo-xlsx", "qualtrics", "qualtrics-text", "spss", "stata"]


def _instruments(design: Design) -> list[Any]:
    from evaltoolkit.instruments.library import load_instruments

    if not design.instruments:
        raise DesignError(
            "the design lists no instruments, so there is no questionnaire to answer", field="instruments"
        )
    return load_instruments(list(design.instruments))


def practice_fill(design: Design | str) -> dict[str, str]:
    """Stand-in wordings for the instruments' user-supplied slots (unpublished items), so a practice
    questionnaire holds every item of every scale.

    Examples
    --------
    >>> practice_fill("best_of_us_children")["bouc_kind_2"]
    'Practice wording for bouc_kind_2 (replace it with the wording you use)'
    """
    d = design if isinstance(design, Design) else load_design(design)
    return {
        it.code: f"Practice wording for {it.code} (replace it with the wording you use)"
        for inst in _instruments(d)
        for it in inst.items
        if it.verified == "user"
    }


def _design_columns(design: Design, data: pd.DataFrame) -> list[str]:
    c = design.columns
    wanted = [c.id, c.arm, c.wave, *c.clusters, *design.covariates, *design.moderators]
    return [x for x in dict.fromkeys(wanted) if x in data.columns]


def _nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each value replaced by the closest valid code (NaN stays NaN)."""
    out = np.full(values.shape, np.nan)
    ok = ~np.isnan(values)
    out[ok] = valid[np.abs(values[ok, None] - valid[None, :]).argmin(axis=1)]
    return out


def design_answers(
    sim: SimulatedStudy, *, seed: int = 0, dont_know: float = 0.02, blank: float = 0.01
) -> pd.DataFrame:
    """Answers to the design's instrument items for every row of a simulated study.

    Parameters
    ----------
    sim : SimulatedStudy
        From :func:`~evaltoolkit.simulate.study.simulate_study`.
    seed : int
        Seed for the item noise and the random answers.
    dont_know, blank : float
        Shares of answers given as the item's first missing code ("Don't know") or left blank.

    Returns
    -------
    DataFrame
        The design columns (id, arm, wave, clusters, covariates, moderators) and one column of codes per item.
        An item of the scale (or the single item) that measures a design column follows that column's simulated
        score, mapped linearly onto the item's code range with a little noise; other items are random valid codes.

    Examples
    --------
    >>> import evaltoolkit as et
    >>> sim = et.simulate_study("ncs_prepost_control", n=200, seed=3)
    >>> ans = design_answers(sim, dont_know=0, blank=0)
    >>> bool(ans["ncs_pos_contact"].corr(sim.data["positive_contact"]) > 0.8)
    True
    """
    design, data = sim.design, sim.data.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    insts = _instruments(design)
    scale_items = {sc.id: list(sc.items) for inst in insts for sc in inst.scales}
    driver: dict[str, str] = {}  # item code -> the design column its answers follow
    for column, source in design.sources.items():
        if column in data.columns:
            for item in scale_items.get(source, [source]):
                if source not in scale_items or item not in driver:  # a single-item link wins over a scale's
                    driver[item] = column
    constructs = design.simulation.constructs if design.simulation else {}
    out = data[_design_columns(design, data)].copy()
    n = len(data)
    for inst in insts:
        for it in inst.items:
            rs = inst.response_scales[it.response_scale]
            lo, hi = float(rs.min_code), float(rs.max_code)
            valid = None if rs.valid_codes is None else np.asarray(rs.valid_codes, dtype=float)
            column = driver.get(it.code)
            if column is not None:
                k = constructs[column].categories if column in constructs else 5
                score = data[column].to_numpy(dtype=float)
                step = (hi - lo) / (k - 1)
                x = lo + (score - 1) * step + rng.normal(0, 0.45 * step, n)
                x = np.clip(x, lo, hi)
                v = _nearest(x, valid) if valid is not None else np.round(x)
            elif valid is not None:
                v = rng.choice(valid, n)
            else:
                v = rng.integers(int(lo), int(hi) + 1, n).astype(float)
            if rs.missing:
                v[rng.random(n) < dont_know] = float(next(iter(rs.missing)))
            v[rng.random(n) < blank] = np.nan
            out[it.code] = v
    return out


def _coded(
    values: pd.Series, order: list[str], labels: Mapping[str, str]
) -> tuple[pd.Series, dict[int, str]]:
    """Text categories as codes 1, 2, ... with value labels (the design's labels, else the names)."""
    codes = {name: i + 1 for i, name in enumerate(order)}
    return values.map(codes).astype("Int64"), {codes[name]: labels.get(name, name) for name in order}


def _refuse_existing(d: Design, folder: Path, format: str) -> None:
    """Simulated files never replace a file already in the folder (it may be a real export)."""
    from evaltoolkit.errors import DataError

    ext = {"spss": "sav", "stata": "dta", "kobo-xlsx": "xlsx"}.get(format, "csv")
    names = [f"{d.name}.{ext}", *(f"{d.name}_{w}.{ext}" for w in d.wave_names)]
    for name in names:
        if (folder / name).exists():
            raise DataError(f"{name} already exists in {folder}: choose an empty folder for simulated exports",
                            file=str(folder / name))  # fmt: skip


def simulate_exports(
    design: Design | str | Path,
    folder: str | Path,
    *,
    format: ExportFormat = "kobo",
    n: int | None = None,
    seed: int = 0,
    n_preview: int = 0,
    n_unfinished: int = 0,
) -> list[Path]:
    """Simulate a study from a design and write it as survey-platform exports of the design's questionnaire.

    Parameters
    ----------
    design : Design, str or Path
        A design with instruments and a ``simulation`` block.
    folder : str or Path
        Where the files go (created if needed).
    format : {"kobo", "kobo-labels", "kobo-xlsx", "qualtrics", "qualtrics-text", "spss", "stata"}
        KoboToolbox CSV with XML values (``;``-separated), with labels, or as XLSX; Qualtrics CSV with numeric
        values or choice text (the item columns named Q1, Q2_1, ... as Qualtrics names them, the wording in the
        second header row); SPSS ``.sav`` or Stata ``.dta`` (one long file; wave, arm and cluster columns coded 1,
        2, ... with value labels).
    n, seed : optional
        People at baseline and the random seed (as :func:`~evaltoolkit.simulate.study.simulate_study`).
    n_preview, n_unfinished : int
        Qualtrics only: preview and unfinished responses added to each wave's file.

    Returns
    -------
    list of Path
        The files written: ``<design>_<wave>.<ext>`` per wave (Kobo, Qualtrics) or ``<design>.<ext>``.

    Examples
    --------
    >>> import tempfile, pyreadstat
    >>> [f] = simulate_exports("ncs_prepost_control", tempfile.mkdtemp(), format="spss", n=60, seed=1)
    >>> _, meta = pyreadstat.read_sav(f, metadataonly=True)
    >>> meta.variable_value_labels["arm"]
    {1.0: 'NCS participants', 2.0: 'Interested non-participants'}
    """
    from evaltoolkit.simulate import exports

    if format not in EXPORT_FORMATS:
        raise DesignError(
            f"unknown export format '{format}'; use one of {', '.join(EXPORT_FORMATS)}", field="format"
        )
    d = design if isinstance(design, Design) else load_design(design)
    _refuse_existing(d, Path(folder), format)
    sim = simulate_study(d, n=n, seed=seed)
    answers = design_answers(sim, seed=seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fill = practice_fill(d)
    c = d.columns
    items = [col for col in answers.columns if col not in _design_columns(d, sim.data)]
    arm_labels = {a: d.arms.label(a) for a in d.arms.all}
    if format in ("spss", "stata"):
        extra = answers.drop(columns=items)
        labels: dict[str, dict[int, str]] = {}
        extra[c.arm], labels[c.arm] = _coded(extra[c.arm], d.arms.all, arm_labels)
        if c.wave in extra and d.kind != "post_only":
            extra[c.wave], labels[c.wave] = _coded(
                extra[c.wave].astype(str), d.wave_names, {w.name: w.display for w in d.waves}
            )
        for cl in c.clusters:
            names = sorted(extra[cl].astype(str).unique())
            extra[cl], labels[cl] = _coded(extra[cl].astype(str), names, {})
        path = folder / f"{d.name}.{'sav' if format == 'spss' else 'dta'}"
        write = exports.simulate_spss_export if format == "spss" else exports.simulate_stata_export
        write(d.instruments, answers[items], path, extra=extra, extra_labels=labels, fill=fill)
        return [path]
    written: list[Path] = []
    waves = d.wave_names if c.wave in answers.columns else [None]
    for k, wave in enumerate(waves):
        rows = answers if wave is None else answers[answers[c.wave].astype(str) == wave]
        rows = rows.reset_index(drop=True)
        extra = rows.drop(columns=[*items, *([c.wave] if wave is not None else [])])
        stem = d.name if wave is None else f"{d.name}_{wave}"
        if format.startswith("kobo"):
            path = folder / f"{stem}.{'xlsx' if format == 'kobo-xlsx' else 'csv'}"
            exports.simulate_kobo_export(
                d.instruments, rows[items], path, fill=fill, id_field=None, extra=extra,
                extra_labels={c.arm: arm_labels}, values="labels" if format == "kobo-labels" else "xml",
                seed=seed + k,
            )  # fmt: skip
        else:
            path = folder / f"{stem}.csv"
            exports.simulate_qualtrics_export(
                d.instruments, rows[items], path, fill=fill, extra=extra, extra_labels={c.arm: arm_labels},
                values="text" if format == "qualtrics-text" else "numeric", n_preview=n_preview,
                n_unfinished=n_unfinished, seed=seed + k,
            )  # fmt: skip
        written.append(path)
    return written
