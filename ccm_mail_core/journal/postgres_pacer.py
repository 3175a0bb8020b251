"""Pacing per mailbox over every host that shares a PostgreSQL journal: the same three limits and
the same counting as :class:`ccm_mail_core.pacing.Pacer`, with the counts in table ``pacing_slots``.

A send takes a slot (a row) before its claim and finishes it afterwards. Admission is one
transaction under a per-account advisory lock, so two hosts never both take the last slot:
- **concurrency**: unfinished slots whose owner's lease runs (a killed host's slot stops counting
  when its lease runs out);
- **messages per window**: slots that are unfinished, or finished less than a window ago (a dead
  owner's unfinished slot counts as finished when its lease ran out);
- **recipients per rolling day**: recipients of the day's slots that did or may have reached the
  provider (a send that surely did not gives them back, as in-process).
The database's clock decides (``clock_timestamp()``: a transaction's ``now()`` is when it began,
before it waited for the lock); a host waits outside the transaction, polling in short steps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from ccm_mail_hookspecs import T

from .. import owner
from ..pacing import DailyLimitReached, Limits
from .base import JournalError
from .postgres import LOCK_CLASS

if TYPE_CHECKING:
    from .postgres import PostgresJournal

log = structlog.get_logger("ccm_mail.pacing")

#: while a mailbox's concurrent requests are all taken, a host looks again this often (seconds,
#: jittered): a send ends any moment, and every host must be able to take the freed slot
POLL = 0.01
#: a full window frees at a known time: the host sleeps until then, but looks again at least this
#: often (another host may have taken the slot, or finished one)
WINDOW_POLL = 1.0
#: slots older than this are deleted now and then (a day plus any window)
KEEP = "2 days"

#: an unfinished slot stops counting as in flight after this long even while its owner lives
#: (its release was lost with the database): longer than any send, a 150 MB upload included
STALE_SECONDS = 900.0

_STATE = """
WITH s AS (
  SELECT s.recipients, s.sent, s.started,
         (s.finished IS NULL AND o.lease_until > clock_timestamp()
          AND s.started > clock_timestamp() - make_interval(secs => ?)) AS flying,
         coalesce(s.finished, least(coalesce(o.lease_until, s.started), s.started + make_interval(secs => ?))) AS ended
  FROM pacing_slots s LEFT JOIN owners o ON o.owner = s.owner
  WHERE s.account = ? AND s.started > clock_timestamp() - interval '1 day' - make_interval(secs => ?)
)
SELECT
  coalesce(sum(recipients) FILTER (WHERE started > clock_timestamp() - interval '1 day' AND sent IS NOT FALSE), 0) AS day,
  count(*) FILTER (WHERE flying) AS in_flight,
  count(*) FILTER (WHERE flying OR ended > clock_timestamp() - make_interval(secs => ?)) AS busy,
  extract(epoch FROM min(ended) FILTER (WHERE NOT flying AND ended > clock_timestamp() - make_interval(secs => ?))
                     + make_interval(secs => ?) - clock_timestamp()) AS frees_in
FROM s
"""


class SharedPacer:
    """Admits sends for one mailbox across hosts (see the module docstring). Thread-safe."""

    def __init__(
        self, journal: PostgresJournal, account: str, limits: Limits, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.journal = journal
        self.account = account
        self.limits = limits
        self._sleep = sleep
        self._key = f"pace\x1f{account}"
        self._admitted = 0
        self.waited = 0.0

    def _state(self, db: Any) -> Any:
        w = self.limits.per_seconds
        return db.execute(_STATE, (STALE_SECONDS, STALE_SECONDS, self.account, w, w, w, w)).fetchone()

    def recipients_today(self) -> int:
        with self.journal._read() as db:
            return int(self._state(db)["day"])

    def acquire(self, recipients: int = 1) -> int:
        """Wait for a slot; raises :class:`DailyLimitReached` instead of waiting a day. Returns
        the slot's id, to hand back to :meth:`release`."""
        start = time.monotonic()
        while True:
            with self.journal._tx(durable=False) as db:
                db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_CLASS, self._key))
                released = self.journal.finish_slots(db)  # releases an earlier database outage swallowed
                state = self._state(db)
                if int(state["day"]) + recipients > self.limits.recipients_per_day:
                    raise DailyLimitReached(
                        T(
                            f"Konto {self.account}: Tageslimit von {self.limits.recipients_per_day} Empfängern erreicht "
                            "(über alle Rechner); der Rest bleibt in der Warteschlange.",
                            f"account {self.account}: daily limit of {self.limits.recipients_per_day} recipients reached "
                            "(over all hosts); the rest stays queued.",
                        ),
                        hint=T(
                            "Morgen fortsetzen ('ccm-mail outbox --retry') oder weitere Postfächer in einen Pool "
                            "nehmen.",
                            "Continue tomorrow ('ccm-mail outbox --retry') or add mailboxes to a pool.",
                        ),
                    )
                if int(state["in_flight"]) < self.limits.concurrency and int(state["busy"]) < self.limits.messages:
                    self.journal.renew(db)  # the slot counts as in flight while this process's lease runs
                    row = db.execute(
                        "INSERT INTO pacing_slots (account, owner, recipients, started)"
                        " VALUES (?, ?, ?, clock_timestamp())"
                        " RETURNING id",
                        (self.account, owner.current().format(), recipients),
                    ).fetchone()
                    slot = int(row["id"])
                    self._admitted += 1
                    if self._admitted % 500 == 1:
                        db.execute(
                            "DELETE FROM pacing_slots WHERE account=? AND started < now() - interval '" + KEEP + "'",
                            (self.account,),
                        )
                    break
                frees_in = state["frees_in"]
            self.journal.forget_slots(released)
            self.journal._start_heartbeat()
            if frees_in is not None and int(state["in_flight"]) < self.limits.concurrency:
                wait = min(max(float(frees_in), 0.001), WINDOW_POLL)
            else:
                wait = POLL * random.uniform(0.5, 1.5)
            self._sleep(wait)
        self.journal.forget_slots(released)
        self.journal._start_heartbeat()
        self.waited += time.monotonic() - start
        return slot

    def release(self, admitted: int, *, sent: bool, recipients: int = 1) -> None:
        """The send ended. A failure to record it here is only logged: the slot then counts as
        in flight until this process's lease runs out, which errs on the slow side."""
        self.journal.unfinished[admitted] = sent
        try:
            with self.journal._tx(durable=False) as db:
                done = self.journal.finish_slots(db)
            self.journal.forget_slots(done)
        except JournalError as exc:  # retried by the next acquire, or when the journal closes
            log.warning("pacing_release_failed", account=self.account, error=exc.render("en"))

    def cancel(self, admitted: int, *, recipients: int = 1) -> None:
        try:
            with self.journal._tx(durable=False) as db:
                db.execute("DELETE FROM pacing_slots WHERE id=?", (admitted,))
        except JournalError as exc:
            log.warning("pacing_release_failed", account=self.account, error=exc.render("en"))
