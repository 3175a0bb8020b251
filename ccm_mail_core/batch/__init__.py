"""Bulk runs (e.g. the month-end invoices): validate every row first, confirm once, queue all,
then send at the pace the mailboxes allow. Re-running the same file continues where it stopped.

Exactly once: each row's identity is (batch id, row) with a Message-ID derived from it, so a
re-run finds the rows it already queued; rows left in ``sending`` by a killed run are settled by
looking them up at the provider before anything is resent (see :mod:`..outbox`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ccm_mail_hookspecs import Cancel, Cancelled, CcmMailError, ConfigError, Preview, Status, T, Unconfirmed, build_mime

from .. import owner
from ..journal import Entry, JournalError, row_fields
from ..outbox import CheckSummary, Outbox
from ..pacing import DailyLimitReached
from ..results import ExitCode
from . import file as batch_file
from .file import RowProblem
from .progress import Progress

if TYPE_CHECKING:
    from ..mailer import Mailer


@dataclass(slots=True)
class Plan:
    batch_id: str
    purpose: str
    path: Path
    encoding: str = "utf-8"
    new: list[tuple[int, Preview]] = field(default_factory=list)  #: rows to queue now
    resumed: list[Entry] = field(default_factory=list)  #: rows a previous run queued
    skipped: list[tuple[int, str, Entry]] = field(default_factory=list)  #: reference already sent elsewhere
    cancelled: list[tuple[int, Preview, T]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def to_send(self) -> int:
        return len(self.new) + sum(1 for e in self.resumed if e.status not in (Status.SENT, Status.CANCELLED))


@dataclass(slots=True)
class Summary:
    batch_id: str
    counts: Counter[str]
    skipped: int
    stopped: list[str] = field(default_factory=list)  #: why sending stopped early (daily limit, journal…)
    operator: list[int] = field(default_factory=list)  #: unknown rows the transport cannot settle
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.counts.get("unknown") or self.counts.get("sending"):  # sending: another process has them
            return ExitCode.UNKNOWN
        if self.counts.get("failed") or self.counts.get("queued") or self.stopped:
            return ExitCode.SEND_FAILED
        return ExitCode.OK

    def to_dict(self) -> dict[str, object]:
        return {
            "batch": self.batch_id,
            **{s.value: self.counts.get(s.value, 0) for s in Status if s is not Status.SENDING},
            "sending": self.counts.get("sending", 0),
            "skipped": self.skipped,
            "stopped": self.stopped,
            "needs_operator": self.operator,
            "seconds": round(self.seconds, 2),
        }


def batch_id_for(path: Path, purpose: str) -> str:
    digest = hashlib.sha256(purpose.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def plan(mailer: Mailer, path: Path, purpose: str, *, resend: bool = False, encoding: str | None = None) -> Plan:
    """Read and validate every row; nothing is queued or sent here."""
    try:
        rows, problems, used = batch_file.read(path, encoding)
    except OSError as exc:
        raise ConfigError(
            T(
                f"Stapeldatei {path} nicht lesbar ({exc.strerror}).",
                f"batch file {path} cannot be read ({exc.strerror}).",
            )
        ) from exc
    except (UnicodeDecodeError, LookupError) as exc:
        raise ConfigError(
            T(
                f"Stapeldatei {path} lässt sich nicht als {encoding or 'UTF-8 oder Windows-1252'} lesen: {exc}",
                f"batch file {path} cannot be read as {encoding or 'UTF-8 or Windows-1252'}: {exc}",
            ),
            hint=T(
                "Kodierung mit --encoding angeben (z. B. utf-8, cp1252, oder cp850 für DOS-Exporte).",
                "Give the encoding with --encoding (e.g. utf-8, cp1252, or cp850 for DOS exports).",
            ),
        ) from exc
    pool = mailer.config.pool_for(purpose)
    if not pool:
        raise ConfigError(T(f"Zweck {purpose!r} ist keinem Konto zugeordnet.", f"purpose {purpose!r} has no account."))
    bid = batch_id_for(path, purpose)
    result = Plan(bid, purpose, path, used, problems=list(problems))
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
            preview = mailer.compose(
                purpose,
                to=row.to,
                cc=row.cc,
                bcc=row.bcc,
                reply_to=row.reply_to,
                data=row.data,
                attachments=row.attachments,
                reference=row.reference,
                account=account,
                message_id=f"<ccm.{bid}.{row.number}@{domain}>",
                assume_yes=True,
            )
        except CcmMailError as exc:
            result.problems.append(RowProblem(row.number, _with_hint(exc)))
            continue
        ref = preview.context.reference
        if ref and ref in seen_refs:
            result.problems.append(
                RowProblem(
                    row.number,
                    T(
                        f"Referenz {ref} steht schon in Zeile {seen_refs[ref]}",
                        f"reference {ref} is already in row {seen_refs[ref]}",
                    ),
                )
            )
            continue
        if ref:
            seen_refs[ref] = row.number
        fresh.append((row.number, preview))
    taken = (
        {}
        if resend
        else mailer.journal.references_taken(purpose, [p.context.reference for _, p in fresh], except_batch=bid)
    )
    for number, preview in fresh:
        entry = taken.get(preview.context.reference)
        if entry is not None:
            result.skipped.append((number, preview.context.reference, entry))
            continue
        try:
            cancel = mailer.prepare(preview)
        except CcmMailError as exc:
            result.problems.append(RowProblem(number, _with_hint(exc)))
            continue
        if isinstance(cancel, Cancel):
            result.cancelled.append((number, preview, cancel.reason))
        else:
            result.new.append((number, preview))
    result.problems.sort(key=lambda p: p.row)
    return result


def _with_hint(exc: CcmMailError) -> T:
    return (
        exc.message if exc.hint is None else T(f"{exc.message.de} → {exc.hint.de}", f"{exc.message.en} → {exc.hint.en}")
    )


def confirm(mailer: Mailer, p: Plan, *, assume_yes: bool, interactive: bool) -> None:
    """One confirmation for the whole batch: a sample message and the count."""
    if not p.new:
        return  # nothing new; resumed rows were confirmed when they were queued
    sample = p.new[0][1]
    preview = Preview(
        sample.message,
        dataclasses.replace(sample.context, assume_yes=assume_yes, interactive=interactive),
        sample.account_label,
        {"count": len(p.new), "batch": p.batch_id},
    )
    answer = mailer.confirm(preview)
    if answer is None:
        raise Unconfirmed(
            T("Keine Bestätigung für den Stapel; nichts gesendet.", "batch not confirmed; nothing sent."),
            hint=T("Im Terminal ausführen oder --yes angeben.", "Run it in a terminal or pass --yes."),
        )
    if answer is False:
        raise Cancelled(T("Stapel abgelehnt; nichts gesendet.", "batch declined; nothing sent."))


def queue_plan(mailer: Mailer, p: Plan) -> int:
    """Queue the new rows in one transaction and record the cancelled ones; returns how many are new."""
    added = mailer.journal.create_batch(
        [
            {**row_fields(preview.message, preview.context), "batch": p.batch_id, "batch_row": number}
            for number, preview in p.new
        ]
    )
    for number, preview, reason in p.cancelled:
        mailer.journal.create(
            **row_fields(preview.message, preview.context),
            status=Status.CANCELLED,
            allow_duplicate=True,
            batch=p.batch_id,
            batch_row=number,
            error=reason.get(mailer.lang),
            error_kind="cancelled",
        )
    return added


def send(
    mailer: Mailer, p: Plan, *, stream: TextIO | None = None, grace_seconds: float | None = None, as_log: bool = False
) -> Summary:
    """Settle what an earlier run left open, send every queued row of the batch, then settle
    what ended unknown (found → sent, not found after the grace period → sent again)."""
    started = time.monotonic()
    outbox = Outbox(mailer)
    todo: list[Entry] = []
    stopped: list[str] = []
    check = CheckSummary()
    try:
        outbox.check(batch=p.batch_id, grace_seconds=grace_seconds)
        todo = outbox.queued(batch=p.batch_id)
    except JournalError as exc:
        stopped.append(exc.render(mailer.lang))
    progress = Progress(len(todo), lang=mailer.lang, stream=stream, as_log=as_log)
    if not stopped:
        stopped += _send_all(mailer, todo, progress)

    def again(entries: list[Entry]) -> bool:
        if stopped:
            return False
        progress.total += len(entries)
        stopped.extend(_send_all(mailer, entries, progress))
        return not stopped

    if not stopped:
        try:
            check = outbox.settle(batch=p.batch_id, grace_seconds=grace_seconds, send=again)
        except JournalError as exc:
            stopped.append(exc.render(mailer.lang))
    try:
        counts = Counter(e.status.value for e in mailer.journal.query(batch=p.batch_id, limit=0))
    except JournalError:  # the journal cannot even be read: say what this run saw itself
        counts = Counter(progress.counts)
        counts["queued"] += max(0, progress.total - progress.done)
    return Summary(p.batch_id, counts, len(p.skipped), stopped, check.operator, time.monotonic() - started)


def _send_all(mailer: Mailer, entries: list[Entry], progress: Progress) -> list[str]:
    """Send ``entries`` with one pool of workers per account, as many as its concurrency limit;
    the account's pacer spaces them. Returns why sending stopped early, if it did: the daily
    limit stops one account, a journal that cannot be written stops everything at once."""
    outbox = Outbox(mailer)
    stopped: list[str] = []
    halt = threading.Event()
    halted_accounts: set[str] = set()
    bugs: list[BaseException] = []

    def note(exc: CcmMailError) -> None:
        text = exc.render(mailer.lang)
        if text not in stopped:
            stopped.append(text)

    def one(entry: Entry) -> None:
        if halt.is_set() or entry.account in halted_accounts:
            return
        try:
            result = outbox.send_entry(entry, keep_queued_at_limit=True)
        except DailyLimitReached as exc:
            halted_accounts.add(entry.account)
            note(exc)
            return
        except JournalError as exc:
            if not halt.is_set():  # one message: the other workers meet the same broken journal
                halt.set()
                note(exc)
            return
        except BaseException as exc:  # a bug: stop, and let the caller show it once
            halt.set()
            bugs.append(exc)
            return
        progress.add(result.status.value)

    by_account: dict[str, list[Entry]] = {}
    for entry in entries:
        by_account.setdefault(entry.account, []).append(entry)
    if mailer.journal.shared:
        # hosts sharing the journal start at different rows, so they rarely reach for the same one
        # (a row another host took is skipped before any pacing slot is taken for it)
        start = zlib.crc32(owner.current().format().encode())
        by_account = {a: items[start % len(items) :] + items[: start % len(items)] for a, items in by_account.items()}
    pools = [
        concurrent.futures.ThreadPoolExecutor(
            max_workers=mailer.config.accounts[account].limits.concurrency, thread_name_prefix=f"ccm-mail-{account}"
        )
        for account in by_account
    ]
    futures = [
        pool.submit(one, entry) for pool, items in zip(pools, by_account.values(), strict=True) for entry in items
    ]
    try:
        pending = set(futures)
        while pending:  # waiting in slices: Ctrl+C reaches a waiting main thread on Windows too
            _, pending = concurrent.futures.wait(pending, timeout=0.5)
    except KeyboardInterrupt:
        halt.set()  # sends in flight finish and are journaled; the rest stays queued for a re-run
        raise
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    if bugs:
        raise bugs[0]
    return stopped


def dry_run(mailer: Mailer, p: Plan, folder: Path) -> list[Path]:
    """Render every row as the .eml file it would become into ``folder`` (row number and
    reference in the name); nothing is journaled or sent."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, preview in p.new:
        mime = build_mime(preview.message)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{number:05d}-{preview.context.reference or 'mail'}")[:80]
        target = folder / f"{name}.eml"
        target.write_bytes(mime.as_bytes(policy=mime.policy.clone(linesep="\r\n")))
        written.append(target)
    return written
