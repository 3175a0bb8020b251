"""Saving settings when something is off: the file, its folder, the audit log or the value. Each
case ends with a clear de/en message and exit 2 and the admin's file exactly as it was, or with
the change saved as entered; never an internal error, never a value that reads back as another."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from host_support import cli_json, run_cli
from test_settings_write import ADMIN_FILE

SMTP = {"CCM_MAIL_LOAD_PLUGINS": "smtp"}


@pytest.fixture
def config(workdir: Path) -> Path:
    path = workdir / "ccm-mail.yaml"
    path.write_text(ADMIN_FILE, encoding="utf-8")
    return path


def _unchanged(config: Path, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nichts geändert" in proc.stderr and "Interner Fehler" not in proc.stderr, proc.stderr
    assert config.read_text(encoding="utf-8") == ADMIN_FILE


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_secret_file_named_by_the_admin_leaves_its_folders_permissions_alone(config: Path, workdir: Path) -> None:
    shared = workdir / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (shared / "pw.txt").write_text("alt\n", encoding="utf-8")
    config.write_text(
        ADMIN_FILE.replace(
            "purposes:",
            "    Versand:\n        type: smtp\n        host: smtp.codicon.de\n        sender: versand@codicon.de\n"
            "        password: {file: shared/pw.txt}\n\npurposes:",
        ),
        encoding="utf-8",
    )
    code, data = cli_json(
        "accounts", "set", "Versand", "--secret", "password", "--stdin", "--store", "file",
        cwd=workdir, env=SMTP, stdin="neu-geheim\n",
    )  # fmt: skip
    assert code == 0, data
    assert (shared / "pw.txt").read_text(encoding="utf-8").strip() == "neu-geheim"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777  # it was chmod 0700 before


def test_an_audit_log_that_cannot_be_written_changes_nothing(config: Path, workdir: Path) -> None:
    (workdir / "ccm-mail.yaml.audit.jsonl").mkdir()  # unwritable even for root
    proc = run_cli("accounts", "set", "Rechnungsversand", "--from-name", "Zwei", cwd=workdir)
    _unchanged(config, proc)
    assert "konnte nicht gespeichert werden" in proc.stderr


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="POSIX file-size limit")
def test_a_full_disk_while_auditing_puts_the_old_file_back_and_keeps_the_log_whole(config: Path, workdir: Path) -> None:
    audit = workdir / "ccm-mail.yaml.audit.jsonl"
    line = json.dumps({"at": "2026-12-01T10:00:00+01:00", "action": "accounts.set", "target": "x" * 100}) + "\n"
    audit.write_text(line * 30, encoding="ascii")
    limit = audit.stat().st_size + 100  # the config (smaller) can be rewritten; the next audit line cannot

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", "accounts", "set", "Rechnungsversand", "--from-name", "Zwei"],
        cwd=workdir,
        env={**os.environ, "CCM_MAIL_LOAD_PLUGINS": ""},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limited,
    )
    _unchanged(config, proc)
    assert "Traceback" not in proc.stderr
    assert audit.read_text(encoding="ascii") == line * 30  # no half line left behind
    code, data = cli_json("accounts", "set", "Rechnungsversand", "--from-name", "Zwei", cwd=workdir)
    assert code == 0, data
    lines = audit.read_text(encoding="ascii").splitlines()
    assert len(lines) == 31 and json.loads(lines[-1])["changes"] == {"from_name": "Zwei"}


@pytest.mark.parametrize("entered", ["No", "on", "yes", "1:30", "~", "0x1F", "2026-12-04"])
def test_a_text_that_yaml_11_reads_as_another_value_is_saved_as_text(config: Path, workdir: Path, entered) -> None:
    code, data = cli_json("accounts", "set", "Rechnungsversand", "--from-name", entered, cwd=workdir)
    assert code == 0, data
    assert yaml.safe_load(config.read_text(encoding="utf-8"))["accounts"]["Rechnungsversand"]["from_name"] == entered


def test_a_limit_that_yaml_11_would_read_as_a_number_is_refused(config: Path, workdir: Path) -> None:
    proc = run_cli("accounts", "set", "Rechnungsversand", "--limit", "messages=1:30", cwd=workdir)
    assert proc.returncode == 2 and "'1:30' ist keine positive Zahl" in proc.stderr, proc.stderr  # it read back as 90
    assert config.read_text(encoding="utf-8") == ADMIN_FILE


def test_a_template_body_with_windows_line_breaks_keeps_one_break_each(workdir: Path) -> None:
    """A Windows client sends CRLF into a file an editor saved with CRLF."""
    config = workdir / "ccm-mail.yaml"
    config.write_bytes(ADMIN_FILE.replace("\n", "\r\n").encode("utf-8"))
    code, data = cli_json("templates", "set", "invoice", "--body", "Zeile 1\r\nZeile 2\r\n\r\nGruß", cwd=workdir)
    assert code == 0, data
    assert b"\r\r" not in config.read_bytes()
    body = yaml.safe_load(config.read_bytes().decode("utf-8"))["templates"]["invoice"]["body"]
    assert body.splitlines() == ["Zeile 1", "Zeile 2", "", "Gruß"]


@pytest.mark.parametrize("option", [("--from-name", "Evil\r\nBcc: x@example.org"), ("--from-name", "a\nb")])
def test_a_line_break_in_the_display_name_is_refused_when_saved(config: Path, workdir: Path, option) -> None:
    proc = run_cli("accounts", "set", "Rechnungsversand", *option, cwd=workdir)
    assert proc.returncode == 2 and "Zeilenumbruch" in proc.stderr, proc.stderr
    assert config.read_text(encoding="utf-8") == ADMIN_FILE


def test_a_line_break_in_a_hand_edited_display_name_fails_config_check(config: Path, workdir: Path) -> None:
    config.write_text(ADMIN_FILE.replace("from_name: codicon GmbH", 'from_name: "codicon\\r\\nBcc: x@y.de"'), "utf-8")
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 2 and "Zeilenumbruch" in proc.stderr, proc.stdout + proc.stderr


def test_an_account_name_with_a_line_break_is_refused(config: Path, workdir: Path) -> None:
    proc = run_cli("accounts", "set", "Z\nY", "--type", "pickup", "--set", "folder=out2", cwd=workdir)
    assert proc.returncode == 2 and "Kontoname" in proc.stderr, proc.stderr
    assert config.read_text(encoding="utf-8") == ADMIN_FILE


def test_a_tab_before_a_comment_is_named_not_an_internal_error(workdir: Path) -> None:
    config = workdir / "ccm-mail.yaml"
    text = ADMIN_FILE.replace("language: de   # Sprache", "language: de\t# Sprache")
    config.write_text(text, encoding="utf-8")
    assert run_cli("config", "check", cwd=workdir).returncode == 0  # the reader takes it
    proc = run_cli("accounts", "set", "Rechnungsversand", "--from-name", "Zwei", cwd=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Interner Fehler" not in proc.stderr and "ccm-mail.yaml:2" in proc.stderr and "Tabulator" in proc.stderr
    assert config.read_text(encoding="utf-8") == text


def test_a_read_only_config_is_not_overwritten(config: Path, workdir: Path) -> None:
    os.chmod(config, 0o444)  # on Windows: the read-only attribute
    proc = run_cli("accounts", "set", "Rechnungsversand", "--from-name", "Zwei", cwd=workdir)
    _unchanged(config, proc)
    assert "schreibgeschützt" in proc.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="only root can give files away")
def test_a_root_save_keeps_the_service_accounts_files_its_own(config: Path, workdir: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    os.chown(config, nobody.pw_uid, nobody.pw_gid)
    os.chmod(config, 0o600)
    code, data = cli_json("accounts", "set", "Rechnungsversand", "--from-name", "Zwei", cwd=workdir)
    assert code == 0, data
    for path in (config, workdir / "ccm-mail.yaml.audit.jsonl", workdir / "ccm-mail.yaml.lock"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), path
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


ALIASED = """\
accounts:
  Rechnungsversand: &base
    type: pickup
    folder: out
    sender: rechnung@codicon.de
    from_name: codicon GmbH
  Mahnwesen: *base
  Versand:
    <<: *base
    folder: out-versand
