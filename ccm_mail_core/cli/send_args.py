"""The options of ``preview`` and ``send``, read into what a send needs, and the send's answer
as people read it: shared by the local commands and the client of ``ccm-mail serve``, so both
take the same command line and print the same lines. Light on imports (the client needs it)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import CcmMailError, T
from ccm_mail_hookspecs.errors import SUPPORT_ID_KEYS

from .parser import Help


def add_send_arguments(p: argparse.ArgumentParser, h: Help) -> None:
    p.add_argument(
        "--purpose", "-p", required=True, help=h("Zweck, z. B. invoice, eservice", "purpose, e.g. invoice, eservice")
    )
    p.add_argument(
        "--to", action="append", metavar="ADDR", help=h("Empfänger (mehrfach möglich)", "recipient (repeatable)")
    )
    p.add_argument("--cc", action="append", metavar="ADDR", help=h("Kopie an", "carbon copy"))
    p.add_argument("--bcc", action="append", metavar="ADDR", help=h("Blindkopie an", "blind carbon copy"))
    p.add_argument("--reply-to", action="append", metavar="ADDR", help=h("Antwort an", "reply to"))
    p.add_argument(
        "--data",
        metavar="JSON",
        help=h(
            "Sendedaten (Rechnungsfelder) als JSON-Datei; '-' liest UTF-8-JSON von der Standardeingabe",
            "send data (invoice fields) as a JSON file; '-' reads UTF-8 JSON from standard input",
        ),
    )
    p.add_argument(
        "--field", action="append", metavar="NAME=VALUE", help=h("einzelnes Datenfeld", "a single data field")
    )
    p.add_argument(
        "--attach",
        "-a",
        action="append",
        metavar="FILE",
        help=h("Anhang (mehrfach möglich)", "attachment (repeatable)"),
    )
    p.add_argument(
        "--reference",
        "-r",
        help=h(
            "Referenz, z. B. Rechnungsnummer (sonst aus der Vorlage)",
            "reference, e.g. the invoice number (else from the template)",
        ),
    )
    p.add_argument(
        "--header", action="append", metavar="X-NAME:VALUE", help=h("zusätzliche Kopfzeile X-…", "extra header X-…")
    )


def add_confirm_arguments(p: argparse.ArgumentParser, h: Help) -> None:
    """``send`` only."""
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help=h("Bestätigung vorab erteilen (Stapelbetrieb)", "confirm in advance (batch use)"),
    )
    p.add_argument(
        "--resend",
        action="store_true",
        help=h(
            "bewusst erneut senden, auch wenn die Referenz schon gesendet ist",
            "send again on purpose, even if the reference was sent",
        ),
    )


def read_data(source: str | None) -> dict[str, Any]:
    if not source:
        return {}
    name = T("Standardeingabe", "standard input") if source == "-" else T(f"Datendatei {source}", f"data file {source}")
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        data = json.loads(raw.decode("utf-8-sig"))
    except OSError as exc:
        raise CcmMailError(
            T(f"{name.de} nicht lesbar ({exc.strerror}).", f"{name.en} cannot be read ({exc.strerror}).")
        ) from exc
    except UnicodeDecodeError as exc:
        raise CcmMailError(
            T(f"{name.de}: kein UTF-8 (Byte {exc.start}).", f"{name.en}: not UTF-8 (byte {exc.start})."),
            hint=T("JSON als UTF-8 übergeben.", "Pass the JSON as UTF-8."),
        ) from exc
    except json.JSONDecodeError as exc:
        raise CcmMailError(
            T(
                f"{name.de}: kein gültiges JSON (Zeile {exc.lineno}: {exc.msg}).",
                f"{name.en}: not valid JSON (line {exc.lineno}: {exc.msg}).",
            )
        ) from exc
    if not isinstance(data, dict):
        raise CcmMailError(T(f"{name.de} muss ein JSON-Objekt sein.", f"{name.en} must hold a JSON object."))
    return data


def send_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    data = read_data(args.data)
    for item in args.field or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CcmMailError(
                T(f"--field erwartet NAME=WERT, nicht {item!r}", f"--field expects NAME=VALUE, not {item!r}")
            )
        data[key] = value
    headers = {}
    for item in args.header or []:
        key, _, value = item.partition(":")
        headers[key.strip()] = value.strip()
    return {
        "to": args.to or [],
        "cc": args.cc or [],
        "bcc": args.bcc or [],
        "reply_to": args.reply_to or [],
        "data": data,
        "attachments": args.attach or [],
        "reference": args.reference,
        "headers": headers,
    }


def render_error(error: dict[str, Any], lang: str) -> str:
    """An error as ``--json`` gives it (kind, sent, message, hint, details), as the line people
    read: the same text as ``CcmMailError.render``."""
    parts = [str(error.get("message") or "")]
    if error.get("hint"):
        parts.append(T("Hinweis: ", "Hint: ").get(lang) + str(error["hint"]))
    details = error.get("details") or {}
    ids = {k: v for k, v in details.items() if k in SUPPORT_ID_KEYS and v}
    if ids:
        parts.append("[" + ", ".join(f"{k}={v}" for k, v in ids.items()) + "]")
    return " ".join(parts)


#: what people read for a send that did not end as sent
_NOT_SENT = {
    "failed": T("NICHT gesendet", "NOT sent"),
    "unknown": T("Ausgang UNBEKANNT", "outcome UNKNOWN"),
    "cancelled": T("abgebrochen", "cancelled"),
}


def sent_lines(result: dict[str, Any], lang: str) -> str:
    """The answer of ``send`` for people, from its ``--json`` document."""
    if not result.get("sent_at"):
        return ""
    when = datetime.fromisoformat(result["sent_at"]).astimezone()
    lines = [
        T(
            f"Gesendet am {when:%d.%m.%Y %H:%M:%S} (Journal-Eintrag {result['journal_id']}).",
            f"Sent at {when:%Y-%m-%d %H:%M:%S} (journal entry {result['journal_id']}).",
        ).get(lang)
    ]
    lines += [f"  {k}: {v}" for k, v in (result.get("transport_ids") or {}).items()]
    lines += [
        T(
            f"Warnung: Aufzeichnung durch {f['plugin']} fehlgeschlagen: {f['error']}",
            f"warning: recording by {f['plugin']} failed: {f['error']}",
        ).get(lang)
        for f in result.get("recorder_failures") or []
    ]
    return "\n".join(lines)


def not_sent_line(result: dict[str, Any], lang: str) -> str | None:
    """The stderr line of a send that came back with an error (failed, unknown, cancelled)."""
    error = result.get("error")
    if not error:
        return None
    status = str(result.get("status"))
    label = _NOT_SENT.get(status, T(status, status)).get(lang)
    return (
        f"{label} ({T('Journal-Eintrag', 'journal entry').get(lang)} {result.get('journal_id')}): "
        f"{render_error(error, lang)}"
    )
