"""The account form and its validation; the plugin registers through the hook like any plugin."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest
from ccm_mail_hookspecs import PROJECT_NAME, AccountType, ConfigError, spec
from ccm_mail_smtp import plugin
from ccm_mail_smtp.config import SmtpConfig
from ccm_mail_smtp.fields import FIELDS, validate

BASE = {"host": "smtp.office365.com", "sender": "rechnung@firma.example", "password": "x"}


def test_registers_through_the_hook() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(spec)
    pm.register(plugin)
    registered: list[AccountType] = []
    pm.hook.ccm_mail_account_types(register=registered.append)
    assert [t.id for t in registered] == ["smtp"]
    assert plugin.CCM_MAIL_API == 1


def test_every_field_has_german_and_english_label_and_help() -> None:
    for field in FIELDS:
        assert field.label.de and field.label.en, field.name
        assert field.help is not None and field.help.de and field.help.en, field.name
    assert {f.name for f in FIELDS if f.secret} == {"password", "client_secret"}


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "[::1]", "127.0.0.5"])
def test_plain_text_allowed_to_this_machine(host: str) -> None:
    assert validate({**BASE, "host": host, "security": "none", "auth": "none"}) == []


@pytest.mark.parametrize("host", ["smtp.office365.com", "10.0.0.1", "mail.localhost.example.com"])
def test_plain_text_refused_to_other_hosts(host: str) -> None:
    problems = validate({**BASE, "host": host, "security": "none"})
    assert [f for f, _ in problems] == ["security"]
    assert "localhost" in problems[0][1].de and "localhost" in problems[0][1].en


def test_xoauth2_needs_its_three_values() -> None:
    problems = validate({**BASE, "auth": "xoauth2", "password": None})
    assert sorted(f for f, _ in problems) == ["client_id", "client_secret", "tenant_id"]


def test_all_problems_at_once() -> None:
    problems = validate({"host": "", "port": "70000", "sender": "kein-at", "auth": "password", "timeout": "-1"})
    assert sorted(f for f, _ in problems) == ["host", "password", "port", "sender", "timeout"]


def test_missing_ca_file_is_a_config_problem(tmp_path: Path) -> None:
    problems = validate({**BASE, "ca_bundle": str(tmp_path / "fehlt.pem"), "authority_ca_bundle": str(tmp_path)})
    assert sorted(f for f, _ in problems) == ["authority_ca_bundle", "ca_bundle"]


def test_ca_file_that_is_no_certificate(tmp_path: Path) -> None:
    from ccm_mail_smtp.transport import SmtpTransport

    bogus = tmp_path / "ca.pem"
    bogus.write_text("kein Zertifikat")
    with pytest.raises(ConfigError) as info:
        SmtpTransport(SmtpConfig.from_values({**BASE, "ca_bundle": str(bogus)}))
    assert "PEM" in info.value.message.en


def test_config_defaults_and_secret_free_repr() -> None:
    cfg = SmtpConfig.from_values({**BASE, "password": "geheim-4711", "port": "", "timeout": None})
    assert (cfg.port, cfg.security, cfg.auth, cfg.username, cfg.timeout) == (
        587,
        "starttls",
        "password",
        "rechnung@firma.example",
        60.0,
    )
    assert "geheim-4711" not in repr(cfg)
    assert SmtpConfig.from_values({**BASE, "security": "tls"}).port == 465


def test_invalid_config_is_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        SmtpConfig.from_values({**BASE, "host": "smtp.example.com", "security": "none"})
    assert info.value.details["fields"] == ["security"]


def test_field_kinds_follow_the_values() -> None:
    """The host checks and converts each field by its declared kind: the timeout is seconds and
    may have a fraction, the port is a whole number."""
    kinds = {f.name: f.kind for f in FIELDS}
    assert kinds["port"] == "int" and kinds["timeout"] == "float"


@pytest.mark.parametrize(
    ("port", "timeout", "expected"),
    [
        (587, 2.5, (587, 2.5)),
        ("587", "2.5", (587, 2.5)),
        (" 587 ", 30, (587, 30.0)),
        (587.0, "0.5", (587, 0.5)),
    ],
)
def test_numbers_as_yaml_or_quoted_text(port: object, timeout: object, expected: tuple[int, float]) -> None:
    cfg = SmtpConfig.from_values({**BASE, "port": port, "timeout": timeout})
    assert (cfg.port, cfg.timeout) == expected
    assert type(cfg.port) is int and type(cfg.timeout) is float


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", True),
        ("port", "587.5"),
        ("port", 587.5),
        ("port", "0"),
        ("port", "zwei"),
        ("timeout", True),
        ("timeout", "inf"),
        ("timeout", "nan"),
        ("timeout", 0),
        ("timeout", "2,5"),
    ],
)
def test_numbers_that_are_refused(field: str, value: object) -> None:
    problems = validate({**BASE, field: value})
    assert [f for f, _ in problems] == [field]
    text = problems[0][1]
    assert text.de and text.en and text.de != text.en