purposes:
  invoice: Rechnungsversand
templates:
  invoice:
    subject: "Rg. #extRechnungsNr#"
    body: "Anbei."
    reference: "#extRechnungsNr#"
journal:
  path: journal.sqlite
"""


@pytest.mark.parametrize("changed, other", [("Mahnwesen", "Rechnungsversand"), ("Rechnungsversand", "Mahnwesen")])
def test_changing_an_account_shared_through_an_alias_changes_only_that_one(workdir: Path, changed, other) -> None:
    config = workdir / "ccm-mail.yaml"
    config.write_text(ALIASED, encoding="utf-8")
    assert run_cli("config", "check", cwd=workdir).returncode == 0  # the merge key's own 'folder' overrides
    code, data = cli_json("accounts", "set", changed, "--from-name", "Nur hier", cwd=workdir)
    assert code == 0, data
    accounts = yaml.safe_load(config.read_text(encoding="utf-8"))["accounts"]
    assert accounts[changed]["from_name"] == "Nur hier"
    assert accounts[other]["from_name"] == "codicon GmbH"  # it was renamed along with it
    assert accounts["Versand"]["folder"] == "out-versand" and accounts["Versand"]["from_name"] == "codicon GmbH"


def test_one_key_of_the_archive_setting_changes_and_the_others_stay(workdir: Path) -> None:
    config = workdir / "ccm-mail.yaml"
    config.write_text(
        ADMIN_FILE.replace(
            "    invoice: Rechnungsversand\n",
            "    invoice:\n        account: Rechnungsversand\n        archive: {folder: archiv, retention_years: 10}\n",
        ),
        encoding="utf-8",
    )
    code, data = cli_json(
        "purposes", "set", "invoice", "Rechnungsversand", "--set", "archive.retention_years=11", cwd=workdir
    )
    assert code == 0, data  # it replaced the whole mapping and was refused for the missing folder
    archive = yaml.safe_load(config.read_text(encoding="utf-8"))["purposes"]["invoice"]["archive"]
    assert archive == {"folder": "archiv", "retention_years": 11}
    proc = run_cli("purposes", "set", "invoice", "Rechnungsversand", "--unset", "archive.folder", cwd=workdir)
    assert proc.returncode == 2 and "folder" in proc.stderr, proc.stderr  # refused as the check says, not as unknown
    assert "Unbekannte Einstellung" not in proc.stderr


FOUR_SPACES_LIST_FIRST = """\
language: de
plugins:
    disable:
        - smtp
