"""Fixtures for the sandbox's own tests: a fresh sandbox per test, real HTTPS, plain requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from o365_sandbox_kit import ALL, CLIENT, MAILBOX, SECRET, TENANT, Cert, World, make_cert

from ccm_mail_office365_sandbox import Sandbox


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(state_dir=tmp_path / "sandbox") as sandbox:
        yield sandbox


@pytest.fixture
def world(sb: Sandbox) -> Iterator[World]:
    sb.add_tenant(TENANT, display_name="Contoso")
    sb.add_app(TENANT, CLIENT, secret=SECRET, permissions=ALL, redirect_uris=["http://localhost:8400/"])
    sb.add_mailbox(TENANT, MAILBOX)
    with requests.Session() as http:
        yield World(sb, http)


@pytest.fixture(scope="session")
def cert() -> Cert:
    return make_cert()
