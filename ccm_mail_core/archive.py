"""The archive copy (GoBD): each sent message of a purpose with ``archive:`` kept as the exact
``.eml`` that was handed to the provider, its SHA-256 in the journal row.

Which bytes: the transport's :attr:`Receipt.mime`, i.e. what went over the wire (SMTP: the DATA
before dot-stuffing; Office 365: the MIME request's content, the transport sends an archived
purpose through Graph's MIME route; pickup: the file written). Never a rebuild afterwards.

Write-once: the file is written under a temporary name, synced, made read-only, then linked to
its final name, which fails if that name exists (POSIX ``link``; on Windows ``rename``, which
never replaces an existing file). Nothing here ever opens an archive file for writing again.
``ccm-mail archive verify`` reads every copy back and compares it with the journal's hash.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ccm_mail_hookspecs import CcmMailError, T

from .journal import Entry

_CHUNK = 1 << 20


class ArchiveError(CcmMailError):
    """The archive copy could not be written (the message itself was sent)."""

    kind = "archive"


def file_name(row: int, message_id: str, sent_at: datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", message_id.strip("<>"))[:80] or "message"
    return f"{sent_at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{row}-{safe}.eml"


def store(folder: Path, row: int, message_id: str, sent_at: datetime, data: bytes) -> tuple[str, str]:
    """Write ``data`` once under ``folder/YYYY/MM/``; returns (file, sha256)."""
    when = sent_at.astimezone(timezone.utc)
    target = folder / f"{when:%Y}" / f"{when:%m}" / file_name(row, message_id, sent_at)
    digest = hashlib.sha256(data).hexdigest()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    except OSError as exc:
        raise _error(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IREAD | (stat.S_IRGRP if os.name == "posix" else 0))
        if os.name == "nt":
            os.rename(tmp, target)  # Windows: never replaces an existing file
        else:
            try:
                os.link(tmp, target)  # atomic, and fails if the name exists
            except FileExistsError:
                raise
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                _create_new(target, data)  # a file system without hard links: exclusive create
            _sync_folder(target.parent)
    except FileExistsError:
        raise ArchiveError(
            T(
                f"Archivkopie {target} gibt es schon; sie wird nie überschrieben.",
                f"archive copy {target} exists already; it is never overwritten.",
            ),
            hint=T(
                "Den Ordner prüfen: jemand hat dort Dateien abgelegt oder ein zweites Journal "
                "nutzt denselben Archivordner.",
                "Check the folder: someone put files there or a second journal uses the same archive folder.",
            ),
        ) from None
    except OSError as exc:
        raise _error(target, exc) from exc
    finally:
        _remove(Path(tmp))
    return str(target), digest


#: errors of a file system that has no hard links (some SMB/FAT mounts)
_NO_LINKS = {getattr(errno, name) for name in ("EPERM", "EOPNOTSUPP", "ENOTSUP", "EMLINK") if hasattr(errno, name)}


def _create_new(target: Path, data: bytes) -> None:
    """Write ``data`` to a name that must not exist yet (``O_EXCL``); a copy cut short by a crash
    hashes wrong, and ``archive verify`` reports it as altered."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o400)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _error(target: Path, exc: OSError) -> ArchiveError:
    return ArchiveError(
        T(
            f"Archivkopie {target} nicht geschrieben: {exc.strerror or exc}",
            f"archive copy {target} not written: {exc.strerror or exc}",
        ),
        hint=T(
            "Ordner (purposes.<Zweck>.archive.folder), Rechte und freien Platz prüfen. Die Mail "
            "ist gesendet; 'ccm-mail archive verify' listet sie als nicht archiviert.",
            "Check the folder (purposes.<purpose>.archive.folder), permissions and free space. "
            "The mail was sent; 'ccm-mail archive verify' lists it as not archived.",
        ),
    )


def _remove(path: Path) -> None:
    try:
        if path.exists():
            if os.name == "nt":  # Windows refuses to delete a read-only file; on POSIX this name shares
                os.chmod(path, stat.S_IWRITE | stat.S_IREAD)  # the archive copy's inode: never touch its mode
            path.unlink()
    except OSError:
        pass  # a stray temporary file; never the archive copy itself


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself is synced
    finally:
        os.close(fd)


def cannot_write(folder: Path) -> str | None:
    """Why no copy could be written into ``folder`` now (its nearest existing parent when it does
    not exist yet: the first copy creates it), or None. Checked by trying, as a send would."""
    import tempfile

    where = folder
    while not where.exists() and where.parent != where:
        where = where.parent
    try:
        with tempfile.TemporaryFile(dir=where):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(slots=True)
class Checked:
    """One journal row's archive copy as ``verify`` found it."""

    entry: Entry
    state: str  # "ok" | "missing" | "altered" | "not_archived"
    found_sha256: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "journal_id": self.entry.id,
            "reference": self.entry.reference,
            "purpose": self.entry.purpose,
            "sent_at": self.entry.sent_at,
            "file": self.entry.archive_file,
            "sha256": self.entry.archive_sha256,
            "found_sha256": self.found_sha256,
            "state": self.state,
        }


@dataclass(slots=True)
class Verified:
    checked: list[Checked] = field(default_factory=list)

    @property
    def problems(self) -> list[Checked]:
        return [c for c in self.checked if c.state != "ok"]


def expected(entry: Entry) -> bool:
    """Whether this row should have an archive copy: sent, and queued for a purpose with ``archive:``."""
    return entry.status.value == "sent" and bool((entry.payload or {}).get("archive")) or bool(entry.archive_sha256)


def verify(entries: Iterable[Entry]) -> Verified:
    """Each row that should have a copy: the file is there and hashes to what the journal says."""
    result = Verified()
    for entry in entries:
        if not expected(entry):
            continue
        if not entry.archive_sha256 or not entry.archive_file:
            result.checked.append(Checked(entry, "not_archived"))
            continue
        path = Path(entry.archive_file)
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device in its place would never end
                result.checked.append(Checked(entry, "altered"))
                continue
            found = sha256_of(path)
        except OSError:
            result.checked.append(Checked(entry, "missing"))
            continue
        result.checked.append(Checked(entry, "ok" if found == entry.archive_sha256 else "altered", found))
    return result
