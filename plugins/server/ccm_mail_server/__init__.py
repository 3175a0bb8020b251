"""ccm-mail-server: ``ccm-mail serve``, one long-running local service per site.

Every workstation's AbSys sends through it (``ccm-mail --server URL send …`` or the JSON API under
``/api/v1``), so a site has one journal writer, one token cache and one pacer per mailbox; admins
save settings through it (validated like ``config check``, written with their comments kept).
"""

from __future__ import annotations

__version__ = "1.0.0"
