""""Admin Berechtigung erteilen": Microsoft's admin-consent flow with a loopback listener.

The admin signs in at Microsoft in a browser; Microsoft redirects to our ``redirect_uri`` with
``admin_consent=True`` or an error. We listen on loopback only, accept exactly one answer that
carries our fresh, unguessable ``state`` (anything else is treated as forged), show a result page
in German and English, and hand the outcome back to the caller (CLI or Python API).
"""

from __future__ import annotations

import hmac
import html
import secrets
import socket
import time
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import structlog
from ccm_mail_hookspecs import AccountSettings, ConfigError, T

from .config import Office365Config
from .tokens import drop_cached_tokens

log = structlog.get_logger("ccm_mail.office365")

_LOOPBACK = {"localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1", "[::1]": "::1", "::1": "::1"}

_TEXT = {
    "granted": T("Die Administratorzustimmung wurde erteilt. Die App darf jetzt als Postfach senden.",
                 "Admin consent was granted. The app may now send as the mailbox."),
    "denied": T("Die Administratorzustimmung wurde abgelehnt oder abgebrochen.",
                "Admin consent was declined or cancelled."),
    "error": T("Microsoft meldet einen Fehler bei der Administratorzustimmung.",
               "Microsoft reported an error during admin consent."),
    "state_mismatch": T("Die Antwort passt nicht zu dieser Anfrage (state stimmt nicht): möglicherweise gefälscht. "
                        "Die Zustimmung wurde NICHT bestätigt.",
                        "The answer does not belong to this request (state mismatch): possibly forged. "
                        "Consent was NOT confirmed."),
    "timeout": T("Keine Antwort von Microsoft innerhalb der Wartezeit.", "No answer from Microsoft in time."),
}
_HINT = {
    "granted": T("Jetzt „Verbindung testen“: ccm-mail accounts test NAME.",
                 "Now test the connection: ccm-mail accounts test NAME."),
    "denied": T("Mit einem Konto anmelden, das globaler Administrator oder Administrator für privilegierte Rollen "
                "ist, und „Akzeptieren“ wählen.",
                "Sign in with a Global Administrator or Privileged Role Administrator account and choose Accept."),
    "error": T("Die Redirect-URI muss in Entra → App-Registrierungen → App → Authentifizierung als Plattform "
               "„Web“ eingetragen sein (Standard http://localhost:8400/); Mandanten-ID und Anwendungs-ID prüfen.",
               "The redirect URI must be registered in Entra → App registrations → the app → Authentication as "
               "platform \"Web\" (default http://localhost:8400/); check tenant ID and application ID."),
    "state_mismatch": T("Den Vorgang neu starten: ccm-mail accounts consent NAME.",
                        "Start again: ccm-mail accounts consent NAME."),
    "timeout": T("Zeigt Microsoft im Browser einen Fehler (z. B. AADSTS50011), muss die Redirect-URI in Entra → "
                 "App-Registrierungen → App → Authentifizierung als Plattform „Web“ eingetragen werden. Sonst erneut "
                 "starten; die Antwort muss im Browser dieses Rechners ankommen (localhost).",
                 "If Microsoft shows an error in the browser (e.g. AADSTS50011), register the redirect URI in Entra → "
                 "App registrations → the app → Authentication as platform \"Web\". Otherwise start again; the "
                 "answer must reach a browser on this computer (localhost)."),
}


def consent_url(config: Office365Config, redirect_uri: str, state: str) -> str:
    """Microsoft's v2.0 admin-consent URL for the account's tenant and app."""
    query = urlencode({"client_id": config.client_id, "scope": config.scope,
                       "redirect_uri": redirect_uri, "state": state})
    return f"{config.authority_host}/{config.tenant_id}/v2.0/adminconsent?{query}"


