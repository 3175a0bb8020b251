"""The send pipeline end to end with the pickup folder, a real SQLite journal and .eml files
parsed back with the stdlib ``email`` package."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ccm_mail_core.journal import DuplicateSend
from ccm_mail_core.results import ExitCode
from ccm_mail_hookspecs import Address, Cancel, Cancelled, Status, T, hookimpl

from host_support import BASE_CONFIG, INVOICE


def eml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def parse(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.usefixtures("journal_engine")
def test_invoice_is_sent_recorded_and_parses_back(make_mailer, workdir, pdf) -> None:
    mailer = make_mailer()
    result = mailer.send(
        "invoice",
        to=["Kunde Weiß <kunde@example.de>"],
        cc=["buchhaltung@example.de"],
        bcc=["archiv@codicon.de"],
        data=INVOICE,
        attachments=[pdf],
        assume_yes=True,
    )
    assert result.status is Status.SENT and result.exit_code == ExitCode.OK
    files = eml_files(workdir / "out")
    assert len(files) == 1 and not list((workdir / "out").glob(".tmp-*"))
    msg = parse(files[0])
    assert msg["Subject"] == "codicon GmbH / Rg. RE-2026-00042"
    assert msg["From"].addresses[0].display_name == "codicon GmbH"
    assert msg["To"].addresses[0].display_name == "Kunde Weiß"
    assert msg["Message-ID"] == result.message_id
    assert msg["Bcc"] is None
    body = msg.get_body(("plain",)).get_content()
    assert "Sehr geehrte Frau Weiß," in body and "1.234,56 €" in body
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == pdf.name and att.get_content_type() == "application/pdf"
    assert att.get_content() == pdf.read_bytes()

    entry = mailer.journal.get(result.journal_id)
    assert entry.status is Status.SENT and entry.reference == "RE-2026-00042" and entry.attempts == 1
    assert entry.recipients == ["kunde@example.de", "buchhaltung@example.de", "archiv@codicon.de"]
    assert entry.sent_at == result.receipt.sent_at.isoformat()
    assert entry.transport_ids["file"] == str(files[0])
    assert [e["status"] for e in mailer.journal.events(entry.id)] == ["queued", "sending", "sent"]


def test_attachment_types_do_not_depend_on_the_workstation(make_mailer, workdir, pdf, monkeypatch) -> None:
    """Installed software rewrites mimetypes' answers (the Windows registry, /etc/mime.types): an
    invoice's PDF and XML keep their types on every workstation."""
    import copy
    import mimetypes

    mimetypes.init()
    monkeypatch.setattr(mimetypes, "_db", copy.deepcopy(mimetypes._db))  # restored after the test
    mimetypes.add_type("application/x-acrobat-from-the-registry", ".pdf")
    mimetypes.add_type("text/x-xml-from-the-registry", ".xml")
    xml = workdir / "RE-2026-00042.xml"
    xml.write_text("<Invoice/>", encoding="utf-8")
    result = make_mailer().send(
        "invoice", to=["kunde@example.de"], data=INVOICE, attachments=[pdf, xml], assume_yes=True
    )
    assert result.status is Status.SENT
    types = {a.get_filename(): a.get_content_type() for a in parse(eml_files(workdir / "out")[0]).iter_attachments()}
    assert types == {pdf.name: "application/pdf", xml.name: "application/xml"}


