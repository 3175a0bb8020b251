"""The OpenAPI 3.1 description of ``/api/v1`` (served at ``GET /api/v1/openapi.json``). A test
validates it and checks that every route of the app is described here and nothing else."""

from __future__ import annotations

from typing import Any

from . import __version__

_ERROR = {"$ref": "#/components/responses/Error"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    scope: str | None,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, "default": _ERROR}}
    if scope is None:
        op["security"] = []
    else:
        op["x-scope"] = scope
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query(name: str, kind: str = "string", *, many: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": {"type": kind}} if many else {"type": kind}
    return {"name": name, "in": "query", "required": False, "schema": schema, **({"explode": True} if many else {})}


_STR_LIST = {"type": "array", "items": {"type": "string"}}
_ANY_OBJ = {"type": "object", "additionalProperties": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["ok", "exit_code", "error"],
        "properties": {
            "ok": {"const": False},
            "exit_code": {"type": "integer"},
            "error": {
                "type": "object",
                "required": ["kind", "sent", "message", "hint", "details"],
                "properties": {
                    "kind": {"type": "string"},
                    "sent": {"type": ["boolean", "null"]},
                    "message": {"type": "string"},
                    "hint": {"type": ["string", "null"]},
                    "details": _ANY_OBJ,
                },
            },
            "problems": {"type": "array", "items": _ANY_OBJ},
        },
    },
    "Attachment": {
        "type": "object",
        "oneOf": [
            {
                "required": ["filename", "content_base64"],
                "properties": {
                    "filename": {"type": "string"},
                    "content_base64": {"type": "string", "contentEncoding": "base64"},
                    "content_type": {"type": "string"},
                },
            },
            {"required": ["path"], "properties": {"path": {"type": "string"}, "content_type": {"type": "string"}}},
        ],
    },
    "SendRequest": {
        "type": "object",
        "required": ["purpose"],
        "additionalProperties": False,
        "properties": {
            "purpose": {"type": "string"},
            "to": _STR_LIST,
            "cc": _STR_LIST,
            "bcc": _STR_LIST,
            "reply_to": _STR_LIST,
            "data": _ANY_OBJ,
            "attachments": {"type": "array", "items": _ref("Attachment")},
            "reference": {"type": ["string", "null"]},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "account": {"type": ["string", "null"]},
            "yes": {"type": "boolean", "description": "the caller confirmed (AbSys showed its dialog); as --yes"},
            "resend": {"type": "boolean", "description": "send again although the reference was sent; as --resend"},
        },
    },
    "SendResult": {
        "type": "object",
        "required": [
            "ok",
            "exit_code",
            "repeat",
            "status",
            "journal_id",
            "message_id",
            "sent_at",
            "transport_ids",
            "error",
            "recorder_failures",
        ],
        "properties": {
            "ok": {"type": "boolean"},
            "exit_code": {"type": "integer"},
            "repeat": {
                "type": "boolean",
                "description": "true: this reference was sent (or is on its way) before; the "
                "fields are the first send's, error is the duplicate notice",
            },
            "status": {"enum": ["queued", "sending", "sent", "failed", "unknown", "cancelled"]},
            "journal_id": {"type": "integer"},
            "message_id": {"type": "string"},
            "sent_at": {"type": ["string", "null"], "format": "date-time"},
            "transport_ids": {"type": "object"},
            "error": {"type": ["object", "null"]},
            "recorder_failures": {"type": "array", "items": _ANY_OBJ},
        },
    },
    "Preview": {
        "type": "object",
        "required": ["purpose", "account", "subject"],
        "properties": {
            "purpose": {"type": "string"},
            "account": {"type": "string"},
            "account_type": {"type": "string"},
            "reference": {"type": "string"},
            "from": {"type": ["string", "null"]},
            "to": _STR_LIST,
            "cc": _STR_LIST,
            "bcc": _STR_LIST,
            "reply_to": _STR_LIST,
            "subject": {"type": "string"},
            "text": {"type": ["string", "null"]},
            "html": {"type": ["string", "null"]},
            "attachments": {"type": "array", "items": _ANY_OBJ},
            "headers": {"type": "object"},
        },
    },
    "BatchRequest": {
        "type": "object",
        "required": ["purpose", "rows"],
        "additionalProperties": False,
        "properties": {
            "purpose": {"type": "string"},
            "yes": {"type": "boolean"},
            "resend": {"type": "boolean"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "one row as in a JSON Lines batch file; attachments as in SendRequest",
                },
            },
        },
    },
    "BatchProgress": {
        "type": "object",
        "required": ["batch", "running", "total", "counts"],
        "properties": {
            "batch": {"type": "string"},
            "running": {"type": "boolean"},
            "total": {"type": "integer"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "summary": {"type": ["object", "null"]},
            "error": {"type": ["object", "null"]},
        },
    },
    "Entry": {
        "type": "object",
        "required": ["id", "status", "reference", "purpose"],
        "properties": {
            "id": {"type": "integer"},
            "message_id": {"type": "string"},
            "purpose": {"type": "string"},
            "account": {"type": "string"},
            "account_type": {"type": "string"},
            "reference": {"type": "string"},
            "recipients": _STR_LIST,
            "subject": {"type": "string"},
            "status": {"type": "string"},
            "attempts": {"type": "integer"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "sent_at": {"type": ["string", "null"]},
            "transport_ids": {"type": "object"},
            "error": {"type": ["string", "null"]},
            "error_kind": {"type": ["string", "null"]},
            "batch": {"type": ["string", "null"]},
            "batch_row": {"type": ["integer", "null"]},
            "owner": {"type": ["string", "null"]},
        },
    },
    "Entries": {
        "type": "object",
        "required": ["entries"],
        "properties": {"entries": {"type": "array", "items": _ref("Entry")}},
    },
    "Saved": {
        "type": "object",
        "required": ["ok", "file", "action", "target", "changes", "warnings"],
        "properties": {
            "ok": {"const": True},
            "file": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "changes": {"type": "object", "description": "what changed; a secret only as where it is kept"},
            "warnings": {"type": "array", "items": _ANY_OBJ},
        },
    },
    "AccountChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string"},
            "values": {"type": "object", "description": "fields; null removes one"},
            "secrets": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "secret fields; stored in the keyring or a 0600 file, never in the YAML",
            },
            "from_name": {"type": "string"},
            "limits": {"type": "object"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["job", "done", "notes"],
        "properties": {
            "job": {"type": "string"},
            "account": {"type": "string"},
            "action": {"type": "string"},
            "done": {"type": "boolean"},
            "notes": _STR_LIST,
            "result": {},
            "error": {"type": ["object", "null"]},
            "asking": {"type": ["string", "null"], "description": "the prompt while the job waits for a line"},
        },
    },
    "TemplateTrial": {
        "type": "object",
        "required": ["ok", "unknown", "problems", "preview", "text"],
        "properties": {
            "ok": {"type": "boolean"},
            "unknown": {
                "type": "array",
                "items": {"type": "string"},
                "description": "placeholder names no plugin and no data field offers",
            },
            "problems": {"type": "array", "items": _ANY_OBJ, "description": "config check's problems of this template"},
            "error": {"type": ["object", "null"]},
            "preview": {"oneOf": [_ref("Preview"), {"type": "null"}]},
            "text": {"type": ["string", "null"], "description": "the preview exactly as 'ccm-mail preview' prints it"},
        },
    },
}


