"""Saving settings (*Speichern*): an account, a purpose's accounts, a template, written into the
admin's YAML file so that AbSys (through ``ccm-mail serve``) and the CLI can save what the seed's
settings dialog saved.

One change, one way, whoever makes it (:class:`Settings`):

1. under a lock beside the file (the service and an admin's CLI never interleave), the file is
   read with a round-trip YAML library (ruamel.yaml), so the admin's comments, key order,
   quoting, indentation, BOM and line endings survive;
2. the change is applied to that tree; secrets entered with it are *not* put into the YAML but
   referenced (``{keyring: …}`` or ``{file: …}`` with a 0600 file);
3. the changed document is checked with exactly the checks of ``ccm-mail config check``
   (:func:`.validate.build`), with the entered secret values in place of their references; any
   error stops the change with **every** problem listed and nothing written anywhere;
4. the secrets are stored, then the file is replaced atomically (temp file + ``os.replace``);
5. the change is appended to an audit log beside the file (who, when, what; never a secret).

Reading the configuration stays with :mod:`.load` (PyYAML with line numbers).
"""

from __future__ import annotations

import copy
import errno
import getpass
import hashlib
import io
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import ConfigError, T

from ..plugins import Registries
from . import secrets as config_secrets
from .load import read_raw
from .model import Config, ConfigProblems, Problem
from .validate import build

#: how long a writer waits for another one before it gives up
LOCK_TIMEOUT = 30.0
#: the folder beside the config where secrets go when there is no keyring
SECRETS_FOLDER = "ccm-mail-secrets"
STORES = ("keyring", "file")
#: values longer than this are summarised in the audit log, not copied
_AUDIT_VALUE_CHARS = 200


class SettingsError(ConfigError):
    """A settings change cannot be made (nothing was written)."""

    kind = "settings"


@dataclass(slots=True)
class Written:
    """A change that is on disk."""

    path: Path
    action: str
    target: str
    changes: dict[str, Any]
    warnings: list[Problem] = field(default_factory=list)

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "ok": True,
            "file": str(self.path),
            "action": self.action,
            "target": self.target,
            "changes": self.changes,
            "warnings": [w.to_dict(lang) for w in self.warnings],
        }


def who_am_i() -> str:
    """The person behind a CLI change: the OS user at this machine."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment (a service without a profile)
        user = "?"
    return f"{user}@{socket.gethostname()}"


def default_store() -> str:
    """``keyring`` when the keyring library has a usable backend, else ``file``."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return "file"
    try:
        return "file" if isinstance(keyring.get_keyring(), fail.Keyring) else "keyring"
    except Exception:  # a broken backend configuration
        return "file"


