"""Batch runs: validation of every row first, one confirmation, pools, dry run, resume, and a
real process killed with SIGKILL in the middle, restarted until done: each invoice exactly once."""

from __future__ import annotations

import email
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from email import policy
from pathlib import Path

import pytest

from ccm_mail_core import batch
from ccm_mail_hookspecs import Status, hookimpl

from host_support import BASE_CONFIG, LOAD_PLUGINS, make_dist, run_cli

POOL = BASE_CONFIG.replace(
    "purposes:\n  invoice: Rechnungsversand",
    """\
  Rechnung2:
    type: pickup
    folder: out2
    sender: rechnung2@codicon.de
purposes:
  invoice: [Rechnungsversand, Rechnung2]""",
)


def rows(n: int, pdf: Path, start: int = 0) -> list[dict]:
    return [
        {
            "to": f"kunde{i}@example.de",
            "reference": None,
            "attachments": [pdf.name],
            "data": {"extRechnungsNr": f"RE-{i:05d}", "Anrede": "Hallo", "Betrag": f"{i},00 €"},
        }
        for i in range(start, start + n)
    ]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    return path


class Dialog:
    def __init__(self) -> None:
        self.previews = []

    @hookimpl
    def ccm_mail_confirm(self, preview):  # type: ignore[no-untyped-def]
        self.previews.append(preview)
        return True


@pytest.mark.usefixtures("journal_engine")
def test_every_bad_row_is_listed_and_nothing_is_queued(make_mailer, workdir, pdf) -> None:
    mailer = make_mailer()
    items = rows(5, pdf)
    items[1]["to"] = "kaputt"
    items[2]["attachments"] = ["fehlt.pdf"]
    del items[3]["data"]["Anrede"]
    items[4]["data"]["extRechnungsNr"] = "RE-00000"  # same invoice twice in one file
    plan = batch.plan(mailer, write_jsonl(workdir / "b.jsonl", items), "invoice")
    assert [p.row for p in plan.problems] == [2, 3, 4, 5]
    texts = [p.render("de") for p in plan.problems]
    assert "Ungültige E-Mail-Adresse" in texts[0] and "Anhang nicht lesbar" in texts[1]
    assert "#Anrede#" in texts[2] and "steht schon in Zeile 1" in texts[3]
    assert mailer.journal.query() == []


@pytest.mark.usefixtures("journal_engine")
def test_batch_is_confirmed_once_and_split_over_the_pool(make_mailer, workdir, pdf) -> None:
    dialog = Dialog()
    mailer = make_mailer(POOL, plugins={"dialog": dialog})
    plan = batch.plan(mailer, write_jsonl(workdir / "b.jsonl", rows(6, pdf)), "invoice")
    batch.confirm(mailer, plan, assume_yes=False, interactive=False)
    batch.queue_plan(mailer, plan)
    summary = batch.send(mailer, plan)
    assert summary.to_dict()["sent"] == 6 and summary.exit_code == 0
    assert len(dialog.previews) == 1 and dialog.previews[0].extra["count"] == 6
    assert len(list((workdir / "out").glob("*.eml"))) == 3 and len(list((workdir / "out2").glob("*.eml"))) == 3
    senders = Counter(e.account for e in mailer.journal.query())
    assert senders == {"Rechnungsversand": 3, "Rechnung2": 3}


@pytest.mark.usefixtures("journal_engine")
def test_rerun_sends_nothing_twice_and_adds_new_rows(make_mailer, workdir, pdf) -> None:
    mailer = make_mailer()
    path = write_jsonl(workdir / "b.jsonl", rows(3, pdf))
    for _ in range(2):
        plan = batch.plan(mailer, path, "invoice")
        batch.queue_plan(mailer, plan)
        batch.send(mailer, plan)
    assert len(list((workdir / "out").glob("*.eml"))) == 3
    # a corrected file with two more invoices: the three sent ones are skipped by reference
    plan = batch.plan(mailer, write_jsonl(workdir / "b2.jsonl", rows(5, pdf)), "invoice")
    assert [ref for _, ref, _ in plan.skipped] == ["RE-00000", "RE-00001", "RE-00002"] and len(plan.new) == 2
    batch.queue_plan(mailer, plan)
    batch.send(mailer, plan)
    assert len(list((workdir / "out").glob("*.eml"))) == 5


