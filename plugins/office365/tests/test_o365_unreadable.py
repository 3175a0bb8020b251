"""Graph answers whose body is not Graph's JSON (a proxy's page, a body cut off): the status
decides what happened, the admin sees it with the start of the body, never a JSONDecodeError."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccm_mail_hookspecs import (
    AccessDeniedError,
    Address,
    Attachment,
    Message,
    MessageTooLargeError,
    TransportError,
    UnknownOutcomeError,
)
from o365_support import Account, AccountFactory


def msg(account: Account, tag: str) -> Message:
    return Message(
        f"Rechnung {tag}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<{tag}-{account.client_id[:8]}@ccm-mail.test>",
    )


def test_proxy_page_with_403_is_not_sent_and_not_a_consent_problem(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="html", status=403)
    with pytest.raises(TransportError) as info:
        account.transport().send(msg(account, "proxy403"))
    err = info.value
    assert not isinstance(err, AccessDeniedError), "a proxy's page says nothing about consent"
    assert err.details["status"] == 403 and "<html>" in err.details["body"].lower()
    assert "HTTP 403" in err.render("de") and "nicht gesendet" in err.render("de")
    assert "Admin Berechtigung" not in err.render("de") and "JSONDecodeError" not in err.render("en")
    assert account.sent() == []


def test_cut_off_error_body_is_not_sent(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="truncated", status=400)
    with pytest.raises(TransportError) as info:
        account.transport().send(msg(account, "cut400"))
    assert info.value.details["status"] == 400 and info.value.details["body"].startswith('{"error"')
    assert "not sent" in info.value.render("en")


def test_gateway_page_after_a_send_stays_unknown_and_shows_it(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="html", status=502)
    with pytest.raises(UnknownOutcomeError) as info:  # the existing rule: a 5xx after a send may have sent
        account.transport().send(msg(account, "gw502"))
    assert info.value.details["status"] == 502 and "Bad Gateway" in info.value.details["body"]


def test_proxy_page_instead_of_a_lookup_answer(make_account: AccountFactory) -> None:
    account = make_account()
    transport = account.transport()
    message = msg(account, "lookup")
    transport.send(message)
    account.sandbox.faults.add(method="GET", path_regex=r"/SentItems/messages$", kind="html", status=200)
    with pytest.raises(TransportError) as info:
        transport.lookup(message)
    assert info.value.details["status"] == 200 and "html" in info.value.details["content_type"]
    assert "gesendet" not in info.value.render("de")  # a lookup sends nothing


def test_cut_off_draft_answer_is_not_sent(make_account: AccountFactory, tmp_path: Path) -> None:
    account = make_account()
    big = tmp_path / "gross.bin"
    big.write_bytes(b"\2" * (3 * 1024 * 1024))
    account.sandbox.faults.add(method="POST", path_regex=r"/messages$", kind="truncated", status=201)
    message = msg(account, "draftcut")
    message.attachments.append(Attachment(big))
    with pytest.raises(TransportError) as info:
        account.transport().send(message)
    assert info.value.details["status"] == 201 and "nicht gesendet" in info.value.render("de")
    assert account.sent() == []


def test_proxy_limit_413_is_too_large(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="html", status=413)
    with pytest.raises(MessageTooLargeError) as info:
        account.transport().send(msg(account, "proxy413"))
    assert info.value.details["status"] == 413 and info.value.details["body"]
