"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can misbehave on cue.

Misbehaviour is set per test through :class:`Script`: which reply AUTH/MAIL/RCPT/DATA gives, or
whether the server hangs or drops the connection at a stage. That lets the tests produce the
replies Exchange Online gives (535 5.7.3, 530 5.7.57, 550 5.7.30 …) over a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser, Parser
from typing import Any, Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from ccm_mail_hookspecs import redaction


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    data: bytes
    auth: Any
    #: RFC 3461 parameters as the client sent them: recipient -> NOTIFY, and MAIL's RET
    notify: dict[str, str] = field(default_factory=dict)
    ret: str = ""

    @property
    def message(self) -> EmailMessage:
        if any(o.upper() == "SMTPUTF8" for o in self.mail_options):
            # RFC 6532 headers are raw UTF-8; BytesParser would leave them as surrogate escapes
            return Parser(policy=policy.default).parsestr(self.data.decode("utf-8"))  # type: ignore[return-value]
        return BytesParser(policy=policy.default).parsebytes(self.data)  # type: ignore[return-value]


@dataclass
class Script:
    """How the server answers; the defaults accept everything."""

    auth_reply: str | None = None  #: e.g. "535 5.7.3 Authentication unsuccessful"
    mail_reply: str | None = None  #: reply to MAIL FROM instead of 250
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  #: address -> reply
    data_reply: str = "250 2.0.0 Ok: queued as 4XyZ42"
    hang_at: str | None = None  #: "mail" | "data_end": never answer
    drop_at: str | None = None  #: "rcpt" | "data_end": close the connection
    hang_seconds: float = 5.0
    hang_from: int = 1  #: "data_end" hangs from the n-th message on (1: every one)
    keep: bool = True  #: False: a message it hangs or drops at "data_end" is lost
    greeting: str | None = None  #: e.g. "421 4.3.2 Service not available": refuse the session
    starttls_reply: str | None = None  #: e.g. "454 4.7.0 TLS not available due to temporary reason"
    quit_reply: str | None = None  #: a reply to QUIT instead of 221; "drop": close without one; "hang"
    dsn: bool = False  #: offer DSN (RFC 3461) and record NOTIFY/RET


class Handler:
    def __init__(self, users: dict[str, str], token_check: Callable[[str, str], bool] | None) -> None:
        self.users = users
        self.token_check = token_check
        self.script = Script()
        self.received: list[Received] = []
        #: every line of an AUTH exchange as the client sent it, and whether, at the moment it
        #: arrived, this process's redaction registry already blanked it (the client registers
        #: each secret form *before* sending it; only meaningful when client and server share a process)
        self.sasl_lines: list[tuple[str, bool]] = []
        self.sasl_replies: list[str] = []  #: the scripted AUTH failures as sent
        self.data_ends = 0  #: messages that reached the end-of-data dot

    def scripted_auth_failure(self, server: SMTP) -> str | None:
        """The scripted AUTH reply; ``{got}`` becomes what the client sent in this AUTH exchange,
        as some servers echo it (``535 5.7.8 Error: authentication failed (got …)``)."""
        if self.script.auth_reply is None:
            return None
        got = " ".join(line for line in getattr(server, "sasl_got", []) if line)
        reply = self.script.auth_reply.replace("{got}", got)
        self.sasl_replies.append(reply)
        return reply

    # -- auth ----------------------------------------------------------------------------------

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.script.auth_reply:
            return AuthResult(success=False, handled=False, message=self.scripted_auth_failure(server))
        if isinstance(auth_data, LoginPassword):
            ok = self.users.get(auth_data.login.decode()) == auth_data.password.decode()
            # handled=False: aiosmtpd pushes ``message`` itself (True means "I already replied")
            return AuthResult(
                success=ok,
                handled=False,
                auth_data=auth_data.login.decode(),
                message=None if ok else "535 5.7.3 Authentication unsuccessful",
            )
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628 / Microsoft's XOAUTH2: ``user=…^Aauth=Bearer …^A^A`` in base64."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            blob = base64.b64decode(args[1])
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else ""
        ok = not self.script.auth_reply and self.token_check is not None and self.token_check(user, token)
        if ok:
            return AuthResult(success=True, auth_data=("XOAUTH2", user))
        # the error challenge: base64 JSON; the client answers with an empty line
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(
            success=False,
            handled=False,
            message=self.scripted_auth_failure(server) or "535 5.7.3 Authentication unsuccessful",
        )

    # -- transaction ---------------------------------------------------------------------------

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.script.hang_at == "mail":
            await asyncio.sleep(self.script.hang_seconds)
        if self.script.mail_reply:
            return self.script.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.script.drop_at == "rcpt":
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        if address in self.script.refuse_rcpt:
            return self.script.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.script.dsn:
            responses.insert(len(responses) - 1, "250-DSN")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        self.data_ends += 1
        dsn = getattr(server, "dsn_seen", ({}, ""))
        got = Received(
            envelope.mail_from or "",
            list(envelope.rcpt_tos),
            list(envelope.mail_options),
            data,
            session.auth_data,
            dict(dsn[0]),
            dsn[1],
        )
        if self.script.drop_at == "data_end":
            if self.script.keep:
                self.received.append(got)
            assert server.transport is not None
            server.transport.close()
            return "250 never seen"
        if self.script.hang_at == "data_end" and self.data_ends >= self.script.hang_from:
            if self.script.keep:
                self.received.append(got)  # taken: the client only never hears the 250
            await asyncio.sleep(self.script.hang_seconds)
            return self.script.data_reply
        if self.script.data_reply.startswith("250"):
            self.received.append(got)
        return self.script.data_reply


