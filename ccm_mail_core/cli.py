"""``ccm-mail``: the command line for admins, for AbSys and for scripts.

Every command takes ``--json`` for stable machine-readable output (documented in docs/cli.md).
Exit codes: see :class:`ccm_mail_core.api.ExitCode`.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from ccm_mail_hookspecs import Cancelled, CcmMailError, T, TransportError, UnknownOutcomeError

from . import logging_setup
from .api import DuplicateSend, ExitCode, Mailer
from .config import ConfigProblems, read_raw, build as build_config
from .plugin_manager import get_plugin_manager
from .preview_text import preview_dict, render_preview
from .registry import collect

DEFAULT_CONFIG = "ccm-mail.yaml"


class Out:
    """Writes results for people (in their language) or as JSON for programs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = bool(getattr(args, "json", False))
        self.lang = getattr(args, "lang", None) or os.environ.get("CCM_MAIL_LANG") or "de"

    def t(self, de: str, en: str) -> str:
        return en if self.lang == "en" else de

    def emit(self, data: Any, human: Callable[[], str] | str) -> None:
        # every byte a person or program reads passes the redaction, whatever a plugin put in it
        if self.json:
            print(logging_setup.scrub(json.dumps(data, ensure_ascii=False, indent=2, default=str)))
        else:
            text = human() if callable(human) else human
            if text:
                print(logging_setup.scrub(text))

    def error(self, exc: CcmMailError, code: int) -> int:
        if self.json:
            payload: dict[str, Any] = {"ok": False, "exit_code": code, "error": exc.to_dict(self.lang)}
            if isinstance(exc, ConfigProblems):
                payload["problems"] = [p.to_dict(self.lang) for p in exc.problems]
            print(logging_setup.scrub(json.dumps(payload, ensure_ascii=False, indent=2, default=str)))
        else:
            label = self.t("Fehler", "Error")
            print(f"{label}: {logging_setup.scrub(exc.render(self.lang))}", file=sys.stderr)
        return code


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("CCM_MAIL_CONFIG") or DEFAULT_CONFIG)


def _mailer(args: argparse.Namespace) -> Mailer:
    mailer = Mailer.from_config(_config_path(args), lang=args.lang)
    fmt = args.log_format or mailer.config.log_format
    logging_setup.configure(fmt=fmt, level=args.log_level or mailer.config.log_level)
    return mailer


# ---- commands ------------------------------------------------------------------------------
def cmd_config_check(args: argparse.Namespace, out: Out) -> int:
    path = _config_path(args)
    try:
        mailer = Mailer.from_config(path, lang=args.lang)
    except ConfigProblems as exc:
        out.lang = args.lang or out.lang
        if out.json:
            out.emit({"ok": False, "file": str(path), "problems": [p.to_dict(out.lang) for p in exc.problems]}, "")
        else:
            for p in exc.problems:
                tag = out.t("Warnung", "warning") if p.warning else out.t("Fehler", "error")
                print(f"{tag}: {p.render(out.lang)}", file=sys.stderr)
            n = sum(1 for p in exc.problems if not p.warning)
            print(out.t(f"{n} Fehler in {path}.", f"{n} errors in {path}."), file=sys.stderr)
        return ExitCode.CONFIG
    with mailer:
        cfg = mailer.config
        out.lang = cfg.lang
        data = {"ok": True, "file": str(cfg.path), "accounts": list(cfg.accounts),
                "purposes": {p: cfg.account_for(p) for p in sorted({*cfg.purposes, *cfg.templates})},
                "journal": str(cfg.journal_path), "warnings": [p.to_dict(cfg.lang) for p in cfg.warnings],
                "plugin_failures": [{"name": f.name, "reason": f.reason.get(cfg.lang)} for f in mailer.host.failures]}

        def human() -> str:
            lines = [f"{out.t('Warnung', 'warning')}: {p.render(cfg.lang)}" for p in cfg.warnings]
            lines += [f"{out.t('Plugin nicht geladen', 'plugin not loaded')}: {f.name}: {f.reason.get(cfg.lang)}"
                      for f in mailer.host.failures]
            lines.append(out.t(f"{cfg.path}: in Ordnung ({len(cfg.accounts)} Konten).",
                               f"{cfg.path}: OK ({len(cfg.accounts)} accounts)."))
            for purpose, account in data["purposes"].items():
                lines.append(f"  {purpose} → {account or '-'}")
            return "\n".join(lines)
        out.emit(data, human)
    return ExitCode.OK


