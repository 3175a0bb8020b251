"""Throttling (4 concurrent requests per mailbox, message rate) and injected faults."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from o365_sandbox_kit import MAILBOX, World, simple_message


def test_fifth_concurrent_request_for_a_mailbox_is_429(world: World) -> None:
    sb = world.sb
    token = world.token()
    sb.faults.add("POST", r"/sendMail$", "latency", count=None, delay=0.6)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with requests.Session() as s:
            r = s.post(
                f"{sb.graph_endpoint}/v1.0/users/{MAILBOX}/sendMail",
                json={"message": simple_message(f"n{i}")},
                headers={"Authorization": f"Bearer {token}"},
                verify=sb.ca_pem,
                timeout=10,
            )
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(202) == 4, statuses
    throttled = [r for r in results if r.status_code == 429]
    assert len(throttled) == 2
    for r in throttled:
        assert r.json()["error"]["code"] == "ApplicationThrottled"
        assert "MailboxConcurrency" in r.json()["error"]["message"]
        assert r.headers["Retry-After"] == "1"
    assert sb.max_concurrency(MAILBOX) >= 5  # the throttled ones leave at once
    assert len(sb.sent_messages()) == 4
    sb.reset_counters()
    assert sb.max_concurrency(MAILBOX) == 0


def test_sequential_requests_are_never_concurrency_throttled(world: World) -> None:
    token = world.token()
    for _ in range(6):
        assert world.send(token=token).status_code == 202
    assert world.sb.max_concurrency(MAILBOX) == 1


def test_message_rate_429_with_retry_after(world: World) -> None:
    world.sb.set_rate(MAILBOX, messages=3, per_seconds=0.6)
    token = world.token()
    assert [world.send(token=token).status_code for _ in range(3)] == [202] * 3
    r = world.send(token=token)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "ApplicationThrottled"
    assert r.headers["Retry-After"] == "1"
    assert len(world.sb.sent_messages()) == 3
    time.sleep(0.65)
    assert world.send(token=token).status_code == 202


def test_default_rate_is_thirty_per_minute(world: World) -> None:
    assert world.sb.mailbox(MAILBOX).rate == (30, 60.0)


@pytest.mark.parametrize(
    ("kind", "code"), [("503", "ServiceUnavailable"), ("429", "TooManyRequests"), ("504", "GatewayTimeout")]
)
def test_status_faults_answer_once_then_the_request_works(world: World, kind: str, code: str) -> None:
    token = world.token()
    fault = world.sb.faults.add(method="POST", path_regex=r"/sendMail$", kind=kind, count=1, retry_after="2")
    r = world.send(token=token)
    assert r.status_code == int(kind)
    assert r.json()["error"]["code"] == code and r.headers["Retry-After"] == "2"
    assert world.sb.sent_messages() == []
    assert world.send(token=token).status_code == 202
    assert fault.hits == 1 and len(world.sb.faults) == 0


def test_fault_without_retry_after(world: World) -> None:
    world.sb.faults.add("POST", r"/sendMail$", "429")
    r = world.send()
    assert r.status_code == 429 and "Retry-After" not in r.headers


def test_token_endpoint_fault(world: World) -> None:
    world.sb.faults.add("POST", r"/oauth2/v2.0/token$", "503", retry_after="1")
    r = world.token_response()
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    assert world.token_response().status_code == 200


def test_not_json_answers_from_in_front_of_microsoft(world: World) -> None:
    """A proxy's HTML page or a JSON body cut in half: the request was not processed."""
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "html", status=403)
    r = world.send(token=token)
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("text/html") and "<html>" in r.text
    world.sb.faults.add("POST", r"/oauth2/v2.0/token$", "truncated", status=400)
    r = world.token_response()
    assert r.status_code == 400 and r.text.startswith('{"error"')
    with pytest.raises(ValueError):
        r.json()
    assert world.sb.sent_messages() == []
    assert world.send(token=token).status_code == 202


def test_drop_before_response_sends_nothing(world: World) -> None:
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "drop_before_response")
    with pytest.raises(requests.ConnectionError):
        world.send(token=token)
    assert world.sb.sent_messages() == []
    assert [r.status for r in world.sb.requests if r.path.endswith("/sendMail")] == [None]


def test_drop_after_processing_sends_but_never_answers(world: World) -> None:
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "drop_after_processing")
    with pytest.raises(requests.ConnectionError):
        world.send(simple_message(internetMessageId="<amb@ccm>"), token=token)
    [sent] = world.sb.sent_messages()
    assert sent.internet_message_id == "<amb@ccm>"
    # the client can find out by looking in Sent Items
    r = world.graph(
        "GET",
        f"/v1.0/users/{MAILBOX}/mailFolders/sentitems/messages",
        token=token,
        params={"$filter": "internetMessageId eq '<amb@ccm>'"},
    )
    assert len(r.json()["value"]) == 1


