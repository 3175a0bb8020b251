"""Exactly once through the service: four clients submit 1,000 invoices while the service is
killed with SIGKILL twice and restarted; the clients retry each invoice until it is sent. Every
invoice must reach the pickup folder exactly once."""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
import urllib.error
from http.client import HTTPException
from pathlib import Path

import pytest
from server_support import Client, ServiceProcess, invoice, keys, sent_mails, write_config

TOTAL = 1000
CLIENTS = 4
KILL_AT = (250, 600)  # kill when this many invoices are confirmed sent


@pytest.mark.slow
def test_killed_twice_during_1000_invoices_every_invoice_arrives_exactly_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        extra={
            "accounts": {
                "Rechnungsversand": {
                    "type": "pickup",
                    "folder": "out",
                    "sender": "rechnung@codicon.de",
                    "limits": {"messages": 1_000_000, "per_seconds": 1, "concurrency": 8},
                }
            }
        },
    )
    service = ServiceProcess(config)
    current = {"url": service.start()}
    key = keys(tmp_path)["send"]
    confirmed: list[str] = []
    lock = threading.Lock()
    retries = collections.Counter[str]()
    deadline = time.monotonic() + 120

    def client(number: int) -> None:
        for i in range(number, TOTAL, CLIENTS):
            reference = f"RE-C-{i:06d}"
            while time.monotonic() < deadline:
                try:
                    status, answer, _ = Client(current["url"], key).call(
                        "POST", "/api/v1/send", invoice(reference, attachments=[]), timeout=30
                    )
                except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError):
                    retries["connection"] += 1  # the service is down (or died mid-request): ask again
                    time.sleep(0.05)
                    continue
                if status == 200 and answer["status"] == "sent":
                    with lock:
                        confirmed.append(reference)
                    break
                retries[answer.get("status", str(status)) if isinstance(answer, dict) else str(status)] += 1
                time.sleep(0.1)  # queued, sending or unknown after a kill: the service settles it, then ask again

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        for mark in KILL_AT:
            while len(confirmed) < mark and time.monotonic() < deadline:
                time.sleep(0.002)
            service.kill()
            service = ServiceProcess(config)
            current["url"] = service.start()
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        service.stop()
    assert not any(t.is_alive() for t in threads), f"clients did not finish: {len(confirmed)} confirmed"
    subjects = collections.Counter(m["Subject"] for m in sent_mails(tmp_path))
    expected = {f"codicon GmbH / Rg. RE-C-{i:06d}" for i in range(TOTAL)}
    assert set(subjects) == expected
    assert [s for s, n in subjects.items() if n > 1] == []
    assert sorted(confirmed) == sorted(f"RE-C-{i:06d}" for i in range(TOTAL))
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        rows = db.execute("SELECT reference, status FROM messages").fetchall()
    assert collections.Counter(s for _, s in rows) == {"sent": TOTAL}
    assert retries["connection"] > 0  # the kills really hit the clients
