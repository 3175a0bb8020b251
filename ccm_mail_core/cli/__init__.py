"""``ccm-mail``: the command line for admins, for AbSys and for scripts.

Every command takes ``--json`` for one machine-readable answer on stdout (docs/cli.md); exit codes
are :class:`ccm_mail_core.results.ExitCode`, decided in one place (:func:`exit_code_for`). The
language of every line: ``--lang``, else ``CCM_MAIL_LANG``, else the config's ``language``, else
German.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from ccm_mail_hookspecs import CcmMailError, T

from .. import logging_setup
from ..config import ConfigProblems, read_raw
from ..results import exit_code_for
from . import accounts, admin, batch, journal, secrets, send
from .context import DEFAULT_CONFIG
from .output import Out, setup_streams
from .parser import Help, Parser, helper

COMMAND_GROUPS = (admin, accounts, secrets, send, batch, journal)


def language(argv: Sequence[str]) -> str:
    """The language before anything is parsed (for --help and argparse's errors): ``--lang``,
    ``CCM_MAIL_LANG``, the config file's ``language:``, German."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in ("de", "en") else "de"
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1] if arg.split("=", 1)[1] in ("de", "en") else "de"
    env = os.environ.get("CCM_MAIL_LANG")
    if env in ("de", "en"):
        return env
    path = Path(next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--config", "-c")), "")
                or os.environ.get("CCM_MAIL_CONFIG") or DEFAULT_CONFIG)
    try:
        lang = read_raw(path).get("language") if path.is_file() else None
    except ConfigProblems:
        lang = None
    return lang if lang in ("de", "en") else "de"


def _common(h: Help, *, suppress: bool) -> argparse.ArgumentParser:
    """The global options, accepted before and after the command."""
    d = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", "-c", default=d, help=h("YAML-Konfiguration (Standard: $CCM_MAIL_CONFIG oder "
                                                       "./ccm-mail.yaml)",
                                                       "YAML configuration (default: $CCM_MAIL_CONFIG or ./ccm-mail.yaml)"))
    p.add_argument("--lang", choices=("de", "en"), default=d, help=h("Sprache der Ausgabe", "language of the output"))
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                   help=h("Ausgabe als JSON (stabile Schlüssel, docs/cli.md)", "JSON output (stable keys, docs/cli.md)"))
    p.add_argument("--log-format", choices=("console", "json"), default=d, help=h("Log-Format", "log format"))
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=d,
                   help=h("Log-Stufe", "log level"))
    return p


def build_parser(lang: str = "de", *, json_errors: bool = False) -> Parser:
    h = helper(lang)
    parser = Parser(prog="ccm-mail", parents=[_common(h, suppress=False)], lang=lang, json_errors=json_errors,
                    description=h("ccm_Mail für AbSys: Mailversand über Microsoft 365 (OAuth 2.0) und weitere Anbieter.",
                                  "ccm_Mail for AbSys: sending mail through Microsoft 365 (OAuth 2.0) and further "
                                  "providers."))
    sub = parser.add_subparsers(dest="command", required=True, metavar=h("BEFEHL", "COMMAND"))
    common = _common(h, suppress=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(sub, common, h)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_streams()
    lang = language(argv)
    args = build_parser(lang, json_errors="--json" in argv).parse_args(argv)
    out = Out(json_output=bool(args.json), lang=args.lang or lang)
    # until a config says otherwise, only warnings reach the terminal
    logging_setup.configure(fmt=args.log_format or "console", level=args.log_level or "warning")
    try:
        return int(args.func(args, out))
    except CcmMailError as exc:
        return out.error(exc, exit_code_for(exc))
    except KeyboardInterrupt:
        out.note(out.t("Abgebrochen.", "Interrupted."))
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the traceback for the log
        structlog.get_logger("ccm_mail").exception("internal_error")
        return out.error(CcmMailError(T(f"Interner Fehler: {type(exc).__name__}: {exc}",
                                        f"internal error: {type(exc).__name__}: {exc}"),
                                      hint=T("Bitte mit dem Log an den Support melden.", "Please report it with the log.")),
                         exit_code_for(exc))


__all__ = ["build_parser", "main"]
