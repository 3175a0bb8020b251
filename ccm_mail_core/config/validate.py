"""Validating the YAML as a whole: every problem with file, line and key, never only the first
(an admin fixing a config wants the whole list). Secrets are resolved once a field is known to
hold one, and registered for redaction when the whole file has been read.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import AccountType, Address, AddressError, T, TemplateError, data_field
from ccm_mail_hookspecs.redaction import remember

from .. import storage, templates
from ..pacing import DEFAULT_LIMITS, Limits
from ..plugins import Registries
from . import purposes as purposes_mod
from . import secrets
from .load import LineDict
from .model import LANGS, AccountConfig, Config, ConfigProblems, Problem, TemplateConfig

TOP_KEYS = (
    "language",
    "accounts",
    "purposes",
    "templates",
    "placeholders",
    "journal",
    "state_dir",
    "plugins",
    "logging",
    "outbox",
)
ACCOUNT_COMMON_KEYS = ("type", "from_name", "limits")
JOURNAL_KEYS = ("path", "url", "password", "lease_seconds", "pool_size")
LIMIT_KEYS = ("messages", "per_seconds", "recipients_per_day", "concurrency", "recipients_per_message")
TEMPLATE_KEYS = ("subject", "body", "body_file", "format", "reference")
PLACEHOLDER_KEYS = ("description", "example", "purposes")
#: the reference (duplicate check) a purpose has when its template names none
DEFAULT_REFERENCE = {"invoice": "#extRechnungsNr#"}
#: ``reference: none`` says on purpose that a purpose has no duplicate check
NO_REFERENCE = "none"


def did_you_mean(
    word: object, choices: list[str] | tuple[str, ...], *, known: T = T("Bekannt", "known"), fmt: str = "'{}'"
) -> T:
    """The hint for a misspelt name: the closest choice, then all of them."""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    listed = ", ".join(fmt.format(n) for n in names) or "-"
    guess = fmt.format(close[0]) if close else ""
    return T(
        (f"Meinten Sie {guess}? " if close else "") + f"{known.de}: {listed}",
        (f"Did you mean {guess}? " if close else "") + f"{known.en}: {listed}",
    )


class _Collector:
    def __init__(self, file: Path) -> None:
        self.file = str(file)
        self.problems: list[Problem] = []

    def add(self, line: int, key: str, message: T, hint: T | None = None, *, warning: bool = False) -> None:
        self.problems.append(Problem(self.file, line, key, message, hint, warning))

    def unknown_keys(self, mapping: LineDict, allowed: tuple[str, ...] | list[str], prefix: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(
                    mapping.line_of(key),
                    f"{prefix}{key}",
                    T("unbekannter Schlüssel", "unknown key"),
                    did_you_mean(key, allowed, known=T("Erlaubt", "allowed")),
                )


def build(path: Path, raw: LineDict, registries: Registries, *, lang_override: str | None = None) -> Config:
    """Validate ``raw`` against the plugins' account types and placeholders; raise
    :class:`ConfigProblems` listing every error (warnings are kept on the config)."""
    path = path.resolve()
    base = path.parent
    c = _Collector(path)
    cfg = Config(path=path)
    c.unknown_keys(raw, TOP_KEYS, "")

    lang = raw.get("language", "de")
    if lang not in LANGS:
        c.add(
            raw.line_of("language"),
            "language",
            T(f"Sprache {lang!r} unbekannt", f"unknown language {lang!r}"),
            T("de oder en", "de or en"),
        )
        lang = "de"
    cfg.lang = lang_override or lang

    _plugins(raw, c, cfg)
    _logging(raw, c, cfg, base)
    _paths(raw, c, cfg, base)
    _outbox(raw, c, cfg)
    _accounts(raw, c, cfg, registries, base)
    _purposes(raw, c, cfg, base)
    _data_placeholders(raw, c, cfg, registries)
    _purpose_placeholders(c, cfg, registries)
    _templates(raw, c, cfg, registries, base)

    # every secret that was resolved is blanked from here on, whatever else is wrong in the file
    remember(*(str(a.values[f]) for a in cfg.accounts.values() for f in a.secret_fields if f in a.values))
    errors = [p for p in c.problems if not p.warning]
    cfg.warnings = [p for p in c.problems if p.warning]
    if errors:
        raise ConfigProblems(c.problems)
    return cfg


def _section(raw: LineDict, key: str, c: _Collector, kind: type = dict) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        what = T("eine Zuordnung", "a mapping") if kind is dict else T("eine Liste", "a list")
        c.add(raw.line_of(key), key, T(f"muss {what.de} sein", f"must be {what.en}"))
        return None
    return value


def _plugins(raw: LineDict, c: _Collector, cfg: Config) -> None:
    plugins = _section(raw, "plugins", c)
    if plugins is None:
        return
    c.unknown_keys(plugins, ("disable", "settings"), "plugins.")
    disable = plugins.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(x, str) for x in disable):
        c.add(
            plugins.line_of("disable"),
            "plugins.disable",
            T("muss eine Liste von Plugin-Namen sein", "must be a list of plugin names"),
        )
    else:
        cfg.plugins_disable = tuple(disable)
    settings = plugins.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        c.add(
            plugins.line_of("settings"),
            "plugins.settings",
            T("muss je Plugin-Name eine Zuordnung sein", "must map each plugin name to a mapping"),
        )
    else:
        cfg.plugin_settings = dict(settings)


def _logging(raw: LineDict, c: _Collector, cfg: Config, base: Path) -> None:
    section = _section(raw, "logging", c)
    if section is None:
        return
    c.unknown_keys(section, ("format", "level", "file"), "logging.")
    if section.get("file"):
        cfg.log_file = _relative(base, str(section["file"]))
    fmt = section.get("format", "console")
    if fmt not in ("console", "json"):
        c.add(
            section.line_of("format"),
            "logging.format",
            T(f"{fmt!r} unbekannt", f"unknown {fmt!r}"),
            T("console oder json", "console or json"),
        )
    else:
        cfg.log_format = fmt
    level = str(section.get("level", "info")).lower()
    if level not in ("debug", "info", "warning", "error"):
        c.add(
            section.line_of("level"),
            "logging.level",
            T(f"{level!r} unbekannt", f"unknown {level!r}"),
            T("debug, info, warning oder error", "debug, info, warning or error"),
        )
    else:
        cfg.log_level = level


def _paths(raw: LineDict, c: _Collector, cfg: Config, base: Path) -> None:
    """The journal and the state folder: as given (relative to the config file), else in the
    machine's data folder (%ProgramData%\\ccm-mail on Windows), never next to a config that may
    sit on a share."""
    journal = _section(raw, "journal", c)
    cfg.journal_path = storage.data_dir() / "journal.sqlite"
    if journal is not None:
        c.unknown_keys(journal, JOURNAL_KEYS, "journal.")
        if journal.get("path"):
            cfg.journal_path = _relative(base, str(journal["path"]))
        if journal.get("url") is not None:
            _journal_url(journal, c, cfg, base)
    state = raw.get("state_dir")
    cfg.state_dir = _relative(base, str(state)) if state else cfg.journal_path.parent / "ccm-mail-state"


def _journal_url(journal: LineDict, c: _Collector, cfg: Config, base: Path) -> None:
    """``journal: {url: postgresql://user@host:port/db, password: {env: VAR}}``: the password from
    the usual secret sources, never in the URL that logs and messages show."""
    from urllib.parse import urlsplit

    url = str(journal["url"]).strip()
    line = journal.line_of("url")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        c.add(
            line,
            "journal.url",
            T("muss eine PostgreSQL-Adresse sein", "must be a PostgreSQL address"),
            T(
                "z. B. postgresql://ccm_mail@db.example.local:5432/ccm_mail",
                "e.g. postgresql://ccm_mail@db.example.local:5432/ccm_mail",
            ),
        )
        return
    if journal.get("path"):
        c.add(
            journal.line_of("path"),
            "journal.path",
            T("entweder path (SQLite) oder url (PostgreSQL)", "give either path (SQLite) or url (PostgreSQL)"),
        )
    if parts.password:
        remember(parts.password)
        c.add(
            line,
            "journal.url",
            T("das Passwort gehört nicht in die Adresse", "the password does not belong in the URL"),
            T(
                "journal.password: {env: VARIABLE} oder {file: PFAD} angeben.",
                "Give journal.password: {env: VARIABLE} or {file: PATH}.",
            ),
        )
        return
    cfg.journal_url = url
    if journal.get("password") is not None:
        try:
            password, warns = secrets.resolve(journal["password"], base)
        except secrets.SecretProblem as exc:
            c.add(journal.line_of("password"), "journal.password", exc.message, exc.hint)
        else:
            remember(password)
            cfg.journal_password = password
            for w in warns:
                c.add(journal.line_of("password"), "journal.password", w, warning=True)
    for key, low, kind in (("lease_seconds", 1.0, float), ("pool_size", 2, int)):
        if key not in journal:
            continue
        value = _number(journal[key])
        if value is None or value < low or (kind is int and value != int(value)):
            c.add(
                journal.line_of(key),
                f"journal.{key}",
                T(f"muss eine Zahl ≥ {low:g} sein", f"must be a number ≥ {low:g}"),
            )
        else:
            setattr(cfg, f"journal_{key}", kind(value))


def _outbox(raw: LineDict, c: _Collector, cfg: Config) -> None:
    section = _section(raw, "outbox", c)
    if section is None:
        return
    c.unknown_keys(section, ("grace_seconds",), "outbox.")
    grace = section.get("grace_seconds", cfg.outbox_grace_seconds)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        c.add(
            section.line_of("grace_seconds"),
            "outbox.grace_seconds",
            T("muss eine Zahl ≥ 0 sein (Sekunden)", "must be a number ≥ 0 (seconds)"),
        )
    else:
        cfg.outbox_grace_seconds = float(grace)


def _relative(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _required_section(raw: LineDict, key: str, c: _Collector, missing: T, hint: T) -> Any:
    """Like :func:`_section`, and an absent or empty section is a problem of its own."""
    value = _section(raw, key, c)
    if not value:
        c.add(raw.line_of(key) if key in raw else 1, key, missing, hint)
    return value


def _accounts(raw: LineDict, c: _Collector, cfg: Config, reg: Registries, base: Path) -> None:
    accounts = _required_section(
        raw,
        "accounts",
        c,
        T("kein E-Mail-Konto eingerichtet", "no mail account configured"),
        T(
            "Unter 'accounts:' mindestens ein Konto anlegen (siehe config.example.yaml).",
            "Add at least one account under 'accounts:' (see config.example.yaml).",
        ),
    )
    if not accounts:
        return
    plain_secret_in_config = False
    for name, acc in accounts.items():
        key, line = f"accounts.{name}", accounts.line_of(name)
        if not isinstance(acc, LineDict):
            c.add(line, key, T("muss eine Zuordnung sein", "must be a mapping"))
            continue
        atype = _account_type(acc, key, c, reg)
        if atype is None:
            continue
        account = _account(str(name), acc, atype, key, line, c, base)
        cfg.accounts[account.name] = account
        plain_secret_in_config |= any(isinstance(acc.get(f), str) for f in account.secret_fields)
    if plain_secret_in_config:
        for w in secrets.loose_permissions(cfg.path):
            c.add(
                0,
                "accounts",
                w,
                T(
                    "Oder Geheimnisse als {env: VAR} / {file: PFAD} angeben.",
                    "Or give secrets as {env: VAR} / {file: PATH}.",
                ),
                warning=True,
            )


def _account_type(acc: LineDict, key: str, c: _Collector, reg: Registries) -> AccountType | None:
    type_id = acc.get("type")
    atype = reg.account_types.get(str(type_id)) if type_id else None
    if atype is not None:
        return atype
    hint = did_you_mean(
        type_id,
        sorted(reg.account_types),
        known=T("Bekannte Typen (weitere kommen als Plugins)", "known types (more come as plugins)"),
    )
    misspelt = difflib.get_close_matches("type", [str(k) for k in acc], n=1, cutoff=0.6)
    if not type_id and misspelt:
        c.add(
            acc.line_of(misspelt[0]),
            f"{key}.{misspelt[0]}",
            T("unbekannter Schlüssel", "unknown key"),
            T(f"Meinten Sie 'type'? {hint.de}", f"Did you mean 'type'? {hint.en}"),
        )
    else:
        c.add(
            acc.line_of("type"),
            f"{key}.type",
            T("'type' fehlt", "'type' is missing")
            if not type_id
            else T(f"unbekannter Kontotyp {type_id!r}", f"unknown account type {type_id!r}"),
            hint,
        )
    return None


def _account(
    name: str, acc: LineDict, atype: AccountType, key: str, line: int, c: _Collector, base: Path
) -> AccountConfig:
    """One account: each field checked by its declared kind, then the type's own checks; every
    problem is reported, the type's own only for fields that have none yet."""
    c.unknown_keys(acc, [*ACCOUNT_COMMON_KEYS, *(f.name for f in atype.fields)], f"{key}.")
    values: dict[str, Any] = {}
    secret_fields: set[str] = set()
    failed: set[str] = set()
    for fld in atype.fields:
        fkey, fline = f"{key}.{fld.name}", acc.line_of(fld.name)
        if fld.name not in acc or acc[fld.name] in (None, ""):
            if fld.required:
                failed.add(fld.name)
                c.add(
                    line,
                    fkey,
                    T(f"Pflichtfeld '{fld.label.de}' fehlt", f"required field '{fld.label.en}' is missing"),
                    fld.help,
                )
            elif fld.default is not None:
                values[fld.name] = fld.default
            continue
        value = acc[fld.name]
        if fld.secret or secrets.is_reference(value):
            try:
                value, warns = secrets.resolve(value, base)
            except secrets.SecretProblem as exc:
                failed.add(fld.name)
                c.add(fline, fkey, exc.message, exc.hint)
                continue
            for w in warns:
                c.add(fline, fkey, w, warning=True)
            if fld.secret:
                secret_fields.add(fld.name)
        converted = _check_value(fld.kind, fld.choices, value, base, shown=not fld.secret)
        if isinstance(converted, T):
            failed.add(fld.name)
            c.add(fline, fkey, converted, fld.help)
            continue
        values[fld.name] = converted
    if atype.validate is not None:
        try:
            for fname, message in atype.validate(values):
                if fname not in failed:  # a field with a problem already: the type would only echo it
                    c.add(acc.line_of(fname), f"{key}.{fname}" if fname else key, message)
        except Exception as exc:  # a broken validator must still show up as a readable problem
            c.add(
                line,
                key,
                T(
                    f"Prüfung des Typs {atype.id} gescheitert: {type(exc).__name__}: {exc}",
                    f"validation of type {atype.id} failed: {type(exc).__name__}: {exc}",
                ),
            )
    from_name = str(acc.get("from_name", ""))
    if any(ch in from_name for ch in "\r\n\0"):  # it goes into the From header of every mail
        c.add(
            acc.line_of("from_name"),
            f"{key}.from_name",
            T("Anzeigename enthält einen Zeilenumbruch", "the display name contains a line break"),
            T("Den Namen auf eine Zeile schreiben.", "Write the name on one line."),
        )
    if any(ch in name for ch in "\r\n\0/"):
        c.add(line, key, T(f"ungültiger Kontoname {name!r}", f"invalid account name {name!r}"))
    return AccountConfig(name, atype.id, values, frozenset(secret_fields), from_name, _limits(acc, c, key))


def _limits(acc: LineDict, c: _Collector, key: str) -> Limits:
    section = acc.get("limits")
    if section is None:
        return DEFAULT_LIMITS
    if not isinstance(section, LineDict):
        c.add(acc.line_of("limits"), f"{key}.limits", T("muss eine Zuordnung sein", "must be a mapping"))
        return DEFAULT_LIMITS
    c.unknown_keys(section, LIMIT_KEYS, f"{key}.limits.")
    values: dict[str, Any] = {}
    for name in LIMIT_KEYS:
        if name not in section:
            continue
        value = _number(section[name])
        if value is None or value <= 0 or (name != "per_seconds" and value != int(value)):
            c.add(
                section.line_of(name),
                f"{key}.limits.{name}",
                T(f"{section[name]!r} ist keine positive Zahl", f"{section[name]!r} is not a positive number"),
            )
            continue
        values[name] = value if name == "per_seconds" else int(value)
    return dataclasses.replace(DEFAULT_LIMITS, **values)


def _check_value(kind: str, choices: tuple[str, ...], value: Any, base: Path, *, shown: bool = True) -> Any:
    """The value converted to the field's declared kind, or a T saying what is wrong with it.
    Numbers may be quoted (``port: "587"``), as admins and settings dialogs write them; a
    secret's value is never repeated in the text."""
    de, en = (repr(value), repr(value)) if shown else ("Der Wert", "the value")
    if choices and str(value) not in choices:
        return T(
            f"{de} ist nicht erlaubt; möglich: {', '.join(choices)}",
            f"{en} is not allowed; choose one of: {', '.join(choices)}",
        )
    if isinstance(value, (dict, list)):
        return T("muss ein einfacher Wert sein", "must be a plain value")
    if kind != "date" and not isinstance(value, (str, int, float, bool)):
        value = str(value)  # a YAML date in a text field stays the text the admin wrote
    if kind in ("int", "float"):
        number = _number(value)
        if number is None or (kind == "int" and number != int(number)):
            return (
                T(f"{de} ist keine ganze Zahl", f"{en} is not a whole number")
                if kind == "int"
                else T(f"{de} ist keine Zahl", f"{en} is not a number")
            )
        return int(number) if kind == "int" else number
    if kind == "bool":
        truth = {"true": True, "false": False, "ja": True, "nein": False, "yes": True, "no": False}
        if isinstance(value, str) and value.strip().lower() in truth:
            return truth[value.strip().lower()]
        if not isinstance(value, bool):
            return T(f"{de} ist nicht true/false", f"{en} is not true/false")
        return value
    if kind == "email":
        try:
            return Address(str(value).strip()).address
        except AddressError as exc:
            return exc.message
    if kind == "path":
        return str(_relative(base, str(value)))
    if kind == "date":
        from ..expiry import parse_date

        when = parse_date(value)
        if when is None:
            return T(
                f"{de} ist kein Datum (JJJJ-MM-TT oder TT.MM.JJJJ)", f"{en} is not a date (YYYY-MM-DD or DD.MM.YYYY)"
            )
        return when
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip().replace(",", "."))  # "2,5" as a German admin writes it
    except ValueError:
        return None


