"""Blanking secrets in everything a person or program reads: output, logs, journal rows.

Known secrets come from :mod:`ccm_mail_hookspecs.redaction` (the host registers the configured
ones, transports every form they put on the wire); bearer tokens and JWTs are blanked by their
shape even when nobody registered them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from ccm_mail_hookspecs.redaction import redact

_TOKEN_SHAPES = re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")


def scrub(text: str) -> str:
    return _TOKEN_SHAPES.sub(lambda m: (m.group(1) or "") + "***", redact(text))


def scrub_value(value: Any) -> Any:
    """``value`` with every string in it scrubbed (dicts, lists and exceptions included)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_value(v) for v in value)
    if isinstance(value, BaseException):
        return scrub(str(value))
    return value


def processor(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor; keep it last before the renderer in a host's own chain."""
    return {k: scrub_value(v) for k, v in event_dict.items()}


class Formatter(logging.Formatter):
    """The same for stdlib logging (msal and urllib3 log through it). It scrubs what it writes
    and leaves the record alone: other handlers (a host's, a test's capture) see it unchanged."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
