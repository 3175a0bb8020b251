"""``ccm-mail``: the command line for admins, for AbSys and for scripts.

Every command takes ``--json`` for one machine-readable answer on stdout (docs/cli.md); exit codes
are :class:`ccm_mail_core.results.ExitCode`, decided in one place (:func:`exit_code_for`). The
language of every line: ``--lang``, else ``CCM_MAIL_LANG``, else the config's ``language``, else
German.

Plugins add commands through the ``ccm_mail_commands`` hook (e.g. ``serve`` from
ccm-mail-server); they are asked only when the command line names a command that is not built in,
or asks for the overall help. With ``--server URL`` (or ``$CCM_MAIL_SERVER``) ``send`` and
``preview`` go to that ``ccm-mail serve`` service (:mod:`.client`): no plugin, no YAML and no
provider library is loaded for them. This module therefore imports the command machinery only
inside its functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .argv import CLIENT_COMMANDS, CORE_COMMANDS, command_word, explicit_lang, option, server_url
from .parser import Help, Parser, helper

if TYPE_CHECKING:
    from ccm_mail_hookspecs import Command

    from .output import Out

DEFAULT_CONFIG = "ccm-mail.yaml"


def language(argv: Sequence[str]) -> str:
    """The language before anything is parsed (for --help and argparse's errors): ``--lang``,
    ``CCM_MAIL_LANG``, the config file's ``language:``, German."""
    lang = explicit_lang(argv)
    if lang is not None:
        return lang
    raw = _raw_config(argv)
    found = raw.get("language") if raw is not None else None
    return found if found in ("de", "en") else "de"


def _raw_config(argv: Sequence[str]) -> Any:
    from ..config import ConfigProblems, read_raw

    path = Path(option(argv, "--config") or option(argv, "-c") or os.environ.get("CCM_MAIL_CONFIG") or DEFAULT_CONFIG)
    try:
        return read_raw(path) if path.is_file() else None
    except ConfigProblems:
        return None


def common_options(h: Help, *, suppress: bool) -> argparse.ArgumentParser:
    """The global options, accepted before and after the command."""
    d = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        "-c",
        default=d,
        help=h(
            "YAML-Konfiguration (Standard: $CCM_MAIL_CONFIG oder ./ccm-mail.yaml)",
            "YAML configuration (default: $CCM_MAIL_CONFIG or ./ccm-mail.yaml)",
        ),
    )
    p.add_argument("--lang", choices=("de", "en"), default=d, help=h("Sprache der Ausgabe", "language of the output"))
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help=h("Ausgabe als JSON (stabile Schlüssel, docs/cli.md)", "JSON output (stable keys, docs/cli.md)"),
    )
    p.add_argument("--log-format", choices=("console", "json"), default=d, help=h("Log-Format", "log format"))
    p.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default=d, help=h("Log-Stufe", "log level")
    )
    p.add_argument(
        "--server",
        metavar="URL",
        default=d,
        help=h(
            "send/preview über den Dienst 'ccm-mail serve' (Standard: $CCM_MAIL_SERVER)",
            "send/preview through the 'ccm-mail serve' service (default: $CCM_MAIL_SERVER)",
        ),
    )
    p.add_argument(
        "--api-key-file",
        metavar="FILE",
        default=d,
        help=h(
            "Datei mit dem API-Schlüssel des Dienstes (sonst $CCM_MAIL_API_KEY)",
            "file holding the service's API key (else $CCM_MAIL_API_KEY)",
        ),
    )
    return p


def build_parser(
    lang: str = "de", *, json_errors: bool = False, plugin_commands: bool = True, blocked: Sequence[str] = ()
) -> Parser:
    """The whole command line; with ``plugin_commands`` the plugins' commands too (this loads
    the installed plugins, except ``blocked`` ones)."""
    from . import accounts, admin, archive, batch, journal, secrets, send, settings

    h = helper(lang)
    parser = Parser(
        prog="ccm-mail",
        parents=[common_options(h, suppress=False)],
        lang=lang,
        json_errors=json_errors,
        description=h(
            "ccm_Mail für AbSys: Mailversand über Microsoft 365 (OAuth 2.0) und weitere Anbieter.",
            "ccm_Mail for AbSys: sending mail through Microsoft 365 (OAuth 2.0) and further providers.",
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar=h("BEFEHL", "COMMAND"))
    common = common_options(h, suppress=True)
    for group in (admin, accounts, settings, secrets, send, batch, journal, archive):
        group.add_parsers(sub, common, h)
    if plugin_commands:
        from ..plugins import collect_commands, make_plugin_manager

        for command in collect_commands(make_plugin_manager(blocked=blocked), taken=sub.choices):
            p = sub.add_parser(command.name, parents=[common], help=command.help.get(lang))
            command.arguments(p, h)
            p.set_defaults(func=_plugin_command(command))
    return parser


def _plugin_command(command: Command) -> Any:
    def run(args: argparse.Namespace, out: Out) -> int:
        from .context import config_path

        args.config = str(config_path(args))
        return command.run(args, out)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .output import attach_missing_streams, setup_streams

    attach_missing_streams()
    setup_streams()
    word = command_word(argv)
    url, explicit = server_url(argv)
    if url and word in CLIENT_COMMANDS:
        from .client import main as client_main

        return client_main(argv, url)
    return _local(argv, word, server_given=explicit)


def _local(argv: list[str], word: str | None, *, server_given: bool) -> int:
    import structlog

    from ccm_mail_hookspecs import CcmMailError, T

    from .. import logging_setup
    from ..config import blocked_plugins
    from ..results import ExitCode, exit_code_for
    from .output import Out

    lang = language(argv)
    out = Out(json_output="--json" in argv, lang=lang)
    try:
        plugins = word is None or word not in CORE_COMMANDS
        raw = _raw_config(argv) if plugins else None
        parser = build_parser(
            lang, json_errors=out.json, plugin_commands=plugins, blocked=blocked_plugins(raw) if raw is not None else ()
        )
    except CcmMailError as exc:  # a plugin's commands hook failed
        return out.error(exc, exit_code_for(exc))
    args = parser.parse_args(argv)
    out = Out(json_output=bool(args.json), lang=args.lang or lang)
    if server_given:
        return out.error(
            CcmMailError(
                T(
                    f"'{args.command}' läuft nicht über --server; nur {', '.join(sorted(CLIENT_COMMANDS))}.",
                    f"'{args.command}' does not run through --server; only {', '.join(sorted(CLIENT_COMMANDS))} do.",
                ),
                hint=T(
                    "Ohne --server auf dem Rechner des Dienstes ausführen, oder die "
                    "HTTP-Schnittstelle nutzen (docs/server.md).",
                    "Run it without --server on the service's machine, or use the HTTP API (docs/server.md).",
                ),
            ),
            ExitCode.CONFIG,
        )
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
        return out.error(
            CcmMailError(
                T(f"Interner Fehler: {type(exc).__name__}: {exc}", f"internal error: {type(exc).__name__}: {exc}"),
                hint=T("Bitte mit dem Log an den Support melden.", "Please report it with the log."),
            ),
            exit_code_for(exc),
        )


__all__ = ["build_parser", "main"]
