"""Addresses are exactly what they appear to be, in ``send`` and in every batch cell alike
(field defects 1, 16, 17): nothing in a cell can add a recipient, an address the provider would
refuse is refused here, and a pickup ``.eml`` holds valid headers."""

from __future__ import annotations

import email
import json
import re
from email import policy
from pathlib import Path

import pytest

from ccm_mail_core import batch
from ccm_mail_hookspecs import AddressError

from host_support import INVOICE, run_cli

SMUGGLING_CELLS = [
    ("crlf-bcc", "a@example.de\r\nBcc: evil@x.example"),
    ("lf", "a@example.de\nevil@x.example"),
    ("no-comma", '"K" <k@example.de> evil@y.example'),
    ("name-is-an-address", "alice@example.org)<bob@example.org>"),
    ("unquoted-at-in-name", "alice@example.org <bob@example.org>"),
]


def _jsonl(path: Path, to: str) -> Path:
    path.write_text(json.dumps({"to": to, "data": INVOICE}) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("cell", [c for _, c in SMUGGLING_CELLS], ids=[i for i, _ in SMUGGLING_CELLS])
def test_jsonl_cell_that_is_not_exactly_its_addresses_is_a_row_error(make_mailer, workdir, cell) -> None:
    """Defect 1: a JSONL "to" cell never turns into extra recipients; it is a problem of its row."""
    mailer = make_mailer()
    plan = batch.plan(mailer, _jsonl(workdir / "b.jsonl", cell), "invoice")
    assert not plan.new, [str(a) for _, p in plan.new for a in p.message.recipients()]
    (problem,) = plan.problems
    assert problem.row == 1 and problem.column == "to"
    assert problem.render("de").startswith("Zeile 1, Spalte to: ")
    assert mailer.journal.query() == []


def test_csv_cell_with_a_quoted_newline_is_a_row_error(make_mailer, workdir) -> None:
    """Defect 1: a CSV cell with a quoted line break is refused, with row and column."""
    mailer = make_mailer()
    path = workdir / "b.csv"
    path.write_text(
        'to;extRechnungsNr;Anrede;Betrag\n"a@example.de\nBcc: evil@x.example";RE-1;Hallo;1 €\n'
        "b@example.de;RE-2;Hallo;2 €\n",
        encoding="utf-8",
    )
    plan = batch.plan(mailer, path, "invoice")
    assert [p.row for p in plan.problems] == [1] and plan.problems[0].column == "to"
    assert "Zeilenumbruch" in plan.problems[0].render("de") and "line break" in plan.problems[0].render("en")


def test_batch_cells_with_several_addresses_still_work(make_mailer, workdir) -> None:
    """The strict parser keeps what German admins write: commas or semicolons, quoted names."""
    mailer = make_mailer()
    cell = '"Müller, Jürgen" <jm@example.de>, b@example.de; Büro Weiß <weiss@example.de>'
    plan = batch.plan(mailer, _jsonl(workdir / "b.jsonl", cell), "invoice")
    assert not plan.problems
    ((_, preview),) = plan.new
    assert [(a.name, a.address) for a in preview.message.to] == [
        ("Müller, Jürgen", "jm@example.de"),
        ("", "b@example.de"),
        ("Büro Weiß", "weiss@example.de"),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "kunde@-example.de",
        "kunde@example-.de",
        "x" * 65 + "@example.de",
        "kunde@example",
        "kunde@ex_ample.de",
        ".kunde@example.de",
    ],
)
def test_addresses_a_provider_would_refuse_are_refused(make_mailer, workdir, bad) -> None:
    """Defect 17: a domain label starting or ending with '-', a local part over 64 characters …"""
    mailer = make_mailer()
    with pytest.raises(AddressError) as err:
        mailer.send("invoice", to=[bad], data=INVOICE, assume_yes=True)
    assert "Ungültige E-Mail-Adresse" in err.value.render("de") and "Invalid e-mail address" in err.value.render("en")
    assert mailer.journal.query() == [] and not (workdir / "out").exists()


def test_send_refuses_a_nul_in_the_subject_before_the_journal(make_mailer, workdir) -> None:
    """Defect 16: a NUL from a placeholder value never reaches an .eml header."""
    mailer = make_mailer()
    proc = run_cli(
        "send",
        "--purpose",
        "invoice",
        "--to",
        "kunde@example.de",
        "--field",
        "extRechnungsNr=RE-1\x00X",
        "--field",
        "Anrede=Hallo",
        "--field",
        "Betrag=1 €",
        "--reference",
        "RE-1",
        "--yes",
        cwd=workdir,
    )
    assert proc.returncode == 2 and "NUL" in proc.stderr
    assert mailer.journal.query() == [] and not (workdir / "out").exists()


def test_pickup_eml_with_non_ascii_addresses_has_valid_headers(make_mailer, workdir) -> None:
    """Defect 16: an IDN domain is written as its IDNA A-label, a non-ASCII local part as UTF-8
    (RFC 6532) — never as an encoded word inside the address, which no server accepts."""
    mailer = make_mailer()
    result = mailer.send(
        "invoice", to=["Jürgen Weiß <jw@müller-söhne.example>", "jürgen@example.de"], data=INVOICE, assume_yes=True
    )
    raw = Path(result.receipt.transport_ids["file"]).read_bytes()
    header = raw.replace(b"\r\n", b"\n").split(b"\n\n")[0].decode("utf-8") + "\n"
    to = re.search(r"^To:(.*?)\n(?=\S)", header, re.S | re.M).group(1)
    specs = re.findall(r"<([^>]*)>|(\S+@\S+)", to)
    assert specs and not any("=?" in a + b for a, b in specs), to  # no encoded word inside an address
    msg = email.message_from_string(raw.decode("utf-8"), policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [
        ("Jürgen Weiß", "jw@" + "müller-söhne.example".encode("idna").decode()),
        ("", "jürgen@example.de"),
    ]


def test_address_list_parser_keeps_quoted_separators() -> None:
    from ccm_mail_hookspecs import Address

    got = Address.parse_list('"Weiß; Büro" <a@example.de>; "x\\"y" <b@example.de>,,')
    assert [(a.name, a.address) for a in got] == [("Weiß; Büro", "a@example.de"), ('x"y', "b@example.de")]
