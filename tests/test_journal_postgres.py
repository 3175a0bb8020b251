"""The PostgreSQL journal against a real server: schema only on purpose, moving a SQLite journal
over with its history, an unreachable database said clearly (and no password anywhere), the
duplicate check, claims and leases across "hosts", pacing over several hosts, and a database
that stops in the middle of a batch."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ccm_mail_core import Mailer, batch
from ccm_mail_core.journal import DuplicateSend, JournalError, SQLiteJournal
from ccm_mail_core.journal.postgres import PostgresJournal
from ccm_mail_core.journal.postgres_pacer import SharedPacer
from ccm_mail_core.outbox import Outbox
from ccm_mail_core.pacing import DailyLimitReached, Limits
from ccm_mail_hookspecs import Status, hookimpl

from host_support import BASE_CONFIG, INVOICE, PG_PASSWORD_ENV, cli_json, run_cli

SQLITE_SECTION = "journal:\n  path: journal.sqlite\n"


def fresh_url(pg_server: Any) -> str:
    return str(pg_server.url(pg_server.database()))


def pg_config(url: str, *, extra: str = "") -> str:
    return BASE_CONFIG.replace(
        SQLITE_SECTION, f"journal:\n  url: {url}\n  password: {{env: {PG_PASSWORD_ENV}}}\n  lease_seconds: 2\n{extra}"
    )


@pytest.fixture
def pg_env(pg_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(PG_PASSWORD_ENV, pg_server.password)
    return pg_server


def rows_file(path: Path, n: int, tag: str = "RE") -> Path:
    path.write_text(
        "".join(
            json.dumps({"to": f"kunde{i}@example.de", "data": dict(INVOICE, extRechnungsNr=f"{tag}-{i:05d}")}) + "\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    return path


# ---- schema ----------------------------------------------------------------------------------
def test_an_empty_database_is_refused_until_journal_migrate(pg_env, workdir) -> None:
    url = fresh_url(pg_env)
    (workdir / "ccm-mail.yaml").write_text(pg_config(url), encoding="utf-8")
    send = ("send", "--purpose", "invoice", "--to", "k@example.de", "--data", "-", "--yes")
    refused = run_cli(*send, cwd=workdir, stdin=json.dumps(INVOICE))
    assert refused.returncode == 1, refused.stderr
    assert "noch kein ccm-mail-Schema" in refused.stderr and "ccm-mail journal migrate" in refused.stderr
    assert not (workdir / "out").exists()
    code, migrated = cli_json("journal", "migrate", cwd=workdir)
    assert code == 0 and (migrated["from"], migrated["to"]) == (0, 2), migrated
    code, again = cli_json("journal", "migrate", cwd=workdir)
    assert code == 0 and again["from"] == again["to"] == 2
    sent = run_cli(*send, cwd=workdir, stdin=json.dumps(INVOICE))
    assert sent.returncode == 0, sent.stderr
    code, data = cli_json("journal", "--reference", "RE-2026-00042", cwd=workdir)
    assert [e["status"] for e in data["entries"]] == ["sent"]


def test_a_newer_schema_is_refused(pg_env) -> None:
    url = fresh_url(pg_env)
    PostgresJournal(url, password=pg_env.password, migrate=True).close()
    pg_env.psql("INSERT INTO ccm_schema (version, note) VALUES (99, 'from the future')", db=url.rsplit("/", 1)[1])
    with pytest.raises(JournalError, match="neueren ccm-mail"):
        PostgresJournal(url, password=pg_env.password)


def test_a_schema_1_database_is_refused_until_migrate_adds_the_archive_columns(pg_env, workdir) -> None:
    """Migration 2 (the archive copy's hash and file) is applied by 'journal migrate' only."""
    url = fresh_url(pg_env)
    PostgresJournal(url, password=pg_env.password, migrate=True).close()
    db = url.rsplit("/", 1)[1]
    pg_env.psql(
        "ALTER TABLE messages DROP COLUMN archive_sha256; ALTER TABLE messages DROP COLUMN archive_file;"
        " DELETE FROM ccm_schema WHERE version = 2",
        db=db,
    )
    with pytest.raises(JournalError, match="hat Schema 1, dieses ccm-mail braucht 2"):
        PostgresJournal(url, password=pg_env.password)
    (workdir / "ccm-mail.yaml").write_text(pg_config(url), encoding="utf-8")
    code, migrated = cli_json("journal", "migrate", cwd=workdir)
    assert code == 0 and (migrated["from"], migrated["to"]) == (1, 2), migrated
    archived = pg_config(url).replace(
        "  invoice: Rechnungsversand\n", "  invoice:\n    account: Rechnungsversand\n    archive: {folder: archiv}\n"
    )
    (workdir / "ccm-mail.yaml").write_text(archived, encoding="utf-8")
    with Mailer.from_config(workdir / "ccm-mail.yaml", load_entrypoints=False) as mailer:
        result = mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
        assert mailer.journal.get(result.journal_id).archive_sha256 == result.archive["sha256"]
    code, verified = cli_json("archive", "verify", cwd=workdir)
    assert code == 0 and verified["checked"] == 1


def test_sqlite_journal_of_today_needs_no_migration(make_mailer, workdir) -> None:
    """Schema 3 is current for SQLite: today's journals open unchanged; migrate says so."""
    make_mailer().send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    code, data = cli_json("journal", "migrate", cwd=workdir)
    assert code == 0 and data["from"] == data["to"] == 3


def test_a_schema_1_sqlite_journal_is_upgraded_with_a_warning(workdir, caplog) -> None:
    import sqlite3

    db = sqlite3.connect(workdir / "journal.sqlite")
    db.executescript("""
        CREATE TABLE messages (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, purpose TEXT NOT NULL,
          account TEXT NOT NULL, account_type TEXT NOT NULL, reference TEXT NOT NULL DEFAULT '', recipients TEXT NOT NULL,
          subject TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL, sent_at TEXT, transport_ids TEXT NOT NULL DEFAULT '{}', error TEXT, error_kind TEXT,
          batch TEXT, payload TEXT);
        CREATE TABLE events (id INTEGER PRIMARY KEY, message INTEGER NOT NULL REFERENCES messages(id), at TEXT NOT NULL,
          status TEXT NOT NULL, detail TEXT);
        INSERT INTO messages (message_id, purpose, account, account_type, reference, recipients, subject, status,
          created_at, updated_at, sent_at) VALUES ('<old@codicon.de>', 'invoice', 'Rechnungsversand', 'pickup',
          'RE-2026-00042', '["k@example.de"]', 's', 'sent', '2025-01-02T10:00:00+00:00', '2025-01-02T10:00:00+00:00',
          '2025-01-02T10:00:00+00:00');
        PRAGMA user_version=1;""")
    db.close()
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    proc = run_cli("journal", "migrate", cwd=workdir)
    assert proc.returncode == 0 and "Schema 1 → 3" in proc.stdout, proc.stdout + proc.stderr
    assert "journal_schema_upgraded" in proc.stderr  # said, not silent
    again = run_cli(
        "send",
        "--purpose",
        "invoice",
        "--to",
        "k@example.de",
        "--data",
        "-",
        "--yes",
        cwd=workdir,
        stdin=json.dumps(INVOICE),
    )
    assert again.returncode == 5, again.stderr  # the old journal's invoice still counts


# ---- moving over -------------------------------------------------------------------------------
def test_copy_moves_history_and_the_duplicate_check(pg_env, workdir, make_mailer) -> None:
    mailer = make_mailer(
        BASE_CONFIG.replace(
            "  invoice: Rechnungsversand\n",
            "  invoice:\n    account: Rechnungsversand\n    archive: {folder: archiv}\n",
        )
    )
    first = mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    assert first.archive is not None  # the archive copy's hash travels with the row
    second = mailer.send("invoice", to=["k@example.de"], data=dict(INVOICE, extRechnungsNr="RE-2"), assume_yes=True)
    declined = mailer.journal.create(
        message_id="<c@codicon.de>",
        purpose="invoice",
        account="Rechnungsversand",
        account_type="pickup",
        reference="RE-3",
        recipients=["x@example.de"],
        subject="s",
        status=Status.CANCELLED,
        allow_duplicate=True,
        error="abgelehnt",
        error_kind="cancelled",
    )
    before = {e.id: (e, mailer.journal.events(e.id)) for e in mailer.journal.query(limit=0)}
    mailer.close()
    url = fresh_url(pg_env)
    proc = run_cli("journal", "copy", "--to", url, "--password-env", PG_PASSWORD_ENV, "--json", cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert (data["messages"], data["schema_created"]) == (3, True) and data["events"] == sum(
        len(ev) for _, ev in before.values()
    )
    assert pg_env.password not in proc.stdout + proc.stderr
    # a second copy into the same database is refused: nothing doubled
    again = run_cli("journal", "copy", "--to", url, "--password-env", PG_PASSWORD_ENV, cwd=workdir)
    assert again.returncode == 1 and "schon 3 Einträge" in again.stderr
    (workdir / "ccm-mail.yaml").write_text(pg_config(url), encoding="utf-8")
    moved = Mailer.from_config(workdir / "ccm-mail.yaml", load_entrypoints=False)
    try:
        after = {e.id: (e, moved.journal.events(e.id)) for e in moved.journal.query(limit=0)}
        assert set(after) == {first.journal_id, second.journal_id, declined}
        for row_id, (entry, events) in before.items():
            assert after[row_id][0] == entry and after[row_id][1] == events
        with pytest.raises(DuplicateSend):  # the invoice sent on SQLite stays sent
            moved.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
        new = moved.send("invoice", to=["k@example.de"], data=dict(INVOICE, extRechnungsNr="RE-4"), assume_yes=True)
        assert new.status is Status.SENT and new.journal_id > max(before)
        assert moved.pacer("Rechnungsversand").recipients_today() == 3  # the day's two sends came along
    finally:
        moved.close()


# ---- unreachable, secrets ---------------------------------------------------------------------
def test_config_check_names_host_port_and_reason(pg_env, workdir) -> None:
    from ccm_mail_core.testing.pgserver import free_port

    port = free_port()
    url = f"postgresql://ccm@127.0.0.1:{port}/ccm_mail"
    (workdir / "ccm-mail.yaml").write_text(pg_config(url), encoding="utf-8")
    de = run_cli("config", "check", cwd=workdir)
    assert de.returncode == 2
    assert f"127.0.0.1:{port}" in de.stderr and "nicht erreichbar" in de.stderr and "Verbindung abgelehnt" in de.stderr
    en = run_cli("config", "check", "--lang", "en", "--json", cwd=workdir)
    error = json.loads(en.stdout)["error"]
    assert en.returncode == 2 and "cannot be reached" in error["message"] and "Connection refused" in error["message"]
    assert (error["details"]["host"], error["details"]["port"]) == ("127.0.0.1", port)


def test_wrong_password_is_said_and_no_password_is_shown(pg_env, workdir, monkeypatch) -> None:
    url = fresh_url(pg_env)
    PostgresJournal(url, password=pg_env.password, migrate=True).close()
    wrong = "Falsch~" + pg_env.password[::-1]
    monkeypatch.setenv(PG_PASSWORD_ENV, wrong)
    (workdir / "ccm-mail.yaml").write_text(pg_config(url), encoding="utf-8")
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 2 and "Benutzer oder Passwort falsch" in proc.stderr
    assert wrong not in proc.stdout + proc.stderr and pg_env.password not in proc.stdout + proc.stderr
    monkeypatch.setenv(PG_PASSWORD_ENV, pg_env.password)
    ok = run_cli("config", "check", "--json", cwd=workdir)
    assert ok.returncode == 0 and json.loads(ok.stdout)["journal"] == url, ok.stdout + ok.stderr


def test_a_password_in_the_url_is_refused_and_blanked(pg_env, workdir) -> None:
    url = pg_env.url("whatever", with_password=True)
    (workdir / "ccm-mail.yaml").write_text(pg_config(url), encoding="utf-8")
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 2 and "journal.password" in proc.stderr
    assert pg_env.password not in proc.stdout + proc.stderr


# ---- across hosts ------------------------------------------------------------------------------
def test_hosts_racing_for_one_reference_queue_it_once(pg_env) -> None:
    """Six journals (as six hosts) insert the same invoice at the same moment, twenty times over:
    the duplicate check and the insert are one step, so each invoice is queued exactly once."""
    url = fresh_url(pg_env)
    journals = [PostgresJournal(url, password=pg_env.password, migrate=(i == 0)) for i in range(6)]
    barrier = threading.Barrier(len(journals))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def race(j: PostgresJournal, host: int) -> None:
        for n in range(20):
            barrier.wait()
            try:
                j.create(
                    message_id=f"<{n}.{host}@codicon.de>",
                    purpose="invoice",
                    account="R",
                    account_type="pickup",
                    reference=f"RE-{n}",
                    recipients=["k@example.de"],
                    subject="s",
                )
                result = "queued"
            except DuplicateSend:
                result = "duplicate"
            with lock:
                outcomes[result] += 1

    threads = [threading.Thread(target=race, args=(j, i)) for i, j in enumerate(journals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        per_reference = Counter(e.reference for e in journals[0].query(limit=0))
    finally:
        for j in journals:
            j.close()
    assert outcomes == {"queued": 20, "duplicate": 100} and set(per_reference.values()) == {1}, per_reference


CLAIM_AND_DIE = """
import os, sys
from ccm_mail_core.journal.postgres import PostgresJournal
from ccm_mail_core import owner
from ccm_mail_hookspecs import Status
j = PostgresJournal(sys.argv[1], password=os.environ["{env}"], lease_seconds=1.5)
assert j.transition(int(sys.argv[2]), Status.SENDING, owner=owner.current().format(), expect=(Status.QUEUED,))
print(owner.current().format(), flush=True)
sys.stdin.read()  # held until the test kills it
"""


def test_a_row_held_by_a_dead_host_is_looked_up_after_its_lease(pg_env, workdir, make_mailer) -> None:
    """Another host claims a row, then dies (SIGKILL): while its lease runs the row is left
    alone; afterwards it is settled at the provider (here: found, so never sent again)."""
    url = fresh_url(pg_env)
    PostgresJournal(url, password=pg_env.password, migrate=True).close()
    mailer = make_mailer(pg_config(url))
    preview = mailer.compose("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    from ccm_mail_core.journal import row_fields

    row = mailer.journal.create(**row_fields(preview.message, preview.context))
    env = {**os.environ, "CCM_MAIL_HOST_ID": "absys-server-2", PG_PASSWORD_ENV: pg_env.password}
    other = subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_DIE.replace("{env}", PG_PASSWORD_ENV), url, str(row)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        holder = other.stdout.readline().strip()  # type: ignore[union-attr]
        assert holder.startswith("absys-server-2:"), holder
        # the other host "delivered" it before dying: the pickup file exists
        mailer.transport("Rechnungsversand").send(preview.message)
        assert Outbox(mailer).check().busy == [row]  # its lease still runs
    finally:
        other.kill()
        other.wait()
        other.stdin.close()  # type: ignore[union-attr]
        other.stdout.close()  # type: ignore[union-attr]
    entry = mailer.journal.get(row)
    assert entry.status is Status.SENDING and entry.owner == holder
    deadline = __import__("time").monotonic() + 10
    while mailer.journal.owner_alive(holder):
        assert __import__("time").monotonic() < deadline, "the lease never ran out"
        __import__("time").sleep(0.1)
    check = Outbox(mailer).check()
    assert check.sent == [row], check
    assert [e["status"] for e in mailer.journal.events(row)][-3:] == ["sending", "unknown", "sent"]
    assert len(list((workdir / "out").glob("*.eml"))) == 1


class StopSleeping(Exception):
    pass


def test_shared_pacing_counts_every_host(pg_env) -> None:
    url = fresh_url(pg_env)
    a = PostgresJournal(url, password=pg_env.password, migrate=True)
    b = PostgresJournal(url, password=pg_env.password)
    waits: list[float] = []

    def no_wait(seconds: float) -> None:
        waits.append(seconds)
        raise StopSleeping

    try:
        limits = Limits(messages=3, per_seconds=3600, concurrency=2, recipients_per_day=5)
        host_a, host_b = SharedPacer(a, "R", limits), SharedPacer(b, "R", limits, sleep=no_wait)
        s1 = host_a.acquire(1)
        s2 = host_b.acquire(1)
        with pytest.raises(StopSleeping):  # concurrency 2 is used up by both hosts together
            host_b.acquire(1)
        host_a.release(s1, sent=True)
        host_b.cancel(s2)  # never used: counts nowhere
        s3 = host_b.acquire(2)
        host_b.release(s3, sent=True, recipients=2)
        assert host_a.recipients_today() == 3
        with pytest.raises(DailyLimitReached, match="über alle Rechner"):
            host_a.acquire(3)
        s4 = host_a.acquire(1)
        host_a.release(s4, sent=False)  # surely not sent: its recipient is given back ...
        assert host_b.recipients_today() == 3
        with pytest.raises(StopSleeping):  # ... but the window of 3 messages is full (s1, s3, s4)
            host_b.acquire(1)
        assert len(waits) == 2
    finally:
        a.close()
        b.close()


class StopDatabase:
    """Stops the PostgreSQL server after the n-th send (a database restart mid-run)."""

    def __init__(self, server: Any, after: int) -> None:
        self.server, self.after, self.sent = server, after, 0

    @hookimpl
    def ccm_mail_sent(self, message, receipt, context):  # type: ignore[no-untyped-def]
        self.sent += 1
        if self.sent == self.after:
            self.server.stop("fast")


def test_database_stopped_mid_batch_stops_at_once_then_resumes_exactly_once(pg_env, workdir, make_mailer) -> None:
    url = fresh_url(pg_env)
    PostgresJournal(url, password=pg_env.password, migrate=True).close()
    config = pg_config(url).replace(
        "    from_name: codicon GmbH\n",
        "    from_name: codicon GmbH\n    limits:\n      messages: 1000\n      per_seconds: 1\n      concurrency: 1\n",
    )
    config += "outbox:\n  grace_seconds: 0\n"
    stopper = StopDatabase(pg_env, after=3)
    mailer = make_mailer(config, plugins={"stopper": stopper})
    path = rows_file(workdir / "b.jsonl", 12)
    plan = batch.plan(mailer, path, "invoice")
    batch.queue_plan(mailer, plan)
    try:
        summary = batch.send(mailer, plan, stream=io.StringIO())
    finally:
        pg_env.start()
    assert summary.exit_code in (1, 4) and len(summary.stopped) == 1, summary.stopped
    assert "nicht erreichbar" in summary.stopped[0] and pg_env.password not in summary.stopped[0]
    assert len(list((workdir / "out").glob("*.eml"))) == 3
    mailer.close()
    proc = run_cli("batch", str(path), "--purpose", "invoice", "--yes", cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = Counter(f.name.split("-", 1)[1] for f in (workdir / "out").glob("*.eml"))
    assert len(files) == 12 and set(files.values()) == {1}
    code, data = cli_json("outbox", cwd=workdir)
    assert code == 0 and data["entries"] == []


def test_sqlite_journal_object_is_still_what_journal_path_opens(tmp_path) -> None:
    from ccm_mail_core.journal import Journal

    journal = Journal(tmp_path / "j.sqlite")
    try:
        assert isinstance(journal, SQLiteJournal) and not journal.shared
    finally:
        journal.close()


def test_help_does_not_import_the_postgresql_driver() -> None:
    code = (
        "import sys\nfrom ccm_mail_core.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "from ccm_mail_core import Mailer, journal, batch, outbox\n"
        "assert not [m for m in sys.modules if m.startswith('psycopg')], sorted(sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
