"""Office 365 access tokens for SMTP XOAUTH2 (client credentials, app-only) via msal.

The token is for ``https://outlook.office365.com/.default``: a Graph token is refused by Exchange's
SMTP endpoint. msal keeps it in memory until shortly before expiry, so one provider per transport
asks Entra about once an hour, not once per mail (which risks AADSTS50196 "loop detected").
"""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from typing import Any

import msal
import requests
import structlog
from ccm_mail_hookspecs import (
    AccessDeniedError,
    AuthenticationError,
    CcmMailError,
    NetworkError,
    T,
    ThrottledError,
    redaction,
)

SMTP_SCOPE = "https://outlook.office365.com/.default"
#: hosts msal knows; for any other (a sandbox, a private authority) instance discovery is off
_KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.microsoftonline.de",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    }
)

log = structlog.get_logger("ccm_mail.smtp")


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, *before* base64 (smtplib encodes it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def xoauth2_base64(user: str, token: str) -> str:
    return base64.b64encode(xoauth2_string(user, token).encode()).decode("ascii")


class _VerifyingSession:
    """A requests session for msal that pins ``verify`` on **every** request.

    ``REQUESTS_CA_BUNDLE`` in the environment overrides ``Session.verify`` (requests merges the
    environment over the session), so a private CA must be passed per request to take effect.
    """

    def __init__(self, verify: str | bool, timeout: float) -> None:
        self._session = requests.Session()
        self._verify = verify
        self._timeout = timeout

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, params=params, headers=headers, verify=self._verify, **kwargs)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, params=params, data=data, headers=headers, verify=self._verify, **kwargs)

    def close(self) -> None:
        self._session.close()


# AADSTS code → (error class, message, hint). The codes admins actually meet with this flow.
_AADSTS: dict[str, tuple[type[CcmMailError], T, T]] = {
    "7000215": (
        AuthenticationError,
        T("Geheimer Clientschlüssel ungültig.", "Invalid client secret."),
        T(
            "Den *Wert* des Geheimnisses eintragen, nicht die Geheimnis-ID; auf Tippfehler prüfen.",
            "Enter the secret's *value*, not its ID; check for typos.",
        ),
    ),
    "7000222": (
        AuthenticationError,
        T("Geheimer Clientschlüssel abgelaufen.", "Client secret expired."),
        T(
            "In Entra einen neuen geheimen Clientschlüssel anlegen und im Konto eintragen.",
            "Create a new client secret in Entra and enter it in the account.",
        ),
    ),
    "700016": (
        AuthenticationError,
        T("Anwendung im Mandanten nicht gefunden.", "Application not found in the tenant."),
        T("Anwendungs-ID (Client) und Mandanten-ID prüfen.", "Check the client ID and the tenant ID."),
    ),
    "90002": (
        AuthenticationError,
        T("Mandant nicht gefunden.", "Tenant not found."),
        T("Mandanten-ID prüfen (Entra → Übersicht).", "Check the tenant ID (Entra → Overview)."),
    ),
    "65001": (
        AccessDeniedError,
        T("Administratorzustimmung fehlt.", "Admin consent is missing."),
        T(
            "In Entra »Administratorzustimmung erteilen«; die App braucht die Anwendungsberechtigung SMTP.SendAsApp.",
            "Grant admin consent in Entra; the app needs the application permission SMTP.SendAsApp.",
        ),
    ),
    "50196": (
        ThrottledError,
        T("Zu viele Token-Anfragen (Schleife erkannt).", "Too many token requests (loop detected)."),
        T("Später erneut versuchen.", "Try again later."),
    ),
}