def document() -> dict[str, Any]:
    ok = {"200": _json(_ANY_OBJ)}
    p = "/api/v1"
    paths: dict[str, Any] = {
        f"{p}/health": {
            "get": _op(
                "Is the service up? (no key; says nothing else)",
                None,
                {"200": _json({"type": "object", "properties": {"status": {"const": "ok"}}})},
            )
        },
        f"{p}/openapi.json": {"get": _op("This description", "send", ok)},
        f"{p}/session": {
            "post": _op(
                "A browser session from a key: HttpOnly SameSite=Strict cookie, and the CSRF token every "
                "changing request repeats in X-CSRF-Token",
                "send",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"scope": {"type": "string"}, "csrf_token": {"type": "string"}},
                        }
                    )
                },
            ),
            "get": _op(
                "The session (or key) in use: its scope and, for a session, its CSRF token (for the pages)",
                "send",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "scope": {"type": "string"},
                                "who": {"type": "string"},
                                "csrf_token": {"type": ["string", "null"]},
                                "expires_in": {"type": ["integer", "null"]},
                            },
                        }
                    )
                },
            ),
            "delete": _op("End the browser session", "send", ok),
        },
        f"{p}/session/token": {
            "post": _op(
                "A settings session from the one-time login link 'ccm-mail serve' prints (no key; the token works once, "
                "for an hour)",
                None,
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"scope": {"type": "string"}, "csrf_token": {"type": "string"}},
                        }
                    )
                },
                body={
                    "type": "object",
                    "required": ["token"],
                    "additionalProperties": False,
                    "properties": {"token": {"type": "string"}},
                },
            )
        },
        f"{p}/preview": {
            "post": _op(
                "What the confirmation dialog shows; nothing is sent or journaled",
                "send",
                {"200": _json(_ref("Preview"))},
                body=_ref("SendRequest"),
            )
        },
        f"{p}/send": {
            "post": _op(
                "Send one message (idempotent by purpose + reference)",
                "send",
                {"200": _json(_ref("SendResult"))},
                body=_ref("SendRequest"),
            )
        },
        f"{p}/batches": {
            "post": _op(
                "Submit a batch (validated whole, queued, sent at the mailboxes' pace); the same "
                "rows again continue the same batch",
                "send",
                {"202": _json(_ref("BatchProgress"), "accepted")},
                body=_ref("BatchRequest"),
            )
        },
        f"{p}/batches/{{batch_id}}": {
            "get": _op(
                "A batch's progress", "send", {"200": _json(_ref("BatchProgress"))}, params=[_path_param("batch_id")]
            )
        },
        f"{p}/journal": {
            "get": _op(
                "Query the journal, newest first",
                "send",
                {"200": _json(_ref("Entries"))},
                params=[
                    _query("reference"),
                    _query("reference_contains"),
                    _query("recipient"),
                    _query("status", many=True),
                    _query("purpose"),
                    _query("since"),
                    _query("until"),
                    _query("batch"),
                    _query("limit", "integer"),
                ],
            )
        },
        f"{p}/journal/{{entry_id}}": {
            "get": _op("One entry with its history", "send", ok, params=[_path_param("entry_id", "integer")])
        },
        f"{p}/outbox": {
            "get": _op("What is queued, sending, unknown or failed", "send", {"200": _json(_ref("Entries"))})
        },
        f"{p}/outbox/check": {"post": _op("Look up unknown outcomes at the provider now", "send", ok)},
        f"{p}/outbox/{{entry_id}}/resolve": {
            "post": _op(
                "The operator's decision: sent, resend or drop",
                "send",
                ok,
                params=[_path_param("entry_id", "integer")],
                body={
                    "type": "object",
                    "required": ["action"],
                    "properties": {"action": {"enum": ["sent", "resend", "drop"]}},
                },
            )
        },
        f"{p}/outbox/retry": {
            "post": _op(
                "Send failed messages again (all, or the given ids)",
                "send",
                ok,
                body={"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}}}},
            )
        },
        f"{p}/accounts": {
            "get": _op(
                "The accounts (secrets as ***), each with its credential's expiry and a warning within 30 days of it",
                "settings",
                ok,
            )
        },
        f"{p}/accounts/types": {"get": _op("Account types and their form fields", "send", ok)},
        f"{p}/accounts/{{name}}/test": {"post": _op("Verbindung testen", "settings", ok, params=[_path_param("name")])},
        f"{p}/accounts/{{name}}/consent": {
            "post": _op(
                "Admin Berechtigung erteilen (a job: the consent URL is in its notes)",
                "settings",
                {"202": _json(_ref("Job"), "started")},
                params=[_path_param("name")],
                body={"type": "object", "properties": {"timeout": {"type": "number"}}},
            )
        },
        f"{p}/jobs/{{job_id}}": {
            "get": _op("An admin job's state", "settings", {"200": _json(_ref("Job"))}, params=[_path_param("job_id")])
        },
        f"{p}/jobs/{{job_id}}/answer": {
            "post": _op(
                "A line for a job that asks (consent: the address from the admin's browser at another computer, or "
                "empty to have consent proven by a new token)",
                "settings",
                {"202": _json(_ref("Job"), "taken")},
                params=[_path_param("job_id")],
                body={"type": "object", "required": ["line"], "properties": {"line": {"type": "string"}}},
            )
        },
        f"{p}/placeholders": {
            "get": _op(
                "Placeholders for click-insert, per purpose, and the ones each purpose's "
                "template uses (the data a send has to bring)",
                "send",
                ok,
                params=[_query("purpose")],
            )
        },
        f"{p}/settings": {
            "get": _op("The settings as the file has them (secrets only as where they are kept)", "settings", ok)
        },
        f"{p}/settings/check": {"get": _op("config check of the file in use", "settings", ok)},
        f"{p}/settings/accounts/{{name}}": {
            "put": _op(
                "Save an account (validated like config check; secrets to the keyring or a 0600 file)",
                "settings",
                {"200": _json(_ref("Saved"))},
                body=_ref("AccountChange"),
                params=[_path_param("name")],
            ),
            "delete": _op("Remove an account", "settings", {"200": _json(_ref("Saved"))}, params=[_path_param("name")]),
        },
        f"{p}/settings/purposes/{{purpose}}": {
            "put": _op(
                "Assign a purpose's account (or pool)",
                "settings",
                {"200": _json(_ref("Saved"))},
                params=[_path_param("purpose")],
                body={
                    "type": "object",
                    "required": ["accounts"],
                    "properties": {
                        "accounts": _STR_LIST,
                        "options": {
                            "type": "object",
                            "description": "the purpose's defaults: reply_to, cc, bcc, from, "
                            "save_to_sent, request_read_receipt, request_delivery_receipt, einvoice, archive "
                            "{folder, retention_years}; null removes one",
                        },
                    },
                },
            ),
            "delete": _op(
                "Take away the purpose's own account (invoices then go through the E-Service account)",
                "settings",
                {"200": _json(_ref("Saved"))},
                params=[_path_param("purpose")],
            ),
        },
        f"{p}/settings/templates/{{purpose}}/preview": {
            "post": _op(
                "A template as edited, not saved: checked like config check and rendered with the placeholders' example "
                "data as 'ccm-mail preview' shows it",
                "settings",
                {"200": _json(_ref("TemplateTrial"))},
                params=[_path_param("purpose")],
                body={
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "subject": {"type": "string"},
                        "body": {"type": "string"},
                        "format": {"enum": ["text", "html"]},
                        "reference": {"type": "string"},
                        "to": _STR_LIST,
                        "data": {"type": "object", "description": "values instead of the examples"},
                    },
                },
            )
        },
        f"{p}/settings/templates/{{purpose}}": {
            "put": _op(
                "Save a purpose's template",
                "settings",
                {"200": _json(_ref("Saved"))},
                params=[_path_param("purpose")],
                body={
                    "type": "object",
                    "properties": {
                        "subject": {"type": "string"},
                        "body": {"type": "string"},
                        "format": {"enum": ["text", "html"]},
                        "reference": {"type": "string"},
                    },
                },
            )
        },
        f"{p}/settings/audit": {
            "get": _op(
                "Who changed what when (never a secret), newest first",
                "settings",
                ok,
                params=[_query("limit", "integer")],
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ccm-mail service",
            "version": __version__,
            "description": "ccm-mail serve: the JSON API for AbSys. Errors are the CLI's --json error document; "
            "texts in German or English by Accept-Language. Keys: 'send' (workstations) and "
            "'settings' (admins; may send too).",
        },
        "servers": [{"url": "http://127.0.0.1:8410"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "ccm_session"},
            },
            "responses": {"Error": _json(_ref("Error"), "an error: the CLI's --json error document")},
            "schemas": SCHEMAS,
        },
    }
