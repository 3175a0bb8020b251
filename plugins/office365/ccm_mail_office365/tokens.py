"""App-only access tokens from Entra ID, reused across messages and across processes.

Why a persisted cache: AbSys may start a new process per mail. msal's in-memory cache would then
ask Entra for a token for every message, which is slow and risks AADSTS50196 ("loop detected").
The cache file lives in the account's private state folder, is written atomically with mode 0600
and holds tokens only (msal never stores the client secret or the certificate key in it). Next to
it msal's ``http_cache`` (:mod:`.http_cache`) keeps the discovery answer, so a process with a
valid cached token makes no request to the sign-in host at all.

A token carries the app's roles as they were when it was issued: one fetched before admin
consent has no ``roles`` and would keep failing with 403 until it expires. So consent drops the
cached tokens (:func:`drop_cached_tokens`), and a 403 with a token that lacks the role gets one
fresh token (:meth:`TokenProvider.refresh_for_roles`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msal
import requests
import structlog
from ccm_mail_hookspecs import T, TransportError, redaction
from ccm_mail_hookspecs.http import classify_exception, is_network_error
from msal.exceptions import MsalServiceError

from . import errors
from .config import Office365Config
from .credentials import CertificateInfo, client_credential
from .http_cache import PersistedHttpCache
from .signin import SignInBusy, SignInHttp, SignInUnreadable
from .state_files import account_lock, read_private, stamp, write_private

log = structlog.get_logger("ccm_mail.office365")

CACHE_FILE = "msal_token_cache.json"
#: after a role refresh, the next one waits this long: a batch without consent must not turn
#: into a stream of token requests (AADSTS50196)
ROLE_REFRESH_INTERVAL = 30.0
#: a remembered token is used while it has this many seconds left (msal refreshes at five minutes too)
MEMO_MARGIN = 300.0

_live: weakref.WeakSet[TokenProvider] = weakref.WeakSet()
_live_lock = threading.Lock()


class TokenProvider:
    """Hands out a valid Graph token for one account; thread-safe and process-safe."""

    def __init__(
        self,
        config: Office365Config,
        session: requests.Session,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._cache = msal.SerializableTokenCache()
        self._cache_stamp: tuple[int, int] | None = None
        #: the last token with its end and the cache file's stamp when it was had: while both still
        #: hold, a send needs neither the file lock nor msal (the file changing, e.g. after consent,
        #: sends it the long way again)
        self._memo: tuple[dict[str, Any], float, tuple[int, int] | None] | None = None
        self._app: msal.ConfidentialClientApplication | None = None
        self._http = SignInHttp(session, max_wait=config.max_wait_seconds, sleep=sleep)
        self._clock = clock
        self._last_role_refresh: float | None = None
        self.certificate: CertificateInfo | None = None
        #: how many tokens this provider got from Entra (not from a cache); for tests and logs
        self.network_requests = 0
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cache_path: Path = config.state_dir / CACHE_FILE
        self.http_cache = PersistedHttpCache(config.state_dir, config.account)
        with _live_lock:
            _live.add(self)

    def token(self) -> str:
        """A token valid for at least five more minutes (msal's margin)."""
        return str(self.token_result()["access_token"])

    def token_result(self, *, fresh: bool = False) -> dict[str, Any]:
        """msal's result dict (``access_token``, ``expires_in``, ``token_source``). ``fresh``
        drops the cached token first, so the token endpoint is asked: the connection test proves
        the credential that is configured now, not the one a cached token was issued for."""
        with self._lock:
            memo = self._memo
            if not fresh and memo is not None and memo[1] - time.time() > MEMO_MARGIN and stamp(self.cache_path) == memo[2]:
                return dict(memo[0])
        with self._lock, account_lock(self._config.state_dir):
            self._load()
            app = self._application()
            if fresh:
                self._remove_access_tokens(lambda at: True)
            started = time.monotonic()
            try:
                result = app.acquire_token_for_client(scopes=[self._config.scope])
            except BaseException as exc:
                raise _sign_in_error(exc, self._config) from None
            finally:
                self._save()
            if "access_token" not in result:
                err = errors.from_token_result(result, self._config.secrets)
                log.warning(
                    "token_refused",
                    account=self._config.account,
                    code=err.details.get("code"),
                    trace_id=err.details.get("trace_id"),
                    correlation_id=err.details.get("correlation_id"),
                )
                raise err
            redaction.remember(str(result["access_token"]))  # whatever its shape: never in a text
            self._memo = (dict(result, token_source="cache"), time.time() + float(result.get("expires_in", 0)), self._cache_stamp)
            if result.get("token_source", "identity_provider") != "cache":
                self.network_requests += 1
                log.info(
                    "token_acquired",
                    account=self._config.account,
                    expires_in=result.get("expires_in"),
                    ms=round((time.monotonic() - started) * 1000),
                )
            return dict(result)

    def invalidate(self, rejected: str) -> None:
        """Drop the token Graph refused (e.g. consent revoked, token revoked). Only that one: when
        several threads got the same 401, the first one's fresh token must survive the others."""
        with self._lock, account_lock(self._config.state_dir):
            if self._memo is not None and self._memo[0].get("access_token") == rejected:
                self._memo = None
            self._load()
            self._remove_access_tokens(lambda at: at.get("secret") == rejected)
            self._save()
        log.info("token_invalidated", account=self._config.account)

    def refresh_for_roles(self, rejected: str) -> bool:
        """Graph answered 403 and ``rejected`` lacks the role the request needs: drop it, so the
        next :meth:`token` is a new one with the roles the app has now (a 403 means nothing was
        done, so the request may be repeated). False, and nothing dropped, when this provider did
        so within :data:`ROLE_REFRESH_INTERVAL` seconds."""
        now = self._clock()
        with self._lock:
            if self._last_role_refresh is not None and now - self._last_role_refresh < ROLE_REFRESH_INTERVAL:
                return False
            self._last_role_refresh = now
        self.invalidate(rejected)
        log.info("token_refreshed_for_roles", account=self._config.account)
        return True

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
                    http_client=self._http,
                    http_cache=self.http_cache,
                    # we know the cloud's hosts; discovery would call login.microsoftonline.com even
                    # for a national cloud or the sandbox
                    instance_discovery=False,
                    app_name="ccm-mail-office365",
                )
            except ValueError as exc:  # OIDC discovery failed: unknown tenant, wrong host
                raise errors.from_discovery_error(exc, self._config.secrets) from None
            except BaseException as exc:
                raise _sign_in_error(exc, self._config) from None
            finally:
                self.http_cache.save()
        return self._app

    def _remove_access_tokens(self, which: Callable[[dict[str, Any]], bool]) -> None:
        for at in list(
            self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, query={"client_id": self._config.client_id})
        ):
            if which(at):
                self._cache.remove_at(at)

    def _forget_in_memory(self) -> None:
        """Another part of this process dropped the account's tokens on disk (after consent)."""
        with self._lock:
            self._memo = None
            self._remove_access_tokens(lambda at: True)
            self._cache.has_state_changed = False
            self._cache_stamp = None

    def _load(self) -> None:
        self.http_cache.load()
        current = stamp(self.cache_path)
        if current is None or current == self._cache_stamp:
            return
        text = read_private(self.cache_path, self._config.account)
        try:
            self._cache.deserialize(text or "{}")
        except ValueError:
            log.warning("token_cache_unreadable", account=self._config.account)
        self._cache_stamp = current

    def _save(self) -> None:
        self.http_cache.save()
        if not self._cache.has_state_changed:
            return
        try:
            self._cache_stamp = write_private(self.cache_path, self._cache.serialize())
        except OSError as exc:
            raise TransportError(
                T(
                    f"Der Token-Cache lässt sich nicht schreiben: {self.cache_path} ({exc.strerror}).",
                    f"The token cache cannot be written: {self.cache_path} ({exc.strerror}).",
                ),
                hint=T(
                    "Schreibrechte auf den Zustandsordner des Kontos prüfen.", "Check write access to the account's state folder."
                ),
            ) from exc
        self._cache.has_state_changed = False


