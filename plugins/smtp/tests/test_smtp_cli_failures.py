"""Server refusals an admin meets, through the real ``ccm-mail`` command line: what is journaled,
the exit code AbSys branches on, and the German and English text. Before the end of the message a
refusal means *not sent* (exit 1, journal ``failed``); after the server's 250 nothing the server
does any more (a failing QUIT) makes the message less sent (exit 0, ``sent``)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cli_support
import pytest
import trustme
from smtp_server import Script, SmtpServer, free_port
from smtp_support import USERS


@dataclass
class Outcome:
    """One ``send`` per language, both against the same server script."""

    code: dict[str, int]
    result: dict[str, dict[str, Any]]
    journal: list[dict[str, Any]]

    def error(self, lang: str) -> str:
        err = self.result[lang]["error"]
        return f"{err['message']} {err['hint'] or ''}"


def send_in_both_languages(tmp_path: Path, server: SmtpServer, ca_file: Path, **values: Any) -> Outcome:
    config = cli_support.write_config(tmp_path, server, ca_file, **values)
    code, result = {}, {}
    for n, lang in enumerate(("de", "en"), 1):
        code[lang], result[lang], _ = cli_support.run_json(
            config, *cli_support.invoice_args(f"RE-2026-0004{n}"), lang=lang
        )
    _, journal, _ = cli_support.run_json(config, "journal")
    return Outcome(code, result, journal["entries"])


def assert_not_sent(outcome: Outcome, server: SmtpServer) -> None:
    assert outcome.code == {"de": 1, "en": 1}, outcome.result
    assert [r["status"] for r in outcome.result.values()] == ["failed", "failed"]
    assert [e["status"] for e in outcome.journal] == ["failed", "failed"]
    assert not server.handler.received
    de, en = outcome.error("de"), outcome.error("en")
    assert de and en and de != en


def test_421_at_the_greeting(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    starttls_server.script = Script(greeting="421 4.3.2 Service not available, closing transmission channel")
    outcome = send_in_both_languages(tmp_path, starttls_server, ca_file)
    assert_not_sent(outcome, starttls_server)
    assert "verweigert die Sitzung" in outcome.error("de") and "Später erneut senden" in outcome.error("de")
    assert "refuses the session" in outcome.error("en") and "Send again later" in outcome.error("en")
    assert outcome.result["en"]["error"]["details"]["smtp_reply"].startswith("421 4.3.2")


def test_451_to_mail_from(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    starttls_server.script = Script(mail_reply="451 4.3.0 Temporary server error. Please try again later")
    outcome = send_in_both_languages(tmp_path, starttls_server, ca_file)
    assert_not_sent(outcome, starttls_server)
    assert "Absender vorübergehend abgelehnt: 451 4.3.0" in outcome.error("de")
    assert "Sender temporarily refused: 451 4.3.0" in outcome.error("en")
    assert outcome.result["de"]["error"]["details"]["stage"] == "mail"


def test_454_to_starttls_never_falls_back_to_plain_text(
    starttls_server: SmtpServer, tmp_path: Path, ca_file: Path
) -> None:
    reply = "454 4.7.0 TLS not available due to temporary reason"
    starttls_server.script = Script(starttls_reply=reply)
    outcome = send_in_both_languages(tmp_path, starttls_server, ca_file)
    assert_not_sent(outcome, starttls_server)
    assert not starttls_server.handler.sasl_lines, "the password went out without TLS"
    assert f"lehnt STARTTLS ab: {reply}" in outcome.error("de") and "Ohne Verschlüsselung" in outcome.error("de")
    assert f"refuses STARTTLS: {reply}" in outcome.error("en") and "Without encryption" in outcome.error("en")
    assert "Server-Fehler" not in outcome.error("de")
    check = cli_support.run(tmp_path / "ccm-mail.yaml", "accounts", "test", "Versand", json_out=False)
    assert check.returncode == 1 and f"lehnt STARTTLS ab: {reply}" in check.stdout
    assert "unterbrochen" not in check.stdout, "a refusal is no broken connection"


def test_534_through_the_cli(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    starttls_server.script = Script(auth_reply="534 5.7.9 Authentication mechanism is too weak")
    outcome = send_in_both_languages(tmp_path, starttls_server, ca_file)
    assert_not_sent(outcome, starttls_server)
    assert outcome.result["de"]["error"]["kind"] == "auth"
    assert "zu schwach" in outcome.error("de") and "Passwort falsch" not in outcome.error("de")
    assert "too weak" in outcome.error("en") and "xoauth2" in outcome.error("en")


@pytest.mark.parametrize("quit_reply", ["drop", "hang", "421 4.4.2 Connection dropped due to timeout"])
def test_failing_quit_after_250_still_counts_as_sent(
    starttls_server: SmtpServer, tmp_path: Path, ca_file: Path, quit_reply: str
) -> None:
    """The message is the server's once it answered 250; what QUIT does is no news about it."""
    starttls_server.script = Script(quit_reply=quit_reply, hang_seconds=3)
    config = cli_support.write_config(tmp_path, starttls_server, ca_file, timeout=1)
    code, result, stderr = cli_support.run_json(config, *cli_support.invoice_args("RE-2026-00042"))
    assert code == 0, (result, stderr)
    assert result["status"] == "sent" and result["transport_ids"]["queue_id"] == "4XyZ42"
    [entry] = cli_support.run_json(config, "journal")[1]["entries"]
    assert entry["status"] == "sent" and entry["sent_at"]
    assert starttls_server.arrivals(result["message_id"]) == 1
    again, duplicate, _ = cli_support.run_json(config, *cli_support.invoice_args("RE-2026-00042"))
    assert again == 5, duplicate  # the invoice is sent: a second send is refused as a duplicate
    assert starttls_server.arrivals(result["message_id"]) == 1


