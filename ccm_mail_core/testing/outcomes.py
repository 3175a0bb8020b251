"""What one ``send`` produced, and a sentence saying why it is the wrong thing.

The suite never lets ``pytest.raises`` speak for it: "DID NOT RAISE" says nothing about what the
transport did instead. These helpers say it: "expected UnknownOutcomeError: <what happened on the
wire>; got a Receipt, i.e. send() reported the message as sent".
"""

from __future__ import annotations

from collections.abc import Iterable

from ccm_mail_hookspecs import CcmMailError, Message, Receipt, Transport

from .logcapture import secret_variants

Outcome = Receipt | Exception


def outcome_of(transport: Transport, message: Message) -> Outcome:
    """``transport.send(message)``: its Receipt, or the exception it raised."""
    try:
        return transport.send(message)
    except Exception as exc:  # noqa: BLE001 - the caller judges it and says what is wrong
        return exc


def wrong_outcome(
    result: object,
    expected: tuple[type[CcmMailError], ...],
    why: str,
    *,
    receipt_ok: bool = False,
    secrets: Iterable[str] = (),
) -> str | None:
    """None if ``result`` is one of ``expected`` (or a Receipt where that is fine), else the
    sentence for the author. Secrets are masked in whatever error text it quotes."""
    names = " or ".join(c.__name__ for c in expected)
    head = f"expected {'a Receipt or ' if receipt_ok else ''}{names}: {why}"
    if isinstance(result, Receipt):
        return None if receipt_ok else f"{head}; got a Receipt, i.e. send() reported the message as sent"
    if not isinstance(result, CcmMailError):
        kind = type(result)
        return (
            f"{head}; got {kind.__module__}.{kind.__qualname__}: {masked(str(result), secrets)[:300]} — "
            "send() must raise only ccm-mail errors: a TransportError subclass when nothing was sent, "
            "UnknownOutcomeError when the provider may have the message"
        )
    if not isinstance(result, expected):
        return f"{head}; got {type(result).__name__}: {masked(result.render('en'), secrets)[:300]}"
    return None


def masked(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and its URL-encoded and base64 forms) replaced by ``***``."""
    variants = sorted({v for s in secrets if s for v in secret_variants(s)}, key=len, reverse=True)
    for variant in variants:
        text = text.replace(variant, "***")
    return text
