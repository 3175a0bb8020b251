"""'Admin Berechtigung erteilen' end to end: the admin-consent URL, the loopback listener, the
result page, accepted / denied / forged state — once with a plain HTTP client as the browser and
once in headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from o365_support import Account, AccountFactory

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def consent_account(make_account: AccountFactory) -> Account:
    """An app without consent yet, whose registered redirect URI is a free loopback port."""
    redirect = f"http://localhost:{free_port()}/"
    return make_account(consented=False, redirect_uris=[redirect], consent_redirect_uri=redirect)


@pytest.fixture
def behaviour(sandbox: Any) -> Iterator[Callable[[str], None]]:
    old = sandbox.consent_behaviour

    def set_(value: str) -> None:
        sandbox.consent_behaviour = value

    yield set_
    sandbox.consent_behaviour = old


def consent(account: Account, opener: Callable[[str], Any], **kw: Any) -> dict[str, Any]:
    from ccm_mail_office365.account_type import ACCOUNT_TYPE

    lines: list[str] = []
    result = ACCOUNT_TYPE.actions["consent"](
        account.settings(), open_browser=opener, out=lines.append, timeout=kw.pop("timeout", 30), **kw
    )
    result["printed"] = lines
    return result


class HttpBrowser:
    """A minimal 'browser': follows Microsoft's redirect back to the listener, in a thread."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.threads: list[threading.Thread] = []
        self._pages: list[requests.Response] = []

    def __call__(self, url: str) -> bool:
        def run() -> None:
            with requests.Session() as s:
                self._pages.append(s.get(url, verify=str(self.account.values["ca_bundle"]), timeout=20))

        self.threads.append(threading.Thread(target=run, daemon=True))
        self.threads[-1].start()
        return True

    @property
    def pages(self) -> list[requests.Response]:
        for t in self.threads:
            t.join(20)
        return self._pages


def test_consent_url_and_accept(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("accept")
    browser = HttpBrowser(consent_account)
    result = consent(consent_account, browser)
    assert result["ok"] and result["status"] == "granted", result
    assert result["tenant"] == consent_account.tenant_id
    url = urlsplit(result["consent_url"])
    q = parse_qs(url.query)
    assert url.path == f"/{consent_account.tenant_id}/v2.0/adminconsent"
    assert q["client_id"] == [consent_account.client_id]
    assert q["scope"] == ["https://graph.microsoft.com/.default"]
    assert q["redirect_uri"] == [consent_account.values["consent_redirect_uri"]]
    assert len(q["state"][0]) >= 32
    assert consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented
    page = browser.pages[0]
    assert page.status_code == 200 and "erteilt" in page.text and "granted" in page.text
    assert "ccm-mail accounts test rechnung" in page.text  # the next step, for this very account
    # after consent the app can send
    transport = consent_account.transport()
    assert transport.check().ok


def test_each_run_has_a_fresh_state(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("accept")
    states = [
        parse_qs(urlsplit(consent(consent_account, HttpBrowser(consent_account))["consent_url"]).query)["state"][0]
        for _ in range(2)
    ]
    assert states[0] != states[1]


def test_consent_denied(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("deny")
    browser = HttpBrowser(consent_account)
    result = consent(consent_account, browser, lang="en")
    assert not result["ok"] and result["status"] == "denied"
    assert "AADSTS65004" in result["error_description"]
    assert "declined" in result["message"]
    assert "abgelehnt" in browser.pages[0].text and "declined" in browser.pages[0].text
    assert not consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


def test_forged_redirects_are_ignored_and_the_real_answer_counts(
    consent_account: Account, behaviour: Callable[[str], None]
) -> None:
    """A page sending the admin's browser to the listener with a wrong or no state must neither end
    the flow nor confirm anything; the real answer that follows is taken."""
    behaviour("accept")
    logcapture = pytest.importorskip("ccm_mail_core.testing.logcapture")
    pages: list[requests.Response] = []
    real = HttpBrowser(consent_account)

    def attacker_then_admin(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]

        def run() -> None:
            for params in (
                {"admin_consent": "True", "tenant": "x", "state": "forged-state"},
                {"admin_consent": "True", "tenant": "x"},
            ):
                pages.append(requests.get(redirect, params=params, timeout=10))
            real(url)

        threading.Thread(target=run, daemon=True).start()
        return True

    with logcapture.capture_logs() as logs:
        result = consent(consent_account, attacker_then_admin)
    assert result["status"] == "granted" and result["via"] == "redirect", result
    assert result["ignored"] == 2 and [p.status_code for p in pages] == [400, 400]
    assert all("state" in p.text for p in pages)
    assert sum("consent_forged_redirect" in line for line in logs.texts()) == 2


def test_forged_redirect_alone_confirms_nothing(consent_account: Account) -> None:
    def attacker(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        threading.Thread(
            target=requests.get,
            args=(redirect,),
            daemon=True,
            kwargs={"params": {"admin_consent": "True", "state": "forged"}, "timeout": 10},
        ).start()
        return True

    result = consent(consent_account, attacker, timeout=2)
    assert not result["ok"] and result["status"] == "timeout" and result["ignored"] == 1
    assert not consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


def test_idle_connection_does_not_block_the_listener(consent_account: Account) -> None:
    """Someone opens a connection to the listener and sends nothing; --timeout still holds."""
    idle: list[socket.socket] = []

    def open_idle(url: str) -> bool:
        port = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0]).port
        idle.append(socket.create_connection(("127.0.0.1", port)))
        return True

    box: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: box.update(consent(consent_account, open_idle, timeout=2)), daemon=True)
    runner.start()
    runner.join(30)  # a bound against hanging forever, not a timing assertion
    try:
        assert not runner.is_alive(), "the idle connection blocked the consent listener"
        assert box["status"] == "timeout"
    finally:
        for s in idle:
            s.close()
        runner.join(30)


def test_idle_connection_and_then_the_real_answer(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("accept")
    idle: list[socket.socket] = []
    browser = HttpBrowser(consent_account)

    def idle_then_browser(url: str) -> bool:
        port = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0]).port
        idle.append(socket.create_connection(("127.0.0.1", port)))
        return browser(url)

    box: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: box.update(consent(consent_account, idle_then_browser)), daemon=True)
    runner.start()
    runner.join(60)  # a bound against hanging forever, not a timing assertion
    try:
        assert not runner.is_alive(), "the idle connection kept the real answer out"
        assert box["status"] == "granted", box
    finally:
        for s in idle:
            s.close()
        runner.join(30)


