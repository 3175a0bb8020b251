"""The pages without a browser (urllib over real HTTP): security headers and no inline script or
style, sessions from the login link (once) and from keys, the CSRF check of every changing page,
secrets never on a page, German and English, and what the pages' API additions do (account status,
consent answered from another computer, journal search, the invoice fallback, the template trial).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from server_support import Client, keys
from ui_support import SECRET, Browser, Running

from ccm_mail_server.ui import CSP

PAGES = (
    "/ui/accounts",
    "/ui/accounts/new",
    "/ui/accounts/new?type=office365",
    "/ui/accounts/Testablage",
    "/ui/purposes",
    "/ui/templates",
    "/ui/templates?purpose=eservice",
    "/ui/send",
    "/ui/send?purpose=eservice",
    "/ui/journal",
    "/ui/journal?status=open&reference=RE&recipient=x&from=01.12.2026&to=2026-12-31",
)


def admin_browser(running: Running, config: Path, lang: str = "de") -> Browser:
    browser = Browser(running.url, lang)
    browser.login(keys(config.parent)["settings"])
    return browser


def o365_account(sandbox: Any, tenant: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "office365",
        "values": {
            "tenant_id": tenant["tenant_id"],
            "client_id": tenant["client_id"],
            "mailbox": tenant["mailbox"],
            "authority_host": sandbox.authority_host,
            "graph_endpoint": sandbox.graph_endpoint,
            "ca_bundle": str(sandbox.ca_pem),
            "consent_redirect_uri": tenant["redirect"],
        },
        "secrets": {"client_secret": SECRET},
    }


def test_every_page_has_the_security_headers_and_no_inline_script_or_style(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    browser = admin_browser(running, config)
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP and "frame-ancestors 'none'" in CSP
    for path in (*PAGES, "/ui/login", "/ui/nowhere"):
        status, page, headers = browser.open(path)
        assert status in (200, 404), (path, status, page[:500])
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer", path
        assert headers["Cache-Control"] == "no-store" and headers["Content-Type"].startswith("text/html"), path
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path  # no inline script
        assert not re.search(r"<style|\sstyle=", page), path  # no inline style
        assert not re.search(r"\son[a-z]+=", page), path  # no event handler attributes
        if status == 200 and path != "/ui/login":
            assert 'name="csrf-token"' in page, path
            forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", page, re.S)
            assert all('name="csrf_token"' in f for f in forms), path  # every form carries the token
    for asset in ("/ui/static/ui.css", "/ui/static/ui.js", "/ui/static/favicon.svg"):
        status, _, headers = browser.open(asset)
        assert status == 200 and headers["X-Content-Type-Options"] == "nosniff", asset


def test_without_a_session_every_page_asks_to_sign_in(ui_site: tuple[Path, Running]) -> None:
    _, running = ui_site
    anonymous = Browser(running.url)
    for path in PAGES:
        status, page, _ = anonymous.open(path)
        assert status == 200 and "<h1>Anmelden</h1>" in page, path  # the redirect's target
    status, page, _ = anonymous.open("/ui/accounts/Testablage", {"csrf_token": "x", "f.folder": "/tmp"})
    assert "<h1>Anmelden</h1>" in page


def test_the_login_link_works_once(ui_site: tuple[Path, Running]) -> None:
    _, running = ui_site
    link = running.site.login_path()
    first = Browser(running.url)
    status, page, _ = first.open(link)
    assert status == 200 and "<h1>E-Mail-Konten</h1>" in page
    cookie = next(c for c in first.jar if c.name == "ccm_session")
    assert cookie.path == "/" and cookie.has_nonstandard_attr("HttpOnly")
    second = Browser(running.url)
    status, page, _ = second.open(link)
    assert status == 401 and "Anmeldelink ungültig, abgelaufen oder schon benutzt" in page
    assert second.cookie("ccm_session") is None
    status, answer, _ = Client(running.url, None).call("POST", "/api/v1/session/token", {"token": "geraten"})
    assert status == 401 and answer["error"]["kind"] == "auth"
    sessions = running.site.api.extensions["ccm_mail_sessions"]
    expired = sessions.login_token(seconds=-1)
    assert Client(running.url, None).call("POST", "/api/v1/session/token", {"token": expired})[0] == 401


def test_serve_prints_a_login_link_that_signs_the_browser_in(ui_site: tuple[Path, Running], tmp_path: Path) -> None:
    """The real 'ccm-mail serve': the link on its stderr opens the pages; the token is in no log line."""
    config, _ = ui_site
    log = tmp_path / "serve.log"
    settings = yaml.safe_load(config.read_text("utf-8"))
    settings["logging"] = {"level": "info", "format": "json", "file": str(log)}
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), "utf-8")
    env = {**os.environ, "CCM_MAIL_LOAD_PLUGINS": "server,office365"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccm_mail_core.cli", "--config", str(config), "serve"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
    )
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "/ui/login?token=" in line:
                break
        found = re.search(r"(http://127\.0\.0\.1:\d+)(/ui/login\?token=\S+)", "".join(lines))
        assert found, "".join(lines)
        assert "Anmeldelink, einmal gültig" in "".join(lines)
        browser = Browser(found.group(1))
        status, page, _ = browser.open(found.group(2))
        assert status == 200 and "<h1>E-Mail-Konten</h1>" in page
        token = parse_qs(urlsplit(found.group(2)).query)["token"][0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert log.exists() and token not in log.read_text("utf-8")


def test_sign_in_with_keys(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    browser = Browser(running.url)
    status, page, _ = browser.open("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    status, page, _ = browser.open("/ui/login", {"login_token": token, "key": "ccm_settings_falsch", "next": ""})
    assert status == 401 and "API-Schlüssel ungültig" in page and browser.cookie("ccm_session") is None
    # the login form is refused when it did not come from this site (its cookie is missing)
    other = Browser(running.url)
    status, page, _ = other.open("/ui/login", {"login_token": token, "key": keys(config.parent)["settings"]})
    assert status == 403 and other.cookie("ccm_session") is None
    # the send key: sending and the journal, not the settings
    sender = Browser(running.url)
    page = sender.login(keys(config.parent)["send"])
    assert "<h1>Versand prüfen</h1>" in page
    assert sender.open("/ui/journal")[0] == 200
    status, page, _ = sender.open("/ui/accounts")
    assert status == 403 and "Mit dem Einstellungs-Schlüssel anmelden" in page
    # signing out ends the session in the service, not only in the browser
    admin = admin_browser(running, config)
    sid = admin.cookie("ccm_session")
    status, page, _ = admin.open("/ui/accounts")
    admin.open("/ui/logout", {"csrf_token": admin.csrf(page)})
    assert Client(running.url, None).call("GET", "/api/v1/session", headers={"Cookie": f"ccm_session={sid}"})[0] == 401


def _post_routes(running: Running) -> list[str]:
    samples = {"name": "Testablage", "purpose": "eservice", "job": "0123456789abcdef", "entry_id": "1"}
    routes = []
    for rule in running.site.ui.url_map.iter_rules():
        if "POST" in (rule.methods or ()) and rule.rule != "/ui/login":
            routes.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: samples[m.group(1)], rule.rule))
    return sorted(routes)


def test_every_changing_page_refuses_a_forged_csrf_token(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    admin_key = keys(config.parent)["settings"]
    Client(running.url, keys(config.parent)["send"]).call(
        "POST",
        "/api/v1/send",
        {"purpose": "eservice", "to": ["kunde@example.de"], "data": {"Anrede": "Hallo"}, "yes": True},
    )
    browser = admin_browser(running, config)
    before = config.read_bytes()
    routes = _post_routes(running)
    assert len(routes) >= 12, routes  # every page that changes something is in this list
    for route in routes:
        for forged in ("", "gefälscht", browser.csrf(browser.open("/ui/accounts")[1])[:-1]):
            form = {
                "csrf_token": forged,
                "subject": "gekapert",
                "body": "x",
                "action": "save",
                "account": "Testablage",
                "decision": "send",
                "draft": "x",
                "to": "kunde@example.de",
                "purpose": "eservice",
                "f.folder": "gekapert",
                "redirect_url": "http://localhost/?admin_consent=True",
            }
            status, page, _ = browser.open(route, form)
            assert status == 403 and "Sicherheitsprüfung fehlgeschlagen" in page, (route, forged, status)
    assert config.read_bytes() == before
    assert browser.cookie("ccm_session") is not None  # logout was refused too
    entries = Client(running.url, admin_key).call("GET", "/api/v1/journal")[1]["entries"]
    assert [e["status"] for e in entries] == ["sent"] and len(list((config.parent / "out").glob("*.eml"))) == 1


def test_no_secret_on_any_page_and_a_form_save_changes_only_what_changed(
    ui_site: tuple[Path, Running], sandbox: Any, tenant: dict[str, Any]
) -> None:
    config, running = ui_site
    admin = Client(running.url, keys(config.parent)["settings"])
    status, answer, _ = admin.call("PUT", "/api/v1/settings/accounts/Rechnungsversand", o365_account(sandbox, tenant))
    assert status == 200, answer
    browser = admin_browser(running, config)
    status, page, _ = browser.open("/ui/accounts/Rechnungsversand")
    assert status == 200 and SECRET not in page
    secret_state = re.search(r'id="f-f-client_secret-state">(.*?)</p>', page, re.S)
    assert secret_state and "gesetzt" in secret_state.group(1)
    assert re.search(r'<input type="password" id="f-f-client_secret" name="f.client_secret" value=""', page)
    form = {
        k: v for k, v in re.findall(r'<input type="(?:text|email)" id="[^"]+" name="([^"]+)" value="([^"]*)"', page)
    }
    form.update(
        {
            "csrf_token": browser.csrf(page),
            "type": "office365",
            "f.mailbox": "service@codicon.example",
            "f.client_secret": "",
            "from_name": "codicon GmbH Buchhaltung",
        }
    )
    status, page, _ = browser.open(
        "/ui/accounts/Rechnungsversand", {k: v.replace("&amp;", "&") for k, v in form.items()}
    )
    assert status == 200 and "Gespeichert." in page, page
    audit = admin.call("GET", "/api/v1/settings/audit?limit=1")[1]["entries"][0]
    assert audit["changes"] == {"mailbox": "service@codicon.example", "from_name": "codicon GmbH Buchhaltung"}
    stored = yaml.safe_load(config.read_text("utf-8"))["accounts"]["Rechnungsversand"]
    assert stored["mailbox"] == "service@codicon.example" and isinstance(stored["client_secret"], dict)
    for path in (*PAGES, "/ui/accounts/Rechnungsversand"):
        assert SECRET not in browser.open(path)[1], path
    # an emptied field is emptied in the file
    page = browser.open("/ui/accounts/Rechnungsversand")[1]
    form["csrf_token"] = browser.csrf(page)
    form["from_name"] = ""
    browser.open("/ui/accounts/Rechnungsversand", form)
    assert not yaml.safe_load(config.read_text("utf-8"))["accounts"]["Rechnungsversand"].get("from_name")
    row = next(r for r in admin.call("GET", "/api/v1/accounts")[1]["accounts"] if r["name"] == "Rechnungsversand")
    assert row["sender"] == "service@codicon.example"  # no display name any more


def test_pages_speak_english_by_browser_language_or_the_switch(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    english = admin_browser(running, config, lang="en-GB,en;q=0.8")
    status, page, headers = english.open("/ui/accounts")
    assert '<html lang="en">' in page and "<h1>Mail accounts</h1>" in page and headers["Content-Language"] == "en"
    # the service's own words (config check's) come in the page's language too
    page = english.open("/ui/templates?purpose=eservice")[1]
    status, page, _ = english.open(
        "/ui/templates/eservice",
        {"csrf_token": english.csrf(page), "subject": "#Rabatt#", "body": "x", "format": "text", "action": "save"},
    )
    assert status == 422 and "unknown placeholder #Rabatt#" in page and "nothing saved" in page
    german = admin_browser(running, config, lang="de-DE,de;q=0.9")
    assert "<h1>E-Mail-Konten</h1>" in german.open("/ui/accounts")[1]
    status, page, _ = german.open("/ui/lang/en?next=/ui/purposes")
    assert status == 200 and "<h1>Purposes</h1>" in page  # the switch wins over the browser
    assert "<h1>E-Mail-Konten</h1>" in german.open("/ui/lang/de?next=https://evil.example/")[1]  # never another site


def test_connection_test_and_consent_status_are_kept_and_shown(
    ui_site: tuple[Path, Running], sandbox: Any, tenant: dict[str, Any]
) -> None:
    config, running = ui_site
    admin = Client(running.url, keys(config.parent)["settings"])
    assert admin.call("PUT", "/api/v1/settings/accounts/Rechnungsversand", o365_account(sandbox, tenant))[0] == 200
    browser = admin_browser(running, config)
    page = browser.open("/ui/accounts/Rechnungsversand")[1]
    status, page, _ = browser.open("/ui/accounts/Rechnungsversand/test", {"csrf_token": browser.csrf(page)})
    assert status == 200 and "Verbindung testen: fehlgeschlagen" in page  # no consent yet
    row = next(r for r in admin.call("GET", "/api/v1/accounts")[1]["accounts"] if r["name"] == "Rechnungsversand")
    assert row["status"]["test"]["ok"] is False and row["actions"] == ["consent", "test_mail"]
    assert [s["ok"] for s in row["status"]["test"]["steps"]] == [
        True,
        False,
        False,
        True,
    ]  # token, roles, mailbox, reach
    sandbox.app(tenant["tenant_id"], tenant["client_id"]).consented = True
    status, page, _ = browser.open("/ui/accounts/Rechnungsversand/test", {"csrf_token": browser.csrf(page)})
    assert "Verbindung testen: in Ordnung" in page
    listing = browser.open("/ui/accounts")[1]
    assert "✔ in Ordnung" in listing and "seither geändert" not in listing
    time.sleep(0.01)  # the next save gets a later time stamp than the test
    admin.call("PUT", "/api/v1/settings/accounts/Rechnungsversand", {"from_name": "codicon GmbH"})
    assert "seither geändert" in browser.open("/ui/accounts")[1]


def test_consent_answered_from_another_computer(
    ui_site: tuple[Path, Running], sandbox: Any, tenant: dict[str, Any]
) -> None:
    """The admin consents at their own computer; Microsoft sends *their* browser to *their*
    localhost; they paste that address into the page, which hands it to the waiting job."""
    config, running = ui_site
    sandbox.consent_behaviour = "accept"
    assert (
        Client(running.url, keys(config.parent)["settings"]).call(
            "PUT", "/api/v1/settings/accounts/Rechnungsversand", o365_account(sandbox, tenant)
        )[0]
        == 200
    )
    browser = admin_browser(running, config)
    page = browser.open("/ui/accounts/Rechnungsversand")[1]
    status, page, _ = browser.open("/ui/accounts/Rechnungsversand/consent", {"csrf_token": browser.csrf(page)})
    assert status == 200 and "Warte auf die Antwort von Microsoft" in page
    job_path = re.search(r'<form method="post" action="(/ui/accounts/Rechnungsversand/consent/[0-9a-f]+)"', page)
    consent_url = re.search(r'id="consent-link" href="([^"]+)"', page)
    assert job_path and consent_url
    url = consent_url.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [tenant["redirect"]]
    remote = requests.get(url, allow_redirects=False, verify=str(sandbox.ca_pem), timeout=20)
    assert remote.status_code == 302
    location = remote.headers["Location"]
    forged = location.replace("state=", "state=x")
    status, page, _ = browser.open(job_path.group(1), {"csrf_token": browser.csrf(page), "redirect_url": forged})
    deadline = time.monotonic() + 20  # a bound against waiting forever, not a timing assertion
    while "ignoriert" not in page and time.monotonic() < deadline:
        page = browser.open(job_path.group(1))[1]
    assert "state passt nicht" in page and 'id="consent-result"' not in page  # shown, and still waiting
    browser.open(job_path.group(1), {"csrf_token": browser.csrf(page), "redirect_url": location})
    while 'id="consent-result"' not in page and time.monotonic() < deadline:
        page = browser.open(job_path.group(1))[1]
    assert 'data-status="granted"' in page and "Zustimmung erteilt" in page
    assert sandbox.app(tenant["tenant_id"], tenant["client_id"]).consented
    rows = Client(running.url, keys(config.parent)["settings"]).call("GET", "/api/v1/accounts")[1]["accounts"]
    assert next(r for r in rows if r["name"] == "Rechnungsversand")["status"]["consent"]["status"] == "granted"


def test_invoices_fall_back_to_e_service_and_back(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    admin = Client(running.url, keys(config.parent)["settings"])
    admin.call(
        "PUT",
        "/api/v1/settings/accounts/Archiv",
        {"type": "pickup", "values": {"folder": "archiv", "sender": "a@codicon.de"}},
    )
    browser = admin_browser(running, config)
    page = browser.open("/ui/purposes")[1]
    assert 'id="fallback-invoice"' in page and "Testablage" in page
    status, page, _ = browser.open(
        "/ui/purposes/invoice", {"csrf_token": browser.csrf(page), "account": "Archiv", "pool": "Testablage"}
    )
    assert status == 200 and 'id="fallback-invoice"' not in page
    assert yaml.safe_load(config.read_text("utf-8"))["purposes"]["invoice"] == ["Archiv", "Testablage"]
    status, page, _ = browser.open("/ui/purposes/invoice", {"csrf_token": browser.csrf(page), "account": ""})
    assert 'id="fallback-invoice"' in page and "invoice" not in yaml.safe_load(config.read_text("utf-8"))["purposes"]
    status, answer, _ = admin.call("DELETE", "/api/v1/settings/purposes/invoice")
    assert status == 422 and "kein eigenes Konto" in answer["error"]["message"]
    audit = [e["action"] for e in admin.call("GET", "/api/v1/settings/audit")[1]["entries"]]
    assert audit[:2] == ["purposes.remove", "purposes.set"]


def test_the_template_trial_checks_like_config_check_and_renders_like_preview(ui_site: tuple[Path, Running]) -> None:
    from ccm_mail_core.cli import main

    config, running = ui_site
    admin = Client(running.url, keys(config.parent)["settings"])
    before = config.read_bytes()
    status, trial, _ = admin.call(
        "POST",
        "/api/v1/settings/templates/invoice/preview",
        {"subject": "Rg. #extRechnungsNr# #Rabat#", "body": "#Anrede#, # kaputt"},
    )
    assert status == 200 and not trial["ok"] and trial["unknown"] == ["Rabat"]
    assert {p["key"] for p in trial["problems"]} == {"templates.invoice.subject", "templates.invoice.body"}
    status, trial, _ = admin.call(
        "POST",
        "/api/v1/settings/templates/invoice/preview",
        {"subject": "Rg. #extRechnungsNr#", "body": "#Anrede#,\n\nanbei #Betrag#.\n", "to": ["kunde@example.de"]},
    )
    assert status == 200 and trial["ok"] and trial["preview"]["subject"] == "Rg. RE-2026-00042"
    assert config.read_bytes() == before  # a trial writes nothing
    admin.call(
        "PUT",
        "/api/v1/settings/templates/invoice",
        {"subject": "Rg. #extRechnungsNr#", "body": "#Anrede#,\n\nanbei #Betrag#.\n"},
    )
    data = config.parent / "data.json"
    data.write_text(
        json.dumps({"extRechnungsNr": "RE-2026-00042", "Anrede": "Sehr geehrte Frau Weiß", "Betrag": "1.234,56 €"}),
        "utf-8",
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert (
            main(
                ["-c", str(config), "preview", "--purpose", "invoice", "--to", "kunde@example.de", "--data", str(data)]
            )
            == 0
        )
    assert trial["text"].strip() == out.getvalue().strip()


def test_journal_search_by_part_of_the_number_and_by_recipient(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    sender = Client(running.url, keys(config.parent)["send"])
    for number, to in (
        ("RE-2026-00041", "Anna <anna@kunde-a.example>"),
        ("RE-2026-00042", "bert@kunde-b.example"),
        ("RE-2026-10042", "Anna <anna@kunde-a.example>"),
    ):
        status, answer, _ = sender.call(
            "POST",
            "/api/v1/send",
            {"purpose": "eservice", "to": [to], "yes": True, "reference": number, "data": {"Anrede": "Hallo"}},
        )
        assert status == 200 and answer["status"] == "sent", answer

    def refs(query: str) -> list[str]:
        return [e["reference"] for e in sender.call("GET", "/api/v1/journal?" + query)[1]["entries"]]

    assert refs("reference_contains=0042") == ["RE-2026-10042", "RE-2026-00042"]
    assert refs("recipient=ANNA@kunde-a") == ["RE-2026-10042", "RE-2026-00041"]
    assert refs("recipient=anna&reference_contains=0041") == ["RE-2026-00041"]
    assert refs("reference_contains=0042&limit=1") == ["RE-2026-10042"]
    assert refs("reference=RE-2026-00042") == ["RE-2026-00042"]
    browser = admin_browser(running, config)
    page = browser.open("/ui/journal?recipient=kunde-b")[1]
    assert "RE-2026-00042" in page and "RE-2026-00041" not in page
    today = time.strftime("%d.%m.%Y")
    assert "RE-2026-00041" in browser.open(f"/ui/journal?from={today}&to={today}")[1]
    status, page, _ = browser.open("/ui/journal?from=31.02.2026")
    assert status == 422 and "Datum als TT.MM.JJJJ" in page and 'aria-invalid="true"' in page


@pytest.mark.parametrize("decision", ["send", "cancel"])
def test_the_send_dialog_without_script(ui_site: tuple[Path, Running], decision: str) -> None:
    config, running = ui_site
    browser = admin_browser(running, config)
    page = browser.open("/ui/send?purpose=eservice")[1]
    assert 'name="data.Anrede"' in page
    boundary = "ccmmailboundary"
    parts = {
        "csrf_token": browser.csrf(page),
        "purpose": "eservice",
        "to": "Kunde <kunde@example.de>",
        "data.Anrede": "Guten Tag",
    }
    raw = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in parts.items()
    )
    raw += f"--{boundary}--\r\n"
    status, page, _ = browser.open(
        "/ui/send", raw=raw.encode("utf-8"), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 200 and 'role="dialog"' in page and "Guten Tag," in page
    assert not list((config.parent / "out").glob("*.eml"))  # checking sends nothing
    draft = re.search(r'name="draft" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    other = admin_browser(running, config)  # another session cannot send this draft
    status, _, _ = other.open(
        "/ui/send/confirm", {"csrf_token": other.csrf(other.open("/ui/send")[1]), "draft": draft, "decision": "send"}
    )
    assert status == 409 and not list((config.parent / "out").glob("*.eml"))
    status, page, _ = browser.open(
        "/ui/send/confirm", {"csrf_token": browser.csrf(page), "draft": draft, "decision": decision}
    )
    mails = list((config.parent / "out").glob("*.eml"))
    if decision == "cancel":
        assert status == 200 and "Abgebrochen – nichts gesendet." in page and mails == []
        return
    assert status == 200 and 'data-status="sent"' in page and len(mails) == 1
    sent_at = re.search(r'id="result-sent-at"><time datetime="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    entry = Client(running.url, keys(config.parent)["send"]).call("GET", "/api/v1/journal")[1]["entries"][0]
    assert entry["sent_at"] == sent_at
    status, page, _ = browser.open(
        "/ui/send/confirm", {"csrf_token": browser.csrf(page), "draft": draft, "decision": "send"}
    )
    assert status == 409 and len(list((config.parent / "out").glob("*.eml"))) == 1  # a draft sends once


def test_a_missing_placeholder_value_is_shown_at_its_field(ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    browser = admin_browser(running, config)
    page = browser.open("/ui/send?purpose=eservice")[1]
    boundary = "b"
    parts = {"csrf_token": browser.csrf(page), "purpose": "eservice", "to": "kunde@example.de"}
    raw = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in parts.items()
    )
    status, page, _ = browser.open(
        "/ui/send",
        raw=(raw + f"--{boundary}--\r\n").encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 422 and "Kein Wert für Platzhalter #Anrede#" in page
    assert re.search(r'id="data-Anrede" name="data.Anrede"[^>]*aria-invalid="true"', page)


def test_a_session_keeps_only_its_newest_checked_sends(ui_site: tuple[Path, Running]) -> None:
    """Checked sends wait in the service's memory: an admin clicking 'Prüfen' again and again
    keeps the newest few, never an unbounded pile of attachments."""
    from ccm_mail_server.ui.pages_send import DRAFTS_PER_SESSION

    config, running = ui_site
    browser = admin_browser(running, config)
    page = browser.open("/ui/send?purpose=eservice")[1]
    drafts = []
    for i in range(DRAFTS_PER_SESSION + 1):
        status, page, _ = browser.open(
            "/ui/send",
            {
                "csrf_token": browser.csrf(page),
                "purpose": "eservice",
                "to": f"kunde{i}@example.de",
                "data.Anrede": "Hallo",
            },
        )
        assert status == 200
        drafts.append(re.search(r'name="draft" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    status, page, _ = browser.open(
        "/ui/send/confirm", {"csrf_token": browser.csrf(page), "draft": drafts[0], "decision": "send"}
    )
    assert status == 409 and not list((config.parent / "out").glob("*.eml"))
    status, page, _ = browser.open(
        "/ui/send/confirm", {"csrf_token": browser.csrf(page), "draft": drafts[-1], "decision": "send"}
    )
    assert status == 200 and len(list((config.parent / "out").glob("*.eml"))) == 1


def test_an_upload_beyond_the_limit_is_refused_in_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui_support import site_thread, write_site_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCM_MAIL_LOAD_PLUGINS", "server,office365")
    config = write_site_config(tmp_path, server={"max_request_mb": 1})
    with site_thread(config) as running:
        browser = admin_browser(running, config)
        page = browser.open("/ui/send?purpose=eservice")[1]
        boundary = "b"
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in {"csrf_token": browser.csrf(page), "purpose": "eservice", "to": "kunde@example.de"}.items()
        )
        upload = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="gross.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n"
            ).encode()
            + b"%" * (1024 * 1024 + 1)
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, page, _ = browser.open(
            "/ui/send",
            raw=head.encode() + upload,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 413 and "höchstens 1 MB" in page and "nichts gesendet" in page
        assert not list((tmp_path / "out").glob("*.eml"))


@pytest.mark.parametrize("name", ["Testablage?neu", "Testablage#2", "Testablage/x", "Konto%20"])
def test_a_new_account_name_can_never_reach_another_account(ui_site: tuple[Path, Running], name: str) -> None:
    """The name became part of the API path unquoted: 'Testablage?neu' was saved over the live
    account 'Testablage' (folder and sender replaced)."""
    config, running = ui_site
    before = yaml.safe_load(config.read_text("utf-8"))["accounts"]["Testablage"]
    browser = admin_browser(running, config)
    page = browser.open("/ui/accounts/new?type=pickup")[1]
    form = {"csrf_token": browser.csrf(page), "type": "pickup", "name": name, "f.folder": "hijack",
            "f.sender": "evil@example.com"}  # fmt: skip
    status, page, _ = browser.open("/ui/accounts/new", form)
    assert status == 422, page
    accounts = yaml.safe_load(config.read_text("utf-8"))["accounts"]
    assert accounts == {"Testablage": before}
