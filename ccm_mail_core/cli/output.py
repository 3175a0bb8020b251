"""What the CLI writes: results for people (in their language) or one JSON document for
programs, and errors; every byte passes the redaction first.

Encoding contract (AbSys captures the output with a German code page): ``--json`` is ASCII-only
JSON (``\\u`` escapes), safe in any code page. Human text never fails on an encoding: UTF-8 when
stdout/stderr is not a console, the console's code page with ``?`` for what it cannot show
otherwise; a caller that sets ``PYTHONIOENCODING`` gets that encoding, again with replacement.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from ccm_mail_hookspecs import CcmMailError, T

from ..redaction import scrub


def setup_streams() -> None:
    """Make stdout and stderr unable to raise UnicodeEncodeError (see the module docstring)."""
    explicit = os.environ.get("PYTHONIOENCODING", "")
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):
            continue  # replaced by a host or a test harness: theirs to handle
        if explicit or stream.isatty():
            stream.reconfigure(errors="replace")
        else:
            stream.reconfigure(encoding="utf-8", errors="replace")


def attach_missing_streams() -> None:
    """A caller that passes no stdin, stdout or stderr handle (a GUI program starting ccm-mail,
    ``<&-``) gets the null device there: reading finds nothing, writing is lost, nothing crashes."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115 - for the process' life


def _print(text: str, stream: Any) -> None:
    """The reader went away (``| head -c1``, AbSys closed its end): the text is lost, the exit
    code is not. After a send the mail is out, and exit 1 would say it is not."""
    try:
        print(text, file=stream, flush=True)
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EINVAL:  # EINVAL: Windows' closed pipe
            raise
        try:  # the interpreter's flush at exit must not fail on it again
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def to_json(data: Any) -> str:
    return scrub(json.dumps(data, ensure_ascii=True, indent=2, default=str))


class Out:
    """Writes a command's answer to stdout and notes and errors to stderr."""

    def __init__(self, *, json_output: bool, lang: str) -> None:
        self.json = json_output
        self.lang = lang

    def t(self, de: str, en: str) -> str:
        return T(de, en).get(self.lang)

    def emit(self, data: Any, human: Callable[[], str] | str) -> None:
        if self.json:
            _print(to_json(data), sys.stdout)
            return
        text = human() if callable(human) else human
        if text:
            _print(scrub(text), sys.stdout)

    def document(self, payload: Any) -> None:
        """Write an answer that is already the ``--json`` document (the service's own)."""
        _print(to_json(payload), sys.stdout)

    def note(self, text: str) -> None:
        """A line for the person at the terminal (stderr), also with ``--json``."""
        _print(scrub(text), sys.stderr)

    def error(self, exc: CcmMailError, code: int, **extra: Any) -> int:
        from ..config import ConfigProblems  # here: the service's client prints errors without the config machinery

        if self.json:
            payload: dict[str, Any] = {"ok": False, "exit_code": code, "error": exc.to_dict(self.lang), **extra}
            if isinstance(exc, ConfigProblems):
                payload["problems"] = [p.to_dict(self.lang) for p in exc.problems]
            _print(to_json(payload), sys.stdout)
        else:
            self.note(f"{self.t('Fehler', 'Error')}: {exc.render(self.lang)}")
        return code
