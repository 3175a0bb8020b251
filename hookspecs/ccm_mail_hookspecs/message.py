"""The message a transport receives, and small pure helpers around it.

Attachments are referenced by path and streamed by the transport: a 150 MB invoice archive must not
be read into memory just to be passed around.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.headerregistry import Address as _EmailAddress
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
        return formataddr((self.name, self.address)) if self.name else self.address


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
    """
    mime = EmailMessage()
    if message.sender is not None:
        mime["From"] = _header_address(message.sender)
    if message.to:
        mime["To"] = [_header_address(a) for a in message.to]
    if message.cc:
        mime["Cc"] = [_header_address(a) for a in message.cc]
    if message.reply_to:
        mime["Reply-To"] = [_header_address(a) for a in message.reply_to]
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(date or datetime.now(timezone.utc))
    if message.message_id:
        mime["Message-ID"] = message.message_id
    for name, value in message.headers.items():
        mime[name] = value

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


def _header_address(address: Address) -> _EmailAddress:
    username, _, domain = address.address.rpartition("@")
    return _EmailAddress(display_name=address.name, username=username, domain=domain)


def _find_html_part(mime: EmailMessage) -> EmailMessage | None:
    for part in mime.walk():
        if part.get_content_type() == "text/html":
            return part  # type: ignore[return-value]
    return None
