"""The message a transport receives, and small pure helpers around it.

Attachments are referenced by path and streamed by the transport: a 150 MB invoice archive must not
be read into memory just to be passed around.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AddressError, AttachmentError, ConfigError, TemplateError
from .text import T

if TYPE_CHECKING:
    from email.headerregistry import Address as _EmailAddress
    from email.message import EmailMessage
    from email.policy import EmailPolicy

# What invoice mails carry gets a fixed type: mimetypes asks the Windows registry (and Linux's
# /etc/mime.types), where installed software changes the answer from one workstation to the next
# (.xml, .csv), and reading the registry costs every cold send
_CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".xml": "application/xml",
    ".zip": "application/zip",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".eml": "message/rfc822",
}

#: characters never allowed in an address, a display name, a header value or a file name
_LINE_BREAKS = ("\r", "\n", "\0")
# local part: Unicode allowed (SMTPUTF8 / Graph accept it), no spaces, brackets or quotes
_LOCAL_RE = re.compile(r"[^\s@<>()\[\],;:\"\\]+")
# one domain label: letters and digits (any script), inner hyphens, at most 63 characters
_LABEL_RE = re.compile(r"[^\W_](?:[^\W_]|-){0,61}[^\W_]|[^\W_]")
# a display name outside quotes may not hold what makes it look like (another) address
_NAME_SPECIALS = set('<>()[]:;@\\,"')


def _address_problem(address: str) -> T | None:
    """Why ``address`` is not a plain ``local@domain`` address, or None when it is."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return T("es fehlt das @ oder ein Teil davor/danach", "the @ or a part before/after it is missing")
    if not _LOCAL_RE.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return T("der Teil vor dem @ enthält unzulässige Zeichen", "the part before the @ has characters not allowed")
    if len(local.encode("utf-8")) > 64:
        return T("der Teil vor dem @ ist länger als 64 Zeichen", "the part before the @ is longer than 64 characters")
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return T(
            "die Domain ist ungültig (Teile aus Buchstaben, Ziffern und inneren Bindestrichen)",
            "the domain is invalid (parts of letters, digits and inner hyphens)",
        )
    if len(labels[-1]) < 2 or labels[-1].isdigit():
        return T("die Domain endet nicht auf eine Top-Level-Domain", "the domain does not end in a top-level domain")
    return None


