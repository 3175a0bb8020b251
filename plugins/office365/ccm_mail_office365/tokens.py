"""App-only access tokens from Entra ID, reused across messages and across processes.

Why a persisted cache: AbSys may start a new process per mail. msal's in-memory cache would then
ask Entra for a token for every message, which is slow and risks AADSTS50196 ("loop detected").
The cache file lives in the account's private state folder, is written atomically with mode 0600
and holds tokens only (msal never stores the client secret or the certificate key in it).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import msal
import requests
import structlog
from ccm_mail_hookspecs import TransportError

from . import errors
from .config import Office365Config
from .credentials import CertificateInfo, client_credential
from .filelock import locked

log = structlog.get_logger("ccm_mail.office365")

CACHE_FILE = "msal_token_cache.json"
LOCK_FILE = "msal_token_cache.lock"


class TokenProvider:
    """Hands out a valid Graph token for one account; thread-safe and process-safe."""

    def __init__(self, config: Office365Config, session: requests.Session) -> None:
        self._config = config
        self._session = session
        self._lock = threading.Lock()
        self._cache = msal.SerializableTokenCache()
        self._cache_stamp: tuple[int, int] | None = None
        self._app: msal.ConfidentialClientApplication | None = None
        #: (access token, monotonic deadline): until then token() skips lock, file and msal
        self._memo: tuple[str, float] | None = None
        self.certificate: CertificateInfo | None = None
        #: how many tokens this provider got from Entra (not from a cache); for tests and logs
        self.network_requests = 0
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cache_path: Path = config.state_dir / CACHE_FILE
        self._lock_path: Path = config.state_dir / LOCK_FILE

    def token(self) -> str:
        """A token valid for at least five more minutes (msal's margin). The last one is kept in
        memory until msal would stop handing it out, so a send costs no file lock, stat or cache
        search (benchmarks/bench_overhead.py)."""
        memo = self._memo
        if memo is not None and time.monotonic() < memo[1]:
            return memo[0]
        return str(self.token_result()["access_token"])

    def token_result(self) -> dict[str, Any]:
        """msal's result dict (``access_token``, ``expires_in``, ``token_source``)."""
        with self._lock, locked(self._lock_path):
            self._load()
            app = self._application()
            started = time.monotonic()
            try:
                result = app.acquire_token_for_client(scopes=[self._config.scope])
            except requests.RequestException as exc:
                raise errors.network_error(exc, _host(self._config.authority_host)) from None
            if "access_token" not in result:
                err = errors.from_token_result(result, self._config.secrets)
                log.warning("token_refused", account=self._config.account, code=err.details.get("code"),
                            trace_id=err.details.get("trace_id"),
                            correlation_id=err.details.get("correlation_id"))
                raise err
            source = result.get("token_source", "identity_provider")
            if source != "cache":
                self.network_requests += 1
                log.info("token_acquired", account=self._config.account, expires_in=result.get("expires_in"),
                         ms=round((time.monotonic() - started) * 1000))
            self._save()
            self._memo = _memo(result, started)
            return dict(result)

    def invalidate(self, rejected: str) -> None:
        """Drop the token Graph refused (e.g. consent revoked, token revoked). Only that one: when
        several threads got the same 401, the first one's fresh token must survive the others."""
        with self._lock, locked(self._lock_path):
            if self._memo is not None and self._memo[0] == rejected:
                self._memo = None
            self._load()
            for at in list(self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                              query={"client_id": self._config.client_id})):
                if at.get("secret") == rejected:
                    self._cache.remove_at(at)
            self._save()
        log.info("token_invalidated", account=self._config.account)

    # -- internals ---------------------------------------------------------------------------

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            credential, self.certificate = client_credential(self._config)
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._config.client_id,
                    client_credential=credential,
                    authority=self._config.authority,
                    token_cache=self._cache,
                    http_client=self._session,
                    # we know the cloud's hosts; discovery would call login.microsoftonline.com even
                    # for a national cloud or the sandbox
                    instance_discovery=False,
                    app_name="ccm-mail-office365",
                )
            except requests.RequestException as exc:
                raise errors.network_error(exc, _host(self._config.authority_host)) from None
            except ValueError as exc:  # OIDC discovery failed: unknown tenant, wrong host
                raise errors.from_discovery_error(exc, self._config.secrets) from None
        return self._app

    def _load(self) -> None:
        try:
            st = self.cache_path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._cache_stamp:
            return
        if os.name == "posix" and st.st_mode & 0o077:
            os.chmod(self.cache_path, 0o600)
            log.warning("token_cache_permissions_fixed", account=self._config.account)
        try:
            self._cache.deserialize(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("token_cache_unreadable", account=self._config.account)
        self._cache_stamp = stamp

    def _save(self) -> None:
        if not self._cache.has_state_changed:
            return
        tmp = self.cache_path.with_name(f".{CACHE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self._cache.serialize())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.cache_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TransportError(f"Token cache cannot be written: {self.cache_path} ({exc.strerror})") from exc
        self._cache.has_state_changed = False
        st = self.cache_path.stat()
        self._cache_stamp = (st.st_mtime_ns, st.st_size)


def _memo(result: dict[str, Any], started: float) -> tuple[str, float] | None:
    """Until when msal would return this token from its cache: five minutes before it expires,
    or when msal wants it refreshed early (``refresh_in``), whichever is first."""
    try:
        ends = [float(result["expires_in"]) - 300]
        if result.get("refresh_in") is not None:
            ends.append(float(result["refresh_in"]))
        if result.get("refresh_on") is not None:
            ends.append(float(result["refresh_on"]) - time.time())
    except (KeyError, TypeError, ValueError):
        return None
    return (str(result["access_token"]), started + min(ends)) if min(ends) > 0 else None


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
