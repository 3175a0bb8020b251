"""Builds the plugin manager: specs → blocked plugins → entry points → built-ins → check.

A plugin that fails to import or was written for another plugin-API major version is reported
with its name and the reason; the host starts with the others.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pluggy
import structlog

import ccm_mail_hookspecs
from ccm_mail_hookspecs import API_MAJOR, PROJECT_NAME, PluginError, T
from ccm_mail_hookspecs import spec

from .builtins import DEFAULT_PLUGINS

log = structlog.get_logger("ccm_mail.plugins")


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


class PluginHost:
    """The pluggy manager plus what the host knows about each plugin's origin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(spec)
        self.failures: list[LoadFailure] = []
        self._origin: dict[str, tuple[str, str, bool]] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def register(self, plugin: object, name: str, *, distribution: str = "", version: str = "",
                 builtin: bool = False) -> None:
        if self.pm.is_blocked(name):
            return
        _check_api(plugin, name)
        self.pm.register(plugin, name=name)
        self._origin[name] = (distribution, version, builtin)

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._origin.pop(name, None)

    def load_entrypoints(self) -> None:
        for ep in sorted(md.entry_points(group=PROJECT_NAME), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else ""
            version = ep.dist.version if ep.dist else ""
            if self.pm.is_blocked(ep.name) or self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, ep.name, distribution=dist, version=version)
            except PluginError as exc:
                self._fail(ep.name, dist, exc.message)
            except Exception as exc:  # a broken plugin must not take the host down
                self._fail(ep.name, dist, T(f"Import fehlgeschlagen: {type(exc).__name__}: {exc}",
                                             f"import failed: {type(exc).__name__}: {exc}"))

    def _fail(self, name: str, dist: str, reason: T) -> None:
        self.failures.append(LoadFailure(name, dist, reason))
        log.warning("plugin_not_loaded", plugin=name, distribution=dist, reason=reason.en)

    def plugin_name(self, plugin: object) -> str:
        return self.pm.get_name(plugin) or repr(plugin)

    def infos(self) -> list[PluginInfo]:
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda p: p[0]):
            if plugin is None:  # a blocked name
                continue
            dist, version, builtin = self._origin.get(name, ("", "", False))
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            out.append(PluginInfo(name, dist, version, hooks, builtin))
        return out

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, BaseException]]:
        """Call every implementation of a broadcast hook, even when one raises; return failures.

        pluggy stops at the first exception, which would let one broken recorder keep the
        *Versanddatum* from the others; so the implementations are called one by one.
        """
        failures: list[tuple[str, BaseException]] = []
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy's own order: last registered first
            args = {k: kwargs[k] for k in impl.argnames}
            try:
                impl.function(**args)
            except Exception as exc:
                failures.append((impl.plugin_name, exc))
        return failures

    def call_for(self, plugin_name: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook (None when it has none)."""
        plugin = self.pm.get_plugin(plugin_name)
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                return impl.function(**{k: kwargs[k] for k in impl.argnames})
        return None


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
            T(f"Plugin {name!r} braucht Plugin-API {declared}, dieser Host bietet {ccm_mail_hookspecs.API_VERSION}.",
              f"plugin {name!r} needs plugin API {declared}, this host provides {ccm_mail_hookspecs.API_VERSION}."),
            hint=T("Plugin oder ccm-mail aktualisieren.", "Update the plugin or ccm-mail."),
        )


def get_plugin_manager(*, blocked: Iterable[str] = (), load_entrypoints: bool = True,
                       extra: Iterable[tuple[str, object]] = ()) -> PluginHost:
    """The one factory for a plugin manager. Tests pass ``load_entrypoints=False`` so installed
    plugins never leak into the host's own tests."""
    host = PluginHost()
    for name in blocked:
        host.pm.set_blocked(name)
    if load_entrypoints:
        host.load_entrypoints()
    for name, module in DEFAULT_PLUGINS:
        host.register(module, name, distribution="ccm-mail-core", version=_core_version(), builtin=True)
    for name, plugin in extra:
        host.register(plugin, name)
    host.pm.check_pending()
    return host


def _core_version() -> str:
    try:
        return md.version("ccm-mail-core")
    except md.PackageNotFoundError:
        return "dev"
