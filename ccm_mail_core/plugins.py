"""The plugin manager and what the plugins contribute.

:func:`make_plugin_manager` builds it: specs → blocked plugins → entry points → built-ins →
``check_pending``. A plugin that fails to import or was written for another plugin-API major
version is reported with its name and the reason; the host starts with the others.
``CCM_MAIL_LOAD_PLUGINS`` (like llm's ``LLM_LOAD_PLUGINS``) limits which entry points load: a
comma-separated list of names, empty for none; tests set it so the plugins installed on a machine
never leak into them.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy
import structlog

import ccm_mail_hookspecs
from ccm_mail_hookspecs import API_MAJOR, PROJECT_NAME, AccountType, Command, Placeholder, PluginError, T, spec

from .builtins import DEFAULT_PLUGINS

log = structlog.get_logger("ccm_mail.plugins")

#: environment switch: which entry-point plugins to load (comma-separated names; empty: none)
LOAD_PLUGINS_ENV = "CCM_MAIL_LOAD_PLUGINS"


@dataclass(frozen=True, slots=True)
class LoadFailure:
    name: str
    distribution: str
    reason: T


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus where each plugin came from and which ones failed to load."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(spec)
        self.failures: list[LoadFailure] = []
        self.origins: dict[str, tuple[str, str, bool]] = {}  # name → (distribution, version, builtin)

    def add(
        self, plugin: object, name: str, *, distribution: str = "", version: str = "", builtin: bool = False
    ) -> None:
        """Register ``plugin`` after checking the plugin-API version it declares."""
        if self.is_blocked(name):
            return
        _check_api(plugin, name)
        self.register(plugin, name=name)
        self.origins[name] = (distribution, version, builtin)

    def infos(self) -> list[PluginInfo]:
        out = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda p: p[0]):
            if plugin is None:  # a blocked name
                continue
            dist, version, builtin = self.origins.get(name, ("", "", False))
            hooks = tuple(sorted(h.name for h in self.get_hookcallers(plugin) or []))
            out.append(PluginInfo(name, dist, version, hooks, builtin))
        return out

    def load_entrypoints(self, only: set[str] | None = None) -> None:
        for ep in sorted(md.entry_points(group=PROJECT_NAME), key=lambda e: e.name):
            if (only is not None and ep.name not in only) or self.is_blocked(ep.name) or self.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else ""
            try:
                self.add(ep.load(), ep.name, distribution=dist, version=ep.dist.version if ep.dist else "")
            except PluginError as exc:
                self._fail(ep.name, dist, exc.message)
            except Exception as exc:  # a broken plugin must not take the host down
                self._fail(
                    ep.name,
                    dist,
                    T(
                        f"Import fehlgeschlagen: {type(exc).__name__}: {exc}",
                        f"import failed: {type(exc).__name__}: {exc}",
                    ),
                )

    def _fail(self, name: str, dist: str, reason: T) -> None:
        self.failures.append(LoadFailure(name, dist, reason))
        log.warning("plugin_not_loaded", plugin=name, distribution=dist, reason=reason.en)


def make_plugin_manager(
    *, blocked: Iterable[str] = (), load_entrypoints: bool = True, extra: Iterable[tuple[str, object]] = ()
) -> PluginManager:
    """The one factory. ``extra`` are a host's own plugin objects (name, object), registered
    like any other; ``load_entrypoints=False`` loads no installed plugin at all."""
    pm = PluginManager()
    for name in blocked:
        pm.set_blocked(name)
    if load_entrypoints:
        wanted = os.environ.get(LOAD_PLUGINS_ENV)
        pm.load_entrypoints(None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()})
    for name, module in DEFAULT_PLUGINS:
        pm.add(module, name, distribution="ccm-mail-core", version=_core_version(), builtin=True)
    for name, plugin in extra:
        pm.add(plugin, name)
    pm.check_pending()
    return pm


def call(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one implementation with the arguments it asks for (a plugin may take any subset)."""
    return impl.function(**{k: kwargs[k] for k in impl.argnames})


def implementations(pm: pluggy.PluginManager, hook_name: str) -> list[pluggy.HookImpl]:
    """A hook's implementations in pluggy's own call order (last registered first)."""
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Exception]]:
    """Call every implementation of a broadcast hook, even when one raises; return the failures
    as (plugin name, exception).

    pluggy stops at the first exception, which would let one broken recorder keep the
    *Versanddatum* from the others; so the implementations are called one by one.
    """
    failures: list[tuple[str, Exception]] = []
    for impl in implementations(pm, hook_name):
        try:
            call(impl, **kwargs)
        except Exception as exc:
            failures.append((impl.plugin_name, exc))
    return failures


@dataclass(frozen=True, slots=True)
class Registries:
    """What the plugins contribute, merged: account types and placeholders, each with its owner."""

    account_types: dict[str, AccountType] = field(default_factory=dict)
    account_type_plugin: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, Placeholder] = field(default_factory=dict)
    placeholder_plugin: dict[str, str] = field(default_factory=dict)

    def placeholders_for(self, purpose: str) -> dict[str, Placeholder]:
        return {n: p for n, p in self.placeholders.items() if p.applies_to(purpose)}