# -- the plugin's own texts are German under language: de --------------------------------------


def for_people(output: str) -> str:
    """The lines written for the admin; the host's log lines (timestamped, English event records
    for support) are not translated."""
    return "\n".join(line for line in output.splitlines() if not re.match(r"\d{4}-\d\d-\d\dT", line))


def german_send(tmp_path: Path, server: SmtpServer, ca_file: Path, **values: Any) -> str:
    """What a German admin reads on stderr after a failed ``ccm-mail send`` (no --json)."""
    config = cli_support.write_config(tmp_path, server, ca_file, **values)
    sent = cli_support.run(config, *cli_support.invoice_args("RE-2026-00042"), json_out=False)
    assert sent.returncode == 1, sent.stdout + sent.stderr
    text = for_people(sent.stderr)
    assert "NICHT gesendet" in text, sent.stderr
    return text


#: SMTP stage ids and library words that leaked into German texts
ENGLISH = (
    "(connect)",
    "(ehlo)",
    "(starttls)",
    "(auth)",
    "(mail)",
    "(send)",
    "(data)",
    "(quit)",
    "mismatch",
    "ConnectionError",
    "ConnectTimeout",
    "Server-Fehler (",
    "Timed out",
    " lost",
)


def assert_german(text: str, *expected: str) -> None:
    for phrase in expected:
        assert phrase in text, text
    for word in ENGLISH:
        assert word not in text, f"{word!r} in the German text: {text}"


def test_german_timeout_names_the_step(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    starttls_server.script = Script(hang_at="mail", hang_seconds=3)
    text = german_send(tmp_path, starttls_server, ca_file, timeout=1)
    assert_german(text, "Zeitüberschreitung", "im Schritt »Übertragung der Nachricht«")


@pytest.fixture
def wrong_name_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("smtp.other.example").configure_cert(ctx)  # trusted CA, another host's name
    with SmtpServer("starttls", ctx, users=USERS) as server:
        yield server


def test_german_certificate_for_another_host(wrong_name_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    text = german_send(tmp_path, wrong_name_server, ca_file)
    assert_german(text, "gilt nicht für den Servernamen 127.0.0.1")
    config = tmp_path / "ccm-mail.yaml"
    check = cli_support.run(config, "accounts", "test", "Versand", json_out=False)
    assert check.returncode == 1
    assert_german(for_people(check.stdout), "gilt nicht für den Servernamen 127.0.0.1")
    english = cli_support.run(config, "accounts", "test", "Versand", lang="en", json_out=False)
    assert "address mismatch" in english.stdout, "English keeps OpenSSL's own words"


def test_german_sign_in_host_unreachable(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    text = german_send(
        tmp_path,
        starttls_server,
        ca_file,
        auth="xoauth2",
        password=None,
        tenant_id="7a1c2f0e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
        client_id="66666666-7777-8888-9999-000000000000",
        client_secret="geheim-4711-xyz",
        authority_host=f"127.0.0.1:{free_port()}",
    )
    assert_german(text, "Anmeldeserver 127.0.0.1:", "nicht erreichbar", "keine Verbindung")
    assert not starttls_server.handler.sasl_lines


def test_json_details_keep_the_stage_ids(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    """Programs read the stage from the details, which stay stable ids in every language."""
    starttls_server.script = Script(hang_at="mail", hang_seconds=3)
    config = cli_support.write_config(tmp_path, starttls_server, ca_file, timeout=1)
    code, result, _ = cli_support.run_json(config, *cli_support.invoice_args("RE-2026-00042"))
    assert code == 1 and result["error"]["details"] == {"stage": "send", "reason": "timeout"}
    assert "im Schritt »Übertragung der Nachricht«" in result["error"]["message"]
