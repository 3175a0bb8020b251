"""Outbox state transitions: every path from queued to a final state, never a blind resend."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from ccm_mail_core.outbox import Outbox
from ccm_mail_hookspecs import (
    Found,
    Lookup,
    Receipt,
    Status,
    T,
    ThrottledError,
    Transport,
    UnknownOutcomeError,
    hookimpl,
)
from ccm_mail_hookspecs import AccountType, Field

from host_support import BASE_CONFIG, INVOICE

#: every outbox behaviour on both journal engines
pytestmark = pytest.mark.usefixtures("journal_engine")


class Scripted(Transport):
    """A transport whose answers the test scripts; it keeps what it 'delivered' like a provider."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        self.script: list[str] = []
        self.delivered: list[str] = []
        self.lookup_answer: Found | None = None

    def send(self, message):  # type: ignore[no-untyped-def]
        step = self.script.pop(0) if self.script else "ok"
        if step == "throttled":
            raise ThrottledError(T("gedrosselt", "throttled"))
        if step == "lost-after-delivery":  # provider got it, the answer was lost
            self.delivered.append(message.message_id)
            raise UnknownOutcomeError(T("Zeitüberschreitung", "timeout"))
        if step == "lost-before-delivery":
            raise UnknownOutcomeError(T("Zeitüberschreitung", "timeout"))
        self.delivered.append(message.message_id)
        return Receipt(datetime.now(timezone.utc), {"n": str(len(self.delivered))})

    def lookup(self, message):  # type: ignore[no-untyped-def]
        if self.lookup_answer is Found.UNSUPPORTED:
            return Lookup(Found.UNSUPPORTED)
        if message.message_id in self.delivered:
            return Lookup(Found.SENT, datetime.now(timezone.utc), {"found": "yes"})
        return Lookup(Found.NOT_FOUND)


class ScriptedPlugin:
    def __init__(self) -> None:
        self.transport: Scripted | None = None

    @hookimpl
    def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
        def create(settings):  # type: ignore[no-untyped-def]
            self.transport = Scripted(settings)
            return self.transport

        register(
            AccountType(
                "scripted", T("Skript", "Scripted"), (Field("sender", T("Absender", "Sender"), kind="email"),), create
            )
        )


CONFIG = (
    BASE_CONFIG.replace("    type: pickup\n    folder: out\n", "    type: scripted\n") + "outbox:\n  grace_seconds: 0\n"
)


@pytest.fixture
def scripted(make_mailer):  # type: ignore[no-untyped-def]
    plugin = ScriptedPlugin()
    mailer = make_mailer(CONFIG, plugins={"scripted": plugin})
    transport = mailer.transport("Rechnungsversand")
    return mailer, transport


