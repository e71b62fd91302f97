"""The documentation site (``mkdocs.yml``, ``make docs``) builds with ``--strict``, offline, and its links resolve.

The site is built into a temporary folder without executing the notebooks (the test suite runs them in
``tests/test_notebooks.py``). Every ``href``/``src`` in the built HTML that points inside the site must name a
built file, and a ``#fragment`` an element id of that file. No page may load a script, stylesheet or image from
another host (the site reads offline). The README must link to the site's index and to every notebook.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: link schemes that leave the site (checked for loading resources, not followed)
EXTERNAL = ("http:", "https:", "mailto:", "data:", "javascript:", "tel:")


class _Page(HTMLParser):
    """Collects element ids and the (tag, attribute, value) of every href/src in one HTML file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        rel = dict(attrs).get("rel") or ""
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            elif name in ("href", "src") and value is not None:
                # a <link> that loads something (stylesheet, script, icon) counts as loading, like src
                loads = name == "src" or (
                    tag == "link" and rel not in ("canonical", "alternate", "prev", "next")
                )
                self.links.append((tag, "load" if loads else name, value))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "EVALTOOLKIT_DOCS_EXECUTE": "false", "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert not warnings, "mkdocs warned:\n" + "\n".join(warnings)
    return out


def _pages(site: Path) -> dict[Path, _Page]:
    pages = {}
    for path in site.rglob("*.html"):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path] = page
    return pages


def test_site_builds_strict_with_every_page(site: Path) -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    assert config["theme"]["font"] == "false", "Material must not load web fonts (offline build)"
    for md in sorted((ROOT / "docs").glob("*.md")):
        assert (site / f"{md.stem}.html").is_file(), f"docs/{md.name} was not built"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (site / "notebooks" / f"{nb.stem}.html").is_file(), f"notebooks/{nb.name} was not built"
        assert f"notebooks/{nb.name}" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), (
            f"notebooks/{nb.name} is not in the nav of mkdocs.yml"
        )
    api = (site / "api" / "estimators.html").read_text(encoding="utf-8")
    assert (
        'id="evaltoolkit.estimators.did.did"' in api and "Parameters" in api
    )  # mkdocstrings rendered numpydoc
    assert 'id="evaltoolkit.plan.diagnose.diagnose"' in (site / "api" / "plan.html").read_text(
        encoding="utf-8"
    )


def test_every_internal_link_resolves_and_nothing_loads_from_elsewhere(site: Path) -> None:
    pages = _pages(site)
    broken, remote = [], []
    for path, page in pages.items():
        if path.name == "404.html":  # served from any folder, so its links are absolute by design
            continue
        for tag, attr, value in page.links:
            if not value:
                continue
            if value.lower().startswith(EXTERNAL) or value.startswith("//"):
                if attr == "load":
                    remote.append(f"{path.relative_to(site)}: <{tag} {value}>")
                continue
            parts = urlsplit(value)
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}: <{tag}> {value!r}"
            if not target.is_file() or site.resolve() not in target.resolve().parents:
                broken.append(f"{where} (no file {target})")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _pages(target.parent)[target].ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no anchor #{parts.fragment})")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])
    assert not remote, "pages load resources from other hosts:\n" + "\n".join(remote[:20])


def test_readme_links_to_the_site_and_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = set(re.findall(r"\]\(([^)\s#]+)", readme))
    assert "docs/index.md" in targets, "README must link to the documentation site's index (docs/index.md)"
    assert "make docs" in readme
    missing = [
        nb.name
        for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
        if f"notebooks/{nb.name}" not in targets
    ]
    assert not missing, f"README does not link to {', '.join(missing)}"
    for target in targets:
        if not target.startswith(EXTERNAL):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
