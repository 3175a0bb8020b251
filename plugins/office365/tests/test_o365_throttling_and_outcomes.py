"""Throttling (Retry-After, backoff, wait cap, 4 per mailbox) and honest unknown outcomes."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from ccm_mail_hookspecs import (
    Address,
    Found,
    Message,
    NetworkError,
    ThrottledError,
    TransportError,
    UnknownOutcomeError,
)
from o365_support import AccountFactory


def msg(account: Any, tag: str) -> Message:
    return Message(
        f"Rechnung {tag}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<{tag}-{account.client_id[:8]}@ccm-mail.test>",
    )


def send_posts(account: Any) -> list[Any]:
    return [
        r for r in account.sandbox.requests if r.method == "POST" and r.path.endswith("/sendMail") and account.mailbox in r.path
    ]


@pytest.mark.parametrize("status", ["429", "503", "504"])
def test_retry_after_seconds_is_honoured(make_account: AccountFactory, status: str) -> None:
    """For Graph, a 429, and a 503 or 504 *with* Retry-After, is throttling: not processed, the
    same body is replayed after the wait (throttle.for_graph)."""
    account = make_account()
    waits: list[float] = []
    transport = account.transport(sleep=waits.append)
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind=status, count=1, retry_after="1")
    transport.send(msg(account, f"ra{status}"))
    assert waits == [1.0]
    assert len(account.sent()) == 1
    assert [r.status for r in send_posts(account)] == [int(status), 202]


def test_retry_after_http_date(make_account: AccountFactory) -> None:
    account = make_account()
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="429", count=1, retry_after=when)
    waits: list[float] = []
    account.transport(sleep=waits.append).send(msg(account, "date"))
    assert len(waits) == 1 and 0.0 < waits[0] <= 2.0, waits  # HTTP-date has one-second resolution
    assert len(account.sent()) == 1


def test_backoff_without_retry_after(make_account: AccountFactory) -> None:
    """A 429 without Retry-After is throttling too: back off exponentially, replay the body.
    (A 503 without Retry-After is not: see the next test.)"""
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="429", count=2)
    waits: list[float] = []
    account.transport(sleep=waits.append).send(msg(account, "bo429"))
    # equal-jitter backoff: 0.5–1 s, then 1–2 s
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0, waits
    assert [r.status for r in send_posts(account)] == [429, 429, 202]
    bodies = {r.headers.get("Content-Length") for r in send_posts(account)}
    assert len(bodies) == 1, "a retry must replay the same body"


@pytest.mark.parametrize(
    ("kind", "status", "arrived"),
    [
        ("503", 503, False),
        ("504", 504, False),
        ("500", 500, False),  # answered before Graph had it
        ("status_after_processing", 503, True),
        ("status_after_processing", 504, True),  # … or after
        ("status_after_processing", 502, True),
        ("status_after_processing", 500, True),
    ],
)
def test_5xx_without_retry_after_is_unknown_and_never_replayed(
    make_account: AccountFactory, kind: str, status: int, arrived: bool
) -> None:
    """A 500, 502, 503 or 504 *without* Retry-After after a sendMail left: a gateway may have
    forwarded it, so the outcome is unknown. Replaying it (as a 504 once was) sends the invoice
    twice when Microsoft had it; Sent Items tells which it was."""
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind=kind, status=status, count=1)
    waits: list[float] = []
    transport = account.transport(sleep=waits.append)
    message = msg(account, f"gw{kind[:6]}{status}")
    with pytest.raises(UnknownOutcomeError) as info:
        transport.send(message)
    assert [r.status for r in send_posts(account)] == [status], "a send whose outcome is unknown is never replayed"
    assert waits == []
    assert len(account.sent()) == (1 if arrived else 0)
    err = info.value
    assert f"HTTP {status}" in err.render("de") and "vielleicht" in err.render("de")
    assert "may or may not" in err.render("en") and "Sent Items" in err.render("en")
    assert err.details["status"] == status and err.details["request_id"] and err.details["client_request_id"]
    assert transport.lookup(message).found == (Found.SENT if arrived else Found.NOT_FOUND)


@pytest.mark.parametrize(
    ("route", "path"), [("sendMail", r"/sendMail$"), ("draft", r"/messages/[^/]+/send$"), ("draft", r"/messages$")]
)
def test_any_2xx_to_a_send_is_accepted(make_account: AccountFactory, tmp_path: Any, route: str, path: str) -> None:
    """Graph documents 202 for sendMail and for sending a draft (201 for creating one); a 200 (a
    gateway rewrote it) says "accepted" just as well: a receipt, not a refusal, and the draft is
    kept as sent."""
    from ccm_mail_hookspecs import Attachment

    account = make_account()
    message = msg(account, f"ok200{route}{len(path)}")
    if route == "draft":
        big = tmp_path / "gross.bin"
        big.write_bytes(b"\3" * (3 * 1024 * 1024 + 5))
        message.attachments.append(Attachment(big))
    account.sandbox.faults.add(method="POST", path_regex=path, kind="status_after_processing", status=200)
    receipt = account.transport().send(message)
    assert receipt.transport_ids["route"] == route and receipt.transport_ids["request_id"]
    assert [s.internet_message_id for s in account.sent()] == [message.message_id]
    mine = [r for r in account.sandbox.requests if account.mailbox in r.path]
    assert [r.status for r in mine if r.method == "POST" and re.search(path, r.path)] == [200]
    assert not [r for r in mine if r.method == "DELETE"], "a sent draft is not deleted"


def test_reset_in_tls_handshake_is_not_sent(make_account: AccountFactory) -> None:
    """A reset while TLS is being negotiated: no byte of the request can have left, so it is a
    NetworkError (nothing sent, the host may send again), not an unknown outcome."""
    account = make_account()
    account.transport().tokens.token()  # cached on disk: the next transport opens Graph first
    fault = account.sandbox.faults.add(kind="reset_in_handshake", count=1)
    transport = account.transport(sleep=[].append)
    before = len([r for r in account.sandbox.requests if account.mailbox in r.path])
    with pytest.raises(NetworkError) as info:
        transport.send(msg(account, "tlsreset"))
    assert info.value.details["code"] == "network_tls" and info.value.sent is False
    assert "nothing was sent" in info.value.render("en").lower() and "ca_bundle" in info.value.render("de")
    assert fault.hits == 1, "a reset in the handshake is not retried (nor is a certificate failure)"
    assert len([r for r in account.sandbox.requests if account.mailbox in r.path]) == before, "no request arrived"
    assert account.sent() == []
    transport.send(msg(account, "tlsreset-again"))  # the host's resend goes through
    assert len(account.sent()) == 1


@pytest.mark.parametrize(
    ("kind", "status"), [("500", None), ("html", 502), ("504", None), ("503", None), ("drop_before_response", None)]
)
def test_read_only_requests_are_asked_again(make_account: AccountFactory, kind: str, status: int | None) -> None:
    """A lookup and the connection test send nothing: after a 5xx or a dropped connection they
    are simply asked again (backoff, within the wait budget)."""
    account = make_account()
    waits: list[float] = []
    transport = account.transport(sleep=waits.append)
    message = msg(account, f"read{kind}")
    transport.send(message)
    account.sandbox.faults.add(method="GET", path_regex=r"/SentItems/messages$", kind=kind, status=status, count=1)
    found = transport.lookup(message)
    assert found.found == Found.SENT and found.transport_ids["graph_message_id"]
    account.sandbox.faults.add(method="GET", path_regex=r"/mailFolders/SentItems$", kind=kind, status=status, count=1)
    check = transport.check()
    assert check.ok, check
    assert len(waits) == 2 and all(0.5 <= w <= 1.0 for w in waits), waits
    lookups = [r for r in account.sandbox.requests if r.method == "GET" and "SentItems" in r.path and account.mailbox in r.path]
    assert len(lookups) == 4


def test_read_only_retries_end_with_a_clear_error(make_account: AccountFactory) -> None:
    account = make_account(max_wait_seconds=60)
    waits: list[float] = []
    transport = account.transport(sleep=waits.append)
    message = msg(account, "readfail")
    account.sandbox.faults.add(method="GET", path_regex=r"/SentItems/messages$", kind="500", count=None)
    with pytest.raises(TransportError) as info:
        transport.lookup(message)
    assert len(waits) == 2, "asked three times in all"
    assert info.value.details["status"] == 500 and "gesendet" not in info.value.render("de")


def test_wait_cap_gives_up_with_throttled_error(make_account: AccountFactory) -> None:
    account = make_account(max_wait_seconds=3)
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="429", count=None, retry_after="2")
    waits: list[float] = []
    with pytest.raises(ThrottledError) as info:
        account.transport(sleep=waits.append).send(msg(account, "cap"))
    assert waits == [2.0], "a second wait would pass the 3 s cap"
    err = info.value
    assert err.retryable and err.details["request_id"] and err.details["waited_seconds"] <= 3
    assert "nicht gesendet" in err.render("de") and "not sent" in err.render("en")
    assert account.sent() == []


def test_concurrency_never_above_four_per_mailbox(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="latency", count=None, delay=0.3)
    transport = account.transport()
    transport.tokens.token()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            transport.send(msg(account, f"par{n}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.monotonic() - started
    assert not errors, errors
    assert len(account.sent()) == 12
    assert account.sandbox.max_concurrency(account.mailbox) == 4
    assert all(r.status == 202 for r in send_posts(account)), "no 429 for concurrency"
    assert took >= 0.9  # three waves of four


def test_two_transports_share_the_mailbox_limit(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="latency", count=None, delay=0.2)
    transports = [account.transport(), account.transport()]
    threads = [threading.Thread(target=transports[n % 2].send, args=(msg(account, f"two{n}"),)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(account.sent()) == 10
    assert account.sandbox.max_concurrency(account.mailbox) <= 4


def test_mailbox_rate_limit_is_waited_out(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.set_rate(account.mailbox, messages=2, per_seconds=2)
    transport = account.transport()
    for n in range(3):
        transport.send(msg(account, f"rate{n}"))
    assert len(account.sent()) == 3
    assert [r.status for r in send_posts(account)].count(429) >= 1


@pytest.mark.parametrize("kind", ["drop_after_processing", "drop_before_response"])
def test_dropped_connection_after_send_is_unknown_outcome(make_account: AccountFactory, kind: str) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind=kind, count=1)
    transport = account.transport()
    message = msg(account, kind)
    with pytest.raises(UnknownOutcomeError) as info:
        transport.send(message)
    assert not isinstance(info.value, TransportError)
    assert len(send_posts(account)) == 1, "never re-POST after the request was sent"
    assert "vielleicht" in info.value.render("de") and "may or may not" in info.value.render("en")
    expected = 1 if kind == "drop_after_processing" else 0
    assert len(account.sent()) == expected
    # the host asks before any resend: Sent Items tells
    found = transport.lookup(message)
    assert found.found == (Found.SENT if expected else Found.NOT_FOUND)
    if expected:
        assert found.sent_at is not None and found.transport_ids["graph_message_id"]


def test_dropped_send_of_draft_is_unknown_and_draft_kept(make_account: AccountFactory, tmp_path: Any) -> None:
    from ccm_mail_hookspecs import Attachment

    account = make_account()
    big = tmp_path / "gross.bin"
    big.write_bytes(b"\1" * (3 * 1024 * 1024 + 5))
    account.sandbox.faults.add(method="POST", path_regex=r"/messages/[^/]+/send$", kind="drop_after_processing")
    message = msg(account, "draftdrop")
    message.attachments.append(Attachment(big))
    with pytest.raises(UnknownOutcomeError):
        account.transport().send(message)
    assert len(account.sent()) == 1
    deletes = [r for r in account.sandbox.requests if r.method == "DELETE" and account.mailbox in r.path]
    assert deletes == [], "a maybe-sent draft must not be deleted"


def test_server_error_on_send_is_unknown_outcome(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="500", count=1)
    with pytest.raises(UnknownOutcomeError) as info:
        account.transport().send(msg(account, "e500"))
    assert info.value.details["request_id"]
    assert len(send_posts(account)) == 1


def test_lookup_without_read_permission_is_unsupported(make_account: AccountFactory) -> None:
    account = make_account(permissions={"Mail.Send"})
    transport = account.transport()
    message = msg(account, "lookup")
    transport.send(message)
    assert transport.lookup(message).found == Found.UNSUPPORTED


def test_revoked_token_is_replaced_once(make_account: AccountFactory) -> None:
    account = make_account()
    transport = account.transport()
    transport.send(msg(account, "before"))
    with account.sandbox.state.lock:
        account.sandbox.state.tokens.clear()  # Microsoft no longer accepts the cached token
    transport.send(msg(account, "after"))
    assert len(account.sent()) == 2
    assert account.sandbox.token_request_count(account.client_id) == 2
    statuses = [r.status for r in send_posts(account)]
    assert statuses == [202, 401, 202]


def test_lookup_not_yet_in_sent_items(make_account: AccountFactory) -> None:
    account = make_account()
    sb = account.sandbox
    old = sb.sent_items_delay
    sb.sent_items_delay = 30
    try:
        transport = account.transport()
        message = msg(account, "later")
        transport.send(message)
        assert transport.lookup(message).found == Found.NOT_FOUND  # Exchange is not instant
    finally:
        sb.sent_items_delay = old


def test_test_mail_action(make_account: AccountFactory) -> None:
    from ccm_mail_office365.account_type import ACCOUNT_TYPE

    account = make_account()
    result = ACCOUNT_TYPE.actions["test_mail"](account.settings(), lang="en")
    assert result["ok"] and result["request_id"], result
    sent = account.sent()
    assert len(sent) == 1 and sent[0].recipients("to") == [account.mailbox]


def test_mime_route_dropped_is_unknown_and_throttle_replays(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="429", count=1, retry_after="0")
    message = msg(account, "mime-ok")
    message.html = "<p>Anbei.</p>"
    account.transport().send(message)
    assert [s.route for s in account.sent()] == ["mime"]
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="drop_after_processing", count=1)
    dropped = msg(account, "mime-drop")
    dropped.html = "<p>Anbei.</p>"
    with pytest.raises(UnknownOutcomeError):
        account.transport().send(dropped)
    assert [r.status for r in send_posts(account)] == [429, 202, None]
    assert len(account.sent()) == 2


def test_revoked_token_replaced_once_for_parallel_senders(make_account: AccountFactory) -> None:
    account = make_account()
    transport = account.transport()
    transport.send(msg(account, "warm"))
    with account.sandbox.state.lock:
        account.sandbox.state.tokens.clear()
    threads = [threading.Thread(target=transport.send, args=(msg(account, f"rev{n}"),)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(account.sent()) == 5
    assert account.sandbox.token_request_count(account.client_id) == 2
