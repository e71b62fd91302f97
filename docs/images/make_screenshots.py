"""Screenshots of each step of the web app for docs/app.md (docs/images/app-*.png).

Starts ``evaltoolkit serve --demo --no-browser`` on a free port, drives it with Playwright and the system's
headless Chromium (nothing is downloaded), and writes one PNG per step, reduced to a 64-colour palette so each
stays under 150 KB. Run from the repository root::

    .venv/bin/python docs/images/make_screenshots.py
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _save(page, name: str, full: bool = False) -> None:
    png = page.screenshot(full_page=full)
    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64)
    target = OUT / f"app-{name}.png"
    img.save(target, optimize=True)
    print(f"{target.relative_to(ROOT)}: {target.stat().st_size / 1000:.0f} kB")


def main() -> None:
    port = _free_port()
    cmd = [sys.executable, "-c", "import sys; from evaltoolkit.cli import main; sys.exit(main())", "serve",
           "--demo", "--no-browser", "--port", str(port)]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        url = None
        while url is None:
            m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", proc.stdout.readline())
            url = m.group(1) if m else None
        time.sleep(1.5)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 820})
            page.goto(url)
            page.click("#export")
            page.goto(f"{base}/questionnaire?show=ncs_social_mixing#items")
            page.goto(f"{base}/questionnaire")
            _save(page, "1-questionnaire")
            page.goto(f"{base}/plan#power")
            page.locator("#power").scroll_into_view_if_needed()
            _save(page, "2-plan")
            page.goto(f"{base}/data#checked")
            _save(page, "3-data")
            page.goto(f"{base}/analyse")
            page.click("#run")
            page.wait_for_selector("#stage:has-text('Running')", timeout=60_000)
            _save(page, "4-analyse")
            page.wait_for_selector("#to-report", state="visible", timeout=180_000)
            page.click("#to-report")
            page.wait_for_timeout(1500)
            _save(page, "5-report")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
