"""What each page asks of the library: thin calls with the browser's form values, checked first.

Nothing here computes a statistic: the questionnaire comes from :mod:`evaltoolkit.instruments.export`, the design is
validated by :func:`evaltoolkit.design.schema.load_design`, the power by :func:`evaltoolkit.plan.power.power`, the
plan by :func:`evaltoolkit.report.plan_export.export_plan`, the uploads are read by
:func:`evaltoolkit.intake.read.read_waves` / :func:`~evaltoolkit.intake.read.read_responses` and scored by
:func:`evaltoolkit.scoring.scales.score`. Names typed by the user (instrument ids, design names) are accepted only
from the bundled lists, so a form value never names a file.

Examples
--------
>>> "ncs_social_mixing" in instrument_ids()
True
>>> d = build_design(design_form_defaults("ncs_prepost_control") | {"analyses": ["balance", "did_primary"]})
>>> [a.id for a in d.analyses], d.columns.clusters
(['balance', 'did_primary'], ['site', 'team'])
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

from evaltoolkit.errors import DataError, DesignError, EvalToolkitError, UsageError

__all__ = [
    "SLOW_TYPES",
    "build_design",
    "design_form_defaults",
    "design_names",
    "export_questions",
    "instrument_ids",
    "power_summary",
    "read_uploads",
]

#: analysis types that take minutes (Bayesian fits, bootstraps, multiple imputation): unticked in a quick plan
SLOW_TYPES = ("bayes_did", "mediation", "causal_mediation", "multilevel", "robustness")


@functools.cache
def instrument_ids() -> tuple[str, ...]:
    """The bundled instruments' ids."""
    from evaltoolkit.instruments.library import list_instruments

    return tuple(list_instruments()["id"])


@functools.cache
def design_names() -> tuple[str, ...]:
    """The bundled designs' names."""
    from evaltoolkit.design.schema import list_designs

    return tuple(list_designs()["name"])


def checked_instruments(names: list[str]) -> list[str]:
    """Bundled instrument ids only (a form value never names a file)."""
    known = instrument_ids()
    bad = [n for n in names if n not in known]
    if bad:
        raise UsageError(f"unknown instrument {bad[0]!r}; choose one of the library's: {', '.join(known)}")
    if not names:
        raise UsageError("choose at least one instrument")
    return names


def export_questions(
    names: list[str], out: Path, placeholders: dict[str, str], fill: dict[str, str]
) -> tuple[dict[str, Path], list[str]]:
    """The XLSForm, printable questionnaire and codebook (as ``evaltoolkit instruments export``), with warnings."""
    from evaltoolkit.instruments.export import export_questionnaire

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = export_questionnaire(
            checked_instruments(names),
            out,
            formats=["xlsform", "html", "codebook"],
            name="questionnaire",
            placeholders={k: v for k, v in placeholders.items() if v.strip()},
            fill={k: v for k, v in fill.items() if v.strip()},
            slots="omit",
        )
    return paths, [str(w.message) for w in caught]


# ------------------------------------------------------------------------------------------------ the design
def _csv(text: Any) -> list[str]:
    if isinstance(text, list):
        return [str(x).strip() for x in text if str(x).strip()]
    return [x.strip() for x in str(text or "").split(",") if x.strip()]


