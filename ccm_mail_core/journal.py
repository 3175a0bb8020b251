"""The journal: one SQLite row per message, every state change committed before the next
network step, so a crash never leaves a message whose fate nobody can find out.

Durability: every commit reaches the WAL file before the call returns, so a killed process
(SIGKILL included) never loses one. The claim (queued → sending), the step right before a
message goes on the network, is also fsynced (``synchronous=FULL``), and since the WAL is
written in order, that fsync also makes every earlier commit durable against power loss. The
other commits (queued, sent, failed, unknown, events) skip their own fsync (``NORMAL``): the next
claim, a checkpoint or :meth:`Journal.close` syncs them. An OS crash can therefore only roll a
message back to its durable ``sending`` row, and that is settled by looking it up at the provider
(:mod:`ccm_mail_core.outbox`) before anything is resent, never by a blind resend.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ccm_mail_hookspecs import Address, Attachment, CcmMailError, Message, SendContext, Status, T

from .storage import network_filesystem

SCHEMA_VERSION = 2

# columns added after version 1, for journals written by an earlier ccm-mail
_ADDED_COLUMNS = (("batch_row", "INTEGER"), ("owner", "TEXT"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL UNIQUE,
    purpose       TEXT NOT NULL,
    account       TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    reference     TEXT NOT NULL DEFAULT '',
    recipients    TEXT NOT NULL,
    subject       TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    sent_at       TEXT,
    transport_ids TEXT NOT NULL DEFAULT '{}',
    error         TEXT,
    error_kind    TEXT,
    batch         TEXT,
    batch_row     INTEGER,
    owner         TEXT,
    payload       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_batch_row ON messages (batch, batch_row) WHERE batch IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_reference ON messages (purpose, reference);
CREATE INDEX IF NOT EXISTS messages_status ON messages (status);
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    message    INTEGER NOT NULL REFERENCES messages(id),
    at         TEXT NOT NULL,
    status     TEXT NOT NULL,
    detail     TEXT
);
CREATE INDEX IF NOT EXISTS events_message ON events (message);
"""

#: statuses that mean "this reference is taken": sent, on its way, or possibly sent
BLOCKING = (Status.QUEUED.value, Status.SENDING.value, Status.SENT.value, Status.UNKNOWN.value)
_BLOCKING_SQL = (f"SELECT * FROM messages WHERE purpose=? AND reference=? AND status IN ({','.join('?' * len(BLOCKING))})"
                 " ORDER BY id DESC LIMIT 1")


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    message_id: str
    purpose: str
    account: str
    account_type: str
    reference: str
    recipients: list[str]
    subject: str
    status: Status
    attempts: int
    created_at: str
    updated_at: str
    sent_at: str | None
    transport_ids: dict[str, str]
    error: str | None
    error_kind: str | None
    batch: str | None
    batch_row: int | None
    owner: str | None
    payload: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["status"] = self.status.value
        d.pop("payload")
        return d


class DuplicateSend(CcmMailError):
    """The reference was already sent (or is on its way, or possibly sent) for this purpose."""

    kind = "duplicate"

    def __init__(self, existing: Entry) -> None:
        when = existing.sent_at or existing.created_at
        super().__init__(
            T(f"{existing.reference} ({existing.purpose}) ist bereits im Journal: Status {existing.status.value}, "
              f"{when} (Eintrag {existing.id}); nichts gesendet.",
              f"{existing.reference} ({existing.purpose}) is already in the journal: status {existing.status.value}, "
              f"{when} (entry {existing.id}); nothing sent."),
            hint=T("Mit --resend bewusst erneut senden.", "Use --resend to send it again on purpose."),
            details={"journal_id": existing.id, "status": existing.status.value})
        self.existing = existing


class JournalError(CcmMailError):
    """The journal cannot be written or read (disk full, file-size limit, permissions, the file
    replaced while running). Whatever depended on it was not sent: a send never starts without
    a durable claim."""

    kind = "journal"


def _storage_error(path: Path, exc: Exception) -> JournalError:
    text = str(exc)
    full = any(w in text for w in ("disk is full", "disk I/O error", "too big", "file is not a database"))
    cause = T(" (Datenträger voll oder Dateigrößenlimit erreicht?)", " (disk full or file-size limit reached?)") \
        if full else T("", "")
    return JournalError(T(f"Journal {path} nicht nutzbar: {text}{cause.de}", f"journal {path} cannot be used: {text}{cause.en}"),
                        hint=T("Pfad (journal.path), Rechte und freien Platz prüfen; dann erneut starten: bereits "
                               "Gesendetes wird nicht noch einmal gesendet.",
                               "Check journal.path, permissions and free disk space, then run again: what was sent "
                               "is not sent twice."),
                        details={"code": type(exc).__name__})


