"""Carry out a design's analysis plan on a study and collect everything the report needs.

The runner calls the estimators (which know nothing about YAML or HTML) and gathers their results
into :class:`AnalysisResults`: the tidy ``estimates`` table (the ``estimates.csv`` contract),
plain-language headline sentences, warnings, excluded-row counts and report sections. The report
module only reads these results.

Examples
--------
>>> import evaltoolkit as et
>>> from evaltoolkit.plan.run import run_plan
>>> sim = et.simulate_study("ncs_prepost_control", n=400, seed=5)
>>> res = run_plan(et.Study(sim.design, sim.data))
>>> {"analysis", "outcome", "term", "estimate"} <= set(res.estimates.columns)
True
"""

from __future__ import annotations

import warnings

import pandas as pd

from evaltoolkit.design.schema import Analysis
from evaltoolkit.design.study import Study
from evaltoolkit.errors import EvalToolkitError, EvalToolkitWarning
from evaltoolkit.plan.registry import REGISTRY, AnalysisResults, Callout, Section, runner
from evaltoolkit.plan.screening import merge_small_categories, screen_values
from evaltoolkit.results import ESTIMATE_COLUMNS

__all__ = ["AnalysisResults", "Section", "run_plan", "runner"]


def run_plan(study: Study, *, seed: int = 20240601, strict: bool = False) -> AnalysisResults:
    """Run every analysis in ``study.design.analyses`` and return the collected results.

    ``strict=True``: a missing-value code or out-of-range value in an analysed column stops the run
    (:class:`~evaltoolkit.errors.StrictStop`) instead of being set to missing with a caution.

    Estimation problems in one analysis (e.g. a model that cannot be fitted), and unexpected failures, are
    reported as cautions in the results and the report (``extras["failed"]`` lists the analyses); the other
    analyses still run.
    """
    design = study.design
    check_instruments(design)
    study, screened = screen_values(
        study, strict=strict
    )  # missing-value codes and out-of-range scores are never analysed
    out = AnalysisResults(design=design, study=study, estimates=pd.DataFrame(columns=list(ESTIMATE_COLUMNS)))
    out.extras["seed"] = seed
    for ex in study.excluded:
        out.warnings.append(f"{ex.n_rows} rows were set aside before analysis: {ex.reason}.")
    out.warnings.extend(screened)
    study, merged = merge_small_categories(study)  # no category label or coefficient for a handful of people
    out.study = study
    out.warnings.extend(merged)
    import evaltoolkit.plan.runners  # noqa: F401  (registers the runners)

    plan = list(design.analyses)
    if design.kind != "post_only" and not any(a.type == "attrition" for a in plan):
        plan.insert(0, Analysis(id="attrition", type="attrition"))  # flow is always reported for panels
    if not any(a.type == "measurement" for a in plan):
        plan.insert(
            0, Analysis(id="measurement", type="measurement")
        )  # reliability whenever items are present
    for analysis in plan:
        kind = REGISTRY.get(analysis.type)
        if kind is None:
            out.warnings.append(
                f"Analysis '{analysis.id}' ({analysis.type}) is not available in this version."
            )
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EvalToolkitWarning)
            try:
                kind.run(study, analysis, out)
                if analysis.type not in out.extras.setdefault("types_run", []):
                    out.extras["types_run"].append(analysis.type)
            except EvalToolkitError as exc:
                out.warnings.append(f"Analysis '{analysis.id}' could not be completed: {exc}")
                _record_failure(out, analysis, str(exc))
            except Exception as exc:  # an unexpected failure stays in its analysis; the others still run
                # the message of an unexpected error may quote data values: name only its kind
                out.warnings.append(
                    f"Analysis '{analysis.id}' ({analysis.type}) failed unexpectedly ({type(exc).__name__}); "
                    "the other analyses ran. "
                    "Check this analysis's columns and options, and please report it "
                    "(run `evaltoolkit -v analyse ...` to see the details)."
                )
                _record_failure(out, analysis, None)
                out.extras.setdefault("unexpected_errors", []).append(exc)
        for w in caught:
            if issubclass(w.category, EvalToolkitWarning):
                # one channel: cautions reach the report through results and runner notes; Python warnings are
                # their echo. A caution that bypassed both is still shown, and recorded so a test can catch it.
                if not any(str(w.message) in x for x in out.warnings):
                    out.note(f"{analysis.id}: {w.message}")
                    out.extras.setdefault("unrouted_warnings", []).append(f"{analysis.id}: {w.message}")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if out.tables:
        est = pd.concat(out.tables, ignore_index=True)
        extra = [c for c in ("family", "p_adjusted", "adjustment") if c in est.columns]
        out.estimates = est[[*ESTIMATE_COLUMNS, *extra]]
    from evaltoolkit.plan.summary import summarise

    summarise(out)  # the four questions a funder asks, answered (extras["summary"])
    return out


