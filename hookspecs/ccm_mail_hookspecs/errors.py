"""Public errors. Every error a person may see carries a German and an English text, a hint how to
fix it, and the provider's correlation ids (request-id, trace id) that support needs.

Transports raise these; the host catches them, journals them and shows them. Never put a secret,
a certificate key or an access token into an error: the host logs ``str(error)`` and the details.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .text import T


class CcmMailError(Exception):
    """Base of all ccm-mail errors.

    :param message: what went wrong (de/en).
    :param hint: what the admin should do about it (de/en), or None.
    :param details: machine-readable context, e.g. ``{"request_id": ..., "code": "AADSTS7000215"}``.
    """

    #: a short stable code for hosts and the JSON output, e.g. ``"auth"``
    kind: str = "error"
    #: did the message leave? ``False``: certainly not, it is safe to fix the cause and send it
    #: again; ``None``: it may have (:class:`UnknownOutcomeError`), so never resend it blindly.
    #: The host decides ``failed`` or ``unknown`` from this alone. (since 1.2)
    sent: bool | None = False

    def __init__(
        self, message: T | str, *, hint: T | str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        self.message = message if isinstance(message, T) else T(message, message)
        self.hint = hint if (hint is None or isinstance(hint, T)) else T(hint, hint)
        self.details = dict(details or {})
        super().__init__(self.render("de"))

    def render(self, lang: str = "de") -> str:
        """The full text for a person: message, hint and the support ids."""
        parts = [self.message.get(lang)]
        if self.hint is not None:
            parts.append(T("Hinweis: ", "Hint: ").get(lang) + self.hint.get(lang))
        ids = {k: v for k, v in self.details.items() if k in SUPPORT_ID_KEYS and v}
        if ids:
            parts.append("[" + ", ".join(f"{k}={v}" for k, v in ids.items()) + "]")
        return " ".join(parts)

    def to_dict(self, lang: str = "de") -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sent": self.sent,
            "message": self.message.get(lang),
            "hint": self.hint.get(lang) if self.hint else None,
            "details": self.details,
        }


#: details keys shown to people because support asks for them
SUPPORT_ID_KEYS = (
    "code",
    "status",
    "request_id",
    "client_request_id",
    "trace_id",
    "correlation_id",
    "timestamp",
    "smtp_reply",
)


class ConfigError(CcmMailError):
    """Configuration is wrong (file, line and key are in the message)."""

    kind = "config"


class TemplateError(CcmMailError, ValueError):
    """A template or a placeholder value is wrong (unknown placeholder, missing value, CR/LF)."""

    kind = "template"


class AddressError(CcmMailError, ValueError):
    """An e-mail address is not valid."""

    kind = "address"


class AttachmentError(CcmMailError, OSError):
    """An attachment cannot be read or is too large."""

    kind = "attachment"


class PluginError(CcmMailError):
    """A plugin could not be loaded or broke the hook contract; the message names the plugin."""

    kind = "plugin"


class TransportError(CcmMailError):
    """Sending failed and the message was **not** sent. Safe to retry when ``retryable``."""

    kind = "transport"
    retryable: bool = False


class AuthenticationError(TransportError):
    """The provider refused the credentials (wrong/expired secret, wrong tenant or client ID)."""

    kind = "auth"


class AccessDeniedError(TransportError):
    """Credentials are fine but the app may not do this (consent or permission missing)."""

    kind = "access_denied"


class MailboxError(TransportError):
    """The sending mailbox is unknown, unlicensed or may not send as this address."""

    kind = "mailbox"


class RecipientError(TransportError):
    """The provider refused a recipient."""

    kind = "recipient"


class MessageTooLargeError(TransportError):
    """The message exceeds the provider's size limit."""

    kind = "too_large"


class ThrottledError(TransportError):
    """The provider kept throttling until the wait cap; nothing was sent. Retry later."""

    kind = "throttled"
    retryable = True


class NetworkError(TransportError):
    """The provider could not be reached **before** the message was handed over (DNS, refused,
    TLS handshake). Nothing was sent."""

    kind = "network"
    retryable = True


class UnknownOutcomeError(CcmMailError):
    """The request was sent but no answer came (timeout, dropped connection): the message may or
    may not have been sent. The host records status ``unknown`` and must never resend blindly."""

    kind = "unknown_outcome"
    sent = None


class Cancelled(CcmMailError):
    """Sending was cancelled (declined confirmation or a prepare hook); nothing was sent."""

    kind = "cancelled"


class Unconfirmed(Cancelled):
    """Nobody answered the confirmation (no terminal, no ``--yes``, no host dialog); nothing was
    sent. Unlike a "no" this is a usage problem: run it where a person can answer, or confirm in
    advance. (since 1.2)"""

    kind = "unconfirmed"
