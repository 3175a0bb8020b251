"""An admin's HTTPS_PROXY / NO_PROXY still apply when the account names no proxy (the session
reads them once per host instead of on every request)."""

from __future__ import annotations

from typing import Any

import pytest
from ccm_mail_hookspecs import Address, Message, NetworkError
from o365_support import AccountFactory


def _msg(account: Any, tag: str) -> Message:
    return Message(
        f"Rechnung {tag}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<{tag}-{account.client_id[:8]}@ccm-mail.test>",
    )


def test_https_proxy_from_the_environment_is_used(make_account: AccountFactory, monkeypatch) -> None:
    account = make_account(via_proxy=True)
    del account.values["proxy"]  # real Microsoft host names, no proxy in the account: only the environment
    monkeypatch.setenv("HTTPS_PROXY", account.sandbox.proxy_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = account.transport()
    for n in range(3):
        transport.send(_msg(account, f"envproxy{n}"))
    mine = [r for r in account.sandbox.requests if account.mailbox in r.path]
    assert len(account.sent()) == 3 and mine and all(r.via_proxy for r in mine)
    assert {r.host for r in mine} == {"graph.microsoft.com"}


def test_no_proxy_from_the_environment_bypasses_it(make_account: AccountFactory, monkeypatch) -> None:
    """The environment names a proxy that is not there; the sandbox's own loopback address is in
    NO_PROXY, so the send goes straight to it. Everything stays on this machine."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    account = make_account()  # authority_host / graph_endpoint on 127.0.0.1
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    account.transport().send(_msg(account, "noproxy"))
    assert len(account.sent()) == 1
    monkeypatch.setenv("NO_PROXY", "example.invalid")  # a new transport reads the environment afresh
    with pytest.raises(NetworkError):
        account.transport().send(_msg(account, "viaproxy"))
    assert len(account.sent()) == 1
