"""The JSON API over real HTTP: one invoice, its repeat, batches, journal, outbox, placeholders,
the settings write path picked up without a restart, the OpenAPI description."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from server_support import PDF, Client, attachment, invoice, sent_mails


def test_health_needs_no_key_and_says_nothing_else(send_client: Client) -> None:
    status, body, headers = send_client.call("GET", "/api/v1/health", key=None)
    assert (status, body) == (200, {"status": "ok"})
    assert headers.get("Server") == "ccm-mail"


def test_an_invoice_is_sent_once_and_a_repeat_returns_the_first_receipt(send_client: Client, site: Path) -> None:
    status, first, _ = send_client.call("POST", "/api/v1/send", invoice())
    assert status == 200, first
    assert first["ok"] is True and first["status"] == "sent" and first["repeat"] is False and first["exit_code"] == 0
    assert first["sent_at"] and first["journal_id"] == 1
    status, again, _ = send_client.call("POST", "/api/v1/send", invoice())
    assert status == 200 and again["repeat"] is True and again["ok"] is True
    assert (again["sent_at"], again["journal_id"], again["message_id"]) == (first["sent_at"], 1, first["message_id"])
    assert again["error"]["kind"] == "duplicate"
    mails = sent_mails(site)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["Subject"] == "codicon GmbH / Rg. RE-2026-00042"
    assert "Sehr geehrte Frau Weiß" in mail.get_body(("plain",)).get_content()
    pdf = next(mail.iter_attachments())
    assert pdf.get_filename() == "RE-2026-00042.pdf" and pdf.get_content() == PDF
    status, resent, _ = send_client.call("POST", "/api/v1/send", invoice(resend=True))
    assert status == 200 and resent["repeat"] is False and resent["journal_id"] == 2
    assert len(sent_mails(site)) == 2


def test_errors_before_sending_are_the_cli_documents_in_the_callers_language(send_client: Client, site: Path) -> None:
    status, body, headers = send_client.call(
        "POST", "/api/v1/send", invoice(to=["keine-adresse"]), headers={"Accept-Language": "en-GB,en;q=0.9,de;q=0.5"}
    )
    assert status == 422 and headers["Content-Language"] == "en"
    assert body["ok"] is False and body["exit_code"] == 2
    assert body["error"]["kind"] == "address" and body["error"]["sent"] is False
    assert set(body["error"]) == {"kind", "sent", "message", "hint", "details"}
    status, body, headers = send_client.call(
        "POST", "/api/v1/send", invoice(data={"Anrede": "Hallo"}), headers={"Accept-Language": "de"}
    )
    assert status == 422 and headers["Content-Language"] == "de" and body["error"]["kind"] == "template"
    status, body, _ = send_client.call("POST", "/api/v1/send", invoice(yes=False))
    assert status == 422 and body["error"]["kind"] == "unconfirmed" and "--yes" in body["error"]["hint"]
    assert sent_mails(site) == []


def test_preview_shows_the_message_and_sends_nothing(send_client: Client, site: Path) -> None:
    status, body, _ = send_client.call("POST", "/api/v1/preview", {k: v for k, v in invoice().items() if k != "yes"})
    assert status == 200, body
    assert body["subject"] == "codicon GmbH / Rg. RE-2026-00042" and body["reference"] == "RE-2026-00042"
    assert body["attachments"] == [
        {"filename": "RE-2026-00042.pdf", "content_type": "application/pdf", "size": len(PDF), "inline": False}
    ]
    assert sent_mails(site) == []
    assert send_client.call("GET", "/api/v1/journal")[1] == {"entries": []}


def test_journal_and_outbox(send_client: Client) -> None:
    send_client.call("POST", "/api/v1/send", invoice("RE-1"))
    send_client.call("POST", "/api/v1/send", invoice("RE-2"))
    status, body, _ = send_client.call("GET", "/api/v1/journal?reference=RE-2")
    assert status == 200 and [e["reference"] for e in body["entries"]] == ["RE-2"]
    entry_id = body["entries"][0]["id"]
    status, one, _ = send_client.call("GET", f"/api/v1/journal/{entry_id}")
    assert one["entry"]["status"] == "sent" and [e["status"] for e in one["events"]] == ["queued", "sending", "sent"]
    assert send_client.call("GET", "/api/v1/journal?status=nonsense")[0] == 422
    assert send_client.call("GET", "/api/v1/journal/999")[0] == 404
    assert send_client.call("GET", "/api/v1/journal/99999999999999999999999")[0] == 404  # was a 500
    status, body, _ = send_client.call("POST", "/api/v1/outbox/99999999999999999999/resolve", {"action": "drop"})
    assert status == 422 and "Kein Journal-Eintrag" in body["error"]["message"]  # as for any unknown id; was a 500
    deep = "{" + '"token":' + "[" * 100_000 + "]" * 100_000 + "}"  # no key needed for this route
    status, body, _ = Client(send_client.url, None).call("POST", "/api/v1/session/token", raw=deep.encode())
    assert status == 400 and body["error"]["kind"] == "bad_request", body  # was a 500 (RecursionError)
    for bad in ("until=2026-13-45", "since=garbage"):  # were ignored: every entry, or none, with 200
        status, body, _ = send_client.call("GET", f"/api/v1/journal?{bad}")
        assert status == 422 and "Ungültiges Datum" in body["error"]["message"], (bad, body)
    assert send_client.call("GET", "/api/v1/outbox")[1] == {"entries": []}
    status, checked, _ = send_client.call("POST", "/api/v1/outbox/check")
    assert status == 200 and checked["checked"]["sent"] == []
    status, body, _ = send_client.call("POST", f"/api/v1/outbox/{entry_id}/resolve", {"action": "drop"})
    assert status == 422 and "'drop'" in body["error"]["message"]  # a sent message cannot be dropped


def test_a_batch_is_validated_whole_then_sent_and_its_progress_shown(send_client: Client, site: Path) -> None:
    rows = [
        {
            "to": f"kunde{i}@example.de",
            "attachments": [attachment()],
            "data": {"extRechnungsNr": f"RE-B-{i}", "Anrede": "Guten Tag", "Betrag": "1,00 €"},
        }
        for i in range(6)
    ]
    bad = rows[:2] + [{"to": "keine-adresse", "data": {"extRechnungsNr": "RE-X"}}]
    status, body, _ = send_client.call("POST", "/api/v1/batches", {"purpose": "invoice", "rows": bad, "yes": True})
    assert status == 422 and [p["row"] for p in body["problems"]] == [3]
    assert sent_mails(site) == []
    status, body, _ = send_client.call("POST", "/api/v1/batches", {"purpose": "invoice", "rows": rows, "yes": True})
    assert status == 202, body
    batch = body["batch"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        progress = send_client.call("GET", f"/api/v1/batches/{batch}")[1]
        if not progress["running"] and progress["counts"]["sent"] == 6:
            break
        time.sleep(0.1)
    assert progress["counts"]["sent"] == 6 and progress["summary"]["sent"] == 6
    again = send_client.call("POST", "/api/v1/batches", {"purpose": "invoice", "rows": rows, "yes": True})[1]
    assert again["batch"] == batch
    time.sleep(0.3)
    assert len(sent_mails(site)) == 6
    assert send_client.call("GET", "/api/v1/batches/nope")[0] == 404


def test_placeholders_and_account_types_with_the_send_key(send_client: Client) -> None:
    status, body, _ = send_client.call("GET", "/api/v1/placeholders?purpose=invoice")
    assert status == 200 and any(p["name"] == "extRechnungsNr" for p in body["placeholders"]["invoice"])
    status, body, _ = send_client.call("GET", "/api/v1/accounts/types")
    assert status == 200 and "pickup" in [t["id"] for t in body["types"]]


def test_accounts_list_and_test_with_the_settings_key(admin: Client) -> None:
    status, body, _ = admin.call("GET", "/api/v1/accounts")
    assert status == 200 and body["accounts"][0]["name"] == "Rechnungsversand"
    status, body, _ = admin.call("POST", "/api/v1/accounts/Rechnungsversand/test")
    assert status == 200 and body["ok"] is True
    assert admin.call("POST", "/api/v1/accounts/Unbekannt/test")[0] == 422
    status, body, _ = admin.call("POST", "/api/v1/accounts/Rechnungsversand/consent")
    assert status == 422 and "consent" in body["error"]["message"]  # pickup offers no consent


def test_a_saved_template_is_used_by_the_next_send_without_a_restart(
    admin: Client, send_client: Client, site: Path
) -> None:
    status, body, _ = admin.call(
        "PUT", "/api/v1/settings/templates/invoice", {"subject": "Ihre Rechnung #extRechnungsNr#"}
    )
    assert status == 200, body
    assert body["changes"] == {"subject": "Ihre Rechnung #extRechnungsNr#"}
    assert "# von Hand gepflegt" in (site / "ccm-mail.yaml").read_text("utf-8")
    assert send_client.call("POST", "/api/v1/send", invoice())[0] == 200
    assert sent_mails(site)[0]["Subject"] == "Ihre Rechnung RE-2026-00042"
    audit = admin.call("GET", "/api/v1/settings/audit")[1]["entries"]
    assert audit[0]["action"] == "templates.set" and audit[0]["via"] == "api"
    assert audit[0]["who"].startswith("key settings:")


def test_a_hand_edit_of_the_file_is_picked_up_and_a_broken_one_keeps_the_old(
    admin: Client, send_client: Client, site: Path
) -> None:
    path = site / "ccm-mail.yaml"
    text = path.read_text("utf-8")
    path.write_text(text.replace("codicon GmbH / Rg.", "Per Hand / Rg."), "utf-8")
    time.sleep(1.1)
    assert send_client.call("POST", "/api/v1/send", invoice("RE-H1"))[0] == 200
    path.write_text(text.replace("language: de", "language: xx"), "utf-8")
    time.sleep(1.1)
    assert send_client.call("POST", "/api/v1/send", invoice("RE-H2"))[0] == 200
    subjects = sorted(m["Subject"] for m in sent_mails(site))
    assert subjects == ["Per Hand / Rg. RE-H1", "Per Hand / Rg. RE-H2"]
    check = admin.call("GET", "/api/v1/settings/check")[1]
    assert check["ok"] is False and check["problems"][0]["key"] == "language"


def test_a_settings_change_with_errors_lists_every_problem_and_changes_nothing(admin: Client, site: Path) -> None:
    before = (site / "ccm-mail.yaml").read_bytes()
    status, body, _ = admin.call(
        "PUT", "/api/v1/settings/accounts/Zweit", {"type": "pickup", "values": {"sender": "kaputt", "colour": "blau"}}
    )
    assert status == 422
    assert {p["key"] for p in body["problems"]} >= {
        "accounts.Zweit.sender",
        "accounts.Zweit.folder",
        "accounts.Zweit.colour",
    }
    assert (site / "ccm-mail.yaml").read_bytes() == before
    status, body, _ = admin.call("PUT", "/api/v1/settings/purposes/invoice", {"accounts": ["Gibtsnicht"]})
    assert status == 422 and body["problems"][0]["key"] == "purposes.invoice"
    assert (site / "ccm-mail.yaml").read_bytes() == before
    assert admin.call("GET", "/api/v1/settings/audit")[1]["entries"] == []


def test_settings_document_shows_secrets_only_by_source(admin: Client) -> None:
    status, body, _ = admin.call("GET", "/api/v1/settings")
    assert status == 200
    assert body["purposes"] == {"invoice": ["Rechnungsversand"]}
    assert body["accounts"]["Rechnungsversand"]["folder"] == "out"


def test_the_openapi_description_is_valid_and_describes_every_route(send_client: Client, url: str) -> None:
    from openapi_spec_validator import validate

    status, doc, _ = send_client.call("GET", "/api/v1/openapi.json")
    assert status == 200
    validate(doc)
    served = _served_routes()
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert served == described
    anonymous = {"/api/v1/health", "/api/v1/session/token"}  # the login link's token is its own credential
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path not in anonymous:
                assert op["x-scope"] in ("send", "settings"), (path, method)
            else:
                assert op["security"] == [] and "x-scope" not in op, (path, method)


def _served_routes() -> set[tuple[str, str]]:
    """The app's own routes, in OpenAPI's path syntax."""
    import re

    from ccm_mail_server import app as app_module

    class _Dummy:
        settings = type("S", (), {"max_request_bytes": 1, "tls": False})()
        mailer = None

    flask_app = app_module.create_app(_Dummy())  # type: ignore[arg-type]
    routes = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                routes.add((path, method))
    return routes


def test_scopes_in_the_description_match_the_app() -> None:
    import re

    from ccm_mail_server import app as app_module
    from ccm_mail_server.openapi import document

    class _Dummy:
        settings = type("S", (), {"max_request_bytes": 1, "tls": False})()
        mailer = None

    flask_app = app_module.create_app(_Dummy())  # type: ignore[arg-type]
    doc = document()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = flask_app.view_functions[rule.endpoint]
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            op = doc["paths"][path][method.lower()]
            assert op.get("x-scope") == getattr(view, "scope", None), (path, method)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_every_answer_is_ascii_json(send_client: Client, lang: str) -> None:
    status, body, headers = send_client.call(
        "POST", "/api/v1/send", invoice(to=["ä@ö"]), headers={"Accept-Language": lang}
    )
    assert headers["Content-Type"].startswith("application/json")
    assert json.dumps(body, ensure_ascii=True).isascii()


def test_many_requests_bringing_the_same_new_attachment_at_once(send_client: Client, site: Path) -> None:
    """Found by benchmark 6d: writers of one new attachment shared a temporary file name."""
    import threading

    fresh = attachment("Neu.pdf", PDF + b"fresh")
    answers: list[int] = []

    def one(i: int) -> None:
        answers.append(send_client.call("POST", "/api/v1/send", invoice(f"RE-T-{i}", attachments=[fresh]))[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 12
    assert len(sent_mails(site)) == 12
