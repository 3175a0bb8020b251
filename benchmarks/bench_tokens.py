"""Benchmark 2: token requests per 1,000 messages.

A batch of 1,000 invoices (each with the example PDF) through the Office 365 plugin in one
process, four sending threads, starting with an empty token cache; the sandbox counts every call
of its token endpoint. Limits are generous so the run is quick (the pace is benchmark 3's job).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import DOMAIN, Result, SandboxProcess, main, run_batch_in_process, write_batch, write_config

N = 1000
MAILBOX = f"rechnung@{DOMAIN}"


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="ccm-bench2-") as tmp, SandboxProcess(Path(tmp) / "sandbox") as sb:
        sb.seed([MAILBOX])
        cfg = write_config(
            Path(tmp) / "ccm-mail.yaml",
            sb,
            {"Rechnungsversand": MAILBOX},
            limits={"messages": 1_000_000, "per_seconds": 1, "concurrency": 4},
        )
        started = time.monotonic()
        summary = run_batch_in_process(
            cfg, write_batch(Path(tmp) / "batch.jsonl", N, tag="T"), log=Path(tmp) / "ccm-mail.log"
        )
        seconds = time.monotonic() - started
        stats = sb.call("stats")
    assert summary.counts.get("sent") == N and stats["sent"] == N, (summary.counts, stats)
    per_1000 = stats["token_requests"] * 1000 / N
    print(
        f"   {N} messages sent in {seconds:.1f} s; token endpoint calls {stats['token_calls']} "
        f"(successful {stats['token_requests']}); HTTP requests in all {stats['requests']}"
    )
    return [
        Result(
            "2 token requests per 1,000 messages",
            per_1000,
            "",
            "<= 1",
            per_1000 <= 1,
            f"{N} messages, 4 threads, empty cache at start",
        )
    ]


if __name__ == "__main__":
    main("Benchmark 2: token requests per 1,000 messages", run)
