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
    result = ACCOUNT_TYPE.actions["consent"](account.settings(), open_browser=opener, out=lines.append,
                                             timeout=kw.pop("timeout", 30), **kw)
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
    states = [parse_qs(urlsplit(consent(consent_account, HttpBrowser(consent_account))["consent_url"])
                       .query)["state"][0] for _ in range(2)]
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


def test_forged_state_is_refused(consent_account: Account) -> None:
    pages: list[requests.Response] = []
    threads: list[threading.Thread] = []

    def attacker(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]

        def run() -> None:
            pages.append(requests.get(redirect, params={"admin_consent": "True", "tenant": "x",
                                                        "state": "forged-state"}, timeout=10))
        threads.append(threading.Thread(target=run, daemon=True))
        threads[-1].start()
        return True

    result = consent(consent_account, attacker)
    for t in threads:
        t.join(10)
    assert not result["ok"] and result["status"] == "state_mismatch"
    assert pages[0].status_code == 400 and "state" in pages[0].text


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
        sockets.extend(line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                       if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")
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
        procs.append(subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             f"--ignore-certificate-errors-spki-list={pins}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
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
def test_chromium_consent_accepted(consent_account: Account, behaviour: Callable[[str], None],
                                   chromium: Callable[[str], bool]) -> None:
    behaviour("accept")
    result = consent(consent_account, chromium, timeout=60)
    assert result["status"] == "granted", result
    assert consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented
    assert consent_account.transport().check().ok


@pytest.mark.browser
def test_chromium_consent_denied(consent_account: Account, behaviour: Callable[[str], None],
                                 chromium: Callable[[str], bool]) -> None:
    behaviour("deny")
    result = consent(consent_account, chromium, timeout=60)
    assert result["status"] == "denied", result
    assert "AADSTS65004" in result["error_description"]
    assert not consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


@pytest.mark.browser
def test_chromium_forged_state(consent_account: Account, chromium: Callable[[str], bool]) -> None:
    """A page (here: the browser sent straight to a crafted link) delivers an answer whose state
    this run never issued: refused, nothing confirmed."""
    def forged(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        return chromium(f"{redirect}?admin_consent=True&tenant={consent_account.tenant_id}&state=forged")

    result = consent(consent_account, forged, timeout=60)
    assert result["status"] == "state_mismatch" and not result["ok"]
    assert not consent_account.sandbox.app(consent_account.tenant_id, consent_account.client_id).consented


def test_unregistered_redirect_uri_times_out_with_hint(make_account: AccountFactory) -> None:
    account = make_account(consented=False, redirect_uris=["http://localhost:8400/"],
                           consent_redirect_uri=f"http://localhost:{free_port()}/")
    browser = HttpBrowser(account)
    result = consent(account, browser, timeout=1.5, lang="en")
    assert result["status"] == "timeout" and "AADSTS50011" in result["hint"]
    assert "AADSTS50011" in browser.pages[0].text  # Microsoft shows the error page, no redirect


@pytest.mark.browser
def test_chromium_shows_the_result_page_in_german_and_english(consent_account: Account, sandbox: Any,
                                                             behaviour: Callable[[str], None], tmp_path: Path) -> None:
    """What the admin sees at the end: the page the listener serves, as Chromium rendered it."""
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium (CI installs it)")
    behaviour("accept")
    pins = ",".join({spki_hash(Path(sandbox.ca_pem)), leaf_spki_hash(sandbox.authority_host)})
    procs: list[subprocess.Popen[str]] = []

    def open_(url: str) -> bool:
        procs.append(subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
             f"--ignore-certificate-errors-spki-list={pins}", "--virtual-time-budget=15000", "--dump-dom", url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        return True

    result = consent(consent_account, open_, timeout=60)
    dom, _ = procs[0].communicate(timeout=60)
    assert result["status"] == "granted", result
    assert "data-status=\"granted\"" in dom
    assert "Die Administratorzustimmung wurde erteilt" in dom and "Admin consent was granted" in dom
    assert "ccm-mail accounts test rechnung" in dom