class ExchangeLikeSMTP(SMTP):
    """RFC 4954 lets a SASL response line be 12288 octets; Exchange takes ~2 KB OAuth tokens.
    aiosmtpd's default 1001-byte line limit would refuse them.

    It also keeps the lines of the current AUTH exchange exactly as the client sent them (for a
    scripted echo), and can refuse the session at the greeting, STARTTLS or QUIT on cue."""

    line_length_limit = 16384

    def _handler(self) -> Handler:
        return cast(Handler, self.event_handler)

    def _script(self) -> Script:
        return self._handler().script

    def _got_auth_line(self, line: str) -> None:
        self.sasl_got.append(line)
        if line:
            self._handler().sasl_lines.append((line, redaction.redact(line) == "***"))

    async def _handle_client(self) -> None:
        greeting = self._script().greeting
        if greeting is None:
            await super()._handle_client()
            return
        await self.push(greeting)  # RFC 5321 §3.1: a 554/421 greeting, then the server closes
        assert self.transport is not None
        self.transport.close()

    async def smtp_AUTH(self, arg: str) -> None:
        self.sasl_got: list[str] = []
        parts = arg.split() if arg else []
        if len(parts) > 1:
            self._got_auth_line(parts[1])  # the initial response
        await super().smtp_AUTH(arg)

    async def challenge_auth(
        self, challenge: str | bytes, encode_to_b64: bool = True, log_client_response: bool = False
    ) -> Any:
        answer = await super().challenge_auth(challenge, encode_to_b64, log_client_response)
        if isinstance(answer, bytes):
            # aiosmtpd decodes with validate=True, so this is the client's line byte for byte
            self._got_auth_line(base64.b64encode(answer).decode("ascii"))
        return answer

    async def smtp_MAIL(self, arg: str) -> None:
        """With ``Script.dsn``: take RFC 3461's RET/ENVID off the line (aiosmtpd knows no DSN)."""
        self.dsn_seen: tuple[dict[str, str], str] = ({}, "")
        if self._script().dsn and arg:
            words = arg.split()
            ret = next((w.split("=", 1)[1] for w in words if w.upper().startswith("RET=")), "")
            arg = " ".join(w for w in words if not w.upper().startswith(("RET=", "ENVID=")))
            self.dsn_seen = ({}, ret)
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        if self._script().dsn and arg:
            words = arg.split()
            notify = next((w.split("=", 1)[1] for w in words if w.upper().startswith("NOTIFY=")), "")
            arg = " ".join(w for w in words if not w.upper().startswith(("NOTIFY=", "ORCPT=")))
            if notify:
                address = words[0].split(":", 1)[-1].strip("<>")
                getattr(self, "dsn_seen", ({}, ""))[0][address] = notify
        await super().smtp_RCPT(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        reply = self._script().starttls_reply
        if reply is None:
            await super().smtp_STARTTLS(arg)
            return
        await self.push(reply)

    async def smtp_QUIT(self, arg: str) -> None:
        reply = self._script().quit_reply
        if reply is None:
            await super().smtp_QUIT(arg)
            return
        if reply == "hang":
            await asyncio.sleep(self._script().hang_seconds)
        elif reply != "drop":
            await self.push(reply)
        assert self.transport is not None
        self.transport.close()


class _Controller(Controller):
    def factory(self) -> SMTP:
        return ExchangeLikeSMTP(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """One aiosmtpd server in a thread.

    :param mode: "starttls" (STARTTLS required before AUTH), "tls" (implicit TLS) or "none".
    """

    def __init__(
        self,
        mode: str,
        tls: ssl.SSLContext | None,
        *,
        users: dict[str, str] | None = None,
        token_check: Callable[[str, str], bool] | None = None,
        smtputf8: bool = True,
        auth_required: bool | None = None,
        **smtp_options: Any,
    ) -> None:
        self.mode = mode
        self.host = "127.0.0.1"
        self.port = free_port()
        self.handler = Handler(users or {}, token_check)
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "enable_SMTPUTF8": smtputf8,
            "authenticator": self.handler.authenticator,
            "server_hostname": "smtp.test",
            # aiosmtpd only counts STARTTLS as TLS: with implicit TLS it would hide AUTH, so there
            # AUTH is neither "required" nor "TLS only" (the socket is TLS from the first byte)
            "auth_required": mode == "starttls" if auth_required is None else auth_required,
            "auth_require_tls": mode == "starttls",
        }
        kwargs.update(smtp_options)
        if mode == "starttls":
            kwargs.update(tls_context=tls, require_starttls=True)
        elif mode == "tls":
            kwargs.update(ssl_context=tls)
        self.controller = _Controller(self.handler, **kwargs)

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def script(self) -> Script:
        return self.handler.script

    @script.setter
    def script(self, value: Script) -> None:
        self.handler.script = value

    def find(self, message_id: str) -> Received:
        for item in self.handler.received:
            if str(item.message["Message-ID"]).strip() == message_id:
                return item
        got = [item.message["Message-ID"] for item in self.handler.received]
        raise AssertionError(f"server did not receive {message_id}; it has {got}")

    def message(self, message_id: str) -> EmailMessage:
        return self.find(message_id).message

    def arrivals(self, message_id: str) -> int:
        """How often a message with this Message-ID has arrived so far (no waiting)."""
        return sum(1 for item in self.handler.received if str(item.message["Message-ID"]).strip() == message_id)

    def envelope_recipients(self, message_id: str) -> list[str]:
        return self.find(message_id).rcpt_tos
