"""Invoice mail as German businesses need it (issue 16), against a real aiosmtpd server: send-as
(header From vs the envelope), read and delivery receipts (DSN when the server offers it, else
said), the archive copy as the exact DATA the server got, a ZUGFeRD PDF byte for byte, and the
password's expiry."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from ccm_mail_hookspecs import Address, Attachment, Message
from smtp_server import Script, SmtpServer
from smtp_support import PASSWORD, SENDER, MakeTransport

from ccm_mail_core import Mailer
from ccm_mail_core.expiry import CredentialExpired

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"


def invoice(tag: str, **fields: object) -> Message:
    fields.setdefault("to", [Address("kunde@example.com", "Kunde")])
    fields.setdefault("sender", Address(SENDER, "Firma GmbH"))
    return Message(
        subject=f"Rechnung {tag}", text="Guten Tag,\nanbei die Rechnung.", message_id=f"<{tag}@firma.example>", **fields
    )  # type: ignore[arg-type]


def test_send_as_puts_the_shared_mailbox_in_from_and_the_account_on_the_envelope(
    starttls_server: SmtpServer, make_transport: MakeTransport
) -> None:
    receipt = make_transport(starttls_server).send(
        invoice("SA1", sender=Address("rechnungen@firma.example", "Rechnungen"))
    )
    got = starttls_server.find("<SA1@firma.example>")
    assert got.mail_from == SENDER  # bounces come back to the mailbox that logged in
    assert got.message["From"].addresses[0].addr_spec == "rechnungen@firma.example"
    assert "Sender" not in got.message  # send-as, not "on behalf of"
    assert receipt.transport_ids["sent_as"] == "rechnungen@firma.example"


def test_receipts_with_dsn(server_tls, make_transport: MakeTransport) -> None:
    with SmtpServer("starttls", server_tls, users={SENDER: PASSWORD}) as server:
        server.script = Script(dsn=True)
        receipt = make_transport(server).send(
            invoice("RC1", request_read_receipt=True, request_delivery_receipt=True, cc=[Address("chef@example.com")])
        )
        got = server.find("<RC1@firma.example>")
    assert got.notify == {"kunde@example.com": "SUCCESS,FAILURE", "chef@example.com": "SUCCESS,FAILURE"}
    assert got.ret == "HDRS" and receipt.notes == ()
    assert str(got.message["Disposition-Notification-To"]) == f"<{SENDER}>"


def test_no_dsn_offered_is_said_and_the_mail_still_goes(
    starttls_server: SmtpServer, make_transport: MakeTransport
) -> None:
    receipt = make_transport(starttls_server).send(invoice("RC2", request_delivery_receipt=True))
    got = starttls_server.find("<RC2@firma.example>")
    assert got.notify == {} and not any(o.upper().startswith("RET=") for o in got.mail_options)
    [note] = receipt.notes
    assert "kein DSN" in note.de and "does not offer DSN" in note.en


def test_archive_bytes_are_the_data_the_server_got_and_the_pdf_is_byte_exact(
    starttls_server: SmtpServer, make_transport: MakeTransport
) -> None:
    pdf = DATA / "zugferd.pdf"
    receipt = make_transport(starttls_server).send(invoice("AR1", archive=True, attachments=[Attachment(pdf)]))
    got = starttls_server.find("<AR1@firma.example>")
    assert receipt.mime is not None
    assert hashlib.sha256(receipt.mime).hexdigest() == hashlib.sha256(got.data).hexdigest()
    [part] = list(got.message.iter_attachments())
    assert hashlib.sha256(part.get_payload(decode=True)).hexdigest() == hashlib.sha256(pdf.read_bytes()).hexdigest()


def write_config(tmp_path: Path, server: SmtpServer, ca_file: Path, **account: object) -> Path:
    config = {
        "accounts": {
            "Versand": {
                "type": "smtp",
                "host": server.host,
                "port": server.port,
                "security": server.mode,
                "sender": SENDER,
                "auth": "password",
                "password": {"env": "SMTP_TEST_PASSWORD"},
                "ca_bundle": str(ca_file),
                "timeout": 5,
                **account,
            }
        },
        "purposes": {
            "invoice": {
                "account": "Versand",
                "from": "rechnungen@firma.example",
                "archive": {"folder": str(tmp_path / "archiv")},
            }
        },
        "templates": {"invoice": {"subject": "Rg. #extRechnungsNr#", "body": "Anbei #extRechnungsNr#."}},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
    }
    path = tmp_path / "ccm-mail.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize("days", [-2, 5])
def test_password_expiry_through_the_host(
    tmp_path: Path, starttls_server: SmtpServer, ca_file: Path, monkeypatch: pytest.MonkeyPatch, days: int
) -> None:
    monkeypatch.setenv("SMTP_TEST_PASSWORD", PASSWORD)
    when = (datetime.now(timezone.utc) + timedelta(days=days)).date().isoformat()
    with Mailer.from_config(write_config(tmp_path, starttls_server, ca_file, password_expires=when)) as mailer:
        if days < 0:
            with pytest.raises(CredentialExpired, match="SMTP-Passwort"):
                mailer.send("invoice", to=["kunde@example.com"], data={"extRechnungsNr": "RE-1"}, assume_yes=True)
            assert starttls_server.handler.received == [] and mailer.journal.query() == []
            return
        result = mailer.send("invoice", to=["kunde@example.com"], data={"extRechnungsNr": "RE-1"}, assume_yes=True)
        row = mailer.journal.get(result.journal_id)
    assert result.status.value == "sent" and "SMTP-Passwort" in result.warnings[0]
    [got] = starttls_server.handler.received
    assert got.mail_from == SENDER and got.message["From"].addresses[0].addr_spec == "rechnungen@firma.example"
    assert Path(row.archive_file).read_bytes() == got.data  # the archive copy is the DATA, byte for byte
