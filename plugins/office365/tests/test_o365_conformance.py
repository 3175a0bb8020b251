"""ccm-mail's transport conformance suite, run over the Microsoft 365 sandbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pytest
from ccm_mail_hookspecs import (
    Address,
    AuthenticationError,
    CcmMailError,
    MailboxError,
    NetworkError,
    Transport,
    UnknownOutcomeError,
)
from o365_support import Account, AccountFactory, find_sent, to_email

from ccm_mail_office365.config import Office365Config
from ccm_mail_office365.transport import Office365Transport

testing = pytest.importorskip("ccm_mail_core.testing.conformance")


class TestOffice365Conformance(testing.TransportConformance):
    recipient_domain = "example.com"
    # the sandbox logs its own requests (Authorization redacted); it is not the transport under test
    log_ignore = ("ccm_mail_office365_sandbox",)

    @pytest.fixture
    def acct(self, make_account: AccountFactory) -> Account:
        return make_account()

    @pytest.fixture
    def transport(self, acct: Account) -> Transport:
        return acct.transport()

    @pytest.fixture
    def sender(self, acct: Account) -> Address:
        return Address(acct.mailbox)

    @pytest.fixture
    def received(self, acct: Account) -> Callable[[str], Any]:
        return lambda message_id: to_email(find_sent(acct, message_id))

    @pytest.fixture
    def arrivals(self, acct: Account) -> Callable[[str], int]:
        return lambda message_id: sum(1 for s in acct.sent() if s.internet_message_id == message_id)

    @pytest.fixture
    def delivered_to(self, acct: Account) -> Callable[[str], Collection[str]]:
        def targets(message_id: str) -> list[str]:
            sent = find_sent(acct, message_id)
            return [*sent.recipients("to"), *sent.recipients("cc"), *sent.recipients("bcc")]

        return targets

    @pytest.fixture
    def secrets(self, acct: Account, sandbox: Any) -> Sequence[str]:
        tokens = list(sandbox.state.tokens)  # every access token the sandbox issued
        return [*acct.secrets(), *tokens]

    @pytest.fixture(params=["wrong_secret", "unknown_mailbox", "refused", "dropped_after_send"])
    def failing_transport(self, request: pytest.FixtureRequest, make_account: AccountFactory, sandbox: Any) -> Any:
        acct = make_account()
        if request.param == "wrong_secret":
            return testing.FailureCase(
                acct.transport(client_secret="falsch-" + (acct.secret or "")), AuthenticationError, "wrong client secret"
            )
        if request.param == "unknown_mailbox":
            return testing.FailureCase(acct.transport(mailbox="niemand@firma.example"), MailboxError, "unknown mailbox")
        if request.param == "refused":
            return testing.FailureCase(
                acct.transport(authority_host="https://127.0.0.1:9", graph_endpoint="https://127.0.0.1:9"),
                NetworkError,
                "nobody listens",
            )
        sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="drop_after_processing", count=1)
        return testing.FailureCase(acct.transport(), UnknownOutcomeError, "connection dropped after sending")

    @pytest.fixture
    def http_transport(self, acct: Account, tmp_path: Path) -> Callable[[Any], Transport]:
        """Graph at the kit's fault server; tokens still come from the sandbox, so the bundle
        trusts both CAs."""

        def make(endpoint: Any) -> Transport:
            bundle = tmp_path / "sandbox-and-kit-ca.pem"
            bundle.write_text(Path(acct.values["ca_bundle"]).read_text() + endpoint.ca_pem)
            settings = acct.settings(graph_endpoint=endpoint.url, ca_bundle=str(bundle), max_wait_seconds=endpoint.max_wait)
            config = Office365Config.from_settings(settings)
            return Office365Transport(dataclasses.replace(config, timeout=(10.0, endpoint.timeout)))

        return make

    def check_error_texts(self, error: CcmMailError) -> None:
        super().check_error_texts(error)
        if isinstance(error, (AuthenticationError, MailboxError)):
            assert error.render("en").count("=") >= 2, f"support ids missing: {error.render('en')}"
