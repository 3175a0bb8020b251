"""``config check``, ``plugins``, ``placeholders``: what an admin looks at while setting up."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from datetime import datetime, timezone

from .. import archive as archive_mod
from .. import expiry as expiry_mod
from ..config import ConfigProblems, purpose_label
from ..journal import JournalError
from ..mailer import Mailer
from ..results import ExitCode
from .context import config_path, lang_override, listing
from .output import Out
from .parser import Help


def add_parsers(sub: Any, common: argparse.ArgumentParser, h: Help) -> None:
    cfg = sub.add_parser("config", help=h("Konfiguration prüfen", "check the configuration"))
    cfg_sub = cfg.add_subparsers(dest="sub", required=True, metavar=h("BEFEHL", "COMMAND"))
    cfg_sub.add_parser(
        "check",
        parents=[common],
        help=h("alle Probleme mit Datei, Zeile und Schlüssel anzeigen", "show every problem with file, line and key"),
    ).set_defaults(func=config_check)
    sub.add_parser(
        "plugins",
        parents=[common],
        help=h("geladene Plugins mit Version und Hooks", "loaded plugins with version and hooks"),
    ).set_defaults(func=plugins)
    ph = sub.add_parser(
        "placeholders", parents=[common], help=h("Platzhalter für Vorlagen", "placeholders for templates")
    )
    ph.add_argument("--purpose", "-p", help=h("nur für diesen Zweck", "only for this purpose"))
    ph.set_defaults(func=placeholders)


def config_check(args: argparse.Namespace, out: Out) -> int:
    path = config_path(args)
    try:
        mailer = Mailer.from_config(path, lang=lang_override(args))
    except ConfigProblems as exc:
        if out.json:
            out.emit(
                {
                    "ok": False,
                    "exit_code": ExitCode.CONFIG,
                    "file": str(path),
                    "problems": [p.to_dict(out.lang) for p in exc.problems],
                },
                "",
            )
        else:
            for p in exc.problems:
                out.note(
                    f"{out.t('Warnung', 'warning') if p.warning else out.t('Fehler', 'error')}: {p.render(out.lang)}"
                )
            n = sum(1 for p in exc.problems if not p.warning)
            out.note(out.t(f"{n} Fehler in {path}.", f"{n} errors in {path}."))
        return ExitCode.CONFIG
    with mailer:
        cfg = mailer.config
        out.lang = cfg.lang
        if cfg.journal_url:  # a shared journal must be reachable before anything can be sent
            try:
                mailer.journal.schema_version()
            except JournalError as exc:
                return out.error(exc, ExitCode.CONFIG)
        purposes = {p: cfg.account_for(p) for p in cfg.purposes}
        now = datetime.now(timezone.utc)
        expiries = {
            name: expiry_mod.to_dict(name, mailer.credential_expiry(name), now, cfg.lang) for name in cfg.accounts
        }
        archives: dict[str, dict[str, Any]] = {
            p: {"folder": str(s.archive.folder), "retention_years": s.archive.retention_years}
            for p, s in cfg.purpose_settings.items()
            if s.archive is not None
        }
        expired = [e["message"] for e in expiries.values() if e and e["state"] == "expired"]
        for a in archives.values():  # a send would go out and then miss its GoBD copy
            why = archive_mod.cannot_write(Path(a["folder"]))
            if why:
                a["problem"] = out.t(
                    f"Archivordner {a['folder']} ist nicht beschreibbar ({why}); Mails dieses Zwecks gingen "
                    "ohne Archivkopie hinaus.",
                    f"archive folder {a['folder']} cannot be written ({why}); mails of this purpose would go "
                    "out without an archive copy.",
                )
        unarchivable = [a["problem"] for a in archives.values() if "problem" in a]
        data = {
            "ok": not expired and not unarchivable,
            "file": str(cfg.path),
            "accounts": list(cfg.accounts),
            "purposes": purposes,
            "journal": mailer.journal.where if cfg.journal_url else str(cfg.journal_path),
            "warnings": [p.to_dict(cfg.lang) for p in cfg.warnings],
            "plugin_failures": [{"name": f.name, "reason": f.reason.get(cfg.lang)} for f in mailer.pm.failures],
            "expiry": {k: v for k, v in expiries.items() if v},
            "archive": archives,
        }
        if expired or unarchivable:
            data["exit_code"] = ExitCode.CONFIG

        def human() -> str:
            lines = [f"{out.t('Warnung', 'warning')}: {p.render(cfg.lang)}" for p in cfg.warnings]
            lines += [
                f"{out.t('Plugin nicht geladen', 'plugin not loaded')}: {f.name}: {f.reason.get(cfg.lang)}"
                for f in mailer.pm.failures
            ]
            lines += [
                f"{out.t('Fehler', 'error') if e['state'] == 'expired' else out.t('Warnung', 'warning')}: "
                f"{e['message']}"
                for e in expiries.values()
                if e and e["message"]
            ]
            lines += [f"{out.t('Fehler', 'error')}: {problem}" for problem in unarchivable]
            lines.append(
                out.t(
                    f"{cfg.path}: in Ordnung ({len(cfg.accounts)} Konten).",
                    f"{cfg.path}: OK ({len(cfg.accounts)} accounts).",
                )
                if not expired and not unarchivable
                else out.t(
                    f"{cfg.path}: {len(unarchivable)} Archivordner nicht beschreibbar.",
                    f"{cfg.path}: {len(unarchivable)} archive folder(s) cannot be written.",
                )
                if not expired
                else out.t(
                    f"{cfg.path}: {len(expired)} Konto/Konten mit abgelaufenem Zugang; damit wird nicht gesendet.",
                    f"{cfg.path}: {len(expired)} account(s) with an expired credential; they do not send.",
                )
            )
            for p, a in purposes.items():
                lines.append(f"  {purpose_label(p, cfg.lang)} → {a or '-'}")
                if p in archives:
                    lines.append(
                        out.t(
                            f"      Archivkopie (GoBD): {archives[p]['folder']}, aufzubewahren "
                            f"{archives[p]['retention_years']} Jahre",
                            f"      archive copy (GoBD): {archives[p]['folder']}, kept "
                            f"{archives[p]['retention_years']} years",
                        )
                    )
            return "\n".join(lines)

        out.emit(data, human)
    return ExitCode.OK if not expired and not unarchivable else ExitCode.CONFIG


def plugins(args: argparse.Namespace, out: Out) -> int:
    pm, _, _ = listing(args, out)
    infos = pm.infos()
    data = {
        "plugins": [
            {
                "name": i.name,
                "distribution": i.distribution,
                "version": i.version,
                "builtin": i.builtin,
                "hooks": list(i.hooks),
            }
            for i in infos
        ],
        "failed": [
            {"name": f.name, "distribution": f.distribution, "reason": f.reason.get(out.lang)} for f in pm.failures
        ],
    }

    def human() -> str:
        lines = []
        for i in infos:
            origin = i.distribution + (f" {i.version}" if i.version else "")
            tag = out.t(" (eingebaut)", " (built-in)") if i.builtin else ""
            lines.append(f"{i.name}  {origin}{tag}\n    hooks: {', '.join(i.hooks)}")
        for f in pm.failures:
            lines.append(
                f"{f.name}  {f.distribution}  {out.t('NICHT GELADEN', 'NOT LOADED')}: {f.reason.get(out.lang)}"
            )
        return "\n".join(lines)

    out.emit(data, human)
    return ExitCode.OK


def placeholders(args: argparse.Namespace, out: Out) -> int:
    _, registries, cfg = listing(args, out)
    purposes = [args.purpose] if args.purpose else sorted({"invoice", "eservice", *(cfg.templates if cfg else ())})
    data: dict[str, Any] = {}
    for purpose in purposes:
        merged = cfg.placeholders_for(registries, purpose) if cfg else registries.placeholders_for(purpose)
        data[purpose] = sorted((p.to_dict(out.lang) for p in merged.values()), key=lambda d: d["name"].lower())

    def human() -> str:
        lines = []
        for purpose, items in data.items():
            lines.append(f"[{purpose_label(purpose, out.lang)}]")
            lines += [
                f"  {d['token']:<22} {d['description']}  ({out.t('z. B.', 'e.g.')} {d['example']})" for d in items
            ]
        return "\n".join(lines)

    out.emit({"placeholders": data}, human)
    return ExitCode.OK
