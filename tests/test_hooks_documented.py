"""Every hook is documented with its exact signature and implemented somewhere in the tests."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from ccm_mail_hookspecs import spec

REPO = Path(__file__).resolve().parent.parent
HOOKS = [(n, f) for n, f in inspect.getmembers(spec, inspect.isfunction) if n.startswith("ccm_mail_")]


def _signature(name: str, fn) -> str:  # type: ignore[no-untyped-def]
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}"


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 7


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_documented_with_its_signature(name, fn) -> None:
    doc = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert f"### {name}" in doc
    assert _signature(name, fn) in doc
    assert fn.__doc__ and "Result" in fn.__doc__, "the spec docstring must state the result semantics"


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_exercised_by_a_test_plugin(name, fn) -> None:
    sources = [p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py")]
    assert any(re.search(rf"def {name}\(", s) for s in sources), f"no test implements {name}"
