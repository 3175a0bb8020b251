"""The Python API a host embeds, and the send pipeline:
render → prepare → confirm → journal queued → sending → transport → sent/failed/unknown → hooks.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import structlog

from ccm_mail_hookspecs import (
    AccountSettings, AccountType, Address, Attachment, Cancel, Cancelled, CcmMailError, CheckResult,
    ConfigError, Message, Placeholder, Preview, Receipt, SendContext, Status, T, Transport, TransportError,
    UnknownOutcomeError,
)

from . import config as config_mod
from . import templates
from .builtins import confirm_terminal
from .journal import DuplicateReference, Journal
from .journal import now as journal_now
from .pacing import DailyLimitReached, Pacer
from .logging_setup import scrub
from .plugin_manager import PluginHost, get_plugin_manager
from .registry import Registries, collect

log = structlog.get_logger("ccm_mail")

def _boot_id() -> str:
    """Changes with every boot, so a process id from before a reboot is never taken as alive."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "noboot"


#: who is sending (host, boot, pid): a row in "sending" whose owner is gone was interrupted mid-send
OWNER = f"{socket.gethostname()}:{_boot_id()}:{os.getpid()}"


class DuplicateSend(CcmMailError):
    """The reference was already sent (or is on its way) for this purpose."""

    kind = "duplicate"


class ExitCode:
    """Process exit codes of ``ccm-mail`` (stable; AbSys branches on them)."""

    OK = 0
    SEND_FAILED = 1
    CONFIG = 2        #: configuration or usage error; nothing was sent
    CANCELLED = 3     #: declined at confirmation or by a prepare hook; nothing was sent
    UNKNOWN = 4       #: the outcome is unknown: do not resend, check the journal/outbox
    DUPLICATE = 5     #: refused: this reference was already sent (use --resend to send again)


@dataclass(slots=True)
class SendResult:
    status: Status
    journal_id: int
    message_id: str
    receipt: Receipt | None = None
    error: CcmMailError | None = None
    recorder_failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {Status.SENT: ExitCode.OK, Status.FAILED: ExitCode.SEND_FAILED,
                Status.CANCELLED: ExitCode.CANCELLED, Status.UNKNOWN: ExitCode.UNKNOWN}.get(self.status, 1)

    def to_dict(self, lang: str = "de") -> dict[str, Any]:
        return {
            "status": self.status.value, "journal_id": self.journal_id, "message_id": self.message_id,
            "sent_at": self.receipt.sent_at.isoformat() if self.receipt else None,
            "transport_ids": dict(self.receipt.transport_ids) if self.receipt else {},
            "error": self.error.to_dict(lang) if self.error else None,
            "recorder_failures": [{"plugin": p, "error": e} for p, e in self.recorder_failures],
        }


