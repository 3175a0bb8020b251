"""Microsoft's answers turned into the public error classes, with texts an admin can act on.

Every error carries Microsoft's support ids (request-id, trace id, correlation id, timestamp) in
``details`` because Microsoft support asks for them first. Texts from Microsoft are passed through
:func:`redact` so a secret can never leak through an echoed request.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ccm_mail_hookspecs import (
    AccessDeniedError,
    AuthenticationError,
    MailboxError,
    MessageTooLargeError,
    NetworkError,
    RecipientError,
    T,
    ThrottledError,
    TransportError,
    UnknownOutcomeError,
    redaction,
)
from ccm_mail_hookspecs.http import Outcome, Verdict

if TYPE_CHECKING:
    import requests

_CONSENT_HINT = T(
    "In ccm-mail „Admin Berechtigung erteilen“ ausführen (ccm-mail accounts consent NAME) oder in Entra → "
    "App-Registrierungen → App → API-Berechtigungen die Berechtigung Microsoft Graph Mail.Send vom Typ "
    "*Anwendung* (nicht Delegiert) hinzufügen und „Administratorzustimmung erteilen“ klicken.",
    'Run "grant admin consent" in ccm-mail (ccm-mail accounts consent NAME) or in Entra → App '
    "registrations → the app → API permissions add Microsoft Graph Mail.Send of type *Application* (not "
    'Delegated) and click "Grant admin consent".',
)


@dataclass(frozen=True, slots=True)
class _Rule:
    cls: type[TransportError]
    message: T
    hint: T | None = None


#: Entra ID (AADSTS) codes → what to tell the admin
AADSTS_RULES: dict[int, _Rule] = {
    7000215: _Rule(
        AuthenticationError,
        T("Der geheime Clientschlüssel ist ungültig (AADSTS7000215).", "The client secret is invalid (AADSTS7000215)."),
        T(
            "Den *Wert* des geheimen Clientschlüssels eintragen, nicht die „Geheime ID“ (Entra → "
            "App-Registrierungen → App → Zertifikate & Geheimnisse). Der Wert ist nur direkt nach dem "
            "Anlegen sichtbar; auf Tippfehler prüfen.",
            'Enter the secret\'s *Value*, not its "Secret ID" (Entra → App registrations → the app → '
            "Certificates & secrets). The value is only shown right after creation; check for typos.",
        ),
    ),
    7000222: _Rule(
        AuthenticationError,
        T("Der geheime Clientschlüssel ist abgelaufen (AADSTS7000222).", "The client secret has expired (AADSTS7000222)."),
        T(
            "In Entra → App-Registrierungen → App → Zertifikate & Geheimnisse einen neuen geheimen "
            "Clientschlüssel anlegen und dessen Wert im Konto eintragen.",
            "Create a new client secret in Entra → App registrations → the app → Certificates & "
            "secrets and enter its value in the account.",
        ),
    ),
    700016: _Rule(
        AuthenticationError,
        T(
            "Die Anwendung wurde im Mandanten nicht gefunden (AADSTS700016).",
            "The application was not found in the tenant (AADSTS700016).",
        ),
        T(
            "Anwendungs-ID (Client) und Mandanten-ID prüfen (Entra → App-Registrierungen → App → "
            "Übersicht). Die App muss in diesem Mandanten registriert sein.",
            "Check the application (client) ID and the tenant ID (Entra → App registrations → the app → "
            "Overview). The app must be registered in this tenant.",
        ),
    ),
    90002: _Rule(
        AuthenticationError,
        T("Der Mandant wurde nicht gefunden (AADSTS90002).", "The tenant was not found (AADSTS90002)."),
        T(
            "Mandanten-ID prüfen (Entra → Übersicht → Mandanten-ID) und die Cloud (weltweit, US Government, "
            "China) passend wählen.",
            "Check the tenant ID (Entra → Overview → Tenant ID) and choose the matching cloud (global, US Government, China).",
        ),
    ),
    900023: _Rule(
        AuthenticationError,
        T("Die Mandanten-ID hat ein ungültiges Format (AADSTS900023).", "The tenant ID is malformed (AADSTS900023)."),
        T("Die GUID aus Entra → Übersicht → Mandanten-ID eintragen.", "Enter the GUID from Entra → Overview → Tenant ID."),
    ),
    65001: _Rule(
        AccessDeniedError,
        T("Die Administratorzustimmung für die App fehlt (AADSTS65001).", "Admin consent for the app is missing (AADSTS65001)."),
        _CONSENT_HINT,
    ),
    50196: _Rule(
        ThrottledError,
        T(
            "Microsoft hat eine Schleife erkannt: zu viele Token-Anfragen (AADSTS50196).",
            "Microsoft detected a loop: too many token requests (AADSTS50196).",
        ),
        T(
            "Einige Minuten warten. Der Token-Cache im Zustandsordner des Kontos muss beschreibbar sein, "
            "damit ein Token wiederverwendet wird.",
            "Wait a few minutes. The token cache in the account's state folder must be writable so a token is reused.",
        ),
    ),
    700027: _Rule(
        AuthenticationError,
        T("Die Zertifikatsanmeldung wurde abgelehnt (AADSTS700027).", "The certificate sign-in was refused (AADSTS700027)."),
        T(
            "Das Zertifikat (öffentlicher Teil, .cer/.pem) in Entra → App-Registrierungen → App → "
            "Zertifikate & Geheimnisse hochladen; Fingerabdruck und Ablaufdatum prüfen.",
            "Upload the certificate (public part, .cer/.pem) in Entra → App registrations → the app → "
            "Certificates & secrets; check its thumbprint and expiry.",
        ),
    ),
    700024: _Rule(
        AuthenticationError,
        T(
            "Die Zertifikatsanmeldung liegt außerhalb der Gültigkeit (AADSTS700024).",
            "The certificate sign-in is outside its validity window (AADSTS700024).",
        ),
        T("Die Uhrzeit dieses Rechners prüfen.", "Check this computer's clock."),
    ),
    7000112: _Rule(
        AuthenticationError,
        T("Die Anwendung ist deaktiviert (AADSTS7000112).", "The application is disabled (AADSTS7000112)."),
        T(
            "In Entra → Unternehmensanwendungen → App → Eigenschaften die Anmeldung aktivieren.",
            "Enable sign-in in Entra → Enterprise applications → the app → Properties.",
        ),
    ),
    500011: _Rule(
        AccessDeniedError,
        T(
            "Microsoft Graph ist in diesem Mandanten nicht verfügbar (AADSTS500011).",
            "Microsoft Graph is not available in this tenant (AADSTS500011).",
        ),
        T("Cloud und Graph-Endpunkt des Kontos prüfen.", "Check the account's cloud and Graph endpoint."),
    ),
}

#: Microsoft Graph error codes → what to tell the admin
GRAPH_RULES: dict[str, _Rule] = {
    "ErrorAccessDenied": _Rule(
        AccessDeniedError,
        T(
            "Microsoft Graph verweigert den Zugriff auf das Postfach (ErrorAccessDenied).",
            "Microsoft Graph denied access to the mailbox (ErrorAccessDenied).",
        ),
        T(
            _CONSENT_HINT.de + " Bei „RBAC für Anwendungen“ muss das Postfach im Verwaltungsbereich der Rolle liegen.",
            _CONSENT_HINT.en + ' With Exchange "RBAC for Applications" the mailbox must be inside the role\'s management scope.',
        ),
    ),
    "Authorization_RequestDenied": _Rule(
        AccessDeniedError,
        T(
            "Microsoft Graph verweigert die Anfrage (fehlende Berechtigung).",
            "Microsoft Graph refused the request (permission missing).",
        ),
        _CONSENT_HINT,
    ),
    "ErrorInvalidUser": _Rule(
        MailboxError,
        T(
            "Das Postfach (E-Mail-Adresse) ist Microsoft unbekannt (ErrorInvalidUser).",
            "Microsoft does not know the mailbox (e-mail address) (ErrorInvalidUser).",
        ),
        T(
            "Die E-Mail-Adresse des Kontos prüfen: sie muss ein Postfach in diesem Mandanten sein.",
            "Check the account's e-mail address: it must be a mailbox in this tenant.",
        ),
    ),
    "MailboxNotEnabledForRESTAPI": _Rule(
        MailboxError,
        T(
            "Das Postfach ist nicht für Exchange Online freigeschaltet (MailboxNotEnabledForRESTAPI).",
            "The mailbox is not enabled for Exchange Online (MailboxNotEnabledForRESTAPI).",
        ),
        T(
            "Dem Benutzer eine Exchange-Online-Lizenz zuweisen; lokale (On-Premises-) Postfächer gehen nicht über Graph.",
            "Assign an Exchange Online licence to the user; on-premises mailboxes do not work through Graph.",
        ),
    ),
    # https://learn.microsoft.com/exchange/recipients-in-exchange-online/manage-permissions-for-recipients:
    # "Send As" lets one mailbox send as another; without it Exchange refuses a "from" other than the
    # sending mailbox (https://learn.microsoft.com/graph/outlook-send-mail-from-other-user)
    "ErrorSendAsDenied": _Rule(
        MailboxError,
        T(
            "Exchange verweigert das Senden als diese Adresse (ErrorSendAsDenied): das "
            "sendende Postfach hat kein Recht „Senden als“ für die Absenderadresse ('from'); "
            "nichts wurde gesendet.",
            "Exchange refused to send as this address (ErrorSendAsDenied): the sending mailbox "
            "has no \"Send As\" right for the sender address ('from'); nothing was sent.",
        ),
        T(
            "Im Exchange Admin Center → Empfänger → Postfächer → das freigegebene Postfach "
            "(die 'from'-Adresse) → Delegierung → „Senden als“ das Postfach des Kontos hinzufügen "
            "(PowerShell: Add-RecipientPermission -Identity <from-Adresse> -Trustee "
            "<Konto-Postfach> -AccessRights SendAs). Änderungen wirken nach bis zu einer Stunde. "
            "Oder das freigegebene Postfach selbst als E-Mail-Adresse des Kontos eintragen.",
            "In the Exchange admin center → Recipients → Mailboxes → the shared mailbox (the "
            "'from' address) → Delegation → \"Send as\" add the account's mailbox (PowerShell: "
            "Add-RecipientPermission -Identity <from address> -Trustee <account mailbox> "
            "-AccessRights SendAs). Changes take up to an hour. Or enter the shared mailbox "
            "itself as the account's e-mail address.",
        ),
    ),
    "ErrorMessageSizeExceeded": _Rule(
        MessageTooLargeError,
        T(
            "Die Nachricht ist für Exchange Online zu groß (ErrorMessageSizeExceeded).",
            "The message is too large for Exchange Online (ErrorMessageSizeExceeded).",
        ),
        T(
            "Anhänge verkleinern oder aufteilen (Standardgrenze ca. 35 MB).",
            "Make attachments smaller or split them (default limit about 35 MB).",
        ),
    ),
    "RequestEntityTooLarge": _Rule(
        MessageTooLargeError,
        T("Die Anfrage an Microsoft Graph ist zu groß (413).", "The request to Microsoft Graph is too large (413)."),
        T(
            "Microsoft Graph nimmt je Anfrage höchstens etwa 4 MB an (Text, HTML und "
            "eingebettete Anhänge, diese base64-kodiert mit 4/3 ihrer Größe). Text oder "
            "Anhänge verkleinern oder auf mehrere Nachrichten aufteilen. Bei kleinen "
            "Nachrichten begrenzt vermutlich ein Proxy die Größe: request-id an den Support.",
            "Microsoft Graph takes at most about 4 MB per request (text, HTML and embedded "
            "attachments, these base64-encoded at 4/3 of their size). Make the text or the "
            "attachments smaller or split them over several messages. If small messages "
            "fail, a proxy probably limits the size: give the request-id to support.",
        ),
    ),
    "ErrorInvalidRecipients": _Rule(
        RecipientError,
        T(
            "Microsoft lehnt mindestens einen Empfänger ab (ErrorInvalidRecipients).",
            "Microsoft refused at least one recipient (ErrorInvalidRecipients).",
        ),
        T("Empfängeradressen prüfen.", "Check the recipient addresses."),
    ),
    "ErrorQuotaExceeded": _Rule(
        MailboxError,
        T("Das Postfach ist voll (ErrorQuotaExceeded).", "The mailbox is full (ErrorQuotaExceeded)."),
        T(
            "Gesendete Elemente oder Entwürfe aufräumen oder das Kontingent erhöhen.",
            "Clean up Sent Items or Drafts, or raise the quota.",
        ),
    ),
    "ErrorExceededMessageLimit": _Rule(
        ThrottledError,
        T(
            "Das Sendelimit des Postfachs ist erreicht (ErrorExceededMessageLimit).",
            "The mailbox's sending limit is reached (ErrorExceededMessageLimit).",
        ),
        T(
            "Exchange Online erlaubt 30 Nachrichten pro Minute und 10.000 Empfänger pro Tag; später erneut senden.",
            "Exchange Online allows 30 messages per minute and 10,000 recipients per day; send again later.",
        ),
    ),
    "InvalidAuthenticationToken": _Rule(
        AuthenticationError,
        T("Microsoft Graph hat das Zugriffstoken abgelehnt.", "Microsoft Graph refused the access token."),
        T(
            "Cloud bzw. Graph-Endpunkt des Kontos prüfen: das Token muss für denselben Graph ausgestellt sein.",
            "Check the account's cloud / Graph endpoint: the token must be issued for the same Graph.",
        ),
    ),
}

_STATUS_RULES: dict[int, _Rule] = {
    401: GRAPH_RULES["InvalidAuthenticationToken"],
    403: GRAPH_RULES["ErrorAccessDenied"],
    413: GRAPH_RULES["RequestEntityTooLarge"],
}

_AADSTS_RE = re.compile(r"AADSTS(\d+)")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``: the account's ``secrets`` and every
    value registered with :func:`ccm_mail_hookspecs.redaction.remember` (the access tokens).
    Call it on the whole text before cutting it short: a cut echo of a token no longer matches."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return redaction.redact(text)


def _first_line(text: str) -> str:
    """Microsoft's descriptions end with Trace/Correlation/Timestamp lines; those go to details."""
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def from_token_result(result: Mapping[str, Any], secrets: Iterable[str] = ()) -> TransportError:
    """An error for a failed msal ``acquire_token_for_client`` result."""
    description = redact(str(result.get("error_description") or ""), secrets)
    codes = list(result.get("error_codes") or [])
    if not codes:
        codes = [int(m) for m in _AADSTS_RE.findall(description)]
    details: dict[str, Any] = {
        "code": f"AADSTS{codes[0]}" if codes else str(result.get("error") or ""),
        "error": result.get("error"),
        "trace_id": result.get("trace_id") or _grab(description, "Trace ID"),
        "correlation_id": result.get("correlation_id") or _grab(description, "Correlation ID"),
        "timestamp": result.get("timestamp") or _grab(description, "Timestamp"),
        "description": _first_line(description),
    }
    rule = next((AADSTS_RULES[c] for c in codes if c in AADSTS_RULES), None)
    if rule is None:
        return AuthenticationError(
            T(
                f"Microsoft hat kein Token ausgestellt: {details['description'] or details['code']}",
                f"Microsoft issued no token: {details['description'] or details['code']}",
            ),
            hint=T("Mandanten-ID, Anwendungs-ID und Anmeldedaten prüfen.", "Check tenant ID, application ID and credentials."),
            details=details,
        )
    return rule.cls(rule.message, hint=rule.hint, details=details)