@dataclass(frozen=True, slots=True)
class Address:
    """An e-mail address with an optional display name."""

    address: str
    name: str = ""

    def __post_init__(self) -> None:
        problem = _address_problem(self.address) if isinstance(self.address, str) else T("kein Text", "not text")
        if problem is not None:
            raise AddressError(
                T(
                    f"Ungültige E-Mail-Adresse {self.address!r}: {problem.de}.",
                    f"Invalid e-mail address {self.address!r}: {problem.en}.",
                ),
                hint=T("Format name@domain.de, ohne Leerzeichen.", "Use the form name@domain.com, no spaces."),
            )
        if any(ch in self.name for ch in _LINE_BREAKS):
            raise AddressError(T("Anzeigename enthält einen Zeilenumbruch.", "Display name contains a line break."))

    @classmethod
    def parse(cls, text: str) -> "Address":
        """Exactly one address: ``Name <a@b.de>``, ``"Name, Firma" <a@b.de>`` or ``a@b.de``.

        Strict on purpose: text that is not exactly the one address it appears to be (a line
        break, a second address after the first, an unquoted name holding an ``@``) is refused,
        so data from a file can never add a recipient."""
        text = str(text).strip()
        if any(ch in text for ch in _LINE_BREAKS):
            raise AddressError(
                T(f"Adresse {text!r} enthält einen Zeilenumbruch.", f"address {text!r} contains a line break.")
            )
        m = re.fullmatch(r'(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<plain>[^"<>]*?))\s*<(?P<addr>[^<>]*)>', text)
        if m is None:
            return cls(text)
        plain = m.group("plain")
        if plain and _NAME_SPECIALS & set(plain):
            raise AddressError(
                T(
                    f"Anzeigename in {text!r} enthält Sonderzeichen wie @ , ; < > ( ).",
                    f"the display name in {text!r} contains special characters such as @ , ; < > ( ).",
                ),
                hint=T(
                    'Den Namen in Anführungszeichen setzen: "Name, Firma" <name@domain.de>.',
                    'Put the name in double quotes: "Name, Company" <name@domain.com>.',
                ),
            )
        quoted = m.group("quoted")
        name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain.strip()
        return cls(m.group("addr").strip(), name)

    @classmethod
    def parse_list(cls, text: str) -> list["Address"]:
        """Addresses separated by ``,`` or ``;`` (outside quotes and ``<…>``), each as strict as
        :meth:`parse`; blank items are skipped."""
        return [cls.parse(item) for item in cls.split_list(text)]

    @staticmethod
    def split_list(text: str) -> list[str]:
        """The items of an address list as :meth:`parse_list` reads them (``,`` or ``;`` outside
        quotes and ``<…>``), stripped, blanks dropped; not yet checked as addresses."""
        items, current, quoted, angle, escaped = [], "", False, False, False
        for ch in str(text):
            if escaped:
                escaped = False
            elif ch == "\\" and quoted:
                escaped = True
            elif ch == '"' and not angle:
                quoted = not quoted
            elif ch == "<" and not quoted:
                angle = True
            elif ch == ">" and not quoted:
                angle = False
            elif ch in ",;" and not quoted and not angle:
                items.append(current)
                current = ""
                continue
            current += ch
        items.append(current)
        return [item.strip() for item in items if item.strip()]

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
            known = _CONTENT_TYPES.get(Path(self.filename).suffix.lower())
            guessed = known or mimetypes.guess_type(self.filename)[0]
            object.__setattr__(self, "content_type", guessed or "application/octet-stream")
        if self.inline and not self.content_id:
            object.__setattr__(self, "content_id", self.filename)

    def check(self) -> None:
        """Raise :class:`AttachmentError` unless this is a readable regular file with a usable name.

        Devices and pipes are refused before anything is sent: ``/dev/zero`` never ends and a FIFO
        blocks the send forever."""
        for label, value in (("Dateiname", self.filename), ("Content-ID", self.content_id)):
            if any(ch in value for ch in _LINE_BREAKS):
                raise AttachmentError(
                    T(
                        f"{label} des Anhangs {str(self.path)!r} enthält einen Zeilenumbruch.",
                        f"the attachment {str(self.path)!r} has a line break in its {label}.",
                    )
                )
        if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", self.content_type):
            raise AttachmentError(
                T(
                    f"Ungültiger Medientyp {self.content_type!r} für {self.filename}.",
                    f"invalid media type {self.content_type!r} for {self.filename}.",
                )
            )
        try:
            if not stat.S_ISREG(self.path.stat().st_mode):
                raise AttachmentError(
                    T(
                        f"Anhang {self.path} ist keine gewöhnliche Datei (Gerät, Pipe oder Ordner).",
                        f"attachment {self.path} is not a regular file (a device, pipe or folder).",
                    ),
                    hint=T("Eine Datei angeben.", "Give a file."),
                )
            with self.path.open("rb"):  # stat() said regular: opening it cannot block
                pass
        except AttachmentError:  # an OSError itself
            raise
        except OSError as exc:
            raise AttachmentError(
                T(
                    f"Anhang nicht lesbar: {self.path} ({exc.strerror})",
                    f"Attachment cannot be read: {self.path} ({exc.strerror})",
                ),
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

    Send-as (since 1.4): ``sender`` is the address the message is *from*. When it differs from
    the account's own mailbox (a shared mailbox, ``purposes.<p>.from``), the transport sends
    through the account's mailbox *as* ``sender``: Graph's ``from``, SMTP's ``From`` header with
    the account's address on the envelope. The provider decides whether that is allowed.

    ``save_to_sent``: keep a copy in the sending mailbox's Sent Items (Graph's
    ``saveToSentItems``); without it an unknown outcome cannot be settled by a lookup there.
    ``request_read_receipt`` / ``request_delivery_receipt``: ask the recipient's client for a
    read receipt (``Disposition-Notification-To``, RFC 8098) and the servers on the way for a
    delivery report (DSN ``NOTIFY=SUCCESS``, RFC 3461; Graph's ``isDeliveryReceiptRequested``).
    ``archive``: the host keeps an archive copy of exactly what was sent; the transport must put
    the RFC 5322 bytes it handed to the provider into :attr:`Receipt.mime`, or refuse the message
    before anything leaves when it cannot. (All four since 1.4.)
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
    save_to_sent: bool = True
    request_read_receipt: bool = False
    request_delivery_receipt: bool = False
    archive: bool = False

    def recipients(self) -> list[Address]:
        """Everybody the message goes to (to + cc + bcc), in that order."""
        return [*self.to, *self.cc, *self.bcc]

    def check(self) -> None:
        """Raise a clear error for anything no provider should ever see; the host calls this
        before the journal claim and again after the prepare hooks, so only the transport's own
        request can end with an unknown outcome.

        Checked: addresses are :class:`Address` objects, the subject and header values hold no
        line break or NUL, header names are ``X-…``, every attachment is a readable regular file.

        .. versionadded:: 1.2
        """
        for address in [*self.recipients(), *self.reply_to, *([self.sender] if self.sender else [])]:
            if not isinstance(address, Address):
                raise AddressError(T(f"{address!r} ist keine Adresse (Address).", f"{address!r} is not an Address."))
        if self.request_read_receipt and self.sender is None:
            raise AddressError(
                T("Eine Lesebestätigung braucht einen Absender (sender).", "a read receipt needs a sender.")
            )
        if any(ch in self.subject for ch in _LINE_BREAKS):
            raise TemplateError(
                T(
                    "Der Betreff enthält einen Zeilenumbruch oder ein NUL-Zeichen (evtl. aus einem Platzhalterwert); "
                    "nichts gesendet.",
                    "The subject contains a line break or a NUL character (possibly from a placeholder value); "
                    "nothing sent.",
                ),
                hint=T(
                    "Zeilenumbrüche aus Betreff und Platzhalterwerten entfernen.",
                    "Remove line breaks from the subject and placeholder values.",
                ),
            )
        for name, value in self.headers.items():
            if not re.fullmatch(r"[Xx]-[!-9;-~]+", name):
                raise ConfigError(
                    T(f"Kopfzeile {name!r} nicht erlaubt: nur X-…", f"header {name!r} not allowed: X-… only")
                )
            if any(ch in str(value) for ch in _LINE_BREAKS):
                raise ConfigError(
                    T(
                        f"Kopfzeile {name}: der Wert enthält einen Zeilenumbruch.",
                        f"header {name}: the value contains a line break.",
                    )
                )
        if any(ch in self.message_id for ch in _LINE_BREAKS):
            raise ConfigError(T("Die Message-ID enthält einen Zeilenumbruch.", "the Message-ID contains a line break."))
        for attachment in self.attachments:
            attachment.check()
        self._check_unicode()

    def _check_unicode(self) -> None:
        """Every text is Unicode a mail can carry. A lone surrogate (half of an emoji from a
        cut-off JSON escape, a file name in no known encoding) would only fail in the transport,
        after the claim, as an outcome nobody can know. Since 1.4.1."""
        texts = [
            ("Betreff/subject", self.subject),
            ("Text/body", self.text or ""),
            ("HTML", self.html or ""),
            *((f"Kopfzeile/header {k}", f"{k}: {v}") for k, v in self.headers.items()),
            *(("Anhang/attachment", f"{a.filename} {a.path}") for a in self.attachments),
            *(
                ("Adresse/address", f"{a.name} {a.address}")
                for a in (*self.recipients(), *self.reply_to, *([self.sender] if self.sender else []))
            ),
        ]
        for where, text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = text.encode("utf-8", "replace").decode("utf-8")
                raise TemplateError(
                    T(
                        f"{where}: {shown[:80]!r} enthält Zeichen, die kein gültiger Text sind (ein halbes "
                        "Emoji oder ein Dateiname in unbekannter Kodierung). Nichts gesendet.",
                        f"{where}: {shown[:80]!r} contains characters that are not valid text (half an emoji "
                        "or a file name in an unknown encoding). Nothing sent.",
                    ),
                    hint=T(
                        "Die Daten als UTF-8 übergeben; JSON-Escapes \\ud83d… nur paarweise.",
                        "Pass the data as UTF-8; JSON escapes \\ud83d… only in pairs.",
                    ),
                ) from None


def build_mime(message: Message, *, date: datetime | None = None) -> EmailMessage:
    """The message as RFC 5322 MIME (text/HTML alternative, attachments, inline images).

    Bcc is **not** written into the headers: put recipients on the envelope instead. Call
    :meth:`Message.check` first (the host does): it refuses what no header may hold.
    Attachments are read into memory, so use this for SMTP and .eml files, not for huge uploads.
    Text parts are 7-bit clean (quoted-printable/base64), so any SMTP server takes them, with or
    without 8BITMIME. Flatten with ``mime.policy`` (e.g. ``mime.policy.clone(linesep="\r\n")``):
    it leaves the pre-encoded headers alone, where ``email.policy.SMTP`` would refold them.
    """
    from email.message import EmailMessage  # the MIME machinery: only for transports that send MIME
    from email.utils import format_datetime

    mime = EmailMessage(policy=_policies()[0])
    if message.sender is not None:
        _set_addresses(mime, "From", [message.sender])
    _set_addresses(mime, "To", message.to)
    _set_addresses(mime, "Cc", message.cc)
    _set_addresses(mime, "Reply-To", message.reply_to)
    _set_unstructured(mime, "Subject", message.subject)
    mime["Date"] = format_datetime(date or datetime.now(timezone.utc))
    if message.message_id:
        # raw and unfolded: a folded id arrives as " <id>" and no longer matches the journal
        mime.set_raw("Message-ID", message.message_id)
    for name, value in message.headers.items():
        _set_unstructured(mime, name, value)
    if message.request_read_receipt and message.sender is not None:
        # RFC 8098: the client asks its reader and answers to this address (Graph's
        # isReadReceiptRequested does the same with the From address)
        # (the address alone: the header registry has no address type for it, and no name is needed)
        mime["Disposition-Notification-To"] = f"<{addr_spec(message.sender.address)}>"

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
            target.add_related(
                att.read_bytes(),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{att.content_id}>",
                filename=att.filename,
                disposition="inline",
            )
    for att in regular:
        maintype, subtype = att.content_type.split("/", 1)
        mime.add_attachment(att.read_bytes(), maintype=maintype, subtype=subtype, filename=att.filename)
    return mime


@functools.cache
def _policies() -> tuple[EmailPolicy[EmailMessage], EmailPolicy[EmailMessage]]:
    """email.policy.default, but text parts get a 7-bit transfer encoding (no 8BITMIME needed),
    and headers set raw here (pre-encoded, see _set_unstructured) are never refolded by the
    generator; and the same for a message with a non-ASCII address (RFC 6532), whose headers are
    written as UTF-8."""
    from email import policy

    mime = policy.default.clone(cte_type="7bit", refold_source="none")
    return mime, mime.clone(utf8=True)


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
    ("Müller-Lüde nscheidt"), so those headers are built from whole encoded words too. An
    address itself is never an encoded word (RFC 2047 forbids it): an IDN domain is written as
    its IDNA A-label, a non-ASCII local part as UTF-8 (RFC 6532), which switches the message's
    policy to ``utf8`` — such a message needs SMTPUTF8 (or Graph) to be sent.
    """
    if not addresses:
        return
    specs = [addr_spec(a.address) for a in addresses]
    if all(spec.isascii() for spec in specs) and all(a.name.isascii() for a in addresses):
        mime[name] = [_header_address(a, spec) for a, spec in zip(addresses, specs, strict=True)]
        return
    if not all(spec.isascii() for spec in specs):
        mime.policy = _policies()[1]
    tokens: list[str] = []
    for n, (address, spec) in enumerate(zip(addresses, specs, strict=True)):
        if address.name.isascii():
            from email.utils import formataddr

            words = [formataddr((address.name, "x@y"))[: -len(" <x@y>")]] if address.name else []
        else:
            words = _encoded_words(address.name, 45)
        tokens += words + [f"<{spec}>" + ("," if n < len(addresses) - 1 else "")]
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > 78 and lines[-1].strip() != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    lines[0] = lines[0][len(name) + 2 :]
    mime.set_raw(name, "\r\n".join(lines))


def addr_spec(address: str) -> str:
    """``local@domain`` for a header or an SMTP envelope: an ASCII local part with an IDN domain gets the domain's
    IDNA A-label (``müller.de`` → ``xn--mller-kva.de``), valid everywhere; a non-ASCII local part
    needs RFC 6532 anyway, which allows the domain as it is."""
    local, _, domain = address.rpartition("@")
    if domain.isascii() or not local.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise AddressError(
            T(
                f"Domain von {address!r} lässt sich nicht als IDNA schreiben.",
                f"the domain of {address!r} cannot be written as IDNA.",
            )
        ) from exc


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


def _header_address(address: Address, spec: str) -> _EmailAddress:
    from email.headerregistry import Address as _EmailAddress

    username, _, domain = spec.rpartition("@")
    return _EmailAddress(display_name=address.name, username=username, domain=domain)


def _find_html_part(mime: EmailMessage) -> EmailMessage | None:
    from email.message import EmailMessage

    for part in mime.walk():
        if isinstance(part, EmailMessage) and part.get_content_type() == "text/html":
            return part
    return None