def _record_failure(out: AnalysisResults, analysis: Analysis, message: str | None) -> None:
    """A failed analysis: listed in ``extras["failed"]`` and given its own plain-language report section
    (what failed, the likely cause, what to try), in place of the section it would have written."""
    out.extras.setdefault("failed", []).append(analysis.id)
    out.sections = [s for s in out.sections if s.id != f"analysis-{analysis.id}"]
    if message is not None:
        cause = (
            "the data or the design do not give this analysis what it needs; the message above names the "
            "column, row or design field"
        )
        fix = "correct that column or design field and run the analysis again"
    else:
        message = "it stopped on an internal error"
        cause = (
            "the data hold something this analysis cannot handle yet, such as a column with no variation or a "
            "group with very few people"
        )
        fix = (
            "check the columns this analysis uses, run `evaltoolkit -v analyse ...` to see the details, and "
            "please report it"
        )
    out.extras.setdefault("failure_reasons", {})[analysis.id] = message
    what = f"{analysis.type.replace('_', ' ')} analysis '{analysis.id}'"
    sec = Section(id=f"analysis-{analysis.id}", title=f"Not completed: {what}")
    sec.blocks.append(Callout(f"What failed: {message}.", lead="This analysis could not be completed."))
    sec.text.extend(
        [f"Likely cause: {cause}.", f"What to try: {fix}. The other analyses in this report ran."]
    )
    out.sections.append(sec)


def check_instruments(design) -> None:
    """The design's instruments must exist before anything runs (a misspelt one is named, with the closest match)."""
    from evaltoolkit.design.schema import did_you_mean
    from evaltoolkit.errors import InstrumentError
    from evaltoolkit.instruments.library import list_instruments, load_instruments

    file = str(design.source) if design.source else None
    for name in design.instruments:
        try:
            load_instruments([name])
        except InstrumentError:
            raise InstrumentError(
                f"instrument '{name}' is not in the library or a readable YAML file"
                f"{did_you_mean(name, list_instruments()['id'])}",
                field="instruments",
                file=file,
            ) from None
    check_sources(design)


def check_sources(design) -> None:
    """Every ``outcomes[].scale`` and ``scales:`` entry must be a scale or item of the design's instruments.

    Examples
    --------
    >>> import evaltoolkit as et
    >>> d = et.load_design("ncs_prepost_control")
    >>> bad = d.model_copy(update={"outcomes": [d.outcomes[0].model_copy(update={"scale": "ncs_atitudes"})]})
    >>> check_sources(bad)
    Traceback (most recent call last):
    ...
    evaltoolkit.errors.DesignError: ...outcome 'attitudes' is measured by 'ncs_atitudes', which is not a scale or item of the instruments ncs_social_mixing (did you mean 'ncs_attitudes'?)
    """
    from evaltoolkit.design.schema import did_you_mean
    from evaltoolkit.errors import DesignError
    from evaltoolkit.instruments.library import load_instruments

    if not design.instruments or not design.sources:
        return
    insts = load_instruments(list(design.instruments))
    known = [
        *(sc.id for inst in insts for sc in inst.scales),
        *(it.code for inst in insts for it in inst.items),
    ]
    outcomes = set(design.outcome_names)
    for column, source in design.sources.items():
        if source not in known:
            what = "outcome" if column in outcomes else "column"
            raise DesignError(
                f"{what} '{column}' is measured by '{source}', which is not a scale or item of the instruments "
                f"{', '.join(design.instruments)}{did_you_mean(source, known)}",
                field="outcomes" if column in outcomes else "scales",
                file=str(design.source) if design.source else None,
            )
