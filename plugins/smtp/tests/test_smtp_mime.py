"""build_mime + the transport's flatten: headers with umlauts survive any length and any split.

CPython's own header folder drops or adds spaces where it splits non-ASCII text into encoded words;
build_mime encodes those headers itself. Decoded here with the RFC 2047 reference decoder
(``email.header``), since the newer parser has its own trouble with long encoded phrases."""

from __future__ import annotations

import email
import random
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from email.utils import getaddresses

import pytest
from ccm_mail_hookspecs import Address, Message, build_mime
from ccm_mail_smtp.transport import dot_stuff, flatten, queue_id

WORDS = [
    "Rechnung",
    "für",
    "Größe",
    "€",
    "ß",
    "–",
    "ÄÖÜ",
    "100",
    "x",
    "Müller-Lüdenscheidt",
    "😀",
    "O'Neil",
    "a,b",
    '"q"',
    "(Einkauf)",
]


def decoded(raw_header: str) -> str:
    return str(make_header(decode_header(raw_header)))


@pytest.mark.parametrize("utf8", [False, True])
def test_random_umlaut_headers_round_trip(utf8: bool) -> None:
    rng = random.Random(4711)
    for _ in range(150):
        subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
        names = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 3))]
        to = [Address(f"k{n}@example.com", name) for n, name in enumerate(names)]
        msg = Message(
            subject=subject,
            to=to,
            sender=Address("a@example.com", names[0]),
            text="Grüße",
            headers={"X-Notiz": subject},
            message_id="<id@example.com>",
        )
        raw = flatten(build_mime(msg), utf8=utf8)
        legacy = email.message_from_bytes(raw)  # compat32: raw header text
        assert decoded(legacy["Subject"]) == subject
        assert decoded(legacy["X-Notiz"]) == subject
        pairs = getaddresses([legacy["To"]])
        assert [(decoded(n) if "=?" in n else n, a) for n, a in pairs] == [(a.name, a.address) for a in to]
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert parsed["Subject"] == subject and parsed["Message-ID"] == "<id@example.com>"
        if not utf8:
            assert raw.isascii(), "without SMTPUTF8 the message must be 7-bit"
            header_block = raw.split(b"\r\n\r\n", 1)[0]
            assert all(len(line) <= 998 for line in header_block.split(b"\r\n"))


def test_body_is_seven_bit_and_crlf() -> None:
    msg = Message(subject="x", to=[Address("k@example.com")], text="Grüße\nZeile 2\n", html="<p>ä</p>")
    raw = flatten(build_mime(msg), utf8=False)
    assert raw.isascii() and b"\n" not in raw.replace(b"\r\n", b"")


def test_dot_stuffing() -> None:
    assert dot_stuff(b".a\r\nb\r\n..c\r\n") == b"..a\r\nb\r\n...c\r\n.\r\n"
    assert dot_stuff(b"ohne Ende") == b"ohne Ende\r\n.\r\n"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("250 2.0.0 Ok: queued as 4XyZ42", "4XyZ42"),
        ("250 OK id=1rABC-000123-XY", "1rABC-000123-XY"),
        ("250 2.0.0 OK <abc@EXAMPLE.PROD.OUTLOOK.COM> [InternalId=123456789, Hostname=X] 1234 bytes", "123456789"),
        ("250 2.0.0 OK", ""),
    ],
)
def test_queue_id(reply: str, expected: str) -> None:
    assert queue_id(reply) == expected
