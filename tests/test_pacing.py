"""Pacing per mailbox with the clock injected (field defect 21): the day's recipient budget rolls
over with time, in a Mailer that stays open past midnight as ``ccm-mail serve`` will."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from ccm_mail_core.journal import now
from ccm_mail_core.pacing import DAY, DailyLimitReached, Limits, Pacer
from ccm_mail_hookspecs import Status

from host_support import BASE_CONFIG, INVOICE


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_daily_budget_rolls_over_after_a_day() -> None:
    clock = Clock()
    pacer = Pacer("R", Limits(recipients_per_day=3, messages=100), clock=clock)
    for _ in range(3):
        pacer.release(pacer.acquire(1), sent=True)
    with pytest.raises(DailyLimitReached):
        pacer.acquire(1)
    clock.now += DAY - 1
    with pytest.raises(DailyLimitReached):  # a rolling day, as Exchange counts
        pacer.acquire(1)
    clock.now += 2
    pacer.release(pacer.acquire(3), sent=True)
    assert pacer.recipients_today() == 3


def test_sends_from_the_journal_count_until_a_day_after_them() -> None:
    clock = Clock()
    pacer = Pacer(
        "R", Limits(recipients_per_day=10), sent=[(clock.now - DAY + 60, 8), (clock.now - 30, 1)], clock=clock
    )
    with pytest.raises(DailyLimitReached):
        pacer.acquire(2)
    clock.now += 61  # the 8 recipients of almost a day ago drop out of the window
    pacer.release(pacer.acquire(2), sent=True)
    assert pacer.recipients_today() == 3


def test_a_send_that_did_not_leave_gives_its_recipients_back() -> None:
    clock = Clock()
    pacer = Pacer("R", Limits(recipients_per_day=2), clock=clock)
    pacer.release(pacer.acquire(2), sent=False, recipients=2)
    pacer.release(pacer.acquire(2), sent=True, recipients=2)
    assert pacer.recipients_today() == 2


def test_message_window_with_an_injected_clock() -> None:
    clock = Clock()
    pacer = Pacer("R", Limits(messages=2, per_seconds=60, concurrency=4), clock=clock)
    for _ in range(2):
        pacer.release(pacer.acquire(), sent=True)
    admitted = threading.Event()
    worker = threading.Thread(target=lambda: (pacer.acquire(), admitted.set()), daemon=True)
    worker.start()
    assert not admitted.wait(0.2)  # the window is full
    clock.now += 61
    with pacer._cond:
        pacer._cond.notify_all()
    assert admitted.wait(5)


def test_mailer_open_past_midnight_counts_today_only(make_mailer) -> None:
    """A Mailer's pacer starts from the journal's last day and forgets each send a day after it."""
    mailer = make_mailer(
        BASE_CONFIG.replace(
            "    from_name: codicon GmbH\n", "    from_name: codicon GmbH\n    limits:\n      recipients_per_day: 2\n"
        )
    )
    old = mailer.journal.create(
        message_id="<old@codicon.de>",
        purpose="invoice",
        account="Rechnungsversand",
        account_type="pickup",
        reference="RE-0",
        recipients=["a@example.de", "b@example.de"],
        subject="s",
    )
    mailer.journal.transition(old, Status.SENT, sent_at=now() - timedelta(hours=23))
    with mailer.journal._tx() as db:  # sent 23 hours ago
        db.execute("UPDATE messages SET updated_at=? WHERE id=?", ((now() - timedelta(hours=23)).isoformat(), old))
    failed = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert failed.status is Status.FAILED and "Tageslimit" in failed.error.render("de")
    pacer = mailer.pacer("Rechnungsversand")
    pacer._clock = lambda: now().timestamp() + 3601  # an hour later: that send is more than a day old
    sent = mailer.send("invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr="RE-2"), assume_yes=True)
    assert sent.status is Status.SENT
