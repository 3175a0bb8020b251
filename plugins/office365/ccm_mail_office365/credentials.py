"""The app's credential for msal: a client secret, or a certificate (PEM with key, or PFX).

Certificates are read and checked here, before any network call, so that "wrong password",
"no private key in the file" or "expired" are told as such instead of as a cryptic msal error.
Nothing here is ever logged; the returned credential stays inside msal. Problems are
:class:`AuthenticationError` (a TransportError: the message was not sent) with a code in details.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccm_mail_hookspecs import AuthenticationError, T

from .config import Office365Config

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """Public facts about the certificate, safe to show (the connection test prints them)."""

    subject: str
    sha1_thumbprint: str
    not_after: datetime


def client_credential(config: Office365Config) -> tuple[str | dict[str, Any], CertificateInfo | None]:
    """What msal's ``client_credential`` takes, plus the certificate's public facts (if any)."""
    if config.client_secret and config.certificate:
        raise AuthenticationError(
            T(
                "Entweder geheimer Clientschlüssel oder Zertifikat angeben, nicht beides.",
                "Give either a client secret or a certificate, not both.",
            )
        )
    if config.client_secret:
        return config.client_secret, None
    if config.certificate is None:
        raise AuthenticationError(
            T("Weder geheimer Clientschlüssel noch Zertifikat angegeben.", "Neither a client secret nor a certificate is given."),
            hint=T("client_secret oder certificate im Konto eintragen.", "Set client_secret or certificate in the account."),
        )
    path = config.certificate
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuthenticationError(
            T(
                f"Zertifikatsdatei nicht lesbar: {path} ({exc.strerror})",
                f"Certificate file cannot be read: {path} ({exc.strerror})",
            )
        ) from exc
    password = config.certificate_password.encode() if config.certificate_password else None
    if path.suffix.lower() in (".pfx", ".p12") or not data.lstrip().startswith(b"-----"):
        return _pfx(path, data, password, config)
    return _pem(path, data, password, config)


# cryptography is imported where a certificate is read: a client-secret account (the usual one)
# never pays its ~20 ms at the start of every per-invoice process


def _pfx(path: Path, data: bytes, password: bytes | None, config: Office365Config) -> tuple[dict[str, Any], CertificateInfo]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise AuthenticationError(
            T(
                f"PFX-Datei {path} lässt sich nicht öffnen: Kennwort falsch oder Datei beschädigt.",
                f"PFX file {path} cannot be opened: wrong password or damaged file.",
            ),
            hint=T("certificate_password prüfen.", "Check certificate_password."),
        ) from exc
    if key is None or cert is None:
        raise AuthenticationError(
            T(
                f"PFX-Datei {path} enthält nicht Schlüssel und Zertifikat.",
                f"PFX file {path} does not hold both a private key and a certificate.",
            )
        )
    info = _info(cert)
    _check(info, config)
    credential: dict[str, Any] = {"private_key_pfx_path": str(path)}
    if config.certificate_password:
        credential["passphrase"] = config.certificate_password
    return credential, info


def _pem(path: Path, data: bytes, password: bytes | None, config: Office365Config) -> tuple[dict[str, Any], CertificateInfo]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise AuthenticationError(T(f"{path} enthält kein PEM-Zertifikat.", f"{path} holds no PEM certificate.")) from exc
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as exc:  # encrypted key without password, or password for a plain key
        raise AuthenticationError(
            T(
                f"Privater Schlüssel in {path}: Kennwort fehlt oder ist überflüssig.",
                f"Private key in {path}: password missing or not needed.",
            ),
            hint=T("certificate_password prüfen.", "Check certificate_password."),
        ) from exc
    except ValueError as exc:
        raise AuthenticationError(
            T(
                f"{path} enthält keinen lesbaren privaten Schlüssel (oder das Kennwort ist falsch).",
                f"{path} holds no readable private key (or the password is wrong).",
            ),
            hint=T(
                "Eine PEM-Datei mit Zertifikat und privatem Schlüssel angeben.",
                "Give a PEM file with certificate and private key.",
            ),
        ) from exc
    cert = certs[0]
    info = _info(cert)
    _check(info, config)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    credential: dict[str, Any] = {"private_key": key_pem, "public_certificate": cert_pem}
    if config.thumbprint:
        credential["thumbprint"] = config.thumbprint
    return credential, info


def _info(cert: x509.Certificate) -> CertificateInfo:
    from cryptography.hazmat.primitives import hashes

    sha1 = binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode().upper()  # noqa: S303 - Entra's x5t
    return CertificateInfo(cert.subject.rfc4514_string(), sha1, cert.not_valid_after_utc)


def _check(info: CertificateInfo, config: Office365Config) -> None:
    if config.thumbprint and config.thumbprint != info.sha1_thumbprint:
        raise AuthenticationError(
            T(
                f"Der Fingerabdruck {config.thumbprint} passt nicht zum Zertifikat ({info.sha1_thumbprint}).",
                f"Thumbprint {config.thumbprint} does not match the certificate ({info.sha1_thumbprint}).",
            ),
            hint=T(
                "Fingerabdruck leer lassen (wird berechnet) oder den aus Entra übernehmen.",
                "Leave the thumbprint empty (it is computed) or copy the one shown in Entra.",
            ),
        )
    if info.not_after < datetime.now(timezone.utc):
        raise AuthenticationError(
            T(
                f"Das Zertifikat ist am {info.not_after:%d.%m.%Y} abgelaufen.",
                f"The certificate expired on {info.not_after:%Y-%m-%d}.",
            ),
            hint=T(
                "Ein neues Zertifikat erstellen, in Entra hochladen und im Konto eintragen.",
                "Create a new certificate, upload it in Entra and set it in the account.",
            ),
            details={"code": "certificate_expired", "thumbprint": info.sha1_thumbprint},
        )
