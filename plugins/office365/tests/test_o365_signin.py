"""The sign-in host (Entra ID): busy answers retried, unreadable answers explained, no request at
all when a valid token is cached, the connection test always proving the credential, every token
registered for redaction."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from ccm_mail_hookspecs import Address, AuthenticationError, Message, ThrottledError, TransportError, redaction
from o365_support import Account, AccountFactory


def msg(account: Account, n: int = 0) -> Message:
    return Message(
        f"Rechnung {n}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<signin{n}-{account.client_id[:8]}@ccm-mail.test>",
    )


def token_statuses(account: Account) -> list[int | None]:
    """Statuses of the token requests for the account's tenant, faults included."""
    return [r.status for r in account.sandbox.requests if r.path == f"/{account.tenant_id}/oauth2/v2.0/token"]


def sign_in_requests(account: Account) -> list[Any]:
    """Every request to the tenant's sign-in endpoints (discovery, token), whatever its answer."""
    return [r for r in account.sandbox.requests if r.path.startswith(f"/{account.tenant_id}/")]


# -- 5: busy answers from the token endpoint ------------------------------------------------------


def test_busy_token_endpoint_is_retried_after_retry_after(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind="503", count=2, retry_after="7")
    waits: list[float] = []
    account.transport(sleep=waits.append).send(msg(account))
    assert waits == [7.0, 7.0]
    assert token_statuses(account) == [503, 503, 200]
    assert len(account.sent()) == 1


def test_throttled_token_endpoint_without_retry_after_backs_off(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind="429", count=2)
    waits: list[float] = []
    account.transport(sleep=waits.append).send(msg(account))
    assert len(waits) == 2 and all(0 < w <= 32 for w in waits), waits
    assert token_statuses(account) == [429, 429, 200]


@pytest.mark.parametrize("status", ["503", "429"])
def test_sign_in_still_busy_is_told_with_its_support_ids(make_account: AccountFactory, status: str) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind=status, count=None, retry_after="2")
    waits: list[float] = []
    with pytest.raises(ThrottledError) as info:
        account.transport(sleep=waits.append).send(msg(account))
    err = info.value
    assert err.details["code"] == "AADSTS90033" and err.details["status"] == int(status)
    assert err.details["trace_id"] and err.details["correlation_id"]
    de, en = err.render("de"), err.render("en")
    assert "Anmeldedienst" in de and "nichts gesendet" in de and "sign-in service" in en
    assert f"trace_id={err.details['trace_id']}" in de and "MsalServiceError" not in de + en
    assert 1 <= len(waits) <= 5 and set(waits) == {2.0}, "bounded retries, each after Retry-After"
    assert len(token_statuses(account)) == len(waits) + 1
    assert account.sent() == []


def test_retry_after_beyond_the_wait_cap_gives_up_at_once(make_account: AccountFactory) -> None:
    account = make_account(max_wait_seconds=20)
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind="503", count=None, retry_after="3600")
    waits: list[float] = []
    with pytest.raises(ThrottledError) as info:
        account.transport(sleep=waits.append).send(msg(account))
    assert waits == [] and token_statuses(account) == [503]
    assert "3600" in info.value.render("de") and "3600" in info.value.render("en")


# -- 24: answers that are not JSON (a proxy page, a cut body) -------------------------------------


def test_proxy_page_instead_of_a_token_is_not_sent_with_status_and_body(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind="html", status=403)
    with pytest.raises(TransportError) as info:
        account.transport(sleep=lambda s: None).send(msg(account))
    err = info.value
    assert err.details["status"] == 403 and "Bad Gateway" in err.details["body"]
    assert "HTTP 403" in err.render("de") and "nicht gesendet" in err.render("de")
    assert "JSONDecodeError" not in err.render("en") and len(err.details["body"]) <= 200
    assert account.sent() == []


def test_cut_off_token_answer_after_retries_is_not_unknown(make_account: AccountFactory) -> None:
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind="truncated", status=500, count=None)
    with pytest.raises(TransportError) as info:
        account.transport(sleep=lambda s: None).send(msg(account))
    assert info.value.details["status"] == 500 and info.value.details["body"].startswith('{"error"')
    assert "Expecting" not in info.value.render("en")  # no json module text


