"""SMTP replies and socket failures → the public ccm-mail errors, with texts an admin can act on.

Every error carries the server's reply in ``details["smtp_reply"]`` (support asks for it) and the
SMTP stage it happened in. Replies pass :func:`scrub` first: a server that echoes what it got must
not leak a password into a journal.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable, Mapping

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

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_THROTTLE_WORDS = re.compile(r"throttl|rate limit|too many|quota|concurrent", re.IGNORECASE)

# The checklist Microsoft's 5.7.3 / 5.7.139 / 5.7.57 come down to for app-only XOAUTH2.
_O365_CHECKLIST = T(
    "Prüfen: (1) die App hat die Anwendungsberechtigung SMTP.SendAsApp mit Administratorzustimmung; "
    "(2) SMTP AUTH ist am Postfach aktiviert (Set-CASMailbox -SmtpClientAuthenticationDisabled $false); "
    "(3) der Dienstprinzipal der App ist in Exchange registriert (New-ServicePrincipal) und hat "
    "FullAccess/SendAs auf das Postfach; (4) bei Anmeldung »password«: Standardauthentifizierung "
    "(Basic Auth) ist bei Microsoft 365 abgeschaltet – XOAUTH2 verwenden.",
    "Check: (1) the app has the application permission SMTP.SendAsApp with admin consent; "
    "(2) SMTP AUTH is enabled on the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false); "
    "(3) the app's service principal is registered in Exchange (New-ServicePrincipal) and has "
    "FullAccess/SendAs on the mailbox; (4) with authentication 'password': basic auth is switched off "
    "in Microsoft 365 – use XOAUTH2.",
)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret (longest first, so no part of a longer one survives) as ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= redaction.MIN_LENGTH:
            text = text.replace(secret, "***")
    return text


def reply_text(code: int, message: bytes | str, secrets: Iterable[str] = ()) -> str:
    """``535 5.7.3 Authentication unsuccessful`` from smtplib's ``(code, msg)``; one line.

    Secrets are blanked *before* the reply is folded onto one line and cut to length: a cut or
    re-spaced echo of a secret would no longer match it, and half an access token is a leak too.
    """
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    text = scrub(text, secrets)
    return f"{code} {' '.join(text.split())}".strip()[:500]


def enhanced_code(reply: str) -> str:
    m = _ENHANCED.search(reply)
    return ".".join(m.groups()) if m else ""


#: how each SMTP stage id (kept as is in ``details["stage"]`` for programs) reads in a sentence
_STAGES = {
    "connect": T("Verbindungsaufbau", "connecting"),
    "ehlo": T("Begrüßung (EHLO)", "greeting (EHLO)"),
    "starttls": T("Verschlüsselung (STARTTLS)", "encryption (STARTTLS)"),
    "auth": T("Anmeldung", "login"),
    "mail": T("Absender (MAIL FROM)", "sender (MAIL FROM)"),
    "rcpt": T("Empfänger (RCPT TO)", "recipients (RCPT TO)"),
    "send": T("Übertragung der Nachricht", "sending the message"),
    "data": T("Übertragung der Nachricht", "sending the message"),
    "quit": T("Abmeldung (QUIT)", "logout (QUIT)"),
}


def stage_text(stage: str) -> T:
    return _STAGES.get(stage, T(stage, stage))


# OpenSSL's verify codes an admin meets, in German (English keeps OpenSSL's own words)
_VERIFY_DE = {
    9: "das Zertifikat ist noch nicht gültig",
    10: "das Zertifikat ist abgelaufen",
    18: "das Zertifikat ist selbst signiert",
    19: "die Zertifikatskette endet bei einer CA, der dieser Rechner nicht vertraut",
    20: "die ausstellende CA ist auf diesem Rechner nicht bekannt",
    21: "die ausstellende CA ist auf diesem Rechner nicht bekannt",
    23: "das Zertifikat wurde widerrufen",
    62: "es gilt nicht für den Servernamen {host}",
    64: "es gilt nicht für den Servernamen {host}",
}


def _verify_text(exc: ssl.SSLCertVerificationError, host: str) -> T:
    english = str(exc.verify_message or exc.reason or exc)
    german = _VERIFY_DE.get(exc.verify_code or 0)
    return T(german.format(host=host) if german else f"Prüfung fehlgeschlagen (OpenSSL: {english})", english)


def _details(reply: str, stage: str, **extra: object) -> dict[str, object]:
    return {"smtp_reply": reply, "stage": stage, **extra}


def _transient(reply: str, stage: str, message: T) -> TransportError:
    """A 4xx: nothing was sent and trying later may work."""
    if _THROTTLE_WORDS.search(reply) or reply.startswith("421"):
        return ThrottledError(
            message, hint=T("Später erneut senden.", "Send again later."), details=_details(reply, stage)
        )
    error = TransportError(
        message,
        hint=T("Vorübergehender Fehler; später erneut senden.", "Temporary failure; send again later."),
        details=_details(reply, stage),
    )
    error.retryable = True
    return error


def auth_error(code: int, reply: str, mechanism: str) -> TransportError:
    """The server refused AUTH (or a command that needs it)."""
    enhanced = enhanced_code(reply)
    if code // 100 == 4:
        return _transient(
            reply,
            "auth",
            T(f"Anmeldung am SMTP-Server vorübergehend abgelehnt: {reply}", f"SMTP login temporarily refused: {reply}"),
        )
    if enhanced == "5.7.30":
        return AuthenticationError(
            T(
                "Der Server nimmt keine Anmeldung mit Passwort (Basic Auth) mehr an.",
                "The server no longer accepts password login (basic auth).",
            ),
            hint=T(
                "Im Konto Anmeldung »xoauth2« wählen (Mandanten-ID, Anwendungs-ID, geheimer "
                "Clientschlüssel) oder den Kontotyp »Office 365« (Graph) verwenden.",
                "Choose authentication 'xoauth2' in the account (tenant ID, client ID, client "
                "secret) or use the 'Office 365' (Graph) account type.",
            ),
            details=_details(reply, "auth", mechanism=mechanism),
        )
    if enhanced == "5.7.9" or code == 534:
        # RFC 4954: the server's policy wants a stronger mechanism; the credentials were not judged
        if mechanism == "XOAUTH2":
            message = T(
                "Der Server lehnt das Anmeldeverfahren XOAUTH2 als zu schwach ab.",
                "The server refuses the login method XOAUTH2 as too weak.",
            )
        else:
            message = T(
                "Der Server lehnt die Anmeldung mit Passwort als zu schwach ab; Benutzername und "
                "Passwort wurden gar nicht geprüft.",
                "The server refuses password login as too weak; user name and password were not even checked.",
            )
        return AuthenticationError(
            message,
            hint=T(
                "Im Konto Anmeldung »xoauth2« wählen (Mandanten-ID, Anwendungs-ID, geheimer "
                "Clientschlüssel). " + _O365_CHECKLIST.de,
                "Choose authentication 'xoauth2' in the account (tenant ID, client ID, client secret). "
                + _O365_CHECKLIST.en,
            ),
            details=_details(reply, "auth", mechanism=mechanism),
        )
    if enhanced == "5.7.139":
        return AuthenticationError(
            T(
                "SMTP AUTH ist für den Mandanten oder das Postfach abgeschaltet.",
                "SMTP AUTH is disabled for the tenant or the mailbox.",
            ),
            hint=_O365_CHECKLIST,
            details=_details(reply, "auth", mechanism=mechanism),
        )
    if enhanced in ("5.7.3", "5.7.57") or mechanism == "XOAUTH2":
        return AuthenticationError(
            T("Anmeldung am SMTP-Server fehlgeschlagen.", "SMTP login failed."),
            hint=_O365_CHECKLIST,
            details=_details(reply, "auth", mechanism=mechanism),
        )
    return AuthenticationError(
        T(
            "Anmeldung am SMTP-Server fehlgeschlagen: Benutzername oder Passwort falsch.",
            "SMTP login failed: wrong user name or password.",
        ),
        hint=T("Benutzername und Passwort im Konto prüfen.", "Check user name and password in the account."),
        details=_details(reply, "auth", mechanism=mechanism),
    )


def sender_error(code: int, reply: str, sender: str) -> TransportError:
    """MAIL FROM was refused."""
    enhanced = enhanced_code(reply)
    if code // 100 == 4:
        return _transient(
            reply, "mail", T(f"Absender vorübergehend abgelehnt: {reply}", f"Sender temporarily refused: {reply}")
        )
    if enhanced == "5.7.57" or code == 530:
        return AuthenticationError(
            T(
                "Der Server verlangt eine Anmeldung, bevor er Mail annimmt.",
                "The server requires a login before it accepts mail.",
            ),
            hint=T(
                "Im Konto eine Anmeldung wählen (»xoauth2« oder »password«). " + _O365_CHECKLIST.de,
                "Choose an authentication in the account ('xoauth2' or 'password'). " + _O365_CHECKLIST.en,
            ),
            details=_details(reply, "mail", sender=sender),
        )
    if code == 552 or enhanced in ("5.3.4", "5.2.3"):
        return MessageTooLargeError(
            T("Nachricht zu groß für den Server.", "Message too large for the server."),
            hint=T("Anhänge verkleinern.", "Make the attachments smaller."),
            details=_details(reply, "mail"),
        )
    return MailboxError(
        T(f"Der Server lehnt den Absender {sender} ab.", f"The server refuses the sender {sender}."),
        hint=T(
            "Die Absenderadresse muss das angemeldete Postfach sein oder Senden-als-Rechte haben.",
            "The sender address must be the logged-in mailbox or have send-as rights.",
        ),
        details=_details(reply, "mail", sender=sender),
    )


def recipients_error(refused: Mapping[str, str]) -> TransportError:
    """One or more RCPT TO were refused: nothing is sent, not even to the others."""
    listed = ", ".join(refused)
    replies = "; ".join(f"{a}: {r}" for a, r in refused.items())
    if all(r.startswith("4") for r in refused.values()):
        return _transient(
            replies,
            "rcpt",
            T(f"Empfänger vorübergehend abgelehnt: {listed}", f"Recipients temporarily refused: {listed}"),
        )
    return RecipientError(
        T(
            f"Der Server lehnt Empfänger ab: {listed}. Die Nachricht wurde an niemanden gesendet.",
            f"The server refuses recipients: {listed}. The message was sent to nobody.",
        ),
        hint=T("Adressen prüfen.", "Check the addresses."),
        details=_details(replies, "rcpt", recipients=list(refused)),
    )


def data_error(code: int, reply: str) -> TransportError:
    """The server answered the message itself (DATA) with an error: it did not take it."""
    enhanced = enhanced_code(reply)
    if code // 100 == 4:
        return _transient(
            reply, "data", T(f"Nachricht vorübergehend abgelehnt: {reply}", f"Message temporarily refused: {reply}")
        )
    if code == 552 or enhanced in ("5.3.4", "5.2.3"):
        return MessageTooLargeError(
            T("Nachricht zu groß für den Server.", "Message too large for the server."),
            hint=T("Anhänge verkleinern.", "Make the attachments smaller."),
            details=_details(reply, "data"),
        )
    if "SendAsDenied" in reply or enhanced in ("5.2.252", "5.7.60"):
        return MailboxError(
            T(
                "Das Postfach darf nicht als diese Absenderadresse senden.",
                "The mailbox may not send as this sender address.",
            ),
            hint=T(
                "Senden-als-Recht für die Absenderadresse erteilen oder als Absender das angemeldete "
                "Postfach eintragen.",
                "Grant send-as rights for the sender address or use the logged-in mailbox as sender.",
            ),
            details=_details(reply, "data"),
        )
    if enhanced.startswith("5.7."):
        return AccessDeniedError(
            T(f"Der Server verweigert die Nachricht: {reply}", f"The server refuses the message: {reply}"),
            hint=T("Senderechte des Postfachs prüfen.", "Check the mailbox's send rights."),
            details=_details(reply, "data"),
        )
    return TransportError(
        T(f"Der Server lehnt die Nachricht ab: {reply}", f"The server refuses the message: {reply}"),
        details=_details(reply, "data"),
    )


def size_text(size: int) -> T:
    """A size as an admin reads it: bytes below 1 KB, else KB or MB with at most one decimal
    (German with a decimal comma). Powers of 1024, as Windows Explorer and Microsoft's limits
    count them ("150 MB" for Exchange Online is 157,286,400 bytes)."""
    if size < 1024:
        return T(f"{size} Bytes", f"{size} bytes")
    value, unit = (size / 2**20, "MB") if size >= 2**20 else (size / 1024, "KB")
    text = f"{value:.1f}".removesuffix(".0")
    return T(f"{text.replace('.', ',')} {unit}", f"{text} {unit}")


def _exact_bytes(size: int) -> T:
    return T(f"{size:,} Bytes".replace(",", "."), f"{size:,} bytes")


def too_large_error(size: int, limit: int) -> MessageTooLargeError:
    shown, allowed = size_text(size), size_text(limit)
    if shown == allowed:  # "150 MB größer als 150 MB" would make no sense: show the exact bytes
        shown, allowed = _exact_bytes(size), _exact_bytes(limit)
    return MessageTooLargeError(
        T(
            f"Nachricht ({shown.de}) größer als das Limit des Servers ({allowed.de}).",
            f"Message ({shown.en}) exceeds the server's limit ({allowed.en}).",
        ),
        hint=T("Anhänge verkleinern oder aufteilen.", "Make attachments smaller or split them."),
        details={"size": size, "limit": limit, "stage": "size"},
    )


def starttls_refused(code: int, reply: str, host: str) -> TransportError:
    """The server answered STARTTLS with an error. The transport never goes on without TLS."""
    message = T(
        f"Der Server {host} lehnt STARTTLS ab: {reply}. Ohne Verschlüsselung wird weder angemeldet "
        "noch gesendet; nichts wurde gesendet.",
        f"The server {host} refuses STARTTLS: {reply}. Without encryption nothing is logged in or "
        "sent; nothing was sent.",
    )
    if code // 100 == 4:
        return _transient(reply, "starttls", message)
    return TransportError(
        message,
        hint=T(
            "Verschlüsselung »tls« (Port 465) versuchen oder den Betreiber des Servers fragen.",
            "Try encryption 'tls' (port 465) or ask the server's operator.",
        ),
        details=_details(reply, "starttls"),
    )


def protocol_error(code: int, reply: str, stage: str, what: T) -> TransportError:
    """An unexpected reply to a command that is not about auth, sender, recipients or data."""
    if code // 100 == 4:
        return _transient(reply, stage, what)
    return TransportError(what, details=_details(reply, stage))


def connection_error(exc: BaseException, host: str, port: int, stage: str) -> NetworkError:
    """The server could not be reached or the connection broke **before** the message went out."""
    where = f"{host}:{port}"
    step = stage_text(stage)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = _verify_text(exc, host)
        return NetworkError(
            T(
                f"Zertifikat des SMTP-Servers {where} ungültig: {why.de}",
                f"Certificate of SMTP server {where} is not valid: {why.en}",
            ),
            hint=T(
                "Servername prüfen (muss zum Zertifikat passen). Bei eigener CA die CA-Datei im Konto "
                "angeben (ca_bundle).",
                "Check the host name (must match the certificate). For a private CA set the CA file "
                "in the account (ca_bundle).",
            ),
            details={"stage": stage, "reason": "certificate"},
        )
    if isinstance(exc, ssl.SSLError):
        return NetworkError(
            T(
                f"TLS-Verbindung zu {where} fehlgeschlagen: {exc.reason or exc}",
                f"TLS connection to {where} failed: {exc.reason or exc}",
            ),
            hint=T(
                "Verschlüsselung und Port prüfen: TLS gehört zu Port 465, STARTTLS zu Port 587.",
                "Check encryption and port: TLS belongs to port 465, STARTTLS to port 587.",
            ),
            details={"stage": stage, "reason": "tls"},
        )
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError(
            T(f"SMTP-Server {where} lehnt die Verbindung ab.", f"SMTP server {where} refuses the connection."),
            hint=T(
                "Servername und Port prüfen; läuft der Server, lässt die Firewall den Port zu?",
                "Check host and port; is the server running, does the firewall allow the port?",
            ),
            details={"stage": stage, "reason": "refused"},
        )
    if isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in str(exc):
        return NetworkError(
            T(
                f"Zeitüberschreitung bei der Verbindung zu {where} im Schritt »{step.de}«.",
                f"Timed out talking to {where} at step '{step.en}'.",
            ),
            hint=T(
                "Netzwerk und Firewall prüfen; ggf. das Zeitlimit im Konto erhöhen.",
                "Check network and firewall; raise the account's timeout if needed.",
            ),
            details={"stage": stage, "reason": "timeout"},
        )
    if isinstance(exc, socket.gaierror):
        return NetworkError(
            T(f"SMTP-Server {host} nicht gefunden (DNS).", f"SMTP server {host} not found (DNS)."),
            hint=T("Servernamen prüfen.", "Check the host name."),
            details={"stage": stage, "reason": "dns"},
        )
    return NetworkError(
        T(
            f"Verbindung zu {where} im Schritt »{step.de}« unterbrochen: {exc}",
            f"Connection to {where} lost at step '{step.en}': {exc}",
        ),
        hint=T(
            "Erneut versuchen; bleibt es, Netzwerk und Server prüfen.",
            "Try again; if it persists, check network and server.",
        ),
        details={"stage": stage, "reason": type(exc).__name__},
    )


def unknown_outcome(exc: BaseException, host: str, port: int) -> UnknownOutcomeError:
    """The whole message was handed over but the server's answer never came."""
    timeout = isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in str(exc)
    what = T("Zeitüberschreitung", "timeout") if timeout else T("Verbindungsabbruch", "connection lost")
    return UnknownOutcomeError(
        T(
            f"{what.de} nach der Übergabe der Nachricht an {host}:{port}: ob sie gesendet wurde, ist unbekannt.",
            f"{what.en} after the message was handed to {host}:{port}: it may or may not have been sent.",
        ),
        hint=T(
            "Nicht einfach erneut senden: erst beim Empfänger oder in den gesendeten Elementen nachsehen.",
            "Do not simply send again: check with the recipient or in Sent Items first.",
        ),
        details={"stage": "data", "reason": "timeout" if timeout else "disconnected"},
    )
