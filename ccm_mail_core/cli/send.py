"""``preview`` and ``send``: one message, as AbSys sends an invoice."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import CcmMailError, Status, T

from ..preview_text import preview_dict, render_preview
from ..redaction import scrub
from .context import open_mailer
from .output import Out
from .parser import Help


def add_send_arguments(p: argparse.ArgumentParser, h: Help) -> None:
    p.add_argument("--purpose", "-p", required=True, help=h("Zweck, z. B. invoice, eservice", "purpose, e.g. invoice, eservice"))
    p.add_argument("--to", action="append", metavar="ADDR", help=h("Empfänger (mehrfach möglich)", "recipient (repeatable)"))
    p.add_argument("--cc", action="append", metavar="ADDR", help=h("Kopie an", "carbon copy"))
    p.add_argument("--bcc", action="append", metavar="ADDR", help=h("Blindkopie an", "blind carbon copy"))
    p.add_argument("--reply-to", action="append", metavar="ADDR", help=h("Antwort an", "reply to"))
    p.add_argument("--data", metavar="JSON", help=h("Sendedaten (Rechnungsfelder) als JSON-Datei; '-' liest "
                                                    "UTF-8-JSON von der Standardeingabe",
                                                    "send data (invoice fields) as a JSON file; '-' reads UTF-8 JSON "
                                                    "from standard input"))
    p.add_argument("--field", action="append", metavar="NAME=VALUE", help=h("einzelnes Datenfeld", "a single data field"))
    p.add_argument("--attach", "-a", action="append", metavar="FILE", help=h("Anhang (mehrfach möglich)",
                                                                             "attachment (repeatable)"))
    p.add_argument("--reference", "-r", help=h("Referenz, z. B. Rechnungsnummer (sonst aus der Vorlage)",
                                               "reference, e.g. the invoice number (else from the template)"))
    p.add_argument("--header", action="append", metavar="X-NAME:VALUE", help=h("zusätzliche Kopfzeile X-…",
                                                                               "extra header X-…"))


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    pv = sub.add_parser("preview", parents=[common], help=h("zeigen, was der Bestätigungsdialog zeigt",
                                                            "show what the confirmation dialog shows"))
    add_send_arguments(pv, h)
    pv.set_defaults(func=preview)
    sd = sub.add_parser("send", parents=[common], help=h("eine Mail senden", "send one mail"))
    add_send_arguments(sd, h)
    sd.add_argument("--yes", "-y", action="store_true", help=h("Bestätigung vorab erteilen (Stapelbetrieb)",
                                                               "confirm in advance (batch use)"))
    sd.add_argument("--resend", action="store_true", help=h("bewusst erneut senden, auch wenn die Referenz schon "
                                                            "gesendet ist",
                                                            "send again on purpose, even if the reference was sent"))
    sd.set_defaults(func=send)


def _data(source: str | None) -> dict[str, Any]:
    if not source:
        return {}
    name = T("Standardeingabe", "standard input") if source == "-" else T(f"Datendatei {source}", f"data file {source}")
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        data = json.loads(raw.decode("utf-8-sig"))
    except OSError as exc:
        raise CcmMailError(T(f"{name.de} nicht lesbar ({exc.strerror}).", f"{name.en} cannot be read ({exc.strerror}).")
                           ) from exc
    except UnicodeDecodeError as exc:
        raise CcmMailError(T(f"{name.de}: kein UTF-8 (Byte {exc.start}).", f"{name.en}: not UTF-8 (byte {exc.start})."),
                           hint=T("JSON als UTF-8 übergeben.", "Pass the JSON as UTF-8.")) from exc
    except json.JSONDecodeError as exc:
        raise CcmMailError(T(f"{name.de}: kein gültiges JSON (Zeile {exc.lineno}: {exc.msg}).",
                             f"{name.en}: not valid JSON (line {exc.lineno}: {exc.msg}).")) from exc
    if not isinstance(data, dict):
        raise CcmMailError(T(f"{name.de} muss ein JSON-Objekt sein.", f"{name.en} must hold a JSON object."))
    return data


def send_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    data = _data(args.data)
    for item in args.field or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CcmMailError(T(f"--field erwartet NAME=WERT, nicht {item!r}", f"--field expects NAME=VALUE, not {item!r}"))
        data[key] = value
    headers = {}
    for item in args.header or []:
        key, _, value = item.partition(":")
        headers[key.strip()] = value.strip()
    return {"to": args.to or [], "cc": args.cc or [], "bcc": args.bcc or [], "reply_to": args.reply_to or [],
            "data": data, "attachments": args.attach or [], "reference": args.reference, "headers": headers}


def preview(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        shown = mailer.preview(args.purpose, **send_kwargs(args))
        out.emit(preview_dict(shown), lambda: render_preview(shown, mailer.lang, body_lines=200))
    return 0


def send(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        interactive = sys.stdin.isatty() and not out.json and args.data != "-"
        result = mailer.send(args.purpose, resend=args.resend, assume_yes=args.yes, interactive=interactive,
                             **send_kwargs(args))

        def human() -> str:
            if result.receipt is None:
                return ""
            when = result.receipt.sent_at.astimezone()
            lines = [out.t(f"Gesendet am {when:%d.%m.%Y %H:%M:%S} (Journal-Eintrag {result.journal_id}).",
                           f"Sent at {when:%Y-%m-%d %H:%M:%S} (journal entry {result.journal_id}).")]
            lines += [f"  {k}: {v}" for k, v in result.receipt.transport_ids.items()]
            lines += [out.t(f"Warnung: Aufzeichnung durch {p} fehlgeschlagen: {e}",
                            f"warning: recording by {p} failed: {e}") for p, e in result.recorder_failures]
            return "\n".join(lines)
        if result.error is not None and not out.json:
            label = {Status.FAILED: T("NICHT gesendet", "NOT sent"), Status.UNKNOWN: T("Ausgang UNBEKANNT", "outcome UNKNOWN"),
                     Status.CANCELLED: T("abgebrochen", "cancelled")}.get(result.status, T(result.status.value,
                                                                                         result.status.value))
            out.note(f"{label.get(out.lang)} ({out.t('Journal-Eintrag', 'journal entry')} {result.journal_id}): "
                     f"{scrub(result.error.render(out.lang))}")
        out.emit({"ok": result.status is Status.SENT, "exit_code": result.exit_code, **result.to_dict(out.lang)}, human)
        return result.exit_code
