"""The SMTP transport: one connection per message, stdlib ``smtplib`` underneath.

Why one connection per message: ``send`` must be safe from several threads, and AbSys sends a
handful of invoices at a time, so pooling buys little and a shared socket would need a lock that
serializes everything anyway.

The SMTP dialogue is driven command by command (not ``sendmail``) for two reasons: the 250 reply
to the message is the receipt (queue id, time), and the one moment after which a failure means
"maybe sent" — the end-of-data dot has left — must be known exactly. Before it: nothing was sent
(NetworkError, safe to retry); after it: UnknownOutcomeError (never resend).

Envelope and header (plugin API 1.4): ``MAIL FROM`` is always the account's own address (the
mailbox that logs in and receives bounces); the ``From`` header is ``message.sender``, which may
be another address (send-as a shared mailbox; Exchange then needs "Send As" for the account).
A delivery report goes as DSN (RFC 3461: ``NOTIFY=SUCCESS,FAILURE`` on each recipient,
``RET=HDRS``) when the server offers DSN; otherwise the receipt says none was asked for.
"""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import make_msgid
from io import BytesIO
from typing import cast
from urllib.parse import quote, quote_plus

import structlog
from ccm_mail_hookspecs import (
    Address,
    CcmMailError,
    CheckResult,
    ConfigError,
    Message,
    Receipt,
    T,
    Transport,
    TransportError,
    addr_spec,
    build_mime,
    redaction,
)

from . import errors
from .config import SmtpConfig
from .oauth import TokenProvider, xoauth2_base64, xoauth2_string

log = structlog.get_logger("ccm_mail.smtp")

# Postfix "queued as 4XyZ", Exim "id=1rABC-000", Exchange "250 2.6.0 <msgid> [InternalId=123, Hostname=…]"
_QUEUE_ID = (
    re.compile(r"queued as ([A-Za-z0-9._-]+)", re.IGNORECASE),
    re.compile(r"\bid=([A-Za-z0-9._-]+)"),
    re.compile(r"\[InternalId=(\d+)"),
)


def queue_id(reply: str) -> str:
    for pattern in _QUEUE_ID:
        if m := pattern.search(reply):
            return m.group(1)
    return ""


def flatten(mime: EmailMessage, *, utf8: bool) -> bytes:
    """Wire form with CRLF. ``utf8`` keeps non-ASCII addresses raw (SMTPUTF8); otherwise RFC 2047.

    Based on ``mime.policy``, not ``email.policy.SMTP``: build_mime's policy keeps its pre-encoded
    headers as they are, SMTP's would refold them (and hit CPython's folding bugs).
    """
    out = BytesIO()
    base = cast(EmailPolicy, mime.policy)
    BytesGenerator(out, policy=base.clone(linesep="\r\n", utf8=utf8)).flatten(mime)
    return out.getvalue()


