"""The outbox: what is queued, sending, unknown or failed, and how each gets to a final state
without ever sending a message twice.

After an ambiguous outcome (or a process that died mid-send) the transport is asked whether the
provider has the message, by its stable Message-ID, before anything is resent: found → sent;
not found after the grace period → resent; the transport cannot tell → the operator decides.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from ccm_mail_hookspecs import CcmMailError, ConfigError, Found, Receipt, SendContext, Status, T

from .api import OWNER
from .journal import Entry, now

if TYPE_CHECKING:
    from .api import Mailer, SendResult

log = structlog.get_logger("ccm_mail.outbox")

OPEN = ("queued", "sending", "unknown", "failed")


def owner_alive(owner: str | None) -> bool:
    """Whether the process that claimed a row still runs. Another host's process cannot be
    checked from here: it counts as alive, so only the operator touches its rows."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    boot, _, pid = rest.rpartition(":")
    if host != socket.gethostname():
        return True
    if boot != OWNER.split(":")[1]:
        return False  # claimed before this machine last booted
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


@dataclass(slots=True)
class CheckSummary:
    sent: list[int] = field(default_factory=list)        #: found at the provider → recorded as sent
    requeued: list[int] = field(default_factory=list)    #: not found after the grace period → queued again
    waiting: list[int] = field(default_factory=list)     #: not found yet, grace period still running
    operator: list[int] = field(default_factory=list)    #: transport cannot tell: needs `outbox resolve`
    busy: list[int] = field(default_factory=list)        #: another live process is sending it


