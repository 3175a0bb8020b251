"""The conformance suite every ccm-mail transport runs against itself.

It checks the :class:`~ccm_mail_hookspecs.Transport` contract from the outside: what arrives at
the server or provider, which errors come out, and that no secret is ever written anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ccm_mail_hookspecs import (
    Address,
    Attachment,
    AttachmentError,
    CcmMailError,
    CheckResult,
    Message,
    Receipt,
    T,
    Transport,
    TransportError,
    UnknownOutcomeError,
)

from .faultserver import fault_pki
from .http_faults import HttpEndpoint, fault_ids, http_faults, judge
from .logcapture import LogCapture, assert_no_secrets, capture_logs, exception_texts
from .outcomes import outcome_of, wrong_outcome

#: 1×1 PNG, so the inline image is a real image and not just bytes with an image type
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)
UMLAUTS = "ä ö ü ß € Ä Ö Ü"


@dataclass(frozen=True)
class FailureCase:
    """A transport set up to fail, and the public error it must raise.

    :param transport: e.g. the same account with a wrong password, or a port nobody listens on.
    :param expected: the :class:`~ccm_mail_hookspecs.errors.TransportError` subclass (or
        :class:`~ccm_mail_hookspecs.errors.UnknownOutcomeError`) ``send`` must raise.
    :param description: shown in the failure message.
    """

    transport: Transport
    expected: type[CcmMailError]
    description: str = ""


Received = Callable[[str], EmailMessage]


def normalized_text(part: Any) -> str:
    """A text part's content without the line-ending differences SMTP and Graph introduce."""
    return str(part.get_content()).replace("\r\n", "\n").rstrip("\n")


