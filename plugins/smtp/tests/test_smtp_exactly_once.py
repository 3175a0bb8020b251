"""Exactly once over SMTP, through the real command line: ``ccm-mail send`` and ``batch`` killed
while the server holds the message, ``outbox``, ``outbox resolve`` and re-runs.

SMTP cannot ask the server afterwards whether it has a message (``lookup()`` is unsupported), so
a send whose outcome is unknown — the process died, or the connection broke after the message
was handed over — must end with the operator (``outbox resolve ID sent|resend|drop``), never with
a resend nobody decided. Every test counts what arrived at the server.

``Popen.kill()`` is SIGKILL on POSIX and TerminateProcess on Windows: no chance to clean up either
way; run here on Linux only.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cli_support
from smtp_server import Script, SmtpServer

#: the server holds a message this long without answering: far longer than any test waits
HOLD = 60.0
#: no grace period: a transport that claimed "not found" would be resent at once, and counted
NO_GRACE = {"outbox": {"grace_seconds": 0}}


def wait_until(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None, seconds: float = 30.0
) -> None:
    """Poll for a state of the server or the journal (not a timing assertion: the deadline only
    keeps a broken run from hanging)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate(timeout=30)


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_support.command(config, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        env=cli_support.cli_env(),
    )


def entries(config: Path) -> list[dict[str, Any]]:
    code, data, stderr = cli_support.run_json(config, "journal", "--limit", "0")
    assert code == 0, stderr
    return sorted(data["entries"], key=lambda e: e["id"])


def arrivals(server: SmtpServer) -> Counter[str]:
    """How often each invoice (by subject) arrived at the server."""
    return Counter(str(r.message["Subject"]) for r in server.handler.received)


def history(config: Path, entry_id: int) -> list[str]:
    _, data, _ = cli_support.run_json(config, "journal", "--id", str(entry_id))
    return [f"{e['status']} {e['detail'] or ''}" for e in data["entries"][0]["events"]]


def test_send_killed_while_the_server_holds_the_message(
    starttls_server: SmtpServer, tmp_path: Path, ca_file: Path
) -> None:
    starttls_server.script = Script(hang_at="data_end", hang_seconds=HOLD)
    config = cli_support.write_config(tmp_path, starttls_server, ca_file, timeout=HOLD * 2, extra=NO_GRACE)
    proc = start(config, *cli_support.invoice_args("RE-2026-00042"))
    wait_until(lambda: len(starttls_server.handler.received) == 1, "the message to arrive", proc)
    kill(proc)
    [entry] = entries(config)
    assert entry["status"] == "sending"
    starttls_server.script = Script()  # the server works again: nothing may use that to resend

    # the outbox settles the dead process's row: SMTP cannot look it up, so it needs the operator
    code, data, _ = cli_support.run_json(config, "outbox")
    assert code == 4, data
    assert data["checked"]["needs_operator"] == [entry["id"]] and data["retried"] == []
    assert [e["status"] for e in data["entries"]] == ["unknown"]
    human = cli_support.run(config, "outbox", json_out=False)
    assert human.returncode == 4 and f"outbox resolve {entry['id']} sent|resend|drop" in human.stdout
    again, data, _ = cli_support.run_json(config, "outbox")  # asking twice changes nothing
    assert again == 4 and data["checked"]["needs_operator"] == [entry["id"]]
    duplicate, _, _ = cli_support.run_json(config, *cli_support.invoice_args("RE-2026-00042"))
    assert duplicate == 5, "an invoice whose outcome is unknown blocks a new send of it"
    assert arrivals(starttls_server) == {"Firma GmbH / Rg. RE-2026-00042": 1}

    # the operator finds it at the recipient
    code, data, stderr = cli_support.run_json(config, "outbox", "resolve", str(entry["id"]), "sent")
    assert code == 0, stderr
    assert data["entry"]["status"] == "sent" and data["entry"]["sent_at"]
    assert any("vom Bediener als gesendet bestätigt" in h for h in history(config, entry["id"]))
    code, data, _ = cli_support.run_json(config, "outbox")
    assert code == 0 and data["entries"] == []
    assert arrivals(starttls_server) == {"Firma GmbH / Rg. RE-2026-00042": 1}


