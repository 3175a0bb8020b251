"""Fixtures for the host's own tests. Every Mailer here is built without entry points, so the
plugins installed on the machine never leak into these tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccm_mail_core import Mailer
from host_support import BASE_CONFIG, LOAD_PLUGINS, PG_PASSWORD_ENV, pg_journal_section


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever is installed on this machine stays out of the host's tests, the CLI included
    (a test that needs plugins installs them into a ``site`` of its own)."""
    monkeypatch.setenv(LOAD_PLUGINS, "")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL server for the test session (``scripts/test.sh`` installs it)."""
    from ccm_mail_core.testing import pgserver

    if pgserver.find_bin() is None:
        pytest.skip("PostgreSQL is not installed (scripts/test.sh installs it as root: apt-get install postgresql)")
    with pgserver.running() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_engine(request: pytest.FixtureRequest) -> str:
    """Run the test once per journal engine: a module or test that uses this fixture gets its
    config's ``journal: path: journal.sqlite`` replaced by a fresh, migrated PostgreSQL database."""
    return str(request.param)


@pytest.fixture
def pg_journal(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh migrated PostgreSQL database as the config's ``journal:`` section."""
    server = request.getfixturevalue("pg_server")
    monkeypatch.setenv(PG_PASSWORD_ENV, server.password)
    return pg_journal_section(server)


@pytest.fixture
def write_config(workdir: Path, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    engine = request.getfixturevalue("journal_engine") if "journal_engine" in request.fixturenames else "sqlite"
    section = request.getfixturevalue("pg_journal") if engine == "postgresql" else None

    def write(text: str = BASE_CONFIG, name: str = "ccm-mail.yaml") -> Path:
        path = workdir / name
        text = textwrap.dedent(text)
        if section is not None:
            assert "journal:\n  path: journal.sqlite\n" in text, "this config names no journal to replace"
            text = text.replace("journal:\n  path: journal.sqlite\n", section)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def pdf(workdir: Path) -> Path:
    """A small but real PDF file with binary bytes in it."""
    path = workdir / "RE-2026-00042.pdf"
    path.write_bytes(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n" + bytes(range(256))
    )
    return path


@pytest.fixture
def make_mailer(write_config: Callable[[str], Path]) -> Iterator[Callable[..., Mailer]]:
    made: list[Mailer] = []

    def make(text: str = BASE_CONFIG, plugins: dict[str, object] | None = None, **kw: Any) -> Mailer:
        mailer = Mailer.from_config(write_config(text), plugins=plugins or {}, load_entrypoints=False, **kw)
        made.append(mailer)
        return mailer

    yield make
    for mailer in made:
        mailer.close()


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Tests that configure logging (as the CLI does) must not leave it writing into a stream
    pytest has closed for the next test."""
    import logging

    import structlog

    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_ccm_mail", False)]:
        root.removeHandler(handler)
