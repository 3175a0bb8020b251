"""Starts the guide's clean-venv run (``clean_venv.py``) in the background as soon as its test is
collected, and runs that test last: its 20-30 s of pip then overlap the rest of the suite instead
of adding to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clean_venv import CleanVenvRun

_RUN_KEY = pytest.StashKey[CleanVenvRun]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    waits = [item for item in items if "guide_clean_venv" in getattr(item, "fixturenames", ())]
    for item in waits:
        items.remove(item)
    items.extend(waits)


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("guide_clean_venv" in getattr(item, "fixturenames", ()) for item in session.items):
        workdir = session.config._tmp_path_factory.mktemp("guide-clean-venv")  # type: ignore[attr-defined]
        session.config.stash[_RUN_KEY] = CleanVenvRun(workdir).start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(_RUN_KEY, None)
    if run is not None:
        run.stop()


@pytest.fixture(scope="session")
def guide_clean_venv(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanVenvRun]:
    run = request.config.stash.get(_RUN_KEY, None)
    if run is None:  # collected some other way: start it now
        run = request.config.stash[_RUN_KEY] = CleanVenvRun(tmp_path_factory.mktemp("guide-clean-venv")).start()
    yield run
