"""What the plugins contribute, merged into one place: account types and placeholders."""

from __future__ import annotations

from dataclasses import dataclass

from ccm_mail_hookspecs import AccountType, Placeholder, PluginError, T

from .plugin_manager import PluginHost


@dataclass(frozen=True, slots=True)
class Registries:
    account_types: dict[str, AccountType]
    account_type_plugin: dict[str, str]
    placeholders: dict[str, Placeholder]
    placeholder_plugin: dict[str, str]

    def placeholders_for(self, purpose: str) -> dict[str, Placeholder]:
        return {n: p for n, p in self.placeholders.items() if p.applies_to(purpose)}


def collect(host: PluginHost) -> Registries:
    types: dict[str, AccountType] = {}
    type_owner: dict[str, str] = {}
    for impl in reversed(host.hook.ccm_mail_account_types.get_hookimpls()):
        owner = impl.plugin_name

        def register(account_type: AccountType, _owner: str = owner) -> None:
            if not isinstance(account_type, AccountType):
                raise PluginError(T(f"Plugin {_owner!r} registriert keinen AccountType: {account_type!r}",
                                    f"plugin {_owner!r} registered something that is not an AccountType: "
                                    f"{account_type!r}"))
            if account_type.id in types:
                raise PluginError(
                    T(f"Kontotyp {account_type.id!r} doppelt: von {type_owner[account_type.id]!r} und {_owner!r}.",
                      f"account type {account_type.id!r} registered twice: by {type_owner[account_type.id]!r} "
                      f"and {_owner!r}."),
                    hint=T("Eines der Plugins deaktivieren (plugins.disable).",
                           "Disable one of the plugins (plugins.disable)."))
            types[account_type.id] = account_type
            type_owner[account_type.id] = _owner

        _guarded(owner, "ccm_mail_account_types", lambda impl=impl, register=register: impl.function(
            **{k: v for k, v in {"register": register}.items() if k in impl.argnames}))

    placeholders: dict[str, Placeholder] = {}
    ph_owner: dict[str, str] = {}
    for impl in reversed(host.hook.ccm_mail_placeholders.get_hookimpls()):
        owner = impl.plugin_name
        result = _guarded(owner, "ccm_mail_placeholders", impl.function)
        for ph in result or ():
            if not isinstance(ph, Placeholder):
                raise PluginError(T(f"Plugin {owner!r} liefert keinen Placeholder: {ph!r}",
                                    f"plugin {owner!r} returned something that is not a Placeholder: {ph!r}"))
            if ph.name in placeholders:
                raise PluginError(
                    T(f"Platzhalter #{ph.name}# doppelt: von {ph_owner[ph.name]!r} und {owner!r}.",
                      f"placeholder #{ph.name}# contributed twice: by {ph_owner[ph.name]!r} and {owner!r}."))
            placeholders[ph.name] = ph
            ph_owner[ph.name] = owner
    return Registries(types, type_owner, placeholders, ph_owner)


def _guarded(owner: str, hook: str, call):  # type: ignore[no-untyped-def]
    try:
        return call()
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(T(f"Plugin {owner!r} ist in {hook} gescheitert: {type(exc).__name__}: {exc}",
                            f"plugin {owner!r} failed in {hook}: {type(exc).__name__}: {exc}")) from exc
