"""The pages' tests: a site (the service with the Office 365 plugin, over real HTTP on loopback),
a browser client for the tests that need no script, and screenshots for docs/ui/.

Screenshots are always taken (so the code that takes them runs); they are written into the
repository's ``docs/ui/`` only when ``CCM_MAIL_UPDATE_SCREENSHOTS=1`` is set, so the committed
pictures are exactly what a test run produced.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

REPO = Path(__file__).resolve().parents[3]
DOCS_UI = REPO / "docs" / "ui"
UPDATE_SCREENSHOTS = os.environ.get("CCM_MAIL_UPDATE_SCREENSHOTS") == "1"
CHROMIUM = "/usr/bin/chromium"
#: the app's client secret in the sandbox; it must never appear in a page, the YAML or a log
SECRET = "Sb8Q~ui.Geheimnis-" + uuid.uuid4().hex
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_site_config(
    folder: Path,
    *,
    accounts: dict[str, Any] | None = None,
    purposes: dict[str, Any] | None = None,
    templates: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
) -> Path:
    """A site as a newcomer has it: a pickup folder account for E-Service, no invoice account."""
    config: dict[str, Any] = {
        "language": "de",
        "accounts": accounts
        or {
            "Testablage": {
                "type": "pickup",
                "folder": "out",
                "sender": "service@codicon.de",
                "from_name": "codicon GmbH Kundenservice",
            }
        },
        "purposes": purposes or {"eservice": "Testablage"},
        "templates": templates
        or {
            "eservice": {
                "subject": "codicon E-Service: Ihre Anfrage",
                "body": "#Anrede#,\n\nvielen Dank für Ihre Nachricht.\n",
                "reference": "none",
            }
        },
        "journal": {"path": "journal.sqlite"},
        "state_dir": "state",
        "outbox": {"grace_seconds": 1},
        "logging": {"level": "warning"},
        # the outbox loop looks only at the start: unknown rows wait for the operator in these tests
        "plugins": {
            "settings": {
                "server": {"listen": "127.0.0.1:0", "keys_dir": "keys", "outbox_seconds": 3600, **(server or {})}
            }
        },
    }
    path = folder / "ccm-mail.yaml"
    path.write_text(
        "# Standort codicon – von Hand gepflegt\n" + yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
        "utf-8",
    )
    return path


@dataclass
class Running:
    url: str
    site: Any
    service: Any

    def login_url(self) -> str:
        return self.url + self.site.login_path()


@contextmanager
def site_thread(config: Path) -> Iterator[Running]:
    """``ccm-mail serve``'s site (API and pages) on a free loopback port, in this process, with
    the server and Office 365 plugins."""
    from ccm_mail_core import Mailer
    from ccm_mail_core.storage import data_dir
    from ccm_mail_office365 import plugin as o365_plugin
    from ccm_mail_server.command import build_server
    from ccm_mail_server.keys import KeyStore
    from ccm_mail_server.service import Service
    from ccm_mail_server.settings import ServerSettings
    from ccm_mail_server.site import create_site

    from ccm_mail_server import plugin

    mailer = Mailer.from_config(config, plugins={"server": plugin, "office365": o365_plugin}, load_entrypoints=False)
    settings = ServerSettings.from_mapping(mailer.config.plugin_settings.get("server", {}), config.parent)
    store = KeyStore(settings.keys, settings.keys_dir or data_dir() / "server")
    store.ensure()
    service = Service(config, settings, store, mailer=mailer)
    site = create_site(service)
    server = build_server(site, settings)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    service.start()
    try:
        yield Running(f"http://127.0.0.1:{server.bind_addr[1]}", site, service)
    finally:
        server.stop()
        thread.join(timeout=10)
        service.close()


class Browser:
    """A script-less browser for the pages: cookies, forms, status codes (urllib)."""

    def __init__(self, url: str, lang: str = "de") -> None:
        self.url, self.lang = url, lang
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(
        self,
        path: str,
        form: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        method: str | None = None,
    ) -> tuple[int, str, dict[str, str]]:
        data = raw if raw is not None else (urlencode(form).encode() if form is not None else None)
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Accept-Language": self.lang, **(headers or {})}
        )
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.read().decode("utf-8"), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace"), dict(exc.headers)

    def csrf(self, page: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]*)"', page)
        assert found, "no CSRF token in the page"
        return found.group(1)

    def login(self, key: str) -> str:
        status, page, _ = self.open("/ui/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page)
        assert status == 200 and token
        status, page, _ = self.open("/ui/login", {"login_token": token.group(1), "key": key, "next": ""})
        assert status == 200, page
        return page

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def shot(page: Any, name: str, tmp: Path, *, full_page: bool = True) -> Path:
    """A screenshot of the page as it is now: into docs/ui/ when asked for, else beside the test."""
    target = (DOCS_UI if UPDATE_SCREENSHOTS else tmp) / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=full_page, animations="disabled", caret="hide")
    return target
