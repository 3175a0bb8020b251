"""One HTTP attempt, classified: **sent**, **not sent**, or **unknown** — and the public error
that says so, in German and English.

The contract of :meth:`~ccm_mail_hookspecs.Transport.send` hinges on one line: before it, a
failure means the message was not sent (raise a :class:`~ccm_mail_hookspecs.TransportError`, the
host may send again); after it, the provider may have the message (raise
:class:`~ccm_mail_hookspecs.UnknownOutcomeError`, never retry). For HTTP that line is the moment
the first byte of the request could reach the provider: everything up to the end of the TLS
handshake happens before it, everything after the connection is open happens after it. This module
draws the line from what a client library reports, so a transport is mostly its payload::

    verdict, response = attempt(lambda: session.post(url, json=payload, timeout=30, verify=ca))
    if verdict.outcome is Outcome.SENT:
        return Receipt(...)
    raise verdict.error("Acme Mail", host="api.acme-mail.example")

It understands the exceptions of ``requests``, ``urllib3`` and the standard library
(``http.client``, ``ssl``, ``socket``) without importing any of them: it compares class names,
walks the chain of causes, and looks at where in the standard library an error was raised (a
reset inside ``ssl``'s handshake is harmless; the same reset while reading the answer is not).

Failure → outcome (the same table is in ``docs/writing-a-transport.md``):

| failure | outcome | error | why |
|---|---|---|---|
| DNS name does not resolve | not sent | `NetworkError` | no connection was made |
| connection refused | not sent | `NetworkError` | nobody listens on the port |
| connect timeout | not sent | `NetworkError` | the TCP connection never opened |
| TLS handshake fails (certificate, host name, protocol; reset or timeout in the handshake) | not sent | `NetworkError` | request bytes leave only after the handshake |
| proxy refuses the tunnel | not sent | `NetworkError` | the request never reached the provider |
| invalid URL or header, body cannot be encoded | not sent | `TransportError` | it failed before connecting |
| connection reset or closed after it opened, before an answer | unknown | `UnknownOutcomeError` | the provider may have read and processed the request |
| read timeout | unknown | `UnknownOutcomeError` | the request was written; no answer came in time |
| answer is not HTTP, or breaks off | unknown | `UnknownOutcomeError` | the request had arrived |
| any other error | unknown | `UnknownOutcomeError` | it cannot be shown to have happened before the request left |
| 2xx | sent | none: return a `Receipt` | the provider accepted the request |
| 303 | unknown | `UnknownOutcomeError` | "See Other" answers a POST that was processed, with a result the API does not document |
| other 3xx | not sent | `TransportError` | a redirect is not processing; a send never follows one |
| 401 | not sent | `AuthenticationError` | credentials refused |
| 403 | not sent | `AccessDeniedError` | credentials fine, permission missing |
| 408 | not sent | `NetworkError` | the server gave up waiting for the request |
| 413 | not sent | `MessageTooLargeError` | too large |
| 429, with or without Retry-After | not sent | `ThrottledError` | throttled: not processed, retry later |
| other 4xx | not sent | `TransportError` | the provider refused the request |
| 500 | unknown | `UnknownOutcomeError` | the server failed while processing; part of the work (the mail) may be done |
| 501, 505, 511 | not sent | `TransportError` | method, HTTP version or network login refused before any processing |
| 502 | unknown | `UnknownOutcomeError` | a gateway forwarded the request and got no valid answer from upstream |
| 503 with Retry-After | not sent | `ThrottledError` | overloaded or in maintenance, the server says when to retry |
| 503 without Retry-After | unknown | `UnknownOutcomeError` | gateways answer 503 when the upstream dropped a forwarded request (Envoy: "reset before headers") |
| 504, with or without Retry-After | unknown | `UnknownOutcomeError` | a gateway forwarded the request; the upstream did not answer in time and may still send |
| other 5xx, 1xx, codes outside 100–599 | unknown | `UnknownOutcomeError` | no promise that nothing happened |

Override a row only where your provider documents the opposite for its own answers (for example
that its 500 means "nothing was queued"), and say so in a comment. Never retry after an unknown
outcome; a transport may repeat a *not sent* attempt within its own wait budget (``may_retry``).

.. versionadded:: 1.3
"""