def body_start(resp: requests.Response, secrets: Iterable[str] = (), limit: int = 200) -> str:
    """The first characters of an answer's body, one line, without secrets: enough for support to
    recognise a proxy's page, short enough for a log line."""
    text = " ".join(strip_queries(redaction.redact(redact(resp.text or "", secrets))).split())
    return text[:limit]


def _json_body(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def sign_in_busy(
    resp: requests.Response, waited: float, retry_after: float | None, secrets: Iterable[str] = ()
) -> ThrottledError:
    """The sign-in host kept answering 5xx/429: Entra's ids and code, never msal's bare text."""
    body = _json_body(resp)
    result = body if isinstance(body, Mapping) else {}
    base = from_token_result(result, secrets).details if result else {}
    host = urlsplit(str(resp.url)).netloc
    details: dict[str, Any] = {
        **base,
        "status": resp.status_code,
        "host": host,
        "code": base.get("code") or f"HTTP {resp.status_code}",
        "waited_seconds": round(waited, 1),
    }
    if not result:
        details["body"] = body_start(resp, secrets)
    why = f"HTTP {resp.status_code}" + (f", {details['code']}" if details["code"] != f"HTTP {resp.status_code}" else "")
    if retry_after is not None and retry_after > waited:
        de_wait, en_wait = f"; Microsoft bittet, {retry_after:.0f} s zu warten", f"; Microsoft asks to wait {retry_after:.0f} s"
    else:
        de_wait = en_wait = ""
    return ThrottledError(
        T(
            f"Der Anmeldedienst von Microsoft ({host}) ist überlastet oder nicht verfügbar ({why}){de_wait}. "
            f"Nach {waited:.0f} s Wartezeit aufgegeben; es wurde nichts gesendet.",
            f"Microsoft's sign-in service ({host}) is busy or unavailable ({why}){en_wait}. "
            f"Gave up after waiting {waited:.0f} s; nothing was sent.",
        ),
        hint=T(
            "Später erneut senden. Hält es an, Trace-ID und Correlation-ID an den Microsoft-Support geben.",
            "Send again later. If it persists, give the trace id and correlation id to Microsoft support.",
        ),
        details=details,
    )


def unreadable_answer(resp: requests.Response, what: T, secrets: Iterable[str] = (), *, sending: bool = True) -> TransportError:
    """An answer whose body is not the JSON Microsoft sends: a proxy's page or a cut-off body.
    Classified by its status only; the caller decides what a 5xx means for a send. ``sending``
    false: the request was no send (a lookup), so nothing is said about the message."""
    host = urlsplit(str(resp.url)).netloc
    body = body_start(resp, secrets)
    details: dict[str, Any] = {
        "code": f"HTTP {resp.status_code}",
        "status": resp.status_code,
        "host": host,
        "content_type": resp.headers.get("Content-Type", ""),
        "body": body,
        "request_id": resp.headers.get("request-id") or resp.headers.get("x-ms-request-id"),
    }
    cls = NetworkError if resp.status_code == 407 else TransportError
    return cls(
        T(
            f"{what.de}: {host} antwortete HTTP {resp.status_code} ohne lesbare Antwort von Microsoft "
            f"(„{body[:80]}“)." + (" Die Nachricht wurde nicht gesendet." if sending else ""),
            f"{what.en}: {host} answered HTTP {resp.status_code} without a readable answer from Microsoft "
            f'("{body[:80]}").' + (" The message was not sent." if sending else ""),
        ),
        hint=T(
            "Meist steht ein Proxy oder eine Firewall dazwischen: Proxy-Einstellung (proxy) und Freigaben für "
            "die Microsoft-Hosts prüfen.",
            "Usually a proxy or firewall is in between: check the proxy setting (proxy) and that the Microsoft "
            "hosts are allowed.",
        ),
        details=details,
    )


def from_discovery_error(exc: Exception, secrets: Iterable[str] = ()) -> TransportError:
    """msal raises ``ValueError`` from its constructor when OIDC discovery fails; for an unknown
    tenant Microsoft's JSON (with AADSTS90002) is embedded in the message."""
    texts: list[str] = []  # msal re-raises its own ValueError; Microsoft's answer is in the context
    cur: BaseException | None = exc
    while cur is not None and len(texts) < 5:
        texts.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    text = redact(" ".join(reversed(texts)), secrets)
    body: dict[str, Any] = {}
    start = text.find("{")
    if start >= 0:
        try:
            body, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            body = {}
    if body.get("error_codes") or _AADSTS_RE.search(text):
        merged = dict(body)
        merged.setdefault("error_description", body.get("error_description") or text)
        return from_token_result(merged, secrets)
    return AuthenticationError(
        T(
            "Die Anmeldeadresse von Microsoft ist nicht erreichbar oder unbekannt.",
            "Microsoft's sign-in endpoint cannot be used.",
        ),
        hint=T("Mandanten-ID, Cloud und Anmelde-Host prüfen.", "Check tenant ID, cloud and authority host."),
        details={"code": "discovery_failed", "description": _first_line(text)[:300]},
    )


def _graph_error(resp: requests.Response) -> Mapping[str, Any] | None:
    """Graph's ``{"error": {...}}`` object, or None when the body is something else."""
    body = _json_body(resp)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return body["error"]
    return None


def graph_details(resp: requests.Response, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Graph's code, message and ids of a response (ids from the body, else the headers). When
    the body is not Graph's error JSON (a proxy's page, a cut body), its start goes in ``body``."""
    error = _graph_error(resp)
    inner = (error or {}).get("innerError") or (error or {}).get("innererror") or {}
    if not isinstance(inner, Mapping):
        inner = {}
    details = {
        "status": resp.status_code,
        "code": str((error or {}).get("code") or f"HTTP {resp.status_code}"),
        "description": redact(str((error or {}).get("message") or resp.reason or ""), secrets)[:500],
        "request_id": inner.get("request-id") or resp.headers.get("request-id"),
        "client_request_id": inner.get("client-request-id") or resp.headers.get("client-request-id"),
        "timestamp": inner.get("date") or resp.headers.get("Date"),
    }
    if error is None and resp.content:
        details.update(content_type=resp.headers.get("Content-Type", ""), body=body_start(resp, secrets))
    return details


def from_graph_response(resp: requests.Response, secrets: Iterable[str] = ()) -> TransportError:
    """An error for a Graph answer with status >= 400 that is not throttling. Graph's own error
    JSON is mapped by its code; any other body by the status alone (4xx: not sent)."""
    details = graph_details(resp, secrets)
    if _graph_error(resp) is None and resp.content:
        if resp.status_code == 413:
            too_large = GRAPH_RULES["RequestEntityTooLarge"]
            return too_large.cls(too_large.message, hint=too_large.hint, details=details)
        err = unreadable_answer(resp, T("Microsoft Graph", "Microsoft Graph"), secrets)
        err.details.update({k: v for k, v in details.items() if v is not None and k not in err.details})
        return err
    code = details["code"]
    rule = GRAPH_RULES.get(code) or _STATUS_RULES.get(resp.status_code)
    if rule is None and resp.status_code == 404 and "mailbox" in details["description"].lower():
        rule = GRAPH_RULES["ErrorInvalidUser"]
    if rule is not None:
        return rule.cls(rule.message, hint=rule.hint, details=details)
    return TransportError(
        T(
            f"Microsoft Graph hat die Anfrage abgelehnt: {code} – {details['description']}",
            f"Microsoft Graph refused the request: {code} – {details['description']}",
        ),
        hint=T("Die Meldung und die request-id an den Support geben.", "Give the message and the request-id to support."),
        details=details,
    )


def too_large_for_archive(body_bytes: int) -> MessageTooLargeError:
    """An archived message goes as MIME in one request; this one does not fit (nothing was sent)."""
    return MessageTooLargeError(
        T(
            f"Die Nachricht ist für eine Archivkopie über Microsoft Graph zu groß ({body_bytes / 1e6:.1f} MB als "
            "MIME-Anfrage, höchstens 4 MB): Graph nimmt eine Nachricht nur in einer Anfrage als MIME, und nur dann "
            "sind die archivierten Bytes genau die gesendeten. Nichts wurde gesendet.",
            f"The message is too large for an archive copy through Microsoft Graph ({body_bytes / 1e6:.1f} MB as a "
            "MIME request, at most 4 MB): Graph takes a message as MIME only in one request, and only then are the "
            "archived bytes exactly the bytes sent. Nothing was sent.",
        ),
        hint=T(
            "Anhänge verkleinern (zusammen unter etwa 2,9 MB), oder diesen Zweck über ein SMTP-Konto senden "
            "(dort gibt es diese Grenze nicht).",
            "Make the attachments smaller (under about 2.9 MB together), or send this purpose through an SMTP "
            "account (which has no such limit).",
        ),
        details={"code": "archive_too_large"},
    )


def throttled(waited: float, cap: float, last: Mapping[str, Any]) -> ThrottledError:
    return ThrottledError(
        T(
            f"Microsoft drosselt das Postfach; nach {waited:.0f} s Wartezeit (Grenze {cap:.0f} s) aufgegeben. "
            "Die Nachricht wurde nicht gesendet.",
            f"Microsoft is throttling the mailbox; gave up after waiting {waited:.0f} s (cap {cap:.0f} s). "
            "The message was not sent.",
        ),
        hint=T(
            "Später erneut senden; Exchange Online erlaubt 30 Nachrichten pro Minute und Postfach.",
            "Send again later; Exchange Online allows 30 messages per minute per mailbox.",
        ),
        details={**last, "waited_seconds": round(waited, 1)},
    )


_TLS_HINT = T(
    "CA-Bündel des Kontos (ca_bundle), die Uhrzeit dieses Rechners und einen TLS-prüfenden Proxy prüfen.",
    "Check the account's CA bundle (ca_bundle), this computer's clock and any TLS-inspecting proxy.",
)
_UNKNOWN_HINT = T(
    "Nicht blind erneut senden: zuerst in „Gesendete Elemente“ nachsehen (ccm-mail prüft das mit der "
    "Message-ID, wenn die App Mail.ReadBasic.All oder Mail.Read hat).",
    "Do not resend blindly: check Sent Items first (ccm-mail does this by Message-ID when the app "
    "has Mail.ReadBasic.All or Mail.Read).",
)


def network_error(verdict: Verdict, url_host: str, provider: str = "Microsoft Graph") -> TransportError:
    """No usable answer, and nothing was sent: the request never reached Microsoft (DNS, refused,
    proxy, TLS handshake), or it carried no mail (a token request, a lookup, an upload chunk), so
    even a failure after it left sent nothing. The text says why (``verdict.why``)."""
    if verdict.outcome is not Outcome.NOT_SENT:  # a request that carries no mail: nothing was sent
        verdict = dataclasses.replace(verdict, outcome=Outcome.NOT_SENT)
    err = verdict.error(
        provider,
        host=url_host,
        hint=_TLS_HINT if verdict.reason in ("tls", "ca_bundle") else None,
        details={"code": f"network_{verdict.reason}"},
    )
    assert isinstance(err, TransportError)  # a not-sent verdict gives a TransportError
    return err


def unknown_outcome(verdict: Verdict, url_host: str, details: Mapping[str, Any] | None = None) -> UnknownOutcomeError:
    """A send request may have reached Microsoft: no answer came, or one that does not say
    whether the mail went out (500, 502, 503/504 without ``Retry-After``)."""
    if verdict.outcome is not Outcome.UNKNOWN:
        raise ValueError(f"not an unknown outcome: {verdict}")
    if verdict.status is None:
        message = T(
            f"Die Anfrage an {url_host} wurde gesendet, aber es kam keine Antwort ({verdict.why.de}): die "
            "Nachricht ist vielleicht gesendet worden, vielleicht nicht.",
            f"The request to {url_host} was sent but no answer came ({verdict.why.en}): the message may "
            "or may not have been sent.",
        )
    else:
        message = T(
            f"{url_host} antwortete auf die gesendete Anfrage mit {verdict.why.de}: die Nachricht ist "
            "vielleicht gesendet worden, vielleicht nicht.",
            f"{url_host} answered the sent request with {verdict.why.en}: the message may or may not have been sent.",
        )
    err = verdict.error("Microsoft Graph", host=url_host, message=message, hint=_UNKNOWN_HINT, details=details)
    assert isinstance(err, UnknownOutcomeError)  # an unknown verdict gives an UnknownOutcomeError
    return err


_QUERY_RE = re.compile(r"\?[^\s'\")]*")


def strip_queries(text: str) -> str:
    """URLs without their query: an upload URL carries its pre-authenticated token there."""
    return _QUERY_RE.sub("?…", text)


def _grab(text: str, label: str) -> str | None:
    m = re.search(re.escape(label) + r":\s*([0-9A-Za-z:\-. ]+?)(?:\r|\n|$|\s{2})", text)
    return m.group(1).strip() if m else None
