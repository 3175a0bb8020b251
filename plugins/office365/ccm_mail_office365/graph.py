"""Microsoft Graph mail calls with throttling, concurrency limits and honest outcomes.

The rule that shapes this module: a request that may have reached Microsoft is never repeated
unless it is harmless to repeat. What an attempt means is decided by ``ccm_mail_hookspecs.http``
(sent, not sent, unknown), with Graph's one exception in :func:`.throttle.for_graph`: a 429, and
a 503 or 504 with ``Retry-After``, means "not processed" and is replayed with the same body after
the wait (or exponential backoff with jitter). A dropped connection, a timeout, or a 500/502/503/
504 without ``Retry-After`` after a send request left is an *unknown outcome* and reported as
such. Requests that send nothing, or may be repeated without harm (reads, upload chunks, deleting
a draft), are asked again instead.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import structlog
from ccm_mail_hookspecs import (
    AccessDeniedError,
    Attachment,
    Message,
    NetworkError,
    T,
    TransportError,
    UnknownOutcomeError,
)
from ccm_mail_hookspecs.http import Outcome, Verdict, attempt, classify_response

from . import errors
from .config import Office365Config
from .payload import Plan, file_attachment, message_json, mime_fits, mime_message, upload_item
from .throttle import WaitBudget, backoff_delay, for_graph, is_throttled, mailbox_semaphore, slot
from .tokens import TokenProvider, token_roles

log = structlog.get_logger("ccm_mail.office365")

#: bytes per upload PUT: a multiple of 320 KiB and below Graph's 4 MB per request
UPLOAD_CHUNK = 12 * 320 * 1024
#: give up after this many throttled answers even if the wait budget allows more (Retry-After: 0)
MAX_ATTEMPTS = 30
#: pre-send network failures (refused, DNS), and failures of requests that may be repeated, are
#: retried this often, then reported
MAX_NETWORK_RETRIES = 2
#: the application permissions a request needs (any one of them), per Graph's permission reference
SEND = frozenset({"Mail.Send"})
WRITE = frozenset({"Mail.ReadWrite"})
READ = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})


class SentNoAnswer(Exception):
    """The request may have reached Microsoft but no answer came back (``verdict`` says why)."""

    def __init__(self, verdict: Verdict, host: str) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict
        self.host = host


def graph_verdict(resp: requests.Response) -> Verdict:
    """What a Graph answer means for the request: the helper's table with Graph's throttling row."""
    return for_graph(classify_response(resp))


class GraphClient:
    """Graph calls for one account's mailbox."""

    def __init__(
        self,
        config: Office365Config,
        session: requests.Session,
        tokens: TokenProvider,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.session = session
        self.tokens = tokens
        self._sleep = sleep
        self._sem = mailbox_semaphore(config.graph_endpoint, config.mailbox, config.max_concurrency)
        self.user_url = f"{config.graph_base}/users/{quote(config.mailbox, safe='@')}"

    # -- the request loop ---------------------------------------------------------------------

    def call(
        self,
        method: str,
        url: str,
        *,
        budget: WaitBudget,
        repeatable: bool,
        auth: bool = True,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        client_request_id: str = "",
        what: str = "",
        needs: frozenset[str] = frozenset(),
    ) -> requests.Response:
        """One logical request: waits for a mailbox slot, replays throttled answers (same body)
        within the wait budget, refreshes a refused token once, and once a token that lacks the
        role in ``needs`` (403: nothing was done). ``repeatable``: the request sends nothing or
        may be repeated without harm, so it is asked again (within ``MAX_NETWORK_RETRIES`` and
        the budget) after a failure whose outcome is unknown too. Raises :class:`SentNoAnswer`
        when a request that is not ``repeatable`` may have arrived but no answer came; a
        NetworkError when nothing was sent. An answer whose outcome is unknown (a 5xx) is
        returned: the caller says what it means."""
        host = urlsplit(url).netloc
        base: dict[str, str] = dict(headers or {})
        if client_request_id:
            base["client-request-id"] = client_request_id
            base["return-client-request-id"] = "true"
        throttled = network_retries = 0
        refreshed = role_refreshed = False
        while True:
            hdrs = dict(base)
            token = ""
            if auth:  # each attempt takes the current token (renewed or refreshed)
                token = self.tokens.token()
                hdrs["Authorization"] = "Bearer " + token
            started = time.monotonic()
            verdict, resp = attempt(
                partial(self._request, method, url, hdrs, json=json, data=data, params=params, timeout=timeout)
            )
            if resp is None:
                log.warning(
                    "graph_no_answer",
                    what=what,
                    method=method,
                    host=host,
                    outcome=verdict.outcome.value,
                    reason=verdict.reason,
                    error=verdict.cause,
                )
                if verdict.outcome is Outcome.UNKNOWN and not repeatable:
                    raise SentNoAnswer(verdict, host)
                delay = backoff_delay(network_retries)
                if (
                    not (verdict.may_retry or (repeatable and verdict.outcome is Outcome.UNKNOWN))
                    or network_retries >= MAX_NETWORK_RETRIES
                    or not budget.allows(delay)
                ):
                    raise errors.network_error(verdict, host)
                budget.wait(delay)
                network_retries += 1
                continue
            verdict = for_graph(verdict)
            ms = round((time.monotonic() - started) * 1000)
            log.debug(
                "graph_response",
                what=what,
                method=method,
                host=host,
                status=resp.status_code,
                ms=ms,
                request_id=resp.headers.get("request-id"),
            )
            if is_throttled(verdict):
                details = errors.graph_details(resp, self.config.secrets)
                delay = verdict.retry_after if verdict.retry_after is not None else backoff_delay(throttled)
                resp.close()
                throttled += 1
                if throttled >= MAX_ATTEMPTS or not budget.allows(delay):
                    log.warning(
                        "graph_throttled_give_up",
                        what=what,
                        status=resp.status_code,
                        waited=round(budget.waited, 2),
                        cap=budget.cap,
                        request_id=details["request_id"],
                    )
                    raise errors.throttled(budget.waited, budget.cap, details)
                log.info(
                    "graph_throttled",
                    what=what,
                    status=resp.status_code,
                    retry_after=verdict.retry_after,
                    delay=round(delay, 2),
                    request_id=details["request_id"],
                )
                budget.wait(delay)
                continue
            if resp.status_code == 401 and auth and not refreshed:
                resp.close()
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if (
                resp.status_code == 403
                and auth
                and needs
                and not role_refreshed
                and _lacks(token, needs)
                and self.tokens.refresh_for_roles(token)
            ):
                # issued before admin consent: a token carries the roles of its issue time
                resp.close()
                role_refreshed = True
                continue
            if verdict.outcome is Outcome.UNKNOWN and repeatable:
                delay = backoff_delay(network_retries)
                if network_retries < MAX_NETWORK_RETRIES and budget.allows(delay):
                    log.info(
                        "graph_retry",
                        what=what,
                        status=resp.status_code,
                        delay=round(delay, 2),
                        request_id=resp.headers.get("request-id"),
                    )
                    resp.close()
                    budget.wait(delay)
                    network_retries += 1
                    continue
            return resp

    def _request(self, method: str, url: str, headers: Mapping[str, str], **kwargs: Any) -> requests.Response:
        with slot(self._sem):
            return self.session.request(method, url, headers=headers, allow_redirects=False, **kwargs)

    def _budget(self) -> WaitBudget:
        return WaitBudget(self.config.max_wait_seconds, self._sleep)

    def _fail(self, resp: requests.Response) -> TransportError:
        err = errors.from_graph_response(resp, self.config.secrets)
        log.warning(
            "graph_refused", code=err.details.get("code"), status=resp.status_code, request_id=err.details.get("request_id")
        )
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
            raw = mime_message(message, self.config.mailbox)
            body = base64.b64encode(raw)
            if mime_fits(body):
                facts = self._send_one(url, "mime", crid, data=body, headers={"Content-Type": "text/plain"})
                return dict(facts, mime=raw)
            if message.archive:
                raise errors.too_large_for_archive(len(body))
        if plan.route in ("sendMail", "mime"):  # MIME too large: JSON, Exchange derives the text part
            msg = dict(plan.message) if plan.message else message_json(message, self.config.mailbox)
            if plan.inline_attachments:
                msg["attachments"] = [file_attachment(a) for a in plan.inline_attachments]
            return self._send_one(url, "sendMail", crid, json={"message": msg, "saveToSentItems": message.save_to_sent})
        return self._send_draft(message, plan, crid)

    def _send_one(self, url: str, route: str, crid: str, **body: Any) -> dict[str, Any]:
        what = "sendMail" if route == "sendMail" else "sendMail(MIME)"
        try:
            resp = self.call(
                "POST", url, budget=self._budget(), repeatable=False, what=what, needs=SEND, client_request_id=crid, **body
            )
        except SentNoAnswer as exc:
            raise errors.unknown_outcome(exc.verdict, exc.host, {"client_request_id": crid}) from None
        return self._accepted(resp, route, crid)

    def _accepted(self, resp: requests.Response, route: str, crid: str) -> dict[str, Any]:
        """Receipt facts for a send's answer. Graph documents 202 for both send requests; any 2xx
        says "accepted" (a gateway may rewrite it), so it is sent, whatever its body."""
        verdict = graph_verdict(resp)
        if verdict.outcome is Outcome.SENT:
            return {
                "sent_at": _response_time(resp),
                "request_id": resp.headers.get("request-id", ""),
                "client_request_id": crid,
                "route": route,
            }
        if verdict.outcome is Outcome.UNKNOWN:  # 5xx without Retry-After: the mail may have gone out
            details = {**errors.graph_details(resp, self.config.secrets), "client_request_id": crid}
            raise errors.unknown_outcome(verdict, urlsplit(resp.url).netloc, details)
        raise self._fail(resp)

    def _send_draft(self, message: Message, plan: Plan, crid: str) -> dict[str, Any]:
        budget = self._budget()
        try:
            resp = self.call(
                "POST",
                f"{self.user_url}/messages",
                json=message_json(message, self.config.mailbox),
                budget=budget,
                repeatable=False,
                client_request_id=crid,
                what="createDraft",
                needs=WRITE,
            )
        except SentNoAnswer as exc:  # a draft is never sent by itself; at worst one is left over
            raise _not_sent(exc) from None
        if resp.status_code == 403:
            err = self._fail(resp)
            raise AccessDeniedError(
                T(
                    "Große Nachrichten (Anhänge ab etwa 3 MB, zusammen über 4 MB je Anfrage) gehen über einen "
                    "Entwurf; dafür braucht die App zusätzlich die Anwendungsberechtigung Mail.ReadWrite.",
                    "Large messages (attachments from about 3 MB, above 4 MB per request together) go through a "
                    "draft; that needs the additional application permission Mail.ReadWrite.",
                ),
                hint=T(
                    "In Entra Mail.ReadWrite (Anwendung) hinzufügen und Admin Berechtigung erteilen, oder Anhänge verkleinern.",
                    "Add Mail.ReadWrite (Application) in Entra and grant admin consent, or make attachments smaller.",
                ),
                details=err.details,
            )
        if not 200 <= resp.status_code <= 299:
            raise self._fail(resp)
        draft_id = str(self.answer(resp, "id", T("Entwurf anlegen", "Creating the draft")))
        draft_url = f"{self.user_url}/messages/{quote(draft_id, safe='')}"
        done = False
        try:
            for att in plan.inline_attachments:
                r = self.call(
                    "POST",
                    f"{draft_url}/attachments",
                    json=file_attachment(att),
                    budget=budget,
                    repeatable=False,
                    client_request_id=crid,
                    what="addAttachment",
                    needs=WRITE,
                )
                if not 200 <= r.status_code <= 299:
                    raise self._fail(r)
            for att in plan.upload_attachments:
                self._upload(draft_url, att, budget, crid)
            try:
                resp = self.call(
                    "POST",
                    f"{draft_url}/send",
                    budget=budget,
                    repeatable=False,
                    client_request_id=crid,
                    what="sendDraft",
                    headers={"Content-Length": "0"},
                    needs=SEND,
                )
            except SentNoAnswer as exc:
                done = True  # the draft may have been sent: keep it, say so
                raise errors.unknown_outcome(exc.verdict, exc.host, {"client_request_id": crid}) from None
            try:
                facts = self._accepted(resp, "draft", crid)
            except UnknownOutcomeError:
                done = True  # the draft may have been sent: keep it
                raise
            done = True
            return facts
        except SentNoAnswer as exc:
            raise _not_sent(exc) from None
        finally:
            if not done:
                self._delete_draft(draft_url, crid)

    def _upload(self, draft_url: str, att: Attachment, budget: WaitBudget, crid: str) -> None:
        size = att.size
        r = self.call(
            "POST",
            f"{draft_url}/attachments/createUploadSession",
            json=upload_item(att, size),
            budget=budget,
            repeatable=True,
            client_request_id=crid,
            what="createUploadSession",
            needs=WRITE,
        )
        if r.status_code not in (200, 201):
            raise self._fail(r)
        upload_url = str(self.answer(r, "uploadUrl", T("Upload-Sitzung", "Upload session")))  # never logged
        offset = 0
        with att.path.open("rb") as fh:
            while offset < size:
                fh.seek(offset)
                chunk = fh.read(UPLOAD_CHUNK)
                if not chunk:
                    raise TransportError(
                        T(
                            f"Anhang {att.filename} wurde während des Sendens kürzer.",
                            f"Attachment {att.filename} shrank while being sent.",
                        )
                    )
                end = offset + len(chunk) - 1
                r = self.call(
                    "PUT",
                    upload_url,
                    data=chunk,
                    auth=False,
                    budget=budget,
                    repeatable=True,
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"bytes {offset}-{end}/{size}"},
                    timeout=(self.config.timeout[0], max(self.config.timeout[1], 120.0)),
                    what="uploadChunk",
                )
                if r.status_code in (201, 204) or (r.status_code == 200 and end + 1 >= size):
                    offset = end + 1
                elif r.status_code == 200:
                    offset = _next_offset(r, end + 1)
                else:
                    raise self._fail(r)
        log.info("attachment_uploaded", name=att.filename, bytes=size)

    def _delete_draft(self, draft_url: str, crid: str) -> None:
        try:
            r = self.call(
                "DELETE",
                draft_url,
                budget=WaitBudget(min(30.0, self.config.max_wait_seconds), self._sleep),
                repeatable=True,
                client_request_id=crid,
                what="deleteDraft",
            )
            log.info("draft_deleted", status=r.status_code)
        except Exception as exc:  # best effort: the original failure is what the admin needs to see
            log.warning("draft_not_deleted", error=type(exc).__name__)

    # -- reading ------------------------------------------------------------------------------

    def find_sent(self, internet_message_id: str) -> requests.Response:
        escaped = internet_message_id.replace("'", "''")
        return self.call(
            "GET",
            f"{self.user_url}/mailFolders/SentItems/messages",
            budget=self._budget(),
            repeatable=True,
            what="lookup",
            needs=READ,
            params={"$filter": f"internetMessageId eq '{escaped}'", "$select": "id,internetMessageId,sentDateTime", "$top": "5"},
        )

    def application(self) -> requests.Response:
        """The app's own registration, its secrets' end dates only (Application.Read.All;
        https://learn.microsoft.com/graph/api/application-get: ``GET /applications(appId='{appId}')``)."""
        return self.call(
            "GET",
            f"{self.config.graph_base}/applications(appId='{quote(self.config.client_id, safe='')}')",
            budget=self._budget(),
            repeatable=True,
            what="application",
            params={"$select": "passwordCredentials"},
        )

    def sent_items_folder(self) -> requests.Response:
        return self.call(
            "GET",
            f"{self.user_url}/mailFolders/SentItems",
            budget=self._budget(),
            repeatable=True,
            params={"$select": "id,displayName,totalItemCount"},
            what="checkMailbox",
        )


def _lacks(token: str, needs: frozenset[str]) -> bool:
    """True unless the token is a readable JWT whose roles include one of ``needs``."""
    roles = token_roles(token)
    return roles is None or not (roles & needs)


def _not_sent(exc: SentNoAnswer) -> NetworkError:
    """A draft or its attachment may have arrived, but a draft is never sent by itself."""
    return NetworkError(
        T(
            f"Die Verbindung zu {exc.host} brach beim Vorbereiten ab ({exc.verdict.why.de}); die Nachricht wurde nicht gesendet.",
            f"The connection to {exc.host} broke while preparing the message ({exc.verdict.why.en}); it was not sent.",
        ),
        hint=T("Später erneut senden.", "Send again later."),
        details={"code": "network_prepare", "host": exc.host, "cause": exc.verdict.cause},
    )


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
