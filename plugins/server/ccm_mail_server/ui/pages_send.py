"""Versand prüfen: a manual send with the confirmation dialog the seed showed before sending.

The form is the send request AbSys would make (purpose, recipient, the invoice's data for the
template's placeholders, the PDF). *Prüfen* asks ``POST /api/v1/preview`` and shows exactly what
``ccm-mail preview`` shows; *Senden* sends that very request (kept on the server between the two
steps, bound to the session) with ``POST /api/v1/send`` and ``yes``: the dialog was the
confirmation. The result shows the Versanddatum and the provider's ids, as the journal has them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from werkzeug.wrappers import Response

from ccm_mail_core.preview_text import human_size, render_preview_dict

from ..app import SESSION_COOKIE
from .common import call, error_text, must, signed_in, t

bp = Blueprint("send", __name__)

#: how long a checked send waits for Senden or Abbrechen
DRAFT_SECONDS = 1800
#: checked sends kept at most (per session and in all), and their attachments' bytes in all: the
#: oldest gives way (an admin checks one mail at a time)
DRAFTS_PER_SESSION = 5
MAX_DRAFTS = 100
MAX_DRAFT_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class Draft:
    owner: str
    body: dict[str, Any]
    expires: float
    size: int = 0


class Drafts:
    """Checked sends waiting for the admin's decision, in memory, each bound to its session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Draft] = {}

    @staticmethod
    def _owner() -> str:
        return hashlib.sha256(request.cookies.get(SESSION_COOKIE, "").encode()).hexdigest()

    def put(self, body: dict[str, Any]) -> str:
        draft_id = secrets.token_urlsafe(16)
        owner = self._owner()
        size = sum(len(a.get("content_base64", "")) for a in body.get("attachments") or [])
        with self._lock:
            now = time.time()
            self._items = {k: v for k, v in self._items.items() if v.expires > now}

            def too_many() -> bool:
                mine = sum(1 for d in self._items.values() if d.owner == owner)
                total = sum(d.size for d in self._items.values()) + size
                return bool(self._items) and (
                    mine >= DRAFTS_PER_SESSION or len(self._items) >= MAX_DRAFTS or total > MAX_DRAFT_BYTES
                )

            while too_many():  # oldest first: dicts keep their order
                mine = [k for k, d in self._items.items() if d.owner == owner]
                self._items.pop(mine[0] if len(mine) >= DRAFTS_PER_SESSION else next(iter(self._items)))
            self._items[draft_id] = Draft(owner, body, now + DRAFT_SECONDS, size)
        return draft_id

    def get(self, draft_id: str) -> dict[str, Any] | None:
        with self._lock:
            draft = self._items.get(draft_id)
        if draft is None or draft.expires <= time.time() or draft.owner != self._owner():
            return None
        return draft.body

    def drop(self, draft_id: str) -> None:
        with self._lock:
            self._items.pop(draft_id, None)


def drafts() -> Drafts:
    store = current_app.extensions.get("ccm_mail_drafts")
    if store is None:
        store = current_app.extensions["ccm_mail_drafts"] = Drafts()
    return store


def _catalog() -> dict[str, Any]:
    """Placeholders and which ones each template uses: what the send key may read too."""
    return must(call("GET", "/placeholders"))


def _sendable(catalog: dict[str, Any]) -> list[str]:
    """The purposes with a template: invoices first, as the seed's dialog was about them."""
    return list(
        dict.fromkeys(p for p in ("invoice", "eservice", *sorted(catalog["templates"])) if p in catalog["templates"])
    )


def _fields(catalog: dict[str, Any], purpose: str) -> list[dict[str, Any]]:
    """The invoice data the form asks for: every placeholder the purpose's template uses, with
    the catalog's description and example."""
    known = {p["name"]: p for p in catalog["placeholders"].get(purpose, [])}
    return [
        {
            "name": n,
            "id": "data-" + n.replace(".", "-"),
            "description": (known.get(n) or {}).get("description", ""),
            "example": (known.get(n) or {}).get("example", ""),
        }
        for n in catalog["templates"].get(purpose, [])
    ]


