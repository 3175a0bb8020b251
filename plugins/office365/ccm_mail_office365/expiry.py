"""When the app's credential expires: the certificate's notAfter read from the file, the client
secret's end date from the config (``client_secret_expires``), or from Graph when the app may read
its own registration (``passwordCredentials``, https://learn.microsoft.com/graph/api/application-get,
permission Application.Read.All; https://learn.microsoft.com/graph/api/resources/passwordcredential).

Entra shows a secret's expiry only once, when it is created (and lists it under "Certificates &
secrets"); ccm-mail cannot read it with Mail.Send alone, so ``client_secret_expires`` is how
every send learns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import Expiry, T

SECRET = T("geheime Clientschlüssel", "client secret")
RENEW_SECRET = T(
    "Neuen Schlüssel anlegen: Entra → App-Registrierungen → App → Zertifikate & Geheimnisse → Neuer geheimer "
    "Clientschlüssel; den *Wert* im Konto eintragen (ccm-mail accounts set KONTO --secret client_secret) und "
    "client_secret_expires auf das neue Ablaufdatum setzen.",
    "Create a new one: Entra → App registrations → the app → Certificates & secrets → New client secret; enter "
    "its *Value* in the account (ccm-mail accounts set ACCOUNT --secret client_secret) and set "
    "client_secret_expires to its new expiry date.",
)
RENEW_CERTIFICATE = T(
    "Neues Zertifikat erstellen, den öffentlichen Teil unter Entra → App-Registrierungen → App → Zertifikate & "
    "Geheimnisse → Zertifikate hochladen und die Datei im Konto eintragen (certificate).",
    "Create a new certificate, upload its public part in Entra → App registrations → the app → Certificates & "
    "secrets → Certificates and set the file in the account (certificate).",
)


def local(values: Mapping[str, Any]) -> Expiry | None:
    """The account's expiry without the network (the host asks before every send)."""
    cert = values.get("certificate")
    if cert:
        return _certificate(Path(str(cert)).expanduser(), values.get("certificate_password"))
    when = values.get("client_secret_expires")
    if isinstance(when, datetime):
        return Expiry(SECRET, when, "config", RENEW_SECRET)
    return None


def _certificate(path: Path, password: Any) -> Expiry | None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        data = path.read_bytes()
        if data.lstrip().startswith(b"-----"):
            cert = x509.load_pem_x509_certificates(data)[0]
        else:
            _, cert, _ = pkcs12.load_key_and_certificates(data, str(password).encode() if password else None)
    except (OSError, ValueError, TypeError):
        return None  # the transport explains an unreadable certificate when it signs in
    if cert is None:
        return None
    name = cert.subject.rfc4514_string()
    return Expiry(T(f"Zertifikat {name}", f"certificate {name}"), cert.not_valid_after_utc, "certificate", RENEW_CERTIFICATE)


def from_graph(credentials: Sequence[Mapping[str, Any]], secret: str | None) -> Expiry | None:
    """The end date of the configured secret among the app's ``passwordCredentials``. Graph keeps
    the first three characters of each secret (``hint``); that picks the one in use. When the hint
    matches none or several, the latest end date of the matching (or all) is taken, and said."""
    dated = [(c, _time(c.get("endDateTime"))) for c in credentials]
    dated = [(c, when) for c, when in dated if when is not None]
    if not dated:
        return None
    matching = [(c, when) for c, when in dated if secret and c.get("hint") and secret.startswith(str(c["hint"]))]
    chosen = max(matching or dated, key=lambda item: item[1])
    name = str(chosen[0].get("displayName") or "")
    what = T(f"{SECRET.de} {name!r}".strip() if name else SECRET.de, f"{SECRET.en} {name!r}".strip() if name else SECRET.en)
    if len(matching) != 1:
        what = T(
            what.de + " (laut Microsoft Graph; welcher der Schlüssel genutzt wird, ist nicht eindeutig)",
            what.en + " (from Microsoft Graph; which of the secrets is in use is not certain)",
        )
    return Expiry(what, chosen[1], "provider", RENEW_SECRET)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
