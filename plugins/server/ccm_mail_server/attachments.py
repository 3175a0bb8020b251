"""Attachments that arrive over HTTP: their bytes are kept in the service's state folder, named
by their SHA-256, because the journal keeps a message's attachments by path (the outbox may have
to send it again after a crash). A repeat of the same file costs no second copy, and a batch
submitted twice gets the same paths (and so the same batch id).

A caller may also name a file on the service's machine by path, but only inside the folders the
admin listed (``plugins.settings.server.attachment_dirs``): no path trick reaches anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ccm_mail_hookspecs import Attachment, AttachmentError, T

_BAD_NAME = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")


def safe_filename(name: Any) -> str:
    """The file name alone (no folder, from either kind of path), or AttachmentError."""
    text = str(name or "")
    base = PurePosixPath(PureWindowsPath(text).name).name.strip()
    if not base or base in (".", "..") or _BAD_NAME.search(base) or len(base) > 200 or base != text.strip():
        raise AttachmentError(
            T(
                f"Ungültiger Dateiname {text!r} (ohne Ordner, ohne Steuer- und Sonderzeichen).",
                f"invalid file name {text!r} (no folder, no control or special characters).",
            )
        )
    return base


class AttachmentStore:
    def __init__(self, folder: Path, allowed_dirs: Sequence[Path] = ()) -> None:
        self.folder = Path(folder)
        self.allowed = [Path(d).resolve() for d in allowed_dirs]

    def take(self, item: Any, where: str) -> Attachment:
        """One attachment of a request: ``{"filename", "content_base64", "content_type"?}`` or
        ``{"path"}`` inside an allowed folder."""
        if not isinstance(item, dict):
            raise AttachmentError(
                T(
                    f"{where}: ein Anhang ist ein Objekt mit filename und content_base64.",
                    f"{where}: an attachment is an object with filename and content_base64.",
                )
            )
        if "path" in item:
            return Attachment(self._allowed_path(item["path"], where), content_type=str(item.get("content_type") or ""))
        filename = safe_filename(item.get("filename"))
        try:
            content = base64.b64decode(str(item.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise AttachmentError(
                T(
                    f"{where}: content_base64 von {filename} ist kein gültiges Base64.",
                    f"{where}: content_base64 of {filename} is not valid base64.",
                )
            ) from None
        digest = hashlib.sha256(content).hexdigest()
        target = self.folder / digest[:2] / digest / filename
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            # a name of its own per writer: several requests may bring the same new file at once
            fd, tmp = tempfile.mkstemp(prefix=f".{digest[:8]}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        return Attachment(target, filename, str(item.get("content_type") or ""))

    def _allowed_path(self, given: Any, where: str) -> Path:
        path = Path(str(given))
        resolved = path.resolve() if path.is_absolute() else None
        if resolved is not None:
            for root in self.allowed:
                try:
                    if os.path.commonpath([resolved, root]) == str(root):
                        return resolved
                except ValueError:  # another drive on Windows
                    continue
        raise AttachmentError(
            T(
                f"{where}: Pfad {str(given)!r} ist nicht freigegeben; nichts gesendet.",
                f"{where}: path {str(given)!r} is not allowed; nothing sent.",
            ),
            hint=T(
                "Die Datei mitschicken (filename, content_base64), oder ihren Ordner unter "
                "plugins.settings.server.attachment_dirs freigeben.",
                "Send the file itself (filename, content_base64), or allow its folder under "
                "plugins.settings.server.attachment_dirs.",
            ),
        )
