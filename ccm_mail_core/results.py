"""What a send comes back as, and the exit codes AbSys branches on: decided here, once
(the codes themselves are in :mod:`.exit_codes`, which the service's client imports alone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccm_mail_hookspecs import Cancelled, CcmMailError, Receipt, Status, TransportError, Unconfirmed

from .exit_codes import ExitCode
from .journal import DuplicateSend, JournalError
from .pacing import DailyLimitReached


_FOR_STATUS = {
    Status.SENT: ExitCode.OK,
    Status.FAILED: ExitCode.SEND_FAILED,
    Status.CANCELLED: ExitCode.CANCELLED,
    Status.UNKNOWN: ExitCode.UNKNOWN,
    Status.SENDING: ExitCode.UNKNOWN,
    Status.QUEUED: ExitCode.SEND_FAILED,
}

# first match wins: subclasses before their bases
_FOR_ERROR: tuple[tuple[type[BaseException], int], ...] = (
    (DuplicateSend, ExitCode.DUPLICATE),
    (Unconfirmed, ExitCode.CONFIG),
    (Cancelled, ExitCode.CANCELLED),
    (TransportError, ExitCode.SEND_FAILED),
    (JournalError, ExitCode.SEND_FAILED),
    (DailyLimitReached, ExitCode.SEND_FAILED),
    (CcmMailError, ExitCode.CONFIG),  # template, address, attachment, data: the input must change
)


def exit_code_for(outcome: Status | BaseException) -> int:
    """The exit code of a final status or of an error that ended a command."""
    if isinstance(outcome, Status):
        return _FOR_STATUS[outcome]
    if isinstance(outcome, CcmMailError) and outcome.sent is None:  # it may have left: never resend blindly
        return ExitCode.UNKNOWN
    for kind, code in _FOR_ERROR:
        if isinstance(outcome, kind):
            return code
    return ExitCode.SEND_FAILED  # a bug: never claim success, never claim "usage error"


@dataclass(slots=True)
class SendResult:
    status: Status
    journal_id: int
    message_id: str
    receipt: Receipt | None = None
    error: CcmMailError | None = None
    recorder_failures: list[tuple[str, str]] = field(default_factory=list)
    #: what the person should know although the send went on (a credential expiring soon, no DSN)
    warnings: list[str] = field(default_factory=list)
    #: the archive copy (``{"file", "sha256"}``) when the purpose keeps one
    archive: dict[str, str] | None = None

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.status)

    def to_dict(self, lang: str = "de") -> dict[str, Any]:
        return {
            "status": self.status.value,
            "journal_id": self.journal_id,
            "message_id": self.message_id,
            "sent_at": self.receipt.sent_at.isoformat() if self.receipt else None,
            "transport_ids": dict(self.receipt.transport_ids) if self.receipt else {},
            "error": self.error.to_dict(lang) if self.error else None,
            "recorder_failures": [{"plugin": p, "error": e} for p, e in self.recorder_failures],
            "warnings": list(self.warnings),
            "archive": self.archive,
        }
