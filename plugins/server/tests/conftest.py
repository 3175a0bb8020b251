"""Fixtures: the service over real HTTP on loopback, with a pickup-folder account; for the pages,
the site with the Office 365 plugin and the Microsoft 365 sandbox (one per test session)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from server_support import Client, keys, service_thread, write_config
from ui_support import SECRET, Running, free_port, site_thread, write_site_config


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_ccm_mail", False)]:
        root.removeHandler(handler)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCM_MAIL_LOAD_PLUGINS", "server")
    write_config(tmp_path)
    return tmp_path


@pytest.fixture
def url(site: Path) -> Iterator[str]:
    with service_thread(site / "ccm-mail.yaml") as address:
        yield address


@pytest.fixture
def send_client(url: str, site: Path) -> Client:
    return Client(url, keys(site)["send"])


@pytest.fixture
def admin(url: str, site: Path) -> Client:
    return Client(url, keys(site)["settings"])


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sandbox_mod = pytest.importorskip("ccm_mail_office365_sandbox")
    with sandbox_mod.Sandbox(state_dir=tmp_path_factory.mktemp("o365-sandbox")) as sb:
        yield sb


@pytest.fixture
def tenant(sandbox: Any) -> Iterator[dict[str, Any]]:
    """A fresh tenant, app (not consented yet) and mailbox in the sandbox."""
    tenant_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    mailbox = f"rechnung-{tenant_id[:8]}@codicon.example"
    redirect = f"http://localhost:{free_port()}/"
    sandbox.add_tenant(tenant_id, display_name="codicon GmbH")
    sandbox.add_app(
        tenant_id,
        client_id,
        secret=SECRET,
        permissions={"Mail.Send", "Mail.ReadBasic.All"},
        consented=False,
        redirect_uris=[redirect],
        display_name="codicon.de O365 Mailversand",
    )
    sandbox.add_mailbox(tenant_id, mailbox)
    old = sandbox.consent_behaviour
    yield {"tenant_id": tenant_id, "client_id": client_id, "mailbox": mailbox, "redirect": redirect}
    sandbox.consent_behaviour = old
    sandbox.faults.clear()


@pytest.fixture
def ui_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Running]]:
    """The site of a newcomer (a pickup folder account for E-Service), with the pages."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCM_MAIL_LOAD_PLUGINS", "server,office365")
    config = write_site_config(tmp_path)
    with site_thread(config) as running:
        yield config, running
