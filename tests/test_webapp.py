"""The local web app (issue 18) through FastAPI's test client: the launch token, CSRF, upload limits and types,
plain messages for bad exports, session isolation, file names never used as paths, no token in the logs.

The statistics on the pages come from the library and are tested there; here the app must show the library's own
numbers (the power page against :func:`evaltoolkit.report.plan_export.sample_size`, whose numbers are checked
against PowerUp! and R in tests/test_plan_export.py and tests/test_power.py).
"""

from __future__ import annotations

import logging
import re
import warnings
from html import unescape
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx, not ours
    from fastapi.testclient import TestClient

from evaltoolkit.simulate.surveys import simulate_exports
from evaltoolkit.webapp import steps
from evaltoolkit.webapp.app import create_app
from evaltoolkit.webapp.jobs import Job
from evaltoolkit.webapp.security import sniff_upload

TOKEN = "launch-token-for-tests-0123456789"
BASE = "http://127.0.0.1"


def _client(app) -> TestClient:
    return TestClient(app, base_url=BASE)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _enter(client: TestClient) -> str:
    """Open the launch link; returns the session's CSRF token."""
    r = client.get(f"/questionnaire?token={TOKEN}")
    assert r.status_code == 200
    return _csrf(r.text)


def _design_form(csrf: str) -> dict:
    f = steps.design_form_defaults("ncs_prepost_control", ["ncs_social_mixing"])
    data = {k: v for k, v in f.items() if isinstance(v, str)}
    return data | {"csrf": csrf, "outcomes": f["outcomes"], "analyses": ["balance", "did_primary"]}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> list[Path]:
    return simulate_exports(
        "ncs_prepost_control", tmp_path_factory.mktemp("kobo"), format="kobo", n=120, seed=5
    )


def _files(paths: list[Path], names: list[str] | None = None) -> dict:
    return {f"file_{k}": ((names or [p.name for p in paths])[k], p.read_bytes()) for k, p in enumerate(paths)}


def _without(path: Path, column: str, out: Path) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines()
    drop = lines[0].split(";").index(column)
    out.write_text(
        "\n".join(";".join(c for k, c in enumerate(ln.split(";")) if k != drop) for ln in lines) + "\n"
    )
    return out


