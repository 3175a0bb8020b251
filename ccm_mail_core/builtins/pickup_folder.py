"""Account type ``pickup``: each message becomes an RFC 5322 ``.eml`` file in a folder.

For trying ccm-mail and for test installations that must never reach a customer: nothing leaves
the machine. What an SMTP transport would put on the envelope is written as headers, for
inspection: ``X-Envelope-Bcc``, ``X-Envelope-From`` (the account's address, when the message is
sent as another one) and ``X-Envelope-Notify: SUCCESS,FAILURE`` for a requested delivery report;
a read receipt is the ``Disposition-Notification-To`` header every transport writes. Files
appear atomically (written to a temporary name, fsynced, then renamed), so a program watching
the folder never sees half a message.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from ccm_mail_hookspecs import (
    AccountSettings,
    AccountType,
    CheckResult,
    Field,
    Found,
    Lookup,
    Message,
    Receipt,
    T,
    Transport,
    TransportError,
    build_mime,
    hookimpl,
)

CCM_MAIL_API = 1


class PickupTransport(Transport):
    type_id = "pickup"

    def __init__(self, settings: AccountSettings) -> None:
        self.folder = Path(settings.values["folder"])
        self.sender = settings.values["sender"]

    def send(self, message: Message) -> Receipt:
        sent_at = datetime.now(timezone.utc)
        mime = build_mime(message, date=sent_at)
        if message.bcc:  # the envelope of a file is its header; keep Bcc visible for inspection only here
            mime["X-Envelope-Bcc"] = ", ".join(a.address for a in message.bcc)
        if message.sender is not None and message.sender.address.lower() != str(self.sender).lower():
            mime["X-Envelope-From"] = str(self.sender)
        if message.request_delivery_receipt:
            mime["X-Envelope-Notify"] = "SUCCESS,FAILURE"
        data = mime.as_bytes()
        stem = sent_at.strftime("%Y%m%dT%H%M%S%fZ") + "-" + _safe(message.message_id or "message")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                target = self.folder / f"{stem}.eml"
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TransportError(
                T(
                    f"Abholordner {self.folder} nicht beschreibbar: {exc.strerror}",
                    f"pickup folder {self.folder} is not writable: {exc.strerror}",
                ),
                hint=T("Ordner anlegen bzw. Schreibrechte geben.", "Create the folder or grant write access."),
            ) from exc
        return Receipt(sent_at=sent_at, transport_ids={"file": str(target)}, mime=data)

    def lookup(self, message: Message) -> Lookup:
        """A file with the message's id in its name is the message: it only appears complete."""
        hits = sorted(self.folder.glob(f"*-{_safe(message.message_id)}.eml")) if message.message_id else []
        if not hits:
            return Lookup(Found.NOT_FOUND)
        sent_at = datetime.fromtimestamp(hits[0].stat().st_mtime, timezone.utc)
        return Lookup(Found.SENT, sent_at, {"file": str(hits[0])})

    def check(self) -> CheckResult:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ok = os.access(self.folder, os.W_OK)
        except OSError:
            ok = False
        text = (
            T(f"Ordner {self.folder} ist beschreibbar.", f"folder {self.folder} is writable.")
            if ok
            else T(f"Ordner {self.folder} ist nicht beschreibbar.", f"folder {self.folder} is not writable.")
        )
        return CheckResult(ok, (("folder", ok, text),))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("<>"))[:80]


ACCOUNT_TYPE = AccountType(
    id="pickup",
    label=T("Abholordner (.eml-Dateien)", "Pickup folder (.eml files)"),
    description=T(
        "Schreibt jede Mail als .eml-Datei in einen Ordner; nichts verlässt den Rechner.",
        "Writes each mail as an .eml file into a folder; nothing leaves the machine.",
    ),
    fields=(
        Field(
            "folder",
            T("Ordner", "Folder"),
            kind="path",
            help=T("Pfad des Ordners; relativ zur Konfigurationsdatei.", "Folder path; relative to the config file."),
        ),
        Field(
            "sender",
            T("Absenderadresse", "Sender address"),
            kind="email",
            help=T("Adresse, die im From-Kopf steht.", "Address written into the From header."),
        ),
    ),
    create_transport=PickupTransport,
)


@hookimpl
def ccm_mail_account_types(register: Callable[[AccountType], None]) -> None:
    register(ACCOUNT_TYPE)
