"""What the sandbox knows: tenants, app registrations, mailboxes, tokens and the mail it took.

Everything here is guarded by one lock (:attr:`SandboxState.lock`): the HTTP server is threaded
and tests read the state while requests are still running.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .hosts import CLOUDS

GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

#: Exchange Online default maximum message size (send), in bytes.
DEFAULT_MAX_MESSAGE_SIZE = 35 * 1024 * 1024
#: Exchange Online sending limit: 30 messages per minute and mailbox.
DEFAULT_RATE = (30, 60.0)
#: Graph/Outlook: at most 4 concurrent requests per app and mailbox.
MAILBOX_CONCURRENCY = 4
#: Graph/Outlook: at most 150 MB uploaded (POST, PUT, PATCH) per app and mailbox in 5 minutes.
DEFAULT_UPLOAD_LIMIT = (150 * 1024 * 1024, 300.0)


def utcnow() -> datetime:
    return datetime.now(UTC)


def graph_time(dt: datetime) -> str:
    """Graph's DateTimeOffset form for mail properties: ``2026-11-29T12:00:00Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Tenant:
    tenant_id: str
    display_name: str
    cloud: str = "global"
    domains: set[str] = field(default_factory=set)

    @property
    def initial_domain(self) -> str:
        return f"{self.display_name.lower().replace(' ', '')}.onmicrosoft.com"


@dataclass
class App:
    """An app registration plus its service principal in its tenant (single-tenant app)."""

    tenant_id: str
    client_id: str
    display_name: str
    secret: str | None = None
    secret_expired: bool = False
    certificate_pem: str | None = None
    #: application permissions configured on the app (e.g. {"Mail.Send"})
    permissions: set[str] = field(default_factory=set)
    #: has an admin granted the configured permissions?
    consented: bool = False
    redirect_uris: list[str] = field(default_factory=list)
    #: Exchange Online "RBAC for Applications": roles ("Mail.Send", ...) assigned to the app's
    #: service principal in Exchange, valid for the mailboxes of its management scope
    #: (https://learn.microsoft.com/exchange/permissions-exo/application-rbac). They never show in
    #: the token and add to the Entra grants (``permissions``).
    rbac_roles: set[str] = field(default_factory=set)
    #: the management scope (mailbox addresses); None: the whole organisation
    rbac_scope: set[str] | None = None
    #: the registration's ``passwordCredentials`` as Graph lists them (displayName, keyId, hint,
    #: startDateTime, endDateTime; https://learn.microsoft.com/graph/api/resources/passwordcredential)
    password_credentials: list[dict[str, Any]] = field(default_factory=list)
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Mailbox:
    tenant_id: str
    address: str
    object_id: str
    display_name: str
    licensed: bool = True
    #: addresses the app may put into ``from``/``sender`` besides the mailbox's own
    send_as: set[str] = field(default_factory=set)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    rate: tuple[int, float] = DEFAULT_RATE
    #: Exchange Online: 10,000 recipients per day; above it the mailbox may not send for 24 h
    daily_recipient_limit: int = 10_000
    #: None: any app with Mail.Send; else only these client ids (RBAC for Applications /
    #: application access policy)
    allowed_apps: set[str] | None = None
    blocked_until: float = 0.0
    #: (time, recipients) of the last 24 hours, oldest first, and their sum: kept as a running
    #: total so a send costs the same after 10,000 messages as after one
    recipients_sent: deque[tuple[float, int]] = field(default_factory=deque)
    recipients_sent_total: int = 0

    def recipients_in_last_day(self, now: float) -> int:
        """Recipients sent in the 24 hours before ``now`` (call with the state lock held)."""
        while self.recipients_sent and self.recipients_sent[0][0] <= now - 86400:
            self.recipients_sent_total -= self.recipients_sent.popleft()[1]
        return self.recipients_sent_total

    def note_recipients(self, now: float, count: int) -> None:
        self.recipients_sent.append((now, count))
        self.recipients_sent_total += count


