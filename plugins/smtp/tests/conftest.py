"""Fixtures: a private CA (trustme), real aiosmtpd servers on loopback, transports built the way the
host builds them (through the account type's ``create_transport``)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import trustme
from ccm_mail_hookspecs import AccountSettings, Transport
from ccm_mail_smtp.plugin import ACCOUNT_TYPE
from smtp_server import SmtpServer
from smtp_support import USERS, MakeTransport, account_values


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """Start from structlog's defaults: a host test that ran the CLI in-process may have left
    structlog printing to a stream pytest has closed since (ValueError on the next log call)."""
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        stream = getattr(handler, "stream", None)
        if stream is not None and getattr(stream, "closed", False):
            root.removeHandler(handler)
    yield


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(ctx)
    return ctx


@pytest.fixture
def starttls_server(server_tls: ssl.SSLContext) -> Iterator[SmtpServer]:
    with SmtpServer("starttls", server_tls, users=USERS) as server:
        yield server


@pytest.fixture
def tls_server(server_tls: ssl.SSLContext) -> Iterator[SmtpServer]:
    with SmtpServer("tls", server_tls, users=USERS) as server:
        yield server


@pytest.fixture
def make_transport(tmp_path: Path, ca_file: Path) -> Iterator[MakeTransport]:
    """``make_transport(server, **field_overrides)``: a transport as the host would build it."""
    made: list[Transport] = []

    def make(server: SmtpServer, **overrides: Any) -> Transport:
        values = account_values(server, ca_file, **overrides)
        settings = AccountSettings(
            name="test",
            type="smtp",
            values=values,
            state_dir=tmp_path,
            secret_fields=frozenset({"password", "client_secret"}),
        )
        transport = ACCOUNT_TYPE.create_transport(settings)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()
