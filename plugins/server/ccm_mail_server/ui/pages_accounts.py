"""E-Mail-Konten (list, add/edit form, Speichern, Admin Berechtigung erteilen, Verbindung testen)
and Zuordnung (which account sends E-Service mails and invoices)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .common import ABSYS_PURPOSES, call, error_text, must, signed_in, t
from .forms import FormField, build_fields, change_from_form, place_problems, refill

bp = Blueprint("accounts", __name__)


def _types() -> dict[str, dict[str, Any]]:
    return {ty["id"]: ty for ty in must(call("GET", "/accounts/types"))["types"]}


def _shown_name(name: str) -> str:
    return f'"{name}"' if " " in name else name


def _steps(name: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The connection test's steps for the page: a failed step's text split into what is wrong
    and what to do (the transport words both; ``Hinweis:`` / ``Hint:`` separates them)."""
    shown = []
    for step in steps:
        text = str(step.get("text") or "").replace("NAME", _shown_name(name))
        ids = re.search(r"\s\[([^\[\]]*=[^\[\]]*)\]$", text)  # the support ids CcmMailError.render appends
        if ids:
            text = text[: ids.start()]
        problem, fix = text, None
        if not step.get("ok"):
            found = re.search(r"\s(?:Hinweis|Hint): ", text)
            if found:
                problem, fix = text[: found.start()], text[found.end() :]
        shown.append(
            {
                "step": step.get("step"),
                "ok": bool(step.get("ok")),
                "text": problem,
                "fix": fix,
                "ids": ids.group(1) if ids else None,
            }
        )
    return shown


def _status_line(row: dict[str, Any]) -> dict[str, Any]:
    status = row.get("status") or {}
    test, consent, saved = status.get("test"), status.get("consent"), status.get("saved_at")
    return {
        "test": test,
        "consent": consent,
        "changed_since_test": bool(test and saved and saved > test["at"]),
        "consent_possible": "consent" in (row.get("actions") or []),
    }


@bp.get("/ui/accounts")
@signed_in
def list_accounts() -> str:
    rows = must(call("GET", "/accounts"))["accounts"]
    for row in rows:
        row["state"] = _status_line(row)
    return render_template(
        "accounts.html",
        title=t("E-Mail-Konten", "Mail accounts"),
        rows=rows,
        nav="accounts",
        saved=request.args.get("saved"),
    )


def _render_form(
    name: str | None,
    atype: dict[str, Any],
    fields: list[FormField],
    *,
    status: int = 200,
    loose: list[dict[str, str]] | None = None,
    error: tuple[str, str | None] | None = None,
    saved: bool = False,
    test: dict[str, Any] | None = None,
    account_row: dict[str, Any] | None = None,
    typed_secret: bool = False,
) -> Response:
    basic = [f for f in fields if not f.advanced]
    advanced = [f for f in fields if f.advanced]
    open_advanced = any(f.errors for f in advanced) or any(f.differs and f.stored is not None for f in advanced)
    body = render_template(
        "account_form.html",
        nav="accounts",
        title=(t("E-Mail-Konto: ", "Mail account: ") + name) if name else t("E-Mail-Konto anlegen", "New mail account"),
        name=name,
        atype=atype,
        basic=basic,
        advanced=advanced,
        open_advanced=open_advanced,
        loose=loose or [],
        error=error,
        saved=saved,
        test=test,
        row=account_row,
        typed_secret=typed_secret,
        errors=sum(len(f.errors) for f in fields) + len(loose or []) + (1 if error else 0),
        new_name=request.form.get("name", "") if name is None else name,
    )
    return Response(body, status=status, mimetype="text/html")


def _account_row(name: str) -> dict[str, Any] | None:
    rows = must(call("GET", "/accounts"))["accounts"]
    row = next((r for r in rows if r["name"] == name), None)
    if row is not None:
        row["state"] = _status_line(row)
    return row


def _stored(name: str) -> dict[str, Any] | None:
    accounts = must(call("GET", "/settings"))["accounts"]
    return accounts.get(name)


