"""The pages' one way to the settings, the journal and sending: the JSON API under ``/api/v1``,
called in this process with the browser's own session.

Every page action is an API request with the browser's session cookie, its CSRF token (from the
submitted form) and its language: the API authenticates it, checks its scope and CSRF token,
validates the body and answers exactly as it answers AbSys. There is no second path to the
configuration, the journal or the transports.

The API is a Flask app of its own, so its request and app contexts (``g``) are its own and never
mix with the page's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, g, request
from werkzeug.datastructures import Headers
from werkzeug.test import Client

from ..app import API, CSRF_HEADER, SESSION_COOKIE


@dataclass(slots=True)
class Answer:
    status: int
    data: Any
    headers: Headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict[str, Any]:
        """The error document's ``error`` part (``{}`` for a success)."""
        if self.ok or not isinstance(self.data, dict):
            return {}
        return dict(self.data.get("error") or {})

    @property
    def problems(self) -> list[dict[str, Any]]:
        """config check's problems of a refused settings change (every one of them)."""
        if self.ok or not isinstance(self.data, dict):
            return []
        return list(self.data.get("problems") or [])

    def cookies(self) -> list[str]:
        return self.headers.getlist("Set-Cookie")


class Api:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Any = None,
        authorization: str | None = None,
        csrf: str | None = None,
    ) -> Answer:
        """``method API+path`` as the browser behind this page request.

        :param csrf: the token the submitted form carried (forwarded as ``X-CSRF-Token``; the API
            refuses a changing request whose token does not match the session).
        :param authorization: a key typed into the login form (only to make a session).
        """
        headers = Headers({"Accept-Language": g.get("lang", "de")})
        sid = request.cookies.get(SESSION_COOKIE)
        if sid and authorization is None:
            headers["Cookie"] = f"{SESSION_COOKIE}={sid}"
        if authorization is not None:
            headers["Authorization"] = f"Bearer {authorization}"
        if csrf is not None:
            headers[CSRF_HEADER] = csrf
        client = Client(self.app, use_cookies=False)
        resp = client.open(
            API + path,
            method=method,
            json=json,
            query_string=query,
            headers=headers,
            environ_overrides={"REMOTE_ADDR": request.remote_addr or "", "wsgi.url_scheme": request.scheme},
        )
        try:
            data = resp.get_json(silent=True)
            if data is None:
                data = resp.get_data(as_text=True)
            return Answer(resp.status_code, data, Headers(resp.headers))
        finally:
            resp.close()
