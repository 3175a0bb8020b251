"""``ccm-mail --server URL send …`` (a real process, as AbSys starts it): the same output and exit
codes as the local command, and no plugin or provider library loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from server_support import INVOICE, PDF, keys, sent_mails


def ccm(
    site: Path,
    *args: str,
    server: str | None,
    stdin: str = "",
    key: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_MAIL_SERVER")}
    env.update({"CCM_MAIL_CONFIG": str(site / "ccm-mail.yaml"), "CCM_MAIL_LOAD_PLUGINS": "server"})
    if server:
        env["CCM_MAIL_SERVER"] = server
        env["CCM_MAIL_API_KEY"] = key if key is not None else keys(site)["send"]
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", *args],
        cwd=site,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def _send_args(site: Path, number: str) -> list[str]:
    pdf = site / "RE.pdf"
    pdf.write_bytes(PDF)
    return [
        "send",
        "--purpose",
        "invoice",
        "--to",
        "Müller & Söhne <buchhaltung@mueller.example>",
        "--attach",
        str(pdf),
        "--data",
        "-",
        "--yes",
        "--json",
    ]


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    """What must be the same between a local and a remote send (ids and times differ)."""
    out = {k: v for k, v in doc.items() if k not in ("journal_id", "message_id", "sent_at", "transport_ids")}
    if out.get("error"):
        out["error"] = {
            **out["error"],
            "message": _strip_ids(out["error"]["message"]),
            "details": {k: v for k, v in out["error"]["details"].items() if k != "journal_id"},
        }
    return out


def _strip_ids(text: str) -> str:
    import re

    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.+]+|Eintrag \d+|entry \d+", "…", text)


def test_a_send_through_the_service_answers_as_the_local_send(url: str, site: Path) -> None:
    data = json.dumps({**INVOICE, "extRechnungsNr": "RE-R1"})
    remote = ccm(site, *_send_args(site, "RE-R1"), server=url, stdin=data)
    assert remote.returncode == 0, remote.stderr
    remote_doc = json.loads(remote.stdout)
    assert remote.stdout.isascii() and remote_doc["status"] == "sent" and "repeat" not in remote_doc
    again = ccm(site, *_send_args(site, "RE-R1"), server=url, stdin=data)
    assert again.returncode == 5, again.stdout
    remote_dup = json.loads(again.stdout)
    assert len(sent_mails(site)) == 1

    # the same two calls locally, against a journal of their own
    local_site = site / "local"
    local_site.mkdir()
    (local_site / "ccm-mail.yaml").write_text((site / "ccm-mail.yaml").read_text("utf-8"), "utf-8")
    local = ccm(local_site, *_send_args(local_site, "RE-R1"), server=None, stdin=data)
    local_dup = ccm(local_site, *_send_args(local_site, "RE-R1"), server=None, stdin=data)
    assert local.returncode == 0 and local_dup.returncode == 5
    assert _stable(json.loads(local.stdout)) == _stable(remote_doc)
    assert _stable(json.loads(local_dup.stdout)) == _stable(remote_dup)
    assert list(json.loads(local.stdout)) == list(remote_doc)  # same keys, same order


def test_human_output_and_errors_match_the_local_ones(url: str, site: Path) -> None:
    data = json.dumps({**INVOICE, "extRechnungsNr": "RE-R2"})
    args = [a for a in _send_args(site, "RE-R2") if a != "--json"]
    remote = ccm(site, *args, server=url, stdin=data)
    assert remote.returncode == 0 and remote.stdout.startswith("Gesendet am ")
    bad = ["send", "--purpose", "invoice", "--to", "keine-adresse", "--data", "-", "--yes"]
    remote_bad = ccm(site, *bad, server=url, stdin=data)
    local_bad = ccm(site, *bad, server=None, stdin=data)
    assert remote_bad.returncode == local_bad.returncode == 2
    assert remote_bad.stderr == local_bad.stderr and remote_bad.stderr.startswith("Fehler: ")
    english = ccm(site, *bad, "--lang", "en", server=url, stdin=data)
    assert english.stderr.startswith("Error: ")
    unconfirmed = ccm(
        site,
        "send",
        "--purpose",
        "invoice",
        "--to",
        "k@example.de",
        "--data",
        "-",
        "--json",
        server=url,
        stdin=json.dumps({**INVOICE, "extRechnungsNr": "RE-R3"}),
    )
    assert unconfirmed.returncode == 2 and json.loads(unconfirmed.stdout)["error"]["kind"] == "unconfirmed"


def test_preview_through_the_service(url: str, site: Path) -> None:
    data = json.dumps(INVOICE)
    remote = ccm(
        site, "preview", "--purpose", "invoice", "--to", "k@example.de", "--data", "-", "--json", server=url, stdin=data
    )
    local = ccm(
        site,
        "preview",
        "--purpose",
        "invoice",
        "--to",
        "k@example.de",
        "--data",
        "-",
        "--json",
        server=None,
        stdin=data,
    )
    assert remote.returncode == local.returncode == 0
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    human = ccm(site, "preview", "--purpose", "invoice", "--to", "k@example.de", "--data", "-", server=url, stdin=data)
    assert "Betreff" in human.stdout and "RE-2026-00042" in human.stdout
    assert sent_mails(site) == []


def test_a_service_that_is_down_or_a_wrong_key_sends_nothing(site: Path, url: str) -> None:
    data = json.dumps(INVOICE)
    down = ccm(site, *_send_args(site, "x"), server="http://127.0.0.1:9", stdin=data)
    assert down.returncode == 1
    error = json.loads(down.stdout)["error"]
    assert error["kind"] == "service" and error["sent"] is False and "nichts gesendet" in error["message"]
    wrong = ccm(site, *_send_args(site, "x"), server=url, stdin=data, key="ccm_send_falsch")
    assert wrong.returncode == 2 and json.loads(wrong.stdout)["error"]["kind"] == "auth"
    assert "ccm_send_falsch" not in wrong.stdout + wrong.stderr
    nokey = ccm(
        site,
        *_send_args(site, "x"),
        server=url,
        stdin=data,
        key="",
        extra_env={"CCM_MAIL_API_KEY_FILE": str(site / "gibts-nicht.key")},
    )
    assert nokey.returncode == 2 and "API" in json.loads(nokey.stdout)["error"]["message"]
    assert sent_mails(site) == []


def test_other_commands_refuse_an_explicit_server_and_run_locally_with_the_variable(url: str, site: Path) -> None:
    explicit = ccm(site, "--server", url, "journal", "--json", server=None)
    assert explicit.returncode == 2 and "--server" in json.loads(explicit.stdout)["error"]["message"]
    local = ccm(site, "journal", "--json", server=url)
    assert local.returncode == 0 and json.loads(local.stdout) == {"entries": []}


def test_the_client_loads_no_plugin_and_no_provider_library(url: str, site: Path) -> None:
    code = (
        "import sys, runpy\nsys.argv = ['ccm-mail'] + sys.argv[1:]\nfrom ccm_mail_core.cli import main\n"
        "rc = main()\nimport json\nprint(json.dumps([m for m in ('msal', 'requests', 'yaml', 'flask', 'pluggy', "
        "'ccm_mail_core.mailer', 'ccm_mail_office365', 'ccm_mail_server', 'structlog') if m in sys.modules]), "
        "file=sys.stderr)\nsys.exit(rc)"
    )
    env = {k: v for k, v in os.environ.items() if k != "CCM_MAIL_LOAD_PLUGINS"}
    env.update({"CCM_MAIL_SERVER": url, "CCM_MAIL_API_KEY": keys(site)["send"]})
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "send",
            "--purpose",
            "invoice",
            "--to",
            "k@example.de",
            "--data",
            "-",
            "--yes",
            "--json",
        ],
        cwd=site,
        env=env,
        input=json.dumps(INVOICE),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == ["pluggy"]  # pluggy: the plugin API's marker
