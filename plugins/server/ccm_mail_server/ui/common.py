"""What every page needs: the language (German first; English by the browser or the switch),
the signed-in session as the API sees it, the CSRF check of a submitted form, dates for people,
and the API's error documents turned into text."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ccm_mail_core.config.model import PURPOSE_LABELS
from ccm_mail_hookspecs import T

from .client import Answer, Api

LANGS = ("de", "en")
LANG_COOKIE = "ccm_lang"
#: the two purposes AbSys sends, in the order the seed's dialog showed them
ABSYS_PURPOSES = ("eservice", "invoice")

STATUS_LABELS = {
    "queued": T("eingereiht", "queued"),
    "sending": T("wird gesendet", "sending"),
    "sent": T("gesendet", "sent"),
    "failed": T("fehlgeschlagen", "failed"),
    "unknown": T("unklar", "unknown"),
    "cancelled": T("abgebrochen", "cancelled"),
}


def choose_lang() -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGS:
        return str(chosen)
    best = request.accept_languages.best_match(list(LANGS)) if request.accept_languages else None
    return best or "de"


def t(de: str, en: str) -> str:
    """The page's text in its language (templates call it as ``t("Speichern", "Save")``)."""
    return en if g.get("lang") == "en" else de


def api() -> Api:
    return current_app.extensions["ccm_mail_api"]


def purpose_name(purpose: str) -> str:
    label = PURPOSE_LABELS.get(purpose)
    return label.get(g.get("lang", "de")) if label else purpose


def status_name(status: str) -> str:
    label = STATUS_LABELS.get(status)
    return label.get(g.get("lang", "de")) if label else status


def when(value: str | None) -> str:
    """An ISO time from the API as people read it, in this machine's time zone."""
    if not value:
        return "–"
    try:
        moment = datetime.fromisoformat(str(value)).astimezone()
    except ValueError:
        return str(value)
    return moment.strftime("%d.%m.%Y, %H:%M:%S" if g.get("lang") != "en" else "%Y-%m-%d %H:%M:%S")


def error_text(answer: Answer) -> tuple[str, str | None]:
    """(message, hint) of an API error document, in the page's language (the API chose it)."""
    error = answer.error
    if not error:
        return t(
            f"Unerwartete Antwort des Dienstes (HTTP {answer.status}).",
            f"unexpected answer from the service (HTTP {answer.status}).",
        ), None
    return str(error.get("message") or ""), error.get("hint")


def safe_next(target: str | None) -> str:
    """A page of ours to go back to, never another site (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/ui/"):
            return target
    return url_for("accounts.list_accounts")


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """The page needs a session: asked of the API (``GET /api/v1/session``), which also hands
    over the session's CSRF token for the page's forms. A submitted form must carry it."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        answer = api().call("GET", "/session")
        if answer.status == 401:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not answer.ok:
            return problem_page(answer)
        g.session = answer.data
        g.csrf = str(answer.data.get("csrf_token") or "")
        if request.method == "POST":
            presented = request.form.get("csrf_token", "")
            if not g.csrf or not hmac.compare_digest(presented.encode(), g.csrf.encode()):
                return csrf_refused()
            g.presented_csrf = presented
        return view(*args, **kwargs)

    return guarded


def call(method: str, path: str, **kwargs: Any) -> Answer:
    """An API call for the signed-in page, with the submitted form's CSRF token."""
    kwargs.setdefault("csrf", g.get("presented_csrf"))
    return api().call(method, path, **kwargs)


def csrf_refused() -> Response:
    body = render_template(
        "error.html",
        title=t("Sicherheitsprüfung fehlgeschlagen", "Security check failed"),
        message=t(
            "Das Formular trägt nicht das Sicherheitsmerkmal (CSRF-Token) dieser Sitzung; nichts wurde geändert.",
            "The form does not carry this session's security token (CSRF); nothing was changed.",
        ),
        hint=t("Die Seite neu laden und noch einmal versuchen.", "Reload the page and try again."),
    )
    return Response(body, status=403, mimetype="text/html")


def problem_page(answer: Answer) -> Response:
    message, hint = error_text(answer)
    if answer.status == 403 and answer.error.get("kind") == "forbidden":
        message = t(
            "Mit diesem Schlüssel (Senden) sind die Einstellungen nicht erreichbar.",
            "The settings are not available with this key (send).",
        )
        hint = t("Mit dem Einstellungs-Schlüssel anmelden.", "Sign in with the settings key.")
    body = render_template("error.html", title=t("Nicht möglich", "Not possible"), message=message, hint=hint)
    return Response(body, status=answer.status if answer.status >= 400 else 502, mimetype="text/html")


def must(answer: Answer) -> Any:
    """The data of a successful answer; anything else ends the page with the API's error."""
    if not answer.ok:
        abort(problem_page(answer))
    return answer.data
