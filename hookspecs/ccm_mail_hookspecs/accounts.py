"""Account types: what an admin fills in, and how a transport is built from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .text import T
from .transport import Expiry, Transport


@dataclass(frozen=True, slots=True)
class Field:
    """One form field of an account type. AbSys renders its account form from these.

    :param name: key in the YAML account section.
    :param secret: value is a secret: may come from ``{env: VAR}`` / ``{file: PATH}``, is never
        shown or logged.
    :param help: where to find the value, e.g. "Entra → App-Registrierungen → Übersicht".
    :param choices: allowed values, if the field is a choice.
    :param kind: ``"text"``, ``"email"``, ``"int"``, ``"bool"``, ``"path"``, ``"choice"``, or
        ``"date"`` (since 1.4: ``2027-03-31`` or ``31.03.2027``; the transport gets a timezone-aware
        ``datetime`` at the end of that day, UTC).
    """

    name: str
    label: T
    required: bool = True
    secret: bool = False
    help: T | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    kind: str = "text"

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label.get(lang),
            "required": self.required,
            "secret": self.secret,
            "help": self.help.get(lang) if self.help else None,
            "default": self.default,
            "choices": list(self.choices),
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """A configured account as the transport sees it.

    :param values: the fields' values, secrets already resolved, defaults filled in.
    :param state_dir: a private folder for this account (owner-only), e.g. for a token cache.
    :param lang: language of messages for people.
    """

    name: str
    type: str
    values: Mapping[str, Any]
    state_dir: Path
    lang: str = "de"
    secret_fields: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # never show secrets, even in a traceback's locals
        shown = {k: ("***" if k in self.secret_fields else v) for k, v in self.values.items()}
        return f"AccountSettings(name={self.name!r}, type={self.type!r}, values={shown!r})"


#: validates an account's values beyond required/choices; returns problems as (field, text)
Validator = Callable[[Mapping[str, Any]], Sequence[tuple[str, T]]]


@dataclass(frozen=True, slots=True)
class AccountType:
    """A kind of mail account (e.g. "Office 365", "SMTP").

    :param id: the ``type:`` value in the YAML, lower case, unique across plugins.
    :param create_transport: builds a :class:`Transport` for one configured account.
    :param validate: optional extra checks (e.g. "secret or certificate, not both").
    :param sender_field: the field holding the sending address (From); when empty the host takes
        the first field of kind ``"email"``.
    :param actions: extra admin actions this type offers, e.g. ``{"consent": fn}``; each takes
        ``(settings, **options)`` and returns a dict for the caller.
    :param expiry: when the account's credential expires, from its values alone (a date in the
        config, a certificate's notAfter read from the file), without any network: the host
        asks it in ``config check`` and before every send. None, or returning None: unknown.
        Since 1.4.
    """

    id: str
    label: T
    fields: tuple[Field, ...]
    create_transport: Callable[[AccountSettings], Transport]
    validate: Validator | None = None
    description: T | None = None
    sender_field: str = ""
    actions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    expiry: Callable[[Mapping[str, Any]], Expiry | None] | None = None

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def sender_field_name(self) -> str | None:
        if self.sender_field:
            return self.sender_field
        return next((f.name for f in self.fields if f.kind == "email"), None)

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label.get(lang),
            "description": self.description.get(lang) if self.description else None,
            "fields": [f.to_dict(lang) for f in self.fields],
            "actions": sorted(self.actions),
        }
