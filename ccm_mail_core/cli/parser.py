"""argparse in the user's language: help texts, headings and argparse's own error messages in
German or English (argparse itself only speaks English)."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ccm_mail_hookspecs import T

#: a help text in the parser's language
Help = Callable[[str, str], str]

# argparse's own messages (CPython 3.11–3.13), as patterns, and their German text
_MESSAGES = (
    (r"the following arguments are required: (.*)", "folgende Angaben fehlen: {0}"),
    (r"unrecognized arguments: (.*)", "unbekannte Angaben: {0}"),
    (r"argument (.*?): invalid choice: (.*?) \(choose from (.*)\)", "Angabe {0}: ungültige Auswahl {1} (möglich: {2})"),
    (r"argument (.*?): expected one argument", "Angabe {0}: erwartet einen Wert"),
    (r"argument (.*?): invalid (\w+) value: (.*)", "Angabe {0}: ungültiger Wert {2} ({1} erwartet)"),
    (r"argument (.*?): not allowed with argument (.*)", "Angabe {0}: nicht zusammen mit {1}"),
    (r"argument (.*?): ignored explicit argument (.*)", "Angabe {0}: überzähliger Wert {1}"),
)


def translate(message: str, lang: str) -> str:
    for pattern, german in _MESSAGES:
        m = re.fullmatch(pattern, message)
        if m:
            return T(german.format(*m.groups()), message).get(lang)
    return message


class _Formatter(argparse.HelpFormatter):
    lang = "de"

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, T("Aufruf: ", "usage: ").get(self.lang) if prefix is None else prefix)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose own texts follow ``lang``; errors honour ``--json``."""

    def __init__(self, *args: Any, lang: str = "de", json_errors: bool = False, **kwargs: Any) -> None:
        add_help = kwargs.get("add_help", True)
        kwargs.update(add_help=False, formatter_class=type("Formatter", (_Formatter,), {"lang": lang}))
        super().__init__(*args, **kwargs)
        self.lang = lang
        self.json_errors = json_errors
        self._positionals.title = T("Argumente", "positional arguments").get(lang)
        self._optionals.title = T("Optionen", "options").get(lang)
        if add_help:
            self.add_argument(
                "-h",
                "--help",
                action="help",
                default=argparse.SUPPRESS,
                help=T("diese Hilfe zeigen", "show this help and exit").get(lang),
            )

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", functools.partial(Parser, lang=self.lang, json_errors=self.json_errors))
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> NoReturn:
        text = translate(message, self.lang)
        if self.json_errors:
            print(
                json.dumps(
                    {
                        "ok": False,
                        "exit_code": 2,
                        "error": {
                            "kind": "usage",
                            "sent": False,
                            "message": text,
                            "hint": self.format_usage().strip(),
                            "details": {},
                        },
                    },
                    ensure_ascii=True,
                    indent=2,
                )
            )
            self.exit(2)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {T('Fehler', 'error').get(self.lang)}: {text}\n")


def helper(lang: str) -> Help:
    return lambda de, en: T(de, en).get(lang)
