"""ccm-mail core: the pluggy host AbSys loads as its mail plugin ccm_Mail."""

from __future__ import annotations

from ccm_mail_hookspecs import hookimpl

from .api import Mailer, SendResult

__version__ = "1.0.0"
__all__ = ["Mailer", "SendResult", "hookimpl", "__version__"]
