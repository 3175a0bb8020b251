"""Graph reads: the directory user, messages, folders and the Sent Items lookup."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any
from urllib.parse import quote

from .graph_core import FOLDERS, READ_ROLES, USER_ROLES, GraphError, message_json
from .graph_drafts import GraphDrafts
from .odata import ODataError, apply_select, parse_expand, parse_filter
from .server import Request, Response
from .state import Mailbox, SentMessage, TokenInfo, utcnow


class GraphReading(GraphDrafts):
    """Reading: the user object, a message, folders and the Sent Items lookup."""

    def get_user(self, req: Request, token: TokenInfo, ref: str) -> Response:
        if not (token.roles & USER_ROLES):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        mb = self.state.mailbox(token.tenant_id, ref)
        if mb is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
            )
        return self._ok(
            req,
            200,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#users/$entity",
                "businessPhones": [],
                "displayName": mb.display_name,
                "givenName": None,
                "jobTitle": None,
                "mail": mb.address,
                "mobilePhone": None,
                "officeLocation": None,
                "preferredLanguage": "de-DE",
                "surname": None,
                "userPrincipalName": mb.address,
                "id": mb.object_id,
            },
        )

    def get_message(self, req: Request, token: TokenInfo, mb: Mailbox, msg_id: str) -> Response:
        self._need(token, READ_ROLES)
        with self.state.lock:
            d = self.state.drafts.get(msg_id)
            sent = next(
                (s for s in self.state.sent if s.id == msg_id and s.mailbox == mb.address and self._visible(s)), None
            )
        if d is not None and d.mailbox == mb.address:
            item = self._draft_json(req, mb, d)
        elif sent is not None:
            item = message_json(sent.id, sent.message, sent.sent_at, sent.sent_at, bool(sent.attachments), False)
        else:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return self._ok(req, 200, apply_select(item, req.query.get("$select")))

    def _visible(self, s: SentMessage) -> bool:
        return s.saved_to_sent_items and ((utcnow() - s.sent_at).total_seconds() >= self.state.sent_items_delay)

    def get_folder(self, req: Request, token: TokenInfo, mb: Mailbox, folder: str) -> Response:
        self._need(token, READ_ROLES)
        items = self._folder_items(mb, folder)
        return self._ok(
            req,
            200,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')/mailFolders/$entity",
                "id": folder_id(mb, folder),
                "displayName": FOLDERS[folder],
                "parentFolderId": folder_id(mb, "root"),
                "childFolderCount": 0,
                "unreadItemCount": 0,
                "totalItemCount": len(items),
                "sizeInBytes": 0,
                "isHidden": False,
            },
        )

    def _folder_items(self, mb: Mailbox, folder: str | None) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
        out: list[tuple[dict[str, Any], list[dict[str, str]]]] = []
        with self.state.lock:
            if folder in (None, "sentitems"):
                for s in self.state.sent:
                    if s.mailbox == mb.address and self._visible(s):
                        out.append(
                            (
                                message_json(
                                    s.id,
                                    s.message,
                                    s.sent_at,
                                    s.sent_at,
                                    bool(s.attachments),
                                    False,
                                    parent=folder_id(mb, "sentitems"),
                                ),
                                list(s.message.get("singleValueExtendedProperties") or []),
                            )
                        )
            if folder in (None, "drafts"):
                for d in self.state.drafts.values():
                    if d.mailbox == mb.address:
                        out.append(
                            (
                                message_json(
                                    d.id,
                                    d.message,
                                    d.created,
                                    None,
                                    bool(d.attachments),
                                    True,
                                    parent=folder_id(mb, "drafts"),
                                ),
                                list(d.message.get("singleValueExtendedProperties") or []),
                            )
                        )
        return out

    def list_messages(self, req: Request, token: TokenInfo, mb: Mailbox, folder: str | None) -> Response:
        self._need(token, READ_ROLES)
        try:
            pred = parse_filter(req.query.get("$filter"))
            expand = parse_expand(req.query.get("$expand"))
        except ODataError as e:
            raise GraphError(400, "BadRequest", str(e)) from None
        try:
            top = int(req.query.get("$top", "10"))
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid $top value.") from None
        select = req.query.get("$select")
        value = []
        for item, props in self._folder_items(mb, folder):
            if not pred(item, props):
                continue
            out = apply_select(item, select)
            if expand is not None:
                out["singleValueExtendedProperties"] = [
                    p for p in props if not expand or p["id"].lower() == expand.lower()
                ]
            value.append(out)
        value.sort(key=lambda i: i.get("sentDateTime") or "", reverse=True)
        where = f"mailFolders('{folder}')/messages" if folder else "messages"
        return self._ok(
            req,
            200,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#users('{quote(mb.address)}')/{where}({select or ''})",
                "value": value[: max(0, top)],
            },
        )


def folder_name(parts: list[str]) -> str | None:
    """'mailFolders/sentitems/...' or "mailFolders('SentItems')/..." -> 'sentitems'."""
    first = parts[0]
    m = re.match(r"^mailFolders\('([^']+)'\)$", first, re.IGNORECASE)
    name = m.group(1) if m else (parts[1] if len(parts) > 1 else None)
    if name is None:
        return None
    name = name.lower()
    if name not in FOLDERS:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return name


def folder_id(mb: Mailbox, folder: str) -> str:
    return (
        "AAMkAG"
        + base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_URL, mb.object_id + folder).bytes * 3).decode("ascii")
        + "AAA="
    )
