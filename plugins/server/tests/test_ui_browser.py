"""The pages in a real browser (Debian chromium, headless, driven by Playwright; one browser for
the whole test session, a fresh context per test): the vendor's workflow end to end against the
Microsoft 365 sandbox over TLS, a bad Mandanten-ID at its field, a forged CSRF token refused,
open outbox entries settled by the operator, and every page at a narrow window.

With ``CCM_MAIL_UPDATE_SCREENSHOTS=1`` the screenshots go into docs/ui/ (German pages)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_support import PDF, Client, keys
from ui_support import CHROMIUM, CHROMIUM_ARGS, SECRET, Running, shot, site_thread, write_site_config

pytestmark = pytest.mark.browser

RECIPIENT = "Müller & Söhne GmbH <buchhaltung@mueller-soehne.example>"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        # launch() gives every browser a fresh, temporary profile (--user-data-dir)
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # the certificate errors ignored are the sandbox's ("Microsoft's" sign-in pages in the admin's
    # browser); ccm-mail's own calls to the sandbox check its CA (the account's ca_bundle)
    context = browser.new_context(
        locale="de-DE", viewport={"width": 1280, "height": 800}, ignore_https_errors=True, timezone_id="Europe/Berlin"
    )
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    # a refused form answers 4xx on purpose (Chrome logs that too); what must never happen is a
    # script error, a CSP violation or an asset that does not load
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "response",
        lambda resp: (
            errors.append(f"{resp.status} {resp.url}")
            if resp.status >= 400 and resp.request.resource_type in ("stylesheet", "script", "image", "font")
            else None
        ),
    )
    yield tab
    context.close()
    assert not errors, f"the pages logged errors (CSP, script or assets): {errors}"


def login(page: Any, running: Running) -> None:
    page.goto(running.login_url())
    page.wait_for_url("**/ui/accounts")


def yaml_of(config: Path) -> dict[str, Any]:
    return yaml.safe_load(config.read_text("utf-8"))


def cli(config: Path, *args: str) -> str:
    from ccm_mail_core.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["-c", str(config), *args]) == 0
    return out.getvalue()


def test_the_vendor_workflow_in_the_browser(
    page: Any, ui_site: tuple[Path, Running], sandbox: Any, tenant: dict[str, Any], tmp_path: Path
) -> None:
    config, running = ui_site
    login(page, running)

    # ---- E-Mail-Konten: Typ Office 365, Name, Mandanten-ID, E-Mail, Clientschlüssel, Speichern
    page.get_by_role("link", name="Konto anlegen").click()
    page.get_by_label("Typ", exact=True).select_option("office365")
    page.get_by_role("button", name="Weiter").click()
    page.get_by_label("Name", exact=True).fill("Rechnungsversand")
    page.get_by_label("Mandanten-ID", exact=True).fill(tenant["tenant_id"])
    page.get_by_label("Anwendungs-ID (Client)", exact=True).fill(tenant["client_id"])
    page.get_by_label("E-Mail-Adresse", exact=True).fill(tenant["mailbox"])
    page.get_by_label("Geheimer Clientschlüssel", exact=True).fill(SECRET)
    page.get_by_text("Erweitert:").click()  # the sandbox's endpoints are advanced settings
    page.get_by_label("Anmelde-Host (erweitert)").fill(sandbox.authority_host)
    page.get_by_label("Graph-Endpunkt (erweitert)").fill(sandbox.graph_endpoint)
    page.get_by_label("CA-Bündel (erweitert)").fill(str(sandbox.ca_pem))
    page.get_by_label("Redirect-URI für die Zustimmung").fill(tenant["redirect"])
    page.get_by_label("Anzeigename des Absenders").fill("codicon GmbH Buchhaltung")
    shot(page, "02-konto-anlegen", tmp_path)
    page.get_by_role("button", name="Speichern").click()
    page.get_by_text("Gespeichert.").wait_for()
    stored = yaml_of(config)["accounts"]["Rechnungsversand"]
    assert stored["tenant_id"] == tenant["tenant_id"] and stored["from_name"] == "codicon GmbH Buchhaltung"
    assert isinstance(stored["client_secret"], dict), stored  # a reference to the keyring or a 0600 file
    assert SECRET not in config.read_text("utf-8") and SECRET not in page.content()
    assert page.locator("#f-f-client_secret-state").inner_text().startswith("gesetzt")

    # ---- Verbindung testen before consent: the permission step fails and says how to fix it
    page.get_by_role("button", name="Verbindung testen").click()
    result = page.locator("#test-result")
    result.wait_for()
    steps = result.locator("ol.steps > li")
    assert steps.nth(0).get_attribute("class") == "step-ok"
    assert steps.nth(1).get_attribute("class") == "step-bad" and "Mail.Send" in steps.nth(1).inner_text()
    assert "ccm-mail accounts consent Rechnungsversand" in steps.nth(1).inner_text()
    shot(page, "03-verbindung-ohne-zustimmung", tmp_path)

    # ---- Admin Berechtigung erteilen: the admin accepts at "Microsoft"; the page shows the result
    sandbox.consent_behaviour = "ask"
    result.get_by_role("button", name="Admin Berechtigung erteilen").click()  # offered right at the failed step
    link = page.get_by_role("link", name="Bei Microsoft anmelden und zustimmen")
    link.wait_for()
    shot(page, "04-zustimmung-warten", tmp_path)
    with page.context.expect_page() as opened:
        link.click()
    microsoft = opened.value
    microsoft.get_by_role("button", name="Accept").click()
    microsoft.wait_for_url(tenant["redirect"] + "**")
    assert "erteilt" in microsoft.content()
    microsoft.close()
    done = page.locator("#consent-result")
    done.wait_for()  # the page asked the API until the job was done, then showed it
    assert done.get_attribute("data-status") == "granted"
    assert "Zustimmung erteilt" in done.inner_text()
    assert sandbox.app(tenant["tenant_id"], tenant["client_id"]).consented
    shot(page, "05-zustimmung-erteilt", tmp_path)

    # ---- Verbindung testen: every step ✔
    done.get_by_role("button", name="Verbindung testen").click()
    page.locator("#test-result.good").wait_for()
    assert page.locator("#test-result ol.steps > li.step-bad").count() == 0
    assert page.locator("#test-result ol.steps > li.step-ok").count() == 4  # token, roles, mailbox, reach
    shot(page, "06-verbindung-ok", tmp_path)

    # ---- the list shows type, mailbox, consent and test
    page.get_by_role("navigation", name="Hauptmenü").get_by_role("link", name="E-Mail-Konten").click()
    row = page.locator("#accounts tbody tr", has_text="Rechnungsversand")
    assert tenant["mailbox"] in row.inner_text() and "Office 365" in row.inner_text()
    assert "✔ erteilt" in row.inner_text() and "✔ in Ordnung" in row.inner_text()
    shot(page, "01-konten", tmp_path)

    # ---- Zuordnung: invoices fall back to E-Service until they get their own account
    page.get_by_role("link", name="Zuordnung").click()
    invoice = page.locator("#purpose-invoice")
    assert (
        "Rechnungen gehen über das Konto des E-Service: Testablage" in invoice.locator("#fallback-invoice").inner_text()
    )
    shot(page, "07-zuordnung", tmp_path)
    invoice.get_by_label("Konto", exact=True).select_option("Rechnungsversand")
    invoice.get_by_role("button", name="Speichern").click()
    page.get_by_text("Gespeichert: Rechnungsversand").wait_for()
    assert yaml_of(config)["purposes"] == {"eservice": "Testablage", "invoice": "Rechnungsversand"}
    assert page.locator("#fallback-invoice").count() == 0

    # ---- Vorlagen: the invoice template built by clicking placeholders
    page.get_by_role("link", name="Vorlagen").click()
    page.get_by_role("navigation", name="Zweck").get_by_role("link", name="Rechnungsversand").click()
    catalog = page.locator("aside.catalog")
    subject, body = page.locator("#tpl-subject"), page.locator("#tpl-body")
    subject.fill("codicon GmbH / Rg. ")
    subject.press("End")
    catalog.get_by_role("button", name="#extRechnungsNr#").click()
    body.fill("anbei erhalten Sie Ihre Rechnung ")
    body.press("End")
    catalog.get_by_role("button", name="#extRechnungsNr#").click()
    body.press_sequentially(" über ")
    catalog.get_by_role("button", name="#Betrag#").click()
    body.press_sequentially(" #Rabatt#.\n\nMit freundlichen Grüßen\ncodicon GmbH\n")
    body.press("Control+Home")  # the salutation goes first: inserted where the cursor is, not at the end
    catalog.get_by_role("button", name="#Anrede#").click()
    body.press_sequentially(",\n\n")
    unknown = page.locator("#tpl-body-unknown")
    unknown.get_by_text("#Rabatt#").wait_for()  # marked while typing, before any save
    assert body.get_attribute("aria-invalid") == "true"
    page.locator("#preview-problems", has_text="#Rabatt#").wait_for()  # config check's words, from the API
    shot(page, "08-vorlage-unbekannter-platzhalter", tmp_path)
    text = body.input_value().replace(" #Rabatt#", "")
    body.fill(text)
    assert subject.input_value() == "codicon GmbH / Rg. #extRechnungsNr#"
    assert text.startswith("#Anrede#,\n\nanbei erhalten Sie Ihre Rechnung #extRechnungsNr# über #Betrag#.")
    page.locator("#preview-text", has_text="codicon GmbH / Rg. RE-2026-00042").wait_for()
    assert unknown.inner_text() == ""
    page.get_by_role("button", name="Speichern").click()
    page.get_by_text("Vorlage gespeichert.").wait_for()
    saved = yaml_of(config)["templates"]["invoice"]
    assert saved["subject"] == "codicon GmbH / Rg. #extRechnungsNr#" and saved["body"] == text
    # the page's preview is what 'ccm-mail preview' prints for the same example data
    catalog_json = json.loads(cli(config, "placeholders", "--purpose", "invoice", "--json"))
    examples = {p["name"]: p["example"] for p in catalog_json["placeholders"]["invoice"]}
    (tmp_path / "examples.json").write_text(json.dumps(examples), "utf-8")
    printed = cli(
        config, "preview", "--purpose", "invoice", "--to", RECIPIENT, "--data", str(tmp_path / "examples.json")
    )
    shown = page.locator("#preview-text").inner_text()
    assert shown.strip() == printed.strip()
    shot(page, "08-vorlagen", tmp_path)

    # ---- Versand prüfen: RE-2026-00042 through the confirmation dialog
    page.get_by_role("link", name="Versand prüfen").click()
    page.get_by_label("An", exact=True).fill(RECIPIENT)
    page.get_by_label("#extRechnungsNr#").fill("RE-2026-00042")
    page.get_by_label("#Anrede#").fill("Sehr geehrte Frau Weiß")
    page.get_by_label("#Betrag#").fill("1.234,56 €")
    page.get_by_label("Anhänge").set_input_files(
        files=[{"name": "RE-2026-00042.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="Prüfen").click()
    dialog = page.get_by_role("dialog", name="Versand prüfen")
    dialog.wait_for()
    preview = dialog.locator("#confirm-preview").inner_text()
    assert "codicon GmbH / Rg. RE-2026-00042" in preview and "RE-2026-00042.pdf" in preview
    assert "Sehr geehrte Frau Weiß," in preview and f"codicon GmbH Buchhaltung <{tenant['mailbox']}>" in preview
    assert sandbox.sent_messages(tenant["mailbox"]) == []  # nothing left before Senden
    shot(page, "09-versand-pruefen", tmp_path)
    dialog.get_by_role("button", name="Senden").click()
    outcome = page.locator("#send-result")
    outcome.wait_for()
    assert outcome.get_attribute("data-status") == "sent"
    sent_at = page.locator("#result-sent-at time").get_attribute("datetime")
    versanddatum = page.locator("#result-sent-at").inner_text()
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d:\d\d", versanddatum), versanddatum
    shot(page, "10-gesendet", tmp_path)
    received = sandbox.sent_messages(tenant["mailbox"])
    assert len(received) == 1
    message = received[0].message
    assert message["subject"] == "codicon GmbH / Rg. RE-2026-00042"
    assert message["toRecipients"][0]["emailAddress"]["address"] == "buchhaltung@mueller-soehne.example"
    assert [(a.name, a.data) for a in received[0].attachments] == [("RE-2026-00042.pdf", PDF)]

    # ---- Journal: found by part of the invoice number, with its Versanddatum and history
    page.get_by_role("link", name="Journal / Ausgang").click()
    page.get_by_label("Rechnungsnummer / Referenz").fill("00042")
    page.get_by_role("button", name="Suchen").click()
    rows = page.locator("#journal tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("time").get_attribute("datetime") == sent_at
    assert versanddatum in rows.first.inner_text() and "gesendet" in rows.first.inner_text()
    shot(page, "11-journal", tmp_path)
    rows.first.get_by_role("link").first.click()
    assert page.locator("#entry-sent-at").inner_text() == versanddatum
    assert [li.inner_text().split("\n")[-1] for li in page.locator("#history li").all()][-1].startswith("gesendet")
    shot(page, "12-journal-eintrag", tmp_path)
    entries = Client(running.url, keys(config.parent)["send"]).call("GET", "/api/v1/journal?reference=RE-2026-00042")[1]
    assert [e["sent_at"] for e in entries["entries"]] == [sent_at]

    # ---- at 1280×800 no table needs its own scroll bar; at a narrow window nothing is wider than it
    for path in ("/ui/accounts", "/ui/journal"):
        page.goto(running.url + path)
        assert page.evaluate(
            "[...document.querySelectorAll('.table-wrap')].every(t => t.scrollWidth <= t.clientWidth)"
        ), path
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/ui/accounts",
        "/ui/accounts/Rechnungsversand",
        "/ui/purposes",
        "/ui/templates?purpose=invoice",
        "/ui/send",
        "/ui/journal",
    ):
        page.goto(running.url + path)
        wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, (path, wide)
        if path.startswith("/ui/templates"):
            shot(page, "13-schmal-vorlagen", tmp_path)
    page.goto(running.url + "/ui/accounts")
    shot(page, "13-schmal-konten", tmp_path)


def test_a_bad_tenant_id_is_shown_at_its_field(page: Any, ui_site: tuple[Path, Running], tmp_path: Path) -> None:
    config, running = ui_site
    before = config.read_bytes()
    login(page, running)
    page.goto(running.url + "/ui/accounts/new?type=office365")
    page.get_by_label("Name", exact=True).fill("Rechnungsversand")
    page.get_by_label("Mandanten-ID", exact=True).fill("codicon GmbH")
    page.get_by_label("Anwendungs-ID (Client)", exact=True).fill("8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d")
    page.get_by_label("E-Mail-Adresse", exact=True).fill("rechnung@codicon.de")
    page.get_by_role("button", name="Speichern").click()
    tenant_input = page.get_by_label("Mandanten-ID", exact=True)
    assert tenant_input.get_attribute("aria-invalid") == "true"
    described = tenant_input.get_attribute("aria-describedby") or ""
    assert "f-f-tenant_id-error" in described.split()
    assert "Mandanten-ID muss eine GUID" in page.locator("#f-f-tenant_id-error").inner_text()
    # every problem at once: the missing secret too, each at its field, and listed above the form
    assert "Genau eines angeben" in page.locator("#f-f-client_secret-error").inner_text()
    summary = page.locator(".summary")
    assert summary.evaluate("el => el === document.activeElement")  # the focus went to the list of problems
    assert "2 Fehler – nichts gespeichert" in summary.inner_text()
    summary.get_by_role("link", name=re.compile("^Mandanten-ID")).click()
    assert tenant_input.evaluate("el => el === document.activeElement")
    assert tenant_input.input_value() == "codicon GmbH"  # what was typed stays
    assert config.read_bytes() == before
    shot(page, "02-konto-fehler", tmp_path)


def test_a_forged_csrf_token_is_refused(page: Any, ui_site: tuple[Path, Running]) -> None:
    config, running = ui_site
    before = config.read_bytes()
    login(page, running)
    page.goto(running.url + "/ui/templates?purpose=eservice")
    page.locator("#tpl-subject").fill("gekapert")
    page.evaluate("document.querySelector('#template-form input[name=csrf_token]').value = 'gefälscht'")
    page.get_by_role("button", name="Speichern").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Sicherheitsprüfung fehlgeschlagen"
    assert config.read_bytes() == before
    # the API itself refuses the page's session with a wrong token, and takes the right one
    status = page.evaluate("""async () => (await fetch('/api/v1/settings/templates/eservice', {method: 'PUT',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': 'gefälscht'},
        body: JSON.stringify({subject: 'gekapert'})})).status""")
    assert status == 403 and config.read_bytes() == before
    page.goto(running.url + "/ui/templates?purpose=eservice")
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    status = page.evaluate(
        """async (token) => (await fetch('/api/v1/settings/templates/eservice', {method: 'PUT',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
        body: JSON.stringify({subject: 'Ihre Anfrage'})})).status""",
        token,
    )
    assert status == 200 and yaml_of(config)["templates"]["eservice"]["subject"] == "Ihre Anfrage"


def test_open_entries_show_their_reason_and_the_operator_settles_them(
    page: Any, sandbox: Any, tenant: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown outcome (the connection dropped after Microsoft took the mail) and a failure
    (Microsoft refused): the outbox view shows both with their reason and exactly the decisions
    'ccm-mail outbox resolve' allows; the operator settles them in the browser."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCM_MAIL_LOAD_PLUGINS", "server,office365")
    sandbox.app(tenant["tenant_id"], tenant["client_id"]).consented = True
    account = {
        "type": "office365",
        "tenant_id": tenant["tenant_id"],
        "client_id": tenant["client_id"],
        "mailbox": tenant["mailbox"],
        "client_secret": {"env": "CCM_MAIL_UI_TEST_SECRET"},
        "authority_host": sandbox.authority_host,
        "graph_endpoint": sandbox.graph_endpoint,
        "ca_bundle": str(sandbox.ca_pem),
        "max_wait_seconds": 1,
    }
    monkeypatch.setenv("CCM_MAIL_UI_TEST_SECRET", SECRET)
    config = write_site_config(
        tmp_path,
        accounts={"Rechnungsversand": account},
        purposes={"eservice": "Rechnungsversand"},
        templates={"invoice": {"subject": "Rg. #extRechnungsNr#", "body": "Anbei.\n"}},
    )
    mailbox_path = f"/users/{tenant['mailbox']}/sendMail"
    with site_thread(config) as running:
        sender = Client(running.url, keys(tmp_path)["send"])

        def invoice(number: str) -> dict[str, Any]:
            return sender.call(
                "POST",
                "/api/v1/send",
                {"purpose": "invoice", "to": [RECIPIENT], "yes": True, "data": {"extRechnungsNr": number}},
            )[1]

        sandbox.faults.add("POST", re.escape(mailbox_path), "drop_after_processing")
        unknown = invoice("RE-2026-00050")
        sandbox.faults.add("POST", re.escape(mailbox_path), "html", status=400)
        failed = invoice("RE-2026-00051")
        assert (unknown["status"], failed["status"]) == ("unknown", "failed"), (unknown, failed)
        try:
            login(page, running)
            page.goto(running.url + "/ui/journal?status=open")
            rows = page.locator("#journal tbody tr")
            assert rows.count() == 2
            by_ref = {r.locator("th").inner_text(): r for r in rows.all()}
            open_unknown, open_failed = by_ref["RE-2026-00050"], by_ref["RE-2026-00051"]
            assert "unklar" in open_unknown.inner_text() and open_unknown.locator(".reason").inner_text()
            assert "fehlgeschlagen" in open_failed.inner_text() and open_failed.locator(".reason").inner_text()
            labels = {ref: [b.inner_text() for b in r.locator("button").all()] for ref, r in by_ref.items()}
            # exactly outbox resolve's choices: unknown → sent, resend, drop; failed → resend, drop
            assert labels == {
                "RE-2026-00050": ["Ist angekommen", "Erneut senden", "Verwerfen"],
                "RE-2026-00051": ["Erneut senden", "Verwerfen"],
            }
            shot(page, "14-ausgang", tmp_path)
            open_failed.get_by_role("button", name="Erneut senden").click()
            assert page.locator("#entry-status").inner_text() == "gesendet"
            page.goto(running.url + "/ui/journal?status=open")
            page.locator("#journal tbody tr", has_text="RE-2026-00050").get_by_role(
                "link", name=str(unknown["journal_id"])
            ).click()
            shot(page, "15-unklarer-eintrag", tmp_path)
            page.get_by_role("button", name="Ist angekommen (als gesendet verbuchen)").click()
            assert page.locator("#entry-status").inner_text() == "gesendet"
            assert "vom Bediener als gesendet bestätigt" in page.locator("#history").inner_text()
        finally:
            sandbox.faults.clear()
        states = {e["reference"]: e["status"] for e in sender.call("GET", "/api/v1/journal")[1]["entries"]}
        assert states == {"RE-2026-00050": "sent", "RE-2026-00051": "sent"}
        # the dropped connection had delivered it; only the failed one was sent again
        assert len(sandbox.sent_messages(tenant["mailbox"])) == 2