def _unreachable_reason(exc: requests.RequestException) -> T:
    """Why the sign-in host could not be asked, from the exception's type alone: its text may
    carry the request's form body (the client secret)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return T("TLS-Fehler (Zertifikat oder Proxy)", "TLS error (certificate or proxy)")
    if isinstance(exc, requests.exceptions.Timeout):
        return T("Zeitüberschreitung", "timed out")
    if isinstance(exc, requests.exceptions.ProxyError):
        return T("Proxy-Fehler", "proxy error")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return T("keine Verbindung", "no connection")
    return T(f"Fehler der Anfrage ({type(exc).__name__})", f"request failed ({type(exc).__name__})")


class TokenProvider:
    """Client-credentials tokens for one app registration; thread-safe, cached by msal."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        authority_host: str = "login.microsoftonline.com",
        ca_bundle: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        # "login.microsoftonline.us" and "https://127.0.0.1:8443" (a test sandbox) both work
        host = authority_host.strip().removeprefix("https://").rstrip("/")
        self._authority = f"https://{host}/{tenant_id}"
        self._known = host.lower() in _KNOWN_AUTHORITY_HOSTS
        self._client_id = client_id
        self._secret = client_secret
        self._http = _VerifyingSession(str(ca_bundle) if ca_bundle else True, timeout)
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None

    def _application(self) -> msal.ConfidentialClientApplication:
        # Built lazily: msal fetches the authority's metadata in its constructor, and that is a
        # network call whose failure must become a NetworkError at send time, not at start-up.
        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=self._secret,
                authority=self._authority,
                http_client=self._http,
                instance_discovery=self._known,
            )
        return self._app

    def token(self) -> str:
        """An access token for SMTP; raises a public error explaining what to fix."""
        with self._lock:
            try:
                result = self._application().acquire_token_for_client(scopes=[SMTP_SCOPE])
            except requests.RequestException as exc:
                self._app = None
                host, why = self._authority.split("/")[2], _unreachable_reason(exc)
                raise NetworkError(
                    T(f"Anmeldeserver {host} nicht erreichbar: {why.de}", f"Sign-in host {host} unreachable: {why.en}"),
                    hint=T("Netzwerk, Proxy und Firewall prüfen.", "Check network, proxy and firewall."),
                ) from None  # the requests exception text may carry the form body
            except ValueError as exc:  # msal: authority metadata unusable (e.g. unknown tenant)
                self._app = None
                raise AuthenticationError(
                    T("Anmeldeserver lehnt den Mandanten ab.", "The sign-in host rejects the tenant."),
                    hint=T("Mandanten-ID und Anmeldeserver prüfen.", "Check the tenant ID and the sign-in host."),
                    details={"reason": str(exc)[:300]},
                ) from None
        if "access_token" in result:
            token = str(result["access_token"])
            redaction.remember(token)  # whatever its shape: not every token is a JWT
            log.debug("smtp.token", source=result.get("token_source", "identity_provider"))
            return token
        raise self._error(result)

    def _error(self, result: dict[str, Any]) -> CcmMailError:
        description = str(result.get("error_description") or "")
        details = {
            "code": str(result.get("error") or ""),
            "trace_id": result.get("trace_id"),
            "correlation_id": result.get("correlation_id"),
        }
        m = re.search(r"AADSTS(\d+)", description)
        if m:
            details["code"] = f"AADSTS{m.group(1)}"
        cls, message, hint = _AADSTS.get(
            m.group(1) if m else "",
            (
                AuthenticationError,
                T("Token für SMTP (XOAUTH2) nicht erhalten.", "Could not get a token for SMTP (XOAUTH2)."),
                T(
                    "Mandanten-ID, Anwendungs-ID und geheimen Clientschlüssel prüfen.",
                    "Check tenant ID, client ID and client secret.",
                ),
            ),
        )
        details["description"] = description.splitlines()[0][:300] if description else ""
        log.warning("smtp.token_failed", code=details["code"], trace_id=details["trace_id"])
        return cls(message, hint=hint, details={k: v for k, v in details.items() if v})

    def close(self) -> None:
        self._http.close()


__all__ = ["SMTP_SCOPE", "TokenProvider", "xoauth2_base64", "xoauth2_string"]
