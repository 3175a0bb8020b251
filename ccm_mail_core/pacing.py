"""Pacing per mailbox within Exchange Online's limits: messages per window, recipients per
rolling day, concurrent requests.

The message window counts a send from the moment it starts until the window has passed since it
*finished*: the provider counts a message when it accepts it, which is somewhere in between, so
counting this way never lets more than ``messages`` acceptances fall into any window.

:class:`Pacer` holds the counts in this process (a SQLite journal: one machine). With a
PostgreSQL journal the counts live in the database, for every host that shares it
(:class:`ccm_mail_core.journal.postgres_pacer.SharedPacer`); both follow :class:`Pacing`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ccm_mail_hookspecs import CcmMailError, T

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Limits:
    messages: int = 30  #: messages per window (Exchange Online: 30 per minute)
    per_seconds: float = 60.0  #: the window
    recipients_per_day: int = 10_000
    concurrency: int = 4  #: Graph allows 4 concurrent requests per mailbox
    recipients_per_message: int = 500

    @property
    def rate(self) -> float:
        return self.messages / self.per_seconds


DEFAULT_LIMITS = Limits()


class DailyLimitReached(CcmMailError):
    """Sending more today would exceed the mailbox's daily recipient limit (Exchange then blocks
    the mailbox for 24 hours); the rest stays queued."""

    kind = "daily_limit"


class Pacing(Protocol):
    """What the pipeline asks of a pacer: a slot before the claim, handed back afterwards."""

    account: str
    limits: Limits

    def acquire(self, recipients: int = 1) -> Any:
        """Wait for a slot (raise :class:`DailyLimitReached` instead of waiting a day)."""

    def release(self, admitted: Any, *, sent: bool, recipients: int = 1) -> None:
        """The send ended; ``sent=False``: it surely did not reach the provider."""

    def cancel(self, admitted: Any, *, recipients: int = 1) -> None:
        """The slot was not used at all (another process claimed the row first)."""

    def recipients_today(self) -> int: ...


class Pacer:
    """Admits sends for one mailbox. Thread-safe; ``acquire`` blocks until a send may start.

    :param sent: (time, recipients) of the sends the journal already has for the last day, so
        the daily budget holds across processes; the pacer forgets each one a day after it.
    :param clock: seconds since the epoch (``time.time``); tests pass their own.
    """

    def __init__(
        self,
        account: str,
        limits: Limits,
        *,
        sent: Iterable[tuple[float, int]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.limits = limits
        self._clock = clock
        self._cond = threading.Condition()
        self._finished: deque[float] = deque()  # finish times of sends still inside the window
        self._day: deque[tuple[float, int]] = deque(sorted(sent))  # (time, recipients) of the last day
        self._today = sum(n for _, n in self._day)  # kept with the deque: a day can hold 10,000 sends
        self._in_flight = 0
        self.waited = 0.0

    def recipients_today(self) -> int:
        with self._cond:
            self._forget(self._clock())
            return self._today

    def _forget(self, now: float) -> None:
        while self._day and self._day[0][0] <= now - DAY:
            self._today -= self._day.popleft()[1]
        while self._finished and self._finished[0] <= now - self.limits.per_seconds:
            self._finished.popleft()

    def acquire(self, recipients: int = 1) -> float:
        """Wait for a slot; raises :class:`DailyLimitReached` instead of waiting a day. Returns
        the admission time, to hand back to :meth:`release`."""
        start = self._clock()
        with self._cond:
            self._forget(start)
            if self._today + recipients > self.limits.recipients_per_day:
                raise DailyLimitReached(
                    T(
                        f"Konto {self.account}: Tageslimit von {self.limits.recipients_per_day} Empfängern erreicht; "
                        "der Rest bleibt in der Warteschlange.",
                        f"account {self.account}: daily limit of {self.limits.recipients_per_day} recipients reached; "
                        "the rest stays queued.",
                    ),
                    hint=T(
                        "Morgen fortsetzen ('ccm-mail outbox --retry') oder weitere Postfächer in einen Pool nehmen.",
                        "Continue tomorrow ('ccm-mail outbox --retry') or add mailboxes to a pool.",
                    ),
                )
            while True:
                now = self._clock()
                self._forget(now)
                busy = len(self._finished) + self._in_flight
                if self._in_flight < self.limits.concurrency and busy < self.limits.messages:
                    break
                if self._in_flight >= self.limits.concurrency or not self._finished:
                    self._cond.wait(timeout=1.0)
                else:
                    self._cond.wait(timeout=max(0.001, self._finished[0] + self.limits.per_seconds - now))
            self._in_flight += 1
            admitted = self._clock()
            self._day.append((admitted, recipients))
            self._today += recipients
            self.waited += admitted - start
            return admitted

    def release(self, admitted: float, *, sent: bool, recipients: int = 1) -> None:
        """A send ended. A send that surely did not reach the provider gives its recipients back."""
        with self._cond:
            self._in_flight -= 1
            self._finished.append(self._clock())
            if not sent:
                self._give_back(admitted, recipients)
            self._cond.notify_all()

    def cancel(self, admitted: float, *, recipients: int = 1) -> None:
        """Nothing was sent with the slot (the row was claimed elsewhere): it counts nowhere."""
        with self._cond:
            self._in_flight -= 1
            self._give_back(admitted, recipients)
            self._cond.notify_all()

    def _give_back(self, admitted: float, recipients: int) -> None:
        try:
            self._day.remove((admitted, recipients))
        except ValueError:  # already forgotten (a send longer than a day)
            return
        self._today -= recipients
