"""A plugin that tries hard to leak its secret (logs it, raises it, reports it) must not get it
into any output, log line, JSON answer or journal row: the host's redaction is the safety net."""

from __future__ import annotations

import json
import logging

import pytest

from host_support import BASE_CONFIG, INVOICE, make_dist, run_cli

SECRET = "Qx7~s3cr3t-Wert.NICHT-zeigen"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

LEAKY = f"""
import logging
import structlog
from datetime import datetime, timezone
from ccm_mail_hookspecs import (AccountType, CheckResult, Field, Receipt, T, Transport, TransportError, hookimpl)
CCM_MAIL_API = 1

class Leaky(Transport):
    def __init__(self, settings):
        self.key = settings.values["api_key"]
        self.mode = settings.values["mode"]
    def send(self, message):
        structlog.get_logger("leaky").warning("using key", key=self.key, header="Bearer {TOKEN}")
        logging.getLogger("leaky.std").warning("key=%s token={TOKEN}", self.key)
        if self.mode == "fail":
            raise TransportError(T("abgelehnt mit " + self.key, "refused with " + self.key),
                                 details={{"request_id": self.key}})
        return Receipt(datetime.now(timezone.utc), {{"echo": self.key}})
    def check(self):
        return CheckResult(False, (("key", False, T("Schlüssel " + self.key, "key " + self.key)),))

@hookimpl
def ccm_mail_account_types(register):
    register(AccountType("leaky", T("Leck", "Leaky"), (
        Field("sender", T("Absender", "Sender"), kind="email"),
        Field("mode", T("Modus", "Mode")),
        Field("api_key", T("Schlüssel", "Key"), secret=True)), Leaky))
"""


def config(mode: str, secret_ref: str) -> str:
    return (
        BASE_CONFIG.replace(
            "    type: pickup\n    folder: out\n", f"    type: leaky\n    mode: {mode}\n    api_key: {secret_ref}\n"
        )
        + "logging:\n  level: debug\n"
    )


@pytest.mark.parametrize(("how", "mode"), [("env", "fail"), ("file", "ok"), ("plain", "fail"), ("plain", "ok")])
def test_secret_never_appears_anywhere(workdir, tmp_path, mode, how) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-leaky", "ccm_mail_leaky", LEAKY, entry_name="leaky")
    (workdir / "key.txt").write_text(SECRET + "\n")
    (workdir / "key.txt").chmod(0o600)
    ref = {"env": "{env: LEAKY_KEY}", "file": "{file: key.txt}", "plain": json.dumps(SECRET)}[how]
    (workdir / "ccm-mail.yaml").write_text(config(mode, ref), encoding="utf-8")
    (workdir / "ccm-mail.yaml").chmod(0o600)
    (workdir / "invoice.json").write_text(json.dumps(INVOICE))
    env = {"LEAKY_KEY": SECRET}
    outputs = []
    for args in (
        ("config", "check"),
        ("accounts", "list"),
        ("accounts", "test", "Rechnungsversand"),
        ("send", "-p", "invoice", "--to", "k@example.de", "--data", "invoice.json", "--yes"),
        ("journal", "--id", "1"),
    ):
        for extra in ((), ("--json",), ("--log-format", "json")) if args[0] == "send" else ((), ("--json",)):
            proc = run_cli(*args, *extra, cwd=workdir, env=env, site=site)
            outputs.append((args, extra, proc.returncode, proc.stdout + proc.stderr))
    send_rc = [rc for args, extra, rc, _ in outputs if args[0] == "send" and extra == ()][0]
    assert send_rc == (0 if mode == "ok" else 1)
    everything = "\n".join(text for *_, text in outputs)
    assert "using key" in everything  # the plugin's log lines did reach the output ...
    assert "***" in everything  # ... with the secret blanked
    assert SECRET not in everything
    assert TOKEN not in everything
    assert SECRET.encode() not in (workdir / "journal.sqlite").read_bytes()
    wal = workdir / "journal.sqlite-wal"
    assert not wal.exists() or SECRET.encode() not in wal.read_bytes()


def test_account_settings_repr_hides_secrets() -> None:
    from pathlib import Path
    from ccm_mail_hookspecs import AccountSettings

    s = AccountSettings("a", "leaky", {"api_key": SECRET, "mode": "x"}, Path("."), secret_fields=frozenset({"api_key"}))
    assert SECRET not in repr(s) and "'mode': 'x'" in repr(s)


def test_stdlib_log_records_are_scrubbed(capsys) -> None:
    from ccm_mail_core import logging_setup
    from ccm_mail_hookspecs import redaction

    redaction.remember(SECRET)
    logging_setup.configure(fmt="json", level="info")
    logging.getLogger("msal.test").warning("client_secret=%s", SECRET)
    logging.getLogger("urllib3.test").warning("Authorization: Bearer %s", TOKEN)
    err = capsys.readouterr().err
    assert "client_secret=***" in err and SECRET not in err and TOKEN not in err
