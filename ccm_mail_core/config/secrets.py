"""Secret values in the configuration: given directly, ``{env: VAR}`` or ``{file: PATH}``.

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


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("env", "file")


def resolve(value: Any, base_dir: Path) -> tuple[str, list[T]]:
    """The secret's value and warnings; raises :class:`SecretProblem` when it cannot be had."""
    warnings: list[T] = []
    if isinstance(value, str):
        return value, warnings
    if not is_reference(value):
        raise SecretProblem(T("Geheimnis muss Text, {env: VARIABLE} oder {file: PFAD} sein.",
                              "a secret must be text, {env: VARIABLE} or {file: PATH}."))
    kind, ref = next(iter(value.items()))
    if kind == "env":
        got = os.environ.get(str(ref))
        if not got:
            raise SecretProblem(
                T(f"Umgebungsvariable {ref} ist nicht gesetzt.", f"environment variable {ref} is not set."),
                hint=T(f"{ref} setzen oder den Wert als Datei angeben.", f"Set {ref} or give the value as a file."))
        return got, warnings
    path = Path(str(ref)).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretProblem(T(f"Geheimnis-Datei {path} nicht lesbar ({exc.strerror}).",
                              f"secret file {path} cannot be read ({exc.strerror})."),
                            hint=T("Pfad und Rechte prüfen.", "Check the path and permissions.")) from exc
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
        return [T(f"{path} enthält ein Geheimnis und ist für Gruppe/andere lesbar; 'chmod 600 {path}'.",
                  f"{path} holds a secret and is readable by group/others; run 'chmod 600 {path}'.")]
    return []
