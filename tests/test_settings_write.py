"""Saving settings (*Speichern*) from the CLI: checked like ``config check`` before anything is
written, the admin's file kept as it was around the change, secrets never inline, every change
audited (never the secret)."""

from __future__ import annotations

import difflib
import json
import os
import stat
from pathlib import Path

import pytest

from host_support import cli_json, run_cli

ADMIN_FILE = """\
# codicon GmbH – ccm-mail (von Hand gepflegt, bitte Kommentare behalten)
language: de   # Sprache der Meldungen

accounts:
    # das Konto für Rechnungen
    Rechnungsversand:
        type: pickup
        folder: 'out'            # Abholordner
        sender: "rechnung@codicon.de"
        from_name: codicon GmbH

purposes:
    invoice: Rechnungsversand

templates:
    invoice:
        subject: "codicon GmbH / Rg. #extRechnungsNr#"
        body: |
            #Anrede#,

            anbei Ihre Rechnung #extRechnungsNr# über #Betrag#.
        reference: "#extRechnungsNr#"
journal:
    path: journal.sqlite
"""
SECRET = "Zq8~vN.4mK-Lp_2xRt7Wy9uE"


@pytest.fixture
def config(workdir: Path) -> Path:
    path = workdir / "ccm-mail.yaml"
    path.write_text(ADMIN_FILE, encoding="utf-8")
    return path


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_a_template_change_keeps_everything_else_byte_for_byte(config: Path, workdir: Path) -> None:
    code, data = cli_json(
        "templates", "set", "invoice", "--subject", "Rechnung #extRechnungsNr# von codicon", cwd=workdir
    )
    assert code == 0, data
    assert data["action"] == "templates.set" and data["changes"] == {"subject": "Rechnung #extRechnungsNr# von codicon"}
    after = config.read_text(encoding="utf-8")
    assert _changed_lines(ADMIN_FILE, after) == [
        '-        subject: "codicon GmbH / Rg. #extRechnungsNr#"',
        '+        subject: "Rechnung #extRechnungsNr# von codicon"',
    ]
    check, _ = cli_json("config", "check", cwd=workdir)
    assert check == 0


def test_a_new_account_with_a_secret_goes_to_the_keyring_never_into_the_file(config: Path, workdir: Path) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring", "CCM_MAIL_LOAD_PLUGINS": "smtp"}
    code, data = cli_json(
        "accounts",
        "set",
        "Versand",
        "--type",
        "smtp",
        "--set",
        "host=smtp.codicon.de",
        "--set",
        "sender=versand@codicon.de",
        "--set",
        "auth=password",
        "--secret",
        "password",
        "--stdin",
        "--store",
        "keyring",
        cwd=workdir,
        env=env,
        stdin=SECRET + "\n",
    )
    assert code == 0, data
    assert data["changes"]["password"] == {"secret": "set", "keyring": "ccm-mail/Versand/password"}
    text = config.read_text(encoding="utf-8")
    assert SECRET not in text and "password: {keyring: ccm-mail/Versand/password}" in text
    assert text.startswith(ADMIN_FILE.split("purposes:")[0].rstrip("\n"))  # what was there stays first, as it was
    audit = (workdir / "ccm-mail.yaml.audit.jsonl").read_text(encoding="ascii")
    assert SECRET not in audit
    entry = json.loads(audit.splitlines()[-1])
    assert entry["action"] == "accounts.set" and entry["target"] == "Versand" and entry["via"] == "cli"
    assert "@" in entry["who"] and entry["sha256_before"] != entry["sha256_after"]
    if os.name == "posix":
        assert stat.S_IMODE((workdir / "ccm-mail.yaml.audit.jsonl").stat().st_mode) == 0o600
    check, checked = cli_json("config", "check", cwd=workdir, env=env)
    assert check == 0, checked
    assert "Versand" in checked["accounts"]


def test_a_secret_without_a_keyring_goes_to_a_0600_file(config: Path, workdir: Path) -> None:
    env = {"CCM_MAIL_LOAD_PLUGINS": "smtp"}
    code, data = cli_json(
        "accounts",
        "set",
        "Versand",
        "--type",
        "smtp",
        "--set",
        "host=smtp.codicon.de",
        "--set",
        "sender=versand@codicon.de",
        "--secret",
        "password",
        "--stdin",
        "--store",
        "file",
        cwd=workdir,
        env=env,
        stdin=SECRET + "\n",
    )
    assert code == 0, data
    secret_file = workdir / "ccm-mail-secrets" / "Versand.password"
    assert secret_file.read_text(encoding="utf-8").strip() == SECRET
    if os.name == "posix":
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "password: {file: ccm-mail-secrets/Versand.password}" in config.read_text(encoding="utf-8")
    assert cli_json("config", "check", cwd=workdir, env=env)[0] == 0


