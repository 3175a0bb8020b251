"""Shared constants and helpers of the SMTP tests (conftest holds only fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import Transport
from smtp_server import SmtpServer

from ccm_mail_core.testing.logcapture import secret_variants

SENDER = "rechnung@firma.example"
PASSWORD = "S3cr3t-Pässwort-€-4711"
USERS = {SENDER: PASSWORD}

MakeTransport = Callable[..., Transport]


def account_values(server: SmtpServer, ca_file: Path | None, **overrides: Any) -> dict[str, Any]:
    """The YAML values of an account for ``server``; overrides replace single fields."""
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": server.mode,
        "sender": SENDER,
        "auth": "password" if server.mode != "none" else "none",
        "username": SENDER,
        "password": PASSWORD,
        "ca_bundle": str(ca_file) if ca_file else None,
        "timeout": 5,
    }
    values.update(overrides)
    return values


def leaks(secrets: Iterable[str], places: Mapping[str, str | bytes], window: int = 32) -> list[str]:
    """Where a secret shows, in any form ``secret_variants`` knows, or as any ``window``-character
    piece of a longer one (a server or a length limit may cut an echo short: half a token is
    still a leak). Names place and secret number only, never the secret."""
    found: set[str] = set()
    for n, secret in enumerate(s for s in secrets if s):
        pieces = set(secret_variants(secret))
        pieces.update(secret[i : i + window] for i in range(0, max(0, len(secret) - window) + 1))
        for place, data in places.items():
            hay = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
            if any(p.encode() in hay for p in pieces):
                found.add(f"{place}: secret #{n + 1} ({len(secret)} chars)")
    return sorted(found)
