"""Placeholders every installation has: dates, and the invoice and E-Service data fields AbSys
supplies with a send."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ccm_mail_hookspecs import Placeholder, SendContext, T, data_field, hookimpl

CCM_MAIL_API = 1

INVOICE = frozenset({"invoice"})


def _today(fmt: str) -> Callable[[SendContext], str]:
    def resolve(ctx: SendContext) -> str:
        return datetime.now().strftime(fmt)

    return resolve


@hookimpl
def ccm_mail_placeholders() -> list[Placeholder]:
    return [
        Placeholder(
            "Datum", T("Heutiges Datum (TT.MM.JJJJ)", "Today's date (DD.MM.YYYY)"), "29.11.2026", _today("%d.%m.%Y")
        ),
        Placeholder("Jahr", T("Aktuelles Jahr", "Current year"), "2026", _today("%Y")),
        Placeholder("Monat", T("Aktueller Monat (MM)", "Current month (MM)"), "11", _today("%m")),
        data_field(
            "extRechnungsNr", T("Externe Rechnungsnummer", "External invoice number"), "RE-2026-00042", purposes=INVOICE
        ),
        data_field("RechnungsNr", T("Interne Rechnungsnummer", "Internal invoice number"), "42", purposes=INVOICE),
        data_field("Rechnungsdatum", T("Rechnungsdatum", "Invoice date"), "28.11.2026", purposes=INVOICE),
        data_field("Faelligkeitsdatum", T("Fälligkeitsdatum", "Due date"), "12.12.2026", purposes=INVOICE),
        data_field("Betrag", T("Rechnungsbetrag brutto", "Invoice total (gross)"), "1.234,56 €", purposes=INVOICE),
        data_field("Kundennummer", T("Kundennummer", "Customer number"), "10042"),
        data_field("Kundenname", T("Name des Kunden", "Customer name"), "Müller & Söhne GmbH"),
        data_field(
            "Anrede", T("Briefanrede, z. B. 'Sehr geehrte Frau Weiß'", "Salutation line"), "Sehr geehrte Frau Weiß"
        ),
        data_field(
            "Ansprechpartner", T("Ansprechpartner beim Kunden", "Contact person at the customer"), "Jürgen Weiß"
        ),
    ]