class TransportConformance:
    """Base class of the conformance suite. Subclass it in your transport's tests::

        from ccm_mail_core.testing import FailureCase, TransportConformance

        class TestSmtpConformance(TransportConformance):
            @pytest.fixture
            def transport(self, server):            # a ready Transport for a working account
                return create_transport(settings_for(server))

            @pytest.fixture
            def sender(self):                       # the account's sender address
                return Address("rechnung@firma.example", "Firma GmbH")

            @pytest.fixture
            def received(self, server):             # message_id -> parsed EmailMessage
                return server.message

            @pytest.fixture
            def delivered_to(self, server):         # optional: message_id -> envelope recipients
                return server.envelope_recipients

            @pytest.fixture
            def arrivals(self, server):             # optional: message_id -> how often it arrived
                return server.arrivals

            @pytest.fixture
            def secrets(self):                      # values that must never appear anywhere
                return ["the-password"]

            @pytest.fixture(params=["wrong_password", "refused"])
            def failing_transport(self, request, server):  # optional: one FailureCase per param
                ...
                return FailureCase(transport, AuthenticationError, "wrong password")

    The class name must not start with ``Test`` (so the base is not collected); yours must.

    **Fixtures you provide**

    ``transport``
        A :class:`~ccm_mail_hookspecs.Transport` for a working account. The suite calls ``send``,
        ``check`` and (from threads) ``send`` concurrently.
    ``sender``
        The :class:`~ccm_mail_hookspecs.Address` the messages are sent from (``message.sender``).
    ``received``
        ``received(message_id) -> email.message.EmailMessage``: what the server or provider got,
        parsed with ``email.policy.default`` (``BytesParser(policy=policy.default)``). SMTP servers
        hand over raw bytes; a Graph-based transport converts the JSON its fake provider received
        into an ``EmailMessage`` (headers To/Cc/Reply-To/Subject/Message-ID/X-…, a
        ``multipart/alternative`` for text+HTML, attachments with filename and bytes, inline parts
        with ``Content-ID``). It may wait/poll; it fails the test if nothing arrives.

    **Optional fixtures** (defaults in this class)

    ``delivered_to``
        ``delivered_to(message_id) -> collection of addresses`` the provider delivers to (SMTP:
        the envelope's RCPT TO; Graph: to+cc+bcc of the request). Default ``None``: the
        "Bcc is delivered" half of the Bcc test is skipped.
    ``arrivals``
        ``arrivals(message_id) -> int``: how often a message with that Message-ID has arrived so
        far, answered at once without waiting. Lets the suite prove that one ``send`` delivers
        exactly once. Default ``None``: only the delivery is checked.
    ``secrets``
        Every secret value of the account(s): passwords, client secrets, tokens the fake provider
        issues. Scanned for in logs, stdout/stderr, receipts and error texts (also URL-encoded and
        base64). Default: none — set it, or the secret tests prove nothing.
    ``failing_transport``
        A :class:`FailureCase`; parametrize the fixture for several. Default: skipped.
    ``http_transport``
        For a transport that speaks HTTP: a factory ``make(endpoint) -> Transport`` building your
        transport for a working account, but sending to ``endpoint.url``, trusting
        ``endpoint.ca_file``, with read timeout ``endpoint.timeout`` and a total wait budget of
        ``endpoint.max_wait`` seconds (see :class:`~ccm_mail_core.testing.http_faults.HttpEndpoint`).
        Defining it switches on ``test_http_fault``: the kit's own fault server answers with each
        fault of :func:`~ccm_mail_core.testing.http_faults.http_faults` (connection refused,
        untrusted certificate, resets before and after the request, no answer within the timeout,
        429 with and without Retry-After, 503, 500, 502, 504, an answer that is not HTTP, a 200
        with a garbage body, a 400 with an HTML body, an error text quoting the credentials), and
        the test checks the outcome class, that nothing was sent twice after an unknown outcome
        (the server counts requests) and that no secret — yours or any credential the server saw
        on the wire — reaches the error or a log line. Default: None, the fault test is skipped.

    **Class attributes**

    ``recipient_domain``
        Domain of the test recipients (default ``example.com``).
    ``log_ignore``
        Logger names whose records are not scanned for secrets, e.g. your test server's own
        (``("mail.log",)`` for aiosmtpd): the server is not the transport under test.
    ``supports_concurrent_send``
        Set False only if your fake provider cannot take parallel requests.
    ``http_timeout``
        The read timeout handed to ``http_transport`` (seconds; default 1).
    ``http_fault_known_failures``
        ``{fault id: reason}`` for faults your transport is known to get wrong: each is run as a
        strict xfail, so the output says what is wrong and the entry must go once it is fixed.

    Log capture covers structlog (``structlog.testing.capture_logs``: events before any
    processor, so nothing is hidden by redaction) and the stdlib root logger at DEBUG, plus what
    reaches file descriptors 1 and 2 (pytest's ``capfd``). The transport's own logger should be
    a ``structlog.get_logger("ccm_mail.<name>")`` used lazily (do not ``bind()`` at import).
    """

    recipient_domain: ClassVar[str] = "example.com"
    log_ignore: ClassVar[tuple[str, ...]] = ()
    supports_concurrent_send: ClassVar[bool] = True
    http_timeout: ClassVar[float] = 1.0
    http_fault_known_failures: ClassVar[Mapping[str, str]] = {}
    #: allowed distance between ``receipt.sent_at`` and the test's clock
    clock_skew: ClassVar[timedelta] = timedelta(minutes=5)

    # -- fixtures the subclass provides --------------------------------------------------------

    @pytest.fixture
    def transport(self) -> Transport:
        pytest.fail("TransportConformance: define a `transport` fixture in your subclass")

    @pytest.fixture
    def sender(self) -> Address:
        pytest.fail("TransportConformance: define a `sender` fixture in your subclass")

    @pytest.fixture
    def received(self) -> Received:
        pytest.fail("TransportConformance: define a `received` fixture in your subclass")

    @pytest.fixture
    def delivered_to(self) -> Callable[[str], Collection[str]] | None:
        return None

    @pytest.fixture
    def arrivals(self) -> Callable[[str], int] | None:
        return None

    @pytest.fixture
    def secrets(self) -> Sequence[str]:
        return ()

    @pytest.fixture
    def failing_transport(self) -> FailureCase:
        pytest.skip("no failing_transport fixture defined")

    @pytest.fixture
    def http_transport(self) -> Callable[[HttpEndpoint], Transport] | None:
        return None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One ``test_http_fault`` per fault for a class that defines ``http_transport``; a single
        skipped one for a transport that does not speak HTTP."""
        if "http_fault" not in metafunc.fixturenames:
            return
        cls = metafunc.cls
        defined_by = next((k for k in cls.__mro__ if "http_transport" in vars(k)), None) if cls else None
        if defined_by in (None, TransportConformance):
            metafunc.parametrize(
                "http_fault",
                [
                    pytest.param(
                        "",
                        id="not-http",
                        marks=pytest.mark.skip(
                            reason="not an HTTP transport: define an http_transport fixture to run the HTTP fault tests"
                        ),
                    )
                ],
            )
            return
        assert cls is not None
        known = dict(cls.http_fault_known_failures)
        unknown = sorted(set(known) - set(fault_ids()))
        if unknown:
            raise pytest.UsageError(
                f"{cls.__name__}.http_fault_known_failures names no fault: {unknown}; "
                f"the faults are {list(fault_ids())}"
            )
        metafunc.parametrize(
            "http_fault",
            [
                pytest.param(
                    fid, id=fid, marks=[pytest.mark.xfail(reason=known[fid], strict=True)] if fid in known else []
                )
                for fid in fault_ids()
            ],
        )

    # -- machinery -----------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _ccm_mail_capture(self, capfd: pytest.CaptureFixture[str]) -> Iterator[LogCapture]:
        """Capture every test's logs; the secret tests scan them."""
        with capture_logs() as capture:
            yield capture

    def log_texts(self, capture: LogCapture, capfd: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
        out, err = capfd.readouterr()
        kept = LogCapture(
            capture.events, [r for r in capture.records if not r.name.startswith(self.log_ignore or ("\0",))]
        )
        return {"log": kept.texts(), "stdout": [out], "stderr": [err]}

    def address(self, local: str, name: str = "") -> Address:
        return Address(f"{local}@{self.recipient_domain}", name)

    def message(self, sender: Address, **fields: Any) -> Message:
        """A message with a fresh Message-ID and one recipient unless ``to`` is given."""
        fields.setdefault("to", [self.address("kunde", "Kunde")])
        fields.setdefault("subject", "ccm-mail Konformitätstest")
        fields.setdefault("text", "Hallo,\nanbei die Rechnung.\n")
        return Message(sender=sender, message_id=make_msgid(domain="conformance.ccm-mail.test"), **fields)

    def send(self, transport: Transport, message: Message) -> Receipt:
        receipt = transport.send(message)
        assert isinstance(receipt, Receipt), f"send() must return a Receipt, got {type(receipt).__name__}"
        return receipt

    # -- what arrives ----------------------------------------------------------------------------

    def test_plain_text(self, transport: Transport, sender: Address, received: Received) -> None:
        msg = self.message(
            sender,
            subject="Rechnung 4711",
            text="Sehr geehrte Damen und Herren,\n\nanbei die Rechnung 4711.\n\nMit freundlichen Grüßen\n",
        )
        receipt = self.send(transport, msg)
        got = received(msg.message_id)
        assert got["Subject"] == "Rechnung 4711"
        assert got["From"].addresses[0].addr_spec == sender.address
        assert [a.addr_spec for a in got["To"].addresses] == [a.address for a in msg.to]
        body = got.get_body(("plain",))
        assert body is not None, "no text/plain part"
        assert normalized_text(body) == msg.text.rstrip("\n")  # type: ignore[union-attr]
        assert got.get_body(("html",)) is None, "a text-only message must not grow an HTML part"
        assert got["Date"] is not None, "Date header missing"
        self.check_receipt(receipt)

    def check_receipt(self, receipt: Receipt) -> None:
        now = datetime.now(UTC)
        assert receipt.sent_at.tzinfo is not None, "Receipt.sent_at must be timezone-aware"
        assert abs(receipt.sent_at - now) < self.clock_skew, f"sent_at {receipt.sent_at} is not now ({now})"
        assert receipt.status.value == "sent"
        for key, value in receipt.transport_ids.items():
            assert isinstance(key, str) and isinstance(value, str), f"transport_ids[{key!r}] must be str"

    def test_html_with_text_alternative(self, transport: Transport, sender: Address, received: Received) -> None:
        html = "<html><body><p>Ihre <b>Rechnung</b> 4711</p></body></html>"
        msg = self.message(sender, text="Ihre Rechnung 4711", html=html)
        self.send(transport, msg)
        got = received(msg.message_id)
        plain, rich = got.get_body(("plain",)), got.get_body(("html",))
        assert plain is not None and rich is not None, "text and HTML must both arrive"
        assert normalized_text(plain) == "Ihre Rechnung 4711"
        assert "<b>Rechnung</b>" in normalized_text(rich)
        assert any(p.get_content_type() == "multipart/alternative" for p in got.walk()), (
            "text and HTML must be alternatives (multipart/alternative)"
        )

    def test_html_only(self, transport: Transport, sender: Address, received: Received) -> None:
        msg = self.message(sender, text=None, html="<p>Nur <i>HTML</i></p>")
        self.send(transport, msg)
        rich = received(msg.message_id).get_body(("html",))
        assert rich is not None and "<i>HTML</i>" in normalized_text(rich)

    def test_attachments_byte_for_byte(
        self, transport: Transport, sender: Address, received: Received, tmp_path: Path
    ) -> None:
        blobs = {
            "daten.bin": bytes(range(256)) * 64 + b"\r\n.\r\n\x00end",  # CR/LF and a lone dot
            "Rechnung 4711 – Müller.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(255, -1, -1)) * 16,
            "notiz.txt": "Grüße\r\nzweite Zeile ohne Ende".encode(),
        }
        attachments = []
        for name, data in blobs.items():
            (tmp_path / name).write_bytes(data)
            attachments.append(
                Attachment(
                    tmp_path / name, content_type="application/octet-stream" if name.endswith((".bin", ".txt")) else ""
                )
            )
        msg = self.message(sender, attachments=attachments)
        self.send(transport, msg)
        got = {part.get_filename(): part for part in received(msg.message_id).iter_attachments()}
        assert set(got) == set(blobs), f"attachments arrived as {sorted(map(str, got))}"
        for name, data in blobs.items():
            assert got[name].get_payload(decode=True) == data, f"attachment {name!r} changed on the way"
        assert got["Rechnung 4711 – Müller.pdf"].get_content_type() == "application/pdf"

    def test_inline_image_with_cid(
        self, transport: Transport, sender: Address, received: Received, tmp_path: Path
    ) -> None:
        (tmp_path / "logo.png").write_bytes(PNG_1X1)
        html = '<p>Logo: <img src="cid:logo@ccm-mail.test" alt="Logo"></p>'
        msg = self.message(
            sender,
            text="Logo",
            html=html,
            attachments=[Attachment(tmp_path / "logo.png", inline=True, content_id="logo@ccm-mail.test")],
        )
        self.send(transport, msg)
        got = received(msg.message_id)
        images = [p for p in got.walk() if p.get("Content-ID", "").strip("<>") == "logo@ccm-mail.test"]
        assert images, "no part with Content-ID <logo@ccm-mail.test>"
        assert images[0].get_content_type() == "image/png"
        assert images[0].get_payload(decode=True) == PNG_1X1
        assert "cid:logo@ccm-mail.test" in normalized_text(got.get_body(("html",)))
        assert not [
            p
            for p in got.iter_attachments()
            if p.get("Content-ID", "").strip("<>") == "logo@ccm-mail.test"
            and p.get_content_disposition() == "attachment"
        ], "the inline image must not arrive as a regular attachment"

    def test_unicode_subject_body_and_names(self, transport: Transport, sender: Address, received: Received) -> None:
        subject = f"Rechnung für Jürgen Größe – {UMLAUTS} 100 €"
        text = f"Grüße aus Köln: {UMLAUTS}\nSumme: 1.234,56 €\n"
        html = f"<p>Grüße aus Köln: {UMLAUTS}</p>"
        to = [self.address("juergen", "Jürgen Müßig-Äöü"), self.address("meier", "Meier, Hans (Einkauf)")]
        cc = self.address("buchhaltung", "Buchhaltung Öl & Söhne €")
        msg = self.message(sender, subject=subject, text=text, html=html, to=to, cc=[cc])
        self.send(transport, msg)
        got = received(msg.message_id)
        assert got["Subject"] == subject
        assert normalized_text(got.get_body(("plain",))) == text.rstrip("\n")
        assert UMLAUTS in normalized_text(got.get_body(("html",)))
        assert [(a.display_name, a.addr_spec) for a in got["To"].addresses] == [(a.name, a.address) for a in to]
        assert [(a.display_name, a.addr_spec) for a in got["Cc"].addresses] == [(cc.name, cc.address)]

    def test_cc_and_bcc(
        self,
        transport: Transport,
        sender: Address,
        received: Received,
        delivered_to: Callable[[str], Collection[str]] | None,
    ) -> None:
        to, cc = self.address("kunde", "Kunde"), self.address("kopie", "Kopie")
        bcc = [self.address("archiv", "Archiv"), self.address("geheim")]
        msg = self.message(sender, to=[to], cc=[cc], bcc=bcc)
        self.send(transport, msg)
        got = received(msg.message_id)
        assert [a.addr_spec for a in got["Cc"].addresses] == [cc.address]
        assert "Bcc" not in got, "Bcc header must not be sent"
        headers = "\n".join(f"{k}: {v}" for k, v in got.items())
        for hidden in bcc:
            assert hidden.address not in headers, f"Bcc recipient {hidden.address} visible in the headers"
        if delivered_to is None:
            pytest.skip("Bcc delivery not checked: no delivered_to fixture")
        targets = {a.lower() for a in delivered_to(msg.message_id)}
        for address in (to, cc, *bcc):
            assert address.address.lower() in targets, f"{address.address} was not delivered to"

    def test_reply_to(self, transport: Transport, sender: Address, received: Received) -> None:
        reply = [self.address("antwort", "Büro Antwort")]
        msg = self.message(sender, reply_to=reply)
        self.send(transport, msg)
        got = received(msg.message_id)
        assert [(a.display_name, a.addr_spec) for a in got["Reply-To"].addresses] == [(reply[0].name, reply[0].address)]

    def test_x_headers(self, transport: Transport, sender: Address, received: Received) -> None:
        headers = {"X-AbSys-Rechnung": "RG-4711", "X-Ccm-Purpose": "invoice"}
        msg = self.message(sender, headers=dict(headers))
        self.send(transport, msg)
        got = received(msg.message_id)
        for name, value in headers.items():
            assert got.get(name) == value, f"header {name} arrived as {got.get(name)!r}"

    def test_message_id_preserved(self, transport: Transport, sender: Address, received: Received) -> None:
        msg = self.message(sender)
        self.send(transport, msg)
        assert received(msg.message_id)["Message-ID"].strip() == msg.message_id

    def test_archive_copy_is_the_message_sent(self, transport: Transport, sender: Address, received: Received) -> None:
        """Plugin API 1.4: for ``message.archive`` the transport returns the exact RFC 5322 bytes
        it handed over (``Receipt.mime``: the host keeps them as the GoBD archive copy), or
        refuses the message before anything leaves."""
        from email import policy
        from email.parser import BytesParser

        msg = self.message(
            sender,
            subject="Rechnung 4713 (Archivkopie)",
            archive=True,
            text="Sehr geehrte Damen und Herren,\nanbei die Rechnung 4713.\n",
        )
        try:
            receipt = self.send(transport, msg)
        except CcmMailError as exc:
            assert exc.sent is False, "a transport that cannot keep the bytes sent must refuse before sending"
            return
        assert isinstance(receipt.mime, bytes) and receipt.mime, (
            "message.archive is set: Receipt.mime must hold the bytes handed to the provider"
        )
        copy = BytesParser(policy=policy.default).parsebytes(receipt.mime)
        got = received(msg.message_id)
        assert str(copy["Message-ID"]).strip() == msg.message_id, "the archive copy is another message"
        assert copy["Subject"] == got["Subject"] == msg.subject
        plain = copy.get_body(("plain",))
        assert plain is not None and normalized_text(plain) == normalized_text(got.get_body(("plain",))), (
            "the archive copy's text is not the text that arrived"
        )

    def test_concurrent_sends(self, transport: Transport, sender: Address, received: Received) -> None:
        if not self.supports_concurrent_send:
            pytest.skip("supports_concurrent_send = False")
        messages = [self.message(sender, subject=f"parallel {n}") for n in range(4)]
        failures: list[BaseException] = []

        def worker(message: Message) -> None:
            try:
                self.send(transport, message)
            except BaseException as exc:  # noqa: BLE001 - collected, reported by the test thread
                failures.append(exc)

        threads = [threading.Thread(target=worker, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, f"concurrent send failed: {failures[0]!r}"
        for message in messages:
            assert received(message.message_id)["Subject"] == message.subject

    def test_send_delivers_exactly_once(
        self, transport: Transport, sender: Address, received: Received, arrivals: Callable[[str], int] | None
    ) -> None:
        """One ``send`` call, one message at the provider: a transport must never send twice."""
        msg = self.message(sender, subject="genau einmal gesendet")
        receipt = self.send(transport, msg)
        assert isinstance(receipt, Receipt), f"send() must return a Receipt, got {type(receipt).__name__}"
        assert received(msg.message_id)["Subject"] == msg.subject
        if arrivals is not None:
            assert arrivals(msg.message_id) == 1, "one send() must deliver the message exactly once"

    def test_check(self, transport: Transport) -> None:
        result = transport.check()
        assert isinstance(result, CheckResult)
        assert result.ok, "check() failed on a working account: " + "; ".join(
            f"{name}: {text.en}" for name, ok, text in result.steps if not ok
        )
        for name, ok, text in result.steps:
            assert isinstance(name, str) and isinstance(ok, bool) and isinstance(text, T)
            assert text.de and text.en

    # -- errors ----------------------------------------------------------------------------------

    def test_missing_attachment_is_attachment_error(
        self, transport: Transport, sender: Address, tmp_path: Path
    ) -> None:
        msg = self.message(sender, attachments=[Attachment(tmp_path / "fehlt.pdf")])
        result = outcome_of(transport, msg)
        wrong = wrong_outcome(
            result,
            (AttachmentError,),
            "the attached file does not exist; check every "
            "attachment (attachment.check()) before anything goes on the wire",
        )
        if wrong:
            pytest.fail(wrong, pytrace=False)
        assert isinstance(result, AttachmentError)
        self.check_error_texts(result)

    def test_failure_is_public_error(
        self,
        failing_transport: FailureCase,
        sender: Address,
        secrets: Sequence[str],
        _ccm_mail_capture: LogCapture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        case = failing_transport
        result = outcome_of(case.transport, self.message(sender))
        wrong = wrong_outcome(
            result, (case.expected,), case.description or "the failing_transport case", secrets=secrets
        )
        if wrong:
            pytest.fail(wrong, pytrace=False)
        error = result
        assert isinstance(error, CcmMailError)
        assert isinstance(error, (TransportError, UnknownOutcomeError)), (
            "send() failures must be TransportError (not sent) or UnknownOutcomeError (maybe sent)"
        )
        self.check_error_texts(error)
        assert_no_secrets(secrets, {"error": exception_texts(error), **self.log_texts(_ccm_mail_capture, capfd)})

    def check_error_texts(self, error: CcmMailError) -> None:
        """Every error a person may see has a German and an English text."""
        assert error.message.de.strip() and error.message.en.strip(), "message needs de and en text"
        if error.hint is not None:
            assert error.hint.de.strip() and error.hint.en.strip(), "hint needs de and en text"
        assert error.render("de") and error.render("en")
        error.to_dict("de")  # must not raise: the host serializes it

    # -- secrets ---------------------------------------------------------------------------------

    def test_no_secret_in_logs_when_sending(
        self,
        transport: Transport,
        sender: Address,
        received: Received,
        secrets: Sequence[str],
        _ccm_mail_capture: LogCapture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        msg = self.message(sender, bcc=[self.address("archiv")])
        receipt = self.send(transport, msg)
        received(msg.message_id)
        check = transport.check()
        assert_no_secrets(
            secrets,
            {
                "receipt": [repr(receipt)],
                "check": [repr(check)],
                "transport": [repr(transport)],
                **self.log_texts(_ccm_mail_capture, capfd),
            },
        )

    # -- HTTP faults -----------------------------------------------------------------------------

    def test_http_fault(
        self,
        http_fault: str,
        http_transport: Callable[[HttpEndpoint], Transport] | None,
        sender: Address,
        secrets: Sequence[str],
        tmp_path: Path,
        _ccm_mail_capture: LogCapture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        """One send against the kit's fault server: the right outcome class, no second request after
        an outcome that may have delivered the message, no secret in the error or the logs."""
        if http_transport is None:
            pytest.skip("http_transport returned None")
        fault = {f.id: f for f in http_faults()}[http_fault]
        pki = fault_pki()
        with fault.serve(pki) as server:
            endpoint = HttpEndpoint(server.url, pki.write_ca(tmp_path), timeout=self.http_timeout, max_wait=0.0)
            transport = http_transport(endpoint)
            try:
                result = outcome_of(transport, self.message(sender))
            finally:
                transport.close()
            requests, wire = len(server.requests), server.credentials()
        known = [*secrets, *sorted(wire)]
        problems = judge(fault, result, requests=requests, secrets=known)
        if problems:
            pytest.fail(f"[{fault.id}] " + "\n".join(problems), pytrace=False)
        texts = [repr(result)] if isinstance(result, Receipt) else exception_texts(result)
        if isinstance(result, Receipt):
            self.check_receipt(result)
        elif isinstance(result, CcmMailError):
            self.check_error_texts(result)
        assert_no_secrets(
            known,
            {
                "error" if isinstance(result, BaseException) else "receipt": texts,
                **self.log_texts(_ccm_mail_capture, capfd),
            },
        )