class Settings:
    """The settings of one configuration file, as a writer sees them.

    :param registries: the plugins' account types and placeholders (what ``config check`` checks against).
    :param who: recorded in the audit log, e.g. ``"admin@PC-17"`` or ``"api key settings:3f2a…"``.
    :param via: ``"cli"`` or ``"api"``.
    :param store: where entered secrets go: ``"keyring"`` or ``"file"`` (default: :func:`default_store`).
    """

    def __init__(
        self,
        path: Path,
        registries: Registries,
        *,
        who: str,
        via: str = "cli",
        store: str | None = None,
        lang_override: str | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.registries = registries
        self.who = who
        self.via = via
        self.store = store or default_store()
        if self.store not in STORES:
            raise SettingsError(
                T(
                    f"Unbekannter Ablageort {self.store!r} für Geheimnisse: keyring oder file.",
                    f"unknown secret store {self.store!r}: keyring or file.",
                )
            )
        self.lang_override = lang_override

    @property
    def audit_path(self) -> Path:
        return self.path.with_name(self.path.name + ".audit.jsonl")

    # ---- the changes --------------------------------------------------------------------------
    def set_account(
        self,
        name: str,
        *,
        type: str | None = None,
        values: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        from_name: str | None = None,
        limits: Mapping[str, Any] | None = None,
    ) -> Written:
        """Create or change the account ``name``: the given fields replace the ones there, the
        others stay. Secret fields (the account type says which) only through ``secrets``."""
        values, secrets = dict(values or {}), dict(secrets or {})
        # the name becomes part of the API's URLs (/settings/accounts/NAME): nothing a path or a
        # query could read differently
        if not str(name).strip() or name != name.strip() or any(ch in name for ch in "/\\?#%\r\n\0"):
            raise SettingsError(
                T(f"Ungültiger Kontoname {name!r}.", f"invalid account name {name!r}."),
                hint=T(
                    "Ein Name auf einer Zeile, ohne Leerzeichen am Rand und ohne / \\ ? # %.",
                    "A name on one line, without spaces at its ends and without / \\ ? # %.",
                ),
            )

        def apply(doc: Any, pre: list[Problem]) -> dict[str, tuple[str, str]]:
            accounts = _mapping(doc, "accounts")
            acc = accounts.get(name)
            others = [a for key, a in accounts.items() if key != name and isinstance(a, dict)]
            if isinstance(acc, dict) and _shared(acc, others):
                # an anchor (&base) shared through an alias (*base): the change is this account's
                # alone, so it gets its own copy and the others keep theirs
                accounts[name] = acc = _own_copy(acc)
            if acc is None:
                if type is None:
                    pre.append(
                        Problem(
                            str(self.path),
                            0,
                            f"accounts.{name}.type",
                            T("neues Konto: 'type' fehlt", "new account: 'type' is missing"),
                            T(
                                f"Kontotypen: {', '.join(sorted(self.registries.account_types))}",
                                f"account types: {', '.join(sorted(self.registries.account_types))}",
                            ),
                        )
                    )
                accounts[name] = acc = _new_map()
            type_id = type if type is not None else str(acc.get("type", ""))
            atype = self.registries.account_types.get(type_id)
            secret_fields = {f.name for f in atype.fields if f.secret} if atype else set()
            for key in values:
                if key in secret_fields:
                    pre.append(
                        Problem(
                            str(self.path),
                            0,
                            f"accounts.{name}.{key}",
                            T(
                                "ein Geheimnis steht nie im Klartext in der Konfiguration",
                                "a secret is never written into the configuration as plain text",
                            ),
                            T(
                                "Als Geheimnis übergeben (API: 'secrets', CLI: --secret); es kommt in den "
                                "Schlüsselbund oder eine 0600-Datei.",
                                "Give it as a secret (API: 'secrets', CLI: --secret); it goes to the keyring "
                                "or a 0600 file.",
                            ),
                        )
                    )
            for key, value in secrets.items():
                if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
                    pre.append(
                        Problem(
                            str(self.path),
                            0,
                            f"accounts.{name}.{key}",
                            T(
                                "ein Geheimnis muss eine nicht leere Zeile Text sein",
                                "a secret must be one non-empty line of text",
                            ),
                        )
                    )
                elif atype is not None and key not in secret_fields:
                    pre.append(
                        Problem(
                            str(self.path),
                            0,
                            f"accounts.{name}.{key}",
                            T(f"kein geheimes Feld des Typs {type_id}", f"not a secret field of type {type_id}"),
                            T(
                                f"Geheime Felder: {', '.join(sorted(secret_fields)) or '-'}",
                                f"secret fields: {', '.join(sorted(secret_fields)) or '-'}",
                            ),
                        )
                    )
            if type is not None:
                acc["type"] = type
            if from_name is not None:
                acc["from_name"] = _scalar(from_name)
            for key, value in values.items():
                if value is None:
                    acc.pop(key, None)
                else:
                    acc[key] = _scalar(value)
            if limits is not None:
                if isinstance(acc.get("limits"), dict) and _shared(acc["limits"], [a.get("limits") for a in others]):
                    acc["limits"] = _own_copy(acc["limits"])
                section = acc.setdefault("limits", _new_map())
                for key, value in limits.items():
                    if value is None:
                        section.pop(key, None)
                    else:
                        section[key] = _scalar(value)
                if not section:
                    acc.pop("limits")
            if not doc.get("purposes"):
                # the first account of a new configuration: without a purpose it could not be saved,
                # and no purpose can name an account before it exists; E-Service (and with it the
                # invoices, PURPOSE_FALLBACK) go through it until 'purposes set' says otherwise
                doc["purposes"] = _new_map()
                doc["purposes"]["eservice"] = name
                summary["purposes"] = {"eservice": name}
            refs = {}
            for key in secrets:
                refs[key] = self._secret_reference(name, key, acc.get(key))
                acc[key] = _flow_map(refs[key])
            return refs

        summary = {
            **{k: v for k, v in values.items()},
            **({"type": type} if type is not None else {}),
            **({"from_name": from_name} if from_name is not None else {}),
            **({"limits": dict(limits)} if limits is not None else {}),
        }
        return self._change("accounts.set", name, apply, summary, secrets=secrets, account=name)

    def remove_account(self, name: str) -> Written:
        """Remove the account; a purpose that still names it is an error (listed, nothing written)."""

        def apply(doc: Any, pre: list[Problem]) -> dict[str, tuple[str, str]]:
            accounts = doc.get("accounts")
            if not isinstance(accounts, dict) or name not in accounts:
                known = ", ".join(accounts or {}) if isinstance(accounts, dict) else "-"
                raise SettingsError(
                    T(f"Unbekanntes Konto {name!r}; nichts geändert.", f"unknown account {name!r}; nothing changed."),
                    hint=T(f"Konten: {known}", f"accounts: {known}"),
                )
            section: Any = doc.get("purposes") or {}
            users = [p for p, entry in section.items() if name in _accounts_of(entry)]
            if users:  # said with the line in the file as it is, not in the text it would become
                raise ConfigProblems(
                    [
                        Problem(
                            str(self.path),
                            section.lc.key(p)[0] + 1,
                            f"purposes.{p}",
                            T(
                                f"Konto {name!r} sendet noch für diesen Zweck; nichts geändert",
                                f"account {name!r} still sends for this purpose; nothing changed",
                            ),
                            T(
                                "Dem Zweck zuerst ein anderes Konto zuordnen (purposes set).",
                                "Assign another account to the purpose first (purposes set).",
                            ),
                        )
                        for p in users
                    ]
                )
            # what it was, for the audit log; a secret only as its reference, never its value
            removed = json.loads(json.dumps(accounts[name], default=str))
            atype = self.registries.account_types.get(str(removed.get("type", "")))
            if atype is None:  # which of its fields are secret is not known: only the type is recorded
                removed = {"type": removed.get("type")}
            for fld in atype.fields if atype else ():
                if fld.secret and fld.name in removed and not config_secrets.is_reference(removed[fld.name]):
                    removed[fld.name] = "(Klartext, nicht aufgezeichnet / plain text, not recorded)"
            summary["removed"] = removed
            del accounts[name]
            return {}

        summary: dict[str, Any] = {}
        written = self._change("accounts.remove", name, apply, summary)
        self._forget_secrets(name, summary.get("removed", {}), written)
        return written

    def _forget_secrets(self, account: str, removed: Mapping[str, Any], written: Written) -> None:
        """Secrets ccm-mail stored for the removed account (its own keyring entries and files, never
        one the admin named) are deleted once the removal is saved: a client secret must not
        linger in the Credential Manager. What cannot be deleted is said, not raised."""
        for fld, value in removed.items():
            if not config_secrets.is_reference(value):
                continue
            kind, where = next(iter(value.items()))
            try:
                if kind == "keyring" and where == config_secrets.keyring_name(account, fld):
                    config_secrets.delete_from_keyring(where)
                elif kind == "file" and where == _own_secret_file(account, fld):
                    (self.path.parent / where).unlink(missing_ok=True)
            except (OSError, config_secrets.SecretProblem) as exc:
                written.warnings.append(
                    Problem(
                        str(self.path),
                        0,
                        f"accounts.{account}.{fld}",
                        T(f"Geheimnis {where} nicht gelöscht: {exc}", f"secret {where} not deleted: {exc}"),
                        T("Von Hand entfernen.", "Remove it by hand."),
                        warning=True,
                    )
                )

    def set_purpose(
        self, purpose: str, accounts: Sequence[str], *, options: Mapping[str, Any] | None = None
    ) -> Written:
        """Assign the account (or the pool of accounts) that sends ``purpose``; ``options`` sets the
        purpose's defaults (``reply_to``, ``bcc``, ``from``, ``archive``…; None removes one). A
        purpose written as a mapping stays one, with its other keys and comments; the short form
        ``invoice: Konto`` stays short until an option is set."""
        pool = [str(a) for a in accounts]
        if not pool:
            raise SettingsError(T("Mindestens ein Konto angeben.", "give at least one account."))
        options = dict(options or {})
        from .purposes import PURPOSE_KEYS

        unknown = sorted(set(options) - set(PURPOSE_KEYS) | ({"account"} & set(options)))
        if unknown:
            raise SettingsError(
                T(
                    f"Unbekannte Einstellung für einen Zweck: {', '.join(unknown)}; nichts geändert.",
                    f"unknown purpose setting: {', '.join(unknown)}; nothing changed.",
                ),
                hint=T(
                    f"Möglich: {', '.join(k for k in PURPOSE_KEYS if k != 'account')}",
                    f"possible: {', '.join(k for k in PURPOSE_KEYS if k != 'account')}",
                ),
            )

        def apply(doc: Any, pre: list[Problem]) -> dict[str, tuple[str, str]]:
            section = _mapping(doc, "purposes")
            accounts_node = pool[0] if len(pool) == 1 else _flow_seq(pool)
            entry = section.get(purpose)
            if not isinstance(entry, dict) and not any(v is not None for v in options.values()):
                section[purpose] = accounts_node
                return {}
            if not isinstance(entry, dict):
                entry = _new_map()
                section[purpose] = entry
            entry["account"] = accounts_node
            for key, value in options.items():
                if value is None:
                    entry.pop(key, None)
                elif isinstance(value, dict):
                    node = entry.get(key)
                    if not isinstance(node, dict):  # a new mapping; an existing one keeps its other keys
                        node = _new_map()
                        node.fa.set_flow_style()
                        entry[key] = node
                    for k, v in value.items():
                        if v is None:
                            node.pop(k, None)
                        else:
                            node[k] = _scalar(v)
                else:
                    entry[key] = _scalar(value)
            return {}

        summary: dict[str, Any] = {"accounts": pool, **({"options": options} if options else {})}
        return self._change("purposes.set", purpose, apply, summary)

    def remove_purpose(self, purpose: str) -> Written:
        """Take away the purpose's own account (or pool): invoices then go through the E-Service
        account (:data:`.model.PURPOSE_FALLBACK`), as the seed's dialog did without an entry."""

        def apply(doc: Any, pre: list[Problem]) -> dict[str, tuple[str, str]]:
            section = doc.get("purposes")
            if not isinstance(section, dict) or purpose not in section:
                raise SettingsError(
                    T(
                        f"Zweck {purpose!r} hat kein eigenes Konto; nichts geändert.",
                        f"purpose {purpose!r} has no account of its own; nothing changed.",
                    )
                )
            del section[purpose]
            return {}

        return self._change("purposes.remove", purpose, apply, {})

    def set_template(
        self,
        purpose: str,
        *,
        subject: str | None = None,
        body: str | None = None,
        format: str | None = None,
        reference: str | None = None,
    ) -> Written:
        """Change (or create) the template of ``purpose``: the given parts replace the ones there.
        A body given here replaces a ``body_file``."""

        def apply(doc: Any, pre: list[Problem]) -> dict[str, tuple[str, str]]:
            section = _mapping(doc, "templates")
            tpl = section.get(purpose)
            if not isinstance(tpl, dict):
                section[purpose] = tpl = _new_map()
            if subject is not None:
                tpl["subject"] = _scalar(subject)
            if body is not None:
                tpl.pop("body_file", None)
                # a Windows client sends CRLF; written as is, each line break would read back as two
                tpl["body"] = _block(body.replace("\r\n", "\n").replace("\r", "\n"))
            if format is not None:
                tpl["format"] = _scalar(format)
            if reference is not None:
                tpl["reference"] = _scalar(reference)
            return {}

        summary = {
            k: v
            for k, v in (("subject", subject), ("body", body), ("format", format), ("reference", reference))
            if v is not None
        }
        return self._change("templates.set", purpose, apply, summary)

    # ---- the one way a change is made ---------------------------------------------------------
    def _change(
        self,
        action: str,
        target: str,
        apply: Callable[[Any, list[Problem]], dict[str, tuple[str, str]]],
        summary: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        account: str | None = None,
    ) -> Written:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path) + ".lock")
        try:
            lock.acquire(timeout=LOCK_TIMEOUT)
            _same_owner(Path(lock.lock_file), self.path)
        except OSError as exc:
            raise self._not_saved(exc) from None
        except Timeout:
            raise SettingsError(
                T(
                    f"{self.path} wird gerade von jemand anderem gespeichert; nichts geändert.",
                    f"{self.path} is being saved by someone else; nothing changed.",
                ),
                hint=T("Gleich noch einmal versuchen.", "Try again in a moment."),
            ) from None
        try:
            return self._change_locked(action, target, apply, summary, dict(secrets or {}), account)
        finally:
            lock.release()

    def _not_saved(self, exc: OSError) -> SettingsError:
        return SettingsError(
            T(
                f"{self.path} konnte nicht gespeichert werden ({exc.strerror or exc}); nichts geändert.",
                f"{self.path} could not be saved ({exc.strerror or exc}); nothing changed.",
            ),
            hint=T(
                "Schreibrechte und freien Platz im Ordner der Konfiguration prüfen.",
                "Check write permission and free space in the configuration's folder.",
            ),
        )

    def _change_locked(
        self,
        action: str,
        target: str,
        apply: Callable[[Any, list[Problem]], dict[str, tuple[str, str]]],
        summary: Mapping[str, Any],
        secrets: dict[str, str],
        account: str | None,
    ) -> Written:
        before = self._read_bytes()
        text, style = _decode(before, self.path)
        yaml = _yaml(text)
        try:
            doc = yaml.load(text) if text.strip() else None
        except Exception as exc:  # the file is not valid YAML: config check says where
            read_raw(self.path)  # raises ConfigProblems with the line
            # valid for the reader, but not for the round-trip writer (a tab before a comment)
            mark = getattr(exc, "problem_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark else str(self.path)
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise SettingsError(
                T(
                    f"{where}: kann nicht automatisch bearbeitet werden ({problem}); nichts geändert.",
                    f"{where}: cannot be edited automatically ({problem}); nothing changed.",
                ),
                hint=T(
                    "Die Stelle von Hand bereinigen, meist ein Tabulator vor einem Kommentar.",
                    "Tidy that line by hand; usually a tab before a comment.",
                ),
            ) from None
        if doc is None:
            doc = _new_map()
        if not isinstance(doc, dict):
            read_raw(self.path)  # raises: the top level must be a mapping
            raise SettingsError(
                T(f"{self.path}: oberste Ebene ist keine Zuordnung.", f"{self.path}: the top level is not a mapping.")
            )
        pre: list[Problem] = []
        refs = apply(doc, pre)
        new_text = _dump(yaml, doc)
        check_doc = copy.deepcopy(doc)
        for fld, value in secrets.items():  # checked with the values, written with their references
            check_doc["accounts"][account][fld] = value
        _, warnings = self._validate(_dump(yaml, check_doc), pre, secrets)
        changes = _audit_changes(summary, secrets, refs)
        after = _encode(new_text, style)
        if self._read_bytes() != before:  # an edit by hand while we worked: never overwrite it
            raise SettingsError(
                T(
                    f"{self.path} wurde während des Speicherns geändert; nichts geändert.",
                    f"{self.path} was changed while saving; nothing changed.",
                ),
                hint=T("Die Änderung noch einmal vornehmen.", "Make the change again."),
            )
        if before and not self.path.stat().st_mode & 0o222:  # POSIX mode or the Windows read-only attribute
            raise SettingsError(
                T(f"{self.path} ist schreibgeschützt; nichts geändert.", f"{self.path} is read-only; nothing changed."),
                hint=T(
                    "Den Schreibschutz aufheben, wenn die Einstellungen geändert werden sollen.",
                    "Lift the read-only flag if the settings are to be changed.",
                ),
            )
        try:
            audit = _AuditLog(self.audit_path, self.path)  # opened first: unwritable means nothing changes
        except OSError as exc:
            raise self._not_saved(exc) from None
        try:
            for fld, value in secrets.items():
                self._store_secret(refs[fld], value)
            _replace(self.path, after)
            try:
                audit.append(self._audit_entry(action, target, changes, before, after))
            except OSError:
                # the change and its audit line go together, or neither: put the old file back
                if before:
                    _replace(self.path, before)
                else:
                    self.path.unlink()
                raise
        except OSError as exc:
            raise self._not_saved(exc) from None
        finally:
            audit.close()
        return Written(self.path, action, target, changes, warnings)

    def _validate(self, text: str, pre: list[Problem], secrets: Mapping[str, str]) -> tuple[Config, list[Problem]]:
        """The checks of ``config check`` on the changed document; raise with every problem."""
        try:
            raw = read_raw(self.path, text)
            config = build(self.path, raw, self.registries, lang_override=self.lang_override)
        except ConfigProblems as exc:
            raise ConfigProblems(pre + [p for p in exc.problems if not p.warning]) from None
        if pre:
            raise ConfigProblems(pre)
        warnings = list(config.warnings)
        if secrets:  # the entered values stood in the document only for the check: not a plain-text warning
            loose = {w.de for w in config_secrets.loose_permissions(self.path)}
            warnings = [w for w in warnings if not (w.key == "accounts" and w.message.de in loose)]
        return config, warnings

    # ---- secrets ------------------------------------------------------------------------------
    def _secret_reference(self, account: str, fld: str, given: Any) -> tuple[str, str]:
        """(source, reference) for a secret entered now: the field's own keyring entry or file
        when it already has one of the chosen kind, else a new one."""
        if config_secrets.is_reference(given):
            kind, ref = next(iter(given.items()))
            if kind == self.store:
                return kind, str(ref)
        if self.store == "keyring":
            return "keyring", config_secrets.keyring_name(account, fld)
        return "file", _own_secret_file(account, fld)

    def _store_secret(self, ref: tuple[str, str], value: str) -> None:
        kind, where = ref
        value = value.strip()
        if kind == "keyring":
            config_secrets.store_in_keyring(where, value)
            return
        target = Path(where).expanduser()
        if not target.is_absolute():
            target = self.path.parent / target
        own_folder = target.parent == self.path.parent / SECRETS_FOLDER
        created = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.name == "posix" and (own_folder or created):  # never a folder the admin's reference names
            os.chmod(target.parent, 0o700)
        _replace(target, value.encode("utf-8") + b"\n", mode=0o600)

    # ---- files --------------------------------------------------------------------------------
    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise SettingsError(
                T(
                    f"{self.path} nicht lesbar ({exc.strerror}); nichts geändert.",
                    f"{self.path} cannot be read ({exc.strerror}); nothing changed.",
                )
            ) from exc

    def _audit_entry(
        self, action: str, target: str, changes: dict[str, Any], before: bytes, after: bytes
    ) -> dict[str, Any]:
        from ..journal import now

        return {
            "at": now().isoformat(),
            "who": self.who,
            "via": self.via,
            "action": action,
            "target": target,
            "changes": changes,
            "file": str(self.path),
            "sha256_before": hashlib.sha256(before).hexdigest(),
            "sha256_after": hashlib.sha256(after).hexdigest(),
        }

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` entries of the audit log, newest first."""
        try:
            lines = self.audit_path.read_text(encoding="ascii", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in reversed(lines[-limit:] if limit else lines):
            try:
                entries.append(json.loads(line))
            except ValueError:  # a line cut short by an earlier version or a full disk: shown, not fatal
                if line.strip():
                    entries.append({"unreadable": line[:200]})
        return entries


class _AuditLog:
    """The audit file, opened for appending before the change is written; a line is written whole
    or not at all (cut back to its old end when the disk fills)."""

    def __init__(self, path: Path, like: Path) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self.fd = os.open(path, flags, 0o600)
        _same_owner(path, like)

    def append(self, entry: Mapping[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=True) + "\n").encode("ascii")
        end = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            if os.write(self.fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, end)
            except OSError:
                pass
            raise

    def close(self) -> None:
        os.close(self.fd)


# ---- round-trip YAML --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Style:
    bom: bool
    crlf: bool


def _decode(data: bytes, path: Path) -> tuple[str, _Style]:
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        read_raw(path)  # raises the problem as config check words it
        raise
    return text.replace("\r\n", "\n"), _Style(bom, b"\r\n" in data)


def _encode(text: str, style: _Style) -> bytes:
    if style.crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if style.bom else b"") + text.encode("utf-8")


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an admin's long line
    indent, dash = _guess_indent(text)
    if indent is None:
        try:
            _, indent, dash = load_yaml_guess_indent(text) if text.strip() else (None, 2, 0)
        except Exception:  # unparsable: load() says why
            indent, dash = 2, 0
    dash = dash or 0
    yaml.indent(mapping=indent or 2, sequence=dash + 2, offset=dash)
    return yaml


def _guess_indent(text: str) -> tuple[int | None, int]:
    """(mapping indent, dash offset of block lists) as the admin wrote them: the most common step
    from a ``key:`` line to the block under it. ruamel's own guess takes a list's item indent for
    the mapping indent when a list comes first, and re-indents the whole file."""
    from collections import Counter

    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    steps: Counter[int] = Counter()
    dashes: Counter[int] = Counter()
    for above, line in zip(lines, lines[1:], strict=False):
        opener = re.sub(r"\s+#.*$", "", above).rstrip()
        if not opener.endswith(":") or opener.lstrip().startswith("- "):
            continue
        step = (len(line) - len(line.lstrip(" "))) - (len(above) - len(above.lstrip(" ")))
        if line.lstrip().startswith("- "):
            dashes[step] += 1
        elif step > 0:
            steps[step] += 1
    if not steps:
        return None, 0
    return steps.most_common(1)[0][0], max(dashes.most_common(1)[0][0], 0) if dashes else 0


def _dump(yaml: Any, doc: Any) -> str:
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def _new_map() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _flow_map(ref: tuple[str, str]) -> Any:
    """``{keyring: ccm-mail/Konto/client_secret}`` on one line, as the docs write it."""
    from ruamel.yaml.comments import CommentedMap

    node = CommentedMap([ref])
    node.fa.set_flow_style()
    return node


def _flow_seq(items: list[str]) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    node = CommentedSeq(items)
    node.fa.set_flow_style()
    return node


def _block(text: str) -> Any:
    """A multi-line text as a literal block (``|``), as admins write template bodies."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    return LiteralScalarString(text) if "\n" in text else _scalar(text)


def _scalar(value: Any) -> Any:
    """A text that reads back as the same text. ruamel writes YAML 1.2, where ``No``, ``on`` or
    ``1:30`` are plain text; the config is read with PyYAML (YAML 1.1), where they are False,
    True and 90. Such a text is written in quotes."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString

    if not isinstance(value, str) or isinstance(value, ScalarString):
        return value
    import yaml

    try:
        same = yaml.safe_load(value) == value
    except yaml.YAMLError:
        same = False
    return value if same else DoubleQuotedScalarString(value)


def _own_secret_file(account: str, fld: str) -> str:
    """Where ``--store file`` keeps an account's secret, relative to the config."""
    return f"{SECRETS_FOLDER}/" + re.sub(r"[^A-Za-z0-9._-]+", "_", f"{account}.{fld}")


def _accounts_of(entry: Any) -> list[str]:
    """The accounts a purpose entry names: ``Konto``, ``[A, B]`` or ``{account: …}``."""
    if isinstance(entry, dict):
        entry = entry.get("account")
    if isinstance(entry, list):
        return [str(a) for a in entry]
    return [str(entry)] if entry is not None else []


def _shared(node: Any, others: Sequence[Any]) -> bool:
    return any(other is node for other in others)


def _own_copy(node: Any) -> Any:
    """A plain copy of a mapping another key reaches through an alias."""
    own = _new_map()
    own.update(copy.deepcopy(dict(node)))
    return own


def _mapping(doc: Any, key: str) -> Any:
    section = doc.get(key)
    if not isinstance(section, dict):
        doc[key] = section = _new_map()
    return section


def _audit_changes(
    summary: Mapping[str, Any], secrets: Mapping[str, str], refs: Mapping[str, tuple[str, str]]
) -> dict[str, Any]:
    """What changed, for the audit log and the answer: values as given (long ones summarised),
    secrets only as where they went."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "removed":  # a removed account in full: the audit log is the only record of it
            out[key] = value
            continue
        text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
        out[key] = value if len(text) <= _AUDIT_VALUE_CHARS else f"({len(text)} Zeichen/characters)"
    for key in secrets:
        kind, where = refs[key]
        out[key] = {"secret": "set", kind: where}
    return out


def _replace(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to a temp file beside ``path``, sync it, then rename it over ``path``: a
    reader sees the old file or the new one, never half of one."""
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if os.name == "posix":
            os.chmod(tmp, mode)
            _same_owner(Path(tmp), path)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _same_owner(path: Path, like: Path) -> None:
    """A root admin's save keeps the file owned by whoever owned the config (the service account
    that reads it); a file that did not exist yet keeps its creator."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    try:
        st = like.stat()
    except FileNotFoundError:
        return
    if (st.st_uid, st.st_gid) != (0, 0):
        os.chown(path, st.st_uid, st.st_gid)
