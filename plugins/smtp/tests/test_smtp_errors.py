"""Every failure an admin meets, produced by a real server over a real socket, mapped to the public
error types with German and English text, a hint, and the server's reply in details["smtp_reply"].

The line that matters most: a failure *before* the end-of-data dot left is NetworkError (nothing
sent, safe to retry); after it, UnknownOutcomeError (never resend)."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator
from email.utils import make_msgid
from pathlib import Path

import pytest
import trustme
from ccm_mail_hookspecs import (
    AccessDeniedError,
    Address,
    Attachment,
    AuthenticationError,
    CcmMailError,
    MailboxError,
    Message,
    MessageTooLargeError,
    NetworkError,
    RecipientError,
    T,
    ThrottledError,
    TransportError,
    UnknownOutcomeError,
)
from ccm_mail_smtp.errors import size_text, too_large_error
from smtp_server import Script, SmtpServer
from smtp_support import PASSWORD, SENDER, USERS, MakeTransport

from ccm_mail_core.testing import assert_no_secrets, exception_texts


def message(**fields: object) -> Message:
    fields.setdefault("to", [Address("kunde@example.com")])
    return Message(
        subject="Rechnung",
        text="Hallo",
        sender=Address(SENDER),
        message_id=make_msgid(domain="test.ccm-mail"),
        **fields,
    )  # type: ignore[arg-type]


def send_fails(transport_maker: MakeTransport, server: SmtpServer, **overrides: object) -> CcmMailError:
    with pytest.raises(CcmMailError) as info:
        transport_maker(server, **overrides).send(message())
    error = info.value
    assert error.message.de and error.message.en and error.message.de != error.message.en
    assert_no_secrets([PASSWORD], {"error": exception_texts(error)})
    return error


@pytest.mark.parametrize(
    ("reply", "expected", "needle"),
    [
        (
            "535 5.7.3 Authentication unsuccessful [AM0PR04CA0001.eurprd04.prod.outlook.com]",
            AuthenticationError,
            "SMTP.SendAsApp",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
            AuthenticationError,
            "SmtpClientAuthenticationDisabled",
        ),
        ("550 5.7.30 Basic authentication is not supported for Client Submission.", AuthenticationError, "xoauth2"),
        ("454 4.7.0 Temporary authentication failure", TransportError, "später"),
    ],
)
def test_auth_replies(
    starttls_server: SmtpServer, make_transport: MakeTransport, reply: str, expected: type[CcmMailError], needle: str
) -> None:
    starttls_server.script = Script(auth_reply=reply)
    error = send_fails(make_transport, starttls_server)
    assert type(error) is expected
    assert error.details["smtp_reply"] == reply
    assert error.details["stage"] == "auth"
    assert error.hint is not None and needle.lower() in (error.hint.de + error.hint.en).lower()
    assert reply in error.render("en"), "the server's reply is shown to the admin"
    assert not starttls_server.handler.received


def test_5_7_30_tells_to_use_xoauth2_or_graph(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(
        auth_reply="550 5.7.30 Basic authentication is not supported for Client Submission."
    )
    error = send_fails(make_transport, starttls_server)
    assert error.hint is not None and "Office 365" in error.hint.en and "xoauth2" in error.hint.de


def test_temporary_auth_failure_is_retryable(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(auth_reply="454 4.7.0 Temporary authentication failure")
    assert send_fails(make_transport, starttls_server).retryable


def test_530_5_7_57_not_authenticated(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(mail_reply="530 5.7.57 Client not authenticated to send mail.")
    error = send_fails(make_transport, starttls_server)
    assert isinstance(error, AuthenticationError)
    assert error.details["stage"] == "mail"
    assert "SMTP AUTH" in error.hint.en and "service principal" in error.hint.en  # type: ignore[union-attr]


def test_sender_refused(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(
        mail_reply="550 5.7.60 SMTP; Client does not have permissions to send as this sender"
    )
    error = send_fails(make_transport, starttls_server)
    assert isinstance(error, MailboxError) and SENDER in error.message.en


def test_recipient_refused_sends_to_nobody(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(
        refuse_rcpt={
            "niemand@example.com": "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
        }
    )
    with pytest.raises(RecipientError) as info:
        make_transport(starttls_server).send(
            message(to=[Address("kunde@example.com")], cc=[Address("niemand@example.com")])
        )
    assert info.value.details["recipients"] == ["niemand@example.com"]
    assert "5.1.10" in info.value.details["smtp_reply"]
    assert "niemand@example.com" in info.value.message.de
    assert not starttls_server.handler.received, "a partly refused message must not go to the others"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("552 5.3.4 Message size exceeds fixed maximum message size", MessageTooLargeError),
        ("554 5.2.252 SendAsDenied; rechnung@firma.example not allowed to send as chef@firma.example", MailboxError),
        ("550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.", AccessDeniedError),
        ("421 4.3.2 Service not available, closing transmission channel", ThrottledError),
        ("554 5.6.0 Corrupt message content", TransportError),
    ],
)
def test_refused_message(
    starttls_server: SmtpServer, make_transport: MakeTransport, reply: str, expected: type[CcmMailError]
) -> None:
    starttls_server.script = Script(data_reply=reply)
    error = send_fails(make_transport, starttls_server)
    assert type(error) is expected
    assert error.details["smtp_reply"] == reply and error.details["stage"] == "data"


def test_size_limit_checked_before_sending(server_tls: ssl.SSLContext, make_transport: MakeTransport) -> None:
    with SmtpServer("starttls", server_tls, users=USERS, data_size_limit=200) as server:
        error = send_fails(make_transport, server)
        assert isinstance(error, MessageTooLargeError) and error.details["limit"] == 200
        assert not server.handler.received
        size = error.details["size"]
        assert f"({size} Bytes)" in error.message.de and "(200 Bytes)" in error.message.de
        assert f"({size} bytes)" in error.message.en and "(200 bytes)" in error.message.en
        assert "0 KiB" not in error.message.de + error.message.en


def test_size_limit_in_megabytes(server_tls: ssl.SSLContext, make_transport: MakeTransport, tmp_path: Path) -> None:
    pdf = tmp_path / "Rechnung.pdf"
    pdf.write_bytes(os.urandom(1_200_000))  # base64 in the message: about 1.6 MB
    with SmtpServer("starttls", server_tls, users=USERS, data_size_limit=1_048_576) as server:
        with pytest.raises(MessageTooLargeError) as info:
            make_transport(server).send(message(attachments=[Attachment(pdf)]))
        assert not server.handler.received
    error = info.value
    shown = size_text(error.details["size"])
    assert re.fullmatch(r"1,\d MB", shown.de) and shown.en == shown.de.replace(",", ".")
    assert f"Nachricht ({shown.de}) größer als das Limit des Servers (1 MB)" in error.message.de
    assert f"Message ({shown.en}) exceeds the server's limit (1 MB)" in error.message.en


@pytest.mark.parametrize(
    ("size", "de", "en"),
    [
        (0, "0 Bytes", "0 bytes"),
        (200, "200 Bytes", "200 bytes"),
        (1023, "1023 Bytes", "1023 bytes"),
        (1024, "1 KB", "1 KB"),
        (1536, "1,5 KB", "1.5 KB"),
        (35 * 2**20, "35 MB", "35 MB"),
        (int(2.25 * 2**20), "2,2 MB", "2.2 MB"),
        (150 * 2**20, "150 MB", "150 MB"),
    ],
)
def test_size_text(size: int, de: str, en: str) -> None:
    assert size_text(size) == T(de, en)


def test_sizes_that_look_equal_are_shown_exactly() -> None:
    error = too_large_error(157_290_000, 157_286_400)  # both "150 MB" when rounded
    assert "157.290.000 Bytes" in error.message.de and "157.286.400 Bytes" in error.message.de
    assert "157,290,000 bytes" in error.message.en and "157,286,400 bytes" in error.message.en


def test_timeout_before_data_is_network_error(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(hang_at="mail", hang_seconds=2)
    error = send_fails(make_transport, starttls_server, timeout=0.5)
    assert isinstance(error, NetworkError) and error.retryable
    assert error.details == {"stage": "send", "reason": "timeout"}


def test_disconnect_before_data_is_network_error(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(drop_at="rcpt")
    error = send_fails(make_transport, starttls_server)
    assert isinstance(error, NetworkError)
    assert not starttls_server.handler.received


def test_disconnect_after_data_is_unknown_outcome(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(drop_at="data_end")
    error = send_fails(make_transport, starttls_server)
    assert isinstance(error, UnknownOutcomeError) and not isinstance(error, TransportError)
    assert error.details["reason"] == "disconnected"
    assert "Do not simply send again" in error.hint.en  # type: ignore[union-attr]
    assert len(starttls_server.handler.received) == 1, "the server did get the whole message"


def test_timeout_after_data_is_unknown_outcome(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    starttls_server.script = Script(hang_at="data_end", hang_seconds=2)
    error = send_fails(make_transport, starttls_server, timeout=0.5)
    assert isinstance(error, UnknownOutcomeError) and error.details["reason"] == "timeout"


def test_connection_refused(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    from smtp_server import free_port

    error = send_fails(make_transport, starttls_server, port=free_port())
    assert isinstance(error, NetworkError) and error.details["reason"] == "refused"
    assert "127.0.0.1" in error.message.en


def test_untrusted_certificate(
    starttls_server: SmtpServer, make_transport: MakeTransport, tmp_path: pytest.TempPathFactory
) -> None:
    other_ca = trustme.CA()
    path = f"{tmp_path}/other-ca.pem"
    other_ca.cert_pem.write_to_path(path)
    error = send_fails(make_transport, starttls_server, ca_bundle=path)
    assert isinstance(error, NetworkError) and error.details["reason"] == "certificate"
    assert "ca_bundle" in error.hint.en  # type: ignore[union-attr]


def test_certificate_for_another_host(ca: trustme.CA, make_transport: MakeTransport) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("smtp.other.example").configure_cert(ctx)  # trusted CA, wrong name
    with SmtpServer("starttls", ctx, users=USERS) as server:
        error = send_fails(make_transport, server)
        assert isinstance(error, NetworkError) and error.details["reason"] == "certificate"
        assert "127.0.0.1" in error.message.en and "mismatch" in error.message.en.lower()


def test_tls_against_a_starttls_port(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    error = send_fails(make_transport, starttls_server, security="tls")
    assert isinstance(error, NetworkError) and error.details["reason"] == "tls"
    assert "465" in error.hint.en  # type: ignore[union-attr]


def test_starttls_not_offered(make_transport: MakeTransport) -> None:
    with SmtpServer("none", None) as server:
        error = send_fails(make_transport, server, security="starttls", host="localhost")
        assert type(error) is TransportError and "STARTTLS" in error.message.en


@pytest.fixture
def hostile_server(server_tls: ssl.SSLContext) -> Iterator[SmtpServer]:
    with SmtpServer("starttls", server_tls, users=USERS) as server:
        yield server


def test_server_echoing_the_password_is_scrubbed(hostile_server: SmtpServer, make_transport: MakeTransport) -> None:
    hostile_server.script = Script(auth_reply=f"535 5.7.8 bad password {PASSWORD}")
    error = send_fails(make_transport, hostile_server)  # send_fails scans the error for the password
    assert "***" in error.details["smtp_reply"]


@pytest.mark.parametrize(
    "reply", ["534 5.7.9 Authentication mechanism is too weak", "534 Authentication mechanism is too weak"]
)
def test_mechanism_too_weak_is_not_a_wrong_password(
    starttls_server: SmtpServer, make_transport: MakeTransport, reply: str
) -> None:
    """RFC 4954 534 5.7.9: the server wants a stronger mechanism; the password was never judged."""
    starttls_server.script = Script(auth_reply=reply)
    error = send_fails(make_transport, starttls_server)
    assert type(error) is AuthenticationError and error.details["smtp_reply"] == reply
    assert "Passwort falsch" not in error.render("de") and "wrong user name or password" not in error.render("en")
    assert "zu schwach" in error.message.de and "too weak" in error.message.en
    assert error.hint is not None
    for hint in (error.hint.de, error.hint.en):
        assert "xoauth2" in hint and "SMTP.SendAsApp" in hint and "SMTP AUTH" in hint
