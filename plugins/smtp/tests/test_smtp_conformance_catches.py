"""The conformance suite must fail for transports that break the contract, or it proves nothing.

Each case wraps the (healthy) SMTP transport with one typical mistake and runs the suite's test
method that should catch it, against the same real server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from ccm_mail_hookspecs import Address, AuthenticationError, Message, Receipt, Transport
from smtp_server import SmtpServer
from smtp_support import PASSWORD, SENDER, MakeTransport

from ccm_mail_core.testing import FailureCase, TransportConformance, capture_logs


class Suite(TransportConformance):
    """Not collected (no Test prefix): its methods are called directly below."""


class Wrapper(Transport):
    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def send(self, message: Message) -> Receipt:
        return self.inner.send(message)

    def check(self) -> Any:
        return self.inner.check()


class LeaksBcc(Wrapper):
    def send(self, message: Message) -> Receipt:
        headers = {**message.headers, "Bcc": ", ".join(a.address for a in message.bcc)}
        return self.inner.send(dataclasses.replace(message, headers=headers))


class DropsAttachments(Wrapper):
    def send(self, message: Message) -> Receipt:
        return self.inner.send(dataclasses.replace(message, attachments=[a for a in message.attachments if a.inline]))


class NewMessageId(Wrapper):
    def send(self, message: Message) -> Receipt:
        return self.inner.send(dataclasses.replace(message, message_id="<other@example.com>"))


class LogsPassword(Wrapper):
    def send(self, message: Message) -> Receipt:
        structlog.get_logger("ccm_mail.broken").debug("login", password=PASSWORD)
        return self.inner.send(message)


class RaisesBuiltin(Wrapper):
    def send(self, message: Message) -> Receipt:
        raise RuntimeError("535 authentication failed")


class SendsTwice(Wrapper):
    def send(self, message: Message) -> Receipt:
        self.inner.send(message)
        return self.inner.send(message)


class ForgetsTheBytes(Wrapper):
    """Sends, but does not say what it sent: a host archiving the message would have no copy."""

    def send(self, message: Message) -> Receipt:
        return dataclasses.replace(self.inner.send(message), mime=None)


class ArchivesSomethingElse(Wrapper):
    """Returns bytes, but not those of the message that went out."""

    def send(self, message: Message) -> Receipt:
        receipt = self.inner.send(message)
        return dataclasses.replace(receipt, mime=(receipt.mime or b"").replace(b"4713", b"4714"))


class NoCapfd:
    def readouterr(self) -> tuple[str, str]:
        return "", ""


@pytest.fixture
def suite() -> Suite:
    return Suite()


@pytest.fixture
def healthy(starttls_server: SmtpServer, make_transport: MakeTransport) -> Transport:
    return make_transport(starttls_server)


@pytest.fixture
def sender() -> Address:
    return Address(SENDER)


@pytest.fixture
def logs() -> Iterator[Any]:
    with capture_logs() as capture:
        yield capture


def test_bcc_in_headers_is_caught(
    suite: Suite, healthy: Transport, sender: Address, starttls_server: SmtpServer
) -> None:
    suite.test_cc_and_bcc(healthy, sender, starttls_server.message, starttls_server.envelope_recipients)
    with pytest.raises(AssertionError, match="Bcc"):
        suite.test_cc_and_bcc(LeaksBcc(healthy), sender, starttls_server.message, starttls_server.envelope_recipients)


def test_lost_attachments_are_caught(
    suite: Suite, healthy: Transport, sender: Address, starttls_server: SmtpServer, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError, match="attachments arrived"):
        suite.test_attachments_byte_for_byte(DropsAttachments(healthy), sender, starttls_server.message, tmp_path)


def test_changed_message_id_is_caught(
    suite: Suite, healthy: Transport, sender: Address, starttls_server: SmtpServer
) -> None:
    with pytest.raises(AssertionError, match="did not receive"):
        suite.test_message_id_preserved(NewMessageId(healthy), sender, starttls_server.message)


def test_logged_secret_is_caught(
    suite: Suite, healthy: Transport, sender: Address, starttls_server: SmtpServer, logs: Any
) -> None:
    with pytest.raises(AssertionError, match=r"secret leaked: log: secret #1") as info:
        suite.test_no_secret_in_logs_when_sending(
            LogsPassword(healthy), sender, starttls_server.message, [PASSWORD], logs, NoCapfd()
        )  # type: ignore[arg-type]
    assert PASSWORD not in str(info.value), "the failure message must not print the secret"


def test_builtin_exception_is_caught(suite: Suite, healthy: Transport, sender: Address, logs: Any) -> None:
    case = FailureCase(RaisesBuiltin(healthy), AuthenticationError, "wrong password")
    with pytest.raises(pytest.fail.Exception, match=r"got builtins\.RuntimeError: .*must raise only ccm-mail errors"):
        suite.test_failure_is_public_error(case, sender, [PASSWORD], logs, NoCapfd())  # type: ignore[arg-type]


def test_sending_twice_is_caught(
    suite: Suite, healthy: Transport, sender: Address, starttls_server: SmtpServer
) -> None:
    suite.test_send_delivers_exactly_once(healthy, sender, starttls_server.message, starttls_server.arrivals)
    with pytest.raises(AssertionError, match="exactly once"):
        suite.test_send_delivers_exactly_once(
            SendsTwice(healthy), sender, starttls_server.message, starttls_server.arrivals
        )


def test_a_transport_that_ignores_the_archive_flag_is_caught(
    suite: Suite, healthy: Transport, sender: Address, starttls_server: SmtpServer
) -> None:
    suite.test_archive_copy_is_the_message_sent(healthy, sender, starttls_server.message)
    with pytest.raises(AssertionError, match="Receipt.mime must hold the bytes"):
        suite.test_archive_copy_is_the_message_sent(ForgetsTheBytes(healthy), sender, starttls_server.message)
    with pytest.raises(AssertionError):
        suite.test_archive_copy_is_the_message_sent(ArchivesSomethingElse(healthy), sender, starttls_server.message)
