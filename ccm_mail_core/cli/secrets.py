"""``secrets set ACCOUNT``: put an account's secret into the keyring (Windows Credential Manager),
read without echo or from standard input, so it never appears in the YAML, a shell history or a
process list."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ccm_mail_hookspecs import ConfigError, T

from ..config import read_raw
from ..config import secrets as config_secrets
from ..plugins import collect, make_plugin_manager
from ..results import ExitCode
from .context import config_path
from .output import Out
from .parser import Help


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    sec = sub.add_parser("secrets", help=h("Geheimnisse im Schlüsselbund", "secrets in the keyring"))
    sec_sub = sec.add_subparsers(dest="sub", required=True, metavar=h("BEFEHL", "COMMAND"))
    st = sec_sub.add_parser(
        "set",
        parents=[common],
        help=h("Geheimnis eines Kontos im Schlüsselbund hinterlegen", "store an account's secret in the keyring"),
    )
    st.add_argument("account", help=h("Name des Kontos", "the account's name"))
    st.add_argument(
        "--field",
        help=h(
            "welches Geheimnis (Standard: das erste des Kontotyps)", "which secret (default: the account type's first)"
        ),
    )
    st.add_argument(
        "--stdin",
        action="store_true",
        help=h("Wert als eine Zeile von der Standardeingabe lesen", "read the value as one line from standard input"),
    )
    st.set_defaults(func=set_secret)


def set_secret(args: argparse.Namespace, out: Out) -> int:
    # works while the config is still invalid: the missing secret may be exactly what is wrong
    raw = read_raw(config_path(args))
    accounts: dict[str, Any] = raw["accounts"] if isinstance(raw.get("accounts"), dict) else {}
    account = accounts.get(args.account)
    if not isinstance(account, dict):
        raise ConfigError(
            T(f"Unbekanntes Konto {args.account!r}.", f"unknown account {args.account!r}."),
            hint=T(f"Konten: {', '.join(accounts) or '-'}", f"accounts: {', '.join(accounts) or '-'}"),
        )
    atype = collect(make_plugin_manager()).account_types.get(str(account.get("type")))
    secret_fields = [f.name for f in atype.fields if f.secret] if atype else []
    field = args.field or (secret_fields[0] if secret_fields else None)
    if field is None or field not in secret_fields:
        raise ConfigError(
            T(
                f"Konto {args.account}: kein geheimes Feld {field or ''}".strip() + ".",
                f"account {args.account}: no secret field {field or ''}".strip() + ".",
            ),
            hint=T(
                f"Geheime Felder: {', '.join(secret_fields) or '-'}",
                f"secret fields: {', '.join(secret_fields) or '-'}",
            ),
        )
    reference = config_secrets.keyring_name(args.account, field)
    given: Any = account.get(field)
    if config_secrets.is_reference(given) and "keyring" in given:
        reference = str(given["keyring"])
    value = (
        sys.stdin.readline()
        if args.stdin
        else getpass.getpass(
            out.t(f"{field} für {args.account} (Eingabe unsichtbar): ", f"{field} for {args.account} (not shown): ")
        )
    ).strip()
    if not value:
        raise ConfigError(T("Leerer Wert; nichts gespeichert.", "empty value; nothing stored."))
    config_secrets.store_in_keyring(reference, value)
    points = config_secrets.is_reference(given) and given.get("keyring") == reference
    out.emit(
        {"ok": True, "account": args.account, "field": field, "keyring": reference, "config_uses_it": points},
        out.t(f"Im Schlüsselbund gespeichert: {reference}.", f"stored in the keyring: {reference}.")
        + (
            ""
            if points
            else "\n"
            + out.t(
                f"In der Konfiguration unter accounts.{args.account} eintragen:",
                f"Put this under accounts.{args.account} in the config:",
            )
            + f"\n    {field}: {{keyring: {reference}}}"
        ),
    )
    return ExitCode.OK