class Journal:
    """SQLite journal. Safe to share between threads of one process and between processes.

    ``readonly`` opens an existing file for inspection only (a backup on a read-only share).
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._db = self._open_readonly() if readonly else self._open()
        except (sqlite3.Error, OSError) as exc:
            raise _storage_error(self.path, exc) from None
        self._identity = _identity(self.path)

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise JournalError(T(f"Kein Journal unter {self.path}.", f"no journal at {self.path}."),
                               hint=T("journal.path prüfen.", "Check journal.path."))
        uri = "file:" + quote(str(self.path.resolve()).replace(os.sep, "/"))
        try:
            db = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False)
            db.execute("SELECT count(*) FROM messages").fetchone()
        except sqlite3.OperationalError:
            # a WAL journal in a folder we cannot write to (a backup, a read-only share): read the
            # file as it is, without the shared-memory index SQLite would have to create
            db = sqlite3.connect(uri + "?immutable=1", uri=True, check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    def _open(self) -> sqlite3.Connection:
        remote = network_filesystem(self.path.parent)
        if remote is not None:
            raise JournalError(
                T(f"Das Journal {self.path} liegt auf einem Netzlaufwerk ({remote}). Dort kann SQLite den "
                  "Dublettenschutz nicht zuverlässig halten; es wird nicht geöffnet.",
                  f"the journal {self.path} is on a network file system ({remote}), where SQLite cannot keep the "
                  "duplicate check reliable; it is not opened."),
                hint=T("journal.path auf ein lokales Laufwerk legen. Mehrere Arbeitsplätze teilen ein Journal über "
                       "den Dienst 'ccm-mail serve' oder über PostgreSQL (docs/absys.md).",
                       "Put journal.path on a local disk. Several workstations share one journal through the "
                       "'ccm-mail serve' service or PostgreSQL (docs/absys.md)."))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # recipients and bodies: owner-only from the first byte (SQLite gives its -wal and
            # -shm files the same mode); on Windows the folder's ACL decides
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        self._db = db
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a state change is on disk before the network step that follows it (see the
        # module docstring: commits that no network step follows directly use NORMAL)
        self._db.execute("PRAGMA synchronous=FULL")
        self._synchronous = "FULL"
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._tx():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(T(f"Journal {self.path} stammt von einem neueren ccm-mail "
                                     f"(Schema {version} > {SCHEMA_VERSION}).",
                                     f"journal {self.path} was written by a newer ccm-mail "
                                     f"(schema {version} > {SCHEMA_VERSION})."),
                                   hint=T("ccm-mail aktualisieren.", "Update ccm-mail."))
            existing = {r[1] for r in self._db.execute("PRAGMA table_info(messages)")}
            if existing:
                for name, kind in _ADDED_COLUMNS:
                    if name not in existing:
                        self._db.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return db

    def close(self) -> None:
        with self._lock:
            try:  # sync the WAL: commits made with synchronous=NORMAL become durable here at the latest
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
            self._db.close()

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: the duplicate check and the insert are one step
        with self._lock:
            try:
                wanted = "FULL" if durable else "NORMAL"
                if wanted != self._synchronous:
                    self._db.execute(f"PRAGMA synchronous={wanted}")
                    self._synchronous = wanted
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _storage_error(self.path, exc) from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise _storage_error(self.path, exc) from None

    def check_identity(self) -> None:
        """Raise :class:`JournalError` when the file was deleted or replaced since it was opened:
        a run writing into a journal nobody will read would send everything again next time."""
        if _identity(self.path) != self._identity:
            raise JournalError(
                T(f"Die Journal-Datei {self.path} wurde während des Laufs gelöscht oder ersetzt; angehalten, "
                  "damit nichts doppelt gesendet wird.",
                  f"the journal file {self.path} was deleted or replaced while running; stopped so that "
                  "nothing is sent twice."),
                hint=T("Die ursprüngliche Datei zurückholen oder das Verschieben/Löschen abstellen, dann erneut starten.",
                       "Restore the original file or stop whatever moved/deleted it, then run again."))

    def create(self, *, message_id: str, purpose: str, account: str, account_type: str, reference: str,
               recipients: Sequence[str], subject: str, status: Status = Status.QUEUED,
               allow_duplicate: bool = False, batch: str | None = None, batch_row: int | None = None,
               payload: dict[str, Any] | None = None, detail: str | None = None, error: str | None = None,
               error_kind: str | None = None) -> int:
        """Insert a message row; raises :class:`DuplicateSend` when the reference is taken for
        this purpose (sent, queued, sending or unknown) and ``allow_duplicate`` is False."""
        stamp = now().isoformat()
        # no network step follows directly: the claim (FULL) comes first and syncs this commit too
        with self._tx(durable=False) as db:
            if reference and not allow_duplicate:
                row = db.execute(_BLOCKING_SQL, (purpose, reference, *BLOCKING)).fetchone()
                if row is not None:
                    raise DuplicateSend(_entry(row))
            cur = db.execute(
                "INSERT INTO messages (message_id, purpose, account, account_type, reference, recipients, subject,"
                " status, created_at, updated_at, batch, batch_row, payload, error, error_kind)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (message_id, purpose, account, account_type, reference, json.dumps(list(recipients)), subject,
                 status.value, stamp, stamp, batch, batch_row, json.dumps(payload) if payload is not None else None,
                 error, error_kind))
            row_id = int(cur.lastrowid or 0)
            db.execute("INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                       (row_id, stamp, status.value, detail or error))
        return row_id

    def transition(self, row_id: int, status: Status, *, error: str | None = None, error_kind: str | None = None,
                   sent_at: datetime | None = None, transport_ids: dict[str, str] | None = None,
                   count_attempt: bool = False, detail: str | None = None, owner: str | None = None,
                   expect: Sequence[Status] | None = None) -> bool:
        """Move a row to ``status``. With ``expect``, only when it is in one of those states (a
        compare-and-set, so two processes never both claim a message); returns whether it moved."""
        stamp = now().isoformat()
        if status is Status.SENDING:
            self.check_identity()
        # only the claim precedes a network step: it is fsynced, and with it every earlier commit
        with self._tx(durable=status is Status.SENDING) as db:
            sets = ["status=?", "updated_at=?"]
            args: list[Any] = [status.value, stamp]
            if count_attempt:
                sets.append("attempts=attempts+1")
            if error is not None or status in (Status.SENT, Status.SENDING):
                sets += ["error=?", "error_kind=?"]
                args += [error, error_kind]
            if sent_at is not None:
                sets.append("sent_at=?")
                args.append(sent_at.isoformat())
            if transport_ids is not None:
                sets.append("transport_ids=?")
                args.append(json.dumps(dict(transport_ids)))
            if owner is not None:
                sets.append("owner=?")
                args.append(owner)
            where = "id=?"
            if expect:
                where += f" AND status IN ({','.join('?' * len(expect))})"
            cur = db.execute(f"UPDATE messages SET {', '.join(sets)} WHERE {where}",
                             (*args, row_id, *[e.value for e in (expect or ())]))
            if cur.rowcount == 0:
                return False
            db.execute("INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                       (row_id, stamp, status.value, detail or error))
        return True

    def create_batch(self, rows: Sequence[dict[str, Any]]) -> int:
        """Queue many messages in one transaction; rows already queued for the same (batch,
        batch_row) are left as they are, so re-running a batch never queues a row twice.
        Returns how many rows were new."""
        stamp = now().isoformat()
        new = 0
        with self._tx() as db:
            for r in rows:
                cur = db.execute(
                    "INSERT INTO messages (message_id, purpose, account, account_type, reference, recipients, subject,"
                    " status, created_at, updated_at, batch, batch_row, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT DO NOTHING",
                    (r["message_id"], r["purpose"], r["account"], r["account_type"], r["reference"],
                     json.dumps(list(r["recipients"])), r["subject"], Status.QUEUED.value, stamp, stamp, r["batch"],
                     r["batch_row"], json.dumps(r["payload"])))
                if cur.rowcount:
                    new += 1
                    db.execute("INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                               (cur.lastrowid, stamp, Status.QUEUED.value, f"batch {r['batch']} row {r['batch_row']}"))
        return new

    def blocking(self, purpose: str, reference: str) -> Entry | None:
        """The newest row that takes ``reference`` for ``purpose`` (sent, queued, sending, unknown)."""
        with self._read() as db:
            row = db.execute(_BLOCKING_SQL, (purpose, reference, *BLOCKING)).fetchone()
        return _entry(row) if row else None

    def references_taken(self, purpose: str, references: Sequence[str], *, except_batch: str | None = None) -> dict[str, Entry]:
        """Which of ``references`` the journal already has as sent/queued/sending/unknown."""
        taken: dict[str, Entry] = {}
        refs = [r for r in references if r]
        with self._read() as db:
            for i in range(0, len(refs), 500):
                chunk = refs[i:i + 500]
                rows = db.execute(
                    f"SELECT * FROM messages WHERE purpose=? AND reference IN ({','.join('?' * len(chunk))})"
                    f" AND status IN ({','.join('?' * len(BLOCKING))})", (purpose, *chunk, *BLOCKING)).fetchall()
                for row in rows:
                    if except_batch is None or row["batch"] != except_batch:
                        taken[row["reference"]] = _entry(row)
        return taken

    def recipients_since(self, account: str, since: datetime) -> list[tuple[datetime, int]]:
        """When the account sent to how many recipients since ``since`` (Exchange counts
        recipients over a rolling day), oldest first."""
        with self._read() as db:
            rows = db.execute("SELECT updated_at, recipients FROM messages WHERE account=?"
                              " AND status IN ('sent','sending','unknown') AND updated_at>=? ORDER BY updated_at",
                              (account, since.isoformat())).fetchall()
        return [(datetime.fromisoformat(r[0]), len(json.loads(r[1]))) for r in rows]

    def get(self, row_id: int) -> Entry | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM messages WHERE id=?", (row_id,)).fetchone()
        return _entry(row) if row else None

    def by_message_id(self, message_id: str) -> Entry | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM messages WHERE message_id=?", (message_id,)).fetchone()
        return _entry(row) if row else None

    def query(self, *, reference: str | None = None, status: str | Sequence[str] | None = None,
              purpose: str | None = None, since: str | None = None, until: str | None = None,
              batch: str | None = None, limit: int = 100) -> list[Entry]:
        """Rows newest first. ``since``/``until`` are ISO dates or datetimes compared with created_at."""
        where, args = [], []
        if reference is not None:
            where.append("reference=?")
            args.append(reference)
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if purpose:
            where.append("purpose=?")
            args.append(purpose)
        if since:
            where.append("created_at>=?")
            args.append(since)
        if until:
            where.append("created_at<?")
            args.append(until)
        if batch:
            where.append("batch=?")
            args.append(batch)
        sql = "SELECT * FROM messages" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._read() as db:
            rows = db.execute(sql, args).fetchall()
        return [_entry(r) for r in rows]

    def events(self, row_id: int) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT at, status, detail FROM events WHERE message=? ORDER BY id", (row_id,)).fetchall()
        return [dict(r) for r in rows]

    def integrity_ok(self) -> bool:
        with self._read() as db:
            return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def row_fields(message: Message, ctx: SendContext) -> dict[str, Any]:
    """The journal columns of a message about to be queued (everything but state and batch)."""
    return dict(message_id=message.message_id, purpose=ctx.purpose, account=ctx.account,
                account_type=ctx.account_type, reference=ctx.reference,
                recipients=[a.address for a in message.recipients()], subject=message.subject,
                payload=message_to_json(message))


def message_to_json(message: Message) -> dict[str, Any]:
    """The message as JSON for the journal, so the outbox can send it again later unchanged."""
    def addrs(items: Sequence[Address]) -> list[list[str]]:
        return [[a.address, a.name] for a in items]
    return {
        "subject": message.subject, "sender": [message.sender.address, message.sender.name] if message.sender else None,
        "to": addrs(message.to), "cc": addrs(message.cc), "bcc": addrs(message.bcc), "reply_to": addrs(message.reply_to),
        "text": message.text, "html": message.html, "headers": dict(message.headers), "message_id": message.message_id,
        "attachments": [{"path": str(a.path), "filename": a.filename, "content_type": a.content_type,
                         "inline": a.inline, "content_id": a.content_id} for a in message.attachments],
    }


def message_from_json(payload: Mapping[str, Any]) -> Message:
    def addrs(items: Sequence[Sequence[str]]) -> list[Address]:
        return [Address(a, n) for a, n in items]
    sender = payload.get("sender")
    return Message(
        subject=payload["subject"], to=addrs(payload["to"]), cc=addrs(payload["cc"]), bcc=addrs(payload["bcc"]),
        reply_to=addrs(payload["reply_to"]), sender=Address(*sender) if sender else None,
        text=payload["text"], html=payload["html"], headers=dict(payload["headers"]), message_id=payload["message_id"],
        attachments=[Attachment(Path(a["path"]), a["filename"], a["content_type"], a["inline"], a["content_id"])
                     for a in payload["attachments"]])


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        id=row["id"], message_id=row["message_id"], purpose=row["purpose"], account=row["account"],
        account_type=row["account_type"], reference=row["reference"], recipients=json.loads(row["recipients"]),
        subject=row["subject"], status=Status(row["status"]), attempts=row["attempts"],
        created_at=row["created_at"], updated_at=row["updated_at"], sent_at=row["sent_at"],
        transport_ids=json.loads(row["transport_ids"] or "{}"), error=row["error"], error_kind=row["error_kind"],
        batch=row["batch"], batch_row=row["batch_row"], owner=row["owner"],
        payload=json.loads(row["payload"]) if row["payload"] else None)
