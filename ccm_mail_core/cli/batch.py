"""``batch FILE``: the month-end run from JSON Lines or CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..results import ExitCode
from .context import open_mailer
from .output import Out
from .parser import Help


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    bt = sub.add_parser(
        "batch", parents=[common], help=h("Stapelversand aus JSON Lines oder CSV", "batch run from JSON Lines or CSV")
    )
    bt.add_argument("file", help=h("JSON Lines (.jsonl) oder CSV (.csv)", "JSON Lines (.jsonl) or CSV (.csv)"))
    bt.add_argument("--purpose", "-p", required=True, help=h("Zweck, z. B. invoice", "purpose, e.g. invoice"))
    bt.add_argument("--yes", "-y", action="store_true", help=h("Bestätigung vorab erteilen", "confirm in advance"))
    bt.add_argument(
        "--resend",
        action="store_true",
        help=h("auch Referenzen senden, die schon gesendet sind", "also send references that were already sent"),
    )
    bt.add_argument(
        "--encoding",
        help=h(
            "Kodierung der Datei (Standard: UTF-8, sonst Windows-1252)",
            "the file's encoding (default: UTF-8, else Windows-1252)",
        ),
    )
    bt.add_argument(
        "--dry-run",
        nargs="?",
        const="ccm-mail-dry-run",
        metavar="DIR",
        help=h(
            "alles als .eml in DIR schreiben statt zu senden", "write everything as .eml into DIR instead of sending"
        ),
    )
    bt.set_defaults(func=run)


def run(args: argparse.Namespace, out: Out) -> int:
    from .. import batch  # a per-invoice ``send`` need not load the batch machinery

    with open_mailer(args, out) as mailer:
        plan = batch.plan(mailer, Path(args.file), args.purpose, resend=args.resend, encoding=args.encoding)
        if not plan.encoding.startswith("utf"):
            out.note(
                out.t(
                    f"{args.file} als {plan.encoding} gelesen (kein UTF-8).",
                    f"{args.file} read as {plan.encoding} (not UTF-8).",
                )
            )
        if plan.problems:
            data = {
                "ok": False,
                "exit_code": ExitCode.CONFIG,
                "batch": plan.batch_id,
                "problems": [
                    {"row": p.row, "column": p.column, "message": p.message.get(out.lang)} for p in plan.problems
                ],
            }
            if out.json:
                out.emit(data, "")
            else:
                for p in plan.problems:
                    out.note(p.render(out.lang))
                out.note(
                    out.t(
                        f"{len(plan.problems)} fehlerhafte Zeilen in {args.file}; nichts gesendet.",
                        f"{len(plan.problems)} bad rows in {args.file}; nothing sent.",
                    )
                )
            return ExitCode.CONFIG
        if args.dry_run:
            files = batch.dry_run(mailer, plan, Path(args.dry_run))
            out.emit(
                {
                    "ok": True,
                    "dry_run": True,
                    "batch": plan.batch_id,
                    "files": [str(f) for f in files],
                    "skipped": len(plan.skipped),
                },
                out.t(
                    f"{len(files)} Mails als .eml nach {args.dry_run} geschrieben (nichts gesendet).",
                    f"{len(files)} mails written as .eml to {args.dry_run} (nothing sent).",
                ),
            )
            return ExitCode.OK
        for number, ref, entry in plan.skipped:
            out.note(
                out.t(
                    f"Zeile {number}: {ref} bereits im Journal ({entry.status.value}, Eintrag {entry.id}), "
                    "übersprungen.",
                    f"row {number}: {ref} already in the journal ({entry.status.value}, entry {entry.id}), skipped.",
                )
            )
        batch.confirm(mailer, plan, assume_yes=args.yes, interactive=sys.stdin.isatty() and not out.json)
        batch.queue_plan(mailer, plan)
        summary = batch.send(mailer, plan, as_log=(args.log_format or mailer.config.log_format) == "json")

        def human() -> str:
            d = summary.to_dict()
            lines = [
                out.t(
                    f"Stapel {d['batch']}: gesendet {d['sent']}, fehlgeschlagen {d['failed']}, "
                    f"unbekannt {d['unknown']}, wartend {d['queued']}, übersprungen {d['skipped']} "
                    f"({d['seconds']} s).",
                    f"batch {d['batch']}: sent {d['sent']}, failed {d['failed']}, unknown {d['unknown']}, "
                    f"queued {d['queued']}, skipped {d['skipped']} ({d['seconds']} s).",
                )
            ]
            if d["sending"]:
                lines.append(
                    out.t(
                        f"{d['sending']} werden gerade von einem anderen Prozess gesendet.",
                        f"{d['sending']} are being sent by another process right now.",
                    )
                )
            lines += summary.stopped
            if summary.operator:
                ids = ", ".join(map(str, summary.operator))
                lines.append(
                    out.t(
                        f"Ausgang unklar, bitte entscheiden: ccm-mail outbox resolve ID sent|resend|drop für {ids}",
                        f"outcome unclear, please decide: ccm-mail outbox resolve ID sent|resend|drop for {ids}",
                    )
                )
            return "\n".join(lines)

        out.emit({"ok": summary.exit_code == 0, "exit_code": summary.exit_code, **summary.to_dict()}, human)
        return summary.exit_code
