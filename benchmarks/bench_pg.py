"""Benchmark 6: the journal on PostgreSQL (issue 15), against a local server started here
(``initdb`` into a temporary folder, ``fsync=on``: the numbers include real durable commits).

6a/6b  per-send time of ``Mailer.send`` (compose, duplicate check, queue, pace, claim, Graph
       sendMail at the sandbox, record) on SQLite vs PostgreSQL, 300 single sends each, and the
       difference: what the shared journal costs per invoice.
6c     sends per second with 1, 2 and 4 worker processes (``ccm-mail batch``, each its own host
       identity) sharing one PostgreSQL journal, 1,200 invoices over a pool of 4 mailboxes, no
       provider limit: measured at the sandbox from the first to the last acceptance.
6d/6e  pacing across hosts: 3 workers on one mailbox whose window is compressed to 20 messages
       per 2 s (the sandbox enforces the same and answers 429 above it): achieved / allowed rate
       (allowed = M × (1 + span / W), as in benchmark 3) and the 429s.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import (
    DOMAIN,
    Result,
    SandboxProcess,
    ccm_mail_cmd,
    cli_env,
    invoice_data,
    main,
    write_batch,
    write_config,
)

SINGLE_SENDS = 300
WORKER_INVOICES = 1200
PACE_M, PACE_W, PACE_N = 20, 2.0, 200
PG_PASSWORD_ENV = "CCM_MAIL_BENCH_PG_PASSWORD"
#: bound for one batch run
RUN_SECONDS = 300


def pg_journal(cfg: Path, server: Any, lease: float = 10.0) -> None:
    """Point a benchmark config at a new, migrated database on ``server``."""
    from ccm_mail_core.journal.postgres import PostgresJournal

    url = server.url(server.database("bench"))
    PostgresJournal(url, password=server.password, migrate=True).close()
    config = yaml.safe_load(cfg.read_text("utf-8"))
    config["journal"] = {"url": url, "password": {"env": PG_PASSWORD_ENV}, "lease_seconds": lease}
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    os.environ[PG_PASSWORD_ENV] = server.password


def single_sends(tmp: Path, sb: SandboxProcess, server: Any | None) -> float:
    """ms per ``Mailer.send`` over SINGLE_SENDS invoices (after 20 warm-up sends)."""
    from ccm_mail_core import Mailer

    name = "pg" if server else "sqlite"
    folder = tmp / name
    folder.mkdir()
    cfg = write_config(
        folder / "ccm-mail.yaml",
        sb,
        {"Rechnungsversand": f"rechnung@{DOMAIN}"},
        limits={"messages": 100_000, "per_seconds": 1},
        log_level="warning",
    )
    if server is not None:
        pg_journal(cfg, server)
    with Mailer.from_config(cfg) as mailer:
        for i in range(20):
            mailer.send("invoice", to=["kunde@example.de"], data=invoice_data(i, f"W{name}"), assume_yes=True)
        started = time.perf_counter()
        for i in range(SINGLE_SENDS):
            r = mailer.send("invoice", to=["kunde@example.de"], data=invoice_data(i, f"S{name}"), assume_yes=True)
            assert r.status.value == "sent", r
        return (time.perf_counter() - started) / SINGLE_SENDS * 1000


def workers(
    tmp: Path,
    sb: SandboxProcess,
    server: Any,
    count: int,
    *,
    mailboxes: list[str],
    n: int,
    limits: dict[str, Any],
    tag: str,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[int]]:
    folder = tmp / tag
    folder.mkdir()
    names = [f"R{i}" for i in range(len(mailboxes))]
    cfg = write_config(
        folder / "ccm-mail.yaml",
        sb,
        dict(zip(names, mailboxes, strict=True)),
        pool=names,
        limits=limits,
        grace_seconds=5,
        log_level="warning",
    )
    pg_journal(cfg, server)
    batch = write_batch(folder / "batch.jsonl", n, tag=tag)
    sb.call("reset")
    env = {**cli_env(cfg), PG_PASSWORD_ENV: server.password}
    cmd = ccm_mail_cmd() + ["batch", str(batch), "--purpose", "invoice", "--yes", "--log-level", "warning"]
    with open(folder / "workers.log", "wb") as log:
        procs = [
            subprocess.Popen(
                cmd, env={**env, "CCM_MAIL_HOST_ID": f"bench-host-{i}"}, cwd=folder, stdout=log, stderr=log
            )
            for i in range(count)
        ]
        codes = []
        for p in procs:
            try:
                codes.append(p.wait(timeout=RUN_SECONDS))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
    sent = sb.call("sent")
    assert len(sent) == n and len({s["imid"] for s in sent}) == n, (len(sent), codes)
    return sent, sb.call("stats"), codes


def run() -> list[Result]:
    from ccm_mail_core.testing import pgserver

    results: list[Result] = []
    boxes = [f"rechnung-{c}@{DOMAIN}" for c in "abcd"]
    with (
        tempfile.TemporaryDirectory(prefix="ccm-bench6-") as tmp_name,
        pgserver.running(fsync=True) as server,
        SandboxProcess(Path(tmp_name) / "sandbox") as sb,
    ):
        tmp = Path(tmp_name)
        log = open(tmp / "bench.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        from ccm_mail_core import logging_setup

        logging_setup.configure(fmt="json", level="warning", stream=log)
        sb.seed([f"rechnung@{DOMAIN}", *boxes, f"tempo@{DOMAIN}"])
        sqlite_ms = single_sends(tmp, sb, None)
        pg_ms = single_sends(tmp, sb, server)
        results += [
            Result("6a per send, SQLite journal", round(sqlite_ms, 2), "ms", "-", None, f"{SINGLE_SENDS} sends"),
            Result(
                "6b per send, PostgreSQL journal",
                round(pg_ms, 2),
                "ms",
                "-",
                None,
                f"+{pg_ms - sqlite_ms:.2f} ms per send (local server, fsync on)",
            ),
        ]
        unlimited = {"messages": 100_000, "per_seconds": 1, "concurrency": 4}
        for count in (1, 2, 4):
            sent, _, codes = workers(
                tmp, sb, server, count, mailboxes=boxes, n=WORKER_INVOICES, limits=unlimited, tag=f"W{count}"
            )
            times = sorted(s["at"] for s in sent)
            rate = len(times) / (times[-1] - times[0])
            results.append(
                Result(
                    f"6c sends/s, {count} worker{'s' if count > 1 else ''}, 4 mailboxes",
                    round(rate, 1),
                    "/s",
                    "-",
                    None,
                    f"{WORKER_INVOICES} invoices, exit codes {codes}",
                )
            )
        sb.call("set_rate", f"tempo@{DOMAIN}", PACE_M, PACE_W)
        sent, stats, codes = workers(
            tmp,
            sb,
            server,
            3,
            mailboxes=[f"tempo@{DOMAIN}"],
            n=PACE_N,
            limits={"messages": PACE_M, "per_seconds": PACE_W, "concurrency": 4},
            tag="PACE",
        )
        times = sorted(s["at"] for s in sent)
        span = times[-1] - times[0]
        ratio = PACE_N / (PACE_M * (1 + span / PACE_W))
        results += [
            Result(
                "6d achieved/allowed rate, 3 hosts, 1 mailbox",
                round(ratio, 3),
                "",
                ">= 0.95",
                ratio >= 0.95,
                f"{PACE_N} msgs in {span:.2f} s at {PACE_M}/{PACE_W:g} s; exit codes {codes}",
            ),
            Result(
                "6e 429 from the sandbox, 3 hosts, 1 mailbox",
                stats["status_429"],
                "",
                "0",
                stats["status_429"] == 0,
                f"{stats['rate_429']} for the message rate; "
                f"max concurrency {stats['max_concurrency'].get(f'tempo@{DOMAIN}')}",
            ),
        ]
    return results


if __name__ == "__main__":
    main("Benchmark 6: PostgreSQL journal: per-send cost, workers on 4 mailboxes, pacing across hosts", run)
