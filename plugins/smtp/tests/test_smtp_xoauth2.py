"""XOAUTH2 with Office 365 client credentials: msal fetches the token from the local Microsoft 365
sandbox (real HTTPS, its own CA), the SMTP server accepts only tokens that sandbox issued for
``https://outlook.office365.com`` with the SMTP.SendAsApp role."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Self

import cli_support
import pytest
from ccm_mail_hookspecs import Address, AuthenticationError, Message, NetworkError, Transport, redaction
from ccm_mail_smtp.oauth import xoauth2_base64, xoauth2_string
from smtp_server import Script, SmtpServer, free_port
from smtp_support import SENDER, MakeTransport, leaks

from ccm_mail_core.testing import (
    FailureCase,
    TransportConformance,
    assert_no_secrets,
    capture_logs,
    exception_texts,
)

sandbox_module = pytest.importorskip("ccm_mail_office365_sandbox")

TENANT = "7a1c2f0e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
SECRET = "xo~Q8Q~client.secret-value-4711"


class Office365:
    """The sandbox with one tenant, an app allowed to send via SMTP, and one without the role."""

    def __init__(self, state_dir: Path) -> None:
        self.sb = sandbox_module.Sandbox(state_dir=state_dir)

    def __enter__(self) -> Self:
        self.sb.start()
        self.tenant = self.sb.add_tenant(TENANT)
        self.app = self.sb.add_app(TENANT, secret=SECRET, permissions={"SMTP.SendAsApp"})
        self.graph_only = self.sb.add_app(TENANT, secret=SECRET, permissions={"Mail.Send"})
        self.sb.add_mailbox(TENANT, SENDER)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sb.stop()

    def token_check(self, user: str, token: str) -> bool:
        """What Exchange checks: issued for Exchange Online, role SMTP.SendAsApp, not expired."""
        info = self.sb.state.tokens.get(token)
        return (
            info is not None
            and info.resource == "https://outlook.office365.com"
            and "SMTP.SendAsApp" in info.roles
            and info.expires_at > time.time()
            and user.lower() == SENDER
        )

    def secrets(self) -> list[str]:
        return [SECRET, *self.sb.state.tokens]


class LiveSecrets:
    """The client secret plus every token the sandbox has issued *by the time of the scan*."""

    def __init__(self, o365: Office365) -> None:
        self.o365 = o365

    def __iter__(self) -> Iterator[str]:
        return iter(self.o365.secrets())


@pytest.fixture(scope="module")
def o365(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office365]:
    with Office365(tmp_path_factory.mktemp("o365")) as o365:
        yield o365


@pytest.fixture
def xoauth_server(server_tls: ssl.SSLContext, o365: Office365) -> Iterator[SmtpServer]:
    with SmtpServer("starttls", server_tls, token_check=o365.token_check) as server:
        yield server


@pytest.fixture
def system_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # REQUESTS_CA_BUNDLE beats Session.verify; the transport must still trust the sandbox's CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)


def xoauth(make_transport: MakeTransport, server: SmtpServer, o365: Office365, **overrides: object) -> Transport:
    values: dict[str, object] = {
        "auth": "xoauth2",
        "password": None,
        "tenant_id": TENANT,
        "client_id": o365.app.client_id,
        "client_secret": SECRET,
        "authority_host": o365.sb.authority_host,
        "authority_ca_bundle": o365.sb.ca_pem,
    }
    values.update(overrides)
    return make_transport(server, **values)


def message() -> Message:
    return Message(
        subject="XOAUTH2",
        to=[Address("kunde@example.com")],
        text="Hallo",
        sender=Address(SENDER),
        message_id=make_msgid(domain="test.ccm-mail"),
    )


def test_sends_with_a_token_for_exchange(
    xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport, system_ca_env: None
) -> None:
    before = o365.sb.token_request_count(o365.app.client_id)
    transport = xoauth(make_transport, xoauth_server, o365)
    messages = [message() for _ in range(3)]
    for msg in messages:
        transport.send(msg)
    assert [xoauth_server.find(m.message_id).auth for m in messages] == [("XOAUTH2", SENDER)] * 3
    assert o365.sb.token_request_count(o365.app.client_id) - before == 1, "one token, reused"
    scopes = {r.scope for r in o365.sb.token_requests if r.client_id == o365.app.client_id}
    assert scopes == {"https://outlook.office365.com/.default"}


def test_wrong_secret(xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport) -> None:
    with capture_logs() as logs, pytest.raises(AuthenticationError) as info:
        xoauth(make_transport, xoauth_server, o365, client_secret="falsch-" + SECRET).send(message())
    error = info.value
    assert error.details["code"] == "AADSTS7000215"
    assert error.details.get("trace_id") or error.details.get("correlation_id")
    assert "not its ID" in error.hint.en  # type: ignore[union-attr]
    assert_no_secrets(["falsch-" + SECRET, SECRET], {"error": exception_texts(error), "log": logs.texts()})
    assert not xoauth_server.handler.received


def test_unknown_tenant(xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport) -> None:
    with pytest.raises(AuthenticationError) as info:
        xoauth(make_transport, xoauth_server, o365, tenant_id="00000000-0000-0000-0000-000000000001").send(message())
    assert "tenant" in info.value.message.en.lower() or "Mandant" in info.value.render("de")


def test_app_without_smtp_send_as_app(
    xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport
) -> None:
    # Entra issues the token; Exchange refuses it: 535 5.7.3 and the checklist
    with pytest.raises(AuthenticationError) as info:
        xoauth(make_transport, xoauth_server, o365, client_id=o365.graph_only.client_id).send(message())
    assert info.value.details["smtp_reply"].startswith("535 5.7.3")
    assert info.value.details["mechanism"] == "XOAUTH2"
    assert "SMTP.SendAsApp" in info.value.hint.en  # type: ignore[union-attr]


def test_sign_in_host_unreachable(xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport) -> None:
    with pytest.raises(NetworkError):
        xoauth(make_transport, xoauth_server, o365, authority_host=f"127.0.0.1:{free_port()}", timeout=2).send(
            message()
        )


def test_check_gets_a_token(xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport) -> None:
    result = xoauth(make_transport, xoauth_server, o365).check()
    assert result.ok and result.steps[-2][0] == "auth"


class TestXoauth2Conformance(TransportConformance):
    """The whole suite once more with XOAUTH2: the token must not leak anywhere either."""

    log_ignore = ("mail.log",)

    @pytest.fixture
    def transport(self, xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport) -> Transport:
        return xoauth(make_transport, xoauth_server, o365)

    @pytest.fixture
    def sender(self) -> Address:
        return Address(SENDER, "Firma GmbH")

    @pytest.fixture
    def received(self, xoauth_server: SmtpServer) -> Callable[[str], EmailMessage]:
        return xoauth_server.message

    @pytest.fixture
    def delivered_to(self, xoauth_server: SmtpServer) -> Callable[[str], Collection[str]]:
        return xoauth_server.envelope_recipients

    @pytest.fixture
    def arrivals(self, xoauth_server: SmtpServer) -> Callable[[str], int]:
        return xoauth_server.arrivals

    @pytest.fixture
    def secrets(self, o365: Office365) -> LiveSecrets:
        return LiveSecrets(o365)  # type: ignore[return-value]

    @pytest.fixture(params=["wrong_secret", "no_smtp_role"])
    def failing_transport(
        self, request: pytest.FixtureRequest, xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport
    ) -> FailureCase:
        if request.param == "wrong_secret":
            return FailureCase(
                xoauth(make_transport, xoauth_server, o365, client_secret=SECRET + "-alt"),
                AuthenticationError,
                "wrong client secret",
            )
        return FailureCase(
            xoauth(make_transport, xoauth_server, o365, client_id=o365.graph_only.client_id),
            AuthenticationError,
            "app without SMTP.SendAsApp",
        )


# -- a server that echoes the XOAUTH2 exchange (issue: secrets leak in base64 form) -------------

ECHO = "535 5.7.8 Error: authentication failed (got {got})"


def token_forms(o365: Office365) -> list[str]:
    """The client secret and, for every token the sandbox issued, the token, the XOAUTH2 string and
    its base64 (what goes on the wire)."""
    forms = [SECRET]
    for token in list(o365.sb.state.tokens):
        forms += [token, xoauth2_string(SENDER, token), xoauth2_base64(SENDER, token)]
    return forms


@pytest.fixture
def echoing_xoauth_server(server_tls: ssl.SSLContext, o365: Office365) -> Iterator[SmtpServer]:
    with SmtpServer("starttls", server_tls, token_check=o365.token_check) as server:
        server.script = Script(auth_reply=ECHO)
        yield server


def echoed_a_token(server: SmtpServer, o365: Office365) -> None:
    blobs = [xoauth2_base64(SENDER, t) for t in list(o365.sb.state.tokens)]
    assert server.handler.sasl_replies, "the server got no AUTH"
    assert all(any(b in reply for b in blobs) for reply in server.handler.sasl_replies), "no echo of the token"


def test_echoed_xoauth2_string_leaks_nowhere_through_the_cli(
    echoing_xoauth_server: SmtpServer, o365: Office365, tmp_path: Path, ca_file: Path
) -> None:
    config = cli_support.write_config(
        tmp_path,
        echoing_xoauth_server,
        ca_file,
        auth="xoauth2",
        password=None,
        tenant_id=TENANT,
        client_id=o365.app.client_id,
        client_secret={"env": "SMTP_TEST_CLIENT_SECRET"},
        authority_host=o365.sb.authority_host,
        authority_ca_bundle=str(o365.sb.ca_pem),
    )
    env = cli_support.cli_env(SMTP_TEST_CLIENT_SECRET=SECRET)

    def run(*args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
        return cli_support.run(config, *args, json_out=json_out, env=env)

    sent = run(*cli_support.invoice_args("RE-2026-00042"), "--log-level", "debug")
    assert sent.returncode == 1, sent.stdout + sent.stderr
    error = json.loads(sent.stdout)["error"]
    assert error["kind"] == "auth" and "5.7.8" in error["details"]["smtp_reply"]
    text = run(*cli_support.invoice_args("RE-2026-00043"), "--log-level", "debug", json_out=False)
    assert text.returncode == 1 and "5.7.8" in text.stderr
    check = run("accounts", "test", "Versand", "--log-level", "debug")
    assert check.returncode == 1 and "5.7.8" in check.stdout
    journal = run("journal", "--id", "1")
    journal_text = run("journal", json_out=False)
    assert "5.7.8" in journal.stdout and "5.7.8" in journal_text.stdout
    echoed_a_token(echoing_xoauth_server, o365)
    assert not echoing_xoauth_server.handler.received

    assert not leaks(
        token_forms(o365),
        {
            "send --json": sent.stdout + sent.stderr,
            "send": text.stdout + text.stderr,
            "accounts test": check.stdout + check.stderr,
            "journal": journal.stdout + journal_text.stdout,
            "journal files": cli_support.journal_bytes(tmp_path),
        },
    ), "a secret leaked"
    assert "***" in error["details"]["smtp_reply"]


def test_token_and_xoauth2_forms_are_registered_before_they_are_sent(
    echoing_xoauth_server: SmtpServer, o365: Office365, make_transport: MakeTransport
) -> None:
    """Whatever shape the token has: the token, the XOAUTH2 string and its base64 are in the
    redaction registry before the line reaches the server; the transport's own texts are clean."""
    with capture_logs() as logs, pytest.raises(AuthenticationError) as info:
        xoauth(make_transport, echoing_xoauth_server, o365).send(message())
    echoed_a_token(echoing_xoauth_server, o365)
    lines = echoing_xoauth_server.handler.sasl_lines
    assert lines and all(registered for _, registered in lines), "an XOAUTH2 line went out unregistered"
    token = next(t for t in o365.sb.state.tokens if xoauth2_base64(SENDER, t) in [line for line, _ in lines])
    assert redaction.redact(f"<{token}>") == "<***>", "the token itself is registered, not only by its shape"
    assert redaction.redact(xoauth2_string(SENDER, token)) == "***"
    client_logs = [t for t in logs.texts() if not t.startswith("mail.log ")]
    assert not leaks(
        token_forms(o365), {"error": "\n".join(exception_texts(info.value)), "log": "\n".join(client_logs)}
    ), "a secret leaked"
