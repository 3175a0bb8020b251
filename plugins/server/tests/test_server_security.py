"""What a caller without the right key, or with a bad request, gets: the right 4xx, nothing sent,
nothing changed, and never a secret in any answer."""

from __future__ import annotations

import http.client
import json
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from server_support import Client, invoice, keys, sent_mails

SECRET = "Qw3~rT.y7U-iO_p9AsDf2GhJ"


def _unchanged(site: Path, before: bytes) -> None:
    assert (site / "ccm-mail.yaml").read_bytes() == before
    assert sent_mails(site) == []


def test_no_key_and_a_wrong_key_are_refused(url: str, site: Path) -> None:
    before = (site / "ccm-mail.yaml").read_bytes()
    anonymous = Client(url, None)
    for method, path, body in (
        ("POST", "/api/v1/send", invoice()),
        ("GET", "/api/v1/journal", None),
        ("GET", "/api/v1/openapi.json", None),
        ("GET", "/api/v1/settings", None),
        ("PUT", "/api/v1/settings/templates/invoice", {"subject": "x"}),
    ):
        status, answer, headers = anonymous.call(method, path, body)
        assert status == 401, (method, path, answer)
        assert answer["error"]["kind"] == "auth" and headers["WWW-Authenticate"].startswith("Bearer")
    real = keys(site)["send"]
    for wrong in (real[:-1], real + "x", "ccm_send_" + "A" * 43, "", " "):
        status, answer, _ = Client(url, wrong).call("POST", "/api/v1/send", invoice())
        assert status == 401 and answer["error"]["kind"] == "auth", wrong
    status, answer, _ = anonymous.call(
        "POST", "/api/v1/send", invoice(), headers={"Authorization": "Basic Zm9vOmJhcg=="}
    )
    assert status == 401
    _unchanged(site, before)


def test_a_send_key_cannot_read_or_change_settings_or_secrets(send_client: Client, site: Path) -> None:
    before = (site / "ccm-mail.yaml").read_bytes()
    for method, path, body in (
        ("GET", "/api/v1/settings", None),
        ("GET", "/api/v1/settings/check", None),
        ("GET", "/api/v1/settings/audit", None),
        ("GET", "/api/v1/accounts", None),
        ("PUT", "/api/v1/settings/accounts/Neu", {"type": "pickup"}),
        ("DELETE", "/api/v1/settings/accounts/Rechnungsversand", None),
        ("PUT", "/api/v1/settings/purposes/invoice", {"accounts": ["Rechnungsversand"]}),
        ("PUT", "/api/v1/settings/templates/invoice", {"subject": "gekapert"}),
        ("POST", "/api/v1/accounts/Rechnungsversand/test", None),
        ("POST", "/api/v1/accounts/Rechnungsversand/consent", None),
    ):
        status, answer, _ = send_client.call(method, path, body)
        assert status == 403 and answer["error"]["kind"] == "forbidden", (method, path)
    _unchanged(site, before)


def test_bad_bodies_get_4xx_and_send_nothing(send_client: Client, site: Path) -> None:
    before = (site / "ccm-mail.yaml").read_bytes()
    status, answer, _ = send_client.call("POST", "/api/v1/send", raw=b'{"purpose": "invoice", "to": [')
    assert status == 400 and answer["error"]["kind"] == "bad_request"
    status, answer, _ = send_client.call("POST", "/api/v1/send", raw=b"\xff\xfe not json")
    assert status == 400
    status, answer, _ = send_client.call("POST", "/api/v1/send", raw=b'["a list"]')
    assert status == 400
    status, answer, _ = send_client.call("POST", "/api/v1/send", {**invoice(), "tos": ["x@y.de"], "yes": "ja"})
    assert status == 422 and set(answer["error"]["details"]["problems"]) == {
        "tos: unbekanntes Feld / unknown field",
        "yes: falscher Typ / wrong type",
    }
    big = invoice()
    big["data"]["Anrede"] = "x" * (2 * 1024 * 1024 + 512 * 1024)  # the test config allows 2 MB
    status, answer, _ = send_client.call("POST", "/api/v1/send", big)
    assert status == 413 and answer["error"]["kind"] == "too_large"
    assert send_client.call("DELETE", "/api/v1/send")[0] == 405
    _unchanged(site, before)


