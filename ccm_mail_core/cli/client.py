"""``ccm-mail --server URL send|preview …``: the same command line, sent to a ``ccm-mail serve``
service instead of run here, with the same output (the service answers with the ``--json``
document the local command would print) and the same exit codes. AbSys's per-invoice call stays
the same command; only ``CCM_MAIL_SERVER`` and the API key are new.

Cheap on purpose: the standard library's HTTP client, no plugin, no YAML, no provider library
(a cold call costs the interpreter's start and one loopback request).

Exactly once: a request that may have reached the service is never repeated here. Repeating
the same command later is safe when the purpose has a reference (invoices: the invoice number):
the service then answers with the first send's outcome (exit 5, as locally) instead of sending
again.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import Attachment, CcmMailError, T

from ..exit_codes import ExitCode
from .argv import API_KEY_ENV, API_KEY_FILE_ENV, SERVER_ENV, explicit_lang
from .output import Out
from .parser import Parser, helper
from .send_args import add_confirm_arguments, add_send_arguments, not_sent_line, render_error, send_kwargs, sent_lines

#: seconds to wait for the service's answer (a send may wait for the mailbox's pace first)
TIMEOUT_ENV = "CCM_MAIL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
#: a CA bundle for a service with its own certificate (https)
CA_ENV = "CCM_MAIL_SERVER_CA"


class ServiceError(CcmMailError):
    """The service could not be asked, or its answer cannot be read."""

    kind = "service"


def build_parser(lang: str, *, json_errors: bool) -> Parser:
    from . import common_options

    h = helper(lang)
    parser = Parser(prog="ccm-mail", parents=[common_options(h, suppress=False)], lang=lang, json_errors=json_errors)
    sub = parser.add_subparsers(dest="command", required=True, metavar=h("BEFEHL", "COMMAND"))
    common = common_options(h, suppress=True)
    pv = sub.add_parser(
        "preview",
        parents=[common],
        help=h("zeigen, was der Bestätigungsdialog zeigt", "show what the confirmation dialog shows"),
    )
    add_send_arguments(pv, h)
    sd = sub.add_parser("send", parents=[common], help=h("eine Mail senden", "send one mail"))
    add_send_arguments(sd, h)
    add_confirm_arguments(sd, h)
    return parser


def main(argv: list[str], url: str) -> int:
    lang = explicit_lang(argv)
    args = build_parser(lang or "de", json_errors="--json" in argv).parse_args(argv)
    out = Out(json_output=bool(args.json), lang=lang or "de")
    try:
        return run(args, out, url.rstrip("/"), lang)
    except CcmMailError as exc:
        code = (
            ExitCode.UNKNOWN
            if exc.sent is None
            else (ExitCode.SEND_FAILED if isinstance(exc, ServiceError) else ExitCode.CONFIG)
        )
        return out.error(exc, code)
    except KeyboardInterrupt:
        out.note(out.t("Abgebrochen.", "Interrupted."))
        return 130


def run(args: argparse.Namespace, out: Out, url: str, lang: str | None) -> int:
    kwargs = send_kwargs(args)
    body: dict[str, Any] = {
        "purpose": args.purpose,
        **kwargs,
        "attachments": [_upload(path) for path in kwargs["attachments"]],
    }
    if args.command == "send":
        body.update(yes=args.yes, resend=args.resend)
    status, answer, answer_lang = request(
        url, f"/api/v1/{args.command}", body, lang=lang, key=api_key(args), may_send=args.command == "send"
    )
    out.lang = lang or answer_lang or out.lang
    if status >= 400:
        if out.json:
            out.document(answer)
        else:
            out.note(f"{out.t('Fehler', 'Error')}: {render_error(answer.get('error') or {}, out.lang)}")
        return int(answer.get("exit_code", ExitCode.CONFIG))
    if args.command == "preview":
        from ..preview_text import render_preview_dict

        if out.json:
            out.document(answer)
        else:
            print(render_preview_dict(answer, out.lang, body_lines=200))
        return ExitCode.OK
    if answer.get("repeat"):  # the reference was sent before: locally that is the duplicate refusal
        refusal = {"ok": False, "exit_code": ExitCode.DUPLICATE, "error": answer["error"]}
        if out.json:
            out.document(refusal)
        else:
            out.note(f"{out.t('Fehler', 'Error')}: {render_error(answer['error'], out.lang)}")
        return ExitCode.DUPLICATE
    answer.pop("repeat", None)  # the API's; the command line's answer is the local one
    line = not_sent_line(answer, out.lang)
    if line is not None and not out.json:
        out.note(line)
    if out.json:
        out.document(answer)
    else:
        text = sent_lines(answer, out.lang)
        if text:
            print(text)
    return int(answer["exit_code"])


def _upload(path: str) -> dict[str, Any]:
    """An attachment as the API takes it: its bytes, checked here as a local send checks them."""
    attachment = Attachment(Path(path))
    attachment.check()
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "content_base64": base64.b64encode(attachment.path.read_bytes()).decode("ascii"),
    }


def api_key(args: argparse.Namespace) -> str:
    """``$CCM_MAIL_API_KEY``, else the key file (``--api-key-file``, ``$CCM_MAIL_API_KEY_FILE``, or
    the send key the service wrote into the data folder of this machine)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if key:
        return key
    given = getattr(args, "api_key_file", None) or os.environ.get(API_KEY_FILE_ENV)
    if given:
        path = Path(given)
    else:
        from ..storage import data_dir

        path = data_dir() / "server" / "send.key"
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CcmMailError(
            T(
                f"Kein API-Schlüssel für den Dienst: {path} nicht lesbar ({exc}); nichts gesendet.",
                f"no API key for the service: {path} cannot be read ({exc}); nothing sent.",
            ),
            hint=T(
                f"{API_KEY_ENV} setzen oder --api-key-file angeben (der Sende-Schlüssel aus "
                "'ccm-mail serve --show-keys' auf dem Rechner des Dienstes).",
                f"Set {API_KEY_ENV} or give --api-key-file (the send key from "
                "'ccm-mail serve --show-keys' on the service's machine).",
            ),
        ) from None
    if not key:
        raise CcmMailError(T(f"{path} ist leer; nichts gesendet.", f"{path} is empty; nothing sent."))
    return key


