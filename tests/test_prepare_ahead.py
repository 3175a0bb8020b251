"""The transport prepares its request while the journal claim is fsynced, on a helper thread;
the message leaves only after the claim is on disk, and never when the claim fails."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ccm_mail_core.journal import Journal
from ccm_mail_core.outbox import Outbox
from ccm_mail_hookspecs import (AccountType, Field, Receipt, RecipientError, Status, T, Transport, hookimpl)

from host_support import BASE_CONFIG, INVOICE


def seen_by_another_process(journal: Path, message_id: str) -> str | None:
    """The row's status as a fresh connection reads it: only what was committed."""
    with closing(sqlite3.connect(journal)) as db:
        row = db.execute("SELECT status FROM messages WHERE message_id=?", (message_id,)).fetchone()
    return row[0] if row else None


class Ordered(Transport):
    """Records on which thread it prepares and sends, and what the journal says at the send."""

    def __init__(self) -> None:
        self.journal: Path | None = None
        self.fail: str | None = None
        self.prepared: list[str] = []  # thread names
        self.steps: list[tuple[str, str | None]] = []  # (thread name, committed status)

    def prepare(self, message):  # type: ignore[no-untyped-def]
        self.prepared.append(threading.current_thread().name)
        if self.fail == "refused":
            raise RecipientError(T("Empfänger abgelehnt", "recipient refused"))
        if self.fail == "bug":
            raise RuntimeError("kaputt")

        def step() -> Receipt:
            assert self.journal is not None
            self.steps.append((threading.current_thread().name,
                               seen_by_another_process(self.journal, message.message_id)))
            return Receipt(datetime.now(timezone.utc), {"n": str(len(self.steps))})
        return step

    def send(self, message):  # type: ignore[no-untyped-def]
        return self.prepare(message)()


class OrderedPlugin:
    def __init__(self) -> None:
        self.transport = Ordered()

    @hookimpl
    def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
        register(AccountType("ordered", T("Geordnet", "Ordered"),
                             (Field("sender", T("Absender", "Sender"), kind="email"),), lambda s: self.transport))


@pytest.fixture
def ordered(make_mailer):  # type: ignore[no-untyped-def]
    plugin = OrderedPlugin()
    mailer = make_mailer(BASE_CONFIG.replace("    type: pickup\n    folder: out\n", "    type: ordered\n"),
                         plugins={"ordered": plugin})
    plugin.transport.journal = mailer.journal.path
    return mailer, plugin.transport


def send(mailer, ref: str = "RE-1"):  # type: ignore[no-untyped-def]
    return mailer.send("invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr=ref), assume_yes=True)


def test_send_step_runs_only_after_the_claim_is_committed(ordered) -> None:
    mailer, transport = ordered
    for ref in ("RE-1", "RE-2"):
        assert send(mailer, ref).status is Status.SENT
    assert all(name.startswith("ccm-mail-prepare") for name in transport.prepared), transport.prepared
    caller = threading.current_thread().name
    assert transport.steps == [(caller, "sending"), (caller, "sending")]


def test_queued_message_is_claimed_before_its_step(ordered) -> None:
    mailer, transport = ordered
    failed_once = send(mailer)
    mailer.journal.transition(failed_once.journal_id, Status.FAILED, error="x")  # as if it had failed
    (again,) = Outbox(mailer).retry_failed()
    assert again.status is Status.SENT
    assert [status for _, status in transport.steps] == ["sending", "sending"]


@pytest.mark.parametrize("fail, text", [("refused", "Empfänger abgelehnt"), ("bug", "vor dem Senden")])
def test_failure_while_preparing_is_recorded_as_not_sent(ordered, fail: str, text: str) -> None:
    mailer, transport = ordered
    transport.fail = fail
    result = send(mailer)
    assert result.status is Status.FAILED
    assert transport.steps == []
    entry = mailer.journal.get(result.journal_id)
    assert entry.status is Status.FAILED and text in (entry.error or "")
    # failed means "not sent": a retry may send it, and then it goes out once
    transport.fail = None
    (again,) = Outbox(mailer).retry_failed()
    assert again.status is Status.SENT and len(transport.steps) == 1


def test_no_prepare_and_no_send_when_the_claim_fails(ordered) -> None:
    mailer, transport = ordered
    result = send(mailer)
    before = (list(transport.prepared), list(transport.steps))
    entry = mailer.journal.get(result.journal_id)
    # another process got there first: the row is no longer queued, so the claim must fail
    again = Outbox(mailer).send_entry(entry)
    assert again.status is Status.SENT and again.receipt is None
    assert (transport.prepared, transport.steps) == before


def test_journal_runs_before_commit_only_for_a_commit_that_happens(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    calls: list[str | None] = []

    def before_commit(message_id: str):  # type: ignore[no-untyped-def]
        # still inside the transaction: nobody else can see the row yet
        return lambda: calls.append(seen_by_another_process(journal.path, message_id))

    fields = dict(purpose="invoice", account="a", account_type="t", reference="RE-1", recipients=["k@example.de"],
                  subject="s")
    row = journal.create(message_id="<1@x>", claimed_by="me", before_commit=before_commit("<1@x>"), **fields)
    assert calls == [None]
    assert seen_by_another_process(journal.path, "<1@x>") == "sending"
    from ccm_mail_core.journal import DuplicateReference
    with pytest.raises(DuplicateReference):
        journal.create(message_id="<2@x>", claimed_by="me", before_commit=before_commit("<2@x>"), **fields)
    assert calls == [None]
    # compare-and-set that does not match: no commit of a claim, no callback
    assert not journal.transition(row, Status.SENDING, expect=(Status.QUEUED,), before_commit=before_commit("<1@x>"))
    assert calls == [None]
    journal.transition(row, Status.FAILED, error="x")
    assert journal.transition(row, Status.SENDING, expect=(Status.FAILED,), before_commit=before_commit("<1@x>"))
    assert calls == [None, "failed"]  # the callback ran before the claim was visible
    journal.close()
