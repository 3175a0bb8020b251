"""Typed view of one SMTP account's values.

The host resolves secrets and fills defaults, but YAML gives strings where ints are meant and
blanks where "not set" is meant; this is the one place that normalizes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import ConfigError, T

from .fields import DEFAULT_PORTS, parse_port, parse_seconds, validate


def _text(values: Mapping[str, Any], name: str, default: str = "") -> str:
    value = values.get(name)
    return default if value is None or value == "" else str(value).strip()


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    sender: str
    auth: str
    username: str
    password: str = field(default="", repr=False)
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    authority_host: str = "login.microsoftonline.com"
    authority_ca_bundle: Path | None = None
    ca_bundle: Path | None = None
    timeout: float = 60.0

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SmtpConfig:
        """Raise :class:`ConfigError` listing every problem; otherwise the normalized config."""
        problems = validate(values)
        if problems:
            raise ConfigError(
                T(
                    "SMTP-Konto ungültig: " + "; ".join(f"{f}: {t.de}" for f, t in problems),
                    "SMTP account invalid: " + "; ".join(f"{f}: {t.en}" for f, t in problems),
                ),
                details={"fields": [f for f, _ in problems]},
            )
        security = _text(values, "security", "starttls")
        sender = _text(values, "sender")
        port = values.get("port")
        timeout = values.get("timeout")
        return cls(
            host=_text(values, "host").strip("[]"),
            port=parse_port(port) if port not in (None, "") else DEFAULT_PORTS[security],
            security=security,
            sender=sender,
            auth=_text(values, "auth", "password"),
            username=_text(values, "username", sender),
            password=str(values.get("password") or ""),
            tenant_id=_text(values, "tenant_id"),
            client_id=_text(values, "client_id"),
            client_secret=str(values.get("client_secret") or ""),
            authority_host=_text(values, "authority_host", "login.microsoftonline.com"),
            authority_ca_bundle=Path(p) if (p := _text(values, "authority_ca_bundle")) else None,
            ca_bundle=Path(p) if (p := _text(values, "ca_bundle")) else None,
            timeout=parse_seconds(timeout) if timeout not in (None, "") else 60.0,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or an error text."""
        return tuple(s for s in (self.password, self.client_secret) if s)
