"""``evaltoolkit serve``: start the local web app (questionnaire, plan, data, analysis, report in a browser).

Registered in the main CLI with ``app.command("serve")(plain_errors(serve_cmd))``. FastAPI and uvicorn (the
``app`` extra) are imported only when the command runs, so ``evaltoolkit --help`` stays fast; without them the
command says in one line how to install them (exit 2). It binds to 127.0.0.1 unless told otherwise: another
address needs ``--allow-remote`` and prints a warning.

Examples
--------
>>> from evaltoolkit.cli.app import main
>>> main(["serve", "--check"])  # doctest: +ELLIPSIS
Ready: ... would serve http://127.0.0.1:8765 ...
0
>>> main(["serve", "--host", "0.0.0.0", "--check"])
2
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from evaltoolkit.cli.common import console as _console
from evaltoolkit.cli.common import err_console as _err_console
from evaltoolkit.cli.common import example

__all__ = ["EPILOG", "is_loopback", "serve_cmd"]

EPILOG = example("evaltoolkit serve --check", "evaltoolkit serve --demo --check")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this computer only (127.0.0.0/8, ::1 or ``localhost``).

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("192.168.1.5")
    (True, True, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_cmd(
    host: Annotated[
        str, typer.Option(help="Address to listen on (default: this computer only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the browser.")] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow an address other than 127.0.0.1: other computers on the network can then reach the app "
            "(they still need the launch link).",
        ),
    ] = False,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Start every session on the demo study (NCS, simulated Kobo exports)."),
    ] = False,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, in MB.")] = 50.0,
    idle_minutes: Annotated[
        float, typer.Option(help="Delete a session's files after this many idle minutes.")
    ] = 120.0,
    check: Annotated[
        bool,
        typer.Option("--check", help="Check that the app can start (the app extra is installed), then exit."),
    ] = False,
) -> None:
    """Start the web app on http://127.0.0.1:8765 and open it in the browser (Ctrl+C stops it, deleting its files)."""
    from evaltoolkit.errors import UsageError

    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError:
        raise UsageError(
            "the web app needs the app extra: install evaltoolkit[app] (pip install 'evaltoolkit[app]')"
        ) from None
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535 (got {port})")
    if max_upload_mb <= 0 or idle_minutes <= 0:
        raise UsageError("--max-upload-mb and --idle-minutes must be positive")
    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise UsageError(
            f"--host {host} would let other computers reach the app and its personal data; add --allow-remote "
            "if that is what you want (or leave --host out to stay on this computer)"
        )
    from evaltoolkit.webapp.app import create_app
    from evaltoolkit.webapp.security import new_token

    token = new_token()
    hosts = ("*",) if remote else ("127.0.0.1", "localhost", host)
    app = create_app(
        token, max_upload_mb=max_upload_mb, idle_minutes=idle_minutes, demo=demo, allowed_hosts=hosts
    )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/?token={token}"
    con = _console()
    if remote:
        _err_console().print(
            f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach this computer on port {port} "
            "and has the link below can use the app and see its data; the connection is not encrypted."
        )
    if check:
        con.print(
            f"Ready: evaltoolkit would serve http://{shown}:{port} (uploads up to {max_upload_mb:g} MB)."
        )
        return
    con.print(f"evaltoolkit web app{' (demo study)' if demo else ''}: open {url}")
    con.print("Keep this link private (it is this launch's key). Ctrl+C stops the app and deletes its files.")
    if not no_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    # no access log: request lines would carry the query string (the token); the app logs paths only
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", server_header=False)
