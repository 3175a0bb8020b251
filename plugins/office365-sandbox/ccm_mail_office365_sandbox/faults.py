"""Injected faults: what a real network and a busy Microsoft do to a client now and then.

A fault matches on method, a regex over the request path (without query) and optionally the host;
it fires ``count`` times (``None``: until removed). Kinds:

- ``"429"``, ``"500"``, ``"503"``, ``"504"``: answer with that status before any processing,
  optionally with ``Retry-After``.
- ``"drop_before_response"``: read the request, then close the connection; nothing was done.
- ``"drop_after_processing"``: process the request fully (a mail IS sent), then close the
  connection without answering: the ambiguous outcome a client must not blindly retry.
- ``"latency"``: wait ``delay`` seconds, then process normally (inside the mailbox's
  concurrency slot, so slow requests hold it like real slow requests do).
- ``"html"``: answer ``status`` (default 502) with an HTML page before any processing, as a proxy
  or gateway in front of Microsoft does (nothing was done).
- ``"truncated"``: answer ``status`` (default 500) with a JSON error body cut off in the middle
  (``Content-Length`` matches what is sent), before any processing.
- ``"status_after_processing"``: process the request fully (a mail IS sent), then answer
  ``status`` (default 200) instead of the real status, optionally with ``Retry-After``: a gateway
  in front of Microsoft that times out (504) or rewrites the answer, after Microsoft had the mail.
- ``"echo_request"``: answer ``status`` (default 400) with a Graph error whose message quotes the
  request's headers, ``Authorization`` included, before any processing: the careless server or
  gateway a client must not leak a token through.
- ``"reset_in_handshake"``: reset the next TLS connection (any host, any path: nothing of the
  request is known yet) in the middle of its handshake, before any byte of a request can arrive.
  Method and path of the fault are ignored.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

KINDS = frozenset(
    {
        "429",
        "500",
        "503",
        "504",
        "drop_before_response",
        "drop_after_processing",
        "latency",
        "html",
        "truncated",
        "status_after_processing",
        "echo_request",
        "reset_in_handshake",
    }
)
#: faults that act on a connection before any request was read
CONNECTION_KINDS = frozenset({"reset_in_handshake"})


@dataclass
class Fault:
    method: str | None
    path_regex: str
    kind: str
    count: int | None = 1
    retry_after: str | None = None
    delay: float = 0.0
    host: str | None = None
    #: the HTTP status of an "html", "truncated", "status_after_processing" or "echo_request"
    #: answer (None: 502 / 500 / 200 / 400)
    status: int | None = None
    #: how many times the fault fired
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(KINDS)}")
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, host: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.host is not None and self.host.lower() != host.lower():
            return False
        return self._pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count


class Faults:
    """The fault list of a sandbox (``sb.faults``); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str | None = None,
        path_regex: str = ".*",
        kind: str = "503",
        *,
        count: int | None = 1,
        retry_after: str | int | None = None,
        delay: float = 0.5,
        host: str | None = None,
        status: int | None = None,
    ) -> Fault:
        fault = Fault(
            method, path_regex, str(kind), count, None if retry_after is None else str(retry_after), delay, host, status
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, host: str, path: str) -> Fault | None:
        """The first live fault matching this request, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.kind not in CONNECTION_KINDS and fault.matches(method, host, path):
                    fault.hits += 1
                    return fault
        return None

    def take_connection(self) -> Fault | None:
        """The first live fault for a new connection (``reset_in_handshake``), counted as fired."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.kind in CONNECTION_KINDS:
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __iter__(self):  # type: ignore[no-untyped-def]
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for f in self._faults if not f.exhausted)
