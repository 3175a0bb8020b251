"""The Python API a host embeds: one :class:`Mailer` per configuration file.

It holds what lives as long as the process (the plugins, the validated config, one transport and
one pacer per account, the journal) and hands each send to :mod:`.compose` and :mod:`.pipeline`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from ccm_mail_hookspecs import (
    AccountSettings,
    AccountType,
    Address,
    Cancel,
    CheckResult,
    ConfigError,
    Expiry,
    Placeholder,
    Preview,
    T,
    Transport,
    TransportError,
)

from . import config as config_mod
from . import expiry as expiry_mod
from . import logging_setup, pipeline
from .compose import AddressLike, AttachmentLike, account_of, compose
from .journal import Journal, open_journal
from .pacing import Pacing
from .plugins import PluginManager, Registries, call, collect, implementations, make_plugin_manager
from .results import SendResult

log = structlog.get_logger("ccm_mail")


class Mailer:
    """ccm-mail for one configuration file.

    >>> mailer = Mailer.from_config("ccm-mail.yaml", plugins={"absys": AbsysHooks()})
    >>> result = mailer.send("invoice", to=["kunde@example.de"], data={...}, attachments=["RE-1.pdf"])
    """

    def __init__(self, path: Path, pm: PluginManager, *, lang: str | None = None) -> None:
        self.path = Path(path)
        self.pm = pm
        self._lang_override = lang
        self._transports: dict[str, Transport] = {}
        self._retired: list[Transport] = []  # replaced by a reload; a send may still be using one
        self._pacers: dict[str, Pacing] = {}
        self._lock = threading.RLock()  # the pacer reads the journal while holding it
        self._journal: Journal | None = None
        self._raw = config_mod.read_raw(self.path)
        self._rebuild()
        if not structlog.is_configured():
            # a host that set up logging itself keeps it; otherwise the YAML's logging section
            # applies (to stderr or its file), never structlog's default print to stdout
            logging_setup.configure(fmt=self.config.log_format, level=self.config.log_level, file=self.config.log_file)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str],
        *,
        lang: str | None = None,
        plugins: Mapping[str, object] | Iterable[tuple[str, object]] = (),
        load_entrypoints: bool = True,
    ) -> Mailer:
        """Load the YAML config and the plugins. ``plugins`` are the host's own plugin objects
        (name → object), registered like any other plugin. Raises ``ConfigProblems``."""
        raw = config_mod.read_raw(Path(path))
        extra = list(plugins.items()) if isinstance(plugins, Mapping) else list(plugins)
        pm = make_plugin_manager(
            blocked=config_mod.blocked_plugins(raw), load_entrypoints=load_entrypoints, extra=extra
        )
        return cls(Path(path), pm, lang=lang)

    # ---- set-up -----------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self._expiries: dict[str, Expiry | None] = {}
        self.registries: Registries = collect(self.pm)
        self.config = config_mod.build(self.path, self._raw, self.registries, lang_override=self._lang_override)
        self._configure_plugins()

    def _configure_plugins(self) -> None:
        problems = []
        where = str(self.config.path)
        for impl in implementations(self.pm, "ccm_mail_configure"):
            name = impl.plugin_name
            try:
                call(impl, settings=self.config.plugin_settings.get(name, {}), lang=self.lang)
            except ConfigError as exc:
                problems.append(config_mod.Problem(where, 0, f"plugins.settings.{name}", exc.message, exc.hint))
            except Exception as exc:
                problems.append(
                    config_mod.Problem(
                        where,
                        0,
                        f"plugins.settings.{name}",
                        T(
                            f"Plugin gescheitert: {type(exc).__name__}: {exc}",
                            f"plugin failed: {type(exc).__name__}: {exc}",
                        ),
                    )
                )
        loaded = {i.name for i in self.pm.infos()}
        for name in sorted(set(self.config.plugin_settings) - loaded):
            problems.append(
                config_mod.Problem(
                    where,
                    0,
                    f"plugins.settings.{name}",
                    T("kein solches Plugin geladen", "no such plugin is loaded"),
                    T("'ccm-mail plugins' zeigt die geladenen", "'ccm-mail plugins' lists them"),
                )
            )
        if problems:
            raise config_mod.ConfigProblems(problems)

    def reload(self) -> bool:
        """Read the configuration file again (after a settings change) and use it from the next
        send on; returns whether anything changed. The plugins stay (``plugins.disable`` needs a
        restart); an account whose settings changed gets a new transport, and a new pacer when
        its limits changed; the journal stays unless where it lives changed. A file with errors raises
        :class:`ConfigProblems` and the configuration in use stays as it was."""
        raw = config_mod.read_raw(self.path)
        with self._lock:
            if raw == self._raw:
                return False
            old_raw, old_config = self._raw, self.config
            self._raw = raw
            try:
                self._rebuild()
            except Exception:
                self._raw, self.config = old_raw, old_config
                self.registries = collect(self.pm)
                self._configure_plugins()  # the plugins get back the settings still in use
                raise
            for name in list(self._transports):
                if self.config.accounts.get(name) != old_config.accounts.get(name):
                    self._retired.append(self._transports.pop(name))
            for name in list(self._pacers):
                new = self.config.accounts.get(name)
                if new is None or new.limits != old_config.accounts[name].limits:
                    del self._pacers[name]
            where = ("journal_path", "journal_url", "journal_password", "journal_lease_seconds")
            if self._journal is not None and any(getattr(self.config, k) != getattr(old_config, k) for k in where):
                self._journal.close()
                self._journal = None
            return True

    def register(self, plugin: object, name: str) -> None:
        """Register a host plugin after loading (e.g. AbSys' own confirm and sent hooks)."""
        self.pm.add(plugin, name)
        self.pm.check_pending()
        self._rebuild()

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.pm.origins.pop(name, None)
        self._rebuild()

    @property
    def lang(self) -> str:
        return self.config.lang

    @property
    def journal(self) -> Journal:
        with self._lock:
            if self._journal is None:
                self._journal = open_journal(self.config)
            return self._journal

    def close(self) -> None:
        for transport in [*self._transports.values(), *self._retired]:
            try:
                transport.close()
            except Exception as exc:  # closing must not hide the send's result
                log.warning("transport_close_failed", error=str(exc))
        self._transports.clear()
        self._retired.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- accounts ----------------------------------------------------------------------------
    def account_types(self) -> list[AccountType]:
        return [self.registries.account_types[k] for k in sorted(self.registries.account_types)]

    def placeholders(self, purpose: str) -> list[Placeholder]:
        return list(self.config.placeholders_for(self.registries, purpose).values())

    def _account(self, name: str) -> config_mod.AccountConfig:
        if name not in self.config.accounts:
            known = ", ".join(self.config.accounts)
            raise ConfigError(
                T(f"Unbekanntes Konto {name!r}.", f"unknown account {name!r}."),
                hint=T(f"Konten: {known}", f"accounts: {known}"),
            )
        return self.config.accounts[name]

    def account_type_of(self, account: str) -> AccountType:
        return self.registries.account_types[self._account(account).type]

    def account_settings(self, account: str) -> AccountSettings:
        acc = self._account(account)
        state = self.config.state_dir / re.sub(r"[^A-Za-z0-9._-]+", "_", acc.name)
        state.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":  # tokens live here; on Windows the folder's ACL decides
            os.chmod(state, 0o700)
            os.chmod(self.config.state_dir, 0o700)
        return AccountSettings(acc.name, acc.type, dict(acc.values), state, self.lang, acc.secret_fields)

    def transport(self, account: str) -> Transport:
        """The account's transport, built once and shared by every send of this Mailer."""
        with self._lock:
            if account not in self._transports:
                atype = self.account_type_of(account)
                try:
                    self._transports[account] = atype.create_transport(self.account_settings(account))
                except TransportError:
                    raise
                except Exception as exc:  # building a transport sends nothing
                    raise TransportError(
                        T(
                            f"Konto {account}: Transport nicht nutzbar: {type(exc).__name__}: {exc}; nicht gesendet.",
                            f"account {account}: transport cannot be used: {type(exc).__name__}: {exc}; not sent.",
                        )
                    ) from exc
            return self._transports[account]

    def pacer(self, account: str) -> Pacing:
        """The account's pacing (messages per window, recipients per day, concurrency), shared
        by every send of this Mailer; it starts from the journal's last day of sends. On a
        journal shared by several hosts (PostgreSQL) the counts live in the database."""
        with self._lock:
            if account not in self._pacers:
                self._pacers[account] = self.journal.pacer(account, self._account(account).limits)
            return self._pacers[account]

    def credential_expiry(self, account: str) -> Expiry | None:
        """When the account's credential expires, as far as its settings tell (no network):
        asked before every send, so computed once per configuration."""
        with self._lock:
            if account not in self._expiries:
                acc = self._account(account)
                self._expiries[account] = expiry_mod.of_account(self.registries.account_types[acc.type], acc.values)
            return self._expiries[account]

    def check_account(self, account: str) -> CheckResult:
        return self.transport(account).check()

    def account_action(self, account: str, action: str, **options: Any) -> Any:
        atype = self.account_type_of(account)
        if action not in atype.actions:
            raise ConfigError(
                T(
                    f"Kontotyp {atype.id!r} bietet '{action}' nicht an.",
                    f"account type {atype.id!r} does not offer '{action}'.",
                )
            )
        return atype.actions[action](self.account_settings(account), **options)

    def sender_of(self, account: str) -> Address:
        acc = self._account(account)
        field = self.registries.account_types[acc.type].sender_field_name
        address = str(acc.values.get(field, "")) if field else ""
        if not address:
            raise ConfigError(
                T(f"Konto {account!r} hat keine Absenderadresse.", f"account {account!r} has no sender address.")
            )
        return Address(address, acc.from_name)

    # ---- sending -----------------------------------------------------------------------------
    def compose(
        self,
        purpose: str,
        *,
        to: Sequence[AddressLike],
        cc: Sequence[AddressLike] = (),
        bcc: Sequence[AddressLike] = (),
        reply_to: Sequence[AddressLike] = (),
        data: Mapping[str, Any] | None = None,
        attachments: Sequence[AttachmentLike] = (),
        reference: str | None = None,
        headers: Mapping[str, str] | None = None,
        assume_yes: bool = False,
        interactive: bool = False,
        account: str | None = None,
        message_id: str | None = None,
    ) -> Preview:
        """The purpose's template rendered for this send, every input checked; nothing is sent
        or journaled. ``account`` picks one of the purpose's pool (default: the first)."""
        account = account_of(self.config, purpose, account)
        return compose(
            self.config,
            self.registries,
            purpose,
            sender=self.sender_of(account),
            to=to,
            cc=cc,
            bcc=bcc,
            reply_to=reply_to,
            data=data,
            attachments=attachments,
            reference=reference,
            headers=headers,
            account=account,
            message_id=message_id,
            interactive=interactive,
            assume_yes=assume_yes,
            expiry=self.credential_expiry(account),
        )

    def prepare(self, preview: Preview) -> Cancel | None:
        """Run the prepare hooks on a composed message (they may change it or cancel it)."""
        return pipeline.prepare(self, preview)

    def confirm(self, preview: Preview) -> bool | None:
        """Ask the confirmation dialog: True, False, or None when nobody answered."""
        return pipeline.confirm(self, preview)

    def preview(self, purpose: str, **kwargs: Any) -> Preview:
        """What the confirmation dialog shows, after the prepare hooks (nothing is sent)."""
        preview = self.compose(purpose, **kwargs)
        self.prepare(preview)
        return preview

    def send(self, purpose: str, *, resend: bool = False, batch: str | None = None, **kwargs: Any) -> SendResult:
        """Compose, prepare, confirm, journal and send one message.

        Raises :class:`~ccm_mail_hookspecs.CcmMailError` subclasses for problems found before
        anything was journaled (config, template, address, attachment, duplicate, unconfirmed).
        Send outcomes, including failures, come back as a :class:`SendResult`."""
        return pipeline.send(self, self.compose(purpose, **kwargs), resend=resend, batch=batch)