def send(mailer, ref: str = "RE-1"):  # type: ignore[no-untyped-def]
    return mailer.send("invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr=ref), assume_yes=True)


def statuses(mailer, row: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["status"] for e in mailer.journal.events(row)]


def test_failed_then_retried(scripted) -> None:
    mailer, transport = scripted
    transport.script = ["throttled"]
    result = send(mailer)
    assert result.status is Status.FAILED
    (again,) = Outbox(mailer).retry_failed()
    assert again.status is Status.SENT
    assert statuses(mailer, result.journal_id) == ["queued", "sending", "failed", "queued", "sending", "sent"]
    assert mailer.journal.get(result.journal_id).attempts == 2
    assert transport.delivered == [result.message_id]


def test_a_failed_invoice_sent_again_by_a_new_call_is_never_retried(scripted) -> None:
    """AbSys gets exit 1, fixes the cause and sends the invoice again: the new call sends it, the
    failed entry is closed, and ``outbox --retry`` does not send it a second time."""
    mailer, transport = scripted
    transport.script = ["throttled"]
    failed = send(mailer)
    assert failed.status is Status.FAILED
    again = send(mailer)
    assert again.status is Status.SENT and again.journal_id != failed.journal_id
    assert Outbox(mailer).retry_failed() == []
    assert transport.delivered == [again.message_id]  # it had delivered the first one too
    closed = mailer.journal.get(failed.journal_id)
    assert closed.status is Status.CANCELLED and closed.error_kind == "superseded"
    assert f"Eintrag {again.journal_id}" in (closed.error or "")
    assert failed.journal_id not in [e.id for e in Outbox(mailer).entries()]  # no stale failure in the outbox


def test_a_retry_checks_the_reference_in_the_same_step(scripted) -> None:
    """A failed row whose reference another row took while it was still on its way (a deliberate
    resend): the retry finds that row and closes this one instead of sending."""
    mailer, transport = scripted
    transport.script = ["throttled"]
    first = send(mailer)
    assert first.status is Status.FAILED
    mailer.journal.transition(first.journal_id, Status.SENDING, expect=(Status.FAILED,))  # on its way again
    resent = mailer.send(
        "invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr="RE-1"), assume_yes=True, resend=True
    )
    assert resent.status is Status.SENT
    mailer.journal.transition(first.journal_id, Status.FAILED, expect=(Status.SENDING,))  # and then refused
    assert Outbox(mailer).retry_failed() == []
    assert transport.delivered == [resent.message_id]
    assert mailer.journal.get(first.journal_id).error_kind == "superseded"


def test_a_retry_waits_while_a_later_send_of_the_invoice_is_unknown(scripted) -> None:
    """The later send may or may not have gone out: the failed entry is neither sent nor closed
    (if that one turns out not sent and is dropped, this one is still there to be retried)."""
    mailer, transport = scripted
    transport.script = ["throttled", "lost-before-delivery"]
    first = send(mailer)
    later = mailer.send(
        "invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr="RE-1"), assume_yes=True, resend=True
    )
    assert (first.status, later.status) == (Status.FAILED, Status.UNKNOWN)
    assert Outbox(mailer).retry_failed() == []
    assert mailer.journal.get(first.journal_id).status is Status.FAILED and transport.delivered == []


def test_unknown_outcome_found_at_provider_is_recorded_as_sent_not_resent(scripted) -> None:
    mailer, transport = scripted
    transport.script = ["lost-after-delivery"]
    result = send(mailer)
    assert result.status is Status.UNKNOWN
    check = Outbox(mailer).check()
    assert check.sent == [result.journal_id]
    entry = mailer.journal.get(result.journal_id)
    assert entry.status is Status.SENT and entry.sent_at and entry.transport_ids == {"found": "yes"}
    assert transport.delivered == [result.message_id]  # exactly once


def test_unknown_outcome_not_found_after_grace_is_resent_once(scripted) -> None:
    mailer, transport = scripted
    transport.script = ["lost-before-delivery"]
    result = send(mailer)
    outbox = Outbox(mailer)
    assert outbox.check(grace_seconds=3600).waiting == [result.journal_id]  # too early to tell
    assert mailer.journal.get(result.journal_id).status is Status.UNKNOWN
    assert outbox.check(grace_seconds=0).requeued == [result.journal_id]
    (sent,) = outbox.send_queued()
    assert sent.status is Status.SENT
    assert transport.delivered == [result.message_id]
    assert statuses(mailer, result.journal_id) == ["queued", "sending", "unknown", "queued", "sending", "sent"]


@pytest.mark.parametrize(
    "action, final, delivered", [("sent", "sent", 0), ("resend", "sent", 1), ("drop", "cancelled", 0)]
)
def test_without_lookup_the_operator_decides(scripted, action, final, delivered) -> None:
    mailer, transport = scripted
    transport.lookup_answer = Found.UNSUPPORTED
    transport.script = ["lost-before-delivery"]
    result = send(mailer)
    outbox = Outbox(mailer)
    assert outbox.check().operator == [result.journal_id]
    assert mailer.journal.get(result.journal_id).status is Status.UNKNOWN  # nothing happens by itself
    entry = outbox.resolve(result.journal_id, action)
    assert entry.status.value == final
    assert len(transport.delivered) == delivered
    if action == "sent":
        assert entry.sent_at is not None


def test_resolve_refuses_a_sent_message(scripted) -> None:
    from ccm_mail_hookspecs import ConfigError

    mailer, _ = scripted
    result = send(mailer)
    with pytest.raises(ConfigError, match="'resend'"):
        Outbox(mailer).resolve(result.journal_id, "resend")


def test_only_one_claim_wins(scripted) -> None:
    mailer, _ = scripted
    row = mailer.journal.create(
        message_id="<x@y>",
        purpose="invoice",
        account="Rechnungsversand",
        account_type="scripted",
        reference="R",
        recipients=["a@b.de"],
        subject="s",
    )
    wins = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        wins.append(mailer.journal.transition(row, Status.SENDING, expect=(Status.QUEUED,), owner="me"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_sending_row_of_a_dead_process_is_settled(scripted) -> None:
    mailer, transport = scripted
    row = mailer.journal.create(
        message_id="<dead@codicon.de>",
        purpose="invoice",
        account="Rechnungsversand",
        account_type="scripted",
        reference="R-dead",
        recipients=["a@b.de"],
        subject="s",
        payload={
            "subject": "s",
            "sender": ["rechnung@codicon.de", ""],
            "to": [["a@b.de", ""]],
            "cc": [],
            "bcc": [],
            "reply_to": [],
            "text": "t",
            "html": None,
            "headers": {},
            "message_id": "<dead@codicon.de>",
            "attachments": [],
        },
    )
    shared = mailer.journal.shared
    mailer.journal.transition(row, Status.SENDING, owner="nohost-really:1", expect=(Status.QUEUED,))
    # another host's process: cannot be checked (SQLite), or holds a running lease (PostgreSQL): left alone
    assert Outbox(mailer).check().busy == [row]
    from ccm_mail_core import owner

    me = owner.current()
    # this very process is alive: its row is left alone
    mailer.journal.transition(row, Status.SENDING, owner=me.format())
    assert Outbox(mailer).check().busy == [row]
    # a process started at another time counts as gone, even if its number is in use now (a reused
    # pid, or one from before the last reboot); on PostgreSQL: a process whose lease ran out
    gone = owner.Owner(me.host, me.pid, me.started - 3600).format()
    mailer.journal.transition(row, Status.SENDING, owner=gone)
    if shared:
        with mailer.journal._tx() as db:
            db.execute("UPDATE owners SET lease_until = now() - interval '1 second' WHERE owner=?", (gone,))
    transport.delivered.append("<dead@codicon.de>")  # it had reached the provider before the crash
    assert Outbox(mailer).check().sent == [row]
    assert statuses(mailer, row)[-2:] == ["unknown", "sent"]


@pytest.mark.parametrize("journal_engine", ["sqlite"], indirect=True)  # looks at processes, no journal
def test_dead_process_is_recognised_without_signalling_anything() -> None:
    from ccm_mail_core import owner

    me = owner.current()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        child = owner.Owner.parse(f"{me.host}:{proc.pid}:{__import__('psutil').Process(proc.pid).create_time():.2f}")
        assert child is not None and child.alive() and proc.poll() is None  # looked at, not signalled
    finally:
        proc.kill()
        proc.wait()
    assert owner.alive(me.format()) and not child.alive() and not owner.alive(None)
    # a journal written before 1.2 (host:boot:pid): the process id decides
    assert owner.alive(f"{me.host}:0ldb00t0:{me.pid}") and not owner.alive(f"{me.host}:0ldb00t0:{proc.pid}")


def test_daily_recipient_limit_fails_single_send_without_sending(make_mailer) -> None:
    plugin = ScriptedPlugin()
    cfg = CONFIG.replace(
        "    from_name: codicon GmbH\n", "    from_name: codicon GmbH\n    limits:\n      recipients_per_day: 2\n"
    )
    mailer = make_mailer(cfg, plugins={"scripted": plugin})
    assert send(mailer, "RE-1").status is Status.SENT
    second = mailer.send(
        "invoice", to=["a@example.de", "b@example.de"], data=dict(INVOICE, extRechnungsNr="RE-2"), assume_yes=True
    )
    assert second.status is Status.FAILED and "Tageslimit" in second.error.render("de")
    assert plugin.transport.delivered == [mailer.journal.query(reference="RE-1")[0].message_id]
