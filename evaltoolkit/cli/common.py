r"""What every ``evaltoolkit`` command shares: the global ``-q``/``-v`` state, consoles and help examples.

Only the standard library is imported at start-up (rich is imported when a console is first made), so
``evaltoolkit --help`` stays fast.

Examples
--------
>>> example("evaltoolkit demo --out my-demo").splitlines()
['', 'Example:', '', '\x08', '    evaltoolkit demo --out my-demo']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["STATE", "console", "err_console", "example", "progress"]


@dataclass
class _State:
    """Global options, set by the main callback before any command runs."""

    quiet: bool = False
    verbose: bool = False


STATE = _State()


def console() -> Any:
    """Console for normal output (silent under ``--quiet``); long lines are never re-wrapped."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, quiet=STATE.quiet)


def err_console() -> Any:
    """Console for errors and cautions on stderr: never silenced, never wrapped (one line per message)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def progress() -> Any:
    """A transient spinner with elapsed time (nothing under ``--quiet`` or when output is not a terminal)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=True,
        disable=STATE.quiet,
    )


def example(*commands: str) -> str:
    """Help epilog with worked example(s), laid out verbatim (click's ``\\b`` marker stops re-wrapping)."""
    body = "\n".join(f"    {c}" for c in commands)
    return f"\nExample{'s' if len(commands) > 1 else ''}:\n\n\b\n{body}"
