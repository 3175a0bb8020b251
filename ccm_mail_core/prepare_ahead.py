"""A transport prepares its request on a helper thread while the journal claim is fsynced.

Why: the claim must be on disk before a message leaves (see journal.py), and that fsync is the
largest single cost of a send on a fast connection. SQLite holds no GIL while it commits, so the
transport's own preparation (checks, encoding, building the request: :meth:`Transport.prepare`)
can run meanwhile. The send step itself still runs on the caller's thread, and only after the
claim returned: ordering, not speed, is what keeps an invoice from going out twice.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ccm_mail_hookspecs import Message, Receipt, Transport

#: helper threads: one per message being claimed at the same moment (batches send 4 at once)
WORKERS = 4


class PrepareAhead:
    """One message's ``transport.prepare``: :meth:`start` hands it to the helper pool (the journal
    calls it right before the claim's COMMIT); :meth:`step` waits for it and returns the send
    step, or raises what ``prepare`` (or building the transport) raised. Without :meth:`start`,
    :meth:`step` prepares on the caller's thread."""

    def __init__(self, pool: Callable[[], ThreadPoolExecutor], transport: Callable[[], Transport],
                 message: Message) -> None:
        self._pool = pool
        self._transport = transport
        self._message = message
        self._future: Future[Callable[[], Receipt]] | None = None

    def _prepare(self) -> Callable[[], Receipt]:
        return self._transport().prepare(self._message)

    def start(self) -> None:
        # runs inside the claim's transaction: it must not raise, so failures wait in the future
        try:
            self._future = self._pool().submit(contextvars.copy_context().run, self._prepare)
        except RuntimeError:  # the pool is shut down: prepare on the caller's thread instead
            self._future = None

    def step(self) -> Callable[[], Receipt]:
        if self._future is None:
            return self._prepare()
        return self._future.result()


class HelperPool:
    """The lazily started helper threads of one Mailer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def __call__(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ccm-mail-prepare")
            return self._executor

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
