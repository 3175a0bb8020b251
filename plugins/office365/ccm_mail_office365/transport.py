"""The Office 365 transport: what the host calls to send, look up and test."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, ClassVar

import structlog
from ccm_mail_hookspecs import (
    AccountSettings,
    CcmMailError,
    CheckResult,
    Expiry,
    Found,
    Lookup,
    Message,
    Receipt,
    RecipientError,
    T,
    Transport,
)

from . import TYPE_ID, errors
from .config import Office365Config
from .graph import GraphClient
from .payload import plan
from .session import make_session
from .tokens import TokenProvider, token_roles

log = structlog.get_logger("ccm_mail.office365")

MAX_RECIPIENTS = 500


class Office365Transport(Transport):
    """Sends through Microsoft Graph as the account's mailbox. Thread-safe: the session, the token
    provider and the per-mailbox semaphore are shared by all threads."""

    type_id: ClassVar[str] = TYPE_ID

    def __init__(self, config: Office365Config, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """``sleep`` is how the transport waits when Microsoft asks it to (tests pass a recorder)."""
        self.config = config
        self.session = make_session(config)
        self.tokens = TokenProvider(config, self.session, sleep=sleep)
        self.graph = GraphClient(config, self.session, self.tokens, sleep=sleep)

    @classmethod
    def from_settings(cls, settings: AccountSettings) -> Office365Transport:
        return cls(Office365Config.from_settings(settings))

    def send(self, message: Message) -> Receipt:
        """Check the message, pick the route from the size of each request and send it."""
        recipients = message.recipients()
        if not recipients:
            raise RecipientError(T("Die Nachricht hat keinen Empfänger.", "The message has no recipient."))
        if len(recipients) > MAX_RECIPIENTS:
            raise RecipientError(
                T(
                    f"{len(recipients)} Empfänger: Exchange Online erlaubt höchstens {MAX_RECIPIENTS} je Nachricht.",
                    f"{len(recipients)} recipients: Exchange Online allows at most {MAX_RECIPIENTS} per message.",
                )
            )
        route = plan(message, self.config.mailbox)
        facts = self.graph.send(message, route)
        # no log line of its own: the host logs "sending" (debug) and "sent" with these ids
        ids = {
            "mailbox": self.config.mailbox,
            "route": facts["route"],
            "request_id": facts["request_id"],
            "client_request_id": facts["client_request_id"],
        }
        if message.sender is not None and message.sender.address.lower() != self.config.mailbox.lower():
            ids["sent_as"] = message.sender.address
        if message.message_id:
            ids["internet_message_id"] = message.message_id
        return Receipt(
            sent_at=facts["sent_at"], transport_ids=ids, mime=facts.get("mime"), notes=_route_notes(message, facts["route"])
        )

    def lookup(self, message: Message) -> Lookup:
        """Find ``message.message_id`` in Sent Items. Needs Mail.ReadBasic.All or Mail.Read;
        without them (403) the answer is UNSUPPORTED so the host knows it cannot tell."""
        if not message.message_id:
            return Lookup(Found.UNSUPPORTED)
        if not message.save_to_sent:
            # sent without a copy in Sent Items: "not found there" would prove nothing, and the
            # outbox would send it again after its grace period
            return Lookup(Found.UNSUPPORTED)
        resp = self.graph.find_sent(message.message_id)
        if resp.status_code == 403:
            log.info("lookup_unsupported", account=self.config.account, reason="403")
            return Lookup(Found.UNSUPPORTED, transport_ids={"request_id": resp.headers.get("request-id", "")})
        if resp.status_code != 200:
            raise errors.from_graph_response(resp, self.config.secrets)
        value = self.graph.answer(resp, "value", T("Nachsehen in Gesendete Elemente", "Looking in Sent Items"), sending=False)
        items = [m for m in value or [] if isinstance(m, dict) and m.get("internetMessageId") == message.message_id]
        if not items:
            return Lookup(Found.NOT_FOUND)
        item = items[0]
        sent_at = _parse_time(item.get("sentDateTime"))
        return Lookup(
            Found.SENT,
            sent_at=sent_at,
            transport_ids={"graph_message_id": str(item.get("id", "")), "mailbox": self.config.mailbox},
        )

    def credential_expiry(self) -> Expiry | None:
        """The certificate's notAfter, or the client secret's end date as Graph has it (when the
        app may read its own registration: Application.Read.All); None when it cannot be read."""
        from .expiry import from_graph, local

        if self.config.certificate is not None:
            return local({"certificate": str(self.config.certificate), "certificate_password": self.config.certificate_password})
        try:
            resp = self.graph.application()
        except CcmMailError as exc:
            log.info("expiry_unreadable", account=self.config.account, kind=exc.kind)
            return None
        if resp.status_code != 200:  # 403 without Application.Read.All: cannot tell, and that is fine
            log.info("expiry_unreadable", account=self.config.account, status=resp.status_code)
            return None
        try:
            creds = resp.json().get("passwordCredentials") or []
        except (ValueError, AttributeError):
            return None
        return from_graph([c for c in creds if isinstance(c, dict)], self.config.client_secret)

    def check(self) -> CheckResult:
        """ "Verbindung testen": a new token (the credential as configured now), the permissions in
        it, the mailbox through Graph, and which mailboxes the app may reach beyond this one."""
        steps: list[tuple[str, bool, T]] = []
        try:
            result = self.tokens.token_result(fresh=True)  # prove today's credential, not a cached token
        except CcmMailError as exc:
            steps.append(("token", False, _explain(exc)))
            return CheckResult(False, tuple(steps))
        cert = self.tokens.certificate
        how = (
            T(
                f"Zertifikat {cert.sha1_thumbprint}, gültig bis {cert.not_after:%d.%m.%Y}",
                f"certificate {cert.sha1_thumbprint}, valid until {cert.not_after:%Y-%m-%d}",
            )
            if cert
            else T("geheimer Clientschlüssel", "client secret")
        )
        steps.append(
            (
                "token",
                True,
                T(
                    f"Token von {self.config.authority_host} erhalten ({how.de}); gültig noch {result.get('expires_in')} s.",
                    f"Got a token from {self.config.authority_host} ({how.en}); valid for {result.get('expires_in')} s.",
                ),
            )
        )
        roles = token_roles(str(result["access_token"]))
        if roles is not None:
            if "Mail.Send" in roles:
                steps.append(
                    (
                        "permissions",
                        True,
                        T(
                            "Die App hat die Anwendungsberechtigung Mail.Send: " + ", ".join(sorted(roles)),
                            "The app has the application permission Mail.Send: " + ", ".join(sorted(roles)),
                        ),
                    )
                )
            else:
                steps.append(
                    (
                        "permissions",
                        False,
                        T(
                            "Das Token enthält keine Anwendungsberechtigung Mail.Send (vorhanden: "
                            f"{', '.join(sorted(roles)) or 'keine'}). Admin Berechtigung erteilen: "
                            "ccm-mail accounts consent NAME; die Berechtigung muss vom Typ *Anwendung* sein.",
                            "The token carries no application permission Mail.Send (present: "
                            f"{', '.join(sorted(roles)) or 'none'}). Grant admin consent: ccm-mail accounts consent "
                            "NAME; the permission must be of type *Application*.",
                        ),
                    )
                )
        try:
            resp = self.graph.sent_items_folder()
        except CcmMailError as exc:
            steps.append(("mailbox", False, _explain(exc)))
            return CheckResult(False, tuple(steps))
        if resp.status_code == 200:
            steps.append(
                (
                    "mailbox",
                    True,
                    T(
                        f"Postfach {self.config.mailbox} über {self.config.graph_endpoint} erreichbar.",
                        f"Mailbox {self.config.mailbox} reachable through {self.config.graph_endpoint}.",
                    ),
                )
            )
        elif resp.status_code == 403 and roles is not None and "Mail.Send" in roles:
            steps.append(
                (
                    "mailbox",
                    True,
                    T(
                        f"Postfach {self.config.mailbox}: Lesen nicht erlaubt (nur Mail.Send); ob das Postfach existiert, "
                        "zeigt erst eine Testnachricht. Mit Mail.ReadBasic.All prüft der Test auch das Postfach.",
                        f"Mailbox {self.config.mailbox}: reading not allowed (Mail.Send only); only a test mail shows "
                        "whether the mailbox exists. With Mail.ReadBasic.All the test checks the mailbox too.",
                    ),
                )
            )
        else:
            steps.append(("mailbox", False, _explain(errors.from_graph_response(resp, self.config.secrets))))
        from .scope import scope_step

        steps.append(("scope", True, scope_step(roles, self.config.client_id, self.config.mailbox)))
        return CheckResult(all(ok for _, ok, _ in steps), tuple(steps))

    def close(self) -> None:
        self.session.close()


def _route_notes(message: Message, route: str) -> tuple[T, ...]:
    """What the chosen route could not do as asked. Graph's MIME request and the draft's send
    action take no ``saveToSentItems`` (both keep a copy in Sent Items), and only the message
    JSON can ask for a delivery report (``isDeliveryReceiptRequested``)
    (https://learn.microsoft.com/graph/api/user-sendmail, .../message-send)."""
    notes = []
    if not message.save_to_sent and route in ("mime", "draft"):
        notes.append(
            T(
                "Die Nachricht liegt trotzdem in 'Gesendete Elemente': Graph kennt saveToSentItems nur für "
                "JSON-Nachrichten bis 4 MB (hier: "
                + ("MIME für die Archivkopie" if route == "mime" else "Entwurf für große Anhänge")
                + ").",
                "The message is in Sent Items anyway: Graph has saveToSentItems only for JSON messages up to "
                "4 MB (here: " + ("MIME for the archive copy" if route == "mime" else "a draft for large attachments") + ").",
            )
        )
    if message.request_delivery_receipt and route == "mime":
        notes.append(
            T(
                "Keine Übermittlungsbestätigung angefordert: eine MIME-Nachricht (Archivkopie) kann sie bei "
                "Graph nicht anfordern; die Lesebestätigung steht im Kopf (Disposition-Notification-To).",
                "No delivery receipt requested: a MIME message (archive copy) cannot ask Graph for one; the "
                "read receipt is in the header (Disposition-Notification-To).",
            )
        )
    return tuple(notes)


def _explain(exc: CcmMailError) -> T:
    return T(exc.render("de"), exc.render("en"))


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
