"""``ccm-mail journal copy --to postgresql://…``: move a SQLite journal with its whole history to
PostgreSQL, so the duplicate check keeps every invoice ever sent.

Ids are kept (``outbox resolve 17`` still means the same row), the sequences continue after them,
and the last day's sends become pacing slots so the daily recipient budget carries over. The
copy is one transaction: it lands whole or not at all. It refuses a target that already holds
messages and a source that a live process is still sending from; rows a dead process left in
``sending`` arrive without a lease and are settled by a lookup at the provider, as always.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ccm_mail_hookspecs import T

from .. import owner
from .base import Journal, JournalError
from .postgres import PostgresJournal


@dataclass(frozen=True, slots=True)
class Copied:
    messages: int
    events: int
    schema_created: bool


def _when(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _jsonb(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def copy(source: Journal, target: PostgresJournal) -> Copied:
    busy = [e.id for e in source.query(status="sending", limit=0) if owner.alive(e.owner)]
    if busy:
        raise JournalError(
            T(
                f"Im Journal {source.where} senden noch laufende Prozesse (Einträge {busy}); nichts kopiert.",
                f"processes are still sending from {source.where} (entries {busy}); nothing copied.",
            ),
            hint=T(
                "Alle ccm-mail-Prozesse auf diesem Rechner beenden, dann erneut kopieren.",
                "Stop every ccm-mail process on this machine, then copy again.",
            ),
        )
    with target._tx() as db:
        present = db.execute("SELECT count(*) AS n FROM messages").fetchone()["n"]
        if present:
            raise JournalError(
                T(
                    f"Das Ziel {target.where} enthält schon {present} Einträge; nichts kopiert.",
                    f"the target {target.where} already holds {present} entries; nothing copied.",
                ),
                hint=T(
                    "In eine leere Datenbank kopieren (ccm-mail journal migrate legt das Schema an).",
                    "Copy into an empty database (ccm-mail journal migrate creates the schema).",
                ),
            )
        messages = events = 0
        for row, history in source.export():
            db.execute(
                "INSERT INTO messages (id, message_id, purpose, account, account_type, reference, recipients, subject,"
                " status, attempts, created_at, updated_at, sent_at, transport_ids, error, error_kind, batch,"
                " batch_row,"
                " owner, payload, archive_sha256, archive_file) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row["id"],
                    row["message_id"],
                    row["purpose"],
                    row["account"],
                    row["account_type"],
                    row["reference"],
                    _jsonb(row["recipients"]),
                    row["subject"],
                    row["status"],
                    row["attempts"],
                    _when(row["created_at"]),
                    _when(row["updated_at"]),
                    _when(row["sent_at"]),
                    _jsonb(row["transport_ids"] or "{}"),
                    row["error"],
                    row["error_kind"],
                    row["batch"],
                    row["batch_row"],
                    row["owner"],
                    _jsonb(row["payload"]),
                    row.get("archive_sha256"),
                    row.get("archive_file"),
                ),
            )
            for event in history:
                db.execute(
                    "INSERT INTO events (message, at, status, detail) VALUES (?,?,?,?)",
                    (row["id"], _when(event["at"]), event["status"], event["detail"]),
                )
            messages += 1
            events += len(history)
        db.execute(
            "SELECT setval(pg_get_serial_sequence('messages', 'id'), coalesce(max(id), 0) + 1, false) FROM messages"
        )
        # the day's sends as finished pacing slots: Exchange's rolling day does not restart with the copy
        db.execute(
            "INSERT INTO pacing_slots (account, owner, started, finished, recipients, sent)"
            " SELECT account, 'journal copy', updated_at, updated_at, jsonb_array_length(recipients), true"
            " FROM messages WHERE status IN ('sent', 'sending', 'unknown')"
            " AND updated_at > now() - interval '1 day'"
        )
    return Copied(messages, events, getattr(target, "migrated_from", 1) == 0)
