"""What an SMTP server receives from the transport, beyond the conformance suite: the envelope,
SMTPUTF8, implicit TLS, plain localhost relays, AUTH LOGIN, dot-stuffing, the receipt and check()."""

from __future__ import annotations

import email
import ssl
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.utils import make_msgid
from pathlib import Path

import pytest
from ccm_mail_hookspecs import Address, Message, TransportError
from smtp_server import SmtpServer
from smtp_support import SENDER, USERS, MakeTransport


def message(**fields: object) -> Message:
    fields.setdefault("to", [Address("kunde@example.com", "Kunde")])
    fields.setdefault("subject", "Rechnung 4711")
    fields.setdefault("text", "Hallo")
    return Message(sender=Address(SENDER, "Firma"), message_id=make_msgid(domain="test.ccm-mail"), **fields)  # type: ignore[arg-type]


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    with SmtpServer("none", None) as server:
        yield server


@pytest.fixture
def no_utf8_server(server_tls: ssl.SSLContext) -> Iterator[SmtpServer]:
    with SmtpServer("starttls", server_tls, users=USERS, smtputf8=False) as server:
        yield server


def test_envelope_sender_recipients_and_size(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    msg = message(cc=[Address("cc@example.com")], bcc=[Address("bcc@example.com")])
    make_transport(starttls_server).send(msg)
    got = starttls_server.find(msg.message_id)
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["kunde@example.com", "cc@example.com", "bcc@example.com"]
    assert any(o.startswith("SIZE=") for o in got.mail_options)
    assert "SMTPUTF8" not in got.mail_options, "ASCII addresses must not ask for SMTPUTF8"
    assert got.auth == SENDER, "the server saw the AUTH login"
    assert b"bcc@example.com" not in got.data


def test_receipt_has_reply_and_queue_id(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    msg = message()
    receipt = make_transport(starttls_server).send(msg)
    assert receipt.transport_ids["smtp_reply"] == "250 2.0.0 Ok: queued as 4XyZ42"
    assert receipt.transport_ids["queue_id"] == "4XyZ42"
    assert receipt.transport_ids["message_id"] == msg.message_id


def test_message_without_id_gets_one(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    msg = message()
    msg.message_id = ""
    receipt = make_transport(starttls_server).send(msg)
    assert starttls_server.find(receipt.transport_ids["message_id"])


def test_smtputf8_for_non_ascii_addresses(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    to = Address("jürgen@müller.example", "Jürgen Müller")
    msg = message(to=[to], subject="Grüße €")
    make_transport(starttls_server).send(msg)
    got = starttls_server.find(msg.message_id)
    assert "SMTPUTF8" in got.mail_options
    assert got.rcpt_tos == ["jürgen@müller.example"]
    parsed = got.message
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [(to.name, to.address)]
    assert parsed["Subject"] == "Grüße €"


def test_non_ascii_address_without_smtputf8_is_refused_before_sending(
    no_utf8_server: SmtpServer, make_transport: MakeTransport
) -> None:
    msg = message(to=[Address("jürgen@müller.example")])
    with pytest.raises(TransportError) as info:
        make_transport(no_utf8_server).send(msg)
    assert "SMTPUTF8" in info.value.message.de and "SMTPUTF8" in info.value.message.en
    assert "jürgen@müller.example" in info.value.message.en
    assert not no_utf8_server.handler.received


def test_an_idn_domain_goes_as_its_a_label_without_smtputf8(
    no_utf8_server: SmtpServer, make_transport: MakeTransport
) -> None:
    """Only the domain has umlauts: the envelope and the header carry xn--mller-kva.example and
    the server need not offer SMTPUTF8 (it was refused as 'needs SMTPUTF8')."""
    msg = message(to=[Address("h@müller.example", "Herr Müller")])
    make_transport(no_utf8_server).send(msg)
    got = no_utf8_server.find(msg.message_id)
    assert got.rcpt_tos == ["h@xn--mller-kva.example"] and "SMTPUTF8" not in got.mail_options
    assert [(a.display_name, a.addr_spec) for a in got.message["To"].addresses] == [
        ("Herr Müller", "h@xn--mller-kva.example")
    ]


def test_long_umlaut_display_name_and_subject_survive(
    starttls_server: SmtpServer, make_transport: MakeTransport
) -> None:
    # CPython's own folder drops or adds spaces in such headers; build_mime encodes them itself
    name = "Müller-Lüdenscheidt Größe ß € Rechnungsabteilung Süd – Öffentliche Äußerungen"
    subject = "Rechnung für Jürgen Größe – ä ö ü ß € Ä Ö Ü 100 € " * 3
    msg = message(to=[Address("kunde@example.com", name)], subject=subject.strip())
    make_transport(starttls_server).send(msg)
    got = starttls_server.find(msg.message_id)
    parsed = got.message
    assert parsed["Subject"] == subject.strip()
    headers = got.data.split(b"\r\n\r\n", 1)[0].decode("ascii")  # 7-bit clean without SMTPUTF8
    assert all(len(line) <= 78 for line in headers.split("\r\n") if not line.startswith("To:"))
    raw_to = email.message_from_bytes(got.data)["To"]  # compat32: the raw header text
    # decoded by the RFC 2047 reference decoder (the new email parser mangles long phrases)
    assert str(make_header(decode_header(raw_to.split(" <")[0]))) == name


def test_dot_stuffing_and_line_endings(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    text = ".\n..zwei Punkte\nnormal\n.\nEnde"
    msg = message(text=text)
    make_transport(starttls_server).send(msg)
    body = starttls_server.message(msg.message_id).get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n").rstrip("\n") == text


def test_implicit_tls(tls_server: SmtpServer, make_transport: MakeTransport) -> None:
    msg = message()
    transport = make_transport(tls_server)
    transport.send(msg)
    assert tls_server.find(msg.message_id).auth == SENDER
    result = transport.check()
    assert result.ok and [s[0] for s in result.steps] == ["connect", "ehlo", "auth", "quit"]


def test_plain_relay_on_localhost(plain_server: SmtpServer, make_transport: MakeTransport) -> None:
    msg = message()
    make_transport(plain_server, auth="none", security="none").send(msg)
    assert plain_server.find(msg.message_id).auth is None


def test_auth_login_when_plain_is_not_offered(server_tls: ssl.SSLContext, make_transport: MakeTransport) -> None:
    with SmtpServer("starttls", server_tls, users=USERS, auth_exclude_mechanism=["PLAIN"]) as server:
        msg = message()
        make_transport(server).send(msg)
        assert server.find(msg.message_id).auth == SENDER


def test_check_reports_each_step(starttls_server: SmtpServer, make_transport: MakeTransport) -> None:
    result = make_transport(starttls_server).check()
    assert result.ok
    assert [s[0] for s in result.steps] == ["connect", "ehlo", "starttls", "auth", "quit"]


def test_check_with_wrong_password_names_the_auth_step(
    starttls_server: SmtpServer, make_transport: MakeTransport
) -> None:
    result = make_transport(starttls_server, password="falsch").check()
    assert not result.ok
    name, ok, text = result.steps[-1]
    assert (name, ok) == ("auth", False)
    assert "535 5.7.3" in text.de and "535 5.7.3" in text.en
    assert not starttls_server.handler.received


def test_check_unreachable(make_transport: MakeTransport, starttls_server: SmtpServer) -> None:
    from smtp_server import free_port

    result = make_transport(starttls_server, port=free_port()).check()
    assert not result.ok and result.steps[0][0] == "connect" and not result.steps[0][1]


def test_attachment_checked_before_connecting(
    make_transport: MakeTransport, starttls_server: SmtpServer, tmp_path: Path
) -> None:
    from ccm_mail_hookspecs import Attachment, AttachmentError

    msg = message(attachments=[Attachment(tmp_path / "fehlt.pdf")])
    with pytest.raises(AttachmentError):
        make_transport(starttls_server).send(msg)
    assert not starttls_server.handler.received
