"""Invoice mail as German businesses need it (issue 16), through the host and the pickup folder:
per-purpose defaults (reply-to, cc, archive bcc, send-as, receipts, Sent Items), e-invoices
recognised by content, the GoBD archive copy and ``archive verify``, and the write path keeping
the mapping form."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import textwrap
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from ccm_mail_core.config import ConfigProblems
from ccm_mail_core.einvoice import EInvoiceMissing, recognise
from ccm_mail_hookspecs import AddressError

from host_support import BASE_CONFIG, INVOICE, cli_json, run_cli

DATA = Path(__file__).resolve().parent / "data"

PURPOSE = """\
  invoice:
    account: Rechnungsversand
    reply_to: "#Sachbearbeiter# <#SachbearbeiterMail#>"
    cc: buchhaltung@codicon.de
    bcc: [archiv@codicon.de]
    from: rechnungen@codicon.de
    request_read_receipt: true
    request_delivery_receipt: true
"""
PLACEHOLDERS = """\
placeholders:
  Sachbearbeiter: {description: "Name", example: "Frau Weiß"}
  SachbearbeiterMail: {description: "Adresse", example: "weiss@codicon.de"}
"""
WITH_DATA = dict(INVOICE, Sachbearbeiter="Erika Weiß", SachbearbeiterMail="weiss@codicon.de")


def config_with(purpose: str = PURPOSE, extra: str = PLACEHOLDERS) -> str:
    return BASE_CONFIG.replace("  invoice: Rechnungsversand\n", purpose) + extra


def eml(path: Path):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def only_eml(folder: Path) -> Path:
    [found] = list(folder.glob("*.eml"))
    return found


# ---- 1. per-purpose defaults ------------------------------------------------------------------
def test_purpose_defaults_reach_the_message(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with())
    result = mailer.send("invoice", to=["kunde@example.de"], data=WITH_DATA, assume_yes=True)
    assert result.status.value == "sent", result.error
    msg = eml(only_eml(workdir / "out"))
    assert msg["From"].addresses[0].addr_spec == "rechnungen@codicon.de"
    assert msg["From"].addresses[0].display_name == "codicon GmbH"  # the account's name, the shared address
    assert msg["X-Envelope-From"] == "rechnung@codicon.de"  # sent through the account's own mailbox
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["weiss@codicon.de"]
    assert msg["Reply-To"].addresses[0].display_name == "Erika Weiß"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["buchhaltung@codicon.de"]
    assert msg["X-Envelope-Bcc"] == "archiv@codicon.de" and "Bcc" not in msg
    assert str(msg["Disposition-Notification-To"]) == "<rechnungen@codicon.de>"
    assert msg["X-Envelope-Notify"] == "SUCCESS,FAILURE"
    row = mailer.journal.get(result.journal_id)
    assert set(row.recipients) == {"kunde@example.de", "buchhaltung@codicon.de", "archiv@codicon.de"}
    assert row.payload["request_read_receipt"] and row.payload["request_delivery_receipt"]


def test_caller_reply_to_wins_and_cc_adds(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with())
    mailer.send(
        "invoice",
        to=["kunde@example.de"],
        cc=["chef@example.de"],
        reply_to=["service@codicon.de"],
        data=WITH_DATA,
        assume_yes=True,
    )
    msg = eml(only_eml(workdir / "out"))
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["service@codicon.de"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["chef@example.de", "buchhaltung@codicon.de"]


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        ('"a@codicon.de\\r\\nBcc: spion@example.com"', "reply_to", "Zeilenumbruch"),
        ('"a@codicon.de\\nX: y"', "cc", "Zeilenumbruch"),
        ("[a@codicon.de, b@codicon.de]", "from", "keine Liste"),
        ('"a@codicon.de, b@codicon.de"', "from", "nicht genau eine Adresse"),
        ('"kein-at-zeichen"', "bcc", "@"),
        ('"#Unbekannt#"', "reply_to", "unbekannter Platzhalter"),
    ],
)
def test_bad_defaults_are_config_errors_with_their_line(write_config, workdir, value, key, words) -> None:
    purpose = f"  invoice:\n    account: Rechnungsversand\n    {key}: {value}\n"
    write_config(config_with(purpose))
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(n for n, text in enumerate(config_with(purpose).splitlines(), 1) if text.strip().startswith(f"{key}:"))
    assert f":{line}: purposes.invoice.{key}:" in proc.stderr and words in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("SachbearbeiterMail", "weiss@codicon.de>\r\nBcc: spion@example.com"),
        ("SachbearbeiterMail", "weiss@codicon.de>, <spion@example.com"),
    ],
)
def test_data_cannot_add_a_recipient_through_a_default(make_mailer, workdir, field, value) -> None:
    mailer = make_mailer(config_with())
    with pytest.raises(AddressError):
        mailer.send("invoice", to=["kunde@example.de"], data=dict(WITH_DATA, **{field: value}), assume_yes=True)
    assert mailer.journal.query() == [] and not (workdir / "out").exists()


def test_from_placeholder_must_render_to_one_address(make_mailer) -> None:
    purpose = '  invoice:\n    account: Rechnungsversand\n    from: "#SachbearbeiterMail#"\n'
    mailer = make_mailer(config_with(purpose))
    with pytest.raises(AddressError, match="nicht genau eine Adresse"):
        mailer.send(
            "invoice", to=["k@example.de"], data=dict(WITH_DATA, SachbearbeiterMail="a@x.de; b@x.de"), assume_yes=True
        )
    assert mailer.journal.query() == []


def test_save_to_sent_false_is_explained_by_config_check(write_config, workdir) -> None:
    write_config(config_with("  invoice:\n    account: Rechnungsversand\n    save_to_sent: false\n"))
    code, data = cli_json("config", "check", cwd=workdir)
    assert code == 0
    [warning] = [w for w in data["warnings"] if w["key"] == "purposes.invoice.save_to_sent"]
    assert "Gesendete Elemente" in warning["message"] and "unklar" in warning["message"]


def test_mapping_without_account_and_unknown_key(make_mailer) -> None:
    with pytest.raises(ConfigProblems) as err:
        make_mailer(config_with("  invoice:\n    acount: Rechnungsversand\n"))
    keys = {p.key for p in err.value.problems if not p.warning}
    assert {"purposes.invoice.acount", "purposes.invoice.account"} <= keys
    assert any("Meinten Sie 'account'" in (p.hint.de if p.hint else "") for p in err.value.problems)


def test_purposes_set_keeps_the_mapping_and_the_comments(write_config, workdir) -> None:
    text = config_with(
        PURPOSE.replace(
            "    cc: buchhaltung@codicon.de\n", "    cc: buchhaltung@codicon.de   # Kopie an die Buchhaltung\n"
        )
    )
    path = write_config(text)
    proc = run_cli(
        "purposes",
        "set",
        "invoice",
        "Rechnungsversand",
        "--set",
        "bcc=gobd@codicon.de",
        "--set",
        "archive.folder=archiv",
        "--set",
        "archive.retention_years=8",
        "--unset",
        "from",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = path.read_text(encoding="utf-8")
    assert "# Kopie an die Buchhaltung" in after and "from:" not in after
    assert "bcc: gobd@codicon.de" in after and "archive: {folder: archiv, retention_years: 8}" in after
    code, data = cli_json("config", "check", cwd=workdir)
    assert code == 0 and data["archive"]["invoice"] == {"folder": str(workdir / "archiv"), "retention_years": 8}
    short = run_cli("purposes", "set", "eservice", "Rechnungsversand", cwd=workdir)
    assert short.returncode == 0 and "  eservice: Rechnungsversand\n" in path.read_text(encoding="utf-8")


# ---- 2. e-invoices --------------------------------------------------------------------------------
def test_recognised_by_content_not_by_name(tmp_path) -> None:
    for sample, kind, syntax in (
        ("xrechnung-ubl.xml", "xrechnung", "UBL Invoice"),
        ("xrechnung-cii.xml", "xrechnung", "CII"),
        ("zugferd.pdf", "zugferd", "CII"),
    ):
        renamed = tmp_path / f"{sample}.dat"
        shutil.copyfile(DATA / sample, renamed)
        found = recognise(renamed)
        assert found is not None and (found.kind, found.syntax) == (kind, syntax), sample
        assert found.profile.endswith("xrechnung_3.0")
    pdf = recognise(DATA / "zugferd.pdf")
    assert pdf is not None and (pdf.embedded, pdf.pdfa, pdf.level) == ("factur-x.xml", "3", "EN 16931")
    fake = tmp_path / "factur-x.xml"
    shutil.copyfile(DATA / "fake-factur-x.xml", fake)
    assert recognise(fake) is None  # the right name, an HTML page inside
    assert recognise(DATA / "zugferd-with-ubl.pdf") is None  # factur-x.xml that is not CII
    assert recognise(DATA / "plain.pdf") is None
    bomb = tmp_path / "xrechnung.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Invoice xmlns="urn:oasis:names:'
        'specification:ubl:schema:xsd:Invoice-2">&a;</Invoice>',
        encoding="utf-8",
    )
    assert recognise(bomb) is None  # a DOCTYPE is never read further


def test_einvoice_goes_with_its_media_type_name_and_bytes(make_mailer, workdir) -> None:
    xml = workdir / "RE-2026-00042.txt"
    shutil.copyfile(DATA / "xrechnung-ubl.xml", xml)
    pdf = workdir / "Rechnung"
    shutil.copyfile(DATA / "zugferd.pdf", pdf)
    mailer = make_mailer(config_with("  invoice:\n    account: Rechnungsversand\n    einvoice: required\n", ""))
    preview = mailer.preview("invoice", to=["k@example.de"], data=INVOICE, attachments=[xml, pdf])
    assert [(a.filename, a.content_type) for a in preview.message.attachments] == [
        ("RE-2026-00042.xml", "application/xml"),
        ("Rechnung.pdf", "application/pdf"),
    ]
    assert [e["kind"] for e in preview.extra["einvoice"]] == ["xrechnung", "zugferd"]
    assert preview.extra["einvoice"][1]["label"] == "ZUGFeRD/Factur-X (factur-x.xml, EN 16931, PDF/A-3)"
    mailer.send("invoice", to=["k@example.de"], data=INVOICE, attachments=[xml, pdf], assume_yes=True)
    parts = {p.get_filename(): p for p in eml(only_eml(workdir / "out")).iter_attachments()}
    assert parts["RE-2026-00042.xml"].get_content_type() == "application/xml"
    sent_pdf = parts["Rechnung.pdf"].get_payload(decode=True)
    assert hashlib.sha256(sent_pdf).hexdigest() == hashlib.sha256((DATA / "zugferd.pdf").read_bytes()).hexdigest()


def test_optional_purpose_names_a_pdf_by_its_content_without_reading_it(make_mailer, workdir) -> None:
    """Without ``einvoice: required`` a PDF still goes as application/pdf named .pdf, and pypdf
    is not even imported (a cold call would pay ~0.1 s for it)."""
    import subprocess
    import sys

    pdf = workdir / "Rechnung-ohne-Endung"
    shutil.copyfile(DATA / "plain.pdf", pdf)
    probe = (
        "import sys; from pathlib import Path; from ccm_mail_hookspecs import Attachment; "
        "from ccm_mail_core.einvoice import classify; "
        f"a, found = classify(Attachment(Path({str(pdf)!r})), pdf=False); "
        "print(a.filename, a.content_type, found, 'pypdf' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["Rechnung-ohne-Endung.pdf", "application/pdf", "None", "False"]
    preview = make_mailer().preview("invoice", to=["k@example.de"], data=INVOICE, attachments=[pdf])
    assert [(a.filename, a.content_type) for a in preview.message.attachments] == [
        ("Rechnung-ohne-Endung.pdf", "application/pdf")
    ]


@pytest.mark.parametrize("attach", [["plain.pdf"], ["fake-factur-x.xml"], ["zugferd-with-ubl.pdf"], []])
def test_einvoice_required_refuses_before_anything_leaves(write_config, workdir, attach) -> None:
    write_config(config_with("  invoice:\n    account: Rechnungsversand\n    einvoice: required\n", ""))
    (workdir / "invoice.json").write_text(json.dumps(INVOICE), encoding="utf-8")
    args = [a for name in attach for a in ("--attach", str(DATA / name))]
    proc = run_cli(
        "send", "--purpose", "invoice", "--to", "k@example.de", "--data", "invoice.json", "--yes", *args, cwd=workdir
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "verlangt eine E-Rechnung" in proc.stderr and "nichts gesendet" in proc.stderr
    assert not (workdir / "out").exists()
    code, data = cli_json("journal", cwd=workdir)
    assert data["entries"] == []
    en = run_cli(
        "send",
        "--purpose",
        "invoice",
        "--to",
        "k@example.de",
        "--data",
        "invoice.json",
        "--yes",
        "--lang",
        "en",
        *args,
        cwd=workdir,
    )
    assert en.returncode == 2 and "requires an e-invoice" in en.stderr


def test_einvoice_required_sends_with_one(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with("  invoice:\n    account: Rechnungsversand\n    einvoice: required\n", ""))
    result = mailer.send(
        "invoice", to=["k@example.de"], data=INVOICE, attachments=[DATA / "zugferd.pdf"], assume_yes=True
    )
    assert result.status.value == "sent"
    with pytest.raises(EInvoiceMissing):
        mailer.send(
            "invoice",
            to=["k@example.de"],
            data=dict(INVOICE, extRechnungsNr="RE-2"),
            attachments=[DATA / "plain.pdf"],
            assume_yes=True,
        )


# ---- 3. the archive copy -----------------------------------------------------------------------
ARCHIVED = "  invoice:\n    account: Rechnungsversand\n    archive: {folder: archiv, retention_years: 10}\n"


def test_archive_copy_is_the_exact_eml_and_verify_proves_it(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with(ARCHIVED, ""))
    result = mailer.send(
        "invoice", to=["k@example.de"], data=INVOICE, attachments=[DATA / "zugferd.pdf"], assume_yes=True
    )
    assert result.status.value == "sent" and result.archive is not None
    row = mailer.journal.get(result.journal_id)
    copy = Path(row.archive_file)
    assert copy.is_relative_to(workdir / "archiv") and copy.suffix == ".eml"
    assert copy.read_bytes() == only_eml(workdir / "out").read_bytes()  # what the transport wrote, byte for byte
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == row.archive_sha256 == result.archive["sha256"]
    if os.name == "posix":
        assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    mailer.close()
    code, data = cli_json("archive", "verify", cwd=workdir)
    assert code == 0 and data["checked"] == 1 and data["problems"] == [], data


def test_archive_verify_finds_an_altered_and_a_deleted_copy(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with(ARCHIVED, ""))
    rows = [
        mailer.send(
            "invoice", to=["k@example.de"], data=dict(INVOICE, extRechnungsNr=f"RE-{n}"), assume_yes=True
        ).journal_id
        for n in range(3)
    ]
    files = [Path(mailer.journal.get(r).archive_file) for r in rows]
    mailer.close()
    os.chmod(files[0], 0o600)
    files[0].write_bytes(files[0].read_bytes().replace(b"RE-0", b"RE-9"))
    os.chmod(files[1], 0o600)
    files[1].unlink()
    code, data = cli_json("archive", "verify", cwd=workdir)
    assert code == 1
    assert {(p["journal_id"], p["state"]) for p in data["problems"]} == {(rows[0], "altered"), (rows[1], "missing")}
    proc = run_cli("archive", "verify", cwd=workdir)
    assert proc.returncode == 1 and "VERÄNDERT" in proc.stdout and "FEHLT" in proc.stdout


def test_archive_is_write_once(tmp_path) -> None:
    from datetime import datetime, timezone

    from ccm_mail_core.archive import ArchiveError, store

    when = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    first, digest = store(tmp_path, 7, "<a@codicon.de>", when, b"one")
    with pytest.raises(ArchiveError, match="nie überschrieben"):
        store(tmp_path, 7, "<a@codicon.de>", when, b"two")
    assert Path(first).read_bytes() == b"one" and digest == hashlib.sha256(b"one").hexdigest()
    assert [p.name for p in Path(first).parent.iterdir()] == [Path(first).name]  # no temporary file left


def test_archive_without_hard_links_is_still_write_once(tmp_path, monkeypatch) -> None:
    """A file system without hard links (some SMB mounts): an exclusive create instead."""
    import errno as errno_mod
    from datetime import datetime, timezone

    from ccm_mail_core import archive

    def no_links(src: str, dst: str) -> None:
        raise OSError(errno_mod.EPERM, "Operation not permitted")

    monkeypatch.setattr(archive.os, "link", no_links)
    when = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    first, digest = archive.store(tmp_path, 8, "<b@codicon.de>", when, b"one")
    with pytest.raises(archive.ArchiveError, match="nie überschrieben"):
        archive.store(tmp_path, 8, "<b@codicon.de>", when, b"two")
    assert Path(first).read_bytes() == b"one" and digest == hashlib.sha256(b"one").hexdigest()
    if os.name == "posix":
        assert not Path(first).stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_archive_failure_is_reported_and_the_mail_stays_sent(make_mailer, workdir) -> None:
    (workdir / "archiv").write_text("a file where the folder should be", encoding="utf-8")
    mailer = make_mailer(config_with(ARCHIVED, ""))
    result = mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    assert result.status.value == "sent" and result.archive is None
    assert result.recorder_failures and result.recorder_failures[0][0] == "archive"
    assert any("Archivkopie" in (e["detail"] or "") for e in mailer.journal.events(result.journal_id))
    mailer.close()
    code, data = cli_json("archive", "verify", cwd=workdir)
    assert code == 1 and [p["state"] for p in data["problems"]] == ["not_archived"]


def test_config_check_names_the_archive_folder(write_config, workdir) -> None:
    write_config(config_with(ARCHIVED, ""))
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 0 and f"Archivkopie (GoBD): {workdir / 'archiv'}, aufzubewahren 10 Jahre" in proc.stdout


@pytest.mark.parametrize(
    "archive", ["{retention_years: 10}", "{folder: a, retention_years: 0}", "[a]", "{folder: a, keep: 3}"]
)
def test_bad_archive_settings(make_mailer, archive) -> None:
    with pytest.raises(ConfigProblems) as err:
        make_mailer(config_with(f"  invoice:\n    account: Rechnungsversand\n    archive: {archive}\n", ""))
    assert any(p.key.startswith("purposes.invoice.archive") for p in err.value.problems)


def test_schema_2_sqlite_journal_gets_the_archive_columns_with_a_warning(workdir) -> None:
    import sqlite3

    from ccm_mail_core.journal.sqlite import _SCHEMA

    old = textwrap.dedent(_SCHEMA).replace(
        "    payload       TEXT,\n    archive_sha256 TEXT,\n    archive_file  TEXT\n", "    payload       TEXT\n"
    )
    assert "archive_sha256" not in old
    db = sqlite3.connect(workdir / "journal.sqlite")
    db.executescript(old + "PRAGMA user_version=2;")
    db.close()
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    proc = run_cli("journal", "migrate", cwd=workdir)
    assert proc.returncode == 0 and "Schema 2 → 3" in proc.stdout, proc.stdout + proc.stderr
    assert "journal_schema_upgraded" in proc.stderr and "archive_sha256" in proc.stderr


# ---- odd files and a scheduled check (attack run of 4 December) ---------------------------------
REQUIRED = "  invoice:\n    account: Rechnungsversand\n    einvoice: required\n"


def _odd_pdf(path: Path) -> Path:
    """The plain PDF encrypted with a handler pypdf cannot open (/PubSec instead of /Standard)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DATA / "plain.pdf"))
    writer.encrypt(user_password="", owner_password="eigentümer", algorithm="RC4-128")
    with path.open("wb") as fh:
        writer.write(fh)
    data = path.read_bytes()
    assert b"/Standard" in data
    path.write_bytes(data.replace(b"/Filter /Standard", b"/Filter /PubSec  "))
    return path


