"""What the service does, without HTTP: one :class:`~ccm_mail_core.Mailer` for the whole process
(one journal writer, one token cache per account, one pacer per mailbox, shared by every caller),
the configuration picked up again when its file changes, what a previous run left open settled
in the background, batches run in their own threads.

The HTTP layer (:mod:`.app`) turns requests into these calls and their answers into JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ccm_mail_core import Mailer, batch
from ccm_mail_core.config import ConfigProblems, read_raw
from ccm_mail_core.config.write import Settings, Written
from ccm_mail_core.journal import DuplicateSend, now
from ccm_mail_core.outbox import Outbox
from ccm_mail_core.results import exit_code_for
from ccm_mail_hookspecs import Attachment, CcmMailError, ConfigError, Status, T

from .account_status import AccountStatus
from .attachments import AttachmentStore
from .keys import KeyStore
from .settings import ServerSettings

log = structlog.get_logger("ccm_mail.server")

#: how often the config file's stamp is looked at (a request never waits longer for a change)
RELOAD_CHECK_SECONDS = 1.0


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


@dataclass(slots=True)
class BatchRun:
    batch_id: str
    purpose: str
    total: int
    started_at: str
    thread: threading.Thread | None = None
    summary: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class Job:
    """An admin action that takes long (admin consent waits for Microsoft's redirect).

    While it runs, the action may ask for a line (:meth:`ask`): the admin at another computer
    pastes the address Microsoft sent their browser to (``POST /api/v1/jobs/{id}/answer``)."""

    job_id: str
    account: str
    action: str
    notes: list[str] = field(default_factory=list)
    result: Any = None
    error: dict[str, Any] | None = None
    done: bool = False
    asking: str | None = None
    answers: queue.Queue[str] = field(default_factory=queue.Queue)

    def ask(self, prompt: str) -> str:
        """The action's prompt: waits for an answer until the job ends (then EOFError, which
        tells the action nobody will answer)."""
        self.asking = prompt
        try:
            while not self.done:
                try:
                    return self.answers.get(timeout=0.5)
                except queue.Empty:
                    continue
            raise EOFError
        finally:
            self.asking = None


class Service:
    def __init__(
        self,
        config_path: Path,
        settings: ServerSettings,
        keys: KeyStore,
        *,
        lang: str | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.path = Path(config_path).resolve()
        self.mailer = mailer or Mailer.from_config(self.path, lang=lang)
        self.lang_override = lang
        self.settings = settings
        self.keys = keys
        self.state = self.mailer.config.state_dir / "server"
        self.attachments = AttachmentStore(self.state / "attachments", settings.attachment_dirs)
        self.started_at = now().isoformat()
        self.config_problems: ConfigProblems | None = None
        self._stamp = _stamp(self.path)
        self._checked = time.monotonic()
        self._reload_lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self.batches: dict[str, BatchRun] = {}
        self.jobs: dict[str, Job] = {}
        self.status = AccountStatus(self.state / "accounts.json")
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # ---- life -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker = threading.Thread(target=self._outbox_loop, name="ccm-mail-outbox", daemon=True)
        self._worker.start()

    def close(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
        for run in list(self.batches.values()):
            if run.thread is not None:
                run.thread.join(timeout=30)
        self.mailer.close()

    def current(self) -> Mailer:
        """The Mailer, after picking up a changed configuration file (looked at once a second)."""
        clock = time.monotonic()
        if clock - self._checked >= RELOAD_CHECK_SECONDS:
            self._checked = clock
            if _stamp(self.path) != self._stamp:
                self.reload()
        return self.mailer

    def reload(self) -> None:
        with self._reload_lock:
            self._stamp = _stamp(self.path)
            try:
                changed = self.mailer.reload()
            except ConfigProblems as exc:  # a hand edit with a mistake: keep sending with what worked
                self.config_problems = exc
                log.error("config_reload_failed", file=str(self.path), problems=len(exc.problems))
                return
            self.config_problems = None
            if changed:
                log.info("config_reloaded", file=str(self.path))

    def _outbox_loop(self) -> None:
        """Settle what is open: rows a dead process left ``sending``, unknown outcomes (looked up at
        the provider), and at the start the rows a previous run queued but never sent. Rows this
        run queued are sent by the request or batch that queued them, never from here."""
        first = True
        while not self._stop.is_set():
            wait = self.settings.outbox_seconds
            try:
                mailer = self.current()
                outbox = Outbox(mailer)
                summary = outbox.check()
                again = set(summary.requeued)
                running = {b for b, r in self.batches.items() if r.thread is not None and r.thread.is_alive()}
                for entry in outbox.queued():
                    if self._stop.is_set():
                        break
                    if entry.batch in running:
                        continue
                    if entry.id in again or (first and entry.created_at < self.started_at):
                        outbox.send_entry(entry)
                first = False
                if summary.waiting:
                    wait = 1.0
            except Exception:  # keep settling; the log says what went wrong
                log.exception("outbox_loop_failed")
            self._stop.wait(wait)

    # ---- sending --------------------------------------------------------------------------------
    def send_kwargs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "to": body.get("to") or [],
            "cc": body.get("cc") or [],
            "bcc": body.get("bcc") or [],
            "reply_to": body.get("reply_to") or [],
            "data": dict(body.get("data") or {}),
            "attachments": self._attachments(body.get("attachments") or [], "attachments"),
            "reference": body.get("reference"),
            "headers": dict(body.get("headers") or {}),
            "account": body.get("account"),
        }

    def _attachments(self, items: list[Any], where: str) -> list[Attachment]:
        return [self.attachments.take(item, f"{where}[{i}]") for i, item in enumerate(items)]

    def preview(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from ccm_mail_core.preview_text import preview_dict

        return preview_dict(self.current().preview(str(body["purpose"]), **self.send_kwargs(body)))

    def send(self, body: Mapping[str, Any], lang: str) -> dict[str, Any]:
        """One send; a repeat of a reference already sent (or on its way) answers with the first
        send's outcome (``repeat: true``) unless ``resend`` is asked for."""
        mailer = self.current()
        try:
            result = mailer.send(
                str(body["purpose"]),
                resend=bool(body.get("resend")),
                assume_yes=bool(body.get("yes")),
                interactive=False,
                **self.send_kwargs(body),
            )
        except DuplicateSend as exc:
            first = exc.existing
            return {
                "ok": first.status is Status.SENT,
                "exit_code": exit_code_for(first.status),
                "repeat": True,
                "status": first.status.value,
                "journal_id": first.id,
                "message_id": first.message_id,
                "sent_at": first.sent_at,
                "transport_ids": first.transport_ids,
                "error": exc.to_dict(lang),
                "recorder_failures": [],
            }
        return {
            "ok": result.status is Status.SENT,
            "exit_code": result.exit_code,
            "repeat": False,
            **result.to_dict(lang),
        }

    # ---- batches --------------------------------------------------------------------------------
    def submit_batch(self, body: Mapping[str, Any], lang: str) -> tuple[int, dict[str, Any]]:
        mailer = self.current()
        purpose = str(body["purpose"])
        rows = []
        for i, row in enumerate(body["rows"]):
            if not isinstance(row, dict):
                raise ConfigError(T(f"rows[{i}] ist kein Objekt.", f"rows[{i}] is not an object."))
            row = dict(row)
            row["attachments"] = [
                str(a.path) for a in self._attachments(row.get("attachments") or [], f"rows[{i}].attachments")
            ]
            rows.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
        text = "\n".join(rows) + "\n"
        folder = self.state / "batches"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256((purpose + chr(0) + text).encode('utf-8')).hexdigest()[:24]}.jsonl"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        with self._batch_lock:
            plan = batch.plan(mailer, path, purpose, resend=bool(body.get("resend")))
            if plan.problems:
                return 422, {
                    "ok": False,
                    "exit_code": 2,
                    "batch": plan.batch_id,
                    "error": CcmMailError(
                        T(
                            f"{len(plan.problems)} fehlerhafte Zeilen; nichts gesendet.",
                            f"{len(plan.problems)} bad rows; nothing sent.",
                        )
                    ).to_dict(lang)
                    | {"kind": "batch"},
                    "problems": [
                        {"row": p.row, "column": p.column, "message": p.message.get(lang)} for p in plan.problems
                    ],
                }
            run = self.batches.get(plan.batch_id)
            if run is not None and run.thread is not None and run.thread.is_alive():
                return 202, self.batch_progress(plan.batch_id)
            batch.confirm(mailer, plan, assume_yes=bool(body.get("yes")), interactive=False)
            batch.queue_plan(mailer, plan)
            run = BatchRun(plan.batch_id, purpose, len(body["rows"]), now().isoformat())
            run.thread = threading.Thread(
                target=self._run_batch,
                args=(mailer, plan, run, lang),
                name=f"ccm-mail-batch-{plan.batch_id}",
                daemon=True,
            )
            self.batches[plan.batch_id] = run
            run.thread.start()
        return 202, self.batch_progress(plan.batch_id)

    def _run_batch(self, mailer: Mailer, plan: batch.Plan, run: BatchRun, lang: str) -> None:
        try:
            run.summary = batch.send(mailer, plan, stream=io.StringIO()).to_dict()
        except CcmMailError as exc:
            run.error = exc.to_dict(lang)
        except Exception as exc:  # a bug: the caller must see that the batch stopped
            log.exception("batch_failed", batch=run.batch_id)
            run.error = CcmMailError(
                T(f"Interner Fehler: {type(exc).__name__}", f"internal error: {type(exc).__name__}")
            ).to_dict(lang)

    def batch_progress(self, batch_id: str) -> dict[str, Any]:
        entries = self.current().journal.query(batch=batch_id, limit=0)
        run = self.batches.get(batch_id)
        if not entries and run is None:
            raise LookupError(batch_id)
        counts = Counter(e.status.value for e in entries)
        running = run is not None and run.thread is not None and run.thread.is_alive()
        return {
            "batch": batch_id,
            "running": running,
            "total": len(entries),
            "counts": {s.value: counts.get(s.value, 0) for s in Status},
            "summary": run.summary if run else None,
            "error": run.error if run else None,
        }

    # ---- admin actions --------------------------------------------------------------------------
    def start_job(self, account: str, action: str, options: dict[str, Any], lang: str) -> Job:
        mailer = self.current()
        atype = mailer.account_type_of(account)  # an unknown account fails here, before the job exists
        if action not in atype.actions:
            raise ConfigError(
                T(
                    f"Kontotyp {atype.id!r} bietet '{action}' nicht an.",
                    f"account type {atype.id!r} does not offer '{action}'.",
                )
            )
        job = Job(hashlib.sha256(f"{account}{action}{time.time_ns()}".encode()).hexdigest()[:16], account, action)
        if action == "consent":
            options = {"ask": job.ask, **options}

        def work() -> None:
            try:
                job.result = mailer.account_action(account, action, out=job.notes.append, lang=lang, **options)
            except CcmMailError as exc:
                job.error = exc.to_dict(lang)
            except Exception as exc:
                log.exception("job_failed", account=account, action=action)
                job.error = CcmMailError(
                    T(f"Interner Fehler: {type(exc).__name__}", f"internal error: {type(exc).__name__}")
                ).to_dict(lang)
            finally:
                job.done = True
                if action == "consent":
                    self.status.record_consent(account, job.result, job.error)

        self.jobs[job.job_id] = job
        threading.Thread(target=work, name=f"ccm-mail-{action}", daemon=True).start()
        return job

    # ---- settings -------------------------------------------------------------------------------
    def settings_writer(self, who: str) -> Settings:
        return Settings(self.path, self.mailer.registries, who=who, via="api", lang_override=self.lang_override)

    def saved(self, written: Written) -> Written:
        """After a write: the next request uses it (no waiting for the file check)."""
        self.reload()
        if written.action == "accounts.set":
            self.status.record_saved(written.target)
        return written

    def template_trial(
        self, purpose: str, change: Mapping[str, Any], *, to: list[str], data: Mapping[str, Any], lang: str
    ) -> dict[str, Any]:
        """A template as the admin is editing it, not saved: checked with the rules of ``config
        check`` and, when it passes, rendered with the placeholders' example data exactly as
        ``ccm-mail preview`` shows it (compose, then the prepare hooks)."""
        import yaml

        from ccm_mail_core import templates as tpl_mod
        from ccm_mail_core.compose import account_of, compose
        from ccm_mail_core.config import build
        from ccm_mail_core.preview_text import preview_dict, render_preview_dict
        from ccm_mail_hookspecs import Address

        mailer = self.current()
        document = yaml.safe_load(self.path.read_text(encoding="utf-8-sig")) or {}
        section = document.setdefault("templates", {}) or {}
        document["templates"] = section
        draft = dict(section.get(purpose) or {})
        for key in ("subject", "body", "format", "reference"):
            if change.get(key) is not None:
                draft[key] = change[key]
        if change.get("body") is not None:
            draft.pop("body_file", None)
        section[purpose] = draft
        known = mailer.config.placeholders_for(mailer.registries, purpose)
        unknown: list[str] = []
        for key in ("subject", "body", "reference"):
            try:
                names = tpl_mod.parse(str(draft.get(key) or "")).names
            except CcmMailError:
                continue  # a lone '#': config check below words it
            unknown += [n for n in names if n not in known and n not in unknown]
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
        try:
            cfg = build(self.path, read_raw(self.path, text), mailer.registries, lang_override=self.lang_override)
        except ConfigProblems as exc:
            return {
                "ok": False,
                "unknown": unknown,
                "problems": [
                    p.to_dict(lang)
                    for p in exc.problems
                    if not p.warning and (p.key == f"templates.{purpose}" or p.key.startswith(f"templates.{purpose}."))
                ]
                or [p.to_dict(lang) for p in exc.problems if not p.warning],
                "preview": None,
                "text": None,
            }
        examples = {name: p.example for name, p in cfg.placeholders_for(mailer.registries, purpose).items()}
        try:
            account = account_of(cfg, purpose, None)
            acc = cfg.accounts[account]
            field_name = mailer.registries.account_types[acc.type].sender_field_name
            sender = Address(str(acc.values.get(field_name or "", "")), acc.from_name)
            shown = compose(
                cfg, mailer.registries, purpose, sender=sender, to=to, data={**examples, **data}, account=account
            )
            mailer.prepare(shown)
        except CcmMailError as exc:
            return {
                "ok": False,
                "unknown": unknown,
                "problems": [],
                "error": exc.to_dict(lang),
                "preview": None,
                "text": None,
            }
        d = preview_dict(shown)
        return {
            "ok": True,
            "unknown": unknown,
            "problems": [],
            "preview": d,
            "text": render_preview_dict(d, lang, body_lines=200),
        }

    def search_journal(
        self,
        *,
        reference: str | None,
        reference_contains: str | None,
        recipient: str | None,
        status: list[str] | None,
        purpose: str | None,
        since: str | None,
        until: str | None,
        batch: str | None,
        limit: int,
    ) -> list[Any]:
        """The journal's own query, and for the pages' search the parts of an invoice number or a
        recipient address, matched here (case-insensitive) on the rows the query returned."""
        journal = self.current().journal
        scan = bool(reference_contains or recipient)
        entries = journal.query(
            reference=reference,
            status=status,
            purpose=purpose,
            since=since,
            until=until,
            batch=batch,
            limit=0 if scan else limit,
        )
        if not scan:
            return entries
        part, who = (reference_contains or "").casefold(), (recipient or "").casefold()
        found = [
            e
            for e in entries
            if part in e.reference.casefold() and (not who or any(who in r.casefold() for r in e.recipients))
        ]
        return found[:limit] if limit else found

    def settings_document(self) -> dict[str, Any]:
        """The settings as the file has them, secrets only as where they are kept."""
        from ccm_mail_core.config import secrets as config_secrets

        raw = read_raw(self.path)
        registries = self.mailer.registries
        accounts = {}
        for name, acc in (raw.get("accounts") or {}).items():
            if not isinstance(acc, dict):
                continue
            atype = registries.account_types.get(str(acc.get("type")))
            secret = {f.name for f in atype.fields if f.secret} if atype else set()
            shown: dict[str, Any] = {}
            for key, value in acc.items():
                if key in secret or config_secrets.is_reference(value):
                    kind = next(iter(value)) if config_secrets.is_reference(value) else "inline"
                    shown[key] = {"secret": True, "source": kind}
                else:
                    shown[key] = value
            accounts[str(name)] = shown
        from ccm_mail_core.config.purposes import pool_of

        purposes, options = {}, {}
        for p, v in (raw.get("purposes") or {}).items():
            pool = pool_of(v)  # a purpose written as a mapping names its accounts under 'account'
            purposes[str(p)] = list(pool) if isinstance(pool, list) else [pool]
            if isinstance(v, dict):  # its defaults (reply_to, bcc, from, archive, …) as written
                options[str(p)] = _plain({k: x for k, x in v.items() if k != "account"})
        return {
            "file": str(self.path),
            "language": raw.get("language", "de"),
            "accounts": accounts,
            "purposes": purposes,
            "purpose_options": options,
            "templates": _plain(raw.get("templates") or {}),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
