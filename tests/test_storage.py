"""Where the journal may live (Windows host contract): never on a network file system, defaults
from platformdirs. UNC paths and mapped drives are decided from what Windows reports (psutil's
partition table); that table itself is only read for real on Linux here."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path, PureWindowsPath

import pytest

from ccm_mail_core import storage
from ccm_mail_core.journal import Journal, JournalError

Part = namedtuple("Part", "device mountpoint fstype opts")

LINUX = [
    Part("/dev/vda", "/", "ext4", "rw"),
    Part("//nas/absys", "/mnt/absys", "cifs", "rw,vers=3.0"),
    Part("nas:/export", "/srv/nfs", "nfs4", "rw"),
    Part("tmpfs", "/mnt/absys/tmp", "tmpfs", "rw"),
]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/mnt/absys/journal.sqlite", "cifs"),
        ("/srv/nfs/x/y", "nfs4"),
        ("/mnt/absys/tmp/j.sqlite", None),
        ("/home/absys/j.sqlite", None),
        ("/mnt/absysfoo/j.sqlite", None),
    ],
)
def test_network_file_systems_are_recognised(path: str, kind: str | None) -> None:
    assert storage.network_filesystem(Path(path), LINUX) == kind


def test_unc_paths_and_mapped_drives_are_network() -> None:
    assert storage.network_filesystem(PureWindowsPath(r"\\server\absys\ccm-mail\journal.sqlite"), []) == "UNC"
    windows = [Part("C:\\", "C:\\", "NTFS", "rw,fixed"), Part("Z:\\", "Z:\\", "", "rw,remote")]
    assert storage.network_filesystem(PureWindowsPath(r"C:\ProgramData\ccm-mail\j.sqlite"), windows) is None


def test_a_journal_here_is_local(tmp_path: Path) -> None:
    assert storage.network_filesystem(tmp_path / "not" / "yet" / "there.sqlite") is None
    Journal(tmp_path / "journal.sqlite").close()


def test_a_journal_on_a_share_is_refused_with_the_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision is taken from the partition table; here the table says: a CIFS share."""
    share = tmp_path / "share"
    monkeypatch.setattr(
        storage.psutil, "disk_partitions", lambda all=True: [Part("//nas/absys", str(share), "cifs", "rw")]
    )  # noqa: A002
    with pytest.raises(JournalError) as err:
        Journal(share / "journal.sqlite")
    assert "Netzlaufwerk (cifs)" in err.value.render("de") and "ccm-mail serve" in err.value.render("de")
    assert "network file system" in err.value.render("en") and not share.exists()


def test_default_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Linux: the XDG data folder. (Windows: platformdirs' CSIDL_COMMON_APPDATA, i.e.
    %ProgramData%\\ccm-mail; its Windows API is not reachable here: verified on Linux only.)"""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert storage.data_dir() == tmp_path / "xdg" / "ccm-mail"
