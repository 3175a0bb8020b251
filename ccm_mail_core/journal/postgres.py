"""The PostgreSQL journal: one duplicate check, outbox and pacing budget for several machines.

Same rows, states, history and rules as SQLite (the SQL lives in :mod:`.base`); what differs:

- **Durability**: PostgreSQL's commit is durable when it returns. Commits that no network step
  follows directly say ``synchronous_commit = off`` for their transaction (as SQLite's ``NORMAL``):
  the WAL is written in order, so the next claim's durable commit makes them durable too.
- **Duplicate check**: the check and the insert run under a transaction-scoped advisory lock
  on the reference, so two machines cannot both pass it (SQLite serialises all writers instead).
- **Claims**: the conditional ``UPDATE … WHERE status='queued'`` is one transaction; under
  PostgreSQL's row locks only one machine's update matches. The claim also renews the owner's
  **lease** (table ``owners``): host + process identity, renewed by a heartbeat thread every
  third of ``journal.lease_seconds``. A ``sending`` row whose owner's lease has run out (the
  host died, was cut off, or was killed) is settled like a local crash: looked up at the
  provider before anything is sent again. The database's clock decides, never a host's.
- **Schema**: versioned in table ``ccm_schema``; created and upgraded only by
  ``ccm-mail journal migrate`` (several machines, maybe several ccm-mail versions, share the
  database: an upgrade is a decision, never a side effect of the next send).

psycopg 3 and psycopg_pool are imported here only: a SQLite user never needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from ccm_mail_hookspecs import T

from ..pacing import Limits, Pacing
from ..redaction import scrub
from .base import Conn, Journal, JournalError, Rows

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise JournalError(
        T(
            "journal.url nennt PostgreSQL, aber psycopg ist nicht installiert.",
            "journal.url names PostgreSQL, but psycopg is not installed.",
        ),
        hint=T('pip install "ccm-mail-core[postgresql]"', 'pip install "ccm-mail-core[postgresql]"'),
    ) from exc

log = structlog.get_logger("ccm_mail.journal")

SCHEMA_VERSION = 2

#: version → (what it does, its SQL); applied in order by ``ccm-mail journal migrate``
MIGRATIONS: dict[int, tuple[str, str]] = {
    1: (
        "messages, events, owners (claim leases), pacing slots",
        """
CREATE TABLE messages (
    id            bigserial PRIMARY KEY,
    message_id    text NOT NULL UNIQUE,
    purpose       text NOT NULL,
    account       text NOT NULL,
    account_type  text NOT NULL,
    reference     text NOT NULL DEFAULT '',
    recipients    jsonb NOT NULL,
    subject       text NOT NULL,
    status        text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    transport_ids jsonb NOT NULL DEFAULT '{}',
    error         text,
    error_kind    text,
    batch         text,
    batch_row     integer,
    owner         text,
    payload       jsonb
);
CREATE UNIQUE INDEX messages_batch_row ON messages (batch, batch_row) WHERE batch IS NOT NULL;
CREATE INDEX messages_reference ON messages (purpose, reference);
CREATE INDEX messages_status ON messages (status);
CREATE INDEX messages_account_updated ON messages (account, updated_at);
CREATE TABLE events (
    id       bigserial PRIMARY KEY,
    message  bigint NOT NULL REFERENCES messages(id),
    at       timestamptz NOT NULL,
    status   text NOT NULL,
    detail   text
);
CREATE INDEX events_message ON events (message);
CREATE TABLE owners (
    owner        text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started      double precision NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL
);
CREATE TABLE pacing_slots (
    id          bigserial PRIMARY KEY,
    account     text NOT NULL,
    owner       text NOT NULL,
    started     timestamptz NOT NULL DEFAULT now(),
    finished    timestamptz,
    recipients  integer NOT NULL,
    sent        boolean
);
CREATE INDEX pacing_slots_account ON pacing_slots (account, started);
""",
    ),
    2: (
        "archive copy: SHA-256 and file of the .eml each sent message was archived as",
        """
