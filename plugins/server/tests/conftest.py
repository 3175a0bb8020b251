"""Fixtures: the service over real HTTP on loopback, with a pickup-folder account."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from server_support import Client, keys, service_thread, write_config


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
