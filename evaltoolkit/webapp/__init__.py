"""The local web app (``evaltoolkit serve``): questionnaire, plan, data, analysis and report in a browser.

A thin layer over the library (FastAPI routes, Jinja2 templates, one small bundled script): every number comes from
the same functions the command line calls. :func:`~evaltoolkit.webapp.app.create_app` builds the app;
:mod:`~evaltoolkit.webapp.security` holds the launch token, CSRF and upload checks, :mod:`~evaltoolkit.webapp.sessions`
the per-browser temporary folders and :mod:`~evaltoolkit.webapp.jobs` the background analysis worker. Needs the
``app`` extra (``pip install evaltoolkit[app]``); nothing here is imported by ``import evaltoolkit``.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """Build the FastAPI app (see :func:`evaltoolkit.webapp.app.create_app`)."""
    from evaltoolkit.webapp.app import create_app as _create

    return _create(*args, **kwargs)
