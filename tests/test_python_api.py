"""The Python API as docs/python-api.md shows it, in a fresh process (field defect 14): the YAML's
``logging:`` section applies unless the embedding host set up logging itself, and nothing ever
goes to the host's stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from host_support import BASE_CONFIG, INVOICE

SCRIPT = """
import json, sys
{before}
from ccm_mail_core import Mailer
with Mailer.from_config("ccm-mail.yaml") as mailer:
    result = mailer.send("invoice", to=["kunde@example.de"], data=json.loads(sys.argv[1]), assume_yes=True)
    assert result.status.value == "sent", result
"""


def run(workdir: Path, before: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT.format(before=before)), json.dumps(INVOICE)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CCM_MAIL_LOAD_PLUGINS": ""},
    )


def test_the_configs_logging_applies_and_stdout_stays_empty(workdir) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG + "logging:\n  format: json\n  level: info\n", encoding="utf-8")
    proc = run(workdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # the host's stdout is its own
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [e["event"] for e in events] == ["sent"] and events[0]["reference"] == "RE-2026-00042"


def test_a_log_file_from_the_config(workdir) -> None:
    (workdir / "ccm-mail.yaml").write_text(
        BASE_CONFIG + "logging:\n  format: json\n  file: logs/ccm-mail.log\n", encoding="utf-8"
    )
    proc = run(workdir)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stderr
    (line,) = (workdir / "logs" / "ccm-mail.log").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["event"] == "sent"


def test_a_hosts_own_logging_is_left_alone(workdir) -> None:
    (workdir / "ccm-mail.yaml").write_text(BASE_CONFIG + "logging:\n  format: json\n", encoding="utf-8")
    own = """
import structlog
structlog.configure(processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
                    logger_factory=structlog.PrintLoggerFactory(sys.stderr))
"""
    proc = run(workdir, before=own)
    assert proc.returncode == 0 and proc.stdout == ""
    assert any(line.startswith("event='sent' ") for line in proc.stderr.splitlines()), proc.stderr
