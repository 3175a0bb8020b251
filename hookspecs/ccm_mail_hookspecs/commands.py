"""Subcommands a plugin adds to ``ccm-mail`` (plugin API 1.3), e.g. ``ccm-mail serve``.

A plugin registers a :class:`Command` from :func:`~ccm_mail_hookspecs.spec.ccm_mail_commands`;
the host adds it to its argparse parser next to the built-in commands, with the global options
(``--config``, ``--lang``, ``--json``, ``--log-format``, ``--log-level``), and calls ``run`` with
the parsed arguments and the host's output object. The plugin module is imported while the
command line is parsed: import heavy libraries inside ``run``, not at module level.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .text import T

#: a help text in the command line's language: ``h("deutsch", "english")``
HelpText = Callable[[str, str], str]


class CommandOutput(Protocol):
    """What ``run`` writes through (the host's own ``--json``-aware output)."""

    #: "de" or "en": the language of every line
    lang: str
    #: True with ``--json``: ``emit`` writes exactly one ASCII JSON document to stdout
    json: bool

    def t(self, de: str, en: str) -> str:
        """The text in the output's language."""
        ...

    def emit(self, data: Any, human: Callable[[], str] | str) -> None:
        """The command's answer: ``data`` as JSON with ``--json``, else ``human`` for people."""
        ...

    def note(self, text: str) -> None:
        """A line for the person at the terminal (stderr), also with ``--json``."""
        ...


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand.

    :param name: the word after ``ccm-mail`` (lower case, unique among all commands).
    :param help: the one-line help shown by ``ccm-mail --help``.
    :param arguments: adds the command's own arguments to its parser; the second argument
        gives help texts in the command line's language.
    :param run: does the work and returns the exit code
        (:class:`ccm_mail_core.results.ExitCode`). ``args.config`` is the configuration file's
        path as the host resolved it (``--config``, ``$CCM_MAIL_CONFIG`` or ``ccm-mail.yaml``).
        A :class:`~ccm_mail_hookspecs.errors.CcmMailError` it raises is shown like any other
        error of the command line, with its exit code.
    """

    name: str
    help: T
    arguments: Callable[[argparse.ArgumentParser, HelpText], None]
    run: Callable[[argparse.Namespace, CommandOutput], int]
