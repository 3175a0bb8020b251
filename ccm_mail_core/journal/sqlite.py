"""The SQLite journal: one file on a local disk, the embedded default.

Durability: every commit reaches the WAL file before the call returns, so a killed process
(SIGKILL included) never loses one. The claim (queued → sending), the step right before a
message goes on the network, is also fsynced (``synchronous=FULL``), and since the WAL is
written in order, that fsync also makes every earlier commit durable against power loss. The
other commits (queued, sent, failed, unknown, events) skip their own fsync (``NORMAL``): the next
claim, a checkpoint or :meth:`SQLiteJournal.close` syncs them. An OS crash can therefore only roll a
message back to its durable ``sending`` row, and that is settled by looking it up at the provider
(:mod:`ccm_mail_core.outbox`) before anything is resent, never by a blind resend.

Schema: version 3 (``PRAGMA user_version``). An older journal gets its missing columns added when
it is opened, with a warning in the log (version 1, before core 1.1: ``batch_row``, ``owner``;
version 2: ``archive_sha256``, ``archive_file`` of the GoBD archive copy): the step only adds
columns, and a ccm-mail older than the file refuses it (schema newer than it knows), so it cannot
surprise anyone; ``ccm-mail journal migrate`` does the same on purpose.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog

from ccm_mail_hookspecs import T

from ..storage import network_filesystem
from .base import Conn, Journal, JournalError

log = structlog.get_logger("ccm_mail.journal")

SCHEMA_VERSION = 3

# columns added after version 1, for journals written by an earlier ccm-mail
_ADDED_COLUMNS = (("batch_row", "INTEGER"), ("owner", "TEXT"), ("archive_sha256", "TEXT"), ("archive_file", "TEXT"))

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
    payload       TEXT,
    archive_sha256 TEXT,
    archive_file  TEXT
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


def _storage_error(path: Path, exc: Exception) -> JournalError:
    text = str(exc)
    full = any(w in text for w in ("disk is full", "disk I/O error", "too big", "file is not a database"))
    cause = (
        T(" (Datenträger voll oder Dateigrößenlimit erreicht?)", " (disk full or file-size limit reached?)")
        if full
        else T("", "")
    )
    return JournalError(
        T(f"Journal {path} nicht nutzbar: {text}{cause.de}", f"journal {path} cannot be used: {text}{cause.en}"),
        hint=T(
            "Pfad (journal.path), Rechte und freien Platz prüfen; dann erneut starten: bereits "
            "Gesendetes wird nicht noch einmal gesendet.",
            "Check journal.path, permissions and free disk space, then run again: what was sent is not sent twice.",
        ),
        details={"code": type(exc).__name__},
    )


class SQLiteJournal(Journal):
    """SQLite journal. Safe to share between threads of one process and between processes of one machine.

    ``readonly`` opens an existing file for inspection only (a backup on a read-only share).
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._found_version = SCHEMA_VERSION
        self._lock = threading.RLock()
        try:
            self._db = self._open_readonly() if readonly else self._open()
        except (sqlite3.Error, OSError) as exc:
            raise _storage_error(self.path, exc) from None
        self._identity = _identity(self.path)

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise JournalError(
                T(f"Kein Journal unter {self.path}.", f"no journal at {self.path}."),
                hint=T("journal.path prüfen.", "Check journal.path."),
            )
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
                T(
                    f"Das Journal {self.path} liegt auf einem Netzlaufwerk ({remote}). Dort kann SQLite den "
                    "Dublettenschutz nicht zuverlässig halten; es wird nicht geöffnet.",
                    f"the journal {self.path} is on a network file system ({remote}), where SQLite cannot keep the "
                    "duplicate check reliable; it is not opened.",
                ),
                hint=T(
                    "journal.path auf ein lokales Laufwerk legen. Mehrere Arbeitsplätze teilen ein Journal über "
                    "den Dienst 'ccm-mail serve' oder über PostgreSQL (docs/absys.md).",
                    "Put journal.path on a local disk. Several workstations share one journal through the "
                    "'ccm-mail serve' service or PostgreSQL (docs/absys.md).",
                ),
            )
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
            self._found_version = int(version)
            if version > SCHEMA_VERSION:
                raise JournalError(
                    T(
                        f"Journal {self.path} stammt von einem neueren ccm-mail (Schema {version} > {SCHEMA_VERSION}).",
                        f"journal {self.path} was written by a newer ccm-mail (schema {version} > {SCHEMA_VERSION}).",
                    ),
                    hint=T("ccm-mail aktualisieren.", "Update ccm-mail."),
                )
            self._upgrade(version)
        return db

    def _upgrade(self, version: int) -> None:
        """Bring the file to :data:`SCHEMA_VERSION` inside the open transaction (see the module
        docstring: only columns are added, and never without saying so)."""
        existing = {r[1] for r in self._db.execute("PRAGMA table_info(messages)")}
        missing = [(name, kind) for name, kind in _ADDED_COLUMNS if existing and name not in existing]
        if missing:
            log.warning(
                "journal_schema_upgraded",
                journal=str(self.path),
                from_version=version or 1,
                to_version=SCHEMA_VERSION,
                added=[name for name, _ in missing],
            )
        for name, kind in missing:
            self._db.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                self._db.execute(stmt)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def schema_version(self) -> int:
        with self._read() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> tuple[int, int]:
        """``ccm-mail journal migrate``: opening already brought the file up to date; returns
        (version found, version now)."""
        return self._found_version, SCHEMA_VERSION

    def _insert(self, db: Conn, sql: str, args: Sequence[Any]) -> int | None:
        cur = db.execute(sql, args)
        assert isinstance(cur, sqlite3.Cursor)  # this engine's connections are sqlite3's
        return int(cur.lastrowid or 0) if cur.rowcount else None

    def close(self) -> None:
        with self._lock:
            try:  # sync the WAL: commits made with synchronous=NORMAL become durable here at the latest
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
            self._db.close()

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[Conn]:
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
    def _read(self) -> Iterator[Conn]:
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
                T(
                    f"Die Journal-Datei {self.path} wurde während des Laufs gelöscht oder ersetzt; angehalten, "
                    "damit nichts doppelt gesendet wird.",
                    f"the journal file {self.path} was deleted or replaced while running; stopped so that "
                    "nothing is sent twice.",
                ),
                hint=T(
                    "Die ursprüngliche Datei zurückholen oder das Verschieben/Löschen abstellen, dann erneut starten.",
                    "Restore the original file or stop whatever moved/deleted it, then run again.",
                ),
            )

    def integrity_ok(self) -> bool:
        with self._read() as db:
            return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
