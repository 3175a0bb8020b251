"""AbSys templates: ``#Name#`` placeholders, ``##`` for a literal ``#``."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ccm_mail_hookspecs import T, TemplateError

_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_TOKEN = re.compile(rf"##|#({_NAME})#|#")


def is_valid_name(name: str) -> bool:
    """Whether ``name`` can be a placeholder (``#name#``): letters, digits, ``_ . -``."""
    return re.fullmatch(_NAME, name) is not None


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template; ``parts`` alternate literal text and placeholder names."""

    source: str
    parts: tuple[tuple[bool, str], ...]  # (is_placeholder, text-or-name)

    @property
    def names(self) -> list[str]:
        seen: list[str] = []
        for is_ph, name in self.parts:
            if is_ph and name not in seen:
                seen.append(name)
        return seen

    def render(self, resolve: Callable[[str], str | None], *, escape_html: bool = False) -> str:
        """Fill in every placeholder. Raises :class:`TemplateError` naming all that have no value."""
        missing = []
        out = []
        for is_ph, text in self.parts:
            if not is_ph:
                out.append(text)
                continue
            value = resolve(text)
            if value is None:
                missing.append(text)
                continue
            out.append(html.escape(value, quote=True) if escape_html else value)
        if missing:
            names = ", ".join(f"#{n}#" for n in dict.fromkeys(missing))
            raise TemplateError(
                T(
                    f"Kein Wert für Platzhalter {names}; nichts wurde gesendet.",
                    f"No value for placeholder {names}; nothing was sent.",
                ),
                hint=T(
                    "Die Felder in den Sendedaten (--data) angeben.", "Supply these fields in the send data (--data)."
                ),
                details={"missing": list(dict.fromkeys(missing))},
            )
        return "".join(out)


def parse(source: str) -> Template:
    """Parse a template; a lone ``#`` that starts no placeholder is an error (likely a typo)."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _TOKEN.finditer(source):
        if m.start() > pos:
            parts.append((False, source[pos : m.start()]))
        token = m.group(0)
        if token == "##":
            parts.append((False, "#"))
        elif m.group(1):
            parts.append((True, m.group(1)))
        else:
            column = m.start() + 1
            raise TemplateError(
                T(
                    f"Einzelnes '#' an Stelle {column} in {source!r}: Platzhalter nicht geschlossen?",
                    f"Lone '#' at position {column} in {source!r}: unclosed placeholder?",
                ),
                hint=T(
                    "Platzhalter als #Name# schreiben; ein '#' im Text als '##'.",
                    "Write placeholders as #Name#; write a literal '#' as '##'.",
                ),
            )
        pos = m.end()
    if pos < len(source):
        parts.append((False, source[pos:]))
    merged: list[tuple[bool, str]] = []
    for part in parts:  # join neighbouring literals so rendering is one pass
        if merged and not part[0] and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + part[1])
        else:
            merged.append(part)
    return Template(source, tuple(merged))


def unknown_names(template: Template, known: Mapping[str, object]) -> list[str]:
    return [n for n in template.names if n not in known]
