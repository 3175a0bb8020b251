"""The outbox: what is queued, sending, unknown or failed, and how each gets to a final state
without ever sending a message twice.

After an ambiguous outcome (or a process that died mid-send) the transport is asked whether the
provider has the message, by its stable Message-ID, before anything is resent: found → sent;
not found after the grace period → resent; the transport cannot tell → the operator decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from ccm_mail_hookspecs import CcmMailError, ConfigError, Found, Receipt, SendContext, Status, T

from . import pipeline
from .journal import Entry, message_from_json, now

if TYPE_CHECKING:
    from .mailer import Mailer
    from .results import SendResult

log = structlog.get_logger("ccm_mail.outbox")

OPEN = ("queued", "sending", "unknown", "failed")
#: what ``outbox resolve`` may do with a row in which state
ACTIONS = {
    "sent": (Status.UNKNOWN, Status.SENDING),
    "resend": (Status.UNKNOWN, Status.FAILED, Status.SENDING),
    "drop": (Status.UNKNOWN, Status.FAILED, Status.QUEUED, Status.SENDING),
}
#: error_kind of a row only the operator can settle (the transport cannot look it up)
NEEDS_OPERATOR = "needs_operator"


@dataclass(slots=True)
class CheckSummary:
    sent: list[int] = field(default_factory=list)  #: found at the provider → recorded as sent
    requeued: list[int] = field(default_factory=list)  #: not found after the grace period → queued again
    waiting: list[int] = field(default_factory=list)  #: not found yet, grace period still running
    operator: list[int] = field(default_factory=list)  #: transport cannot tell: needs `outbox resolve`
    busy: list[int] = field(default_factory=list)  #: another live process is sending it


class Outbox:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self.journal = mailer.journal

    def _tr(self, de: str, en: str) -> str:
        return T(de, en).get(self.mailer.lang)

    def entries(self, statuses: Iterable[str] = OPEN, *, batch: str | None = None, limit: int = 0) -> list[Entry]:
        return self.journal.query(status=list(statuses), batch=batch, limit=limit)

    # ---- unknown outcomes ---------------------------------------------------------------------
    def check(self, *, batch: str | None = None, grace_seconds: float | None = None) -> CheckSummary:
        """Settle rows left in ``sending`` by a dead process and rows in ``unknown``, once."""
        grace = self.mailer.config.outbox_grace_seconds if grace_seconds is None else grace_seconds
        summary = CheckSummary()
        for entry in self.journal.query(status=["sending"], batch=batch, limit=0):
            if self.journal.owner_alive(entry.owner):
                summary.busy.append(entry.id)
                continue
            self.journal.transition(
                entry.id,
                Status.UNKNOWN,
                expect=(Status.SENDING,),
                error_kind="interrupted",
                error=self._tr(
                    "Prozess während des Sendens beendet; Ausgang unklar.",
                    "process ended while sending; outcome unclear.",
                ),
            )
        for entry in self.journal.query(status=["unknown"], batch=batch, limit=0):
            self._settle(entry, grace, summary)
        return summary

    def settle(
        self,
        *,
        batch: str | None = None,
        grace_seconds: float | None = None,
        send: Callable[[list[Entry]], bool],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> CheckSummary:
        """:meth:`check` until every unknown row is found, requeued and sent again (by ``send``,
        which returns False when sending had to stop), or needs the operator; waits at most the
        grace period (plus a few seconds for the provider's Sent Items to catch up)."""
        grace = self.mailer.config.outbox_grace_seconds if grace_seconds is None else grace_seconds
        deadline = clock() + grace + 5
        while True:
            summary = self.check(batch=batch, grace_seconds=grace)
            again = self.queued(batch=batch)
            if again and send(again):
                continue
            if again or not summary.waiting or clock() > deadline:
                return summary
            sleep(min(2.0, max(0.1, deadline - clock())))

    def _settle(self, entry: Entry, grace: float, summary: CheckSummary) -> None:
        if entry.payload is None:
            summary.operator.append(entry.id)
            return
        message = message_from_json(entry.payload)
        try:
            lookup = self.mailer.transport(entry.account).lookup(message)
        except CcmMailError as exc:
            log.warning("lookup_failed", journal_id=entry.id, error=exc.render("en"))
            summary.waiting.append(entry.id)
            return
        if lookup.found is Found.SENT:
            sent_at = lookup.sent_at or self._left_at(entry)
            if self.journal.transition(
                entry.id,
                Status.SENT,
                expect=(Status.UNKNOWN,),
                sent_at=sent_at,
                transport_ids=dict(lookup.transport_ids),
                detail=self._tr(
                    "nach unklarem Ausgang beim Anbieter gefunden", "found at the provider after an unknown outcome"
                ),
            ):
                self._recorders(entry, message, Receipt(sent_at, dict(lookup.transport_ids)))
                summary.sent.append(entry.id)
        elif lookup.found is Found.NOT_FOUND:
            age = (now() - self._left_at(entry)).total_seconds()
            if age >= grace and self.journal.transition(
                entry.id,
                Status.QUEUED,
                expect=(Status.UNKNOWN,),
                detail=self._tr(
                    f"{age:.0f} s nach dem Senden nicht beim Anbieter gefunden; erneut eingereiht",
                    f"not found at the provider {age:.0f} s after sending; queued again",
                ),
            ):
                summary.requeued.append(entry.id)
            else:
                summary.waiting.append(entry.id)
        else:
            summary.operator.append(entry.id)
            if entry.error_kind != NEEDS_OPERATOR:  # say it once, not on every look
                self.journal.transition(
                    entry.id,
                    Status.UNKNOWN,
                    expect=(Status.UNKNOWN,),
                    error_kind=NEEDS_OPERATOR,
                    error=self._tr(
                        f"Ausgang unklar, und {entry.account_type} kann nicht nachsehen, ob die Mail "
                        f"angekommen ist: im Postfach prüfen, dann 'ccm-mail outbox resolve {entry.id} "
                        "sent|resend|drop'.",
                        f"outcome unclear, and {entry.account_type} cannot look up whether the mail "
                        f"arrived: check the mailbox, then 'ccm-mail outbox resolve {entry.id} "
                        "sent|resend|drop'.",
                    ),
                )

    def _left_at(self, entry: Entry) -> datetime:
        """When the last attempt left: the newest 'sending' event."""
        for event in reversed(self.journal.events(entry.id)):
            if event["status"] == "sending":
                return datetime.fromisoformat(event["at"])
        return datetime.fromisoformat(entry.updated_at)

    def _context(self, entry: Entry) -> SendContext:
        return SendContext(
            purpose=entry.purpose,
            account=entry.account,
            account_type=entry.account_type,
            reference=entry.reference,
            lang=self.mailer.lang,
            journal_id=entry.id,
        )

    def _recorders(self, entry: Entry, message: object, receipt: Receipt) -> None:
        pipeline.recorders(
            self.mailer, "ccm_mail_sent", entry.id, message=message, receipt=receipt, context=self._context(entry)
        )

    # ---- sending what is queued ---------------------------------------------------------------
    def queued(self, *, batch: str | None = None) -> list[Entry]:
        return sorted(
            self.journal.query(status=["queued"], batch=batch, limit=0), key=lambda e: (e.batch_row or 0, e.id)
        )

    def send_entry(self, entry: Entry, *, keep_queued_at_limit: bool = False) -> SendResult:
        if entry.payload is None:
            raise ConfigError(
                T(f"Eintrag {entry.id} hat keine gespeicherte Nachricht.", f"entry {entry.id} has no stored message.")
            )
        return pipeline.deliver(
            self.mailer,
            entry.id,
            message_from_json(entry.payload),
            self._context(entry),
            keep_queued_at_limit=keep_queued_at_limit,
        )

    def send_queued(self, *, batch: str | None = None) -> list[SendResult]:
        return [self.send_entry(e) for e in self.queued(batch=batch)]

    def retry_failed(self, ids: Iterable[int] = ()) -> list[SendResult]:
        """Send failed messages again. They were not sent; but their invoice may have been sent
        since by a new call (AbSys sends again after exit 1): those are closed, not sent twice."""
        wanted = set(ids)
        results = []
        for entry in sorted(self.journal.query(status=["failed"], limit=0), key=lambda e: e.id):
            if wanted and entry.id not in wanted:
                continue
            requeued, taken = self.journal.requeue_failed(entry.id, self._tr("erneuter Versuch", "retry"))
            if taken is not None:
                log.info("retry_superseded", journal_id=entry.id, by=taken.id, status=taken.status.value)
            if requeued:
                results.append(self.send_entry(self._get(entry.id)))
        return results

    def _get(self, entry_id: int) -> Entry:
        entry = self.journal.get(entry_id)
        if entry is None:
            raise ConfigError(T(f"Kein Journal-Eintrag {entry_id}.", f"no journal entry {entry_id}."))
        return entry

    # ---- the operator's decision --------------------------------------------------------------
    def resolve(self, entry_id: int, action: str) -> Entry:
        """``sent``: the operator found it sent (the *Versanddatum* becomes the time it left);
        ``resend``: it was not sent, send it now; ``drop``: do not send it at all."""
        entry = self._get(entry_id)
        if action not in ACTIONS:
            raise ConfigError(
                T(
                    f"Unbekannte Aktion {action!r}: sent, resend oder drop.",
                    f"unknown action {action!r}: sent, resend or drop.",
                )
            )
        allowed = ACTIONS[action]
        if entry.status not in allowed:
            states = ", ".join(s.value for s in allowed)
            raise ConfigError(
                T(
                    f"Eintrag {entry_id} ist '{entry.status.value}'; '{action}' geht nur bei {states}.",
                    f"entry {entry_id} is '{entry.status.value}'; '{action}' needs {states}.",
                )
            )
        if entry.status is Status.SENDING and self.journal.owner_alive(entry.owner):
            raise ConfigError(
                T(
                    f"Eintrag {entry_id} wird gerade von {entry.owner} gesendet.",
                    f"entry {entry_id} is being sent by {entry.owner} right now.",
                )
            )
        if action == "sent":
            sent_at = self._left_at(entry)
            self.journal.transition(
                entry_id,
                Status.SENT,
                expect=allowed,
                sent_at=sent_at,
                detail=self._tr("vom Bediener als gesendet bestätigt", "marked as sent by the operator"),
            )
            if entry.payload:
                self._recorders(entry, message_from_json(entry.payload), Receipt(sent_at, {}))
        elif action == "drop":
            self.journal.transition(
                entry_id,
                Status.CANCELLED,
                expect=allowed,
                error_kind="dropped",
                error=self._tr("vom Bediener verworfen", "dropped by the operator"),
            )
        else:
            self.journal.transition(
                entry_id,
                Status.QUEUED,
                expect=allowed,
                detail=self._tr("vom Bediener erneut gesendet", "resend by the operator"),
            )
            self.send_entry(self._get(entry_id))
        return self._get(entry_id)
