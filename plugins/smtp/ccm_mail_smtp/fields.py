"""The SMTP account form: fields with German/English labels and help, and the cross-field checks.

AbSys renders its account form from :data:`FIELDS`; the host resolves secrets and fills defaults,
then :func:`validate` reports every problem at once so an admin fixes the form in one go.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import Address, AddressError, Expiry, Field, T

SECURITY_CHOICES = ("starttls", "tls", "none")
AUTH_CHOICES = ("none", "password", "xoauth2")
#: the port each security mode uses when the admin leaves ``port`` empty
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

FIELDS: tuple[Field, ...] = (
    Field(
        "host",
        T("SMTP-Server", "SMTP server"),
        help=T("Für Microsoft 365: smtp.office365.com.", "For Microsoft 365: smtp.office365.com."),
    ),
    Field(
        "port",
        T("Port", "Port"),
        required=False,
        kind="int",
        help=T(
            "Leer lassen für den Standard: 587 (STARTTLS), 465 (TLS), 25 (keine).",
            "Leave empty for the default: 587 (STARTTLS), 465 (TLS), 25 (none).",
        ),
    ),
    Field(
        "security",
        T("Verschlüsselung", "Encryption"),
        required=False,
        default="starttls",
        kind="choice",
        choices=SECURITY_CHOICES,
        help=T(
            "STARTTLS (Port 587) oder TLS (Port 465). »none« nur für einen Server auf diesem Rechner (localhost).",
            "STARTTLS (port 587) or implicit TLS (port 465). 'none' only for a server on this machine (localhost).",
        ),
    ),
    Field(
        "sender",
        T("E-Mail-Adresse (Absender)", "E-mail address (sender)"),
        kind="email",
        help=T("Das Postfach, das sendet.", "The mailbox that sends."),
    ),
    Field(
        "auth",
        T("Anmeldung", "Authentication"),
        required=False,
        default="password",
        kind="choice",
        choices=AUTH_CHOICES,
        help=T(
            "»xoauth2« für Microsoft 365 (Client-ID und geheimer Clientschlüssel); "
            "»password« für klassische Server; »none« für ein Relay ohne Anmeldung.",
            "'xoauth2' for Microsoft 365 (client ID and client secret); 'password' for classic "
            "servers; 'none' for a relay without login.",
        ),
    ),
    Field(
        "username",
        T("Benutzername", "User name"),
        required=False,
        help=T(
            "Meist die E-Mail-Adresse. Leer: die Absenderadresse.",
            "Usually the e-mail address. Empty: the sender address.",
        ),
    ),
    Field(
        "password",
        T("Passwort", "Password"),
        required=False,
        secret=True,
        help=T("Nur bei Anmeldung »password«.", "Only for authentication 'password'."),
    ),
    Field(
        "password_expires",
        T("Passwort gültig bis", "Password expires"),
        required=False,
        kind="date",
        help=T(
            "Optional, z. B. 2027-03-31: ab 30 Tage vorher warnt jeder Versand, danach wird nicht gesendet.",
            "Optional, e.g. 2027-03-31: from 30 days before, every send warns; afterwards nothing is sent.",
        ),
    ),
    Field(
        "tenant_id",
        T("Mandanten-ID", "Tenant ID"),
        required=False,
        help=T("Entra → Übersicht → Mandanten-ID.", "Entra → Overview → Tenant ID."),
    ),
    Field(
        "client_id",
        T("Anwendungs-ID (Client)", "Application (client) ID"),
        required=False,
        help=T(
            "Entra → App-Registrierungen → die App → Übersicht → Anwendungs-ID (Client). "
            "Die App braucht die Berechtigung SMTP.SendAsApp.",
            "Entra → App registrations → the app → Overview → Application (client) ID. "
            "The app needs the permission SMTP.SendAsApp.",
        ),
    ),
    Field(
        "client_secret",
        T("Geheimer Clientschlüssel", "Client secret"),
        required=False,
        secret=True,
        help=T(
            "Entra → App-Registrierungen → die App → Zertifikate & Geheimnisse → "
            "Geheime Clientschlüssel: der *Wert*, nicht die ID.",
            "Entra → App registrations → the app → Certificates & secrets → Client secrets: "
            "the *value*, not the secret ID.",
        ),
    ),
    Field(
        "client_secret_expires",
        T("Schlüssel gültig bis", "Secret expires"),
        required=False,
        kind="date",
        help=T(
            "Ablaufdatum des geheimen Clientschlüssels (Entra → App-Registrierungen → die App → Zertifikate & "
            "Geheimnisse, Spalte „Läuft ab“): ab 30 Tage vorher warnt jeder Versand.",
            "Expiry date of the client secret (Entra → App registrations → the app → Certificates & secrets, "
            'column "Expires"): from 30 days before, every send warns.',
        ),
    ),
    Field(
        "authority_host",
        T("Anmeldeserver", "Sign-in host"),
        required=False,
        default="login.microsoftonline.com",
        help=T(
            "Nur ändern für nationale Clouds (login.microsoftonline.us) oder Tests.",
            "Change only for national clouds (login.microsoftonline.us) or tests.",
        ),
    ),
    Field(
        "authority_ca_bundle",
        T("CA-Datei für den Anmeldeserver", "CA file for the sign-in host"),
        required=False,
        kind="path",
        help=T("Nur für Testumgebungen mit eigener CA.", "Only for test setups with their own CA."),
    ),
    Field(
        "ca_bundle",
        T("CA-Datei für den SMTP-Server", "CA file for the SMTP server"),
        required=False,
        kind="path",
        help=T(
            "Nur für Server mit Zertifikat einer eigenen CA (z. B. Testserver). Leer: die Zertifikate des Systems.",
            "Only for servers whose certificate comes from a private CA (e.g. test servers). "
            "Empty: the system's certificates.",
        ),
    ),
    Field(
        "timeout",
        T("Zeitlimit (Sekunden)", "Timeout (seconds)"),
        required=False,
        default=60,
        kind="float",
        help=T(
            "Wie lange auf eine Antwort des Servers gewartet wird.", "How long to wait for an answer from the server."
        ),
    ),
)


def _number(value: object) -> float:
    """A YAML number or the same number as text (``587``, ``"587"``, ``2.5``, ``"2.5"``); a bool
    is no number here, though Python counts it as one."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError(value)


