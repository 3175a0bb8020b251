"""ccm-mail-core: the ccm_Mail host for AbSys (see :class:`Mailer`).

The names below are loaded on first use: ``ccm-mail --server URL send`` imports this package
without the Mailer and everything it needs (the client of ``ccm-mail serve`` stays light)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ccm_mail_hookspecs import hookimpl

    from .mailer import Mailer
    from .results import ExitCode, SendResult

__version__ = "1.0.0"
__all__ = ["ExitCode", "Mailer", "SendResult", "hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        from ccm_mail_hookspecs import hookimpl

        return hookimpl
    if name == "Mailer":
        from .mailer import Mailer

        return Mailer
    if name in ("ExitCode", "SendResult"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'ccm_mail_core' has no attribute {name!r}")