def request(
    url: str, path: str, body: dict[str, Any], *, lang: str | None, key: str, may_send: bool
) -> tuple[int, dict[str, Any], str | None]:
    """POST ``body`` as JSON; the status, the JSON answer and its language. A failure before the
    service has the request says "not sent"; after, when ``may_send``, "outcome unknown"."""
    data = json.dumps(body, ensure_ascii=True).encode("ascii")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}", "Accept": "application/json"}
    if lang:
        headers["Accept-Language"] = lang
    req = urllib.request.Request(url + path, data=data, headers=headers, method="POST")
    context = ssl.create_default_context(cafile=os.environ.get(CA_ENV) or None) if url.startswith("https:") else None
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310 - http(s) only
            return resp.status, _json(resp.read(), resp.status, may_send), resp.headers.get("Content-Language")
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read(), exc.code, may_send), exc.headers.get("Content-Language")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (ConnectionRefusedError, socket.gaierror, ssl.SSLError, OSError)) and not isinstance(
            reason, (TimeoutError, ConnectionResetError)
        ):
            raise _unreachable(url, reason) from None
        raise _no_answer(url, reason, may_send) from None
    except (TimeoutError, ConnectionResetError, http.client.RemoteDisconnected, http.client.IncompleteRead) as exc:
        raise _no_answer(url, exc, may_send) from None
    except ValueError as exc:  # not an http(s) URL
        raise CcmMailError(
            T(
                f"{SERVER_ENV}/--server: {url!r} ist keine http(s)-Adresse ({exc}).",
                f"{SERVER_ENV}/--server: {url!r} is not an http(s) address ({exc}).",
            )
        ) from None


def _json(raw: bytes, status: int, may_send: bool) -> dict[str, Any]:
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if isinstance(answer, dict):
        return answer
    start = raw[:200].decode("utf-8", errors="replace")
    error = ServiceError(
        T(
            f"Unerwartete Antwort des Dienstes (HTTP {status}): {start!r}",
            f"unexpected answer from the service (HTTP {status}): {start!r}",
        ),
        hint=T(
            "Läuft unter der Adresse wirklich 'ccm-mail serve' (kein Proxy dazwischen)?",
            "Is 'ccm-mail serve' really at that address (no proxy in between)?",
        ),
    )
    if may_send and status >= 500:
        error.sent = None
    raise error


def _unreachable(url: str, reason: object) -> ServiceError:
    return ServiceError(
        T(
            f"Dienst {url} nicht erreichbar ({reason}); nichts gesendet.",
            f"service {url} cannot be reached ({reason}); nothing sent.",
        ),
        hint=T(
            f"Läuft 'ccm-mail serve' dort? {SERVER_ENV} und die Firewall prüfen.",
            f"Is 'ccm-mail serve' running there? Check {SERVER_ENV} and the firewall.",
        ),
    )


def _no_answer(url: str, reason: object, may_send: bool) -> ServiceError:
    error = ServiceError(
        T(f"Keine Antwort vom Dienst {url} ({reason}).", f"no answer from the service {url} ({reason})."),
        hint=T(
            "Der Dienst hat die Anfrage vielleicht ausgeführt: nicht blind anders senden. Derselbe Aufruf noch "
            "einmal ist sicher, wenn der Zweck eine Referenz hat (er meldet dann den ersten Versand).",
            "The service may have carried the request out: do not send it another way. The same call again is "
            "safe when the purpose has a reference (it then reports the first send).",
        ),
    )
    if may_send:
        error.sent = None
    return error
