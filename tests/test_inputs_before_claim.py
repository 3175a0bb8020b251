"""Certainly-invalid input is refused before the journal claim (field defect 9): exit 2, nothing
journaled, nothing sent; only the transport's own request may end with an unknown outcome."""

from __future__ import annotations

import json
import os
import threading

import pytest

from ccm_mail_core.results import ExitCode
from ccm_mail_hookspecs import AttachmentError, ConfigError, Status, hookimpl

from host_support import INVOICE, run_cli

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
    "--yes",
)


@pytest.mark.parametrize("header", ["X-Absys: a\r\nBcc: evil@x.example", "X-Absys: a\nb", "X-Absys: a\x00b"])
def test_line_break_in_a_header_value_is_refused_before_the_claim(make_mailer, workdir, header) -> None:
    make_mailer()
    proc = run_cli(*SEND, "--header", header, cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG, proc.stderr
    assert "Zeilenumbruch" in proc.stderr and "X-Absys" in proc.stderr
    assert not (workdir / "journal.sqlite").exists() and not (workdir / "out").exists()


def test_line_break_in_an_attachment_name_is_refused(make_mailer, workdir) -> None:
    from ccm_mail_hookspecs import Attachment

    mailer = make_mailer()
    (workdir / "RE-1.pdf").write_bytes(b"%PDF-1.4\n")
    bad = Attachment(workdir / "RE-1.pdf", filename="RE-1.pdf\r\nContent-Type: text/html")
    with pytest.raises(AttachmentError) as err:
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, attachments=[bad], assume_yes=True)
    assert "Zeilenumbruch" in err.value.render("de") and "line break" in err.value.render("en")
    assert mailer.journal.query() == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_as_attachment_is_refused(make_mailer, workdir) -> None:
    make_mailer()
    proc = run_cli(*SEND, "--attach", "/dev/zero", cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG and "keine gewöhnliche Datei" in proc.stderr
    assert not (workdir / "journal.sqlite").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_a_fifo_as_attachment_is_refused_without_hanging(make_mailer, workdir) -> None:
    mailer = make_mailer()
    os.mkfifo(workdir / "pipe.pdf")
    done: list[BaseException] = []
    worker = threading.Thread(
        target=lambda: _catch(
            done,
            lambda: mailer.send(
                "invoice", to=["kunde@example.de"], data=INVOICE, attachments=[workdir / "pipe.pdf"], assume_yes=True
            ),
        ),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(workdir / "pipe.pdf", "wb"):
            pass
        pytest.fail("sending a FIFO as attachment hangs")
    assert isinstance(done[0], AttachmentError) and "Pipe" in done[0].render("de")
    assert mailer.journal.query() == []


def _catch(box: list[BaseException], call) -> None:  # type: ignore[no-untyped-def]
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - handed to the test thread
        box.append(exc)


class AddsBadHeader:
    """A prepare hook that adds what the caller could not: the same checks apply to it."""

    @hookimpl
    def ccm_mail_prepare(self, message, context):  # type: ignore[no-untyped-def]
        message.headers["X-Archiv"] = "ok\r\nBcc: evil@x.example"


def test_what_a_prepare_hook_adds_is_checked_like_the_callers_input(make_mailer, workdir) -> None:
    mailer = make_mailer(plugins={"adds": AddsBadHeader()})
    with pytest.raises(ConfigError, match="Zeilenumbruch"):
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert mailer.journal.query() == [] and not (workdir / "out").exists()


class Unexpected:
    """A transport that raises something that is not a ccm-mail error while sending."""

    @hookimpl
    def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
        from ccm_mail_hookspecs import AccountType, Field, T, Transport

        class Broken(Transport):
            def __init__(self, settings):  # type: ignore[no-untyped-def]
                pass

            def send(self, message):  # type: ignore[no-untyped-def]
                raise KeyError("surprise")

        register(
            AccountType(
                "broken", T("Kaputt", "Broken"), (Field("sender", T("Absender", "Sender"), kind="email"),), Broken
            )
        )


def test_only_the_transports_own_request_ends_unknown(make_mailer, workdir) -> None:
    from host_support import BASE_CONFIG

    mailer = make_mailer(
        BASE_CONFIG.replace("    type: pickup\n    folder: out\n", "    type: broken\n"),
        plugins={"broken": Unexpected()},
    )
    result = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert result.status is Status.UNKNOWN and result.exit_code == ExitCode.UNKNOWN
    assert "KeyError" in result.error.render("de")


@pytest.mark.parametrize("field", ["Anrede", "extRechnungsNr"])
def test_half_an_emoji_in_the_data_is_refused_before_the_claim(make_mailer, workdir, field) -> None:
    """A cut-off JSON escape (``\\ud83d`` alone) failed only in the transport: exit 4 'unknown'
    though nothing had left, and the invoice then counted as possibly sent (exit 5 ever after)."""
    make_mailer()
    data = '{"extRechnungsNr": "RE-S1", "Anrede": "Hallo", "Betrag": "1"}'.replace(
        f'"{field}": "', f'"{field}": "\\ud83d'
    )
    proc = run_cli(
        "send", "--purpose", "invoice", "--to", "k@example.de", "--data", "-", "--yes", cwd=workdir, stdin=data
    )
    assert proc.returncode == ExitCode.CONFIG and "kein gültiger Text" in proc.stderr, proc.stdout + proc.stderr
    assert not (workdir / "journal.sqlite").exists() and not (workdir / "out").exists()
    fixed = run_cli("send", "--purpose", "invoice", "--to", "k@example.de", "--data", "-", "--yes", cwd=workdir,
                    stdin=data.replace("\\ud83d", "\\ud83d\\ude00"))  # fmt: skip
    assert fixed.returncode == ExitCode.OK, fixed.stderr


def test_an_empty_attachment_is_refused_before_the_claim(make_mailer, workdir) -> None:
    """A 0-byte PDF went out without a word: AbSys had called before its export was written."""
    make_mailer()
    (workdir / "RE-1.pdf").write_bytes(b"")
    proc = run_cli(*SEND, "--attach", str(workdir / "RE-1.pdf"), cwd=workdir)
    assert proc.returncode == ExitCode.CONFIG and "ist leer (0 Byte)" in proc.stderr, proc.stdout + proc.stderr
    assert not (workdir / "journal.sqlite").exists() and not (workdir / "out").exists()


@pytest.mark.parametrize(
    "data", ['{"Anrede": {"a": 1}}', '{"Betrag": [1, 2]}', '{"extRechnungsNr": true}', '{"Betrag": NaN}']
)
def test_a_value_that_is_neither_text_nor_a_number_is_refused(make_mailer, workdir, data) -> None:
    """They went into the customer's mail as Python's spelling: {'a': 1}, [1, 2], True, nan."""
    make_mailer()
    fields = {"extRechnungsNr": "RE-J", "Anrede": "Hallo", "Betrag": "1", **json.loads(data)}
    stdin = json.dumps(fields)  # NaN stays NaN, as a careless JSON writer sends it
    proc = run_cli(
        "send", "--purpose", "invoice", "--to", "k@example.de", "--data", "-", "--yes", cwd=workdir, stdin=stdin
    )
    assert proc.returncode == ExitCode.CONFIG and "kein Text und keine Zahl" in proc.stderr, proc.stdout + proc.stderr
    assert not (workdir / "journal.sqlite").exists() and not (workdir / "out").exists()
