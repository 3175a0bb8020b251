"""Microsoft Graph mail calls with throttling, concurrency limits and honest outcomes.

The rule that shapes this module: a request that may have reached Microsoft is never repeated
unless it is harmless to repeat. Throttling answers (429/503/504) mean "not processed" and are
replayed with the same body after ``Retry-After`` (or exponential backoff with jitter); a dropped
connection or a timeout after a send request left is an *unknown outcome* and is reported as such.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import structlog
from ccm_mail_hookspecs import AccessDeniedError, Attachment, Message, NetworkError, T, TransportError
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from . import errors
from .config import Office365Config
from .payload import Plan, file_attachment, message_json, mime_body, mime_fits, upload_item
from .throttle import THROTTLE_STATUSES, WaitBudget, backoff_delay, mailbox_semaphore, parse_retry_after, slot
from .tokens import TokenProvider, token_roles

log = structlog.get_logger("ccm_mail.office365")

#: bytes per upload PUT: a multiple of 320 KiB and below Graph's 4 MB per request
UPLOAD_CHUNK = 12 * 320 * 1024
#: give up after this many throttled answers even if the wait budget allows more (Retry-After: 0)
MAX_ATTEMPTS = 30
#: pre-send network failures (refused, DNS) are retried this often, then reported
MAX_NETWORK_RETRIES = 2
_TLS_HINTS = ("certificate", "handshake", "wrong_version", "hostname", "unknown_ca", "self signed")
#: the application permissions a request needs (any one of them), per Graph's permission reference
SEND = frozenset({"Mail.Send"})
WRITE = frozenset({"Mail.ReadWrite"})
READ = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})


class SentNoAnswer(Exception):
    """The request may have reached Microsoft but no answer came back."""

    def __init__(self, cause: BaseException, host: str) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.host = host


def was_sent(exc: requests.RequestException) -> bool:
    """Could Microsoft have received (part of) the request? True unless the failure is known to
    happen before any byte of the request left: DNS, refused connection, connect timeout, proxy
    CONNECT failure, TLS handshake/certificate failure."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError,
                        requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.MissingSchema)):
        return False
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc).lower()
        return not any(h in text for h in _TLS_HINTS)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the real cause
        if isinstance(reason, (NewConnectionError, NameResolutionError, ConnectTimeoutError)):
            return False
    return True


