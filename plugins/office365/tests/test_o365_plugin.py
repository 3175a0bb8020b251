"""The host finds the plugin through the ``ccm_mail`` entry point only."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

from ccm_mail_hookspecs import API_MAJOR


def test_entry_point_and_api_version() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="ccm_mail")}
    assert eps["office365"].value == "ccm_mail_office365.plugin"
    module = eps["office365"].load()
    assert module.CCM_MAIL_API == API_MAJOR
    requires = md.requires("ccm-mail-office365") or []
    assert not any(r.startswith("ccm-mail-core") for r in requires), "must not depend on the host"


def test_registers_account_type() -> None:
    from ccm_mail_office365 import plugin

    seen = []
    plugin.ccm_mail_account_types(register=seen.append)
    assert [t.id for t in seen] == ["office365"]
    assert seen[0].label.de == "Office 365"


def test_host_loads_it() -> None:
    from ccm_mail_core.plugins import collect, make_plugin_manager

    types = collect(make_plugin_manager()).account_types
    assert "office365" in types
    assert set(types["office365"].actions) >= {"consent"}


def test_loading_the_plugin_imports_no_client_library(tmp_path) -> None:
    """Every ccm-mail command loads the entry point; only building a transport or running an
    action needs msal and requests, and cryptography only a certificate account. A fresh
    interpreter, since this one has them."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ccm_mail_hookspecs import AccountSettings\n"
        "from ccm_mail_office365 import plugin\n"
        "heavy = ('msal', 'requests', 'cryptography', 'urllib3')\n"
        "types = []\n"
        "plugin.ccm_mail_account_types(register=types.append)\n"
        "types[0].to_dict('de'); types[0].validate({})\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "settings = AccountSettings('a', 'office365', {'tenant_id': 't', 'client_id': 'c', 'mailbox': 'a@b.example',\n"
        "                           'client_secret': 'x' * 8}, Path(sys.argv[1]))\n"
        "types[0].create_transport(settings).close()\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "['msal', 'requests', 'urllib3']"], out.stderr