def _purposes(raw: LineDict, c: _Collector, cfg: Config, base: Path) -> None:
    purposes = _required_section(
        raw,
        "purposes",
        c,
        T("keine Zuordnung von Zwecken zu Konten", "no purposes mapped to accounts"),
        T(
            "z. B. 'purposes: {eservice: E-Service, invoice: Rechnungsversand}'",
            "e.g. 'purposes: {eservice: E-Service, invoice: Rechnungsversand}'",
        ),
    )
    if not purposes:
        return
    declared: dict[Any, Any] = raw["accounts"] if isinstance(raw.get("accounts"), dict) else {}
    for purpose, value in purposes.items():
        line = purposes.line_of(purpose)
        settings = purposes_mod.parse(str(purpose), value, c.add, lambda v: _relative(base, v))
        cfg.purpose_settings[str(purpose)] = settings
        if not settings.save_to_sent:
            c.add(
                value.line_of("save_to_sent"),
                f"purposes.{purpose}.save_to_sent",
                T(
                    "ohne Kopie in 'Gesendete Elemente' lässt sich ein unklarer Ausgang (Verbindung nach dem Senden "
                    "abgebrochen) nicht dort nachsehen: er bleibt 'unklar', bis jemand entscheidet",
                    "without a copy in Sent Items an unknown outcome (connection lost after sending) cannot be "
                    "looked up there: it stays 'unknown' until someone decides",
                ),
                T(
                    "'ccm-mail outbox' zeigt solche Fälle; 'outbox resolve ID sent|resend|drop' entscheidet.",
                    "'ccm-mail outbox' lists them; 'outbox resolve ID sent|resend|drop' decides.",
                ),
                warning=True,
            )
        accounts = purposes_mod.pool_of(value)
        if isinstance(value, dict) and accounts is None:
            continue  # reported by purposes_mod.parse
        pool = [str(a) for a in accounts] if isinstance(accounts, list) else [str(accounts)]
        if not pool or len(set(pool)) != len(pool):
            c.add(
                line,
                f"purposes.{purpose}",
                T("leerer oder doppelter Konten-Pool", "empty pool or an account listed twice"),
            )
            continue
        ok = True
        for account in pool:
            if account in declared:
                continue  # the account itself may have a problem: reported there
            ok = False
            c.add(
                line,
                f"purposes.{purpose}",
                T(f"unbekanntes Konto {account!r}", f"unknown account {account!r}"),
                did_you_mean(account, list(declared), known=T("Konten", "accounts")),
            )
        if ok:
            cfg.pools[str(purpose)] = pool


