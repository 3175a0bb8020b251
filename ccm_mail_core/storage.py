"""Where ccm-mail keeps its files, and where it must not.

Defaults come from platformdirs: on Windows the machine-wide ``%ProgramData%\\ccm-mail`` (one
journal for every user and service account of the machine), elsewhere the user's XDG data folder.
A path in the YAML is relative to the config file.

SQLite's WAL needs shared memory between the processes that open the file, which network file
systems (SMB shares, NFS) do not provide: a journal there can lose the duplicate check. So a
journal on a network file system is refused; several workstations share one journal through
``ccm-mail serve`` or PostgreSQL instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

import psutil

APP = "ccm-mail"

#: file system types (as psutil reports them on Linux and macOS) that live on another machine
NETWORK_FSTYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smbfs",
        "smb3",
        "9p",
        "afs",
        "ncpfs",
        "davfs",
        "fuse.davfs2",
        "fuse.sshfs",
        "sshfs",
        "glusterfs",
        "fuse.glusterfs",
        "ceph",
        "fuse.ceph",
        "lustre",
        "gpfs",
        "webdav",
    }
)


def data_dir() -> Path:
    """The default folder for the journal and the state: machine-wide on Windows
    (``%ProgramData%\\ccm-mail``), the user's data folder elsewhere."""
    import platformdirs  # only when the YAML names no journal path

    if os.name == "nt":
        return Path(platformdirs.site_data_dir(APP, appauthor=False))
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def network_filesystem(path: Path | PurePath, partitions: Iterable[Any] | None = None) -> str | None:
    """The kind of network file system ``path`` is on (``"UNC"``, ``"cifs"``, ``"nfs4"``,
    ``"remote"`` for a mapped Windows drive…), or None when it is local.

    ``partitions`` are psutil's ``disk_partitions(all=True)`` (read when not given)."""
    text = str(path)
    if isinstance(path, PureWindowsPath) or os.name == "nt":
        if PureWindowsPath(text).drive.startswith(("\\\\", "//")):
            return "UNC"
    target = os.path.realpath(text) if isinstance(path, Path) else text  # symlinks into a share count
    found = None
    for part in psutil.disk_partitions(all=True) if partitions is None else partitions:
        mount = str(part.mountpoint)
        if _under(target, mount) and (found is None or len(mount) > len(str(found.mountpoint))):
            found = part
    if found is None:
        return None
    fstype = str(found.fstype).lower()
    if fstype in NETWORK_FSTYPES or "remote" in str(found.opts).lower().split(","):
        return fstype or "remote"
    return None


def _under(path: str, mount: str) -> bool:
    path, mount = os.path.normcase(path).rstrip("/\\"), os.path.normcase(mount).rstrip("/\\")
    return not mount or path == mount or path.startswith((mount + "/", mount + "\\"))
