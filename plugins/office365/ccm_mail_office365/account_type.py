"""The "Office 365" account type: the form AbSys renders, its validation and its admin actions.

Every ``ccm-mail`` command loads this module through the entry point, most never send: the
transport and the consent flow (msal, requests, cryptography) are imported only when a transport
or an action is first built, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ccm_mail_hookspecs import AccountSettings, AccountType, Address, CcmMailError, Expiry, Field, Message, T, Transport

from . import TYPE_ID
from .clouds import CLOUDS, DEFAULT_CLOUD
from .config import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_WAIT_SECONDS, DEFAULT_REDIRECT_URI

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
_THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")
_APP = "Entra → App-Registrierungen → App"
_APP_EN = "Entra → App registrations → the app"

FIELDS: tuple[Field, ...] = (
    Field(
        "tenant_id",
        T("Mandanten-ID", "Tenant ID"),
        help=T(
            "Entra → Übersicht → Mandanten-ID (GUID) oder die Standarddomäne, z. B. firma.onmicrosoft.com.",
            "Entra → Overview → Tenant ID (GUID) or the default domain, e.g. company.onmicrosoft.com.",
        ),
    ),
    Field(
        "client_id",
        T("Anwendungs-ID (Client)", "Application (client) ID"),
        help=T(f"{_APP} → Übersicht → Anwendungs-ID (Client).", f"{_APP_EN} → Overview → Application (client) ID."),
    ),
    Field(
        "mailbox",
        T("E-Mail-Adresse", "E-mail address"),
        kind="email",
        help=T(
            "Das Postfach, das sendet (Benutzer- oder freigegebenes Postfach mit Exchange-Online-Lizenz).",
            "The mailbox that sends (user or shared mailbox with an Exchange Online licence).",
        ),
    ),
    Field(
        "client_secret",
        T("Geheimer Clientschlüssel", "Client secret"),
        required=False,
        secret=True,
        help=T(
            f"{_APP} → Zertifikate & Geheimnisse → Geheime Clientschlüssel → Neuer geheimer Clientschlüssel; "
            "den *Wert* eintragen, nicht die geheime ID. Entweder dies oder ein Zertifikat.",
            f"{_APP_EN} → Certificates & secrets → Client secrets → New client secret; enter the *Value*, "
            "not the Secret ID. Either this or a certificate.",
        ),
    ),
    Field(
        "client_secret_expires",
        T("Schlüssel gültig bis", "Secret expires"),
        required=False,
        kind="date",
        help=T(
            f"Ablaufdatum des geheimen Clientschlüssels ({_APP} → Zertifikate & Geheimnisse, Spalte „Läuft ab“), "
            "z. B. 2027-03-31: ab 30 Tage vorher warnt jeder Versand, danach wird nicht mehr gesendet.",
            f'Expiry date of the client secret ({_APP_EN} → Certificates & secrets, column "Expires"), e.g. '
            "2027-03-31: from 30 days before, every send warns; afterwards nothing is sent.",
        ),
    ),
    Field(
        "certificate",
        T("Zertifikat (PEM mit Schlüssel oder PFX)", "Certificate (PEM with key, or PFX)"),
        required=False,
        kind="path",
        help=T(
            f"Pfad zur Datei mit Zertifikat und privatem Schlüssel; den öffentlichen Teil unter {_APP} → "
            "Zertifikate & Geheimnisse → Zertifikate hochladen.",
            f"Path to the file with certificate and private key; upload the public part in {_APP_EN} → "
            "Certificates & secrets → Certificates.",
        ),
    ),
    Field(
        "certificate_password",
        T("Kennwort des Zertifikats", "Certificate password"),
        required=False,
        secret=True,
        help=T("Nur wenn der Schlüssel bzw. die PFX-Datei verschlüsselt ist.", "Only if the key or PFX file is encrypted."),
    ),
    Field(
        "thumbprint",
        T("Fingerabdruck (SHA-1)", "Thumbprint (SHA-1)"),
        required=False,
        help=T(
            f"Optional; wird aus dem Zertifikat berechnet. Wenn angegeben, muss er passen ({_APP} → Zertifikate & Geheimnisse).",
            f"Optional; computed from the certificate. If given it must match ({_APP_EN} → Certificates & secrets).",
        ),
    ),
    Field(
        "cloud",
        T("Cloud", "Cloud"),
        required=False,
        default=DEFAULT_CLOUD,
        kind="choice",
        choices=tuple(CLOUDS),
        help=T(
            "Weltweit (global) für fast alle Mandanten; US Government oder China nur für diese Clouds.",
            "Global for nearly all tenants; US Government or China only for those clouds.",
        ),
    ),
    Field(
        "authority_host",
        T("Anmelde-Host (erweitert)", "Authority host (advanced)"),
        required=False,
        help=T(
            "Nur für Tests/Sandbox: ersetzt den Anmelde-Host der Cloud, z. B. https://127.0.0.1:4443.",
            "Tests/sandbox only: replaces the cloud's login host, e.g. https://127.0.0.1:4443.",
        ),
    ),
    Field(
        "graph_endpoint",
        T("Graph-Endpunkt (erweitert)", "Graph endpoint (advanced)"),
        required=False,
        help=T(
            "Nur für Tests/Sandbox: ersetzt den Graph-Host der Cloud.", "Tests/sandbox only: replaces the cloud's Graph host."
        ),
    ),
    Field(
        "ca_bundle",
        T("CA-Bündel (erweitert)", "CA bundle (advanced)"),
        required=False,
        kind="path",
        help=T(
            "PEM-Datei mit vertrauenswürdigen Zertifizierungsstellen, z. B. für die Sandbox oder einen TLS-prüfenden Proxy.",
            "PEM file of trusted CAs, e.g. for the sandbox or a TLS-inspecting proxy.",
        ),
    ),
    Field(
        "proxy",
        T("Proxy (erweitert)", "Proxy (advanced)"),
        required=False,
        help=T(
            "z. B. http://proxy.firma.local:8080; leer = Umgebung (HTTPS_PROXY).",
            "e.g. http://proxy.company.local:8080; empty = environment (HTTPS_PROXY).",
        ),
    ),
    Field(
        "max_concurrency",
        T("Gleichzeitige Anfragen je Postfach", "Concurrent requests per mailbox"),
        required=False,
        default=DEFAULT_MAX_CONCURRENCY,
        kind="int",
        help=T("Microsoft erlaubt 4.", "Microsoft allows 4."),
    ),
    Field(
        "max_wait_seconds",
        T("Höchste Wartezeit bei Drosselung (s)", "Maximum wait when throttled (s)"),
        required=False,
        default=int(DEFAULT_MAX_WAIT_SECONDS),
        kind="int",
        help=T(
            "Danach schlägt das Senden mit „gedrosselt“ fehl; nichts wurde gesendet.",
            'After this, sending fails as "throttled"; nothing was sent.',
        ),
    ),
    Field(
        "consent_redirect_uri",
        T("Redirect-URI für die Zustimmung", "Redirect URI for consent"),
        required=False,
        default=DEFAULT_REDIRECT_URI,
        help=T(
            f"Muss unter {_APP} → Authentifizierung → Plattform „Web“ eingetragen sein.",
            f'Must be registered in {_APP_EN} → Authentication → platform "Web".',
        ),
    ),
)


def validate(values: Mapping[str, Any]) -> Sequence[tuple[str, T]]:
    """Problems beyond required/choices, as (field, text)."""
    problems: list[tuple[str, T]] = []

    def text(name: str) -> str:
        v = values.get(name)
        return "" if v is None else str(v).strip()

    tenant = text("tenant_id")
    if tenant and not (_GUID.match(tenant) or _DOMAIN.match(tenant)):
        problems.append(
            (
                "tenant_id",
                T(
                    "Mandanten-ID muss eine GUID (xxxxxxxx-xxxx-…) oder eine Domäne sein.",
                    "Tenant ID must be a GUID (xxxxxxxx-xxxx-…) or a domain.",
                ),
            )
        )
    if tenant.lower() in ("common", "organizations", "consumers"):
        problems.append(
            (
                "tenant_id",
                T(
                    "„common“/„organizations“ geht nicht: die eigene Mandanten-ID eintragen.",
                    '"common"/"organizations" cannot be used: enter your own tenant ID.',
                ),
            )
        )
    client = text("client_id")
    if client and not _GUID.match(client):
        problems.append(
            (
                "client_id",
                T(
                    "Anwendungs-ID muss eine GUID sein (Entra → App → Übersicht).",
                    "Application ID must be a GUID (Entra → the app → Overview).",
                ),
            )
        )
    mailbox = text("mailbox")
    if mailbox:
        try:
            Address(mailbox)
        except CcmMailError as exc:
            problems.append(("mailbox", exc.message))
    secret, cert = text("client_secret"), text("certificate")
    if bool(secret) == bool(cert):
        problems.append(
            (
                "client_secret",
                T(
                    "Genau eines angeben: geheimen Clientschlüssel oder Zertifikat.",
                    "Give exactly one: client secret or certificate.",
                ),
            )
        )
    if secret and _GUID.match(secret):
        problems.append(
            (
                "client_secret",
                T(
                    "Das sieht wie die geheime ID aus (eine GUID): den *Wert* des Schlüssels eintragen.",
                    "This looks like the Secret ID (a GUID): enter the secret's *Value*.",
                ),
            )
        )
    if cert and not Path(cert).expanduser().is_file():
        problems.append(("certificate", T(f"Zertifikatsdatei {cert} nicht gefunden.", f"Certificate file {cert} not found.")))
    if values.get("client_secret_expires") and not secret:
        problems.append(
            (
                "client_secret_expires",
                T(
                    "Ablaufdatum nur zusammen mit einem geheimen Clientschlüssel (ein Zertifikat trägt sein Datum selbst).",
                    "Expiry date only together with a client secret (a certificate carries its own date).",
                ),
            )
        )
    if text("certificate_password") and not cert:
        problems.append(
            (
                "certificate_password",
                T("Kennwort nur zusammen mit einem Zertifikat.", "Password only together with a certificate."),
            )
        )
    thumb = text("thumbprint").replace(":", "")
    if thumb and not _THUMBPRINT.match(thumb):
        problems.append(("thumbprint", T("Fingerabdruck: 40 Hex-Zeichen (SHA-1).", "Thumbprint: 40 hex digits (SHA-1).")))
    if thumb and not cert:
        problems.append(
            ("thumbprint", T("Fingerabdruck nur zusammen mit einem Zertifikat.", "Thumbprint only together with a certificate."))
        )
    cloud = text("cloud") or DEFAULT_CLOUD
    if cloud not in CLOUDS:
        problems.append(("cloud", T(f"Cloud: eine von {', '.join(CLOUDS)}.", f"Cloud: one of {', '.join(CLOUDS)}.")))
    for name in ("authority_host", "graph_endpoint"):
        url = text(name)
        if url and (urlsplit(url).scheme != "https" or not urlsplit(url).netloc):
            problems.append((name, T(f"{name}: https://host[:port] erwartet.", f"{name}: expected https://host[:port].")))
    ca = text("ca_bundle")
    if ca and not Path(ca).expanduser().is_file():
        problems.append(("ca_bundle", T(f"CA-Bündel {ca} nicht gefunden.", f"CA bundle {ca} not found.")))
    proxy = text("proxy")
    if proxy and (urlsplit(proxy).scheme not in ("http", "https") or not urlsplit(proxy).netloc):
        problems.append(("proxy", T("Proxy: http://host:port erwartet.", "Proxy: expected http://host:port.")))
    problems.extend(
        _int_problem(
            values,
            "max_concurrency",
            1,
            4,
            T("Gleichzeitige Anfragen: 1 bis 4 (Grenze von Microsoft).", "Concurrent requests: 1 to 4 (Microsoft's limit)."),
        )
    )
    problems.extend(
        _int_problem(
            values, "max_wait_seconds", 0, 3600, T("Höchste Wartezeit: 0 bis 3600 Sekunden.", "Maximum wait: 0 to 3600 seconds.")
        )
    )
    redirect = text("consent_redirect_uri")
    if redirect:
        parts = urlsplit(redirect)
        if parts.scheme != "http" or (parts.hostname or "") not in ("localhost", "127.0.0.1", "::1"):
            problems.append(
                (
                    "consent_redirect_uri",
                    T("Redirect-URI: http://localhost:PORT/ erwartet.", "Redirect URI: expected http://localhost:PORT/."),
                )
            )
    return problems


def _int_problem(values: Mapping[str, Any], name: str, low: int, high: int, text: T) -> list[tuple[str, T]]:
    value = values.get(name)
    if value is None or value == "":
        return []
    try:
        number = float(value)
    except (TypeError, ValueError):
        return [(name, text)]
    return [] if low <= number <= high else [(name, text)]


def expiry(values: Mapping[str, Any]) -> Expiry | None:
    """The certificate's notAfter (read from the file) or ``client_secret_expires``."""
    from .expiry import local

    return local(values)


