"""``preview`` and ``send``: one message, as AbSys sends an invoice."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..preview_text import preview_dict, render_preview
from .context import open_mailer
from .output import Out
from .parser import Help
from .send_args import add_confirm_arguments, add_send_arguments, not_sent_line, send_kwargs, sent_lines

__all__ = ["add_parsers", "add_send_arguments", "preview", "send", "send_kwargs"]


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    pv = sub.add_parser(
        "preview",
        parents=[common],
        help=h("zeigen, was der Bestätigungsdialog zeigt", "show what the confirmation dialog shows"),
    )
    add_send_arguments(pv, h)
    pv.set_defaults(func=preview)
    sd = sub.add_parser("send", parents=[common], help=h("eine Mail senden", "send one mail"))
    add_send_arguments(sd, h)
    add_confirm_arguments(sd, h)
    sd.set_defaults(func=send)


def preview(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        shown = mailer.preview(args.purpose, **send_kwargs(args))
        out.emit(preview_dict(shown), lambda: render_preview(shown, mailer.lang, body_lines=200))
    return 0


def send(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        interactive = sys.stdin.isatty() and not out.json and args.data != "-"
        result = mailer.send(
            args.purpose, resend=args.resend, assume_yes=args.yes, interactive=interactive, **send_kwargs(args)
        )
        data = {"ok": result.status.value == "sent", "exit_code": result.exit_code, **result.to_dict(out.lang)}
        line = not_sent_line(data, out.lang)
        if line is not None and not out.json:
            out.note(line)
        if not out.json:
            for warning in data.get("warnings") or []:
                out.note(f"{out.t('Warnung', 'warning')}: {warning}")
        out.emit(data, lambda: sent_lines(data, out.lang))
        return result.exit_code
