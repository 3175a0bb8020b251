"""Test kit for ccm-mail transport authors.

- :class:`TransportConformance`: subclass it in your package's tests to run the conformance suite.
- :class:`FailureCase`: what your ``failing_transport`` fixture returns.
- :class:`HttpEndpoint`: what the kit hands your ``http_transport`` factory (its fault server).
- :func:`http_faults`: the HTTP faults the suite drives an HTTP transport through.
- :func:`capture_logs` / :func:`assert_no_secrets`: the log capture and secret scan the suite uses.
- The pytest plugin (entry point ``pytest11: ccm_mail``) adds the fixtures ``ccm_mail_log_capture``
  and ``ccm_mail_secret_scan``.

See ``docs/writing-a-transport.md``.
"""

from __future__ import annotations

import pytest

# detailed assertion messages in the suite's own module (it is not a test file pytest rewrites)
pytest.register_assert_rewrite(
    "ccm_mail_core.testing.conformance", "ccm_mail_core.testing.logcapture", "ccm_mail_core.testing.http_faults"
)

from .conformance import FailureCase, TransportConformance, normalized_text
from .http_faults import HttpEndpoint, HttpFault, http_faults
from .logcapture import (
    LogCapture,
    assert_no_secrets,
    capture_logs,
    exception_texts,
    find_secrets,
)

__all__ = [
    "FailureCase",
    "HttpEndpoint",
    "HttpFault",
    "LogCapture",
    "TransportConformance",
    "assert_no_secrets",
    "capture_logs",
    "exception_texts",
    "find_secrets",
    "http_faults",
    "normalized_text",
]
