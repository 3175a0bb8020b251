"""Signing in and out, and the language switch.

A session comes from a key typed into the form (the settings key, or the send key for sending and
the journal) or from the one-time login link ``ccm-mail serve`` prints; either way the API makes
it (``POST /api/v1/session`` or ``/session/token``) and its HttpOnly cookie is handed to the
browser unchanged. The login form, which exists before any session, carries a token of its own
that must match a cookie set with the form (double submit), so no other site can post it.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .client import Answer
from .common import LANG_COOKIE, LANGS, api, call, error_text, safe_next, signed_in, t

bp = Blueprint("auth", __name__)

LOGIN_COOKIE = "ccm_login"


def _with_session(answer: Answer, target: str) -> Response:
    resp = redirect(target, code=303)
    for cookie in answer.cookies():
        resp.headers.add("Set-Cookie", cookie)
    return resp


def _login_page(error: tuple[str, str | None] | None = None, status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    body = render_template(
        "login.html",
        title=t("Anmelden", "Sign in"),
        login_token=token,
        error=error,
        next=request.values.get("next", ""),
    )
    resp = Response(body, status=status, mimetype="text/html")
    resp.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/ui/login", secure=request.scheme == "https"
    )
    return resp


@bp.get("/ui/login")
def login() -> Response:
    token = request.args.get("token")
    if token:  # the link ccm-mail serve printed: works once
        answer = api().call("POST", "/session/token", json={"token": token})
        if answer.ok:
            return _with_session(answer, url_for("accounts.list_accounts"))
        return _login_page(error_text(answer), status=401)
    return _login_page()


@bp.post("/ui/login")
def login_with_key() -> Response:
    presented, expected = request.form.get("login_token", ""), request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        return _login_page(
            (
                t(
                    "Das Anmeldeformular ist abgelaufen; bitte noch einmal.",
                    "The sign-in form has expired; please try again.",
                ),
                None,
            ),
            status=403,
        )
    key = request.form.get("key", "").strip()
    if not key:
        return _login_page((t("Bitte den Schlüssel eingeben.", "Please enter the key."), None), status=422)
    answer = api().call("POST", "/session", authorization=key)
    if not answer.ok:
        return _login_page(error_text(answer), status=401)
    target = safe_next(request.form.get("next"))
    if answer.data.get("scope") != "settings" and not request.form.get("next"):
        target = url_for("send.form")  # a send key: what it may do
    return _with_session(answer, target)


@bp.post("/ui/logout")
@signed_in
def logout() -> Response:
    answer = call("DELETE", "/session")
    resp = redirect(url_for("auth.login"), code=303)
    for cookie in answer.cookies():
        resp.headers.add("Set-Cookie", cookie)
    return resp


@bp.get("/ui/lang/<lang>")
def switch_language(lang: str) -> Response:
    """A preference only (no state on the server), so a plain link."""
    resp = redirect(safe_next(request.args.get("next")), code=303)
    if lang in LANGS:
        resp.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            samesite="Strict",
            path="/",
            secure=request.scheme == "https",
            httponly=True,
        )
    g.lang = lang if lang in LANGS else g.lang
    return resp
