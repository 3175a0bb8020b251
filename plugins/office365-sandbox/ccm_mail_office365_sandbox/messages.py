"""Validation of Graph message JSON, the way Graph/Exchange rejects what it cannot take.

Graph is strict about shapes (OData: unknown properties, wrong types and bad enum values are
``400 RequestBodyRead``) and Exchange about content (``ErrorInvalidRecipients``,
``InvalidInternetMessageHeader``, ``InvalidInternetMessageHeaderCollection`` above 5 custom headers).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Any

#: Properties of microsoft.graph.message a client may write.
WRITABLE = frozenset(
    {
        "@odata.type",
        "subject",
        "body",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "from",
        "sender",
        "attachments",
        "internetMessageHeaders",
        "internetMessageId",
        "importance",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "singleValueExtendedProperties",
        "multiValueExtendedProperties",
        "categories",
        "flag",
        "inferenceClassification",
        "conversationId",
        "uniqueBody",
        "isRead",
        "mentionsPreview",
    }
)
RECIPIENT_KEYS = ("toRecipients", "ccRecipients", "bccRecipients", "replyTo")
MAX_CUSTOM_HEADERS = 5
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+$")
_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")


class GraphBadRequest(Exception):
    """A 400 (or other) error with Graph's code and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class InlineAttachment:
    name: str
    content_type: str
    is_inline: bool
    content_id: str | None
    data: bytes


def _body_read(message: str) -> GraphBadRequest:
    return GraphBadRequest("RequestBodyRead", message)


def check_recipient(value: Any, prop: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("emailAddress"), dict):
        raise _body_read(
            f"Cannot read the value of property '{prop}': a recipient must be an object with an 'emailAddress' object."
        )
    ea = value["emailAddress"]
    for k in ea:
        if k not in ("address", "name", "@odata.type"):
            raise _body_read(
                f"The property '{k}' does not exist on type "
                f"'microsoft.graph.emailAddress'. Make sure to only use property names "
                f"that are defined by the type or mark the type as open type."
            )
    for k in ("address", "name"):
        if k in ea and ea[k] is not None and not isinstance(ea[k], str):
            raise _body_read(
                "Cannot convert a primitive value to the expected type 'Edm.String'. "
                "See the inner exception for more details."
            )


def validate_message(msg: Any, *, for_send: bool) -> list[InlineAttachment]:
    """Shape check of a message; returns its decoded file attachments."""
    if not isinstance(msg, dict):
        raise _body_read("Cannot read the parameter 'Message': an object was expected.")
    for k in msg:
        if k not in WRITABLE:
            raise _body_read(
                f"The property '{k}' does not exist on type 'microsoft.graph.message'. "
                f"Make sure to only use property names that are defined by the type or "
                f"mark the type as open type."
            )
    if msg.get("subject") is not None and not isinstance(msg["subject"], str):
        raise _body_read("Cannot convert a primitive value to the expected type 'Edm.String'.")
    body = msg.get("body")
    if body is not None:
        if not isinstance(body, dict):
            raise _body_read("Cannot read the value of property 'body': an object was expected.")
        ct = body.get("contentType", "text")
        if not isinstance(ct, str) or ct.lower() not in ("text", "html"):
            raise _body_read(f"Cannot convert the literal '{ct}' to the expected type 'microsoft.graph.bodyType'.")
        if body.get("content") is not None and not isinstance(body["content"], str):
            raise _body_read("Cannot convert a primitive value to the expected type 'Edm.String'.")
    for prop in RECIPIENT_KEYS:
        if prop in msg and msg[prop] is not None:
            if not isinstance(msg[prop], list):
                raise _body_read(f"Cannot read the value of property '{prop}': a collection was expected.")
            for r in msg[prop]:
                check_recipient(r, prop)
    for prop in ("from", "sender"):
        if msg.get(prop) is not None:
            check_recipient(msg[prop], prop)
    if msg.get("importance") is not None and str(msg["importance"]).lower() not in ("low", "normal", "high"):
        raise _body_read(
            f"Cannot convert the literal '{msg['importance']}' to the expected type 'microsoft.graph.importance'."
        )
    mid = msg.get("internetMessageId")
    if mid is not None and (not isinstance(mid, str) or not _MESSAGE_ID.match(mid)):
        raise GraphBadRequest(
            "ErrorInvalidInternetMessageId", "The internet message id must be in the format '<id@domain>'."
        )
    _check_headers(msg.get("internetMessageHeaders"))
    _check_extended(msg.get("singleValueExtendedProperties"))
    atts = _decode_attachments(msg.get("attachments"))
    if for_send:
        check_sendable(msg)
    return atts