def test_an_oversized_chunked_body_is_refused_like_a_declared_one(url: str, send_client: Client, site: Path) -> None:
    """Without Content-Length the limit still holds: 413, nothing sent, nothing changed."""
    before = (site / "ccm-mail.yaml").read_bytes()
    parts = urlsplit(url)
    body = json.dumps({**invoice(), "data": {**invoice()["data"], "Anrede": "x" * (3 * 1024 * 1024)}}).encode()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", "/api/v1/send")
    conn.putheader("Authorization", f"Bearer {keys(site)['send']}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for i in range(0, len(body), 65536):
            piece = body[i : i + 65536]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 413 and answer["error"]["kind"] == "too_large", answer
    assert sent_mails(site) == []
    _unchanged(site, before)


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..\\..\\boot.ini", "C:\\Windows\\win.ini", "/etc/passwd", "..", "a\nb.pdf", "CON<1>.pdf"],
)
def test_attachment_names_cannot_leave_the_store(send_client: Client, site: Path, name: str) -> None:
    status, answer, _ = send_client.call(
        "POST", "/api/v1/send", invoice(attachments=[{"filename": name, "content_base64": "JVBERi0="}])
    )
    assert status == 422 and answer["error"]["kind"] == "attachment", answer
    assert sent_mails(site) == []


def test_a_server_side_path_outside_the_allowed_folders_is_refused(send_client: Client, site: Path) -> None:
    secret_file = site / "ccm-mail.yaml"
    for given in (str(secret_file), str(site / "state" / ".." / "ccm-mail.yaml"), "ccm-mail.yaml"):
        status, answer, _ = send_client.call("POST", "/api/v1/send", invoice(attachments=[{"path": given}]))
        assert status == 422 and answer["error"]["kind"] == "attachment"
    assert sent_mails(site) == []


