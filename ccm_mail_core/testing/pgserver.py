"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` into a temporary folder,
``pg_ctl`` on a free loopback port, a password-protected role for TCP (so tests take the same
path as a real site: user, password, host, port) and trust only on its private socket folder.

PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as
``nobody`` (``runuser``). Linux/macOS only: on Windows a site runs its own server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Debian's binaries when they are not on PATH
_DEBIAN_BIN = Path("/usr/lib/postgresql")


def find_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl`` (PATH first, then Debian's newest), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    if _DEBIAN_BIN.is_dir():
        for version in sorted(_DEBIAN_BIN.iterdir(), key=lambda p: p.name, reverse=True):
            if (version / "bin" / "initdb").exists():
                return version / "bin"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """One running server; :meth:`database` makes a fresh database with a URL for it."""

    bin: Path
    root: Path
    port: int
    user: str = "ccm"
    password: str = field(default_factory=lambda: "Pg~" + secrets.token_urlsafe(12))
    fsync: bool = False
    _runas: list[str] = field(default_factory=list)
    _count: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sock"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._runas, *args], capture_output=True, text=True, check=check, timeout=timeout, cwd=self.root
        )

    def init(self) -> None:
        if getattr(os, "geteuid", lambda: -1)() == 0:  # PostgreSQL refuses to run as root
            self._runas = ["runuser", "-u", "nobody", "--"]
            shutil.chown(self.root, "nobody")
        self.sockets.mkdir()
        if self._runas:
            shutil.chown(self.sockets, "nobody")
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self._runas:
            shutil.chown(pwfile, "nobody")
        pwfile.chmod(0o600)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--pwfile",
            str(pwfile),
            "-A",
            "scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        conf = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.sockets}'",
            f"fsync = {'on' if self.fsync else 'off'}",
            "max_connections = 200",
            "shared_buffers = 64MB",
            "log_min_messages = warning",
            "logging_collector = off",
        ]
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("\n".join(conf) + "\n")

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def psql(self, sql: str, db: str = "postgres") -> str:
        return self._run(
            str(self.bin / "psql"),
            "-h",
            str(self.sockets),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        ).stdout

    def url(self, db: str, *, with_password: bool = False) -> str:
        auth = f"{self.user}:{self.password}" if with_password else self.user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name


@contextmanager
def running(*, fsync: bool = False) -> Iterator[PgServer]:
    """A server for the duration of the block; raises RuntimeError when PostgreSQL is not installed."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found; Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="ccm-pg-"))
    server = PgServer(bin_dir, root, free_port(), fsync=fsync)
    try:
        server.init()
        for attempt in range(3):  # a free port can be taken between the probe and the start
            try:
                server.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise RuntimeError("PostgreSQL did not start: " + _log(server)) from None
                server.port = free_port()
                _set_port(server)
        yield server
    finally:
        server.stop("immediate")
        time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)


def _set_port(server: PgServer) -> None:
    conf = server.data / "postgresql.conf"
    lines = [ln for ln in conf.read_text(encoding="utf-8").splitlines() if not ln.startswith("port = ")]
    conf.write_text("\n".join([*lines, f"port = {server.port}"]) + "\n", encoding="utf-8")


def _log(server: PgServer) -> str:
    try:
        return (server.root / "server.log").read_text(encoding="utf-8")[-2000:]
    except OSError:
        return "(no log)"