class Mailer:
    """ccm-mail for one configuration file.

    >>> mailer = Mailer.from_config("ccm-mail.yaml", plugins={"absys": AbsysHooks()})
    >>> result = mailer.send("invoice", to=["kunde@example.de"], data={...}, attachments=["RE-1.pdf"])
    """

    def __init__(self, path: Path, host: PluginHost, *, lang: str | None = None) -> None:
        self.path = Path(path)
        self.host = host
        self._lang_override = lang
        self._transports: dict[str, Transport] = {}
        self._pacers: dict[str, Pacer] = {}
        self._lock = threading.Lock()
        self._journal: Journal | None = None
        self._raw = config_mod.read_raw(self.path)
        self._rebuild()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], *, lang: str | None = None,
                    plugins: Mapping[str, object] | Iterable[tuple[str, object]] = (),
                    load_entrypoints: bool = True) -> "Mailer":
        """Load the YAML config and the plugins. ``plugins`` are the host's own plugin objects
        (name → object), registered like any other plugin. Raises ``ConfigProblems``."""
        path = Path(path)
        raw = config_mod.read_raw(path)
        extra = list(plugins.items()) if isinstance(plugins, Mapping) else list(plugins)
        host = get_plugin_manager(blocked=config_mod.blocked_plugins(raw), load_entrypoints=load_entrypoints,
                                  extra=extra)
        return cls(path, host, lang=lang)

    # ---- set-up -----------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.registries: Registries = collect(self.host)
        self.config = config_mod.build(self.path, self._raw, self.registries, lang_override=self._lang_override)
        self._placeholders: dict[str, Mapping[str, Placeholder]] = {}  # by purpose, for this config
        self._senders: dict[str, Address] = {}  # by account, for this config
        self._configure_plugins()

    def _configure_plugins(self) -> None:
        problems = []
        for info in self.host.infos():
            settings = self.config.plugin_settings.get(info.name, {})
            try:
                self.host.call_for(info.name, "ccm_mail_configure", settings=settings, lang=self.lang)
            except CcmMailError as exc:
                problems.append(config_mod.Problem(str(self.config.path), 0, f"plugins.settings.{info.name}",
                                                   exc.message, exc.hint))
            except Exception as exc:
                problems.append(config_mod.Problem(
                    str(self.config.path), 0, f"plugins.settings.{info.name}",
                    T(f"Plugin gescheitert: {type(exc).__name__}: {exc}", f"plugin failed: {type(exc).__name__}: {exc}")))
        unknown = set(self.config.plugin_settings) - {i.name for i in self.host.infos()}
        for name in sorted(unknown):
            problems.append(config_mod.Problem(str(self.config.path), 0, f"plugins.settings.{name}",
                                               T("kein solches Plugin geladen", "no such plugin is loaded"),
                                               T("'ccm-mail plugins' zeigt die geladenen", "'ccm-mail plugins' lists them")))
        if problems:
            raise config_mod.ConfigProblems(problems)

    def register(self, plugin: object, name: str) -> None:
        """Register a host plugin after loading (e.g. AbSys' own confirm and sent hooks)."""
        self.host.register(plugin, name)
        self.host.pm.check_pending()
        self._rebuild()

    def unregister(self, name: str) -> None:
        self.host.unregister(name)
        self._rebuild()

    @property
    def lang(self) -> str:
        return self.config.lang

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.config.journal_path)
        return self._journal

    def close(self) -> None:
        for transport in self._transports.values():
            try:
                transport.close()
            except Exception as exc:  # closing must not hide the send's result
                log.warning("transport_close_failed", error=str(exc))
        self._transports.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- what AbSys shows --------------------------------------------------------------------
    def account_types(self) -> list[AccountType]:
        return [self.registries.account_types[k] for k in sorted(self.registries.account_types)]

    def placeholders(self, purpose: str) -> list[Placeholder]:
        return list(self.config.placeholders_for(self.registries, purpose).values())

    def account_type_of(self, account: str) -> AccountType:
        acc = self._account(account)
        return self.registries.account_types[acc.type]

    def account_settings(self, account: str) -> AccountSettings:
        acc = self._account(account)
        state = self.config.state_dir / re.sub(r"[^A-Za-z0-9._-]+", "_", acc.name)
        state.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            os.chmod(state, 0o700)
            os.chmod(self.config.state_dir, 0o700)
        return AccountSettings(acc.name, acc.type, dict(acc.values), state, self.lang, acc.secret_fields)

    def transport(self, account: str) -> Transport:
        with self._lock:
            if account not in self._transports:
                atype = self.account_type_of(account)
                self._transports[account] = atype.create_transport(self.account_settings(account))
            return self._transports[account]

    def check_account(self, account: str) -> CheckResult:
        return self.transport(account).check()

    def account_action(self, account: str, action: str, **options: Any) -> Any:
        atype = self.account_type_of(account)
        if action not in atype.actions:
            raise ConfigError(T(f"Kontotyp {atype.id!r} bietet '{action}' nicht an.",
                                f"account type {atype.id!r} does not offer '{action}'."))
        return atype.actions[action](self.account_settings(account), **options)

    def _account(self, name: str) -> config_mod.AccountConfig:
        if name not in self.config.accounts:
            known = ", ".join(self.config.accounts)
            raise ConfigError(T(f"Unbekanntes Konto {name!r}.", f"unknown account {name!r}."),
                              hint=T(f"Konten: {known}", f"accounts: {known}"))
        return self.config.accounts[name]

    def sender_of(self, account: str) -> Address:
        sender = self._senders.get(account)
        if sender is None:
            sender = self._senders[account] = self._sender_of(account)
        return sender

    def _sender_of(self, account: str) -> Address:
        acc = self._account(account)
        atype = self.registries.account_types[acc.type]
        fld = atype.sender_field_name
        address = str(acc.values.get(fld, "")) if fld else ""
        if not address:
            raise ConfigError(T(f"Konto {account!r} hat keine Absenderadresse.", f"account {account!r} has no sender address."))
        return Address(address, acc.from_name)

    # ---- building a message ------------------------------------------------------------------
    def build(self, purpose: str, *, to: Sequence[str | Address], cc: Sequence[str | Address] = (),
              bcc: Sequence[str | Address] = (), reply_to: Sequence[str | Address] = (),
              data: Mapping[str, Any] | None = None, attachments: Sequence[str | os.PathLike[str] | Attachment] = (),
              reference: str | None = None, headers: Mapping[str, str] | None = None,
              assume_yes: bool = False, interactive: bool = False, account: str | None = None,
              message_id: str | None = None) -> Preview:
        """Render the purpose's template for this send; raise a clear error if anything is wrong.
        Nothing is sent or journaled here: this is also what ``preview`` shows. ``account``
        picks one of the purpose's pool (default: the first)."""
        if account is not None and account not in self.config.pool_for(purpose):
            raise ConfigError(T(f"Konto {account!r} bedient Zweck {purpose!r} nicht.",
                                f"account {account!r} does not serve purpose {purpose!r}."))
        account = account or self.config.account_for(purpose)
        if account is None:
            known = ", ".join(self.config.purposes) or "-"
            raise ConfigError(T(f"Zweck {purpose!r} ist keinem Konto zugeordnet.", f"purpose {purpose!r} has no account."),
                              hint=T(f"Unter 'purposes:' zuordnen. Vorhanden: {known}",
                                     f"Map it under 'purposes:'. Configured: {known}"))
        template = self.config.templates.get(purpose)
        if template is None:
            raise ConfigError(T(f"Keine Vorlage für Zweck {purpose!r}.", f"no template for purpose {purpose!r}."),
                              hint=T(f"Unter 'templates: {purpose}:' Betreff und Text anlegen.",
                                     f"Add subject and body under 'templates: {purpose}:'."))
        acc = self._account(account)
        data = dict(data or {})
        recipients = {k: [a if isinstance(a, Address) else Address.parse(str(a)) for a in v]
                      for k, v in (("to", to), ("cc", cc), ("bcc", bcc), ("reply_to", reply_to))}
        if not recipients["to"] and not recipients["cc"] and not recipients["bcc"]:
            raise ConfigError(T("Kein Empfänger angegeben.", "no recipient given."),
                              hint=T("Mit --to die Adresse des Kunden angeben.", "Give the customer's address with --to."))
        count = len(recipients["to"]) + len(recipients["cc"]) + len(recipients["bcc"])
        if count > acc.limits.recipients_per_message:
            raise ConfigError(T(f"{count} Empfänger; das Konto erlaubt {acc.limits.recipients_per_message} je Mail.",
                                f"{count} recipients; the account allows {acc.limits.recipients_per_message} per message."))
        files = [a if isinstance(a, Attachment) else Attachment(a if isinstance(a, Path) else Path(a))
                 for a in attachments]
        for att in files:
            att.check()
        ctx = SendContext(purpose=purpose, account=account, account_type=acc.type, reference="", data=data,
                          lang=self.lang, interactive=interactive, assume_yes=assume_yes)
        resolve = self._resolver(purpose, ctx)
        subject = templates.check_subject(template.subject.render(resolve))
        body = template.body.render(resolve, escape_html=template.html)
        if reference is None and template.reference is not None:
            reference = template.reference.render(resolve)
        ctx = SendContext(purpose=purpose, account=account, account_type=acc.type, reference=(reference or "").strip(),
                          data=data, lang=self.lang, interactive=interactive, assume_yes=assume_yes)
        sender = self.sender_of(account)
        message = Message(subject=subject, to=recipients["to"], cc=recipients["cc"], bcc=recipients["bcc"],
                          reply_to=recipients["reply_to"], sender=sender,
                          text=None if template.html else body, html=body if template.html else None,
                          attachments=files, headers=dict(headers or {}),
                          message_id=message_id or make_msgid(domain=sender.address.rpartition("@")[2]))
        return Preview(message=message, context=ctx, account_label=f"{account} ({acc.type})")

    def _resolver(self, purpose: str, ctx: SendContext):  # type: ignore[no-untyped-def]
        placeholders = self._placeholders.get(purpose)
        if placeholders is None:
            placeholders = self._placeholders[purpose] = self.config.placeholders_for(self.registries, purpose)

        def resolve(name: str) -> str | None:
            return placeholders[name].resolve(ctx) if name in placeholders else None
        return resolve

    def preview(self, purpose: str, **kwargs: Any) -> Preview:
        """What the confirmation dialog shows, after the prepare hooks (nothing is sent)."""
        preview = self.build(purpose, **kwargs)
        self._prepare(preview)
        return preview

    def _prepare(self, preview: Preview) -> Cancel | None:
        results = self.host.hook.ccm_mail_prepare(message=preview.message, context=preview.context)
        for result in results:
            if isinstance(result, Cancel):
                return result
        # a prepare hook may have added recipients or headers: check them like the user's own
        for addr in preview.message.recipients():
            Address(addr.address, addr.name)
        templates.check_subject(preview.message.subject)
        for name in preview.message.headers:
            if not name.lower().startswith("x-"):
                raise ConfigError(T(f"Kopfzeile {name!r} nicht erlaubt: nur X-…", f"header {name!r} not allowed: X-… only"))
        return None

    # ---- sending -----------------------------------------------------------------------------
    def send(self, purpose: str, *, resend: bool = False, batch: str | None = None, **kwargs: Any) -> SendResult:
        """Render, prepare, confirm, journal and send one message.

        Raises :class:`CcmMailError` subclasses for problems found before anything was journaled
        (config, template, address, attachment, duplicate, unconfirmed). Send outcomes, including
        failures, come back as a :class:`SendResult` whose status says what happened.
        """
        preview = self.build(purpose, **kwargs)
        ctx = preview.context
        message = preview.message
        if ctx.reference and not resend and self._acts_before_claim(ctx):
            self._refuse_duplicate(purpose, ctx.reference)
        try:
            cancel = self._prepare(preview)
        except CcmMailError:
            raise
        except Exception as exc:
            raise CcmMailError(T(f"Vorbereitung gescheitert: {type(exc).__name__}: {exc}; nichts gesendet.",
                                 f"prepare failed: {type(exc).__name__}: {exc}; nothing sent.")) from exc
        if cancel is not None:
            return self._record_cancel(message, ctx, cancel.reason, batch)
        answer = self._confirm(preview)
        if answer is not True:
            if answer is None:
                raise Cancelled(T("Keine Bestätigung: niemand hat den Versand bestätigt; nichts gesendet.",
                                  "not confirmed: nobody confirmed sending; nothing sent."),
                                hint=T("Im Terminal ausführen oder --yes angeben (Stapelbetrieb).",
                                       "Run it in a terminal or pass --yes (batch use)."),
                                details={"code": "unconfirmed"})
            return self._record_cancel(message, ctx, T("Versand abgelehnt.", "sending declined."), batch)
        return self.deliver(message, ctx, resend=resend, batch=batch)

    def _acts_before_claim(self, ctx: SendContext) -> bool:
        """Does anything happen between rendering and the claim (a prepare hook, a dialog)? Then
        a duplicate is refused before it; otherwise the claim's own check refuses it as early."""
        hook = self.host.pm.hook
        return (not ctx.assume_yes or bool(hook.ccm_mail_prepare.get_hookimpls())
                or any(impl.plugin is not confirm_terminal for impl in hook.ccm_mail_confirm.get_hookimpls()))

    def _refuse_duplicate(self, purpose: str, reference: str) -> None:
        existing = self.journal.blocking(purpose, reference)
        if existing is not None:
            raise self._duplicate_error(existing)

    def _duplicate_error(self, entry: Any) -> DuplicateSend:
        when = entry.sent_at or entry.created_at
        return DuplicateSend(
            T(f"{entry.reference} ({entry.purpose}) ist bereits im Journal: Status {entry.status.value}, {when} "
              f"(Eintrag {entry.id}); nichts gesendet.",
              f"{entry.reference} ({entry.purpose}) is already in the journal: status {entry.status.value}, {when} "
              f"(entry {entry.id}); nothing sent."),
            hint=T("Mit --resend bewusst erneut senden.", "Use --resend to send it again on purpose."),
            details={"journal_id": entry.id, "status": entry.status.value})

    def _confirm(self, preview: Preview) -> bool | None:
        try:
            return self.host.hook.ccm_mail_confirm(preview=preview)
        except Exception as exc:  # a crashing dialog must never count as "yes"
            log.error("confirm_failed", error=str(exc))
            return False

    def _record_cancel(self, message: Message, ctx: SendContext, reason: T, batch: str | None) -> SendResult:
        row = self.journal.create(message_id=message.message_id, purpose=ctx.purpose, account=ctx.account,
                                  account_type=ctx.account_type, reference=ctx.reference,
                                  recipients=[a.address for a in message.recipients()], subject=message.subject,
                                  status=Status.CANCELLED, allow_duplicate=True, batch=batch)
        self.journal.transition(row, Status.CANCELLED, error=reason.get(self.lang), error_kind="cancelled")
        log.info("cancelled", journal_id=row, reference=ctx.reference, reason=reason.en)
        return SendResult(Status.CANCELLED, row, message.message_id, error=Cancelled(reason))

    def deliver(self, message: Message, ctx: SendContext, *, resend: bool = False, batch: str | None = None) -> SendResult:
        """Journal and send a rendered, confirmed message: queued and claimed in one durable
        commit once the account's pacer lets it go, then handed to the transport."""
        fields = dict(message_id=message.message_id, purpose=ctx.purpose, account=ctx.account,
                      account_type=ctx.account_type, reference=ctx.reference,
                      recipients=[a.address for a in message.recipients()], subject=message.subject,
                      allow_duplicate=resend, batch=batch, payload=message_payload(message))
        try:
            return self._paced(ctx.account, message, lambda: self._create_and_send(fields, message, ctx))
        except DailyLimitReached as exc:
            row = self._create(fields)
            self.journal.transition(row, Status.FAILED, error=exc.render(self.lang), error_kind=exc.kind)
            return SendResult(Status.FAILED, row, message.message_id, error=exc)

    def _create_and_send(self, fields: dict[str, Any], message: Message, ctx: SendContext) -> SendResult:
        row = self._create(fields, claimed_by=OWNER)
        ctx = dataclasses.replace(ctx, journal_id=row)
        bound = log.bind(journal_id=row, purpose=ctx.purpose, account=ctx.account, reference=ctx.reference)
        return self._send_claimed(row, message, ctx, bound)

    def _paced(self, account: str, message: Message, send: Callable[[], SendResult]) -> SendResult:
        """Run ``send`` once the account's pacer admits it; raises :class:`DailyLimitReached`
        before anything is sent when the day's recipient budget is used up."""
        pacer = self.pacer(account)
        recipients = len(message.recipients())
        pacer.acquire(recipients)
        result: SendResult | None = None
        try:
            result = send()
            return result
        finally:
            pacer.release(sent=result is not None and result.status in (Status.SENT, Status.UNKNOWN),
                          recipients=recipients)

    def _create(self, fields: dict[str, Any], *, claimed_by: str | None = None) -> int:
        try:
            return self.journal.create(**fields, claimed_by=claimed_by)
        except DuplicateReference as dup:
            raise self._duplicate_error(dup.existing) from None

    def pacer(self, account: str) -> Pacer:
        """The account's pacing (messages per window, recipients per day, concurrency), shared
        by every send of this Mailer."""
        with self._lock:
            if account not in self._pacers:
                since = journal_now() - timedelta(days=1)
                self._pacers[account] = Pacer(account, self._account(account).limits,
                                              sent_today=lambda: self.journal.recipients_since(account, since))
            return self._pacers[account]

    def send_journaled(self, row: int, message: Message, ctx: SendContext, *, keep_queued_at_limit: bool = False
                       ) -> SendResult:
        """Hand a journaled message to its transport, at the account's pace, and record the outcome.

        When the daily recipient limit is reached the message is not sent: it fails with that
        reason, or with ``keep_queued_at_limit`` stays queued (batches) and the error is raised."""
        bound = log.bind(journal_id=row, purpose=ctx.purpose, account=ctx.account, reference=ctx.reference)
        try:
            return self._paced(ctx.account, message, lambda: self._claim_and_send(row, message, ctx, bound))
        except DailyLimitReached as exc:
            if keep_queued_at_limit:
                raise
            self.journal.transition(row, Status.FAILED, error=exc.render(self.lang), error_kind=exc.kind,
                                    expect=(Status.QUEUED,))
            return SendResult(Status.FAILED, row, message.message_id, error=exc)

    def _claim_and_send(self, row: int, message: Message, ctx: SendContext, bound: Any) -> SendResult:
        # claim it: only a queued message may start sending, and only one process may claim it
        if not self.journal.transition(row, Status.SENDING, count_attempt=True, owner=OWNER, expect=(Status.QUEUED,)):
            entry = self.journal.get(row)
            status = entry.status if entry else Status.UNKNOWN
            bound.warning("not_claimed", status=status.value)
            return SendResult(status, row, message.message_id)
        return self._send_claimed(row, message, ctx, bound)

    def _send_claimed(self, row: int, message: Message, ctx: SendContext, bound: Any) -> SendResult:
        # the claim is on disk: only now may the message leave
        try:
            transport = self.transport(ctx.account)
        except Exception as exc:  # building the transport sends nothing
            err = exc if isinstance(exc, TransportError) else TransportError(
                T(f"Transport nicht nutzbar: {type(exc).__name__}: {exc}; nicht gesendet.",
                  f"transport cannot be used: {type(exc).__name__}: {exc}; not sent."))
            return self._after_failure(row, message, ctx, Status.FAILED, err, bound)
        try:
            # one info line per message ("sent" or the failure); the start only when debugging
            bound.debug("sending", to=len(message.recipients()), attachments=len(message.attachments))
            receipt = transport.send(message)
        except UnknownOutcomeError as exc:
            return self._after_failure(row, message, ctx, Status.UNKNOWN, exc, bound)
        except CcmMailError as exc:
            status = Status.FAILED if _not_sent(exc) else Status.UNKNOWN
            return self._after_failure(row, message, ctx, status, exc, bound)
        except Exception as exc:  # a transport bug: we cannot know whether it left, so never assume not
            err = UnknownOutcomeError(T(f"Transport-Fehler: {type(exc).__name__}: {exc}",
                                        f"transport error: {type(exc).__name__}: {exc}"),
                                      hint=T("Ausgang unklar; im Postfach prüfen, nicht blind erneut senden.",
                                             "Outcome unclear; check the mailbox, do not resend blindly."))
            return self._after_failure(row, message, ctx, Status.UNKNOWN, err, bound)
        # a transport's ids are shown and stored: blank any secret a plugin let slip into them
        receipt = Receipt(receipt.sent_at, {k: scrub(str(v)) for k, v in receipt.transport_ids.items()}, receipt.status)
        self.journal.transition(row, Status.SENT, sent_at=receipt.sent_at, transport_ids=dict(receipt.transport_ids))
        bound.info("sent", sent_at=receipt.sent_at.isoformat(), **{f"id_{k}": v for k, v in receipt.transport_ids.items()})
        failures = self.host.call_each("ccm_mail_sent", message=message, receipt=receipt, context=ctx)
        reported = []
        for plugin, exc in failures:
            bound.error("recorder_failed", plugin=plugin, error=f"{type(exc).__name__}: {exc}")
            text = scrub(f"{type(exc).__name__}: {exc}")
            self.journal.transition(row, Status.SENT, detail=f"recorder {plugin} failed: {text}")
            reported.append((plugin, text))
        return SendResult(Status.SENT, row, message.message_id, receipt=receipt, recorder_failures=reported)

    def _after_failure(self, row: int, message: Message, ctx: SendContext, status: Status, exc: CcmMailError,
                       bound: Any) -> SendResult:
        self.journal.transition(row, status, error=scrub(exc.render(self.lang)), error_kind=exc.kind)
        bound.error("send_" + status.value, error=exc.render("en"), kind=exc.kind)
        failures = self.host.call_each("ccm_mail_failed", message=message, error=exc, status=status, context=ctx)
        for plugin, hook_exc in failures:
            bound.error("failed_hook_failed", plugin=plugin, error=f"{type(hook_exc).__name__}: {hook_exc}")
        return SendResult(status, row, message.message_id, error=exc,
                          recorder_failures=[(p, scrub(f"{type(e).__name__}: {e}")) for p, e in failures])


