"""The account form, generated from the account type's field schema (``GET
/api/v1/accounts/types``): which fields the seed showed and which are folded away, what a
submitted form means as an API change, and which of config check's problems belongs to which
field.

The seed's form had only a few fields (Typ, Name, Mandanten-ID, E-Mail, Clientschlüssel). The
schema has no "advanced" flag, so the rule is: the type's required fields and its first secret
field (the usual credential) are shown; every other field, the sender name and the limits are
folded under "Erweitert". A folded section opens by itself when one of its fields has a value
that differs from its default or has an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccm_mail_core.config.validate import LIMIT_KEYS
from ccm_mail_core.pacing import DEFAULT_LIMITS
from ccm_mail_hookspecs import T

from .common import t

LIMIT_LABELS = {
    "messages": (
        T("Mails je Zeitfenster", "Messages per window"),
        T("Exchange Online: 30 je Minute.", "Exchange Online: 30 per minute."),
    ),
    "per_seconds": (T("Zeitfenster (Sekunden)", "Window (seconds)"), None),
    "recipients_per_day": (
        T("Empfänger je Tag", "Recipients per day"),
        T(
            "Exchange Online: 10.000; darüber sperrt Microsoft das Postfach für 24 Stunden.",
            "Exchange Online: 10,000; above it Microsoft blocks the mailbox for 24 hours.",
        ),
    ),
    "concurrency": (T("Gleichzeitige Sendungen", "Concurrent sends"), None),
    "recipients_per_message": (
        T("Empfänger je Mail", "Recipients per message"),
        T("Exchange Online: 500.", "Exchange Online: 500."),
    ),
}


@dataclass(slots=True)
class FormField:
    name: str  #: the form input's name
    key: str  #: where it goes: a field name, "from_name" or "limits.<key>"
    label: str
    help: str | None = None
    required: bool = False
    secret: bool = False
    kind: str = "text"
    choices: list[str] = field(default_factory=list)
    default: Any = None
    value: str = ""  #: what the input shows (never a secret)
    stored: Any = None  #: what the file has now (a secret only as {"secret": True, "source": …})
    errors: list[str] = field(default_factory=list)
    advanced: bool = False

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")

    @property
    def secret_source(self) -> str | None:
        if isinstance(self.stored, dict) and self.stored.get("secret"):
            return str(self.stored.get("source") or "")
        return None

    @property
    def shown_default(self) -> str:
        """The default as people write it (60, not 60.0)."""
        if isinstance(self.default, float) and self.default.is_integer():
            return str(int(self.default))
        return _text(self.default)

    @property
    def differs(self) -> bool:
        return self.value not in ("", _text(self.default))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_fields(atype: Mapping[str, Any], stored: Mapping[str, Any]) -> list[FormField]:
    """The form's fields for one account type, filled from the account as the file has it."""
    fields: list[FormField] = []
    first_secret = next((f["name"] for f in atype["fields"] if f.get("secret")), None)
    for spec in atype["fields"]:
        name = spec["name"]
        current = stored.get(name)
        shown = "" if spec.get("secret") or isinstance(current, dict) else _text(current)
        fields.append(
            FormField(
                name=f"f.{name}",
                key=name,
                label=spec["label"],
                help=spec.get("help"),
                required=bool(spec["required"]),
                secret=bool(spec.get("secret")),
                kind=spec.get("kind") or "text",
                choices=list(spec.get("choices") or []),
                default=spec.get("default"),
                value=shown,
                stored=current,
                advanced=not (spec["required"] or name == first_secret),
            )
        )
    fields.append(
        FormField(
            name="from_name",
            key="from_name",
            label=t("Anzeigename des Absenders", "Sender name"),
            help=t(
                "Erscheint beim Empfänger vor der Adresse, z. B. „codicon GmbH Buchhaltung“.",
                'Shown to the recipient before the address, e.g. "codicon GmbH Accounts".',
            ),
            value=_text(stored.get("from_name")),
            stored=stored.get("from_name"),
            advanced=True,
        )
    )
    limits: Mapping[str, Any] = stored["limits"] if isinstance(stored.get("limits"), dict) else {}
    lang = "en" if t("de", "en") == "en" else "de"
    for key in LIMIT_KEYS:
        label, help_ = LIMIT_LABELS[key]
        fields.append(
            FormField(
                name=f"limit.{key}",
                key=f"limits.{key}",
                label=label.get(lang),
                help=help_.get(lang) if help_ else None,
                kind="float" if key == "per_seconds" else "int",
                default=getattr(DEFAULT_LIMITS, key),
                value=_text(limits.get(key)),
                stored=limits.get(key),
                advanced=True,
            )
        )
    return fields


def _typed(kind: str, text: str) -> Any:
    """A form's text as the schema's kind wants it; what does not convert goes as typed, and
    config check words the problem at the field."""
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "float":
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return text
    if kind == "bool":
        return text == "true"
    return text


def change_from_form(fields: list[FormField], form: Mapping[str, str], *, new: bool) -> dict[str, Any]:
    """The API change (``PUT /api/v1/settings/accounts/{name}``) a submitted form asks for: what
    differs from the file (a new account: everything filled in), an emptied field removed, a
    secret only when one was typed."""
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    limits: dict[str, Any] = {}
    from_name: str | None = None
    for f in fields:
        if f.kind == "bool":
            text = "true" if form.get(f.name) else "false"
        else:
            text = str(form.get(f.name, "")).strip()
        if f.secret:
            if text:
                secrets[f.key] = text
            continue
        if isinstance(f.stored, dict) and not text:
            continue  # kept where it is ({env: …}, {file: …}); typing a value replaces it
        before = _text(f.stored)
        if text == before and not new:
            continue
        if f.kind == "bool" and new and text == _text(f.default or False):
            continue
        if f.key == "from_name":
            if text or not new:
                from_name = text
            continue
        if not text:
            if not new and f.stored is not None:
                (limits if f.key.startswith("limits.") else values)[f.key.removeprefix("limits.")] = None
            continue
        (limits if f.key.startswith("limits.") else values)[f.key.removeprefix("limits.")] = _typed(f.kind, text)
    change: dict[str, Any] = {"values": values}
    if secrets:
        change["secrets"] = secrets
    if limits:
        change["limits"] = limits
    if from_name is not None:
        change["from_name"] = from_name
    return change


def refill(fields: list[FormField], form: Mapping[str, str]) -> None:
    """After a refused save: the inputs show what was typed (never a secret)."""
    for f in fields:
        if not f.secret:
            f.value = "true" if f.kind == "bool" and form.get(f.name) else str(form.get(f.name, "")).strip()


def place_problems(fields: list[FormField], account: str, problems: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each problem at its field; returns the ones that belong to no field (shown above the form).
    Problem keys are config check's: ``accounts.<name>.<field>`` or ``accounts.<name>.limits.<key>``."""
    by_key = {f.key: f for f in fields}
    prefix = f"accounts.{account}."
    loose: list[dict[str, str]] = []
    for p in problems:
        text = str(p.get("message") or "")
        if p.get("hint"):
            text += " – " + str(p["hint"])
        key = str(p.get("key") or "")
        target = by_key.get(key[len(prefix) :]) if key.startswith(prefix) else None
        if target is not None:
            target.errors.append(text)
        else:
            loose.append({"key": key, "text": text})
    return loose
