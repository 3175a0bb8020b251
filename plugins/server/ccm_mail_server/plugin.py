"""Entry point module (``ccm_mail`` group, name ``server``): the ``serve`` command and the
validation of ``plugins.settings.server``. Light on purpose: the command line imports it while it
parses; the server itself is imported when ``serve`` runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ccm_mail_hookspecs import Command, CommandOutput, ConfigError, T, hookimpl
from ccm_mail_hookspecs.commands import HelpText

#: the plugin API major version this plugin was written for
CCM_MAIL_API = 1


def _arguments(parser: argparse.ArgumentParser, h: HelpText) -> None:
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=h(
            "Adresse (Standard: plugins.settings.server.listen oder 127.0.0.1:8410)",
            "address (default: plugins.settings.server.listen or 127.0.0.1:8410)",
        ),
    )
    parser.add_argument(
        "--new-key",
        choices=("send", "settings", "all"),
        help=h(
            "neuen API-Schlüssel erzeugen (der alte gilt sofort nicht mehr), zeigen und beenden",
            "make a new API key (the old one stops working at once), show it and exit",
        ),
    )
    parser.add_argument(
        "--show-keys", action="store_true", help=h("die API-Schlüssel zeigen und beenden", "show the API keys and exit")
    )


def _run(args: argparse.Namespace, out: CommandOutput) -> int:
    from .command import run

    return run(args, out)


@hookimpl
def ccm_mail_commands(register: Callable[[Command], None]) -> None:
    register(
        Command(
            "serve",
            T(
                "Dienst für AbSys starten (JSON-API, ein Journal für alle Arbeitsplätze)",
                "run the service for AbSys (JSON API, one journal for every workstation)",
            ),
            _arguments,
            _run,
        )
    )


@hookimpl
def ccm_mail_configure(settings: Mapping[str, Any], lang: str) -> None:
    from .settings import ServerSettings

    problems = ServerSettings.problems_of(settings)
    if problems:
        raise ConfigError(
            T("; ".join(p.de for p in problems), "; ".join(p.en for p in problems)),
            hint=T("Siehe docs/server.md.", "See docs/server.md."),
        )
