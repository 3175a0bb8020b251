"""What the command line asks for, read before anything heavy is imported: which command, and
whether it goes to a ``ccm-mail serve`` service (``--server URL`` or ``$CCM_MAIL_SERVER``).

Kept to the standard library, so a per-invoice call through the service starts in a fraction of
the time a local send needs (no plugins, no YAML, no msal).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

#: the built-in commands (a test checks this against the parser)
CORE_COMMANDS = frozenset(
    {
        "config",
        "plugins",
        "placeholders",
        "accounts",
        "secrets",
        "preview",
        "send",
        "batch",
        "journal",
        "outbox",
        "purposes",
        "templates",
        "archive",
    }
)
#: the commands ``--server`` sends to the service; the others always run here
CLIENT_COMMANDS = frozenset({"send", "preview"})
#: global options that take a value (the value is not the command word)
_VALUED = frozenset({"--config", "-c", "--lang", "--log-format", "--log-level", "--server", "--api-key-file"})

SERVER_ENV = "CCM_MAIL_SERVER"
API_KEY_ENV = "CCM_MAIL_API_KEY"
API_KEY_FILE_ENV = "CCM_MAIL_API_KEY_FILE"


def command_word(argv: Sequence[str]) -> str | None:
    """The first positional word (the command), or None (none given, or only ``--help``)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--":
            return None
        if arg.startswith("-"):
            skip = arg in _VALUED
            continue
        return arg
    return None


def option(argv: Sequence[str], name: str) -> str | None:
    """The value of a global option given as ``NAME VALUE`` or ``NAME=VALUE`` (the last wins)."""
    found = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


def server_url(argv: Sequence[str]) -> tuple[str | None, bool]:
    """The service's URL and whether it was given on the command line (not only in the environment)."""
    given = option(argv, "--server")
    if given is not None:
        return given, True
    return os.environ.get(SERVER_ENV) or None, False


def explicit_lang(argv: Sequence[str]) -> str | None:
    """``--lang`` or ``$CCM_MAIL_LANG`` when one of them says de or en."""
    lang = option(argv, "--lang") or os.environ.get("CCM_MAIL_LANG")
    return lang if lang in ("de", "en") else None