def design_form_defaults(template: str | None, instruments: list[str] | None = None) -> dict[str, Any]:
    """The plan form's starting values: a bundled design's (``template``), or a blank panel design.

    Returns
    -------
    dict
        Field name -> value (text fields as text, lists for checkboxes), plus ``outcome_choices`` and
        ``analysis_choices`` (what the checkboxes offer) and ``template``.
    """
    from evaltoolkit.design.schema import load_design
    from evaltoolkit.instruments.library import load_instruments

    if template:
        if template not in design_names():
            raise UsageError(f"unknown design {template!r}; choose one of: {', '.join(design_names())}")
        d = load_design(template)
        insts = list(d.instruments)
        outcomes = [(o.name, o.label or o.name, o.scale or "") for o in d.outcomes]
        analyses = [(a.id, a.type, a.type not in SLOW_TYPES) for a in d.analyses]
        values: dict[str, Any] = {
            "name": d.name, "title": d.title, "id_col": d.columns.id, "arm_col": d.columns.arm,
            "wave_col": d.columns.wave, "clusters": ", ".join(d.columns.clusters), "treated": d.arms.treated,
            "treated_label": d.arms.label(d.arms.treated), "control": d.arms.control[0],
            "control_label": d.arms.label(d.arms.control[0]),
            "waves": "\n".join(f"{w.name} | {w.display} | {w.months:g}" for w in d.waves),
            "primary": ", ".join(d.families.get("primary", [])), "covariates": ", ".join(d.covariates),
            "moderators": ", ".join(d.moderators), "mediators": ", ".join(d.mediators),
            "cost": "" if d.cost_per_participant is None else f"{d.cost_per_participant:g}",
        }  # fmt: skip
    else:
        insts = list(instruments or [])
        outcomes, analyses = [], []
        values = {
            "name": "my_study", "title": "My study", "id_col": "id", "arm_col": "arm", "wave_col": "wave",
            "clusters": "", "treated": "programme", "treated_label": "Programme", "control": "comparison",
            "control_label": "Comparison group", "waves": "baseline | Before | 0\npost | After | 3",
            "primary": "", "covariates": "", "moderators": "", "mediators": "", "cost": "",
        }  # fmt: skip
    insts = list(dict.fromkeys([*insts, *(instruments or [])]))
    have = {o[2] for o in outcomes}
    for inst in load_instruments(insts) if insts else []:
        for sc in inst.scales:
            if sc.id not in have:
                outcomes.append((sc.id, sc.label, sc.id))
    if not analyses:
        analyses = [("balance", "balance", True), ("did_primary", "did", True), ("ancova", "ancova", True)]
    if not values["primary"] and outcomes:
        values["primary"] = outcomes[0][0]
    values.update(
        template=template or "",
        instruments=insts,
        outcome_choices=outcomes,
        analysis_choices=analyses,
        outcomes=[o[0] for o in outcomes] if template else [o[0] for o in outcomes[:3]],
        analyses=[a[0] for a in analyses if a[2]],
    )
    return values


def _waves(text: str) -> list[dict[str, Any]]:
    out = []
    for k, line in enumerate(x for x in str(text).splitlines() if x.strip()):
        parts = [p.strip() for p in line.split("|")]
        wave: dict[str, Any] = {"name": parts[0]}
        if len(parts) > 1 and parts[1]:
            wave["label"] = parts[1]
        try:
            wave["months"] = float(parts[2]) if len(parts) > 2 and parts[2] else float(k)
        except ValueError:
            raise DesignError(
                f"wave line {k + 1}: months must be a number (got {parts[2]!r}); write name | label | months",
                field="waves",
            ) from None
        out.append(wave)
    if not out:
        raise DesignError("give at least one wave, one per line: name | label | months", field="waves")
    return out


