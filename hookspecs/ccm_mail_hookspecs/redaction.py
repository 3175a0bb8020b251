"""Secrets to blank wherever they turn up: one registry for the host and every plugin.

The host registers each secret it resolves from the configuration. A transport registers every
*form* in which it puts a secret on the wire, before it sends it: an access token it fetched, the
base64 of ``user\\0user\\0password`` for SMTP AUTH PLAIN, the XOAUTH2 string. A server that echoes
what it got then cannot leak the secret through an error text, a log line, ``--json`` output or
the journal: the host passes all of them through :func:`redact`.

.. versionadded:: 1.2
"""

from __future__ import annotations

import threading

#: shorter strings would blank ordinary words in logs
MIN_LENGTH = 4

_known: set[str] = set()
_longest_first: tuple[str, ...] = ()  # redaction runs on every log line: sorted once per change
_lock = threading.Lock()


def remember(*values: str) -> None:
    """Register secret values (each of at least :data:`MIN_LENGTH` characters) for redaction."""
    global _longest_first
    fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH} - _known
    if not fresh:
        return
    with _lock:
        _known.update(fresh)
        _longest_first = tuple(sorted(_known, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _forget_all() -> None:
    """Empty the registry, as in a new process (for test harnesses that run the CLI in-process)."""
    global _longest_first
    with _lock:
        _known.clear()
        _longest_first = ()
