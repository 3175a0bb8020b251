"""Unit tests that need no server: configuration, validation, payload, retry timing, error texts."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from ccm_mail_hookspecs import (
    AccessDeniedError,
    AccountSettings,
    Address,
    Attachment,
    AuthenticationError,
    MailboxError,
    Message,
    MessageTooLargeError,
    RecipientError,
    ThrottledError,
    TransportError,
)
from ccm_mail_hookspecs.http import Outcome, classify_status

from ccm_mail_office365 import errors, payload
from ccm_mail_office365.account_type import ACCOUNT_TYPE, FIELDS, validate
from ccm_mail_office365.config import Office365Config
from ccm_mail_office365.throttle import backoff_delay, for_graph, is_throttled

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def good_values(**over: object) -> dict[str, object]:
    values: dict[str, object] = {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "mailbox": "rechnung@firma.example",
        "client_secret": "s3cr3t~value.with.chars",
    }
    values.update(over)
    return values


def test_fields_have_german_and_english_labels() -> None:
    names = [f.name for f in FIELDS]
    assert names[:4] == ["tenant_id", "client_id", "mailbox", "client_secret"]
    for f in FIELDS:
        assert f.label.de and f.label.en
        assert f.help is not None and f.help.de and f.help.en, f.name
    assert {f.name for f in FIELDS if f.secret} == {"client_secret", "certificate_password"}
    assert ACCOUNT_TYPE.to_dict("de")["fields"][0]["label"] == "Mandanten-ID"
    assert set(ACCOUNT_TYPE.actions) == {"consent", "test_mail"}


def test_validate_accepts_good_values() -> None:
    assert validate(good_values()) == []
    assert validate(good_values(tenant_id="firma.onmicrosoft.com")) == []


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"tenant_id": "not a tenant"}, "tenant_id"),
        ({"tenant_id": "common"}, "tenant_id"),
        ({"client_id": "1234"}, "client_id"),
        ({"mailbox": "kein-at-zeichen"}, "mailbox"),
        ({"client_secret": ""}, "client_secret"),
        ({"client_secret": CLIENT}, "client_secret"),  # secret ID pasted instead of the value
        ({"certificate": "/nonexistent.pem"}, "client_secret"),  # both given
        ({"certificate_password": "x"}, "certificate_password"),
        ({"thumbprint": "zz"}, "thumbprint"),
        ({"cloud": "mars"}, "cloud"),
        ({"authority_host": "http://insecure"}, "authority_host"),
        ({"max_concurrency": 9}, "max_concurrency"),
        ({"consent_redirect_uri": "https://evil.example/"}, "consent_redirect_uri"),
    ],
)
def test_validate_reports_field_with_de_en_text(over: dict[str, object], field: str) -> None:
    problems = validate(good_values(**over))
    assert field in [f for f, _ in problems]
    for _, text in problems:
        assert text.de and text.en


def settings(tmp_path: Path, **over: object) -> AccountSettings:
    return AccountSettings(
        "rechnung", "office365", good_values(**over), tmp_path, "de", frozenset({"client_secret", "certificate_password"})
    )


def test_config_endpoints_follow_cloud(tmp_path: Path) -> None:
    c = Office365Config.from_settings(settings(tmp_path, cloud="usgov_dod"))
    assert c.authority == f"https://login.microsoftonline.us/{TENANT}"
    assert c.graph_base == "https://dod-graph.microsoft.us/v1.0"
    assert c.scope == "https://dod-graph.microsoft.us/.default"
    # explicit endpoints (sandbox) replace the hosts but not the resource the token is for
    c = Office365Config.from_settings(
        settings(tmp_path, authority_host="https://127.0.0.1:1/", graph_endpoint="https://127.0.0.1:2")
    )
    assert c.authority == f"https://127.0.0.1:1/{TENANT}"
    assert c.graph_base == "https://127.0.0.1:2/v1.0"
    assert c.scope == "https://graph.microsoft.com/.default"
    assert "s3cr3t" not in repr(c)


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "throttled"),
    [
        (202, None, Outcome.SENT, False),
        (200, None, Outcome.SENT, False),
        (204, None, Outcome.SENT, False),
        (429, None, Outcome.NOT_SENT, True),
        (429, "7", Outcome.NOT_SENT, True),
        (503, "7", Outcome.NOT_SENT, True),
        (504, "7", Outcome.NOT_SENT, True),  # Graph: throttled, replayed
        (503, None, Outcome.UNKNOWN, False),
        (504, None, Outcome.UNKNOWN, False),  # a gateway may have forwarded it
        (500, None, Outcome.UNKNOWN, False),
        (502, None, Outcome.UNKNOWN, False),
        (500, "7", Outcome.UNKNOWN, False),
        (400, None, Outcome.NOT_SENT, False),
        (413, None, Outcome.NOT_SENT, False),
    ],
)
def test_graph_rule_for_each_status(status: int, retry_after: str | None, outcome: Outcome, throttled: bool) -> None:
    """The plugin API's table with Graph's one row of its own (504 with Retry-After: throttled);
    the parsing of Retry-After itself is the helper's and tested with it."""
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
    headers = {"Retry-After": retry_after} if retry_after else {}
    verdict = for_graph(classify_status(status, headers, now=now))
    assert (verdict.outcome, is_throttled(verdict)) == (outcome, throttled)
    if throttled and retry_after:
        assert verdict.retry_after == 7.0
    dated = for_graph(classify_status(504, {"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now=now))
    assert is_throttled(dated) and dated.retry_after == 30.0


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, rng=rng) for n in range(8)]
    for n, d in enumerate(delays):
        ceiling = min(32.0, 2.0**n)
        assert ceiling / 2 <= d <= ceiling
    assert len({round(backoff_delay(3, rng=rng), 6) for _ in range(10)}) > 1, "no jitter"


def test_payload_maps_all_fields(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 x")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")
    msg = Message(
        subject="Rg. 4711",
        to=[Address("kunde@example.com", "Kunde Müller")],
        sender=Address("rechnung@firma.example", "Firma GmbH"),
        cc=[Address("cc@example.com", "Kopie")],
        bcc=[Address("bcc@example.com")],
        reply_to=[Address("antwort@firma.example", "Büro")],
        text=None,
        html="<img src='cid:logo'>",
        attachments=[Attachment(tmp_path / "a.pdf"), Attachment(tmp_path / "logo.png", inline=True, content_id="logo")],
        headers={"X-AbSys-Rechnung": "4711"},
        message_id="<abc@ccm-mail.test>",
    )
    p = payload.plan(msg, "rechnung@firma.example")
    assert p.route == "sendMail" and len(p.inline_attachments) == 2
    msg.text = "t"  # with its own text alternative it goes as MIME
    assert payload.plan(msg, "rechnung@firma.example").route == "mime"
    msg.text = None
    j = payload.message_json(msg, "rechnung@firma.example")
    assert j["body"] == {"contentType": "HTML", "content": "<img src='cid:logo'>"}
    assert j["toRecipients"] == [{"emailAddress": {"address": "kunde@example.com", "name": "Kunde Müller"}}]
    assert j["bccRecipients"] == [{"emailAddress": {"address": "bcc@example.com"}}]
    assert j["replyTo"][0]["emailAddress"]["name"] == "Büro"
    assert j["internetMessageId"] == "<abc@ccm-mail.test>"
    assert j["internetMessageHeaders"] == [{"name": "X-AbSys-Rechnung", "value": "4711"}]
    inline = payload.file_attachment(msg.attachments[1])
    assert inline["isInline"] is True and inline["contentId"] == "logo"
    assert inline["contentType"] == "image/png"
    with pytest.raises(TransportError):
        payload.message_json(Message(subject="s", to=msg.to, headers={"Subject2": "x"}), "a@b.de")


def test_plan_uses_upload_session_for_large_files(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(3 * 1024 * 1024 - 1)  # ~4.19 MB once base64-encoded: more than one request takes
    many = []
    for n in range(3):  # three 1.5 MB files: each small, together above the 4 MB request limit
        f = tmp_path / f"f{n}.bin"
        f.write_bytes(b"\0" * 1_500_000)
        many.append(Attachment(f))
    to = [Address("k@example.com")]
    p = payload.plan(Message("s", to, attachments=[Attachment(big)]), "a@b.de")
    assert p.route == "draft" and p.upload_attachments == (Attachment(big),)
    p = payload.plan(Message("s", to, attachments=many), "a@b.de")
    assert p.route == "draft" and not p.upload_attachments


def fake_response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    resp.headers.update(headers or {})
    resp.url = "https://graph.microsoft.com/v1.0/users/x/sendMail"
    return resp


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (403, "ErrorAccessDenied", AccessDeniedError),
        (404, "ErrorInvalidUser", MailboxError),
        (404, "MailboxNotEnabledForRESTAPI", MailboxError),
        (403, "ErrorSendAsDenied", MailboxError),
        (413, "RequestEntityTooLarge", MessageTooLargeError),
        (400, "ErrorMessageSizeExceeded", MessageTooLargeError),
        (400, "ErrorInvalidRecipients", RecipientError),
        (400, "SomethingNew", TransportError),
    ],
)
def test_graph_errors_carry_ids(status: int, code: str, cls: type[TransportError]) -> None:
    resp = fake_response(
        status,
        {
            "error": {
                "code": code,
                "message": "m",
                "innerError": {"request-id": "req-1", "client-request-id": "cr-1", "date": "2026-11-29T12:00:00"},
            }
        },
    )
    err = errors.from_graph_response(resp)
    assert type(err) is cls
    assert err.details["request_id"] == "req-1"
    assert "request_id=req-1" in err.render("de") and "request_id=req-1" in err.render("en")
    assert err.message.de != err.message.en