def build_design(form: dict[str, Any]):
    """A validated :class:`~evaltoolkit.design.schema.Design` from the plan form.

    The chosen bundled design (``template``) is the starting point; the form's columns, arms, waves, outcomes,
    moderators, mediators, covariates, cost and ticked analyses replace its own. Outcomes that are not ticked leave
    the families and the analyses; the template's simulation block (used by the diagnosis) is kept when it still
    fits the design. Every problem is a :class:`~evaltoolkit.errors.DesignError` naming the field.
    """
    from evaltoolkit.design.schema import load_design

    template = form.get("template") or ""
    base: dict[str, Any] = {}
    if template:
        if template not in design_names():
            raise UsageError(f"unknown design {template!r}; choose one of: {', '.join(design_names())}")
        base = load_design(template).model_dump(mode="json", exclude={"source"}, exclude_none=True)
    choices = {c[0]: c for c in form.get("outcome_choices") or design_form_defaults(template or None,
               form.get("instruments"))["outcome_choices"]}  # fmt: skip
    picked = [o for o in _csv(form.get("outcomes")) if o in choices]
    if not picked:
        raise DesignError("tick at least one outcome", field="outcomes")
    old = {o["name"]: o for o in base.get("outcomes", [])}
    primary = [p for p in _csv(form.get("primary")) if p in picked] or picked[:1]
    outcomes = []
    for name in picked:
        o = dict(
            old.get(name) or {"name": name, "label": choices[name][1], "scale": choices[name][2] or None}
        )
        o["family"] = "primary" if name in primary else "secondary"
        outcomes.append({k: v for k, v in o.items() if v is not None})
    waves = _waves(form.get("waves", ""))
    wave_names = [w["name"] for w in waves]
    post = wave_names[1:] or wave_names
    clusters = _csv(form.get("clusters"))
    treated, control = str(form.get("treated", "")).strip(), str(form.get("control", "")).strip()
    if not treated or not control:
        raise DesignError("give the programme group's and the comparison group's values", field="arms")
    d: dict[str, Any] = dict(base)
    d.update(
        name=str(form.get("name") or "my_study").strip(),
        title=str(form.get("title") or "My study").strip(),
        kind=base.get("kind", "panel" if len(waves) > 1 else "post_only"),
        columns={
            "id": form.get("id_col") or "id",
            "arm": form.get("arm_col") or "arm",
            "wave": form.get("wave_col") or "wave",
            "clusters": clusters,
        },
        arms={
            "treated": treated,
            "control": [control],
            "labels": {
                treated: form.get("treated_label") or treated,
                control: form.get("control_label") or control,
            },
        },
        waves=waves,
        baseline=wave_names[0] if base.get("kind", "panel") != "post_only" else None,
        instruments=checked_instruments(list(form.get("instruments") or base.get("instruments") or [])),
        outcomes=outcomes,
        covariates=_csv(form.get("covariates")),
        moderators=_csv(form.get("moderators")),
        mediators=_csv(form.get("mediators")),
        families={
            "primary": primary,
            **({"secondary": [o for o in picked if o not in primary]} if len(picked) > len(primary) else {}),
        },
    )
    if d["baseline"] is None:
        d.pop("baseline")
    cost = str(form.get("cost") or "").strip()
    try:
        d["cost_per_participant"] = float(cost) if cost else None
    except ValueError:
        raise DesignError(f"cost per participant must be a number (got {cost!r})", field="cost") from None
    if d["cost_per_participant"] is None:
        d.pop("cost_per_participant")
    d["scales"] = {k: v for k, v in base.get("scales", {}).items() if k in d["mediators"] + d["moderators"]}
    d["analyses"] = _analyses(base, form, picked, post, clusters, primary)
    sens = dict(base.get("sensitivity") or {})
    if sens.get("outcome") not in (None, *picked):
        sens["outcome"] = primary[0]
    if sens.get("analysis") not in (None, *(a["id"] for a in d["analyses"])):
        sens.pop("analysis")
    conf = dict(sens.get("confounding") or {})
    if conf.get("benchmarks"):
        conf["benchmarks"] = [b for b in conf["benchmarks"] if b in d["covariates"]]
        sens["confounding"] = conf
    d["sensitivity"] = sens
    try:
        return load_design(d)
    except DesignError:
        if "simulation" not in d:
            raise
        d.pop("simulation")  # the template's simulation no longer fits (renamed waves or arms)
        return load_design(d)


