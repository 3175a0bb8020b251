"""Shared constants and helpers of the SMTP tests (conftest holds only fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import Transport
from smtp_server import SmtpServer

SENDER = "rechnung@firma.example"
PASSWORD = "S3cr3t-Pässwort-€-4711"
USERS = {SENDER: PASSWORD}

MakeTransport = Callable[..., Transport]


def account_values(server: SmtpServer, ca_file: Path | None, **overrides: Any) -> dict[str, Any]:
    """The YAML values of an account for ``server``; overrides replace single fields."""
    values: dict[str, Any] = {
        "host": server.host, "port": server.port, "security": server.mode, "sender": SENDER,
        "auth": "password" if server.mode != "none" else "none", "username": SENDER,
        "password": PASSWORD, "ca_bundle": str(ca_file) if ca_file else None, "timeout": 5,
    }
    values.update(overrides)
    return values