def test_an_xml_in_an_encoding_python_does_not_know_is_sent_as_a_file(make_mailer, workdir) -> None:
    odd = workdir / "lieferschein.xml"
    odd.write_bytes(b'<?xml version="1.0" encoding="ANSI"?>\n<Lieferschein/>')
    assert recognise(odd) is None  # it crashed the send with LookupError
    result = make_mailer().send("invoice", to=["k@example.de"], data=INVOICE, attachments=[odd], assume_yes=True)
    assert result.status.value == "sent"


def test_a_pdf_pypdf_cannot_open_is_no_einvoice_and_the_xrechnung_beside_it_counts(make_mailer, workdir) -> None:
    odd = _odd_pdf(workdir / "verschluesselt.pdf")
    assert recognise(odd) is None  # it crashed the send with NotImplementedError
    mailer = make_mailer(config_with(REQUIRED, ""))
    result = mailer.send(
        "invoice", to=["k@example.de"], data=INVOICE, attachments=[odd, DATA / "xrechnung-ubl.xml"], assume_yes=True
    )
    assert result.status.value == "sent"
    parts = {p.get_filename(): p for p in eml(only_eml(workdir / "out")).iter_attachments()}
    assert parts["verschluesselt.pdf"].get_content() == odd.read_bytes()


