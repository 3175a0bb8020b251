"""The kit's HTTP fault tests must pass an honest transport and fail each typical mistake with a
message that says what went wrong — or they prove nothing.

The transport under test is the smallest honest one: a POST with requests, classified by
ccm_mail_hookspecs.http. Each broken variant makes one mistake from the issue: it retries after an
unknown outcome, raises a builtin exception, returns a receipt after a failure, or copies the
provider's echo of its token into the error."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from ccm_mail_hookspecs import Address, Message, Receipt, T, Transport, TransportError, redaction
from ccm_mail_hookspecs.http import Outcome, attempt

from ccm_mail_core.testing import HttpEndpoint, TransportConformance, capture_logs
from ccm_mail_core.testing.faultserver import Behaviour, FaultServer, RawRequest, fault_pki
from ccm_mail_core.testing.http_faults import fault_ids

pytest_plugins = ["pytester"]

TOKEN = "probe-token-7d1c2b3a4f5e6d7c8b9a"


class Probe(Transport):
    type_id = "probe"

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"
        redaction.remember(TOKEN, f"Bearer {TOKEN}")

    def post(self, message: Message) -> tuple[Any, Any]:
        return attempt(
            lambda: self.session.post(
                self.endpoint.url + "/send",
                json={"id": message.message_id},
                verify=str(self.endpoint.ca_file),
                timeout=self.endpoint.timeout,
                allow_redirects=False,
            )
        )

    def send(self, message: Message) -> Receipt:
        verdict, response = self.post(message)
        if verdict.outcome is Outcome.SENT:
            return Receipt(datetime.now(timezone.utc))
        raise verdict.error("Probe", details={"description": response.text if response is not None else None})

    def close(self) -> None:
        self.session.close()


class RetriesOnce(Probe):
    def send(self, message: Message) -> Receipt:
        verdict, _ = self.post(message)
        if verdict.outcome is Outcome.UNKNOWN:  # "the connection dropped, just try again"
            return super().send(message)
        return super().send(message) if verdict.outcome is not Outcome.SENT else Receipt(datetime.now(timezone.utc))


class RaisesBuiltin(Probe):
    def send(self, message: Message) -> Receipt:
        verdict, response = self.post(message)
        if verdict.outcome is Outcome.SENT:
            return Receipt(datetime.now(timezone.utc))
        raise RuntimeError(f"probe failed: {verdict.reason}")


class ReceiptForAnyAnswer(Probe):
    def send(self, message: Message) -> Receipt:
        verdict, response = self.post(message)
        if response is not None:
            return Receipt(datetime.now(timezone.utc))
        raise verdict.error("Probe")


class CopiesTheEcho(Probe):
    def send(self, message: Message) -> Receipt:
        response = self.session.post(
            self.endpoint.url + "/send", json={}, verify=str(self.endpoint.ca_file), timeout=self.endpoint.timeout
        )
        raise TransportError(T(response.text, response.text))  # the provider's text, unfiltered


class RetriesThrottling(Probe):
    """Repeating an attempt that cannot have sent anything is allowed."""

    def send(self, message: Message) -> Receipt:
        for _ in range(2):
            verdict, _ = self.post(message)
            if not verdict.may_retry:
                break
        return super().send(message)


class Suite(TransportConformance):
    """Not collected (no Test prefix): its test method is called directly below."""

    http_timeout = 0.3  # the probe talks to loopback only: the "no answer" case need not wait a second


class NoCapfd:
    def readouterr(self) -> tuple[str, str]:
        return "", ""


def run(transport: type[Probe], fault: str, tmp_path: Path) -> None:
    with capture_logs() as capture:
        Suite().test_http_fault(
            fault, transport, Address("rechnung@firma.example"), [TOKEN], tmp_path, capture, NoCapfd()
        )  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", fault_ids())
def test_an_honest_transport_passes_every_fault(fault: str, tmp_path: Path) -> None:
    run(Probe, fault, tmp_path)


@pytest.mark.parametrize("fault", ["status_429_retry_after", "status_429_no_retry_after", "connection_refused"])
def test_retrying_what_was_not_sent_is_allowed(fault: str, tmp_path: Path) -> None:
    run(RetriesThrottling, fault, tmp_path)


@pytest.mark.parametrize(
    ("transport", "fault", "message"),
    [
        (
            RetriesOnce,
            "reset_after_request",
            r"\[reset_after_request\] the request reached the server 2 times: .*never retry an unknown outcome",
        ),
        (RetriesOnce, "status_502_from_proxy", r"reached the server 2 times"),
        (
            RaisesBuiltin,
            "reset_after_request",
            r"expected UnknownOutcomeError: the request body had been written when the connection reset, so the "
            r"provider may have the message; got builtins\.RuntimeError: probe failed: reset — send\(\) must raise "
            r"only ccm-mail errors",
        ),
        (RaisesBuiltin, "tls_untrusted_certificate", r"expected NetworkError: .*got builtins\.RuntimeError"),
        (
            ReceiptForAnyAnswer,
            "status_500",
            r"expected UnknownOutcomeError: 500 Internal Server Error.*got a Receipt, i\.e\. send\(\) reported the "
            r"message as sent",
        ),
        (ReceiptForAnyAnswer, "status_429_retry_after", r"expected ThrottledError: .*got a Receipt"),
    ],
    ids=["retry-reset", "retry-502", "builtin-reset", "builtin-tls", "receipt-500", "receipt-429"],
)
def test_each_mistake_fails_with_a_readable_message(
    transport: type[Probe], fault: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(pytest.fail.Exception, match=message) as info:
        run(transport, fault, tmp_path)
    assert "DID NOT RAISE" not in str(info.value)


def test_an_echoed_token_in_the_error_is_caught_without_printing_it(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"secret leaked: error: secret #\d") as info:
        run(CopiesTheEcho, "error_echoes_credentials", tmp_path)
    assert TOKEN not in str(info.value)


def test_the_fault_server_reads_chunked_and_expect_continue_requests(tmp_path: Path) -> None:
    """A client that streams its body (chunked) or asks before sending it must still be counted."""
    pki = fault_pki()
    ca = pki.write_ca(tmp_path)
    with FaultServer(Behaviour("respond", 202), pki.trusted) as server:
        chunks = iter([b"erster ", b"zweiter"])
        response = requests.post(
            server.url + "/x",
            data=chunks,
            verify=str(ca),
            timeout=5,
            headers={"Expect": "100-continue", "X-Api-Key": "key-1234567"},
        )
        assert response.status_code == 202
        [request] = server.requests
    assert request.body == b"erster zweiter"
    assert request.header("x-api-key") == "key-1234567" and "key-1234567" in server.credentials()


def test_credentials_found_on_the_wire() -> None:
    request = RawRequest(
        "POST",
        "/send?sig=abcd1234&page=2",
        (
            ("Authorization", "Basic dXNlcjpzM2NyM3Qtc2VjcmV0"),
            ("Ocp-Apim-Subscription-Key", "sub-key-99"),
            ("Content-Type", "application/json"),
        ),
        b"",
    )
    found = request.credentials()
    assert {"dXNlcjpzM2NyM3Qtc2VjcmV0", "user:s3cr3t-secret", "s3cr3t-secret", "sub-key-99", "abcd1234"} <= found
    assert "application/json" not in found and "2" not in found


# -- how a subclass switches the fault tests on (an inner pytest run) -------------------------------

_CONFTEST = """
import pytest
from ccm_mail_core.testing import TransportConformance

