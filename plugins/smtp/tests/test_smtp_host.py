"""The plugin as an admin meets it: installed next to ccm-mail-core, configured in YAML, used through
the real ``ccm-mail`` command line against a real SMTP server."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import cli_support
import pytest
from smtp_server import SmtpServer

from ccm_mail_core import Mailer
from smtp_support import PASSWORD


def write_config(tmp_path: Path, server: SmtpServer, ca_file: Path, **values: object) -> Path:
    return cli_support.write_config(tmp_path, server, ca_file, **values)


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_support.run(config, *args)


def test_entry_point_is_declared() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="ccm_mail")}
    assert found.get("smtp") == "ccm_mail_smtp.plugin"


def test_cli_lists_the_plugin_and_its_account_type(tmp_path: Path, starttls_server: SmtpServer, ca_file: Path) -> None:
    config = write_config(tmp_path, starttls_server, ca_file)
    plugins = run(config, "plugins")
    assert plugins.returncode == 0, plugins.stderr
    assert any(
        p["name"] == "smtp" and p["distribution"] == "ccm-mail-smtp" for p in json.loads(plugins.stdout)["plugins"]
    )
    types = json.loads(run(config, "accounts", "types").stdout)["types"]
    smtp = next(t for t in types if t["id"] == "smtp")
    assert {f["name"] for f in smtp["fields"] if f["secret"]} == {"password", "client_secret"}


def test_send_through_the_host(tmp_path: Path, starttls_server: SmtpServer, ca_file: Path) -> None:
    config = write_config(tmp_path, starttls_server, ca_file)
    data = tmp_path / "invoice.json"
    data.write_text(json.dumps({"extRechnungsNr": "RE-2026-00042", "Betrag": "1.234,56 €"}), encoding="utf-8")
    attachment = tmp_path / "RE-2026-00042.pdf"
    attachment.write_bytes(b"%PDF-1.4 test\n" + bytes(range(256)))
    result = run(
        config,
        "send",
        "--purpose",
        "invoice",
        "--to",
        "kunde@example.com",
        "--bcc",
        "archiv@example.com",
        "--data",
        str(data),
        "--attach",
        str(attachment),
        "--yes",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    [got] = starttls_server.handler.received
    parsed = got.message
    assert parsed["Subject"] == "Firma GmbH / Rg. RE-2026-00042"
    assert parsed["From"].addresses[0].display_name == "Firma GmbH"
    assert "1.234,56 €" in parsed.get_body(("plain",)).get_content()
    assert [p.get_payload(decode=True) for p in parsed.iter_attachments()] == [attachment.read_bytes()]
    assert "archiv@example.com" in got.rcpt_tos and "Bcc" not in parsed


def test_accounts_test_runs_check(tmp_path: Path, starttls_server: SmtpServer, ca_file: Path) -> None:
    ok = run(write_config(tmp_path, starttls_server, ca_file), "accounts", "test", "Versand")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [s["step"] for s in json.loads(ok.stdout)["steps"]] == ["connect", "ehlo", "starttls", "auth", "quit"]


def test_plain_text_towards_another_host_is_refused_by_config(
    tmp_path: Path, starttls_server: SmtpServer, ca_file: Path
) -> None:
    config = write_config(tmp_path, starttls_server, ca_file, host="smtp.example.com", security="none")
    result = run(config, "config", "check")
    assert result.returncode != 0
    assert "localhost" in result.stdout + result.stderr


def test_fractional_timeout_is_accepted(
    tmp_path: Path, starttls_server: SmtpServer, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``timeout: 2.5`` (seconds, as the form says) passes the host's field check and reaches the
    transport as 2.5 s."""
    monkeypatch.setenv(cli_support.PASSWORD_ENV, PASSWORD)
    config = write_config(tmp_path, starttls_server, ca_file, timeout=2.5)
    checked = run(config, "config", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with Mailer.from_config(config) as mailer:
        transport = mailer.transport("Versand")
        assert transport._config.timeout == 2.5  # type: ignore[attr-defined]
        assert mailer.check_account("Versand").ok


def test_quoted_port_is_accepted(tmp_path: Path, starttls_server: SmtpServer, ca_file: Path) -> None:
    """``port: "587"`` (quoted, as many YAML writers and AbSys's form put it) is a port; the plugin
    converts it, so the host's field check must not refuse it as "keine ganze Zahl"."""
    config = write_config(tmp_path, starttls_server, ca_file, port=str(starttls_server.port), timeout="2.5")
    checked = run(config, "config", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    sent = run(config, *cli_support.invoice_args("RE-2026-00042"))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert len(starttls_server.handler.received) == 1