@pytest.mark.parametrize(("status", "retry_after"), [(200, None), (504, None), (503, "3")])
def test_status_after_processing_sends_and_answers_that_status(
    world: World, status: int, retry_after: str | None
) -> None:
    """A gateway that times out or rewrites the answer after Microsoft had the mail."""
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "status_after_processing", status=status, retry_after=retry_after)
    r = world.send(simple_message(internetMessageId=f"<after{status}@ccm>"), token=token)
    assert r.status_code == status and r.headers.get("Retry-After") == retry_after
    [sent] = world.sb.sent_messages()
    assert sent.internet_message_id == f"<after{status}@ccm>"
    assert world.send(token=token).status_code == 202  # count=1


def test_echo_request_quotes_the_authorization_header(world: World) -> None:
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "echo_request")
    r = world.send(token=token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidRequest"
    assert f"Bearer {token}" in r.json()["error"]["message"] and r.headers["request-id"]
    assert world.sb.sent_messages() == []


def test_reset_in_handshake_resets_the_next_connection_only(world: World) -> None:
    fault = world.sb.faults.add(kind="reset_in_handshake")
    with requests.Session() as fresh, pytest.raises(requests.ConnectionError):
        fresh.get(f"{world.sb.graph_endpoint}/v1.0/users/{MAILBOX}", verify=world.sb.ca_pem, timeout=10)
    assert fault.hits == 1 and world.sb.requests == []  # no request ever arrived
    world.sb.faults.add("GET", r"/never$", "reset_in_handshake", count=None)  # ignored by requests …
    assert world.sb.faults.take("GET", "127.0.0.1", "/never") is None
    world.sb.faults.clear()
    assert world.send().status_code == 202  # … and the next connection works


def test_latency_fault_delays(world: World) -> None:
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "latency", delay=0.6)
    t0 = time.monotonic()
    assert world.send(token=token).status_code == 202
    assert time.monotonic() - t0 >= 0.6
    t0 = time.monotonic()
    world.send(token=token)
    assert time.monotonic() - t0 < 0.6  # count=1: the second request is not delayed


def test_client_timeout_on_latency_is_an_unknown_outcome(world: World) -> None:
    token = world.token()
    world.sb.faults.add("POST", r"/sendMail$", "latency", delay=0.8)
    with pytest.raises(requests.Timeout):
        world.send(token=token, timeout=0.3)
    assert len(world.sb.wait_for_sent(1, timeout=3)) == 1  # it was sent after all


def test_unknown_fault_kind_is_rejected(world: World) -> None:
    with pytest.raises(ValueError):
        world.sb.faults.add("POST", "x", "explode")


def test_upload_volume_limit(world: World) -> None:
    world.sb.upload_limit = (3000, 0.5)
    token = world.token()
    big = simple_message(body={"contentType": "Text", "content": "x" * 3000})
    assert world.send(big, token=token).status_code == 202
    r = world.send(token=token)
    assert r.status_code == 429 and "IncomingBytes" in r.json()["error"]["message"]
    assert int(r.headers["Retry-After"]) >= 1
    time.sleep(0.55)
    assert world.send(token=token).status_code == 202


def test_stop_ends_keep_alive_connections(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading as th

    from ccm_mail_office365_sandbox import Sandbox

    before = th.active_count()
    with Sandbox(tmp_path) as sb, requests.Session() as s:
        sb.add_tenant("contoso.de")
        s.get(f"{sb.authority_host}/contoso.de/v2.0/.well-known/openid-configuration", verify=sb.ca_pem)
    deadline = time.monotonic() + 3
    while th.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert th.active_count() <= before


def test_daily_recipient_limit_blocks_the_mailbox(world: World) -> None:
    world.sb.mailbox(MAILBOX).daily_recipient_limit = 3
    token = world.token()
    two = simple_message(ccRecipients=[{"emailAddress": {"address": "b@example.org"}}])
    assert world.send(two, token=token).status_code == 202
    r = world.send(two, token=token)
    assert r.status_code == 500 and r.json()["error"]["code"] == "ErrorSubmissionQuotaExceeded"
    assert world.send(token=token).status_code == 500  # blocked now, even for one recipient
    assert len(world.sb.sent_messages()) == 1


def test_daily_recipient_count_forgets_what_is_older_than_a_day() -> None:
    from ccm_mail_office365_sandbox.state import Mailbox

    mb = Mailbox(tenant_id="t", address="a@contoso.de", object_id="o", display_name="A")
    mb.note_recipients(1000.0, 3)
    mb.note_recipients(50_000.0, 2)
    assert mb.recipients_in_last_day(50_000.0) == 5
    assert mb.recipients_in_last_day(1000.0 + 86400) == 2  # the first send is exactly a day old
    assert mb.recipients_in_last_day(50_000.0 + 86400) == 0
    mb.note_recipients(200_000.0, 1)
    assert mb.recipients_in_last_day(200_000.0) == 1