def collect(pm: pluggy.PluginManager) -> Registries:
    """Ask every plugin for its account types and placeholders; a duplicate fails loudly, naming
    both plugins."""
    reg = Registries()
    for impl in implementations(pm, "ccm_mail_account_types"):
        _guarded(impl, "ccm_mail_account_types", register=_registrar(reg, impl.plugin_name))
    for impl in implementations(pm, "ccm_mail_placeholders"):
        owner = impl.plugin_name
        for ph in _guarded(impl, "ccm_mail_placeholders") or ():
            if not isinstance(ph, Placeholder):
                raise PluginError(
                    T(
                        f"Plugin {owner!r} liefert keinen Placeholder: {ph!r}",
                        f"plugin {owner!r} returned something that is not a Placeholder: {ph!r}",
                    )
                )
            if ph.name in reg.placeholders:
                first = reg.placeholder_plugin[ph.name]
                raise PluginError(
                    T(
                        f"Platzhalter #{ph.name}# doppelt: von {first!r} und {owner!r}.",
                        f"placeholder #{ph.name}# contributed twice: by {first!r} and {owner!r}.",
                    )
                )
            reg.placeholders[ph.name] = ph
            reg.placeholder_plugin[ph.name] = owner
    return reg


def collect_commands(pm: pluggy.PluginManager, *, taken: Iterable[str] = ()) -> list[Command]:
    """The plugins' commands (``ccm_mail_commands``), in call order. A name that is already
    ``taken`` (the built-in commands) or registered twice fails loudly, naming both owners."""
    owners = dict.fromkeys(taken, "ccm-mail-core")
    found: list[Command] = []
    for impl in implementations(pm, "ccm_mail_commands"):
        owner = impl.plugin_name

        def register(command: Command, owner: str = owner) -> None:
            if not isinstance(command, Command):
                raise PluginError(
                    T(
                        f"Plugin {owner!r} registriert keinen Command: {command!r}",
                        f"plugin {owner!r} registered something that is not a Command: {command!r}",
                    )
                )
            first = owners.get(command.name)
            if first is not None:
                raise PluginError(
                    T(
                        f"Befehl {command.name!r} doppelt: von {first!r} und {owner!r}.",
                        f"command {command.name!r} registered twice: by {first!r} and {owner!r}.",
                    ),
                    hint=T(
                        "Eines der Plugins deaktivieren (plugins.disable).",
                        "Disable one of the plugins (plugins.disable).",
                    ),
                )
            owners[command.name] = owner
            found.append(command)

        _guarded(impl, "ccm_mail_commands", register=register)
    return found


def _registrar(reg: Registries, owner: str) -> Callable[[AccountType], None]:
    def register(account_type: AccountType) -> None:
        if not isinstance(account_type, AccountType):
            raise PluginError(
                T(
                    f"Plugin {owner!r} registriert keinen AccountType: {account_type!r}",
                    f"plugin {owner!r} registered something that is not an AccountType: {account_type!r}",
                )
            )
        first = reg.account_type_plugin.get(account_type.id)
        if first is not None:
            raise PluginError(
                T(
                    f"Kontotyp {account_type.id!r} doppelt: von {first!r} und {owner!r}.",
                    f"account type {account_type.id!r} registered twice: by {first!r} and {owner!r}.",
                ),
                hint=T(
                    "Eines der Plugins deaktivieren (plugins.disable).", "Disable one of the plugins (plugins.disable)."
                ),
            )
        reg.account_types[account_type.id] = account_type
        reg.account_type_plugin[account_type.id] = owner

    return register


def _guarded(impl: pluggy.HookImpl, hook: str, **kwargs: Any) -> Any:
    """A registration hook's result; any failure becomes a PluginError naming the plugin."""
    try:
        return call(impl, **kwargs)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(
            T(
                f"Plugin {impl.plugin_name!r} ist in {hook} gescheitert: {type(exc).__name__}: {exc}",
                f"plugin {impl.plugin_name!r} failed in {hook}: {type(exc).__name__}: {exc}",
            )
        ) from exc


def _check_api(plugin: object, name: str) -> None:
    declared = getattr(plugin, "CCM_MAIL_API", None)
    if declared is None:
        return  # written before versioning or a plain object: assume the current API
    try:
        major = int(str(declared).split(".")[0])
    except ValueError:
        major = -1
    if major != API_MAJOR:
        raise PluginError(
            T(
                f"Plugin {name!r} braucht Plugin-API {declared}, dieser Host bietet {ccm_mail_hookspecs.API_VERSION}.",
                f"plugin {name!r} needs plugin API {declared}, this host provides {ccm_mail_hookspecs.API_VERSION}.",
            ),
            hint=T("Plugin oder ccm-mail aktualisieren.", "Update the plugin or ccm-mail."),
        )


def _core_version() -> str:
    try:
        return md.version("ccm-mail-core")
    except md.PackageNotFoundError:
        return "dev"
