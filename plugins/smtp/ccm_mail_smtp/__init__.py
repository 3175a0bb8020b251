"""ccm-mail-smtp: the SMTP transport plugin of ccm-mail (account type ``smtp``).

Built only on the public plugin API (``ccm_mail_hookspecs``), exactly as a third-party transport
would be; see ``docs/writing-a-transport.md`` in the ccm-mail repository.
"""

from __future__ import annotations

__version__ = "1.0.0"
