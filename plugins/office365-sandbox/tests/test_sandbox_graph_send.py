"""Graph sendMail: success, headers, what is recorded, and the errors Graph gives."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from o365_sandbox_kit import CLIENT, MAILBOX, TENANT, World, simple_message


def _err(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    inner = err["innerError"]
    assert inner["request-id"] == r.headers["request-id"]
    assert inner["client-request-id"] == r.headers["client-request-id"]
    assert inner["date"]
    return err


def test_send_is_202_empty_with_ids_and_recorded_byte_for_byte(world: World) -> None:
    pdf = os.urandom(200_000) + b"%%EOF"
    logo = os.urandom(5000)
    crid = str(uuid.uuid4())
    msg = simple_message(
        body={"contentType": "HTML", "content": "<p>Rechnung <img src='cid:logo1'></p>"},
        ccRecipients=[{"emailAddress": {"address": "cc@example.org"}}],
        bccRecipients=[{"emailAddress": {"address": "archiv@contoso.de"}}],
        replyTo=[{"emailAddress": {"address": "buchhaltung@contoso.de"}}],
        internetMessageId="<inv-4711.abc@ccm-mail.contoso.de>",
        internetMessageHeaders=[{"name": "X-CCM-Invoice", "value": "4711"}],
        singleValueExtendedProperties=[
            {"id": "String {00020386-0000-0000-C000-000000000046} Name X-CCM-Id", "value": "job-1"}
        ],
        attachments=[
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "Rechnung 4711.pdf",
                "contentType": "application/pdf",
                "contentBytes": base64.b64encode(pdf).decode(),
            },
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "logo.png",
                "contentType": "image/png",
                "isInline": True,
                "contentId": "logo1",
                "contentBytes": base64.b64encode(logo).decode(),
            },
        ],
    )
    r = world.send(msg, headers={"client-request-id": crid})
    assert r.status_code == 202 and r.content == b""
    assert r.headers["client-request-id"] == crid
    assert uuid.UUID(r.headers["request-id"])
    assert "GMT" in r.headers["Date"]
    [sent] = world.sb.sent_messages(MAILBOX)
    assert sent.subject == "codicon GmbH / Rg. 4711"
    assert sent.internet_message_id == "<inv-4711.abc@ccm-mail.contoso.de>"
    assert sent.recipients("to") == ["kunde@example.org"]
    assert sent.recipients("bcc") == ["archiv@contoso.de"]
    assert sent.headers == {"X-CCM-Invoice": "4711"}
    assert sent.client_request_id == crid and sent.saved_to_sent_items
    assert sent.message["from"]["emailAddress"]["address"] == MAILBOX
    a, b = sent.attachments
    assert (a.name, a.content_type, a.is_inline, a.data) == ("Rechnung 4711.pdf", "application/pdf", False, pdf)
    assert (b.is_inline, b.content_id, b.data) == (True, "logo1", logo)
    assert "contentBytes" not in str(sent.message)


def test_without_internet_message_id_one_is_generated(world: World) -> None:
    assert world.send().status_code == 202
    [sent] = world.sb.sent_messages()
    assert sent.internet_message_id.startswith("<") and sent.internet_message_id.endswith(">")


def test_chunked_request_body_is_understood(world: World) -> None:
    import json

    body = json.dumps({"message": simple_message()}).encode()
    r = world.graph(
        "POST",
        f"/v1.0/users/{MAILBOX}/sendMail",
        data=iter([body[:50], body[50:]]),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 202
    assert len(world.sb.sent_messages()) == 1


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (None, "Access token is empty."),
        ("not-a-jwt", "IDX14100: JWT is not well formed, there are no dots (.)."),
        ("a.b.c", "Access token validation failure. Invalid signature."),
    ],
)
def test_bad_tokens_are_401_invalid_authentication_token(world: World, auth: str | None, message: str) -> None:
    r = world.send(token=auth)
    assert _err(r, 401, "InvalidAuthenticationToken")["message"] == message
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert world.sb.sent_messages() == []


def test_smtp_token_does_not_work_at_graph(world: World) -> None:
    token = world.token(scope="https://outlook.office365.com/.default")
    err = _err(world.send(token=token), 401, "InvalidAuthenticationToken")
    assert "Invalid audience" in err["message"]


def test_expired_token(world: World) -> None:
    world.sb.token_lifetime = 0
    err = _err(world.send(), 401, "InvalidAuthenticationToken")
    assert "expired" in err["message"]


def test_missing_mail_send_is_403(world: World) -> None:
    world.sb.app(TENANT, CLIENT).permissions = {"Mail.ReadBasic.All"}
    _err(world.send(), 403, "ErrorAccessDenied")


def test_unknown_and_unlicensed_mailboxes(world: World) -> None:
    err = _err(world.send(mailbox="nobody@contoso.de"), 404, "ErrorInvalidUser")
    assert err["message"] == "The requested user 'nobody@contoso.de' is invalid."
    world.sb.add_mailbox(TENANT, "onprem@contoso.de", licensed=False)
    _err(world.send(mailbox="onprem@contoso.de"), 404, "MailboxNotEnabledForRESTAPI")


def test_mailbox_of_another_tenant_is_unknown(world: World) -> None:
    other = world.sb.add_tenant("fabrikam.de")
    world.sb.add_mailbox(other.tenant_id, "info@fabrikam.de")
    _err(world.send(mailbox="info@fabrikam.de"), 404, "ErrorInvalidUser")


def test_mailbox_by_object_id_and_case(world: World) -> None:
    mb = world.sb.mailbox(MAILBOX)
    assert world.send(mailbox=mb.object_id).status_code == 202
    assert world.send(mailbox="Rechnung@Contoso.DE").status_code == 202


def test_send_as(world: World) -> None:
    shared = {"emailAddress": {"address": "buchhaltung@contoso.de"}}
    _err(world.send(simple_message(**{"from": shared})), 403, "ErrorSendAsDenied")
    world.sb.mailbox(MAILBOX).send_as.add("buchhaltung@contoso.de")
    assert world.send(simple_message(**{"from": shared})).status_code == 202


@pytest.mark.parametrize(
    ("message", "status", "code"),
    [
        (simple_message(toRecipients=[]), 400, "ErrorInvalidRecipients"),
        (
            simple_message(toRecipients=[{"emailAddress": {"address": "kein-at-zeichen"}}]),
            400,
            "ErrorInvalidRecipients",
        ),
        (
            simple_message(internetMessageHeaders=[{"name": "Invoice", "value": "1"}]),
            400,
            "InvalidInternetMessageHeader",
        ),
        (
            simple_message(internetMessageHeaders=[{"name": f"x-h{i}", "value": "1"} for i in range(6)]),
            400,
            "InvalidInternetMessageHeaderCollection",
        ),
        (simple_message(subjekt="typo"), 400, "RequestBodyRead"),
        (simple_message(body={"contentType": "Markdown", "content": "x"}), 400, "RequestBodyRead"),
        (simple_message(toRecipients="kunde@example.org"), 400, "RequestBodyRead"),
        (simple_message(attachments=[{"name": "a.pdf", "contentBytes": "AAAA"}]), 400, "RequestBodyRead"),
        (
            simple_message(
                attachments=[
                    {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "contentBytes": "not base64!"}
                ]
            ),
            400,
            "RequestBodyRead",
        ),
    ],
)
def test_invalid_messages(world: World, message: dict, status: int, code: str) -> None:
    _err(world.send(message), status, code)
    assert world.sb.sent_messages() == []


def test_five_custom_headers_are_fine(world: World) -> None:
    msg = simple_message(internetMessageHeaders=[{"name": f"X-H{i}", "value": "1"} for i in range(5)])
    assert world.send(msg).status_code == 202


def test_bad_payloads(world: World) -> None:
    url = f"/v1.0/users/{MAILBOX}/sendMail"
    _err(world.graph("POST", url, data=b"{nope", headers={"Content-Type": "application/json"}), 400, "BadRequest")
    _err(world.graph("POST", url, json={"message": simple_message(), "save": True}), 400, "RequestBodyRead")
    _err(world.graph("POST", url, json={"saveToSentItems": True}), 400, "ErrorInvalidParameter")


def test_request_over_4_mb_is_413(world: World) -> None:
    big = base64.b64encode(os.urandom(3_200_000)).decode()  # ~4.3 MB of base64
    msg = simple_message(
        attachments=[{"@odata.type": "#microsoft.graph.fileAttachment", "name": "big.bin", "contentBytes": big}]
    )
    err = _err(world.send(msg), 413, "RequestEntityTooLarge")
    assert "4MB" in err["message"]
    assert world.send().status_code == 202  # the connection and the server are fine afterwards


def test_save_to_sent_items_false_is_sent_but_not_in_sent_items(world: World) -> None:
    r = world.graph(
        "POST",
        f"/v1.0/users/{MAILBOX}/sendMail",
        json={"message": simple_message(internetMessageId="<a@b.c>"), "saveToSentItems": False},
    )
    assert r.status_code == 202
    assert len(world.sb.sent_messages()) == 1
    r = world.graph(
        "GET",
        f"/v1.0/users/{MAILBOX}/mailFolders/sentitems/messages",
        params={"$filter": "internetMessageId eq '<a@b.c>'"},
    )
    assert r.json()["value"] == []


def test_requests_are_recorded_with_authorization_redacted(world: World) -> None:
    token = world.token()
    world.send(token=token)
    rec = next(r for r in world.sb.requests if r.path.endswith("/sendMail"))
    assert rec.status == 202 and rec.method == "POST" and rec.host == "127.0.0.1"
    assert rec.headers["Authorization"] == "Bearer REDACTED"
    assert token not in repr(world.sb.requests)


def test_save_to_sent_items_as_string_like_microsofts_example(world: World) -> None:
    r = world.graph(
        "POST", f"/v1.0/users/{MAILBOX}/sendMail", json={"message": simple_message(), "saveToSentItems": "false"}
    )
    assert r.status_code == 202
    assert world.sb.sent_messages()[0].saved_to_sent_items is False


def test_send_in_mime_format(world: World) -> None:
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = MAILBOX
    m["To"] = "Kunde <kunde@example.org>"
    m["Subject"] = "Rechnung 4711"
    m["Message-ID"] = "<mime-1@ccm>"
    m["X-CCM-Invoice"] = "4711"
    m.set_content("Anbei die Rechnung.")
    pdf = os.urandom(1000)
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename="Rechnung.pdf")
    raw = m.as_bytes()
    r = world.graph(
        "POST", f"/v1.0/users/{MAILBOX}/sendMail", data=base64.b64encode(raw), headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 202, r.text
    [sent] = world.sb.sent_messages()
    assert sent.route == "mime" and sent.mime == raw
    assert sent.subject == "Rechnung 4711" and sent.internet_message_id == "<mime-1@ccm>"
    assert sent.recipients("to") == ["kunde@example.org"] and sent.headers["X-CCM-Invoice"] == "4711"
    assert sent.attachments[0].name == "Rechnung.pdf" and sent.attachments[0].data == pdf
    r = world.graph(
        "POST", f"/v1.0/users/{MAILBOX}/sendMail", data=b"%%% not base64", headers={"Content-Type": "text/plain"}
    )
    err = _err(r, 400, "ErrorMimeContentInvalidBase64String")
    assert err["message"] == "Invalid base64 string for MIME content."


def test_me_is_not_for_app_only_tokens(world: World) -> None:
    r = world.graph("POST", "/v1.0/me/sendMail", json={"message": simple_message()})
    assert _err(r, 400, "BadRequest")["message"] == "/me request is only valid with delegated authentication flow."


def test_application_access_policy_scopes_mailboxes(world: World) -> None:
    world.sb.add_mailbox(TENANT, "geheim@contoso.de", allowed_apps=["00000000-0000-0000-0000-0000000000aa"])
    err = _err(world.send(mailbox="geheim@contoso.de"), 403, "ErrorAccessDenied")
    assert "AccessPolicy" in err["message"]
    assert world.send().status_code == 202
