"""Throttling: how long to wait, and how many requests may run at once per mailbox.

Graph allows 4 concurrent requests per app and mailbox; a fifth gets 429. The semaphore is shared
by every transport of the process that talks to the same mailbox (two accounts may use one
mailbox), so concurrency stays within the limit whatever the host does with threads.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

#: statuses Microsoft uses for "not now, try again"; the request was not processed
THROTTLE_STATUSES = frozenset({429, 503, 504})
BACKOFF_BASE = 1.0
BACKOFF_MAX = 32.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if
    absent or unreadable (then the caller backs off exponentially)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so parallel senders that
    were throttled together do not come back together. ``attempt`` counts from 0."""
    ceiling = float(min(cap, base * (2 ** attempt)))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter


class WaitBudget:
    """The cap on total waiting for one message; when a wait would exceed it, give up."""

    def __init__(self, cap_seconds: float, sleep: Callable[[float], None] | None = None) -> None:
        self.cap = float(cap_seconds)
        self.waited = 0.0
        self._sleep = sleep or time.sleep

    def allows(self, delay: float) -> bool:
        return self.waited + delay <= self.cap

    def wait(self, delay: float) -> None:
        self._sleep(delay)
        self.waited += delay


_registry_lock = threading.Lock()
_semaphores: dict[tuple[str, str], threading.BoundedSemaphore] = {}


def mailbox_semaphore(graph_endpoint: str, mailbox: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore for one mailbox at one Graph endpoint. The first caller sets the
    limit; later callers share it."""
    key = (graph_endpoint.lower(), mailbox.lower())
    with _registry_lock:
        sem = _semaphores.get(key)
        if sem is None:
            sem = _semaphores[key] = threading.BoundedSemaphore(max(1, limit))
        return sem


@contextmanager
def slot(sem: threading.BoundedSemaphore) -> Iterator[None]:
    sem.acquire()
    try:
        yield
    finally:
        sem.release()
