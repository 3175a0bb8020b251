"""The sandbox's own certificate authority (trustme) and one server certificate.

One certificate covers the loopback names *and* every real Microsoft host name, so the same TLS
context serves direct connections and connections tunnelled through the CONNECT proxy. Clients
trust only :attr:`SandboxTLS.ca_pem`; nothing is installed system-wide.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

from .hosts import PROXY_HOSTS


class SandboxTLS:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="ccm-mail Microsoft 365 sandbox")
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost", "::1", *sorted(PROXY_HOSTS))
        self.ca_pem = str(directory / "sandbox-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_pem)
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.cert.configure_cert(self.server_context)
