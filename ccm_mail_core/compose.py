"""Composing one message: the purpose's template filled from the send data, addressed, with its
attachments; every input the caller gave is checked here, before anything is journaled or sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import (
    Address,
    Attachment,
    AttachmentError,
    ConfigError,
    Expiry,
    Message,
    Preview,
    SendContext,
    T,
    TemplateError,
)

from . import einvoice
from . import expiry as expiry_mod
from .config import Config
from .config.purposes import render_addresses
from .plugins import Registries

#: what a caller may give as an address or an attachment
AddressLike = str | Address
AttachmentLike = str | os.PathLike[str] | Attachment


def account_of(config: Config, purpose: str, account: str | None) -> str:
    """The sending account: ``account`` if it serves ``purpose``, else the first of its pool."""
    pool = config.pool_for(purpose)
    if account is not None and account not in pool:
        raise ConfigError(
            T(
                f"Konto {account!r} bedient Zweck {purpose!r} nicht.",
                f"account {account!r} does not serve purpose {purpose!r}.",
            )
        )
    if not pool:
        known = ", ".join(config.purposes) or "-"
        raise ConfigError(
            T(f"Zweck {purpose!r} ist keinem Konto zugeordnet.", f"purpose {purpose!r} has no account."),
            hint=T(f"Unter 'purposes:' zuordnen. Vorhanden: {known}", f"Map it under 'purposes:'. Configured: {known}"),
        )
    return account or pool[0]


def compose(
    config: Config,
    registries: Registries,
    purpose: str,
    *,
    sender: Address,
    to: Sequence[AddressLike],
    cc: Sequence[AddressLike] = (),
    bcc: Sequence[AddressLike] = (),
    reply_to: Sequence[AddressLike] = (),
    data: Mapping[str, Any] | None = None,
    attachments: Sequence[AttachmentLike] = (),
    reference: str | None = None,
    headers: Mapping[str, str] | None = None,
    account: str,
    message_id: str | None = None,
    interactive: bool = False,
    assume_yes: bool = False,
    expiry: Expiry | None = None,
    now: datetime | None = None,
) -> Preview:
    """Render the purpose's template for this send; raise a clear error if anything is wrong.
    Nothing is sent or journaled here: this is also what ``preview`` shows.

    The purpose's defaults apply (``purposes.<p>``: reply-to unless the caller gives one, cc and
    bcc added to the caller's, ``from`` for send-as, Sent Items, receipts, archive); attachments
    are recognised as e-invoices by content (``einvoice: required`` refuses a send without one);
    an expired credential (``expiry``) refuses the send, one expiring soon adds a warning."""
    now = now or datetime.now(timezone.utc)
    warning = expiry_mod.refuse_if_expired(account, expiry, now)
    settings = config.purpose(purpose)
    template = config.templates.get(purpose)
    if template is None:
        raise ConfigError(
            T(f"Keine Vorlage für Zweck {purpose!r}.", f"no template for purpose {purpose!r}."),
            hint=T(
                f"Unter 'templates: {purpose}:' Betreff und Text anlegen.",
                f"Add subject and body under 'templates: {purpose}:'.",
            ),
        )
    acc = config.accounts[account]
    recipients = {
        key: [_address(a) for a in given]
        for key, given in (("to", to), ("cc", cc), ("bcc", bcc), ("reply_to", reply_to))
    }

    ctx = SendContext(
        purpose=purpose,
        account=account,
        account_type=acc.type,
        data=dict(data or {}),
        lang=config.lang,
        interactive=interactive,
        assume_yes=assume_yes,
    )
    placeholders = config.placeholders_for(registries, purpose)

    def resolve(name: str) -> str | None:
        return placeholders[name].resolve(ctx) if name in placeholders else None

    defaults = {name: render_addresses(name, tpl, resolve) for name, tpl in settings.address_templates().items()}
    recipients["cc"] += [a for a in defaults.get("cc", []) if a not in recipients["cc"]]
    recipients["bcc"] += [a for a in defaults.get("bcc", []) if a not in recipients["bcc"]]
    if not recipients["reply_to"]:
        recipients["reply_to"] = defaults.get("reply_to", [])
    if "from" in defaults:  # send-as: a shared mailbox; the account's display name unless it has its own
        shared = defaults["from"][0]
        sender = shared if shared.name else Address(shared.address, sender.name)
    seen: set[str] = set()  # one copy per address (A@B.DE and a@b.de are one mailbox): To before Cc before Bcc
    for key in ("to", "cc", "bcc"):
        unique = []
        for a in recipients[key]:
            if a.address.lower() not in seen:
                seen.add(a.address.lower())
                unique.append(a)
        recipients[key] = unique
    count = len(recipients["to"]) + len(recipients["cc"]) + len(recipients["bcc"])
    if count == 0:
        raise ConfigError(
            T("Kein Empfänger angegeben.", "no recipient given."),
            hint=T("Mit --to die Adresse des Kunden angeben.", "Give the customer's address with --to."),
        )
    if count > acc.limits.recipients_per_message:
        raise ConfigError(
            T(
                f"{count} Empfänger; das Konto erlaubt {acc.limits.recipients_per_message} je Mail.",
                f"{count} recipients; the account allows {acc.limits.recipients_per_message} per message.",
            )
        )

    subject = template.subject.render(resolve)
    body = template.body.render(resolve, escape_html=template.html)
    if reference is None and template.reference is not None:
        reference = template.reference.render(resolve)
    ctx = SendContext(
        purpose=purpose,
        account=account,
        account_type=acc.type,
        reference=_reference(reference),
        data=ctx.data,
        lang=config.lang,
        interactive=interactive,
        assume_yes=assume_yes,
    )
    files = [_attachment(a) for a in attachments]
    for file in files:
        file.check()  # a missing file is reported as such, not as "no e-invoice"
        if file.path.stat().st_size == 0:  # AbSys called before its PDF export had finished
            raise AttachmentError(
                T(
                    f"Anhang {file.filename} ist leer (0 Byte). Nichts gesendet.",
                    f"attachment {file.filename} is empty (0 bytes). Nothing sent.",
                ),
                hint=T(
                    "Warten, bis der Export (z. B. die Rechnungs-PDF) fertig geschrieben ist, dann erneut senden.",
                    "Wait until the export (e.g. the invoice PDF) is written completely, then send again.",
                ),
            )
    # looking inside PDFs (pypdf) only where the rule needs it: it costs a cold call about 0.1 s
    files, found = einvoice.classify_all(files, pdf=settings.einvoice == "required")
    if settings.einvoice == "required":
        einvoice.require(purpose, files, found)
    message = Message(
        subject=subject,
        to=recipients["to"],
        cc=recipients["cc"],
        bcc=recipients["bcc"],
        reply_to=recipients["reply_to"],
        sender=sender,
        text=None if template.html else body,
        html=body if template.html else None,
        attachments=files,
        headers=dict(headers or {}),
        message_id=message_id or make_msgid(domain=sender.address.rpartition("@")[2]),
        save_to_sent=settings.save_to_sent,
        request_read_receipt=settings.request_read_receipt,
        request_delivery_receipt=settings.request_delivery_receipt,
        archive=settings.archive is not None,
    )
    message.check()
    extra: dict[str, Any] = {}
    if found:
        extra["einvoice"] = [
            {"filename": name, "label": what.label(config.lang), **what.to_dict()} for name, what in found
        ]
    if warning is not None:
        extra["warnings"] = [warning.get(config.lang)]
    return Preview(message=message, context=ctx, account_label=f"{account} ({acc.type})", extra=extra)


def _address(value: AddressLike) -> Address:
    return value if isinstance(value, Address) else Address.parse(str(value))


def _attachment(value: AttachmentLike) -> Attachment:
    return value if isinstance(value, Attachment) else Attachment(Path(value))


def _reference(reference: str | None) -> str:
    """A given reference must say something: a blank one would switch the duplicate check off."""
    if reference is None:
        return ""
    try:
        reference.encode("utf-8")
    except UnicodeEncodeError:  # half an emoji: the journal could not store it (the subject says where)
        raise TemplateError(
            T(
                f"Referenz {reference.encode('utf-8', 'replace').decode()!r} enthält Zeichen, die kein gültiger "
                "Text sind. Nichts gesendet.",
                f"reference {reference.encode('utf-8', 'replace').decode()!r} contains characters that are not "
                "valid text. Nothing sent.",
            )
        ) from None
    if not reference.strip() or any(ch in reference for ch in "\r\n\0"):
        raise TemplateError(
            T(
                f"Referenz {reference!r} ist leer oder enthält einen Zeilenumbruch; ohne sie schützt nichts vor "
                "doppeltem Versand. Nichts gesendet.",
                f"reference {reference!r} is blank or contains a line break; without it nothing prevents sending "
                "twice. Nothing sent.",
            ),
            hint=T(
                "Die Rechnungsnummer mit --reference oder in den Sendedaten angeben.",
                "Give the invoice number with --reference or in the send data.",
            ),
        )
    return reference.strip()
