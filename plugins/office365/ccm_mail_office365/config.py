"""The account's settings as typed values, with the endpoints resolved.

The host hands over ``AccountSettings.values`` (secrets resolved, defaults filled in). Everything
downstream (tokens, Graph, consent) reads this one object, so the rules "explicit endpoint beats
cloud" and "scope follows the Graph endpoint" live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import AccountSettings, ConfigError, T

from .clouds import CLOUDS, DEFAULT_CLOUD

DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_MAX_WAIT_SECONDS = 120.0
DEFAULT_REDIRECT_URI = "http://localhost:8400/"
#: connect and read timeouts in seconds; a read timeout after sending is an unknown outcome
DEFAULT_TIMEOUT = (10.0, 60.0)


@dataclass(frozen=True, slots=True)
class Office365Config:
    """One Office 365 account, ready to use."""

    account: str
    tenant_id: str
    client_id: str
    mailbox: str
    state_dir: Path
    client_secret: str | None = field(default=None, repr=False)
    certificate: Path | None = None
    certificate_password: str | None = field(default=None, repr=False)
    thumbprint: str | None = None
    cloud: str = DEFAULT_CLOUD
    authority_host: str = ""
    graph_endpoint: str = ""
    ca_bundle: Path | None = None
    proxy: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS
    consent_redirect_uri: str = DEFAULT_REDIRECT_URI
    lang: str = "de"
    timeout: tuple[float, float] = DEFAULT_TIMEOUT

    @classmethod
    def from_settings(cls, settings: AccountSettings) -> Office365Config:
        v: Mapping[str, Any] = settings.values
        cloud = str(v.get("cloud") or DEFAULT_CLOUD)
        if cloud not in CLOUDS:
            raise ConfigError(
                T(f"Unbekannte Cloud {cloud!r}.", f"Unknown cloud {cloud!r}."),
                hint=T("Erlaubt: " + ", ".join(CLOUDS), "Allowed: " + ", ".join(CLOUDS)),
            )
        c = CLOUDS[cloud]
        return cls(
            account=settings.name,
            tenant_id=_text(v.get("tenant_id")),
            client_id=_text(v.get("client_id")),
            mailbox=_text(v.get("mailbox")),
            state_dir=Path(settings.state_dir),
            client_secret=_text(v.get("client_secret")) or None,
            certificate=_path(v.get("certificate")),
            certificate_password=_text(v.get("certificate_password")) or None,
            thumbprint=_text(v.get("thumbprint")).replace(":", "").upper() or None,
            cloud=cloud,
            authority_host=(_text(v.get("authority_host")) or c.authority_host).rstrip("/"),
            graph_endpoint=(_text(v.get("graph_endpoint")) or c.graph_endpoint).rstrip("/"),
            ca_bundle=_path(v.get("ca_bundle")),
            proxy=_text(v.get("proxy")) or None,
            max_concurrency=int(v.get("max_concurrency") or DEFAULT_MAX_CONCURRENCY),
            max_wait_seconds=_number(v.get("max_wait_seconds"), DEFAULT_MAX_WAIT_SECONDS),
            consent_redirect_uri=_text(v.get("consent_redirect_uri")) or DEFAULT_REDIRECT_URI,
            lang=settings.lang,
        )

    @property
    def authority(self) -> str:
        """The tenant's authority URL msal works with, e.g. https://login.microsoftonline.com/<tid>."""
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def scope(self) -> str:
        """Graph's ``.default`` scope of the account's cloud. It names the *resource* (the cloud's
        Graph), not the address we connect to: an explicit ``graph_endpoint`` (a sandbox, a
        proxy) stands in for that cloud's Graph and still wants its tokens."""
        return f"{CLOUDS[self.cloud].graph_endpoint}/.default"

    @property
    def graph_base(self) -> str:
        return f"{self.graph_endpoint}/v1.0"

    @property
    def verify(self) -> str | bool:
        """What ``requests`` should trust: the configured CA bundle, else the system's."""
        return str(self.ca_bundle) if self.ca_bundle else True

    @property
    def proxies(self) -> dict[str, str] | None:
        return {"https": self.proxy, "http": self.proxy} if self.proxy else None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or an error text."""
        return tuple(s for s in (self.client_secret, self.certificate_password) if s)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _number(value: Any, default: float) -> float:
    return default if value is None or value == "" else float(value)


def _path(value: Any) -> Path | None:
    text = _text(value)
    return Path(text).expanduser() if text else None
