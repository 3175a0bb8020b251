"""One send, top to bottom.

:func:`send` takes a composed message (:mod:`.compose` checked every input) through
duplicate check → prepare hooks → confirmation → journal ``queued`` → :func:`deliver`, which
paces → claims (``sending``, fsynced: the one commit that must be on disk before anything leaves)
→ hands it to the transport → records ``sent`` / ``failed`` / ``unknown`` → runs the recorders.
The outbox and batches send what is already queued through :func:`deliver` alone.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from ccm_mail_hookspecs import (
    Cancel,
    Cancelled,
    CcmMailError,
    Message,
    PluginError,
    Preview,
    Receipt,
    SendContext,
    Status,
    T,
    Unconfirmed,
    UnknownOutcomeError,
)

from . import owner
from .journal import DuplicateSend, JournalError, row_fields
from .pacing import DailyLimitReached
from .plugins import call, call_each, implementations
from .redaction import scrub
from .results import SendResult

if TYPE_CHECKING:
    from .mailer import Mailer

log = structlog.get_logger("ccm_mail")


def send(mailer: Mailer, preview: Preview, *, resend: bool = False, batch: str | None = None) -> SendResult:
    """Prepare, confirm, journal and send one composed message.

    Raises for what stops a send before it is journaled (a duplicate, a failing prepare hook,
    nobody confirming); every outcome after that comes back as a :class:`SendResult`."""
    message, ctx = preview.message, preview.context
    if ctx.reference and not resend:
        existing = mailer.journal.blocking(ctx.purpose, ctx.reference)
        if existing is not None:  # before any hook or dialog sees it
            raise DuplicateSend(existing)
    cancel = prepare(mailer, preview)
    if cancel is not None:
        return _record_cancel(mailer, message, ctx, cancel.reason, batch)
    answer = confirm(mailer, preview)
    if answer is None:
        raise Unconfirmed(
            T(
                "Keine Bestätigung: niemand hat den Versand bestätigt; nichts gesendet.",
                "not confirmed: nobody confirmed sending; nothing sent.",
            ),
            hint=T(
                "Im Terminal ausführen oder --yes angeben (Stapelbetrieb).",
                "Run it in a terminal or pass --yes (batch use).",
            ),
        )
    if answer is False:
        return _record_cancel(mailer, message, ctx, T("Versand abgelehnt.", "sending declined."), batch)
    # the duplicate check again, in the same transaction as the insert: two senders cannot both pass
    row = mailer.journal.create(**row_fields(message, ctx), allow_duplicate=resend, batch=batch)
    for warning in preview.extra.get("warnings", ()):  # e.g. a credential that expires within 30 days
        log.warning("send_warning", journal_id=row, account=ctx.account, text=warning)
    result = deliver(mailer, row, message, ctx)
    result.warnings[:0] = list(preview.extra.get("warnings", ()))
    return result


def prepare(mailer: Mailer, preview: Preview) -> Cancel | None:
    """Run every prepare hook (later ones see earlier changes), then check the message again as
    the caller's own: a hook may have added recipients or headers. The first Cancel wins.
    (:func:`~ccm_mail_core.compose.compose` checked the caller's input: with no hook, nothing
    changed since.)"""
    cancel: Cancel | None = None
    hooks = implementations(mailer.pm, "ccm_mail_prepare")
    for impl in hooks:
        try:
            result = call(impl, message=preview.message, context=preview.context)
        except CcmMailError:
            raise
        except Exception as exc:
            raise PluginError(
                T(
                    f"Plugin {impl.plugin_name!r}: Vorbereitung gescheitert: {type(exc).__name__}: "
                    f"{exc}; nichts gesendet.",
                    f"plugin {impl.plugin_name!r}: prepare failed: {type(exc).__name__}: {exc}; nothing sent.",
                )
            ) from exc
        if cancel is None and isinstance(result, Cancel):
            cancel = result
    if cancel is None and hooks:
        preview.message.check()
    return cancel


def confirm(mailer: Mailer, preview: Preview) -> bool | None:
    """The confirmation dialog's answer: True, False, or None when nobody answered."""
    try:
        answer: bool | None = mailer.pm.hook.ccm_mail_confirm(preview=preview)
    except Exception as exc:  # a crashing dialog must never count as "yes"
        log.error("confirm_failed", error=str(exc))
        return False
    return answer


