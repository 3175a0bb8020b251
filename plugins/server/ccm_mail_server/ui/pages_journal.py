"""Journal / Ausgang: every send, searchable by invoice number, recipient, date and status; the
open ones (queued, sending, unknown, failed) with their reason and the decisions ``ccm-mail outbox
resolve`` offers; each entry's history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ccm_mail_core.dates import parse_day
from ccm_mail_core.outbox import ACTIONS, OPEN

from .common import STATUS_LABELS, call, error_text, must, signed_in, t

bp = Blueprint("journal", __name__)

LIMIT = 200


def actions_for(status: str) -> list[str]:
    """The operator's decisions for a row in this state, as ``outbox resolve`` allows them."""
    return [action for action, states in ACTIONS.items() if status in {s.value for s in states}]


@bp.get("/ui/journal")
@signed_in
def search() -> Response:
    args = request.args
    form = {k: args.get(k, "").strip() for k in ("reference", "recipient", "from", "to", "status", "purpose")}
    query: list[tuple[str, str]] = [("limit", str(LIMIT))]
    problems: dict[str, str] = {}
    if form["reference"]:
        query.append(("reference_contains", form["reference"]))
    if form["recipient"]:
        query.append(("recipient", form["recipient"]))
    if form["purpose"]:
        query.append(("purpose", form["purpose"]))
    if form["status"] == "open":
        query += [("status", s) for s in OPEN]
    elif form["status"]:
        query.append(("status", form["status"]))
    for key, param, shift in (("from", "since", 0), ("to", "until", 1)):  # "to" includes its whole day
        if form[key]:
            # a text field, not type=date: the browser would show its own system's format, not the page's
            day = parse_day(form[key])
            if day is None:
                problems[key] = t("Datum als TT.MM.JJJJ", "date as YYYY-MM-DD or DD.MM.YYYY")
            else:
                query.append((param, (day + timedelta(days=shift)).isoformat()))
    entries: list[dict[str, Any]] = []
    error = None
    if not problems:
        answer = call("GET", "/journal", query=query)
        if answer.ok:
            entries = answer.data["entries"]
        else:
            error = error_text(answer)
    for e in entries:
        e["actions"] = actions_for(e["status"])
    body = render_template(
        "journal.html",
        title=t("Journal / Ausgang", "Journal / outbox"),
        nav="journal",
        form=form,
        entries=entries,
        problems=problems,
        error=error,
        limit=LIMIT,
        statuses=list(STATUS_LABELS),
        checked=request.args.get("checked"),
    )
    return Response(body, status=422 if problems else 200, mimetype="text/html")


@bp.get("/ui/journal/<int:entry_id>")
@signed_in
def entry(entry_id: int) -> str:
    answer = call("GET", f"/journal/{entry_id}")
    if answer.status == 404:
        abort(404)
    data = must(answer)
    item = data["entry"]
    return render_template(
        "journal_entry.html",
        title=t("Journal-Eintrag ", "Journal entry ") + str(entry_id),
        nav="journal",
        entry=item,
        events=data["events"],
        actions=actions_for(item["status"]),
        done=request.args.get("done"),
        error=None,
    )


@bp.post("/ui/journal/<int:entry_id>/resolve")
@signed_in
def resolve(entry_id: int) -> Response:
    action = request.form.get("action", "")
    answer = call("POST", f"/outbox/{entry_id}/resolve", json={"action": action})
    if answer.ok:
        return redirect(url_for("journal.entry", entry_id=entry_id, done=action), code=303)
    data = must(call("GET", f"/journal/{entry_id}"))
    item = data["entry"]
    body = render_template(
        "journal_entry.html",
        title=t("Journal-Eintrag ", "Journal entry ") + str(entry_id),
        nav="journal",
        entry=item,
        events=data["events"],
        actions=actions_for(item["status"]),
        done=None,
        error=error_text(answer),
    )
    return Response(body, status=answer.status, mimetype="text/html")


@bp.post("/ui/journal/check")
@signed_in
def check() -> Response:
    """Look up unknown outcomes at the provider now (``outbox check``)."""
    answer = call("POST", "/outbox/check")
    summary = must(answer)["checked"]
    found = len(summary.get("sent") or [])
    return redirect(url_for("journal.search", status="open", checked=str(found)), code=303)
