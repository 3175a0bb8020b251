"""The journal on real files when the storage misbehaves (field defects 2, 8, 19, 20): a disk
that fills up, a file that is deleted or replaced mid-run, who may read the file, a read-only
copy. Whatever happens: nothing leaves without a durable claim, and the next run sends nothing twice."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ccm_mail_core import batch
from ccm_mail_core.journal import JournalError
from ccm_mail_hookspecs import Status, hookimpl

from host_support import BASE_CONFIG, INVOICE, run_cli


def write_rows(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "to": f"kunde{i}@example.de",
                    "data": dict(INVOICE, extRechnungsNr=f"RE-{i:05d}", Anrede="Sehr geehrte Damen und Herren " * 8),
                }
            )
            + "\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    return path


def eml_ids(folder: Path) -> Counter[str]:
    """The pickup folder's files by the Message-ID in their name."""
    return Counter(f.name.split("-", 1)[1].removesuffix(".eml") for f in folder.glob("*.eml"))


def safe(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", message_id.strip("<>"))[:80]


def journal_rows(path: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM messages ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="POSIX file-size limit")
def test_file_size_limit_mid_batch_stops_at_once_with_one_message(workdir) -> None:
    """Defect 2: the journal hits a file-size limit while a batch sends (what a full disk does
    too): one clear message, a summary, no traceback flood, nothing sent without a claim on disk."""
    # grace 0: a row claimed but never sent is found missing at once and sent on the re-run;
    # no pacing: a pickup folder has no Exchange limits
    config = BASE_CONFIG.replace(
        "    from_name: codicon GmbH\n",
        "    from_name: codicon GmbH\n    limits:\n      messages: 1000\n      per_seconds: 1\n",
    )
    (workdir / "ccm-mail.yaml").write_text(config + "outbox:\n  grace_seconds: 0\n", encoding="utf-8")
    write_rows(workdir / "b.jsonl", 60)
    limit = 400_000  # the queued rows fit; a few sends later the journal cannot grow any more

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "CCM_MAIL_LOAD_PLUGINS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", "batch", "b.jsonl", "--purpose", "invoice", "--yes"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited,
    )
    rows = journal_rows(workdir / "journal.sqlite")
    states = Counter(r["status"] for r in rows)
    assert states["sent"] >= 1 and states["queued"] >= 1, (states, proc.stderr)  # it did stop mid-run
    assert proc.returncode == (4 if states["sending"] else 1), (proc.returncode, states)
    assert "Traceback" not in proc.stderr and len(proc.stderr) < 4000, proc.stderr
    assert (proc.stdout + proc.stderr).count("Dateigrößenlimit") == 1, proc.stdout + proc.stderr
    assert f"gesendet {states['sent']}, " in proc.stdout.splitlines()[0]  # the summary: what went out, what not
    # every file that left has a claim on disk, and every row recorded as sent did leave
    left = eml_ids(workdir / "out")
    recorded = {safe(r["message_id"]) for r in rows if r["status"] == "sent"}
    claimed = {safe(r["message_id"]) for r in rows if r["status"] in ("sent", "sending")}
    assert recorded <= set(left) <= claimed and set(left.values()) == {1}
    # without the limit the same command finishes the batch and sends nothing twice
    again = subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", "batch", "b.jsonl", "--purpose", "invoice", "--yes"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode in (0, 4), again.stderr
    assert len(eml_ids(workdir / "out")) == 60 and set(eml_ids(workdir / "out").values()) == {1}


