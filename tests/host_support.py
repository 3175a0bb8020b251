"""Helpers for the host's own tests (a uniquely named module: every plugin has a conftest.py too)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


REPO = Path(__file__).resolve().parent.parent

BASE_CONFIG = """\
language: de
accounts:
  Rechnungsversand:
    type: pickup
    folder: out
    sender: rechnung@codicon.de
    from_name: codicon GmbH
purposes:
  invoice: Rechnungsversand
templates:
  invoice:
    subject: "codicon GmbH / Rg. #extRechnungsNr#"
    body: |
      #Anrede#,

      anbei Ihre Rechnung #extRechnungsNr# über #Betrag#.
      Mit freundlichen Grüßen
    reference: "#extRechnungsNr#"
journal:
  path: journal.sqlite
"""

#: the test server's password reaches the config as {env: …}, as a site's would
PG_PASSWORD_ENV = "CCM_TEST_PG_PASSWORD"


def pg_journal_section(server: Any, *, lease_seconds: float = 2.0) -> str:
    """A new database on ``server``, migrated, as a config's ``journal:`` section."""
    from ccm_mail_core.journal.postgres import PostgresJournal

    url = server.url(server.database())
    PostgresJournal(url, password=server.password, migrate=True).close()
    return f"journal:\n  url: {url}\n  password: {{env: {PG_PASSWORD_ENV}}}\n  lease_seconds: {lease_seconds}\n"


INVOICE = {"extRechnungsNr": "RE-2026-00042", "Anrede": "Sehr geehrte Frau Weiß", "Betrag": "1.234,56 €"}


#: the host's switch for which installed plugins load; host tests load none unless they say so
LOAD_PLUGINS = "CCM_MAIL_LOAD_PLUGINS"


def site_plugins(site: Path) -> list[str]:
    """The entry-point names the distributions in ``site`` declare."""
    names = []
    for info in site.glob("*.dist-info/entry_points.txt"):
        names += [line.split("=")[0].strip() for line in info.read_text(encoding="utf-8").splitlines() if "=" in line]
    return names


def make_dist(site: Path, dist: str, module: str, source: str, *, entry_name: str | None = None) -> None:
    """Install a tiny plugin distribution into ``site`` the way pip would (module + dist-info with
    an entry point in the ``ccm_mail`` group), so the host finds it through importlib.metadata."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[ccm_mail]\n{entry_name or module} = {module}\n", encoding="utf-8")


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str | None] | None = None,
    stdin: str | bytes | None = None,
    site: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``ccm-mail ARGS`` run in this process, set up as a new process would be: its own working
    folder, environment, standard input and streams, an empty redaction registry, no logging
    set-up. Where only a real process proves something (code pages, kills), use
    :func:`run_cli_process`."""
    import contextlib
    import importlib

    import structlog

    from ccm_mail_core import logging_setup
    from ccm_mail_core.cli import main
    from ccm_mail_hookspecs import redaction

    saved_env, saved_path = dict(os.environ), list(sys.path)
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    raw = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    redaction._forget_all()
    try:
        for key, value in (env or {}).items():  # None: not set at all
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if site is not None:
            sys.path.insert(0, str(site))
            importlib.invalidate_caches()
            os.environ[LOAD_PLUGINS] = ",".join(site_plugins(site))
        sys.stdin, sys.stdout, sys.stderr = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"), out, err
        with contextlib.chdir(cwd):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        structlog.reset_defaults()
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, logging_setup.Handler)]:
            root.removeHandler(handler)
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode(stream.encoding, errors="replace"))
    return subprocess.CompletedProcess(["ccm-mail", *args], code, texts[0], texts[1])


def run_cli_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None, site: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``ccm-mail ARGS`` as a real child process (``python -m ccm_mail_core.cli``)."""
    full_env = {**os.environ, **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), full_env.get("PYTHONPATH", "")]))
        full_env[LOAD_PLUGINS] = ",".join(site_plugins(site))
    return subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        input=stdin if stdin is not None else "",
        timeout=120,
    )


def cli_json(*args: str, cwd: Path, **kw: Any) -> tuple[int, Any]:
    proc = run_cli(*args, "--json", cwd=cwd, **kw)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None
