"""Analyses in a background worker process, so the page stays responsive and a run can be cancelled.

A :class:`Job` starts a fresh interpreter (the ``spawn`` context: no state shared with the server) that runs one
task of :data:`TASKS` and writes its progress to ``status-<task>.json`` in the session folder; the server reads that
file when the page polls. Cancelling terminates the process. The tasks call the same library functions as the
command line (``evaltoolkit analyse`` and ``evaltoolkit diagnose``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["TASKS", "Job", "run_analysis", "run_diagnosis"]


def _write_status(path: Path, **status: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _plain(exc: BaseException) -> str:
    from evaltoolkit.errors import EvalToolkitError

    if isinstance(exc, EvalToolkitError):
        return " ".join(str(exc).split())
    # an unexpected error's message may quote data values: name only its kind
    return (
        f"The analysis stopped unexpectedly ({type(exc).__name__}). Check the design and the data; "
        "if it happens again, please report it."
    )


def run_analysis(folder: str, seed: int = 20240601) -> None:
    """Run the session's plan on its checked data and write the report, tables, summary and plan.

    Reads ``design.json`` and ``data.pkl`` from ``folder`` and writes ``report/`` (``report.html``,
    ``estimates.csv``/``.xlsx``, ``summary.docx``, ``results.json``) and ``plan/`` (``plan.html``, ``.md``,
    ``.docx``, ``.json``), as ``evaltoolkit analyse`` and ``evaltoolkit plan export`` do.
    """
    base = Path(folder)
    status = base / "status-analyse.json"
    started = time.time()
    try:
        import pandas as pd

        from evaltoolkit.design.schema import load_design
        from evaltoolkit.design.study import Study
        from evaltoolkit.plan.run import run_plan
        from evaltoolkit.report.plan_export import export_plan
        from evaltoolkit.report.render import write_report

        _write_status(status, state="running", stage="Running the analysis plan", started=started)
        design = load_design(json.loads((base / "design.json").read_text(encoding="utf-8")))
        data = pd.read_pickle(base / "data.pkl")
        meta = json.loads((base / "data.json").read_text(encoding="utf-8"))
        results = run_plan(Study(design, data, source="uploaded exports"), seed=seed)
        results.extras["rows_in_file"] = meta.get("rows_in", len(data))
        _write_status(status, state="running", stage="Writing the report", started=started)
        write_report(results, base / "report", title=design.title)
        export_plan(design, base / "plan")
        failed = set(results.extras.get("failed", []))
        primary = [a.id for a in design.analyses if a.primary and a.id in failed]
        reasons = results.extras.get("failure_reasons", {})
        _write_status(
            status,
            state="done",
            stage="Finished",
            started=started,
            seconds=round(time.time() - started, 1),
            headline=list(results.headline),
            cautions=len(results.warnings),
            failed_primary=[f"{p}: {reasons.get(p, 'see the report')}" for p in primary],
            failed=[f"{a}: {reasons.get(a, 'see the report')}" for a in sorted(failed)],
        )
    except BaseException as exc:  # the worker's last word is always a status the page can show
        _write_status(status, state="error", stage="Stopped", started=started, message=_plain(exc))


def run_diagnosis(folder: str, sims: int = 50, seed: int = 0) -> None:
    """Diagnose the session's design (:func:`evaltoolkit.plan.diagnose.diagnose`) and write ``diagnosis.json``."""
    base = Path(folder)
    status = base / "status-diagnose.json"
    started = time.time()
    try:
        from evaltoolkit.design.schema import load_design
        from evaltoolkit.plan.diagnose import diagnose

        _write_status(status, state="running", stage=f"Simulating {sims} studies", started=started)
        design = load_design(json.loads((base / "design.json").read_text(encoding="utf-8")))
        dx = diagnose(design, sims=sims, seed=seed)
        rows = []
        for key in (
            "power",
            "bias",
            "rmse",
            "coverage",
            "mean_ci_width",
            "type_s",
            "type_m",
            "mdes",
            "attrition",
        ):
            est, se = dx.value(key)
            rows.append({"diagnosand": key, "estimate": est, "mc_se": se})
        _write_status(
            status,
            state="done",
            stage="Finished",
            started=started,
            seconds=round(time.time() - started, 1),
            diagnosis={
                "title": f"{dx.analysis} on {dx.outcome} at {dx.wave}, {dx.n:,} people, {dx.sims:,} studies",
                "rows": rows,
                "true_effect": dx.true_effect,
                "rating": dx.evidence_rating,
                "padlocks": dx.padlocks,
                "notes": list(dx.notes[1:]),
            },
        )
    except BaseException as exc:
        _write_status(status, state="error", stage="Stopped", started=started, message=_plain(exc))


#: what a job can run
TASKS = {"analyse": run_analysis, "diagnose": run_diagnosis}


class Job:
    """One task of :data:`TASKS` in its own process; ``status()`` reads its progress.

    Parameters
    ----------
    task : str
        ``"analyse"`` or ``"diagnose"``.
    folder : Path
        The session folder (inputs and outputs).
    **kwargs
        Passed to the task.
    """

    def __init__(self, task: str, folder: Path, **kwargs: Any) -> None:
        self.task = task
        self.folder = Path(folder)
        self.status_path = self.folder / f"status-{task}.json"
        self.status_path.unlink(missing_ok=True)
        _write_status(self.status_path, state="starting", stage="Starting the worker", started=time.time())
        ctx = mp.get_context("spawn")
        self.process = ctx.Process(target=TASKS[task], args=(str(self.folder),), kwargs=kwargs, daemon=False)
        self.process.start()
        self.cancelled = False

    def status(self) -> dict[str, Any]:
        """The last status the worker wrote, corrected when the process died or was cancelled."""
        try:
            st = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            st = {"state": "starting", "stage": "Starting the worker"}
        st["task"] = self.task
        if self.cancelled:
            st.update(
                state="cancelled", stage="Cancelled", message="The run was cancelled; nothing was written."
            )
        elif st.get("state") in ("starting", "running") and not self.process.is_alive():
            st.update(state="error", stage="Stopped", message="The worker process stopped without finishing.")
        if "started" in st and "seconds" not in st:
            st["elapsed"] = round(time.time() - float(st["started"]), 1)
        return st

    @property
    def running(self) -> bool:
        """Whether the worker is still at work."""
        return self.process.is_alive() and not self.cancelled

    def cancel(self) -> None:
        """Terminate the worker (a finished job is left as it is)."""
        if self.process.is_alive():
            self.cancelled = True
            self.process.terminate()
            self.process.join(timeout=5)
