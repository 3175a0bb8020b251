"""One language on every line (field defects 15 and 29): the config's ``language`` is what the CLI
speaks unless ``--lang`` or ``CCM_MAIL_LANG`` say otherwise; purposes, states, history notes and
argparse's own messages follow it."""

from __future__ import annotations

import dataclasses
import json

from ccm_mail_core import owner
from ccm_mail_core.journal import message_to_json
from ccm_mail_core.outbox import Outbox
from ccm_mail_hookspecs import Address, Message, Status, Transport, hookimpl

from host_support import BASE_CONFIG, run_cli

ENGLISH = BASE_CONFIG.replace("language: de", "language: en")
SEND = (
    "send",
    "--purpose",
    "invoice",
    "--to",
    "kunde@example.de",
    "--field",
    "extRechnungsNr=RE-1",
    "--field",
    "Anrede=Hallo",
    "--field",
    "Betrag=1 €",
)


def test_config_language_is_the_clis_language(write_config, workdir) -> None:
    write_config(ENGLISH)
    sent = run_cli(*SEND, "--yes", cwd=workdir)
    assert sent.returncode == 0 and sent.stdout.startswith("Sent at "), sent.stdout
    journal = run_cli("journal", cwd=workdir)
    assert "invoice sending (invoice)" in journal.stdout and " sent " in journal.stdout
    check = run_cli("config", "check", cwd=workdir)
    assert ": OK (1 accounts)." in check.stdout
    usage = run_cli("send", "--to", "x@example.de", cwd=workdir)
    assert usage.returncode == 2 and "the following arguments are required" in usage.stderr


def test_lang_option_and_environment_beat_the_config(write_config, workdir) -> None:
    write_config(ENGLISH)
    assert "in Ordnung" in run_cli("config", "check", "--lang", "de", cwd=workdir).stdout
    assert "in Ordnung" in run_cli("config", "check", cwd=workdir, env={"CCM_MAIL_LANG": "de"}).stdout


def test_argparse_speaks_german(write_config, workdir) -> None:
    write_config()
    usage = run_cli("send", "--to", "x@example.de", cwd=workdir)
    assert usage.returncode == 2
    assert "Aufruf: ccm-mail send" in usage.stderr and "Fehler: folgende Angaben fehlen: --purpose/-p" in usage.stderr
    assert usage.stderr.count("Aufruf:") == 1  # a subcommand's usage said "Aufruf: Aufruf:"
    bad = run_cli("journal", "--status", "weg", cwd=workdir)
    assert "ungültige Auswahl 'weg'" in bad.stderr
    helptext = run_cli("send", "--help", cwd=workdir)
    assert "Optionen:" in helptext.stdout and "diese Hilfe zeigen" in helptext.stdout
    assert "show this help" not in helptext.stdout and "options:" not in helptext.stdout
    as_json = run_cli("send", "--json", cwd=workdir)
    error = json.loads(as_json.stdout)["error"]
    assert as_json.returncode == 2 and error["kind"] == "usage" and "folgende Angaben fehlen" in error["message"]


def test_the_german_dialog_names_the_purpose(make_mailer, workdir) -> None:
    make_mailer()
    preview = run_cli("preview", *SEND[1:], cwd=workdir)
    assert "Zweck     Rechnungsversand (invoice)" in preview.stdout


def test_outbox_resolve_speaks_the_configs_language(make_mailer, workdir) -> None:
    """Defect 29: states and history notes are German under ``language: de``."""
    mailer = make_mailer()
    row = mailer.journal.create(
        message_id="<x@codicon.de>",
        purpose="invoice",
        account="Rechnungsversand",
        account_type="pickup",
        reference="RE-9",
        recipients=["a@example.de"],
        subject="s",
    )
    mailer.journal.transition(row, Status.SENDING, expect=(Status.QUEUED,))
    mailer.journal.transition(row, Status.UNKNOWN, error="weg", error_kind="interrupted")
    mailer.close()
    proc = run_cli("outbox", "resolve", str(row), "sent", cwd=workdir)
    assert proc.returncode == 0 and proc.stdout.strip() == f"Eintrag {row}: gesendet."
    history = run_cli("journal", "--id", str(row), cwd=workdir).stdout
    assert "vom Bediener als gesendet bestätigt" in history and "marked as sent" not in history
    assert "unklar" in history and "gesendet" in history


class NoLookup:
    """An account type whose transport cannot look messages up (as SMTP)."""

    @hookimpl
    def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
        from ccm_mail_core.builtins.pickup_folder import ACCOUNT_TYPE, PickupTransport

        class Blind(PickupTransport):
            def lookup(self, message):  # type: ignore[no-untyped-def]
                return Transport.lookup(self, message)

        register(dataclasses.replace(ACCOUNT_TYPE, id="blind", create_transport=Blind))


def test_interrupted_send_that_cannot_be_looked_up_asks_the_operator(make_mailer, workdir) -> None:
    """Defect 29: nothing will "check the outcome" for a transport without lookup: say what to do."""
    mailer = make_mailer(BASE_CONFIG.replace("type: pickup", "type: blind"), plugins={"blind": NoLookup()})
    row = mailer.journal.create(
        message_id="<y@codicon.de>",
        purpose="invoice",
        account="Rechnungsversand",
        account_type="blind",
        reference="RE-8",
        recipients=["a@example.de"],
        subject="s",
        payload=message_to_json(Message("s", [Address("a@example.de")], text="t", message_id="<y@codicon.de>")),
    )
    mailer.journal.transition(row, Status.SENDING, owner="somehost-gone:1:1.00", expect=(Status.QUEUED,))
    mailer.journal.transition(row, Status.SENDING, owner=f"{owner.current().host}:999999999:1.00")
    summary = Outbox(mailer).check()
    assert summary.operator == [row]
    entry = mailer.journal.get(row)
    assert entry.status is Status.UNKNOWN and "wird geprüft" not in (entry.error or "")
    assert f"ccm-mail outbox resolve {row} sent|resend|drop" in entry.error
    Outbox(mailer).check()
    assert [e["status"] for e in mailer.journal.events(row)].count("unknown") == 2  # said once, not on every look
