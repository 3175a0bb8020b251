"""What every journal engine shares: the row (:class:`Entry`), the errors, the duplicate rule and
the queries, written once against a small connection interface that SQLite and PostgreSQL both
fill in (:mod:`.sqlite`, :mod:`.postgres`).

The SQL here uses ``?`` placeholders and ISO/JSON values; an engine translates what it must
(PostgreSQL: ``%s``, timestamptz, jsonb). States, history, the compare-and-set claim and the
duplicate check are therefore the same on both engines by construction, not by parallel code.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from ccm_mail_hookspecs import Address, Attachment, CcmMailError, ConfigError, Message, SendContext, Status, T

from ..dates import parse_day
from ..pacing import Limits, Pacer, Pacing

#: statuses that mean "this reference is taken": sent, on its way, or possibly sent
BLOCKING = (Status.QUEUED.value, Status.SENDING.value, Status.SENT.value, Status.UNKNOWN.value)
_BLOCKING_SQL = (
    f"SELECT * FROM messages WHERE purpose=? AND reference=? AND status IN ({','.join('?' * len(BLOCKING))})"
    " ORDER BY id DESC LIMIT 1"
)


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
    #: the archive copy (GoBD): SHA-256 of the exact .eml sent, and where it lies
    archive_sha256: str | None = None
    archive_file: str | None = None

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
            T(
                f"{existing.reference} ({existing.purpose}) ist bereits im Journal: Status {existing.status.value}, "
                f"{when} (Eintrag {existing.id}); nichts gesendet.",
                f"{existing.reference} ({existing.purpose}) is already in the journal: status {existing.status.value}, "
                f"{when} (entry {existing.id}); nothing sent.",
            ),
            hint=T("Mit --resend bewusst erneut senden.", "Use --resend to send it again on purpose."),
            details={"journal_id": existing.id, "status": existing.status.value},
        )
        self.existing = existing


def date_bound(value: str, name: str) -> str:
    """A date the journal can be searched by: ``JJJJ-MM-TT``, German ``TT.MM.JJJJ`` or an ISO
    time; anything else is refused (compared as text, ``01.01.2030`` found 2026 rows)."""
    day = parse_day(str(value))
    if day is not None:
        return day.isoformat()
    try:
        return datetime.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ConfigError(
            T(f"Ungültiges Datum für {name}: {value!r}.", f"invalid date for {name}: {value!r}."),
            hint=T("JJJJ-MM-TT oder TT.MM.JJJJ, z. B. 2026-12-04 oder 04.12.2026.", "YYYY-MM-DD, e.g. 2026-12-04."),
        ) from None


class JournalError(CcmMailError):
    """The journal cannot be written or read (disk full, file-size limit, permissions, the file
    replaced while running, the database unreachable). Whatever depended on it was not sent: a
    send never starts without a durable claim."""

    kind = "journal"


class Rows(Protocol):
    """What ``execute`` hands back on both engines (a DB-API cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """One connection inside a transaction, with ``?`` placeholders on every engine."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows: ...


class Journal(ABC):
    """The journal: one row per message, every state change committed before the next network
    step. Safe to share between threads of one process and between processes (and, on
    PostgreSQL, between machines).

    ``Journal(path)`` opens the SQLite journal at ``path`` (as ``pathlib.Path`` picks its
    flavour); :func:`ccm_mail_core.journal.open_journal` picks the engine from the config.
    """

    #: several machines may share this journal (PostgreSQL): pacing and liveness live in it
    shared: bool = False
    #: where it is, for messages (a path, or the URL without password)
    where: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Journal:
        if cls is Journal:
            from .sqlite import SQLiteJournal

            return super().__new__(SQLiteJournal)
        return super().__new__(cls)

    def pacer(self, account: str, limits: Limits) -> Pacing:
        """The pacing of ``account`` for this journal: in this process, starting from the
        journal's last day of sends (an engine shared by several hosts counts in the database)."""
        since = now() - timedelta(days=1)
        return Pacer(account, limits, sent=[(when.timestamp(), n) for when, n in self.recipients_since(account, since)])

    # ---- what an engine provides ---------------------------------------------------------------
    @abstractmethod
    def _tx(self, *, durable: bool = True) -> AbstractContextManager[Conn]:
        """One write transaction; ``durable``: on disk when it returns (a network step follows)."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Conn]:
        """A connection for reading."""

    @abstractmethod
    def _insert(self, db: Conn, sql: str, args: Sequence[Any]) -> int | None:
        """Run an INSERT of one row; its id, or None when ``ON CONFLICT DO NOTHING`` skipped it."""

    def _lock_reference(self, db: Conn, purpose: str, reference: str) -> None:
        """Serialise duplicate checks of one reference inside the transaction (SQLite's
        ``BEGIN IMMEDIATE`` already serialises every writer)."""
        return None

    def _claimed(self, db: Conn, owner: str | None) -> None:
        """Called in the claim's transaction (PostgreSQL renews the owner's lease there)."""
        return None

    def _stamp(self, when: datetime) -> Any:
        return when.isoformat()

    @abstractmethod
    def close(self) -> None: ...

    def check_identity(self) -> None:
        """Raise :class:`JournalError` when the journal was replaced since it was opened."""
        return None

    def owner_alive(self, owner_text: str | None) -> bool:
        """Whether the owner recorded in a ``sending`` row still holds its claim."""
        from .. import owner

        return owner.alive(owner_text)

    def integrity_ok(self) -> bool:
        return True

    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def migrate(self) -> tuple[int, int]:
        """``ccm-mail journal migrate``: (schema version found, version now)."""

    # ---- shared behaviour --------------------------------------------------------------------
    def create(
        self,
        *,
        message_id: str,
        purpose: str,
        account: str,
        account_type: str,
        reference: str,
        recipients: Sequence[str],
        subject: str,
        status: Status = Status.QUEUED,
        allow_duplicate: bool = False,
        batch: str | None = None,
        batch_row: int | None = None,
        payload: dict[str, Any] | None = None,
        detail: str | None = None,
        error: str | None = None,
        error_kind: str | None = None,
    ) -> int:
        """Insert a message row; raises :class:`DuplicateSend` when the reference is taken for
        this purpose (sent, queued, sending or unknown) and ``allow_duplicate`` is False."""
        stamp = self._stamp(now())
        # no network step follows directly: the claim (durable) comes first and syncs this commit too
        with self._tx(durable=False) as db:
            if reference and not allow_duplicate:
                self._lock_reference(db, purpose, reference)
                row = db.execute(_BLOCKING_SQL, (purpose, reference, *BLOCKING)).fetchone()
                if row is not None:
                    raise DuplicateSend(self._entry(row))
            row_id = (
                self._insert(
                    db,
                    "INSERT INTO messages (message_id, purpose, account, account_type, reference, recipients, subject,"
                    " status, created_at, updated_at, batch, batch_row, payload, error, error_kind)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        message_id,
                        purpose,
                        account,
                        account_type,
                        reference,
                        json.dumps(list(recipients)),
                        subject,
                        status.value,
                        stamp,
                        stamp,
                        batch,
                        batch_row,
                        json.dumps(payload) if payload is not None else None,
                        error,
                        error_kind,
                    ),
                )
                or 0
            )
            db.execute(
                "INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                (row_id, stamp, status.value, detail or error),
            )
        return row_id

    def transition(
        self,
        row_id: int,
        status: Status,
        *,
        error: str | None = None,
        error_kind: str | None = None,
        sent_at: datetime | None = None,
        transport_ids: dict[str, str] | None = None,
        count_attempt: bool = False,
        detail: str | None = None,
        owner: str | None = None,
        expect: Sequence[Status] | None = None,
        archive: tuple[str, str] | None = None,
    ) -> bool:
        """Move a row to ``status``. With ``expect``, only when it is in one of those states (a
        compare-and-set, so two processes never both claim a message); returns whether it moved."""
        stamp = self._stamp(now())
        if status is Status.SENDING:
            self.check_identity()
        # only the claim precedes a network step: it is durable, and with it every earlier commit
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
                args.append(self._stamp(sent_at))
            if transport_ids is not None:
                sets.append("transport_ids=?")
                args.append(json.dumps(dict(transport_ids)))
            if owner is not None:
                sets.append("owner=?")
                args.append(owner)
            if archive is not None:
                sets += ["archive_file=?", "archive_sha256=?"]
                args += list(archive)
            where = "id=?"
            if expect:
                where += f" AND status IN ({','.join('?' * len(expect))})"
            cur = db.execute(
                f"UPDATE messages SET {', '.join(sets)} WHERE {where}",
                (*args, row_id, *[e.value for e in (expect or ())]),
            )
            if cur.rowcount == 0:
                return False
            if status is Status.SENDING:
                self._claimed(db, owner)
            db.execute(
                "INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                (row_id, stamp, status.value, detail or error),
            )
            if status is Status.SENT:
                self._close_superseded(db, row_id, stamp)
        return True

    def _close_superseded(self, db: Conn, sent_id: int, stamp: Any) -> None:
        """Earlier failed attempts at the reference that row ``sent_id`` has now sent are closed:
        a later ``outbox --retry`` would send the invoice a second time."""
        row = db.execute("SELECT purpose, reference FROM messages WHERE id=?", (sent_id,)).fetchone()
        if row is None or not row["reference"]:
            return
        failed = db.execute(
            "SELECT id FROM messages WHERE purpose=? AND reference=? AND status=? AND id<>?",
            (row["purpose"], row["reference"], Status.FAILED.value, sent_id),
        ).fetchall()
        note = f"ersetzt durch Eintrag {sent_id}, der gesendet ist / superseded by entry {sent_id}, which was sent"
        for r in failed:
            db.execute(
                "UPDATE messages SET status=?, updated_at=?, error_kind=?, error=? WHERE id=? AND status=?",
                (Status.CANCELLED.value, stamp, "superseded", note, r["id"], Status.FAILED.value),
            )
            db.execute(
                "INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                (r["id"], stamp, Status.CANCELLED.value, note),
            )

    def requeue_failed(self, row_id: int, detail: str) -> tuple[bool, Entry | None]:
        """failed → queued, as one step with the duplicate check. Returns (requeued, taken):
        ``taken`` is the row that has the reference now: sent since (this one is then closed as
        superseded), or on its way or possibly sent (this one stays failed, and is not sent while
        that one is open); (False, None) when the row is no longer failed (requeued elsewhere)."""
        stamp = self._stamp(now())
        with self._tx() as db:
            row = db.execute(
                "SELECT purpose, reference FROM messages WHERE id=? AND status=?", (row_id, Status.FAILED.value)
            ).fetchone()
            if row is None:
                return False, None
            if row["reference"]:
                self._lock_reference(db, row["purpose"], row["reference"])
                taken = db.execute(_BLOCKING_SQL, (row["purpose"], row["reference"], *BLOCKING)).fetchone()
                if taken is not None:  # sent: this one is closed; queued, sending, unknown: it waits
                    if taken["status"] == Status.SENT.value:
                        self._close_superseded(db, taken["id"], stamp)
                    return False, self._entry(taken)
            db.execute(
                "UPDATE messages SET status=?, updated_at=? WHERE id=? AND status=?",
                (Status.QUEUED.value, stamp, row_id, Status.FAILED.value),
            )
            db.execute(
                "INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                (row_id, stamp, Status.QUEUED.value, detail),
            )
        return True, None

    def create_batch(self, rows: Sequence[dict[str, Any]]) -> int:
        """Queue many messages in one transaction; rows already queued for the same (batch,
        batch_row) are left as they are, so re-running a batch never queues a row twice.
        Returns how many rows were new."""
        stamp = self._stamp(now())
        new = 0
        with self._tx() as db:
            for r in rows:
                row_id = self._insert(
                    db,
                    "INSERT INTO messages (message_id, purpose, account, account_type, reference, recipients,"
                    " subject, status, created_at, updated_at, batch, batch_row, payload)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    (
                        r["message_id"],
                        r["purpose"],
                        r["account"],
                        r["account_type"],
                        r["reference"],
                        json.dumps(list(r["recipients"])),
                        r["subject"],
                        Status.QUEUED.value,
                        stamp,
                        stamp,
                        r["batch"],
                        r["batch_row"],
                        json.dumps(r["payload"]),
                    ),
                )
                if row_id is not None:
                    new += 1
                    db.execute(
                        "INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                        (row_id, stamp, Status.QUEUED.value, f"batch {r['batch']} row {r['batch_row']}"),
                    )
        return new

    def blocking(self, purpose: str, reference: str) -> Entry | None:
        """The newest row that takes ``reference`` for ``purpose`` (sent, queued, sending, unknown)."""
        with self._read() as db:
            row = db.execute(_BLOCKING_SQL, (purpose, reference, *BLOCKING)).fetchone()
        return self._entry(row) if row else None

    def references_taken(
        self, purpose: str, references: Sequence[str], *, except_batch: str | None = None
    ) -> dict[str, Entry]:
        """Which of ``references`` the journal already has as sent/queued/sending/unknown."""
        taken: dict[str, Entry] = {}
        refs = [r for r in references if r]
        with self._read() as db:
            for i in range(0, len(refs), 500):
                chunk = refs[i : i + 500]
                rows = db.execute(
                    f"SELECT * FROM messages WHERE purpose=? AND reference IN ({','.join('?' * len(chunk))})"
                    f" AND status IN ({','.join('?' * len(BLOCKING))})",
                    (purpose, *chunk, *BLOCKING),
                ).fetchall()
                for row in rows:
                    if except_batch is None or row["batch"] != except_batch:
                        taken[row["reference"]] = self._entry(row)
        return taken

    def recipients_since(self, account: str, since: datetime) -> list[tuple[datetime, int]]:
        """When the account sent to how many recipients since ``since`` (Exchange counts
        recipients over a rolling day), oldest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT updated_at, recipients FROM messages WHERE account=?"
                " AND status IN ('sent','sending','unknown') AND updated_at>=? ORDER BY updated_at",
                (account, self._stamp(since)),
            ).fetchall()
        return [(datetime.fromisoformat(_text(r["updated_at"])), len(_json(r["recipients"]))) for r in rows]

    def get(self, row_id: int) -> Entry | None:
        if not 0 < row_id < 2**63:  # no such row; SQLite and PostgreSQL would fail on the number
            return None
        with self._read() as db:
            row = db.execute("SELECT * FROM messages WHERE id=?", (row_id,)).fetchone()
        return self._entry(row) if row else None

    def by_message_id(self, message_id: str) -> Entry | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM messages WHERE message_id=?", (message_id,)).fetchone()
        return self._entry(row) if row else None

    def status_of(self, row_id: int) -> Status | None:
        """Only the row's state (cheap: a batch asks before it waits for a pacing slot)."""
        with self._read() as db:
            row = db.execute("SELECT status FROM messages WHERE id=?", (row_id,)).fetchone()
        return Status(row["status"]) if row else None

    def query(
        self,
        *,
        reference: str | None = None,
        status: str | Sequence[str] | None = None,
        purpose: str | None = None,
        since: str | None = None,
        until: str | None = None,
        batch: str | None = None,
        limit: int = 100,
    ) -> list[Entry]:
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
            args.append(date_bound(since, "since"))
        if until:
            where.append("created_at<?")
            args.append(date_bound(until, "until"))
        if batch:
            where.append("batch=?")
            args.append(batch)
        sql = "SELECT * FROM messages" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._read() as db:
            rows = db.execute(sql, args).fetchall()
        return [self._entry(r) for r in rows]

    def events(self, row_id: int) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT at, status, detail FROM events WHERE message=? ORDER BY id", (row_id,)).fetchall()
        return [{"at": _text(r["at"]), "status": r["status"], "detail": r["detail"]} for r in rows]

    def export(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every row with its full history, oldest first, as stored (for ``journal copy``)."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM messages ORDER BY id").fetchall()
            for row in rows:
                events = db.execute(
                    "SELECT at, status, detail FROM events WHERE message=? ORDER BY id", (row["id"],)
                ).fetchall()
                yield (
                    {k: row[k] for k in row.keys()},
                    [{"at": _text(e["at"]), "status": e["status"], "detail": e["detail"]} for e in events],
                )

    def _entry(self, row: Any) -> Entry:
        return Entry(
            id=row["id"],
            message_id=row["message_id"],
            purpose=row["purpose"],
            account=row["account"],
            account_type=row["account_type"],
            reference=row["reference"],
            recipients=_json(row["recipients"]),
            subject=row["subject"],
            status=Status(row["status"]),
            attempts=row["attempts"],
            created_at=_text(row["created_at"]),
            updated_at=_text(row["updated_at"]),
            sent_at=_text(row["sent_at"]) if row["sent_at"] is not None else None,
            transport_ids=_json(row["transport_ids"]) or {},
            error=row["error"],
            error_kind=row["error_kind"],
            batch=row["batch"],
            batch_row=row["batch_row"],
            owner=row["owner"],
            payload=_json(row["payload"]) if row["payload"] else None,
            # a read-only journal of an older schema has no archive columns
            archive_sha256=row["archive_sha256"] if "archive_sha256" in row.keys() else None,
            archive_file=row["archive_file"] if "archive_file" in row.keys() else None,
        )


