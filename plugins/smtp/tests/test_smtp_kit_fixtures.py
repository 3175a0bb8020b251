"""The kit's pytest fixtures (entry point ``pytest11: ccm_mail``) as a transport author uses them."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import make_msgid
from typing import Any

import pytest
from ccm_mail_hookspecs import Address, Message
from smtp_server import SmtpServer
from smtp_support import PASSWORD, SENDER, MakeTransport


def test_secret_scan_passes_for_a_real_send(
    starttls_server: SmtpServer, make_transport: MakeTransport, ccm_mail_secret_scan: Callable[..., None]
) -> None:
    receipt = make_transport(starttls_server).send(
        Message(
            subject="Kit", to=[Address("kunde@example.com")], text="x", sender=Address(SENDER), message_id=make_msgid()
        )
    )
    ccm_mail_secret_scan([PASSWORD])  # the captured logs
    ccm_mail_secret_scan([PASSWORD], receipt=repr(receipt))


def test_secret_scan_fails_without_printing_the_secret(
    ccm_mail_log_capture: Any, ccm_mail_secret_scan: Callable[..., None]
) -> None:
    import logging

    logging.getLogger("ccm_mail.test").debug("password=%s", PASSWORD)
    assert any("password=" in line for line in ccm_mail_log_capture.texts())
    with pytest.raises(AssertionError) as info:
        ccm_mail_secret_scan([PASSWORD])
    assert "log: secret #1" in str(info.value) and PASSWORD not in str(info.value)
