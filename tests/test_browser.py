"""The report in a real browser (Playwright driving the system's headless Chromium; nothing is downloaded).

Checks what a reader meets: no sideways scrolling on a laptop or a phone, readable headers and terms, text
alternatives for figures, no serious accessibility violations (axe-core) and tables that fit an A4 page.
Each check failed on the 0.1 report (page 1551 px wide at 1280 px, 61 machine names, repeated alt texts, a
1436 px table on a 680 px page).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    print(f"test_browser: skipped, {CHROMIUM} is absent (install it: apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is absent: the browser checks need headless Chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser
SNAKE = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")
#: A4 (210 mm) less 15 mm margins each side, in CSS pixels (96 per inch)
PRINTABLE_PX = (210 - 2 * 15) / 25.4 * 96


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    import evaltoolkit as et
    from evaltoolkit.plan.run import run_plan
    from evaltoolkit.report.render import write_report

    sim = et.simulate_study("ncs_prepost_control", n=600, seed=1)
    res = run_plan(et.Study(sim.design, sim.data))
    return write_report(res, tmp_path_factory.mktemp("browser"))["report"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, report: Path, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(report.as_uri())
    return page


_CELLS_JS = """() => {
  const headers = [...document.querySelectorAll('th')].map(th => th.textContent.trim());
  const terms = [];
  for (const table of document.querySelectorAll('table')) {
    const ths = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
    const at = ths.indexOf('Term');
    if (at < 0) continue;
    for (const tr of table.querySelectorAll('tbody tr')) {
      const td = tr.children[at];
      if (td) terms.push(td.textContent.trim());
    }
  }
  return {headers, terms};
}"""


@pytest.mark.parametrize("width", [1280, 400])
def test_no_sideways_scrolling(browser, report, width):
    page = _open(browser, report, width)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    page.close()
    assert scroll <= width


def test_headers_and_terms_are_readable_labels(browser, report):
    page = _open(browser, report, 1280)
    cells = page.evaluate(_CELLS_JS)
    page.close()
    assert cells["headers"] and cells["terms"]
    machine = [h for h in cells["headers"] if SNAKE.match(h)]
    machine += [t for t in cells["terms"] if SNAKE.match(t) or "@" in t or ":" in t]
    assert machine == []


def test_every_image_has_a_distinct_alt_text(browser, report):
    page = _open(browser, report, 1280)
    alts = page.evaluate("[...document.images].map(i => i.getAttribute('alt'))")
    page.close()
    assert alts and all(a and a.strip() for a in alts)
    assert len(set(alts)) == len(alts)


def test_no_serious_accessibility_violations(browser, report):
    axe = pytest.importorskip("axe_playwright_python.sync_playwright")
    page = _open(browser, report, 1280)
    found = axe.Axe().run(page).response["violations"]
    page.close()
    serious = [
        (v["id"], v["impact"], len(v["nodes"])) for v in found if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def test_printed_tables_fit_the_a4_page(browser, report, tmp_path):
    page = _open(browser, report, round(PRINTABLE_PX))
    page.emulate_media(media="print")
    widest = page.evaluate(
        "Math.max(0, ...[...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().width))"
    )
    pdf = tmp_path / "report.pdf"
    page.pdf(
        path=str(pdf), format="A4", margin={"top": "15mm", "bottom": "15mm", "left": "15mm", "right": "15mm"}
    )
    page.close()
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert widest <= PRINTABLE_PX + 0.5, f"widest table {widest:.0f} px; the page has {PRINTABLE_PX:.0f} px"
