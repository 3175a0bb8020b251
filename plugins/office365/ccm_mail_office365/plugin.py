"""Entry point module (``ccm_mail`` group, name ``office365``): registers the account type."""

from __future__ import annotations

from collections.abc import Callable

from ccm_mail_hookspecs import AccountType, hookimpl

from .account_type import ACCOUNT_TYPE

#: the plugin API major version this plugin was written for
CCM_MAIL_API = 1


@hookimpl
def ccm_mail_account_types(register: Callable[[AccountType], None]) -> None:
    register(ACCOUNT_TYPE)
