"""The guide cannot drift from the API: every block of docs/writing-a-transport.md is a file of the
example package, a snippet run here, or the shell commands the clean-venv test runs; its tables
are the helper's and the kit's own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from guide_example import GUIDE, REPO, blocks, commands, layout, package_files, snippets, write_package

from ccm_mail_core.testing.http_faults import http_faults


def _table(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header))
    rows = []
    for line in lines[start:]:
        if not line.strip().startswith("|"):
            break
        rows.append(line.strip())
    return rows


def test_every_block_is_a_file_a_snippet_or_the_shell_commands() -> None:
    for block in blocks():
        assert block.lang in {"python", "toml", "bash", "text"}, f"line {block.line}: untested block {block.lang!r}"
        if block.lang == "toml":
            assert block.path, f"line {block.line}: a toml block must be a file (first line '# <path>')"
    assert [b.lang for b in blocks()].count("text") == 1, "the only text block is the layout tree"
    assert commands()[0].startswith("pip install"), "Try it starts by installing the package"


def test_the_layout_lists_exactly_the_files_the_guide_gives() -> None:
    assert layout() == set(package_files())


def test_the_outcome_table_is_the_helpers() -> None:
    helper = (REPO / "hookspecs" / "ccm_mail_hookspecs" / "http.py").read_text(encoding="utf-8")
    guide = GUIDE.read_text(encoding="utf-8")
    assert _table(guide, "| failure | outcome") == _table(helper, "| failure | outcome")


def test_the_fault_table_is_the_kits() -> None:
    rows = _table(GUIDE.read_text(encoding="utf-8"), "| fault | the server")[2:]
    listed = [(re.findall(r"`(\w+)`", row.split("|")[1])[0], row.split("|")[3]) for row in rows]
    assert [fid for fid, _ in listed] == [f.id for f in http_faults()]
    for (fid, expected), fault in zip(listed, http_faults(), strict=True):
        for cls in fault.expected:
            assert cls.__name__ in expected, f"{fid}: the guide does not name {cls.__name__}"
        assert ("one request" in expected) == fault.single_attempt, f"{fid}: 'one request' is wrong in the guide"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("guide"))


@pytest.mark.parametrize("snippet", snippets(), ids=[f"line{b.line}" for b in snippets()])
def test_python_snippet_runs(snippet, package: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "snippet.py"
    script.write_text(snippet.text, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(package)},
        timeout=60,
    )
    assert run.returncode == 0, f"guide line {snippet.line}:\n{run.stdout}\n{run.stderr}"


def test_the_example_package_is_lint_clean(package: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    run = subprocess.run(
        [str(ruff), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(package)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
