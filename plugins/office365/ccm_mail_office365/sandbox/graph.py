"""Microsoft Graph mail stand-in (``/v1.0/users/{id | userPrincipalName}/...``).

Implemented:

- ``POST sendMail`` -> 202, empty body (no message id, as Graph); JSON, or MIME in base64 with
  ``Content-Type: text/plain`` (:mod:`.mime`).
- Drafts: ``POST messages`` (201), ``POST messages/{id}/attachments`` (201),
  ``POST messages/{id}/attachments/createUploadSession`` (201, uploadSession),
  ``PUT <uploadUrl>`` (200 + ``ExpirationDateTime``/``nextExpectedRanges``, last chunk 201 +
  Location, ``DELETE <uploadUrl>`` 204); sessions for files under 3 MB are refused with
  ``ErrorAttachmentSizeShouldNotBeLessThanMinimumSize`` as the large-attachments guide says,
  ``POST messages/{id}/send`` (202, always saved to Sent Items), ``DELETE messages/{id}`` (204),
  ``GET messages/{id}``.
- ``GET mailFolders/{sentitems|inbox|drafts}/messages`` with the two ``$filter`` forms of
  :mod:`.odata`, ``$select``, ``$top`` and ``$expand=singleValueExtendedProperties(...)``;
  ``GET mailFolders/{name}``; ``GET users/{id}`` (directory object).

Permissions (application, from the token's ``roles``), as in Graph's permission reference:
sendMail and send need Mail.Send; creating/changing drafts and upload sessions Mail.ReadWrite;
reading messages or folders Mail.ReadBasic, Mail.ReadBasic.All, Mail.Read or Mail.ReadWrite;
``GET users/{id}`` User.Read.All / User.ReadBasic.All / Directory.Read.All. A connection test that
must not need directory rights should therefore read ``mailFolders/inbox`` (Mail.ReadBasic.All)
or simply get a token; Mail.Send alone allows no read at all.

Checks run in this order: token (401 InvalidAuthenticationToken) -> mailbox exists in the token's
tenant (404 ErrorInvalidUser) -> licensed (404 MailboxNotEnabledForRESTAPI) -> permission (403
ErrorAccessDenied) -> mailbox concurrency (more than 4 in flight per app and mailbox: 429
ApplicationThrottled, ``Application is over its MailboxConcurrency limit.``) -> the request.
More than 150 MB of request bodies per app and mailbox within 5 minutes
(``sb.upload_limit``) is 429 ApplicationThrottled ``Application is over its IncomingBytes limit.``
A mailbox scoped to other apps (RBAC for Applications / application access policy,
``add_mailbox(allowed_apps=...)``) answers 403 ErrorAccessDenied "Access to OData is disabled:
[RAOP] ...". Sending then checks send-as (403 ErrorSendAsDenied), size (400
ErrorMessageSizeExceeded), the daily recipient limit (10,000; above it the mailbox is blocked for
24 h: ErrorSubmissionQuotaExceeded, HTTP 500 as Exchange's OData layer maps it) and the
mailbox's message rate (429 ApplicationThrottled with Retry-After; the code and text for this
one are the sandbox's: Exchange's sending-rate refusal is not documented for Graph).

Request bodies above 4 MiB get 413 ``RequestEntityTooLarge`` ("The maximum request length
supported is 4MB."). Upload chunks: at most 4 MiB, in order, with ``Content-Range`` and
``Content-Length``, and *without* ``Authorization`` (the URL is pre-authenticated; a bearer token
there is 401 ``InvalidAudienceForResource``); wrong order is 416, a bad Content-Range 400
(``InvalidContentRange`` is the sandbox's code).

Every answer carries ``request-id``, ``client-request-id`` (the client's, echoed, else the
request id), ``Date`` and ``x-ms-ags-diagnostic``; errors are
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from . import mime
from .hosts import CLOUDS, GRAPH_HOSTS, cloud_of_graph_host
from .messages import (
    GraphBadRequest,
    InlineAttachment,
    check_sendable,
    decode_attachment,
    mime_size,
    validate_message,
)
from .odata import ODataError, apply_select, parse_expand, parse_filter
from .server import BodyTooLarge, Request, Response
from .state import (
    MAILBOX_CONCURRENCY,
    Draft,
    Mailbox,
    SandboxState,
    SentAttachment,
    SentMessage,
    TokenInfo,
    UploadSession,
    graph_time,
    utcnow,
)

#: Graph's request size limit.
MAX_REQUEST = 4 * 1024 * 1024
#: Upload session chunk limit.
MAX_CHUNK = 4 * 1024 * 1024
#: Largest attachment an upload session takes.
MAX_UPLOAD = 150 * 1024 * 1024
#: Smallest: below 3 MB Graph wants a plain POST on ``attachments``.
MIN_UPLOAD = 3 * 1024 * 1024
#: Attachments above this are kept on disk, not in memory.
IN_MEMORY_LIMIT = 1024 * 1024
UPLOAD_LIFETIME = timedelta(hours=1)

READ_ROLES = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})
WRITE_ROLES = frozenset({"Mail.ReadWrite"})
SEND_ROLES = frozenset({"Mail.Send"})
USER_ROLES = frozenset({"User.Read.All", "User.ReadBasic.All", "Directory.Read.All",
                        "User.ReadWrite.All", "Directory.ReadWrite.All"})

_USER = re.compile(r"^/v1\.0/users/(?P<user>[^/]+)(?P<rest>/.*)?$")
_UPLOAD = re.compile(r"^/api/v2\.0/Users\('(?P<user>[^']+)'\)/Messages\('(?P<msg>[^']+)'\)"
                     r"/AttachmentSessions\('(?P<sid>[^']+)'\)$")
_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$")
_FOLDERS = {"sentitems": "Sent Items", "inbox": "Inbox", "drafts": "Drafts"}


def _new_id() -> str:
    # Exchange ids are long base64 strings; '=' and '-'/'_' make clients quote them properly.
    return "AAMkAG" + base64.urlsafe_b64encode(secrets.token_bytes(96)).decode("ascii")


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class Graph:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._upload_locks: dict[str, threading.Lock] = {}

    # --- plumbing --------------------------------------------------------------------------
    def _headers(self, req: Request) -> dict[str, str]:
        return {
            "request-id": req.request_id,
            "client-request-id": req.header("client-request-id") or req.request_id,
            "x-ms-ags-diagnostic": json.dumps({"ServerInfo": {
                "DataCenter": "Germany West Central", "Slice": "E", "Ring": "5",
                "ScaleUnit": "000", "RoleInstance": "SANDBOX"}}),
            "Strict-Transport-Security": "max-age=31536000",
            "Cache-Control": "no-cache",
        }

    def _ok(self, req: Request, status: int, payload: Any = None,
            extra: dict[str, str] | None = None) -> Response:
        headers = self._headers(req)
        headers.update(extra or {})
        if payload is None:
            return Response(status, b"", headers)
        return Response.json(status, payload, headers,
                             "application/json;odata.metadata=minimal;odata.streaming=true;"
                             "IEEE754Compatible=false;charset=utf-8")

    def error(self, req: Request, status: int, code: str, message: str,
              extra: dict[str, str] | None = None) -> Response:
        headers = self._headers(req)
        headers.update(extra or {})
        body = {"error": {"code": code, "message": message, "innerError": {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": req.request_id,
            "client-request-id": headers["client-request-id"]}}}
        return Response.json(status, body, headers)

    def handle(self, req: Request) -> Response:
        try:
            return self._handle(req)
        except GraphError as e:
            return self.error(req, e.status, e.code, e.message, e.headers)
        except GraphBadRequest as e:
            return self.error(req, e.status, e.code, e.message)
        except BodyTooLarge:
            return self.error(req, 413, "RequestEntityTooLarge",
                              "The maximum request length supported is 4MB.")

    def _handle(self, req: Request) -> Response:
        fault = req.fault
        if fault is not None and fault.kind.isdigit():
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            code, text = {
                429: ("TooManyRequests", "Too many requests."),
                500: ("InternalServerError", "An internal server error occurred."),
                503: ("ServiceUnavailable", "Service is temporarily unavailable. Please retry."),
                504: ("GatewayTimeout", "The gateway did not receive a timely response."),
            }.get(int(fault.kind), ("UnknownError", "Error."))
            raise GraphError(int(fault.kind), code, text, extra)
        m = _UPLOAD.match(req.path)
        if m:
            return self.upload(req, m.group("user"), m.group("msg"), m.group("sid"))
        if not req.path.startswith("/v1.0/"):
            version = req.path.strip("/").split("/")[0]
            if version in ("beta",):
                raise GraphError(400, "BadRequest", "The sandbox only serves v1.0.")
            raise GraphError(400, "BadRequest", f"Invalid version: {version}")
        token = self._token(req)
        if req.path == "/v1.0/me" or req.path.startswith("/v1.0/me/"):
            raise GraphError(400, "BadRequest",
                             "/me request is only valid with delegated authentication flow.")
        m = _USER.match(req.path)
        if not m:
            raise GraphError(400, "BadRequest",
                             f"Resource not found for the segment '{req.path.split('/')[2]}'.")
        ref = unquote(m.group("user"))
        rest = m.group("rest") or ""
        if rest in ("", "/"):
            return self.get_user(req, token, ref)
        mb = self.state.mailbox(token.tenant_id, ref)
        if mb is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        if not mb.licensed:
            raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
        self._policy(token, mb)
        return self._with_slot(req, token, mb, lambda: self._route(req, token, mb, rest))

    def _with_slot(self, req: Request, token_client: TokenInfo | str, mb: Mailbox,
                   work: Callable[[], Response]) -> Response:
        client_id = token_client if isinstance(token_client, str) else token_client.client_id
        n = self.state.enter(client_id, mb.address)
        try:
            if n > MAILBOX_CONCURRENCY:
                raise GraphError(429, "ApplicationThrottled",
                                 "Application is over its MailboxConcurrency limit.",
                                 {"Retry-After": "1"})
            wait = self.state.upload_wait(client_id, mb.address)
            if wait > 0 and req.method in ("POST", "PUT", "PATCH"):
                raise GraphError(429, "ApplicationThrottled",
                                 "Application is over its IncomingBytes limit.",
                                 {"Retry-After": str(max(1, math.ceil(wait)))})
            if req.fault is not None and req.fault.kind == "latency":
                time.sleep(req.fault.delay)
            return work()
        finally:
            if req.method in ("POST", "PUT", "PATCH"):
                self.state.note_upload(client_id, mb.address, req.content_length or 0)
            self.state.leave(client_id, mb.address)

    def _token(self, req: Request) -> TokenInfo:
        auth = req.header("Authorization") or ""
        www = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline'
                                   '.com/common/oauth2/authorize", client_id="00000003-0000-0000-'
                                   'c000-000000000000"'}
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", www)
        raw = auth[7:].strip()
        with self.state.lock:
            info = self.state.tokens.get(raw)
        if info is None:
            if raw.count(".") != 2:
                raise GraphError(401, "InvalidAuthenticationToken",
                                 "IDX14100: JWT is not well formed, there are no dots (.).", www)
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token validation failure. Invalid signature.", www)
        if info.expires_at <= time.time():
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Lifetime validation failed, the token is expired.", www)
        cloud = cloud_of_graph_host(req.host)
        allowed = ({f"https://{req.host}"} if cloud is not None
                   else {r for c in CLOUDS.values() for r in c.graph_resources})
        if info.resource not in allowed:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token validation failure. Invalid audience.", www)
        return info

    @staticmethod
    def _need(token: TokenInfo, roles: frozenset[str]) -> None:
        if not (token.roles & roles):
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")

    @staticmethod
    def _policy(token: TokenInfo, mb: Mailbox) -> None:
        """RBAC for Applications / application access policy scoping the app's mailboxes."""
        if mb.allowed_apps is not None and token.client_id not in mb.allowed_apps:
            raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked "
                                                       "by tenant configured AppOnly AccessPolicy settings.")

    def _json_body(self, req: Request, *, allow_empty: bool = False) -> Any:
        raw = req.read_body(MAX_REQUEST)
        if not raw.strip():
            if allow_empty:
                return None
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        ctype = (req.header("Content-Type") or "").lower()
        if "json" not in ctype:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure "
                                                "Content-Type header is set and payload is of valid "
                                                "JSON format.")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure "
                                                "Content-Type header is set and payload is of valid "
                                                "JSON format.") from None

    # --- routing ---------------------------------------------------------------------------
    def _route(self, req: Request, token: TokenInfo, mb: Mailbox, rest: str) -> Response:
        parts = [unquote(p) for p in rest.strip("/").split("/")]
        method = req.method
        low = [p.lower() for p in parts]
        if low == ["sendmail"] and method == "POST":
            return self.send_mail(req, token, mb)
        if low == ["messages"] and method == "POST":
            return self.create_draft(req, token, mb)
        if low == ["messages"] and method == "GET":
            return self.list_messages(req, token, mb, None)
        if len(parts) == 2 and low[0] == "messages":
            if method == "DELETE":
                return self.delete_message(req, token, mb, parts[1])
            if method == "GET":
                return self.get_message(req, token, mb, parts[1])
        if len(parts) == 3 and low[0] == "messages" and low[2] == "send" and method == "POST":
            return self.send_draft(req, token, mb, parts[1])
        if len(parts) == 3 and low[0] == "messages" and low[2] == "attachments" and method == "POST":
            return self.add_attachment(req, token, mb, parts[1])
        if (len(parts) == 4 and low[0] == "messages" and low[2] == "attachments"
                and low[3] == "createuploadsession" and method == "POST"):
            return self.create_upload_session(req, token, mb, parts[1])
        if low and low[0].startswith("mailfolders"):
            folder = _folder_name(parts)
            if folder is not None:
                if len(parts) == (1 if "(" in parts[0] else 2) and method == "GET":
                    return self.get_folder(req, token, mb, folder)
                if low[-1] == "messages" and method == "GET":
                    return self.list_messages(req, token, mb, folder)
        raise GraphError(400, "BadRequest",
                         f"Resource not found for the segment '{parts[-1] if parts else ''}'.")

    # --- directory -------------------------------------------------------------------------
    def get_user(self, req: Request, token: TokenInfo, ref: str) -> Response:
        if not (token.roles & USER_ROLES):
            raise GraphError(403, "Authorization_RequestDenied",
                             "Insufficient privileges to complete the operation.")
        mb = self.state.mailbox(token.tenant_id, ref)
        if mb is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{ref}' does not exist or one of its queried "
                             f"reference-property objects are not present.")
        return self._ok(req, 200, {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#users/$entity",
            "businessPhones": [], "displayName": mb.display_name, "givenName": None,
            "jobTitle": None, "mail": mb.address, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "de-DE", "surname": None, "userPrincipalName": mb.address,
            "id": mb.object_id})

    # --- sending ---------------------------------------------------------------------------
    def send_mail(self, req: Request, token: TokenInfo, mb: Mailbox) -> Response:
        self._need(token, SEND_ROLES)
        if (req.header("Content-Type") or "").lower().startswith("text/plain"):
            return self.send_mime(req, mb)
        payload = self._json_body(req)
        if not isinstance(payload, dict):
            raise GraphBadRequest("RequestBodyRead", "An object was expected as request payload.")
        for k in payload:
            if k.lower() not in ("message", "savetosentitems"):
                raise GraphBadRequest("RequestBodyRead", f"The parameter '{k}' in the request "
                                      f"payload is not a valid parameter for the operation 'sendMail'.")
        lower = {k.lower(): v for k, v in payload.items()}
        if "message" not in lower:
            raise GraphBadRequest("ErrorInvalidParameter", "Required parameter 'Message' is missing.")
        save = lower.get("savetosentitems", True)
        if isinstance(save, str) and save.lower() in ("true", "false"):
            save = save.lower() == "true"  # Microsoft's own example sends "false" as a string
        if not isinstance(save, bool):
            raise GraphBadRequest("RequestBodyRead", f"Cannot convert the literal '{save}' to the "
                                  f"expected type 'Edm.Boolean'.")
        msg = lower["message"]
        atts = validate_message(msg, for_send=True)
        self._check_send_as(mb, msg)
        body_len = len((msg.get("body") or {}).get("content") or "")
        self._check_size(mb, body_len, [len(a.data) for a in atts])
        self._check_rate(mb)
        self._check_quota(mb, msg)
        stored = {k: v for k, v in msg.items() if k != "attachments"}
        sent_atts = [self._keep_inline(mb, a) for a in atts]
        self._accept(req, mb, stored, sent_atts, save, "sendMail")
        return self._ok(req, 202)

    def send_mime(self, req: Request, mb: Mailbox) -> Response:
        raw = mime.decode(req.read_body(MAX_REQUEST))
        msg, atts = mime.to_graph(raw)
        check_sendable(msg)
        self._check_send_as(mb, msg)
        if len(raw) > mb.max_message_size:  # a MIME message's size is simply its length
            raise GraphError(400, "ErrorMessageSizeExceeded",
                             "The message exceeds the maximum supported size., Cannot save changes "
                             "made to an item to store.")
        self._check_rate(mb)
        self._check_quota(mb, msg)
        sent = self._accept(req, mb, msg, [self._keep_inline(mb, a) for a in atts], True, "mime")
        sent.mime = raw
        return self._ok(req, 202)

    def _check_send_as(self, mb: Mailbox, msg: dict[str, Any]) -> None:
        allowed = {mb.address.lower(), *(a.lower() for a in mb.send_as)}
        for prop in ("from", "sender"):
            value = msg.get(prop)
            if value:
                addr = (value["emailAddress"].get("address") or "").lower()
                if addr not in allowed:
                    raise GraphError(403, "ErrorSendAsDenied",
                                     "The user account which was used to submit this request does "
                                     "not have the right to send mail on behalf of the specified "
                                     "sending account., Cannot submit message.")

    @staticmethod
    def _check_size(mb: Mailbox, body_len: int, sizes: list[int]) -> None:
        if mime_size(body_len, sizes) > mb.max_message_size:
            raise GraphError(400, "ErrorMessageSizeExceeded",
                             "The message exceeds the maximum supported size., Cannot save changes "
                             "made to an item to store.")

    def _check_quota(self, mb: Mailbox, msg: dict[str, Any]) -> None:
        """Exchange's daily recipient limit: exceeding it blocks the mailbox for 24 hours."""
        now = time.time()
        count = sum(len(msg.get(k) or []) for k in ("toRecipients", "ccRecipients", "bccRecipients"))
        with self.state.lock:
            mb.recipients_sent[:] = [(t, n) for t, n in mb.recipients_sent if t > now - 86400]
            blocked = now < mb.blocked_until
            if not blocked and sum(n for _, n in mb.recipients_sent) + count > mb.daily_recipient_limit:
                mb.blocked_until = now + 86400
                blocked = True
            if not blocked:
                mb.recipients_sent.append((now, count))
        if blocked:
            raise GraphError(500, "ErrorSubmissionQuotaExceeded",
                             "The message can't be submitted because the sender's submission quota "
                             "was exceeded. Please try again later.")

    def _check_rate(self, mb: Mailbox) -> None:
        wait = self.state.rate_wait(mb)
        if wait > 0:
            raise GraphError(429, "ApplicationThrottled",
                             "Application is over its MessageRate limit.",
                             {"Retry-After": str(max(1, math.ceil(wait)))})

    def _keep_inline(self, mb: Mailbox, att: InlineAttachment) -> SentAttachment:
        sa = SentAttachment(att.name, att.content_type, att.is_inline, att.content_id,
                            len(att.data), _new_id())
        if len(att.data) > IN_MEMORY_LIMIT:
            path = self._blob_path(sa.attachment_id)
            path.write_bytes(att.data)
            sa.path = path
        else:
            sa._data = att.data
        return sa

    def _blob_path(self, name: str) -> Path:
        d = self.state.state_dir / "blobs"
        d.mkdir(parents=True, exist_ok=True)
        return d / (uuid.uuid5(uuid.NAMESPACE_URL, name).hex + ".bin")

    def _accept(self, req: Request, mb: Mailbox, msg: dict[str, Any],
                atts: list[SentAttachment], save: bool, route: str,
                message_id: str | None = None) -> SentMessage:
        now = utcnow()
        imid = msg.get("internetMessageId") or (
            f"<{secrets.token_hex(12).upper()}@{secrets.token_hex(6).upper()}"
            f".eurprd04.prod.outlook.com>")
        full = dict(msg)
        full.update({"internetMessageId": imid, "sentDateTime": graph_time(now),
                     "hasAttachments": bool(atts), "isDraft": False})
        full.setdefault("from", {"emailAddress": {"name": mb.display_name, "address": mb.address}})
        full.setdefault("sender", full["from"])
        sent = SentMessage(message_id or _new_id(), mb.address, imid, now, full, atts, save, route,
                           req.host, req.header("client-request-id"))
        with self.state.lock:
            self.state.note_send(mb)
            self.state.sent.append(sent)
        if self.state.write_mailbox_files:
            _write_files(self.state.state_dir, sent)
        return sent

    # --- drafts ----------------------------------------------------------------------------
    def create_draft(self, req: Request, token: TokenInfo, mb: Mailbox) -> Response:
        self._need(token, WRITE_ROLES)
        msg = self._json_body(req)
        atts = validate_message(msg, for_send=False)
        self._check_send_as(mb, msg)
        draft = Draft(_new_id(), mb.address, {k: v for k, v in msg.items() if k != "attachments"},
                      utcnow(), [self._keep_inline(mb, a) for a in atts])
        if "internetMessageId" not in draft.message:
            draft.message["internetMessageId"] = (f"<{secrets.token_hex(12).upper()}@"
                                                  f"{secrets.token_hex(6).upper()}.eurprd04.prod.outlook.com>")
        with self.state.lock:
            self.state.drafts[draft.id] = draft
        return self._ok(req, 201, self._draft_json(req, mb, draft))

    def _draft_json(self, req: Request, mb: Mailbox, d: Draft) -> dict[str, Any]:
        out = _message_json(d.id, d.message, d.created, None, bool(d.attachments), True)
        out["@odata.context"] = (f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')"
                                 f"/messages/$entity")
        return out

    def _draft(self, mb: Mailbox, draft_id: str) -> Draft:
        with self.state.lock:
            d = self.state.drafts.get(draft_id)
        if d is None or d.mailbox != mb.address:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return d

    def add_attachment(self, req: Request, token: TokenInfo, mb: Mailbox, draft_id: str) -> Response:
        self._need(token, WRITE_ROLES)
        d = self._draft(mb, draft_id)
        att = decode_attachment(self._json_body(req))
        sa = self._keep_inline(mb, att)
        with self.state.lock:
            d.attachments.append(sa)
        return self._ok(req, 201, {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')"
                              f"/messages('{d.id}')/attachments/$entity",
            "@odata.type": "#microsoft.graph.fileAttachment", "id": sa.attachment_id,
            "lastModifiedDateTime": graph_time(utcnow()), "name": sa.name,
            "contentType": sa.content_type, "size": sa.size, "isInline": sa.is_inline,
            "contentId": sa.content_id, "contentLocation": None})

    def create_upload_session(self, req: Request, token: TokenInfo, mb: Mailbox,
                              draft_id: str) -> Response:
        self._need(token, WRITE_ROLES)
        d = self._draft(mb, draft_id)
        payload = self._json_body(req)
        item = None
        if isinstance(payload, dict):
            item = next((v for k, v in payload.items() if k.lower() == "attachmentitem"), None)
        if not isinstance(item, dict):
            raise GraphBadRequest("ErrorInvalidParameter", "Required parameter 'AttachmentItem' is missing.")
        if str(item.get("attachmentType", "")).lower() != "file":
            raise GraphBadRequest("RequestBodyRead", f"Cannot convert the literal "
                                  f"'{item.get('attachmentType')}' to the expected type "
                                  f"'microsoft.graph.attachmentType'.")
        name, size = item.get("name"), item.get("size")
        if not isinstance(name, str) or not name:
            raise GraphBadRequest("ErrorInvalidParameter", "The attachment 'name' is required.")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise GraphBadRequest("ErrorInvalidParameter", "The attachment 'size' must be a positive number.")
        if size < MIN_UPLOAD:
            raise GraphBadRequest("ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                                  "Attachment size must be greater than the minimum size.")
        if size > MAX_UPLOAD:
            raise GraphBadRequest("ErrorAttachmentSizeLimitExceeded",
                                  "The attachment is larger than 150 MB.")
        sid = secrets.token_hex(16)
        expires = utcnow() + UPLOAD_LIFETIME
        path = self._blob_path("upload-" + sid)
        path.write_bytes(b"")
        session = UploadSession(sid, secrets.token_urlsafe(48), mb.address, d.id, name, size,
                                str(item.get("contentType") or "application/octet-stream"),
                                bool(item.get("isInline", False)), item.get("contentId"), path,
                                time.time() + UPLOAD_LIFETIME.total_seconds())
        session.client_id = token.client_id
        with self.state.lock:
            self.state.uploads[sid] = session
            self._upload_locks[sid] = threading.Lock()
        url = (f"{req.base_url}/api/v2.0/Users('{mb.object_id}@{mb.tenant_id}')"
               f"/Messages('{d.id}')/AttachmentSessions('{sid}')?authtoken={session.token}")
        return self._ok(req, 201, {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#microsoft.graph.uploadSession",
            "uploadUrl": url, "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "nextExpectedRanges": ["0-"]})

    def upload(self, req: Request, user: str, draft_id: str, sid: str) -> Response:
        with self.state.lock:
            session = self.state.uploads.get(sid)
        if session is None or session.draft_id != draft_id or time.time() > session.expires_at:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if req.header("Authorization"):
            raise GraphError(401, "InvalidAudienceForResource",
                             f"The audience claim value is invalid for current resource. Audience "
                             f"claim is 'https://graph.microsoft.com', request url is "
                             f"'{req.base_url}{req.path}' and resource type is 'Attachment'.")
        if not secrets.compare_digest(req.query.get("authtoken", ""), session.token):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        with self.state.lock:
            mb = self.state.mailboxes.get(session.mailbox)
        assert mb is not None
        if req.method == "DELETE":
            with self.state.lock:
                self.state.uploads.pop(sid, None)
            session.path.unlink(missing_ok=True)
            return self._ok(req, 204)
        if req.method != "PUT":
            raise GraphError(405, "ErrorInvalidRequest", "The HTTP method is not allowed.")
        return self._with_slot(req, session.client_id, mb,
                               lambda: self._put_chunk(req, mb, session))

    def _put_chunk(self, req: Request, mb: Mailbox, session: UploadSession) -> Response:
        if req.chunked or req.header("Content-Length") is None:
            raise GraphError(411, "LengthRequired", "A Content-Length header is required.")
        length = req.content_length or 0
        if length > MAX_CHUNK:
            raise GraphError(413, "RequestEntityTooLarge",
                             "The maximum request length supported is 4MB.")
        m = _RANGE.match(req.header("Content-Range") or "")
        if not m:
            raise GraphError(400, "InvalidContentRange",
                             "The Content-Range header is missing or malformed; expected "
                             "'bytes {start}-{end}/{total}'.")
        start, end, total = (int(g) for g in m.groups())
        if total != session.size:
            raise GraphError(400, "InvalidContentRange", f"The total size {total} in Content-Range "
                             f"does not match the attachment size {session.size}.")
        if end < start or end - start + 1 != length or end >= total:
            raise GraphError(400, "InvalidContentRange", "The Content-Range does not match the "
                             "Content-Length of the request.")
        lock = self._upload_locks[session.id]
        with lock:
            if session.done:
                raise GraphError(400, "ErrorInvalidOperation", "The upload session is already complete.")
            if start != session.next_offset:
                raise GraphError(416, "InvalidRange",
                                 f"The range {start}-{end} is not the next expected range; the "
                                 f"next expected range starts at {session.next_offset}.")
            with open(session.path, "r+b") as f:
                f.seek(start)
                written = req.stream_to(f)
            if written != length:
                raise GraphError(400, "InvalidContentRange", "The request body was incomplete.")
            session.next_offset = end + 1
            expires = datetime.fromtimestamp(session.expires_at, UTC)
            if session.next_offset < session.size:
                return self._ok(req, 200, {
                    "@odata.context": f"{req.base_url}/api/v2.0/$metadata#Users('{mb.object_id}')"
                                      f"/Messages('{session.draft_id}')/AttachmentSessions/$entity",
                    # this casing mix is what Microsoft's walkthrough shows for the PUT answer
                    "ExpirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                    "nextExpectedRanges": [str(session.next_offset)]})
            session.done = True
            att = SentAttachment(session.name, session.content_type, session.is_inline,
                                 session.content_id, session.size, _new_id(), path=session.path)
            with self.state.lock:
                draft = self.state.drafts.get(session.draft_id)
                if draft is not None:
                    draft.attachments.append(att)
                self.state.uploads.pop(session.id, None)
        location = (f"{req.base_url}/api/v2.0/Users('{mb.object_id}@{mb.tenant_id}')"
                    f"/Messages('{session.draft_id}')/Attachments('{att.attachment_id}')")
        return self._ok(req, 201, None, {"Location": location})

    def send_draft(self, req: Request, token: TokenInfo, mb: Mailbox, draft_id: str) -> Response:
        self._need(token, SEND_ROLES)
        if req.header("Content-Length") is None and not req.chunked:
            raise GraphError(411, "LengthRequired", "A Content-Length header is required.")
        req.read_body(MAX_REQUEST)
        d = self._draft(mb, draft_id)
        check_sendable(d.message)
        self._check_send_as(mb, d.message)
        body_len = len((d.message.get("body") or {}).get("content") or "")
        self._check_size(mb, body_len, [a.size for a in d.attachments])
        self._check_rate(mb)
        self._check_quota(mb, d.message)
        with self.state.lock:
            if self.state.drafts.pop(draft_id, None) is None:
                raise GraphError(404, "ErrorItemNotFound",
                                 "The specified object was not found in the store.")
        self._accept(req, mb, d.message, d.attachments, True, "draft", message_id=d.id)
        return self._ok(req, 202)

    def delete_message(self, req: Request, token: TokenInfo, mb: Mailbox, msg_id: str) -> Response:
        self._need(token, WRITE_ROLES)
        with self.state.lock:
            d = self.state.drafts.get(msg_id)
            if d is not None and d.mailbox == mb.address:
                del self.state.drafts[msg_id]
                for a in d.attachments:
                    if a.path is not None:
                        a.path.unlink(missing_ok=True)
                return self._ok(req, 204)
            for s in self.state.sent:
                if s.id == msg_id and s.mailbox == mb.address and s.saved_to_sent_items:
                    s.saved_to_sent_items = False  # gone from Sent Items, but it was sent
                    return self._ok(req, 204)
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    # --- reading ---------------------------------------------------------------------------
    def get_message(self, req: Request, token: TokenInfo, mb: Mailbox, msg_id: str) -> Response:
        self._need(token, READ_ROLES)
        with self.state.lock:
            d = self.state.drafts.get(msg_id)
            sent = next((s for s in self.state.sent if s.id == msg_id and s.mailbox == mb.address
                         and self._visible(s)), None)
        if d is not None and d.mailbox == mb.address:
            item = self._draft_json(req, mb, d)
        elif sent is not None:
            item = _message_json(sent.id, sent.message, sent.sent_at, sent.sent_at,
                                 bool(sent.attachments), False)
        else:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return self._ok(req, 200, apply_select(item, req.query.get("$select")))

    def _visible(self, s: SentMessage) -> bool:
        return s.saved_to_sent_items and (
            (utcnow() - s.sent_at).total_seconds() >= self.state.sent_items_delay)

    def get_folder(self, req: Request, token: TokenInfo, mb: Mailbox, folder: str) -> Response:
        self._need(token, READ_ROLES)
        items = self._folder_items(mb, folder)
        return self._ok(req, 200, {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')"
                              f"/mailFolders/$entity",
            "id": _folder_id(mb, folder), "displayName": _FOLDERS[folder],
            "parentFolderId": _folder_id(mb, "root"), "childFolderCount": 0,
            "unreadItemCount": 0, "totalItemCount": len(items), "sizeInBytes": 0,
            "isHidden": False})

    def _folder_items(self, mb: Mailbox, folder: str | None) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
        out: list[tuple[dict[str, Any], list[dict[str, str]]]] = []
        with self.state.lock:
            if folder in (None, "sentitems"):
                for s in self.state.sent:
                    if s.mailbox == mb.address and self._visible(s):
                        out.append((_message_json(s.id, s.message, s.sent_at, s.sent_at,
                                                  bool(s.attachments), False,
                                                  parent=_folder_id(mb, "sentitems")),
                                    list(s.message.get("singleValueExtendedProperties") or [])))
            if folder in (None, "drafts"):
                for d in self.state.drafts.values():
                    if d.mailbox == mb.address:
                        out.append((_message_json(d.id, d.message, d.created, None,
                                                  bool(d.attachments), True,
                                                  parent=_folder_id(mb, "drafts")),
                                    list(d.message.get("singleValueExtendedProperties") or [])))
        return out

    def list_messages(self, req: Request, token: TokenInfo, mb: Mailbox, folder: str | None) -> Response:
        self._need(token, READ_ROLES)
        try:
            pred = parse_filter(req.query.get("$filter"))
            expand = parse_expand(req.query.get("$expand"))
        except ODataError as e:
            raise GraphError(400, "BadRequest", str(e)) from None
        try:
            top = int(req.query.get("$top", "10"))
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid $top value.") from None
        select = req.query.get("$select")
        value = []
        for item, props in self._folder_items(mb, folder):
            if not pred(item, props):
                continue
            out = apply_select(item, select)
            if expand is not None:
                out["singleValueExtendedProperties"] = [
                    p for p in props if not expand or p["id"].lower() == expand.lower()]
            value.append(out)
        value.sort(key=lambda i: i.get("sentDateTime") or "", reverse=True)
        where = f"mailFolders('{folder}')/messages" if folder else "messages"
        return self._ok(req, 200, {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')/{where}"
                              f"({select or ''})",
            "value": value[:max(0, top)]})


def _folder_name(parts: list[str]) -> str | None:
    """'mailFolders/sentitems/...' or "mailFolders('SentItems')/..." -> 'sentitems'."""
    first = parts[0]
    m = re.match(r"^mailFolders\('([^']+)'\)$", first, re.IGNORECASE)
    name = m.group(1) if m else (parts[1] if len(parts) > 1 else None)
    if name is None:
        return None
    name = name.lower()
    if name not in _FOLDERS:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return name


def _folder_id(mb: Mailbox, folder: str) -> str:
    return "AAMkAG" + base64.urlsafe_b64encode(
        uuid.uuid5(uuid.NAMESPACE_URL, mb.object_id + folder).bytes * 3).decode("ascii") + "AAA="


def _message_json(mid: str, msg: dict[str, Any], created: datetime, sent: datetime | None,
                  has_attachments: bool, draft: bool, parent: str | None = None) -> dict[str, Any]:
    body = msg.get("body") or {"contentType": "text", "content": ""}
    stamp = graph_time(created)
    return {
        "@odata.etag": f'W/"{uuid.uuid5(uuid.NAMESPACE_URL, mid).hex}"',
        "id": mid,
        "createdDateTime": stamp, "lastModifiedDateTime": stamp,
        "changeKey": uuid.uuid5(uuid.NAMESPACE_URL, mid).hex,
        "categories": msg.get("categories") or [],
        "receivedDateTime": stamp,
        "sentDateTime": graph_time(sent) if sent else None,
        "hasAttachments": has_attachments,
        "internetMessageId": msg.get("internetMessageId"),
        "subject": msg.get("subject"),
        "bodyPreview": (body.get("content") or "")[:255],
        "importance": (msg.get("importance") or "normal").lower(),
        "parentFolderId": parent,
        "conversationId": "AAQkAG" + uuid.uuid5(uuid.NAMESPACE_URL, mid + "c").hex,
        "isDeliveryReceiptRequested": bool(msg.get("isDeliveryReceiptRequested", False)),
        "isReadReceiptRequested": bool(msg.get("isReadReceiptRequested", False)),
        "isRead": True, "isDraft": draft,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(mid)}&exvsurl=1&viewmodel=ReadMessageItem",
        "body": {"contentType": str(body.get("contentType", "text")).lower(),
                 "content": body.get("content") or ""},
        "sender": msg.get("sender"), "from": msg.get("from"),
        "toRecipients": msg.get("toRecipients") or [], "ccRecipients": msg.get("ccRecipients") or [],
        "bccRecipients": msg.get("bccRecipients") or [], "replyTo": msg.get("replyTo") or [],
        "flag": {"flagStatus": "notFlagged"},
    }


def _write_files(state_dir: Path, sent: SentMessage) -> None:
    """Standalone mode: one folder per message with message.json and the attachment files."""
    safe = re.sub(r"[^A-Za-z0-9@._-]", "_", sent.mailbox)
    folder = state_dir / "mailboxes" / safe / (sent.sent_at.strftime("%Y%m%dT%H%M%S") + "-" +
                                               uuid.uuid5(uuid.NAMESPACE_URL, sent.id).hex[:12])
    (folder / "attachments").mkdir(parents=True, exist_ok=True)
    names = []
    for i, a in enumerate(sent.attachments):
        fname = f"{i:02d}-" + re.sub(r"[^A-Za-z0-9._-]", "_", a.name)
        if a.path is not None:
            shutil.copyfile(a.path, folder / "attachments" / fname)  # big: never all in memory
        else:
            (folder / "attachments" / fname).write_bytes(a.data)
        names.append({"name": a.name, "contentType": a.content_type, "isInline": a.is_inline,
                      "contentId": a.content_id, "size": a.size, "file": f"attachments/{fname}"})
    doc = {"id": sent.id, "mailbox": sent.mailbox, "internetMessageId": sent.internet_message_id,
           "sentDateTime": graph_time(sent.sent_at), "route": sent.route,
           "savedToSentItems": sent.saved_to_sent_items, "message": sent.message,
           "attachments": names}
    (folder / "message.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), "utf-8")


__all__ = ["GRAPH_HOSTS", "Graph"]
