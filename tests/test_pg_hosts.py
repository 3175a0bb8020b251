"""Several hosts on one PostgreSQL journal, as real processes against the bundled Microsoft 365
sandbox (Office 365 plugin, OAuth client credentials, Graph sendMail over TLS on loopback):

- exactly once: three workers with different host identities share a 1,000-invoice batch; 20
  SIGKILLs at random moments while they send, each killed worker restarted; the database is
  stopped for a few seconds mid-run. Every invoice reaches the sandbox exactly once, none is
  lost, the outbox is empty at the end.
- pacing: three workers on one mailbox with a compressed window never draw a 429 from the
  sandbox's rate and concurrency limits (the achieved rate is measured in benchmarks/bench_pg.py).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from host_support import LOAD_PLUGINS, PG_PASSWORD_ENV, pg_journal_section, run_cli

pytest.importorskip("ccm_mail_office365_sandbox")

SECRET = "Hosts~Sandbox.Geheimnis-nicht-produktiv"
SECRET_ENV = "CCM_TEST_O365_SECRET"
TEMPLATE = {
    "subject": "codicon GmbH / Rg. #extRechnungsNr#",
    "body": "#Anrede#, anbei Rechnung #extRechnungsNr#.",
    "reference": "#extRechnungsNr#",
}
#: hard bounds: no loop here runs longer than this
RUN_SECONDS = 240


class Site:
    """A sandbox tenant with mailboxes, a migrated PostgreSQL journal and a config for the workers."""

    def __init__(
        self,
        sandbox: Any,
        pg_server: Any,
        tmp: Path,
        mailboxes: int,
        *,
        limits: dict[str, Any],
        grace: float,
        lease: float,
    ) -> None:
        self.sandbox, self.pg, self.tmp = sandbox, pg_server, tmp
        tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
        sandbox.add_tenant(tenant)
        sandbox.add_app(tenant, client, secret=SECRET, permissions={"Mail.Send", "Mail.ReadBasic.All"}, consented=True)
        self.mailboxes = [f"rechnung{i}-{tenant[:6]}@firma.example" for i in range(mailboxes)]
        accounts = {}
        for i, mb in enumerate(self.mailboxes):
            sandbox.add_mailbox(tenant, mb)
            accounts[f"R{i}"] = {
                "type": "office365",
                "tenant_id": tenant,
                "client_id": client,
                "mailbox": mb,
                "client_secret": {"env": SECRET_ENV},
                "authority_host": sandbox.authority_host,
                "graph_endpoint": sandbox.graph_endpoint,
                "ca_bundle": sandbox.ca_pem,
                "limits": limits,
            }
        section = yaml.safe_load(pg_journal_section(pg_server, lease_seconds=lease))["journal"]
        self.url = section["url"]
        config = {
            "language": "de",
            "accounts": accounts,
            "purposes": {"invoice": list(accounts)},
            "templates": {"invoice": TEMPLATE},
            "journal": section,
            "state_dir": str(tmp / "state"),
            "outbox": {"grace_seconds": grace},
            "logging": {"level": "warning"},
        }
        self.config = tmp / "ccm-mail.yaml"
        self.config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        self.config.chmod(0o600)

    def batch(self, n: int, tag: str) -> Path:
        path = self.tmp / f"{tag}.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {"to": f"kunde{i}@example.de", "data": {"extRechnungsNr": f"{tag}-{i:05d}", "Anrede": "Hallo"}}
                )
                + "\n"
                for i in range(n)
            ),
            encoding="utf-8",
        )
        return path

    def env(self, host: str) -> dict[str, str]:
        return {
            **os.environ,
            "CCM_MAIL_CONFIG": str(self.config),
            SECRET_ENV: SECRET,
            PG_PASSWORD_ENV: self.pg.password,
            "CCM_MAIL_HOST_ID": host,
            LOAD_PLUGINS: "office365",
            "PYTHONUNBUFFERED": "1",
        }

    def worker(self, host: str, batch: Path, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccm_mail_core.cli",
                "batch",
                str(batch),
                "--purpose",
                "invoice",
                "--yes",
                "--log-level",
                "warning",
            ],
            cwd=self.tmp,
            env=self.env(host),
            stdout=log,
            stderr=log,
        )

    def statuses(self) -> Counter[str]:
        import psycopg

        try:
            with psycopg.connect(self.url, password=self.pg.password, connect_timeout=2) as conn:
                return Counter({s: n for s, n in conn.execute("SELECT status, count(*) FROM messages GROUP BY status")})
        except psycopg.OperationalError:
            return Counter()

    def accepted(self) -> int:
        with self.sandbox.state.lock:
            return len(self.sandbox.state.sent)


@pytest.fixture
def sandbox(tmp_path: Path) -> Any:
    from ccm_mail_office365_sandbox import Sandbox

    with Sandbox(state_dir=tmp_path / "sandbox") as sb:
        yield sb


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.slow
def test_three_hosts_share_a_batch_exactly_once_through_kills_and_a_database_stop(sandbox, pg_server, tmp_path) -> None:
    n, kills_wanted = 1000, 20
    site = Site(
        sandbox,
        pg_server,
        tmp_path,
        1,
        limits={"messages": 100_000, "per_seconds": 1, "concurrency": 4},
        grace=3,
        lease=3,
    )
    sandbox.set_rate(site.mailboxes[0], 100_000, 1)  # Exchange's 30/min would make this test take half an hour
    batch = site.batch(n, "RE")
    seed = int(os.environ.get("CCM_TEST_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    # the kills fall at random counts of accepted messages over most of the run; the database stop in the middle
    kill_at = sorted(rng.sample(range(10, int(n * 0.9)), kills_wanted))
    stop_db_at = rng.randint(int(n * 0.4), int(n * 0.6))
    hosts = ["absys-a", "absys-b", "absys-c"]
    kills, restarts, db_stopped = 0, 0, False
    log = open(tmp_path / "workers.log", "wb")
    procs = {h: site.worker(h, batch, log) for h in hosts}
    deadline = time.monotonic() + RUN_SECONDS
    try:
        while time.monotonic() < deadline:
            count = site.accepted()
            if kills < kills_wanted and count >= kill_at[kills]:
                victim = rng.choice([h for h in hosts if procs[h].poll() is None] or hosts)
                time.sleep(rng.uniform(0, 0.03))
                if procs[victim].poll() is None:
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait()
                    kills += 1
                    procs[victim] = site.worker(victim, batch, log)
                    continue
            if not db_stopped and count >= stop_db_at:
                db_stopped = True
                pg_server.stop("fast")
                time.sleep(3)
                pg_server.start()
            finished = [h for h in hosts if procs[h].poll() is not None]
            if finished:
                states = site.statuses()
                if states.get("sent") == n and not any(procs[h].poll() is None for h in hosts):
                    break
                for h in finished:  # a worker that stopped (database gone, rows of a dead host) starts again
                    if states.get("sent") != n:
                        procs[h] = site.worker(h, batch, log)
                        restarts += 1
                time.sleep(0.3)
            time.sleep(0.01)
    finally:
        stop_all(procs)
        log.close()
        if not db_stopped:
            pg_server.start()
    tail = (tmp_path / "workers.log").read_text("utf-8", "replace")[-3000:]
    print(f"seed {seed}: {kills} kills, {restarts} restarts after a worker stopped, database stopped at {stop_db_at}")
    assert kills == kills_wanted, f"seed {seed}: only {kills} kills\n{tail}"
    assert db_stopped
    states = site.statuses()
    assert states == {"sent": n}, f"seed {seed}: {states}\n{tail}"
    received = Counter(m.internet_message_id for m in sandbox.sent_messages())
    assert len(received) == n, f"seed {seed}: {n - len(received)} invoices never arrived"
    twice = {k: v for k, v in received.items() if v > 1}
    assert not twice, f"seed {seed}: sent more than once: {twice}"
    outbox = run_cli(
        "outbox",
        "--json",
        cwd=tmp_path,
        env={k: v for k, v in site.env("absys-check").items() if k not in os.environ or os.environ[k] != v},
    )
    assert outbox.returncode == 0 and json.loads(outbox.stdout)["entries"] == [], outbox.stdout + outbox.stderr


@pytest.mark.slow
def test_three_hosts_on_one_mailbox_never_exceed_its_rate(sandbox, pg_server, tmp_path) -> None:
    """A compressed window (8 messages per 2 s, 2 at a time): the sandbox enforces the same limits
    and answers 429 above them; over all three hosts it never has to."""
    site = Site(
        sandbox, pg_server, tmp_path, 1, limits={"messages": 8, "per_seconds": 2, "concurrency": 2}, grace=3, lease=3
    )
    sandbox.set_rate(site.mailboxes[0], 8, 2)
    n = 48
    batch = site.batch(n, "PACE")
    log = open(tmp_path / "workers.log", "wb")
    procs = {h: site.worker(h, batch, log) for h in ("absys-a", "absys-b", "absys-c")}
    try:
        codes = {h: p.wait(timeout=RUN_SECONDS) for h, p in procs.items()}
    finally:
        stop_all(procs)
        log.close()
    tail = (tmp_path / "workers.log").read_text("utf-8", "replace")[-3000:]
    throttled = [r for r in sandbox.requests if r.status == 429]
    assert throttled == [], f"{len(throttled)} answers 429\n{tail}"
    assert sandbox.max_concurrency(site.mailboxes[0]) <= 2
    assert site.statuses() == {"sent": n}, tail
    received = Counter(m.internet_message_id for m in sandbox.sent_messages())
    assert len(received) == n and set(received.values()) == {1}
    assert set(codes.values()) <= {0, 4}, codes  # 4: another host was still sending when this one finished