def test_dry_run_writes_eml_files_and_touches_no_journal(workdir, pdf) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    write_jsonl(workdir / "b.jsonl", rows(4, pdf))
    proc = run_cli("batch", "b.jsonl", "--purpose", "invoice", "--dry-run", "probe", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert len(list((workdir / "probe").glob("*.eml"))) == 4
    assert not (workdir / "out").exists()
    assert not (workdir / "journal.sqlite").exists() or "sent" not in run_cli("journal", cwd=workdir).stdout


def test_csv_with_semicolons_as_german_excel_writes_it(workdir, pdf) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    import csv

    with (workdir / "b.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["to", "cc", "extRechnungsNr", "Anrede", "Betrag", "attachments"])
        w.writerow(['"Weiß, Jürgen" <j@example.de>', "a@example.de, b@example.de", "RE-1", "Hallo", "1,00 €", pdf.name])
        w.writerow(["k@example.de", "", "RE-2", "Hallo", "2,00 €", ""])
    proc = run_cli("batch", "b.csv", "--purpose", "invoice", "--yes", "--json", cwd=workdir)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["sent"] == 2, proc.stderr
    entries = json.loads(run_cli("journal", "--json", cwd=workdir).stdout)["entries"]
    assert sorted(e["recipients"] for e in entries) == [
        ["j@example.de", "a@example.de", "b@example.de"],
        ["k@example.de"],
    ]


def _excel_csv(path: Path, encoding: str) -> Path:
    """What German Excel's "CSV (Trennzeichen-getrennt)" writes: semicolons, Windows-1252."""
    path.write_bytes(
        (
            "to;extRechnungsNr;Anrede;Betrag\r\n"
            "Jürgen Weiß <jw@example.de>;RE-1;Sehr geehrter Herr Weiß;1.234,56 €\r\n"
            "zoe@example.de;RE-2;Liebe Zoë;17,00 €\r\n"
        ).encode(encoding)
    )
    return path


def test_german_excel_csv_in_windows_1252_arrives_intact(workdir) -> None:
    """Field defect 11: cp1252 is read (and said so); umlauts and € arrive as written."""
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    _excel_csv(workdir / "b.csv", "cp1252")
    proc = run_cli("batch", "b.csv", "--purpose", "invoice", "--yes", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "als cp1252 gelesen" in proc.stderr
    bodies = sorted(
        email.message_from_bytes(f.read_bytes(), policy=policy.default).get_body().get_content()
        for f in (workdir / "out").glob("*.eml")
    )
    assert "Sehr geehrter Herr Weiß,\n\nanbei Ihre Rechnung RE-1 über 1.234,56 €." in bodies[1]
    assert "Liebe Zoë," in bodies[0]


def test_encoding_option_and_utf8_with_bom(workdir) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    _excel_csv(workdir / "b.csv", "utf-8-sig")
    proc = run_cli("batch", "b.csv", "--purpose", "invoice", "--yes", cwd=workdir)
    assert proc.returncode == 0 and "gelesen" not in proc.stderr, proc.stderr
    _excel_csv(workdir / "c.csv", "cp1252")
    wrong = run_cli("batch", "c.csv", "--purpose", "invoice", "--yes", "--encoding", "ascii", cwd=workdir)
    assert wrong.returncode == 2 and "--encoding" in wrong.stderr
    right = run_cli("batch", "c.csv", "--purpose", "invoice", "--yes", "--encoding", "cp1252", "--json", cwd=workdir)
    assert right.returncode == 0 and json.loads(right.stdout)["sent"] == 0  # same invoices: skipped as sent
    assert "RE-1 bereits im Journal" in right.stderr


def test_a_dos_export_that_is_neither_utf8_nor_cp1252_names_the_encoding_option(workdir) -> None:
    """0x81 is ü in cp850 and undefined in cp1252: it was an internal error (UnboundLocalError)."""
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    (workdir / "dos.csv").write_bytes(b"to;extRechnungsNr;Anrede;Betrag\r\nk@example.de;RE-D1;Gr\x81\xe1 Gott;1\r\n")
    proc = run_cli("batch", "dos.csv", "--purpose", "invoice", "--yes", cwd=workdir)
    assert proc.returncode == 2 and "cp850" in proc.stderr and "Interner Fehler" not in proc.stderr, proc.stderr
    ok = run_cli("batch", "dos.csv", "--purpose", "invoice", "--yes", "--encoding", "cp850", "--json", cwd=workdir)
    assert ok.returncode == 0 and json.loads(ok.stdout)["sent"] == 1, ok.stdout + ok.stderr


def test_excel_csv_with_capitalised_columns_and_trailing_empty_rows(workdir) -> None:
    """Excel writes 'To' as typed and ends a sheet with ';;;' rows: the whole batch was refused
    ('the header needs a to column', then 'no recipient' for the empty rows)."""
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    (workdir / "excel.csv").write_bytes(
        "To;CC;extRechnungsNr;Anrede;Betrag\r\n"
        "k@example.de;b@example.de;RE-X1;Sehr geehrte Frau Weiß;1.234,56 €\r\n;;;;\r\n;;;;\r\n".encode("cp1252")
    )
    proc = run_cli("batch", "excel.csv", "--purpose", "invoice", "--yes", "--json", cwd=workdir)
    assert proc.returncode == 0 and json.loads(proc.stdout)["sent"] == 1, proc.stdout + proc.stderr
    (entry,) = json.loads(run_cli("journal", "--json", cwd=workdir).stdout)["entries"]
    assert entry["recipients"] == ["k@example.de", "b@example.de"] and entry["reference"] == "RE-X1"


def test_progress_is_json_when_the_logs_are(workdir, pdf) -> None:
    """Field defect 18: with --log-format json every stderr line is a JSON object, progress too."""
    (workdir / "ccm-mail.yaml").write_text(
        BASE_CONFIG.replace(
            "    from_name: codicon GmbH\n",
            "    from_name: codicon GmbH\n    limits:\n      messages: 1000\n      per_seconds: 1\n",
        )
    )
    write_jsonl(workdir / "b.jsonl", rows(5, pdf))
    proc = run_cli("batch", "b.jsonl", "--purpose", "invoice", "--yes", "--log-format", "json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"] == 5


def test_summary_counts_rows_another_process_is_sending(make_mailer, workdir, pdf) -> None:
    """Field defect 23: a concurrent run's rows in flight are in the summary, and the run does
    not claim success while they are."""
    from ccm_mail_core import owner

    mailer = make_mailer()
    plan = batch.plan(mailer, write_jsonl(workdir / "b.jsonl", rows(3, pdf)), "invoice")
    batch.queue_plan(mailer, plan)
    first = mailer.journal.query(batch=plan.batch_id)[-1]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = __import__("psutil").Process(other.pid).create_time()
        mailer.journal.transition(
            first.id,
            Status.SENDING,
            owner=owner.Owner(owner.current().host, other.pid, started).format(),
            expect=(Status.QUEUED,),
        )
        summary = batch.send(mailer, plan, stream=io.StringIO())
    finally:
        other.kill()
        other.wait()
    data = summary.to_dict()
    assert (data["sent"], data["sending"]) == (2, 1) and summary.exit_code == 4


def test_bad_rows_exit_code_and_row_numbers_from_cli(workdir, pdf) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG)
    items = rows(3, pdf)
    items[2]["to"] = "nope"
    write_jsonl(workdir / "b.jsonl", items)
    proc = run_cli("batch", "b.jsonl", "--purpose", "invoice", "--yes", cwd=workdir)
    assert proc.returncode == 2 and "Zeile 3, Spalte to: Ungültige E-Mail-Adresse" in proc.stderr
    assert not (workdir / "out").exists()


SLOW = """
import os, time
from ccm_mail_hookspecs import AccountType, Field, T, hookimpl
from ccm_mail_core.builtins.pickup_folder import PickupTransport
CCM_MAIL_API = 1

class Slow(PickupTransport):
    def send(self, message):
        time.sleep(float(os.environ.get("SLOW_BEFORE", "0.01")))
        receipt = super().send(message)
        time.sleep(float(os.environ.get("SLOW_AFTER", "0.01")))  # delivered, answer not yet journaled
        return receipt

@hookimpl
def ccm_mail_account_types(register):
    register(AccountType("slowpickup", T("Langsam", "Slow"), (Field("folder", T("Ordner", "Folder"), kind="path"),
             Field("sender", T("Absender", "Sender"), kind="email")), Slow))
"""


@pytest.mark.slow
def test_batch_killed_with_sigkill_resumes_exactly_once(workdir, tmp_path, pdf) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-slow", "ccm_mail_slow", SLOW, entry_name="slow")
    (workdir / "ccm-mail.yaml").write_text(
        BASE_CONFIG.replace("type: pickup", "type: slowpickup") + "outbox:\n  grace_seconds: 0\n"
    )
    n = 60
    write_jsonl(workdir / "b.jsonl", rows(n, pdf))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", LOAD_PLUGINS: "slow"}
    rng = random.Random(4711)
    out = workdir / "out"
    kills = 0
    for _attempt in range(40):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccm_mail_core.cli",
                "batch",
                "b.jsonl",
                "--purpose",
                "invoice",
                "--yes",
                "--log-level",
                "error",
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if kills < 6:
            # kill at a random moment while it is sending: after a few more invoices went out
            target = len(list(out.glob("*.eml"))) + rng.randint(1, 6) if out.exists() else rng.randint(1, 6)
            deadline = time.monotonic() + 60
            while (
                proc.poll() is None
                and time.monotonic() < deadline
                and (not out.exists() or len(list(out.glob("*.eml"))) < target)
            ):
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        rc = proc.wait(timeout=120)
        if rc == 0 and kills >= 6:
            break
    assert kills >= 3, "the batch finished before it could be killed; make the transport slower"
    ids = Counter()
    for f in (workdir / "out").glob("*.eml"):
        ids[f.name.split("-", 1)[1]] += 1
    assert len(ids) == n and set(ids.values()) == {1}, "an invoice was sent twice or not at all"
    entries = json.loads(run_cli("journal", "--json", "--limit", "0", cwd=workdir, site=site).stdout)["entries"]
    assert Counter(e["status"] for e in entries) == {"sent": n}
