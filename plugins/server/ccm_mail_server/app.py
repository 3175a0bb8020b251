"""The HTTP layer: a Flask app over one :class:`~.service.Service`.

Every route but ``GET /api/v1/health`` needs a key (``Authorization: Bearer KEY``) or a browser
session made from one (``POST /api/v1/session``: an HttpOnly, SameSite=Strict cookie plus a CSRF
token that every changing request repeats in ``X-CSRF-Token``) or from the one-time login link
``ccm-mail serve`` prints (``POST /api/v1/session/token``, as Jupyter's). Scopes: ``send`` (workstations:
preview, send, batches, journal, outbox, placeholders, account types) and ``settings`` (admins:
everything, including accounts, their tests and consent, and the settings write path).

Errors are the ``--json`` error document of the CLI, ``{"ok": false, "exit_code", "error":
{"kind", "sent", "message", "hint", "details"}}`` (plus ``problems`` for configuration errors), in
German or English by ``Accept-Language`` (else the config's language).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any

import structlog
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ccm_mail_core.config import ConfigProblems
from ccm_mail_core.journal import DuplicateSend, JournalError
from ccm_mail_core.outbox import OPEN, Outbox
from ccm_mail_core.redaction import scrub_value
from ccm_mail_core.results import exit_code_for
from ccm_mail_hookspecs import CcmMailError, Status, T, TransportError

from . import openapi
from .keys import GRANTS, key_id
from .service import Service

log = structlog.get_logger("ccm_mail.server")

API = "/api/v1"
SESSION_COOKIE = "ccm_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 8 * 3600
#: how long the login link printed at the start stays usable (once)
LOGIN_TOKEN_SECONDS = 3600
#: request body fields the send endpoints take, and what each must be
SEND_FIELDS = {
    "purpose": str,
    "to": list,
    "cc": list,
    "bcc": list,
    "reply_to": list,
    "data": dict,
    "attachments": list,
    "reference": (str, type(None)),
    "headers": dict,
    "account": (str, type(None)),
    "yes": bool,
    "resend": bool,
}


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: T, hint: T | None = None, **details: Any) -> None:
        super().__init__(message.en)
        self.status, self.kind, self.message, self.hint, self.details = status, kind, message, hint, details


@dataclass(slots=True)
class Session:
    scope: str
    who: str
    csrf: str
    expires: float
    #: SHA-256 of the key it was made from (None: a login link); a rotated key ends its sessions
    key: bytes | None = None


class Sessions:
    """Browser sessions made from a key or a one-time login token (the pages), in memory: a
    restart logs everyone out and makes every printed login link useless."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Session] = {}
        self._tokens: dict[bytes, float] = {}  # sha256 of a login token → when it stops working

    def login_token(self, seconds: float = LOGIN_TOKEN_SECONDS) -> str:
        """A token for one settings session (the link ``ccm-mail serve`` prints); registered as a
        secret, so no log line or error can show it."""
        from ccm_mail_hookspecs.redaction import remember

        token = secrets.token_urlsafe(32)
        remember(token)
        with self._lock:
            self._tokens[hashlib.sha256(token.encode()).digest()] = time.time() + seconds
        return token

    def redeem(self, token: str) -> bool:
        """True once for a token that was issued and has not expired."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        with self._lock:
            expires = self._tokens.pop(digest, None)
        return expires is not None and expires > time.time()

    def create(self, scope: str, who: str, key: bytes | None = None) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(scope, who, secrets.token_urlsafe(32), time.time() + SESSION_SECONDS, key)
        with self._lock:
            now = time.time()
            self._items = {k: v for k, v in self._items.items() if v.expires > now}
            self._items[sid] = session
        return sid, session

    def get(self, sid: str) -> Session | None:
        with self._lock:
            session = self._items.get(sid)
            if session is None or session.expires <= time.time():
                self._items.pop(sid, None)
                return None
            return session

    def drop(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)


def lang() -> str:
    if "lang" not in g:
        best = request.accept_languages.best_match(["de", "en"]) if request.accept_languages else None
        g.lang = best or g.get("default_lang", "de")
    return str(g.lang)


def _t(de: str, en: str) -> T:
    return T(de, en)


def create_app(service: Service) -> Flask:
    app = Flask("ccm_mail_server")
    app.config.update(MAX_CONTENT_LENGTH=service.settings.max_request_bytes, JSON_SORT_KEYS=False)
    app.json.ensure_ascii = True  # type: ignore[attr-defined]  # ASCII JSON, as the CLI's --json
    app.json.sort_keys = False  # type: ignore[attr-defined]
    sessions = Sessions()
    app.extensions["ccm_mail_sessions"] = sessions  # serve prints a login link made here

    # ---- plumbing -------------------------------------------------------------------------------
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.default_lang = service.mailer.lang

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["Content-Language"] = lang()
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=resp.status_code,
            ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
            key=g.get("who", "-"),
        )
        return resp

    def error_document(
        status: int,
        kind: str,
        message: T,
        hint: T | None,
        details: Mapping[str, Any],
        exit_code: int = 2,
        sent: bool | None = False,
        **extra: Any,
    ) -> tuple[Response, int]:
        language = lang()
        body = {
            "ok": False,
            "exit_code": exit_code,
            "error": {
                "kind": kind,
                "sent": sent,
                "message": message.get(language),
                "hint": hint.get(language) if hint else None,
                "details": dict(details),
            },
            **extra,
        }
        resp = jsonify(scrub_value(body))
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="ccm-mail"'
        return resp, status

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return error_document(exc.status, exc.kind, exc.message, exc.hint, exc.details)

    @app.errorhandler(CcmMailError)
    def _ccm_error(exc: CcmMailError) -> tuple[Response, int]:
        status = (
            503
            if isinstance(exc, JournalError)
            else 502
            if isinstance(exc, TransportError)
            else 409
            if isinstance(exc, DuplicateSend)
            else 422
        )
        extra: dict[str, Any] = {}
        if isinstance(exc, ConfigProblems):
            extra["problems"] = [p.to_dict(lang()) for p in exc.problems]
        body = {"ok": False, "exit_code": exit_code_for(exc), "error": exc.to_dict(lang()), **extra}
        return jsonify(scrub_value(body)), status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        texts = {
            400: ("bad_request", _t("Ungültige Anfrage.", "bad request.")),
            404: ("not_found", _t(f"Keine solche Adresse: {request.path}", f"no such address: {request.path}")),
            405: ("method", _t(f"{request.method} ist hier nicht erlaubt.", f"{request.method} is not allowed here.")),
            413: (
                "too_large",
                _t(
                    f"Anfrage zu groß (höchstens {service.settings.max_request_bytes // 1048576} MB); nichts gesendet.",
                    f"request too large (at most {service.settings.max_request_bytes // 1048576} MB); nothing sent.",
                ),
            ),
        }
        kind, message = texts.get(status, ("http", _t(f"HTTP-Fehler {status}.", f"HTTP error {status}.")))
        if status == 413:
            _drain(request.environ)
        hint = (
            _t(
                "plugins.settings.server.max_request_mb erhöhen oder kleinere Anhänge senden.",
                "Raise plugins.settings.server.max_request_mb or send smaller attachments.",
            )
            if status == 413
            else None
        )
        return error_document(status, kind, message, hint, {})

    def _drain(environ: Mapping[str, Any]) -> None:
        """Read the rest of a refused body (cheroot bounds it at the limit plus 1 MB): a client
        still writing it would otherwise meet a closed connection instead of our 413."""
        stream = environ.get("wsgi.input")
        try:
            while stream is not None and stream.read(1 << 16):
                pass
        except Exception:  # noqa: BLE001 - cheroot's own bound: the connection ends anyway
            pass

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> tuple[Response, int]:
        log.exception("internal_error", path=request.path)
        return error_document(
            500,
            "internal",
            _t(f"Interner Fehler: {type(exc).__name__}", f"internal error: {type(exc).__name__}"),
            _t("Bitte mit dem Log des Dienstes an den Support melden.", "Please report it with the service's log."),
            {},
            exit_code=1,
            sent=None,
        )

    # ---- authentication -------------------------------------------------------------------------
    def authenticate(needed: str) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if header:
            if scheme.lower() != "bearer" or not presented.strip():
                raise ApiError(
                    401,
                    "auth",
                    _t(
                        "Anmeldung fehlt: 'Authorization: Bearer <Schlüssel>' erwartet.",
                        "not signed in: 'Authorization: Bearer <key>' expected.",
                    ),
                )
            scope = service.keys.scope_of(presented.strip())
            if scope is None:
                log.warning("auth_failed", remote=request.remote_addr)
                raise ApiError(
                    401,
                    "auth",
                    _t("API-Schlüssel ungültig; nichts ausgeführt.", "invalid API key; nothing done."),
                    _t(
                        "Den aktuellen Schlüssel verwenden ('ccm-mail serve --show-keys' auf dem Rechner "
                        "des Dienstes).",
                        "Use the current key ('ccm-mail serve --show-keys' on the service's machine).",
                    ),
                )
            g.scope, g.who = scope, f"key {scope}:{key_id(presented.strip())}"
        else:
            sid = request.cookies.get(SESSION_COOKIE)
            session = sessions.get(sid) if sid else None
            if (
                session is not None
                and session.key is not None
                and service.keys.scope_of_digest(session.key) != session.scope
            ):
                sessions.drop(str(sid))  # its key was rotated ('serve --new-key'): the session ends with it
                session = None
            if session is None:
                raise ApiError(
                    401,
                    "auth",
                    _t(
                        "Anmeldung fehlt: 'Authorization: Bearer <Schlüssel>' erwartet.",
                        "not signed in: 'Authorization: Bearer <key>' expected.",
                    ),
                )
            if request.method not in ("GET", "HEAD"):
                token = request.headers.get(CSRF_HEADER, "")
                if not hmac.compare_digest(token.encode(), session.csrf.encode()):
                    raise ApiError(
                        403,
                        "csrf",
                        _t(
                            f"{CSRF_HEADER} fehlt oder passt nicht zur Sitzung.",
                            f"{CSRF_HEADER} is missing or does not match the session.",
                        ),
                    )
            g.scope, g.who = session.scope, session.who + " (session)"
        if needed not in GRANTS[g.scope]:
            raise ApiError(
                403,
                "forbidden",
                _t(
                    f"Der Schlüssel ({g.scope}) darf das nicht; nichts ausgeführt.",
                    f"this key ({g.scope}) may not do that; nothing done.",
                ),
                _t("Einstellungen brauchen den Einstellungs-Schlüssel.", "Settings need the settings key."),
            )

    def requires(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                authenticate(scope)
                return view(*args, **kwargs)

            guarded.scope = scope  # type: ignore[attr-defined]  # the OpenAPI test reads it
            return guarded

        return decorate

    def body(fields: Mapping[str, Any] | None = None, required: tuple[str, ...] = ()) -> dict[str, Any]:
        # a chunked body has no Content-Length to refuse up front: werkzeug cuts it at the limit,
        # and a body that long is one that went over it (413, not "broken JSON")
        raw = request.get_data(cache=True)
        if request.content_length is None and len(raw) >= service.settings.max_request_bytes:
            raise RequestEntityTooLarge()
        try:
            data = request.get_json(force=True, silent=True)
        except RecursionError:  # nested 100,000 deep: no request of this API is; refused, not a 500
            data = None
        if data is None and request.get_data(cache=True):
            raise ApiError(
                400,
                "bad_request",
                _t("Der Inhalt ist kein gültiges JSON (UTF-8).", "the body is not valid JSON (UTF-8)."),
            )
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ApiError(
                400, "bad_request", _t("Der Inhalt muss ein JSON-Objekt sein.", "the body must be a JSON object.")
            )
        if fields is not None:
            problems = [f"{k}: unbekanntes Feld / unknown field" for k in data if k not in fields]
            problems += [f"{k}: fehlt / missing" for k in required if k not in data]
            for key, kind in fields.items():
                if key in data and data[key] is not None and not isinstance(data[key], kind):
                    problems.append(f"{key}: falscher Typ / wrong type")
            if problems:
                raise ApiError(
                    422,
                    "request",
                    _t("Anfrage fehlerhaft: " + "; ".join(problems), "bad request: " + "; ".join(problems)),
                    problems=problems,
                )
        return data

    def name_of(value: str, what: str) -> str:
        if not value or len(value) > 100 or value in (".", "..") or any(c in value for c in "/\\\0\r\n"):
            raise ApiError(
                422, "request", _t(f"Ungültiger Name für {what}: {value!r}", f"invalid {what} name: {value!r}")
            )
        return value

    # ---- public ---------------------------------------------------------------------------------
    @app.get(f"{API}/health")
    def health() -> Any:
        return jsonify({"status": "ok"})

    @app.get(f"{API}/openapi.json")
    @requires("send")
    def openapi_document() -> Any:
        return jsonify(openapi.document())

    # ---- browser sessions -----------------------------------------------------------------------
    def new_session(scope: str, who: str, key: bytes | None = None) -> Response:
        sid, session = sessions.create(scope, who, key)
        resp = jsonify({"ok": True, "scope": session.scope, "csrf_token": session.csrf, "expires_in": SESSION_SECONDS})
        # Path=/: the pages (outside /api/v1) use the same session; SameSite=Strict keeps every
        # other site's page from sending it
        resp.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="Strict",
            secure=service.settings.tls,
            path="/",
        )
        return resp

    @app.post(f"{API}/session")
    @requires("send")
    def session_create() -> Any:
        if not request.headers.get("Authorization"):
            raise ApiError(
                401,
                "auth",
                _t("Eine Sitzung entsteht nur aus einem API-Schlüssel.", "a session is made from an API key only."),
            )
        presented = request.headers["Authorization"].partition(" ")[2].strip()
        return new_session(g.scope, g.who, hashlib.sha256(presented.encode("utf-8")).digest())

    @app.post(f"{API}/session/token")
    def session_from_token() -> Any:
        data = body({"token": str}, ("token",))
        if not sessions.redeem(str(data["token"])):
            log.warning("login_token_refused", remote=request.remote_addr)
            raise ApiError(
                401,
                "auth",
                _t(
                    "Anmeldelink ungültig, abgelaufen oder schon benutzt.",
                    "login link invalid, expired or already used.",
                ),
                _t(
                    "Mit dem Einstellungs-Schlüssel anmelden ('ccm-mail serve --show-keys') oder den "
                    "Dienst neu starten: er zeigt einen neuen Link.",
                    "Sign in with the settings key ('ccm-mail serve --show-keys') or restart the "
                    "service: it prints a new link.",
                ),
            )
        return new_session("settings", "login link")

    @app.get(f"{API}/session")
    @requires("send")
    def session_read() -> Any:
        session = (
            sessions.get(request.cookies.get(SESSION_COOKIE, "")) if not request.headers.get("Authorization") else None
        )
        return jsonify(
            {
                "ok": True,
                "scope": g.scope,
                "who": g.who,
                "csrf_token": session.csrf if session else None,
                "expires_in": round(session.expires - time.time()) if session else None,
            }
        )

    @app.delete(f"{API}/session")
    @requires("send")
    def session_delete() -> Any:
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            sessions.drop(sid)
        resp = jsonify({"ok": True})
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    # ---- one message ----------------------------------------------------------------------------
    @app.post(f"{API}/preview")
    @requires("send")
    def preview() -> Any:
        return jsonify(service.preview(body(SEND_FIELDS, ("purpose",))))

    @app.post(f"{API}/send")
    @requires("send")
    def send() -> Any:
        return jsonify(service.send(body(SEND_FIELDS, ("purpose",)), lang()))

    # ---- batches --------------------------------------------------------------------------------
    @app.post(f"{API}/batches")
    @requires("send")
    def batch_submit() -> Any:
        data = body({"purpose": str, "rows": list, "yes": bool, "resend": bool}, ("purpose", "rows"))
        status, answer = service.submit_batch(data, lang())
        return jsonify(answer), status

    @app.get(f"{API}/batches/<batch_id>")
    @requires("send")
    def batch_progress(batch_id: str) -> Any:
        try:
            return jsonify(service.batch_progress(name_of(batch_id, "batch")))
        except LookupError:
            raise ApiError(404, "not_found", _t(f"Kein Stapel {batch_id}.", f"no batch {batch_id}.")) from None

    # ---- journal and outbox ---------------------------------------------------------------------
    @app.get(f"{API}/journal")
    @requires("send")
    def journal() -> Any:
        args = request.args
        statuses = args.getlist("status")
        wrong = [s for s in statuses if s not in {x.value for x in Status}]
        if wrong:
            raise ApiError(
                422, "request", _t(f"Unbekannter Status: {', '.join(wrong)}", f"unknown status: {', '.join(wrong)}")
            )
        try:
            limit = int(args.get("limit", "50"))
        except ValueError:
            raise ApiError(422, "request", _t("limit muss eine Zahl sein.", "limit must be a number.")) from None
        entries = service.search_journal(
            reference=args.get("reference"),
            reference_contains=args.get("reference_contains"),
            recipient=args.get("recipient"),
            status=statuses or None,
            purpose=args.get("purpose"),
            since=args.get("since"),
            until=args.get("until"),
            batch=args.get("batch"),
            limit=max(0, min(limit, 10_000)),
        )
        return jsonify({"entries": [e.to_dict() for e in entries]})

    @app.get(f"{API}/journal/<int:entry_id>")
    @requires("send")
    def journal_entry(entry_id: int) -> Any:
        journal = service.current().journal
        entry = journal.get(entry_id)
        if entry is None:
            raise ApiError(404, "not_found", _t(f"Kein Journal-Eintrag {entry_id}.", f"no journal entry {entry_id}."))
        return jsonify({"entry": entry.to_dict(), "events": journal.events(entry_id)})

    @app.get(f"{API}/outbox")
    @requires("send")
    def outbox_list() -> Any:
        return jsonify({"entries": [e.to_dict() for e in Outbox(service.current()).entries(OPEN)]})

    @app.post(f"{API}/outbox/check")
    @requires("send")
    def outbox_check() -> Any:
        s = Outbox(service.current()).check()
        return jsonify(
            {
                "checked": {
                    "sent": s.sent,
                    "requeued": s.requeued,
                    "waiting": s.waiting,
                    "needs_operator": s.operator,
                    "busy": s.busy,
                }
            }
        )

    @app.post(f"{API}/outbox/<int:entry_id>/resolve")
    @requires("send")
    def outbox_resolve(entry_id: int) -> Any:
        data = body({"action": str}, ("action",))
        entry = Outbox(service.current()).resolve(entry_id, str(data["action"]))
        log.info("outbox_resolved", journal_id=entry_id, action=data["action"], who=g.who)
        return jsonify({"ok": True, "entry": entry.to_dict()})

    @app.post(f"{API}/outbox/retry")
    @requires("send")
    def outbox_retry() -> Any:
        data = body({"ids": list})
        results = Outbox(service.current()).retry_failed(data.get("ids") or [])
        return jsonify({"retried": [r.to_dict(lang()) for r in results]})

    # ---- accounts and placeholders --------------------------------------------------------------
    @app.get(f"{API}/accounts/types")
    @requires("send")
    def account_types() -> Any:
        return jsonify({"types": [t.to_dict(lang()) for t in service.current().account_types()]})

    @app.get(f"{API}/accounts")
    @requires("settings")
    def accounts() -> Any:
        from datetime import datetime, timezone

        from ccm_mail_core import expiry as expiry_mod

        mailer = service.current()
        cfg = mailer.config
        now = datetime.now(timezone.utc)
        rows = []
        for acc in cfg.accounts.values():
            atype = mailer.registries.account_types[acc.type]
            # what every send checks (no network): a credential that expires within 30 days is warned about
            expiry = expiry_mod.to_dict(acc.name, mailer.credential_expiry(acc.name), now, lang())
            rows.append(
                {
                    "name": acc.name,
                    "type": acc.type,
                    "type_label": atype.label.get(lang()),
                    "sender": str(mailer.sender_of(acc.name)),
                    "settings": {k: ("***" if k in acc.secret_fields else v) for k, v in acc.values.items()},
                    "purposes": [p for p in cfg.purposes if cfg.account_for(p) == acc.name],
                    "pools": [p for p in cfg.purposes if acc.name in cfg.pool_for(p)],
                    "actions": sorted(atype.actions),
                    # what the service last learnt: the last test, the last consent, the last save
                    "status": service.status.get(acc.name),
                    "expiry": expiry,
                    "warnings": [expiry["message"]] if expiry and expiry["message"] else [],
                }
            )
        return jsonify({"accounts": rows})

    @app.post(f"{API}/accounts/<name>/test")
    @requires("settings")
    def account_test(name: str) -> Any:
        result = service.current().check_account(name_of(name, "account"))
        steps = [{"step": s, "ok": ok, "text": t.get(lang())} for s, ok, t in result.steps]
        service.status.record_test(name, result.ok, steps)
        return jsonify({"ok": result.ok, "steps": steps})

    @app.post(f"{API}/accounts/<name>/consent")
    @requires("settings")
    def account_consent(name: str) -> Any:
        data = body({"timeout": (int, float)})
        options: dict[str, Any] = {"no_browser": True}
        if data.get("timeout"):
            options["timeout"] = float(data["timeout"])
        job = service.start_job(name_of(name, "account"), "consent", options, lang())
        deadline = time.monotonic() + 5  # the consent URL is the first thing the action says
        while not job.done and not any("://" in n for n in job.notes) and time.monotonic() < deadline:
            time.sleep(0.05)
        return jsonify(_job(job)), 202

    @app.get(f"{API}/jobs/<job_id>")
    @requires("settings")
    def job_status(job_id: str) -> Any:
        job = service.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", _t(f"Kein Auftrag {job_id}.", f"no job {job_id}."))
        return jsonify(_job(job))

    @app.post(f"{API}/jobs/<job_id>/answer")
    @requires("settings")
    def job_answer(job_id: str) -> Any:
        """A line for a job that asks (consent: the address from the admin's browser, or empty to
        have consent proven by a new token)."""
        data = body({"line": str}, ("line",))
        job = service.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", _t(f"Kein Auftrag {job_id}.", f"no job {job_id}."))
        if job.done:
            raise ApiError(409, "job_done", _t("Der Auftrag ist schon beendet.", "the job has ended already."))
        job.answers.put(str(data["line"]).strip())
        return jsonify(_job(job)), 202

    @app.get(f"{API}/placeholders")
    @requires("send")
    def placeholders() -> Any:
        mailer = service.current()
        purpose = request.args.get("purpose")
        purposes = [purpose] if purpose else sorted({"invoice", "eservice", *mailer.config.templates})
        templates = mailer.config.templates
        return jsonify(
            {
                "placeholders": {
                    p: sorted((x.to_dict(lang()) for x in mailer.placeholders(p)), key=lambda d: d["name"].lower())
                    for p in purposes
                },
                # which placeholders each template uses: the data a send has to bring
                "templates": {p: _used(templates[p]) for p in purposes if p in templates},
            }
        )

    # ---- settings -------------------------------------------------------------------------------
    @app.get(f"{API}/settings")
    @requires("settings")
    def settings_read() -> Any:
        return jsonify(service.settings_document())

    @app.get(f"{API}/settings/check")
    @requires("settings")
    def settings_check() -> Any:
        service.current()
        problems = service.config_problems
        cfg = service.mailer.config
        return jsonify(
            {
                "ok": problems is None,
                "file": str(service.path),
                "problems": [p.to_dict(lang()) for p in problems.problems] if problems else [],
                "warnings": [p.to_dict(lang()) for p in cfg.warnings],
            }
        )

    @app.put(f"{API}/settings/accounts/<name>")
    @requires("settings")
    def settings_account(name: str) -> Any:
        data = body({"type": str, "values": dict, "secrets": dict, "from_name": str, "limits": dict})
        written = service.settings_writer(g.who).set_account(
            name_of(name, "account"),
            type=data.get("type"),
            values=data.get("values"),
            secrets=data.get("secrets"),
            from_name=data.get("from_name"),
            limits=data.get("limits"),
        )
        return jsonify(service.saved(written).to_dict(lang()))

    @app.delete(f"{API}/settings/accounts/<name>")
    @requires("settings")
    def settings_account_remove(name: str) -> Any:
        written = service.settings_writer(g.who).remove_account(name_of(name, "account"))
        return jsonify(service.saved(written).to_dict(lang()))

    @app.put(f"{API}/settings/purposes/<purpose>")
    @requires("settings")
    def settings_purpose(purpose: str) -> Any:
        data = body({"accounts": list, "options": dict}, ("accounts",))
        written = service.settings_writer(g.who).set_purpose(
            name_of(purpose, "purpose"), data["accounts"], options=data.get("options")
        )
        return jsonify(service.saved(written).to_dict(lang()))

    @app.delete(f"{API}/settings/purposes/<purpose>")
    @requires("settings")
    def settings_purpose_remove(purpose: str) -> Any:
        written = service.settings_writer(g.who).remove_purpose(name_of(purpose, "purpose"))
        return jsonify(service.saved(written).to_dict(lang()))

    @app.post(f"{API}/settings/templates/<purpose>/preview")
    @requires("settings")
    def settings_template_preview(purpose: str) -> Any:
        data = body({"subject": str, "body": str, "format": str, "reference": str, "to": list, "data": dict})
        to = [str(a) for a in data.get("to") or ["Müller & Söhne GmbH <buchhaltung@mueller-soehne.example>"]]
        return jsonify(
            service.template_trial(
                name_of(purpose, "purpose"), data, to=to, data=dict(data.get("data") or {}), lang=lang()
            )
        )

    @app.put(f"{API}/settings/templates/<purpose>")
    @requires("settings")
    def settings_template(purpose: str) -> Any:
        data = body({"subject": str, "body": str, "format": str, "reference": str})
        written = service.settings_writer(g.who).set_template(
            name_of(purpose, "purpose"),
            subject=data.get("subject"),
            body=data.get("body"),
            format=data.get("format"),
            reference=data.get("reference"),
        )
        return jsonify(service.saved(written).to_dict(lang()))

    @app.get(f"{API}/settings/audit")
    @requires("settings")
    def settings_audit() -> Any:
        try:
            limit = int(request.args.get("limit", "100"))
        except ValueError:
            raise ApiError(422, "request", _t("limit muss eine Zahl sein.", "limit must be a number.")) from None
        return jsonify({"entries": service.settings_writer(g.who).audit(max(0, limit))})

    return app


def _used(template: Any) -> list[str]:
    names: list[str] = []
    for part in (template.subject, template.body, template.reference):
        if part is not None:
            names += [n for n in part.names if n not in names]
    return names


def _job(job: Any) -> dict[str, Any]:
    return {
        "job": job.job_id,
        "account": job.account,
        "action": job.action,
        "done": job.done,
        "notes": job.notes,
        "asking": job.asking,
        "result": job.result
        if isinstance(job.result, (dict, list, str, int, float, bool, type(None)))
        else str(job.result),
        "error": job.error,
    }


__all__ = ["ApiError", "create_app"]
