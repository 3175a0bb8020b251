"""Shared by the benchmark scripts: the sandbox in its own process, a ccm-mail config pointed at
it, batch files, and how results are printed and handed to ``run_all.py``."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any, Self

import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "config.example.yaml"
EXAMPLE_PDF = REPO / "examples" / "RE-2026-00042.pdf"
EXAMPLE_DATA = json.loads((REPO / "examples" / "invoice.json").read_text("utf-8"))

TENANT = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"
CLIENT = "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"
SECRET = "Bench~Sandbox.Geheimnis-nicht-produktiv"
SECRET_ENV = "CCM_MAIL_BENCH_SECRET"
DOMAIN = "codicon.de"
PERMISSIONS = ["Mail.Send", "Mail.ReadBasic.All", "Mail.ReadWrite"]
#: a rate so high that the sandbox never throttles (benchmarks 1, 2, 4)
NO_LIMIT = (1_000_000, 1.0)


@dataclass
class Result:
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None  #: None: a number shown for context, without a target
    detail: str = ""


class SandboxProcess:
    """``_sandbox_server.py`` in a child process; ``call`` talks to its control channel."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.key = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._conn: Any = None

    def __enter__(self) -> Self:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BENCH_SANDBOX_KEY": self.key}
        self._log = open(self.state_dir / "sandbox.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_sandbox_server.py")), str(self.state_dir)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        info_file = self.state_dir / "sandbox.json"
        deadline = time.monotonic() + 30
        while not info_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sandbox did not start: " + (self.state_dir / "sandbox.log").read_text())
            time.sleep(0.05)
        self.info = json.loads(info_file.read_text("utf-8"))
        self._conn = Client(tuple(self.info["control"]), authkey=self.key.encode())
        return self

    def call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"sandbox {name}: {value}")
        return value

    def seed(
        self, mailboxes: list[str], *, rate: tuple[int, float] = NO_LIMIT, max_message_size: int = 35 * 1024 * 1024
    ) -> None:
        self.info.update(
            self.call(
                "seed",
                {
                    "tenant_id": TENANT,
                    "domain": DOMAIN,
                    "client_id": CLIENT,
                    "secret": SECRET,
                    "permissions": PERMISSIONS,
                    "mailboxes": mailboxes,
                    "rate": list(rate),
                    "max_message_size": max_message_size,
                },
            )
        )

    @property
    def ca_pem(self) -> str:
        return str(self.info["ca_pem"])

    def __exit__(self, *exc: object) -> None:
        try:
            if self._conn is not None:
                self.call("stop")
                self._conn.close()
        except (OSError, EOFError):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def write_config(
    path: Path,
    sandbox: SandboxProcess,
    accounts: dict[str, str],
    *,
    pool: list[str] | None = None,
    limits: dict[str, Any] | None = None,
    grace_seconds: float | None = None,
    log_level: str = "info",
) -> Path:
    """config.example.yaml's invoice template and account shape, pointed at the sandbox.
    ``accounts``: name → mailbox."""
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text("utf-8"))
    template = dict(example["accounts"]["Rechnungsversand"])
    config: dict[str, Any] = {"language": "de", "accounts": {}}
    for name, mailbox in accounts.items():
        acc = {
            **template,
            "mailbox": mailbox,
            "client_secret": {"env": SECRET_ENV},
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "authority_host": sandbox.info["authority_host"],
            "graph_endpoint": sandbox.info["graph_endpoint"],
            "ca_bundle": sandbox.ca_pem,
        }
        if limits is not None:
            acc["limits"] = limits
        config["accounts"][name] = acc
    names = list(accounts)
    config["purposes"] = {"invoice": pool or names[0]}
    config["templates"] = {"invoice": example["templates"]["invoice"]}
    config["journal"] = {"path": str(path.parent / "journal.sqlite")}
    config["state_dir"] = str(path.parent / "state")
    if grace_seconds is not None:
        config["outbox"] = {"grace_seconds": grace_seconds}
    config["logging"] = {"format": "json", "level": log_level}
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    path.chmod(0o600)
    os.environ[SECRET_ENV] = SECRET
    return path


def invoice_data(i: int, tag: str = "B") -> dict[str, Any]:
    return {**EXAMPLE_DATA, "extRechnungsNr": f"RE-{tag}-{i:06d}", "RechnungsNr": str(i)}


def write_batch(path: Path, n: int, *, tag: str, pdf: Path = EXAMPLE_PDF) -> Path:
    """JSON Lines batch: n invoices, each with the example PDF, distinct invoice numbers."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {"to": f"kunde{i}@example.de", "attachments": [str(pdf)], "data": invoice_data(i, tag)},
                    ensure_ascii=False,
                )
                + "\n"
            )
    return path


def cli_env(config: Path) -> dict[str, str]:
    return {**os.environ, "CCM_MAIL_CONFIG": str(config), SECRET_ENV: SECRET, "PYTHONUNBUFFERED": "1"}


def ccm_mail_cmd() -> list[str]:
    """``ccm-mail`` of the interpreter running the benchmarks (the venv's under ``make bench``)."""
    script = Path(sys.executable).with_name("ccm-mail")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ccm_mail_core.cli"]


def main(title: str, run: Any) -> None:
    """Run one benchmark, print its numbers; ``--json FILE`` also writes them for run_all."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    args = parser.parse_args()
    print(f"== {title}", flush=True)
    results: list[Result] = run()
    for r in results:
        print(
            f"   {r.name}: {r.value:g} {r.unit}   target {r.target}   {verdict(r.ok)}"
            + (f"   ({r.detail})" if r.detail else ""),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results]), "utf-8")
    sys.exit(0 if all(r.ok is not False for r in results) else 1)


def verdict(ok: bool | None) -> str:
    return "info" if ok is None else "PASS" if ok else "FAIL"


def run_batch_in_process(config: Path, batch_file: Path, *, log: Path) -> Any:
    """What ``ccm-mail batch FILE --purpose invoice --yes`` does, in this process: plan (validate
    every row), queue, send at the accounts' pace. Returns the summary."""
    import io

    from ccm_mail_core import Mailer, batch, logging_setup

    with open(log, "a", encoding="utf-8") as fh:
        logging_setup.configure(fmt="json", level="info", stream=fh)
        with Mailer.from_config(config) as mailer:
            plan = batch.plan(mailer, batch_file, "invoice")
            assert not plan.problems, [p.render("en") for p in plan.problems]
            batch.queue_plan(mailer, plan)
            return batch.send(mailer, plan, stream=io.StringIO())
