from __future__ import annotations

import pytest

from ccm_mail_core import templates
from ccm_mail_hookspecs import TemplateError

VALUES = {"extRechnungsNr": "RE-1", "Kundenname": "Müller & Söhne <GmbH>", "Betrag": "12,00 €"}


def render(src: str, *, html: bool = False) -> str:
    return templates.parse(src).render(VALUES.get, escape_html=html)


def test_absys_subject_is_filled() -> None:
    assert render("codicon GmbH / Rg. #extRechnungsNr#") == "codicon GmbH / Rg. RE-1"


def test_double_hash_is_a_literal_hash() -> None:
    assert render("Rechnung ##1: #extRechnungsNr#") == "Rechnung #1: RE-1"
    assert render("#extRechnungsNr###") == "RE-1#"


def test_names_in_order_without_repeats() -> None:
    tpl = templates.parse("#Betrag# #extRechnungsNr# #Betrag#")
    assert tpl.names == ["Betrag", "extRechnungsNr"]


def test_unicode_passes_through() -> None:
    assert render("Grüße für #Kundenname#: #Betrag# – ß") == "Grüße für Müller & Söhne <GmbH>: 12,00 € – ß"


def test_values_are_escaped_in_html_but_template_markup_is_not() -> None:
    assert render("<p>#Kundenname#</p>", html=True) == "<p>Müller &amp; Söhne &lt;GmbH&gt;</p>"


@pytest.mark.parametrize("src", ["Rg. #extRechnungsNr", "Preis # 5", "#"])
def test_lone_hash_is_an_error_with_a_hint(src: str) -> None:
    with pytest.raises(TemplateError) as err:
        templates.parse(src)
    assert "##" in err.value.render("de")


def test_missing_values_are_all_named() -> None:
    with pytest.raises(TemplateError) as err:
        templates.parse("#Fehlt1# und #Fehlt2# und #Fehlt1#").render(VALUES.get)
    assert err.value.details["missing"] == ["Fehlt1", "Fehlt2"]
    assert "#Fehlt1#, #Fehlt2#" in err.value.render("en")


@pytest.mark.parametrize("subject", ["a\r\nBcc: x@evil.example", "a\nb", "a\rb", "a\0b"])
def test_subject_with_line_break_or_nul_is_rejected(subject: str) -> None:
    from ccm_mail_hookspecs import Address, Message

    with pytest.raises(TemplateError):
        Message(subject=subject, to=[Address("a@example.de")], text="x").check()