from ccm_mail_hookspecs import Address

class Base(TransportConformance):
    @pytest.fixture
    def transport(self): pytest.skip("only the fault tests run here")

    @pytest.fixture
    def sender(self): return Address("rechnung@firma.example")
"""


def test_a_transport_without_http_gets_one_skip(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile("from conftest import Base\nclass TestSmtpLike(Base): pass\n")
    result = pytester.runpytest("-q", "-k", "http_fault", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*not an HTTP transport: define an http_transport fixture*"])


def test_known_failures_are_strict_and_checked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(
        test_probe=textwrap.dedent(f"""
        import pytest
        from conftest import Base
        from test_kit_http_faults import Probe

        class TestProbe(Base):
            http_fault_known_failures = {{"status_500": "claimed broken, but it is not"}}

            @pytest.fixture
            def secrets(self): return [{TOKEN!r}]

            @pytest.fixture
            def http_transport(self): return Probe
        """)
    )
    pytester.syspathinsert(Path(__file__).parent)
    result = pytester.runpytest("-q", "-k", "status_500 or status_502", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*claimed broken, but it is not*"])


def test_a_misspelt_known_failure_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile("""
        import pytest
        from conftest import Base

        class TestTypo(Base):
            http_fault_known_failures = {"status_5OO": "typo"}

            @pytest.fixture
            def http_transport(self): return None
        """)
    result = pytester.runpytest("-q")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*http_fault_known_failures names no fault: ?'status_5OO'?*"])