def check_sendable(msg: dict[str, Any]) -> None:
    """Exchange's submission checks: recipients present and resolvable."""
    recipients = [r for k in ("toRecipients", "ccRecipients", "bccRecipients") for r in (msg.get(k) or [])]
    if not recipients:
        raise GraphBadRequest(
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., A message can't be sent because it contains no recipients.",
        )
    for r in recipients:
        addr = r["emailAddress"].get("address") or ""
        if not _ADDRESS.match(addr):
            raise GraphBadRequest(
                "ErrorInvalidRecipients",
                f"At least one recipient is not valid., "
                f"Recipient '{addr}' is not resolved. All recipients must be "
                f"resolved before a message can be submitted.",
            )


def _check_headers(headers: Any) -> None:
    if headers is None:
        return
    if not isinstance(headers, list):
        raise _body_read("Cannot read the value of property 'internetMessageHeaders': a collection was expected.")
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise GraphBadRequest(
            "InvalidInternetMessageHeaderCollection",
            "Maximum number of headers in one message should be less than or equal to 5.",
        )
    for h in headers:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str) or not isinstance(h.get("value"), str):
            raise _body_read("Cannot read an internetMessageHeader: 'name' and 'value' strings are expected.")
        if not h["name"].lower().startswith("x-"):
            raise GraphBadRequest(
                "InvalidInternetMessageHeader",
                f"The internet message header name '{h['name']}' should start with 'x-' or 'X-'.",
            )


def _check_extended(props: Any) -> None:
    if props is None:
        return
    if not isinstance(props, list) or not all(
        isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("value"), str) for p in props
    ):
        raise _body_read(
            "Cannot read 'singleValueExtendedProperties': objects with 'id' and 'value' strings are expected."
        )


def decode_attachment(att: Any) -> InlineAttachment:
    if not isinstance(att, dict):
        raise _body_read("Cannot read an attachment: an object was expected.")
    otype = att.get("@odata.type")
    if otype is None:
        raise _body_read("Cannot create an abstract class.")
    if otype != FILE_ATTACHMENT:
        raise _body_read(f"The type '{otype}' is not supported by this sandbox: only '{FILE_ATTACHMENT}'.")
    for k in att:
        if k not in (
            "@odata.type",
            "name",
            "contentType",
            "contentBytes",
            "isInline",
            "contentId",
            "contentLocation",
            "size",
            "id",
            "lastModifiedDateTime",
        ):
            raise _body_read(
                f"The property '{k}' does not exist on type "
                f"'microsoft.graph.fileAttachment'. Make sure to only use property "
                f"names that are defined by the type or mark the type as open type."
            )
    raw = att.get("contentBytes")
    if not isinstance(raw, str):
        raise GraphBadRequest("ErrorInvalidParameter", "The attachment 'contentBytes' is required.")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _body_read("Cannot convert the literal to the expected type 'Edm.Binary'.") from None
    name = att.get("name")
    if not isinstance(name, str) or not name:
        raise GraphBadRequest("ErrorInvalidParameter", "The attachment 'name' is required.")
    return InlineAttachment(
        name,
        str(att.get("contentType") or "application/octet-stream"),
        bool(att.get("isInline", False)),
        att.get("contentId"),
        data,
    )


def _decode_attachments(atts: Any) -> list[InlineAttachment]:
    if atts is None:
        return []
    if not isinstance(atts, list):
        raise _body_read("Cannot read the value of property 'attachments': a collection was expected.")
    return [decode_attachment(a) for a in atts]


def mime_size(body_chars: int, attachment_sizes: list[int]) -> int:
    """What Exchange counts against the maximum message size: base64 grows files by ~37 %."""
    encoded = sum(math.ceil(s / 3) * 4 * 78 // 76 for s in attachment_sizes)
    return 2048 + body_chars + encoded