def test_one_address_given_twice_gets_one_copy(make_mailer, workdir) -> None:
    """The server saw RCPT TO four times for one mailbox (different case, To and Cc and Bcc)."""
    mailer = make_mailer()
    result = mailer.send(
        "invoice",
        to=["A@B.DE", "a@b.de"],
        cc=["Buchhaltung <a@b.de>", "c@example.de"],
        bcc=["a@b.DE", "C@example.de", "d@example.de"],
        data=INVOICE,
        assume_yes=True,
    )
    assert result.status is Status.SENT
    msg = parse(eml_files(workdir / "out")[0])
    assert [a.addr_spec for a in msg["To"].addresses] == ["A@B.DE"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["c@example.de"]
    entry = mailer.journal.get(result.journal_id)
    assert entry.recipients == ["A@B.DE", "c@example.de", "d@example.de"]  # each mailbox once, Bcc included


def test_html_template_escapes_values(make_mailer, workdir) -> None:
    cfg = BASE_CONFIG.replace("    reference:", "    format: html\n    reference:").replace(
        "#Anrede#,", "<p>#Anrede#,</p>"
    )
    mailer = make_mailer(cfg)
    data = dict(INVOICE, Anrede="Hallo <script>alert(1)</script> & Co")
    mailer.send("invoice", to=["kunde@example.de"], data=data, assume_yes=True)
    html = parse(eml_files(workdir / "out")[0]).get_body(("html",)).get_content()
    assert "<p>Hallo &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co,</p>" in html


@pytest.mark.usefixtures("journal_engine")
def test_same_reference_is_refused_unless_resend(make_mailer, workdir) -> None:
    mailer = make_mailer()
    mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    with pytest.raises(DuplicateSend) as err:
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert "--resend" in err.value.render("de")
    assert len(eml_files(workdir / "out")) == 1
    again = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True, resend=True)
    assert again.status is Status.SENT
    assert len(eml_files(workdir / "out")) == 2
    assert len(mailer.journal.query(reference="RE-2026-00042")) == 2


def test_unconfirmed_send_is_refused_and_nothing_is_written(make_mailer, workdir) -> None:
    mailer = make_mailer()
    with pytest.raises(Cancelled) as err:
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE)  # no --yes, no terminal, no host dialog
    assert "--yes" in err.value.render("de")
    assert eml_files(workdir / "out") == []
    assert mailer.journal.query() == []


