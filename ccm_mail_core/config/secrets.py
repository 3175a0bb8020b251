"""Secret values in the configuration: given directly, ``{env: VAR}``, ``{file: PATH}`` or
``{keyring: SERVICE/USER}`` — the Windows Credential Manager (or the platform's keyring, through
the ``keyring`` library: ``pip install ccm-mail-core[keyring]``), filled by ``ccm-mail secrets set``
so a secret never has to appear in the YAML, a shell history or a process list.

Resolving only: the validation (:mod:`.validate`) registers every resolved secret with
:mod:`ccm_mail_hookspecs.redaction`, so it is blanked wherever it turns up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import ConfigError, T


class SecretProblem(ConfigError):
    """A secret cannot be had: the variable is not set, the file is missing or empty."""

    kind = "secret"


SOURCES = ("env", "file", "keyring")
#: the keyring service ccm-mail stores its secrets under
SERVICE = "ccm-mail"


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in SOURCES


def keyring_name(account: str, field: str) -> str:
    """``ccm-mail/<account>/<field>``: the ``{keyring: …}`` reference ``secrets set`` stores under."""
    return f"{SERVICE}/{account}/{field}"


def store_in_keyring(reference: str, value: str) -> None:
    service, user = _keyring_parts(reference)
    try:
        _keyring().set_password(service, user, value)
    except Exception as exc:  # keyring backends raise their own types
        raise SecretProblem(
            T(
                f"Schlüsselbund: {reference} lässt sich nicht speichern ({type(exc).__name__}: {exc}).",
                f"keyring: {reference} cannot be stored ({type(exc).__name__}: {exc}).",
            ),
            hint=_KEYRING_HINT,
        ) from exc


_KEYRING_HINT = T(
    "Unter Windows die Anmeldeinformationsverwaltung des Dienstkontos verwenden; sonst ein "
    "Schlüsselbund-Backend einrichten (keyring --list-backends).",
    "On Windows, use the service account's Credential Manager; elsewhere set up a keyring backend "
    "(keyring --list-backends).",
)


def delete_from_keyring(reference: str) -> None:
    """Remove a stored secret; one that is not there is fine."""
    service, user = _keyring_parts(reference)
    keyring = _keyring()
    try:
        keyring.delete_password(service, user)
    except keyring.errors.PasswordDeleteError:
        pass


def _keyring_parts(reference: str) -> tuple[str, str]:
    service, _, user = str(reference).partition("/")
    if not service or not user:
        raise SecretProblem(
            T(
                f"Schlüsselbund-Angabe {reference!r}: erwartet DIENST/BENUTZER, z. B. "
                "ccm-mail/Rechnungsversand/client_secret.",
                f"keyring reference {reference!r}: expected SERVICE/USER, e.g. "
                "ccm-mail/Rechnungsversand/client_secret.",
            )
        )
    return service, user


def _keyring() -> Any:
    try:
        import keyring
    except ImportError as exc:
        raise SecretProblem(
            T("Für {keyring: …} fehlt das Paket keyring.", "{keyring: …} needs the keyring package."),
            hint=T("pip install ccm-mail-core[keyring]", "pip install ccm-mail-core[keyring]"),
        ) from exc
    return keyring


def resolve(value: Any, base_dir: Path) -> tuple[str, list[T]]:
    """The secret's value and warnings; raises :class:`SecretProblem` when it cannot be had."""
    warnings: list[T] = []
    if isinstance(value, str):
        return value, warnings
    if not is_reference(value):
        raise SecretProblem(
            T(
                "Geheimnis muss Text, {env: VARIABLE}, {file: PFAD} oder {keyring: DIENST/BENUTZER} sein.",
                "a secret must be text, {env: VARIABLE}, {file: PATH} or {keyring: SERVICE/USER}.",
            )
        )
    kind, ref = next(iter(value.items()))
    if kind == "keyring":
        service, user = _keyring_parts(ref)
        try:
            got = _keyring().get_password(service, user)
        except SecretProblem:
            raise
        except Exception as exc:  # no backend, a locked store: each backend has its own error types
            raise SecretProblem(
                T(
                    f"Schlüsselbund nicht lesbar für {ref} ({type(exc).__name__}: {exc}).",
                    f"keyring cannot be read for {ref} ({type(exc).__name__}: {exc}).",
                ),
                hint=_KEYRING_HINT,
            ) from exc
        if not got:
            account = user.partition("/")[0]
            raise SecretProblem(
                T(f"Im Schlüsselbund fehlt {ref}.", f"the keyring has no {ref}."),
                hint=T(
                    f"Mit 'ccm-mail secrets set {account}' hinterlegen (als der Benutzer, unter dem ccm-mail läuft).",
                    f"Store it with 'ccm-mail secrets set {account}' (as the user ccm-mail runs as).",
                ),
            )
        return got, warnings
    if kind == "env":
        got = os.environ.get(str(ref))
        if not got:
            raise SecretProblem(
                T(f"Umgebungsvariable {ref} ist nicht gesetzt.", f"environment variable {ref} is not set."),
                hint=T(f"{ref} setzen oder den Wert als Datei angeben.", f"Set {ref} or give the value as a file."),
            )
        return got, warnings
    path = Path(str(ref)).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretProblem(
            T(
                f"Geheimnis-Datei {path} nicht lesbar ({exc.strerror}).",
                f"secret file {path} cannot be read ({exc.strerror}).",
            ),
            hint=T("Pfad und Rechte prüfen.", "Check the path and permissions."),
        ) from exc
    if not text:
        raise SecretProblem(T(f"Geheimnis-Datei {path} ist leer.", f"secret file {path} is empty."))
    warnings.extend(loose_permissions(path))
    return text, warnings


def loose_permissions(path: Path) -> list[T]:
    """A warning when a file holding a secret can be read by group or others (POSIX only)."""
    if os.name != "posix":
        return []
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [
            T(
                f"{path} enthält ein Geheimnis und ist für Gruppe/andere lesbar; 'chmod 600 {path}'.",
                f"{path} holds a secret and is readable by group/others; run 'chmod 600 {path}'.",
            )
        ]
    return []
