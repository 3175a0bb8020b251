"""Benchmark 3: throughput at the limits the sandbox enforces, time scaled down.

Each mailbox may send 30 messages per 2 s in the sandbox (``set_rate``), and the accounts say the
same in the YAML (``limits: {messages: 30, per_seconds: 2}``). A batch goes through
``ccm_mail_core.batch`` (plan, queue, send; what ``ccm-mail batch`` runs) across one mailbox
(300 invoices, ten windows) and across a pool of four (``purposes: invoice: [A, B, C, D]``,
1,200 invoices). Measured at the sandbox, from the first to the last acceptance.

The allowed number in a span S is what a sliding window of M messages per W seconds lets through:
M × (1 + S / W) per mailbox (a full window at the start, then M per W). Achieved / allowed is the
count divided by that; 1.0 is the limit exactly. 429s for the message rate are counted by the
sandbox (its MessageRate check), other 429s separately.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import DOMAIN, Result, SandboxProcess, main, run_batch_in_process, write_batch, write_config

MESSAGES, WINDOW = 30, 2.0
#: windows per run. The first window's messages go out as one burst, which here takes 0.2-0.4 s of
#: CPU (2 cores, 16 threads for 4 mailboxes); with 2 s windows that edge costs ~1.5 % per window in
#: the ratio below, so more windows make the number describe the steady pace (BENCH_WINDOWS=5: the
#: 150/600 of the issue's example)
WINDOWS = int(os.environ.get("BENCH_WINDOWS", "10"))
TARGET = 0.95


def one(mailboxes: int, n: int) -> tuple[Result, Result, str]:
    names = ["A", "B", "C", "D"][:mailboxes]
    addresses = {name: f"rechnung-{name.lower()}@{DOMAIN}" for name in names}
    with tempfile.TemporaryDirectory(prefix="ccm-bench3-") as tmp, SandboxProcess(Path(tmp) / "sandbox") as sb:
        sb.seed(list(addresses.values()), rate=(MESSAGES, WINDOW))
        cfg = write_config(
            Path(tmp) / "ccm-mail.yaml", sb, addresses, pool=names, limits={"messages": MESSAGES, "per_seconds": WINDOW}
        )
        started = time.monotonic()
        summary = run_batch_in_process(
            cfg, write_batch(Path(tmp) / "batch.jsonl", n, tag=f"Q{mailboxes}"), log=Path(tmp) / "ccm-mail.log"
        )
        wall = time.monotonic() - started
        sent = sb.call("sent")
        stats = sb.call("stats")
    assert summary.counts.get("sent") == n and len(sent) == n, (summary.counts, len(sent))
    times = sorted(s["at"] for s in sent)
    span = times[-1] - times[0]
    allowed = mailboxes * MESSAGES * (1 + span / WINDOW)
    ratio = n / allowed
    per_box: dict[str, list[float]] = defaultdict(list)
    for s in sent:
        per_box[s["mailbox"]].append(s["at"])
    # how tightly the pacer follows the window: message i+M is accepted how long after message i
    gaps = [t[i + MESSAGES] - t[i] for t in map(sorted, per_box.values()) for i in range(len(t) - MESSAGES)]
    bursts = [sorted(t)[MESSAGES - 1] - min(t) for t in per_box.values()]
    rate = (n - mailboxes * MESSAGES) / span  # after the first window
    limit = mailboxes * MESSAGES / WINDOW
    detail = (
        f"{n} msgs, {mailboxes} mailbox{'es' if mailboxes > 1 else ''}, first→last acceptance {span:.2f} s, "
        f"rate after the first window {rate:.1f}/s of {limit:.0f}/s allowed"
    )
    info = (
        f"   {mailboxes} mailbox(es): per mailbox {[len(t) for t in per_box.values()]}; "
        f"acceptance of message i+{MESSAGES} after message i: min {min(gaps):.3f} s, mean "
        f"{sum(gaps) / len(gaps):.3f} s (window {WINDOW} s); first window's {MESSAGES} took up to "
        f"{max(bursts):.2f} s; batch wall time {wall:.1f} s; "
        f"429 for the message rate {stats['rate_429']}, 429 in all {stats['status_429']}; "
        f"max concurrent requests per mailbox {stats['max_concurrency']}"
    )
    label = f"3{'a' if mailboxes == 1 else 'b'}"
    return (
        Result(
            f"{label} achieved/allowed rate, {mailboxes} mailbox{'es' if mailboxes > 1 else ''}",
            round(ratio, 3),
            "",
            f">= {TARGET}",
            ratio >= TARGET,
            detail,
        ),
        Result(
            f"{label} 429 for the message rate, {mailboxes} mailbox{'es' if mailboxes > 1 else ''}",
            stats["rate_429"],
            "",
            "0",
            stats["rate_429"] == 0,
            f"all 429 answers: {stats['status_429']}",
        ),
        info,
    )


def run() -> list[Result]:
    results = []
    for mailboxes, n in ((1, WINDOWS * MESSAGES), (4, 4 * WINDOWS * MESSAGES)):
        ratio, r429, info = one(mailboxes, n)
        print(info, flush=True)
        results += [ratio, r429]
    return results


if __name__ == "__main__":
    main("Benchmark 3: throughput under the sandbox's limits (30 per 2 s per mailbox)", run)
