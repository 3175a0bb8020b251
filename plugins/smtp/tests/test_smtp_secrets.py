"""A server that echoes the AUTH exchange in its error reply (``535 5.7.8 … (got <blob>)``) must not
make the password leak in any form: not raw, not as the base64 of the AUTH PLAIN line or the LOGIN
password line. Searched where an admin or AbSys meets it: ``ccm-mail send`` (JSON and text, logs at
debug level), ``accounts test``, ``journal`` and the bytes of the journal's SQLite files.

The XOAUTH2 counterpart (the token and the base64 XOAUTH2 string) is in test_smtp_xoauth2.py.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import make_msgid
from pathlib import Path

import cli_support
import pytest
from ccm_mail_hookspecs import Address, AuthenticationError, Message, redaction
from cli_support import PASSWORD_ENV, cli_env, invoice_args, journal_bytes, write_config
from smtp_server import Script, SmtpServer
from smtp_support import SENDER, MakeTransport, leaks

from ccm_mail_core.testing import LogCapture, capture_logs, exception_texts

ECHO = "535 5.7.8 Error: authentication failed (got {got})"


@dataclass(frozen=True)
class Echo:
    """An echoing server and a password of its own: the redaction registry is per process, so a
    password another test registered could not show that this one is registered in time."""

    server: SmtpServer
    password: str

    @property
    def wire_lines(self) -> tuple[str, str]:
        """The AUTH PLAIN line and the AUTH LOGIN password line for this password."""
        plain = base64.b64encode(b"\0" + SENDER.encode() + b"\0" + self.password.encode()).decode("ascii")
        return plain, base64.b64encode(self.password.encode()).decode("ascii")

    @property
    def forms(self) -> tuple[str, ...]:
        """Every form of the password that goes on the wire, plus the password itself."""
        return (self.password, *self.wire_lines)

    def echoed(self) -> None:
        """The server really put a secret form into its reply (else the test proves nothing)."""
        replies = self.server.handler.sasl_replies
        assert replies, "the server got no AUTH"
        assert all(any(f in reply for f in self.wire_lines) for reply in replies)


@pytest.fixture(params=["PLAIN", "LOGIN"])
def echo(request: pytest.FixtureRequest, server_tls: ssl.SSLContext) -> Iterator[Echo]:
    """A STARTTLS server offering one password mechanism that echoes what it got on failure."""
    options = {} if request.param == "PLAIN" else {"auth_exclude_mechanism": ["PLAIN"]}
    password = f"Pässwort-€-{secrets.token_hex(8)}"
    with SmtpServer("starttls", server_tls, users={SENDER: password}, **options) as server:
        server.script = Script(auth_reply=ECHO)
        yield Echo(server, password)


def test_echoed_password_leaks_nowhere_through_the_cli(echo: Echo, tmp_path: Path, ca_file: Path) -> None:
    echoing_server = echo.server
    config = write_config(tmp_path, echoing_server, ca_file)
    env = cli_env(**{PASSWORD_ENV: echo.password})

    def run(*args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
        return cli_support.run(config, *args, json_out=json_out, env=env)

    sent = run(*invoice_args("RE-2026-00042"), "--log-level", "debug")
    assert sent.returncode == 1, sent.stdout + sent.stderr  # refused login: not sent
    error = json.loads(sent.stdout)["error"]
    assert error["kind"] == "auth" and "5.7.8" in error["details"]["smtp_reply"]
    text = run(*invoice_args("RE-2026-00043"), "--log-level", "debug", json_out=False)
    assert text.returncode == 1 and "5.7.8" in text.stderr
    echo.echoed()
    assert not echoing_server.handler.received

    journal_json = run("journal", "--id", "1")
    journal_text = run("journal", "--id", "2", json_out=False)
    assert "5.7.8" in journal_json.stdout and "5.7.8" in journal_text.stdout
    check = run("accounts", "test", "Versand", "--log-level", "debug")
    check_text = run("accounts", "test", "Versand", json_out=False)
    assert check.returncode == 1 and check_text.returncode == 1
    auth_step = next(s for s in json.loads(check.stdout)["steps"] if s["step"] == "auth")
    assert not auth_step["ok"] and "5.7.8" in auth_step["text"]
    assert not leaks(
        echo.forms,
        {
            "send --json stdout": sent.stdout,
            "send --json stderr": sent.stderr,
            "send stdout": text.stdout,
            "send stderr": text.stderr,
            "journal --json": journal_json.stdout + journal_json.stderr,
            "journal": journal_text.stdout + journal_text.stderr,
            "accounts test --json": check.stdout + check.stderr,
            "accounts test": check_text.stdout + check_text.stderr,
            "journal files": journal_bytes(tmp_path),
        },
    ), "a secret leaked"
    assert "***" in error["details"]["smtp_reply"], "the echo is shown, blanked"


def client_logs(logs: LogCapture) -> list[str]:
    """What the client logged; the test server's own ``mail.log`` lines are not the product's."""
    return [t for t in logs.texts() if not t.startswith("mail.log ")]


def message() -> Message:
    return Message(
        subject="Rechnung",
        to=[Address("kunde@example.com")],
        text="Hallo",
        sender=Address(SENDER),
        message_id=make_msgid(domain="test.ccm-mail"),
    )


def test_each_password_form_is_registered_before_it_is_sent(echo: Echo, make_transport: MakeTransport) -> None:
    """Without the host: the transport's own error and log lines are clean (captured before any
    redaction), and every secret line was already in the redaction registry when it reached the
    server, so a host that redacts its output blanks whatever the server echoes."""
    with capture_logs() as logs, pytest.raises(AuthenticationError) as info:
        make_transport(echo.server, password=echo.password).send(message())
    echo.echoed()
    secret_lines = [
        (line, registered) for line, registered in echo.server.handler.sasl_lines if line in echo.wire_lines
    ]
    assert secret_lines, "the client sent no password line"
    assert all(registered for _, registered in secret_lines), "a secret line went out before it was registered"
    assert not leaks(
        echo.forms, {"error": "\n".join(exception_texts(info.value)), "log": "\n".join(client_logs(logs))}
    ), "a secret leaked"
    assert redaction.redact(f"x {echo.password} y") == "x *** y"


def test_check_with_an_echoing_server(echo: Echo, make_transport: MakeTransport) -> None:
    with capture_logs() as logs:
        result = make_transport(echo.server, password=echo.password).check()
    assert not result.ok and result.steps[-1][0] == "auth"
    texts = [t.de for _, _, t in result.steps] + [t.en for _, _, t in result.steps]
    assert any("5.7.8" in t for t in texts)
    echo.echoed()
    assert not leaks(echo.forms, {"steps": "\n".join(texts), "log": "\n".join(client_logs(logs))}), "a secret leaked"


def test_a_normal_day_leaks_nothing(echo: Echo, tmp_path: Path, ca_file: Path) -> None:
    """No echo, everything works: send, a duplicate refused, the connection test with a test mail,
    journal and outbox, all at debug level; the password shows in none of it."""
    echo.server.script = Script()
    config = write_config(tmp_path, echo.server, ca_file)
    env = cli_env(**{PASSWORD_ENV: echo.password})

    def run(*args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
        return cli_support.run(config, *args, "--log-level", "debug", json_out=json_out, env=env)

    outputs = [
        run(*invoice_args("RE-2026-00042")),
        run(*invoice_args("RE-2026-00042"), json_out=False),
        run("accounts", "test", "Versand", "--send-test-mail"),
        run("journal", "--id", "1"),
        run("journal", json_out=False),
        run("outbox"),
    ]
    assert [p.returncode for p in outputs] == [0, 5, 0, 0, 0, 0], [p.stderr for p in outputs]
    assert len(echo.server.handler.received) == 2, "the invoice and the test mail"
    assert {line for line, _ in echo.server.handler.sasl_lines} & set(echo.wire_lines), "a password line was sent"
    places: dict[str, str | bytes] = {f"run {n}": p.stdout + p.stderr for n, p in enumerate(outputs, 1)}
    places["journal files"] = journal_bytes(tmp_path)
    assert not leaks(echo.forms, places), "a secret leaked"