def parse_port(value: object) -> int:
    """The port as a whole number from 1 to 65535; ValueError otherwise."""
    number = _number(value)
    if not number.is_integer() or not 0 < number < 65536:
        raise ValueError(value)
    return int(number)


def parse_seconds(value: object) -> float:
    """A timeout in seconds, fractions allowed, finite and above zero; ValueError otherwise."""
    number = _number(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(value)
    return number


def is_local_host(host: str) -> bool:
    """``none`` (plain text) is only acceptable when the mail never crosses a network."""
    host = host.strip().strip("[]").lower()
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate(values: Mapping[str, Any]) -> Sequence[tuple[str, T]]:
    """All problems of an SMTP account as ``(field, text)``; empty when it is usable."""
    problems: list[tuple[str, T]] = []
    host = str(values.get("host") or "").strip()
    security = values.get("security") or "starttls"
    auth = values.get("auth") or "password"
    if not host:
        problems.append(("host", T("SMTP-Server fehlt.", "SMTP server is missing.")))
    if security not in SECURITY_CHOICES:
        problems.append(
            ("security", T(f"Unbekannte Verschlüsselung {security!r}.", f"Unknown encryption {security!r}."))
        )
    elif security == "none" and host and not is_local_host(host):
        problems.append(
            (
                "security",
                T(
                    "Ohne Verschlüsselung darf nur an einen Server auf diesem Rechner gesendet werden "
                    "(localhost, 127.0.0.1, ::1). Bitte STARTTLS oder TLS wählen.",
                    "Without encryption mail may only go to a server on this machine (localhost, 127.0.0.1, "
                    "::1). Please choose STARTTLS or TLS.",
                ),
            )
        )
    port = values.get("port")
    if port not in (None, ""):
        try:
            parse_port(port)
        except ValueError:
            problems.append(
                (
                    "port",
                    T(
                        f"Ungültiger Port {port!r}: eine ganze Zahl von 1 bis 65535.",
                        f"Invalid port {port!r}: a whole number from 1 to 65535.",
                    ),
                )
            )
    timeout = values.get("timeout")
    if timeout not in (None, ""):
        try:
            parse_seconds(timeout)
        except ValueError:
            problems.append(
                (
                    "timeout",
                    T(
                        f"Ungültiges Zeitlimit {timeout!r}: Sekunden als Zahl größer 0, Nachkommastellen mit Punkt "
                        "(z. B. 2.5).",
                        f"Invalid timeout {timeout!r}: seconds as a number above 0 (e.g. 2.5).",
                    ),
                )
            )
    try:
        Address(str(values.get("sender") or ""))
    except AddressError:
        problems.append(
            (
                "sender",
                T(
                    f"Ungültige Absenderadresse {values.get('sender')!r}.",
                    f"Invalid sender address {values.get('sender')!r}.",
                ),
            )
        )
    for name in ("ca_bundle", "authority_ca_bundle"):
        path = values.get(name)
        if path not in (None, "") and not Path(str(path)).is_file():
            problems.append((name, T(f"CA-Datei nicht gefunden: {path}", f"CA file not found: {path}")))
    if auth not in AUTH_CHOICES:
        problems.append(("auth", T(f"Unbekannte Anmeldung {auth!r}.", f"Unknown authentication {auth!r}.")))
    elif auth == "password":
        if not values.get("password"):
            problems.append(
                (
                    "password",
                    T("Passwort fehlt (Anmeldung »password«).", "Password is missing (authentication 'password')."),
                )
            )
    elif auth == "xoauth2":
        for name, de, en in (
            ("tenant_id", "Mandanten-ID", "Tenant ID"),
            ("client_id", "Anwendungs-ID (Client)", "Application (client) ID"),
            ("client_secret", "Geheimer Clientschlüssel", "Client secret"),
        ):
            if not values.get(name):
                problems.append(
                    (name, T(f"{de} fehlt (Anmeldung »xoauth2«).", f"{en} is missing (authentication 'xoauth2')."))
                )
    return problems


def expiry(values: Mapping[str, Any]) -> Expiry | None:
    """The password's (auth ``password``) or the client secret's (``xoauth2``) end date from the
    account's settings; the host warns from 30 days ahead and stops sending once it has passed."""
    auth = str(values.get("auth") or "password")
    if auth == "password" and isinstance(values.get("password_expires"), datetime):
        return Expiry(
            T("SMTP-Passwort", "SMTP password"),
            values["password_expires"],
            "config",
            T(
                "Ein neues Passwort beim Anbieter setzen und im Konto eintragen (ccm-mail accounts set KONTO "
                "--secret password), dann password_expires anpassen.",
                "Set a new password at the provider and enter it in the account (ccm-mail accounts set "
                "ACCOUNT --secret password), then update password_expires.",
            ),
        )
    if auth == "xoauth2" and isinstance(values.get("client_secret_expires"), datetime):
        return Expiry(
            T("geheime Clientschlüssel", "client secret"),
            values["client_secret_expires"],
            "config",
            T(
                "Neuen Schlüssel anlegen: Entra → App-Registrierungen → App → Zertifikate & Geheimnisse → "
                "Neuer geheimer Clientschlüssel; den Wert im Konto eintragen und client_secret_expires "
                "anpassen.",
                "Create a new one: Entra → App registrations → the app → Certificates & secrets → New "
                "client secret; enter its value in the account and update client_secret_expires.",
            ),
        )
    return None
