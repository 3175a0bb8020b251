"""A purpose's own settings (``purposes:`` entries written as a mapping): the account or pool that
sends it, and the defaults every message of that purpose gets — reply-to, cc, an archive bcc,
send-as (``from``), Sent Items, receipts, e-invoice rule and the GoBD archive copy.

``invoice: Rechnungsversand`` and ``invoice: [A, B]`` keep meaning "these accounts, no defaults".

Address settings are templates (``reply_to: "#Sachbearbeiter#"``): rendered per send, then read
as strictly as a caller's address (:meth:`Address.parse` / :meth:`Address.parse_list`); ``from``
must be exactly one address. A literal address is checked here, when the file is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccm_mail_hookspecs import Address, AddressError, T, TemplateError

from .. import templates

if TYPE_CHECKING:
    from .load import LineDict

PURPOSE_KEYS = (
    "account",
    "reply_to",
    "cc",
    "bcc",
    "from",
    "save_to_sent",
    "request_read_receipt",
    "request_delivery_receipt",
    "einvoice",
    "archive",
)
ADDRESS_KEYS = ("reply_to", "cc", "bcc", "from")
FLAG_KEYS = ("save_to_sent", "request_read_receipt", "request_delivery_receipt")
EINVOICE_CHOICES = ("required", "optional")
ARCHIVE_KEYS = ("folder", "retention_years")
#: GoBD's conservative default; invoices (Buchungsbelege) must be kept 8 years since 2025, business
#: letters 6: the admin states what applies (docs/configuration.md)
DEFAULT_RETENTION_YEARS = 10


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """``archive: {folder, retention_years}``: every sent message as the exact ``.eml`` sent."""

    folder: Path
    retention_years: int = DEFAULT_RETENTION_YEARS


@dataclass(frozen=True, slots=True)
class PurposeConfig:
    """The defaults of one purpose (all empty for the short forms)."""

    purpose: str
    reply_to: templates.Template | None = None
    cc: templates.Template | None = None
    bcc: templates.Template | None = None
    sender: templates.Template | None = None  # ``from``
    save_to_sent: bool = True
    request_read_receipt: bool = False
    request_delivery_receipt: bool = False
    einvoice: str = "optional"
    archive: ArchiveConfig | None = None
    #: names of the placeholders the address templates use (checked once the placeholders are known)
    lines: Mapping[str, int] = field(default_factory=dict)

    def address_templates(self) -> dict[str, templates.Template]:
        found = {"reply_to": self.reply_to, "cc": self.cc, "bcc": self.bcc, "from": self.sender}
        return {k: v for k, v in found.items() if v is not None}


Add = Callable[..., None]


def pool_of(value: Any) -> Any:
    """The account part of a ``purposes:`` entry: the value itself for the short forms."""
    return value.get("account") if isinstance(value, dict) else value


def parse(purpose: str, value: Any, add: Add, relative: Callable[[str], Path]) -> PurposeConfig:
    """The settings of a mapping entry; every problem is reported through ``add(line, key, text, hint)``."""
    from .load import LineDict  # here: .load imports the model, which imports this module

    if not isinstance(value, LineDict):
        return PurposeConfig(purpose)
    key = f"purposes.{purpose}"
    for name in value:
        if name not in PURPOSE_KEYS:
            from .validate import did_you_mean

            add(
                value.line_of(name),
                f"{key}.{name}",
                T("unbekannter Schlüssel", "unknown key"),
                did_you_mean(name, PURPOSE_KEYS, known=T("Erlaubt", "allowed")),
            )
    if "account" not in value:
        add(
            value.line,
            f"{key}.account",
            T(
                "'account' fehlt: welches Konto (oder welcher Pool) sendet?",
                "'account' is missing: which account (or pool) sends it?",
            ),
            T(
                "z. B. 'invoice: {account: Rechnungsversand, bcc: archiv@firma.de}'",
                "e.g. 'invoice: {account: Rechnungsversand, bcc: archive@company.com}'",
            ),
        )
    parsed: dict[str, templates.Template | None] = {}
    for name in ADDRESS_KEYS:
        parsed[name] = _address_template(value, name, key, add)
    flags: dict[str, bool] = {}
    for name in FLAG_KEYS:
        flags[name] = _flag(value, name, key, add, default=name == "save_to_sent")
    einvoice = str(value.get("einvoice", "optional")).strip().lower()
    if einvoice not in EINVOICE_CHOICES:
        add(
            value.line_of("einvoice"),
            f"{key}.einvoice",
            T(f"{value.get('einvoice')!r} ist nicht erlaubt", f"{value.get('einvoice')!r} is not allowed"),
            T(
                "required (ohne E-Rechnung wird nicht gesendet) oder optional",
                "required (no send without an e-invoice) or optional",
            ),
        )
        einvoice = "optional"
    return PurposeConfig(
        purpose,
        parsed["reply_to"],
        parsed["cc"],
        parsed["bcc"],
        parsed["from"],
        flags["save_to_sent"],
        flags["request_read_receipt"],
        flags["request_delivery_receipt"],
        einvoice,
        _archive(value, key, add, relative),
        {n: value.line_of(n) for n in ADDRESS_KEYS if n in value},
    )


def _address_template(section: LineDict, name: str, key: str, add: Add) -> templates.Template | None:
    if name not in section or section[name] in (None, ""):
        return None
    raw = section[name]
    line, fkey = section.line_of(name), f"{key}.{name}"
    if isinstance(raw, list):
        if name == "from":
            add(
                line,
                fkey,
                T("'from' ist genau eine Adresse, keine Liste", "'from' is exactly one address, not a list"),
                T("Eine Adresse, z. B. from: buchhaltung@firma.de", "One address, e.g. from: accounts@company.com"),
            )
            return None
        raw = ", ".join(str(item) for item in raw)
    source = str(raw)
    if any(ch in source for ch in "\r\n\0"):
        add(line, fkey, T("darf keinen Zeilenumbruch enthalten", "must not contain a line break"))
        return None
    try:
        tpl = templates.parse(source)
    except TemplateError as exc:
        add(line, fkey, exc.message, exc.hint)
        return None
    if not tpl.names:  # a literal: check it now, not at the first send
        try:
            render_addresses(name, tpl, lambda _: None)
        except AddressError as exc:
            add(line, fkey, exc.message, exc.hint)
            return None
    return tpl


def render_addresses(name: str, tpl: templates.Template, resolve: Callable[[str], str | None]) -> list[Address]:
    """The rendered template read as addresses; ``from`` must render to exactly one. The template
    is split into its addresses *before* the placeholders are filled, and each part must render to
    exactly one address: a value from the send data can fill an address, never add one (a line
    break, a comma or a second ``<…>`` in it is refused like a caller's bad address)."""
    parts = [templates.parse(item) for item in Address.split_list(tpl.source)]
    if name == "from" and len(parts) != 1:
        raise AddressError(
            T(
                f"Absender ('from') {tpl.source!r} ist nicht genau eine Adresse.",
                f"the sender ('from') {tpl.source!r} is not exactly one address.",
            ),
            hint=T(
                "Genau eine Adresse angeben (Senden als: ein freigegebenes Postfach).",
                "Give exactly one address (send-as: one shared mailbox).",
            ),
        )
    found = []
    for part in parts:
        text = part.render(resolve)
        many = Address.parse_list(text)
        if len(many) != 1:
            raise AddressError(
                T(
                    f"{name}: {text!r} ist nicht genau eine Adresse (Wert aus den Sendedaten?); nichts gesendet.",
                    f"{name}: {text!r} is not exactly one address (a value from the send data?); nothing sent.",
                ),
                hint=T(
                    "Im Platzhalterwert genau eine Adresse angeben, ohne Komma oder Semikolon.",
                    "Give exactly one address in the placeholder's value, without a comma or semicolon.",
                ),
            )
        found.append(Address.parse(text))
    return found


def _flag(section: LineDict, name: str, key: str, add: Add, *, default: bool) -> bool:
    if name not in section:
        return default
    value = section[name]
    truth = {"true": True, "false": False, "ja": True, "nein": False, "yes": True, "no": False}
    if isinstance(value, str) and value.strip().lower() in truth:
        return truth[value.strip().lower()]
    if isinstance(value, bool):
        return value
    add(section.line_of(name), f"{key}.{name}", T(f"{value!r} ist nicht true/false", f"{value!r} is not true/false"))
    return default


def _archive(section: LineDict, key: str, add: Add, relative: Callable[[str], Path]) -> ArchiveConfig | None:
    from .load import LineDict

    value = section.get("archive")
    if value is None:
        return None
    akey, line = f"{key}.archive", section.line_of("archive")
    if isinstance(value, str):  # archive: D:\Archiv\Rechnungen
        value = LineDict({"folder": value})
        value.line, value.key_lines = line, {"folder": line}
    if not isinstance(value, LineDict):
        add(
            line,
            akey,
            T(
                "muss eine Zuordnung sein: {folder: …, retention_years: 10}",
                "must be a mapping: {folder: …, retention_years: 10}",
            ),
        )
        return None
    for name in value:
        if name not in ARCHIVE_KEYS:
            from .validate import did_you_mean

            add(
                value.line_of(name),
                f"{akey}.{name}",
                T("unbekannter Schlüssel", "unknown key"),
                did_you_mean(name, ARCHIVE_KEYS, known=T("Erlaubt", "allowed")),
            )
    folder = value.get("folder")
    if not folder or not str(folder).strip():
        add(
            value.line,
            f"{akey}.folder",
            T("'folder' fehlt: wohin kommen die Archivkopien?", "'folder' is missing: where do the archive copies go?"),
        )
        return None
    years = value.get("retention_years", DEFAULT_RETENTION_YEARS)
    if isinstance(years, bool) or not isinstance(years, int) or years < 1:
        add(
            value.line_of("retention_years"),
            f"{akey}.retention_years",
            T(f"{years!r} ist keine ganze Zahl ≥ 1 (Jahre)", f"{years!r} is not a whole number ≥ 1 (years)"),
        )
        years = DEFAULT_RETENTION_YEARS
    return ArchiveConfig(relative(str(folder)), int(years))