@bp.get("/ui/accounts/new")
@signed_in
def new_account() -> Response | str:
    types = _types()
    type_id = request.args.get("type")
    if type_id not in types:
        return render_template(
            "account_type.html",
            title=t("E-Mail-Konto anlegen", "New mail account"),
            types=list(types.values()),
            nav="accounts",
        )
    return _render_form(None, types[str(type_id)], build_fields(types[str(type_id)], {}))


@bp.post("/ui/accounts/new")
@signed_in
def create_account() -> Response:
    types = _types()
    type_id = request.form.get("type", "")
    if type_id not in types:
        abort(400)
    atype = types[type_id]
    fields = build_fields(atype, {})
    name = request.form.get("name", "").strip()
    change = change_from_form(fields, request.form, new=True)
    refill(fields, request.form)
    typed_secret = bool(change.get("secrets"))
    if not name:
        return _render_form(
            None,
            atype,
            fields,
            status=422,
            typed_secret=typed_secret,
            loose=[
                {
                    "key": "name",
                    "text": t(
                        "Bitte einen Namen angeben, z. B. „Rechnungsversand“.", 'Please give a name, e.g. "Invoices".'
                    ),
                }
            ],
        )
    if _stored(name) is not None:
        return _render_form(
            None,
            atype,
            fields,
            status=422,
            typed_secret=typed_secret,
            loose=[
                {"key": "name", "text": t(f"Ein Konto „{name}“ gibt es schon.", f'an account "{name}" exists already.')}
            ],
        )
    answer = call("PUT", f"/settings/accounts/{quote(name, safe='')}", json={"type": type_id, **change})
    if answer.ok:
        return redirect(url_for("accounts.edit_account", name=name, saved=1), code=303)
    loose = place_problems(fields, name, answer.problems)
    return _render_form(
        None,
        atype,
        fields,
        status=422,
        loose=loose,
        typed_secret=typed_secret,
        error=None if answer.problems else error_text(answer),
    )


@bp.get("/ui/accounts/<name>")
@signed_in
def edit_account(name: str) -> Response:
    stored = _stored(name)
    if stored is None:
        abort(404)
    types = _types()
    atype = types.get(str(stored.get("type")))
    if atype is None:
        abort(404)
    return _render_form(
        name, atype, build_fields(atype, stored), saved=bool(request.args.get("saved")), account_row=_account_row(name)
    )


@bp.post("/ui/accounts/<name>")
@signed_in
def save_account(name: str) -> Response:
    stored = _stored(name)
    if stored is None:
        abort(404)
    atype = _types()[str(stored.get("type"))]
    fields = build_fields(atype, stored)
    change = change_from_form(fields, request.form, new=False)
    answer = call("PUT", f"/settings/accounts/{quote(name, safe='')}", json=change)
    if answer.ok:
        return redirect(url_for("accounts.edit_account", name=name, saved=1), code=303)
    refill(fields, request.form)
    loose = place_problems(fields, name, answer.problems)
    return _render_form(
        name,
        atype,
        fields,
        status=422,
        loose=loose,
        account_row=_account_row(name),
        typed_secret=bool(change.get("secrets")),
        error=None if answer.problems else error_text(answer),
    )


@bp.post("/ui/accounts/<name>/test")
@signed_in
def test_account(name: str) -> Response:
    stored = _stored(name)
    if stored is None:
        abort(404)
    atype = _types()[str(stored.get("type"))]
    answer = call("POST", f"/accounts/{quote(name, safe='')}/test")
    if answer.ok:
        test = {"ok": answer.data["ok"], "steps": _steps(name, answer.data["steps"]), "error": None}
    else:
        test = {"ok": False, "steps": [], "error": error_text(answer)}
    return _render_form(name, atype, build_fields(atype, stored), test=test, account_row=_account_row(name))


@bp.post("/ui/accounts/<name>/consent")
@signed_in
def start_consent(name: str) -> Response:
    answer = call("POST", f"/accounts/{quote(name, safe='')}/consent", json={})
    if not answer.ok:
        stored = _stored(name)
        if stored is None:
            abort(404)
        atype = _types()[str(stored.get("type"))]
        return _render_form(
            name,
            atype,
            build_fields(atype, stored),
            status=answer.status,
            error=error_text(answer),
            account_row=_account_row(name),
        )
    return redirect(url_for("accounts.consent_job", name=name, job=answer.data["job"]), code=303)


