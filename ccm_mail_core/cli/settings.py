"""``accounts set|remove``, ``purposes set``, ``templates set``: saving settings (*Speichern*)
from the command line, through the same write path as the service's settings API
(:mod:`ccm_mail_core.config.write`): checked like ``config check`` before anything is written,
written atomically with the admin's comments kept, secrets into the keyring or a 0600 file,
every change in the audit log. A running ``ccm-mail serve`` picks the change up by itself.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import ConfigError, T

from ..config import blocked_plugins, read_raw
from ..config.write import STORES, Settings, Written, who_am_i
from ..plugins import collect, make_plugin_manager
from ..results import ExitCode
from .context import config_path, lang_override
from .output import Out
from .parser import Help


def add_account_parsers(acc_sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    """``accounts set`` and ``accounts remove`` (called by :mod:`.accounts`)."""
    st = acc_sub.add_parser(
        "set", parents=[common], help=h("Konto anlegen oder ändern (Speichern)", "create or change an account (save)")
    )
    st.add_argument("name", help=h("Name des Kontos", "the account's name"))
    st.add_argument(
        "--type",
        help=h(
            "Kontotyp (für ein neues Konto Pflicht; 'accounts types')",
            "account type (required for a new account; 'accounts types')",
        ),
    )
    st.add_argument(
        "--set",
        action="append",
        metavar="FELD=WERT",
        dest="values",
        help=h("Feld setzen (mehrfach möglich)", "set a field (repeatable)"),
    )
    st.add_argument("--unset", action="append", metavar="FELD", help=h("Feld entfernen", "remove a field"))
    st.add_argument("--from-name", help=h("Absendername", "sender's display name"))
    st.add_argument(
        "--limit",
        action="append",
        metavar="NAME=WERT",
        help=h("Taktung, z. B. messages=30 (mehrfach möglich)", "pacing, e.g. messages=30 (repeatable)"),
    )
    st.add_argument(
        "--secret",
        action="append",
        metavar="FELD",
        help=h(
            "geheimes Feld eingeben (ohne Anzeige; mit --stdin je Feld eine Zeile)",
            "enter a secret field (not shown; with --stdin one line per field)",
        ),
    )
    st.add_argument(
        "--stdin",
        action="store_true",
        help=h("Geheimnisse von der Standardeingabe lesen", "read the secrets from standard input"),
    )
    _store_argument(st, h)
    st.set_defaults(func=set_account)
    rm = acc_sub.add_parser("remove", parents=[common], help=h("Konto entfernen", "remove an account"))
    rm.add_argument("name", help=h("Name des Kontos", "the account's name"))
    rm.set_defaults(func=remove_account)


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    pur = sub.add_parser("purposes", help=h("Zwecke den Konten zuordnen", "assign purposes to accounts"))
    pur_sub = pur.add_subparsers(dest="sub", required=True, metavar=h("BEFEHL", "COMMAND"))
    ps = pur_sub.add_parser(
        "set",
        parents=[common],
        help=h("Konto (oder Pool) eines Zwecks speichern", "save the account (or pool) of a purpose"),
    )
    ps.add_argument("purpose", help=h("Zweck, z. B. invoice, eservice", "purpose, e.g. invoice, eservice"))
    ps.add_argument("accounts", nargs="+", help=h("Konto, oder mehrere als Pool", "account, or several as a pool"))
    ps.add_argument(
        "--set",
        action="append",
        metavar="NAME=WERT",
        dest="options",
        help=h(
            "Vorgabe des Zwecks, z. B. bcc=archiv@firma.de, reply_to=…, from=…, save_to_sent=false, "
            "einvoice=required, archive.folder=…, archive.retention_years=10 (mehrfach möglich)",
            "a default of the purpose, e.g. bcc=archive@company.com, reply_to=…, from=…, "
            "save_to_sent=false, einvoice=required, archive.folder=…, archive.retention_years=10 "
            "(repeatable)",
        ),
    )
    ps.add_argument("--unset", action="append", metavar="NAME", help=h("Vorgabe entfernen", "remove a default"))
    ps.set_defaults(func=set_purpose)

    tpl = sub.add_parser("templates", help=h("Vorlagen (Betreff, E-Mail-Text)", "templates (subject, body)"))
    tpl_sub = tpl.add_subparsers(dest="sub", required=True, metavar=h("BEFEHL", "COMMAND"))
    ts = tpl_sub.add_parser(
        "set", parents=[common], help=h("Vorlage eines Zwecks speichern", "save the template of a purpose")
    )
    ts.add_argument("purpose", help=h("Zweck, z. B. invoice", "purpose, e.g. invoice"))
    ts.add_argument("--subject", help=h("Betreff mit #Platzhaltern#", "subject with #placeholders#"))
    body = ts.add_mutually_exclusive_group()
    body.add_argument("--body", help=h("E-Mail-Text", "body"))
    body.add_argument(
        "--body-file", metavar="FILE", help=h("E-Mail-Text aus einer UTF-8-Datei", "body from a UTF-8 file")
    )
    ts.add_argument("--format", choices=("text", "html"), help=h("Textformat", "body format"))
    ts.add_argument(
        "--reference",
        help=h(
            "Referenz für den Dublettenschutz, z. B. '#extRechnungsNr#', oder none",
            "reference for the duplicate check, e.g. '#extRechnungsNr#', or none",
        ),
    )
    ts.set_defaults(func=set_template)


def _store_argument(p: argparse.ArgumentParser, h: Help) -> None:
    p.add_argument(
        "--store",
        choices=STORES,
        help=h(
            "wohin Geheimnisse kommen (Standard: Schlüsselbund, wenn vorhanden, sonst 0600-Datei)",
            "where secrets go (default: the keyring when there is one, else a 0600 file)",
        ),
    )


def settings_for(args: argparse.Namespace) -> Settings:
    """The write path for the command's config, checked against the installed plugins."""
    path = config_path(args)
    raw = read_raw(path) if path.exists() else None
    registries = collect(make_plugin_manager(blocked=blocked_plugins(raw) if raw is not None else ()))
    return Settings(
        path,
        registries,
        who=who_am_i(),
        via="cli",
        store=getattr(args, "store", None),
        lang_override=lang_override(args),
    )


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                T(f"{option} erwartet NAME=WERT, nicht {item!r}", f"{option} expects NAME=VALUE, not {item!r}")
            )
        pairs[key.strip()] = value
    return pairs


