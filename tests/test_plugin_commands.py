"""Plugins add subcommands through ``ccm_mail_commands`` (plugin API 1.3), found through real entry
points; the host asks for them only when it needs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ccm_mail_core.cli import build_parser
from ccm_mail_core.cli.argv import CORE_COMMANDS, command_word
from ccm_mail_hookspecs import Command, T, hookimpl

from host_support import BASE_CONFIG, cli_json, make_dist, run_cli

HELLO = """
import json, pathlib
from ccm_mail_hookspecs import CcmMailError, Command, T, hookimpl
CCM_MAIL_API = 1

def _arguments(parser, h):
    parser.add_argument("--name", default="Welt", help=h("wer gegrüßt wird", "who is greeted"))
    parser.add_argument("--fail", action="store_true")

def _run(args, out):
    if args.fail:
        raise CcmMailError(T("absichtlich gescheitert", "failed on purpose"), hint=T("Hinweis", "hint"))
    out.emit({"hello": args.name, "config": args.config, "lang": out.lang},
             out.t(f"Hallo {args.name}", f"Hello {args.name}"))
    return 0

@hookimpl
def ccm_mail_commands(register):
    register(Command("hello", T("grüßen", "greet"), _arguments, _run))
"""
CLASH = """
from ccm_mail_hookspecs import Command, T, hookimpl
CCM_MAIL_API = 1

@hookimpl
def ccm_mail_commands(register):
    register(Command("send", T("kapert send", "hijacks send"), lambda p, h: None, lambda a, o: 0))
"""
BROKEN = """
from ccm_mail_hookspecs import hookimpl
CCM_MAIL_API = 1

@hookimpl
def ccm_mail_commands(register):
    raise RuntimeError("kaputt")
"""
# a plugin whose module says so when it is imported: proves when the host loads it
NOISY = """
import os, pathlib
pathlib.Path(os.environ["CCM_TEST_MARK"]).write_text("imported")
from ccm_mail_hookspecs import Command, T, hookimpl
CCM_MAIL_API = 1

@hookimpl
def ccm_mail_commands(register):
    register(Command("noisy", T("laut", "noisy"), lambda p, h: None, lambda a, o: 0))
"""


class InlineCommands:
    """The hook implemented by a test plugin object (the meta-test looks for its definition)."""

    @hookimpl
    def ccm_mail_commands(self, register):  # type: ignore[no-untyped-def]
        register(Command("inline", T("eingebaut", "inline"), lambda p, h: None, lambda a, o: 0))


def test_a_plugin_command_runs_with_the_global_options(workdir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-hello", "ccm_mail_hello", HELLO, entry_name="hello")
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    code, data = cli_json("hello", "--name", "Anna", "--lang", "en", cwd=workdir, site=site)
    assert code == 0, data
    assert data == {"hello": "Anna", "config": "ccm-mail.yaml", "lang": "en"}
    human = run_cli("hello", cwd=workdir, site=site)
    assert human.returncode == 0 and human.stdout.strip() == "Hallo Welt"
    listed = run_cli("--help", cwd=workdir, site=site)
    assert "hello" in listed.stdout and "grüßen" in listed.stdout


def test_an_error_of_a_plugin_command_is_shown_like_any_other(workdir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-hello", "ccm_mail_hello", HELLO, entry_name="hello")
    code, data = cli_json("hello", "--fail", cwd=workdir, site=site)
    assert code == 2
    assert data["error"] == {
        "kind": "error",
        "sent": False,
        "message": "absichtlich gescheitert",
        "hint": "Hinweis",
        "details": {},
    }


def test_a_command_may_not_take_a_built_in_name(workdir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-clash", "ccm_mail_clash", CLASH, entry_name="clash")
    code, data = cli_json("unknown-command", cwd=workdir, site=site)
    assert code == 2
    assert "'send'" in data["error"]["message"] and "'ccm-mail-core'" in data["error"]["message"]
    assert "'clash'" in data["error"]["message"]


def test_a_failing_commands_hook_names_the_plugin(workdir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-cmdbroken", "ccm_mail_cmdbroken", BROKEN, entry_name="cmdbroken")
    proc = run_cli("--help", cwd=workdir, site=site)
    assert proc.returncode == 2
    assert "'cmdbroken'" in proc.stderr and "ccm_mail_commands" in proc.stderr and "kaputt" in proc.stderr


def test_built_in_commands_never_load_a_plugin_for_the_parser(workdir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-noisy", "ccm_mail_noisy", NOISY, entry_name="noisy")
    mark = tmp_path / "imported"
    proc = run_cli("journal", "--help", cwd=workdir, site=site, env={"CCM_TEST_MARK": str(mark)})
    assert proc.returncode == 0 and not mark.exists()
    proc = run_cli("noisy", cwd=workdir, site=site, env={"CCM_TEST_MARK": str(mark)})
    assert proc.returncode == 0 and mark.exists()


def test_plugins_disable_keeps_a_plugins_commands_out(workdir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-hello", "ccm_mail_hello", HELLO, entry_name="hello")
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG + "plugins:\n  disable: [hello]\n", encoding="utf-8")
    proc = run_cli("hello", cwd=workdir, site=site)
    assert proc.returncode == 2 and "hello" in proc.stderr


def test_a_plugin_object_registers_its_command() -> None:
    from ccm_mail_core.plugins import collect_commands, make_plugin_manager

    pm = make_plugin_manager(load_entrypoints=False, extra=[("inline", InlineCommands())])
    assert [c.name for c in collect_commands(pm, taken=CORE_COMMANDS)] == ["inline"]
    with pytest.raises(Exception, match="'inline'"):
        collect_commands(pm, taken={"inline"})


def test_the_list_of_built_in_commands_is_the_parsers() -> None:
    parser = build_parser("de", plugin_commands=False)
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == CORE_COMMANDS  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["send", "--to", "x"], "send"),
        (["--config", "send", "journal"], "journal"),
        (["--lang=en", "serve"], "serve"),
        (["-c", "a.yaml", "--json", "outbox"], "outbox"),
        (["--help"], None),
        ([], None),
        (["--server", "http://h", "--api-key-file", "k", "send"], "send"),
    ],
)
def test_the_command_word_is_found_before_parsing(argv: list[str], word: str | None) -> None:
    assert command_word(argv) == word


def test_help_does_not_import_msal_or_requests_with_every_plugin_installed(tmp_path: Path) -> None:
    """With the plugins installed in this environment (the server plugin adds ``serve``)."""
    code = (
        "import sys, io, contextlib\nfrom ccm_mail_core.cli import main\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "import json\nprint(json.dumps({'help': buf.getvalue(), 'heavy': [m for m in ('msal', 'requests', 'flask', "
        "'waitress') if m in sys.modules]}))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "CCM_MAIL_LOAD_PLUGINS"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(proc.stdout)
    assert "serve" in result["help"]
    assert result["heavy"] == []
