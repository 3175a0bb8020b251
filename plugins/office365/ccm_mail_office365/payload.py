"""What Graph receives, built from the host's :class:`~ccm_mail_hookspecs.Message`.

Graph's JSON message has one body. A message with HTML *and* its own text alternative therefore
goes as MIME (``sendMail`` with ``Content-Type: text/plain``, the RFC 5322 message in base64), so
the host's text part arrives unchanged — as long as that fits into one request. Otherwise the
JSON route sends the HTML and Exchange derives the text part. The host's ``message_id`` becomes
``internetMessageId`` (MIME: ``Message-ID``) so the message can be found again in Sent Items.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any

from ccm_mail_hookspecs import Address, Attachment, AttachmentError, Message, T, TransportError, build_mime

#: Graph's limit for one request, on the body as sent (an inline attachment counts as its base64,
#: 4/3 of its size, plus the JSON around it). Graph says "4 MB"; its front end counts 4 MiB
#: (4,194,304). Read as decimal MB the limit leaves ~190 KB of margin for what we do not count
#: (https://learn.microsoft.com/graph/outlook-large-attachments).
MAX_REQUEST_BYTES = 4_000_000
#: Exchange refuses more custom internet message headers than this
MAX_CUSTOM_HEADERS = 5
#: Graph's upload-session limit per attachment
MAX_ATTACHMENT_BYTES = 150 * 1024 * 1024
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"


@dataclass(frozen=True, slots=True)
class Plan:
    """How a message goes out: one ``sendMail`` request, or draft + attachments + send."""

    route: str  # "sendMail" | "mime" | "draft"
    inline_attachments: tuple[Attachment, ...]  # sent as base64 in a JSON request
    upload_attachments: tuple[Attachment, ...]  # streamed through upload sessions
    estimated_bytes: int
    #: the message as Graph JSON without attachments (computed for the size; reused to send)
    message: dict[str, Any] = field(default_factory=dict, compare=False)


def recipient(address: Address) -> dict[str, Any]:
    email: dict[str, str] = {"address": address.address}
    if address.name:
        email["name"] = address.name
    return {"emailAddress": email}


def message_json(message: Message, mailbox: str) -> dict[str, Any]:
    """The message resource without attachments."""
    if message.html is not None:
        body = {"contentType": "HTML", "content": message.html}
    else:
        body = {"contentType": "Text", "content": message.text or ""}
    out: dict[str, Any] = {
        "subject": message.subject,
        "body": body,
        "toRecipients": [recipient(a) for a in message.to],
    }
    if message.cc:
        out["ccRecipients"] = [recipient(a) for a in message.cc]
    if message.bcc:
        out["bccRecipients"] = [recipient(a) for a in message.bcc]
    if message.reply_to:
        out["replyTo"] = [recipient(a) for a in message.reply_to]
    if message.sender is not None and (message.sender.name or message.sender.address.lower() != mailbox.lower()):
        out["from"] = recipient(message.sender)
    if message.message_id:
        out["internetMessageId"] = message.message_id
    if message.request_read_receipt:
        out["isReadReceiptRequested"] = True
    if message.request_delivery_receipt:
        out["isDeliveryReceiptRequested"] = True
    check_headers(message)
    if message.headers:
        out["internetMessageHeaders"] = [{"name": k, "value": v} for k, v in message.headers.items()]
    return out


def _attachment_fields(att: Attachment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "@odata.type": FILE_ATTACHMENT,
        "name": att.filename,
        "contentType": att.content_type,
        "contentBytes": None,
        "isInline": att.inline,
    }
    if att.inline:
        out["contentId"] = att.content_id
    return out


def file_attachment(att: Attachment) -> dict[str, Any]:
    """A small attachment as Graph JSON (base64 in memory: only for what fits one request)."""
    return dict(_attachment_fields(att), contentBytes=base64.b64encode(att.read_bytes()).decode("ascii"))


def upload_item(att: Attachment, size: int) -> dict[str, Any]:
    """The ``AttachmentItem`` of ``createUploadSession``."""
    item: dict[str, Any] = {"attachmentType": "file", "name": att.filename, "size": size, "contentType": att.content_type}
    if att.inline:
        item["isInline"] = True
        item["contentId"] = att.content_id
    return {"AttachmentItem": item}


def json_size(value: Any) -> int:
    """Bytes of ``value`` as requests sends it (``json.dumps`` defaults, UTF-8)."""
    return len(json.dumps(value).encode("utf-8"))


def inline_size(att: Attachment, size: int) -> int:
    """Bytes of the attachment's JSON as sent, without reading the file: the JSON around an empty
    ``contentBytes`` plus the base64 length (base64 needs no JSON escaping)."""
    shell = dict(_attachment_fields(att), contentBytes="")
    return json_size(shell) + 4 * ((size + 2) // 3)


def plan(message: Message, mailbox: str) -> Plan:
    """Choose the route from the size of each request as it will be sent (files are not read).

    An attachment whose own JSON would not fit into one request goes through an upload session;
    the others go inline, in the ``sendMail`` request if everything fits, else one request each
    on a draft. A message with text *and* HTML is a MIME candidate; the send builds that body and
    takes the JSON route instead when it does not fit (:func:`mime_fits`)."""
    msg = message_json(message, mailbox)
    total = json_size({"message": msg, "saveToSentItems": message.save_to_sent})
    small: list[Attachment] = []
    large: list[Attachment] = []
    for att in message.attachments:
        att.check()
        size = att.size
        if size > MAX_ATTACHMENT_BYTES:
            raise AttachmentError(
                T(
                    f"Anhang {att.filename} ist mit {size / 2**20:.0f} MB zu groß (höchstens 150 MB).",
                    f"Attachment {att.filename} is too large at {size / 2**20:.0f} MB (at most 150 MB).",
                )
            )
        one = inline_size(att, size)
        if one > MAX_REQUEST_BYTES:
            large.append(att)
        else:
            small.append(att)
            total += one + (len(', "attachments": []') if len(small) == 1 else len(", "))
    route = "draft" if large or total > MAX_REQUEST_BYTES else "sendMail"
    if message.archive or (route == "sendMail" and message.text is not None and message.html is not None):
        route = "mime"
    return Plan(route, tuple(small), tuple(large), total, msg)


def mime_fits(body: bytes) -> bool:
    """Whether the MIME route's request (the whole message in base64) fits into one request."""
    return len(body) <= MAX_REQUEST_BYTES


