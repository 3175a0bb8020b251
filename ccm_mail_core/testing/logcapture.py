"""Capture everything a transport might write — structlog events, stdlib log records, stdout/stderr —
and scan it for secrets.

Capture happens *before* any redaction: the host's log set-up blanks known secrets, but AbSys or
another host may configure logging differently, so a transport itself must never emit a secret.
"""

from __future__ import annotations

import base64
import logging
import traceback
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog.testing


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class LogCapture:
    """What was logged while :func:`capture_logs` was active.

    :ivar events: structlog event dicts, unrendered (every key and value is scanned).
    :ivar records: stdlib :class:`logging.LogRecord` objects from every logger, at DEBUG and up.
    """

    events: list[MutableMapping[str, Any]] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)

    def texts(self) -> list[str]:
        """One string per log line, including formatted exception tracebacks."""
        out = [repr(event) for event in self.events]
        for record in self.records:
            text = f"{record.name} {record.levelname} {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
            out.append(text)
        return out


@contextmanager
def capture_logs() -> Iterator[LogCapture]:
    """Capture structlog and stdlib logging at DEBUG level (restores the previous set-up)."""
    handler = _ListHandler()
    capture = LogCapture(records=handler.records)  # live: readable while still capturing
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with structlog.testing.capture_logs() as events:
            capture.events = events
            yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def secret_variants(secret: str) -> set[str]:
    """The secret as it may leak: plain, URL-encoded (form bodies), base64 (SASL PLAIN/LOGIN)."""
    variants = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    variants.add(base64.b64encode(secret.encode()).decode("ascii"))
    return {v for v in variants if len(v) >= 4}


def exception_texts(error: BaseException) -> list[str]:
    """What a host may show or log of an error: str, repr, the chained traceback, ccm details."""
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for name in ("render", "to_dict"):
        fn = getattr(error, name, None)
        if callable(fn):
            texts += [str(fn("de")), str(fn("en"))]
    details = getattr(error, "details", None)
    if details:
        texts.append(repr(details))
    return texts


def find_secrets(secrets: Iterable[str], places: Mapping[str, Iterable[str]]) -> list[str]:
    """Where which secret occurs, as "<place>: secret #n" — never the secret itself."""
    found: list[str] = []
    secrets = [s for s in secrets if s]
    for place, texts in places.items():
        for text in texts:
            for n, secret in enumerate(secrets, 1):
                if any(v in text for v in secret_variants(secret)):
                    found.append(f"{place}: secret #{n} ({len(secret)} chars)")
    return sorted(set(found))


def assert_no_secrets(secrets: Iterable[str], places: Mapping[str, Iterable[str]]) -> None:
    """Fail naming the place (log, error, stdout …) if any secret occurs; the message masks it."""
    found = find_secrets(secrets, places)
    assert not found, "secret leaked: " + "; ".join(found)