def test_connection_lost_after_the_message_then_resent_by_the_operator(
    starttls_server: SmtpServer, tmp_path: Path, ca_file: Path
) -> None:
    """The server took the message and lost it (the connection broke before its 250): unknown,
    exit 4; only the operator's ``resend`` sends it again, exactly once."""
    starttls_server.script = Script(drop_at="data_end", keep=False)
    config = cli_support.write_config(tmp_path, starttls_server, ca_file, extra=NO_GRACE)
    code, result, _ = cli_support.run_json(config, *cli_support.invoice_args("RE-2026-00042"))
    assert code == 4 and result["status"] == "unknown"
    assert result["error"]["kind"] == "unknown_outcome"
    assert "Nicht einfach erneut senden" in result["error"]["hint"]
    _, result_en, _ = cli_support.run_json(config, *cli_support.invoice_args("RE-2026-00043"), lang="en")
    assert "Do not simply send again" in result_en["error"]["hint"]
    starttls_server.script = Script()

    code, data, _ = cli_support.run_json(config, "outbox")
    assert code == 4 and sorted(data["checked"]["needs_operator"]) == [1, 2] and data["retried"] == []
    assert starttls_server.handler.data_ends == 2 and not starttls_server.handler.received, "nothing resent"

    code, data, stderr = cli_support.run_json(config, "outbox", "resolve", "1", "resend")
    assert code == 0 and data["entry"]["status"] == "sent", stderr
    code, data, stderr = cli_support.run_json(config, "outbox", "resolve", "2", "drop")
    assert code == 0 and data["entry"]["status"] == "cancelled", stderr
    code, data, _ = cli_support.run_json(config, "outbox")
    assert code == 0 and data["entries"] == []
    assert arrivals(starttls_server) == {"Firma GmbH / Rg. RE-2026-00042": 1}


def test_batch_killed_mid_send_and_run_again(starttls_server: SmtpServer, tmp_path: Path, ca_file: Path) -> None:
    """Month end: three invoices; the run is killed while the server holds the second. Re-runs
    send the third, leave the second to the operator and never send anything twice."""
    starttls_server.script = Script(hang_at="data_end", hang_from=2, hang_seconds=HOLD)
    config = cli_support.write_config(
        tmp_path, starttls_server, ca_file, timeout=HOLD * 2, limits={"concurrency": 1}, extra=NO_GRACE
    )
    batch = tmp_path / "rechnungen.jsonl"
    numbers = ["RE-2026-00101", "RE-2026-00102", "RE-2026-00103"]
    batch.write_text(
        "".join(
            json.dumps(
                {"to": f"kunde{i}@example.com", "data": {"extRechnungsNr": n, "Betrag": f"{i}00,00 €"}},
                ensure_ascii=False,
            )
            + "\n"
            for i, n in enumerate(numbers, 1)
        ),
        encoding="utf-8",
    )
    subjects = [f"Firma GmbH / Rg. {n}" for n in numbers]
    run_batch = ("batch", str(batch), "--purpose", "invoice", "--yes")

    proc = start(config, *run_batch)
    wait_until(lambda: len(starttls_server.handler.received) == 2, "the second invoice to arrive", proc)
    kill(proc)
    assert [e["status"] for e in entries(config)] == ["sent", "sending", "queued"]
    held = entries(config)[1]["id"]
    starttls_server.script = Script()

    code, summary, stderr = cli_support.run_json(config, *run_batch)
    assert code == 4, (summary, stderr)
    assert summary["needs_operator"] == [held] and summary["sent"] == 2 and summary["unknown"] == 1
    assert [e["status"] for e in entries(config)] == ["sent", "unknown", "sent"]
    assert arrivals(starttls_server) == dict.fromkeys(subjects, 1)

    code, summary, _ = cli_support.run_json(config, *run_batch)  # a re-run changes nothing
    assert code == 4 and summary["needs_operator"] == [held]
    assert arrivals(starttls_server) == dict.fromkeys(subjects, 1)

    code, _, stderr = cli_support.run_json(config, "outbox", "resolve", str(held), "sent")
    assert code == 0, stderr
    code, summary, stderr = cli_support.run_json(config, *run_batch)
    assert code == 0 and summary["sent"] == 3 and summary["needs_operator"] == [], (summary, stderr)
    assert [e["status"] for e in entries(config)] == ["sent", "sent", "sent"]
    assert arrivals(starttls_server) == dict.fromkeys(subjects, 1), "each invoice exactly once at the server"