accounts:
    Rechnungsversand:
        type: pickup
        folder: out
        sender: rechnung@codicon.de
        from_name: codicon GmbH
purposes:
    invoice: Rechnungsversand
templates:
    invoice:
        subject: "Rg. #extRechnungsNr#"
        body: "Anbei."
        reference: "#extRechnungsNr#"
journal:
    path: journal.sqlite
"""


@pytest.mark.parametrize(
    "text",
    [
        FOUR_SPACES_LIST_FIRST,
        FOUR_SPACES_LIST_FIRST.replace("        - smtp", "    - smtp"),  # the list's dash under its key
        FOUR_SPACES_LIST_FIRST.replace("    ", "  "),  # two spaces, the list indented by two
    ],
    ids=["four-spaces-list-indented", "four-spaces-list-flush", "two-spaces"],
)
def test_the_files_indentation_stays_when_a_list_comes_first(workdir: Path, text: str) -> None:
    from test_settings_write import _changed_lines

    config = workdir / "ccm-mail.yaml"
    config.write_text(text, encoding="utf-8")
    code, data = cli_json("accounts", "set", "Rechnungsversand", "--from-name", "Zwei", cwd=workdir)
    assert code == 0, data
    step = "    " if "\n    disable" in text else "  "
    assert _changed_lines(text, config.read_text(encoding="utf-8")) == [
        f"-{step * 2}from_name: codicon GmbH",
        f"+{step * 2}from_name: Zwei",
    ]  # every line of the file was re-indented


def test_a_new_configuration_can_be_built_with_the_settings_commands_alone(workdir: Path) -> None:
    """No file yet: the first account takes E-Service (and so the invoices) until a purpose is
    assigned; it could not be saved without a purpose, and no purpose could name it before."""
    code, data = cli_json(
        "accounts", "set", "Rechnungsversand", "--type", "pickup", "--set", "folder=out",
        "--set", "sender=rechnung@codicon.de", "--from-name", "codicon GmbH", cwd=workdir,
    )  # fmt: skip
    assert code == 0, data
    assert data["changes"]["purposes"] == {"eservice": "Rechnungsversand"}
    steps = [
        ("purposes", "set", "invoice", "Rechnungsversand"),
        ("templates", "set", "invoice", "--subject", "Rg. #extRechnungsNr#", "--body", "Anbei Ihre Rechnung.",
         "--reference", "#extRechnungsNr#"),
    ]  # fmt: skip
    for step in steps:
        code, data = cli_json(*step, cwd=workdir)
        assert code == 0, (step, data)
    sent = run_cli(
        "send", "--purpose", "invoice", "--to", "kunde@example.de", "--field", "extRechnungsNr=RE-1", "--yes",
        cwd=workdir,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert len(list((workdir / "out").glob("*.eml"))) == 1


def test_a_removed_account_is_recorded_in_the_audit_log_without_its_secret(config: Path, workdir: Path) -> None:
    """The audit line of a removal had "changes": {}: what the account was could not be told."""
    plain = "Klartext-Passwort-1"
    config.write_text(
        ADMIN_FILE.replace(
            "purposes:",
            "    Versand:\n        type: smtp\n        host: smtp.codicon.de\n        sender: versand@codicon.de\n"
            f"        password: {plain}\n\npurposes:",
        ),
        encoding="utf-8",
    )
    code, data = cli_json("accounts", "remove", "Versand", cwd=workdir, env=SMTP)
    assert code == 0, data
    line = (workdir / "ccm-mail.yaml.audit.jsonl").read_text(encoding="ascii").splitlines()[-1]
    removed = json.loads(line)["changes"]["removed"]
    assert (
        removed["type"] == "smtp" and removed["host"] == "smtp.codicon.de" and removed["sender"] == "versand@codicon.de"
    )
    assert plain not in line and plain not in json.dumps(data)


def test_removing_an_account_deletes_the_secrets_ccm_mail_stored_for_it(
    config: Path, workdir: Path, monkeypatch
) -> None:
    """A removed account's client secret lingered in the keyring (the Credential Manager); one
    the admin keeps in a file of their own is left alone."""
    import keyring.core
    from keyrings.alt.file import PlaintextKeyring

    # the in-process CLI and this test share one keyring (its file lies in this test's XDG_DATA_HOME)
    monkeypatch.setattr(keyring.core, "_keyring_backend", PlaintextKeyring())
    env = SMTP
    smtp = ["--type", "smtp", "--set", "host=smtp.codicon.de", "--set", "auth=password"]
    for name, store in (("Versand", "keyring"), ("Mahnung", "file")):
        code, data = cli_json(
            "accounts", "set", name, *smtp, "--set", f"sender={name.lower()}@codicon.de", "--secret", "password",
            "--stdin", "--store", store, cwd=workdir, env=env, stdin=f"geheim-{name}\n",
        )  # fmt: skip
        assert code == 0, data
    own = workdir / "eigenes.txt"  # a secret the admin keeps in a file of their own
    own.write_text("vom Admin\n", encoding="utf-8")
    os.chmod(own, 0o600)
    hand_written = (
        "    Eigen:\n        type: smtp\n        host: smtp.codicon.de\n        sender: eigen@codicon.de\n"
        "        auth: password\n        password: {file: eigenes.txt}\n\npurposes:"
    )
    config.write_text(config.read_text("utf-8").replace("purposes:", hand_written), encoding="utf-8")
    assert keyring.core.get_password("ccm-mail", "Versand/password") == "geheim-Versand"
    for name in ("Versand", "Mahnung", "Eigen"):
        code, data = cli_json("accounts", "remove", name, cwd=workdir, env=env)
        assert code == 0 and not data["warnings"], data
    assert keyring.core.get_password("ccm-mail", "Versand/password") is None
    assert not (workdir / "ccm-mail-secrets" / "Mahnung.password").exists()
    assert (workdir / "eigenes.txt").read_text(encoding="utf-8") == "vom Admin\n"