def deliver(
    mailer: Mailer, row: int, message: Message, ctx: SendContext, *, keep_queued_at_limit: bool = False
) -> SendResult:
    """Send a journaled (queued) message at the account's pace and record the outcome.

    When the daily recipient limit is reached nothing is sent: the row fails with that reason,
    or, with ``keep_queued_at_limit`` (batches), stays queued and the limit is raised."""
    journal = mailer.journal
    ctx = dataclasses.replace(ctx, journal_id=row)
    bound = log.bind(journal_id=row, purpose=ctx.purpose, account=ctx.account, reference=ctx.reference)
    pacer = mailer.pacer(ctx.account)
    recipients = len(message.recipients())
    before = journal.status_of(row)
    if before is not Status.QUEUED:  # taken by another process meanwhile: no pacing slot for it
        return SendResult(before or Status.UNKNOWN, row, message.message_id)
    try:
        admitted = pacer.acquire(recipients)
    except DailyLimitReached as exc:
        if keep_queued_at_limit:
            raise
        journal.transition(
            row, Status.FAILED, error=exc.render(mailer.lang), error_kind=exc.kind, expect=(Status.QUEUED,)
        )
        return SendResult(Status.FAILED, row, message.message_id, error=exc)
    left = False  # may the message have reached the provider? (the pacer counts it then)
    try:
        # the claim: only a queued row may start sending, and only one process may claim it
        if not journal.transition(
            row, Status.SENDING, count_attempt=True, owner=owner.current().format(), expect=(Status.QUEUED,)
        ):
            pacer.cancel(admitted, recipients=recipients)
            admitted = None
            entry = journal.get(row)
            status = entry.status if entry else Status.UNKNOWN
            bound.info("not_claimed", status=status.value)
            return SendResult(status, row, message.message_id)
        left = True
        bound.debug("sending", to=recipients, attachments=len(message.attachments))
        try:
            receipt = mailer.transport(ctx.account).send(message)
        except Exception as exc:
            error = _send_error(exc)
            left = error.sent is not False
            status = Status.UNKNOWN if left else Status.FAILED
            journal.transition(row, status, error=scrub(error.render(mailer.lang)), error_kind=error.kind)
            bound.error("send_" + status.value, error=error.render("en"), kind=error.kind)
            failures = recorders(
                mailer, "ccm_mail_failed", row, message=message, error=error, status=status, context=ctx
            )
            return SendResult(status, row, message.message_id, error=error, recorder_failures=failures)
        # a transport's ids are shown and stored: blank any secret a plugin let slip into them
        receipt = Receipt(
            receipt.sent_at,
            {k: scrub(str(v)) for k, v in receipt.transport_ids.items()},
            receipt.status,
            mime=receipt.mime,
            notes=receipt.notes,
        )
        archived, archive_failure = _archive(mailer, row, message, ctx, receipt) if message.archive else (None, None)
        try:
            journal.transition(
                row,
                Status.SENT,
                sent_at=receipt.sent_at,
                transport_ids=dict(receipt.transport_ids),
                archive=archived,
                detail=archive_failure,
            )
        except JournalError as exc:
            raise _unrecorded(row, exc) from exc
        bound.info(
            "sent", sent_at=receipt.sent_at.isoformat(), **{f"id_{k}": v for k, v in receipt.transport_ids.items()}
        )
        failures = recorders(mailer, "ccm_mail_sent", row, message=message, receipt=receipt, context=ctx)
        if archive_failure is not None:
            failures.insert(0, ("archive", archive_failure))
        return SendResult(
            Status.SENT,
            row,
            message.message_id,
            receipt=receipt,
            recorder_failures=failures,
            warnings=[n.get(mailer.lang) for n in receipt.notes],
            archive={"file": archived[0], "sha256": archived[1]} if archived else None,
        )
    finally:
        if admitted is not None:
            pacer.release(admitted, sent=left, recipients=recipients)