def test_path_tricks_in_the_url_find_nothing(url: str, site: Path) -> None:
    key = keys(site)["settings"]
    parts = urlsplit(url)
    for raw_path in (
        "/api/v1/../../ccm-mail.yaml",
        "/api/v1/settings/accounts/..%2F..%2Fx",
        "/api/v1/settings/accounts/%2e%2e",
        "/api/v1/journal/1%20OR%201=1",
        "/api/v2/send",
        "//api/v1/settings",
    ):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request(
            "PUT" if "accounts" in raw_path else "GET",
            raw_path,
            body=b'{"type": "pickup"}',
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status in (400, 404, 405, 422), (raw_path, resp.status, body)
        assert b"von Hand gepflegt" not in body
    assert "Neu" not in (site / "ccm-mail.yaml").read_text("utf-8")


def test_no_secret_in_any_answer_the_log_or_the_audit(
    admin: Client, send_client: Client, site: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    env_key = keys(site)
    answers = []
    status, answer, _ = admin.call(
        "PUT",
        "/api/v1/settings/accounts/Postfach",
        {"type": "smtp", "values": {"host": "smtp.codicon.de", "sender": "p@codicon.de", "password": SECRET}},
    )
    answers.append(answer)
    assert status == 422  # a secret as a plain value is refused (the smtp type is not loaded here either)
    status, answer, _ = admin.call("PUT", "/api/v1/settings/accounts/Rechnungsversand", {"secrets": {"folder": SECRET}})
    answers.append(answer)
    assert status == 422
    for path in ("/api/v1/settings", "/api/v1/accounts", "/api/v1/settings/audit", "/api/v1/openapi.json"):
        answers.append(admin.call("GET", path)[1])
    answers.append(send_client.call("POST", "/api/v1/send", invoice(data={"Anrede": env_key["send"]}))[1])
    text = json.dumps(answers) + capfd.readouterr().err
    assert SECRET not in text
    assert env_key["send"] not in text and env_key["settings"] not in text
    assert SECRET.encode() not in (site / "ccm-mail.yaml").read_bytes()


def test_keys_are_owner_only_and_rotation_locks_the_old_key_out(url: str, site: Path) -> None:
    if os.name == "posix":
        for scope in ("send", "settings"):
            assert stat.S_IMODE((site / "keys" / f"{scope}.key").stat().st_mode) == 0o600
    from ccm_mail_server.keys import KeyStore

    old = keys(site)["send"]
    assert Client(url, old).call("GET", "/api/v1/journal")[0] == 200
    new = KeyStore("file", site / "keys").rotate("send")
    assert Client(url, old).call("GET", "/api/v1/journal")[0] == 401
    assert Client(url, new).call("GET", "/api/v1/journal")[0] == 200


def test_a_session_made_from_a_key_ends_when_the_key_is_rotated(url: str, site: Path) -> None:
    """A leaked key turned into an 8-hour browser session outlived 'serve --new-key settings'."""
    from ccm_mail_server.keys import KeyStore

    status, _, headers = Client(url, keys(site)["settings"]).call("POST", "/api/v1/session")
    assert status == 200
    cookie = {"Cookie": headers["Set-Cookie"].split(";")[0]}
    browser = Client(url, None)
    assert browser.call("GET", "/api/v1/settings", headers=cookie)[0] == 200
    new = KeyStore("file", site / "keys").rotate("settings")
    status, answer, _ = browser.call("GET", "/api/v1/settings", headers=cookie)
    assert status == 401 and answer["error"]["kind"] == "auth", answer
    assert Client(url, new).call("GET", "/api/v1/settings")[0] == 200


def test_a_browser_session_needs_the_csrf_token_for_changes(url: str, site: Path) -> None:
    admin = Client(url, keys(site)["settings"])
    status, answer, headers = admin.call("POST", "/api/v1/session")
    assert status == 200 and answer["scope"] == "settings"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/;" in cookie + ";"
    session = cookie.split(";")[0]
    browser = Client(url, None)
    status, _, _ = browser.call("GET", "/api/v1/settings", headers={"Cookie": session})
    assert status == 200
    before = (site / "ccm-mail.yaml").read_bytes()
    status, answer, _ = browser.call(
        "PUT", "/api/v1/settings/templates/invoice", {"subject": "x #extRechnungsNr#"}, headers={"Cookie": session}
    )
    assert status == 403 and answer["error"]["kind"] == "csrf"
    assert (site / "ccm-mail.yaml").read_bytes() == before
    status, _, _ = browser.call(
        "PUT",
        "/api/v1/settings/templates/invoice",
        {"subject": "x #extRechnungsNr#"},
        headers={"Cookie": session, "X-CSRF-Token": answer and "falsch"},
    )
    assert status == 403
    token = admin.call("POST", "/api/v1/session")[1]["csrf_token"]  # a second session, its own token
    status, _, _ = browser.call(
        "PUT",
        "/api/v1/settings/templates/invoice",
        {"subject": "x #extRechnungsNr#"},
        headers={"Cookie": session, "X-CSRF-Token": token},
    )
    assert status == 403
    status, created, headers2 = admin.call("POST", "/api/v1/session")
    own = headers2["Set-Cookie"].split(";")[0]
    status, _, _ = browser.call(
        "PUT",
        "/api/v1/settings/templates/invoice",
        {"subject": "x #extRechnungsNr#"},
        headers={"Cookie": own, "X-CSRF-Token": created["csrf_token"]},
    )
    assert status == 200
    assert (
        browser.call("POST", "/api/v1/session", headers={"Cookie": own, "X-CSRF-Token": created["csrf_token"]})[0]
        == 401
    )  # a session does not make sessions


def test_binding_beyond_loopback_without_tls_is_refused(site: Path) -> None:
    from server_support import run_serve

    proc = run_serve(site, "--listen", "0.0.0.0:8410")
    assert proc.returncode == 2
    assert "TLS" in proc.stderr and "tls_cert" in proc.stderr and "nicht gestartet" in proc.stderr.lower()


def test_a_port_in_use_is_said_so(site: Path) -> None:
    """A second 'ccm-mail serve' (or 'make ui' twice): a usage error that says what to do, not an
    internal error for the support."""
    import socket

    from server_support import run_serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = run_serve(site, "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert proc.returncode == 2, proc.stderr
    assert "kann nicht auf 127.0.0.1:" in proc.stderr and "--listen" in proc.stderr
    assert "Interner Fehler" not in proc.stderr
