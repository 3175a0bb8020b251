"""Benchmark 5: a 1,000-invoice batch killed with SIGKILL at 20 random moments while it sends.

``ccm-mail batch FILE --purpose invoice --yes`` runs as a real subprocess against the sandbox
(own process). Each time, once the sandbox has accepted a random 1-30 more messages from that
run, the batch is killed after a further random 0-50 ms, then started again; after 20 kills it
runs to the end. Then every invoice must have been received by the sandbox exactly once (counted
by internetMessageId over everything the sandbox accepted) and the journal must have all 1,000
as sent. The app has Mail.ReadBasic.All, so rows a killed run left in ``sending`` are looked up
in Sent Items; ``outbox: {grace_seconds: 2}`` keeps waiting for not-found rows short; the limits
(1,000 per second) keep the run quick. BENCH_SEED=N repeats a run's random moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import DOMAIN, Result, SandboxProcess, ccm_mail_cmd, cli_env, main, write_batch, write_config

N = 1000
KILLS = 20
MAILBOX = f"rechnung@{DOMAIN}"
#: hard bounds: the whole benchmark, and one run of the batch
TOTAL_SECONDS = 900
RUN_SECONDS = 300


def run() -> list[Result]:
    from ccm_mail_core.batch import batch_id_for

    seed = int(os.environ.get("BENCH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="ccm-bench5-") as tmp_name,
        SandboxProcess(Path(tmp_name) / "sandbox") as sb,
    ):
        tmp = Path(tmp_name)
        sb.seed([MAILBOX])
        cfg = write_config(
            tmp / "ccm-mail.yaml",
            sb,
            {"Rechnungsversand": MAILBOX},
            limits={"messages": 1000, "per_seconds": 1},
            grace_seconds=2,
        )
        batch = write_batch(tmp / "batch.jsonl", N, tag="K")
        cmd = ccm_mail_cmd() + ["batch", str(batch), "--purpose", "invoice", "--yes", "--log-level", "warning"]
        env = cli_env(cfg)
        kills = runs = 0
        at_kill: list[int] = []
        codes: list[int] = []
        started = time.monotonic()
        with open(tmp / "runs.log", "wb") as log:
            while time.monotonic() - started < TOTAL_SECONDS:
                before = sb.call("count")
                proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=log, stderr=log)
                runs += 1
                run_deadline = time.monotonic() + RUN_SECONDS
                if kills < KILLS:
                    more = rng.randint(1, 30)
                    while proc.poll() is None and sb.call("count") < before + more and time.monotonic() < run_deadline:
                        time.sleep(0.005)
                    if proc.poll() is None:
                        time.sleep(rng.uniform(0, 0.05))
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        kills += 1
                        at_kill.append(sb.call("count"))
                        continue
                try:
                    rc = proc.wait(timeout=max(1.0, run_deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
                codes.append(rc)
                if rc == 0 and kills >= KILLS:
                    break
                if rc == 0 and kills < KILLS:
                    break  # finished before all kills happened: reported below as fewer kills
                if len(codes) > 10:
                    break
        seconds = time.monotonic() - started
        sent = sb.call("sent")
        stats = sb.call("stats")
        journal = subprocess.run(
            ccm_mail_cmd() + ["journal", "--json", "--limit", "0"],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        entries = json.loads(journal.stdout)["entries"]
        db = sqlite3.connect(f"file:{tmp / 'journal.sqlite'}?mode=ro", uri=True)
        found = db.execute("SELECT count(*) FROM events WHERE detail LIKE 'found at the provider%'").fetchone()[0]
        requeued = db.execute("SELECT count(*) FROM events WHERE detail LIKE 'not found at the provider%'").fetchone()[
            0
        ]
        db.close()
        bid = batch_id_for(batch, "invoice")
    expected = {f"<ccm.{bid}.{row}@{DOMAIN}>" for row in range(1, N + 1)}
    received = Counter(s["imid"] for s in sent)
    duplicates = sum(c - 1 for c in received.values() if c > 1)
    missing = len(expected - set(received))
    foreign = len(set(received) - expected)
    journal_sent = sum(1 for e in entries if e["status"] == "sent")
    statuses = Counter(e["status"] for e in entries)
    print(
        f"   seed {seed}; runs {runs} (exit codes of unkilled runs {codes}); sandbox had accepted "
        f"{at_kill} messages at the kills; after kills: {found} rows found in Sent Items, {requeued} "
        f"not found and sent again; journal {dict(statuses)}; token requests over all runs "
        f"{stats['token_requests']}; {seconds:.1f} s"
    )
    return [
        Result(
            "5a kills (SIGKILL while sending)",
            kills,
            "",
            f"= {KILLS}",
            kills == KILLS,
            f"{runs - 1} restarts, {seconds:.0f} s in all",
        ),
        Result(
            "5b duplicates received by the sandbox",
            duplicates,
            "",
            "0",
            duplicates == 0,
            f"{len(received)} distinct of {len(sent)} accepted; foreign {foreign}",
        ),
        Result("5c missing (never received)", missing, "", "0", missing == 0, f"of {N}"),
        Result(
            "5d journal rows sent",
            journal_sent,
            "",
            f"= {N}",
            journal_sent == N and len(entries) == N,
            f"{len(entries)} rows",
        ),
    ]


if __name__ == "__main__":
    main("Benchmark 5: 1,000-message batch, SIGKILL at 20 random moments, restarted until done", run)
