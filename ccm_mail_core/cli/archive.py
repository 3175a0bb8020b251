"""``archive verify``: every archive copy (GoBD) read back and compared with the SHA-256 its
journal row recorded when it was sent. Exit 0: all there and unchanged; 1: at least one copy is
missing, altered, or was never written (each listed)."""

from __future__ import annotations

import argparse
from typing import Any

from ccm_mail_hookspecs import ConfigError, Status, T

from .. import archive
from ..config import did_you_mean, purpose_label
from ..journal import Journal, SQLiteJournal, open_journal
from ..results import ExitCode
from .context import open_mailer
from .output import Out
from .parser import Help

STATES = {
    "ok": T("in Ordnung", "ok"),
    "missing": T("FEHLT", "MISSING"),
    "altered": T("VERÄNDERT", "ALTERED"),
    "not_archived": T("NICHT ARCHIVIERT", "NOT ARCHIVED"),
}


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    ar = sub.add_parser("archive", help=h("Archivkopien (GoBD)", "archive copies (GoBD)"))
    ar_sub = ar.add_subparsers(dest="sub", required=True, metavar=h("BEFEHL", "COMMAND"))
    vf = ar_sub.add_parser(
        "verify",
        parents=[common],
        help=h(
            "jede Archivkopie gegen ihre SHA-256 im Journal prüfen",
            "check every archive copy against its SHA-256 in the journal",
        ),
    )
    vf.add_argument("--purpose", "-p", help=h("nur dieser Zweck", "only this purpose"))
    vf.set_defaults(func=verify)


def verify(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        config = mailer.config
    book: Journal
    if config.journal_url:
        book = open_journal(config, readonly=True)
    elif not config.journal_path.exists():
        out.emit(
            {"ok": True, "checked": 0, "problems": []},
            out.t("Noch kein Journal: nichts zu prüfen.", "no journal yet: nothing to check."),
        )
        return ExitCode.OK
    else:
        book = SQLiteJournal(config.journal_path, readonly=True)
    try:
        rows = book.query(status=Status.SENT.value, purpose=args.purpose, limit=0)
    finally:
        book.close()
    known = sorted(set(config.purposes) | set(config.purpose_settings))
    if args.purpose and args.purpose not in known and not rows:
        # a misspelt purpose in a scheduled check would report "0 problems" forever
        raise ConfigError(
            T(
                f"Unbekannter Zweck {args.purpose!r}; nichts geprüft.",
                f"unknown purpose {args.purpose!r}; nothing checked.",
            ),
            hint=did_you_mean(args.purpose, known, known=T("Zwecke", "purposes")),
        )
    result = archive.verify(rows)
    folders = {p: str(s.archive.folder) for p, s in config.purpose_settings.items() if s.archive is not None}
    data = {
        "ok": not result.problems,
        "checked": len(result.checked),
        "folders": folders,
        "problems": [c.to_dict() for c in result.problems],
    }

    def human() -> str:
        lines = [f"{purpose_label(p, out.lang)}: {f}" for p, f in folders.items()]
        for c in result.problems:
            e = c.entry
            lines.append(
                f"#{e.id}  {STATES[c.state].get(out.lang):<16} {e.reference or '-':<16} {e.sent_at or '-'}  "
                f"{e.archive_file or '-'}"
            )
        lines.append(
            out.t(
                f"{len(result.checked)} Archivkopien geprüft, {len(result.problems)} Probleme.",
                f"{len(result.checked)} archive copies checked, {len(result.problems)} problems.",
            )
        )
        return "\n".join(lines)

    out.emit(data, human)
    return ExitCode.OK if not result.problems else ExitCode.SEND_FAILED
