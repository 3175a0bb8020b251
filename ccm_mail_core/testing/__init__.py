"""Test kit for ccm-mail transport authors.

- :class:`TransportConformance`: subclass it in your package's tests to run the conformance suite.
- :class:`FailureCase`: what your ``failing_transport`` fixture returns.
- :func:`capture_logs` / :func:`assert_no_secrets`: the log capture and secret scan the suite uses.
- The pytest plugin (entry point ``pytest11: ccm_mail``) adds the fixtures ``ccm_mail_log_capture``
  and ``ccm_mail_secret_scan``.

See ``docs/writing-a-transport.md``.
"""

from __future__ import annotations

import pytest

# detailed assertion messages in the suite's own module (it is not a test file pytest rewrites)
pytest.register_assert_rewrite("ccm_mail_core.testing.conformance", "ccm_mail_core.testing.logcapture")

from .conformance import FailureCase, TransportConformance, normalized_text
from .logcapture import (
    LogCapture,
    assert_no_secrets,
    capture_logs,
    exception_texts,
    find_secrets,
)

__all__ = ["FailureCase", "LogCapture", "TransportConformance", "assert_no_secrets", "capture_logs",
           "exception_texts", "find_secrets", "normalized_text"]
