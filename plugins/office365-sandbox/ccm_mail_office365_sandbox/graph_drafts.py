"""Graph drafts and upload sessions: the route for attachments of 3 to 150 MB."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .graph_core import (
    CONTENT_RANGE,
    MAX_CHUNK,
    MAX_REQUEST,
    MAX_UPLOAD,
    MIN_UPLOAD,
    SEND_ROLES,
    UPLOAD_LIFETIME,
    WRITE_ROLES,
    GraphError,
    message_json,
    new_id,
)
from .graph_send import GraphSending
from .messages import GraphBadRequest, check_sendable, decode_attachment, validate_message
from .server import Request, Response
from .state import Draft, Mailbox, SentAttachment, TokenInfo, UploadSession, graph_time, utcnow


class GraphDrafts(GraphSending):
    """Drafts, small attachments, upload sessions and sending or deleting a draft."""

    def create_draft(self, req: Request, token: TokenInfo, mb: Mailbox) -> Response:
        self._need(token, WRITE_ROLES)
        msg = self._json_body(req)
        atts = validate_message(msg, for_send=False)
        self._check_send_as(mb, msg)
        draft = Draft(
            new_id(),
            mb.address,
            {k: v for k, v in msg.items() if k != "attachments"},
            utcnow(),
            [self._keep_inline(mb, a) for a in atts],
        )
        if "internetMessageId" not in draft.message:
            draft.message["internetMessageId"] = (
                f"<{secrets.token_hex(12).upper()}@{secrets.token_hex(6).upper()}.eurprd04.prod.outlook.com>"
            )
        with self.state.lock:
            self.state.drafts[draft.id] = draft
        return self._ok(req, 201, self._draft_json(req, mb, draft))

    def _draft_json(self, req: Request, mb: Mailbox, d: Draft) -> dict[str, Any]:
        out = message_json(d.id, d.message, d.created, None, bool(d.attachments), True)
        out["@odata.context"] = f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')/messages/$entity"
        return out

    def _draft(self, mb: Mailbox, draft_id: str) -> Draft:
        with self.state.lock:
            d = self.state.drafts.get(draft_id)
        if d is None or d.mailbox != mb.address:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return d

    def add_attachment(self, req: Request, token: TokenInfo, mb: Mailbox, draft_id: str) -> Response:
        self._need(token, WRITE_ROLES)
        d = self._draft(mb, draft_id)
        att = decode_attachment(self._json_body(req))
        sa = self._keep_inline(mb, att)
        with self.state.lock:
            d.attachments.append(sa)
        return self._ok(
            req,
            201,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')"
                f"/messages('{d.id}')/attachments/$entity",
                "@odata.type": "#microsoft.graph.fileAttachment",
                "id": sa.attachment_id,
                "lastModifiedDateTime": graph_time(utcnow()),
                "name": sa.name,
                "contentType": sa.content_type,
                "size": sa.size,
                "isInline": sa.is_inline,
                "contentId": sa.content_id,
                "contentLocation": None,
            },
        )

    def create_upload_session(self, req: Request, token: TokenInfo, mb: Mailbox, draft_id: str) -> Response:
        self._need(token, WRITE_ROLES)
        d = self._draft(mb, draft_id)
        payload = self._json_body(req)
        item = None
        if isinstance(payload, dict):
            item = next((v for k, v in payload.items() if k.lower() == "attachmentitem"), None)
        if not isinstance(item, dict):
            raise GraphBadRequest("ErrorInvalidParameter", "Required parameter 'AttachmentItem' is missing.")
        if str(item.get("attachmentType", "")).lower() != "file":
            raise GraphBadRequest(
                "RequestBodyRead",
                f"Cannot convert the literal "
                f"'{item.get('attachmentType')}' to the expected type "
                f"'microsoft.graph.attachmentType'.",
            )
        name, size = item.get("name"), item.get("size")
        if not isinstance(name, str) or not name:
            raise GraphBadRequest("ErrorInvalidParameter", "The attachment 'name' is required.")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise GraphBadRequest("ErrorInvalidParameter", "The attachment 'size' must be a positive number.")
        if size < MIN_UPLOAD:
            raise GraphBadRequest(
                "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                "Attachment size must be greater than the minimum size.",
            )
        if size > MAX_UPLOAD:
            raise GraphBadRequest("ErrorAttachmentSizeLimitExceeded", "The attachment is larger than 150 MB.")
        sid = secrets.token_hex(16)
        expires = utcnow() + UPLOAD_LIFETIME
        path = self._blob_path("upload-" + sid)
        path.write_bytes(b"")
        session = UploadSession(
            sid,
            secrets.token_urlsafe(48),
            mb.address,
            d.id,
            name,
            size,
            str(item.get("contentType") or "application/octet-stream"),
            bool(item.get("isInline", False)),
            item.get("contentId"),
            path,
            time.time() + UPLOAD_LIFETIME.total_seconds(),
        )
        session.client_id = token.client_id
        with self.state.lock:
            self.state.uploads[sid] = session
            self._upload_locks[sid] = threading.Lock()
        url = (
            f"{req.base_url}/api/v2.0/Users('{mb.object_id}@{mb.tenant_id}')"
            f"/Messages('{d.id}')/AttachmentSessions('{sid}')?authtoken={session.token}"
        )
        return self._ok(
            req,
            201,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#microsoft.graph.uploadSession",
                "uploadUrl": url,
                "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                "nextExpectedRanges": ["0-"],
            },
        )

    def upload(self, req: Request, user: str, draft_id: str, sid: str) -> Response:
        with self.state.lock:
            session = self.state.uploads.get(sid)
        if session is None or session.draft_id != draft_id or time.time() > session.expires_at:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if req.header("Authorization"):
            raise GraphError(
                401,
                "InvalidAudienceForResource",
                f"The audience claim value is invalid for current resource. Audience "
                f"claim is 'https://graph.microsoft.com', request url is "
                f"'{req.base_url}{req.path}' and resource type is 'Attachment'.",
            )
        if not secrets.compare_digest(req.query.get("authtoken", ""), session.token):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        with self.state.lock:
            mb = self.state.mailboxes.get(session.mailbox)
        assert mb is not None
        if req.method == "DELETE":
            with self.state.lock:
                self.state.uploads.pop(sid, None)
            session.path.unlink(missing_ok=True)
            return self._ok(req, 204)
        if req.method != "PUT":
            raise GraphError(405, "ErrorInvalidRequest", "The HTTP method is not allowed.")
        return self._with_slot(req, session.client_id, mb, lambda: self._put_chunk(req, mb, session))

    def _put_chunk(self, req: Request, mb: Mailbox, session: UploadSession) -> Response:
        if req.chunked or req.header("Content-Length") is None:
            raise GraphError(411, "LengthRequired", "A Content-Length header is required.")
        length = req.content_length or 0
        if length > MAX_CHUNK:
            raise GraphError(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
        m = CONTENT_RANGE.match(req.header("Content-Range") or "")
        if not m:
            raise GraphError(
                400,
                "InvalidContentRange",
                "The Content-Range header is missing or malformed; expected 'bytes {start}-{end}/{total}'.",
            )
        start, end, total = (int(g) for g in m.groups())
        if total != session.size:
            raise GraphError(
                400,
                "InvalidContentRange",
                f"The total size {total} in Content-Range does not match the attachment size {session.size}.",
            )
        if end < start or end - start + 1 != length or end >= total:
            raise GraphError(
                400, "InvalidContentRange", "The Content-Range does not match the Content-Length of the request."
            )
        lock = self._upload_locks[session.id]
        with lock:
            if session.done:
                raise GraphError(400, "ErrorInvalidOperation", "The upload session is already complete.")
            if start != session.next_offset:
                raise GraphError(
                    416,
                    "InvalidRange",
                    f"The range {start}-{end} is not the next expected range; the "
                    f"next expected range starts at {session.next_offset}.",
                )
            with open(session.path, "r+b") as f:
                f.seek(start)
                written = req.stream_to(f)
            if written != length:
                raise GraphError(400, "InvalidContentRange", "The request body was incomplete.")
            session.next_offset = end + 1
            expires = datetime.fromtimestamp(session.expires_at, UTC)
            if session.next_offset < session.size:
                return self._ok(
                    req,
                    200,
                    {
                        "@odata.context": f"{req.base_url}/api/v2.0/$metadata#Users('{mb.object_id}')"
                        f"/Messages('{session.draft_id}')/AttachmentSessions/$entity",
                        # this casing mix is what Microsoft's walkthrough shows for the PUT answer
                        "ExpirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                        "nextExpectedRanges": [str(session.next_offset)],
                    },
                )
            session.done = True
            att = SentAttachment(
                session.name,
                session.content_type,
                session.is_inline,
                session.content_id,
                session.size,
                new_id(),
                path=session.path,
            )
            with self.state.lock:
                draft = self.state.drafts.get(session.draft_id)
                if draft is not None:
                    draft.attachments.append(att)
                self.state.uploads.pop(session.id, None)
        location = (
            f"{req.base_url}/api/v2.0/Users('{mb.object_id}@{mb.tenant_id}')"
            f"/Messages('{session.draft_id}')/Attachments('{att.attachment_id}')"
        )
        return self._ok(req, 201, None, {"Location": location})

    def send_draft(self, req: Request, token: TokenInfo, mb: Mailbox, draft_id: str) -> Response:
        self._need(token, SEND_ROLES)
        if req.header("Content-Length") is None and not req.chunked:
            raise GraphError(411, "LengthRequired", "A Content-Length header is required.")
        req.read_body(MAX_REQUEST)
        d = self._draft(mb, draft_id)
        check_sendable(d.message)
        self._check_send_as(mb, d.message)
        body_len = len((d.message.get("body") or {}).get("content") or "")
        self._check_size(mb, body_len, [a.size for a in d.attachments])
        self._check_rate(mb)
        self._check_quota(mb, d.message)
        with self.state.lock:
            if self.state.drafts.pop(draft_id, None) is None:
                raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        self._accept(req, mb, d.message, d.attachments, True, "draft", message_id=d.id)
        return self._ok(req, 202)

    def delete_message(self, req: Request, token: TokenInfo, mb: Mailbox, msg_id: str) -> Response:
        self._need(token, WRITE_ROLES)
        with self.state.lock:
            d = self.state.drafts.get(msg_id)
            if d is not None and d.mailbox == mb.address:
                del self.state.drafts[msg_id]
                for a in d.attachments:
                    if a.path is not None:
                        a.path.unlink(missing_ok=True)
                return self._ok(req, 204)
            for s in self.state.sent:
                if s.id == msg_id and s.mailbox == mb.address and s.saved_to_sent_items:
                    s.saved_to_sent_items = False  # gone from Sent Items, but it was sent
                    return self._ok(req, 204)
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
