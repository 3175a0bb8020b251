"""structlog set-up: readable lines for people, JSON lines for machines, secrets blanked in both.

Redaction is the last processor before rendering and also a filter on stdlib logging (msal and
urllib3 log through it), so a secret that slips into any event or library message is replaced.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

from . import secrets

# Bearer tokens and JWTs have a shape even when they are not known in advance
_TOKEN_SHAPES = re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")


def scrub(text: str) -> str:
    text = secrets.redact(text)
    if "Bearer" not in text and "eyJ" not in text:  # neither shape can match: skip the regex
        return text
    return _TOKEN_SHAPES.sub(lambda m: (m.group(1) or "") + "***", text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(v) for v in value)
    if isinstance(value, BaseException):
        return scrub(str(value))
    return value


def redact_processor(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: _scrub_value(v) for k, v in event_dict.items()}


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


def configure(*, fmt: str = "console", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and stdlib logging for the CLI. Hosts embedding ccm-mail may skip this
    and configure structlog themselves (keep :func:`redact_processor` in their chain)."""
    stream = stream or sys.stderr
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (structlog.processors.JSONRenderer(ensure_ascii=False) if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RedactFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_ccm_mail", False):
            root.removeHandler(old)
    handler._ccm_mail = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(lvl, logging.INFO))
    # msal at DEBUG prints request details; it never needs to be louder than WARNING for admins
    logging.getLogger("msal").setLevel(max(lvl, logging.WARNING))
    logging.getLogger("urllib3").setLevel(max(lvl, logging.WARNING))
