"""Graph sending: ``sendMail`` (JSON and MIME) and the checks Exchange applies at submission."""

from __future__ import annotations

import json
import math
import re
import secrets
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from . import mime
from .graph_core import MAX_REQUEST, SEND_ROLES, GraphCore, GraphError, new_id
from .messages import GraphBadRequest, check_sendable, mime_size, validate_message
from .server import Request, Response
from .state import Mailbox, SentAttachment, SentMessage, TokenInfo, graph_time, utcnow


class GraphSending(GraphCore):
    """sendMail and the submission checks shared with sending a draft."""

    def send_mail(self, req: Request, token: TokenInfo, mb: Mailbox) -> Response:
        self._need(token, SEND_ROLES)
        if (req.header("Content-Type") or "").lower().startswith("text/plain"):
            return self.send_mime(req, mb)
        payload = self._json_body(req)
        if not isinstance(payload, dict):
            raise GraphBadRequest("RequestBodyRead", "An object was expected as request payload.")
        for k in payload:
            if k.lower() not in ("message", "savetosentitems"):
                raise GraphBadRequest(
                    "RequestBodyRead",
                    f"The parameter '{k}' in the request "
                    f"payload is not a valid parameter for the operation 'sendMail'.",
                )
        lower = {k.lower(): v for k, v in payload.items()}
        if "message" not in lower:
            raise GraphBadRequest("ErrorInvalidParameter", "Required parameter 'Message' is missing.")
        save = lower.get("savetosentitems", True)
        if isinstance(save, str) and save.lower() in ("true", "false"):
            save = save.lower() == "true"  # Microsoft's own example sends "false" as a string
        if not isinstance(save, bool):
            raise GraphBadRequest(
                "RequestBodyRead", f"Cannot convert the literal '{save}' to the expected type 'Edm.Boolean'."
            )
        msg = lower["message"]
        atts = validate_message(msg, for_send=True)
        self._check_send_as(mb, msg)
        body_len = len((msg.get("body") or {}).get("content") or "")
        self._check_size(mb, body_len, [len(a.data) for a in atts])
        self._check_rate(mb)
        self._check_quota(mb, msg)
        stored = {k: v for k, v in msg.items() if k != "attachments"}
        sent_atts = [self._keep_inline(mb, a) for a in atts]
        self._accept(req, mb, stored, sent_atts, save, "sendMail")
        return self._ok(req, 202)

    def send_mime(self, req: Request, mb: Mailbox) -> Response:
        raw = mime.decode(req.read_body(MAX_REQUEST))
        msg, atts = mime.to_graph(raw)
        check_sendable(msg)
        self._check_send_as(mb, msg)
        if len(raw) > mb.max_message_size:  # a MIME message's size is simply its length
            raise GraphError(
                400,
                "ErrorMessageSizeExceeded",
                "The message exceeds the maximum supported size., Cannot save changes made to an item to store.",
            )
        self._check_rate(mb)
        self._check_quota(mb, msg)
        sent = self._accept(req, mb, msg, [self._keep_inline(mb, a) for a in atts], True, "mime")
        sent.mime = raw
        return self._ok(req, 202)

    def _check_send_as(self, mb: Mailbox, msg: dict[str, Any]) -> None:
        allowed = {mb.address.lower(), *(a.lower() for a in mb.send_as)}
        for prop in ("from", "sender"):
            value = msg.get(prop)
            if value:
                addr = (value["emailAddress"].get("address") or "").lower()
                if addr not in allowed:
                    raise GraphError(
                        403,
                        "ErrorSendAsDenied",
                        "The user account which was used to submit this request does "
                        "not have the right to send mail on behalf of the specified "
                        "sending account., Cannot submit message.",
                    )

    @staticmethod
    def _check_size(mb: Mailbox, body_len: int, sizes: list[int]) -> None:
        if mime_size(body_len, sizes) > mb.max_message_size:
            raise GraphError(
                400,
                "ErrorMessageSizeExceeded",
                "The message exceeds the maximum supported size., Cannot save changes made to an item to store.",
            )

    def _check_quota(self, mb: Mailbox, msg: dict[str, Any]) -> None:
        """Exchange's daily recipient limit: exceeding it blocks the mailbox for 24 hours."""
        now = time.time()
        count = sum(len(msg.get(k) or []) for k in ("toRecipients", "ccRecipients", "bccRecipients"))
        with self.state.lock:
            blocked = now < mb.blocked_until
            if not blocked and mb.recipients_in_last_day(now) + count > mb.daily_recipient_limit:
                mb.blocked_until = now + 86400
                blocked = True
            if not blocked:
                mb.note_recipients(now, count)
        if blocked:
            raise GraphError(
                500,
                "ErrorSubmissionQuotaExceeded",
                "The message can't be submitted because the sender's submission quota "
                "was exceeded. Please try again later.",
            )

    def _check_rate(self, mb: Mailbox) -> None:
        wait = self.state.rate_wait(mb)
        if wait > 0:
            raise GraphError(
                429,
                "ApplicationThrottled",
                "Application is over its MessageRate limit.",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def _accept(
        self,
        req: Request,
        mb: Mailbox,
        msg: dict[str, Any],
        atts: list[SentAttachment],
        save: bool,
        route: str,
        message_id: str | None = None,
    ) -> SentMessage:
        now = utcnow()
        imid = msg.get("internetMessageId") or (
            f"<{secrets.token_hex(12).upper()}@{secrets.token_hex(6).upper()}.eurprd04.prod.outlook.com>"
        )
        full = dict(msg)
        full.update(
            {"internetMessageId": imid, "sentDateTime": graph_time(now), "hasAttachments": bool(atts), "isDraft": False}
        )
        full.setdefault("from", {"emailAddress": {"name": mb.display_name, "address": mb.address}})
        full.setdefault("sender", full["from"])
        sent = SentMessage(
            message_id or new_id(),
            mb.address,
            imid,
            now,
            full,
            atts,
            save,
            route,
            req.host,
            req.header("client-request-id"),
        )
        with self.state.lock:
            self.state.note_send(mb)
            self.state.sent.append(sent)
        if self.state.write_mailbox_files:
            write_files(self.state.state_dir, sent)
        return sent


def write_files(state_dir: Path, sent: SentMessage) -> None:
    """Standalone mode: one folder per message with message.json and the attachment files."""
    safe = re.sub(r"[^A-Za-z0-9@._-]", "_", sent.mailbox)
    folder = (
        state_dir
        / "mailboxes"
        / safe
        / (sent.sent_at.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid5(uuid.NAMESPACE_URL, sent.id).hex[:12])
    )
    (folder / "attachments").mkdir(parents=True, exist_ok=True)
    names = []
    for i, a in enumerate(sent.attachments):
        fname = f"{i:02d}-" + re.sub(r"[^A-Za-z0-9._-]", "_", a.name)
        if a.path is not None:
            shutil.copyfile(a.path, folder / "attachments" / fname)  # big: never all in memory
        else:
            (folder / "attachments" / fname).write_bytes(a.data)
        names.append(
            {
                "name": a.name,
                "contentType": a.content_type,
                "isInline": a.is_inline,
                "contentId": a.content_id,
                "size": a.size,
                "file": f"attachments/{fname}",
            }
        )
    doc = {
        "id": sent.id,
        "mailbox": sent.mailbox,
        "internetMessageId": sent.internet_message_id,
        "sentDateTime": graph_time(sent.sent_at),
        "route": sent.route,
        "savedToSentItems": sent.saved_to_sent_items,
        "message": sent.message,
        "attachments": names,
    }
    (folder / "message.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), "utf-8")
