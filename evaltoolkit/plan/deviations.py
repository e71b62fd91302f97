"""Deviations from a registered analysis plan: the design registered before the data, against the one analysed.

A design is registered as its *canonical JSON* (:func:`canonical_json`: the validated design with every default
filled in, keys sorted, no file path) and that text's SHA-256 hash (:func:`plan_hash`). ``evaltoolkit plan export``
writes both into the plan; ``evaltoolkit analyse`` stores the hash of the design it ran, and with ``--registered
PLAN`` lists every difference, in words, between the registered design and the one used (:func:`deviations`).

Examples
--------
>>> from evaltoolkit.design.schema import load_design
>>> d = load_design("ncs_prepost_control")
>>> len(plan_hash(d)), deviations(d, d)
(64, [])
>>> used = d.model_copy(update={"covariates": ["female", "age", "ethnicity"]})
>>> deviations(d, used)
["Covariate added: 'ethnicity'."]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evaltoolkit.design.schema import Analysis, Design, load_design
from evaltoolkit.errors import DesignError

__all__ = ["canonical_json", "deviations", "load_registered", "plan_hash"]


def canonical_json(design: Design) -> str:
    """The design as canonical JSON: every field (defaults filled in), keys sorted, no ``source``, compact."""
    return json.dumps(
        design.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def plan_hash(design: Design) -> str:
    """The SHA-256 hash (hex) of :func:`canonical_json` in UTF-8: the fingerprint of a registered plan.

    Examples
    --------
    >>> from evaltoolkit.design.schema import load_design
    >>> d = load_design("ncs_prepost_control")
    >>> plan_hash(d) == hashlib.sha256(canonical_json(d).encode("utf-8")).hexdigest()
    True
    """
    return hashlib.sha256(canonical_json(design).encode("utf-8")).hexdigest()


def load_registered(path: str | Path) -> Design:
    """The registered design: from an exported plan's JSON (its hash checked) or from a design YAML.

    Raises
    ------
    DesignError
        If the file is missing, is not a plan or design, or the plan's design no longer matches its hash.
    """
    p = Path(path)
    if p.suffix.lower() != ".json":
        return load_design(p)
    if not p.is_file():
        raise DesignError("registered plan not found", file=str(p))
    try:
        plan = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DesignError(f"not valid JSON (line {exc.lineno}); give the plan.json that 'evaltoolkit plan export' "
                          "wrote", file=str(p)) from None  # fmt: skip
    if not isinstance(plan, dict) or not isinstance(plan.get("design"), dict):
        raise DesignError("no 'design' in this JSON; give the plan.json that 'evaltoolkit plan export' wrote",
                          file=str(p))  # fmt: skip
    design = load_design(plan["design"])
    design.source = p
    stated = plan.get("design_sha256")
    if stated and stated != plan_hash(design):
        raise DesignError(
            "the plan's design does not match its SHA-256 hash: it was edited after registration", file=str(p)
        )
    return design


def _q(values: Any) -> str:
    if isinstance(values, list | tuple):
        return ", ".join(f"'{v}'" for v in values) or "none"
    return f"'{values}'" if values is not None else "none"


def _added_removed(what: str, before: list, after: list) -> list[str]:
    out = [f"{what} added: '{x}'." for x in after if x not in before]
    return out + [f"{what} removed: '{x}'." for x in before if x not in after]


def _changed(what: str, before: Any, after: Any) -> list[str]:
    return [] if before == after else [f"{what} changed from {_q(before)} to {_q(after)}."]


def _outcomes(reg: Design, used: Design) -> list[str]:
    old = {o.name: o for o in reg.outcomes}
    new = {o.name: o for o in used.outcomes}
    out = _added_removed("Outcome", list(old), list(new))
    for name in (n for n in old if n in new):
        a, b = old[name], new[name]
        out += _changed(f"Outcome '{name}': scale", a.scale, b.scale)
        out += _changed(f"Outcome '{name}': instrument", a.instrument, b.instrument)
        out += _changed(f"Outcome '{name}': family", a.family, b.family)
        out += _changed(f"Outcome '{name}': dichotomised at", a.dichotomise, b.dichotomise)
        out += _changed(f"Outcome '{name}': label", a.label, b.label)
    return out


def _analysis(a: Analysis, b: Analysis) -> list[str]:
    where = f"Analysis '{a.id}'"
    out = _changed(f"{where}: type", a.type, b.type)
    out += _changed(
        f"{where}: inference method (vcov)", a.options.get("vcov", "auto"), b.options.get("vcov", "auto")
    )
    out += _changed(f"{where}: outcomes", a.outcomes, b.outcomes)
    out += _changed(f"{where}: waves compared with baseline", a.post, b.post)
    out += _changed(f"{where}: clustered by", a.cluster, b.cluster)
    if a.primary != b.primary:
        out.append(f"{where} is {'now' if b.primary else 'no longer'} the primary analysis.")
    for key in sorted((set(a.options) | set(b.options)) - {"vcov"}):
        out += _changed(f"{where}: option '{key}'", a.options.get(key), b.options.get(key))
    return out


def _analyses(reg: Design, used: Design) -> list[str]:
    old = {a.id: a for a in reg.analyses}
    new = {a.id: a for a in used.analyses}
    out = _added_removed("Analysis", list(old), list(new))
    for key in (k for k in old if k in new):
        out += _analysis(old[key], new[key])
    return out


def _families(reg: Design, used: Design) -> list[str]:
    out = _added_removed("Multiple-comparison family", list(reg.families), list(used.families))
    for fam in (f for f in reg.families if f in used.families):
        out += _added_removed(f"Family '{fam}': outcome", reg.families[fam], used.families[fam])
    return out + _changed("Multiple-comparison method", reg.multiplicity, used.multiplicity)


def _sensitivity(reg: Design, used: Design) -> list[str]:
    a, b = reg.sensitivity, used.sensitivity
    out = _added_removed("Sensitivity check", a.checks, b.checks)
    out += _changed("Sensitivity: analysis checked", a.analysis, b.analysis)
    out += _changed("Sensitivity: outcome checked", a.outcome, b.outcome)
    for block in ("confounding", "parallel_trends", "missing"):
        old, new = getattr(a, block).model_dump(), getattr(b, block).model_dump()
        for key in old:
            out += _changed(f"Sensitivity ({block.replace('_', ' ')}): {key}", old[key], new[key])
    return out


def deviations(registered: Design, used: Design) -> list[str]:
    """Every difference between the registered design and the design used at analysis, one sentence each.

    Compared: the design kind, arms, waves and baseline, outcomes (added, removed, scale, family and the rest),
    covariates, moderators, mediators, analyses (added, removed, inference method ``options.vcov``, outcomes,
    waves, cluster, primary, other options), multiple-comparison families and method, and the sensitivity
    block. The simulation block (planning assumptions) and the title are not part of the analysis.

    Parameters
    ----------
    registered, used : Design
        The design registered before the data, and the one the analysis ran.

    Returns
    -------
    list of str
        Plain sentences; empty when the analysis followed the registered plan.

    Examples
    --------
    >>> from evaltoolkit.design.schema import load_design
    >>> d = load_design("ncs_prepost_control")
    >>> used = d.model_copy(update={"multiplicity": "bh"})
    >>> deviations(d, used)
    ["Multiple-comparison method changed from 'holm' to 'bh'."]
    """
    r, u = registered, used
    out = _changed("Design kind", r.kind, u.kind)
    out += _changed("Programme arm", r.arms.treated, u.arms.treated)
    out += _changed("Comparison arms", r.arms.control, u.arms.control)
    out += _added_removed("Wave", r.wave_names, u.wave_names)
    out += _changed("Baseline wave", r.baseline, u.baseline)
    for key, old in r.columns.model_dump().items():
        out += _changed(f"Column for {key}", old, getattr(u.columns, key))
    out += _outcomes(r, u)
    out += _added_removed("Covariate", r.covariates, u.covariates)
    out += _added_removed("Moderator", r.moderators, u.moderators)
    out += _added_removed("Mediator", r.mediators, u.mediators)
    out += _analyses(r, u)
    out += _families(r, u)
    out += _sensitivity(r, u)
    return out
