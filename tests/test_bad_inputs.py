"""Bad input gets a clear message (German and English), nothing is sent, the journal stays intact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccm_mail_core.journal import DuplicateSend
from ccm_mail_core.config import ConfigProblems
from ccm_mail_hookspecs import AddressError, AttachmentError, CcmMailError, ConfigError, TemplateError

from host_support import BASE_CONFIG, INVOICE

# (case id, config text, expected line, expected key, text that must appear in de, in en)
CONFIG_CASES = [
    (
        "broken-yaml",
        BASE_CONFIG.replace("    folder: out", "    folder: [out"),
        6,
        "",
        "YAML-Syntaxfehler",
        "YAML syntax error",
    ),
    (
        "unknown-key",
        BASE_CONFIG.replace("purposes:", "purposess:\n  x: 1\npurposes:"),
        8,
        "purposess",
        "Meinten Sie 'purposes'",
        "Did you mean 'purposes'",
    ),
    (
        "unknown-account-key",
        BASE_CONFIG.replace("    from_name:", "    folderr: x\n    from_name:"),
        7,
        "accounts.Rechnungsversand.folderr",
        "Meinten Sie 'folder'",
        "Did you mean 'folder'",
    ),
    (
        "unknown-type",
        BASE_CONFIG.replace("type: pickup", "type: pikcup"),
        4,
        "accounts.Rechnungsversand.type",
        "Meinten Sie 'pickup'",
        "Did you mean 'pickup'",
    ),
    (
        "missing-required",
        BASE_CONFIG.replace("    sender: rechnung@codicon.de\n", ""),
        3,
        "accounts.Rechnungsversand.sender",
        "Pflichtfeld",
        "required field",
    ),
    (
        "bad-sender",
        BASE_CONFIG.replace("rechnung@codicon.de", "rechnung at codicon"),
        6,
        "accounts.Rechnungsversand.sender",
        "Ungültige E-Mail-Adresse",
        "Invalid e-mail address",
    ),
    (
        "unknown-account",
        BASE_CONFIG.replace("invoice: Rechnungsversand", "invoice: Rechnungsverstand"),
        9,
        "purposes.invoice",
        "Meinten Sie 'Rechnungsversand'",
        "Did you mean 'Rechnungsversand'",
    ),
    (
        "unknown-placeholder",
        BASE_CONFIG.replace("Rg. #extRechnungsNr#", "Rg. #extRechnungNr#"),
        12,
        "templates.invoice.subject",
        "Meinten Sie #extRechnungsNr#",
        "Did you mean #extRechnungsNr#",
    ),
    (
        "lone-hash",
        BASE_CONFIG.replace("Rg. #extRechnungsNr#", "Rg. #extRechnungsNr"),
        12,
        "templates.invoice.subject",
        "##",
        "##",
    ),
    ("bad-language", BASE_CONFIG.replace("language: de", "language: fr"), 1, "language", "Sprache", "language"),
    (
        "missing-secret-env",
        BASE_CONFIG.replace("    folder: out", "    folder: {env: CCM_TEST_UNSET_VAR}"),
        5,
        "accounts.Rechnungsversand.folder",
        "CCM_TEST_UNSET_VAR ist nicht gesetzt",
        "CCM_TEST_UNSET_VAR is not set",
    ),
    (
        "missing-secret-file",
        BASE_CONFIG.replace("    folder: out", "    folder: {file: nope.txt}"),
        5,
        "accounts.Rechnungsversand.folder",
        "nicht lesbar",
        "cannot be read",
    ),
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_problem_names_file_line_and_key(case, make_mailer, workdir) -> None:
    _, text, line, key, de, en = case
    os.environ.pop("CCM_TEST_UNSET_VAR", None)
    with pytest.raises(ConfigProblems) as err:
        make_mailer(text)
    problems = [p for p in err.value.problems if not p.warning]
    assert len(problems) == 1, [p.render("en") for p in problems]
    p = problems[0]
    assert p.file == str(workdir / "ccm-mail.yaml")
    assert (p.line, p.key) == (line, key)
    assert de in p.render("de") and en in p.render("en")
    assert not (workdir / "out").exists() and not (workdir / "journal.sqlite").exists()


def test_all_problems_are_reported_at_once(make_mailer) -> None:
    text = (
        BASE_CONFIG.replace("type: pickup", "type: pickup\n    colour: blue")
        .replace("invoice: Rechnungsversand", "invoice: Nope")
        .replace("#Betrag#", "#Betrg#")
        .replace("language: de", "language: de\nlogging: {format: xml}")
    )
    with pytest.raises(ConfigProblems) as err:
        make_mailer(text)
    keys = sorted(p.key for p in err.value.problems)
    assert keys == ["accounts.Rechnungsversand.colour", "logging.format", "purposes.invoice", "templates.invoice.body"]


def test_missing_config_file_says_where_to_start(tmp_path) -> None:
    from ccm_mail_core import Mailer

    with pytest.raises(ConfigProblems) as err:
        Mailer.from_config(tmp_path / "nope.yaml", load_entrypoints=False)
    assert "config.example.yaml" in err.value.render("de")


def _journal_rows(mailer) -> list:
    return [(e.reference, e.status.value) for e in mailer.journal.query()]


SEND_CASES = [
    ("unknown-purpose", dict(purpose="mahnung"), ConfigError, "keinem Konto zugeordnet", "has no account"),
    ("invalid-address", dict(to=["kunde@@example"]), AddressError, "Ungültige E-Mail-Adresse", "Invalid e-mail"),
    ("no-recipient", dict(to=[]), ConfigError, "Kein Empfänger", "no recipient"),
    (
        "missing-attachment",
        dict(attachments=["fehlt.pdf"]),
        AttachmentError,
        "Anhang nicht lesbar",
        "Attachment cannot be read",
    ),
    (
        "missing-value",
        dict(data={"extRechnungsNr": "RE-9"}),
        TemplateError,
        "Kein Wert für Platzhalter #Anrede#",
        "No value for placeholder #Anrede#",
    ),
    (
        "crlf-subject",
        dict(data=dict(INVOICE, extRechnungsNr="RE-1\r\nBcc: evil@example.com")),
        TemplateError,
        "Zeilenumbruch",
        "line break",
    ),
    ("duplicate-reference", dict(), DuplicateSend, "bereits im Journal", "already in the journal"),
    (
        "non-x-header",
        dict(data=dict(INVOICE, extRechnungsNr="RE-2"), headers={"Reply-To": "evil@example.com"}),
        ConfigError,
        "Kopfzeile 'Reply-To' nicht erlaubt",
        "header 'Reply-To' not allowed",
    ),
]


@pytest.mark.parametrize("case", SEND_CASES, ids=[c[0] for c in SEND_CASES])
def test_bad_send_input_sends_nothing_and_keeps_the_journal(case, make_mailer, workdir) -> None:
    _, overrides, exc_type, de, en = case
    mailer = make_mailer()
    first = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    before_files = sorted((workdir / "out").iterdir())
    before_rows = _journal_rows(mailer)
    kwargs = {"to": ["kunde@example.de"], "data": INVOICE, "assume_yes": True, **overrides}
    purpose = kwargs.pop("purpose", "invoice")
    with pytest.raises(exc_type) as err:
        mailer.send(purpose, **kwargs)
    assert isinstance(err.value, CcmMailError)
    assert de in err.value.render("de") and en in err.value.render("en")
    assert sorted((workdir / "out").iterdir()) == before_files
    assert _journal_rows(mailer) == before_rows
    assert mailer.journal.get(first.journal_id).status.value == "sent"
    assert mailer.journal.integrity_ok()


def test_group_readable_secret_file_gives_a_warning(make_mailer, workdir: Path) -> None:
    secret = workdir / "folder.txt"
    secret.write_text("out\n")
    secret.chmod(0o644)
    mailer = make_mailer(BASE_CONFIG.replace("    folder: out", "    folder: {file: folder.txt}"))
    assert any("chmod 600" in w.render("de") for w in mailer.config.warnings)
    secret.chmod(0o600)
    assert not make_mailer(BASE_CONFIG.replace("    folder: out", "    folder: {file: folder.txt}")).config.warnings
