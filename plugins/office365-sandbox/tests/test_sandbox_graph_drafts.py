"""Draft + upload session route for big attachments, and the Sent Items lookup."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from o365_sandbox_kit import CLIENT, MAILBOX, TENANT, World, simple_message

CHUNK = 4 * 1024 * 1024
MIN = 3 * 1024 * 1024  # a typical upload-session file (the minimum is 2 MiB)


def _draft(world: World, token: str, **extra: object) -> str:
    r = world.graph("POST", f"/v1.0/users/{MAILBOX}/messages", token=token, json=simple_message(**extra))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["isDraft"] is True and body["id"]
    return str(body["id"])


def _session(world: World, token: str, draft: str, size: int, name: str = "Anlage.pdf") -> dict:
    r = world.graph(
        "POST",
        f"/v1.0/users/{MAILBOX}/messages/{draft}/attachments/createUploadSession",
        token=token,
        json={
            "AttachmentItem": {"attachmentType": "file", "name": name, "size": size, "contentType": "application/pdf"}
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["nextExpectedRanges"] == ["0-"] and body["expirationDateTime"]
    return body  # type: ignore[no-any-return]


def _put(world: World, url: str, data: bytes, start: int, total: int, **headers: str):  # type: ignore[no-untyped-def]
    h = {"Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}", "Content-Type": "application/octet-stream"}
    h.update(headers)
    return world.http.put(url, data=data, headers=h, verify=world.sb.ca_pem, timeout=30)


def _upload(world: World, url: str, data: bytes, chunk: int = CHUNK) -> None:
    for start in range(0, len(data), chunk):
        r = _put(world, url, data[start : start + chunk], start, len(data))
        if start + chunk < len(data):
            assert r.status_code == 200, r.text
            assert r.json()["nextExpectedRanges"] == [str(start + chunk)]
        else:
            assert r.status_code == 201, r.text
            assert "/Attachments('" in r.headers["Location"]


@pytest.mark.slow
def test_twenty_mb_attachment_through_upload_session_arrives_byte_for_byte(world: World) -> None:
    token = world.token()
    data = os.urandom(20 * 1024 * 1024 + 123)
    draft = _draft(world, token, internetMessageId="<big-1@ccm-mail.contoso.de>")
    session = _session(world, token, draft, len(data))
    _upload(world, session["uploadUrl"], data)
    r = world.graph("POST", f"/v1.0/users/{MAILBOX}/messages/{draft}/send", token=token)
    assert r.status_code == 202 and r.content == b""
    [sent] = world.sb.sent_messages(MAILBOX)
    assert sent.route == "draft" and sent.saved_to_sent_items
    [att] = sent.attachments
    assert att.path is not None  # kept on disk, not in memory
    assert att.size == len(data)
    assert hashlib.sha256(att.data).digest() == hashlib.sha256(data).digest()
    assert world.sb.drafts() == []


def test_upload_url_rejects_authorization_header(world: World) -> None:
    token = world.token()
    data = os.urandom(MIN)
    session = _session(world, token, _draft(world, token), MIN)
    r = _put(world, session["uploadUrl"], data, 0, MIN, Authorization=f"Bearer {token}")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAudienceForResource"
    assert _put(world, session["uploadUrl"], data, 0, MIN).status_code == 201


def test_upload_chunks_must_come_in_order_and_fit(world: World) -> None:
    token = world.token()
    total = MIN + 20
    first, second, third = os.urandom(MIN), b"b" * 10, b"c" * 10
    draft = _draft(world, token)
    url = _session(world, token, draft, total)["uploadUrl"]
    assert _put(world, url, b"x" * 10, 10, total).status_code == 416
    r = world.http.put(url, data=b"x" * 10, headers={"Content-Range": f"bytes 0-20/{total}"}, verify=world.sb.ca_pem)
    assert r.status_code == 400  # range does not match Content-Length
    r = world.http.put(url, data=b"x" * 10, headers={"Content-Range": "bytes 0-9/31"}, verify=world.sb.ca_pem)
    assert r.status_code == 400  # total is not the declared size
    r = world.http.put(url, data=b"x" * 10, verify=world.sb.ca_pem)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidContentRange"
    r = _put(world, url, first, 0, total)
    assert r.status_code == 200
    assert r.json()["nextExpectedRanges"] == [str(MIN)] and r.json()["ExpirationDateTime"]
    assert _put(world, url, second, MIN, total).json()["nextExpectedRanges"] == [str(MIN + 10)]
    assert _put(world, url, second, MIN, total).status_code == 416  # no going back
    assert _put(world, url, third, MIN + 10, total).status_code == 201
    assert world.graph("POST", f"/v1.0/users/{MAILBOX}/messages/{draft}/send", token=token).status_code == 202
    assert world.sb.sent_messages()[0].attachments[0].data == first + second + third


def test_chunk_over_4_mb_is_refused(world: World) -> None:
    token = world.token()
    size = CHUNK + 1
    session = _session(world, token, _draft(world, token), size)
    r = _put(world, session["uploadUrl"], b"z" * size, 0, size)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "RequestEntityTooLarge"


def test_upload_session_errors(world: World) -> None:
    token = world.token()
    draft = _draft(world, token)
    url = f"/v1.0/users/{MAILBOX}/messages/{draft}/attachments/createUploadSession"

    def create(item: dict) -> dict:  # type: ignore[type-arg]
        r = world.graph("POST", url, token=token, json={"AttachmentItem": item})
        assert r.status_code == 400
        return r.json()["error"]  # type: ignore[no-any-return]

    assert (
        create({"attachmentType": "file", "name": "a", "size": 151 * 1024 * 1024})["code"]
        == "ErrorAttachmentSizeLimitExceeded"
    )
    assert (
        create({"attachmentType": "file", "name": "a", "size": 2 * 1024 * 1024 - 1})["code"]
        == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
    )
    # just under 3 MiB: too big for a 4 MB POST once base64-encoded, so the session must take it
    assert "uploadUrl" in _session(world, token, draft, MIN - 1)
    assert world.graph("POST", url, token=token, json={"foo": 1}).status_code == 400
    r = world.graph(
        "POST",
        f"/v1.0/users/{MAILBOX}/messages/AAMkAGnope=/attachments/createUploadSession",
        token=token,
        json={"AttachmentItem": {"attachmentType": "file", "name": "a", "size": MIN}},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "ErrorItemNotFound"
    session = _session(world, token, draft, MIN)
    bad = session["uploadUrl"].split("authtoken=")[0] + "authtoken=forged"
    assert _put(world, bad, b"12345", 0, MIN).status_code == 401


def test_upload_session_can_be_cancelled(world: World) -> None:
    token = world.token()
    url = _session(world, token, _draft(world, token), MIN)["uploadUrl"]
    assert world.http.delete(url, verify=world.sb.ca_pem).status_code == 204
    assert _put(world, url, b"x" * 10, 0, MIN).status_code == 404


def test_draft_route_needs_mail_readwrite(world: World) -> None:
    world.sb.app(TENANT, CLIENT).permissions = {"Mail.Send"}
    r = world.graph("POST", f"/v1.0/users/{MAILBOX}/messages", json=simple_message())
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_small_attachment_post_and_delete_draft(world: World) -> None:
    token = world.token()
    draft = _draft(world, token)
    r = world.graph(
        "POST",
        f"/v1.0/users/{MAILBOX}/messages/{draft}/attachments",
        token=token,
        json={
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "a.txt",
            "contentBytes": base64.b64encode(b"hallo").decode(),
        },
    )
    assert r.status_code == 201 and r.json()["size"] == 5
    assert world.graph("DELETE", f"/v1.0/users/{MAILBOX}/messages/{draft}", token=token).status_code == 204
    assert world.graph("DELETE", f"/v1.0/users/{MAILBOX}/messages/{draft}", token=token).status_code == 404
    assert world.graph("POST", f"/v1.0/users/{MAILBOX}/messages/{draft}/send", token=token).status_code == 404
    assert world.sb.sent_messages() == []


def test_message_size_limit_at_send(world: World) -> None:
    token = world.token()
    world.sb.mailbox(MAILBOX).max_message_size = 4 * 1024 * 1024
    draft = _draft(world, token)
    data = os.urandom(MIN + 1)  # ~4.3 MB once base64-encoded
    session = _session(world, token, draft, len(data))
    _upload(world, session["uploadUrl"], data)
    r = world.graph("POST", f"/v1.0/users/{MAILBOX}/messages/{draft}/send", token=token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorMessageSizeExceeded"
    assert world.sb.sent_messages() == []


PROP = "String {00020386-0000-0000-C000-000000000046} Name X-CCM-Id"


def test_sent_items_lookup_by_internet_message_id_and_extended_property(world: World) -> None:
    token = world.token()
    world.send(
        simple_message(internetMessageId="<x1@ccm>", singleValueExtendedProperties=[{"id": PROP, "value": "job-1"}]),
        token=token,
    )
    world.send(simple_message(internetMessageId="<x2@ccm>"), token=token)
    base = f"/v1.0/users/{MAILBOX}/mailFolders/sentitems/messages"
    r = world.graph(
        "GET",
        base,
        token=token,
        params={"$filter": "internetMessageId eq '<x1@ccm>'", "$select": "internetMessageId,sentDateTime"},
    )
    assert r.status_code == 200
    [item] = r.json()["value"]
    assert item["internetMessageId"] == "<x1@ccm>" and item["sentDateTime"] and item["id"]
    assert "subject" not in item
    r = world.graph(
        "GET",
        base,
        token=token,
        params={
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq 'job-1')",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{PROP}')",
        },
    )
    [item] = r.json()["value"]
    assert item["singleValueExtendedProperties"] == [{"id": PROP, "value": "job-1"}]
    r = world.graph("GET", base, token=token, params={"$filter": "internetMessageId eq '<none@ccm>'"})
    assert r.json()["value"] == []
    r = world.graph(
        "GET",
        "/v1.0/users/" + MAILBOX + "/mailFolders('SentItems')/messages",
        token=token,
        params={"$filter": "subject eq 'x'"},
    )
    assert r.status_code == 400


def test_sent_items_delay(world: World) -> None:
    world.sb.sent_items_delay = 60
    world.send(simple_message(internetMessageId="<late@ccm>"))
    r = world.graph(
        "GET",
        f"/v1.0/users/{MAILBOX}/mailFolders/sentitems/messages",
        params={"$filter": "internetMessageId eq '<late@ccm>'"},
    )
    assert r.json()["value"] == [] and len(world.sb.sent_messages()) == 1


def test_lookup_and_folder_need_a_read_permission(world: World) -> None:
    world.sb.app(TENANT, CLIENT).permissions = {"Mail.Send"}
    token = world.token()
    for path in ("/mailFolders/sentitems/messages", "/mailFolders/inbox"):
        r = world.graph("GET", f"/v1.0/users/{MAILBOX}{path}", token=token)
        assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    world.sb.app(TENANT, CLIENT).permissions = {"Mail.Send", "Mail.ReadBasic.All"}
    r = world.graph("GET", f"/v1.0/users/{MAILBOX}/mailFolders/inbox")
    assert r.status_code == 200 and r.json()["displayName"] == "Inbox"


def test_get_user_is_a_directory_read(world: World) -> None:
    r = world.graph("GET", f"/v1.0/users/{MAILBOX}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    world.sb.app(TENANT, CLIENT).permissions.add("User.Read.All")
    r = world.graph("GET", f"/v1.0/users/{MAILBOX}")
    assert r.status_code == 200 and r.json()["mail"] == MAILBOX
    r = world.graph("GET", "/v1.0/users/nobody@contoso.de")
    assert r.status_code == 404 and r.json()["error"]["code"] == "Request_ResourceNotFound"
