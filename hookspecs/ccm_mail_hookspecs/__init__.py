"""ccm-mail plugin API: markers, hook specifications, public types and errors.

A plugin module declares the API major version it was written for, ``CCM_MAIL_API = 1``, and
implements hooks with :data:`hookimpl`. It is found through the ``ccm_mail`` entry-point group.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "ccm_mail"
#: version of this plugin API; the host refuses plugins built for another major version
API_VERSION = "1.4"
API_MAJOR = int(API_VERSION.split(".")[0])

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from .accounts import AccountSettings, AccountType, Field  # noqa: E402
from .commands import Command, CommandOutput  # noqa: E402
from .context import Cancel, Placeholder, Preview, SendContext, data_field  # noqa: E402
from .errors import (  # noqa: E402
    AccessDeniedError,
    AddressError,
    AttachmentError,
    AuthenticationError,
    Cancelled,
    CcmMailError,
    ConfigError,
    MailboxError,
    MessageTooLargeError,
    NetworkError,
    PluginError,
    RecipientError,
    TemplateError,
    ThrottledError,
    TransportError,
    Unconfirmed,
    UnknownOutcomeError,
)
from .message import Address, Attachment, Message, addr_spec, build_mime  # noqa: E402
from .text import T  # noqa: E402
from .transport import CheckResult, Expiry, Found, Lookup, Receipt, Status, Transport  # noqa: E402

__all__ = [
    "PROJECT_NAME",
    "API_VERSION",
    "API_MAJOR",
    "hookimpl",
    "AccountSettings",
    "AccountType",
    "Field",
    "Command",
    "CommandOutput",
    "Cancel",
    "Placeholder",
    "Preview",
    "SendContext",
    "data_field",
    "AccessDeniedError",
    "AddressError",
    "AttachmentError",
    "AuthenticationError",
    "Cancelled",
    "CcmMailError",
    "ConfigError",
    "MailboxError",
    "MessageTooLargeError",
    "NetworkError",
    "PluginError",
    "RecipientError",
    "TemplateError",
    "ThrottledError",
    "TransportError",
    "Unconfirmed",
    "UnknownOutcomeError",
    "Address",
    "Attachment",
    "Message",
    "addr_spec",
    "build_mime",
    "T",
    "CheckResult",
    "Expiry",
    "Found",
    "Lookup",
    "Receipt",
    "Status",
    "Transport",
]
