"""Entry point module (``ccm_mail`` group, name ``office365``): registers the account type."""

from __future__ import annotations

from collections.abc import Callable

from ccm_mail_hookspecs import AccountType, hookimpl

#: the plugin API major version this plugin was written for
CCM_MAIL_API = 1


@hookimpl
def ccm_mail_account_types(register: Callable[[AccountType], None]) -> None:
    # imported here: 'ccm-mail --help' loads this module to ask for plugin commands, and msal and
    # requests (which the account type needs) would cost every such call ~0.15 s
    from .account_type import ACCOUNT_TYPE

    register(ACCOUNT_TYPE)
