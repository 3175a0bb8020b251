"""Every mapped Microsoft error, as the admin reads it, with support ids and without secrets;
national clouds reach the right Microsoft hosts (through the sandbox's CONNECT proxy)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from ccm_mail_hookspecs import (
    AccessDeniedError,
    Address,
    AuthenticationError,
    CcmMailError,
    MailboxError,
    Message,
    MessageTooLargeError,
    NetworkError,
    TransportError,
)
from ccm_mail_hookspecs.errors import SUPPORT_ID_KEYS
from o365_support import Account, AccountFactory

logcapture = pytest.importorskip("ccm_mail_core.testing.logcapture")


def msg(account: Account, tag: str, **fields: Any) -> Message:
    return Message(
        f"Rechnung {tag}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<{tag}-{account.client_id[:8]}@ccm-mail.test>",
        **fields,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# (case, account options, transport options, expected class, code, words in de, words in en, id keys)
CASES = [
    (
        "secret_id_pasted",
        {},
        {"client_secret": "3f2c9b1e-0000-4444-8888-123456789abc"},
        AuthenticationError,
        "AADSTS7000215",
        "nicht die „Geheime ID“",
        'not its "Secret ID"',
        ("trace_id", "correlation_id"),
    ),
    (
        "secret_expired",
        {"secret_expired": True},
        {},
        AuthenticationError,
        "AADSTS7000222",
        "abgelaufen",
        "expired",
        ("trace_id", "correlation_id"),
    ),
    (
        "wrong_client_id",
        {},
        {"client_id": "99999999-8888-7777-6666-555555555555"},
        AuthenticationError,
        "AADSTS700016",
        "Anwendungs-ID",
        "application (client) ID",
        ("trace_id", "correlation_id"),
    ),
    (
        "wrong_tenant",
        {},
        {"tenant_id": "deadbeef-0000-4000-8000-000000000000"},
        AuthenticationError,
        "AADSTS90002",
        "Mandanten-ID",
        "tenant ID",
        ("trace_id", "correlation_id"),
    ),
    (
        "no_consent",
        {"consented": False},
        {},
        AccessDeniedError,
        "ErrorAccessDenied",
        "Admin Berechtigung erteilen",
        "*Application*",
        ("request_id",),
    ),
    (
        "unknown_mailbox",
        {},
        {"mailbox": "gibtsnicht@firma.example"},
        MailboxError,
        "ErrorInvalidUser",
        "E-Mail-Adresse",
        "e-mail address",
        ("request_id",),
    ),
    ("unlicensed", {"licensed": False}, {}, MailboxError, "MailboxNotEnabledForRESTAPI", "Lizenz", "licence", ("request_id",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_mapped_errors(make_account: AccountFactory, case: tuple[Any, ...]) -> None:
    name, account_opts, transport_opts, cls, code, de, en, ids = case
    account = make_account(**account_opts)
    with logcapture.capture_logs() as logs:
        transport = account.transport(**transport_opts)
        with pytest.raises(CcmMailError) as info:
            transport.send(msg(account, name))
        check = transport.check()
    err = info.value
    assert type(err) is cls, f"{name}: {type(err).__name__}: {err}"
    assert err.details["code"] == code
    assert de in err.render("de") and en in err.render("en"), err.render("en")
    for key in ids:
        assert err.details.get(key), f"{name}: {key} missing in {err.details}"
        assert f"{key}={err.details[key]}" in err.render("de")
    assert not check.ok and any(not ok and code in text.en for _, ok, text in check.steps), check
    secrets = [*account.secrets(), transport_opts.get("client_secret", ""), *account.sandbox.state.tokens]
    logcapture.assert_no_secrets(
        [s for s in secrets if s],
        {"error": logcapture.exception_texts(err), "details": [repr(err.details)], "log": logs.texts(), "check": [repr(check)]},
    )
    assert account.sent() == []


def test_send_as_denied(make_account: AccountFactory) -> None:
    account = make_account()
    message = msg(account, "sendas")
    message.sender = Address("chef@firma.example", "Chef")
    with pytest.raises(MailboxError) as info:
        account.transport().send(message)
    assert info.value.details["code"] == "ErrorSendAsDenied" and info.value.details["request_id"]
    assert "Senden als" in info.value.render("de")


def test_message_too_large(make_account: AccountFactory, tmp_path: Any) -> None:
    from ccm_mail_hookspecs import Attachment

    account = make_account()
    account.sandbox.mailbox(account.mailbox).max_message_size = 50_000
    (tmp_path / "rechnung.pdf").write_bytes(b"%PDF" + b"\0" * 100_000)
    with pytest.raises(MessageTooLargeError) as info:
        account.transport().send(msg(account, "big", attachments=[Attachment(tmp_path / "rechnung.pdf")]))
    assert info.value.details["code"] == "ErrorMessageSizeExceeded" and info.value.details["request_id"]


def test_nobody_listening_is_network_error(make_account: AccountFactory) -> None:
    account = make_account()
    port = free_port()
    with pytest.raises(NetworkError) as info:
        account.transport(authority_host=f"https://127.0.0.1:{port}", graph_endpoint=f"https://127.0.0.1:{port}").send(
            msg(account, "refused")
        )
    assert info.value.retryable and "nothing was sent" in info.value.render("en").lower()
    assert info.value.details["code"] == "network_refused"


def test_untrusted_certificate_is_tls_error(make_account: AccountFactory) -> None:
    account = make_account()
    with pytest.raises(NetworkError) as info:
        account.transport(ca_bundle="/etc/ssl/certs/ca-certificates.crt").send(msg(account, "tls"))
    assert info.value.details["code"] == "network_tls"
    assert "ca_bundle" in info.value.render("de")
    assert account.sandbox.token_request_count(account.client_id, successful=False) == 0


def test_graph_error_quoting_the_token_shows_no_part_of_it(make_account: AccountFactory) -> None:
    """Graph's error text goes into the message and ``details``; one that quotes the request's
    Authorization header must not carry the token out, not even the part left after cutting a long
    text short (a real token is longer than the 500 characters kept)."""
    account = make_account()
    account.sandbox.faults.add(method="POST", path_regex=r"/sendMail$", kind="echo_request")
    transport = account.transport()
    token = transport.tokens.token()
    with logcapture.capture_logs() as logs, pytest.raises(TransportError) as info:
        transport.send(msg(account, "echo"))
    err = info.value
    assert err.details["code"] == "InvalidRequest" and err.details["request_id"]
    assert "Bearer ***" in err.details["description"] and "Bearer ***" in err.render("en")
    texts = [*logcapture.exception_texts(err), repr(err.details), json.dumps(err.to_dict("en")), *logs.texts()]
    claims_and_signature = token.split(".", 1)[1]  # the JWT header is much the same in every token
    pieces = {claims_and_signature[i : i + 16] for i in range(0, len(claims_and_signature) - 16, 8)}
    leaked = sorted(p for p in pieces if any(p in text for text in texts))
    assert not leaked, f"parts of the access token reached the error or a log line: {leaked[:3]}"
    assert account.sent() == []


def test_support_ids_are_shown_keys() -> None:
    for key in ("request_id", "trace_id", "correlation_id", "client_request_id"):
        assert key in SUPPORT_ID_KEYS


@pytest.mark.parametrize(
    ("cloud", "login", "graph"),
    [
        ("global", "login.microsoftonline.com", "graph.microsoft.com"),
        ("usgov_high", "login.microsoftonline.us", "graph.microsoft.us"),
        ("usgov_dod", "login.microsoftonline.us", "dod-graph.microsoft.us"),
        ("china", "login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"),
    ],
)
def test_national_cloud_hosts(make_account: AccountFactory, cloud: str, login: str, graph: str) -> None:
    account = make_account(cloud=cloud, via_proxy=True)
    transport = account.transport()
    transport.send(msg(account, cloud))
    assert transport.check().ok
    sb = account.sandbox
    mine = [r for r in sb.requests if account.tenant_id in r.path or account.mailbox in r.path]
    hosts = {r.host.split(":")[0] for r in mine}
    assert hosts == {login, graph}, hosts
    assert all(r.via_proxy for r in mine)
    tokens = [t for t in sb.token_requests if t.client_id == account.client_id]
    # one for the send, one for the connection test (it always asks the token endpoint)
    assert [(t.host.split(":")[0], t.scope) for t in tokens] == [(login, f"https://{graph}/.default")] * 2
    assert len(account.sent()) == 1


def test_check_with_mail_send_only(make_account: AccountFactory) -> None:
    account = make_account(permissions={"Mail.Send"})
    result = account.transport().check()
    steps = {name: (ok, text) for name, ok, text in result.steps}
    assert result.ok and [n for n, _, _ in result.steps] == ["token", "permissions", "mailbox", "scope"]
    assert "Mail.ReadBasic.All" in steps["mailbox"][1].en
    wrong = account.transport(mailbox="tippfehler@firma.example").check()
    wrong_steps = {name: (ok, text) for name, ok, text in wrong.steps}
    assert not wrong.ok and "ErrorInvalidUser" in wrong_steps["mailbox"][1].en


def test_check_explains_missing_consent(make_account: AccountFactory) -> None:
    account = make_account(consented=False)
    result = account.transport().check()
    steps = {name: (ok, text) for name, ok, text in result.steps}
    assert steps["token"][0] and not steps["permissions"][0]
    assert "Admin Berechtigung erteilen" in steps["permissions"][1].de
    assert "accounts consent" in steps["permissions"][1].en