class Dialog:
    """A host plugin answering the confirmation like AbSys' dialog would."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.seen: list[Any] = []

    @hookimpl
    def ccm_mail_confirm(self, preview):  # type: ignore[no-untyped-def]
        self.seen.append(preview)
        return self.answer


@pytest.mark.usefixtures("journal_engine")
def test_host_dialog_declines_and_the_cancel_is_journaled(make_mailer, workdir) -> None:
    dialog = Dialog(False)
    mailer = make_mailer(plugins={"absys-dialog": dialog})
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE)
    assert result.status is Status.CANCELLED and result.exit_code == ExitCode.CANCELLED
    assert dialog.seen[0].message.subject == "codicon GmbH / Rg. RE-2026-00042"
    assert eml_files(workdir / "out") == []
    (entry,) = mailer.journal.query()
    assert entry.status is Status.CANCELLED and entry.error == "Versand abgelehnt."
    # a cancelled invoice does not block sending it later
    assert mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True).status is Status.CANCELLED
    mailer.unregister("absys-dialog")
    assert mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True).status is Status.SENT


def test_host_dialog_answer_wins_over_the_builtin_default(make_mailer) -> None:
    mailer = make_mailer(plugins={"absys-dialog": Dialog(True)})
    assert mailer.send("invoice", to=["kunde@example.de"], data=INVOICE).status is Status.SENT


def test_confirm_that_crashes_counts_as_no(make_mailer, workdir) -> None:
    class Broken:
        @hookimpl
        def ccm_mail_confirm(self, preview):  # type: ignore[no-untyped-def]
            raise RuntimeError("dialog crashed")

    mailer = make_mailer(plugins={"broken": Broken()})
    assert mailer.send("invoice", to=["kunde@example.de"], data=INVOICE).status is Status.CANCELLED
    assert eml_files(workdir / "out") == []


class Archive:
    """A prepare plugin adding an archive Bcc and a header, or cancelling."""

    def __init__(self, cancel: bool = False) -> None:
        self.cancel = cancel

    @hookimpl
    def ccm_mail_prepare(self, message, context):  # type: ignore[no-untyped-def]
        if self.cancel:
            return Cancel(T("Kunde gesperrt", "customer blocked"))
        message.bcc.append(Address("archiv@codicon.de"))
        message.headers["X-AbSys-Beleg"] = context.reference
        return None


def test_prepare_adds_archive_bcc_and_header(make_mailer, workdir) -> None:
    mailer = make_mailer(plugins={"archive": Archive()})
    preview = mailer.preview("invoice", to=["kunde@example.de"], data=INVOICE)
    assert [a.address for a in preview.message.bcc] == ["archiv@codicon.de"]
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    msg = parse(eml_files(workdir / "out")[0])
    assert msg["X-AbSys-Beleg"] == "RE-2026-00042"
    assert msg["X-Envelope-Bcc"] == "archiv@codicon.de" and msg["Bcc"] is None
    assert "archiv@codicon.de" in mailer.journal.get(result.journal_id).recipients


@pytest.mark.usefixtures("journal_engine")
def test_prepare_cancel_sends_nothing_and_records_reason(make_mailer, workdir) -> None:
    mailer = make_mailer(plugins={"archive": Archive(cancel=True)})
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert result.status is Status.CANCELLED
    assert eml_files(workdir / "out") == []
    assert mailer.journal.get(result.journal_id).error == "Kunde gesperrt"


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, datetime]] = []
        self.failed: list[tuple[str, str]] = []

    @hookimpl
    def ccm_mail_sent(self, message, receipt, context):  # type: ignore[no-untyped-def]
        if self.fail:
            raise RuntimeError("ERP database offline")
        self.sent.append((context.reference, receipt.sent_at))

    @hookimpl
    def ccm_mail_failed(self, message, error, status, context):  # type: ignore[no-untyped-def]
        if self.fail:
            raise RuntimeError("ERP database offline")
        self.failed.append((context.reference, status.value))


@pytest.mark.usefixtures("journal_engine")
def test_every_recorder_runs_even_if_one_fails(make_mailer) -> None:
    good_before, broken, good_after = Recorder(), Recorder(fail=True), Recorder()
    mailer = make_mailer(plugins={"a": good_before, "broken": broken, "z": good_after})
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert result.status is Status.SENT
    assert good_before.sent == good_after.sent == [("RE-2026-00042", result.receipt.sent_at)]
    assert result.recorder_failures == [("broken", "RuntimeError: ERP database offline")]
    entry = mailer.journal.get(result.journal_id)
    assert entry.status is Status.SENT
    assert "Aufzeichnung durch broken fehlgeschlagen" in mailer.journal.events(entry.id)[-1]["detail"]


def test_versanddatum_is_timezone_aware_and_now(make_mailer) -> None:
    recorder = Recorder()
    mailer = make_mailer(plugins={"erp": recorder})
    before = datetime.now(timezone.utc)
    mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    ((_, sent_at),) = recorder.sent
    assert sent_at.tzinfo is not None and before <= sent_at <= datetime.now(timezone.utc)


@pytest.mark.usefixtures("journal_engine")
def test_transport_failure_is_journaled_and_failed_hooks_run(make_mailer, workdir) -> None:
    recorder, broken = Recorder(), Recorder(fail=True)
    mailer = make_mailer(plugins={"erp": recorder, "broken": broken})
    (workdir / "out").write_text("a file where the folder should be")
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert result.status is Status.FAILED and result.exit_code == ExitCode.SEND_FAILED
    assert "Abholordner" in result.error.render("de") and "pickup folder" in result.error.render("en")
    assert recorder.failed == [("RE-2026-00042", "failed")]
    assert result.recorder_failures == [("broken", "RuntimeError: ERP database offline")]
    entry = mailer.journal.get(result.journal_id)
    assert entry.status is Status.FAILED and entry.error_kind == "transport" and "Abholordner" in entry.error
    # a failed invoice may be sent again without --resend
    (workdir / "out").unlink()
    assert mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True).status is Status.SENT


@pytest.mark.usefixtures("journal_engine")
def test_unexpected_transport_exception_is_an_unknown_outcome(make_mailer, monkeypatch) -> None:
    mailer = make_mailer()
    transport = mailer.transport("Rechnungsversand")
    monkeypatch.setattr(transport, "send", lambda message: (_ for _ in ()).throw(KeyError("boom")))
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert result.status is Status.UNKNOWN and result.exit_code == ExitCode.UNKNOWN
    with pytest.raises(DuplicateSend):  # unknown blocks a blind resend
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)


def test_journal_is_a_plain_sqlite_file_with_one_row_per_message(make_mailer, workdir) -> None:
    mailer = make_mailer()
    for n in range(3):
        mailer.send("invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr=f"RE-{n}"), assume_yes=True)
    mailer.close()
    db = sqlite3.connect(workdir / "journal.sqlite")
    rows = db.execute("SELECT reference, status, sent_at IS NOT NULL FROM messages ORDER BY id").fetchall()
    assert rows == [("RE-0", "sent", 1), ("RE-1", "sent", 1), ("RE-2", "sent", 1)]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_inline_image_and_html_alternative(make_mailer, workdir) -> None:
    from ccm_mail_hookspecs import Attachment

    cfg = BASE_CONFIG.replace("    reference:", "    format: html\n    reference:").replace(
        "#Anrede#,", '<img src="cid:logo.png"> #Anrede#,'
    )
    logo = workdir / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    mailer = make_mailer(cfg)
    mailer.send(
        "invoice",
        to=["kunde@example.de"],
        data=INVOICE,
        assume_yes=True,
        attachments=[Attachment(logo, inline=True, content_id="logo.png")],
    )
    msg = parse(eml_files(workdir / "out")[0])
    related = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert related and related[0]["Content-ID"] == "<logo.png>" and related[0].get_content() == logo.read_bytes()


def test_data_field_declared_in_yaml_is_a_placeholder_like_the_builtins(make_mailer, workdir) -> None:
    cfg = BASE_CONFIG.replace("über #Betrag#.", "über #Betrag# (Projekt #Projekt#).") + (
        "placeholders:\n  Projekt:\n    description: Projektname\n    example: Umbau Halle 3\n    purposes: [invoice]\n"
    )
    mailer = make_mailer(cfg)
    listed = {p.name: p for p in mailer.placeholders("invoice")}
    assert listed["Projekt"].example == "Umbau Halle 3" and "Projekt" not in {
        p.name for p in mailer.placeholders("eservice")
    }
    mailer.send("invoice", to=["kunde@example.de"], data=dict(INVOICE, Projekt="Umbau Halle 3"), assume_yes=True)
    assert "(Projekt Umbau Halle 3)" in parse(eml_files(workdir / "out")[0]).get_body(("plain",)).get_content()
    from ccm_mail_hookspecs import TemplateError

    with pytest.raises(TemplateError, match="#Projekt#"):
        mailer.send("invoice", to=["kunde@example.de"], data=dict(INVOICE, extRechnungsNr="RE-2"), assume_yes=True)


class Watching:
    """Counts what runs before the claim: a prepare hook and a host dialog that says yes."""

    def __init__(self) -> None:
        self.prepared = self.asked = 0

    @hookimpl
    def ccm_mail_prepare(self, message, context):  # type: ignore[no-untyped-def]
        self.prepared += 1

    @hookimpl
    def ccm_mail_confirm(self, preview):  # type: ignore[no-untyped-def]
        self.asked += 1
        return True


@pytest.mark.usefixtures("journal_engine")
@pytest.mark.parametrize("plugins", [{}, {"watching": Watching()}], ids=["nothing-before-claim", "hooks"])
def test_duplicate_is_refused_before_any_hook_or_dialog(make_mailer, workdir, plugins) -> None:
    mailer = make_mailer(plugins=plugins)
    mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    watching = plugins.get("watching")
    before = (watching.prepared, watching.asked) if watching else None
    with pytest.raises(DuplicateSend):
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    if watching:
        assert (watching.prepared, watching.asked) == before  # refused before the hook and the dialog ran
    assert len(eml_files(workdir / "out")) == 1
    assert [e.status for e in mailer.journal.query()] == [Status.SENT]  # the refusal wrote nothing


class Crashes:
    @hookimpl
    def ccm_mail_prepare(self, message, context):  # type: ignore[no-untyped-def]
        raise RuntimeError("archive offline")


def test_failing_prepare_hook_stops_before_the_journal_naming_the_plugin(make_mailer, workdir) -> None:
    """Field defect 22: what spec.py and docs/hooks.md say is what happens."""
    from ccm_mail_hookspecs import PluginError

    mailer = make_mailer(plugins={"archiver": Crashes()})
    with pytest.raises(PluginError) as err:
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert "'archiver'" in err.value.render("de") and "archive offline" in err.value.render("en")
    assert mailer.journal.query() == [] and eml_files(workdir / "out") == []
    from ccm_mail_hookspecs import spec

    assert "before anything is journaled" in spec.ccm_mail_prepare.__doc__
