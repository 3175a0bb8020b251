"""Fixtures: one sandbox per test session, a fresh tenant/app/mailbox per test.

Everything runs over real HTTPS on loopback against ``ccm_mail_office365_sandbox``; nothing here
mocks msal or requests, and nothing can reach Microsoft (the sandbox proxy refuses other hosts).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from o365_support import Account, AccountFactory


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """These tests judge the plugin's own logging, not a host's set-up: start each one from
    structlog's defaults (a host test run earlier may have left a configuration pointing at a
    captured, since closed stream) and without the host CLI's root handler."""
    structlog.reset_defaults()
    root = logging.getLogger()
    host_handlers = [h for h in root.handlers if getattr(h, "_ccm_mail", False)]
    for h in host_handlers:
        root.removeHandler(h)
    yield
    for h in host_handlers:
        root.addHandler(h)
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ccm_mail_office365_sandbox import Sandbox

    with Sandbox(state_dir=tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture(scope="session")
def ca_file(sandbox: Any) -> Path:
    """The sandbox CA (``Sandbox.ca_pem`` is the path of its PEM file)."""
    return Path(sandbox.ca_pem)


@pytest.fixture
def make_account(sandbox: Any, ca_file: Path, tmp_path: Path) -> Iterator[AccountFactory]:
    factory = AccountFactory(sandbox, ca_file, tmp_path)
    yield factory
    sandbox.faults.clear()
    for account in factory.accounts:
        for t in account.transports:
            t.close()


@pytest.fixture
def account(make_account: AccountFactory) -> Account:
    return make_account()