def test_xml_that_is_cut_off_has_garbage_or_a_dtd_further_down_is_no_einvoice(tmp_path) -> None:
    ubl = (DATA / "xrechnung-ubl.xml").read_bytes()
    root = ubl.index(b"<ubl:Invoice")
    cases = {
        "cut-off": ubl[:400],  # after the CustomizationID: it used to be read as far as that and counted
        "garbage": ubl[: ubl.index(b">", root) + 1] + b"\0" * 200,
        "dtd-after-a-comment": b'<?xml version="1.0"?>\n<!--' + b"x" * 5000 + b"-->\n<!DOCTYPE Invoice ["
        b'<!ENTITY a "aaaaaaaaaa">]>' + ubl[root:],
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(data)
        assert recognise(path) is None, name  # each counted as an XRechnung under einvoice: required
    whole = tmp_path / "whole.xml"
    whole.write_bytes(ubl)
    assert recognise(whole) is not None


def test_archive_verify_refuses_a_misspelt_purpose(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with(ARCHIVED, ""))
    mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    mailer.close()
    proc = run_cli("archive", "verify", "--purpose", "invoce", cwd=workdir)
    assert proc.returncode == 2 and "Unbekannter Zweck 'invoce'" in proc.stderr and "'invoice'" in proc.stderr
    assert cli_json("archive", "verify", "--purpose", "invoice", cwd=workdir)[1]["checked"] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFO")
def test_archive_verify_reports_a_fifo_in_place_of_a_copy_without_waiting_for_it(make_mailer, workdir) -> None:
    mailer = make_mailer(config_with(ARCHIVED, ""))
    result = mailer.send("invoice", to=["k@example.de"], data=INVOICE, assume_yes=True)
    copy = Path(mailer.journal.get(result.journal_id).archive_file)
    mailer.close()
    os.chmod(copy, 0o600)
    copy.unlink()
    os.mkfifo(copy)
    code, data = cli_json("archive", "verify", cwd=workdir)  # it waited on the FIFO forever
    assert code == 1 and [p["state"] for p in data["problems"]] == ["altered"], data


def test_config_check_refuses_an_archive_folder_that_cannot_be_written(write_config, workdir) -> None:
    """A folder a send cannot write into (here below a file; a read-only share alike) is named
    before the first invoice goes out without its GoBD copy."""
    (workdir / "laufwerk.txt").write_text("kein Ordner", encoding="utf-8")
    write_config(config_with(ARCHIVED.replace("folder: archiv", "folder: laufwerk.txt/archiv"), ""))
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "laufwerk.txt/archiv ist nicht beschreibbar" in proc.stdout and "ohne Archivkopie" in proc.stdout
    code, data = cli_json("config", "check", "--lang", "en", cwd=workdir)
    assert code == 2 and not data["ok"] and "cannot be written" in data["archive"]["invoice"]["problem"]
    write_config(config_with(ARCHIVED, ""))  # a folder that does not exist yet: the first copy creates it
    assert run_cli("config", "check", cwd=workdir).returncode == 0
