"""Microsoft Graph mail stand-in (``/v1.0/users/{id | userPrincipalName}/...``).

Routing lives here; the route groups are :mod:`.graph_core` (plumbing), :mod:`.graph_send`,
:mod:`.graph_drafts` and :mod:`.graph_read`. Implemented:

- ``POST sendMail`` -> 202, empty body (no message id, as Graph); JSON, or MIME in base64 with
  ``Content-Type: text/plain`` (:mod:`.mime`).
- Drafts: ``POST messages`` (201), ``POST messages/{id}/attachments`` (201),
  ``POST messages/{id}/attachments/createUploadSession`` (201, uploadSession),
  ``PUT <uploadUrl>`` (200 + ``ExpirationDateTime``/``nextExpectedRanges``, last chunk 201 +
  Location, ``DELETE <uploadUrl>`` 204), ``POST messages/{id}/send`` (202, always saved to Sent
  Items), ``DELETE messages/{id}`` (204), ``GET messages/{id}``. Upload sessions for files under
  2 MiB are refused with ``ErrorAttachmentSizeShouldNotBeLessThanMinimumSize`` (see
  :data:`.graph_core.MIN_UPLOAD` for why not 3 MB).
- ``GET mailFolders/{sentitems|inbox|drafts}/messages`` with the two ``$filter`` forms of
  :mod:`.odata`, ``$select``, ``$top`` and ``$expand=singleValueExtendedProperties(...)``;
  ``GET mailFolders/{name}``; ``GET users/{id}`` (directory object).

Permissions (application, from the token's ``roles``), as in Graph's permission reference:
sendMail and send need Mail.Send; creating/changing drafts and upload sessions Mail.ReadWrite;
reading messages or folders Mail.ReadBasic, Mail.ReadBasic.All, Mail.Read or Mail.ReadWrite;
``GET users/{id}`` User.Read.All / User.ReadBasic.All / Directory.Read.All. A connection test that
must not need directory rights should therefore read ``mailFolders/inbox`` (Mail.ReadBasic.All)
or simply get a token; Mail.Send alone allows no read at all.

Checks run in this order: token (401 InvalidAuthenticationToken) -> mailbox exists in the token's
tenant (404 ErrorInvalidUser) -> licensed (404 MailboxNotEnabledForRESTAPI) -> app access policy
-> mailbox concurrency (more than 4 in flight per app and mailbox: 429 ApplicationThrottled,
``Application is over its MailboxConcurrency limit.``) -> upload volume -> permission of the
operation (403 ErrorAccessDenied) -> the request.
More than 150 MB of request bodies per app and mailbox within 5 minutes
(``sb.upload_limit``) is 429 ApplicationThrottled ``Application is over its IncomingBytes limit.``
A mailbox scoped to other apps (application access policy, ``add_mailbox(allowed_apps=...)``)
answers 403 ErrorAccessDenied "Access to OData is disabled: [RAOP] ...". RBAC for Applications
(``add_app(rbac_roles=..., rbac_scope=...)``, https://learn.microsoft.com/exchange/permissions-exo/application-rbac):
the roles assigned in Exchange count for the mailboxes of the scope, in addition to the token's
Entra roles; a mailbox outside the scope, with no Entra grant, answers 403 ErrorAccessDenied.

``GET /v1.0/applications(appId='{appId}')`` (``$select``) returns the app's own registration with
its ``passwordCredentials`` (end dates, the first three characters as ``hint``, never the secret)
to a token with Application.Read.All, Application.ReadWrite.All, Directory.Read.All or
Directory.ReadWrite.All (https://learn.microsoft.com/graph/api/application-get); others get 403
Authorization_RequestDenied. Sending then checks send-as (403 ErrorSendAsDenied), size (400
ErrorMessageSizeExceeded), the daily recipient limit (10,000; above it the mailbox is blocked for
24 h: ErrorSubmissionQuotaExceeded, HTTP 500 as Exchange's OData layer maps it) and the
mailbox's message rate (429 ApplicationThrottled with Retry-After; the code and text for this
one are the sandbox's: Exchange's sending-rate refusal is not documented for Graph).

Request bodies above 4 MiB get 413 ``RequestEntityTooLarge`` ("The maximum request length
supported is 4MB."). Upload chunks: at most 4 MiB, in order, with ``Content-Range`` and
``Content-Length``, and *without* ``Authorization`` (the URL is pre-authenticated; a bearer token
there is 401 ``InvalidAudienceForResource``); wrong order is 416, a bad Content-Range 400
(``InvalidContentRange`` is the sandbox's code).

Every answer carries ``request-id``, ``client-request-id`` (the client's, echoed, else the
request id), ``Date`` and ``x-ms-ags-diagnostic``; errors are
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``.
"""

