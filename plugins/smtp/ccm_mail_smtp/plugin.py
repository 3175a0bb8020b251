"""Entry point ``ccm_mail: smtp``: contributes the account type "SMTP" to the ccm-mail host.

This module is what the host loads; it stays tiny so that loading every installed plugin at
start-up costs nothing (smtplib, msal and the transport are imported only when an account is used).
"""

from __future__ import annotations

from collections.abc import Callable

from ccm_mail_hookspecs import AccountSettings, AccountType, T, Transport, hookimpl

from .fields import FIELDS, expiry, validate

#: the plugin API major version this plugin was written for; the host refuses other majors
CCM_MAIL_API = 1


def create_transport(settings: AccountSettings) -> Transport:
    from .config import SmtpConfig
    from .transport import SmtpTransport

    return SmtpTransport(SmtpConfig.from_values(settings.values), account=settings.name)


ACCOUNT_TYPE = AccountType(
    id="smtp",
    label=T("SMTP", "SMTP"),
    description=T(
        "Versand über einen SMTP-Server: STARTTLS oder TLS, Anmeldung mit Passwort oder – für "
        "Microsoft 365 – per OAuth 2.0 (XOAUTH2, App-Berechtigung SMTP.SendAsApp).",
        "Sending through an SMTP server: STARTTLS or TLS, login with a password or – for Microsoft 365 – "
        "with OAuth 2.0 (XOAUTH2, app permission SMTP.SendAsApp).",
    ),
    fields=FIELDS,
    create_transport=create_transport,
    validate=validate,
    sender_field="sender",
    expiry=expiry,
)


@hookimpl
def ccm_mail_account_types(register: Callable[[AccountType], None]) -> None:
    register(ACCOUNT_TYPE)