def _analyses(base: dict, form: dict, picked: list[str], post: list[str], clusters: list[str],
              primary: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    ticked = _csv(form.get("analyses"))
    cluster = clusters[-1] if clusters else None
    given = {a["id"]: a for a in base.get("analyses", [])}
    if not given:
        given = {
            "balance": {"id": "balance", "type": "balance"},
            "did_primary": {"id": "did_primary", "type": "did", "primary": True},
            "ancova": {"id": "ancova", "type": "ancova"},
        }
    out = []
    for aid in ticked:
        if aid not in given:
            continue
        a = dict(given[aid])
        if a.get("outcomes"):
            a["outcomes"] = [o for o in a["outcomes"] if o in picked]
            if not a["outcomes"]:
                continue
        elif a["type"] in ("did", "ancova"):
            a["outcomes"] = list(picked) if a.get("primary") else list(primary)
        if a.get("post"):
            a["post"] = [w for w in a["post"] if w in post] or post[:1]
        elif a["type"] in ("did", "ancova"):
            a["post"] = post
        if a.get("cluster") not in (None, *clusters) or (
            a.get("cluster") is None and a["type"] in ("did", "ancova")
        ):
            a["cluster"] = cluster
        if a.get("cluster") is None:
            a.pop("cluster", None)
        out.append(a)
    if not out:
        raise DesignError("tick at least one analysis", field="analyses")
    if not any(a.get("primary") for a in out):
        for a in out:
            if a["type"] in ("did", "ancova"):
                a["primary"] = True
                break
    return out


def design_yaml(design) -> str:
    """The design as YAML (as ``evaltoolkit design init`` writes it, with its simulation block if any)."""
    import yaml

    body = design.model_dump(mode="json", exclude={"source"}, exclude_defaults=True)
    return "# Built in the evaltoolkit web app.\n" + yaml.safe_dump(
        body, sort_keys=False, allow_unicode=True, width=110
    )


def design_from_upload(raw: bytes):
    """A design from an uploaded YAML file (its bytes; the file name is not used)."""
    import yaml

    from evaltoolkit.design.schema import load_design

    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError):
        data = None
    if not isinstance(data, dict):
        raise DesignError(
            "the uploaded design is not a YAML design file (a mapping with name, arms, waves...)"
        )
    data.pop("source", None)
    d = load_design(data)
    checked_instruments(list(d.instruments))
    return d


def power_summary(design, form: dict[str, Any]) -> dict[str, Any]:
    """The MDES at 80% power for the plan's sample, with a curve of MDES against sample size (for the plot).

    The inputs default to the design's planning assumptions
    (:func:`evaltoolkit.report.plan_export.sample_size`) and can be changed in the form.
    """
    from evaltoolkit.plan.power import power
    from evaltoolkit.report.plan_export import sample_size

    try:
        planned = sample_size(design)
    except EvalToolkitError:
        planned = None
    a = dict(planned["assumptions"]) if planned else {}
    analysis = "posttest" if design.kind == "post_only" else "did"

    def num(key: str, default: float) -> float:
        raw = str(form.get(key, "") or "").strip()
        if not raw:
            return float(a.get(key) if a.get(key) is not None else default)
        try:
            return float(raw)
        except ValueError:
            raise DesignError(f"{key.replace('_', ' ')} must be a number (got {raw!r})", field=key) from None

    args = {
        "n": num("n", 600), "cluster_size": num("cluster_size", 1), "icc": num("icc", 0.05),
        "pre_post_corr": num("pre_post_corr", 0.5), "attrition": num("attrition", 0.2),
        "treated_share": num("treated_share", 0.5),
    }  # fmt: skip
    assignment = a.get("assignment", "individual")  # whole sites assigned: the clusters are the sample

    def mdes(n: float):
        size = {"n_clusters": n / args["cluster_size"]} if assignment == "cluster" else {"n": n}
        rest = {k: v for k, v in args.items() if k != "n"}
        return power(power=0.8, analysis=analysis, assignment=assignment, **size, **rest)

    res = mdes(args["n"])
    curve = []
    for k in range(1, 13):
        n = args["n"] * k / 6
        if n / max(args["cluster_size"], 1) < 4:
            continue
        try:
            curve.append((n, mdes(n).effect))
        except EvalToolkitError:
            continue
    return {"inputs": args, "result": res, "summary": res.summary(), "curve": curve, "planned": planned}


