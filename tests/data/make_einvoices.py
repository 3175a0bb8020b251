"""Writes the e-invoice sample files next to this script (run it again after changing it; the
tests read the shipped files and never the network):

- ``xrechnung-ubl.xml``: XRechnung 3.0 in UBL 2.1 (``Invoice``), ``xrechnung-cii.xml``: the same in CII;
- ``zugferd.pdf``: a one-page PDF/A-3 with the CII invoice embedded as ``factur-x.xml``
  (``/AFRelationship /Alternative``, ``/Subtype text/xml``, the catalog's ``/AF``, XMP with
  ``pdfaid:part 3`` and Factur-X's ``fx:`` schema), as Factur-X 1.0 / ZUGFeRD 2.x describe it;
- ``fake-factur-x.xml``: the right name, an HTML page inside;
- ``zugferd-with-ubl.pdf``: a PDF embedding ``factur-x.xml`` that holds UBL, not CII (not valid ZUGFeRD);
- ``plain.pdf``: an ordinary PDF without embedded files.

Small and real: the PDFs are written by pypdf, the XML is what KoSIT's examples look like, cut
down to the elements the recognition reads plus enough to look like an invoice.

    python tests/data/make_einvoices.py
"""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject

HERE = Path(__file__).resolve().parent
XRECHNUNG = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"

UBL = f"""<?xml version="1.0" encoding="UTF-8"?>
<ubl:Invoice xmlns:ubl="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>{XRECHNUNG}</cbc:CustomizationID>
  <cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>
  <cbc:ID>RE-2026-00042</cbc:ID>
  <cbc:IssueDate>2026-11-30</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cbc:BuyerReference>04011000-12345-34</cbc:BuyerReference>
  <cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>codicon GmbH</cbc:Name></cac:PartyName></cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party><cac:PartyName><cbc:Name>Müller &amp; Söhne KG</cbc:Name></cac:PartyName></cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">1234.56</cbc:PayableAmount></cac:LegalMonetaryTotal>
</ubl:Invoice>
"""

CII = f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{XRECHNUNG}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>RE-2026-00042</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20261130</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:BuyerReference>04011000-12345-34</ram:BuyerReference>
      <ram:SellerTradeParty><ram:Name>codicon GmbH</ram:Name></ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Müller &amp; Söhne KG</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:DuePayableAmount>1234.56</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""

XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Rechnung RE-2026-00042</rdf:li></rdf:Alt></dc:title>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#">
   <fx:DocumentType>INVOICE</fx:DocumentType>
   <fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>
   <fx:Version>1.0</fx:Version>
   <fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""

HTML = """<!-- an error page a web shop saved under the e-invoice's name -->
<html><head><title>404</title></head><body><h1>Nicht gefunden</h1></body></html>
"""


def _page(writer: PdfWriter, text: str) -> None:
    page = writer.add_blank_page(595, 842)  # A4 in points
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 14 Tf 72 770 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(content)


def _pdf(path: Path, *, embedded: tuple[str, bytes] | None, xmp: str | None) -> None:
    writer = PdfWriter()
    _page(writer, "Rechnung RE-2026-00042 - codicon GmbH")
    writer.add_metadata({"/Title": "Rechnung RE-2026-00042", "/Producer": "ccm-mail tests/data/make_einvoices.py"})
    if embedded is not None:
        name, data = embedded
        attachment = writer.add_attachment(name, data)
        attachment.subtype = NameObject("/text#2Fxml")  # PDF/A-3: the embedded file's MIME type
        attachment.associated_file_relationship = NameObject("/Alternative")
        writer.root_object[NameObject("/AF")] = ArrayObject([attachment.pdf_object.indirect_reference])
    if xmp is not None:
        writer.xmp_metadata = xmp.encode("utf-8")
    with path.open("wb") as fh:
        writer.write(fh)


def main() -> None:
    (HERE / "xrechnung-ubl.xml").write_text(UBL, encoding="utf-8")
    (HERE / "xrechnung-cii.xml").write_text(CII, encoding="utf-8")
    (HERE / "fake-factur-x.xml").write_text(HTML, encoding="utf-8")
    _pdf(HERE / "zugferd.pdf", embedded=("factur-x.xml", CII.encode("utf-8")), xmp=XMP)
    _pdf(HERE / "zugferd-with-ubl.pdf", embedded=("factur-x.xml", UBL.encode("utf-8")), xmp=XMP)
    _pdf(HERE / "plain.pdf", embedded=None, xmp=None)


if __name__ == "__main__":
    main()
