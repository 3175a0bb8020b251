"""msal's own ``http_cache``, kept in the account's state folder so a new process finds it.

Why: msal reads the tenant's OpenID configuration (``…/v2.0/.well-known/openid-configuration``)
whenever an application object is built, i.e. once per process, even when a valid token is
cached. AbSys starts a process per mail, so every mail touched the sign-in host and failed when
that host was down. msal caches such answers in ``http_cache`` (24 h for discovery); this module
only persists that mapping. msal decides what goes in and for how long.

Why JSON and not msal's pickle recipe: the file sits next to the token cache, often on a server
share; unpickling a file that someone else could write runs their code. msal stores response
objects (status, text, headers) and its expiry index; both are plain data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import structlog
from msal.exceptions import MsalServiceError
from msal.oauth2cli.http import Response

from .state_files import Stamp, read_private, stamp, write_private

log = structlog.get_logger("ccm_mail.office365")

FILE = "msal_http_cache.json"


class CachedResponse(Response):
    """An answer msal cached, read back (msal's documented response shape)."""

    def __init__(self, status_code: int, text: str, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = headers

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise MsalServiceError(f"HTTP Error: {self.status_code}", error=None, error_description=None)


def _encode(value: Any) -> dict[str, Any] | None:
    if all(hasattr(value, a) for a in ("status_code", "text", "headers")):
        return {
            "response": {
                "status_code": int(value.status_code),
                "text": str(value.text),
                "headers": {str(k): str(v) for k, v in dict(value.headers).items()},
            }
        }
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None  # nothing msal stores today; never worth failing a send for
    return {"value": value}


def _decode(item: Any) -> Any:
    if "response" in item:
        r = item["response"]
        return CachedResponse(int(r["status_code"]), str(r["text"]), dict(r["headers"]))
    return item["value"]


class PersistedHttpCache(MutableMapping[str, Any]):
    """A dict for msal, loaded from and saved to one private JSON file. Not locked itself: the
    token provider calls :meth:`load` and :meth:`save` under the account's file lock."""

    def __init__(self, directory: Path, account: str) -> None:
        self.path = directory / FILE
        self._account = account
        self._data: dict[str, Any] = {}
        self._stamp: Stamp | None = None
        self._changed = False

    def load(self) -> None:
        """Take over another process's changes. The mapping object stays the same one: msal
        holds a reference to it."""
        current = stamp(self.path)
        if current is None or current == self._stamp:
            return
        text = read_private(self.path, self._account)
        data: dict[str, Any] = {}
        try:
            raw = json.loads(text) if text else {}
            data = {str(k): _decode(v) for k, v in raw.items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("http_cache_unreadable", account=self._account)  # rebuilt by msal as it goes
            self._changed = True
        self._data.clear()
        self._data.update(data)
        self._stamp = current

    def save(self) -> None:
        if not self._changed:
            return
        encoded = {k: e for k, e in ((k, _encode(v)) for k, v in self._data.items()) if e is not None}
        self._stamp = write_private(self.path, json.dumps(encoded, ensure_ascii=False))
        self._changed = False

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._changed = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