def _form(
    purpose: str | None = None,
    *,
    values: dict[str, Any] | None = None,
    status: int = 200,
    error: tuple[str, str | None] | None = None,
    at: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    catalog = _catalog()
    purposes = _sendable(catalog)
    purpose = purpose if purpose in purposes else (purposes[0] if purposes else None)
    fields = _fields(catalog, purpose) if purpose else []
    body = render_template(
        "send.html",
        title=t("Versand prüfen", "Check & send"),
        nav="send",
        purposes=purposes,
        purpose=purpose,
        fields=fields,
        values=values or {},
        error=error,
        at=at or {},
        notice=notice,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/ui/send")
@signed_in
def form() -> Response:
    return _form(request.args.get("purpose"))


def _addresses(text: str) -> list[str]:
    """Several recipients separated by ';' or new lines (a ',' may be inside a display name)."""
    return [a.strip() for a in text.replace("\n", ";").split(";") if a.strip()]


@bp.post("/ui/send")
@signed_in
def check() -> Response:
    purpose = request.form.get("purpose", "")
    data = {k[5:]: v.strip() for k, v in request.form.items() if k.startswith("data.") and v.strip()}
    attachments = []
    for upload in request.files.getlist("attachments"):
        if not upload.filename:
            continue
        content = upload.read()
        attachments.append(
            {
                "filename": upload.filename,
                "content_base64": base64.b64encode(content).decode("ascii"),
                "content_type": upload.mimetype or "application/octet-stream",
            }
        )
    body: dict[str, Any] = {
        "purpose": purpose,
        "to": _addresses(request.form.get("to", "")),
        "cc": _addresses(request.form.get("cc", "")),
        "data": data,
        "attachments": attachments,
    }
    values = {
        "to": request.form.get("to", ""),
        "cc": request.form.get("cc", ""),
        **{f"data.{k}": v for k, v in data.items()},
    }
    answer = call("POST", "/preview", json=body)
    if not answer.ok:
        return _form(purpose, values=values, status=answer.status, error=error_text(answer), at=_where(answer))
    draft_id = drafts().put(body)
    return _confirm(draft_id, answer.data, body)


def _where(answer: Any) -> dict[str, str]:
    """Which form field an API error belongs to."""
    error = answer.error
    kind, details = error.get("kind"), error.get("details") or {}
    message = str(error.get("message") or "")
    if kind == "template" and details.get("missing"):
        return {f"data.{n}": t("Wert fehlt", "value missing") for n in details["missing"]}
    if kind == "address" or "Empfänger" in message or "recipient" in message:
        return {"to": message}
    if kind == "attachment":
        return {"attachments": message}
    return {}


def _confirm(draft_id: str, preview: dict[str, Any], body: dict[str, Any]) -> Response:
    text = render_preview_dict(preview, g.lang, body_lines=200)
    files = [
        {
            "name": a["filename"],
            "size": human_size(len(base64.b64decode(a["content_base64"])), g.lang),
            "sha256": hashlib.sha256(base64.b64decode(a["content_base64"])).hexdigest(),
        }
        for a in body.get("attachments") or []
    ]
    page = render_template(
        "send_confirm.html",
        title=t("Versand prüfen", "Check & send"),
        nav="send",
        draft=draft_id,
        preview=preview,
        text=text,
        files=files,
    )
    return Response(page, mimetype="text/html")


@bp.post("/ui/send/confirm")
@signed_in
def confirm() -> Response:
    draft_id = request.form.get("draft", "")
    body = drafts().get(draft_id)
    if body is None:
        return _form(
            request.form.get("purpose"),
            status=409,
            error=(
                t(
                    "Diese Prüfung ist abgelaufen oder gehört zu einer anderen Sitzung; nichts gesendet.",
                    "This check has expired or belongs to another session; nothing sent.",
                ),
                t("Noch einmal prüfen.", "Check again."),
            ),
        )
    if request.form.get("decision") != "send":
        drafts().drop(draft_id)
        return _form(body.get("purpose"), notice=t("Abgebrochen – nichts gesendet.", "Cancelled – nothing sent."))
    resend = request.form.get("resend") == "1"
    answer = call("POST", "/send", json={**body, "yes": True, **({"resend": True} if resend else {})})
    if answer.ok:
        drafts().drop(draft_id)
        result = answer.data
        entry = None
        if result.get("journal_id"):
            found = call("GET", f"/journal/{int(result['journal_id'])}")
            entry = found.data.get("entry") if found.ok else None
        page = render_template(
            "send_result.html",
            title=t("Versand", "Sending"),
            nav="send",
            result=result,
            entry=entry,
            draft=draft_id if result.get("repeat") else None,
            body=body,
        )
        return Response(page, mimetype="text/html")
    return _form(
        body.get("purpose"),
        status=answer.status,
        error=error_text(answer),
        values={"to": "; ".join(body["to"]), **{f"data.{k}": v for k, v in body["data"].items()}},
    )
