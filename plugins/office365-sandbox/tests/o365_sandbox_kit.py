"""Helpers for the sandbox's own tests (imported by conftest and the test modules).

``verify`` is passed per request on purpose: ``REQUESTS_CA_BUNDLE`` in the environment overrides
``Session.verify`` in requests.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ccm_mail_office365_sandbox import Sandbox

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "22222222-3333-4444-5555-666666666666"
SECRET = "Zq8~s3cr3t.value-not-the-id"
MAILBOX = "rechnung@contoso.de"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ALL = {"Mail.Send", "Mail.ReadWrite", "Mail.ReadBasic.All"}


@dataclass
class World:
    """One tenant, app and mailbox in a sandbox, and helpers to talk to it like a client."""

    sb: Sandbox
    http: requests.Session

    def token_response(self, tenant: str = TENANT, **form: str) -> requests.Response:
        data = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": GRAPH_SCOPE}
        data.update(form)
        data = {k: v for k, v in data.items() if v is not None}
        return self.http.post(
            f"{self.sb.authority_host}/{tenant}/oauth2/v2.0/token", data=data, verify=self.sb.ca_pem, timeout=10
        )

    def token(self, **form: str) -> str:
        r = self.token_response(**form)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def graph(self, method: str, path: str, token: str | None = "auto", **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token == "auto":
            token = self.token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("https://") else f"{self.sb.graph_endpoint}{path}"
        return self.http.request(
            method, url, headers=headers, verify=self.sb.ca_pem, timeout=kw.pop("timeout", 30), **kw
        )

    def send(
        self, message: dict[str, Any] | None = None, token: str | None = "auto", mailbox: str = MAILBOX, **kw: Any
    ) -> requests.Response:
        body = {"message": message if message is not None else simple_message(), "saveToSentItems": True}
        return self.graph("POST", f"/v1.0/users/{mailbox}/sendMail", token=token, json=body, **kw)


def simple_message(subject: str = "codicon GmbH / Rg. 4711", **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "Text", "content": "Sehr geehrte Damen und Herren, anbei die Rechnung."},
        "toRecipients": [{"emailAddress": {"address": "kunde@example.org", "name": "Kunde"}}],
    }
    msg.update(extra)
    return msg


@dataclass
class Cert:
    key_pem: str
    cert_pem: str
    sha1_hex: str


def make_cert() -> Cert:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccm-mail sandbox test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    return Cert(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii"),
        cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        cert.fingerprint(hashes.SHA1()).hex(),
    )


class VerifyingClient:
    """An msal ``http_client`` that trusts the sandbox CA (and optionally uses its proxy)."""

    def __init__(self, sb: Sandbox, proxy: bool = False) -> None:
        self.sb = sb
        self.session = requests.Session()
        self.proxies = {"https": sb.proxy_url} if proxy else None

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.session.post(url, verify=self.sb.ca_pem, proxies=self.proxies, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.session.get(url, verify=self.sb.ca_pem, proxies=self.proxies, **kw)

    def close(self) -> None:
        self.session.close()
