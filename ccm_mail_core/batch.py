"""Bulk runs (e.g. the month-end invoices): validate every row first, confirm once, queue all,
then send at the pace the mailboxes allow. Re-running the same file continues where it stopped.

Exactly once: each row's identity is (batch id, row) with a Message-ID derived from it, so a
re-run finds the rows it already queued; rows left in ``sending`` by a killed run are settled by
looking them up at the provider before anything is resent (see :mod:`outbox`).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import structlog

from ccm_mail_hookspecs import Cancel, Cancelled, CcmMailError, ConfigError, Preview, Status, T

from . import batch_file
from .batch_file import RowProblem
from .journal import Entry
from .outbox import Outbox
from .pacing import DailyLimitReached
from .progress import Progress

if TYPE_CHECKING:
    from .api import Mailer

log = structlog.get_logger("ccm_mail.batch")


@dataclass(slots=True)
class Plan:
    batch_id: str
    purpose: str
    path: Path
    new: list[tuple[int, Preview]] = field(default_factory=list)       #: rows to queue now
    resumed: list[Entry] = field(default_factory=list)                  #: rows a previous run queued
    skipped: list[tuple[int, str, Entry]] = field(default_factory=list)  #: reference already sent elsewhere
    cancelled: list[tuple[int, Preview, T]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def to_send(self) -> int:
        return len(self.new) + sum(1 for e in self.resumed if e.status is not Status.SENT
                                   and e.status is not Status.CANCELLED)


@dataclass(slots=True)
class Summary:
    batch_id: str
    counts: Counter[str]
    skipped: int
    stopped: list[str] = field(default_factory=list)   #: why sending stopped early (daily limit…)
    operator: list[int] = field(default_factory=list)  #: unknown rows the transport cannot settle
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        from .api import ExitCode
        if self.counts.get("unknown"):
            return ExitCode.UNKNOWN
        if self.counts.get("failed") or self.counts.get("queued") or self.stopped:
            return ExitCode.SEND_FAILED
        return ExitCode.OK

    def to_dict(self) -> dict[str, object]:
        return {"batch": self.batch_id, "sent": self.counts.get("sent", 0), "failed": self.counts.get("failed", 0),
                "unknown": self.counts.get("unknown", 0), "queued": self.counts.get("queued", 0),
                "cancelled": self.counts.get("cancelled", 0), "skipped": self.skipped, "stopped": self.stopped,
                "needs_operator": self.operator, "seconds": round(self.seconds, 2)}


def batch_id_for(path: Path, purpose: str) -> str:
    digest = hashlib.sha256(purpose.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def plan(mailer: Mailer, path: Path, purpose: str, *, resend: bool = False) -> Plan:
    """Read and validate every row; nothing is queued or sent here."""
    try:
        rows, problems = batch_file.read(path)
    except OSError as exc:
        raise ConfigError(T(f"Stapeldatei {path} nicht lesbar ({exc.strerror}).",
                            f"batch file {path} cannot be read ({exc.strerror}).")) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(T(f"Stapeldatei {path} ist kein UTF-8.", f"batch file {path} is not UTF-8.")) from exc
    pool = mailer.config.pool_for(purpose)
    if not pool:
        raise ConfigError(T(f"Zweck {purpose!r} ist keinem Konto zugeordnet.", f"purpose {purpose!r} has no account."))
    bid = batch_id_for(path, purpose)
    result = Plan(bid, purpose, path, problems=list(problems))
    earlier = {e.batch_row: e for e in mailer.journal.query(batch=bid, limit=0)}
    seen_refs: dict[str, int] = {}
    fresh: list[tuple[int, Preview]] = []
    for row in rows:
        if row.number in earlier:
            result.resumed.append(earlier[row.number])
            continue
        account = pool[(row.number - 1) % len(pool)]
        domain = mailer.sender_of(account).address.rpartition("@")[2]
        try:
            preview = mailer.build(purpose, to=row.to, cc=row.cc, bcc=row.bcc, reply_to=row.reply_to, data=row.data,
                                   attachments=row.attachments, reference=row.reference, account=account,
                                   message_id=f"<ccm.{bid}.{row.number}@{domain}>", assume_yes=True)
        except CcmMailError as exc:
            text = exc.message if exc.hint is None else T(f"{exc.message.de} → {exc.hint.de}",
                                                          f"{exc.message.en} → {exc.hint.en}")
            result.problems.append(RowProblem(row.number, text))
            continue
        ref = preview.context.reference
        if ref:
            if ref in seen_refs:
                result.problems.append(RowProblem(row.number, T(
                    f"Referenz {ref} steht schon in Zeile {seen_refs[ref]}", f"reference {ref} is already in row "
                                                                             f"{seen_refs[ref]}")))
                continue
            seen_refs[ref] = row.number
        fresh.append((row.number, preview))
    taken = {} if resend else mailer.journal.references_taken(
        purpose, [p.context.reference for _, p in fresh], except_batch=bid)
    for number, preview in fresh:
        entry = taken.get(preview.context.reference)
        if entry is not None:
            result.skipped.append((number, preview.context.reference, entry))
            continue
        try:
            cancel = mailer._prepare(preview)
        except CcmMailError as exc:
            result.problems.append(RowProblem(number, exc.message))
            continue
        if isinstance(cancel, Cancel):
            result.cancelled.append((number, preview, cancel.reason))
        else:
            result.new.append((number, preview))
    result.problems.sort(key=lambda p: p.row)
    return result


def confirm(mailer: Mailer, p: Plan, *, assume_yes: bool, interactive: bool) -> None:
    """One confirmation for the whole batch: a sample message and the count."""
    if p.to_send == 0:
        return
    sample = p.new[0][1] if p.new else None
    if sample is None:
        return  # only resuming rows that were confirmed when they were queued
    ctx = sample.context
    from dataclasses import replace
    preview = Preview(sample.message, replace(ctx, assume_yes=assume_yes, interactive=interactive),
                      sample.account_label, {"count": len(p.new), "batch": p.batch_id})
    answer = mailer._confirm(preview)
    if answer is None:
        raise Cancelled(T("Keine Bestätigung für den Stapel; nichts gesendet.", "batch not confirmed; nothing sent."),
                        hint=T("Im Terminal ausführen oder --yes angeben.", "Run it in a terminal or pass --yes."),
                        details={"code": "unconfirmed"})
    if answer is False:
        raise Cancelled(T("Stapel abgelehnt; nichts gesendet.", "batch declined; nothing sent."))


def queue_plan(mailer: Mailer, p: Plan) -> int:
    from .api import message_payload
    rows = []
    for number, preview in p.new:
        m, ctx = preview.message, preview.context
        rows.append({"message_id": m.message_id, "purpose": ctx.purpose, "account": ctx.account,
                     "account_type": ctx.account_type, "reference": ctx.reference,
                     "recipients": [a.address for a in m.recipients()], "subject": m.subject, "batch": p.batch_id,
                     "batch_row": number, "payload": message_payload(m)})
    added = mailer.journal.create_batch(rows)
    for number, preview, reason in p.cancelled:
        row = mailer.journal.create(message_id=preview.message.message_id, purpose=p.purpose,
                                    account=preview.context.account, account_type=preview.context.account_type,
                                    reference=preview.context.reference, allow_duplicate=True,
                                    recipients=[a.address for a in preview.message.recipients()],
                                    subject=preview.message.subject, status=Status.CANCELLED, batch=p.batch_id,
                                    batch_row=number)
        mailer.journal.transition(row, Status.CANCELLED, error=reason.get(mailer.lang), error_kind="cancelled")
    return added


def send(mailer: Mailer, p: Plan, *, stream: TextIO | None = None, grace_seconds: float | None = None) -> Summary:
    """Settle what an earlier run left open, then send every queued row of the batch."""
    started = time.monotonic()
    outbox = Outbox(mailer)
    grace = mailer.config.outbox_grace_seconds if grace_seconds is None else grace_seconds
    check = outbox.check(batch=p.batch_id, grace_seconds=grace)
    stopped: list[str] = []
    todo = sorted(mailer.journal.query(status=["queued"], batch=p.batch_id, limit=0), key=lambda e: e.batch_row or 0)
    progress = Progress(len(todo), lang=mailer.lang, stream=stream)
    _send_all(mailer, todo, progress, stopped)
    # rows whose outcome is unknown: look again until found, requeued after the grace period, or
    # known to need the operator; bounded by the grace period
    deadline = time.monotonic() + grace + 5
    while True:
        check = outbox.check(batch=p.batch_id, grace_seconds=grace)
        again = sorted(mailer.journal.query(status=["queued"], batch=p.batch_id, limit=0), key=lambda e: e.batch_row or 0)
        if again and not stopped:
            progress.total += len(again)
            _send_all(mailer, again, progress, stopped)
            continue
        if not check.waiting or time.monotonic() > deadline or stopped:
            break
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    counts = Counter(e.status.value for e in mailer.journal.query(batch=p.batch_id, limit=0))
    return Summary(p.batch_id, counts, len(p.skipped), stopped, check.operator, time.monotonic() - started)


def _send_all(mailer: Mailer, entries: list[Entry], progress: Progress, stopped: list[str]) -> None:
    by_account: dict[str, list[Entry]] = {}
    for entry in entries:
        by_account.setdefault(entry.account, []).append(entry)
    threads = []
    halt = threading.Event()
    for account, items in by_account.items():
        work: queue.SimpleQueue[Entry] = queue.SimpleQueue()
        for item in items:
            work.put(item)
        # one worker per allowed concurrent request; the account's pacer spaces them out
        for _ in range(min(mailer.config.accounts[account].limits.concurrency, len(items))):
            t = threading.Thread(target=_worker, args=(mailer, work, progress, stopped, halt),
                                 name=f"ccm-mail-{account}", daemon=True)
            t.start()
            threads.append(t)
    try:
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)
    except KeyboardInterrupt:
        halt.set()  # sends in flight finish and are journaled; the rest stays queued for a re-run
        for t in threads:
            t.join()
        raise


def _worker(mailer: Mailer, work: queue.SimpleQueue[Entry], progress: Progress, stopped: list[str],
            halt: threading.Event) -> None:
    outbox = Outbox(mailer)
    while not halt.is_set():
        try:
            entry = work.get_nowait()
        except queue.Empty:
            return
        try:
            result = outbox.send_entry(entry, keep_queued_at_limit=True)
        except DailyLimitReached as exc:
            text = exc.render(mailer.lang)
            if text not in stopped:
                stopped.append(text)
            return
        progress.add(result.status.value)


def dry_run(mailer: Mailer, p: Plan, folder: Path) -> list[Path]:
    """Render every row as an .eml file into ``folder``; nothing is journaled or sent."""
    from ccm_mail_hookspecs import AccountSettings
    from .builtins.pickup_folder import PickupTransport
    transport = PickupTransport(AccountSettings("dry-run", "pickup", {"folder": str(folder), "sender": ""},
                                                folder, mailer.lang))
    return [Path(transport.send(preview.message).transport_ids["file"]) for _, preview in p.new]
