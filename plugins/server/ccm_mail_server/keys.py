"""API keys: one for sending (workstations) and one for settings (admins; it may send too).

Generated on the first start, 256 bits from :mod:`secrets`, stored owner-only (a 0600 file in
the keys folder, or the keyring: the Windows Credential Manager of the service account), rotated
with ``ccm-mail serve --new-key`` (the running service notices within a second; the old key stops
working). A presented key is compared in constant time against every scope's key. Keys are never
logged; a request is identified by the key's *id* (the first 12 hex digits of its SHA-256).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path

from ccm_mail_hookspecs import ConfigError, T
from ccm_mail_hookspecs.redaction import remember

SCOPES = ("send", "settings")
#: what each scope may do: a settings key may also send
GRANTS = {"send": frozenset({"send"}), "settings": frozenset({"send", "settings"})}
KEYRING_SERVICE = "ccm-mail"
#: how long a key read from the keyring is trusted before it is read again (rotation)
KEYRING_TTL = 5.0


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def new_key(scope: str) -> str:
    return f"ccm_{scope}_{secrets.token_urlsafe(32)}"


class KeyStore:
    """The service's keys. ``kind`` is ``file`` (``folder/<scope>.key``, 0600) or ``keyring``."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[object, bytes | None]] = {}  # scope → (stamp, sha256 of the key)

    def path(self, scope: str) -> Path:
        return self.folder / f"{scope}.key"

    # ---- reading ------------------------------------------------------------------------------
    def _read(self, scope: str) -> str | None:
        if self.kind == "keyring":
            try:
                import keyring

                return keyring.get_password(KEYRING_SERVICE, f"server/{scope}") or None
            except Exception as exc:  # every backend has its own errors
                raise ConfigError(
                    T(
                        f"Schlüsselbund nicht lesbar ({type(exc).__name__}).",
                        f"keyring cannot be read ({type(exc).__name__}).",
                    )
                ) from None
        try:
            return self.path(scope).read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            return None

    def _stamp(self, scope: str) -> object:
        if self.kind == "keyring":
            return int(time.monotonic() / KEYRING_TTL)
        try:
            info = self.path(scope).stat()
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _digest(self, scope: str) -> bytes | None:
        stamp = self._stamp(scope)
        with self._lock:
            cached = self._cache.get(scope)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            key = self._read(scope)
            if key is not None:
                remember(key)  # never in a log line, an error or a journal row
            digest = hashlib.sha256(key.encode("utf-8")).digest() if key else None
            self._cache[scope] = (stamp, digest)
            return digest

    def scope_of(self, presented: str) -> str | None:
        """The scope whose key this is, or None. Every scope is compared, in constant time."""
        return self.scope_of_digest(hashlib.sha256(presented.encode("utf-8")).digest())

    def scope_of_digest(self, given: bytes) -> str | None:
        """:meth:`scope_of` for a key known by its SHA-256 (what a browser session keeps)."""
        found = None
        for scope in SCOPES:
            digest = self._digest(scope)
            if digest is not None and hmac.compare_digest(given, digest):
                found = scope
        return found

    def get(self, scope: str) -> str | None:
        return self._read(scope)

    # ---- writing ------------------------------------------------------------------------------
    def ensure(self) -> list[str]:
        """Make the keys that are missing (the first start); returns their scopes."""
        made = []
        for scope in SCOPES:
            if self._read(scope) is None:
                self.rotate(scope)
                made.append(scope)
        return made

    def rotate(self, scope: str) -> str:
        key = new_key(scope)
        if self.kind == "keyring":
            from ccm_mail_core.config.secrets import store_in_keyring

            store_in_keyring(f"{KEYRING_SERVICE}/server/{scope}", key)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            if os.name == "posix":
                os.chmod(self.folder, 0o700)
            tmp = self.folder / f".{scope}.key.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(key + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(scope))
        remember(key)
        with self._lock:
            self._cache.pop(scope, None)
        return key

    def where(self, scope: str) -> str:
        return f"keyring {KEYRING_SERVICE}/server/{scope}" if self.kind == "keyring" else str(self.path(scope))
