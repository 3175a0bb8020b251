"""The ``ccm-mail`` command as AbSys and admins run it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ccm_mail_core.results import ExitCode

from host_support import BASE_CONFIG, INVOICE, cli_json, run_cli


def setup(workdir: Path, text: str = BASE_CONFIG) -> None:
    (workdir / "ccm-mail.yaml").write_text(text, encoding="utf-8")
    (workdir / "invoice.json").write_text(json.dumps(INVOICE), encoding="utf-8")


SEND = ("send", "--purpose", "invoice", "--to", "kunde@example.de", "--data", "invoice.json")


def test_config_check_ok_and_broken(workdir, pdf) -> None:
    setup(workdir)
    rc, data = cli_json("config", "check", cwd=workdir)
    assert rc == 0 and data["ok"] and data["purposes"] == {"invoice": "Rechnungsversand"}
    (workdir / "ccm-mail.yaml").write_text(
        BASE_CONFIG.replace("#Betrag#", "#Betrg#").replace("type: pickup", "typ: pickup")
    )
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG
    assert "ccm-mail.yaml:4: accounts.Rechnungsversand.typ" in proc.stderr
    assert "Meinten Sie 'type'?" in proc.stderr and "2 Fehler" in proc.stderr
    rc, data = cli_json("config", "check", "--lang", "en", cwd=workdir)
    assert rc == 2 and not data["ok"]
    assert {p["key"] for p in data["problems"]} == {"accounts.Rechnungsversand.typ", "templates.invoice.body"}
    assert all(p["line"] > 0 for p in data["problems"])


def test_send_then_journal_shows_versanddatum(workdir, pdf) -> None:
    setup(workdir)
    proc = run_cli(*SEND, "--attach", pdf.name, "--yes", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "Gesendet am" in proc.stdout
    rc, data = cli_json("journal", "--reference", "RE-2026-00042", cwd=workdir)
    (entry,) = data["entries"]
    assert rc == 0 and entry["status"] == "sent" and entry["sent_at"]
    human = run_cli("journal", cwd=workdir)
    assert "Versanddatum" in human.stdout and "RE-2026-00042" in human.stdout


def test_send_json_result_and_duplicate_exit_code(workdir, pdf) -> None:
    setup(workdir)
    rc, data = cli_json(*SEND, "--attach", pdf.name, "--yes", cwd=workdir)
    assert rc == 0 and data["status"] == "sent" and data["transport_ids"]["file"].endswith(".eml")
    rc, data = cli_json(*SEND, "--yes", cwd=workdir)
    assert rc == ExitCode.DUPLICATE and data["error"]["kind"] == "duplicate"
    rc, data = cli_json(*SEND, "--yes", "--resend", cwd=workdir)
    assert rc == 0


def test_without_yes_and_without_terminal_nothing_is_sent(workdir) -> None:
    setup(workdir)
    proc = run_cli(*SEND, cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG
    assert "--yes" in proc.stderr
    assert not (workdir / "out").exists()


def test_terminal_prompt_shows_message_and_no_declines(workdir, pdf) -> None:
    """Answering at a real terminal prompt (a pty, as a person would)."""
    import os
    import pty
    import subprocess
    import sys

    setup(workdir)
    for answer, expected in ((b"n\n", ExitCode.CANCELLED), (b"j\n", ExitCode.OK)):
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccm_mail_core.cli", *SEND, "--attach", pdf.name, "--resend"],
            cwd=workdir,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        os.write(master, answer)
        out, err = proc.communicate(timeout=60)
        os.close(master)
        assert proc.returncode == expected, err.decode()
        text = err.decode()
        assert "Betreff" in text and "codicon GmbH / Rg. RE-2026-00042" in text and pdf.name in text
    statuses = [
        r[0] for r in sqlite3.connect(workdir / "journal.sqlite").execute("SELECT status FROM messages ORDER BY id")
    ]
    assert statuses == ["cancelled", "sent"]


def test_preview_shows_rendered_message_without_sending(workdir, pdf) -> None:
    setup(workdir)
    rc, data = cli_json(
        "preview",
        "--purpose",
        "invoice",
        "--to",
        "kunde@example.de",
        "--data",
        "invoice.json",
        "--attach",
        pdf.name,
        cwd=workdir,
    )
    assert rc == 0 and data["subject"] == "codicon GmbH / Rg. RE-2026-00042"
    assert data["attachments"][0]["filename"] == pdf.name and data["from"] == "codicon GmbH <rechnung@codicon.de>"
    assert not (workdir / "out").exists() and not (workdir / "journal.sqlite").exists()


def test_bad_input_exit_codes_and_messages(workdir) -> None:
    setup(workdir)
    proc = run_cli(*SEND, "--attach", "fehlt.pdf", "--yes", cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG and "Anhang nicht lesbar" in proc.stderr
    proc = run_cli(
        "send",
        "--purpose",
        "invoice",
        "--to",
        "kaputt",
        "--field",
        "extRechnungsNr=1",
        "--yes",
        "--lang",
        "en",
        cwd=workdir,
    )
    assert proc.returncode == ExitCode.CONFIG and "Invalid e-mail address 'kaputt'" in proc.stderr
    (workdir / "bad.json").write_text("{nope")
    proc = run_cli("send", "--purpose", "invoice", "--to", "a@b.de", "--data", "bad.json", "--yes", cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG and "kein gültiges JSON" in proc.stderr
    assert not (workdir / "out").exists()


def test_accounts_placeholders_and_types(workdir) -> None:
    setup(workdir)
    rc, data = cli_json("accounts", "list", cwd=workdir)
    assert rc == 0 and data["accounts"][0]["purposes"] == ["invoice"]
    assert data["accounts"][0]["sender"] == "codicon GmbH <rechnung@codicon.de>"
    rc, data = cli_json("placeholders", "--purpose", "invoice", cwd=workdir)
    tokens = {p["token"] for p in data["placeholders"]["invoice"]}
    assert {"#extRechnungsNr#", "#Datum#", "#Betrag#"} <= tokens
    rc, data = cli_json("accounts", "types", "--lang", "en", cwd=workdir)
    pickup = next(t for t in data["types"] if t["id"] == "pickup")
    assert pickup["label"] == "Pickup folder (.eml files)" and pickup["fields"][0]["help"]
    rc, data = cli_json("accounts", "test", "Rechnungsversand", cwd=workdir)
    assert rc == 0 and data["ok"]


def test_config_example_loads_with_the_installed_plugins(tmp_path) -> None:
    """config.example.yaml is what admins start from: it must load once the secret is set, and
    name the missing secret clearly when it is not."""
    from host_support import LOAD_PLUGINS, REPO

    env = {"CCM_MAIL_O365_SECRET": "x" * 40, LOAD_PLUGINS: None}
    rc, data = cli_json("config", "check", "--config", str(REPO / "config.example.yaml"), cwd=tmp_path, env=env)
    assert rc == 0, data
    assert data["purposes"] == {"eservice": "E-Service", "invoice": "Rechnungsversand"}
    proc = run_cli(
        "config",
        "check",
        "--config",
        str(REPO / "config.example.yaml"),
        cwd=tmp_path,
        env={"CCM_MAIL_O365_SECRET": "", LOAD_PLUGINS: None},
    )
    assert proc.returncode == 2 and "CCM_MAIL_O365_SECRET ist nicht gesetzt" in proc.stderr
    # one problem per account: the type's own checks do not echo the missing secret
    assert "2 Fehler in" in proc.stderr and "Genau eines" not in proc.stderr


def test_help_in_german_and_english(tmp_path) -> None:
    de = run_cli("send", "--help", cwd=tmp_path, env={"CCM_MAIL_LANG": ""})
    en = run_cli("--lang", "en", "send", "--help", cwd=tmp_path)
    assert de.returncode == en.returncode == 0
    assert "Empfänger (mehrfach möglich)" in de.stdout and "recipient (repeatable)" in en.stdout
    assert "Bestätigung vorab erteilen" in de.stdout and "confirm in advance" in en.stdout
