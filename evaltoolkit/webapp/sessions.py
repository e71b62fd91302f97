"""One temporary folder per browser session, deleted after an idle timeout and when the server stops.

A session is named by a random cookie; its files live only in its own :func:`tempfile.mkdtemp` folder under fixed
names chosen here (never a name sent by the browser), so two sessions never see each other's files.

Examples
--------
>>> store = SessionStore(idle_seconds=60)
>>> s = store.create()
>>> s.folder.is_dir(), store.get(s.id) is s, store.get("nope") is None
(True, True, True)
>>> store.close_all(); s.folder.exists()
False
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Session", "SessionStore"]


@dataclass
class Session:
    """A browser session: its folder, CSRF token, what the user chose so far and its background job.

    Attributes
    ----------
    id : str
        The session cookie's value (random).
    folder : Path
        Its private temporary folder.
    csrf : str
        The token every POST form of this session must carry.
    state : dict
        The user's choices (instruments, design, uploads...), plain values only.
    job : Any
        The running or last background job (:class:`~evaltoolkit.webapp.jobs.Job`), or ``None``.
    jobs : dict
        The last job of each task (``"analyse"``, ``"diagnose"``).
    """

    id: str
    folder: Path
    csrf: str
    state: dict[str, Any] = field(default_factory=dict)
    job: Any = None
    jobs: dict[str, Any] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.monotonic)

    def path(self, *parts: str) -> Path:
        """A path inside the session folder (``parts`` are names chosen by the app, never by the browser)."""
        p = self.folder.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def start(self, job: Any) -> Any:
        """Record a newly started job as the session's current one and its task's last."""
        self.job = self.jobs[job.task] = job
        return job

    def close(self) -> None:
        """Stop the jobs, if any, and delete the folder."""
        for job in self.jobs.values():
            job.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)


class SessionStore:
    """The live sessions; sessions idle longer than ``idle_seconds`` are closed by :meth:`sweep`.

    Parameters
    ----------
    idle_seconds : float
        Idle time after which a session and its files are deleted.
    """

    def __init__(self, idle_seconds: float = 2 * 3600) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> Session:
        """A new session with its own temporary folder."""
        s = Session(
            id=secrets.token_urlsafe(24),
            folder=Path(tempfile.mkdtemp(prefix="evaltoolkit-app-")),
            csrf=secrets.token_urlsafe(24),
        )
        with self._lock:
            self._sessions[s.id] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        """The live session with this id (its idle clock restarts), or ``None``."""
        if not sid:
            return None
        with self._lock:
            s = self._sessions.get(sid)
        if s is not None:
            s.last_seen = time.monotonic()
        return s

    def sweep(self, now: float | None = None) -> int:
        """Close the sessions idle longer than the timeout; returns how many were closed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [s for s in self._sessions.values() if now - s.last_seen > self.idle_seconds]
            for s in old:
                del self._sessions[s.id]
        for s in old:
            s.close()
        return len(old)

    def close_all(self) -> None:
        """Close every session (at shutdown)."""
        with self._lock:
            live = list(self._sessions.values())
            self._sessions.clear()
        for s in live:
            s.close()

    def __len__(self) -> int:
        return len(self._sessions)
