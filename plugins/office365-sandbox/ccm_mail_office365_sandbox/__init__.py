"""A local Microsoft 365 for tests and demos: Entra ID (login, admin consent) and Graph mail,
served over real HTTPS on loopback, plus a CONNECT proxy for the real Microsoft host names.

It behaves as Microsoft documents it, not as a client would like it: status codes, error bodies,
headers, limits (4 MB requests, 4 concurrent requests per mailbox, 30 messages per minute,
35 MB messages) and the ambiguous outcome of a dropped connection. See :mod:`.entra` and
:mod:`.graph` for what is implemented and which details are the sandbox's own choice.

Usage::

    with Sandbox(state_dir=tmp_path) as sb:
        t = sb.add_tenant("11111111-2222-3333-4444-555555555555")
        app = sb.add_app(t.tenant_id, secret="s3cret", permissions={"Mail.Send"})
        sb.add_mailbox(t.tenant_id, "rechnung@contoso.de")
        ...  # msal authority f"{sb.authority_host}/{t.tenant_id}" (instance_discovery=False),
        ...  # Graph at sb.graph_endpoint + "/v1.0/...", verify=sb.ca_pem
        sb.sent_messages("rechnung@contoso.de")

Endpoints: ``ca_pem``, ``authority_host``, ``graph_endpoint`` (same HTTPS port) and ``proxy_url``
(CONNECT proxy for the real host names of all national clouds; other hosts get 403).
Seeding: ``add_tenant``, ``add_app``, ``add_mailbox``, ``set_rate``; settings
``consent_behaviour``, ``token_lifetime``, ``sent_items_delay``, ``upload_limit``,
``loop_detection``. Faults: ``faults.add(...)`` / ``faults.clear()``. Inspection:
``sent_messages()``, ``wait_for_sent()``, ``drafts()``, ``token_requests``,
``token_request_count()``, ``requests``, ``proxy_connects``, ``max_concurrency()``,
``reset_counters()``. Standalone: ``python -m ccm_mail_office365_sandbox --help``.
"""

from .faults import Fault, Faults
from .sandbox import Sandbox
from .state import App, Draft, Mailbox, RequestRecord, SentAttachment, SentMessage, Tenant, TokenRequest

__all__ = [
    "App",
    "Draft",
    "Fault",
    "Faults",
    "Mailbox",
    "RequestRecord",
    "Sandbox",
    "SentAttachment",
    "SentMessage",
    "Tenant",
    "TokenRequest",
]
