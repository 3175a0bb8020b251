"""The real service for the tests: a config with a pickup-folder account (real .eml files), the
service on a free loopback port (cheroot in a thread, or ``ccm-mail serve`` as a real process for
kills), and a urllib client that talks HTTP to it."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import yaml

INVOICE = {"extRechnungsNr": "RE-2026-00042", "Anrede": "Sehr geehrte Frau Weiß", "Betrag": "1.234,56 €"}
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n" + bytes(range(256))


def write_config(folder: Path, *, server: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    config: dict[str, Any] = {
        "language": "de",
        "accounts": {
            "Rechnungsversand": {
                "type": "pickup",
                "folder": "out",
                "sender": "rechnung@codicon.de",
                "from_name": "codicon GmbH",
            }
        },
        "purposes": {"invoice": "Rechnungsversand"},
        "templates": {
            "invoice": {
                "subject": "codicon GmbH / Rg. #extRechnungsNr#",
                "body": "#Anrede#,\n\nanbei Ihre Rechnung #extRechnungsNr# über #Betrag#.\n",
                "reference": "#extRechnungsNr#",
            }
        },
        "journal": {"path": "journal.sqlite"},
        "state_dir": "state",
        "outbox": {"grace_seconds": 1},
        "logging": {"level": "warning"},
        "plugins": {
            "settings": {
                "server": {
                    "listen": "127.0.0.1:0",
                    "keys_dir": "keys",
                    "max_request_mb": 2,
                    "outbox_seconds": 1,
                    **(server or {}),
                }
            }
        },
    }
    config.update(extra or {})
    path = folder / "ccm-mail.yaml"
    path.write_text("# von Hand gepflegt\n" + yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def attachment(name: str = "RE-2026-00042.pdf", content: bytes = PDF) -> dict[str, str]:
    return {"filename": name, "content_base64": base64.b64encode(content).decode("ascii")}


def invoice(number: str = "RE-2026-00042", **extra: Any) -> dict[str, Any]:
    return {
        "purpose": "invoice",
        "to": ["Müller & Söhne <buchhaltung@mueller.example>"],
        "data": {**INVOICE, "extRechnungsNr": number},
        "attachments": [attachment()],
        "yes": True,
        **extra,
    }


class Client:
    def __init__(self, url: str, key: str | None) -> None:
        self.url, self.key = url, key

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any, dict[str, str]]:
        sent = dict(headers or {})
        key = self.key if key == "default" else key
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (json.dumps(body).encode("utf-8") if body is not None else None)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload, status, got = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            payload, status, got = exc.read(), exc.code, dict(exc.headers)
        try:
            return status, json.loads(payload), got
        except json.JSONDecodeError:
            return status, payload.decode("utf-8", "replace"), got


def keys(folder: Path) -> dict[str, str]:
    return {s: (folder / "keys" / f"{s}.key").read_text("ascii").strip() for s in ("send", "settings")}


@contextmanager
def service_thread(config: Path, plugins: dict[str, object] | None = None) -> Iterator[str]:
    """The service in this process (cheroot on a free port in a thread); yields its URL.
    ``plugins``: further plugin modules the service loads (besides the server itself)."""
    from ccm_mail_core import Mailer
    from ccm_mail_core.storage import data_dir
    from ccm_mail_server.command import build_server
    from ccm_mail_server.keys import KeyStore
    from ccm_mail_server.service import Service
    from ccm_mail_server.settings import ServerSettings

    from ccm_mail_server import plugin

    mailer = Mailer.from_config(config, plugins={"server": plugin, **(plugins or {})}, load_entrypoints=False)
    settings = ServerSettings.from_mapping(mailer.config.plugin_settings.get("server", {}), config.parent)
    store = KeyStore(settings.keys, settings.keys_dir or data_dir() / "server")
    store.ensure()
    from ccm_mail_server.site import create_site

    service = Service(config, settings, store, mailer=mailer)
    server = build_server(create_site(service), settings)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    service.start()
    try:
        yield f"http://127.0.0.1:{server.bind_addr[1]}"
    finally:
        server.stop()
        thread.join(timeout=10)
        service.close()


class ServiceProcess:
    """``ccm-mail serve`` as a real process (so it can be killed)."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.env = config, env
        self.proc: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None
        self.url = ""

    def start(self, timeout: float = 30) -> str:
        env = {**os.environ, "CCM_MAIL_LOAD_PLUGINS": "server", **(self.env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ccm_mail_core.cli", "--config", str(self.config), "serve"],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if found and "bereit" in line:
                self.url = found.group(1)
                self._drainer = threading.Thread(target=self._drain, daemon=True)
                self._drainer.start()
                return self.url
        raise AssertionError("service did not start:\n" + "".join(lines))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for _ in self.proc.stderr:
            pass

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self._close()
        return self.proc.returncode

    def _close(self) -> None:
        if self._drainer is not None:
            self._drainer.join(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()


def sent_mails(folder: Path) -> list[Any]:
    """Every .eml in the pickup folder, parsed back."""
    return [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted((folder / "out").glob("*.eml"))
    ]


def run_serve(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``ccm-mail serve ARGS`` that is expected to end by itself (a refusal, --show-keys, --new-key)."""
    env = {**os.environ, "CCM_MAIL_LOAD_PLUGINS": "server"}
    return subprocess.run(
        [sys.executable, "-m", "ccm_mail_core.cli", "--config", str(folder / "ccm-mail.yaml"), "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
