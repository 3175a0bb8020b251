"""Pacing per mailbox within Exchange Online's limits: messages per window, recipients per day,
concurrent requests.

The message window counts a send from the moment it starts until the window has passed since it
*finished*: the provider counts a message when it accepts it, which is somewhere in between, so
counting this way never lets more than ``messages`` acceptances fall into any window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ccm_mail_hookspecs import CcmMailError, T


@dataclass(frozen=True, slots=True)
class Limits:
    messages: int = 30            #: messages per window (Exchange Online: 30 per minute)
    per_seconds: float = 60.0     #: the window
    recipients_per_day: int = 10_000
    concurrency: int = 4          #: Graph allows 4 concurrent requests per mailbox
    recipients_per_message: int = 500

    @property
    def rate(self) -> float:
        return self.messages / self.per_seconds


DEFAULT_LIMITS = Limits()


class DailyLimitReached(CcmMailError):
    """Sending more today would exceed the mailbox's daily recipient limit (Exchange then blocks
    the mailbox for 24 hours); the rest stays queued."""

    kind = "daily_limit"


class Pacer:
    """Admits sends for one mailbox. Thread-safe; ``acquire`` blocks until a send may start."""

    def __init__(self, account: str, limits: Limits, *, sent_today: Callable[[], int] = lambda: 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.account = account
        self.limits = limits
        self._clock = clock
        self._cond = threading.Condition()
        self._finished: deque[float] = deque()   # finish times of sends still inside the window
        self._in_flight = 0
        self._recipients_today = sent_today()
        self.waited = 0.0

    def acquire(self, recipients: int = 1) -> None:
        """Wait for a slot; raises :class:`DailyLimitReached` instead of waiting a day."""
        start = self._clock()
        with self._cond:
            if self._recipients_today + recipients > self.limits.recipients_per_day:
                raise DailyLimitReached(
                    T(f"Konto {self.account}: Tageslimit von {self.limits.recipients_per_day} Empfängern erreicht; "
                      "der Rest bleibt in der Warteschlange.",
                      f"account {self.account}: daily limit of {self.limits.recipients_per_day} recipients reached; "
                      "the rest stays queued."),
                    hint=T("Morgen fortsetzen ('ccm-mail outbox --retry') oder weitere Postfächer in einen Pool nehmen.",
                           "Continue tomorrow ('ccm-mail outbox --retry') or add mailboxes to a pool."))
            while True:
                now = self._clock()
                while self._finished and self._finished[0] <= now - self.limits.per_seconds:
                    self._finished.popleft()
                busy = len(self._finished) + self._in_flight
                if self._in_flight < self.limits.concurrency and busy < self.limits.messages:
                    break
                if self._in_flight >= self.limits.concurrency or not self._finished:
                    self._cond.wait(timeout=1.0)
                else:
                    self._cond.wait(timeout=max(0.001, self._finished[0] + self.limits.per_seconds - now))
            self._in_flight += 1
            self._recipients_today += recipients
            self.waited += self._clock() - start

    def release(self, *, sent: bool, recipients: int = 1) -> None:
        """A send ended. A send that surely did not reach the provider gives its recipients back."""
        with self._cond:
            self._in_flight -= 1
            self._finished.append(self._clock())
            if not sent:
                self._recipients_today -= recipients
            self._cond.notify_all()
