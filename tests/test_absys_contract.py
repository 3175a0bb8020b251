"""docs/absys.md, step by step, as AbSys drives it: one process per call, the invoice fields as
UTF-8 JSON on stdin, ``--json`` answers read in a German code page, decisions by exit code —
against the bundled Microsoft 365 sandbox (OAuth 2.0 client credentials + Graph sendMail over
HTTPS on loopback), with config.example.yaml pointed at it as ``make demo`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_support import LOAD_PLUGINS, REPO

sandbox_pkg = pytest.importorskip("ccm_mail_office365_sandbox")
from ccm_mail_office365_sandbox.__main__ import apply_seed, load_seed  # noqa: E402

SECRET = "Demo~Sandbox.Geheimnis-nicht-produktiv"  # the seed's demo secret (examples/sandbox-seed.yaml)
INVOICE = json.loads((REPO / "examples" / "invoice.json").read_text(encoding="utf-8"))
PDF = REPO / "examples" / "RE-2026-00042.pdf"
TO = "Müller & Söhne GmbH <buchhaltung@mueller-soehne.example>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object]]:
    run = tmp_path_factory.mktemp("absys")
    with sandbox_pkg.Sandbox(run / "sandbox") as sb:
        apply_seed(sb, load_seed(REPO / "examples" / "sandbox-seed.yaml"), REPO / "examples")
        (run / "sandbox.json").write_text(json.dumps(sb.describe()), encoding="utf-8")
        config = subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "demo_config.py"),
                str(REPO / "config.example.yaml"),
                str(run / "sandbox.json"),
                str(run),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (run / "ccm-mail.yaml").write_text(config, encoding="utf-8")
        yield run, sb


def absys(run: Path, *args: str, fields: dict | None = None) -> tuple[int, dict]:
    """What AbSys's CreateProcess call does: a new process, stdin UTF-8, stdout read as cp1252."""
    env = {
        **os.environ,
        "CCM_MAIL_CONFIG": str(run / "ccm-mail.yaml"),
        "CCM_MAIL_O365_SECRET": SECRET,
        "PYTHONIOENCODING": "cp1252",
    }
    env.pop(LOAD_PLUGINS, None)  # AbSys runs with whatever is installed: the Office 365 plugin
    proc = subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", *args, "--json"],
        cwd=REPO / "examples",
        env=env,
        capture_output=True,
        timeout=120,
        input=json.dumps(fields, ensure_ascii=False).encode("utf-8") if fields is not None else b"",
    )
    out = proc.stdout.decode("cp1252")
    assert out.isascii(), out  # readable in any code page
    return proc.returncode, json.loads(out)


def test_one_invoice_as_absys_sends_it(site) -> None:
    run, sb = site
    send = ("--purpose", "invoice", "--to", TO, "--attach", str(PDF), "--data", "-")
    # 1. preview: what AbSys's own dialog shows; nothing sent, nothing journaled
    code, shown = absys(run, "preview", *send, fields=INVOICE)
    assert code == 0
    assert shown["to"] == [TO] and shown["reference"] == "RE-2026-00042"
    assert shown["subject"] == "codicon GmbH / Rg. RE-2026-00042" and "über 1.234,56 €" in shown["text"]
    assert [a["filename"] for a in shown["attachments"]] == ["RE-2026-00042.pdf"]
    assert sb.sent_messages("rechnung@codicon.de") == []
    # 2. the dialog said yes; 3. send with --yes
    code, sent = absys(run, "send", *send, "--yes", fields=INVOICE)
    assert code == 0 and sent["ok"] is True and sent["status"] == "sent"
    # 4. the Versanddatum to store on the invoice, and the ids for support
    assert sent["sent_at"] and sent["transport_ids"]["request_id"]
    (mail,) = sb.sent_messages("rechnung@codicon.de")
    assert mail.internet_message_id == sent["message_id"]
    # 5. exit code 5 on a second try: already sent, with the Versanddatum in the journal
    code, again = absys(run, "send", *send, "--yes", fields=INVOICE)
    assert code == 5 and again["error"]["kind"] == "duplicate" and again["error"]["sent"] is False
    code, journal = absys(run, "journal", "--reference", "RE-2026-00042")
    assert code == 0 and journal["entries"][0]["sent_at"] == sent["sent_at"]
    assert len(sb.sent_messages("rechnung@codicon.de")) == 1


def test_a_refusal_is_exit_1_with_the_reason_and_nothing_sent(site) -> None:
    run, sb = site
    before = len(sb.sent_messages())
    fields = dict(INVOICE, extRechnungsNr="RE-2026-00043")
    code, answer = absys(
        run,
        "send",
        "--purpose",
        "invoice",
        "--to",
        "kunde@example.de",
        "--data",
        "-",
        "--yes",
        "--attach",
        str(PDF.with_name("fehlt.pdf")),
        fields=fields,
    )
    assert code == 2 and answer["error"]["kind"] == "attachment" and answer["error"]["sent"] is False
    assert "Anhang nicht lesbar" in answer["error"]["message"]
    sb.faults.add("POST", r"/sendMail$", kind="429", retry_after=3600, count=None)
    try:
        code, answer = absys(
            run, "send", "--purpose", "invoice", "--to", "kunde@example.de", "--data", "-", "--yes", fields=fields
        )
    finally:
        sb.faults.clear()
    assert code == 1 and answer["status"] == "failed" and answer["error"]["sent"] is False, answer
    assert answer["error"]["hint"] and len(sb.sent_messages()) == before


def test_an_unknown_outcome_is_exit_4_and_never_resent_blindly(site) -> None:
    run, sb = site
    fields = dict(INVOICE, extRechnungsNr="RE-2026-00044")
    sb.faults.add("POST", r"/sendMail$", kind="drop_after_processing", count=1)
    code, answer = absys(
        run, "send", "--purpose", "invoice", "--to", "kunde@example.de", "--data", "-", "--yes", fields=fields
    )
    assert code == 4 and answer["status"] == "unknown" and answer["error"]["sent"] is None
    code, again = absys(
        run, "send", "--purpose", "invoice", "--to", "kunde@example.de", "--data", "-", "--yes", fields=fields
    )
    assert code == 5  # the duplicate check holds the possibly-sent invoice
    code, box = absys(run, "outbox")
    assert box["checked"]["sent"]  # found in Sent Items: recorded as sent, not sent again
    assert sum(1 for m in sb.sent_messages() if "RE-2026-00044" in m.subject) == 1
