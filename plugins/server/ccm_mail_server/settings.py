"""The service's own settings, under ``plugins.settings.server`` in the YAML (checked by the
plugin's ``ccm_mail_configure`` hook, so ``config check`` lists their problems too)::

    plugins:
      settings:
        server:
          listen: 127.0.0.1:8410      # anything but loopback needs tls_cert and tls_key
          tls_cert: server.pem        # paths relative to the config file
          tls_key: server-key.pem
          keys: file                  # file (0600, in keys_dir) or keyring
          keys_dir: C:\\ProgramData\\ccm-mail\\server
          max_request_mb: 64          # the largest request body (attachments travel base64-encoded)
          threads: 32                 # requests at once; a silent connection holds one for 15 s at most
          attachment_dirs: []         # folders on this machine whose files callers may name by path
          outbox_seconds: 30          # how often unknown outcomes are looked up
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import ConfigError, T

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8410
KEYS = (
    "listen",
    "tls_cert",
    "tls_key",
    "keys",
    "keys_dir",
    "max_request_mb",
    "threads",
    "attachment_dirs",
    "outbox_seconds",
)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``HOST``; raises ValueError."""
    text = str(value).strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or str(DEFAULT_PORT)
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:  # a bare IPv6 address
        host, port = text, str(DEFAULT_PORT)
    else:
        host, port = text, str(DEFAULT_PORT)
    number = int(port)
    if not host or not 0 <= number < 65536:  # 0: any free port (tests)
        raise ValueError(text)
    return host, number


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keys: str = "file"
    keys_dir: Path | None = None
    max_request_bytes: int = 64 * 1024 * 1024
    threads: int = 32
    attachment_dirs: tuple[Path, ...] = field(default_factory=tuple)
    outbox_seconds: float = 30.0

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @staticmethod
    def problems_of(settings: Mapping[str, Any]) -> list[T]:
        problems = [
            T(
                f"plugins.settings.server.{k}: unbekannter Schlüssel (erlaubt: {', '.join(KEYS)})",
                f"plugins.settings.server.{k}: unknown key (allowed: {', '.join(KEYS)})",
            )
            for k in settings
            if k not in KEYS
        ]
        if "listen" in settings:
            try:
                parse_listen(str(settings["listen"]))
            except ValueError:
                problems.append(
                    T(
                        f"plugins.settings.server.listen: {settings['listen']!r} ist nicht HOST:PORT",
                        f"plugins.settings.server.listen: {settings['listen']!r} is not HOST:PORT",
                    )
                )
        if ("tls_cert" in settings) != ("tls_key" in settings):
            problems.append(
                T(
                    "plugins.settings.server: tls_cert und tls_key gehören zusammen",
                    "plugins.settings.server: tls_cert and tls_key go together",
                )
            )
        if settings.get("keys", "file") not in ("file", "keyring"):
            problems.append(
                T("plugins.settings.server.keys: file oder keyring", "plugins.settings.server.keys: file or keyring")
            )
        for key, low in (("max_request_mb", 1), ("threads", 1), ("outbox_seconds", 1)):
            if key in settings:
                value = settings[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                    problems.append(
                        T(
                            f"plugins.settings.server.{key}: {value!r} ist keine Zahl ≥ {low}",
                            f"plugins.settings.server.{key}: {value!r} is not a number ≥ {low}",
                        )
                    )
        dirs = settings.get("attachment_dirs", [])
        if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
            problems.append(
                T(
                    "plugins.settings.server.attachment_dirs: eine Liste von Ordnern",
                    "plugins.settings.server.attachment_dirs: a list of folders",
                )
            )
        return problems

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], base: Path, *, listen: str | None = None) -> ServerSettings:
        """The settings with paths resolved against the config file's folder; ``listen`` (the
        command line's) wins over the file's."""
        problems = cls.problems_of(settings)
        if listen is not None:
            try:
                parse_listen(listen)
            except ValueError:
                problems.append(
                    T(f"--listen: {listen!r} ist nicht HOST:PORT", f"--listen: {listen!r} is not HOST:PORT")
                )
        if problems:
            raise ConfigError(T("; ".join(p.de for p in problems), "; ".join(p.en for p in problems)))
        host, port = parse_listen(listen or str(settings.get("listen", f"{DEFAULT_HOST}:{DEFAULT_PORT}")))

        def path(key: str) -> Path | None:
            return (base / str(settings[key])).resolve() if settings.get(key) else None

        return cls(
            host=host,
            port=port,
            tls_cert=path("tls_cert"),
            tls_key=path("tls_key"),
            keys=str(settings.get("keys", "file")),
            keys_dir=path("keys_dir"),
            max_request_bytes=int(float(settings.get("max_request_mb", 64)) * 1024 * 1024),
            threads=int(settings.get("threads", 32)),
            attachment_dirs=tuple((base / d).resolve() for d in settings.get("attachment_dirs", [])),
            outbox_seconds=float(settings.get("outbox_seconds", 30)),
        )

    def check_binding(self) -> None:
        """Anything but loopback only with TLS: an API key must never cross a network in clear."""
        for p in (self.tls_cert, self.tls_key):
            if p is not None and not p.is_file():
                raise ConfigError(
                    T(f"TLS-Datei {p} fehlt; nicht gestartet.", f"TLS file {p} is missing; not started."),
                    hint=T(
                        "plugins.settings.server.tls_cert/tls_key prüfen.",
                        "Check plugins.settings.server.tls_cert/tls_key.",
                    ),
                )
        if is_loopback(self.host) or self.tls:
            return
        raise ConfigError(
            T(
                f"'ccm-mail serve' lauscht auf {self.host}:{self.port} nur mit TLS: dort gingen API-Schlüssel und "
                "Rechnungen unverschlüsselt durchs Netz. Nicht gestartet.",
                f"'ccm-mail serve' listens on {self.host}:{self.port} only with TLS: API keys and invoices would cross "
                "the network unencrypted. Not started.",
            ),
            hint=T(
                "Unter plugins.settings.server tls_cert und tls_key (PEM-Dateien des Zertifikats) angeben, oder "
                "auf 127.0.0.1 lauschen.",
                "Give tls_cert and tls_key (the certificate's PEM files) under plugins.settings.server, or listen "
                "on 127.0.0.1.",
            ),
        )
