"""The app's guards: the launch token, CSRF tokens, security headers, upload size and type checks.

* Every request needs the per-launch token: once in the URL (``?token=...``), then from an HttpOnly,
  SameSite=Strict cookie (the URL is redirected to drop it, so it leaves the address bar and history).
* Every POST carries the session's CSRF token (a form field or the ``X-CSRF-Token`` header).
* Uploads are limited in size (the request body is counted as it arrives) and recognised by their content,
  never by their name: :func:`sniff_upload`.
* Every page has a Content-Security-Policy allowing only the app's own origin.

Examples
--------
>>> sniff_upload(b"PK\\x03\\x04rest"), sniff_upload(b"$FL2@(#) SPSS"), sniff_upload(b"<stata_dta><header>")
('.xlsx', '.sav', '.dta')
>>> sniff_upload(b"id,wave\\n1,baseline\\n"), sniff_upload(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00")
('.csv', None)
>>> same_token("abc", "abc"), same_token("abc", None)
(True, False)
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "CSP",
    "REPORT_CSP",
    "BodyLimit",
    "BodyTooLarge",
    "new_token",
    "same_token",
    "sniff_upload",
]

#: pages: only the app's own scripts, styles, images and forms; no framing by other sites
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "object-src 'none'"
)
#: the report shown in the page: its own inline styles and embedded figures, no script, nothing fetched
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def new_token() -> str:
    """A random token (256 bits of entropy, URL-safe)."""
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    """Compare tokens in constant time (``None`` never matches)."""
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())


def sniff_upload(head: bytes) -> str | None:
    """The kind of a survey export from its first bytes: ``.xlsx``, ``.sav``, ``.dta``, ``.csv`` or ``None``.

    XLSX is a zip archive (``PK\\x03\\x04``), SPSS starts ``$FL2``/``$FL3``, Stata 13+ ``<stata_dta>`` and Stata
    8-12 with a format byte 113-115; text (CSV, TSV, Qualtrics and Kobo CSV) is anything without NUL bytes that
    decodes as UTF-8 or Latin-1 and has no control characters other than tabs and line breaks. Anything else
    (images, PDFs, executables, old binary Excel) is refused.
    """
    if head.startswith(b"PK\x03\x04"):
        return ".xlsx"
    if head[:4] in (b"$FL2", b"$FL3"):
        return ".sav"
    if head.startswith(b"<stata_dta>") or (
        len(head) > 2 and head[0] in (113, 114, 115) and head[1] in (1, 2)
    ):
        return ".dta"
    if not head or b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a multi-byte character cut at the end of the sample
            text = head[: exc.start].decode("utf-8")
        else:
            text = head.decode("latin-1")
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return ".csv" if bad == 0 else None


class BodyTooLarge(Exception):
    """The request body passed the upload limit."""


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes (by its Content-Length, then by counting).

    An oversized request gets status 413 and one plain sentence; the body is read and discarded first so the
    browser shows the answer instead of a broken connection.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._drain(receive)
            await self._refuse(send)
            return
        seen, more = 0, True

        async def counted() -> Message:
            nonlocal seen, more
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                more = bool(msg.get("more_body"))
                if seen > self.limit:
                    raise BodyTooLarge
            return msg

        started = False

        async def watched_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, watched_send)
        except Exception as exc:  # raised in receive; the framework may wrap it in an exception group
            too_large = isinstance(exc, BodyTooLarge) or (
                isinstance(exc, BaseExceptionGroup) and exc.subgroup(BodyTooLarge) is not None
            )
            if not too_large:
                raise
            if not started:
                if more:
                    await self._drain(receive)
                await self._refuse(send)

    async def _drain(self, receive: Callable[[], Awaitable[Message]]) -> None:
        while True:
            msg = await receive()
            if msg["type"] != "http.request" or not msg.get("more_body"):
                return

    async def _refuse(self, send: Any) -> None:
        mb = self.limit / 1_000_000
        text = (
            f"The upload is larger than this app's limit of {mb:g} MB. Upload a smaller export (one per wave), "
            "or start the app with a higher limit: evaltoolkit serve --max-upload-mb N."
        )
        body = _plain_page("Upload too large", text).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"content-security-policy", CSP.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _plain_page(title: str, text: str) -> str:
    from html import escape

    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<link rel="stylesheet" href="/static/app.css"></head><body><main>'
        f'<h1>{escape(title)}</h1><p class="error" role="alert">{escape(text)}</p>'
        '<p><a href="/data">Back to the data page</a></p></main></body></html>'
    )
