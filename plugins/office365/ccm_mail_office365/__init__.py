"""ccm-mail-office365: sends mail through Microsoft 365 with OAuth 2.0 client credentials.

The host finds this package only through the ``ccm_mail`` entry point (``plugin.py``); it depends
on the stable plugin API (``ccm_mail_hookspecs``), never on the host's internals.
"""

from __future__ import annotations

__version__ = "1.0.0"
TYPE_ID = "office365"
