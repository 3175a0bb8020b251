"""``accounts list|types|test|consent``: the mail accounts (*Kommunikation – E-Mail-Adressen*);
``accounts set|remove`` live with the other settings commands in :mod:`.settings`."""

from __future__ import annotations

import argparse
import sys
from email.utils import make_msgid
from typing import Any

from ccm_mail_hookspecs import Message

from ..config import purpose_label
from ..results import ExitCode
from .context import listing, open_mailer
from .output import Out
from .parser import Help
from .settings import add_account_parsers


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    acc = sub.add_parser("accounts", help=h("E-Mail-Konten", "mail accounts"))
    acc_sub = acc.add_subparsers(dest="sub", required=True, metavar=h("BEFEHL", "COMMAND"))
    acc_sub.add_parser(
        "list", parents=[common], help=h("Konten und ihre Zwecke", "accounts and their purposes")
    ).set_defaults(func=list_accounts)
    acc_sub.add_parser(
        "types", parents=[common], help=h("Kontotypen und ihre Felder", "account types and their fields")
    ).set_defaults(func=types)
    t = acc_sub.add_parser("test", parents=[common], help=h("Verbindung testen", "test the connection"))
    t.add_argument("name", help=h("Name des Kontos", "the account's name"))
    t.add_argument(
        "--send-test-mail",
        action="store_true",
        help=h("Testmail an das Konto selbst senden", "send a test mail to the account itself"),
    )
    t.set_defaults(func=test)
    c = acc_sub.add_parser("consent", parents=[common], help=h("Admin Berechtigung erteilen", "grant admin consent"))
    c.add_argument("name", help=h("Name des Kontos", "the account's name"))
    c.add_argument(
        "--no-browser",
        action="store_true",
        help=h("URL nur ausgeben (Admin an anderem Rechner)", "only print the URL (admin on another computer)"),
    )
    c.add_argument(
        "--timeout", type=float, help=h("Sekunden warten auf die Rückmeldung", "seconds to wait for the answer")
    )
    c.add_argument(
        "--paste",
        action="store_true",
        help=h(
            "Adresse nach der Zustimmung hier einfügen (Admin an anderem Rechner)",
            "paste the address after consenting (admin on another computer)",
        ),
    )
    c.add_argument(
        "--redirect-url",
        metavar="URL",
        help=h(
            "Adresse aus dem Browser des Admins: schließt einen Vorgang mit --no-browser ab",
            "address from the admin's browser: finishes a run started with --no-browser",
        ),
    )
    c.set_defaults(func=consent)
    add_account_parsers(acc_sub, common, h)