# -- admin at another computer: paste-back, --redirect-url, a token as proof ----------------------


def remote_admin(account: Account, url: str) -> str:
    """The admin's browser elsewhere: Microsoft answers with a redirect to *their* localhost, which
    they cannot reach from there; the address is all they have."""
    resp = requests.get(url, allow_redirects=False, verify=str(account.values["ca_bundle"]), timeout=20)
    assert resp.status_code == 302, resp.text
    return str(resp.headers["Location"])


def printed_url(lines: list[str]) -> str:
    return next(line for line in lines if "/adminconsent?" in line)


def consent_pasting(account: Account, answers: Callable[[list[str]], list[str]], **kw: Any) -> dict[str, Any]:
    """The consent action with ``ask``: ``answers(printed lines)`` gives what the operator types."""
    from ccm_mail_office365.account_type import ACCOUNT_TYPE

    lines: list[str] = []
    queue: list[str] = []

    def ask(prompt: str) -> str:
        lines.append(prompt)
        if not queue:
            queue.extend(answers(lines))
        if not queue:
            raise EOFError
        return queue.pop(0)

    result = ACCOUNT_TYPE.actions["consent"](
        account.settings(), no_browser=True, out=lines.append, ask=ask, timeout=kw.pop("timeout", 30), **kw
    )
    result["printed"] = lines
    return result


