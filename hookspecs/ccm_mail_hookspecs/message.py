"""The message a transport receives, and small pure helpers around it.

Attachments are referenced by path and streamed by the transport: a 150 MB invoice archive must not
be read into memory just to be passed around.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.headerregistry import Address as _EmailAddress
from email import policy as _policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from datetime import datetime, timezone
from pathlib import Path

from .errors import AddressError, AttachmentError
from .text import T

# Pragmatic address check: one @, a dot-free-or-dotted domain with a dot, no spaces or brackets.
# Unicode local parts and IDN domains are allowed (SMTPUTF8 / Graph accept them).
_ADDRESS_RE = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\".]{2,}$")


@dataclass(frozen=True, slots=True)
class Address:
    """An e-mail address with an optional display name."""

    address: str
    name: str = ""

    def __post_init__(self) -> None:
        if not _ADDRESS_RE.match(self.address) or ".." in self.address:
            raise AddressError(
                T(f"Ungültige E-Mail-Adresse: {self.address!r}", f"Invalid e-mail address: {self.address!r}"),
                hint=T("Format name@domain.de, ohne Leerzeichen.", "Use the form name@domain.com, no spaces."),
            )
        if "\r" in self.name or "\n" in self.name:
            raise AddressError(T("Anzeigename enthält einen Zeilenumbruch.", "Display name contains a line break."))

    @classmethod
    def parse(cls, text: str) -> "Address":
        """``"Name <a@b.de>"`` or ``"a@b.de"``."""
        text = text.strip()
        m = re.match(r"^(?P<name>.*?)\s*<(?P<addr>[^<>]+)>$", text)
        if m:
            return cls(m.group("addr").strip(), m.group("name").strip().strip('"'))
        return cls(text)

    def __str__(self) -> str:
        """Readable form for people (``Müller & Söhne <a@b.de>``); MIME encoding is build_mime's job."""
        if not self.name:
            return self.address
        name = self.name
        if any(ch in name for ch in '()<>[]:;@\\,."'):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.address}>"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message; read from ``path`` when the transport sends it.

    ``inline`` with a ``content_id`` makes it an inline image referenced as ``cid:<content_id>``
    from the HTML body.
    """

    path: Path
    filename: str = ""
    content_type: str = ""
    inline: bool = False
    content_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))
        if not self.filename:
            object.__setattr__(self, "filename", self.path.name)
        if not self.content_type:
            guessed, _ = mimetypes.guess_type(self.filename)
            object.__setattr__(self, "content_type", guessed or "application/octet-stream")
        if self.inline and not self.content_id:
            object.__setattr__(self, "content_id", self.filename)

    def check(self) -> None:
        """Raise :class:`AttachmentError` unless the file exists and is readable."""
        try:
            with self.path.open("rb"):
                pass
        except OSError as exc:
            raise AttachmentError(
                T(f"Anhang nicht lesbar: {self.path} ({exc.strerror})",
                  f"Attachment cannot be read: {self.path} ({exc.strerror})"),
                hint=T("Pfad und Zugriffsrechte prüfen.", "Check the path and permissions."),
            ) from exc

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        with self.path.open("rb") as fh:
            while block := fh.read(size):
                yield block

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(slots=True)
class Message:
    """One outgoing mail. ``sender`` is filled in by the host from the account.

    ``message_id`` is the stable identity of this message (an RFC 5322 Message-ID, angle brackets
    included). The host assigns it once, journals it, and keeps it across retries; transports
    must hand it to the provider unchanged so a later lookup can find the message.
    ``headers`` are extra headers; names must start with ``X-``.
    """

    subject: str
    to: list[Address]
    sender: Address | None = None
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str = ""

    def recipients(self) -> list[Address]:
        """Everybody the message goes to (to + cc + bcc), in that order."""
        return [*self.to, *self.cc, *self.bcc]


def build_mime(message: Message, *, date: datetime | None = None) -> EmailMessage:
    """The message as RFC 5322 MIME (text/HTML alternative, attachments, inline images).

    Bcc is **not** written into the headers: put recipients on the envelope instead.
    Attachments are read into memory, so use this for SMTP and .eml files, not for huge uploads.
    Text parts are 7-bit clean (quoted-printable/base64), so any SMTP server takes them, with or
    without 8BITMIME. Flatten with ``mime.policy`` (e.g. ``mime.policy.clone(linesep="\r\n")``):
    it leaves the pre-encoded headers alone, where ``email.policy.SMTP`` would refold them.
    """
    mime = EmailMessage(policy=_MIME_POLICY)
    if message.sender is not None:
        _set_addresses(mime, "From", [message.sender])
    _set_addresses(mime, "To", message.to)
    _set_addresses(mime, "Cc", message.cc)
    _set_addresses(mime, "Reply-To", message.reply_to)
    _set_unstructured(mime, "Subject", message.subject)
    mime["Date"] = format_datetime(date or datetime.now(timezone.utc))
    if message.message_id:
        if "\r" in message.message_id or "\n" in message.message_id:
            raise ValueError("Message-ID contains a line break")
        # raw and unfolded: a folded id arrives as " <id>" and no longer matches the journal
        mime.set_raw("Message-ID", message.message_id)
    for name, value in message.headers.items():
        _set_unstructured(mime, name, value)

    text = message.text
    if text is None and message.html is None:
        text = ""
    if text is not None:
        mime.set_content(text, charset="utf-8")
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html", charset="utf-8")
    else:
        mime.set_content(message.html or "", subtype="html", charset="utf-8")

    inline = [a for a in message.attachments if a.inline]
    regular = [a for a in message.attachments if not a.inline]
    if inline:
        html_part = _find_html_part(mime)
        target = html_part if html_part is not None else mime
        if html_part is not None:
            html_part.make_related()
        for att in inline:
            maintype, subtype = att.content_type.split("/", 1)
            target.add_related(att.read_bytes(), maintype=maintype, subtype=subtype,
                               cid=f"<{att.content_id}>", filename=att.filename, disposition="inline")
    for att in regular:
        maintype, subtype = att.content_type.split("/", 1)
        mime.add_attachment(att.read_bytes(), maintype=maintype, subtype=subtype, filename=att.filename)
    return mime


#: email.policy.default, but text parts get a 7-bit transfer encoding (no 8BITMIME needed), and
#: headers set raw here (pre-encoded, see _set_unstructured) are never refolded by the generator
_MIME_POLICY = _policy.default.clone(cte_type="7bit", refold_source="none")
_EW_OVERHEAD = len("=?utf-8?b??=")


def _set_unstructured(mime: EmailMessage, name: str, value: str) -> None:
    """Set a free-text header; non-ASCII values are RFC 2047 encoded here, not by ``email``.

    CPython's folder (3.11, 3.12) drops the space at the point where it splits a long non-ASCII
    value into two encoded words ("ß €" arrives as "ß€"). Whole encoded words of at most 75
    characters, each carrying its own spaces, avoid that; lines stay under 78 characters so the
    generator leaves them alone.
    """
    if value.isascii() or "\r" in value or "\n" in value:
        mime[name] = value  # ASCII folds correctly; CR/LF is rejected by the policy as before
        return
    first = max(3, (78 - len(name) - 2 - _EW_OVERHEAD) // 4 * 3)
    mime.set_raw(name, "\r\n ".join(_encoded_words(value, first)))


def _set_addresses(mime: EmailMessage, name: str, addresses: list[Address]) -> None:
    """Set an address header; display names with umlauts are encoded here (see above).

    The same CPython folder inserts or drops spaces inside long non-ASCII display names
    ("Müller-Lüde nscheidt"), so those headers are built from whole encoded words too.
    """
    if not addresses:
        return
    if all(a.name.isascii() for a in addresses):
        mime[name] = [_header_address(a) for a in addresses]
        return
    tokens: list[str] = []
    for n, address in enumerate(addresses):
        if address.name.isascii():
            words = [formataddr((address.name, "x@y"))[:-len(" <x@y>")]] if address.name else []
        else:
            words = _encoded_words(address.name, 45)
        tokens += words + [f"<{address.address}>" + ("," if n < len(addresses) - 1 else "")]
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > 78 and lines[-1].strip() != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    lines[0] = lines[0][len(name) + 2:]
    mime.set_raw(name, "\r\n".join(lines))


def _encoded_words(value: str, first_budget: int) -> list[str]:
    """RFC 2047 base64 words, split only between characters; 45 bytes make a 72-character word."""
    words: list[str] = []
    chunk = b""
    for char in value:
        encoded = char.encode("utf-8")
        if chunk and len(chunk) + len(encoded) > (first_budget if not words else 45):
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
            chunk = b""
        chunk += encoded
    words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
    return words


def _header_address(address: Address) -> _EmailAddress:
    username, _, domain = address.address.rpartition("@")
    return _EmailAddress(display_name=address.name, username=username, domain=domain)


def _find_html_part(mime: EmailMessage) -> EmailMessage | None:
    for part in mime.walk():
        if part.get_content_type() == "text/html":
            return part  # type: ignore[return-value]
    return None
