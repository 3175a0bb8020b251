"""Plugins found through real entry points (a dist-info on sys.path, as pip leaves it)."""

from __future__ import annotations

import pytest

from ccm_mail_core.plugins import collect, make_plugin_manager as get_plugin_manager
from ccm_mail_hookspecs import AccountType, Field, PluginError, T, hookimpl

from host_support import LOAD_PLUGINS, cli_json, make_dist, run_cli, site_plugins

GOOD = """
from ccm_mail_hookspecs import AccountType, Field, T, hookimpl
from ccm_mail_core.builtins.pickup_folder import PickupTransport
CCM_MAIL_API = 1

@hookimpl
def ccm_mail_account_types(register):
    register(AccountType("fax", T("Fax", "Fax"), (Field("folder", T("Ordner", "Folder"), kind="path"),
             Field("sender", T("Absender", "Sender"), kind="email")), PickupTransport))
"""
BROKEN = "import does_not_exist_anywhere\n"
FUTURE = "CCM_MAIL_API = 2\n"


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_dist(site, "ccm-mail-fax", "ccm_mail_fax", GOOD, entry_name="fax")
    make_dist(site, "ccm-mail-broken", "ccm_mail_broken", BROKEN, entry_name="broken")
    make_dist(site, "ccm-mail-future", "ccm_mail_future", FUTURE, entry_name="future")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(LOAD_PLUGINS, ",".join(site_plugins(site)))
    return site


def test_broken_and_incompatible_plugins_are_reported_and_the_rest_loads(site) -> None:
    host = get_plugin_manager()
    names = {i.name for i in host.infos()}
    assert {"fax", "pickup", "placeholders", "confirm-terminal"} <= names
    assert "broken" not in names and "future" not in names
    failures = {f.name: f for f in host.failures}
    assert "does_not_exist_anywhere" in failures["broken"].reason.en
    assert failures["broken"].distribution == "ccm-mail-broken"
    assert "needs plugin API 2" in failures["future"].reason.en and "Plugin-API 2" in failures["future"].reason.de
    fax = next(i for i in host.infos() if i.name == "fax")
    assert (fax.distribution, fax.version, fax.hooks) == ("ccm-mail-fax", "1.2.3", ("ccm_mail_account_types",))
    assert "fax" in collect(host).account_types


def test_disabled_plugin_is_not_loaded(site) -> None:
    host = get_plugin_manager(blocked=["fax", "confirm-terminal"])
    names = {i.name for i in host.infos()}
    assert "fax" not in names and "confirm-terminal" not in names and "pickup" in names


def test_plugins_command_lists_names_versions_hooks_and_failures(site, tmp_path) -> None:
    rc, data = cli_json("plugins", cwd=tmp_path, site=site)
    assert rc == 0
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["fax"]["distribution"] == "ccm-mail-fax" and by_name["fax"]["version"] == "1.2.3"
    assert by_name["pickup"]["builtin"] is True and by_name["pickup"]["hooks"] == ["ccm_mail_account_types"]
    assert {f["name"] for f in data["failed"]} >= {"broken", "future"}
    human = run_cli("plugins", "--lang", "en", cwd=tmp_path, site=site)
    assert "NOT LOADED" in human.stdout and "fax  ccm-mail-fax 1.2.3" in human.stdout


def test_duplicate_account_type_fails_loudly_naming_both() -> None:
    class Twin:
        @hookimpl
        def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
            register(AccountType("pickup", T("Zwilling", "Twin"), (Field("x", T("x", "x")),), lambda s: None))

    host = get_plugin_manager(load_entrypoints=False, extra=[("twin", Twin())])
    with pytest.raises(PluginError) as err:
        collect(host)
    assert "'pickup'" in err.value.render("en") and "'twin'" in err.value.render("en")


def test_duplicate_placeholder_fails_loudly() -> None:
    from ccm_mail_hookspecs import data_field

    class Twin:
        @hookimpl
        def ccm_mail_placeholders(self):  # type: ignore[no-untyped-def]
            return [data_field("Datum", T("d", "d"), "1")]

    host = get_plugin_manager(load_entrypoints=False, extra=[("twin", Twin())])
    with pytest.raises(PluginError, match="Datum"):
        collect(host)


def test_hook_with_unknown_name_is_rejected_at_start() -> None:
    from pluggy import PluginValidationError

    class Typo:
        @hookimpl
        def ccm_mail_sentt(self):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginValidationError):
        get_plugin_manager(load_entrypoints=False, extra=[("typo", Typo())])


class Settings:
    def __init__(self) -> None:
        self.got = None

    @hookimpl
    def ccm_mail_configure(self, settings, lang):  # type: ignore[no-untyped-def]
        from ccm_mail_hookspecs import ConfigError

        if "archive" in settings and "@" not in settings["archive"]:
            raise ConfigError(T("archive muss eine Adresse sein", "archive must be an address"))
        self.got = (dict(settings), lang)


def test_plugin_receives_its_own_settings_and_validates_them(make_mailer) -> None:
    from host_support import BASE_CONFIG
    from ccm_mail_core.config import ConfigProblems

    plugin = Settings()
    make_mailer(
        BASE_CONFIG + "plugins:\n  settings:\n    archiver:\n      archive: a@codicon.de\n",
        plugins={"archiver": plugin},
    )
    assert plugin.got == ({"archive": "a@codicon.de"}, "de")
    with pytest.raises(ConfigProblems) as err:
        make_mailer(
            BASE_CONFIG + "plugins:\n  settings:\n    archiver:\n      archive: nope\n    ghost: {}\n",
            plugins={"archiver": Settings()},
        )
    assert sorted(p.key for p in err.value.problems) == ["plugins.settings.archiver", "plugins.settings.ghost"]
