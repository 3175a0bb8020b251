"""The host finds the plugin through the ``ccm_mail`` entry point only."""

from __future__ import annotations

import importlib.metadata as md

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