def _consent_view(name: str, job: dict[str, Any]) -> dict[str, Any]:
    notes = [str(n) for n in job.get("notes") or []]
    url = next((n for n in notes if "://" in n and "adminconsent" in n), None)
    if url is None:
        url = next((n for n in notes if n.startswith("https://")), None)
    result = job.get("result") if isinstance(job.get("result"), dict) else None
    # what the action printed for a terminal up to the address is on the page already; what came
    # after it (the answer to a pasted address) is news
    after = notes[notes.index(url) + 2 :] if url in notes else []
    return {
        "job": job,
        "url": url,
        "notes": after[-3:],
        "result": result,
        "error": job.get("error"),
        "hint": (result or {}).get("hint") or (job.get("error") or {}).get("hint"),
    }


@bp.get("/ui/accounts/<name>/consent/<job>")
@signed_in
def consent_job(name: str, job: str) -> str:
    data = must(call("GET", f"/jobs/{job}"))
    if data.get("account") != name:
        abort(404)
    return render_template(
        "consent.html",
        title=t("Admin Berechtigung erteilen", "Grant admin consent"),
        name=name,
        nav="accounts",
        **_consent_view(name, data),
    )


@bp.post("/ui/accounts/<name>/consent/<job>")
@signed_in
def consent_answer(name: str, job: str) -> Response:
    """The admin at another computer pastes the address their browser shows (or nothing, to
    have consent proven by a new token)."""
    answer = call("POST", f"/jobs/{job}/answer", json={"line": request.form.get("redirect_url", "")})
    if not answer.ok and answer.status != 409:
        return Response(
            render_template(
                "error.html",
                title=t("Nicht möglich", "Not possible"),
                message=error_text(answer)[0],
                hint=error_text(answer)[1],
            ),
            status=answer.status,
            mimetype="text/html",
        )
    return redirect(url_for("accounts.consent_job", name=name, job=job), code=303)


# ---- Zuordnung ---------------------------------------------------------------------------------
def _purposes_view() -> dict[str, Any]:
    settings = must(call("GET", "/settings"))
    accounts = list(settings["accounts"])
    purposes = dict(settings["purposes"])
    shown = [*ABSYS_PURPOSES, *sorted(p for p in purposes if p not in ABSYS_PURPOSES)]
    return {"accounts": accounts, "purposes": purposes, "shown": shown}


@bp.get("/ui/purposes")
@signed_in
def purposes() -> str:
    return render_template(
        "purposes.html",
        title=t("Zuordnung", "Purposes"),
        nav="purposes",
        saved=request.args.get("saved"),
        problems={},
        **_purposes_view(),
    )


@bp.post("/ui/purposes/<purpose>")
@signed_in
def save_purpose(purpose: str) -> Response:
    primary = request.form.get("account", "")
    pool = [a for a in request.form.getlist("pool") if a != primary]
    if not primary:
        answer = call("DELETE", f"/settings/purposes/{quote(purpose, safe='')}")
        if not answer.ok and answer.error.get("kind") == "settings" and purpose == "invoice":
            answer.status = 200  # it had no account of its own: nothing to take away
    else:
        answer = call("PUT", f"/settings/purposes/{quote(purpose, safe='')}", json={"accounts": [primary, *pool]})
    if answer.ok:
        return redirect(url_for("accounts.purposes", saved=purpose), code=303)
    problems = {purpose: [p.get("message", "") for p in answer.problems] or [error_text(answer)[0]]}
    body = render_template(
        "purposes.html",
        title=t("Zuordnung", "Purposes"),
        nav="purposes",
        saved=None,
        problems=problems,
        **_purposes_view(),
    )
    return Response(body, status=422, mimetype="text/html")


def current_scope() -> str:
    return str((g.get("session") or {}).get("scope", ""))
