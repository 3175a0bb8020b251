"""Throttling: which answers mean "wait", how long to wait, and how many requests may run at
once per mailbox.

Graph allows 4 concurrent requests per app and mailbox; a fifth gets 429. The semaphore is shared
by every transport of the process that talks to the same mailbox (two accounts may use one
mailbox), so concurrency stays within the limit whatever the host does with threads.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ccm_mail_hookspecs.http import Outcome, Verdict

BACKOFF_BASE = 1.0
BACKOFF_MAX = 32.0


def for_graph(verdict: Verdict) -> Verdict:
    """``ccm_mail_hookspecs.http``'s verdict with Microsoft Graph's own throttling row.

    Microsoft's throttling guidance (https://learn.microsoft.com/graph/throttling) detects
    throttling by 429 and its ``Retry-After``: the request failed and may be repeated after that
    wait (exponential backoff when the header is missing). Graph's error reference
    (https://learn.microsoft.com/graph/errors) says a 503 may be repeated "after a delay, the
    length of which may be specified in a Retry-After header", and the retry handler of
    Microsoft's own Graph SDKs (https://microsoftgraph.github.io/msgraph-sdk-design/middleware/
    RetryHandler.html) takes 429, 503 and 504 alike. So for Graph a 429, and a 503 or 504 **with**
    ``Retry-After``, is Microsoft saying "not processed, come back then": nothing was sent, and
    the same body is replayed after the wait. The helper's table keeps a 504 with
    ``Retry-After`` unknown for providers in general; Graph's documentation is the exception the
    table allows, so this one row is overridden here.

    A 503 or 504 **without** ``Retry-After``, and 500/502, stay what the helper says: a gateway
    may have forwarded the send, so the outcome is unknown and the request is never replayed
    (the outbox settles it through Sent Items). The SDK's handler replays those too; it knows
    nothing of invoices that must not go out twice.
    """
    if verdict.status == 504 and verdict.retry_after is not None:
        return dataclasses.replace(verdict, outcome=Outcome.NOT_SENT)
    return verdict


def is_throttled(verdict: Verdict) -> bool:
    """Graph asked us to wait: 429 (with or without ``Retry-After``), or 503/504 with it."""
    return verdict.outcome is Outcome.NOT_SENT and verdict.status in (429, 503, 504)


def backoff_delay(
    attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX, rng: random.Random | None = None
) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so parallel senders that
    were throttled together do not come back together. ``attempt`` counts from 0."""
    ceiling = float(min(cap, base * (2**attempt)))
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
