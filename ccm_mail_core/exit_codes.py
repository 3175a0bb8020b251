"""The exit codes of ``ccm-mail`` (stable; AbSys branches on them). Which outcome gets which code is
decided in :mod:`.results`; this module has no imports, so the service's client can use it."""

from __future__ import annotations


class ExitCode:
    """Process exit codes of ``ccm-mail`` (stable; AbSys branches on them)."""

    OK = 0
    SEND_FAILED = 1  #: not sent (the provider refused, or it never left); fix the cause, then retry
    CONFIG = 2  #: configuration or usage error; nothing was sent
    CANCELLED = 3  #: declined at confirmation or by a prepare hook; nothing was sent
    UNKNOWN = 4  #: the outcome is unknown: do not resend, check the journal/outbox
    DUPLICATE = 5  #: refused: this reference was already sent (use --resend to send again)


__all__ = ["ExitCode"]
