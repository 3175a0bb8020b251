"""Issue 16 through the service: the account list warns about a credential that expires within
30 days, from the account's settings alone (``AccountType.expiry``: listing never asks a
provider), and the settings API writes and shows a purpose's defaults."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from ccm_mail_hookspecs import AccountType, Expiry, Field, T, hookimpl
from server_support import Client, keys, service_thread, write_config


class ExpiringType:
    """An account type whose password has an end date in its settings, as SMTP's has."""

    @hookimpl
    def ccm_mail_account_types(self, register: Any) -> None:
        from ccm_mail_core.builtins.pickup_folder import PickupTransport

        register(
            AccountType(
                id="expiring",
                label=T("Läuft ab", "expiring"),
                create_transport=PickupTransport,
                fields=(
                    Field("folder", T("Ordner", "folder"), kind="path"),
                    Field("sender", T("Absender", "sender"), kind="email"),
                    Field("password_expires", T("gültig bis", "valid until"), required=False, kind="date"),
                ),
                expiry=lambda v: (
                    Expiry(
                        T("Passwort", "password"),
                        v["password_expires"],
                        "config",
                        T("Neues Passwort setzen.", "Set a new password."),
                    )
                    if v.get("password_expires")
                    else None
                ),
            )
        )


def test_account_list_carries_the_expiry_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCM_MAIL_LOAD_PLUGINS", "server")
    soon = (datetime.now(timezone.utc) + timedelta(days=12)).date().isoformat()
    config = write_config(tmp_path)
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["accounts"]["Service"] = {
        "type": "expiring",
        "folder": "out2",
        "sender": "service@codicon.de",
        "password_expires": soon,
    }
    config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with service_thread(config, {"expiring": ExpiringType()}) as url:
        status, body, _ = Client(url, keys(tmp_path)["settings"]).call("GET", "/api/v1/accounts")
    assert status == 200, body
    rows = {r["name"]: r for r in body["accounts"]}
    assert rows["Rechnungsversand"]["expiry"] is None and rows["Rechnungsversand"]["warnings"] == []
    expiry = rows["Service"]["expiry"]
    assert expiry["state"] == "soon" and expiry["not_after"].startswith(soon) and expiry["source"] == "config"
    [warning] = rows["Service"]["warnings"]
    assert "Passwort läuft am" in warning and "Neues Passwort setzen." in warning


def test_purpose_defaults_through_the_settings_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``PUT /settings/purposes/{p}`` with ``options`` writes the mapping form (comments kept, checked
    like config check first); the settings document shows the options back."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCM_MAIL_LOAD_PLUGINS", "server")
    config = write_config(tmp_path)
    with service_thread(config) as url:
        admin = Client(url, keys(tmp_path)["settings"])
        bad = admin.call(
            "PUT",
            "/api/v1/settings/purposes/invoice",
            {"accounts": ["Rechnungsversand"], "options": {"reply_to": "a@x.de\r\nBcc: b@y.de"}},
        )
        assert bad[0] == 422 and bad[1]["problems"][0]["key"] == "purposes.invoice.reply_to"
        status, body, _ = admin.call(
            "PUT",
            "/api/v1/settings/purposes/invoice",
            {
                "accounts": ["Rechnungsversand"],
                "options": {
                    "bcc": "archiv@codicon.de",
                    "einvoice": "required",
                    "archive": {"folder": "archiv", "retention_years": 8},
                },
            },
        )
        assert status == 200, body
        status, doc, _ = admin.call("GET", "/api/v1/settings")
    assert doc["purposes"] == {"invoice": ["Rechnungsversand"]}
    assert doc["purpose_options"]["invoice"] == {
        "bcc": "archiv@codicon.de",
        "einvoice": "required",
        "archive": {"folder": "archiv", "retention_years": 8},
    }
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# von Hand gepflegt\n") and "archive: {folder: archiv, retention_years: 8}" in text
