"""Helpers for the Office 365 tests: sandbox accounts and "what Microsoft would deliver"."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import AccountSettings

from ccm_mail_office365.config import Office365Config
from ccm_mail_office365.transport import Office365Transport

SECRET_FIELDS = frozenset({"client_secret", "certificate_password"})
ALL_PERMISSIONS = frozenset({"Mail.Send", "Mail.ReadWrite", "Mail.ReadBasic.All"})


@dataclass
class Account:
    """One sandbox tenant + app + mailbox and the ccm-mail settings that point at it."""

    sandbox: Any
    tenant_id: str
    client_id: str
    mailbox: str
    secret: str | None
    values: dict[str, Any]
    state_dir: Path
    transports: list[Office365Transport] = field(default_factory=list)

    def settings(self, **over: Any) -> AccountSettings:
        values = {**self.values, **over}
        return AccountSettings(
            "rechnung", "office365", {k: v for k, v in values.items() if v is not None}, self.state_dir, "de", SECRET_FIELDS
        )

    def transport(self, *, sleep: Callable[[float], None] | None = None, **over: Any) -> Office365Transport:
        """A transport for these settings; ``sleep`` replaces waiting (tests record the waits)."""
        config = Office365Config.from_settings(self.settings(**over))
        t = Office365Transport(config) if sleep is None else Office365Transport(config, sleep=sleep)
        self.transports.append(t)
        return t

    def sent(self) -> list[Any]:
        return list(self.sandbox.sent_messages(self.mailbox))

    def secrets(self) -> list[str]:
        return [s for s in (self.secret, self.values.get("certificate_password")) if s]


class AccountFactory:
    def __init__(self, sandbox: Any, ca_file: Path, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.ca_file = ca_file
        self.tmp_path = tmp_path
        self.accounts: list[Account] = []

    def __call__(
        self,
        *,
        permissions: frozenset[str] | set[str] = ALL_PERMISSIONS,
        consented: bool = True,
        certificate_pem: str | None = None,
        secret: str | None = "",
        secret_expired: bool = False,
        cloud: str = "global",
        licensed: bool = True,
        redirect_uris: list[str] | None = None,
        via_proxy: bool = False,
        **values: Any,
    ) -> Account:
        tenant_id = str(uuid.uuid4())
        client_id = str(uuid.uuid4())
        n = len(self.accounts)
        mailbox = f"rechnung{n}-{tenant_id[:8]}@firma.example"
        if secret == "":
            secret = f"Sb8Q~{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
        self.sandbox.add_tenant(tenant_id, cloud=_sandbox_cloud(cloud))
        self.sandbox.add_app(
            tenant_id,
            client_id,
            secret=secret,
            certificate_pem=certificate_pem,
            permissions=set(permissions),
            consented=consented,
            secret_expired=secret_expired,
            redirect_uris=redirect_uris or ["http://localhost:8400/"],
        )
        self.sandbox.add_mailbox(tenant_id, mailbox, licensed=licensed)
        base: dict[str, Any] = {
            "tenant_id": tenant_id,
            "client_id": client_id,
            "mailbox": mailbox,
            "client_secret": secret,
            "ca_bundle": str(self.ca_file),
            "max_wait_seconds": 20,
        }
        if via_proxy:
            base.update(proxy=self.sandbox.proxy_url, cloud=cloud)
        else:
            base.update(authority_host=self.sandbox.authority_host, graph_endpoint=self.sandbox.graph_endpoint)
        base.update(values)
        state = self.tmp_path / f"state-{n}"
        account = Account(self.sandbox, tenant_id, client_id, mailbox, secret, base, state)
        self.accounts.append(account)
        return account


def _sandbox_cloud(cloud: str) -> str:
    """The plugin's cloud ids → the sandbox's (GCC High and DoD share one US Gov directory)."""
    return {"usgov_high": "usgov", "usgov_dod": "usgov"}.get(cloud, cloud)


# -- what Microsoft would deliver, as an EmailMessage (for the conformance suite) ----------------


def _header_address(entry: dict[str, Any]) -> HeaderAddress:
    ea = entry["emailAddress"]
    return HeaderAddress(display_name=ea.get("name") or "", addr_spec=ea["address"])


def html_to_text(markup: str) -> str:
    """Roughly what Exchange puts into the text/plain part it derives from an HTML body."""
    text = re.sub(r"(?is)<(script|style).*?</\1>", "", markup)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def to_email(sent: Any) -> EmailMessage:
    """What Microsoft received: the raw MIME of a MIME send, else the Graph JSON rendered the way
    Exchange does (text part derived from an HTML body)."""
    raw = getattr(sent, "mime", None)
    if raw:
        from email import policy
        from email.parser import BytesParser

        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        if "Bcc" in parsed:  # Exchange removes Bcc before delivery
            del parsed["Bcc"]
        return parsed
    m = sent.message
    em = EmailMessage()
    em["From"] = _header_address(m.get("from") or {"emailAddress": {"address": sent.mailbox}})
    for key, header in (("toRecipients", "To"), ("ccRecipients", "Cc"), ("replyTo", "Reply-To")):
        if m.get(key):
            em[header] = [_header_address(r) for r in m[key]]
    em["Subject"] = m.get("subject") or ""
    em["Date"] = format_datetime(sent.sent_at)
    em["Message-ID"] = sent.internet_message_id
    for h in m.get("internetMessageHeaders") or []:
        em[h["name"]] = h["value"]
    body = m.get("body") or {}
    if str(body.get("contentType", "")).lower() == "html":
        em.set_content(html_to_text(body.get("content", "")), charset="utf-8")
        em.add_alternative(body.get("content", ""), subtype="html", charset="utf-8")
    else:
        em.set_content(body.get("content", ""), charset="utf-8")
    inline = [a for a in sent.attachments if a.is_inline]
    if inline:
        html_part = next(p for p in em.walk() if p.get_content_type() == "text/html")
        html_part.make_related()
        for a in inline:
            maintype, subtype = a.content_type.split("/", 1)
            html_part.add_related(
                a.data, maintype=maintype, subtype=subtype, cid=f"<{a.content_id}>", filename=a.name, disposition="inline"
            )
    for a in sent.attachments:
        if not a.is_inline:
            maintype, subtype = a.content_type.split("/", 1)
            em.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.name)
    return em


def find_sent(account: Account, message_id: str) -> Any:
    hits = [s for s in account.sent() if s.internet_message_id == message_id]
    assert hits, f"the sandbox has no message {message_id}"
    assert len(hits) == 1, f"message {message_id} arrived {len(hits)} times"
    return hits[0]


# -- certificates ---------------------------------------------------------------------------------


def make_certificate(directory: Path, *, password: str | None = None, days: int = 30) -> tuple[str, Path, Path]:
    """A self-signed app certificate: (public PEM, PEM file with cert + key, PFX file)."""
    import datetime as _dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccm-mail test app")])
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pem_file = directory / "app.pem"
    pem_file.write_bytes(cert_pem + key_pem)
    pfx_file = directory / "app.pfx"
    pfx_file.write_bytes(pkcs12.serialize_key_and_certificates(b"ccm-mail", key, cert, None, enc))
    return cert_pem.decode(), pem_file, pfx_file
