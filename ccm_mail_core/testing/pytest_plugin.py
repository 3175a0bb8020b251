"""pytest plugin of ccm-mail (entry point ``pytest11: ccm_mail``), loaded automatically wherever
ccm-mail-core is installed.

Fixtures for plugin authors:

``ccm_mail_log_capture``
    A :class:`~ccm_mail_core.testing.logcapture.LogCapture` collecting structlog events and stdlib
    log records (DEBUG and up) for the whole test.
``ccm_mail_secret_scan``
    A function ``scan(secrets, **places)``: each place is a string or a list of strings (log lines,
    error texts, a receipt's repr); fails naming the place, never printing the secret. Called with
    no places it scans the test's captured logs.

The conformance suite itself is a class to subclass, see :mod:`ccm_mail_core.testing.conformance`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from .logcapture import LogCapture, assert_no_secrets, capture_logs


@pytest.fixture
def ccm_mail_log_capture() -> Iterator[LogCapture]:
    """structlog events and stdlib log records (DEBUG and up) of this test, unredacted."""
    with capture_logs() as capture:
        yield capture


@pytest.fixture
def ccm_mail_secret_scan(ccm_mail_log_capture: LogCapture) -> Callable[..., None]:
    """``scan(secrets, **places)``: fail if a secret occurs in a place; no places: the test's logs."""

    def scan(secrets: Iterable[str], **places: str | Iterable[str]) -> None:
        normalized = {k: [v] if isinstance(v, str) else list(v) for k, v in places.items()}
        if not normalized:
            normalized = {"log": ccm_mail_log_capture.texts()}
        assert_no_secrets(secrets, normalized)

    return scan
