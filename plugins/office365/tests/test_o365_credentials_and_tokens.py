"""Client secret and certificate credentials; one token reused across messages and processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from ccm_mail_hookspecs import Address, AuthenticationError, Message
from o365_support import AccountFactory, make_certificate


def msg(account: Any, n: int = 0) -> Message:
    return Message(
        f"Rechnung {n}",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<tok{n}-{account.client_id[:8]}@ccm-mail.test>",
    )


@pytest.mark.parametrize("form", ["pem", "pem_encrypted", "pfx", "pfx_encrypted"])
def test_certificate_credentials(make_account: AccountFactory, tmp_path: Path, form: str) -> None:
    password = "Zert-Kennwort-1" if form.endswith("encrypted") else None
    public_pem, pem_file, pfx_file = make_certificate(tmp_path, password=password)
    account = make_account(
        secret=None,
        certificate_pem=public_pem,
        certificate=str(pfx_file if form.startswith("pfx") else pem_file),
        certificate_password=password,
    )
    transport = account.transport()
    transport.send(msg(account))
    assert len(account.sent()) == 1
    requests_ = [t for t in account.sandbox.token_requests if t.client_id == account.client_id]
    assert [(t.credential, t.status) for t in requests_] == [("assertion", 200)]
    steps = {name: (ok, text.en) for name, ok, text in transport.check().steps}
    assert steps["token"][0] and "certificate" in steps["token"][1]
    cache = transport.tokens.cache_path.read_text()
    assert "PRIVATE KEY" not in cache and (password is None or password not in cache)


def test_certificate_not_registered_is_explained(make_account: AccountFactory, tmp_path: Path) -> None:
    registered, _, _ = make_certificate(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, pem_file, _ = make_certificate(other)
    account = make_account(secret=None, certificate_pem=registered, certificate=str(pem_file))
    with pytest.raises(AuthenticationError) as info:
        account.transport().send(msg(account))
    assert info.value.details["code"] == "AADSTS700027"
    assert "hochladen" in info.value.render("de") and info.value.details["trace_id"]


def test_wrong_pfx_password_is_config_error(make_account: AccountFactory, tmp_path: Path) -> None:
    public_pem, _, pfx_file = make_certificate(tmp_path, password="richtig-7Qx")
    account = make_account(
        secret=None, certificate_pem=public_pem, certificate=str(pfx_file), certificate_password="verkehrt-9Zy"
    )
    with pytest.raises(AuthenticationError) as info:
        account.transport().send(msg(account))
    text = info.value.render("de") + info.value.render("en")
    assert "Kennwort" in text and "verkehrt-9Zy" not in text and "richtig-7Qx" not in text
    assert account.sandbox.token_request_count(account.client_id, successful=False) == 0  # told locally


def test_thumbprint_must_match(make_account: AccountFactory, tmp_path: Path) -> None:
    public_pem, pem_file, _ = make_certificate(tmp_path)
    account = make_account(secret=None, certificate_pem=public_pem, certificate=str(pem_file), thumbprint="AB" * 20)
    with pytest.raises(AuthenticationError) as info:
        account.transport().send(msg(account))
    assert "Fingerabdruck" in info.value.render("de")


def test_one_token_for_many_messages(make_account: AccountFactory) -> None:
    account = make_account()
    transport = account.transport()
    for n in range(6):
        transport.send(msg(account, n))
    assert len(account.sent()) == 6
    assert account.sandbox.token_request_count(account.client_id) == 1
    # a second transport for the same account (a new host object) reuses the persisted token
    account.transport().send(msg(account, 99))
    assert account.sandbox.token_request_count(account.client_id) == 1


def test_token_cache_file_is_private_and_holds_no_secret(make_account: AccountFactory) -> None:
    account = make_account()
    transport = account.transport()
    transport.send(msg(account))
    path = transport.tokens.cache_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert account.secret and account.secret not in text
    assert "AccessToken" in json.loads(text)
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


CHILD = textwrap.dedent("""
    import json, sys
    from ccm_mail_hookspecs import AccountSettings, Address, Message
    from ccm_mail_office365.transport import Office365Transport
    values, state_dir, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    t = Office365Transport.from_settings(AccountSettings("rechnung", "office365", values, state_dir))
    r = t.send(Message("Prozess " + n, [Address("kunde@example.com")], sender=Address(values["mailbox"]),
                       text="x", message_id="<proc" + n + "@ccm-mail.test>"))
    t.close()
    print(json.dumps({"network_token_requests": t.tokens.network_requests, "request_id": r.transport_ids["request_id"]}))
""")


def test_token_reused_across_processes(make_account: AccountFactory) -> None:
    account = make_account()
    outputs = []
    for n in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(account.values), str(account.state_dir), n],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        assert account.secret not in done.stdout + done.stderr
    assert [o["network_token_requests"] for o in outputs] == [1, 0]
    assert account.sandbox.token_request_count(account.client_id) == 1
    assert len(account.sent()) == 2


def test_expired_token_in_cache_is_replaced(make_account: AccountFactory) -> None:
    account = make_account()
    sb = account.sandbox
    old = sb.token_lifetime
    sb.token_lifetime = 200  # below msal's 5-minute margin: never reused
    try:
        transport = account.transport()
        transport.send(msg(account, 1))
        transport.send(msg(account, 2))
    finally:
        sb.token_lifetime = old
    assert sb.token_request_count(account.client_id) == 2


def test_ca_bundle_wins_over_requests_ca_bundle_env(make_account: AccountFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """REQUESTS_CA_BUNDLE overrides Session.verify in requests; our per-request verify must win."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    account = make_account()
    # the pitfall itself, shown with plain requests: session.verify is ignored under the variable
    with requests.Session() as plain:
        plain.verify = account.values["ca_bundle"]
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(account.sandbox.graph_endpoint + "/v1.0/users/x")
    account.transport().send(msg(account))
    assert len(account.sent()) == 1


def test_token_cache_permissions_are_repaired(make_account: AccountFactory) -> None:
    account = make_account()
    account.transport().send(msg(account, 1))
    path = account.state_dir / "msal_token_cache.json"
    os.chmod(path, 0o644)
    account.transport().send(msg(account, 2))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_cache_lock_held_elsewhere_is_a_clear_error(make_account: AccountFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the account's lock and hangs: the send fails (not sent) with a
    de/en error after the timeout instead of waiting for ever."""
    from ccm_mail_hookspecs import TransportError

    from ccm_mail_office365 import state_files

    account = make_account()
    account.state_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import sys, time, filelock
        lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(60)
    """),
            str(account.state_dir / state_files.LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(state_files, "LOCK_TIMEOUT", 0.3)
        with pytest.raises(TransportError) as info:
            account.transport().send(msg(account, 1))
        assert info.value.details["code"] == "token_cache_locked"
        assert "gesperrt" in info.value.render("de") and "Nothing was sent" in info.value.render("en")
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    account.transport().send(msg(account, 2))  # free again
    assert len(account.sent()) == 1
