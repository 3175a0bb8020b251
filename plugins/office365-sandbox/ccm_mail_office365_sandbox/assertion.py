"""Verify a certificate client assertion (RFC 7523 JWT) the way Entra does.

Entra looks the signing certificate up by the ``x5t`` (SHA-1) or ``x5t#S256`` (SHA-256)
thumbprint in the JWT header, checks the RS256/PS256 signature with that certificate's public key,
then ``iss`` = ``sub`` = client id, ``aud`` = the token endpoint, and ``nbf``/``exp``.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Entra tolerates this much clock skew on nbf/exp.
SKEW_SECONDS = 300


@dataclass(frozen=True)
class AssertionError_(Exception):
    """Why the assertion failed: AADSTS code and Entra's text."""

    code: int
    message: str


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprints(certificate_pem: str) -> tuple[str, str]:
    """(x5t, x5t#S256) of a PEM certificate, base64url as they appear in JWT headers."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    return b64url(cert.fingerprint(hashes.SHA1())), b64url(cert.fingerprint(hashes.SHA256()))


def verify(
    assertion: str, *, client_id: str, certificate_pem: str | None, audiences: set[str], now: float | None = None
) -> dict[str, Any]:
    """The assertion's claims if valid, else :class:`AssertionError_`."""
    now = time.time() if now is None else now
    try:
        h64, p64, s64 = assertion.split(".")
        header = json.loads(b64url_decode(h64))
        claims = json.loads(b64url_decode(p64))
        signature = b64url_decode(s64)
    except (ValueError, TypeError):
        raise AssertionError_(50027, "JWT token is invalid or malformed.") from None
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        raise AssertionError_(5002738, f"Invalid JWT token. '{alg}' is not a supported signature algorithm.")
    x5t, x5t256 = header.get("x5t"), header.get("x5t#S256")
    key_id = x5t256 or x5t or header.get("kid") or ""
    if certificate_pem is None:
        raise AssertionError_(
            700027,
            "The certificate with identifier used to sign the client "
            f"assertion is not registered on application. [Reason - The key was not "
            f"found., Thumbprint of key used by client: '{key_id}', Please visit the "
            f"Azure Portal, Graph Explorer or directly use MS Graph to see configured "
            f"keys for app Id '{client_id}'.]",
        )
    reg_x5t, reg_x5t256 = thumbprints(certificate_pem)
    # compare bytes: clients differ in base64url padding (msal keeps the '=')
    if not ((x5t256 and _same(x5t256, reg_x5t256)) or (x5t and _same(x5t, reg_x5t))):
        raise AssertionError_(
            700027,
            "The certificate with identifier used to sign the client "
            f"assertion is not registered on application. [Reason - The key was not "
            f"found., Thumbprint of key used by client: '{key_id}', Please visit the "
            f"Azure Portal, Graph Explorer or directly use MS Graph to see configured "
            f"keys for app Id '{client_id}'.]",
        )
    public_key = x509.load_pem_x509_certificate(certificate_pem.encode("ascii")).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise AssertionError_(700027, "Client assertion failed signature validation.")
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    )
    try:
        public_key.verify(signature, f"{h64}.{p64}".encode("ascii"), pad, hashes.SHA256())
    except InvalidSignature:
        raise AssertionError_(700027, "Client assertion failed signature validation.") from None
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionError_(
            700021,
            "Client assertion application identifier doesn't match "
            "'client_id' parameter. Review the documentation at "
            "https://docs.microsoft.com/en-us/azure/active-directory/develop/"
            "active-directory-certificate-credentials .",
        )
    aud = claims.get("aud")
    if aud not in audiences:
        raise AssertionError_(
            700212,
            f"Client assertion audience claim does not match Realm "
            f"issuer. Review the documentation at https://aka.ms/certCreds . "
            f"Audience: '{aud}'.",
        )
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if (
        not isinstance(exp, (int, float))
        or exp + SKEW_SECONDS < now
        or (isinstance(nbf, (int, float)) and nbf - SKEW_SECONDS > now)
    ):
        raise AssertionError_(
            700024,
            f"Client assertion is not within its valid time range. "
            f"Current time: {_ts(now)}, assertion valid from "
            f"{_ts(nbf) if isinstance(nbf, (int, float)) else 'unknown'}, expiry "
            f"time of assertion {_ts(exp) if isinstance(exp, (int, float)) else 'unknown'}.",
        )
    return dict(claims)


def _same(a: Any, b: str) -> bool:
    try:
        return isinstance(a, str) and b64url_decode(a.rstrip("=")) == b64url_decode(b)
    except ValueError:
        return False


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(t))
