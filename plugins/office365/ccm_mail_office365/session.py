"""One ``requests`` session per account whose TLS trust, proxy and timeout are fixed per request.

Why not just ``session.verify = ca_bundle``: when ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``)
is set, requests merges the environment *over* ``Session.verify`` and the configured bundle is
silently ignored. Only a ``verify=`` passed with each request wins. The same session is handed to
msal as its ``http_client`` so token and discovery calls obey the same settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.hooks import dispatch_hook
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

    An admin's ``HTTPS_PROXY`` / ``NO_PROXY`` still apply when the account names no proxy, but
    they are read once per host instead of on every request: with ``trust_env`` on, requests
    scans the whole environment (and looks for a ``.netrc`` file) for each call, which cost more
    per message than the rest of the pipeline. An explicit proxy in the account wins.
    """

    def __init__(self, *, verify: str | bool, proxies: dict[str, str] | None,
                 timeout: tuple[float, float], pool_size: int = 10) -> None:
        super().__init__()
        self._pinned_verify = verify
        self._pinned_proxies = proxies
        self._default_timeout = timeout
        # no automatic retries: a retried POST could send an invoice twice; graph.py decides
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers["User-Agent"] = USER_AGENT
        self.trust_env = False
        self._env_proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._urls: dict[str, str] = {}

    def _proxies_for(self, url: str) -> dict[str, str]:
        if self._pinned_proxies:
            return self._pinned_proxies
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._env_proxies:
            self._env_proxies[key] = get_environ_proxies(url)
        return self._env_proxies[key]

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self._pinned_verify
        proxies = self._proxies_for(url.decode() if isinstance(url, bytes) else url)
        if proxies:
            kwargs["proxies"] = proxies
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]

    def build(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, json: Any = None,
              data: bytes | None = None, params: Mapping[str, str] | None = None) -> requests.PreparedRequest:
        """A Graph request built with requests' own ``PreparedRequest`` steps, minus the session's
        cookie jar: Graph uses no cookies, and merging jars was the costliest part of building."""
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        if params or "?" in url:  # lookups, and upload URLs that carry a token: never kept
            prepared.prepare_url(url, params)
        else:  # the same few URLs over and over (sendMail per mailbox): encode each once
            cached = self._urls.get(url)
            if cached is None:
                prepared.prepare_url(url, None)
                if len(self._urls) < 64:
                    self._urls[url] = str(prepared.url)
            else:
                prepared.url = cached
        prepared.prepare_headers({**self.headers, **(headers or {})})
        prepared.prepare_body(data, None, json)
        prepared.prepare_hooks(self.hooks)
        return prepared

    def send_pinned(self, prepared: requests.PreparedRequest, *, timeout: tuple[float, float] | None = None
                    ) -> requests.Response:
        """Send a request from :meth:`build` through the mounted adapter with the pinned trust,
        proxy and timeout. Redirects are not followed and no cookies kept: Graph's API answers
        need neither, and a redirected POST must never be sent a second time anyway."""
        url = str(prepared.url)
        response = self.get_adapter(url).send(prepared, stream=False, timeout=timeout or self._default_timeout,
                                              verify=self._pinned_verify, cert=None, proxies=self._proxies_for(url))
        response = dispatch_hook("response", prepared.hooks, response)
        response.content  # noqa: B018 - read the body so the connection goes back to the pool
        return response


def make_session(config: Office365Config) -> PinnedSession:
    return PinnedSession(verify=config.verify, proxies=config.proxies, timeout=config.timeout,
                         pool_size=max(10, config.max_concurrency * 2))