ALTER TABLE messages ADD COLUMN archive_sha256 text;
ALTER TABLE messages ADD COLUMN archive_file text;
""",
    ),
}

#: advisory lock keys (two-int form, class 0x63636d = "ccm"): migrations, per reference, per account
LOCK_CLASS = 0x63636D
_MIGRATE_KEY = 1


def display_url(url: str) -> str:
    """The URL as messages show it: never a password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (
        (f"{parts.username}@" if parts.username else "")
        + (f"[{host}]" if ":" in host else host)
        + (f":{parts.port}" if parts.port else "")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _reason(exc: BaseException) -> T:
    """libpq's reason (English) with a German explanation of the usual ones."""
    text = scrub(" ".join(str(exc).split())) or type(exc).__name__
    known = (
        ("Connection refused", "Verbindung abgelehnt (läuft der Server, stimmt der Port?)"),
        ("timeout expired", "Zeitüberschreitung beim Verbinden"),
        ("couldn't get a connection", "keine Verbindung in der Wartezeit (Server nicht erreichbar?)"),
        ("password authentication failed", "Anmeldung abgelehnt (Benutzer oder Passwort falsch)"),
        ("no password supplied", "kein Passwort angegeben (journal.password)"),
        ("does not exist", "gibt es auf dem Server nicht"),
        ("could not translate host name", "Rechnername unbekannt"),
        ("terminating connection", "Verbindung vom Server beendet (Neustart?)"),
        ("server closed the connection", "Verbindung vom Server beendet (Neustart?)"),
        ("the database system is shutting down", "Datenbank fährt herunter"),
        ("the database system is starting up", "Datenbank startet gerade"),
        ("No space left", "Datenträger des Servers voll"),
    )
    for needle, german in known:
        if needle.lower() in text.lower():
            return T(f"{german}: {text}", text)
    return T(text, text)


class PostgresJournal(Journal):
    """PostgreSQL journal, shared by every process on every machine that names the same database."""

    shared = True

    def pacer(self, account: str, limits: Limits) -> Pacing:
        """Counts in the database: every host sharing it shares the mailbox's budget."""
        from .postgres_pacer import SharedPacer  # it imports this module (LOCK_CLASS)

        return SharedPacer(self, account, limits)

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        lease_seconds: float = 30.0,
        pool_size: int = 10,
        migrate: bool = False,
        readonly: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.where = display_url(url)
        self.host, self.port = parts.hostname or "localhost", parts.port or 5432
        self.lease_seconds = float(lease_seconds)
        self._timeout = connect_timeout
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._down = False
        #: pacing slots whose release has not reached the database yet → sent or not
        self.unfinished: dict[int, bool] = {}
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": "ccm-mail",
            "options": "-c TimeZone=UTC",
            "connect_timeout": max(1, int(connect_timeout)),
        }
        if password:
            kwargs["password"] = password
        self._kwargs = kwargs
        try:  # one direct connection first: it says why when the server cannot be reached
            with psycopg.connect(url, **kwargs) as conn:
                found = self._version(conn)
                if migrate:
                    found = self._migrate(conn)
                self._found = found
        except psycopg.Error as exc:
            raise self._error(exc, connecting=True) from None
        self._check_version(self._found)
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url,
            kwargs=kwargs,
            min_size=1,
            max_size=max(2, pool_size),
            open=False,
            name="ccm-mail-journal",
            # a connection broken by a server restart is replaced, not handed to a send
            check=ConnectionPool.check_connection,
            timeout=5.0,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(exc, connecting=True) from None

    # ---- errors --------------------------------------------------------------------------------
    def _error(self, exc: BaseException, *, connecting: bool = False) -> JournalError:
        reason = _reason(exc)
        where = f"{self.where} ({self.host}:{self.port})"
        if connecting or isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
            return JournalError(
                T(
                    f"PostgreSQL-Journal {where} nicht erreichbar: {reason.de}",
                    f"PostgreSQL journal {where} cannot be reached: {reason.en}",
                ),
                hint=T(
                    "Server, Port, Firewall, Benutzer und journal.password prüfen, dann erneut starten: bereits "
                    "Gesendetes wird nicht noch einmal gesendet.",
                    "Check the server, port, firewall, user and journal.password, then run again: what was sent "
                    "is not sent twice.",
                ),
                details={"code": type(exc).__name__, "host": self.host, "port": self.port},
            )
        return JournalError(
            T(
                f"PostgreSQL-Journal {where} nicht nutzbar: {reason.de}",
                f"PostgreSQL journal {where} cannot be used: {reason.en}",
            ),
            hint=T(
                "Rechte des Benutzers und freien Platz auf dem Server prüfen; dann erneut starten: "
                "bereits Gesendetes wird nicht noch einmal gesendet.",
                "Check the user's privileges and the server's free space, then run again: what "
                "was sent is not sent twice.",
            ),
            details={"code": type(exc).__name__, "host": self.host, "port": self.port},
        )

    # ---- schema ----------------------------------------------------------------------------------
    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int:
        exists = conn.execute("SELECT to_regclass('ccm_schema') IS NOT NULL AS e").fetchone()
        if not exists or not exists["e"]:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) AS v FROM ccm_schema").fetchone()
        return int(row["v"]) if row else 0

    def _migrate(self, conn: psycopg.Connection[Any]) -> int:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, _MIGRATE_KEY))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ccm_schema (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL)"
            )
            found = self._version(conn)
            self._check_version(found, migrating=True)
            for version in range(found + 1, SCHEMA_VERSION + 1):
                note, sql = MIGRATIONS[version]
                conn.execute(sql)
                conn.execute("INSERT INTO ccm_schema (version, note) VALUES (%s, %s)", (version, note))
                log.warning("journal_schema_migrated", journal=self.where, version=version, note=note)
        self.migrated_from = found
        return SCHEMA_VERSION

    def _check_version(self, found: int, *, migrating: bool = False) -> None:
        if found > SCHEMA_VERSION:
            raise JournalError(
                T(
                    f"PostgreSQL-Journal {self.where} stammt von einem neueren ccm-mail "
                    f"(Schema {found} > {SCHEMA_VERSION}).",
                    f"PostgreSQL journal {self.where} was written by a newer ccm-mail "
                    f"(schema {found} > {SCHEMA_VERSION}).",
                ),
                hint=T("ccm-mail auf diesem Rechner aktualisieren.", "Update ccm-mail on this machine."),
            )
        if found < SCHEMA_VERSION and not migrating:
            what = (
                T("hat noch kein ccm-mail-Schema", "has no ccm-mail schema yet")
                if found == 0
                else T(
                    f"hat Schema {found}, dieses ccm-mail braucht {SCHEMA_VERSION}",
                    f"has schema {found}, this ccm-mail needs {SCHEMA_VERSION}",
                )
            )
            raise JournalError(
                T(
                    f"PostgreSQL-Journal {self.where} {what.de}; nichts gesendet.",
                    f"PostgreSQL journal {self.where} {what.en}; nothing sent.",
                ),
                hint=T(
                    "Einmal 'ccm-mail journal migrate' ausführen (mit einem Benutzer, der Tabellen anlegen darf).",
                    "Run 'ccm-mail journal migrate' once (as a user allowed to create tables).",
                ),
                details={"schema": found, "needed": SCHEMA_VERSION},
            )

    def schema_version(self) -> int:
        with self._read() as db:
            row = db.execute("SELECT coalesce(max(version), 0) AS v FROM ccm_schema").fetchone()
        return int(row["v"])

    def migrate(self) -> tuple[int, int]:
        return getattr(self, "migrated_from", self._found), SCHEMA_VERSION

    # ---- connections ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[Conn]:
        self._reachable()
        try:
            with self._pool.connection() as conn, conn.transaction():
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit TO OFF")
                yield _Conn(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failed(exc) from None

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        self._reachable()
        try:
            with self._pool.connection() as conn:
                yield _Conn(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: BaseException) -> JournalError:
        if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
            self._down = True
        return self._error(exc)

    def _reachable(self) -> None:
        """After a lost connection, ask the server directly (it answers or refuses at once)
        instead of waiting for the pool's reconnect: a stopped database stops a batch with one
        message, not after a timeout per step; once it is back, the pool drops its dead connections."""
        if not self._down:
            return
        try:
            psycopg.connect(self.url, **{**self._kwargs, "connect_timeout": 2}).close()
        except psycopg.Error as exc:
            raise self._error(exc, connecting=True) from None
        self._down = False
        self._pool.check()

    def _insert(self, db: Conn, sql: str, args: Sequence[Any]) -> int | None:
        row = db.execute(sql + " RETURNING id", args).fetchone()
        return int(row["id"]) if row else None

    def _stamp(self, when: Any) -> Any:
        return when  # timestamptz

    def _lock_reference(self, db: Conn, purpose: str, reference: str) -> None:
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (f"{purpose}\x1f{reference}",))

    # ---- leases ----------------------------------------------------------------------------------
    def _claimed(self, db: Conn, owner: str | None) -> None:
        if owner is None:
            return
        self.renew(db, owner)
        self._start_heartbeat()

    def renew(self, db: Conn, owner: str | None = None) -> None:
        """Renew (or take) the lease of ``owner`` (default: this process) inside ``db``'s transaction."""
        from .. import owner as owner_mod

        me = owner_mod.current()  # looked up each time: the process identity, as claims record it
        text = owner or me.format()
        who = owner_mod.Owner.parse(text) or me
        db.execute(
            "INSERT INTO owners (owner, host, pid, started, lease_until)"
            " VALUES (?, ?, ?, ?, now() + make_interval(secs => ?))"
            " ON CONFLICT (owner) DO UPDATE SET lease_until = EXCLUDED.lease_until",
            (text, who.host, who.pid, who.started, self.lease_seconds),
        )

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beat is None or not self._beat.is_alive():
                self._stop.clear()
                self._beat = threading.Thread(target=self._heartbeat, name="ccm-mail-lease", daemon=True)
                self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                with self._tx(durable=False) as db:
                    self.renew(db)
            except JournalError as exc:  # the next beat tries again; a claim needs the database anyway
                log.warning("lease_renewal_failed", journal=self.where, error=exc.render("en"))

    def owner_alive(self, owner_text: str | None) -> bool:
        """Alive while its lease runs (by the database's clock); a row whose owner never had a
        lease here (copied from SQLite, or written before its claim) counts as interrupted."""
        if not owner_text:
            return False
        with self._read() as db:
            row = db.execute("SELECT lease_until > now() AS alive FROM owners WHERE owner=?", (owner_text,)).fetchone()
        return bool(row and row["alive"])

    def finish_slots(self, db: Conn) -> list[int]:
        """Record the releases of this journal's pacing slots (see :mod:`.postgres_pacer`);
        the caller forgets the returned ids once its transaction has committed."""
        with self._lock:
            done = dict(self.unfinished)
        for slot, sent in done.items():
            # clock_timestamp(), not now(): the transaction may have started (and waited for a lock)
            # before the send ended, and a finish stamped too early would open the window too soon
            db.execute(
                "UPDATE pacing_slots SET finished=clock_timestamp(), sent=? WHERE id=? AND finished IS NULL",
                (sent, slot),
            )
        return list(done)

    def forget_slots(self, slots: list[int]) -> None:
        with self._lock:
            for slot in slots:
                self.unfinished.pop(slot, None)

    def close(self) -> None:
        # the lease is left to run out: another journal of this process may still be sending
        if self.unfinished:
            try:
                with self._tx(durable=False) as db:
                    done = self.finish_slots(db)
                self.forget_slots(done)
            except JournalError as exc:
                log.warning("pacing_release_failed", journal=self.where, error=exc.render("en"))
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        self._pool.close()


class _Conn:
    """A psycopg connection with the ``?`` placeholders of :mod:`.base`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self._conn.execute(sql.replace("?", "%s"), tuple(args))