def test_proxy_page_at_sign_in_is_a_failed_send_in_the_journal(
    make_account: AccountFactory, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ccm_mail_hookspecs import Status
    from test_o365_host_outbox import mailer_for, send

    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/oauth2/v2.0/token$", kind="html", status=407, count=None)
    with mailer_for(account, tmp_path, monkeypatch) as mailer:
        result = send(mailer)
        assert result.status is Status.FAILED and result.exit_code == 1, result
        assert mailer.journal.get(result.journal_id).status is Status.FAILED


# -- 6: no sign-in request with a valid cached token ----------------------------------------------


def test_cached_token_needs_no_sign_in_host(make_account: AccountFactory) -> None:
    account = make_account()
    account.transport().send(msg(account, 1))
    down = account.sandbox.faults.add(
        path_regex=rf"^/{account.tenant_id}/", kind="drop_before_response", count=None
    )  # the sign-in host is gone
    account.transport().send(msg(account, 2))  # a new transport: a new msal application
    assert down.hits == 0 and len(account.sent()) == 2
    cache = account.state_dir / "msal_http_cache.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    text = cache.read_text()
    assert "openid-configuration" in text and account.secret not in text
    assert not any(t in text for t in account.sandbox.state.tokens)


CHILD = textwrap.dedent("""
    import json, sys
    from ccm_mail_hookspecs import AccountSettings, Address, Message
    from ccm_mail_office365.transport import Office365Transport
    values, state_dir, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    t = Office365Transport.from_settings(AccountSettings("rechnung", "office365", values, state_dir))
    t.send(Message("Prozess " + n, [Address("kunde@example.com")], sender=Address(values["mailbox"]),
                   text="x", message_id="<signin-proc" + n + "@ccm-mail.test>"))
    t.close()
""")


def test_second_process_makes_no_request_to_the_sign_in_host(make_account: AccountFactory) -> None:
    account = make_account()
    seen = []
    for n in ("1", "2"):
        before = len(sign_in_requests(account))
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(account.values), str(account.state_dir), n],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        seen.append(len(sign_in_requests(account)) - before)
    assert seen[0] >= 2 and seen[1] == 0, seen  # discovery + token once, then nothing at all
    assert len(account.sent()) == 2


def test_unreadable_http_cache_is_rebuilt(make_account: AccountFactory) -> None:
    account = make_account()
    account.transport().send(msg(account, 1))
    cache = account.state_dir / "msal_http_cache.json"
    cache.write_text("{kaputt", encoding="utf-8")
    account.transport().send(msg(account, 2))
    assert json.loads(cache.read_text())  # written anew
    assert len(account.sent()) == 2


# -- 7: the connection test proves the credential -------------------------------------------------


def test_check_proves_the_secret_while_a_token_is_cached(make_account: AccountFactory) -> None:
    account = make_account()
    account.transport().send(msg(account))
    wrong = account.transport(client_secret="Falsch~" + "x" * 30).check()
    steps = {name: (ok, text) for name, ok, text in wrong.steps}
    assert not wrong.ok and not steps["token"][0] and "AADSTS7000215" in steps["token"][1].en
    before = len(token_statuses(account))
    assert account.transport().check().ok
    assert token_statuses(account)[before:] == [200], "the test asks the token endpoint every time"


# -- every token the plugin obtains is registered for redaction -----------------------------------


def test_every_access_token_is_registered_for_redaction(make_account: AccountFactory) -> None:
    account = make_account()
    transport = account.transport()
    transport.send(msg(account))
    transport.check()
    tokens = [t for t, info in account.sandbox.state.tokens.items() if info.client_id == account.client_id]
    assert len(tokens) == 2
    for token in tokens:
        assert redaction.redact(f"Microsoft sagte: {token}.") == "Microsoft sagte: ***."


def test_wrong_secret_stays_an_authentication_error(make_account: AccountFactory) -> None:
    account = make_account()
    with pytest.raises(AuthenticationError):
        account.transport(client_secret="Falsch~" + "y" * 30).send(msg(account))