class Vanish:
    """After the first send, the journal file is deleted or replaced (a cleanup job, a restore)."""

    def __init__(self, journal: Path, how: str) -> None:
        self.journal, self.how, self.done = journal, how, False

    @hookimpl
    def ccm_mail_sent(self, message, receipt, context):  # type: ignore[no-untyped-def]
        if self.done:
            return
        self.done = True
        if self.how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.journal}{suffix}").unlink(missing_ok=True)
        else:
            other = self.journal.with_name("restored.sqlite")
            shutil.copy(self.journal, other)
            os.replace(other, self.journal)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_journal_deleted_or_replaced_mid_run_stops_the_run(make_mailer, workdir, how) -> None:
    """Defect 8: the run notices before its next claim and stops with a clear error, instead of
    reporting ok into a journal nobody will read (and sending everything again next time)."""
    one_at_a_time = BASE_CONFIG.replace(
        "    from_name: codicon GmbH\n", "    from_name: codicon GmbH\n    limits:\n      concurrency: 1\n"
    )
    mailer = make_mailer(one_at_a_time, plugins={"vanish": Vanish(workdir / "journal.sqlite", how)})
    plan = batch.plan(mailer, write_rows(workdir / "b.jsonl", 5), "invoice")
    batch.queue_plan(mailer, plan)
    summary = batch.send(mailer, plan, stream=io.StringIO())
    assert len(eml_ids(workdir / "out")) == 1
    assert summary.exit_code != 0 and any("gelöscht oder ersetzt" in s for s in summary.stopped), summary.stopped
    with pytest.raises(JournalError) as err:
        mailer.send("invoice", to=["k@example.de"], data=dict(INVOICE, extRechnungsNr="RE-X"), assume_yes=True)
    assert "deleted or replaced" in err.value.render("en") and len(eml_ids(workdir / "out")) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_journal_files_are_owner_only(make_mailer, workdir) -> None:
    """Defect 19: the journal holds recipients and bodies: 0600 from the first byte, -wal and -shm too."""
    mailer = make_mailer()
    os.umask(old := os.umask(0o022))  # whatever the umask, group and others get nothing
    assert mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True).status is Status.SENT
    for suffix in ("", "-wal", "-shm"):
        mode = stat.S_IMODE(os.stat(f"{workdir / 'journal.sqlite'}{suffix}").st_mode)
        assert mode == 0o600, (suffix, oct(mode), oct(old))


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` and its files cannot be changed, for root too (``chattr +i``; root ignores modes)."""
    items = [*folder.iterdir(), folder]
    if os.geteuid() != 0:
        for item in items:
            item.chmod(0o555 if item.is_dir() else 0o444)
        try:
            yield
        finally:
            for item in items:
                item.chmod(0o755 if item.is_dir() else 0o644)
        return
    if subprocess.run(["chattr", "+i", *map(str, items)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a folder read-only for root (chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, items)], check=True)


def test_journal_can_be_read_from_a_read_only_location(make_mailer, workdir, tmp_path) -> None:
    """Defect 20: inspecting a backup on a read-only share works (``ccm-mail journal``); nothing
    is written there."""
    mailer = make_mailer()
    mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    mailer.close()
    backup = tmp_path / "backup"
    backup.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{workdir / 'journal.sqlite'}{suffix}").exists():
            shutil.copy(f"{workdir / 'journal.sqlite'}{suffix}", backup / f"journal.sqlite{suffix}")
    (backup / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    before = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in backup.iterdir())
    with read_only(backup):
        proc = run_cli("journal", "--json", "--config", str(backup / "ccm-mail.yaml"), cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (entry,) = json.loads(proc.stdout)["entries"]
        assert entry["status"] == "sent" and entry["reference"] == "RE-2026-00042"
    assert sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in backup.iterdir()) == before


def test_journal_query_before_the_first_send_is_empty_and_says_why(workdir) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    proc = run_cli("journal", "--json", cwd=workdir)
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"entries": []}
    assert "Noch kein Journal" in proc.stderr and not (workdir / "journal.sqlite").exists()


def test_journal_dates_are_checked_and_german_dates_are_understood(make_mailer, workdir) -> None:
    """``--since`` was compared as text: 01.01.2030 found this year's invoices, 2026-13-01 and
    'gestern' found nothing, all with exit 0."""
    mailer = make_mailer()
    mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    mailer.close()
    for bad in ("2026-13-01", "gestern", "32.12.2026"):
        proc = run_cli("journal", "--since", bad, cwd=workdir)
        assert proc.returncode == 2 and "Ungültiges Datum" in proc.stderr, (bad, proc.stderr)
    today = datetime.now().astimezone()
    future = f"01.01.{today.year + 4}"
    assert json.loads(run_cli("journal", "--since", future, "--json", cwd=workdir).stdout)["entries"] == []
    german = today.strftime("%d.%m.%Y")
    (entry,) = json.loads(run_cli("journal", "--since", german, "--json", cwd=workdir).stdout)["entries"]
    assert entry["reference"] == "RE-2026-00042"
