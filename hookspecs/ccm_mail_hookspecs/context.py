"""What hooks learn about the send in progress, and placeholders."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import TemplateError
from .message import Message
from .text import T


@dataclass(frozen=True, slots=True)
class SendContext:
    """The send in progress.

    :param purpose: e.g. ``"invoice"`` (*Rechnungsversand*) or ``"eservice"``.
    :param account: name of the account sending it.
    :param reference: the business reference, e.g. the invoice number; may be empty.
    :param data: the send data (invoice fields) the placeholders were filled from.
    :param journal_id: the journal row of this message (0 while previewing).
    :param interactive: a person is at a terminal and may be asked.
    :param assume_yes: ``--yes`` was given: confirmation is pre-answered.
    """

    purpose: str
    account: str
    account_type: str
    reference: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    lang: str = "de"
    journal_id: int = 0
    interactive: bool = False
    assume_yes: bool = False


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A placeholder AbSys offers for click-insert, e.g. ``#extRechnungsNr#``.

    :param resolve: returns the value for a send, or None when the send data has none (then the
        host refuses to send a template that uses it).
    :param purposes: the purposes it applies to; empty means all.
    """

    name: str
    description: T
    example: str
    resolve: Callable[[SendContext], str | None]
    purposes: frozenset[str] = frozenset()

    def applies_to(self, purpose: str) -> bool:
        return not self.purposes or purpose in self.purposes

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "token": f"#{self.name}#",
            "description": self.description.get(lang),
            "example": self.example,
            "purposes": sorted(self.purposes),
        }


def data_field(name: str, description: T, example: str, *, purposes: frozenset[str] = frozenset()) -> Placeholder:
    """A placeholder filled from the send data field of the same name: text, a number (a Python
    host's Decimal or date too) or empty. A list, an object, true/false, bytes or NaN raise
    :class:`TemplateError`: they would reach the customer's mail as Python's spelling of them
    (``{'a': 1}``, ``True``, ``nan``). Since 1.4.1."""

    def resolve(ctx: SendContext) -> str | None:
        value = ctx.data.get(name)
        odd = isinstance(value, bool | bytes | Mapping | list | tuple | set) or (
            isinstance(value, float) and not math.isfinite(value)
        )
        if odd:
            raise TemplateError(
                T(
                    f"Feld {name!r} der Sendedaten ist {type(value).__name__} ({str(value)[:40]!r}), kein Text und "
                    "keine Zahl. Nichts gesendet.",
                    f"field {name!r} of the send data is {type(value).__name__} ({str(value)[:40]!r}), neither "
                    "text nor a number. Nothing sent.",
                ),
                hint=T('Den Wert als Text übergeben, z. B. "1.234,56 €".', 'Pass the value as text, e.g. "1,234.56".'),
            )
        return None if value is None or value == "" else str(value)

    return Placeholder(name, description, example, resolve, purposes)


@dataclass(frozen=True, slots=True)
class Preview:
    """What the confirmation dialog shows: the rendered message and where it goes."""

    message: Message
    context: SendContext
    account_label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cancel:
    """Returned by a prepare hook to stop the send; nothing is sent and the cancel is journaled."""

    reason: T
