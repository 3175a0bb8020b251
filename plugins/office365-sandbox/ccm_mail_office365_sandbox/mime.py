"""sendMail in MIME format: ``Content-Type: text/plain`` and the whole RFC 5322 message in base64.

Graph answers ``400 ErrorMimeContentInvalidBase64String`` ("Invalid base64 string for MIME
content.") for bad base64. The message is turned into the same Graph-shaped JSON as a JSON
sendMail, so tests inspect both routes alike; the raw MIME is kept as well.
"""

from __future__ import annotations

import base64
import binascii
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any

from .messages import GraphBadRequest, InlineAttachment


def decode(body: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise GraphBadRequest(
            "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
        ) from None


def _recipients(msg: EmailMessage, header: str) -> list[dict[str, Any]]:
    values = msg.get_all(header) or []
    return [
        {"emailAddress": {"name": name or addr, "address": addr}}
        for name, addr in getaddresses([str(v) for v in values])
        if addr
    ]


def to_graph(raw: bytes) -> tuple[dict[str, Any], list[InlineAttachment]]:
    """Graph message JSON and attachments of a MIME message."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    out: dict[str, Any] = {"subject": str(msg.get("Subject", ""))}
    for prop, header in (
        ("toRecipients", "To"),
        ("ccRecipients", "Cc"),
        ("bccRecipients", "Bcc"),
        ("replyTo", "Reply-To"),
    ):
        out[prop] = _recipients(msg, header)
    sender = _recipients(msg, "From")
    if sender:
        out["from"] = sender[0]
    if msg.get("Disposition-Notification-To"):
        # Exchange reads RFC 8098's header as the read-receipt request (Graph's isReadReceiptRequested,
        # which it writes back as this header with the From address: msgraph-sdk-dotnet#2063)
        out["isReadReceiptRequested"] = True
    if msg.get("Message-ID"):
        out["internetMessageId"] = str(msg["Message-ID"]).strip()
    xheaders = [{"name": k, "value": str(v)} for k, v in msg.items() if k.lower().startswith("x-")]
    if xheaders:
        out["internetMessageHeaders"] = xheaders
    body = msg.get_body(preferencelist=("html", "plain"))
    if body is not None:
        out["body"] = {
            "contentType": "html" if body.get_content_type() == "text/html" else "text",
            "content": body.get_content(),
        }
    atts: list[InlineAttachment] = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True) or b""
        cid = part.get("Content-ID")
        atts.append(
            InlineAttachment(
                part.get_filename() or "attachment",
                part.get_content_type(),
                part.get_content_disposition() == "inline",
                str(cid).strip("<>") if cid else None,
                bytes(data),
            )
        )
    return out, atts
