"""docs/writing-a-transport.md, taken apart: the example package its blocks spell out, the Python
snippets to run, the shell commands of "Try it", and the deliberate mistakes the kit must catch.

A fenced block whose first line is a comment naming a path (``# ccm_mail_acme/transport.py``) is
that file of the example package; every other ``python`` block is a snippet; the one ``bash``
block is what a reader types in the package's folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "writing-a-transport.md"
PACKAGE = "ccm-mail-acme"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
_FILE_MARK = re.compile(r"^# ([\w./-]+\.(?:py|toml))\n")


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int

    @property
    def path(self) -> str | None:
        """The file this block is, if its first line names one."""
        m = _FILE_MARK.match(self.text)
        return m.group(1) if m else None


def blocks(text: str | None = None) -> list[Block]:
    text = GUIDE.read_text(encoding="utf-8") if text is None else text
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def package_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for block in blocks():
        if block.path:
            assert block.path not in files, f"guide line {block.line}: {block.path} appears twice"
            files[block.path] = block.text
    return files


def snippets() -> list[Block]:
    return [b for b in blocks() if b.lang == "python" and not b.path]


def commands() -> list[str]:
    """The lines of the guide's shell block, in order."""
    shell = [b for b in blocks() if b.lang == "bash"]
    assert len(shell) == 1, f"expected one bash block (Try it), found {len(shell)}"
    return [line.strip() for line in shell[0].text.splitlines() if line.strip() and not line.startswith("#")]


def layout() -> set[str]:
    """The files the layout tree (the ``text`` block of §1) lists, as paths in the package."""
    [tree] = [b for b in blocks() if b.lang == "text"]
    paths: set[str] = set()
    stack: list[str] = []
    for line in tree.text.splitlines()[1:]:
        m = re.match(r"^((?:│   |    )*)[├└]── (\S+)", line)
        assert m, f"layout line not understood: {line!r}"
        depth, name = len(m.group(1)) // 4, m.group(2)
        stack[depth:] = [name.rstrip("/")]
        if not name.endswith("/"):
            paths.add("/".join(stack))
    return paths


def write_package(dest: Path) -> Path:
    """The example package as the guide spells it out, under ``dest/ccm-mail-acme``."""
    root = dest / PACKAGE
    for path, text in package_files().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


@dataclass(frozen=True)
class Mutant:
    """The guide's transport with one typical mistake; the kit must fail it with ``expected``."""

    name: str
    old: str
    new: str
    expected: tuple[str, ...]  # regular expressions the kit's failure output must contain


MUTANTS = (
    Mutant(
        "retries_after_unknown",
        '            verdict, response = attempt(lambda: self._request("POST", "/v1/messages", json=payload))\n',
        '            verdict, response = attempt(lambda: self._request("POST", "/v1/messages", json=payload))\n'
        '            if verdict.outcome is Outcome.UNKNOWN and tries == 0:   # "it dropped: just try again"\n'
        "                tries += 1\n"
        "                continue\n",
        (
            r"\[reset_after_request\] the request reached the server 2 times: the transport sent it again",
            r"\[status_500\] the request reached the server 2 times",
            r"never retry an unknown outcome",
        ),
    ),
    Mutant(
        "generic_exceptions",
        "                raise errors.from_verdict(verdict, response, self.host)\n",
        '                raise RuntimeError(f"Acme: {verdict.reason} {verdict.status}")\n',
        (
            r"\[reset_after_request\] expected UnknownOutcomeError: the request body had been written when the "
            r"connection reset, so the provider may have the message; got builtins\.RuntimeError",
            r"expected AuthenticationError: wrong API key; got builtins\.RuntimeError: Acme: status 401",
            r"send\(\) must raise only ccm-mail errors",
        ),
    ),
    Mutant(
        "receipt_after_failure",
        "            if verdict.outcome is Outcome.SENT and response is not None:\n",
        '            if response is not None:   # "the provider answered, so it has it"\n',
        (
            r"\[status_500\] expected UnknownOutcomeError: 500 Internal Server Error: .*got a Receipt, i\.e\. "
            r"send\(\) reported the message as sent",
            r"expected AuthenticationError: wrong API key; got a Receipt",
        ),
    ),
)


def write_mutant(source: Path, mutant: Mutant, dest: Path) -> Path:
    """A copy of the written package with ``mutant`` applied to its transport."""
    root = dest / f"{PACKAGE}-{mutant.name}"
    for path in source.rglob("*.py"):
        target = root / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    transport = root / "ccm_mail_acme" / "transport.py"
    text = transport.read_text(encoding="utf-8")
    assert text.count(mutant.old) == 1, f"mutant {mutant.name}: its anchor is not (once) in the guide's transport"
    transport.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    return root