from __future__ import annotations

from urllib.parse import unquote

from .graph_core import APPLICATION_PATH, UPLOAD_PATH, USER_PATH, GraphError
from .graph_read import GraphReading, folder_name
from .messages import GraphBadRequest
from .server import BodyTooLarge, Request, Response
from .state import Mailbox, TokenInfo


class Graph(GraphReading):
    """The Graph stand-in: routing on top of the route groups."""

    def handle(self, req: Request) -> Response:
        try:
            return self._handle(req)
        except GraphError as e:
            return self.error(req, e.status, e.code, e.message, e.headers)
        except GraphBadRequest as e:
            return self.error(req, e.status, e.code, e.message)
        except BodyTooLarge:
            return self.error(req, 413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")

    def _handle(self, req: Request) -> Response:
        fault = req.fault
        if fault is not None and fault.kind.isdigit():
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            code, text = {
                429: ("TooManyRequests", "Too many requests."),
                500: ("InternalServerError", "An internal server error occurred."),
                503: ("ServiceUnavailable", "Service is temporarily unavailable. Please retry."),
                504: ("GatewayTimeout", "The gateway did not receive a timely response."),
            }.get(int(fault.kind), ("UnknownError", "Error."))
            raise GraphError(int(fault.kind), code, text, extra)
        m = UPLOAD_PATH.match(req.path)
        if m:
            return self.upload(req, m.group("user"), m.group("msg"), m.group("sid"))
        if not req.path.startswith("/v1.0/"):
            version = req.path.strip("/").split("/")[0]
            if version in ("beta",):
                raise GraphError(400, "BadRequest", "The sandbox only serves v1.0.")
            raise GraphError(400, "BadRequest", f"Invalid version: {version}")
        token = self._token(req)
        app_match = APPLICATION_PATH.match(req.path)
        if app_match and req.method == "GET":
            return self.get_application(req, token, app_match.group("app_id"))
        if req.path == "/v1.0/me" or req.path.startswith("/v1.0/me/"):
            raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        m = USER_PATH.match(req.path)
        if not m:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{req.path.split('/')[2]}'.")
        ref = unquote(m.group("user"))
        rest = m.group("rest") or ""
        if rest in ("", "/"):
            return self.get_user(req, token, ref)
        mb = self.state.mailbox(token.tenant_id, ref)
        if mb is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        if not mb.licensed:
            raise GraphError(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        self._policy(token, mb)
        token = self._with_rbac(token, mb)
        return self._with_slot(req, token, mb, lambda: self._route(req, token, mb, rest))

    def _route(self, req: Request, token: TokenInfo, mb: Mailbox, rest: str) -> Response:
        parts = [unquote(p) for p in rest.strip("/").split("/")]
        method = req.method
        low = [p.lower() for p in parts]
        if low == ["sendmail"] and method == "POST":
            return self.send_mail(req, token, mb)
        if low == ["messages"] and method == "POST":
            return self.create_draft(req, token, mb)
        if low == ["messages"] and method == "GET":
            return self.list_messages(req, token, mb, None)
        if len(parts) == 2 and low[0] == "messages":
            if method == "DELETE":
                return self.delete_message(req, token, mb, parts[1])
            if method == "GET":
                return self.get_message(req, token, mb, parts[1])
        if len(parts) == 3 and low[0] == "messages" and low[2] == "send" and method == "POST":
            return self.send_draft(req, token, mb, parts[1])
        if len(parts) == 3 and low[0] == "messages" and low[2] == "attachments" and method == "POST":
            return self.add_attachment(req, token, mb, parts[1])
        if (
            len(parts) == 4
            and low[0] == "messages"
            and low[2] == "attachments"
            and low[3] == "createuploadsession"
            and method == "POST"
        ):
            return self.create_upload_session(req, token, mb, parts[1])
        if low and low[0].startswith("mailfolders"):
            folder = folder_name(parts)
            if folder is not None:
                if len(parts) == (1 if "(" in parts[0] else 2) and method == "GET":
                    return self.get_folder(req, token, mb, folder)
                if low[-1] == "messages" and method == "GET":
                    return self.list_messages(req, token, mb, folder)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{parts[-1] if parts else ''}'.")