def list_accounts(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        cfg = mailer.config
        rows = []
        for acc in cfg.accounts.values():
            atype = mailer.registries.account_types[acc.type]
            shown = {k: ("***" if k in acc.secret_fields else v) for k, v in acc.values.items()}
            rows.append(
                {
                    "name": acc.name,
                    "type": acc.type,
                    "type_label": atype.label.get(cfg.lang),
                    "sender": str(mailer.sender_of(acc.name)),
                    "settings": shown,
                    "purposes": [p for p in cfg.purposes if cfg.account_for(p) == acc.name],
                }
            )
        out.emit(
            {"accounts": rows},
            lambda: "\n".join(
                f"{r['name']}  [{r['type_label']}]  {r['sender']}  → "
                f"{', '.join(purpose_label(p, cfg.lang) for p in r['purposes']) or '-'}"
                for r in rows
            ),
        )
    return ExitCode.OK


def types(args: argparse.Namespace, out: Out) -> int:
    _, registries, _ = listing(args, out)
    found = [registries.account_types[k] for k in sorted(registries.account_types)]

    def human() -> str:
        lines = []
        for t in found:
            lines.append(f"{t.id}: {t.label.get(out.lang)}")
            for f in t.fields:
                flags = [out.t("Pflicht", "required") if f.required else out.t("optional", "optional")]
                if f.secret:
                    flags.append(out.t("geheim", "secret"))
                lines.append(f"  {f.name:<22} {f.label.get(out.lang)} [{', '.join(flags)}]")
                if f.help:
                    lines.append(f"  {'':<22}   {f.help.get(out.lang)}")
        return "\n".join(lines)

    out.emit({"types": [t.to_dict(out.lang) for t in found]}, human)
    return ExitCode.OK


def test(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        result = mailer.check_account(args.name)
        data: dict[str, Any] = {
            "ok": result.ok,
            "steps": [{"step": s, "ok": ok, "text": t.get(out.lang)} for s, ok, t in result.steps],
        }
        expiry = _expiry(mailer, args.name, out)
        data["expiry"] = expiry
        if any(e and e["state"] == "expired" for e in expiry.values()):
            data["ok"] = False
        sender = mailer.sender_of(args.name)
        if result.ok and args.send_test_mail:
            msg = Message(
                subject=out.t("ccm-mail Testnachricht", "ccm-mail test message"),
                to=[sender],
                sender=sender,
                text=out.t(
                    "Diese Nachricht bestätigt, dass das Konto senden kann.",
                    "This message confirms that the account can send.",
                ),
                message_id=make_msgid(domain=sender.address.rpartition("@")[2]),
            )
            receipt = mailer.transport(args.name).send(msg)
            data["test_mail"] = {"sent_at": receipt.sent_at.isoformat(), "transport_ids": dict(receipt.transport_ids)}

        def human() -> str:
            lines = [("✔ " if ok else "✘ ") + t.get(out.lang) for _, ok, t in result.steps]
            lines += [
                ("✘ " if e["state"] == "expired" else "! " if e["state"] == "soon" else "✔ ") + e["text"]
                for e in expiry.values()
                if e
            ]
            if "test_mail" in data:
                lines.append(out.t(f"✔ Testmail an {sender} gesendet.", f"✔ test mail sent to {sender}."))
            lines.append(
                out.t("Verbindung in Ordnung.", "Connection OK.")
                if data["ok"]
                else out.t("Verbindung fehlgeschlagen.", "Connection failed.")
            )
            return "\n".join(lines)

        out.emit(data, human)
        return ExitCode.OK if data["ok"] else ExitCode.SEND_FAILED


def _expiry(mailer: Any, account: str, out: Out) -> dict[str, Any]:
    """The credential's expiry as the settings say (what every send checks) and as the provider
    says (when the transport can ask it); a difference between the two is pointed out."""
    from datetime import datetime, timezone

    from .. import expiry as expiry_mod

    now = datetime.now(timezone.utc)
    local = mailer.credential_expiry(account)
    try:
        provider = mailer.transport(account).credential_expiry()
    except Exception as exc:  # asking is a courtesy: the connection test above has said what fails
        out.note(out.t(f"Ablaufdatum beim Anbieter nicht lesbar: {exc}", f"expiry not readable at the provider: {exc}"))
        provider = None
    found: dict[str, Any] = {}
    for key, item in (("config", local), ("provider", provider)):
        shown = expiry_mod.to_dict(account, item, now, out.lang)
        if item is None or shown is None or (key == "provider" and item.source != "provider"):
            continue
        when = item.not_after.astimezone(timezone.utc)
        source = {
            "config": out.t("laut Konfiguration", "from the configuration"),
            "certificate": out.t("laut Zertifikatsdatei", "from the certificate file"),
            "provider": out.t("laut Anbieter", "from the provider"),
        }.get(item.source, item.source)
        shown["text"] = shown["message"] or out.t(
            f"{shown['what']} gültig bis {when:%d.%m.%Y} ({source}).",
            f"{shown['what']} valid until {when:%Y-%m-%d} ({source}).",
        )
        found[key] = shown
    if (
        provider is not None
        and provider.source == "provider"
        and (local is None or abs((local.not_after - provider.not_after).days) >= 1)
    ):
        when = provider.not_after.astimezone(timezone.utc)
        out.note(
            out.t(
                f"Hinweis: Microsoft nennt für den Schlüssel den {when:%d.%m.%Y}; client_secret_expires: "
                f"{when:%Y-%m-%d} im Konto eintragen, damit jeder Versand rechtzeitig warnt.",
                f"note: Microsoft gives {when:%Y-%m-%d} for the secret; set client_secret_expires: "
                f"{when:%Y-%m-%d} in the account so every send warns in time.",
            )
        )
    return found


def consent(args: argparse.Namespace, out: Out) -> int:
    with open_mailer(args, out) as mailer:
        options: dict[str, Any] = {"no_browser": args.no_browser, "lang": mailer.lang, "out": out.note}
        if args.timeout:
            options["timeout"] = args.timeout
        if args.redirect_url:
            options["redirect_url"] = args.redirect_url
        elif args.paste or (args.no_browser and sys.stdin.isatty()):
            options["ask"] = _ask_stderr
        result = mailer.account_action(args.name, "consent", **options)
        ok = bool(result.get("ok")) if isinstance(result, dict) else bool(result)
        out.emit(result, lambda: str(result.get("message", result)) if isinstance(result, dict) else str(result))
        return ExitCode.OK if ok else ExitCode.SEND_FAILED


def _ask_stderr(prompt: str) -> str:
    """A prompt that keeps stdout for --json: the question on stderr, the answer from stdin."""
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
