"""What ``ccm-mail serve`` serves: the JSON API under ``/api/v1`` and the pages beside it, one
WSGI application (cheroot runs it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .app import API, Sessions, create_app
from .service import Service
from .ui import create_ui


class Site:
    def __init__(self, service: Service) -> None:
        self.api = create_app(service)
        self.ui = create_ui(self.api)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        target = self.api if path == API or path.startswith(API + "/") else self.ui
        return target(environ, start_response)

    def login_path(self) -> str:
        """A one-time login link's path and query (``/ui/login?token=…``), as Jupyter prints one."""
        sessions: Sessions = self.api.extensions["ccm_mail_sessions"]
        return f"/ui/login?token={sessions.login_token()}"


def create_site(service: Service) -> Site:
    return Site(service)
