"""Invoice mail as German businesses need it (issue 16), over HTTPS against the sandbox: send-as a
shared mailbox (and Exchange's refusal explained), Sent Items and receipts as Graph records them,
the archive copy as the exact MIME Microsoft received, credential expiry (config, certificate,
Graph's passwordCredentials) and the app's mailbox reach (RBAC for Applications)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from ccm_mail_core import Mailer
from ccm_mail_core.expiry import CredentialExpired
from ccm_mail_hookspecs import (
    AccessDeniedError,
    Address,
    Attachment,
    MailboxError,
    Message,
    MessageTooLargeError,
    Status,
)
from o365_support import AccountFactory, find_sent, make_certificate

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
INVOICE = {"extRechnungsNr": "RE-2026-00042", "Anrede": "Sehr geehrte Frau Weiß", "Betrag": "1.234,56 €"}


def message(account: Any, tag: str, **fields: Any) -> Message:
    fields.setdefault("to", [Address("kunde@example.com", "Kunde GmbH")])
    fields.setdefault("text", "Sehr geehrte Damen und Herren,\nanbei die Rechnung.")
    fields.setdefault("sender", Address(account.mailbox, "codicon GmbH"))
    return Message(subject=f"Rechnung {tag}", message_id=f"<{tag}-{account.client_id[:8]}@ccm-mail.test>", **fields)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- send-as, Sent Items, receipts ---------------------------------------------------------------
def test_send_as_a_shared_mailbox(make_account: AccountFactory) -> None:
    account = make_account()
    shared = f"rechnungen@{account.mailbox.split('@')[1]}"
    account.sandbox.mailbox(account.mailbox).send_as.add(shared)
    msg = message(account, "SA1", sender=Address(shared, "codicon Rechnungen"))
    receipt = account.transport().send(msg)
    sent = find_sent(account, msg.message_id)
    assert sent.mailbox == account.mailbox  # through the account's mailbox ...
    assert sent.message["from"]["emailAddress"] == {"address": shared, "name": "codicon Rechnungen"}  # ... as the shared one
    assert receipt.transport_ids["sent_as"] == shared


def test_send_as_denied_is_explained_and_nothing_is_sent(make_account: AccountFactory) -> None:
    account = make_account()
    msg = message(account, "SA2", sender=Address(f"chef@{account.mailbox.split('@')[1]}"))
    with pytest.raises(MailboxError) as err:
        account.transport().send(msg)
    assert err.value.details["code"] == "ErrorSendAsDenied" and err.value.sent is False
    assert "Senden als" in err.value.render("de") and "Add-RecipientPermission" in err.value.render("de")
    assert "Send As" in err.value.render("en") and "nothing was sent" in err.value.render("en")
    assert account.sent() == []


def test_receipts_and_sent_items_as_graph_records_them(make_account: AccountFactory) -> None:
    account = make_account()
    msg = message(account, "RC1", request_read_receipt=True, request_delivery_receipt=True, save_to_sent=False)
    receipt = account.transport().send(msg)
    sent = find_sent(account, msg.message_id)
    assert sent.route == "sendMail" and sent.saved_to_sent_items is False
    assert sent.message["isReadReceiptRequested"] is True and sent.message["isDeliveryReceiptRequested"] is True
    assert receipt.notes == ()
    # not in Sent Items: a lookup there could never find it, so it must not claim "not found"
    assert account.transport().lookup(msg).found.value == "unsupported"


def test_lost_answer_without_sent_items_copy_is_left_to_the_operator_not_resent(
    make_account: AccountFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """save_to_sent: false and the answer lost after Microsoft sent it: "not in Sent Items" proves
    nothing then, so the outbox must not send it again after the grace period."""
    from ccm_mail_core.outbox import Outbox

    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="drop_after_processing", count=1)
    path = host_config(account, tmp_path, monkeypatch, purpose={"account": "Rechnungsversand", "save_to_sent": False})
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["outbox"] = {"grace_seconds": 0}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with Mailer.from_config(path) as mailer:
        result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
        assert result.status is Status.UNKNOWN
        check = Outbox(mailer).check()
        assert check.operator == [result.journal_id] and check.requeued == []
        assert mailer.journal.get(result.journal_id).status is Status.UNKNOWN
    assert len(account.sent()) == 1  # sent once, and only once


# ---- the archive copy ----------------------------------------------------------------------------
def test_archived_message_goes_as_mime_and_the_copy_is_what_microsoft_received(make_account: AccountFactory) -> None:
    account = make_account()
    msg = message(
        account,
        "AR1",
        archive=True,
        request_read_receipt=True,
        request_delivery_receipt=True,
        attachments=[Attachment(DATA / "zugferd.pdf", content_type="application/pdf")],
    )
    receipt = account.transport().send(msg)
    sent = find_sent(account, msg.message_id)
    assert sent.route == "mime" and receipt.mime == sent.mime  # byte for byte what Graph took
    assert sent.message["isReadReceiptRequested"] is True  # Disposition-Notification-To, read by Exchange
    [pdf] = [a for a in sent.attachments if a.name == "zugferd.pdf"]
    assert sha256(pdf.data) == sha256((DATA / "zugferd.pdf").read_bytes())
    parsed = BytesParser(policy=policy.default).parsebytes(receipt.mime)
    assert [p.get_payload(decode=True) for p in parsed.iter_attachments()] == [(DATA / "zugferd.pdf").read_bytes()]
    assert any("Übermittlungsbestätigung" in n.de for n in receipt.notes)  # MIME cannot ask for one: said


def test_archived_message_too_large_for_one_mime_request_is_refused_before_sending(
    make_account: AccountFactory, tmp_path: Path
) -> None:
    account = make_account()
    big = tmp_path / "Scan.pdf"
    big.write_bytes(b"%PDF-1.7\n" + os.urandom(3_200_000))
    msg = message(account, "AR2", archive=True, attachments=[Attachment(big)])
    with pytest.raises(MessageTooLargeError, match="Archivkopie") as err:
        account.transport().send(msg)
    assert err.value.sent is False and account.sent() == []
    assert not [r for r in account.sandbox.requests if r.path.endswith("/sendMail") and account.mailbox in r.path]


def host_config(
    account: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, purpose: Any = "Rechnungsversand", **values: Any
) -> Path:
    monkeypatch.setenv("O365_TEST_SECRET", account.secret or "")
    base = {k: v for k, v in account.values.items() if k != "client_secret"}
    if account.secret:
        base["client_secret"] = {"env": "O365_TEST_SECRET"}
    base.update(values)
    config = {
        "accounts": {"Rechnungsversand": {"type": "office365", **{k: v for k, v in base.items() if v is not None}}},
        "purposes": {"invoice": purpose},
        "templates": {"invoice": {"subject": "Rg. #extRechnungsNr#", "body": "#Anrede#, #Betrag#"}},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "ccm-mail.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    path.chmod(0o600)
    return path


def test_host_archive_copy_equals_the_mime_the_sandbox_received(
    make_account: AccountFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account()
    path = host_config(
        account,
        tmp_path,
        monkeypatch,
        purpose={
            "account": "Rechnungsversand",
            "bcc": "archiv@codicon.de",
            "einvoice": "required",
            "archive": {"folder": str(tmp_path / "archiv"), "retention_years": 10},
        },
    )
    with Mailer.from_config(path) as mailer:
        result = mailer.send(
            "invoice", to=["kunde@example.de"], data=INVOICE, attachments=[DATA / "zugferd.pdf"], assume_yes=True
        )
        assert result.status is Status.SENT, result.error
        row = mailer.journal.get(result.journal_id)
    sent = find_sent(account, result.message_id)
    copy = Path(row.archive_file).read_bytes()
    assert copy == sent.mime and sha256(copy) == row.archive_sha256
    assert "archiv@codicon.de" in sent.recipients("bcc")  # the archive address as Bcc, kept in the copy
    assert b"Bcc: archiv@codicon.de" in copy


# ---- credential expiry ---------------------------------------------------------------------------
@pytest.mark.parametrize(("days", "state"), [(-1, "expired"), (6, "soon"), (200, "ok")])
def test_client_secret_expiry_from_config(
    make_account: AccountFactory, tmp_path: Path, monkeypatch, days: int, state: str
) -> None:
    account = make_account()
    when = (datetime.now(timezone.utc) + timedelta(days=days)).date()
    path = host_config(account, tmp_path, monkeypatch, client_secret_expires=when.isoformat())
    with Mailer.from_config(path) as mailer:
        if state == "expired":
            with pytest.raises(CredentialExpired) as err:
                mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
            assert "abgelaufen" in err.value.render("de") and "Neuer geheimer Clientschlüssel" in err.value.render("de")
            assert mailer.journal.query() == [] and account.sent() == []
            assert account.sandbox.token_request_count(account.client_id) == 0  # refused before anything left
            return
        result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert result.status is Status.SENT
    if state == "soon":
        [warning] = result.warnings
        assert f"in {days - 1} Tagen" in warning or f"in {days} Tagen" in warning
        assert "App-Registrierungen → App → Zertifikate & Geheimnisse → Neuer geheimer Clientschlüssel" in warning
    else:
        assert result.warnings == []


def test_config_check_and_accounts_test_warn(
    make_account: AccountFactory, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ccm_mail_core.cli import main

    account = make_account(permissions={"Mail.Send", "Application.Read.All"})
    end = datetime.now(timezone.utc) + timedelta(days=9)
    app = account.sandbox.app(account.tenant_id, account.client_id)
    app.password_credentials[0]["endDateTime"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    app.password_credentials.append({"displayName": "alt", "keyId": "k2", "hint": "zzz", "endDateTime": "2030-01-01T00:00:00Z"})
    path = host_config(account, tmp_path, monkeypatch, client_secret_expires="31.12.2099")
    assert main(["accounts", "test", "Rechnungsversand", "--config", str(path), "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    provider = data["expiry"]["provider"]
    assert provider["source"] == "provider" and provider["state"] == "soon"  # the secret in use, by its hint
    assert provider["not_after"].startswith(end.strftime("%Y-%m-%d"))
    assert "client_secret_expires: " + end.strftime("%Y-%m-%d") in out.err  # the config disagrees: said
    path = host_config(account, tmp_path, monkeypatch, client_secret_expires=end.strftime("%Y-%m-%d"))
    assert main(["config", "check", "--config", str(path)]) == 0
    assert "läuft am" in capsys.readouterr().out
    path = host_config(account, tmp_path, monkeypatch, client_secret_expires="2020-01-31")
    assert main(["config", "check", "--config", str(path), "--lang", "en"]) == 2
    assert "expired on 2020-01-31" in capsys.readouterr().out
    path = host_config(account, tmp_path, monkeypatch, client_secret_expires="31.02.2027")
    assert main(["config", "check", "--config", str(path)]) == 2
    assert "client_secret_expires: '31.02.2027' ist kein Datum" in capsys.readouterr().err


def test_graph_expiry_needs_application_read_all(make_account: AccountFactory) -> None:
    account = make_account()  # Mail.Send etc., no Application.Read.All
    assert account.transport().credential_expiry() is None  # 403: cannot tell, and does not guess


def test_certificate_about_to_expire_warns_and_an_expired_one_is_refused(
    make_account: AccountFactory, tmp_path: Path, monkeypatch
) -> None:
    for days, expired in ((10, False), (-1, True)):
        folder = tmp_path / f"cert{days}"
        folder.mkdir()
        public, pem, _ = make_certificate(folder, days=days)
        account = make_account(certificate_pem=public, secret=None, certificate=str(pem))
        path = host_config(account, folder, monkeypatch)
        with Mailer.from_config(path) as mailer:
            expiry = mailer.credential_expiry("Rechnungsversand")
            assert expiry is not None and expiry.source == "certificate"
            if expired:
                with pytest.raises(CredentialExpired, match="Zertifikat"):
                    mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
                assert account.sent() == []
            else:
                result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
                assert result.status is Status.SENT and "Zertifikat" in result.warnings[0]


# ---- the app's mailbox reach ------------------------------------------------------------------
def test_scope_step_says_a_tenant_wide_grant_reaches_every_mailbox(make_account: AccountFactory) -> None:
    account = make_account(permissions={"Mail.Send"})
    steps = {name: (ok, text) for name, ok, text in account.transport().check().steps}
    ok, text = steps["scope"]
    assert ok and "JEDES Postfach" in text.de and "EVERY mailbox" in text.en
    for needle in (
        "New-ManagementScope",
        f'New-ManagementRoleAssignment -App {account.client_id} -Role "Application Mail.Send" -CustomResourceScope',
        "Mail.Send entfernen",
    ):
        assert needle in text.de


def test_rbac_for_applications_scope_in_the_sandbox_and_the_honest_answer(make_account: AccountFactory) -> None:
    account = make_account(permissions=set())
    app = account.sandbox.app(account.tenant_id, account.client_id)
    app.rbac_roles, app.rbac_scope = {"Mail.Send"}, {account.mailbox}
    other = f"chef@{account.mailbox.split('@')[1]}"
    account.sandbox.add_mailbox(account.tenant_id, other)
    account.transport().send(message(account, "RB1"))  # inside the scope: sent
    with pytest.raises(AccessDeniedError) as err:  # outside it: 403 ErrorAccessDenied, nothing sent
        account.transport(mailbox=other).send(message(account, "RB2", sender=Address(other)))
    assert err.value.details["code"] == "ErrorAccessDenied"
    assert [s.internet_message_id for s in account.sandbox.sent_messages(other)] == []
    steps = {name: text for name, _, text in account.transport().check().steps}
    assert "nicht feststellen" in steps["scope"].de and "Test-ServicePrincipalAuthorization" in steps["scope"].de