def grant_admin_consent(settings: AccountSettings, *, no_browser: bool = False, port: int | None = None,
                        timeout: float = 300.0, lang: str | None = None,
                        open_browser: Callable[[str], Any] | None = None,
                        out: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the admin-consent flow and return its outcome.

    :param no_browser: only print the URL (remote admin); the listener still waits.
    :param port: listen on this port instead of the one in ``consent_redirect_uri``; 0 picks a free
        one (the redirect URI sent to Microsoft changes accordingly and must be registered).
    :param open_browser: opens a URL; default :func:`webbrowser.open`. Tests pass a headless browser.
    :param out: prints a line for the admin.
    :returns: ``{"ok", "status", "message", "hint", "tenant", "scope", "error", "error_description",
        "consent_url", "redirect_uri"}``; ``status`` is one of granted, denied, error,
        state_mismatch, timeout.
    """
    config = Office365Config.from_settings(settings)
    lang = lang or settings.lang
    parts = urlsplit(config.consent_redirect_uri)
    host = (parts.hostname or "").lower()
    bind = _LOOPBACK.get(host) or _LOOPBACK.get(f"[{host}]")
    if parts.scheme != "http" or bind is None:
        raise ConfigError(T(f"consent_redirect_uri {config.consent_redirect_uri!r} muss http://localhost:PORT/ sein.",
                            f"consent_redirect_uri {config.consent_redirect_uri!r} must be http://localhost:PORT/."))
    want_port = parts.port or 80 if port is None else port
    state = secrets.token_urlsafe(32)
    box: dict[str, Any] = {}
    handler = _make_handler(parts.path or "/", state, box, lang, settings.name)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server_cls = type("_Server", (HTTPServer,), {"address_family": family, "allow_reuse_address": True})
    try:
        server = server_cls((bind, want_port), handler)
    except OSError as exc:
        raise ConfigError(T(f"Port {want_port} auf {bind} ist belegt oder nicht erlaubt ({exc.strerror}).",
                            f"Port {want_port} on {bind} is in use or not allowed ({exc.strerror})."),
                          hint=T("Anderen Port in consent_redirect_uri eintragen und in Entra registrieren.",
                                 "Put another port in consent_redirect_uri and register it in Entra.")) from exc
    try:
        if port is None:  # exactly as configured: Microsoft compares it with the registered URI
            redirect_uri = config.consent_redirect_uri
        else:
            host_part = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else str(parts.hostname)
            redirect_uri = urlunsplit(("http", f"{host_part}:{server.server_address[1]}", parts.path or "/", "", ""))
        url = consent_url(config, redirect_uri, state)
        log.info("consent_start", account=config.account, redirect_uri=redirect_uri)
        out(T("Admin Berechtigung erteilen: im Browser mit einem Administratorkonto des Mandanten anmelden "
              "und zustimmen.",
              "Grant admin consent: sign in with an administrator of the tenant in the browser and accept.").get(lang))
        opened = False
        if not no_browser:
            try:
                opened = bool((open_browser or webbrowser.open)(url))
            except Exception:  # a missing browser is not an error: print the URL instead
                opened = False
        if not opened:
            out(T("Diese Adresse im Browser öffnen:", "Open this address in a browser:").get(lang))
            out(url)
        out(T(f"Warte auf die Antwort von Microsoft an {redirect_uri} …",
              f"Waiting for Microsoft's answer at {redirect_uri} …").get(lang))
        deadline = time.monotonic() + timeout
        server.timeout = 0.25
        while "status" not in box and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    if "status" not in box:
        box["status"] = "timeout"
    status = box["status"]
    result = {
        "ok": status == "granted", "status": status,
        "message": _TEXT[status].get(lang), "hint": _HINT[status].get(lang),
        "tenant": box.get("tenant"), "scope": box.get("scope"), "error": box.get("error"),
        "error_description": box.get("error_description"), "consent_url": url, "redirect_uri": redirect_uri,
    }
    if status == "granted":  # tokens issued before carry no roles: never reuse them
        drop_cached_tokens(config)
    log.info("consent_done", account=config.account, status=status, error=box.get("error"))
    return result


def _make_handler(path: str, state: str, box: dict[str, Any], lang: str,
                  account: str = "NAME") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            if parts.path != path:
                self._page(404, T("Nicht gefunden.", "Not found."), None)
                return
            q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if not ({"admin_consent", "error", "state"} & q.keys()):
                self._page(400, T("Keine Antwort von Microsoft.", "Not an answer from Microsoft."), None)
                return
            if "status" in box:  # only the first answer counts
                self._page(409, T("Bereits beantwortet.", "Already answered."), None)
                return
            if not hmac.compare_digest(q.get("state", ""), state):
                box["status"] = "state_mismatch"
                log.warning("consent_state_mismatch")
                self._page(400, _TEXT["state_mismatch"], _HINT["state_mismatch"])
                return
            if q.get("admin_consent", "").lower() == "true" and "error" not in q:
                box.update(status="granted", tenant=q.get("tenant"), scope=q.get("scope"))
                self._page(200, _TEXT["granted"], _HINT["granted"])
                return
            error = q.get("error", "unknown")
            status = "denied" if error == "access_denied" or "AADSTS65004" in q.get("error_description", "") \
                else "error"
            box.update(status=status, error=error, error_description=q.get("error_description", ""))
            self._page(200, _TEXT[status], _HINT[status], q.get("error_description", ""))

        def _page(self, code: int, text: T, hint: T | None, detail: str = "") -> None:
            other = "en" if lang == "de" else "de"
            ok = code == 200 and text is _TEXT["granted"]
            body = [f"<h1 id='result' data-status='{html.escape(box.get('status', ''))}'>"
                    f"{'✔' if ok else '✖'} ccm-mail: Office 365</h1>"]
            shown = f'"{account}"' if " " in account else account  # the command to copy names the account
            for lng in (lang, other):
                body.append(f"<section lang='{lng}'><p class='message'>{html.escape(text.get(lng))}</p>")
                if hint is not None:
                    body.append(f"<p class='hint'>{html.escape(hint.get(lng).replace('NAME', shown))}</p>")
                body.append("</section>")
            if detail:
                body.append(f"<pre class='detail'>{html.escape(detail)}</pre>")
            body.append("<p>" + html.escape(T("Dieses Fenster kann geschlossen werden.",
                                               "You can close this window.").get(lang)) + "</p>")
            style = ("<style>body{font-family:system-ui,sans-serif;max-width:42em;margin:3em auto;color:#222}"
                     "h1{font-size:1.4em}section{margin:1.2em 0}section+section{color:#555;border-top:1px solid #ddd;"
                     "padding-top:.8em}.hint{font-weight:600}pre{white-space:pre-wrap;background:#f4f4f4;padding:.6em}"
                     "</style>")
            page = ("<!DOCTYPE html><html lang='" + lang + "'><head><meta charset='utf-8'><title>ccm-mail</title>"
                    + style + "</head><body>" + "".join(body) + "</body></html>").encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the URL (state) out of stderr
            return

    return Handler
