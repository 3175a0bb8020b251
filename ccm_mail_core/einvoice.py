"""E-invoices among a message's attachments, recognised by what the file holds, never by its name.

- **XRechnung** (and any EN 16931 XML): an XML file whose root is UBL ``Invoice`` / ``CreditNote``
  (OASIS UBL 2.1) or UN/CEFACT CII ``CrossIndustryInvoice``; sent as ``application/xml`` with an
  ``.xml`` name.
- **ZUGFeRD 2.x / Factur-X**: a PDF (PDF/A-3) with an embedded ``factur-x.xml``,
  ``zugferd-invoice.xml``, ``ZUGFeRD-invoice.xml`` or ``xrechnung.xml`` whose root is CII; sent
  as ``application/pdf`` with a ``.pdf`` name. The PDF itself is never touched: it goes out byte
  for byte as it is on disk.

A file with the right name but other content (an HTML page called ``factur-x.xml``, a PDF that
embeds UBL or any other XML under that name) is *not* an e-invoice, nor is XML that is not
well-formed to its end (cut off, garbage after the root), XML in an encoding Python does not know,
XML over 32 MB, or XML with a DOCTYPE anywhere (e-invoices have none; that keeps entity tricks
out). The standard library's expat reads the rest in one piece (it resolves no external
entities; read in small chunks, a long attribute or comment made it rescan for minutes). A PDF
pypdf cannot open (broken, encrypted with another handler) is no e-invoice either: recognition
never stops a send.

Every PDF (by its ``%PDF-`` header) goes as ``application/pdf`` with a ``.pdf`` name. Whether it
is a ZUGFeRD invoice is read with pypdf (pure Python, the same on Windows) only where a rule
needs the answer (``einvoice: required``): importing pypdf costs a cold per-invoice call about
0.1 s, which a send that only needs the media type should not pay. XML is always recognised (the
standard library reads a 30 KB XRechnung in under a millisecond, 30 MB in half a second).
"""

from __future__ import annotations

import dataclasses
import io
import mimetypes
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ccm_mail_hookspecs import Attachment, AttachmentError, T

UBL_INVOICE = "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"
UBL_CREDIT_NOTE = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"
CII = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice"
_CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"
_RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
#: what Factur-X 1.0 / ZUGFeRD 2.x call the embedded invoice (2.1.1 allows xrechnung.xml for its XRECHNUNG profile)
EMBEDDED_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
_FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
#: how far into an XML file its profile id is looked for (it is among the first elements)
_MAX_ELEMENTS = 200
_HEAD = 4096
#: XML above this is no e-invoice here (XRechnung portals take 10–20 MB, attachments included)
_MAX_XML = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EInvoice:
    """A recognised e-invoice.

    :param kind: ``"xrechnung"`` (XML) or ``"zugferd"`` (PDF with embedded CII).
    :param syntax: ``"UBL Invoice"``, ``"UBL CreditNote"`` or ``"CII"``.
    :param profile: the specification id the invoice names (UBL ``CustomizationID``, CII guideline
        id), e.g. ``urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0``.
    :param embedded: in a PDF: the embedded file's name; ``pdfa``: its PDF/A part from the XMP
        metadata ("3" for PDF/A-3), ``level``: the Factur-X conformance level (e.g. "EN 16931").
    """

    kind: str
    syntax: str
    profile: str = ""
    embedded: str = ""
    pdfa: str = ""
    level: str = ""

    def label(self, lang: str) -> str:
        if self.kind == "zugferd":
            extra = ", ".join(x for x in (self.level, f"PDF/A-{self.pdfa}" if self.pdfa else "") if x)
            return T(
                f"ZUGFeRD/Factur-X ({self.embedded}{', ' + extra if extra else ''})",
                f"ZUGFeRD/Factur-X ({self.embedded}{', ' + extra if extra else ''})",
            ).get(lang)
        return T(f"XRechnung ({self.syntax})", f"XRechnung ({self.syntax})").get(lang)

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class EInvoiceMissing(AttachmentError):
    """The purpose declares ``einvoice: required`` and no attachment is an e-invoice; nothing sent."""

    kind = "einvoice_missing"


def _is_pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:1024]  # ISO 32000: the header may follow up to 1024 bytes of junk


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(_HEAD)
    except OSError:
        return b""


def recognise(path: Path, *, pdf: bool = True) -> EInvoice | None:
    """What e-invoice the file is, or None (also for an unreadable or broken file: the attachment
    check reports those). ``pdf=False``: do not look inside PDFs (see the module docstring)."""
    head = _head(path)
    if _is_pdf(head):
        return _pdf(path) if pdf else None
    if _looks_like_xml(head):
        try:
            with path.open("rb") as fh:
                found = _xml(fh)
        except OSError:
            return None
        return EInvoice("xrechnung", found[0], found[1]) if found else None
    return None


def classify(attachment: Attachment, *, pdf: bool = True) -> tuple[Attachment, EInvoice | None]:
    """The attachment with its content's media type and a matching file name (every PDF, and
    XML that is an e-invoice), and the e-invoice it is, if any."""
    if attachment.inline:
        return attachment, None
    is_pdf = _is_pdf(_head(attachment.path))
    found = recognise(attachment.path, pdf=pdf)
    if found is None and not is_pdf:
        return attachment, None
    media, suffix = ("application/pdf", ".pdf") if is_pdf else ("application/xml", ".xml")
    return dataclasses.replace(attachment, content_type=media, filename=_named(attachment.filename, suffix)), found


