"""The account's private files (token cache, msal's HTTP cache): read when they changed, written
atomically with mode 0600, under one inter-process lock.

Both caches are shared by every process of the account, so a reader must notice another
process's write (size and modification time), and a writer must never leave a half-written
file (write a temporary file beside it, then replace). The lock makes two AbSys processes that
start at the same moment ask Entra once: the second waits and finds the token. It is the
``filelock`` library's (POSIX ``fcntl``, Windows ``msvcrt``, both tested by its maintainers), with
a timeout: a hung process must not make every later send wait for ever.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
import structlog
from ccm_mail_hookspecs import T, TransportError

log = structlog.get_logger("ccm_mail.office365")

Stamp = tuple[int, int]

LOCK_FILE = "msal_token_cache.lock"
#: longer than one sign-in with its retries normally takes; then the send fails (not sent)
LOCK_TIMEOUT = 120.0


@contextmanager
def account_lock(state_dir: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the account's lock; a clear error (nothing sent) when it cannot be had in time."""
    wait = LOCK_TIMEOUT if timeout is None else timeout
    lock = filelock.FileLock(str(state_dir / LOCK_FILE), timeout=wait, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise TransportError(
            T(
                f"Der Token-Cache des Kontos ist seit {wait:.0f} s gesperrt ({state_dir / LOCK_FILE}): ein anderer "
                "ccm-mail-Prozess meldet sich gerade an oder hängt. Es wurde nichts gesendet.",
                f"The account's token cache has been locked for {wait:.0f} s ({state_dir / LOCK_FILE}): another "
                "ccm-mail process is signing in or hangs. Nothing was sent.",
            ),
            hint=T(
                "Später erneut senden; hängt ein ccm-mail-Prozess, ihn beenden.",
                "Send again later; if a ccm-mail process hangs, end it.",
            ),
            details={"code": "token_cache_locked"},
        ) from None
    try:
        yield
    finally:
        lock.release()


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
