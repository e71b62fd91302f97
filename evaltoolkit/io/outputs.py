"""Writing outputs safely: never over an input file, and never half-written.

Every command that writes files checks first that none of its outputs is one of its inputs
(:func:`refuse_overwriting_inputs`), then writes each output to a temporary file beside it and renames it into place
(:func:`atomic_write`), so an interrupted run leaves either the old file or the new one, never a torn one.

Examples
--------
>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> data = d / "export.csv"
>>> _ = data.write_text("id\\n1\\n")
>>> refuse_overwriting_inputs([d / "issues.csv"], [data])      # fine: a different file
>>> try:
...     refuse_overwriting_inputs([data], [data])
... except Exception as err:
...     print(type(err).__name__)
UsageError
>>> write_text(d / "report.txt", "done").read_text()
'done'
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from evaltoolkit.errors import UsageError

__all__ = ["atomic_write", "refuse_overwriting_inputs", "write_csv", "write_excel", "write_text"]


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_overwriting_inputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None]) -> None:
    """Raise :class:`~evaltoolkit.errors.UsageError` if any output path is one of the input files.

    The message names both and says what to do; nothing has been written when it is raised.
    """
    ins = [Path(p) for p in inputs if p is not None and Path(p).is_file()]
    for out in (Path(o) for o in outputs):
        for src in ins:
            if _same(out, src):
                raise UsageError(
                    f"the output {out} would overwrite the input file {src}; choose another --out "
                    "(evaltoolkit never changes an input file)"
                )


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask, read once (reading it means setting it for an instant)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place in one step."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(
            tmp, 0o666 & ~_umask()
        )  # mkstemp makes 0600: give the file the permissions a plain write would
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(frame: Any, path: str | Path, **kwargs: Any) -> Path:
    """Write a DataFrame as CSV atomically (``kwargs`` go to :meth:`pandas.DataFrame.to_csv`)."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, **kwargs))


def write_excel(frame: Any, path: str | Path, sheet_name: str = "Sheet1", **kwargs: Any) -> Path:
    """Write a DataFrame as one sheet of an .xlsx workbook atomically (openpyxl)."""
    import pandas as pd

    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            frame.to_excel(xw, sheet_name=sheet_name, **kwargs)

    return atomic_write(path, write)
