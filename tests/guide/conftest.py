"""Starts the guide's clean-venv run (``clean_venv.py``) in the background as soon as its test is
collected, and runs that test last: its 20-30 s of pip then overlap the rest of the suite instead
of adding to it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from clean_venv import CleanVenvRun

_RUN_KEY = pytest.StashKey[CleanVenvRun]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    waits = [item for item in items if "guide_clean_venv" in getattr(item, "fixturenames", ())]
    for item in waits:
        items.remove(item)
    items.extend(waits)


def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # pytest-xdist: every worker collects every test; the worker that runs it starts it
    if any("guide_clean_venv" in getattr(item, "fixturenames", ()) for item in session.items):
        _start(session.config)


def _start(config: pytest.Config) -> CleanVenvRun:
    run = config.stash[_RUN_KEY] = CleanVenvRun(Path(tempfile.mkdtemp(prefix="ccm-mail-guide-"))).start()
    return run


def pytest_sessionfinish(session: pytest.Session) -> None:
    """End what is still running (an interrupted session) and remove the venv; the test's report
    holds every output it needs to explain a failure."""
    run = session.config.stash.get(_RUN_KEY, None)
    if run is not None:
        run.stop()
        shutil.rmtree(run.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def guide_clean_venv(request: pytest.FixtureRequest) -> Iterator[CleanVenvRun]:
    run = request.config.stash.get(_RUN_KEY, None) or _start(request.config)
    yield run
