"""``journal``, ``journal migrate``, ``journal copy``, ``outbox``, ``outbox resolve``: what was
sent, what is still open, and the journal's schema and engine."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from ccm_mail_hookspecs import Status, T

from ..config import purpose_label
from ..journal import Entry, Journal, SQLiteJournal, open_journal
from ..outbox import Outbox
from ..results import ExitCode, exit_code_for
from .context import open_mailer
from .output import Out
from .parser import Help

#: what people read for a state
STATUS_LABELS = {
    Status.QUEUED: T("wartend", "queued"),
    Status.SENDING: T("wird gesendet", "sending"),
    Status.SENT: T("gesendet", "sent"),
    Status.FAILED: T("fehlgeschlagen", "failed"),
    Status.UNKNOWN: T("unklar", "unknown"),
    Status.CANCELLED: T("abgebrochen", "cancelled"),
}


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    jr = sub.add_parser("journal", parents=[common], help=h("Versandjournal abfragen", "query the journal"))
    jr.add_argument("--reference", "-r", help=h("Referenz, z. B. Rechnungsnummer", "reference, e.g. invoice number"))
    jr.add_argument("--status", action="append", choices=[s.value for s in Status], help=h("Status", "status"))
    jr.add_argument("--purpose", "-p", help=h("Zweck", "purpose"))
    jr.add_argument("--since", help=h("ab Datum (JJJJ-MM-TT)", "from date (YYYY-MM-DD)"))
    jr.add_argument("--until", help=h("vor Datum (JJJJ-MM-TT)", "before date (YYYY-MM-DD)"))
    jr.add_argument("--limit", type=int, default=50, help=h("höchstens so viele Einträge", "at most this many entries"))
    jr.add_argument("--id", type=int, help=h("ein Eintrag mit Verlauf", "one entry with its history"))
    jr.set_defaults(func=journal)
    jrs = jr.add_subparsers(dest="sub", metavar=h("BEFEHL", "COMMAND"))
    jrs.add_parser(
        "migrate",
        parents=[common],
        help=h("Schema des Journals anlegen oder aktualisieren", "create or upgrade the journal's schema"),
    ).set_defaults(func=migrate)
    cp = jrs.add_parser(
        "copy",
        parents=[common],
        help=h(
            "SQLite-Journal mit Verlauf nach PostgreSQL kopieren",
            "copy the SQLite journal with its history to PostgreSQL",
        ),
    )
    cp.add_argument(
        "--to",
        required=True,
        metavar="postgresql://…",
        help=h("Ziel-Datenbank (ohne Passwort)", "target database (without password)"),
    )
    cp.add_argument(
        "--password-env",
        metavar=h("VARIABLE", "VARIABLE"),
        help=h(
            "Umgebungsvariable mit dem Passwort (sonst PGPASSWORD/.pgpass)",
            "environment variable holding the password (else PGPASSWORD/.pgpass)",
        ),
    )
    cp.set_defaults(func=copy)

    ob = sub.add_parser(
        "outbox",
        parents=[common],
        help=h("Postausgang: wartend, unklar, fehlgeschlagen", "outbox: queued, unknown, failed"),
    )
    ob.add_argument("--retry", action="store_true", help=h("fehlgeschlagene erneut senden", "send failed ones again"))
    ob.set_defaults(func=outbox)
    obs = ob.add_subparsers(dest="sub", metavar=h("BEFEHL", "COMMAND"))
    rs = obs.add_parser(
        "resolve",
        parents=[common],
        help=h("über eine Mail mit unklarem Ausgang entscheiden", "decide about a mail whose outcome is unknown"),
    )
    rs.add_argument("id", type=int, help=h("Journal-Eintrag", "journal entry"))
    rs.add_argument(
        "action",
        choices=("sent", "resend", "drop"),
        help=h(
            "sent: kam an · resend: erneut senden · drop: verwerfen",
            "sent: it arrived · resend: send again · drop: discard",
        ),
    )
    rs.set_defaults(func=resolve)


def _local(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d.%m.%Y %H:%M:%S")
    except ValueError:
        return iso


def _line(e: Entry, out: Out, note: str = "") -> str:
    when = e.sent_at or e.updated_at
    label = out.t("Versanddatum", "sent") if e.sent_at else out.t("Stand", "updated")
    return (
        f"#{e.id}  {STATUS_LABELS[e.status].get(out.lang):<14} {purpose_label(e.purpose, out.lang):<28} "
        f'{e.reference or "-":<16} {label} {_local(when)}  → {", ".join(e.recipients)}  "{e.subject}"{note}'
    )


def journal(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        config = mailer.config
    path = config.journal_path
    book: Journal
    if config.journal_url:
        book = open_journal(config, readonly=True)
    elif not path.exists():
        out.note(
            out.t(
                f"Noch kein Journal unter {path} (es entsteht beim ersten Versand).",
                f"no journal at {path} yet (it is created by the first send).",
            )
        )
        out.emit({"entries": []}, out.t("Keine Einträge.", "No entries."))
        return ExitCode.OK
    else:  # read-only: inspecting a journal must work on a backup or a read-only share too
        book = SQLiteJournal(path, readonly=True)
    try:
        if args.id:
            found = book.get(args.id)
            entries = [found] if found else []
        else:
            entries = book.query(
                reference=args.reference,
                status=args.status,
                purpose=args.purpose,
                since=args.since,
                until=args.until,
                limit=args.limit,
            )
        history = {e.id: book.events(e.id) for e in entries} if args.id else {}
    finally:
        book.close()
    data = {"entries": [dict(e.to_dict(), events=history[e.id]) if args.id else e.to_dict() for e in entries]}

    def human() -> str:
        if not entries:
            return out.t("Keine Einträge.", "No entries.")
        lines = []
        for e in entries:
            lines.append(_line(e, out))
            if e.error:
                lines.append(f"      {e.error}")
            for ev in history.get(e.id, []):
                lines.append(
                    f"      {_local(ev['at'])}  {STATUS_LABELS[Status(ev['status'])].get(out.lang)}  "
                    f"{ev['detail'] or ''}"
                )
        return "\n".join(lines)

    out.emit(data, human)
    return ExitCode.OK


def migrate(args: argparse.Namespace, out: Out) -> int:
    """Create or upgrade the schema on purpose (PostgreSQL never does it by itself)."""
    with open_mailer(args, out) as mailer:
        config = mailer.config
    book = open_journal(config, migrate=True)
    try:
        found, now = book.migrate()
        where = book.where
    finally:
        book.close()
    text = (
        out.t(f"Journal {where}: Schema {now}, bereits aktuell.", f"journal {where}: schema {now}, already current.")
        if found == now
        else out.t(f"Journal {where}: Schema {found} → {now}.", f"journal {where}: schema {found} → {now}.")
    )
    out.emit({"ok": True, "journal": where, "from": found, "to": now}, text)
    return ExitCode.OK


def copy(args: argparse.Namespace, out: Out) -> int:
    """The configured SQLite journal, with every row and its history, into an empty PostgreSQL database."""
    import os

    from ccm_mail_hookspecs import ConfigError
    from ccm_mail_hookspecs.redaction import remember

    with open_mailer(args, out) as mailer:
        config = mailer.config
    if config.journal_url:
        raise ConfigError(
            T(
                "Das konfigurierte Journal ist schon PostgreSQL; kopiert wird aus einem SQLite-Journal.",
                "the configured journal is PostgreSQL already; copy reads a SQLite journal.",
            )
        )
    if not args.to.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            T(f"--to {args.to!r} ist keine PostgreSQL-Adresse.", f"--to {args.to!r} is not a PostgreSQL URL.")
        )
    if not config.journal_path.exists():
        raise ConfigError(T(f"Kein Journal unter {config.journal_path}.", f"no journal at {config.journal_path}."))
    password = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and not password:
        raise ConfigError(
            T(
                f"Umgebungsvariable {args.password_env} ist nicht gesetzt.",
                f"environment variable {args.password_env} is not set.",
            )
        )
    if password:
        remember(password)
    from ..journal.copy import copy as copy_journal
    from ..journal.postgres import PostgresJournal

    source = SQLiteJournal(config.journal_path, readonly=True)
    try:
        target = PostgresJournal(args.to, password=password, migrate=True)
        try:
            done = copy_journal(source, target)
            where = target.where
        finally:
            target.close()
    finally:
        source.close()
    out.emit(
        {
            "ok": True,
            "from": str(config.journal_path),
            "to": where,
            "messages": done.messages,
            "events": done.events,
            "schema_created": done.schema_created,
        },
        out.t(
            f"{done.messages} Einträge mit {done.events} Verlaufszeilen von {config.journal_path} nach {where} "
            "kopiert. Jetzt in der Konfiguration journal: {url: …} eintragen und das SQLite-Journal nicht mehr "
            "verwenden.",
            f"copied {done.messages} entries with {done.events} history lines from {config.journal_path} to "
            f"{where}. Now set journal: {{url: …}} in the configuration and stop using the SQLite journal.",
        ),
    )
    return ExitCode.OK


def outbox(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        box = Outbox(mailer)
        check = box.check()
        retried = box.retry_failed() if args.retry else []
        requeued = box.send_queued() if (args.retry or check.requeued) else []
        entries = box.entries()
        data = {
            "entries": [e.to_dict() for e in entries],
            "checked": {
                "sent": check.sent,
                "requeued": check.requeued,
                "waiting": check.waiting,
                "needs_operator": check.operator,
                "busy": check.busy,
            },
            "retried": [r.to_dict(out.lang) for r in [*retried, *requeued]],
        }

        def human() -> str:
            lines = []
            if check.sent:
                lines.append(
                    out.t(
                        f"Beim Anbieter gefunden und als gesendet verbucht: {check.sent}",
                        f"found at the provider and recorded as sent: {check.sent}",
                    )
                )
            for r in [*retried, *requeued]:
                lines.append(
                    f"#{r.journal_id}: {STATUS_LABELS[r.status].get(out.lang)}"
                    + (f" ({r.error.render(out.lang)})" if r.error else "")
                )
            if not entries:
                lines.append(out.t("Postausgang leer.", "outbox is empty."))
            for e in entries:
                note = ""
                if e.id in check.operator:
                    note = out.t(
                        f"  → entscheiden: outbox resolve {e.id} sent|resend|drop",
                        f"  → decide: outbox resolve {e.id} sent|resend|drop",
                    )
                elif e.id in check.waiting:
                    note = out.t(
                        "  → noch nicht im Postfach gefunden; wird nach Wartezeit erneut gesendet",
                        "  → not found in the mailbox yet; resent after the grace period",
                    )
                elif e.id in check.busy:
                    note = out.t(
                        "  → wird gerade von einem anderen Prozess gesendet",
                        "  → being sent by another process right now",
                    )
                lines.append(_line(e, out, note))
                if e.error:
                    lines.append(f"      {e.error}")
            return "\n".join(lines)

        out.emit(data, human)
        if any(e.status in (Status.UNKNOWN, Status.SENDING) for e in entries):
            return ExitCode.UNKNOWN
        return ExitCode.SEND_FAILED if any(e.status is Status.FAILED for e in entries) else ExitCode.OK


def resolve(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        entry = Outbox(mailer).resolve(args.id, args.action)
        out.emit(
            {"ok": True, "entry": entry.to_dict()},
            out.t(
                f"Eintrag {entry.id}: {STATUS_LABELS[entry.status].get(out.lang)}.",
                f"entry {entry.id}: {STATUS_LABELS[entry.status].get(out.lang)}.",
            ),
        )
        return ExitCode.OK if entry.status is Status.CANCELLED else exit_code_for(entry.status)