@pytest.mark.parametrize(
    ("code", "cls", "word"),
    [
        (7000215, AuthenticationError, "Wert"),
        (7000222, AuthenticationError, "abgelaufen"),
        (700016, AuthenticationError, "Anwendungs-ID"),
        (90002, AuthenticationError, "Cloud"),
        (65001, AccessDeniedError, "Admin Berechtigung erteilen"),
        (50196, ThrottledError, "Token"),
    ],
)
def test_token_errors_carry_trace_and_correlation(code: int, cls: type[TransportError], word: str) -> None:
    result = {
        "error": "invalid_client",
        "error_codes": [code],
        "trace_id": "tr-1",
        "correlation_id": "co-1",
        "error_description": f"AADSTS{code}: text. Trace ID: tr-1 Correlation ID: co-1 Timestamp: x",
    }
    err = errors.from_token_result(result, secrets=["s3cr3t"])
    assert type(err) is cls
    assert word in err.render("de")
    assert "trace_id=tr-1" in err.render("en") and "correlation_id=co-1" in err.render("en")
    assert err.details["code"] == f"AADSTS{code}"


def test_redact_hides_secrets_in_microsoft_texts() -> None:
    result = {"error": "invalid_client", "error_description": "AADSTS7000215: got s3cr3t-value back"}
    err = errors.from_token_result(result, secrets=["s3cr3t-value"])
    assert "s3cr3t-value" not in json.dumps(err.to_dict("en")) + err.render("de")


def test_missing_certificate_file_is_explained(tmp_path: Path) -> None:
    from ccm_mail_office365.credentials import client_credential

    c = Office365Config.from_settings(settings(tmp_path, client_secret="", certificate=str(tmp_path / "no.pem")))
    with pytest.raises(AuthenticationError, match="nicht lesbar"):
        client_credential(c)
