"""ccm-mail-core: the ccm_Mail host for AbSys (see :class:`Mailer`)."""

from ccm_mail_hookspecs import hookimpl

from .mailer import Mailer
from .results import ExitCode, SendResult

__version__ = "1.0.0"
__all__ = ["ExitCode", "Mailer", "SendResult", "hookimpl", "__version__"]
