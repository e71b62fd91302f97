"""The FastAPI app: five pages (questionnaire, plan, data, analyse, report), each a thin call into the library.

:func:`create_app` builds it for one launch: a random token guards every request (see
:mod:`evaltoolkit.webapp.security`), each browser gets a session with its own temporary folder
(:mod:`evaltoolkit.webapp.sessions`) and the analysis runs in a worker process (:mod:`evaltoolkit.webapp.jobs`).
Every error the user can cause is shown on the page as one plain sentence; files are downloaded only from the
session's folder, under names the app chose.

Examples
--------
>>> from fastapi.testclient import TestClient
>>> app = create_app(token="t0k")
>>> with TestClient(app, base_url="http://127.0.0.1") as client:
...     client.get("/questionnaire").status_code, client.get("/questionnaire?token=t0k").status_code
(403, 200)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from evaltoolkit.errors import EvalToolkitError
from evaltoolkit.plan.summary import PADLOCK_RULES
from evaltoolkit.webapp import steps
from evaltoolkit.webapp.jobs import Job
from evaltoolkit.webapp.security import CSP, REPORT_CSP, BodyLimit, new_token, same_token, sniff_upload
from evaltoolkit.webapp.sessions import Session, SessionStore

__all__ = ["DOWNLOADS", "STEPS", "create_app"]

log = logging.getLogger("evaltoolkit.webapp")

#: the pages, in workflow order: (path, title)
STEPS = (
    ("/questionnaire", "1 Questionnaire"),
    ("/plan", "2 Plan"),
    ("/data", "3 Data"),
    ("/analyse", "4 Analyse"),
    ("/report", "5 Report"),
)
#: what can be downloaded: kind -> (path in the session folder, file name offered)
DOWNLOADS = {
    "xlsform": ("questionnaire/questionnaire.xlsx", "questionnaire.xlsx"),
    "questionnaire": ("questionnaire/questionnaire.html", "questionnaire.html"),
    "codebook_csv": ("questionnaire/questionnaire_codebook.csv", "codebook.csv"),
    "codebook_md": ("questionnaire/questionnaire_codebook.md", "codebook.md"),
    "design": ("design.yaml", "design.yaml"),
    "plan_html": ("plan/plan.html", "plan.html"),
    "plan_docx": ("plan/plan.docx", "plan.docx"),
    "plan_json": ("plan/plan.json", "plan.json"),
    "report": ("report/report.html", "report.html"),
    "estimates_xlsx": ("report/estimates.xlsx", "estimates.xlsx"),
    "estimates_csv": ("report/estimates.csv", "estimates.csv"),
    "summary_docx": ("report/summary.docx", "summary.docx"),
}
_KINDS = {".csv": "CSV or other delimited text", ".xlsx": "Excel", ".sav": "SPSS", ".dta": "Stata"}


def create_app(
    token: str | None = None,
    *,
    max_upload_mb: float = 50,
    idle_minutes: float = 120,
    demo: bool = False,
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> FastAPI:
    """Build the web app for one launch.

    Parameters
    ----------
    token : str, optional
        The launch token (default: a new random one, in ``app.state.token``).
    max_upload_mb : float
        Largest request body accepted (uploads), in MB.
    idle_minutes : float
        A session idle this long is closed and its folder deleted.
    demo : bool
        Start every session on the demo study (the NCS questionnaire, design and simulated Kobo exports).
    allowed_hosts : tuple of str
        Host names accepted in the ``Host`` header (guards against DNS rebinding); ``"*"`` accepts any.

    Returns
    -------
    FastAPI
        The app; ``app.state.token`` and ``app.state.sessions`` hold the token and the session store.
    """
    token = token or new_token()
    store = SessionStore(idle_seconds=idle_minutes * 60)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def sweeper() -> None:
            while True:
                await asyncio.sleep(min(60.0, store.idle_seconds / 2))
                store.sweep()

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            store.close_all()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.token, app.state.sessions, app.state.demo = token, store, demo
    env = Environment(loader=PackageLoader("evaltoolkit.webapp", "templates"), autoescape=select_autoescape())
    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    _install_guard(app, token, store, demo, allowed_hosts)
    app.add_middleware(BodyLimit, limit=int(max_upload_mb * 1_000_000))  # outermost: before any parsing

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s: Session = request.state.session
        html = env.get_template(template).render(
            steps=STEPS, here=request.url.path, csrf=s.csrf, state=s.state, have=_have(s), **ctx
        )
        return HTMLResponse(html, status_code=status)

    _questionnaire_routes(app, page)
    _plan_routes(app, page)
    _data_routes(app, page)
    _run_routes(app, page)
    return app


def _install_guard(
    app: FastAPI, token: str, store: SessionStore, demo: bool, allowed_hosts: tuple[str, ...]
) -> None:
    """Every request: the Host, the launch token (URL once, then the cookie), the session, CSRF on POSTs, headers."""
    import hashlib

    # cookies are shared by every port of 127.0.0.1: names of this launch's own, so two launches never collide
    launch = hashlib.sha256(token.encode()).hexdigest()[:10]
    cookie, session_cookie = f"evaltoolkit_token_{launch}", f"evaltoolkit_session_{launch}"

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if "*" not in allowed_hosts and host not in allowed_hosts:
            return _refusal("This address is not served here.", 400)
        given = request.query_params.get("token")
        if given is not None and same_token(token, given) and request.method == "GET":
            # the token leaves the URL at once: a cookie carries it from now on
            resp = RedirectResponse(request.url.path, status_code=303)
            resp.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
            return _secured(resp)
        if not same_token(token, request.cookies.get(cookie)):
            log.info("refused %s %s (no launch token)", request.method, request.url.path)
            return _refusal(
                "This page needs the link printed by `evaltoolkit serve` (it holds this launch's token). "
                "Open that link, or restart the app to get a new one.",
                403,
            )
        session = store.get(request.cookies.get(session_cookie))
        new = session is None
        if new:
            session = store.create()
            if demo:
                _load_demo(session)
        request.state.session = session
        if request.method == "POST" and not request.url.path.startswith("/static"):
            sent = request.headers.get("x-csrf-token")
            if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                await request.body()  # cached, so the route can parse the form again
                sent = (await request.form()).get("csrf")
            if not same_token(session.csrf, str(sent) if sent is not None else None):
                log.info("refused %s %s (CSRF token missing or wrong)", request.method, request.url.path)
                return _refusal(
                    "This form is out of date or did not come from this app (its security token is missing). "
                    "Reload the page and try again.",
                    403,
                )
        resp = await call_next(request)
        log.info("%s %s %s", request.method, request.url.path, resp.status_code)  # never the query string
        if new:
            resp.set_cookie(session_cookie, session.id, httponly=True, samesite="strict", path="/")
        if "content-security-policy" not in resp.headers:
            _secured(resp)
        return resp


def _questionnaire_routes(app: FastAPI, page: Any) -> None:
    """Step 1: the instrument library, the chosen instruments, the questionnaire exports."""

    # -------------------------------------------------------------------------------------- 1 questionnaire
    @app.get("/")
    async def home() -> Response:
        return RedirectResponse("/questionnaire", status_code=303)

    @app.get("/questionnaire")
    async def questionnaire(request: Request, show: str | None = None) -> Response:
        return page(request, "questionnaire.html", **_questionnaire_ctx(request.state.session, show))

    @app.post("/questionnaire/choose")
    async def choose(request: Request) -> Response:
        s: Session = request.state.session
        form = await request.form()
        try:
            s.state["instruments"] = steps.checked_instruments([str(v) for v in form.getlist("instrument")])
        except EvalToolkitError as exc:
            return page(request, "questionnaire.html", 400, error=_words(exc), **_questionnaire_ctx(s, None))
        s.state.pop("exports", None)
        return RedirectResponse("/questionnaire#fill", status_code=303)

    @app.post("/questionnaire/export")
    async def export(request: Request) -> Response:
        s: Session = request.state.session
        form = await request.form()
        ph = {k[3:]: str(v) for k, v in form.items() if k.startswith("ph:")}
        fill = {k[5:]: str(v) for k, v in form.items() if k.startswith("fill:")}
        try:
            shutil.rmtree(s.path("questionnaire"), ignore_errors=True)
            paths, notes = steps.export_questions(
                s.state.get("instruments", []), s.path("questionnaire"), ph, fill
            )
        except EvalToolkitError as exc:
            return page(request, "questionnaire.html", 400, error=_words(exc), **_questionnaire_ctx(s, None))
        s.state["exports"] = sorted(paths)
        s.state["export_notes"] = notes
        s.state["placeholders"], s.state["fill"] = ph, fill
        return RedirectResponse("/questionnaire#downloads", status_code=303)


def _plan_routes(app: FastAPI, page: Any) -> None:
    """Step 2: the design from the form or a file, power, the diagnosis, the plan."""

    # -------------------------------------------------------------------------------------- 2 plan
    @app.get("/plan")
    async def plan(request: Request, template: str | None = None) -> Response:
        s: Session = request.state.session
        try:
            ctx = _plan_ctx(s, template)
        except EvalToolkitError as exc:
            return page(request, "plan.html", 400, error=_words(exc), **_plan_ctx(s, None))
        return page(request, "plan.html", **ctx)

    @app.post("/plan/build")
    async def build(request: Request) -> Response:
        s: Session = request.state.session
        form = await request.form()
        values: dict[str, Any] = {k: str(v) for k, v in form.items() if k not in ("outcomes", "analyses")}
        values["outcomes"] = [str(v) for v in form.getlist("outcomes")]
        values["analyses"] = [str(v) for v in form.getlist("analyses")]
        values["instruments"] = s.state.get("instruments") or None
        try:
            defaults = steps.design_form_defaults(values.get("template") or None, values["instruments"])
            values["instruments"] = defaults["instruments"]
            values["outcome_choices"] = defaults["outcome_choices"]
            values["analysis_choices"] = defaults["analysis_choices"]
            design = steps.build_design(values)
            _set_design(s, design, values)
        except EvalToolkitError as exc:
            return page(request, "plan.html", 400, error=_words(exc), **_plan_ctx(s, None, values))
        return RedirectResponse("/plan#power", status_code=303)

    @app.post("/plan/upload")
    async def upload_design(request: Request) -> Response:
        s: Session = request.state.session
        form = await request.form()
        up = form.get("design_file")
        try:
            raw = await up.read() if hasattr(up, "read") else b""
            if not raw:
                raise EvalToolkitError("choose a design file (YAML) to upload")
            design = steps.design_from_upload(raw)
            _set_design(s, design, None)
        except EvalToolkitError as exc:
            return page(request, "plan.html", 400, error=_words(exc), **_plan_ctx(s, None))
        return RedirectResponse("/plan#power", status_code=303)

    @app.post("/plan/diagnose")
    async def diagnose(request: Request) -> Response:
        s: Session = request.state.session
        form = await request.form()
        if "design" not in s.state:
            return page(
                request, "plan.html", 400, error="Build or upload a design first.", **_plan_ctx(s, None)
            )
        try:
            sims = max(10, min(2000, int(str(form.get("sims") or "50"))))
        except ValueError:
            sims = 50
        if s.job is not None and s.job.running:
            return page(request, "plan.html", 409, error="A run is already going; wait or cancel it.",
                        **_plan_ctx(s, None))  # fmt: skip
        s.start(Job("diagnose", s.folder, sims=sims))
        return RedirectResponse("/analyse", status_code=303)


def _data_routes(app: FastAPI, page: Any) -> None:
    """Step 3: uploads, the validation report, mapping unrecognised columns."""

    # -------------------------------------------------------------------------------------- 3 data
    @app.get("/data")
    async def data(request: Request) -> Response:
        return page(request, "data.html", **_data_ctx(request.state.session))

    @app.post("/data/upload")
    async def upload(request: Request) -> Response:
        s: Session = request.state.session
        if "design" not in s.state:
            return page(request, "data.html", 400, error="Build or upload a design on the Plan page first.",
                        **_data_ctx(s))  # fmt: skip
        form = await request.form()
        design = _design(s)
        waves = design.wave_names
        try:
            ups = [form.get(f"file_{k}") for k in range(len(waves))]
            ups = [u for u in ups if hasattr(u, "read") and u.filename]
            single = form.get("file_all")
            if hasattr(single, "read") and single.filename:
                ups = [single]
            if not ups:
                raise EvalToolkitError(
                    "choose an export to upload: one per wave, or one file holding every wave"
                )
            if 1 < len(ups) < len(waves):
                raise EvalToolkitError(
                    f"{len(ups)} of {len(waves)} wave files chosen: upload one export for each wave "
                    f"({', '.join(waves)}), or one file holding every wave"
                )
            saved = []
            for k, up in enumerate(ups):
                raw = await up.read()
                kind = sniff_upload(raw[:4096])
                label = waves[k] if len(ups) > 1 else "the file"
                if kind is None:
                    raise EvalToolkitError(
                        f"The upload for {label} is not a survey export this app reads: its content is not CSV "
                        "text, Excel (.xlsx), SPSS (.sav) or Stata (.dta). Export the responses from your survey "
                        "tool in one of these formats and upload that file."
                    )
                target = s.path("uploads", f"wave-{k + 1}{kind}")  # our name, never the browser's
                target.write_bytes(raw)
                saved.append(target.name)
            for old in s.path("uploads", "x").parent.iterdir():
                if old.name not in saved:
                    old.unlink()
            s.state["uploads"] = saved
            s.state["mapping"] = {}
        except EvalToolkitError as exc:
            return page(request, "data.html", 400, error=_words(exc), **_data_ctx(s))
        return _check_data(request, s, page)

    @app.post("/data/map")
    async def remap(request: Request) -> Response:
        s: Session = request.state.session
        form = await request.form()
        s.state["mapping"] = {k[4:]: str(v) for k, v in form.items() if k.startswith("map:") and str(v)}
        return _check_data(request, s, page)


def _run_routes(app: FastAPI, page: Any) -> None:
    """Steps 4 and 5: the background run, its status, cancelling, the report and the downloads."""

    # -------------------------------------------------------------------------------------- 4 analyse
    @app.get("/analyse")
    async def analyse(request: Request) -> Response:
        s: Session = request.state.session
        return page(request, "analyse.html", status_json=s.job.status() if s.job else None)

    @app.post("/analyse/start")
    async def start(request: Request) -> Response:
        s: Session = request.state.session
        if not s.state.get("data_ready"):
            return page(request, "analyse.html", 400, error="Upload and check the data on the Data page first.",
                        status_json=None)  # fmt: skip
        if s.job is not None and s.job.running:
            return page(request, "analyse.html", 409, error="A run is already going; wait or cancel it.",
                        status_json=s.job.status())  # fmt: skip
        for sub in ("report", "plan"):
            shutil.rmtree(s.folder / sub, ignore_errors=True)
        s.start(Job("analyse", s.folder))
        return RedirectResponse("/analyse", status_code=303)

    @app.get("/analyse/status")
    async def status(request: Request) -> Response:
        s: Session = request.state.session
        st = s.job.status() if s.job else {"state": "idle", "stage": "Nothing is running"}
        st.pop("started", None)
        return JSONResponse(st, headers={"cache-control": "no-store"})

    @app.post("/analyse/cancel")
    async def cancel(request: Request) -> Response:
        s: Session = request.state.session
        if s.job is not None:
            s.job.cancel()
        return RedirectResponse("/analyse", status_code=303)

    # -------------------------------------------------------------------------------------- 5 report
    @app.get("/report")
    async def report(request: Request) -> Response:
        s: Session = request.state.session
        job = s.jobs.get("analyse")
        st = job.status() if job else None
        ready = (s.folder / "report" / "report.html").is_file() and (st or {}).get("state") == "done"
        return page(request, "report.html", ready=ready, status_json=st)

    @app.get("/report/view")
    async def report_view(request: Request) -> Response:
        p = request.state.session.folder / "report" / "report.html"
        if not p.is_file():
            return _refusal("No report yet: run the analysis first.", 404)
        return HTMLResponse(p.read_text(encoding="utf-8"), headers={"content-security-policy": REPORT_CSP})

    @app.get("/download/{kind}")
    async def download(request: Request, kind: str) -> Response:
        entry = DOWNLOADS.get(kind)
        p = request.state.session.folder / entry[0] if entry else None
        if p is None or not p.is_file():
            return _refusal("There is no such file in this session (yet).", 404)
        return FileResponse(p, filename=entry[1])  # type: ignore[index]


# ------------------------------------------------------------------------------------------------ helpers
def _secured(resp: Response) -> Response:
    resp.headers["content-security-policy"] = CSP
    resp.headers["x-content-type-options"] = "nosniff"
    resp.headers["referrer-policy"] = "no-referrer"
    resp.headers["cache-control"] = resp.headers.get("cache-control", "no-store")
    return resp


def _refusal(text: str, status: int) -> Response:
    from evaltoolkit.webapp.security import _plain_page

    return _secured(HTMLResponse(_plain_page("Not available", text), status_code=status))


def _words(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:1].upper() + text[1:]


def _have(s: Session) -> dict[str, bool]:
    return {
        "instruments": bool(s.state.get("instruments")),
        "design": "design" in s.state,
        "data": bool(s.state.get("data_ready")),
        "report": (s.folder / "report" / "report.html").is_file(),
    }


def _design(s: Session):
    from evaltoolkit.design.schema import load_design

    return load_design(s.state["design"])


def _set_design(s: Session, design, values: dict[str, Any] | None) -> None:
    from evaltoolkit.report.plan_export import export_plan

    s.state["design"] = design.model_dump(mode="json", exclude={"source"})
    s.path("design.json").write_text(json.dumps(s.state["design"]), encoding="utf-8")
    s.path("design.yaml").write_text(steps.design_yaml(design), encoding="utf-8")
    shutil.rmtree(s.folder / "plan", ignore_errors=True)
    export_plan(design, s.folder / "plan", formats=("html", "docx", "json"))
    s.state["instruments"] = s.state.get("instruments") or list(design.instruments)
    s.state["plan_form"] = values
    s.state["power"] = steps.power_summary(design, values or {})
    s.state["data_ready"] = False
    s.state.pop("checked", None)  # the last check was against the old design: upload again


def _questionnaire_ctx(s: Session, show: str | None) -> dict[str, Any]:
    from evaltoolkit.instruments.library import VERIFIED_MARKS, list_instruments, load_instrument

    chosen = s.state.get("instruments", [])
    shown = [i for i in ([show] if show in steps.instrument_ids() else chosen)]
    insts = [load_instrument(i) for i in shown]
    slots = [(i.id, code) for i in (load_instrument(c) for c in chosen) for code in i.unfilled_slots()]
    placeholders = {k: v for c in chosen for k, v in load_instrument(c).placeholders.items()}
    return {
        "library": list_instruments().to_dict("records"),
        "chosen": chosen,
        "shown": insts,
        "marks": VERIFIED_MARKS,
        "slots": slots,
        "placeholders": placeholders,
        "downloads": [
            (k, DOWNLOADS[k][1])
            for k in ("xlsform", "questionnaire", "codebook_csv", "codebook_md")
            if k in _export_kinds(s)
        ],
    }


def _export_kinds(s: Session) -> set[str]:
    got = set(s.state.get("exports", []))
    return {"xlsform" if "xlsform" in got else "", "questionnaire" if "html" in got else "",
            *(("codebook_csv", "codebook_md") if got & {"codebook_csv", "codebook_md"} else ())}  # fmt: skip


def _plan_ctx(s: Session, template: str | None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    chosen = s.state.get("instruments") or None
    if values is None:
        if template is None:
            template = s.state.get("template")
            if template is None:
                template = "ncs_prepost_control" if chosen in (None, ["ncs_social_mixing"]) else ""
            values = s.state.get("plan_form")
        if values is None or template != (values or {}).get("template"):
            values = steps.design_form_defaults(template or None, chosen)
        s.state["template"] = template
    pw = s.state.get("power")
    job = s.jobs.get("diagnose")
    diagnosis = job.status() if job is not None else None
    return {
        "diagnosis": diagnosis,
        "padlock_rules": PADLOCK_RULES,
        "form": values,
        "designs": steps.design_names(),
        "power": pw,
        "chart": steps.curve_svg(pw["curve"], pw["inputs"]["n"]) if pw else "",
        "slow": steps.SLOW_TYPES,
        "plan_downloads": [(k, DOWNLOADS[k][1]) for k in ("design", "plan_html", "plan_docx", "plan_json")]
        if "design" in s.state
        else [],
    }


def _data_ctx(s: Session, checked: dict[str, Any] | None = None) -> dict[str, Any]:
    design = _design(s) if "design" in s.state else None
    checked = checked if checked is not None else s.state.get("checked")
    return {"design": design, "checked": checked, "kinds": _KINDS}


def _check_data(request: Request, s: Session, page) -> Response:
    try:
        checked = _checked(s)
    except EvalToolkitError as exc:
        s.state["data_ready"] = False
        return page(request, "data.html", 400, error=_words(exc), **_data_ctx(s, {}))
    if not s.state["data_ready"]:
        return page(request, "data.html", 400, error=checked["problem"], **_data_ctx(s, checked))
    return RedirectResponse("/data#checked", status_code=303)


def _checked(s: Session) -> dict[str, Any]:
    """Read the session's uploads with its design and mapping; keep the scored data when nothing is missing."""
    design = _design(s)
    files = [s.folder / "uploads" / name for name in s.state.get("uploads", [])]
    s.state["data_ready"] = False
    res = steps.read_uploads(design, files, s.state.get("mapping"))
    report = res["report"]
    issues = report.issues
    serious = issues[issues["severity"] != "info"]
    checked = {
        "problem": res["problem"],
        "rows_in": int(report.n_rows_in),
        "rows_out": int(report.n_rows_out),
        "counts": report.counts().to_dict("records"),
        # column, row, problem, what to do - never the value itself (it could identify someone)
        "issues": [
            {
                "file": r.file,
                "column": r.column,
                "row": "" if str(r.row) in ("<NA>", "None", "nan") else r.row,
                "problem": r.problem,
                "severity": r.severity,
                "detail": r.detail,
            }
            for r in serious.head(200).itertuples()
        ],
        "n_issues": len(serious),
        "excluded": res["excluded"],
        "extra_columns": res["extra_columns"],
        "targets": res["targets"],
        "mapping": s.state.get("mapping", {}),
    }
    s.state["checked"] = checked
    if res["data"] is not None:
        res["data"].to_pickle(s.path("data.pkl"))
        s.path("data.json").write_text(json.dumps({"rows_in": checked["rows_in"]}), encoding="utf-8")
        s.state["data_ready"] = True
    return checked


def _load_demo(s: Session) -> None:
    """The demo study: the NCS questionnaire, a quick NCS plan and simulated Kobo exports, already checked."""
    from evaltoolkit.simulate.surveys import simulate_exports

    s.state["instruments"] = ["ncs_social_mixing"]
    values = steps.design_form_defaults("ncs_prepost_control", ["ncs_social_mixing"])
    design = steps.build_design(values)
    _set_design(s, design, values)
    s.state["template"] = "ncs_prepost_control"
    files = simulate_exports(design, s.path("demo"), format="kobo", n=300, seed=2024)
    for k, f in enumerate(files):
        shutil.move(f, s.path("uploads", f"wave-{k + 1}.csv"))
    shutil.rmtree(s.folder / "demo", ignore_errors=True)
    s.state["uploads"] = [f"wave-{k + 1}.csv" for k in range(len(files))]
    _checked(s)
