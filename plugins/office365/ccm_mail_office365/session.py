"""One ``requests`` session per account whose TLS trust, proxy and timeout are fixed per request.

Why not just ``session.verify = ca_bundle``: when ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``)
is set, requests merges the environment *over* ``Session.verify`` and the configured bundle is
silently ignored. Only a ``verify=`` passed with each request wins. The same session serves msal
(through :class:`~.signin.SignInHttp`), so token and discovery calls obey the same settings.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from .config import Office365Config

USER_AGENT = "ccm-mail-office365/1.0"


class _RedactQueries(logging.Filter):
    """urllib3 logs each request line at DEBUG, query included; an upload session's URL carries
    its pre-authenticated token there (``?authtoken=…``). Drop queries from those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "?" in str(record.msg) or any("?" in str(a) for a in (record.args or ()) if isinstance(a, str)):
            from .errors import strip_queries

            record.msg = strip_queries(record.getMessage())
            record.args = ()
        return True


_redactor = _RedactQueries()
for _name in ("urllib3.connectionpool", "urllib3.connection", "requests"):
    if _redactor not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_redactor)


class PinnedSession(requests.Session):
    """A session that forces ``verify``, ``proxies`` and a default ``timeout`` on every request.

    ``trust_env`` is off: with it, requests would let ``REQUESTS_CA_BUNDLE`` replace the trust we
    pass and add ``.netrc`` credentials over our ``Authorization``. An admin's ``HTTPS_PROXY`` /
    ``NO_PROXY`` still apply when the account names no proxy: they are read once per host for the
    life of the session (a reloaded config makes a new one); an explicit proxy in the account wins.
    Once, because on Windows requests reads them from the registry, and a proxy bypass list there
    makes it resolve the host name in DNS, on every request.
    """

    def __init__(
        self, *, verify: str | bool, proxies: dict[str, str] | None, timeout: tuple[float, float], pool_size: int = 10
    ) -> None:
        super().__init__()
        self._pinned_verify = verify
        self._pinned_proxies = proxies
        self._environ_proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._default_timeout = timeout
        # no automatic retries: a retried POST could send an invoice twice; graph.py decides
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers["User-Agent"] = USER_AGENT
        self.trust_env = False

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self._pinned_verify
        proxies = self._pinned_proxies or self._proxies_from_environment(url.decode() if isinstance(url, bytes) else url)
        if proxies:
            kwargs["proxies"] = proxies
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]  # typeshed wants str

    def _proxies_from_environment(self, url: str) -> dict[str, str]:
        host = urlsplit(url)[:2]  # NO_PROXY matches scheme, host and port, never the path
        if host not in self._environ_proxies:
            self._environ_proxies[host] = get_environ_proxies(url)
        return self._environ_proxies[host]


def make_session(config: Office365Config) -> PinnedSession:
    return PinnedSession(
        verify=config.verify, proxies=config.proxies, timeout=config.timeout, pool_size=max(10, config.max_concurrency * 2)
    )
