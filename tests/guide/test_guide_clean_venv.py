"""Done when: the guide's example transport, built from a clean venv with ccm-mail-hookspecs and
ccm-mail-core installed from wheels (not editable), passes the kit; copies of it that retry after
an unknown outcome, raise builtin exceptions or return a receipt after a failure fail it with
messages that say what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clean_venv import CleanVenvRun, Report
from guide_example import MUTANTS, REPO, commands


@pytest.fixture(scope="module")
def report(guide_clean_venv: CleanVenvRun) -> Report:
    report = guide_clean_venv.result()
    assert not report.error, report.error + "\n\n" + "\n\n".join(map(str, report.setup + report.guide))
    return report


@pytest.mark.slow
def test_the_guide_commands_work_in_a_clean_venv(report: Report) -> None:
    assert [step.what for step in report.guide] == commands()
    for step in report.guide:
        assert step.returncode == 0, str(step)
    where = [Path(line) for line in report.setup[-1].output.split()]
    assert report.venv is not None and len(where) == 2, report.setup[-1]
    for path in where:  # installed from the wheels, not editable: not this checkout
        assert path.is_relative_to(report.venv) and not path.is_relative_to(REPO), path
    install, tests, plugins, types = report.guide
    summary = tests.output.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary) and "failed" not in summary and "error" not in summary, tests.output
    assert "skipped" not in summary, f"nothing may be skipped for an HTTP transport:\n{tests.output}"
    assert re.search(r"^acme\s+ccm-mail-acme 1\.0\.0$", plugins.output, re.M), plugins.output
    assert "hooks: ccm_mail_account_types" in plugins.output
    assert "acme: Acme Mail" in types.output and "api_key" in types.output, types.output


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_kit_fails_a_broken_copy_readably(report: Report, mutant) -> None:  # type: ignore[no-untyped-def]
    step = report.mutants[mutant.name]
    assert step.returncode == 1, f"the kit passed {mutant.name}:\n{step}"
    for expected in mutant.expected:
        assert re.search(expected, step.output), f"{mutant.name}: missing /{expected}/ in\n{step}"
    assert "DID NOT RAISE" not in step.output
