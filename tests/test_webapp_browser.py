"""The web app in a real browser (Playwright driving the system's headless Chromium; nothing is downloaded).

The server is started as a user starts it (``evaltoolkit serve --no-browser`` on a free port, a subprocess) and
driven through the issue's happy path: pick the NCS instrument -> download the XLSForm -> build the design ->
upload a simulated Kobo export per wave -> run -> see the summary -> download the four files. Then three bad
inputs (a file of the wrong type, an export missing a required column, an oversized upload) each end in a clear
message; two concurrent sessions stay isolated; a request without the launch token is refused. Every browser
request is intercepted: any request to a host other than 127.0.0.1 fails the test. The server's log must not
carry the token.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    print(f"test_webapp_browser: skipped, {CHROMIUM} is absent (install it: apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is absent: the browser checks need headless Chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("fastapi")

from evaltoolkit.simulate.surveys import simulate_exports  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 0.3  # small, so an oversized upload is quick to make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``evaltoolkit serve`` in a subprocess; yields (launch URL, base URL, log file, process, folders before)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "stderr.txt"
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    cmd = [sys.executable, "-c", "import sys; from evaltoolkit.cli import main; sys.exit(main())", "serve",
           "--no-browser", "--port", str(port), "--max-upload-mb", str(LIMIT_MB)]  # fmt: skip
    before = set(Path(tempfile.gettempdir()).glob("evaltoolkit-app-*"))
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT)
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
            url = m.group(1) if m else None
        assert url, "the server did not print its launch link"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # wait until it accepts connections
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield url, base, log, proc, before
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def external() -> list[str]:
    return []


def _context(browser, external: list[str]):
    """A browser context (its own cookies: its own session) that fails any request to another host."""
    ctx = browser.new_context(accept_downloads=True)

    def guard(route):
        host = urlparse(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    ctx.route("**/*", guard)
    return ctx


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, list[Path]]:
    d = tmp_path_factory.mktemp("exports")
    return {
        "a": simulate_exports("ncs_prepost_control", d / "a", format="kobo", n=300, seed=11),
        "b": simulate_exports("ncs_prepost_control", d / "b", format="kobo", n=150, seed=12),
    }


def _build_design(page, base: str) -> None:
    page.goto(f"{base}/plan")
    page.click("#build")
    page.wait_for_selector("#power-summary")


def _upload(page, base: str, files: list[Path]) -> None:
    page.goto(f"{base}/data")
    for k, f in enumerate(files):
        page.set_input_files(f"#file_{k}", str(f))
    page.click("#check")


def _download(page, selector: str, tmp: Path) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    target = tmp / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_the_happy_path_from_questionnaire_to_the_four_files(server, browser, exports, external, tmp_path):
    url = server[0]
    ctx = _context(browser, external)
    page = ctx.new_page()
    page.goto(url)
    assert urlparse(page.url).path == "/questionnaire" and "token" not in page.url  # the token left the URL
    # 1. questionnaire: pick the NCS instrument, download the XLSForm
    page.check("#i-ncs_social_mixing")
    page.click("#choose")
    page.click("#export")
    xlsform = _download(page, "#dl-xlsform", tmp_path)
    assert xlsform.name == "questionnaire.xlsx" and xlsform.read_bytes()[:4] == b"PK\x03\x04"
    # 2. plan: the form starts from the NCS design; the quick plan leaves the slow analyses unticked
    page.click("text=Next: the plan")
    assert page.is_checked("input[value=did_primary]") and not page.is_checked("input[value=bayes_attitudes]")
    page.click("#build")
    assert "minimum detectable effect is" in page.inner_text("#power-summary")
    assert page.locator("svg.chart polyline").count() == 1
    # 3. data: one simulated Kobo export per wave
    page.click("text=Next: the data")
    for k, f in enumerate(exports["a"]):
        page.set_input_files(f"#file_{k}", str(f))
    page.click("#check")
    assert "The data are ready to analyse" in page.inner_text("#checked")
    # 4. analyse, in the background worker
    page.click("text=Next: analyse")
    page.click("#run")
    page.wait_for_selector("#to-report", state="visible", timeout=120_000)
    # 5. report: the summary, the report in the page, the four downloads
    page.click("#to-report")
    summary = page.inner_text("#summary")
    assert "Attitudes to other ethnic groups" in summary and "95% CI" in summary
    frame = page.frame_locator("#report-frame")
    assert frame.locator("h1").first.inner_text().strip()
    got = {}
    for sel in ("#dl-report", "#dl-estimates_xlsx", "#dl-summary_docx", "#dl-plan_html"):
        got[sel] = _download(page, sel, tmp_path)
    assert [p.name for p in got.values()] == ["report.html", "estimates.xlsx", "summary.docx", "plan.html"]
    assert "<html" in got["#dl-report"].read_text(encoding="utf-8")[:500].lower()
    assert got["#dl-estimates_xlsx"].read_bytes()[:2] == got["#dl-summary_docx"].read_bytes()[:2] == b"PK"
    assert "analysis plan" in got["#dl-plan_html"].read_text(encoding="utf-8").lower()
    ctx.close()
    assert external == []


def test_three_bad_inputs_each_end_in_a_clear_message(server, browser, exports, external, tmp_path):
    url, base, *_ = server
    ctx = _context(browser, external)
    page = ctx.new_page()
    page.goto(url)
    _build_design(page, base)
    # a file of the wrong type (a PNG named .csv)
    png = tmp_path / "answers.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200)
    page.goto(f"{base}/data")
    page.set_input_files("#file_all", str(png))
    page.click("#check")
    assert "is not a survey export this app reads" in page.inner_text("#error")
    # an export missing a required column (the group column, in every wave)
    broken = []
    for k, f in enumerate(exports["a"]):
        lines = f.read_text(encoding="utf-8").splitlines()
        drop = lines[0].split(";").index("admin/arm")
        out = tmp_path / f"no_arm_{k}.csv"
        out.write_text(
            "\n".join(";".join(c for i, c in enumerate(ln.split(";")) if i != drop) for ln in lines)
        )
        broken.append(out)
    _upload(page, base, broken)
    assert "has no column 'arm' (the group each person is in)" in page.inner_text("#error")
    # an oversized upload
    big = tmp_path / "big.csv"
    big.write_text("id,wave\n" + "".join(f"{i},baseline\n" for i in range(60_000)), encoding="utf-8")
    assert big.stat().st_size > LIMIT_MB * 1_000_000
    page.goto(f"{base}/data")
    page.set_input_files("#file_all", str(big))
    page.click("#check")
    assert "larger than this app's limit of 0.3 MB" in page.inner_text("body")
    ctx.close()
    assert external == []


def test_two_concurrent_sessions_are_isolated(server, browser, exports, external):
    url, base, *_ = server
    one, two = _context(browser, external), _context(browser, external)
    p1, p2 = one.new_page(), two.new_page()
    for page in (p1, p2):
        page.goto(url)
        _build_design(page, base)
    _upload(p1, base, exports["a"])
    _upload(p2, base, exports["b"])
    rows1, rows2 = p1.inner_text("#rows"), p2.inner_text("#rows")
    assert rows1 != rows2  # 300 and 150 people at baseline: each session sees its own upload
    p1.goto(f"{base}/data")
    p2.goto(f"{base}/data")
    assert p1.inner_text("#rows") == rows1 and p2.inner_text("#rows") == rows2
    # a third session has no file of either
    three = _context(browser, external)
    p3 = three.new_page()
    p3.goto(url)
    r = p3.request.get(f"{base}/download/design")
    assert r.status == 404
    p3.goto(f"{base}/data")
    assert "Build or upload a design" in p3.inner_text("main")
    for c in (one, two, three):
        c.close()
    assert external == []


def test_a_request_without_the_launch_token_is_refused(server, browser, external):
    _, base, log, *_ = server
    ctx = _context(browser, external)
    page = ctx.new_page()
    resp = page.goto(f"{base}/questionnaire")
    assert resp.status == 403
    assert "link printed by `evaltoolkit serve`" in page.inner_text("body")
    assert page.request.get(f"{base}/analyse/status").status == 403
    ctx.close()
    token = server[0].split("token=")[1]
    assert token not in log.read_text(encoding="utf-8")  # the server's log never carries the token


def test_a_run_can_be_cancelled_and_the_pages_stay_responsive(server, browser, exports, external):
    url, base, *_ = server
    ctx = _context(browser, external)
    page = ctx.new_page()
    page.goto(url)
    _build_design(page, base)
    _upload(page, base, exports["b"])
    page.goto(f"{base}/analyse")
    page.click("#run")
    other = ctx.new_page()  # the same session, while the worker runs
    t0 = time.monotonic()
    other.goto(f"{base}/questionnaire")
    assert time.monotonic() - t0 < 5 and other.locator("h1").inner_text() == "1. Questionnaire"
    other.close()
    page.click("#cancel")
    page.wait_for_selector("#stage:has-text('Cancelled')", timeout=20_000)
    assert "cancelled" in page.inner_text("#job-error").lower()
    page.goto(f"{base}/report")
    assert "No report yet" in page.inner_text("main")
    ctx.close()
    assert external == []


def test_no_serious_accessibility_violations_on_any_step(server, browser, external):
    axe = pytest.importorskip("axe_playwright_python.sync_playwright")
    url, base, *_ = server
    ctx = _context(browser, external)
    page = ctx.new_page()
    page.goto(url)
    _build_design(page, base)
    serious = {}
    for path in ("/questionnaire?show=ncs_social_mixing", "/plan", "/data", "/analyse", "/report"):
        page.goto(base + path)
        found = axe.Axe().run(page).response["violations"]
        serious[path] = [(v["id"], len(v["nodes"])) for v in found if v["impact"] in ("serious", "critical")]
    ctx.close()
    assert all(v == [] for v in serious.values()), serious


def test_stopping_the_server_deletes_every_session_folder(server):
    """Run last: stop the server as Ctrl+C would; every session folder it made is gone."""
    *_, proc, before = server
    made = set(Path(tempfile.gettempdir()).glob("evaltoolkit-app-*")) - before
    assert made  # the sessions of the tests above
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert not [p for p in made if p.exists()]
