"""Vorlagen: subject and body per purpose (text or HTML), the placeholder catalog beside the editor
(a click inserts ``#Name#`` at the cursor), unknown placeholders marked before saving, and the
preview with the placeholders' example data exactly as ``ccm-mail preview`` prints it (the API's
``POST /api/v1/settings/templates/{purpose}/preview``; the script asks it while the admin types,
the *Vorschau* button without script)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .common import ABSYS_PURPOSES, call, error_text, must, signed_in, t

bp = Blueprint("templates", __name__)

PARTS = ("subject", "body", "format", "reference")


def _purposes(settings: dict[str, Any]) -> list[str]:
    others = sorted({*settings["templates"], *settings["purposes"]} - set(ABSYS_PURPOSES))
    return [*ABSYS_PURPOSES, *others]


def _page(
    purpose: str,
    draft: dict[str, str],
    *,
    trial: dict[str, Any] | None,
    saved: bool = False,
    problems: list[dict[str, Any]] | None = None,
    error: tuple[str, str | None] | None = None,
    status: int = 200,
) -> Response:
    settings = must(call("GET", "/settings"))
    catalog = must(call("GET", "/placeholders", query={"purpose": purpose}))["placeholders"].get(purpose, [])
    stored = settings["templates"].get(purpose) or {}
    at_field: dict[str, list[str]] = {}
    loose: list[str] = []
    for p in [*(problems or []), *((trial or {}).get("problems") or [])]:
        key = str(p.get("key") or "")
        part = key.split(".")[-1] if key.startswith(f"templates.{purpose}.") else None
        text = str(p.get("message") or "") + (f" – {p['hint']}" if p.get("hint") else "")
        if part in PARTS:
            if text not in at_field.setdefault(part, []):
                at_field[part].append(text)
        elif text not in loose:
            loose.append(text)
    if trial and trial.get("error"):
        loose.append(str(trial["error"].get("message") or ""))
    body = render_template(
        "templates.html",
        title=t("Vorlagen", "Templates"),
        nav="templates",
        purpose=purpose,
        purposes=_purposes(settings),
        draft=draft,
        catalog=catalog,
        trial=trial,
        saved=saved,
        at_field=at_field,
        loose=loose,
        error=error,
        body_file=stored.get("body_file"),
        errors=sum(len(v) for v in at_field.values()) + len(loose) + (1 if error else 0),
    )
    return Response(body, status=status, mimetype="text/html")


def _stored_draft(settings: dict[str, Any], purpose: str) -> dict[str, str]:
    stored = settings["templates"].get(purpose) or {}
    return {
        "subject": str(stored.get("subject") or ""),
        "body": str(stored.get("body") or ""),
        "format": str(stored.get("format") or "text"),
        "reference": str(stored.get("reference") or ""),
    }


def _trial(purpose: str, draft: dict[str, str], csrf: str | None) -> dict[str, Any] | None:
    change = {k: v for k, v in draft.items() if k != "reference" or v}
    answer = call(
        "POST",
        f"/settings/templates/{quote(purpose, safe='')}/preview",
        json=change,
        **({"csrf": csrf} if csrf is not None else {}),
    )
    return (
        answer.data if answer.ok else {"ok": False, "problems": [], "unknown": [], "text": None, "error": answer.error}
    )


@bp.get("/ui/templates")
@signed_in
def edit() -> Response:
    settings = must(call("GET", "/settings"))
    purpose = request.args.get("purpose") or "invoice"
    draft = _stored_draft(settings, purpose)
    # the preview changes nothing; the page asks it with the session's own token
    trial = _trial(purpose, draft, g.csrf) if draft["subject"] or draft["body"] else None
    return _page(purpose, draft, trial=trial, saved=bool(request.args.get("saved")))


@bp.post("/ui/templates/<purpose>")
@signed_in
def submit(purpose: str) -> Response:
    draft = {
        "subject": request.form.get("subject", ""),
        "body": request.form.get("body", "").replace("\r\n", "\n"),
        "format": request.form.get("format", "text"),
        "reference": request.form.get("reference", "").strip(),
    }
    if request.form.get("action") == "preview":
        return _page(purpose, draft, trial=_trial(purpose, draft, None))
    change = {k: v for k, v in draft.items() if k != "reference" or v}
    answer = call("PUT", f"/settings/templates/{quote(purpose, safe='')}", json=change)
    if answer.ok:
        return redirect(url_for("templates.edit", purpose=purpose, saved=1), code=303)
    return _page(
        purpose,
        draft,
        trial=_trial(purpose, draft, None),
        problems=answer.problems,
        error=None if answer.problems else error_text(answer),
        status=422,
    )
