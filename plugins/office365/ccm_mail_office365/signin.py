"""msal's ``http_client`` for one account: the account's session, with the sign-in host's "busy"
answers retried and unreadable answers stopped before msal parses them.

Why here and not around ``acquire_token_for_client``: msal raises ``MsalServiceError("HTTP Error:
503")`` for a 5xx and drops Entra's error body (AADSTS code, trace and correlation id) on the way;
and msal's own throttling cache answers a repeated request with the cached 5xx/429 until the
``Retry-After`` has passed by the wall clock. Retrying *below* msal sees every answer with its
body, waits with the transport's ``sleep`` and hands msal only the final, readable answer.

Token and discovery requests carry no mail: repeating them is always safe
(https://learn.microsoft.com/entra/identity-platform/reference-error-codes: 5xx and 429 ask the
client to retry, honouring Retry-After).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from ccm_mail_hookspecs.http import parse_retry_after

from .throttle import WaitBudget, backoff_delay

log = structlog.get_logger("ccm_mail.office365")

#: requests to the sign-in host per token, at most (the first one and three retries)
MAX_ATTEMPTS = 4
#: one Retry-After longer than this is not waited for (the send fails as throttled instead)
MAX_SINGLE_WAIT = 60.0


class SignInBusy(Exception):
    """The sign-in host still answered 5xx/429 after the retries (or asked for too long a wait)."""

    def __init__(self, response: requests.Response, waited: float, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.waited = waited
        self.retry_after = retry_after


class SignInUnreadable(Exception):
    """The sign-in host's answer is not JSON: a proxy's page, or a body cut off."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def is_busy(status: int) -> bool:
    return status == 429 or status >= 500


def _is_json(resp: requests.Response) -> bool:
    try:
        json.loads(resp.text)
    except ValueError:
        return False
    return True


class SignInHttp:
    """The object msal calls as ``http_client`` (``post``/``get`` returning a response)."""

    def __init__(self, session: requests.Session, *, max_wait: float, sleep: Callable[[float], None]) -> None:
        self._session = session
        self._max_wait = max_wait
        self._sleep = sleep

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self._call("POST", url, params=params, data=data, headers=headers, **kwargs)

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        return self._call("GET", url, params=params, headers=headers, **kwargs)

    def close(self) -> None:  # the transport owns the session
        pass

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        budget = WaitBudget(self._max_wait, self._sleep)
        host = urlsplit(url).netloc
        attempt = 0
        while True:
            resp = self._session.request(method, url, **kwargs)
            if not is_busy(resp.status_code):
                if not _is_json(resp):
                    raise SignInUnreadable(resp)
                return resp
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            delay = retry_after if retry_after is not None else backoff_delay(attempt)
            attempt += 1
            if attempt >= MAX_ATTEMPTS or delay > MAX_SINGLE_WAIT or not budget.allows(delay):
                log.warning(
                    "sign_in_busy_give_up",
                    host=host,
                    status=resp.status_code,
                    attempts=attempt,
                    waited=round(budget.waited, 1),
                    retry_after=retry_after,
                )
                raise SignInBusy(resp, budget.waited, retry_after)
            log.info("sign_in_busy", host=host, status=resp.status_code, retry_after=retry_after, delay=round(delay, 2))
            budget.wait(delay)