def _purpose_placeholders(c: _Collector, cfg: Config, reg: Registries) -> None:
    """A purpose's address templates may only use placeholders that purpose has."""
    for purpose, settings in cfg.purpose_settings.items():
        known = list(cfg.placeholders_for(reg, purpose))
        for name, tpl in settings.address_templates().items():
            for missing in templates.unknown_names(tpl, {n: 1 for n in known}):
                c.add(
                    settings.lines.get(name, 0),
                    f"purposes.{purpose}.{name}",
                    T(f"unbekannter Platzhalter #{missing}#", f"unknown placeholder #{missing}#"),
                    did_you_mean(missing, known, fmt="#{}#"),
                )


def _data_placeholders(raw: LineDict, c: _Collector, cfg: Config, reg: Registries) -> None:
    section = _section(raw, "placeholders", c)
    if section is None:
        return
    for name, spec in section.items():
        key = f"placeholders.{name}"
        line = section.line_of(name)
        if not isinstance(spec, LineDict):
            spec = LineDict({"description": spec})
            spec.key_lines = {}
            spec.line = line
        c.unknown_keys(spec, PLACEHOLDER_KEYS, f"{key}.")
        if name in reg.placeholders:
            c.add(
                line,
                key,
                T(
                    f"#{name}# gibt es schon (von {reg.placeholder_plugin[name]!r})",
                    f"#{name}# already exists (from {reg.placeholder_plugin[name]!r})",
                ),
            )
            continue
        if not templates.is_valid_name(str(name)):
            c.add(line, key, T("ungültiger Name (Buchstaben, Ziffern, _ . -)", "invalid name (letters, digits, _ . -)"))
            continue
        purposes = spec.get("purposes", [])
        description = str(spec.get("description", ""))
        cfg.data_placeholders[str(name)] = data_field(
            str(name),
            T(description, description),
            str(spec.get("example", "")),
            purposes=frozenset(str(p) for p in purposes) if isinstance(purposes, list) else frozenset(),
        )


