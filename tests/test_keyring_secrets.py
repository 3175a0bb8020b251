"""Secrets from the keyring (Windows host contract): ``{keyring: SERVICE/USER}`` as a secret source
and ``ccm-mail secrets set`` to fill it, with a real keyring backend (keyrings.alt's file
backend; on Windows the same calls reach the Credential Manager — not run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host_support import LOAD_PLUGINS

SECRET = "Kx8~Q.mN4-Ab_9zRt5Wv2yU"
CONFIG = """\
language: de
accounts:
  Rechnungsversand:
    type: office365
    tenant_id: 3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b
    client_id: 8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d
    mailbox: rechnung@codicon.de
    client_secret: {keyring: ccm-mail/Rechnungsversand/client_secret}
purposes:
  invoice: Rechnungsversand
templates:
  invoice:
    subject: "Rg. #extRechnungsNr#"
    body: "Anbei."
journal:
  path: journal.sqlite
"""


def ccm(workdir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring", LOAD_PLUGINS: "office365"}
    return subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", *args],
        cwd=workdir,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def configured(workdir: Path) -> Path:
    (workdir / "ccm-mail.yaml").write_text(CONFIG, encoding="utf-8")
    return workdir


def test_secret_set_from_stdin_is_used_and_never_shown(configured: Path) -> None:
    missing = ccm(configured, "config", "check")
    assert (
        missing.returncode == 2 and "Im Schlüsselbund fehlt ccm-mail/Rechnungsversand/client_secret" in missing.stderr
    )
    assert "ccm-mail secrets set Rechnungsversand" in missing.stderr
    stored = ccm(configured, "secrets", "set", "Rechnungsversand", "--stdin", "--json", stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout) == {
        "ok": True,
        "account": "Rechnungsversand",
        "field": "client_secret",
        "keyring": "ccm-mail/Rechnungsversand/client_secret",
        "config_uses_it": True,
    }
    check = ccm(configured, "config", "check")
    assert check.returncode == 0, check.stderr
    listing = ccm(configured, "accounts", "list", "--json")
    assert json.loads(listing.stdout)["accounts"][0]["settings"]["client_secret"] == "***"
    everything = "".join(p.stdout + p.stderr for p in (missing, stored, check, listing))
    assert SECRET not in everything and SECRET not in (configured / "ccm-mail.yaml").read_text(encoding="utf-8")


def test_secret_set_tells_where_to_point_the_config(configured: Path) -> None:
    (configured / "ccm-mail.yaml").write_text(
        CONFIG.replace("{keyring: ccm-mail/Rechnungsversand/client_secret}", "{env: NOT_SET_ANYWHERE}"),
        encoding="utf-8",
    )
    stored = ccm(configured, "secrets", "set", "Rechnungsversand", "--stdin", stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "client_secret: {keyring: ccm-mail/Rechnungsversand/client_secret}" in stored.stdout


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("Nirgends",), "Unbekanntes Konto 'Nirgends'"),
        (("Rechnungsversand", "--field", "mailbox"), "kein geheimes Feld mailbox"),
    ],
)
def test_secret_set_refuses_what_is_not_a_secret_field(configured: Path, args: tuple[str, ...], text: str) -> None:
    proc = ccm(configured, "secrets", "set", *args, "--stdin", stdin="x\n")
    assert proc.returncode == 2 and text in proc.stderr


def test_empty_value_stores_nothing(configured: Path) -> None:
    proc = ccm(configured, "secrets", "set", "Rechnungsversand", "--stdin", stdin="\n")
    assert proc.returncode == 2 and "nichts gespeichert" in proc.stderr
    assert ccm(configured, "config", "check").returncode == 2