def mime_message(message: Message, mailbox: str) -> bytes:
    """The RFC 5322 message the MIME route sends (and an archive keeps). Graph takes the
    recipients from the headers, so Bcc is written here (Exchange removes it before delivery)."""
    check_headers(message)
    mime = build_mime(message)
    if message.sender is None:
        mime["From"] = mailbox
    if message.bcc:
        mime["Bcc"] = ", ".join(formataddr((a.name, a.address)) if a.name else a.address for a in message.bcc)
    return mime.as_bytes(policy=mime.policy.clone(linesep="\r\n"))


def mime_body(message: Message, mailbox: str) -> bytes:
    """The MIME route's request body: the whole message in base64."""
    return base64.b64encode(mime_message(message, mailbox))


def check_headers(message: Message) -> None:
    """Graph accepts only ``X-`` custom headers, at most five."""
    names = list(message.headers)
    for name in names:
        if not name.lower().startswith("x-"):
            raise TransportError(
                T(
                    f"Kopfzeile {name!r}: Microsoft Graph erlaubt nur eigene Kopfzeilen, die mit „X-“ beginnen.",
                    f'Header {name!r}: Microsoft Graph only accepts custom headers starting with "X-".',
                )
            )
    if len(names) > MAX_CUSTOM_HEADERS:
        raise TransportError(
            T(
                f"{len(names)} eigene Kopfzeilen: Microsoft Graph erlaubt höchstens {MAX_CUSTOM_HEADERS}.",
                f"{len(names)} custom headers: Microsoft Graph allows at most {MAX_CUSTOM_HEADERS}.",
            )
        )