class Outbox:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self.journal = mailer.journal

    def entries(self, statuses: Iterable[str] = OPEN, *, batch: str | None = None, limit: int = 0) -> list[Entry]:
        return self.journal.query(status=list(statuses), batch=batch, limit=limit)

    # ---- unknown outcomes ---------------------------------------------------------------------
    def check(self, *, batch: str | None = None, grace_seconds: float | None = None) -> CheckSummary:
        """Settle rows left in ``sending`` by a dead process and rows in ``unknown``."""
        grace = self.mailer.config.outbox_grace_seconds if grace_seconds is None else grace_seconds
        summary = CheckSummary()
        for entry in self.journal.query(status=["sending"], batch=batch, limit=0):
            if owner_alive(entry.owner):
                summary.busy.append(entry.id)
                continue
            self.journal.transition(entry.id, Status.UNKNOWN, expect=(Status.SENDING,), error_kind="interrupted",
                                    error=self._t("Prozess während des Sendens beendet; Ausgang wird geprüft.",
                                                  "process ended while sending; checking the outcome."))
        for entry in self.journal.query(status=["unknown"], batch=batch, limit=0):
            self._settle(entry, grace, summary)
        return summary

    def _t(self, de: str, en: str) -> str:
        return en if self.mailer.lang == "en" else de

    def _settle(self, entry: Entry, grace: float, summary: CheckSummary) -> None:
        if entry.payload is None:
            summary.operator.append(entry.id)
            return
        from .api import message_from_payload
        message = message_from_payload(entry.payload)
        try:
            lookup = self.mailer.transport(entry.account).lookup(message)
        except CcmMailError as exc:
            log.warning("lookup_failed", journal_id=entry.id, error=exc.render("en"))
            summary.waiting.append(entry.id)
            return
        if lookup.found is Found.SENT:
            sent_at = lookup.sent_at or self._left_at(entry)
            receipt = Receipt(sent_at, dict(lookup.transport_ids))
            if self.journal.transition(entry.id, Status.SENT, expect=(Status.UNKNOWN,), sent_at=sent_at,
                                       transport_ids=dict(lookup.transport_ids),
                                       detail="found at the provider after an unknown outcome"):
                self._run_sent_hooks(entry, message, receipt)
                summary.sent.append(entry.id)
        elif lookup.found is Found.NOT_FOUND:
            age = (now() - self._left_at(entry)).total_seconds()
            if age >= grace and self.journal.transition(
                    entry.id, Status.QUEUED, expect=(Status.UNKNOWN,),
                    detail=f"not found at the provider {age:.0f} s after sending; queued again"):
                summary.requeued.append(entry.id)
            else:
                summary.waiting.append(entry.id)
        else:
            summary.operator.append(entry.id)

    def _left_at(self, entry: Entry) -> datetime:
        """When the last attempt left: the newest 'sending' event."""
        for event in reversed(self.journal.events(entry.id)):
            if event["status"] == "sending":
                return datetime.fromisoformat(event["at"])
        return datetime.fromisoformat(entry.updated_at)

    def _context(self, entry: Entry) -> SendContext:
        return SendContext(purpose=entry.purpose, account=entry.account, account_type=entry.account_type,
                           reference=entry.reference, lang=self.mailer.lang, journal_id=entry.id)

    def _run_sent_hooks(self, entry: Entry, message, receipt: Receipt) -> None:  # type: ignore[no-untyped-def]
        for plugin, exc in self.mailer.host.call_each("ccm_mail_sent", message=message, receipt=receipt,
                                                      context=self._context(entry)):
            log.error("recorder_failed", plugin=plugin, journal_id=entry.id, error=f"{type(exc).__name__}: {exc}")

    # ---- sending what is queued ---------------------------------------------------------------
    def send_entry(self, entry: Entry, *, keep_queued_at_limit: bool = False) -> SendResult:
        from .api import message_from_payload
        if entry.payload is None:
            raise ConfigError(T(f"Eintrag {entry.id} hat keine gespeicherte Nachricht.",
                                f"entry {entry.id} has no stored message."))
        return self.mailer.send_journaled(entry.id, message_from_payload(entry.payload), self._context(entry),
                                          keep_queued_at_limit=keep_queued_at_limit)

    def send_queued(self, *, batch: str | None = None) -> list[SendResult]:
        return [self.send_entry(e) for e in sorted(self.journal.query(status=["queued"], batch=batch, limit=0),
                                                   key=lambda e: e.id)]

    def retry_failed(self, ids: Iterable[int] = ()) -> list[SendResult]:
        """Send failed messages again (they were not sent, so this cannot duplicate them)."""
        wanted = set(ids)
        results = []
        for entry in sorted(self.journal.query(status=["failed"], limit=0), key=lambda e: e.id):
            if wanted and entry.id not in wanted:
                continue
            if self.journal.transition(entry.id, Status.QUEUED, expect=(Status.FAILED,), detail="retry"):
                results.append(self.send_entry(self.journal.get(entry.id)))  # type: ignore[arg-type]
        return results

    # ---- the operator's decision --------------------------------------------------------------
    def resolve(self, entry_id: int, action: str) -> Entry:
        """``sent``: the operator found it sent (the *Versanddatum* becomes the time it left);
        ``resend``: it was not sent, send it now; ``drop``: do not send it at all."""
        entry = self.journal.get(entry_id)
        if entry is None:
            raise ConfigError(T(f"Kein Journal-Eintrag {entry_id}.", f"no journal entry {entry_id}."))
        allowed = {"sent": (Status.UNKNOWN, Status.SENDING), "resend": (Status.UNKNOWN, Status.FAILED, Status.SENDING),
                   "drop": (Status.UNKNOWN, Status.FAILED, Status.QUEUED, Status.SENDING)}
        if action not in allowed:
            raise ConfigError(T(f"Unbekannte Aktion {action!r}: sent, resend oder drop.",
                                f"unknown action {action!r}: sent, resend or drop."))
        if entry.status not in allowed[action]:
            raise ConfigError(T(f"Eintrag {entry_id} ist '{entry.status.value}'; '{action}' geht nur bei "
                                f"{', '.join(s.value for s in allowed[action])}.",
                                f"entry {entry_id} is '{entry.status.value}'; '{action}' needs "
                                f"{', '.join(s.value for s in allowed[action])}."))
        if entry.status is Status.SENDING and owner_alive(entry.owner):
            raise ConfigError(T(f"Eintrag {entry_id} wird gerade von {entry.owner} gesendet.",
                                f"entry {entry_id} is being sent by {entry.owner} right now."))
        if action == "sent":
            sent_at = self._left_at(entry)
            self.journal.transition(entry_id, Status.SENT, expect=allowed["sent"], sent_at=sent_at,
                                    detail="marked as sent by the operator")
            from .api import message_from_payload
            if entry.payload:
                self._run_sent_hooks(entry, message_from_payload(entry.payload), Receipt(sent_at, {}))
        elif action == "drop":
            self.journal.transition(entry_id, Status.CANCELLED, expect=allowed["drop"], error_kind="dropped",
                                    error=self._t("vom Bediener verworfen", "dropped by the operator"))
        else:
            self.journal.transition(entry_id, Status.QUEUED, expect=allowed["resend"], detail="resend by the operator")
            self.send_entry(self.journal.get(entry_id))  # type: ignore[arg-type]
        return self.journal.get(entry_id)  # type: ignore[return-value]