def test_remote_admin_pastes_the_redirect(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("accept")
    stale = consent_account.transport()
    stale.tokens.token()  # fetched before consent

    def operator(lines: list[str]) -> list[str]:
        location = remote_admin(consent_account, printed_url(lines))
        forged = location.replace("state=", "state=x")
        return [forged, "keine Adresse", location]

    result = consent_pasting(consent_account, operator)
    assert result["status"] == "granted" and result["via"] == "paste", result
    assert any("ignoriert" in line for line in result["printed"])
    assert any("keine Antwort von Microsoft" in line for line in result["printed"])
    stale.send(stale_message(consent_account))  # the cached token was dropped: no 403 first
    assert [
        r.status for r in consent_account.sandbox.requests if r.path.endswith("/sendMail") and consent_account.mailbox in r.path
    ] == [202]


def test_remote_admin_declines_and_the_paste_says_so(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("deny")
    result = consent_pasting(consent_account, lambda lines: [remote_admin(consent_account, printed_url(lines))], lang="en")
    assert result["status"] == "denied" and "AADSTS65004" in result["message"]
    assert "declined" in result["message"] and "Accept" in result["hint"]


def test_nothing_to_paste_a_token_with_mail_send_is_proof(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    behaviour("accept")
    calls: list[int] = []

    def operator(lines: list[str]) -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            return [""]  # not consented yet: a new token has no Mail.Send
        remote_admin(consent_account, printed_url(lines))  # consents, loses the redirect
        return [""]

    result = consent_pasting(consent_account, operator)
    assert result["status"] == "granted" and result["via"] == "token", result
    assert any("Not yet" in line or "Noch nicht" in line for line in result["printed"])
    assert "Mail.Send" in result["message"]


def test_redirect_url_finishes_an_earlier_run(consent_account: Account, behaviour: Callable[[str], None]) -> None:
    from ccm_mail_office365.account_type import ACCOUNT_TYPE

    behaviour("accept")
    first = consent(consent_account, lambda url: False, no_browser=True, timeout=0.5)
    assert first["status"] == "timeout"
    location = remote_admin(consent_account, first["consent_url"])
    action = ACCOUNT_TYPE.actions["consent"]
    forged = action(consent_account.settings(), redirect_url=location.replace("state=", "state=x"))
    assert forged["status"] == "state_mismatch" and not forged["ok"]
    done = action(consent_account.settings(), redirect_url=location)
    assert done["status"] == "granted" and done["via"] == "paste", done
    again = action(consent_account.settings(), redirect_url=location)  # finished: nothing pending
    assert again["status"] == "no_pending"
    assert consent_account.transport().check().ok


def test_cli_redirect_url_after_no_browser(
    consent_account: Account,
    behaviour: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ccm_mail_core.cli import main
    from test_o365_host_outbox import mailer_for

    behaviour("accept")
    mailer_for(consent_account, tmp_path, monkeypatch).close()  # writes ccm-mail.yaml
    config = str(tmp_path / "ccm-mail.yaml")
    assert main(["accounts", "consent", "Rechnungsversand", "--no-browser", "--timeout", "0.5", "-c", config]) == 1
    url = printed_url(capsys.readouterr().err.splitlines())
    location = remote_admin(consent_account, url)
    code = main(["accounts", "consent", "Rechnungsversand", "--redirect-url", location, "--json", "-c", config])
    out = capsys.readouterr().out
    assert code == 0 and '"granted"' in out, out


def test_cli_paste_reads_the_redirect_from_stdin(
    consent_account: Account, behaviour: Callable[[str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    from ccm_mail_core.cli import main
    from test_o365_host_outbox import mailer_for

    behaviour("accept")
    mailer_for(consent_account, tmp_path, monkeypatch).close()
    err = io.StringIO()

    class Operator(io.StringIO):
        """stdin: reads what the CLI printed so far, plays the remote admin, types the address."""

        def readline(self, *args: Any) -> str:
            return remote_admin(consent_account, printed_url(err.getvalue().splitlines())) + "\n"

    monkeypatch.setattr(sys, "stdin", Operator())
    monkeypatch.setattr(sys, "stderr", err)
    code = main(
        [
            "accounts",
            "consent",
            "Rechnungsversand",
            "--no-browser",
            "--paste",
            "--timeout",
            "20",
            "-c",
            str(tmp_path / "ccm-mail.yaml"),
        ]
    )
    assert code == 0, err.getvalue()
    assert consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


def stale_message(account: Account) -> Any:
    from ccm_mail_hookspecs import Address, Message

    return Message(
        "Nach der Zustimmung",
        [Address("kunde@example.com")],
        sender=Address(account.mailbox),
        text="Anbei.",
        message_id=f"<after-{account.client_id[:8]}@ccm-mail.test>",
    )


def test_no_browser_prints_the_url(consent_account: Account) -> None:
    opened: list[str] = []
    result = consent(consent_account, opened.append, no_browser=True, timeout=0.5)
    assert opened == []
    assert result["status"] == "timeout" and not result["ok"]
    assert result["consent_url"] in result["printed"]


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_listener_is_loopback_only(consent_account: Account) -> None:
    sockets: list[str] = []

    def probe(url: str) -> bool:
        port = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0]).port
        sockets.extend(
            line.split()[1]
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
        )
        return True

    consent(consent_account, probe, timeout=0.3)
    assert sockets and all(local.startswith("0100007F:") for local in sockets), sockets  # 127.0.0.1 only


# -- headless Chromium ---------------------------------------------------------------------------


def spki_hash(pem_path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def leaf_spki_hash(host_url: str) -> str:
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    parts = urlsplit(host_url)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            der_cert = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der_cert)
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture
def chromium(tmp_path: Path, sandbox: Any) -> Iterator[Callable[[str], bool]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium (CI installs it)")
    procs: list[subprocess.Popen[bytes]] = []
    pins = ",".join({spki_hash(Path(sandbox.ca_pem)), leaf_spki_hash(sandbox.authority_host)})

    def open_(url: str) -> bool:
        profile = tmp_path / f"chromium-profile-{len(procs)}"
        profile.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    f"--user-data-dir={profile}",
                    f"--ignore-certificate-errors-spki-list={pins}",
                    url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return True

    yield open_
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.browser
def test_chromium_consent_accepted(
    consent_account: Account, behaviour: Callable[[str], None], chromium: Callable[[str], bool]
) -> None:
    behaviour("accept")
    result = consent(consent_account, chromium, timeout=60)
    assert result["status"] == "granted", result
    assert consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented
    assert consent_account.transport().check().ok


@pytest.mark.browser
def test_chromium_consent_denied(
    consent_account: Account, behaviour: Callable[[str], None], chromium: Callable[[str], bool]
) -> None:
    behaviour("deny")
    result = consent(consent_account, chromium, timeout=60)
    assert result["status"] == "denied", result
    assert "AADSTS65004" in result["error_description"]
    assert not consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


@pytest.mark.browser
def test_chromium_forged_state(consent_account: Account, chromium: Callable[[str], bool]) -> None:
    """A page (here: the browser sent straight to a crafted link) delivers an answer whose state
    this run never issued: ignored, nothing confirmed, the listener waits on to its timeout."""

    def forged(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        return chromium(f"{redirect}?admin_consent=True&tenant={consent_account.tenant_id}&state=forged")

    result = consent(consent_account, forged, timeout=12)
    assert result["status"] == "timeout" and not result["ok"] and result["ignored"] >= 1
    assert not consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


def test_unregistered_redirect_uri_times_out_with_hint(make_account: AccountFactory) -> None:
    account = make_account(
        consented=False, redirect_uris=["http://localhost:8400/"], consent_redirect_uri=f"http://localhost:{free_port()}/"
    )
    browser = HttpBrowser(account)
    result = consent(account, browser, timeout=1.5, lang="en")
    assert result["status"] == "timeout" and "AADSTS50011" in result["hint"]
    assert "AADSTS50011" in browser.pages[0].text  # Microsoft shows the error page, no redirect


@pytest.mark.browser
def test_chromium_shows_the_result_page_in_german_and_english(
    consent_account: Account, sandbox: Any, behaviour: Callable[[str], None], tmp_path: Path
) -> None:
    """What the admin sees at the end: the page the listener serves, as Chromium rendered it."""
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium (CI installs it)")
    behaviour("accept")
    pins = ",".join({spki_hash(Path(sandbox.ca_pem)), leaf_spki_hash(sandbox.authority_host)})
    procs: list[subprocess.Popen[str]] = []

    def open_(url: str) -> bool:
        procs.append(
            subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    f"--ignore-certificate-errors-spki-list={pins}",
                    "--virtual-time-budget=15000",
                    "--dump-dom",
                    url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        return True

    result = consent(consent_account, open_, timeout=60)
    dom, _ = procs[0].communicate(timeout=60)
    assert result["status"] == "granted", result
    assert 'data-status="granted"' in dom
    assert "Die Administratorzustimmung wurde erteilt" in dom and "Admin consent was granted" in dom
    assert "ccm-mail accounts test rechnung" in dom