@dataclass
class TokenInfo:
    token: str
    tenant_id: str
    client_id: str
    resource: str  # e.g. "https://graph.microsoft.com"
    roles: frozenset[str]
    expires_at: float


@dataclass(frozen=True)
class TokenRequest:
    """One call of the token endpoint (successful or not); no secret is kept."""

    time: float
    host: str
    tenant: str
    client_id: str | None
    grant_type: str | None
    credential: str  # "secret" | "assertion" | "none"
    scope: str | None
    status: int
    error_code: int | None


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request as the sandbox saw it. ``Authorization`` is redacted."""

    time: float
    host: str
    method: str
    path: str
    headers: dict[str, str]
    status: int | None  # None: the connection was dropped without an answer
    via_proxy: bool
    request_id: str


@dataclass
class SentAttachment:
    """A file attachment as Exchange sent it. Big ones live on disk (``path``), small in memory."""

    name: str
    content_type: str
    is_inline: bool
    content_id: str | None
    size: int
    attachment_id: str
    _data: bytes | None = None
    path: Path | None = None

    @property
    def data(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass
class SentMessage:
    """A message Microsoft accepted and sent.

    :param message: the Graph message JSON as stored (attachments without ``contentBytes``).
    """

    id: str
    mailbox: str
    internet_message_id: str
    sent_at: datetime
    message: dict[str, Any]
    attachments: list[SentAttachment]
    saved_to_sent_items: bool
    route: str  # "sendMail" | "mime" | "draft"
    host: str
    client_request_id: str | None
    #: the raw RFC 5322 message when it was sent in MIME format
    mime: bytes | None = None

    @property
    def subject(self) -> str | None:
        return self.message.get("subject")

    @property
    def body(self) -> dict[str, Any]:
        return self.message.get("body") or {}

    def recipients(self, kind: str = "to") -> list[str]:
        key = {"to": "toRecipients", "cc": "ccRecipients", "bcc": "bccRecipients", "replyTo": "replyTo"}[kind]
        return [r["emailAddress"]["address"] for r in self.message.get(key) or []]

    @property
    def headers(self) -> dict[str, str]:
        return {h["name"]: h["value"] for h in self.message.get("internetMessageHeaders") or []}


@dataclass
class Draft:
    id: str
    mailbox: str
    message: dict[str, Any]
    created: datetime
    attachments: list[SentAttachment] = field(default_factory=list)


@dataclass
class UploadSession:
    id: str
    token: str
    mailbox: str
    draft_id: str
    name: str
    size: int
    content_type: str
    is_inline: bool
    content_id: str | None
    path: Path
    expires_at: float
    next_offset: int = 0
    done: bool = False
    client_id: str = ""


class SandboxState:
    """All mutable sandbox data, guarded by :attr:`lock`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[tuple[str, str], App] = {}
        self.mailboxes: dict[str, Mailbox] = {}  # key: lower-case address
        self.tokens: dict[str, TokenInfo] = {}
        self.token_requests: list[TokenRequest] = []
        self.requests: list[RequestRecord] = []
        self.sent: list[SentMessage] = []
        self.drafts: dict[str, Draft] = {}
        self.uploads: dict[str, UploadSession] = {}
        self._send_times: dict[str, deque[float]] = defaultdict(deque)
        self._inflight: dict[tuple[str, str], int] = defaultdict(int)
        self._max_inflight: dict[str, int] = defaultdict(int)
        self._upload_bytes: dict[tuple[str, str], deque[tuple[float, int]]] = defaultdict(deque)
        self._upload_total: dict[tuple[str, str], int] = defaultdict(int)  # sum of each deque
        self.upload_limit: tuple[int, float] = DEFAULT_UPLOAD_LIMIT
        #: lifetime of issued access tokens (``expires_in``); Entra's is about an hour
        self.token_lifetime: int = 3599
        #: "accept" | "deny": the admin's answer is given at once; "ask": show the buttons
        self.consent_behaviour: str = "ask"
        #: seconds until a sent message shows up in Sent Items (Exchange is not instant)
        self.sent_items_delay: float = 0.0
        #: (requests, seconds): more identical token requests than this is AADSTS50196 "client
        #: request loop"; None (default): off, because Entra does not document its threshold
        self.loop_detection: tuple[int, float] | None = None
        #: standalone mode: write received mail as files under ``state_dir/mailboxes``
        self.write_mailbox_files: bool = False

    # --- lookups ---------------------------------------------------------------------------
    def tenant(self, ref: str) -> Tenant | None:
        """A tenant by GUID or by one of its verified domains (case-insensitive)."""
        ref = ref.lower()
        with self.lock:
            if ref in self.tenants:
                return self.tenants[ref]
            for t in self.tenants.values():
                if ref in t.domains or ref == t.initial_domain:
                    return t
        return None

    def app(self, tenant_id: str, client_id: str) -> App | None:
        with self.lock:
            return self.apps.get((tenant_id.lower(), client_id.lower()))

    def apps_with_client_id(self, client_id: str) -> list[App]:
        with self.lock:
            return [a for (t, c), a in self.apps.items() if c == client_id.lower()]

    def mailbox(self, tenant_id: str, ref: str) -> Mailbox | None:
        """A mailbox of ``tenant_id`` by address/UPN or object id."""
        ref = ref.lower()
        with self.lock:
            mb = self.mailboxes.get(ref)
            if mb is None:
                mb = next((m for m in self.mailboxes.values() if m.object_id == ref), None)
            return mb if mb is not None and mb.tenant_id == tenant_id else None

    # --- throttling ------------------------------------------------------------------------
    def enter(self, client_id: str, mailbox: str) -> int:
        """Count one more in-flight request of this app for this mailbox; returns the count."""
        with self.lock:
            self._inflight[(client_id, mailbox)] += 1
            n = self._inflight[(client_id, mailbox)]
            self._max_inflight[mailbox] = max(self._max_inflight[mailbox], n)
            return n

    def leave(self, client_id: str, mailbox: str) -> None:
        with self.lock:
            self._inflight[(client_id, mailbox)] -= 1

    def max_concurrency(self, mailbox: str) -> int:
        with self.lock:
            return self._max_inflight.get(mailbox.lower(), 0)

    def rate_wait(self, mb: Mailbox, now: float | None = None) -> float:
        """Seconds until ``mb`` may send again (0: may send now)."""
        now = time.monotonic() if now is None else now
        limit, window = mb.rate
        with self.lock:
            times = self._send_times[mb.address]
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) < limit:
                return 0.0
            return max(0.001, times[0] + window - now)

    def upload_wait(self, client_id: str, mailbox: str, now: float | None = None) -> float:
        """Seconds until this app may upload to ``mailbox`` again (0: now)."""
        now = time.monotonic() if now is None else now
        limit, window = self.upload_limit
        with self.lock:
            key = (client_id, mailbox)
            q = self._upload_bytes[key]
            while q and q[0][0] <= now - window:
                self._upload_total[key] -= q.popleft()[1]
            if self._upload_total[key] < limit:
                return 0.0
            return max(0.001, q[0][0] + window - now)

    def note_upload(self, client_id: str, mailbox: str, size: int) -> None:
        if size > 0:
            with self.lock:
                self._upload_bytes[(client_id, mailbox)].append((time.monotonic(), size))
                self._upload_total[(client_id, mailbox)] += size

    def note_send(self, mb: Mailbox) -> None:
        with self.lock:
            self._send_times[mb.address].append(time.monotonic())

    def reset_counters(self) -> None:
        with self.lock:
            self.token_requests.clear()
            self.requests.clear()
            self._send_times.clear()
            self._max_inflight.clear()
            self._upload_bytes.clear()
            self._upload_total.clear()


def new_guid() -> str:
    return str(uuid.uuid4())


def check_cloud(cloud: str) -> str:
    if cloud not in CLOUDS:
        raise ValueError(f"unknown cloud {cloud!r}; known: {sorted(CLOUDS)}")
    return cloud
