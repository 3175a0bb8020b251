"""The SMTP transport runs the ccm-mail conformance suite against a real STARTTLS + AUTH server."""

from __future__ import annotations

from collections.abc import Callable, Collection
from email.message import EmailMessage
from pathlib import Path

import pytest
from ccm_mail_hookspecs import Address, AuthenticationError, NetworkError, Transport, UnknownOutcomeError
from smtp_server import Script, SmtpServer, free_port
from smtp_support import PASSWORD, SENDER, MakeTransport

from ccm_mail_core.testing import FailureCase, TransportConformance


class TestSmtpConformance(TransportConformance):
    log_ignore = ("mail.log",)  # aiosmtpd's own log: the server is not under test

    @pytest.fixture
    def transport(self, starttls_server: SmtpServer, make_transport: MakeTransport) -> Transport:
        return make_transport(starttls_server)

    @pytest.fixture
    def sender(self) -> Address:
        return Address(SENDER, "Firma GmbH – Buchhaltung")

    @pytest.fixture
    def received(self, starttls_server: SmtpServer) -> Callable[[str], EmailMessage]:
        return starttls_server.message

    @pytest.fixture
    def delivered_to(self, starttls_server: SmtpServer) -> Callable[[str], Collection[str]]:
        return starttls_server.envelope_recipients

    @pytest.fixture
    def arrivals(self, starttls_server: SmtpServer) -> Callable[[str], int]:
        return starttls_server.arrivals

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [PASSWORD]

    @pytest.fixture(params=["wrong_password", "refused", "untrusted_certificate", "no_answer_after_data"])
    def failing_transport(
        self, request: pytest.FixtureRequest, starttls_server: SmtpServer, make_transport: MakeTransport, tmp_path: Path
    ) -> FailureCase:
        if request.param == "wrong_password":
            return FailureCase(
                make_transport(starttls_server, password=PASSWORD + "x"), AuthenticationError, "wrong password"
            )
        if request.param == "refused":
            return FailureCase(
                make_transport(starttls_server, port=free_port()), NetworkError, "nobody listens on the port"
            )
        if request.param == "untrusted_certificate":
            return FailureCase(
                make_transport(starttls_server, ca_bundle=None), NetworkError, "certificate from an unknown CA"
            )
        starttls_server.script = Script(hang_at="data_end", hang_seconds=2)
        return FailureCase(
            make_transport(starttls_server, timeout=0.5),
            UnknownOutcomeError,
            "no answer after the message was handed over",
        )