def dot_stuff(payload: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency plus the end-of-data marker."""
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", payload) + b".\r\n"


class SmtpTransport(Transport):
    """Sends through an SMTP server (Microsoft 365: smtp.office365.com:587, STARTTLS, XOAUTH2)."""

    type_id = "smtp"

    def __init__(self, config: SmtpConfig, *, account: str = "") -> None:
        self._config = config
        self._account = account
        try:
            self._tls = ssl.create_default_context(cafile=str(config.ca_bundle) if config.ca_bundle else None)
        except (OSError, ssl.SSLError) as exc:  # exists (validated) but is no PEM certificate
            raise ConfigError(
                T(
                    f"CA-Datei {config.ca_bundle} ist kein PEM-Zertifikat: {exc}",
                    f"CA file {config.ca_bundle} is not a PEM certificate: {exc}",
                ),
                details={"fields": ["ca_bundle"]},
            ) from None
        self._tokens = (
            TokenProvider(
                tenant_id=config.tenant_id,
                client_id=config.client_id,
                client_secret=config.client_secret,
                authority_host=config.authority_host,
                ca_bundle=config.authority_ca_bundle,
                timeout=config.timeout,
            )
            if config.auth == "xoauth2"
            else None
        )
        # a lazy proxy, not log.bind(): a bound logger freezes the logging set-up of this moment
        self._log = structlog.get_logger("ccm_mail.smtp", account=account, host=config.host, port=config.port)
        self._secret_forms: frozenset[str] = frozenset()
        self._secret_lock = threading.Lock()
        self._keep_secret(
            *config.secrets, *(quote(s, safe="") for s in config.secrets), *(quote_plus(s) for s in config.secrets)
        )  # msal posts the client secret form-encoded

    # -- secrets ------------------------------------------------------------------------------

    def _keep_secret(self, *forms: str) -> None:
        """Blank these wherever they turn up: in this transport's own replies, errors and log lines,
        and — through the plugin API's registry — in everything the host shows, logs or journals.
        Called for every form of a secret *before* it goes on the wire: a server may echo it."""
        fresh = {f for f in forms if len(f) >= redaction.MIN_LENGTH} - self._secret_forms
        if fresh:
            redaction.remember(*fresh)
            with self._secret_lock:
                # a new set, not .update(): readers iterate the old one without the lock
                self._secret_forms = self._secret_forms | fresh

    def _scrub(self, text: str) -> str:
        return errors.scrub(text, self._secret_forms)

    # -- connection -------------------------------------------------------------------------

    def _where(self) -> tuple[str, int]:
        return self._config.host, self._config.port

    def _fail(self, error: CcmMailError) -> CcmMailError:
        """Log a failure once, in one shape, without anything secret."""
        self._log.warning(
            "smtp.failed",
            kind=error.kind,
            stage=error.details.get("stage"),
            smtp_reply=self._scrub(str(error.details.get("smtp_reply", ""))),
        )
        return error

    def _reply(self, code: int, message: bytes | str) -> str:
        return errors.reply_text(code, message, self._secret_forms)

    def _connect(self) -> smtplib.SMTP:
        cfg = self._config
        try:
            if cfg.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls)
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except smtplib.SMTPConnectError as exc:
            reply = self._reply(exc.smtp_code, exc.smtp_error)
            raise self._fail(
                errors.protocol_error(
                    exc.smtp_code,
                    reply,
                    "connect",
                    T(
                        f"SMTP-Server {cfg.host} verweigert die Sitzung: {reply}",
                        f"SMTP server {cfg.host} refuses the session: {reply}",
                    ),
                )
            ) from exc
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise self._fail(errors.connection_error(exc, cfg.host, cfg.port, "connect")) from exc
        return smtp

    def _ehlo(self, smtp: smtplib.SMTP, stage: str) -> None:
        code, resp = smtp.ehlo()
        if code != 250:
            code, resp = smtp.helo()
        if code != 250:
            reply = self._reply(code, resp)
            raise errors.protocol_error(
                code, reply, stage, T(f"Server lehnt EHLO ab: {reply}", f"Server refuses EHLO: {reply}")
            )

    def _starttls(self, smtp: smtplib.SMTP) -> None:
        if not smtp.has_extn("starttls"):
            raise TransportError(
                T(
                    f"Der Server {self._config.host} bietet kein STARTTLS an.",
                    f"The server {self._config.host} does not offer STARTTLS.",
                ),
                hint=T(
                    "Verschlüsselung »tls« (Port 465) versuchen oder Servernamen/Port prüfen.",
                    "Try encryption 'tls' (port 465) or check host and port.",
                ),
                details={"stage": "starttls"},
            )
        try:
            code, resp = smtp.starttls(context=self._tls)
        except smtplib.SMTPResponseException as exc:  # smtplib raises for every reply but 220
            code, resp = exc.smtp_code, exc.smtp_error
        if code != 220:
            raise errors.starttls_refused(code, self._reply(code, resp), self._config.host)
        self._ehlo(smtp, "ehlo")

    def _authenticate(self, smtp: smtplib.SMTP) -> None:
        cfg = self._config
        if cfg.auth == "none":
            return
        mechanisms = set((smtp.esmtp_features.get("auth") or "").upper().split())
        if not smtp.has_extn("auth"):
            raise TransportError(
                T("Der Server bietet keine Anmeldung (AUTH) an.", "The server offers no login (AUTH)."),
                hint=T(
                    "Verschlüsselung prüfen (viele Server bieten AUTH erst nach STARTTLS an) oder "
                    "Anmeldung »none« wählen.",
                    "Check the encryption (many servers offer AUTH only after STARTTLS) or choose "
                    "authentication 'none'.",
                ),
                details={"stage": "auth"},
            )
        if cfg.auth == "password":
            self._login(smtp, mechanisms)
            return
        assert self._tokens is not None
        if "XOAUTH2" not in mechanisms:
            raise TransportError(
                T(
                    f"Der Server bietet kein XOAUTH2 an (nur: {' '.join(sorted(mechanisms))}).",
                    f"The server does not offer XOAUTH2 (only: {' '.join(sorted(mechanisms))}).",
                ),
                hint=T(
                    "Für Microsoft 365: smtp.office365.com, Port 587, STARTTLS.",
                    "For Microsoft 365: smtp.office365.com, port 587, STARTTLS.",
                ),
                details={"stage": "auth"},
            )
        token = self._tokens.token()
        blob = xoauth2_base64(cfg.username, token)
        self._keep_secret(token, xoauth2_string(cfg.username, token), blob)
        if len(blob) + len("AUTH XOAUTH2 \r\n") <= 512:
            code, resp = smtp.docmd("AUTH", "XOAUTH2 " + blob)
        else:
            # RFC 4954 §4: an initial response that would make the command line longer than
            # 512 octets MUST NOT be sent; real Entra tokens (1-2 KB) always take this path.
            code, resp = smtp.docmd("AUTH", "XOAUTH2")
            if code == 334:
                code, resp = smtp.docmd(blob)
        if code == 334:
            # RFC 7628: on failure the server sends an error challenge; an empty answer ends it.
            code, resp = smtp.docmd("")
        if code not in (235, 503):
            raise errors.auth_error(code, self._reply(code, resp), "XOAUTH2")

    def _login(self, smtp: smtplib.SMTP, mechanisms: set[str]) -> None:
        """AUTH PLAIN (preferred) or LOGIN, UTF-8 encoded.

        Not ``smtplib.login``: it encodes credentials as ASCII and crashes on a password with an
        umlaut or €, and it would fall back to CRAM-MD5, which needs the password stored in clear
        on the server and which Exchange does not offer anyway.
        """
        cfg = self._config
        user, password = cfg.username.encode(), cfg.password.encode()
        if "PLAIN" in mechanisms:
            blob = base64.b64encode(b"\0" + user + b"\0" + password).decode("ascii")
            self._keep_secret(blob)
            code, resp = smtp.docmd("AUTH", "PLAIN " + blob)
        elif "LOGIN" in mechanisms:
            line = base64.b64encode(password).decode("ascii")
            self._keep_secret(line)
            code, resp = smtp.docmd("AUTH", "LOGIN " + base64.b64encode(user).decode("ascii"))
            if code == 334:
                code, resp = smtp.docmd(line)
        else:
            raise TransportError(
                T(
                    f"Kein passendes Anmeldeverfahren (Server bietet: {' '.join(sorted(mechanisms))}).",
                    f"No suitable login method (server offers: {' '.join(sorted(mechanisms))}).",
                ),
                hint=T("Für Microsoft 365 Anmeldung »xoauth2« wählen.", "For Microsoft 365 choose 'xoauth2'."),
                details={"stage": "auth"},
            )
        if code not in (235, 503):  # 503: already authenticated
            raise errors.auth_error(code, self._reply(code, resp), "password")

    def _open(self) -> smtplib.SMTP:
        """Connected, encrypted and logged in; raises public errors (nothing has been sent)."""
        smtp = self._connect()
        stage = "ehlo"
        try:
            self._ehlo(smtp, stage)
            if self._config.security == "starttls":
                stage = "starttls"
                self._starttls(smtp)
            stage = "auth"
            self._authenticate(smtp)
        except CcmMailError as exc:
            _close(smtp)
            raise self._fail(exc) from exc.__cause__
        except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
            _close(smtp)
            if isinstance(exc, smtplib.SMTPResponseException):
                reply = self._reply(exc.smtp_code, exc.smtp_error)
                step = errors.stage_text(stage)
                raise self._fail(
                    errors.protocol_error(
                        exc.smtp_code,
                        reply,
                        stage,
                        T(
                            f"Server-Fehler im Schritt »{step.de}«: {reply}",
                            f"Server error at step '{step.en}': {reply}",
                        ),
                    )
                ) from exc
            raise self._fail(errors.connection_error(exc, *self._where(), stage)) from exc
        return smtp

    # -- Transport API ------------------------------------------------------------------------

    def send(self, message: Message) -> Receipt:
        cfg = self._config
        for attachment in message.attachments:
            attachment.check()  # AttachmentError before anything touches the network
        sender = message.sender or Address(cfg.sender)
        if not message.message_id:
            message = replace(message, message_id=make_msgid(domain=sender.address.rpartition("@")[2]))
        message = replace(message, sender=sender)
        # an IDN domain goes as its A-label (h@müller.de → h@xn--mller-kva.de): only a non-ASCII
        # local part needs SMTPUTF8
        recipients = [addr_spec(a.address) for a in message.recipients()]
        if not recipients:
            raise TransportError(T("Nachricht hat keine Empfänger.", "Message has no recipients."))
        envelope_from = addr_spec(cfg.sender)  # the account's mailbox; From may name another (send-as)
        header_addresses = [
            envelope_from,
            addr_spec(sender.address),
            *recipients,
            *(addr_spec(a.address) for a in message.reply_to),
        ]
        needs_utf8 = not all(a.isascii() for a in header_addresses)
        payload = flatten(build_mime(message), utf8=needs_utf8)

        smtp = self._open()
        notes: list[T] = []
        try:
            dsn = message.request_delivery_receipt and smtp.has_extn("dsn")
            if message.request_delivery_receipt and not dsn:
                notes.append(
                    T(
                        f"Keine Übermittlungsbestätigung angefordert: der Server {cfg.host} bietet kein DSN an.",
                        f"No delivery receipt requested: the server {cfg.host} does not offer DSN.",
                    )
                )
            reply, sent_at = self._transaction(
                smtp, envelope_from, recipients, payload, needs_utf8, header_addresses, dsn=dsn
            )
            _quietly(smtp.quit)  # the message is accepted: a failing QUIT changes nothing
        finally:
            _close(smtp)
        ids = {"smtp_reply": reply, "message_id": message.message_id}
        if qid := queue_id(reply):
            ids["queue_id"] = qid
        if sender.address.lower() != envelope_from.lower():
            ids["sent_as"] = sender.address
        self._log.info("smtp.sent", message_id=message.message_id, recipients=len(recipients), smtp_reply=reply)
        return Receipt(sent_at=sent_at, transport_ids=ids, mime=payload, notes=tuple(notes))

    def _transaction(
        self,
        smtp: smtplib.SMTP,
        sender: str,
        recipients: list[str],
        payload: bytes,
        needs_utf8: bool,
        header_addresses: list[str],
        *,
        dsn: bool = False,
    ) -> tuple[str, datetime]:
        """MAIL, RCPT, DATA; returns the final reply and when it came. ``dsn``: ask for delivery
        reports (RFC 3461; only when the server offers DSN)."""
        handed_over = False
        try:
            options = self._mail_options(smtp, needs_utf8, len(payload), header_addresses)
            if dsn:
                options.append("RET=HDRS")  # the report carries the headers, not the invoice again
            code, resp = smtp.mail(sender, options)
            if code != 250:
                raise errors.sender_error(code, self._reply(code, resp), sender)
            refused = {}
            for rcpt in recipients:
                code, resp = smtp.rcpt(rcpt, ["NOTIFY=SUCCESS,FAILURE"] if dsn else [])
                if code not in (250, 251):
                    refused[rcpt] = self._reply(code, resp)
            if refused:
                _quietly(smtp.rset)
                raise errors.recipients_error(refused)
            code, resp = smtp.docmd("DATA")
            if code != 354:
                raise errors.data_error(code, self._reply(code, resp))
            # smtplib.send uses sendall: if it raises, the end-of-data dot did not fully leave,
            # so the server must discard the incomplete message (RFC 5321 §4.1.1.4).
            smtp.send(dot_stuff(payload))
            handed_over = True
            code, resp = smtp.getreply()
            sent_at = datetime.now(UTC)
            reply = self._reply(code, resp)
            if code != 250:
                raise errors.data_error(code, reply)
            return reply, sent_at
        except CcmMailError as exc:
            raise self._fail(exc) from exc.__cause__
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            if handed_over:
                raise self._fail(errors.unknown_outcome(exc, *self._where())) from exc
            raise self._fail(errors.connection_error(exc, *self._where(), "send")) from exc

    def _mail_options(self, smtp: smtplib.SMTP, needs_utf8: bool, size: int, addresses: list[str]) -> list[str]:
        options: list[str] = []
        if needs_utf8:
            if not smtp.has_extn("smtputf8"):
                foreign = ", ".join(a for a in addresses if not a.isascii())
                raise TransportError(
                    T(
                        f"Adressen mit Umlauten/Sonderzeichen ({foreign}) braucht SMTPUTF8; der Server "
                        f"{self._config.host} bietet es nicht an. Nichts wurde gesendet.",
                        f"Addresses with non-ASCII characters ({foreign}) need SMTPUTF8; the server "
                        f"{self._config.host} does not offer it. Nothing was sent.",
                    ),
                    hint=T(
                        "Die ASCII-Schreibweise der Adresse verwenden oder einen anderen Server.",
                        "Use the ASCII form of the address or another server.",
                    ),
                    details={"stage": "mail", "addresses": [a for a in addresses if not a.isascii()]},
                )
            options.append("SMTPUTF8")
            if smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        if smtp.has_extn("size"):
            limit = int((smtp.esmtp_features.get("size") or "0").split()[0] or 0)
            if limit and size > limit:
                raise errors.too_large_error(size, limit)
            options.append(f"SIZE={size}")
        return options

    def check(self) -> CheckResult:
        """Connect, EHLO, STARTTLS, AUTH, QUIT — each as a step the admin sees."""
        cfg = self._config
        steps: list[tuple[str, bool, T]] = []

        def run(name: str, action: Callable[[], object], ok: T) -> bool:
            try:
                action()
            except CcmMailError as exc:
                steps.append((name, False, T(exc.render("de"), exc.render("en"))))
                return False
            except (OSError, smtplib.SMTPException) as exc:
                err = errors.connection_error(exc, cfg.host, cfg.port, name)
                steps.append((name, False, T(err.render("de"), err.render("en"))))
                return False
            steps.append((name, True, ok))
            return True

        holder: list[smtplib.SMTP] = []
        if not run(
            "connect",
            lambda: holder.append(self._connect()),
            T(
                f"Verbunden mit {cfg.host}:{cfg.port}" + (" (TLS)" if cfg.security == "tls" else ""),
                f"Connected to {cfg.host}:{cfg.port}" + (" (TLS)" if cfg.security == "tls" else ""),
            ),
        ):
            return CheckResult(False, tuple(steps))
        smtp = holder[0]
        try:
            ok = run("ehlo", lambda: self._ehlo(smtp, "ehlo"), T("EHLO beantwortet", "EHLO answered"))
            if ok and cfg.security == "starttls":
                ok = run(
                    "starttls",
                    lambda: self._starttls(smtp),
                    T("STARTTLS, Zertifikat gültig", "STARTTLS, certificate valid"),
                )
            if ok and cfg.auth != "none":
                ok = run(
                    "auth", lambda: self._authenticate(smtp), T(f"Angemeldet ({cfg.auth})", f"Logged in ({cfg.auth})")
                )
            if ok:
                ok = run("quit", smtp.quit, T("Sitzung beendet", "Session closed"))
        finally:
            _close(smtp)
        return CheckResult(ok, tuple(steps))

    def close(self) -> None:
        if self._tokens is not None:
            self._tokens.close()


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except (OSError, smtplib.SMTPException):
        pass  # best effort: the outcome is already decided


def _close(smtp: smtplib.SMTP) -> None:
    _quietly(smtp.close)
