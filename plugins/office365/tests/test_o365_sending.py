"""What Microsoft receives: small and large attachments byte for byte, inline images, addresses."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from ccm_mail_hookspecs import AccessDeniedError, Address, Attachment, Message, NetworkError, ThrottledError
from o365_support import AccountFactory, find_sent

MB = 1024 * 1024


def random_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes written in 1 MB blocks (never held in memory at once)."""
    with path.open("wb") as fh:
        left = size
        while left:
            block = os.urandom(min(MB, left))
            fh.write(block)
            left -= len(block)
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(MB):
            h.update(block)
    return h.hexdigest()


def invoice(account: Any, tag: str, **fields: Any) -> Message:
    fields.setdefault("to", [Address("kunde@example.com", "Kunde Müller GmbH")])
    fields.setdefault("text", "Sehr geehrte Damen und Herren,\nanbei die Rechnung.")
    return Message(
        subject=f"codicon GmbH / Rg. {tag}",
        sender=Address(account.mailbox, "codicon GmbH"),
        message_id=f"<{tag}-{account.client_id[:8]}@ccm-mail.test>",
        **fields,
    )


def test_small_message_with_everything(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account()
    pdf = random_file(tmp_path / "Rechnung 4711.pdf", 200_000)
    logo = random_file(tmp_path / "logo.png", 5_000)
    msg = invoice(
        account,
        "4711",
        html='<p>Rechnung</p><img src="cid:logo@firma">',
        text=None,
        cc=[Address("buchhaltung@example.com", "Buchhaltung")],
        bcc=[Address("archiv@firma.example", "Archiv")],
        reply_to=[Address("service@firma.example", "Kundenservice")],
        attachments=[Attachment(pdf), Attachment(logo, inline=True, content_id="logo@firma")],
        headers={"X-AbSys-Rechnung": "4711"},
    )
    receipt = account.transport().send(msg)
    sent = find_sent(account, msg.message_id)
    assert sent.route == "sendMail" and sent.saved_to_sent_items
    m = sent.message
    assert m["toRecipients"] == [{"emailAddress": {"address": "kunde@example.com", "name": "Kunde Müller GmbH"}}]
    assert m["ccRecipients"][0]["emailAddress"]["name"] == "Buchhaltung"
    assert m["bccRecipients"][0]["emailAddress"]["address"] == "archiv@firma.example"
    assert m["replyTo"][0]["emailAddress"] == {"address": "service@firma.example", "name": "Kundenservice"}
    assert sent.headers == {"X-AbSys-Rechnung": "4711"}
    by_name = {a.name: a for a in sent.attachments}
    assert by_name["Rechnung 4711.pdf"].data == pdf.read_bytes()
    assert by_name["Rechnung 4711.pdf"].content_type == "application/pdf"
    assert by_name["logo.png"].is_inline and by_name["logo.png"].content_id == "logo@firma"
    assert receipt.transport_ids["request_id"]
    assert receipt.transport_ids["internet_message_id"] == msg.message_id


def test_text_and_html_go_as_mime(make_account: AccountFactory, tmp_path: Path) -> None:
    """Graph's JSON has one body; with a text alternative the message goes as MIME so the host's
    own text part arrives unchanged."""
    from email import policy
    from email.parser import BytesParser

    account = make_account()
    pdf = random_file(tmp_path / "Rechnung 4712.pdf", 300_000)
    logo = random_file(tmp_path / "logo.png", 3_000)
    msg = invoice(
        account,
        "4712",
        text="Sehr geehrte Damen und Herren,\nanbei die Rechnung 4712.",
        html='<p>Sehr geehrte Damen und Herren,</p><p>anbei die <b>Rechnung</b> 4712.</p><img src="cid:logo@firma">',
        bcc=[Address("archiv@firma.example", "Archiv")],
        headers={"X-AbSys-Rechnung": "4712"},
        attachments=[Attachment(pdf), Attachment(logo, inline=True, content_id="logo@firma")],
    )
    receipt = account.transport().send(msg)
    assert receipt.transport_ids["route"] == "mime"
    sent = find_sent(account, msg.message_id)
    assert sent.route == "mime"
    assert sent.recipients("bcc") == ["archiv@firma.example"]
    got = BytesParser(policy=policy.default).parsebytes(sent.mime)
    assert got["Message-ID"] == msg.message_id and got["X-AbSys-Rechnung"] == "4712"
    assert got.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip() == msg.text
    assert "<b>Rechnung</b>" in got.get_body(("html",)).get_content()
    parts = {p.get_filename(): p for p in got.walk() if p.get_filename()}
    assert parts[pdf.name].get_payload(decode=True) == pdf.read_bytes()
    assert parts["logo.png"]["Content-ID"].strip("<>") == "logo@firma"
    assert parts["logo.png"].get_payload(decode=True) == logo.read_bytes()


def test_text_and_html_too_large_for_mime_use_json(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account()
    pdf = random_file(tmp_path / "gross.pdf", 2_500_000)  # fits JSON (base64 once), not MIME (twice)
    msg = invoice(account, "4713", text="Text", html="<p>HTML</p>", attachments=[Attachment(pdf)])
    assert account.transport().send(msg).transport_ids["route"] == "sendMail"
    assert {a.name: a.data for a in find_sent(account, msg.message_id).attachments}[pdf.name] == pdf.read_bytes()


GRAPH_LIMIT = 4_000_000  # Graph's "4 MB" per request, read as decimal MB


def request_sizes(account: Any) -> list[int]:
    """Body sizes of every request the sandbox saw for the account's mailbox."""
    return [int(r.headers.get("Content-Length") or 0) for r in account.sandbox.requests if account.mailbox in r.path]


def test_attachment_just_under_3_mib_goes_out(make_account: AccountFactory, tmp_path: Path) -> None:
    """3 MiB − 1 byte is ~4.19 MB as base64 inside JSON: above Graph's limit for one request."""
    account = make_account()
    pdf = random_file(tmp_path / "Rechnung knapp 3 MiB.pdf", 3 * MB - 1)
    msg = invoice(account, "3mib", attachments=[Attachment(pdf)])
    assert account.transport().send(msg).transport_ids["route"] == "draft"
    sent = find_sent(account, msg.message_id)
    assert [a.data for a in sent.attachments] == [pdf.read_bytes()]
    assert max(request_sizes(account)) <= GRAPH_LIMIT
    assert any(r.path.endswith("/createUploadSession") for r in account.sandbox.requests)


def test_attachment_that_fits_one_request_goes_in_it(make_account: AccountFactory, tmp_path: Path) -> None:
    from ccm_mail_office365.payload import plan

    account = make_account()
    pdf = random_file(tmp_path / "Rechnung.pdf", 2_990_000)  # 3,986,668 bytes of base64
    msg = invoice(account, "fits", attachments=[Attachment(pdf)])
    planned = plan(msg, account.mailbox)
    assert account.transport().send(msg).transport_ids["route"] == "sendMail"
    assert request_sizes(account) == [planned.estimated_bytes], "the plan counts the request as sent"
    assert planned.estimated_bytes <= GRAPH_LIMIT
    assert [a.data for a in find_sent(account, msg.message_id).attachments] == [pdf.read_bytes()]


def test_request_too_large_is_explained_without_promises(make_account: AccountFactory) -> None:
    from ccm_mail_hookspecs import MessageTooLargeError

    account = make_account()
    msg = invoice(account, "413", text="Zeile mit Text.\n" * 300_000)  # 4.8 MB of body
    with pytest.raises(MessageTooLargeError) as info:
        account.transport().send(msg)
    err = info.value
    assert err.details["status"] == 413 and err.details["request_id"]
    for lang in ("de", "en"):
        text = err.render(lang)
        assert "4 MB" in text
        assert "werden per Upload-Sitzung gesendet" not in text and "are sent by upload session" not in text
    assert account.sent() == []


@pytest.mark.slow
def test_large_attachments_streamed_byte_for_byte(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account()
    big = random_file(tmp_path / "Rechnungsarchiv 2026.zip", 20 * MB + 12345)
    mid = random_file(tmp_path / "anlage.bin", 3 * MB + 1)  # just above the upload-session threshold
    small = random_file(tmp_path / "klein.pdf", 100_000)
    msg = invoice(account, "gross", attachments=[Attachment(big), Attachment(mid), Attachment(small)])
    tracemalloc.start()
    try:
        account.transport().send(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    sent = find_sent(account, msg.message_id)
    assert sent.route == "draft"
    by_name = {a.name: a for a in sent.attachments}
    assert set(by_name) == {big.name, mid.name, small.name}
    for f in (big, mid, small):
        got = by_name[f.name]
        assert got.size == f.stat().st_size
        data_hash = hashlib.sha256(got.data).hexdigest()
        assert data_hash == sha256(f), f"{f.name} changed on the way"
    assert by_name[big.name].content_type == "application/zip"
    # streamed: memory does not grow with the 20 MB file (chunks are < 4 MB)
    assert peak < 16 * MB, f"peak Python memory {peak / MB:.1f} MB"
    assert not account.sandbox.drafts(account.mailbox), "the sent draft must not stay in Drafts"
    uploads = [r for r in account.sandbox.requests if r.method == "PUT"]
    assert uploads and all("Authorization" not in r.headers for r in uploads)


def test_failed_upload_deletes_the_draft(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account(max_wait_seconds=1)
    big = random_file(tmp_path / "gross.bin", 4 * MB)
    account.sandbox.faults.add(method="PUT", path_regex=r"AttachmentSessions", kind="503", count=None, retry_after="5")
    msg = invoice(account, "abbruch", attachments=[Attachment(big)])
    with pytest.raises(Exception) as info:
        account.transport().send(msg)
    assert info.value.kind == "throttled"  # type: ignore[attr-defined]
    assert account.sent() == []
    assert account.sandbox.drafts(account.mailbox) == [], "draft left behind"


def test_dropped_upload_is_not_sent_and_cleans_up(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account()
    big = random_file(tmp_path / "gross.bin", 4 * MB)
    account.sandbox.faults.add(method="POST", path_regex=r"/createUploadSession$", kind="drop_after_processing", count=None)
    with pytest.raises(NetworkError):
        account.transport().send(invoice(account, "drop-upload", attachments=[Attachment(big)]))
    assert account.sent() == []
    assert account.sandbox.drafts(account.mailbox) == []


def test_large_message_without_mail_readwrite_is_explained(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account(permissions={"Mail.Send"})
    big = random_file(tmp_path / "gross.bin", 3 * MB + 10)
    with pytest.raises(AccessDeniedError) as info:
        account.transport().send(invoice(account, "ohne-rw", attachments=[Attachment(big)]))
    assert "Mail.ReadWrite" in info.value.render("de") and info.value.details["request_id"]


def test_upload_url_token_never_logged(make_account: AccountFactory, tmp_path: Path) -> None:
    """The upload URL is pre-authenticated (``?authtoken=…``): it must not reach logs or errors,
    also not through urllib3's DEBUG request lines."""
    from urllib.parse import parse_qs, urlsplit

    logcapture = pytest.importorskip("ccm_mail_core.testing.logcapture")
    account = make_account()
    big = random_file(tmp_path / "gross.bin", 4 * MB)
    tokens: list[str] = []

    def remember(resp: Any, *args: Any, **kwargs: Any) -> None:  # requests' public response hook
        if resp.request.url.endswith("/createUploadSession"):
            tokens.extend(parse_qs(urlsplit(resp.json()["uploadUrl"]).query)["authtoken"])

    with logcapture.capture_logs() as logs:
        ok = account.transport()
        ok.session.hooks["response"].append(remember)
        ok.send(invoice(account, "log-ok", attachments=[Attachment(big)]))
        account.sandbox.faults.add(method="PUT", path_regex=r"AttachmentSessions", kind="503", count=None, retry_after="5")
        failing = account.transport(max_wait_seconds=0.5)
        failing.session.hooks["response"].append(remember)
        with pytest.raises(ThrottledError) as info:
            failing.send(invoice(account, "log-fail", attachments=[Attachment(big)]))
    assert len(tokens) == 2
    assert any("AttachmentSessions" in line for line in logs.texts()), "urllib3 DEBUG lines were not captured"
    logcapture.assert_no_secrets(
        tokens, {"log": logs.texts(), "error": logcapture.exception_texts(info.value), "details": [repr(info.value.details)]}
    )
