"""The faults the conformance kit drives an HTTP transport through, and what each must produce.

Each :class:`HttpFault` is one way a provider, a proxy or the network can fail one ``send``. The
kit serves it from a :class:`~ccm_mail_core.testing.faultserver.FaultServer` (or a port where
nobody listens), lets the transport send one message to it, and :func:`judge` compares what came
back with what the contract asks for. Its messages say what happened on the wire and why the
answer is wrong, e.g. "expected UnknownOutcomeError: the request body had been written when the
connection reset …", never just "DID NOT RAISE".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from ccm_mail_hookspecs import CcmMailError, NetworkError, ThrottledError, TransportError, UnknownOutcomeError

from .faultserver import Behaviour, FaultPKI, FaultServer, RawRequest, RefusingPort
from .outcomes import wrong_outcome


@dataclass(frozen=True)
class HttpEndpoint:
    """Where the kit wants the transport to send, handed to your ``http_transport`` factory.

    :param url: the provider's base URL to use instead of the real one, e.g.
        ``https://127.0.0.1:50123`` (no trailing slash; the transport appends its own paths).
    :param ca_file: a PEM file with the CA to trust for ``url`` (only that one is needed).
    :param timeout: the read timeout the transport must use, in seconds.
    :param max_wait: how long the transport may wait in total for throttling or backoff
        (the kit passes 0: give up at once, so the tests stay fast).
    """

    url: str
    ca_file: Path
    timeout: float
    max_wait: float = 0.0

    @property
    def ca_pem(self) -> str:
        """The CA certificate as PEM text, e.g. to append it to a bundle you already use."""
        return self.ca_file.read_text(encoding="ascii")


@dataclass(frozen=True)
class HttpFault:
    """One fault and the answer the contract asks for.

    :param id: the test id, e.g. ``reset_after_request``.
    :param expected: the error classes that are right (a subclass of one is right too).
    :param behaviour: what the fault server does; None: nobody listens on the port.
    :param why: what happened on the wire and why that answer follows; shown when a transport fails.
    :param untrusted: the server presents a certificate from a CA the transport does not trust.
    :param receipt_ok: a Receipt is right too (a 2xx answer says "accepted").
    :param arrives: the request reaches the server (it must arrive at least once).
    :param single_attempt: the provider may have the message after the first attempt, so exactly
        one request may arrive: a second one is a retry after an unknown outcome.
    """

    id: str
    expected: tuple[type[CcmMailError], ...]
    behaviour: Behaviour | None = None
    why: str = ""
    untrusted: bool = False
    receipt_ok: bool = False
    arrives: bool = True
    single_attempt: bool = False

    def serve(self, pki: FaultPKI) -> FaultServer | RefusingPort:
        if self.behaviour is None:
            return RefusingPort()
        return FaultServer(self.behaviour, pki.untrusted if self.untrusted else pki.trusted)


def _json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _echo_credentials(request: RawRequest) -> bytes:
    """An error text that quotes the credentials back, as a careless provider might."""
    quoted = "; ".join(
        f"{name}: {value}"
        for name, value in request.headers
        if any(value == c or value.endswith(c) for c in request.credentials())
    )
    return _json("InvalidRequest", f"Request rejected, it carried {quoted or 'no credentials'}.")


_JSON = (("Content-Type", "application/json"),)
_HTML = (("Content-Type", "text/html; charset=utf-8"),)


def _retry_after_date() -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)


def http_faults() -> tuple[HttpFault, ...]:
    """The kit's faults, built fresh (the HTTP-date in one of them is "one hour from now")."""
    unknown, network, throttled = (UnknownOutcomeError,), (NetworkError,), (ThrottledError,)
    return (
        HttpFault(
            "connection_refused",
            network,
            arrives=False,
            why="nobody listens on the port, so nothing can have been sent; a NetworkError tells the host "
            "it may send again",
        ),
        HttpFault(
            "tls_untrusted_certificate",
            network,
            Behaviour("respond", 202),
            untrusted=True,
            arrives=False,
            why="the server's certificate comes from a CA the transport does not trust: the TLS handshake "
            "failed before any byte of the request could leave",
        ),
        HttpFault(
            "reset_in_tls_handshake",
            network,
            Behaviour("reset_in_handshake"),
            arrives=False,
            why="the connection was reset before any answer, during the TLS handshake, so before any byte "
            "of the request could leave",
        ),
        HttpFault(
            "reset_after_request",
            unknown,
            Behaviour("reset_after_request"),
            single_attempt=True,
            why="the request body had been written when the connection reset, so the provider may have the message",
        ),
        HttpFault(
            "no_answer_within_timeout",
            unknown,
            Behaviour("hang"),
            single_attempt=True,
            why="the whole request had arrived and no answer came within the read timeout; the provider "
            "may still be sending the message",
        ),
        HttpFault(
            "status_429_retry_after",
            throttled,
            Behaviour("respond", 429, (*_JSON, ("Retry-After", "3600")), _json("TooManyRequests", "Slow down.")),
            why="429 Too Many Requests with Retry-After: 3600, longer than the wait budget: the provider did "
            "not process the request",
        ),
        HttpFault(
            "status_429_no_retry_after",
            throttled,
            Behaviour("respond", 429, _JSON, _json("TooManyRequests", "Slow down.")),
            why="429 Too Many Requests without Retry-After: throttled, not processed, and the wait budget is 0 s",
        ),
        HttpFault(
            "status_503_retry_after",
            throttled,
            Behaviour(
                "respond",
                503,
                (*_JSON, ("Retry-After", _retry_after_date())),
                _json("ServiceUnavailable", "Maintenance."),
            ),
            why="503 Service Unavailable with Retry-After (an HTTP-date an hour ahead): the server says it "
            "did not handle the request and when to come back",
        ),
        HttpFault(
            "status_500",
            unknown,
            Behaviour("respond", 500, _JSON, _json("InternalServerError", "Something went wrong.")),
            single_attempt=True,
            why="500 Internal Server Error: the server failed while processing the request, and what it had "
            "done by then (queued the mail?) is unknown",
        ),
        HttpFault(
            "status_502_from_proxy",
            unknown,
            Behaviour("respond", 502, _HTML, b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
            single_attempt=True,
            why="502 Bad Gateway: a gateway had forwarded the request and got no valid answer from upstream, "
            "which may have processed it",
        ),
        HttpFault(
            "status_504_from_gateway",
            unknown,
            Behaviour("respond", 504, _HTML, b"<html><body><h1>504 Gateway Timeout</h1></body></html>"),
            single_attempt=True,
            why="504 Gateway Timeout: a gateway had forwarded the request and the upstream did not answer in "
            "time; it may still send the message",
        ),
        HttpFault(
            "garbage_answer",
            unknown,
            Behaviour("garbage", body=b"220 mail.provider.example ESMTP ready\r\n"),
            single_attempt=True,
            why="the request had arrived and the answer was not HTTP at all",
        ),
        HttpFault(
            "status_200_garbage_body",
            unknown,
            Behaviour("respond", 200, _JSON, b"<html>this is not the JSON the API documents"),
            receipt_ok=True,
            single_attempt=True,
            why="200 OK says the provider accepted the request, even though the body is not what the API "
            "documents: a Receipt or an unknown outcome are honest, a not-sent error is not",
        ),
        HttpFault(
            "status_400_html_body",
            (TransportError,),
            Behaviour("respond", 400, _HTML, b"<html><body>Bad Request</body></html>"),
            why="400 Bad Request: the provider refused the request; the body is an HTML page, not the API's "
            "error JSON, and still needs a ccm-mail error with German and English text",
        ),
        HttpFault(
            "error_echoes_credentials",
            (TransportError,),
            Behaviour("respond", 400, _JSON, _echo_credentials),
            why="400 Bad Request whose error text quotes the request's credentials back: the refusal is a "
            "TransportError, and no credential may reach the error text or a log line",
        ),
    )


def fault_ids() -> tuple[str, ...]:
    return tuple(f.id for f in http_faults())


def judge(fault: HttpFault, result: object, *, requests: int, secrets: list[str]) -> list[str]:
    """What is wrong with ``result`` for ``fault`` (empty: nothing), as sentences for the author."""
    problems: list[str] = []
    wrong = wrong_outcome(result, fault.expected, fault.why, receipt_ok=fault.receipt_ok, secrets=secrets)
    if wrong:
        problems.append(wrong)
    if fault.arrives and requests == 0:
        problems.append(
            "the fault server never received a request: does the transport your http_transport "
            "fixture builds send to endpoint.url?"
        )
    if fault.single_attempt and requests > 1:
        problems.append(
            f"the request reached the server {requests} times: the transport sent it again after an answer "
            "(or no answer) that means the provider may already have the message; never retry an unknown "
            "outcome"
        )
    return problems


__all__ = ["HttpEndpoint", "HttpFault", "fault_ids", "http_faults", "judge"]
