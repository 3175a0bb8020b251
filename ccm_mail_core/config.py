"""The YAML configuration: read, validated as a whole, every problem with file, line and key.

Validation never stops at the first problem: an admin fixing a config wants the whole list.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ccm_mail_hookspecs import Address, AddressError, ConfigError, Placeholder, T, TemplateError, data_field

from . import secrets, templates
from .pacing import DEFAULT_LIMITS, Limits
from .registry import Registries
from .yaml_lines import LineDict, load

TOP_KEYS = ("language", "accounts", "purposes", "templates", "placeholders", "journal", "state_dir",
            "plugins", "logging", "outbox")
ACCOUNT_COMMON_KEYS = ("type", "from_name", "limits")
LIMIT_KEYS = ("messages", "per_seconds", "recipients_per_day", "concurrency", "recipients_per_message")
TEMPLATE_KEYS = ("subject", "body", "body_file", "format", "reference")
PLACEHOLDER_KEYS = ("description", "example", "purposes")
LANGS = ("de", "en")
DEFAULT_PURPOSE_FALLBACK = {"invoice": "eservice"}


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    key: str
    message: T
    hint: T | None = None
    warning: bool = False

    def render(self, lang: str) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message.get(lang)}" if self.key else f"{where}: {self.message.get(lang)}"
        if self.hint:
            text += (" → " + self.hint.get(lang))
        return text

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "key": self.key, "message": self.message.get(lang),
                "hint": self.hint.get(lang) if self.hint else None,
                "severity": "warning" if self.warning else "error"}


class ConfigProblems(ConfigError):
    """All problems of a configuration file at once."""

    def __init__(self, problems: list[Problem], lang: str = "de") -> None:
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        super().__init__(T(f"Konfiguration fehlerhaft ({len(errors)} Fehler):\n" +
                           "\n".join(p.render("de") for p in errors),
                           f"Configuration is invalid ({len(errors)} errors):\n" +
                           "\n".join(p.render("en") for p in errors)),
                         hint=T("Jeden Punkt beheben, dann 'ccm-mail config check'.",
                                "Fix each point, then run 'ccm-mail config check'."))


@dataclass(frozen=True, slots=True)
class AccountConfig:
    name: str
    type: str
    values: Mapping[str, Any]
    secret_fields: frozenset[str]
    from_name: str = ""
    limits: Limits = DEFAULT_LIMITS

    def __repr__(self) -> str:  # secrets never in a repr or traceback
        return f"AccountConfig(name={self.name!r}, type={self.type!r})"


@dataclass(frozen=True, slots=True)
class TemplateConfig:
    purpose: str
    subject: templates.Template
    body: templates.Template
    html: bool
    reference: templates.Template | None


@dataclass(slots=True)
class Config:
    path: Path
    lang: str = "de"
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)
    pools: dict[str, list[str]] = field(default_factory=dict)
    outbox_grace_seconds: float = 600.0
    templates: dict[str, TemplateConfig] = field(default_factory=dict)
    data_placeholders: dict[str, Placeholder] = field(default_factory=dict)
    journal_path: Path = Path("ccm-mail-journal.sqlite")
    state_dir: Path = Path("ccm-mail-state")
    plugins_disable: tuple[str, ...] = ()
    plugin_settings: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    log_format: str = "console"
    log_level: str = "info"
    warnings: list[Problem] = field(default_factory=list)

    def placeholders_for(self, registries: Registries, purpose: str) -> dict[str, Placeholder]:
        """Every placeholder a template of ``purpose`` may use: the plugins' and the data fields
        declared in the YAML, by name."""
        merged = registries.placeholders_for(purpose)
        merged.update((n, p) for n, p in self.data_placeholders.items() if p.applies_to(purpose))
        return dict(sorted(merged.items(), key=lambda item: item[0].lower()))

    def account_for(self, purpose: str) -> str | None:
        pool = self.pool_for(purpose)
        return pool[0] if pool else None

    def pool_for(self, purpose: str) -> list[str]:
        """The accounts serving a purpose (a pool when several); invoice falls back to eservice."""
        if purpose in self.pools:
            return self.pools[purpose]
        fallback = DEFAULT_PURPOSE_FALLBACK.get(purpose)
        return self.pools.get(fallback, []) if fallback else []


def read_raw(path: Path) -> LineDict:
    """Parse the file; a YAML syntax error or an unreadable file becomes a one-problem ConfigProblems."""
    name = str(path.resolve())
    try:
        raw = load(path)
    except FileNotFoundError:
        raise ConfigProblems([Problem(name, 0, "", T("Konfigurationsdatei nicht gefunden.", "configuration file not found."),
                                      T("Pfad mit --config angeben; Vorlage: config.example.yaml.",
                                        "Give the path with --config; see config.example.yaml."))]) from None
    except OSError as exc:
        raise ConfigProblems([Problem(name, 0, "", T(f"nicht lesbar: {exc.strerror}", f"cannot be read: {exc.strerror}"))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        what = f"{getattr(exc, 'problem', '') or exc}"
        raise ConfigProblems([Problem(name, line, "", T(f"YAML-Syntaxfehler: {what}", f"YAML syntax error: {what}"),
                                      T("Einrückung (Leerzeichen, keine Tabs) und Doppelpunkte prüfen.",
                                        "Check indentation (spaces, no tabs) and colons."))]) from None
    if raw is None:
        raw = LineDict()
        raw.key_lines = {}
    if not isinstance(raw, LineDict):
        raise ConfigProblems([Problem(name, 1, "", T("Oberste Ebene muss eine Zuordnung (key: value) sein.",
                                                     "the top level must be a mapping (key: value)."))])
    return raw


def blocked_plugins(raw: LineDict) -> tuple[str, ...]:
    """Read ``plugins.disable`` before the plugin manager exists (it decides which plugins load)."""
    plugins = raw.get("plugins")
    if isinstance(plugins, dict) and isinstance(plugins.get("disable"), list):
        return tuple(str(x) for x in plugins["disable"])
    return ()


def did_you_mean(word: object, choices: list[str] | tuple[str, ...], *, known: T = T("Bekannt", "known"),
                 fmt: str = "'{}'") -> T:
    """The hint for a misspelt name: the closest choice, then all of them."""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    listed = ", ".join(fmt.format(n) for n in names) or "-"
    guess = fmt.format(close[0]) if close else ""
    return T((f"Meinten Sie {guess}? " if close else "") + f"{known.de}: {listed}",
             (f"Did you mean {guess}? " if close else "") + f"{known.en}: {listed}")


class _Collector:
    def __init__(self, file: Path) -> None:
        self.file = str(file)
        self.problems: list[Problem] = []

    def add(self, line: int, key: str, message: T, hint: T | None = None, *, warning: bool = False) -> None:
        self.problems.append(Problem(self.file, line, key, message, hint, warning))

    def unknown_keys(self, mapping: LineDict, allowed: tuple[str, ...] | list[str], prefix: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(mapping.line_of(key), f"{prefix}{key}", T("unbekannter Schlüssel", "unknown key"),
                         did_you_mean(key, allowed, known=T("Erlaubt", "allowed")))


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
        c.add(raw.line_of("language"), "language", T(f"Sprache {lang!r} unbekannt", f"unknown language {lang!r}"),
              T("de oder en", "de or en"))
        lang = "de"
    cfg.lang = lang_override or lang

    _plugins(raw, c, cfg)
    _logging(raw, c, cfg)
    _paths(raw, c, cfg, base)
    _outbox(raw, c, cfg)
    _accounts(raw, c, cfg, registries, base)
    _purposes(raw, c, cfg)
    _data_placeholders(raw, c, cfg, registries)
    _templates(raw, c, cfg, registries, base)

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
        c.add(plugins.line_of("disable"), "plugins.disable", T("muss eine Liste von Plugin-Namen sein",
                                                               "must be a list of plugin names"))
    else:
        cfg.plugins_disable = tuple(disable)
    settings = plugins.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        c.add(plugins.line_of("settings"), "plugins.settings",
              T("muss je Plugin-Name eine Zuordnung sein", "must map each plugin name to a mapping"))
    else:
        cfg.plugin_settings = dict(settings)


def _logging(raw: LineDict, c: _Collector, cfg: Config) -> None:
    section = _section(raw, "logging", c)
    if section is None:
        return
    c.unknown_keys(section, ("format", "level"), "logging.")
    fmt = section.get("format", "console")
    if fmt not in ("console", "json"):
        c.add(section.line_of("format"), "logging.format", T(f"{fmt!r} unbekannt", f"unknown {fmt!r}"),
              T("console oder json", "console or json"))
    else:
        cfg.log_format = fmt
    level = str(section.get("level", "info")).lower()
    if level not in ("debug", "info", "warning", "error"):
        c.add(section.line_of("level"), "logging.level", T(f"{level!r} unbekannt", f"unknown {level!r}"),
              T("debug, info, warning oder error", "debug, info, warning or error"))
    else:
        cfg.log_level = level


def _paths(raw: LineDict, c: _Collector, cfg: Config, base: Path) -> None:
    journal = _section(raw, "journal", c)
    journal_path = "ccm-mail-journal.sqlite"
    if journal is not None:
        c.unknown_keys(journal, ("path",), "journal.")
        journal_path = str(journal.get("path", journal_path))
    cfg.journal_path = _relative(base, journal_path)
    state = raw.get("state_dir")
    cfg.state_dir = _relative(base, str(state)) if state else cfg.journal_path.parent / "ccm-mail-state"


def _outbox(raw: LineDict, c: _Collector, cfg: Config) -> None:
    section = _section(raw, "outbox", c)
    if section is None:
        return
    c.unknown_keys(section, ("grace_seconds",), "outbox.")
    grace = section.get("grace_seconds", cfg.outbox_grace_seconds)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        c.add(section.line_of("grace_seconds"), "outbox.grace_seconds",
              T("muss eine Zahl ≥ 0 sein (Sekunden)", "must be a number ≥ 0 (seconds)"))
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
        raw, "accounts", c, T("kein E-Mail-Konto eingerichtet", "no mail account configured"),
        T("Unter 'accounts:' mindestens ein Konto anlegen (siehe config.example.yaml).",
          "Add at least one account under 'accounts:' (see config.example.yaml)."))
    if not accounts:
        return
    plain_secret_in_config = False
    for name, acc in accounts.items():
        key = f"accounts.{name}"
        line = accounts.line_of(name)
        if not isinstance(acc, LineDict):
            c.add(line, key, T("muss eine Zuordnung sein", "must be a mapping"))
            continue
        type_id = acc.get("type")
        atype = reg.account_types.get(str(type_id)) if type_id else None
        if atype is None:
            hint = did_you_mean(type_id, sorted(reg.account_types),
                                known=T("Bekannte Typen (weitere kommen als Plugins)", "known types (more come as plugins)"))
            msg = (T("'type' fehlt", "'type' is missing") if not type_id else
                   T(f"unbekannter Kontotyp {type_id!r}", f"unknown account type {type_id!r}"))
            misspelt = difflib.get_close_matches("type", [str(k) for k in acc], n=1, cutoff=0.6)
            if not type_id and misspelt:
                c.add(acc.line_of(misspelt[0]), f"{key}.{misspelt[0]}", T("unbekannter Schlüssel", "unknown key"),
                      T(f"Meinten Sie 'type'? {hint.de}", f"Did you mean 'type'? {hint.en}"))
                continue
            c.add(acc.line_of("type"), f"{key}.type", msg, hint)
            continue
        c.unknown_keys(acc, [*ACCOUNT_COMMON_KEYS, *(f.name for f in atype.fields)], f"{key}.")
        values: dict[str, Any] = {}
        secret_fields = set()
        problems_before = len(c.problems)
        for fld in atype.fields:
            fkey = f"{key}.{fld.name}"
            fline = acc.line_of(fld.name)
            if fld.name not in acc or acc[fld.name] in (None, ""):
                if fld.required:
                    c.add(line, fkey, T(f"Pflichtfeld '{fld.label.de}' fehlt", f"required field '{fld.label.en}' is missing"),
                          fld.help)
                elif fld.default is not None:
                    values[fld.name] = fld.default
                continue
            value = acc[fld.name]
            if fld.secret or secrets.is_reference(value):
                try:
                    value, warns = secrets.resolve(value, base)
                except secrets.SecretProblem as exc:
                    c.add(fline, fkey, exc.message, exc.hint)
                    continue
                for w in warns:
                    c.add(fline, fkey, w, warning=True)
                if fld.secret:
                    secret_fields.add(fld.name)
                    secrets.remember(value)
                    if isinstance(acc[fld.name], str):
                        plain_secret_in_config = True
            problem = _check_value(fld.kind, fld.choices, value, base)
            if isinstance(problem, T):
                c.add(fline, fkey, problem, fld.help)
                continue
            values[fld.name] = problem
        field_problems = any(not p.warning for p in c.problems[problems_before:])
        # the type's own checks see incomplete values after a field problem: they would only echo it
        if atype.validate is not None and not field_problems:
            try:
                for fname, message in atype.validate(values):
                    c.add(acc.line_of(fname), f"{key}.{fname}" if fname else key, message)
            except Exception as exc:  # a broken validator must still show up as a readable problem
                c.add(line, key, T(f"Prüfung des Typs {atype.id} gescheitert: {exc}",
                                   f"validation of type {atype.id} failed: {exc}"))
        from_name = acc.get("from_name", "")
        limits = _limits(acc, c, key)
        cfg.accounts[str(name)] = AccountConfig(str(name), atype.id, values, frozenset(secret_fields), str(from_name),
                                                limits)
    if plain_secret_in_config:
        for w in secrets.loose_permissions(cfg.path):
            c.add(0, "accounts", w, T("Oder Geheimnisse als {env: VAR} / {file: PFAD} angeben.",
                                      "Or give secrets as {env: VAR} / {file: PATH}."), warning=True)


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
        value = section[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            c.add(section.line_of(name), f"{key}.limits.{name}", T(f"{value!r} ist keine positive Zahl",
                                                                   f"{value!r} is not a positive number"))
            continue
        values[name] = float(value) if name == "per_seconds" else int(value)
    return dataclasses.replace(DEFAULT_LIMITS, **values)


def _check_value(kind: str, choices: tuple[str, ...], value: Any, base: Path) -> Any:
    """The value converted for the transport, or a T describing what is wrong with it."""
    if choices and str(value) not in choices:
        return T(f"{value!r} ist nicht erlaubt; möglich: {', '.join(choices)}",
                 f"{value!r} is not allowed; choose one of: {', '.join(choices)}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            return T(f"{value!r} ist keine ganze Zahl", f"{value!r} is not a whole number")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return T(f"{value!r} ist keine Zahl", f"{value!r} is not a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            return T(f"{value!r} ist nicht true/false", f"{value!r} is not true/false")
        return value
    if kind == "email":
        try:
            return Address(str(value)).address
        except AddressError as exc:
            return exc.message
    if kind == "path":
        return str(_relative(base, str(value)))
    if isinstance(value, (dict, list)):
        return T("muss ein einfacher Wert sein", "must be a plain value")
    return value if isinstance(value, str) else str(value)


def _purposes(raw: LineDict, c: _Collector, cfg: Config) -> None:
    purposes = _required_section(
        raw, "purposes", c, T("keine Zuordnung von Zwecken zu Konten", "no purposes mapped to accounts"),
        T("z. B. 'purposes: {eservice: E-Service, invoice: Rechnungsversand}'",
          "e.g. 'purposes: {eservice: E-Service, invoice: Rechnungsversand}'"))
    if not purposes:
        return
    declared = raw.get("accounts") if isinstance(raw.get("accounts"), dict) else {}
    for purpose, value in purposes.items():
        pool = [str(a) for a in value] if isinstance(value, list) else [str(value)]
        if not pool or len(set(pool)) != len(pool):
            c.add(purposes.line_of(purpose), f"purposes.{purpose}", T("leerer oder doppelter Konten-Pool",
                                                                       "empty pool or an account listed twice"))
            continue
        ok = True
        for account in pool:
            if account in declared:
                continue  # the account itself may have a problem: reported there
            ok = False
            c.add(purposes.line_of(purpose), f"purposes.{purpose}", T(f"unbekanntes Konto {account!r}",
                                                                       f"unknown account {account!r}"),
                  did_you_mean(account, list(declared), known=T("Konten", "accounts")))
        if ok:
            cfg.purposes[str(purpose)] = pool[0]
            cfg.pools[str(purpose)] = pool


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
            c.add(line, key, T(f"#{name}# gibt es schon (von {reg.placeholder_plugin[name]!r})",
                               f"#{name}# already exists (from {reg.placeholder_plugin[name]!r})"))
            continue
        if not templates._TOKEN.fullmatch(f"#{name}#"):
            c.add(line, key, T("ungültiger Name (Buchstaben, Ziffern, _ . -)", "invalid name (letters, digits, _ . -)"))
            continue
        purposes = spec.get("purposes", [])
        description = str(spec.get("description", ""))
        cfg.data_placeholders[str(name)] = data_field(
            str(name), T(description, description), str(spec.get("example", "")),
            purposes=frozenset(str(p) for p in purposes) if isinstance(purposes, list) else frozenset())


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
            c.add(line, key, T(f"Zweck {purpose!r} ist keinem Konto zugeordnet",
                               f"purpose {purpose!r} is not mapped to an account"),
                  T(f"Unter 'purposes:' '{purpose}: <Konto>' ergänzen", f"Add '{purpose}: <account>' under 'purposes:'"))
        fmt = spec.get("format", "text")
        if fmt not in ("text", "html"):
            c.add(spec.line_of("format"), f"{key}.format", T(f"{fmt!r} unbekannt", f"unknown {fmt!r}"),
                  T("text oder html", "text or html"))
        body_src = spec.get("body")
        if "body_file" in spec:
            if body_src is not None:
                c.add(spec.line_of("body_file"), f"{key}.body_file",
                      T("entweder body oder body_file", "give either body or body_file"))
            body_path = _relative(base, str(spec["body_file"]))
            try:
                body_src = body_path.read_text(encoding="utf-8")
            except OSError as exc:
                c.add(spec.line_of("body_file"), f"{key}.body_file",
                      T(f"{body_path} nicht lesbar ({exc.strerror})", f"{body_path} cannot be read ({exc.strerror})"))
                continue
        parsed: dict[str, templates.Template] = {}
        known = list(cfg.placeholders_for(reg, str(purpose)))
        for part, src in (("subject", spec.get("subject")), ("body", body_src), ("reference", spec.get("reference"))):
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
            if part == "subject" and ("\n" in tpl.source or "\r" in tpl.source):
                c.add(pline, f"{key}.subject", T("Betreff darf keinen Zeilenumbruch enthalten",
                                                 "the subject must not contain a line break"))
            for name in templates.unknown_names(tpl, {n: 1 for n in known}):
                c.add(pline, f"{key}.{part}", T(f"unbekannter Platzhalter #{name}#", f"unknown placeholder #{name}#"),
                      did_you_mean(name, known, fmt="#{}#"))
            parsed[part] = tpl
        if "subject" in parsed and "body" in parsed:
            cfg.templates[str(purpose)] = TemplateConfig(str(purpose), parsed["subject"], parsed["body"],
                                                         fmt == "html", parsed.get("reference"))