def _not_sent(exc: CcmMailError) -> bool:
    return isinstance(exc, (TransportError, ConfigError)) or exc.kind in ("address", "attachment", "template")


def message_payload(message: Message) -> dict[str, Any]:
    """The message as JSON for the journal, so an outbox can send it again later unchanged."""
    def addrs(items: Sequence[Address]) -> list[list[str]]:
        return [[a.address, a.name] for a in items]
    return {
        "subject": message.subject, "sender": [message.sender.address, message.sender.name] if message.sender else None,
        "to": addrs(message.to), "cc": addrs(message.cc), "bcc": addrs(message.bcc), "reply_to": addrs(message.reply_to),
        "text": message.text, "html": message.html, "headers": dict(message.headers), "message_id": message.message_id,
        "attachments": [{"path": str(a.path), "filename": a.filename, "content_type": a.content_type,
                         "inline": a.inline, "content_id": a.content_id} for a in message.attachments],
    }


def message_from_payload(payload: Mapping[str, Any]) -> Message:
    def addrs(items: Sequence[Sequence[str]]) -> list[Address]:
        return [Address(a, n) for a, n in items]
    sender = payload.get("sender")
    return Message(
        subject=payload["subject"], to=addrs(payload["to"]), cc=addrs(payload["cc"]), bcc=addrs(payload["bcc"]),
        reply_to=addrs(payload["reply_to"]), sender=Address(*sender) if sender else None,
        text=payload["text"], html=payload["html"], headers=dict(payload["headers"]), message_id=payload["message_id"],
        attachments=[Attachment(Path(a["path"]), a["filename"], a["content_type"], a["inline"], a["content_id"])
                     for a in payload["attachments"]])
