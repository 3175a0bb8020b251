"""structlog set-up: readable lines for people, JSON lines for machines, secrets blanked in both.

Redaction (:mod:`.redaction`) is the last processor before rendering and also the formatter of stdlib
logging (msal and urllib3 log through it), so a secret that slips into any event or library
message is replaced. Logs go to stderr or a file, never to stdout: stdout is the command's answer.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

from . import redaction


class Handler(logging.StreamHandler[TextIO]):
    """The root handler ccm-mail installs (and replaces when configured again)."""

    _ccm_mail = True  # how test fixtures of plugins written before 1.2 recognise it


def configure(
    *, fmt: str = "console", level: str = "info", stream: TextIO | None = None, file: Path | None = None
) -> None:
    """Configure structlog and stdlib logging: to ``stream`` (default stderr) or appended to
    ``file``. A host embedding ccm-mail that configured structlog itself keeps its set-up
    (:meth:`Mailer.from_config` checks); keep :func:`ccm_mail_core.redaction.processor` in its
    chain."""
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        stream = file.open("a", encoding="utf-8", buffering=1)
    stream = stream or sys.stderr
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            structlog.processors.format_exc_info,
            redaction.processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = Handler(stream)
    handler.setFormatter(redaction.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(lvl, logging.INFO))
    # msal at DEBUG prints request details; it never needs to be louder than WARNING for admins
    logging.getLogger("msal").setLevel(max(lvl, logging.WARNING))
    logging.getLogger("urllib3").setLevel(max(lvl, logging.WARNING))