def drop_cached_tokens(config: Office365Config) -> int:
    """Forget every cached access token of the account's app, on disk and in every token provider
    of this process (after a successful admin consent: the old tokens lack the new roles).
    Returns how many tokens the file held."""
    path = config.state_dir / CACHE_FILE
    dropped = 0
    if config.state_dir.is_dir():
        with account_lock(config.state_dir):
            text = read_private(path, config.account)
            if text:
                cache = msal.SerializableTokenCache()
                try:
                    cache.deserialize(text)
                except ValueError:
                    cache = msal.SerializableTokenCache()
                for at in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, query={"client_id": config.client_id})):
                    cache.remove_at(at)
                    dropped += 1
                if cache.has_state_changed:
                    write_private(path, cache.serialize())
    with _live_lock:
        providers = [p for p in _live if p.cache_path == path and p._config.client_id == config.client_id]
    for provider in providers:
        provider._forget_in_memory()
    log.info("tokens_dropped_after_consent", account=config.account, dropped=dropped)
    return dropped


def token_roles(token: str) -> set[str] | None:
    """The application permissions (``roles`` claim) in a JWT access token, or None when the token
    is not a readable JWT. Only used to explain and to decide on a role refresh; Graph decides."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims: Any = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return {str(r) for r in roles} if isinstance(roles, list) else set()


def _sign_in_error(exc: BaseException, config: Office365Config) -> BaseException:
    """What the sign-in host's failure means for the admin; nothing was sent in any case."""
    host = _host(config.authority_host)
    if isinstance(exc, SignInBusy):
        return errors.sign_in_busy(exc.response, exc.waited, exc.retry_after, config.secrets)
    if isinstance(exc, SignInUnreadable):
        return errors.unreadable_answer(exc.response, T("Anmeldung bei Microsoft", "Signing in at Microsoft"), config.secrets)
    if is_network_error(exc):  # a token request carries no mail: whatever broke, nothing was sent
        return errors.network_error(classify_exception(exc), host, "Microsoft Entra ID")
    if isinstance(exc, MsalServiceError):  # not expected with SignInHttp below msal; never shown raw
        return TransportError(
            T(
                f"Die Anmeldung bei {host} ist fehlgeschlagen; es wurde nichts gesendet.",
                f"Signing in at {host} failed; nothing was sent.",
            ),
            details={"code": "sign_in_failed", "host": host},
        )
    return exc


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
