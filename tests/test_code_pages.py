"""Output that survives the German code pages AbSys captures it with (Windows host contract):
cp1252 on a pipe, cp850 in a console. Every command, with German, Polish and € data: the German
sentence arrives, nothing ends in UnicodeEncodeError, ``--json`` is ASCII and exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host_support import BASE_CONFIG, INVOICE, LOAD_PLUGINS

CUSTOMER = {"extRechnungsNr": "RE-2026-00042", "Anrede": "Sehr geehrter Herr Łukasz Żółć", "Betrag": "1.234,56 €"}
TO = "Łukasz Żółć <lukasz@example.pl>"


def ccm(workdir: Path, encoding: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONIOENCODING": encoding, LOAD_PLUGINS: ""}
    env.pop("PYTHONUTF8", None)
    proc = subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", *args],
        cwd=workdir,
        env=env,
        timeout=60,
        input=stdin.encode("utf-8") if stdin is not None else b"",
        capture_output=True,
    )
    return proc.returncode, proc.stdout.decode(encoding), proc.stderr.decode(encoding)


@pytest.fixture
def site(workdir: Path) -> Path:
    (workdir / "ccm-mail.yaml").write_text(
        BASE_CONFIG.replace("from_name: codicon GmbH", "from_name: Müller & Söhne €"), encoding="utf-8"
    )
    (workdir / "invoice.json").write_text(json.dumps(CUSTOMER, ensure_ascii=False), encoding="utf-8")
    (workdir / "b.jsonl").write_text(
        json.dumps({"to": TO, "data": dict(CUSTOMER, extRechnungsNr="RE-2")}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return workdir


@pytest.mark.parametrize("encoding", ["cp1252", "cp850"])
def test_every_command_speaks_german_in_a_german_code_page(site: Path, encoding: str) -> None:
    send = ("--purpose", "invoice", "--to", TO, "--data", "invoice.json")
    human = [
        (("config", "check"), "in Ordnung"),
        (("plugins",), "eingebaut"),
        (("accounts", "list"), "Rechnungsversand"),
        (("accounts", "types"), "Abholordner"),
        (("accounts", "test", "Rechnungsversand"), "Verbindung in Ordnung."),
        (("placeholders", "--purpose", "invoice"), "Externe Rechnungsnummer"),
        (("preview", *send), "Betreff"),
        (("send", *send, "--yes"), "Gesendet am"),
        (("journal",), "Versanddatum"),
        (("batch", "b.jsonl", "--purpose", "invoice", "--yes"), "Stapel"),
        (("outbox",), "Postausgang leer."),
    ]
    for args, sentence in human:
        code, out, err = ccm(site, encoding, *args)
        assert code == 0 and sentence in out, (args, code, out, err)
        assert "UnicodeEncodeError" not in out + err and "Interner Fehler" not in err, (args, err)
    code, out, err = ccm(site, encoding, "send", *send, "--yes")
    assert code == 5 and "bereits im Journal" in err and "Hinweis: Mit --resend" in err
    code, out, _ = ccm(site, encoding, "preview", *send, "--json")
    assert code == 0 and out.isascii() and json.loads(out)["to"] == [TO]
    assert (
        "Łukasz Żółć" in json.loads(out)["text"] and json.loads(out)["from"] == "Müller & Söhne € <rechnung@codicon.de>"
    )


@pytest.mark.parametrize("encoding", ["cp1252", "cp850"])
def test_a_failed_send_says_why_in_german(site: Path, encoding: str) -> None:
    (site / "blocked").write_text("a file where the folder should be", encoding="utf-8")
    (site / "ccm-mail.yaml").write_text(BASE_CONFIG.replace("folder: out", "folder: blocked/out"), encoding="utf-8")
    code, out, err = ccm(site, encoding, "send", "--purpose", "invoice", "--to", TO, "--data", "invoice.json", "--yes")
    assert code == 1, (out, err)
    assert "NICHT gesendet" in err and "Abholordner" in err and "nicht beschreibbar" in err
    code, out, _ = ccm(site, encoding, "journal", "--json")
    entry = json.loads(out)["entries"][0]
    assert out.isascii() and entry["status"] == "failed" and entry["recipients"] == ["lukasz@example.pl"]


def test_data_from_stdin_is_utf8_whatever_the_code_page(site: Path) -> None:
    code, out, err = ccm(
        site,
        "cp1252",
        "preview",
        "--purpose",
        "invoice",
        "--to",
        TO,
        "--data",
        "-",
        "--json",
        stdin=json.dumps(CUSTOMER, ensure_ascii=False),
    )
    assert code == 0, err
    assert "Herr Łukasz Żółć" in json.loads(out)["text"] and "1.234,56 €" in json.loads(out)["text"]


def test_a_reader_that_goes_away_does_not_turn_a_sent_invoice_into_exit_1(tmp_path) -> None:
    """AbSys (or ``| head -c1``) closes its end of stdout early: the mail is sent, so the exit
    code stays 0, with no traceback."""
    (tmp_path / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    env = {**os.environ, "CCM_MAIL_LOAD_PLUGINS": ""}
    cmd = [sys.executable, "-m", "ccm_mail_core.cli", "send", "--purpose", "invoice", "--to", "k@example.de",
           "--data", "-", "--yes", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # type: ignore[union-attr]  # the reader is gone before the answer comes
    _, err = proc.communicate(json.dumps(INVOICE).encode("utf-8"), timeout=60)
    assert proc.returncode == 0, err.decode("utf-8", "replace")
    assert b"Traceback" not in err and len(list((tmp_path / "out").glob("*.eml"))) == 1


@pytest.mark.skipif(os.name != "posix", reason="closes the handles in preexec_fn (POSIX)")
def test_a_caller_that_passes_no_standard_handles_gets_clear_exit_codes(tmp_path) -> None:
    """A GUI program without stdin/stderr handles: ``--data -`` reads nothing (exit 2, nothing
    sent); a send with its data on the command line works without stderr."""
    (tmp_path / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    env = {**os.environ, "CCM_MAIL_LOAD_PLUGINS": ""}
    base = [sys.executable, "-m", "ccm_mail_core.cli", "send", "--purpose", "invoice", "--to", "k@example.de",
            "--yes", "--json"]  # fmt: skip
    closed = subprocess.run([*base, "--data", "-"], cwd=tmp_path, env=env, stdin=None, capture_output=True,
                            preexec_fn=lambda: os.close(0), timeout=60)  # fmt: skip
    assert closed.returncode == 2, closed.stdout + closed.stderr
    assert json.loads(closed.stdout)["exit_code"] == 2 and not (tmp_path / "out").exists()
    fields = [a for k, v in INVOICE.items() for a in ("--field", f"{k}={v}")]
    no_stderr = subprocess.run([*base, *fields], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               preexec_fn=lambda: os.close(2), timeout=60)  # fmt: skip
    assert no_stderr.returncode == 0 and json.loads(no_stderr.stdout)["ok"] is True
