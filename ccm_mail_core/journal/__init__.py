"""The journal: one row per message, every state change committed before the next network step,
so a crash never leaves a message whose fate nobody can find out.

Two engines behind one interface (:class:`Journal`): SQLite (:mod:`.sqlite`, the embedded
default, one machine) and PostgreSQL (:mod:`.postgres`, ``journal: {url: postgresql://…}``, for
several machines sharing one duplicate check, outbox and pacing budget). PostgreSQL's driver is
imported only when such a journal is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    BLOCKING,
    DuplicateSend,
    Entry,
    Journal,
    JournalError,
    message_from_json,
    message_to_json,
    now,
    row_fields,
)
from .sqlite import SCHEMA_VERSION, SQLiteJournal

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "BLOCKING",
    "SCHEMA_VERSION",
    "DuplicateSend",
    "Entry",
    "Journal",
    "JournalError",
    "SQLiteJournal",
    "message_from_json",
    "message_to_json",
    "now",
    "open_journal",
    "row_fields",
]


def open_journal(config: Config, *, readonly: bool = False, migrate: bool = False) -> Journal:
    """The journal the configuration names: PostgreSQL when ``journal.url`` is set, else the
    SQLite file at ``journal.path``. ``migrate`` (``ccm-mail journal migrate``) allows a
    PostgreSQL schema to be created or upgraded; without it an outdated schema is refused."""
    if config.journal_url:
        from .postgres import PostgresJournal

        return PostgresJournal(
            config.journal_url,
            password=config.journal_password,
            lease_seconds=config.journal_lease_seconds,
            pool_size=config.journal_pool_size,
            migrate=migrate,
            readonly=readonly,
        )
    return SQLiteJournal(config.journal_path, readonly=readonly)
