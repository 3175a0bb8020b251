"""ccm_mail_hookspecs.http against real failures: requests and http.client talking to the kit's
fault server over TLS on loopback, and the status table row by row."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from ccm_mail_hookspecs import (
    AccessDeniedError,
    AuthenticationError,
    MessageTooLargeError,
    NetworkError,
    RecipientError,
    ThrottledError,
    TransportError,
    UnknownOutcomeError,
    redaction,
)
from ccm_mail_hookspecs.http import Outcome, Verdict, attempt, classify_exception, classify_status, parse_retry_after

from ccm_mail_core.testing.faultserver import Behaviour, FaultPKI, FaultServer, RefusingPort, fault_pki

NOT_SENT, SENT, UNKNOWN = Outcome.NOT_SENT, Outcome.SENT, Outcome.UNKNOWN


@pytest.fixture(scope="module")
def pki() -> FaultPKI:
    return fault_pki()


@pytest.fixture(scope="module")
def ca_file(pki: FaultPKI, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pki.write_ca(tmp_path_factory.mktemp("ca"))


def via_requests(url: str, ca_file: Path) -> Callable[[], Any]:
    return lambda: requests.post(
        url + "/v1/messages", json={"raw": "x" * 2000}, verify=str(ca_file), timeout=0.3, allow_redirects=False
    )


def via_http_client(port: int, ca_file: Path) -> Callable[[], Any]:
    def call() -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=0.3, context=ssl.create_default_context(cafile=str(ca_file))
        )
        try:
            conn.request("POST", "/v1/messages", body=b"{}" * 1000, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response
        finally:
            conn.close()

    return call


CLIENTS = ["requests", "http.client"]


def run(client: str, server: FaultServer | RefusingPort, ca_file: Path) -> Verdict:
    call = via_requests(server.url, ca_file) if client == "requests" else via_http_client(server.port, ca_file)
    verdict, response = attempt(call)
    return verdict


# -- before the request can leave: not sent ---------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_refused_connection_is_not_sent(client: str, ca_file: Path) -> None:
    with RefusingPort() as port:
        verdict = run(client, port, ca_file)
    assert (verdict.outcome, verdict.reason, verdict.cause) == (NOT_SENT, "refused", "ConnectionRefusedError")
    assert verdict.may_retry
    assert isinstance(verdict.error("Acme Mail"), NetworkError)


@pytest.mark.parametrize("client", CLIENTS)
def test_untrusted_certificate_is_not_sent(client: str, pki: FaultPKI, ca_file: Path) -> None:
    with FaultServer(Behaviour("respond", 202), pki.untrusted) as server:
        verdict = run(client, server, ca_file)
        assert server.requests == []
    assert (verdict.outcome, verdict.reason, verdict.cause) == (NOT_SENT, "tls", "SSLCertVerificationError")
    assert not verdict.may_retry, "a certificate does not fix itself"


@pytest.mark.parametrize("client", CLIENTS)
def test_reset_in_the_tls_handshake_is_not_sent(client: str, pki: FaultPKI, ca_file: Path) -> None:
    """Caught by where the error was raised (inside ssl's handshake), not by its class: the same
    ConnectionResetError while reading the answer means the opposite."""
    with FaultServer(Behaviour("reset_in_handshake"), pki.trusted) as server:
        verdict = run(client, server, ca_file)
    assert (verdict.outcome, verdict.reason, verdict.cause) == (NOT_SENT, "tls", "ConnectionResetError")


def test_tls_handshake_timeout_is_not_sent(ca_file: Path) -> None:
    """A server that accepts but never speaks TLS: urllib3 reports a *read* timeout, yet nothing
    can have been sent."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True)
    thread.start()
    try:
        verdict, _ = attempt(via_requests(f"https://127.0.0.1:{silent.getsockname()[1]}", ca_file))
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        silent.close()
    assert (verdict.outcome, verdict.reason, verdict.cause) == (NOT_SENT, "tls", "TimeoutError")


def test_unresolvable_name_is_not_sent(ca_file: Path) -> None:
    verdict, _ = attempt(via_requests("https://ccm-mail-kit.invalid", ca_file))  # .invalid never resolves
    assert (verdict.outcome, verdict.reason) == (NOT_SENT, "dns")


def test_missing_ca_bundle_and_bad_url_are_not_sent(tmp_path: Path) -> None:
    with RefusingPort() as port:
        missing = attempt(via_requests(port.url, tmp_path / "fehlt.pem"))[0]
    assert (missing.outcome, missing.reason) == (NOT_SENT, "ca_bundle")
    assert type(missing.error("Acme Mail")) is TransportError
    bad = attempt(lambda: requests.post("htps://api.acme-mail.example/v1", timeout=1))[0]
    assert (bad.outcome, bad.reason) == (NOT_SENT, "invalid_request")


# -- after the connection was open: unknown ---------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("behaviour", "reason", "cause"),
    [
        (Behaviour("reset_after_request"), "reset", "RemoteDisconnected"),
        (Behaviour("hang"), "read_timeout", "TimeoutError"),
        (Behaviour("garbage", body=b"220 mail.example ESMTP\r\n"), "broken_answer", "BadStatusLine"),
    ],
    ids=["reset_after_request", "no_answer", "not_http"],
)
def test_failures_after_the_request_left_are_unknown(
    client: str, behaviour: Behaviour, reason: str, cause: str, pki: FaultPKI, ca_file: Path
) -> None:
    with FaultServer(behaviour, pki.trusted) as server:
        verdict = run(client, server, ca_file)
        assert len(server.requests) == 1, "the fault must strike after the whole request arrived"
    assert (verdict.outcome, verdict.reason, verdict.cause) == (UNKNOWN, reason, cause)
    assert not verdict.may_retry
    assert isinstance(verdict.error("Acme Mail"), UnknownOutcomeError)