def _templates(raw: LineDict, c: _Collector, cfg: Config, reg: Registries, base: Path) -> None:
    section = _section(raw, "templates", c)
    if section is None:
        return
    for purpose, spec in section.items():
        key = f"templates.{purpose}"
        line = section.line_of(purpose)
        if not isinstance(spec, LineDict):
            c.add(line, key, T("muss eine Zuordnung sein", "must be a mapping"))
            continue
        c.unknown_keys(spec, TEMPLATE_KEYS, f"{key}.")
        mapped = isinstance(raw.get("purposes"), dict) and purpose in raw["purposes"]
        if not mapped and cfg.account_for(str(purpose)) is None and "purposes" in raw:
            c.add(
                line,
                key,
                T(f"Zweck {purpose!r} ist keinem Konto zugeordnet", f"purpose {purpose!r} is not mapped to an account"),
                T(f"Unter 'purposes:' '{purpose}: <Konto>' ergänzen", f"Add '{purpose}: <account>' under 'purposes:'"),
            )
        fmt = spec.get("format", "text")
        if fmt not in ("text", "html"):
            c.add(
                spec.line_of("format"),
                f"{key}.format",
                T(f"{fmt!r} unbekannt", f"unknown {fmt!r}"),
                T("text oder html", "text or html"),
            )
        body_src = spec.get("body")
        if "body_file" in spec:
            if body_src is not None:
                c.add(
                    spec.line_of("body_file"),
                    f"{key}.body_file",
                    T("entweder body oder body_file", "give either body or body_file"),
                )
            body_path = _relative(base, str(spec["body_file"]))
            try:
                body_src = body_path.read_text(encoding="utf-8")
            except OSError as exc:
                c.add(
                    spec.line_of("body_file"),
                    f"{key}.body_file",
                    T(f"{body_path} nicht lesbar ({exc.strerror})", f"{body_path} cannot be read ({exc.strerror})"),
                )
                continue
        parsed: dict[str, templates.Template] = {}
        known = list(cfg.placeholders_for(reg, str(purpose)))
        reference = _reference_source(spec, str(purpose), key, line, c)
        for part, src in (("subject", spec.get("subject")), ("body", body_src), ("reference", reference)):
            if src is None:
                if part != "reference":
                    c.add(line, f"{key}.{part}", T("fehlt", "is missing"))
                continue
            pline = spec.line_of("body_file" if part == "body" and "body_file" in spec else part)
            try:
                tpl = templates.parse(str(src))
            except TemplateError as exc:
                c.add(pline, f"{key}.{part}", exc.message, exc.hint)
                continue
            if part in ("subject", "reference") and any(ch in tpl.source for ch in "\r\n\0"):
                c.add(pline, f"{key}.{part}", T("darf keinen Zeilenumbruch enthalten", "must not contain a line break"))
            for name in templates.unknown_names(tpl, {n: 1 for n in known}):
                c.add(
                    pline,
                    f"{key}.{part}",
                    T(f"unbekannter Platzhalter #{name}#", f"unknown placeholder #{name}#"),
                    did_you_mean(name, known, fmt="#{}#"),
                )
            parsed[part] = tpl
        if "subject" in parsed and "body" in parsed:
            cfg.templates[str(purpose)] = TemplateConfig(
                str(purpose), parsed["subject"], parsed["body"], fmt == "html", parsed.get("reference")
            )