def classify_all(
    attachments: Iterable[Attachment], *, pdf: bool = True
) -> tuple[list[Attachment], list[tuple[str, EInvoice]]]:
    out, found = [], []
    for attachment in attachments:
        classified, what = classify(attachment, pdf=pdf)
        out.append(classified)
        if what is not None:
            found.append((classified.filename, what))
    return out, found


def require(purpose: str, attachments: Sequence[Attachment], found: Sequence[tuple[str, EInvoice]]) -> None:
    """Raise :class:`EInvoiceMissing` when none of the attachments is an e-invoice."""
    if found:
        return
    names = ", ".join(a.filename for a in attachments) or "-"
    raise EInvoiceMissing(
        T(
            f"Zweck {purpose!r} verlangt eine E-Rechnung (XRechnung oder ZUGFeRD/Factur-X), aber keiner der Anhänge "
            f"ist eine ({names}); nichts gesendet.",
            f"purpose {purpose!r} requires an e-invoice (XRechnung or ZUGFeRD/Factur-X), but none of the attachments "
            f"is one ({names}); nothing sent.",
        ),
        hint=T(
            "Die XRechnung-XML-Datei oder das ZUGFeRD-PDF aus AbSys anhängen. Erkannt wird der Inhalt: UBL "
            "Invoice/CreditNote oder CII CrossIndustryInvoice, im PDF eingebettet als factur-x.xml; der "
            "Dateiname allein genügt nicht.",
            "Attach the XRechnung XML file or the ZUGFeRD PDF from AbSys. What counts is the content: UBL "
            "Invoice/CreditNote or CII CrossIndustryInvoice, embedded in the PDF as factur-x.xml; the file "
            "name alone is not enough.",
        ),
        details={"attachments": [a.filename for a in attachments]},
    )


def _named(filename: str, suffix: str) -> str:
    """``filename`` ending in ``suffix``: a wrong known extension is replaced, anything else kept."""
    path = Path(filename)
    if path.suffix.lower() == suffix:
        return filename
    if path.suffix and mimetypes.guess_type(filename)[0] is not None:
        return path.stem + suffix
    return filename + suffix


def _looks_like_xml(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<")


def _xml(source: BinaryIO) -> tuple[str, str] | None:
    """(syntax, profile) of an EN 16931 invoice, or None for any other XML, XML that is not
    well-formed to its end (cut off, garbage after the root), XML with a DTD anywhere (never
    parsed: entity expansion) or larger than :data:`_MAX_XML` (no XRechnung is)."""
    data = source.read(_MAX_XML + 1)
    if len(data) > _MAX_XML or b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        return None
    # one feed of the whole file: expat re-scans a long attribute or comment on every small
    # chunk (a 60 MB attribute took minutes in 16 KB reads)
    parser: Any = ET.XMLPullParser(events=("start", "end"))
    try:
        parser.feed(data)
        parser.close()
    except (ET.ParseError, LookupError, ValueError):  # LookupError: an encoding Python does not know
        return None
    syntax, profile, depth = "", "", 0
    for n, (event, element) in enumerate(parser.read_events()):
        if n == 0:
            syntax = {UBL_INVOICE: "UBL Invoice", UBL_CREDIT_NOTE: "UBL CreditNote", CII: "CII"}.get(element.tag, "")
            if not syntax:
                return None
        if n > _MAX_ELEMENTS:
            break
        if event == "start":
            depth += 1
            continue
        depth -= 1
        if syntax.startswith("UBL") and depth == 1 and element.tag == f"{_CBC}CustomizationID":
            profile = (element.text or "").strip()
            break
        if syntax == "CII" and element.tag == f"{_RAM}GuidelineSpecifiedDocumentContextParameter":
            ident = element.find(f"{_RAM}ID")
            profile = (ident.text or "").strip() if ident is not None else ""
            break
    return (syntax, profile) if syntax else None


def _pdf(path: Path) -> EInvoice | None:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a PDF's quirks are not the admin's concern here
    try:
        reader = PdfReader(path, strict=False)
        attachments = reader.attachments
        wanted = {name.lower(): name for name in attachments if name.lower() in EMBEDDED_NAMES}
        if not wanted:
            return None
        pdfa, level = _xmp(reader)
        for lower in EMBEDDED_NAMES:
            if lower not in wanted:
                continue
            name = wanted[lower]
            for data in attachments[name]:
                if not _looks_like_xml(data[:_HEAD]):
                    continue
                found = _xml(io.BytesIO(data))
                if found and found[0] == "CII":
                    return EInvoice("zugferd", "CII", found[1], name, pdfa, level)
    except Exception:  # pypdf raises NotImplementedError, LookupError, … on odd PDFs, not only PyPdfError
        return None  # a broken, encrypted or odd PDF is no e-invoice; it must never stop the send
    return None


def _xmp(reader: object) -> tuple[str, str]:
    """The PDF/A part and the Factur-X conformance level from the XMP metadata, when present."""
    try:
        xmp = reader.xmp_metadata  # type: ignore[attr-defined]
    except Exception:  # unreadable XMP says nothing about the invoice
        return "", ""
    if xmp is None:
        return "", ""
    part = str(getattr(xmp, "pdfaid_part", "") or "")
    level = ""
    try:
        for node in xmp.get_nodes_in_namespace("", _FX_NS):
            if getattr(node, "localName", "") == "ConformanceLevel":
                level = "".join(getattr(child, "data", "") for child in node.childNodes).strip()
    except Exception:  # the level is a detail for people, never a reason to fail
        pass
    return part, level
