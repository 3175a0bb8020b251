"""Exactly once through the whole host: the core Mailer with the Office 365 plugin (found through
its entry point) against the sandbox. An ambiguous outcome is settled by looking the message up
in Sent Items when the app may read it; without that permission the operator decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ccm_mail_core import Mailer
from ccm_mail_core.outbox import Outbox
from ccm_mail_hookspecs import Status
from o365_support import AccountFactory

DATA = {
    "extRechnungsNr": "RE-7",
    "Anrede": "Hallo",
    "Rechnungsdatum": "1.12.2026",
    "Betrag": "7,00 €",
    "Faelligkeitsdatum": "15.12.2026",
}


def mailer_for(account: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mailer:
    monkeypatch.setenv("O365_TEST_SECRET", account.secret)
    values = {k: v for k, v in account.values.items() if k != "client_secret"}
    config = {
        "accounts": {"Rechnungsversand": {"type": "office365", **values, "client_secret": {"env": "O365_TEST_SECRET"}}},
        "purposes": {"invoice": "Rechnungsversand"},
        "templates": {
            "invoice": {"subject": "Rg. #extRechnungsNr#", "body": "#Anrede#, #Betrag#", "reference": "#extRechnungsNr#"}
        },
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "state_dir": str(tmp_path / "state"),
        "outbox": {"grace_seconds": 0},
    }
    path = tmp_path / "ccm-mail.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return Mailer.from_config(path)


def send(mailer: Mailer) -> Any:
    return mailer.send("invoice", to=["kunde@example.de"], data=DATA, assume_yes=True)


def test_answer_lost_after_microsoft_accepted_is_found_in_sent_items(make_account: AccountFactory, tmp_path, monkeypatch) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="drop_after_processing", count=1)
    with mailer_for(account, tmp_path, monkeypatch) as mailer:
        result = send(mailer)
        assert result.status is Status.UNKNOWN and result.exit_code == 4
        assert mailer.journal.get(result.journal_id).status is Status.UNKNOWN
        check = Outbox(mailer).check()
        assert check.sent == [result.journal_id]
        entry = mailer.journal.get(result.journal_id)
        assert entry.status is Status.SENT and entry.sent_at and entry.transport_ids["graph_message_id"]
    sent = account.sent()
    assert len(sent) == 1


def test_gateway_timeout_after_microsoft_accepted_is_settled_not_resent(
    make_account: AccountFactory, tmp_path, monkeypatch
) -> None:
    """A 504 without Retry-After after the sendMail reached Microsoft: unknown, never replayed
    (a replay would send the invoice twice); the outbox finds it in Sent Items."""
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="status_after_processing", status=504, count=1)
    with mailer_for(account, tmp_path, monkeypatch) as mailer:
        result = send(mailer)
        assert result.status is Status.UNKNOWN and result.exit_code == 4
        assert Outbox(mailer).check().sent == [result.journal_id]
        assert mailer.journal.get(result.journal_id).status is Status.SENT
    assert len(account.sent()) == 1


def test_request_lost_before_microsoft_got_it_is_resent_once(make_account: AccountFactory, tmp_path, monkeypatch) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="drop_before_response", count=1)
    with mailer_for(account, tmp_path, monkeypatch) as mailer:
        result = send(mailer)
        assert result.status is Status.UNKNOWN
        outbox = Outbox(mailer)
        assert outbox.check().requeued == [result.journal_id]
        (again,) = outbox.send_queued()
        assert again.status is Status.SENT
        assert Outbox(mailer).check().sent == []  # nothing left to settle
    assert len(account.sent()) == 1


@pytest.mark.parametrize("decision, expected", [("sent", 1), ("resend", 2), ("drop", 1)])
def test_without_read_permission_the_operator_decides(
    make_account: AccountFactory, tmp_path, monkeypatch, decision, expected
) -> None:
    account = make_account(permissions={"Mail.Send"})
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="drop_after_processing", count=1)
    with mailer_for(account, tmp_path, monkeypatch) as mailer:
        result = send(mailer)
        outbox = Outbox(mailer)
        assert outbox.check().operator == [result.journal_id]
        assert mailer.journal.get(result.journal_id).status is Status.UNKNOWN
        assert len(account.sent()) == 1  # it did arrive; only a person can know that here
        outbox.resolve(result.journal_id, decision)
        final = mailer.journal.get(result.journal_id).status
        assert final is {"sent": Status.SENT, "resend": Status.SENT, "drop": Status.CANCELLED}[decision]
    # "resend" is the operator's explicit choice after checking the mailbox: it is honoured
    assert len(account.sent()) == expected
