"""Graph plumbing shared by all routes: headers, the error body, the bearer token check,
permissions, the per-mailbox concurrency slot, JSON bodies and attachment storage."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .hosts import CLOUDS, cloud_of_graph_host
from .messages import InlineAttachment
from .server import Request, Response
from .state import MAILBOX_CONCURRENCY, Mailbox, SandboxState, SentAttachment, TokenInfo, graph_time

#: Graph's request size limit: the whole body as sent (an inline attachment counts as its base64,
#: 4/3 of its size, plus the JSON around it). Graph's own error text says "4MB"; its front end
#: counts 4 MiB (https://learn.microsoft.com/graph/outlook-large-attachments).
MAX_REQUEST = 4 * 1024 * 1024
#: Upload session chunk limit.
MAX_CHUNK = 4 * 1024 * 1024
#: Largest attachment an upload session takes.
MAX_UPLOAD = 150 * 1024 * 1024
#: Smallest attachment an upload session takes (ErrorAttachmentSizeShouldNotBeLessThanMinimumSize).
#: https://learn.microsoft.com/graph/outlook-large-attachments says "under 3 MB: POST, 3 MB to
#: 150 MB: upload session" as guidance; it cannot be the exact boundary, because a file just under
#: 3 MiB no longer fits into a 4 MB POST once base64-encoded. Graph's measured minimum is 2 MiB
#: (microsoftgraph/msgraph-sdk-java#52), which is what the sandbox enforces.
MIN_UPLOAD = 2 * 1024 * 1024
#: Attachments above this are kept on disk, not in memory.
IN_MEMORY_LIMIT = 1024 * 1024
UPLOAD_LIFETIME = timedelta(hours=1)

READ_ROLES = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})
WRITE_ROLES = frozenset({"Mail.ReadWrite"})
SEND_ROLES = frozenset({"Mail.Send"})
USER_ROLES = frozenset(
    {"User.Read.All", "User.ReadBasic.All", "Directory.Read.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
)

APPLICATION_PATH = re.compile(r"^/v1\.0/applications\(appId='(?P<app_id>[^']+)'\)$")
APPLICATION_READ_ROLES = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
USER_PATH = re.compile(r"^/v1\.0/users/(?P<user>[^/]+)(?P<rest>/.*)?$")
UPLOAD_PATH = re.compile(
    r"^/api/v2\.0/Users\('(?P<user>[^']+)'\)/Messages\('(?P<msg>[^']+)'\)"
    r"/AttachmentSessions\('(?P<sid>[^']+)'\)$"
)
CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$")
FOLDERS = {"sentitems": "Sent Items", "inbox": "Inbox", "drafts": "Drafts"}


def new_id() -> str:
    # Exchange ids are long base64 strings; '=' and '-'/'_' make clients quote them properly.
    return "AAMkAG" + base64.urlsafe_b64encode(secrets.token_bytes(96)).decode("ascii")


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class GraphCore:
    """What every Graph route needs; the route groups build on it (send -> drafts -> reading)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._upload_locks: dict[str, threading.Lock] = {}

    # --- plumbing --------------------------------------------------------------------------
    def _headers(self, req: Request) -> dict[str, str]:
        return {
            "request-id": req.request_id,
            "client-request-id": req.header("client-request-id") or req.request_id,
            "x-ms-ags-diagnostic": json.dumps(
                {
                    "ServerInfo": {
                        "DataCenter": "Germany West Central",
                        "Slice": "E",
                        "Ring": "5",
                        "ScaleUnit": "000",
                        "RoleInstance": "SANDBOX",
                    }
                }
            ),
            "Strict-Transport-Security": "max-age=31536000",
            "Cache-Control": "no-cache",
        }

    def _ok(self, req: Request, status: int, payload: Any = None, extra: dict[str, str] | None = None) -> Response:
        headers = self._headers(req)
        headers.update(extra or {})
        if payload is None:
            return Response(status, b"", headers)
        return Response.json(
            status,
            payload,
            headers,
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        )

    def error(
        self, req: Request, status: int, code: str, message: str, extra: dict[str, str] | None = None
    ) -> Response:
        headers = self._headers(req)
        headers.update(extra or {})
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": req.request_id,
                    "client-request-id": headers["client-request-id"],
                },
            }
        }
        return Response.json(status, body, headers)

    def _with_slot(
        self, req: Request, token_client: TokenInfo | str, mb: Mailbox, work: Callable[[], Response]
    ) -> Response:
        client_id = token_client if isinstance(token_client, str) else token_client.client_id
        n = self.state.enter(client_id, mb.address)
        try:
            if n > MAILBOX_CONCURRENCY:
                raise GraphError(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    {"Retry-After": "1"},
                )
            wait = self.state.upload_wait(client_id, mb.address)
            if wait > 0 and req.method in ("POST", "PUT", "PATCH"):
                raise GraphError(
                    429,
                    "ApplicationThrottled",
                    "Application is over its IncomingBytes limit.",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
            if req.fault is not None and req.fault.kind == "latency":
                time.sleep(req.fault.delay)
            return work()
        finally:
            if req.method in ("POST", "PUT", "PATCH"):
                self.state.note_upload(client_id, mb.address, req.content_length or 0)
            self.state.leave(client_id, mb.address)

    def _token(self, req: Request) -> TokenInfo:
        auth = req.header("Authorization") or ""
        www = {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline'
            '.com/common/oauth2/authorize", client_id="00000003-0000-0000-'
            'c000-000000000000"'
        }
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", www)
        raw = auth[7:].strip()
        with self.state.lock:
            info = self.state.tokens.get(raw)
        if info is None:
            if raw.count(".") != 2:
                raise GraphError(
                    401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.).", www
                )
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid signature.", www
            )
        if info.expires_at <= time.time():
            raise GraphError(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.", www
            )
        cloud = cloud_of_graph_host(req.host)
        allowed = (
            {f"https://{req.host}"} if cloud is not None else {r for c in CLOUDS.values() for r in c.graph_resources}
        )
        if info.resource not in allowed:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.", www
            )
        return info

    @staticmethod
    def _need(token: TokenInfo, roles: frozenset[str]) -> None:
        if not (token.roles & roles):
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")

    @staticmethod
    def _policy(token: TokenInfo, mb: Mailbox) -> None:
        """RBAC for Applications / application access policy scoping the app's mailboxes."""
        if mb.allowed_apps is not None and token.client_id not in mb.allowed_apps:
            raise GraphError(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            )

    def _with_rbac(self, token: TokenInfo, mb: Mailbox) -> TokenInfo:
        """The token's Entra roles plus the app's Exchange RBAC roles when ``mb`` is in their scope
        (RBAC for Applications adds to the Entra grant; it never shows in the token itself)."""
        app = self.state.app(token.tenant_id, token.client_id)
        if app is None or not app.rbac_roles:
            return token
        if app.rbac_scope is not None and mb.address not in app.rbac_scope:
            return token
        return dataclasses.replace(token, roles=frozenset(token.roles | app.rbac_roles))

    def get_application(self, req: Request, token: TokenInfo, app_id: str) -> Response:
        if not (token.roles & APPLICATION_READ_ROLES):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        app = self.state.app(token.tenant_id, app_id)
        if app is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{app_id}' does not exist or one of its queried reference-property objects are not present.",
            )
        item = {
            "id": app.object_id,
            "appId": app.client_id,
            "displayName": app.display_name,
            "passwordCredentials": [dict(c) for c in app.password_credentials],
            "keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify"}] if app.certificate_pem else [],
        }
        from .odata import apply_select

        out = apply_select(item, req.query.get("$select"))
        out["@odata.context"] = f"{req.base_url}/v1.0/$metadata#applications/$entity"
        return self._ok(req, 200, out)

    def _json_body(self, req: Request, *, allow_empty: bool = False) -> Any:
        raw = req.read_body(MAX_REQUEST)
        if not raw.strip():
            if allow_empty:
                return None
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        ctype = (req.header("Content-Type") or "").lower()
        if "json" not in ctype:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure "
                "Content-Type header is set and payload is of valid "
                "JSON format.",
            )
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure "
                "Content-Type header is set and payload is of valid "
                "JSON format.",
            ) from None

    def _keep_inline(self, mb: Mailbox, att: InlineAttachment) -> SentAttachment:
        sa = SentAttachment(att.name, att.content_type, att.is_inline, att.content_id, len(att.data), new_id())
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


def message_json(
    mid: str,
    msg: dict[str, Any],
    created: datetime,
    sent: datetime | None,
    has_attachments: bool,
    draft: bool,
    parent: str | None = None,
) -> dict[str, Any]:
    body = msg.get("body") or {"contentType": "text", "content": ""}
    stamp = graph_time(created)
    return {
        "@odata.etag": f'W/"{uuid.uuid5(uuid.NAMESPACE_URL, mid).hex}"',
        "id": mid,
        "createdDateTime": stamp,
        "lastModifiedDateTime": stamp,
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
        "isRead": True,
        "isDraft": draft,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(mid)}&exvsurl=1&viewmodel=ReadMessageItem",
        "body": {"contentType": str(body.get("contentType", "text")).lower(), "content": body.get("content") or ""},
        "sender": msg.get("sender"),
        "from": msg.get("from"),
        "toRecipients": msg.get("toRecipients") or [],
        "ccRecipients": msg.get("ccRecipients") or [],
        "bccRecipients": msg.get("bccRecipients") or [],
        "replyTo": msg.get("replyTo") or [],
        "flag": {"flagStatus": "notFlagged"},
    }