from __future__ import annotations

import enum
import ssl
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from . import redaction
from .errors import (
    AccessDeniedError,
    AuthenticationError,
    CcmMailError,
    MessageTooLargeError,
    NetworkError,
    ThrottledError,
    TransportError,
    UnknownOutcomeError,
)
from .text import T

R = TypeVar("R")


class Outcome(str, enum.Enum):
    """What one HTTP attempt means for the message."""

    SENT = "sent"  #: the provider accepted it
    NOT_SENT = "not_sent"  #: it cannot have reached the provider, or the provider refused it
    UNKNOWN = "unknown"  #: the provider may have it: never retry, record ``unknown``


#: why an attempt was classified so (stable codes; ``details["code"]`` is ``"http_" + reason``)
_WHY: dict[str, T] = {
    "dns": T("der Name ist nicht auflösbar (DNS)", "the name does not resolve (DNS)"),
    "refused": T("die Verbindung wurde abgelehnt", "the connection was refused"),
    "connect_timeout": T("der Verbindungsaufbau dauerte zu lange", "connecting timed out"),
    "connect_failed": T("die Verbindung kam nicht zustande", "the connection could not be opened"),
    "tls": T("die TLS-Verbindung kam nicht zustande", "the TLS handshake failed"),
    "proxy": T("der Proxy hat die Verbindung nicht aufgebaut", "the proxy did not open the connection"),
    "invalid_request": T("die Anfrage ließ sich nicht bilden", "the request could not be built"),
    "ca_bundle": T("das CA-Bündel fehlt oder ist nicht lesbar", "the CA bundle is missing or unreadable"),
    "reset": T("die Verbindung brach ab, bevor eine Antwort kam", "the connection broke before an answer came"),
    "read_timeout": T(
        "nach dem Senden der Anfrage kam keine Antwort in der Wartezeit",
        "no answer came within the timeout after the request was sent",
    ),
    "broken_answer": T(
        "die Antwort war kein gültiges HTTP oder brach ab", "the answer was not valid HTTP or broke off"
    ),
    "tls_after_handshake": T(
        "die TLS-Verbindung brach nach dem Aufbau ab", "the TLS connection failed after it was set up"
    ),
    "unrecognised": T(
        "ein unerwarteter Fehler, bei dem nicht feststeht, dass nichts gesendet wurde",
        "an unexpected error that does not show that nothing was sent",
    ),
}