@pytest.mark.parametrize("client", CLIENTS)
def test_answer_that_breaks_off_is_unknown(client: str, pki: FaultPKI, ca_file: Path) -> None:
    truncated = Behaviour("respond", 202, (("Content-Length", "100"),), b"only a part")
    with FaultServer(truncated, pki.trusted) as server:
        verdict = run(client, server, ca_file)
    assert (verdict.outcome, verdict.reason) == (UNKNOWN, "broken_answer")


def test_a_bug_in_the_call_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        attempt(lambda: 1 / 0)


def test_unrecognised_errors_are_unknown_not_sent() -> None:
    """An exception the classifier does not know cannot be shown harmless."""
    assert classify_exception(OSError("something odd")).outcome is UNKNOWN


# -- answers: the status table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "error"),
    [
        (200, {}, SENT, None),
        (202, {}, SENT, None),
        (204, {}, SENT, None),
        (301, {}, NOT_SENT, TransportError),
        (307, {}, NOT_SENT, TransportError),
        (303, {}, UNKNOWN, UnknownOutcomeError),
        (400, {}, NOT_SENT, TransportError),
        (401, {}, NOT_SENT, AuthenticationError),
        (403, {}, NOT_SENT, AccessDeniedError),
        (404, {}, NOT_SENT, TransportError),
        (408, {}, NOT_SENT, NetworkError),
        (413, {}, NOT_SENT, MessageTooLargeError),
        (422, {}, NOT_SENT, TransportError),
        (429, {}, NOT_SENT, ThrottledError),
        (429, {"retry-after": "120"}, NOT_SENT, ThrottledError),
        (500, {}, UNKNOWN, UnknownOutcomeError),
        (501, {}, NOT_SENT, TransportError),
        (502, {}, UNKNOWN, UnknownOutcomeError),
        (503, {"Retry-After": "30"}, NOT_SENT, ThrottledError),
        (503, {}, UNKNOWN, UnknownOutcomeError),
        (504, {}, UNKNOWN, UnknownOutcomeError),
        (504, {"Retry-After": "30"}, UNKNOWN, UnknownOutcomeError),
        (505, {}, NOT_SENT, TransportError),
        (511, {}, NOT_SENT, TransportError),
        (507, {}, UNKNOWN, UnknownOutcomeError),
        (520, {}, UNKNOWN, UnknownOutcomeError),
        (100, {}, UNKNOWN, UnknownOutcomeError),
        (700, {}, UNKNOWN, UnknownOutcomeError),
    ],
)
def test_status_table(status: int, headers: dict[str, str], outcome: Outcome, error: type | None) -> None:
    verdict = classify_status(status, headers)
    assert verdict.outcome is outcome
    if error is None:
        with pytest.raises(ValueError):
            verdict.error("Acme Mail")
    else:
        assert type(verdict.error("Acme Mail")) is error


@pytest.mark.parametrize("client", CLIENTS)
def test_status_and_retry_after_from_a_real_answer(client: str, pki: FaultPKI, ca_file: Path) -> None:
    throttled = Behaviour("respond", 429, (("Retry-After", "120"),), b"{}")
    with FaultServer(throttled, pki.trusted) as server:
        verdict = run(client, server, ca_file)
    assert (verdict.outcome, verdict.status, verdict.retry_after, verdict.throttled) == (NOT_SENT, 429, 120.0, True)
    assert verdict.may_retry


NOW = datetime(2026, 5, 9, 7, 35, 25, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Sat, 09 May 2026 07:37:25 GMT", 120.0),  # IMF-fixdate
        ("Saturday, 09-May-26 07:37:25 GMT", 120.0),  # RFC 850
        ("Sat May  9 07:37:25 2026", 120.0),  # asctime (no zone: GMT)
        ("Sat, 09 May 2026 07:00:00 GMT", 0.0),  # in the past: go ahead
        (None, None),
        ("", None),
        ("-5", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


# -- the errors it builds ---------------------------------------------------------------------------


def test_error_texts_are_german_and_english_and_redacted() -> None:
    secret = "acme_live_do-not-show-9f8e7d"
    redaction.remember(secret)
    error = classify_status(500).error(
        "Acme Mail", host="api.acme-mail.example", details={"request_id": "req_1", "description": f"echo {secret}"}
    )
    assert isinstance(error, UnknownOutcomeError)
    assert "vielleicht" in error.render("de") and "may or may not" in error.render("en")
    assert "request_id=req_1" in error.render("en") and "status=500" in error.render("en")
    assert secret not in repr(error.details) and "***" in error.details["description"]


def test_a_precise_class_must_fit_the_outcome() -> None:
    assert isinstance(classify_status(422).error("Acme Mail", cls=RecipientError), RecipientError)
    with pytest.raises(TypeError, match="does not fit the outcome 'unknown'"):
        classify_status(500).error("Acme Mail", cls=RecipientError)
    with pytest.raises(TypeError, match="does not fit the outcome 'not_sent'"):
        classify_status(429).error("Acme Mail", cls=UnknownOutcomeError)


def test_throttled_hint_names_the_wait() -> None:
    error = classify_status(429, {"Retry-After": "90"}).error("Acme Mail")
    assert isinstance(error, ThrottledError) and error.retryable
    assert "90 s" in error.render("en") and error.details["retry_after"] == 90.0


def test_importing_it_loads_neither_requests_nor_urllib3() -> None:
    probe = "import sys, ccm_mail_hookspecs.http; print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() <= before + 1, "a fault server was left running"
