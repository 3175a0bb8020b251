"""The real ``ccm-mail`` command line against a real SMTP server: a YAML config for an SMTP account
and helpers that run the CLI as AbSys does (a separate process, ``--json``, exit codes).

A subprocess, not an in-process call: these tests kill it with SIGKILL, read what it wrote to
stdout and stderr byte for byte, and read the journal file it leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from smtp_server import SmtpServer
from smtp_support import PASSWORD, SENDER

CLI = [sys.executable, "-c", "import sys; from ccm_mail_core.cli import main; sys.exit(main())"]
PASSWORD_ENV = "SMTP_TEST_PASSWORD"


def account(server: SmtpServer, ca_file: Path, **values: Any) -> dict[str, Any]:
    """An SMTP account for ``server`` as an admin writes it; ``values`` replace single fields
    (``None`` removes one)."""
    acc: dict[str, Any] = {
        "type": "smtp",
        "host": server.host,
        "port": server.port,
        "security": server.mode,
        "sender": SENDER,
        "from_name": "Firma GmbH",
        "auth": "password",
        "password": {"env": PASSWORD_ENV},
        "ca_bundle": str(ca_file),
        "timeout": 5,
    }
    acc.update(values)
    return {k: v for k, v in acc.items() if v is not None}


def write_config(
    tmp_path: Path,
    server: SmtpServer,
    ca_file: Path,
    *,
    language: str = "de",
    extra: dict[str, Any] | None = None,
    **values: Any,
) -> Path:
    """``ccm-mail.yaml`` with one account "Versand" used for invoices; journal in ``tmp_path``."""
    config: dict[str, Any] = {
        "language": language,
        "accounts": {"Versand": account(server, ca_file, **values)},
        "purposes": {"invoice": "Versand"},
        "templates": {
            "invoice": {
                "subject": "Firma GmbH / Rg. #extRechnungsNr#",
                "reference": "#extRechnungsNr#",
                "body": "Guten Tag,\nanbei Rechnung #extRechnungsNr# über #Betrag#.\n",
            }
        },
        "journal": {"path": str(journal_path(tmp_path))},
    }
    config.update(extra or {})
    path = tmp_path / "ccm-mail.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


def journal_bytes(tmp_path: Path) -> bytes:
    """Every byte of the journal as it lies on disk, WAL and shared-memory files included."""
    main = journal_path(tmp_path)
    return b"".join(p.read_bytes() for p in sorted(main.parent.glob(main.name + "*")) if p.is_file())


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, PASSWORD_ENV: PASSWORD, **extra}


def command(config: Path, *args: str, lang: str = "de", json_out: bool = True) -> list[str]:
    return [*CLI, "--config", str(config), "--lang", lang, *(["--json"] if json_out else []), *args]


def run(
    config: Path, *args: str, lang: str = "de", json_out: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(config, *args, lang=lang, json_out=json_out),
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env or cli_env(),
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def run_json(config: Path, *args: str, lang: str = "de") -> tuple[int, dict[str, Any], str]:
    """Exit code, the parsed JSON on stdout, and stderr."""
    proc = run(config, *args, lang=lang)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None


def invoice_args(number: str, to: str = "kunde@example.com") -> list[str]:
    return [
        "send",
        "--purpose",
        "invoice",
        "--to",
        to,
        "--field",
        f"extRechnungsNr={number}",
        "--field",
        "Betrag=1.234,56 €",
        "--yes",
    ]