# --------------------------------------------------------------------------------------------- the token
def test_every_request_needs_the_launch_token():
    app = create_app(token=TOKEN)
    with _client(app) as c:
        for path in (
            "/",
            "/questionnaire",
            "/plan",
            "/data",
            "/analyse/status",
            "/static/app.js",
            "/download/report",
        ):
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 403, path
            assert "link printed by `evaltoolkit serve`" in r.text
        assert c.get("/questionnaire?token=wrong").status_code == 403
        assert c.post("/plan/build", data={"csrf": "x"}).status_code == 403
        # the right token: redirected to the same page without it, an HttpOnly SameSite=Strict cookie set
        r = c.get(f"/plan?token={TOKEN}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/plan"
        cookie = r.headers["set-cookie"]
        assert TOKEN in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert c.get("/plan").status_code == 200
        assert c.get("/static/app.js").status_code == 200


def test_other_host_names_are_refused():
    """A page elsewhere cannot reach the app through a name it controls (DNS rebinding)."""
    with _client(create_app(token=TOKEN)) as c:
        _enter(c)
        assert c.get("/plan", headers={"host": "evil.example:8765"}).status_code == 400
        assert c.get("/plan", headers={"host": "localhost:8765"}).status_code == 200


def test_pages_allow_only_their_own_origin():
    with _client(create_app(token=TOKEN)) as c:
        _enter(c)
        r = c.get("/questionnaire")
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        # no page links to another host: every script, style and font is bundled
        for path in ("/questionnaire", "/plan", "/data", "/analyse", "/report"):
            html = c.get(path).text
            assert not re.search(r'(src|href)="(https?:)?//', html), path


# --------------------------------------------------------------------------------------------- CSRF
def test_every_form_needs_the_session_csrf_token():
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        form = {"instrument": ["ncs_social_mixing"]}
        r = c.post("/questionnaire/choose", data=form, follow_redirects=False)
        assert r.status_code == 403 and "security token" in r.text
        assert c.post("/questionnaire/choose", data=form | {"csrf": "forged"}).status_code == 403
        r = c.post("/questionnaire/choose", data=form | {"csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        # the header works too (the page's script uses it)
        r = c.post("/analyse/cancel", headers={"x-csrf-token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        # another session's token is refused
        with _client(c.app) as other:
            _enter(other)
            other_csrf = _csrf(other.get("/questionnaire").text)
        assert other_csrf != csrf
        assert c.post("/questionnaire/choose", data=form | {"csrf": other_csrf}).status_code == 403


def test_a_form_value_never_names_a_file():
    """Instrument ids and design names are accepted only from the bundled lists (no path from the browser)."""
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        r = c.post("/questionnaire/choose", data={"csrf": csrf, "instrument": ["../../etc/passwd"]})
        assert r.status_code == 400 and "Unknown instrument" in r.text
        r = c.get("/plan?template=/etc/passwd")
        assert r.status_code == 400 and "Unknown design" in r.text


# --------------------------------------------------------------------------------------------- questionnaire, plan
def test_questionnaire_downloads_are_the_library_exports():
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        c.post("/questionnaire/choose", data={"csrf": csrf, "instrument": ["ncs_social_mixing"]})
        r = c.post("/questionnaire/export", data={"csrf": csrf})
        assert r.status_code == 200 and 'href="/download/xlsform"' in r.text
        xlsx = c.get("/download/xlsform")
        assert xlsx.status_code == 200 and xlsx.content[:4] == b"PK\x03\x04"
        assert "questionnaire.xlsx" in xlsx.headers["content-disposition"]
        import io

        import openpyxl

        sheets = openpyxl.load_workbook(io.BytesIO(xlsx.content)).sheetnames
        assert {"survey", "choices", "settings"} <= set(sheets)
        codebook = c.get("/download/codebook_csv").text
        assert "ncs_getalong" in codebook


def test_the_plan_page_builds_the_design_and_shows_the_library_power(tmp_path):
    from evaltoolkit.report.plan_export import sample_size

    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        r = c.post("/plan/build", data=_design_form(csrf))
        assert r.status_code == 200, r.text[:300]
        # the MDES on the page is the plan's (sample_size: PowerUp!/R-checked in tests/test_plan_export.py)
        mdes = sample_size("ncs_prepost_control")["mdes"].effect
        assert f"minimum detectable effect is {mdes:.3f} SD" in r.text
        assert "<svg" in r.text and "<polyline" in r.text
        design = c.get("/download/design").text
        import evaltoolkit as et

        p = tmp_path / "design.yaml"
        p.write_text(design, encoding="utf-8")
        d = et.load_design(p)
        assert [a.id for a in d.analyses] == ["balance", "did_primary"] and d.columns.clusters == [
            "site",
            "team",
        ]
        assert c.get("/download/plan_docx").content[:2] == b"PK"
        # a bad field: one plain sentence naming it, the form kept
        bad = _design_form(csrf) | {"waves": "baseline | Before | zero"}
        r = c.post("/plan/build", data=bad)
        assert r.status_code == 400 and "months must be a number" in r.text and "Traceback" not in r.text


@pytest.mark.parametrize("name", ["cluster_rct", "best_of_us_children"])
def test_the_power_shown_is_the_plans_for_every_bundled_kind_of_assignment(name):
    """Whole sites assigned (cluster_rct) or people within teams: the MDES shown is the plan's (sample_size)."""
    from evaltoolkit.report.plan_export import sample_size

    shown = steps.power_summary(et_design(name), {})["result"].effect
    assert shown == pytest.approx(sample_size(name)["mdes"].effect, rel=1e-12)


def et_design(name: str):
    import evaltoolkit as et

    return et.load_design(name)


def test_an_uploaded_design_that_is_not_yaml_is_refused_in_words():
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        r = c.post(
            "/plan/upload", data={"csrf": csrf}, files={"design_file": ("d.yaml", b"\x89PNG\r\n\x1a\n")}
        )
        assert r.status_code == 400 and "not a YAML design file" in r.text


# --------------------------------------------------------------------------------------------- uploads
def test_upload_size_is_limited(exports):
    app = create_app(token=TOKEN, max_upload_mb=0.02)  # 20 kB; each wave's export is larger
    with _client(app) as c:
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        r = c.post("/data/upload", data={"csrf": csrf}, files=_files(exports))
        assert r.status_code == 413
        assert "larger than this app's limit of 0.02 MB" in unescape(r.text) and "--max-upload-mb" in r.text


def test_upload_size_is_limited_without_a_content_length_too():
    """A body sent in chunks (no Content-Length) is counted as it arrives and refused at the limit."""
    with _client(create_app(token=TOKEN, max_upload_mb=0.01)) as c:
        csrf = _enter(c)

        def chunks():
            for _ in range(100):
                yield b"x" * 1000

        headers = {"content-type": "multipart/form-data; boundary=zz", "x-csrf-token": csrf}
        r = c.post("/plan/upload", content=chunks(), headers=headers)
        assert r.status_code == 413 and "larger than this app" in unescape(r.text)


def test_a_file_of_the_wrong_type_is_refused_by_its_content(exports):
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
        # named .csv, but it is an image: refused, whatever its name
        r = c.post("/data/upload", data={"csrf": csrf}, files={"file_all": ("answers.csv", png)})
        assert r.status_code == 400
        assert "is not a survey export this app reads" in r.text and "Traceback" not in r.text


def test_content_sniffing_recognises_the_real_formats(tmp_path):
    spss = simulate_exports("ncs_prepost_control", tmp_path / "s", format="spss", n=40, seed=1)
    stata = simulate_exports("ncs_prepost_control", tmp_path / "t", format="stata", n=40, seed=1)
    xlsx = simulate_exports("ncs_prepost_control", tmp_path / "x", format="kobo-xlsx", n=40, seed=1)
    qualtrics = simulate_exports("ncs_prepost_control", tmp_path / "q", format="qualtrics", n=40, seed=1)
    got = [sniff_upload(f[0].read_bytes()[:4096]) for f in (spss, stata, xlsx, qualtrics)]
    assert got == [".sav", ".dta", ".xlsx", ".csv"]
    assert sniff_upload(b"%PDF-1.7\n\x00\x01") is None and sniff_upload(b"MZ\x90\x00\x03") is None


def test_an_export_missing_a_required_column_names_it(exports, tmp_path):
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        broken = [_without(p, "admin/arm", tmp_path / f"w{k}.csv") for k, p in enumerate(exports)]
        r = c.post("/data/upload", data={"csrf": csrf}, files=_files(broken))
        assert r.status_code == 400
        assert (
            "The export has no column 'arm' (the group each person is in), which the design needs"
            in unescape(r.text)
        )
        assert "Traceback" not in r.text
        assert 'action="/analyse/start"' in c.get("/analyse").text and "disabled" in c.get("/analyse").text


def test_a_renamed_column_can_be_mapped_with_the_dropdowns(exports, tmp_path):
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        renamed = []
        for k, p in enumerate(exports):
            q = tmp_path / f"r{k}.csv"
            q.write_text(
                p.read_text(encoding="utf-8").replace("admin/arm", "admin/group", 1), encoding="utf-8"
            )
            renamed.append(q)
        r = c.post("/data/upload", data={"csrf": csrf}, files=_files(renamed))
        assert (
            r.status_code == 400 and 'name="map:admin/group"' in r.text and '<option value="arm">' in r.text
        )
        r = c.post("/data/map", data={"csrf": csrf, "map:admin/group": "arm"})
        assert r.status_code == 200 and "The data are ready to analyse" in r.text


def test_uploads_are_stored_under_the_apps_own_names(exports):
    """A file name sent by the browser is never used as a path (no path traversal)."""
    app = create_app(token=TOKEN)
    with _client(app) as c:
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        names = ["../../../../tmp/evil.csv", "..\\..\\evil2.csv", "/etc/cron.d/evil3"]
        r = c.post("/data/upload", data={"csrf": csrf}, files=_files(exports, names))
        assert r.status_code == 200 and "The data are ready to analyse" in r.text
        [s] = app.state.sessions._sessions.values()
        assert sorted(p.name for p in (s.folder / "uploads").iterdir()) == [
            "wave-1.csv",
            "wave-2.csv",
            "wave-3.csv",
        ]
        assert not Path("/tmp/evil.csv").exists() and not Path("/etc/cron.d/evil3").exists()
        for path in ("/download/..%2F..%2Fetc%2Fpasswd", "/download/../../etc/passwd", "/download/uploads"):
            assert c.get(path).status_code == 404, path


# --------------------------------------------------------------------------------------------- sessions
def test_two_sessions_never_see_each_others_files(exports):
    app = create_app(token=TOKEN)
    with _client(app) as a, _client(app) as b:
        csrf_a, _ = _enter(a), _enter(b)
        a.post("/plan/build", data=_design_form(csrf_a))
        a.post("/data/upload", data={"csrf": csrf_a}, files=_files(exports))
        assert a.get("/download/design").status_code == 200
        assert b.get("/download/design").status_code == 404
        assert (
            "ready to analyse" not in b.get("/data").text
            and "Build or upload a design" in b.get("/data").text
        )
        s_a, s_b = app.state.sessions._sessions.values()
        assert s_a.folder != s_b.folder and not list(s_b.folder.iterdir())
        assert b.post("/analyse/start", data={"csrf": _csrf(b.get("/analyse").text)}).status_code == 400


def test_session_folders_are_deleted_when_idle_and_at_shutdown(exports):
    import time

    app = create_app(token=TOKEN, idle_minutes=1)
    with _client(app) as a, _client(app) as b:
        _enter(a), _enter(b)
        s_a, s_b = app.state.sessions._sessions.values()
        s_b.last_seen = time.monotonic() - 120  # b idle for two minutes
        assert app.state.sessions.sweep() == 1
        assert s_a.folder.is_dir() and not s_b.folder.exists()
        assert b.get("/data").status_code == 200  # b starts afresh, with a new folder
        folders = [s.folder for s in app.state.sessions._sessions.values()]
        assert len(folders) == 2 and all(f.is_dir() for f in folders)
    assert not any(f.exists() for f in folders)  # the server stopped: every folder is gone


def test_no_token_and_no_personal_value_in_the_logs(exports, caplog):
    caplog.set_level(logging.DEBUG)
    with _client(create_app(token=TOKEN)) as c:
        c.get("/plan?token=wrong-guess")
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        c.post("/data/upload", data={"csrf": csrf}, files=_files(exports))
    server = (
        "evaltoolkit",
        "uvicorn",
        "fastapi",
        "starlette",
    )  # the test client's own httpx log is not the app's
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server))
    assert "GET /plan" in text  # requests are logged, by path only
    assert TOKEN not in text and "wrong-guess" not in text and csrf not in text and "token=" not in text
    ids = exports[0].read_text(encoding="utf-8").splitlines()[1].split(";")[2]  # the first person's ID
    assert f" {ids} " not in text


# --------------------------------------------------------------------------------------------- jobs and CLI
def test_a_running_job_can_be_cancelled(tmp_path):
    import json

    import evaltoolkit as et

    design = et.load_design("ncs_prepost_control")
    (tmp_path / "design.json").write_text(json.dumps(design.model_dump(mode="json", exclude={"source"})))
    job = Job("diagnose", tmp_path, sims=100000)
    assert job.running
    job.cancel()
    st = job.status()
    assert st["state"] == "cancelled" and not job.process.is_alive() and not job.running


def test_serve_refuses_a_remote_address_without_the_flag(capsys):
    from evaltoolkit.cli.app import main

    assert main(["serve", "--host", "0.0.0.0", "--check"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--allow-remote", "--check"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "not encrypted" in captured.err


def test_serve_without_the_app_extra_says_what_to_install(monkeypatch, capsys):
    import sys

    from evaltoolkit.cli.app import main

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the extra were not installed
    assert main(["serve", "--check"]) == 2
    err = capsys.readouterr().err
    assert "install evaltoolkit[app]" in err and len(err.strip().splitlines()) == 1


def test_the_demo_starts_every_session_ready_to_analyse():
    app = create_app(token=TOKEN, demo=True)
    with _client(app) as c:
        _enter(c)
        data = unescape(c.get("/data").text)
        assert "The data are ready to analyse" in data and "Before the programme" in data
        assert "disabled" not in c.get("/analyse").text.split('id="run"')[1][:20]
        assert c.get("/download/design").status_code == 200


def test_the_diagnosis_is_the_librarys(tmp_path):
    """The plan page's diagnosis runs et.diagnose in the worker: the same numbers as calling it directly (its
    numbers are checked against PowerUp! and Gelman & Carlin in tests/test_diagnose.py)."""
    import time

    import evaltoolkit as et

    app = create_app(token=TOKEN, demo=True)
    with _client(app) as c:
        csrf = _csrf(c.get(f"/plan?token={TOKEN}").text)
        c.post("/plan/diagnose", data={"csrf": csrf, "sims": "10"})
        for _ in range(240):
            st = c.get("/analyse/status").json()
            if st["state"] not in ("starting", "running"):
                break
            time.sleep(0.25)
        [s] = app.state.sessions._sessions.values()
        design = et.load_design(s.state["design"])
        plan_page = unescape(c.get("/plan").text)  # the plan page keeps the finished diagnosis
    assert st["state"] == "done", st
    direct = et.diagnose(design, sims=10, seed=0)
    got = {r["diagnosand"]: r["estimate"] for r in st["diagnosis"]["rows"]}
    assert got["power"] == direct.value("power")[0] and got["bias"] == pytest.approx(
        direct.value("bias")[0], abs=1e-12
    )
    assert st["diagnosis"]["rating"] == direct.evidence_rating
    assert st["diagnosis"]["padlocks"] == direct.padlocks
    shown = plan_page.split('id="plan-diagnosis"')[1]
    assert f"{direct.value('power')[0]:.3f}" in shown and f"{direct.padlocks} of 5 padlocks" in shown
    assert "The rating is the lowest of the three." in shown


@pytest.mark.parametrize("fmt", ["spss", "kobo-xlsx"])
def test_other_export_formats_are_read(fmt, tmp_path):
    """One SPSS file holding every wave, or Kobo XLSX exports per wave: read as `evaltoolkit validate` reads them."""
    files = simulate_exports("ncs_prepost_control", tmp_path, format=fmt, n=120, seed=5)
    with _client(create_app(token=TOKEN)) as c:
        csrf = _enter(c)
        c.post("/plan/build", data=_design_form(csrf))
        if len(files) == 1:
            r = c.post("/data/upload", data={"csrf": csrf}, files={"file_all": ("x", files[0].read_bytes())})
        else:
            r = c.post("/data/upload", data={"csrf": csrf}, files=_files(files))
        assert r.status_code == 200 and "The data are ready to analyse" in r.text, unescape(r.text)[-1500:]


def test_two_launches_on_one_computer_keep_their_own_cookies():
    """Cookies are shared by every port of 127.0.0.1: each launch names its cookies after its own token."""
    with _client(create_app(token=TOKEN)) as c:
        first = c.get(f"/plan?token={TOKEN}", follow_redirects=False).headers["set-cookie"].split("=")[0]
    other = "another-launch-token-9876543210"
    with _client(create_app(token=other)) as c:
        second = c.get(f"/plan?token={other}", follow_redirects=False).headers["set-cookie"].split("=")[0]
    assert first != second and first.startswith("evaltoolkit_token_")