#: failures after which the attempt may be repeated (nothing was sent and it may pass next time)
_RETRYABLE = frozenset({"dns", "refused", "connect_timeout", "connect_failed", "proxy"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classification of one attempt.

    :param outcome: sent, not sent or unknown.
    :param reason: a stable code: one of the keys above for an exception, ``"status"`` for an
        HTTP answer.
    :param status: the HTTP status, when an answer came.
    :param retry_after: seconds the server asked to wait (``Retry-After``), when it did.
    :param cause: the exception's class name, e.g. ``"ConnectionResetError"``; never its text,
        which can hold URLs with tokens.
    """

    outcome: Outcome
    reason: str
    status: int | None = None
    retry_after: float | None = None
    cause: str = ""

    @property
    def throttled(self) -> bool:
        """The provider said "not now" (429, or 503 with Retry-After)."""
        return self.outcome is Outcome.NOT_SENT and self.status in (429, 503)

    @property
    def may_retry(self) -> bool:
        """Nothing was sent and the same attempt may succeed later: throttling, 408, and
        connection failures (not TLS: a certificate does not fix itself)."""
        return self.outcome is Outcome.NOT_SENT and (self.throttled or self.status == 408 or self.reason in _RETRYABLE)

    @property
    def why(self) -> T:
        """One phrase for people: what happened."""
        if self.status is None:
            return _WHY.get(self.reason, _WHY["unrecognised"])
        name = _STATUS_NAMES.get(self.status, "")
        label = f"HTTP {self.status} {name}".rstrip()
        if self.retry_after is not None:
            return T(
                f"{label}, erneut versuchen in {self.retry_after:.0f} s", f"{label}, retry in {self.retry_after:.0f} s"
            )
        return T(label, label)

    def error(
        self,
        provider: str,
        *,
        host: str = "",
        message: T | None = None,
        hint: T | None = None,
        details: Mapping[str, Any] | None = None,
        cls: type[TransportError] | type[UnknownOutcomeError] | None = None,
    ) -> TransportError | UnknownOutcomeError:
        """The public error to raise for this attempt (not for a sent one).

        :param provider: the provider's name for people, e.g. ``"Acme Mail"``.
        :param host: the host that was contacted, shown in the text.
        :param message: your own text (e.g. for a provider error code) instead of the generic one.
        :param hint: your own advice for the admin instead of the generic one.
        :param details: support ids from the answer (``request_id``, ``code`` …); merged over the
            verdict's own. Every text goes through :func:`ccm_mail_hookspecs.redaction.redact`.
        :param cls: a more precise class, e.g. ``RecipientError`` for a provider's "bad recipient"
            code. It must match the outcome: a not-sent verdict takes a ``TransportError``
            subclass, an unknown one only ``UnknownOutcomeError``.
        """
        if self.outcome is Outcome.SENT:
            raise ValueError("a sent attempt has no error")
        chosen = cls or self._error_class()
        wanted: type[CcmMailError] = TransportError if self.outcome is Outcome.NOT_SENT else UnknownOutcomeError
        if not issubclass(chosen, wanted):
            raise TypeError(
                f"{chosen.__name__} does not fit the outcome {self.outcome.value!r}; "
                f"use {wanted.__name__} or a subclass"
            )
        where = f" ({host})" if host else ""
        if message is None:
            if self.outcome is Outcome.UNKNOWN and self.status is None:
                message = T(
                    f"Keine Antwort von {provider}{where}: {self.why.de}. Die Nachricht ist "
                    "vielleicht angekommen, vielleicht nicht.",
                    f"No answer from {provider}{where}: {self.why.en}. The message may or may not have arrived.",
                )
            elif self.outcome is Outcome.UNKNOWN:
                message = T(
                    f"{provider}{where} antwortete {self.why.de}: die Nachricht ist vielleicht "
                    "angekommen, vielleicht nicht.",
                    f"{provider}{where} answered {self.why.en}: the message may or may not have arrived.",
                )
            elif self.status is None:
                message = T(
                    f"{provider}{where} ist nicht erreichbar: {self.why.de}. Es wurde nichts gesendet.",
                    f"{provider}{where} cannot be reached: {self.why.en}. Nothing was sent.",
                )
            else:
                message = T(
                    f"{provider}{where} hat die Nachricht nicht angenommen: {self.why.de}.",
                    f"{provider}{where} did not accept the message: {self.why.en}.",
                )
        merged: dict[str, Any] = {
            "code": f"http_{self.reason}" if self.status is None else None,
            "status": self.status,
            "host": host or None,
            "cause": self.cause or None,
            "retry_after": self.retry_after,
        }
        merged.update({k: v for k, v in (details or {}).items() if v is not None})
        clean = {k: (redaction.redact(v) if isinstance(v, str) else v) for k, v in merged.items() if v is not None}
        return chosen(_redacted(message), hint=_redacted(hint or self._hint()), details=clean)

    def _error_class(self) -> type[TransportError] | type[UnknownOutcomeError]:
        if self.outcome is Outcome.UNKNOWN:
            return UnknownOutcomeError
        if self.status is None:
            return TransportError if self.reason in ("invalid_request", "ca_bundle") else NetworkError
        return _NOT_SENT_CLASSES.get(self.status, TransportError)

    def _hint(self) -> T:
        if self.outcome is Outcome.UNKNOWN:
            return T(
                "Nicht blind erneut senden: erst beim Anbieter nachsehen, ob die Nachricht angekommen ist "
                "(ccm-mail outbox zeigt sie mit ihrer Message-ID).",
                "Do not resend blindly: first check with the provider whether the message arrived "
                "(ccm-mail outbox shows it with its Message-ID).",
            )
        if self.throttled:
            later = f" frühestens in {self.retry_after:.0f} s" if self.retry_after is not None else " später"
            later_en = f" in {self.retry_after:.0f} s at the earliest" if self.retry_after is not None else " later"
            return T(
                f"Der Anbieter drosselt; die Nachricht{later} erneut senden.",
                f"The provider is throttling; send the message again{later_en}.",
            )
        if self.reason == "tls":
            return T(
                "Zertifikat und CA-Bündel prüfen, die Uhrzeit des Rechners und ob ein TLS-prüfender Proxy "
                "dazwischen sitzt.",
                "Check the certificate and the CA bundle, this computer's clock, and whether a "
                "TLS-inspecting proxy sits in between.",
            )
        if self.status is None:
            return T(
                "Adresse des Dienstes, Netzwerk, DNS, Firewall und Proxy prüfen; danach erneut senden.",
                "Check the service address, network, DNS, firewall and proxy; then send again.",
            )
        return _STATUS_HINTS.get(
            self.status,
            T(
                "Die Meldung und die Kennungen in eckigen Klammern an den Support des Anbieters geben.",
                "Give the message and the ids in square brackets to the provider's support.",
            ),
        )


_NOT_SENT_CLASSES: dict[int, type[TransportError]] = {
    401: AuthenticationError,
    403: AccessDeniedError,
    408: NetworkError,
    413: MessageTooLargeError,
    429: ThrottledError,
    503: ThrottledError,
}
_STATUS_HINTS: dict[int, T] = {
    401: T(
        "Zugangsdaten (API-Schlüssel, Geheimnis) im Konto prüfen.", "Check the account's credentials (API key, secret)."
    ),
    403: T("Berechtigungen des Zugangs beim Anbieter prüfen.", "Check the access's permissions with the provider."),
    408: T("Netzwerk prüfen und erneut senden.", "Check the network and send again."),
    413: T("Anhänge verkleinern oder aufteilen.", "Make attachments smaller or split them."),
}
_STATUS_NAMES: dict[int, str] = {
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    511: "Network Authentication Required",
}


def _redacted(text: T) -> T:
    return T(redaction.redact(text.de), redaction.redact(text.en))


# -- answers ---------------------------------------------------------------------------------------


def classify_status(status: int, headers: Any = None, *, now: datetime | None = None) -> Verdict:
    """Classify an HTTP answer by its status (and ``Retry-After``), as in the module's table.

    :param headers: the answer's headers: a requests ``CaseInsensitiveDict``, an ``http.client``
        message, or a plain mapping (looked up without regard to case).
    :param now: the clock for an HTTP-date ``Retry-After`` (tests); default: now, UTC.
    """
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
    if 200 <= status <= 299:
        outcome = Outcome.SENT
    elif status == 503:
        outcome = Outcome.NOT_SENT if retry_after is not None else Outcome.UNKNOWN
    elif 300 <= status <= 499 and status != 303:
        outcome = Outcome.NOT_SENT
    elif status in (501, 505, 511):
        outcome = Outcome.NOT_SENT
    else:
        outcome = Outcome.UNKNOWN
    return Verdict(outcome, "status", status=status, retry_after=retry_after)


def classify_response(response: Any, *, now: datetime | None = None) -> Verdict:
    """:func:`classify_status` for a response object: ``status_code`` (requests) or ``status``
    (``http.client``, urllib3), and ``headers``."""
    status = getattr(response, "status_code", None)
    if status is None:
        status = response.status
    return classify_status(int(status), getattr(response, "headers", None), now=now)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds (``"120"``) or an HTTP-date in
    any of the three forms HTTP allows (IMF-fixdate, RFC 850, asctime). A date in the past gives 0.
    None when absent, empty, negative or unreadable: then the caller backs off on its own."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None and isinstance(headers, dict):  # requests' and http.client's look up without case
        value = next((v for k, v in headers.items() if str(k).lower() == name.lower()), None)
    return None if value is None else str(value)


# -- exceptions ------------------------------------------------------------------------------------


def classify_exception(exc: BaseException) -> Verdict:
    """Classify a failed attempt by its exception, as in the module's table.

    Anything not shown to have happened before the connection was open is ``UNKNOWN``: a
    classifier that guesses "not sent" can send an invoice twice, one that says "unknown" only
    makes a person look.
    """
    chain = list(_causes(exc))
    names = {name for e in chain for name in _class_names(e)}
    # the first error that is not a library's wrapper says most: ConnectionResetError, not ProtocolError
    cause = next(
        (type(e).__name__ for e in chain if not type(e).__module__.startswith(("requests", "urllib3"))),
        type(exc).__name__,
    )

    def verdict(outcome: Outcome, reason: str) -> Verdict:
        return Verdict(outcome, reason, cause=cause)

    if names & _INVALID_REQUEST:
        return verdict(Outcome.NOT_SENT, "invalid_request")
    if any(_raised_in_requests_cert_check(e) for e in chain):
        return verdict(Outcome.NOT_SENT, "ca_bundle")
    if names & _DNS:
        return verdict(Outcome.NOT_SENT, "dns")
    if "builtins.ConnectionRefusedError" in names:
        return verdict(Outcome.NOT_SENT, "refused")
    if names & _PROXY:
        return verdict(Outcome.NOT_SENT, "proxy")
    if names & _CERTIFICATE or any(_raised_in_tls_setup(e) for e in chain):
        return verdict(Outcome.NOT_SENT, "tls")
    if names & _CONNECT_TIMEOUT or (
        "urllib3.exceptions.ConnectTimeoutError" in names and "urllib3.exceptions.NewConnectionError" not in names
    ):
        return verdict(Outcome.NOT_SENT, "connect_timeout")
    if "urllib3.exceptions.NewConnectionError" in names or any(_raised_in_connect(e) for e in chain):
        return verdict(Outcome.NOT_SENT, "connect_failed")
    if any(isinstance(e, ssl.SSLError) and getattr(e, "reason", None) in _HANDSHAKE_ALERTS for e in chain):
        return verdict(Outcome.NOT_SENT, "tls")
    # from here on the connection was open: the provider may have the request
    if names & _TIMEOUT:
        return verdict(Outcome.UNKNOWN, "read_timeout")
    if names & _RESET:
        return verdict(Outcome.UNKNOWN, "reset")
    if names & _BROKEN_ANSWER:
        return verdict(Outcome.UNKNOWN, "broken_answer")
    if names & _WRAPPED:  # requests/urllib3 saying "connection aborted" around something unnamed
        return verdict(Outcome.UNKNOWN, "reset")
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return verdict(Outcome.UNKNOWN, "tls_after_handshake")
    return verdict(Outcome.UNKNOWN, "unrecognised")


def attempt(call: Callable[[], R], *, now: datetime | None = None) -> tuple[Verdict, R | None]:
    """Run one attempt and classify it: ``(verdict, response)``, the response being None when
    the call raised. Only errors of the network and HTTP libraries are caught; anything else
    (a bug in your code) propagates unchanged."""
    try:
        response = call()
    except Exception as exc:
        if not is_network_error(exc):
            raise
        return classify_exception(exc), None
    return classify_response(response, now=now), response


def is_network_error(exc: BaseException) -> bool:
    """Does ``exc`` come from the network or an HTTP library (``OSError``, ``http.client``,
    ``requests``, ``urllib3``), rather than from a bug?"""
    return isinstance(exc, OSError) or any(
        name.startswith(("http.client.", "requests.exceptions.", "urllib3.exceptions.")) for name in _class_names(exc)
    )


# Class names (module.qualname anywhere in the MRO): no import of requests or urllib3 needed.
_INVALID_REQUEST = {
    "requests.exceptions.InvalidURL",
    "requests.exceptions.MissingSchema",
    "requests.exceptions.InvalidSchema",
    "requests.exceptions.InvalidHeader",
    "requests.exceptions.URLRequired",
    "requests.exceptions.InvalidJSONError",
    "urllib3.exceptions.LocationParseError",
    "http.client.InvalidURL",
}
_DNS = {"socket.gaierror", "urllib3.exceptions.NameResolutionError"}
_PROXY = {"requests.exceptions.ProxyError", "urllib3.exceptions.ProxyError"}
_CERTIFICATE = {"ssl.SSLCertVerificationError", "ssl.CertificateError"}
_CONNECT_TIMEOUT = {"requests.exceptions.ConnectTimeout"}
_TIMEOUT = {
    "builtins.TimeoutError",
    "socket.timeout",
    "requests.exceptions.ReadTimeout",
    "urllib3.exceptions.ReadTimeoutError",
    "requests.exceptions.Timeout",
}
_BROKEN_ANSWER = {
    "http.client.BadStatusLine",
    "http.client.LineTooLong",
    "http.client.IncompleteRead",
    "requests.exceptions.ChunkedEncodingError",
    "requests.exceptions.ContentDecodingError",
    "urllib3.exceptions.IncompleteRead",
    "urllib3.exceptions.InvalidChunkLength",
    "urllib3.exceptions.DecodeError",
    "urllib3.exceptions.HeaderParsingError",
}
_RESET = {
    "builtins.ConnectionResetError",
    "builtins.ConnectionAbortedError",
    "builtins.BrokenPipeError",
    "http.client.RemoteDisconnected",
}
_WRAPPED = {"urllib3.exceptions.ProtocolError", "requests.exceptions.ConnectionError"}
#: OpenSSL reasons that only occur while negotiating, never on an open connection
_HANDSHAKE_ALERTS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "NO_SHARED_CIPHER",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_INTERNAL_ERROR",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "CERTIFICATE_VERIFY_FAILED",
    "TLSV1_UNRECOGNIZED_NAME",
    "SSLV3_ALERT_BAD_CERTIFICATE",
}
_SSL_FILE = ssl.__file__
#: standard-library functions that run before any request byte is written
_TLS_SETUP = frozenset({"wrap_socket", "_create", "do_handshake"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: ``__cause__``, an unsuppressed ``__context__``, exception
    arguments (requests and urllib3 keep the real error there) and urllib3's ``reason``."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            getattr(current, "reason", None),
            current.__cause__,
            None if current.__suppress_context__ else current.__context__,
            *current.args,
        ]
        todo.extend(e for e in linked if isinstance(e, BaseException))


def _class_names(exc: BaseException) -> Iterator[str]:
    for cls in type(exc).__mro__:
        yield f"{cls.__module__}.{cls.__qualname__}"


def _frames(exc: BaseException) -> Iterator[tuple[str, str]]:
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        yield frame.f_code.co_filename, frame.f_code.co_name


def _raised_in_tls_setup(exc: BaseException) -> bool:
    """Raised inside the standard library's TLS set-up (``SSLContext.wrap_socket`` or a
    handshake): no request byte can have been written yet."""
    return any(filename == _SSL_FILE and name in _TLS_SETUP for filename, name in _frames(exc))


def _raised_in_requests_cert_check(exc: BaseException) -> bool:
    """requests checks that the CA bundle exists (``HTTPAdapter.cert_verify``) before connecting."""
    return any(name == "cert_verify" and "requests" in filename for filename, name in _frames(exc))


def _raised_in_connect(exc: BaseException) -> bool:
    """Raised while opening the TCP connection (``socket.create_connection``)."""
    import socket

    return any(filename == socket.__file__ and name == "create_connection" for filename, name in _frames(exc))