def create_transport(settings: AccountSettings) -> Transport:
    """The account's :class:`~.transport.Office365Transport`."""
    from .transport import Office365Transport

    return Office365Transport.from_settings(settings)


def consent(settings: AccountSettings, **options: Any) -> dict[str, Any]:
    """ "Admin Berechtigung erteilen": :func:`.consent.grant_admin_consent` (its options)."""
    from .consent import grant_admin_consent

    return grant_admin_consent(settings, **options)


def test_mail(settings: AccountSettings, *, to: str | None = None, lang: str | None = None) -> dict[str, Any]:
    """Send a short test mail (to the account's own mailbox unless ``to`` is given)."""
    from .transport import Office365Transport

    lang = lang or settings.lang
    transport = Office365Transport.from_settings(settings)
    mailbox = transport.config.mailbox
    message = Message(
        subject=T("ccm-mail: Testnachricht", "ccm-mail: test message").get(lang),
        to=[Address.parse(to or mailbox)],
        sender=Address(mailbox),
        text=T(
            f"Diese Nachricht hat ccm-mail über das Konto {settings.name} (Office 365) gesendet.",
            f"ccm-mail sent this message through the account {settings.name} (Office 365).",
        ).get(lang),
    )
    try:
        receipt = transport.send(message)
    except CcmMailError as exc:
        return {"ok": False, "error": exc.to_dict(lang), "message": exc.render(lang)}
    finally:
        transport.close()
    return {
        "ok": True,
        "sent_at": receipt.sent_at.isoformat(),
        **receipt.transport_ids,
        "message": T(f"Testnachricht an {to or mailbox} gesendet.", f"Test message sent to {to or mailbox}.").get(lang),
    }


test_mail.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name

ACCOUNT_TYPE = AccountType(
    id=TYPE_ID,
    label=T("Office 365", "Office 365"),
    description=T(
        "Microsoft 365 / Exchange Online über Microsoft Graph mit OAuth 2.0 (App-Registrierung in Entra).",
        "Microsoft 365 / Exchange Online through Microsoft Graph with OAuth 2.0 (app registration in Entra).",
    ),
    fields=FIELDS,
    create_transport=create_transport,
    validate=validate,
    actions={"consent": consent, "test_mail": test_mail},
    expiry=expiry,
)