def curve_svg(curve: list[tuple[float, float]], n_now: float) -> str:
    """An inline SVG line chart of MDES against people at baseline (no script, no external file)."""
    from html import escape

    if len(curve) < 2:
        return ""
    w, h, pad = 520, 260, 48
    xs, ys = [c[0] for c in curve], [c[1] for c in curve]
    x0, x1, y1 = min(xs), max(xs), max(ys) * 1.1

    def px(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (w - 2 * pad)

    def py(y: float) -> float:
        return h - pad - y / y1 * (h - 2 * pad)

    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in curve)
    ticks_y = "".join(
        f'<text x="{pad - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>'
        for v in (0, y1 / 2, y1 * 0.95)
    )
    ticks_x = "".join(
        f'<text x="{px(v):.1f}" y="{h - pad + 18}" text-anchor="middle">{v:,.0f}</text>'
        for v in (x0, (x0 + x1) / 2, x1)
    )
    mark = f'<line x1="{px(n_now):.1f}" x2="{px(n_now):.1f}" y1="{pad}" y2="{h - pad}" class="now"/>'
    desc = "; ".join(f"{x:,.0f} people: {y:.2f} SD" for x, y in curve)
    return (
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{escape("Minimum detectable effect by sample size: " + desc)}">'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" class="axis"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" class="axis"/>{ticks_y}{ticks_x}{mark}'
        f'<polyline points="{pts}" class="line"/>'
        f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle">people at baseline</text>'
        f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">MDES (SD) at 80% power</text>'
        "</svg>"
    )


# ------------------------------------------------------------------------------------------------ the data
#: what the design's own columns are for, in words (for the missing-column message)
_ROLES = {"id": "each person's ID", "arm": "the group each person is in", "wave": "the survey wave"}


def read_uploads(design, files: list[Path], mapping: dict[str, str] | None = None) -> dict[str, Any]:
    """Read the saved uploads (one file, or one per wave in the design's wave order), validate and score them.

    Returns
    -------
    dict
        ``report`` (:class:`~evaltoolkit.intake.report.ValidationReport`), ``data`` (scored, or ``None`` when a
        column the design needs is missing), ``problem`` (one plain sentence, or ``None``), ``excluded`` (reason,
        rows), ``extra_columns`` and ``targets`` (for the mapping dropdowns).
    """
    from evaltoolkit.design.study import Study
    from evaltoolkit.intake.read import read_responses, read_waves
    from evaltoolkit.scoring.scales import score

    names = list(design.instruments)
    kwargs: dict[str, Any] = {"design": design, "mapping": mapping or None}
    if len(files) > 1:
        if len(files) != len(design.wave_names):
            raise UsageError(
                f"{len(files)} files for {len(design.wave_names)} waves: upload one file per wave, or one file "
                "holding every wave"
            )
        res = read_waves(dict(zip(design.wave_names, files, strict=True)), names, wave_col=design.columns.wave,
                         **kwargs)  # fmt: skip
    else:
        res = read_responses(files[0], names, **kwargs)
    report, data = res.report, res.data
    issues = report.issues
    extra = sorted(set(issues.loc[issues["problem"] == "extra column", "column"].astype(str)))
    missing_items = sorted(set(issues.loc[issues["problem"] == "missing column", "column"].astype(str)))
    c = design.columns
    needed = {"id": c.id, "arm": c.arm, **({"wave": c.wave} if len(design.waves) > 1 else {})}
    needed |= {f"cluster {k}": col for k, col in enumerate(c.clusters)}
    problem = None
    for role, col in needed.items():
        if col not in data.columns:
            what = _ROLES.get(role, "the teams or sites people are in")
            problem = (
                f"The export has no column '{col}' ({what}), which the design needs. Add it to the export, "
                f"or choose below which column of the file holds it, then check again."
            )
            break
    targets = [*missing_items, *(col for col in needed.values() if col not in data.columns)]
    out: dict[str, Any] = {"report": report, "data": None, "problem": problem, "excluded": [],
                           "extra_columns": extra, "targets": sorted(set(targets)), "rows_in": report.n_rows_in}  # fmt: skip
    if problem:
        return out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scored = score(data, names)
        try:
            study = Study(design, scored.data, source="uploaded exports")
        except (DataError, DesignError) as exc:
            out["problem"] = " ".join(str(exc).split())
            return out
    out["cautions"] = [str(w.message) for w in caught]
    out["excluded"] = [(ex.reason, ex.n_rows) for ex in study.excluded]
    out["data"] = scored.data
    return out