def test_a_change_with_errors_changes_nothing_and_lists_every_problem(config: Path, workdir: Path) -> None:
    before = config.read_bytes()
    env = {"CCM_MAIL_LOAD_PLUGINS": "smtp"}
    code, data = cli_json(
        "accounts",
        "set",
        "Versand",
        "--type",
        "smtp",
        "--set",
        "port=fünfhundert",
        "--set",
        "sender=keine-adresse",
        "--set",
        "password=" + SECRET,
        "--set",
        "colour=blau",
        cwd=workdir,
        env=env,
    )
    assert code == 2
    keys = {p["key"] for p in data["problems"]}
    assert {
        "accounts.Versand.password",
        "accounts.Versand.port",
        "accounts.Versand.sender",
        "accounts.Versand.host",
        "accounts.Versand.colour",
    } <= keys, keys
    assert config.read_bytes() == before
    assert not (workdir / "ccm-mail.yaml.audit.jsonl").exists()
    assert SECRET not in json.dumps(data)


def test_removing_an_account_a_purpose_still_uses_is_refused(config: Path, workdir: Path) -> None:
    before = config.read_bytes()
    code, data = cli_json("accounts", "remove", "Rechnungsversand", cwd=workdir)
    assert code == 2
    assert any(p["key"] == "purposes.invoice" and "Rechnungsversand" in p["message"] for p in data["problems"])
    assert config.read_bytes() == before
    proc = run_cli("accounts", "remove", "Rechnungsversand", cwd=workdir)
    # the line of the purpose in the file as it is, and what to do (it named an unknown account)
    assert "ccm-mail.yaml:13: purposes.invoice: Konto 'Rechnungsversand' sendet noch für diesen Zweck" in proc.stderr
    assert "anderes Konto zuordnen" in proc.stderr


def test_a_purpose_pool_and_a_template_body_are_saved(config: Path, workdir: Path) -> None:
    assert (
        cli_json(
            "accounts",
            "set",
            "Zweitkonto",
            "--type",
            "pickup",
            "--set",
            "folder=out2",
            "--set",
            "sender=zwei@codicon.de",
            cwd=workdir,
        )[0]
        == 0
    )
    code, data = cli_json("purposes", "set", "invoice", "Rechnungsversand", "Zweitkonto", cwd=workdir)
    assert code == 0, data
    body = workdir / "body.txt"
    body.write_text("#Anrede#,\n\nIhre Rechnung #extRechnungsNr#.\n", encoding="utf-8")
    assert cli_json("templates", "set", "invoice", "--body-file", str(body), cwd=workdir)[0] == 0
    text = config.read_text(encoding="utf-8")
    assert "invoice: [Rechnungsversand, Zweitkonto]" in text
    assert "        body: |\n            #Anrede#,\n\n            Ihre Rechnung #extRechnungsNr#.\n" in text
    assert "# das Konto für Rechnungen" in text and "# Abholordner" in text
    assert cli_json("config", "check", cwd=workdir)[1]["purposes"] == {"invoice": "Rechnungsversand"}
    log = [json.loads(x) for x in (workdir / "ccm-mail.yaml.audit.jsonl").read_text("ascii").splitlines()]
    assert [e["action"] for e in log] == ["accounts.set", "purposes.set", "templates.set"]


def test_windows_line_endings_and_a_bom_survive(workdir: Path) -> None:
    path = workdir / "ccm-mail.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + ADMIN_FILE.replace("\n", "\r\n").encode("utf-8"))
    assert cli_json("templates", "set", "invoice", "--reference", "none", cwd=workdir)[0] == 0
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\n" not in data.replace(b"\r\n", b"")
    assert b'reference: "none"\r\n' in data  # the admin's quoting of the key stays


def test_an_unknown_placeholder_in_a_template_is_refused_with_its_line(config: Path, workdir: Path) -> None:
    proc = run_cli("templates", "set", "invoice", "--subject", "Rg. #extRechnungNr#", cwd=workdir)
    assert proc.returncode == 2
    assert "templates.invoice.subject" in proc.stderr and "#extRechnungsNr#" in proc.stderr  # did you mean
    assert config.read_text(encoding="utf-8") == ADMIN_FILE


def test_a_mailer_picks_up_a_saved_change_without_a_restart(config: Path, workdir: Path, make_mailer) -> None:
    from ccm_mail_core import Mailer
    from ccm_mail_core.config import ConfigProblems
    from host_support import INVOICE

    with Mailer.from_config(config, load_entrypoints=False) as mailer:
        pacer, transport = mailer.pacer("Rechnungsversand"), mailer.transport("Rechnungsversand")
        assert mailer.reload() is False  # nothing changed
        assert cli_json("templates", "set", "invoice", "--subject", "Neu: #extRechnungsNr#", cwd=workdir)[0] == 0
        assert mailer.reload() is True
        assert mailer.preview("invoice", to=["k@example.de"], data=INVOICE).message.subject == "Neu: RE-2026-00042"
        assert mailer.pacer("Rechnungsversand") is pacer and mailer.transport("Rechnungsversand") is transport
        assert cli_json("accounts", "set", "Rechnungsversand", "--set", "folder=out-neu", cwd=workdir)[0] == 0
        mailer.reload()
        assert mailer.transport("Rechnungsversand") is not transport and mailer.pacer("Rechnungsversand") is pacer
        config.write_text(config.read_text(encoding="utf-8").replace("language: de", "language: xx"), encoding="utf-8")
        with pytest.raises(ConfigProblems):
            mailer.reload()
        assert mailer.preview("invoice", to=["k@example.de"], data=INVOICE).message.subject == "Neu: RE-2026-00042"