class GraphClient:
    """Graph calls for one account's mailbox."""

    def __init__(self, config: Office365Config, session: requests.Session, tokens: TokenProvider, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.session = session
        self.tokens = tokens
        self._sleep = sleep
        self._sem = mailbox_semaphore(config.graph_endpoint, config.mailbox, config.max_concurrency)
        self.user_url = f"{config.graph_base}/users/{quote(config.mailbox, safe='@')}"

    # -- the request loop ---------------------------------------------------------------------

    def call(self, method: str, url: str, *, budget: WaitBudget, repeatable: bool, auth: bool = True,
             json: Any = None, data: bytes | None = None, headers: Mapping[str, str] | None = None,
             params: Mapping[str, str] | None = None, timeout: tuple[float, float] | None = None,
             client_request_id: str = "", what: str = "", needs: frozenset[str] = frozenset()) -> requests.Response:
        """One logical request: waits for a mailbox slot, replays throttled answers (same body)
        within the wait budget, refreshes a refused token once, and once a token that lacks the
        role in ``needs`` (403: nothing was done). Raises :class:`SentNoAnswer` when the request
        may have arrived but nothing came back and ``repeatable`` is false."""
        host = urlsplit(url).netloc
        base: dict[str, str] = dict(headers or {})
        if client_request_id:
            base["client-request-id"] = client_request_id
            base["return-client-request-id"] = "true"
        attempt = network_retries = 0
        refreshed = role_refreshed = False
        while True:
            hdrs = dict(base)
            token = ""
            if auth:  # each attempt takes the current token (renewed or refreshed)
                token = self.tokens.token()
                hdrs["Authorization"] = "Bearer " + token
            started = time.monotonic()
            try:
                with slot(self._sem):
                    resp = self.session.request(method, url, json=json, data=data, headers=hdrs, params=params,
                                                timeout=timeout, allow_redirects=False)
            except requests.RequestException as exc:
                sent = was_sent(exc)
                log.warning("graph_no_answer", what=what, method=method, host=host, sent=sent,
                            error=type(exc).__name__)
                if sent and not repeatable:
                    raise SentNoAnswer(exc, host) from None
                tls = isinstance(exc, requests.exceptions.SSLError) and not sent
                delay = backoff_delay(network_retries)
                if tls or network_retries >= MAX_NETWORK_RETRIES or not budget.allows(delay):
                    raise errors.network_error(exc, host) from None
                budget.wait(delay)
                network_retries += 1
                continue
            ms = round((time.monotonic() - started) * 1000)
            log.debug("graph_response", what=what, method=method, host=host, status=resp.status_code, ms=ms,
                      request_id=resp.headers.get("request-id"))
            if resp.status_code in THROTTLE_STATUSES:
                details = errors.graph_details(resp, self.config.secrets)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else backoff_delay(attempt)
                resp.close()
                attempt += 1
                if attempt >= MAX_ATTEMPTS or not budget.allows(delay):
                    log.warning("graph_throttled_give_up", what=what, status=resp.status_code,
                                waited=round(budget.waited, 2), cap=budget.cap, request_id=details["request_id"])
                    raise errors.throttled(budget.waited, budget.cap, details)
                log.info("graph_throttled", what=what, status=resp.status_code, retry_after=retry_after,
                         delay=round(delay, 2), request_id=details["request_id"])
                budget.wait(delay)
                continue
            if resp.status_code == 401 and auth and not refreshed:
                resp.close()
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if (resp.status_code == 403 and auth and needs and not role_refreshed and _lacks(token, needs)
                    and self.tokens.refresh_for_roles(token)):
                # issued before admin consent: a token carries the roles of its issue time
                resp.close()
                role_refreshed = True
                continue
            return resp

    def _budget(self) -> WaitBudget:
        return WaitBudget(self.config.max_wait_seconds, self._sleep)

    def _fail(self, resp: requests.Response) -> TransportError:
        err = errors.from_graph_response(resp, self.config.secrets)
        log.warning("graph_refused", code=err.details.get("code"), status=resp.status_code,
                    request_id=err.details.get("request_id"))
        return err

    def answer(self, resp: requests.Response, key: str, what: T, *, sending: bool = True) -> Any:
        """``key`` of a successful answer's JSON; an unreadable answer is an error (not sent)."""
        try:
            body = resp.json()
            return body[key]
        except (ValueError, KeyError, TypeError):
            raise errors.unreadable_answer(resp, what, self.config.secrets, sending=sending) from None

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: Message, plan: Plan) -> dict[str, Any]:
        """Send along the planned route; returns receipt facts. Raises TransportError (not sent)
        or UnknownOutcomeError (may have been sent)."""
        crid = str(uuid.uuid4())
        url = f"{self.user_url}/sendMail"
        if plan.route == "mime":
            body = mime_body(message, self.config.mailbox)
            if mime_fits(body):
                return self._send_one(url, "mime", crid, data=body, headers={"Content-Type": "text/plain"})
        if plan.route in ("sendMail", "mime"):  # MIME too large: JSON, Exchange derives the text part
            msg = dict(plan.message) if plan.message else message_json(message, self.config.mailbox)
            if plan.inline_attachments:
                msg["attachments"] = [file_attachment(a) for a in plan.inline_attachments]
            return self._send_one(url, "sendMail", crid, json={"message": msg, "saveToSentItems": True})
        return self._send_draft(message, plan, crid)

    def _send_one(self, url: str, route: str, crid: str, **body: Any) -> dict[str, Any]:
        what = "sendMail" if route == "sendMail" else "sendMail(MIME)"
        try:
            resp = self.call("POST", url, budget=self._budget(), repeatable=False, what=what, needs=SEND,
                             client_request_id=crid, **body)
        except SentNoAnswer as exc:
            raise errors.unknown_outcome(exc.cause, exc.host, {"client_request_id": crid}) from None
        return self._accepted(resp, route, crid)

    def _accepted(self, resp: requests.Response, route: str, crid: str) -> dict[str, Any]:
        if resp.status_code == 202:
            return {"sent_at": _response_time(resp), "request_id": resp.headers.get("request-id", ""),
                    "client_request_id": crid, "route": route}
        if resp.status_code >= 500:  # the server failed while handling a send: it may have gone out
            details = errors.graph_details(resp, self.config.secrets)
            raise errors.unknown_outcome(None, urlsplit(resp.url).netloc, details)
        raise self._fail(resp)

    def _send_draft(self, message: Message, plan: Plan, crid: str) -> dict[str, Any]:
        budget = self._budget()
        try:
            resp = self.call("POST", f"{self.user_url}/messages", json=message_json(message, self.config.mailbox),
                             budget=budget, repeatable=False, client_request_id=crid, what="createDraft", needs=WRITE)
        except SentNoAnswer as exc:  # a draft is never sent by itself; at worst one is left over
            raise _not_sent(exc) from None
        if resp.status_code == 403:
            err = self._fail(resp)
            raise AccessDeniedError(
                T("Große Nachrichten (Anhänge ab etwa 3 MB, zusammen über 4 MB je Anfrage) gehen über einen "
                  "Entwurf; dafür braucht die App zusätzlich die Anwendungsberechtigung Mail.ReadWrite.",
                  "Large messages (attachments from about 3 MB, above 4 MB per request together) go through a "
                  "draft; that needs the additional application permission Mail.ReadWrite."),
                hint=T("In Entra Mail.ReadWrite (Anwendung) hinzufügen und Admin Berechtigung erteilen, oder "
                       "Anhänge verkleinern.",
                       "Add Mail.ReadWrite (Application) in Entra and grant admin consent, or make attachments "
                       "smaller."),
                details=err.details)
        if resp.status_code != 201:
            raise self._fail(resp)
        draft_id = str(self.answer(resp, "id", T("Entwurf anlegen", "Creating the draft")))
        draft_url = f"{self.user_url}/messages/{quote(draft_id, safe='')}"
        done = False
        try:
            for att in plan.inline_attachments:
                r = self.call("POST", f"{draft_url}/attachments", json=file_attachment(att), budget=budget,
                              repeatable=False, client_request_id=crid, what="addAttachment", needs=WRITE)
                if r.status_code != 201:
                    raise self._fail(r)
            for att in plan.upload_attachments:
                self._upload(draft_url, att, budget, crid)
            try:
                resp = self.call("POST", f"{draft_url}/send", budget=budget, repeatable=False,
                                 client_request_id=crid, what="sendDraft", headers={"Content-Length": "0"},
                                 needs=SEND)
            except SentNoAnswer as exc:
                done = True  # the draft may have been sent: keep it, say so
                raise errors.unknown_outcome(exc.cause, exc.host, {"client_request_id": crid}) from None
            if resp.status_code == 202 or resp.status_code >= 500:
                done = True
            return self._accepted(resp, "draft", crid)
        except SentNoAnswer as exc:
            raise _not_sent(exc) from None
        finally:
            if not done:
                self._delete_draft(draft_url, crid)

    def _upload(self, draft_url: str, att: Attachment, budget: WaitBudget, crid: str) -> None:
        size = att.size
        r = self.call("POST", f"{draft_url}/attachments/createUploadSession", json=upload_item(att, size),
                      budget=budget, repeatable=True, client_request_id=crid, what="createUploadSession",
                      needs=WRITE)
        if r.status_code not in (200, 201):
            raise self._fail(r)
        upload_url = str(self.answer(r, "uploadUrl", T("Upload-Sitzung", "Upload session")))  # never logged
        offset = 0
        with att.path.open("rb") as fh:
            while offset < size:
                fh.seek(offset)
                chunk = fh.read(UPLOAD_CHUNK)
                if not chunk:
                    raise TransportError(T(f"Anhang {att.filename} wurde während des Sendens kürzer.",
                                           f"Attachment {att.filename} shrank while being sent."))
                end = offset + len(chunk) - 1
                r = self.call("PUT", upload_url, data=chunk, auth=False, budget=budget, repeatable=True,
                              headers={"Content-Type": "application/octet-stream",
                                       "Content-Range": f"bytes {offset}-{end}/{size}"},
                              timeout=(self.config.timeout[0], max(self.config.timeout[1], 120.0)),
                              what="uploadChunk")
                if r.status_code in (201, 204) or (r.status_code == 200 and end + 1 >= size):
                    offset = end + 1
                elif r.status_code == 200:
                    offset = _next_offset(r, end + 1)
                else:
                    raise self._fail(r)
        log.info("attachment_uploaded", name=att.filename, bytes=size)

    def _delete_draft(self, draft_url: str, crid: str) -> None:
        try:
            r = self.call("DELETE", draft_url, budget=WaitBudget(min(30.0, self.config.max_wait_seconds), self._sleep),
                          repeatable=True, client_request_id=crid, what="deleteDraft")
            log.info("draft_deleted", status=r.status_code)
        except Exception as exc:  # best effort: the original failure is what the admin needs to see
            log.warning("draft_not_deleted", error=type(exc).__name__)

    # -- reading ------------------------------------------------------------------------------

    def find_sent(self, internet_message_id: str) -> requests.Response:
        escaped = internet_message_id.replace("'", "''")
        return self.call("GET", f"{self.user_url}/mailFolders/SentItems/messages", budget=self._budget(),
                         repeatable=True, what="lookup", needs=READ,
                         params={"$filter": f"internetMessageId eq '{escaped}'",
                                 "$select": "id,internetMessageId,sentDateTime", "$top": "5"})

    def sent_items_folder(self) -> requests.Response:
        return self.call("GET", f"{self.user_url}/mailFolders/SentItems", budget=self._budget(), repeatable=True,
                         params={"$select": "id,displayName,totalItemCount"}, what="checkMailbox")


def _lacks(token: str, needs: frozenset[str]) -> bool:
    """True unless the token is a readable JWT whose roles include one of ``needs``."""
    roles = token_roles(token)
    return roles is None or not (roles & needs)


def _not_sent(exc: SentNoAnswer) -> NetworkError:
    return NetworkError(
        T(f"Die Verbindung zu {exc.host} brach beim Vorbereiten ab; die Nachricht wurde nicht gesendet.",
          f"The connection to {exc.host} broke while preparing the message; it was not sent."),
        hint=T("Später erneut senden.", "Send again later."),
        details={"code": "network_prepare", "host": exc.host, "description": type(exc.cause).__name__})


def _next_offset(resp: requests.Response, fallback: int) -> int:
    try:
        ranges = resp.json().get("nextExpectedRanges") or []
        return int(str(ranges[0]).split("-")[0]) if ranges else fallback
    except (ValueError, AttributeError, IndexError):
        return fallback


def _response_time(resp: requests.Response) -> datetime:
    """When Microsoft accepted the message: its ``Date`` header, else our clock (both UTC)."""
    try:
        when = parsedate_to_datetime(resp.headers.get("Date", ""))
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