def _reference_source(spec: LineDict, purpose: str, key: str, line: int, c: _Collector) -> str | None:
    """The template of the purpose's duplicate-check reference, or None for no duplicate check:
    absent means the purpose's default (invoices: ``#extRechnungsNr#``), ``none`` means none."""
    if "reference" not in spec:
        default = DEFAULT_REFERENCE.get(purpose)
        if default is None:
            c.add(
                line,
                f"{key}.reference",
                T(
                    "keine Referenz: ohne sie schützt nichts davor, dieselbe Mail zweimal zu senden",
                    "no reference: without one nothing stops the same mail from being sent twice",
                ),
                T(
                    "z. B. 'reference: \"#Kundennummer#-#Datum#\"' angeben, oder 'reference: none', wenn "
                    "Wiederholungen gewollt sind.",
                    "Give e.g. 'reference: \"#Kundennummer#-#Datum#\"', or 'reference: none' when repeats "
                    "are intended.",
                ),
                warning=True,
            )
        return default
    value = spec["reference"]
    if value is None or str(value).strip().lower() == NO_REFERENCE:
        return None
    if not str(value).strip():
        c.add(
            spec.line_of("reference"),
            f"{key}.reference",
            T("ist leer", "is empty"),
            T(
                "Eine Referenz wie '#extRechnungsNr#' angeben, oder 'reference: none'.",
                "Give a reference such as '#extRechnungsNr#', or 'reference: none'.",
            ),
        )
        return None
    return str(value)