def _host_for_listing(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Plugins and registries, with the config's disables when a config is there; listing works
    without a config so an integrator can look before writing one."""
    path = _config_path(args)
    blocked: tuple[str, ...] = ()
    raw = None
    note = Out(args).t(f"Hinweis: {path} ist fehlerhaft ('ccm-mail config check'); gezeigt wird ohne sie.",
                       f"note: {path} has errors ('ccm-mail config check'); shown without it.")
    if path.exists():
        from .config import blocked_plugins
        try:
            raw = read_raw(path)
            blocked = blocked_plugins(raw)
        except ConfigProblems:  # listing what is installed must work while the config is being fixed
            print(note, file=sys.stderr)
    host = get_plugin_manager(blocked=blocked)
    registries = collect(host)
    cfg = None
    if raw is not None:
        try:
            cfg = build_config(path, raw, registries, lang_override=args.lang)
        except ConfigProblems:
            print(note, file=sys.stderr)
    return host, registries, cfg


def cmd_plugins(args: argparse.Namespace, out: Out) -> int:
    host, _, _ = _host_for_listing(args)
    infos = host.infos()
    data = {"plugins": [{"name": i.name, "distribution": i.distribution, "version": i.version,
                         "builtin": i.builtin, "hooks": list(i.hooks)} for i in infos],
            "failed": [{"name": f.name, "distribution": f.distribution, "reason": f.reason.get(out.lang)}
                       for f in host.failures]}

    def human() -> str:
        lines = []
        for i in infos:
            origin = i.distribution + (f" {i.version}" if i.version else "")
            tag = out.t(" (eingebaut)", " (built-in)") if i.builtin else ""
            lines.append(f"{i.name}  {origin}{tag}\n    hooks: {', '.join(i.hooks)}")
        for f in host.failures:
            lines.append(f"{f.name}  {f.distribution}  {out.t('NICHT GELADEN', 'NOT LOADED')}: {f.reason.get(out.lang)}")
        return "\n".join(lines)
    out.emit(data, human)
    return ExitCode.OK


def cmd_accounts_types(args: argparse.Namespace, out: Out) -> int:
    _, registries, cfg = _host_for_listing(args)
    lang = cfg.lang if cfg else out.lang
    types = [registries.account_types[k] for k in sorted(registries.account_types)]
    data = {"types": [t.to_dict(lang) for t in types]}

    def human() -> str:
        lines = []
        for t in types:
            lines.append(f"{t.id}: {t.label.get(lang)}")
            for f in t.fields:
                flags = [out.t("Pflicht", "required") if f.required else out.t("optional", "optional")]
                if f.secret:
                    flags.append(out.t("geheim", "secret"))
                lines.append(f"  {f.name:<22} {f.label.get(lang)} [{', '.join(flags)}]")
                if f.help:
                    lines.append(f"  {'':<22}   {f.help.get(lang)}")
        return "\n".join(lines)
    out.emit(data, human)
    return ExitCode.OK


def cmd_accounts_list(args: argparse.Namespace, out: Out) -> int:
    with _mailer(args) as mailer:
        cfg = mailer.config
        rows = []
        for acc in cfg.accounts.values():
            atype = mailer.registries.account_types[acc.type]
            purposes = sorted(p for p in {*cfg.purposes, *cfg.templates} if cfg.account_for(p) == acc.name)
            shown = {k: ("***" if k in acc.secret_fields else v) for k, v in acc.values.items()}
            rows.append({"name": acc.name, "type": acc.type, "type_label": atype.label.get(cfg.lang),
                         "sender": str(mailer.sender_of(acc.name)), "purposes": purposes, "settings": shown})
        out.emit({"accounts": rows}, lambda: "\n".join(
            f"{r['name']}  [{r['type_label']}]  {r['sender']}  → {', '.join(r['purposes']) or '-'}" for r in rows))
    return ExitCode.OK


def cmd_accounts_test(args: argparse.Namespace, out: Out) -> int:
    with _mailer(args) as mailer:
        result = mailer.check_account(args.name)
        lang = mailer.lang
        data: dict[str, Any] = {"ok": result.ok, "steps": [{"step": s, "ok": ok, "text": t.get(lang)}
                                                         for s, ok, t in result.steps]}
        sent = None
        if result.ok and args.send_test_mail:
            sender = mailer.sender_of(args.name)
            from ccm_mail_hookspecs import Message
            msg = Message(subject=out.t("ccm-mail Testnachricht", "ccm-mail test message"), to=[sender], sender=sender,
                          text=out.t("Diese Nachricht bestätigt, dass das Konto senden kann.",
                                     "This message confirms that the account can send."))
            from email.utils import make_msgid
            msg.message_id = make_msgid(domain=sender.address.rpartition("@")[2])
            receipt = mailer.transport(args.name).send(msg)
            sent = {"sent_at": receipt.sent_at.isoformat(), "transport_ids": dict(receipt.transport_ids)}
            data["test_mail"] = sent

        def human() -> str:
            lines = [("✔ " if ok else "✘ ") + t.get(lang) for _, ok, t in result.steps]
            if sent:
                lines.append(out.t(f"✔ Testmail an {mailer.sender_of(args.name)} gesendet.",
                                   f"✔ test mail sent to {mailer.sender_of(args.name)}."))
            lines.append(out.t("Verbindung in Ordnung." if result.ok else "Verbindung fehlgeschlagen.",
                               "Connection OK." if result.ok else "Connection failed."))
            return "\n".join(lines)
        out.emit(data, human)
        return ExitCode.OK if result.ok else ExitCode.SEND_FAILED


def cmd_accounts_consent(args: argparse.Namespace, out: Out) -> int:
    with _mailer(args) as mailer:
        options: dict[str, Any] = {"no_browser": args.no_browser, "lang": mailer.lang,
                                   "out": lambda text: print(text, file=sys.stderr)}
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


def cmd_placeholders(args: argparse.Namespace, out: Out) -> int:
    _, registries, cfg = _host_for_listing(args)
    lang = cfg.lang if cfg else out.lang
    purposes = [args.purpose] if args.purpose else sorted({"invoice", "eservice", *(cfg.templates if cfg else ())})
    data: dict[str, Any] = {}
    for purpose in purposes:
        merged = cfg.placeholders_for(registries, purpose) if cfg else registries.placeholders_for(purpose)
        data[purpose] = sorted((p.to_dict(lang) for p in merged.values()), key=lambda d: d["name"].lower())

    def human() -> str:
        lines = []
        for purpose, items in data.items():
            lines.append(f"[{purpose}]")
            lines += [f"  {d['token']:<22} {d['description']}  ({out.t('z. B.', 'e.g.')} {d['example']})" for d in items]
        return "\n".join(lines)
    out.emit({"placeholders": data}, human)
    return ExitCode.OK


def _send_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if args.data:
        try:
            data = json.loads(Path(args.data).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CcmMailError(T(f"Datendatei {args.data} nicht lesbar ({exc.strerror}).",
                                 f"data file {args.data} cannot be read ({exc.strerror}).")) from exc
        except json.JSONDecodeError as exc:
            raise CcmMailError(T(f"Datendatei {args.data}: kein gültiges JSON (Zeile {exc.lineno}: {exc.msg}).",
                                 f"data file {args.data}: not valid JSON (line {exc.lineno}: {exc.msg}).")) from exc
        if not isinstance(data, dict):
            raise CcmMailError(T("Datendatei muss ein JSON-Objekt sein.", "the data file must hold a JSON object."))
    for item in args.field or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CcmMailError(T(f"--field erwartet NAME=WERT, nicht {item!r}", f"--field expects NAME=VALUE, not {item!r}"))
        data[key] = value
    headers = {}
    for item in args.header or []:
        key, sep, value = item.partition(":")
        headers[key.strip()] = value.strip()
    return {"to": args.to or [], "cc": args.cc or [], "bcc": args.bcc or [], "reply_to": args.reply_to or [],
            "data": data, "attachments": args.attach or [], "reference": args.reference, "headers": headers}


def cmd_preview(args: argparse.Namespace, out: Out) -> int:
    with _mailer(args) as mailer:
        preview = mailer.preview(args.purpose, **_send_kwargs(args))
        out.emit(preview_dict(preview), lambda: render_preview(preview, mailer.lang, body_lines=200))
    return ExitCode.OK


def cmd_send(args: argparse.Namespace, out: Out) -> int:
    with _mailer(args) as mailer:
        interactive = sys.stdin.isatty() and not out.json
        result = mailer.send(args.purpose, resend=args.resend, assume_yes=args.yes, interactive=interactive,
                             **_send_kwargs(args))
        lang = mailer.lang

        def human() -> str:
            if result.receipt is not None:
                lines = [out.t(f"Gesendet am {result.receipt.sent_at.astimezone():%d.%m.%Y %H:%M:%S} "
                               f"(Journal-Eintrag {result.journal_id}).",
                               f"Sent at {result.receipt.sent_at.astimezone():%Y-%m-%d %H:%M:%S} "
                               f"(journal entry {result.journal_id}).")]
                lines += [f"  {k}: {v}" for k, v in result.receipt.transport_ids.items()]
                lines += [out.t(f"Warnung: Aufzeichnung durch {p} fehlgeschlagen: {e}",
                                f"warning: recording by {p} failed: {e}") for p, e in result.recorder_failures]
                return "\n".join(lines)
            assert result.error is not None
            return ""
        if result.error is not None and not out.json:
            status = {"failed": out.t("NICHT gesendet", "NOT sent"), "unknown": out.t("Ausgang UNBEKANNT", "outcome UNKNOWN"),
                      "cancelled": out.t("abgebrochen", "cancelled")}.get(result.status.value, result.status.value)
            print(f"{status} ({out.t('Journal-Eintrag', 'journal entry')} {result.journal_id}): "
                  f"{logging_setup.scrub(result.error.render(lang))}", file=sys.stderr)
        out.emit({"ok": result.status.value == "sent", "exit_code": result.exit_code, **result.to_dict(lang)}, human)
        return result.exit_code


def cmd_journal(args: argparse.Namespace, out: Out) -> int:
    with _mailer(args) as mailer:
        journal = mailer.journal
        if args.id:
            entry = journal.get(args.id)
            entries = [entry] if entry else []
        else:
            entries = journal.query(reference=args.reference, status=args.status, purpose=args.purpose,
                                    since=args.since, until=args.until, limit=args.limit)
        data = {"entries": [dict(e.to_dict(), events=journal.events(e.id)) if args.id else e.to_dict() for e in entries]}

        def human() -> str:
            if not entries:
                return out.t("Keine Einträge.", "No entries.")
            lines = []
            for e in entries:
                when = e.sent_at or e.updated_at
                label = out.t("Versanddatum", "sent") if e.sent_at else out.t("Stand", "updated")
                lines.append(f"#{e.id}  {e.status.value:<9} {e.purpose:<9} {e.reference or '-':<16} "
                             f"{label} {_local(when)}  → {', '.join(e.recipients)}  \"{e.subject}\"")
                if e.error:
                    lines.append(f"      {e.error}")
                if args.id:
                    lines += [f"      {ev['at']}  {ev['status']}  {ev['detail'] or ''}" for ev in journal.events(e.id)]
            return "\n".join(lines)
        out.emit(data, human)
    return ExitCode.OK


def cmd_batch(args: argparse.Namespace, out: Out) -> int:
    from . import batch
    with _mailer(args) as mailer:
        lang = mailer.lang
        plan = batch.plan(mailer, Path(args.file), args.purpose, resend=args.resend)
        if plan.problems:
            data = {"ok": False, "exit_code": ExitCode.CONFIG, "batch": plan.batch_id,
                    "problems": [{"row": p.row, "message": p.message.get(lang)} for p in plan.problems]}
            if out.json:
                out.emit(data, "")
            else:
                for p in plan.problems:
                    print(p.render(lang), file=sys.stderr)
                print(out.t(f"{len(plan.problems)} fehlerhafte Zeilen in {args.file}; nichts gesendet.",
                            f"{len(plan.problems)} bad rows in {args.file}; nothing sent."), file=sys.stderr)
            return ExitCode.CONFIG
        if args.dry_run:
            files = batch.dry_run(mailer, plan, Path(args.dry_run))
            out.emit({"ok": True, "dry_run": True, "batch": plan.batch_id, "files": [str(f) for f in files],
                      "skipped": len(plan.skipped)},
                     out.t(f"{len(files)} Mails als .eml nach {args.dry_run} geschrieben (nichts gesendet).",
                           f"{len(files)} mails written as .eml to {args.dry_run} (nothing sent)."))
            return ExitCode.OK
        for number, ref, entry in plan.skipped:
            print(out.t(f"Zeile {number}: {ref} bereits im Journal ({entry.status.value}, Eintrag {entry.id}), übersprungen.",
                        f"row {number}: {ref} already in the journal ({entry.status.value}, entry {entry.id}), skipped."),
                  file=sys.stderr)
        interactive = sys.stdin.isatty() and not out.json
        batch.confirm(mailer, plan, assume_yes=args.yes, interactive=interactive)
        batch.queue_plan(mailer, plan)
        summary = batch.send(mailer, plan)

        def human() -> str:
            d = summary.to_dict()
            lines = [out.t(f"Stapel {d['batch']}: gesendet {d['sent']}, fehlgeschlagen {d['failed']}, "
                           f"unbekannt {d['unknown']}, wartend {d['queued']}, übersprungen {d['skipped']} "
                           f"({d['seconds']} s).",
                           f"batch {d['batch']}: sent {d['sent']}, failed {d['failed']}, unknown {d['unknown']}, "
                           f"queued {d['queued']}, skipped {d['skipped']} ({d['seconds']} s).")]
            lines += summary.stopped
            if summary.operator:
                lines.append(out.t("Ausgang unklar, bitte entscheiden: ccm-mail outbox resolve ID sent|resend|drop "
                                   f"für {', '.join(map(str, summary.operator))}",
                                   "outcome unclear, please decide: ccm-mail outbox resolve ID sent|resend|drop "
                                   f"for {', '.join(map(str, summary.operator))}"))
            return "\n".join(lines)
        out.emit({"ok": summary.exit_code == 0, "exit_code": summary.exit_code, **summary.to_dict()}, human)
        return summary.exit_code


def cmd_outbox(args: argparse.Namespace, out: Out) -> int:
    from .outbox import Outbox
    with _mailer(args) as mailer:
        outbox = Outbox(mailer)
        check = outbox.check()
        retried = outbox.retry_failed() if args.retry else []
        requeued = outbox.send_queued() if (args.retry or check.requeued) else []
        entries = outbox.entries()
        data = {"entries": [e.to_dict() for e in entries], "checked": {"sent": check.sent, "requeued": check.requeued,
                "waiting": check.waiting, "needs_operator": check.operator, "busy": check.busy},
                "retried": [r.to_dict(mailer.lang) for r in [*retried, *requeued]]}

        def human() -> str:
            lines = []
            if check.sent:
                lines.append(out.t(f"Beim Anbieter gefunden und als gesendet verbucht: {check.sent}",
                                   f"found at the provider and recorded as sent: {check.sent}"))
            for r in [*retried, *requeued]:
                lines.append(f"#{r.journal_id}: {r.status.value}" + (f" ({r.error.render(mailer.lang)})" if r.error else ""))
            if not entries:
                lines.append(out.t("Postausgang leer.", "outbox is empty."))
            for e in entries:
                note = ""
                if e.id in check.operator:
                    note = out.t("  → entscheiden: outbox resolve %d sent|resend|drop" % e.id,
                                 "  → decide: outbox resolve %d sent|resend|drop" % e.id)
                elif e.id in check.waiting:
                    note = out.t("  → noch nicht im Postfach gefunden; wird nach Wartezeit erneut gesendet",
                                 "  → not found in the mailbox yet; resent after the grace period")
                lines.append(f"#{e.id}  {e.status.value:<8} {e.purpose:<9} {e.reference or '-':<16} "
                             f"{e.attempts}x  {', '.join(e.recipients)}{note}")
                if e.error:
                    lines.append(f"      {e.error}")
            return "\n".join(lines)
        out.emit(data, human)
        if any(e.status.value in ("unknown", "sending") for e in entries):
            return ExitCode.UNKNOWN
        return ExitCode.SEND_FAILED if any(e.status.value == "failed" for e in entries) else ExitCode.OK


def cmd_outbox_resolve(args: argparse.Namespace, out: Out) -> int:
    from .outbox import Outbox
    with _mailer(args) as mailer:
        entry = Outbox(mailer).resolve(args.id, args.action)
        out.emit({"ok": True, "entry": entry.to_dict()},
                 out.t(f"Eintrag {entry.id}: {entry.status.value}.", f"entry {entry.id}: {entry.status.value}."))
        return ExitCode.OK if entry.status.value in ("sent", "cancelled") else \
            {"failed": ExitCode.SEND_FAILED, "unknown": ExitCode.UNKNOWN}.get(entry.status.value, 1)


def _local(iso: str) -> str:
    from datetime import datetime
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d.%m.%Y %H:%M:%S")
    except ValueError:
        return iso


# ---- parser --------------------------------------------------------------------------------
_HELP_LANG = "de"


def _h(de: str, en: str) -> str:
    return en if _HELP_LANG == "en" else de


def _help_lang(argv: Sequence[str]) -> str:
    """The language for --help, known before parsing: --lang, else CCM_MAIL_LANG, else German."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return os.environ.get("CCM_MAIL_LANG", "de")


def _common(suppress: bool) -> argparse.ArgumentParser:
    d = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", "-c", default=d, help=_h('YAML-Konfiguration (Standard: $CCM_MAIL_CONFIG oder ./ccm-mail.yaml)', 'YAML configuration (default: $CCM_MAIL_CONFIG or ./ccm-mail.yaml)'))
    p.add_argument("--lang", choices=("de", "en"), default=d, help=_h('Sprache der Ausgabe', 'language of the output'))
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                   help=_h('Ausgabe als JSON (stabile Schlüssel, docs/cli.md)', 'JSON output (stable keys, docs/cli.md)'))
    p.add_argument("--log-format", choices=("console", "json"), default=d, help=_h('Log-Format', 'log format'))
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=d)
    return p


