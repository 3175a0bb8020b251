"""Helpers for the host's own tests (a uniquely named module: every plugin has a conftest.py too)."""

from __future__ import annotations

import json
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

INVOICE = {"extRechnungsNr": "RE-2026-00042", "Anrede": "Sehr geehrte Frau Weiß", "Betrag": "1.234,56 €"}


def make_dist(site: Path, dist: str, module: str, source: str, *, entry_name: str | None = None) -> None:
    """Install a tiny plugin distribution into ``site`` the way pip would (module + dist-info with
    an entry point in the ``ccm_mail`` group), so the host finds it through importlib.metadata."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[ccm_mail]\n{entry_name or module} = {module}\n", encoding="utf-8")


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None,
            site: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), full_env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "ccm_mail_core.cli", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, input=stdin if stdin is not None else "", timeout=120)


def cli_json(*args: str, cwd: Path, **kw: Any) -> tuple[int, Any]:
    proc = run_cli(*args, "--json", cwd=cwd, **kw)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None