def _text(value: Any) -> str:
    """A timestamp as the journal shows it: ISO 8601 (SQLite stores text, PostgreSQL timestamptz)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _json(value: Any) -> Any:
    """A JSON column (SQLite: text, PostgreSQL: jsonb, already decoded)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def row_fields(message: Message, ctx: SendContext) -> dict[str, Any]:
    """The journal columns of a message about to be queued (everything but state and batch)."""
    return dict(
        message_id=message.message_id,
        purpose=ctx.purpose,
        account=ctx.account,
        account_type=ctx.account_type,
        reference=ctx.reference,
        recipients=[a.address for a in message.recipients()],
        subject=message.subject,
        payload=message_to_json(message),
    )


def message_to_json(message: Message) -> dict[str, Any]:
    """The message as JSON for the journal, so the outbox can send it again later unchanged."""

    def addrs(items: Sequence[Address]) -> list[list[str]]:
        return [[a.address, a.name] for a in items]

    return {
        "subject": message.subject,
        "sender": [message.sender.address, message.sender.name] if message.sender else None,
        "to": addrs(message.to),
        "cc": addrs(message.cc),
        "bcc": addrs(message.bcc),
        "reply_to": addrs(message.reply_to),
        "text": message.text,
        "html": message.html,
        "headers": dict(message.headers),
        "message_id": message.message_id,
        "attachments": [
            {
                "path": str(a.path),
                "filename": a.filename,
                "content_type": a.content_type,
                "inline": a.inline,
                "content_id": a.content_id,
            }
            for a in message.attachments
        ],
        "save_to_sent": message.save_to_sent,
        "request_read_receipt": message.request_read_receipt,
        "request_delivery_receipt": message.request_delivery_receipt,
        "archive": message.archive,
    }


def message_from_json(payload: Mapping[str, Any]) -> Message:
    def addrs(items: Sequence[Sequence[str]]) -> list[Address]:
        return [Address(a, n) for a, n in items]

    sender = payload.get("sender")
    return Message(
        subject=payload["subject"],
        to=addrs(payload["to"]),
        cc=addrs(payload["cc"]),
        bcc=addrs(payload["bcc"]),
        reply_to=addrs(payload["reply_to"]),
        sender=Address(*sender) if sender else None,
        text=payload["text"],
        html=payload["html"],
        headers=dict(payload["headers"]),
        message_id=payload["message_id"],
        attachments=[
            Attachment(Path(a["path"]), a["filename"], a["content_type"], a["inline"], a["content_id"])
            for a in payload["attachments"]
        ],
        # rows queued before plugin API 1.4 have none of these: the defaults they were sent with
        save_to_sent=bool(payload.get("save_to_sent", True)),
        request_read_receipt=bool(payload.get("request_read_receipt", False)),
        request_delivery_receipt=bool(payload.get("request_delivery_receipt", False)),
        archive=bool(payload.get("archive", False)),
    )