def _send_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--purpose", "-p", required=True, help=_h('Zweck, z. B. invoice, eservice', 'purpose, e.g. invoice, eservice'))
    p.add_argument("--to", action="append", metavar="ADDR", help=_h('Empfänger (mehrfach möglich)', 'recipient (repeatable)'))
    p.add_argument("--cc", action="append", metavar="ADDR")
    p.add_argument("--bcc", action="append", metavar="ADDR")
    p.add_argument("--reply-to", action="append", metavar="ADDR")
    p.add_argument("--data", metavar="JSON", help=_h('Sendedaten (Rechnungsfelder) als JSON-Datei', 'send data (invoice fields) as a JSON file'))
    p.add_argument("--field", action="append", metavar="NAME=VALUE", help=_h('einzelnes Datenfeld', 'a single data field'))
    p.add_argument("--attach", "-a", action="append", metavar="FILE", help=_h('Anhang (mehrfach möglich)', 'attachment (repeatable)'))
    p.add_argument("--reference", "-r", help=_h('Referenz, z. B. Rechnungsnummer (sonst aus der Vorlage)', 'reference, e.g. the invoice number (else from the template)'))
    p.add_argument("--header", action="append", metavar="X-NAME:VALUE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccm-mail", parents=[_common(False)], description=_h(
        "ccm_Mail für AbSys: Mailversand über Microsoft 365 (OAuth 2.0) und weitere Anbieter.",
        "ccm_Mail for AbSys: sending mail through Microsoft 365 (OAuth 2.0) and further providers."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(True)

    cfg = sub.add_parser("config", help=_h('Konfiguration prüfen', 'check the configuration')).add_subparsers(dest="sub", required=True)
    cfg.add_parser("check", parents=[common], help=_h('alle Probleme mit Datei, Zeile und Schlüssel anzeigen', 'show every problem with file, line and key')).set_defaults(func=cmd_config_check)
    sub.add_parser("plugins", parents=[common], help=_h('geladene Plugins mit Version und Hooks', 'loaded plugins with version and hooks')).set_defaults(func=cmd_plugins)

    acc = sub.add_parser("accounts", help=_h('E-Mail-Konten', 'mail accounts')).add_subparsers(dest="sub", required=True)
    acc.add_parser("list", parents=[common], help=_h('Konten und ihre Zwecke', 'accounts and their purposes')).set_defaults(func=cmd_accounts_list)
    acc.add_parser("types", parents=[common], help=_h('Kontotypen und ihre Felder', 'account types and their fields')).set_defaults(func=cmd_accounts_types)
    t = acc.add_parser("test", parents=[common], help=_h('Verbindung testen', 'test the connection'))
    t.add_argument("name")
    t.add_argument("--send-test-mail", action="store_true", help=_h('Testmail an das Konto selbst senden', 'send a test mail to the account itself'))
    t.set_defaults(func=cmd_accounts_test)
    c = acc.add_parser("consent", parents=[common], help=_h('Admin Berechtigung erteilen', 'grant admin consent'))
    c.add_argument("name")
    c.add_argument("--no-browser", action="store_true", help=_h('URL nur ausgeben (Admin an anderem Rechner)', 'only print the URL (admin on another computer)'))
    c.add_argument("--timeout", type=float, help=_h('Sekunden warten auf die Rückmeldung', 'seconds to wait for the answer'))
    c.add_argument("--paste", action="store_true", help=_h('Adresse nach der Zustimmung hier einfügen (Admin an anderem Rechner)', 'paste the address after consenting (admin on another computer)'))
    c.add_argument("--redirect-url", metavar="URL", help=_h('Adresse aus dem Browser des Admins: schließt einen Vorgang mit --no-browser ab', "address from the admin's browser: finishes a run started with --no-browser"))
    c.set_defaults(func=cmd_accounts_consent)

    ph = sub.add_parser("placeholders", parents=[common], help=_h('Platzhalter für Vorlagen', 'placeholders for templates'))
    ph.add_argument("--purpose", "-p")
    ph.set_defaults(func=cmd_placeholders)

    pv = sub.add_parser("preview", parents=[common], help=_h('zeigen, was der Bestätigungsdialog zeigt', 'show what the confirmation dialog shows'))
    _send_args(pv)
    pv.set_defaults(func=cmd_preview)
    sd = sub.add_parser("send", parents=[common], help=_h('eine Mail senden', 'send one mail'))
    _send_args(sd)
    sd.add_argument("--yes", "-y", action="store_true", help=_h('Bestätigung vorab erteilen (Stapelbetrieb)', 'confirm in advance (batch use)'))
    sd.add_argument("--resend", action="store_true", help=_h('bewusst erneut senden, auch wenn die Referenz schon gesendet ist', 'send again on purpose, even if the reference was sent'))
    sd.set_defaults(func=cmd_send)

    jr = sub.add_parser("journal", parents=[common], help=_h('Versandjournal abfragen', 'query the journal'))
    jr.add_argument("--reference", "-r")
    jr.add_argument("--status", action="append", choices=("queued", "sending", "sent", "failed", "unknown", "cancelled"))
    jr.add_argument("--purpose", "-p")
    jr.add_argument("--since", help=_h('ab Datum (JJJJ-MM-TT)', 'from date (YYYY-MM-DD)'))
    jr.add_argument("--until", help=_h('vor Datum (JJJJ-MM-TT)', 'before date (YYYY-MM-DD)'))
    jr.add_argument("--limit", type=int, default=50)
    jr.add_argument("--id", type=int, help=_h('ein Eintrag mit Verlauf', 'one entry with its history'))
    jr.set_defaults(func=cmd_journal)

    bt = sub.add_parser("batch", parents=[common], help=_h('Stapelversand aus JSON Lines oder CSV', 'batch run from JSON Lines or CSV'))
    bt.add_argument("file", help=_h('JSON Lines (.jsonl) oder CSV (.csv)', 'JSON Lines (.jsonl) or CSV (.csv)'))
    bt.add_argument("--purpose", "-p", required=True)
    bt.add_argument("--yes", "-y", action="store_true", help=_h('Bestätigung vorab erteilen', 'confirm in advance'))
    bt.add_argument("--resend", action="store_true", help=_h('auch Referenzen senden, die schon gesendet sind', 'also send references that were already sent'))
    bt.add_argument("--dry-run", nargs="?", const="ccm-mail-dry-run", metavar="DIR",
                    help=_h('alles als .eml in DIR schreiben statt zu senden', 'write everything as .eml into DIR instead of sending'))
    bt.set_defaults(func=cmd_batch)

    ob = sub.add_parser("outbox", parents=[common], help=_h('Postausgang: wartend, unklar, fehlgeschlagen', 'outbox: queued, unknown, failed'))
    ob.add_argument("--retry", action="store_true", help=_h('fehlgeschlagene erneut senden', 'send failed ones again'))
    ob.set_defaults(func=cmd_outbox)
    obs = ob.add_subparsers(dest="sub")
    rs = obs.add_parser("resolve", parents=[common], help=_h('über eine Mail mit unklarem Ausgang entscheiden', 'decide about a mail whose outcome is unknown'))
    rs.add_argument("id", type=int)
    rs.add_argument("action", choices=("sent", "resend", "drop"))
    rs.set_defaults(func=cmd_outbox_resolve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    global _HELP_LANG
    _HELP_LANG = _help_lang(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Out(args)
    # until a config says otherwise, only warnings reach the terminal
    logging_setup.configure(fmt=args.log_format or "console", level=args.log_level or "warning")
    try:
        return int(args.func(args, out))
    except ConfigProblems as exc:
        return out.error(exc, ExitCode.CONFIG)
    except DuplicateSend as exc:
        return out.error(exc, ExitCode.DUPLICATE)
    except Cancelled as exc:
        return out.error(exc, ExitCode.CONFIG if exc.details.get("code") == "unconfirmed" else ExitCode.CANCELLED)
    except UnknownOutcomeError as exc:
        return out.error(exc, ExitCode.UNKNOWN)
    except TransportError as exc:
        return out.error(exc, ExitCode.SEND_FAILED)
    except CcmMailError as exc:  # template, address, attachment, data file: the input must change
        return out.error(exc, ExitCode.CONFIG)
    except KeyboardInterrupt:
        print(out.t("Abgebrochen.", "Interrupted."), file=sys.stderr)
        return 130
    except sqlite3.Error as exc:
        return out.error(CcmMailError(T(f"Journal nicht nutzbar: {exc}", f"journal cannot be used: {exc}"),
                                      hint=T("Pfad (journal.path), Rechte und freien Platz prüfen.",
                                             "Check journal.path, permissions and free disk space.")), ExitCode.CONFIG)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for the log
        structlog.get_logger("ccm_mail").exception("internal_error")
        return out.error(CcmMailError(T(f"Interner Fehler: {type(exc).__name__}: {exc}",
                                        f"internal error: {type(exc).__name__}: {exc}"),
                                      hint=T("Bitte mit dem Log an den Support melden.", "Please report it with the log.")),
                         ExitCode.SEND_FAILED)


if __name__ == "__main__":
    sys.exit(main())
