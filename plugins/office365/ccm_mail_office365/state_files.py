"""The account's private files (token cache, msal's HTTP cache): read when they changed, written
atomically with mode 0600.

Both caches are shared by every process of the account, so a reader must notice another
process's write (size and modification time), and a writer must never leave a half-written
file (write a temporary file beside it, then replace).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import structlog

log = structlog.get_logger("ccm_mail.office365")

Stamp = tuple[int, int]


def stamp(path: Path) -> Stamp | None:
    """(mtime_ns, size) of ``path``, or None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def read_private(path: Path, account: str) -> str | None:
    """The file's text, its permissions repaired to 0600 on POSIX; None when missing or unreadable."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if os.name == "posix" and st.st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("state_file_permissions_fixed", account=account, file=path.name)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        log.warning("state_file_unreadable", account=account, file=path.name)
        return None


def write_private(path: Path, text: str) -> Stamp | None:
    """Replace ``path`` by ``text`` atomically (mode 0600); returns the new stamp."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return stamp(path)