def _archive(
    mailer: Mailer, row: int, message: Message, ctx: SendContext, receipt: Receipt
) -> tuple[tuple[str, str] | None, str | None]:
    """Store the archive copy of a sent message: ((file, sha256), None), or (None, why not). The
    message is sent either way; a copy that could not be written is noted in the row's history and
    reported, and ``ccm-mail archive verify`` lists it."""
    from . import archive

    settings = mailer.config.purpose(ctx.purpose).archive
    try:
        if settings is None:
            raise archive.ArchiveError(
                T(
                    f"Zweck {ctx.purpose!r} hat keinen Archivordner mehr (purposes.{ctx.purpose}."
                    "archive); keine Archivkopie.",
                    f"purpose {ctx.purpose!r} has no archive folder any more (purposes."
                    f"{ctx.purpose}.archive); no archive copy.",
                )
            )
        if receipt.mime is None:
            raise archive.ArchiveError(
                T(
                    f"Der Transport ({ctx.account_type}) hat die gesendeten Bytes nicht geliefert; keine Archivkopie.",
                    f"the transport ({ctx.account_type}) did not return the bytes it sent; no archive copy.",
                )
            )
        stored = archive.store(settings.folder, row, message.message_id, receipt.sent_at, receipt.mime)
    except archive.ArchiveError as exc:
        text = exc.render(mailer.lang)
        log.error("archive_failed", journal_id=row, error=exc.render("en"))
        return None, text
    log.info("archived", journal_id=row, file=stored[0], sha256=stored[1])
    return stored, None


def recorders(mailer: Mailer, hook: str, row: int, **kwargs: object) -> list[tuple[str, str]]:
    """Run every implementation of a broadcast hook (``ccm_mail_sent`` / ``ccm_mail_failed``);
    each failure is logged and noted in the row's history, never undoing the recorded state."""
    reported = []
    for plugin, exc in call_each(mailer.pm, hook, **kwargs):
        text = scrub(f"{type(exc).__name__}: {exc}")
        log.error("recorder_failed", hook=hook, plugin=plugin, journal_id=row, error=text)
        if hook == "ccm_mail_sent":
            mailer.journal.transition(
                row,
                Status.SENT,
                detail=T(
                    f"Aufzeichnung durch {plugin} fehlgeschlagen: {text}", f"recorder {plugin} failed: {text}"
                ).get(mailer.lang),
            )
        reported.append((plugin, text))
    return reported


def _record_cancel(mailer: Mailer, message: Message, ctx: SendContext, reason: T, batch: str | None) -> SendResult:
    row = mailer.journal.create(
        **row_fields(message, ctx),
        status=Status.CANCELLED,
        allow_duplicate=True,
        batch=batch,
        error=reason.get(mailer.lang),
        error_kind="cancelled",
    )
    log.info("cancelled", journal_id=row, reference=ctx.reference, reason=reason.en)
    return SendResult(Status.CANCELLED, row, message.message_id, error=Cancelled(reason))


def _send_error(exc: Exception) -> CcmMailError:
    """The transport's error as the host records it; anything else is a transport bug, and then
    nobody can know whether the message left."""
    if isinstance(exc, CcmMailError):
        return exc
    return UnknownOutcomeError(
        T(f"Transport-Fehler: {type(exc).__name__}: {exc}", f"transport error: {type(exc).__name__}: {exc}"),
        hint=T(
            "Ausgang unklar; im Postfach prüfen, nicht blind erneut senden.",
            "Outcome unclear; check the mailbox, do not resend blindly.",
        ),
    )


def _unrecorded(row: int, exc: JournalError) -> JournalError:
    error = JournalError(
        T(
            f"Gesendet, aber das Journal kann es nicht mehr aufzeichnen: {exc.message.de} Eintrag {row} bleibt "
            "'sending'; der nächste Lauf sieht beim Anbieter nach, bevor irgendetwas erneut gesendet wird.",
            f"sent, but the journal can no longer record it: {exc.message.en} Entry {row} stays 'sending'; the next "
            "run looks it up at the provider before anything is sent again.",
        ),
        hint=exc.hint,
        details={**exc.details, "journal_id": row},
    )
    error.sent = None  # for the caller the outcome is unclear: never resend blindly
    return error