def _secrets(args: argparse.Namespace, out: Out) -> dict[str, str]:
    entered = {}
    for fld in args.secret or []:
        if args.stdin:
            value = sys.stdin.readline()
        else:
            value = getpass.getpass(
                out.t(f"{fld} für {args.name} (Eingabe unsichtbar): ", f"{fld} for {args.name} (not shown): ")
            )
        entered[fld] = value.strip()
    return entered


def set_account(args: argparse.Namespace, out: Out) -> int:
    values: dict[str, Any] = dict(_pairs(args.values, "--set"))
    values.update(dict.fromkeys(args.unset or []))
    limits = _pairs(args.limit, "--limit") or None
    written = settings_for(args).set_account(
        args.name, type=args.type, values=values, secrets=_secrets(args, out), from_name=args.from_name, limits=limits
    )
    return _done(written, out)


def remove_account(args: argparse.Namespace, out: Out) -> int:
    return _done(settings_for(args).remove_account(args.name), out)


def set_purpose(args: argparse.Namespace, out: Out) -> int:
    options: dict[str, Any] = {}
    for key, value in _pairs(args.options, "--set").items():
        parsed: Any = {"true": True, "false": False}.get(value.strip().lower(), value)
        if key.startswith("archive."):
            archive = options.setdefault("archive", {})
            sub = key.split(".", 1)[1]
            archive[sub] = int(value) if sub == "retention_years" and value.strip().isdigit() else value
        else:
            options[key] = parsed
    for key in args.unset or []:
        if key.startswith("archive."):  # one key of the archive mapping; the others stay
            options.setdefault("archive", {})[key.split(".", 1)[1]] = None
        else:
            options[key] = None
    return _done(settings_for(args).set_purpose(args.purpose, args.accounts, options=options or None), out)


def set_template(args: argparse.Namespace, out: Out) -> int:
    body = args.body
    if args.body_file:
        try:
            body = Path(args.body_file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                T(
                    f"{args.body_file} nicht lesbar ({exc}); nichts geändert.",
                    f"{args.body_file} cannot be read ({exc}); nothing changed.",
                )
            ) from exc
    if all(v is None for v in (args.subject, body, args.format, args.reference)):
        raise ConfigError(
            T(
                "Nichts zu ändern: --subject, --body, --body-file, --format oder --reference angeben.",
                "nothing to change: give --subject, --body, --body-file, --format or --reference.",
            )
        )
    written = settings_for(args).set_template(
        args.purpose, subject=args.subject, body=body, format=args.format, reference=args.reference
    )
    return _done(written, out)


def _done(written: Written, out: Out) -> int:
    def human() -> str:
        lines = [f"{out.t('Warnung', 'warning')}: {w.render(out.lang)}" for w in written.warnings]
        lines.append(
            out.t(
                f"Gespeichert in {written.path}: {written.action} {written.target}.",
                f"saved to {written.path}: {written.action} {written.target}.",
            )
        )
        lines += [f"  {key}: {value}" for key, value in written.changes.items()]
        return "\n".join(lines)

    out.emit(written.to_dict(out.lang), human)
    return ExitCode.OK
