"""``report.pdf``: the HTML report printed on A4 by headless Chromium, when the machine has it.

The report's own print style sheet decides the layout; this module only asks Chromium to print the file (no
network: the report is self-contained). Without Chromium, :func:`write_pdf` writes nothing, says why and returns
``None``; the HTML report is complete without it.

Examples
--------
>>> find_chromium(["/nonexistent/chromium"]) is None
True
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from evaltoolkit.io.outputs import atomic_write

__all__ = ["CHROMIUM", "find_chromium", "write_pdf"]

#: where Chromium is looked for, in order (paths, then names on ``PATH``)
CHROMIUM: tuple[str, ...] = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
#: seconds Chromium may take to print one report
TIMEOUT = 120
#: added to the copy that is printed, so the paper is A4 whatever the report's own style sheet says
A4 = "<style>@page { size: A4; margin: 15mm; }</style>"


def find_chromium(candidates: Sequence[str] = CHROMIUM) -> str | None:
    """The first Chromium executable among ``candidates`` (a path or a name on ``PATH``), or ``None``."""
    for c in candidates:
        found = shutil.which(c)
        if found:
            return found
    return None


def _a4_copy(html_path: Path, folder: Path) -> Path:
    """A copy of the report with the A4 page rule added (the report itself is left as it is)."""
    text = html_path.read_text(encoding="utf-8")
    head = text.lower().find("</head>")
    text = text[:head] + A4 + text[head:] if head >= 0 else A4 + text
    copy = folder / html_path.name
    copy.write_text(text, encoding="utf-8")
    return copy


def _print_command(chromium: str, html_path: Path, pdf_path: Path, profile: str) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-pdf-header-footer",
        f"--user-data-dir={profile}",
        f"--print-to-pdf={pdf_path}",
        html_path.resolve().as_uri(),
    ]


def write_pdf(html_path: str | Path, pdf_path: str | Path, *, chromium: str | None = None) -> Path | None:
    """Print ``html_path`` to ``pdf_path`` (A4, the report's print style) with headless Chromium.

    Parameters
    ----------
    html_path : str or Path
        The report to print.
    pdf_path : str or Path
        The PDF to write (atomically).
    chromium : str, optional
        The Chromium executable; by default the first of :data:`CHROMIUM` found.

    Returns
    -------
    Path or None
        ``pdf_path``, or ``None`` when there is no Chromium or it failed (the reason is printed to stderr).
    """
    exe = chromium or find_chromium()
    if exe is None:
        print(
            "report.pdf not written: Chromium was not found (install it, e.g. 'apt-get install chromium', "
            "or print report.html from a browser)",
            file=sys.stderr,
        )
        return None
    html = Path(html_path)
    failure: list[str] = []

    def render(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="evaltoolkit-chromium-") as work:
            page = _a4_copy(html, Path(work))
            proc = subprocess.run(
                _print_command(exe, page, tmp, str(Path(work) / "profile")),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        if proc.returncode or not tmp.exists() or tmp.stat().st_size == 0:
            failure.append(
                proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            )
            raise RuntimeError(failure[-1])

    try:
        return atomic_write(pdf_path, render)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        print(f"report.pdf not written: Chromium could not print {html.name} ({err})", file=sys.stderr)
        return None
