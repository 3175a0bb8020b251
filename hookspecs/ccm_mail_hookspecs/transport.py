"""What a transport is, and what it reports back."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from .message import Message
from .text import T


class Status(str, enum.Enum):
    """The closed list of states a message can be in (journal and receipts)."""

    QUEUED = "queued"  #: accepted by the host, not yet handed to a transport
    SENDING = "sending"  #: handed to the transport; outcome not known yet
    SENT = "sent"  #: the provider accepted the message
    FAILED = "failed"  #: the provider refused it, or it never left; not sent
    UNKNOWN = "unknown"  #: request left, no answer came: may or may not have been sent
    CANCELLED = "cancelled"  #: declined at confirmation or by a prepare hook; not sent


@dataclass(frozen=True, slots=True)
class Receipt:
    """The transport's answer for a message the provider accepted.

    :param sent_at: when the provider accepted it, timezone-aware; this is the *Versanddatum*.
    :param transport_ids: the provider's ids, e.g. ``{"request_id": ..., "file": ...}``.
    :param mime: the exact RFC 5322 bytes handed to the provider, when the transport knows them;
        required when ``message.archive`` is set (the host stores them as the archive copy).
        Since 1.4.
    :param notes: what the person should know about this send although it went out, e.g. "the
        server offers no DSN: no delivery report". Since 1.4.
    """

    sent_at: datetime
    transport_ids: Mapping[str, str] = field(default_factory=dict)
    status: Status = Status.SENT
    mime: bytes | None = field(default=None, repr=False, compare=False)
    notes: tuple[T, ...] = ()


class Found(str, enum.Enum):
    """Answer of :meth:`Transport.lookup`."""

    SENT = "sent"  #: the provider has the message (e.g. in Sent Items)
    NOT_FOUND = "not_found"  #: the provider does not have it (yet)
    UNSUPPORTED = "unsupported"  #: this transport (or its permissions) cannot tell


@dataclass(frozen=True, slots=True)
class Lookup:
    found: Found
    sent_at: datetime | None = None
    transport_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Expiry:
    """When an account's credential stops working (a client secret, a certificate, a password).

    :param what: the credential, for people ("geheimer Clientschlüssel", "Zertifikat CN=…").
    :param not_after: the last moment it works, timezone-aware.
    :param source: where the date comes from: ``"config"``, ``"certificate"``, ``"provider"``.
    :param renew: how to get a new one, e.g. Entra's click path; shown with every warning.

    The host warns from 30 days before ``not_after`` (``config check``, ``accounts test``, the
    service's account list, every send) and refuses to send once it has passed. Since 1.4.
    """

    what: T
    not_after: datetime
    source: str = "config"
    renew: T | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Result of a connection test ("Verbindung testen"): each step with ok and a text."""

    ok: bool
    steps: tuple[tuple[str, bool, T], ...] = ()


class Transport(ABC):
    """Sends messages for one account. Built by the account type's ``create_transport``.

    Contract:
    - :meth:`send` returns a :class:`Receipt` only when the provider accepted the message.
    - It raises a :class:`~ccm_mail_hookspecs.errors.TransportError` when the message was **not**
      sent, and :class:`~ccm_mail_hookspecs.errors.UnknownOutcomeError` when the request left
      but no answer came. It never retries a request whose outcome is unknown.
    - It must be safe to call :meth:`send` from several threads at once.
    - Nothing secret goes into logs, errors or receipts.
    """

    #: the account type id this transport belongs to
    type_id: ClassVar[str] = ""

    @abstractmethod
    def send(self, message: Message) -> Receipt: ...

    def lookup(self, message: Message) -> Lookup:
        """Did the provider get ``message`` (by ``message.message_id``)? Used after an unknown
        outcome, before any resend. The default cannot tell."""
        return Lookup(Found.UNSUPPORTED)

    def credential_expiry(self) -> Expiry | None:
        """When the account's credential expires, asked of the provider (e.g. Graph's
        ``passwordCredentials``), for the connection test and the service's account list; never
        called per send. None: this transport cannot tell (the default), or may not read it.
        What is known without the network belongs to :attr:`AccountType.expiry`. Since 1.4."""
        return None

    def check(self) -> CheckResult:
        """Connection test without sending. The default only says it cannot test."""
        return CheckResult(
            True, (("check", True, T("Kein Verbindungstest für diesen Typ.", "No connection test for this type.")),)
        )

    def close(self) -> None:  # noqa: B027 - optional: most transports hold nothing to release
        """Release connections; called once when the host is done."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
