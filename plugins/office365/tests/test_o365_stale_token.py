"""A token issued before admin consent carries no roles and keeps failing with 403 until it
expires. After consent the next send and the next connection test must work at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from ccm_mail_hookspecs import AccessDeniedError, Address, Message
from o365_support import Account, AccountFactory
from test_o365_consent import HttpBrowser, consent, free_port

from ccm_mail_office365.tokens import token_roles


def msg(account: Account, n: int = 0) -> Message:
    return Message(
        f"Rechnung {n}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<stale{n}-{account.client_id[:8]}@ccm-mail.test>",
    )


def send_statuses(account: Account) -> list[int | None]:
    return [
        r.status
        for r in account.sandbox.requests
        if r.method == "POST" and r.path.endswith("/sendMail") and account.mailbox in r.path
    ]


@pytest.fixture
def unconsented(make_account: AccountFactory, sandbox: Any) -> Iterator[Account]:
    redirect = f"http://localhost:{free_port()}/"
    old = sandbox.consent_behaviour
    sandbox.consent_behaviour = "accept"
    yield make_account(consented=False, redirect_uris=[redirect], consent_redirect_uri=redirect)
    sandbox.consent_behaviour = old


def grant_in_entra(account: Account) -> None:
    """The admin clicks "Grant admin consent" in the Entra portal: ccm-mail is not involved."""
    with account.sandbox.state.lock:
        account.sandbox.app(account.tenant_id, account.client_id).consented = True


def test_send_after_consent_in_entra_works_at_once(unconsented: Account) -> None:
    transport = unconsented.transport()
    assert token_roles(transport.tokens.token()) == set()  # fetched before consent, cached
    grant_in_entra(unconsented)
    transport.send(msg(unconsented, 1))
    assert send_statuses(unconsented) == [403, 202], "one fresh token, the request repeated once"
    assert unconsented.sandbox.token_request_count(unconsented.client_id) == 2
    assert len(unconsented.sent()) == 1


def test_a_new_process_after_consent_in_entra_works_at_once(unconsented: Account) -> None:
    unconsented.transport().tokens.token()  # persisted, role-less
    grant_in_entra(unconsented)
    unconsented.transport().send(msg(unconsented, 2))  # reads the persisted token first
    assert send_statuses(unconsented) == [403, 202]


def test_check_after_consent_in_entra_is_ok_at_once(unconsented: Account) -> None:
    transport = unconsented.transport()
    assert not transport.check().ok
    grant_in_entra(unconsented)
    assert transport.check().ok


def test_consent_action_drops_the_cached_tokens(unconsented: Account) -> None:
    transport = unconsented.transport()
    stale = transport.tokens.token()
    cache = unconsented.state_dir / "msal_token_cache.json"
    assert stale in cache.read_text()
    result = consent(unconsented, HttpBrowser(unconsented))
    assert result["status"] == "granted", result
    assert stale not in cache.read_text(), "the persisted cache still holds the role-less token"
    assert not json.loads(cache.read_text()).get("AccessToken")
    transport.send(msg(unconsented, 3))  # the same transport, which held the token in memory
    unconsented.transport().send(msg(unconsented, 4))
    assert send_statuses(unconsented) == [202, 202], "no 403 first: the old token was gone everywhere"


def test_without_consent_one_refresh_then_the_error(unconsented: Account) -> None:
    transport = unconsented.transport()
    with pytest.raises(AccessDeniedError) as info:
        transport.send(msg(unconsented, 5))
    assert info.value.details["code"] == "ErrorAccessDenied"
    assert send_statuses(unconsented) == [403, 403]
    assert unconsented.sandbox.token_request_count(unconsented.client_id) == 2
    with pytest.raises(AccessDeniedError):  # right after: no stream of token requests
        transport.send(msg(unconsented, 6))
    assert send_statuses(unconsented) == [403, 403, 403]
    assert unconsented.sandbox.token_request_count(unconsented.client_id) == 2
    assert unconsented.sent() == []


def test_refusal_with_the_role_in_the_token_gets_no_new_token(make_account: AccountFactory) -> None:
    """RBAC for Applications: the token has Mail.Send, the mailbox is outside the app's scope."""
    account = make_account(permissions={"Mail.Send"})
    account.sandbox.mailbox(account.mailbox).allowed_apps = {"00000000-0000-0000-0000-000000000001"}
    with pytest.raises(AccessDeniedError):
        account.transport().send(msg(account, 7))
    assert send_statuses(account) == [403]
    assert account.sandbox.token_request_count(account.client_id) == 1
