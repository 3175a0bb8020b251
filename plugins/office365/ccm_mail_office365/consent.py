""" "Admin Berechtigung erteilen": Microsoft's admin-consent flow.

The admin signs in at Microsoft in a browser; Microsoft redirects that browser to our
``redirect_uri`` with ``admin_consent=True`` or an error. Three ways the answer comes back:

- the loopback listener, when the browser runs on this computer. It serves each connection in its
  own thread with a socket timeout (an idle connection blocks nobody), ignores redirects without
  our fresh, unguessable ``state`` (logged, the listener keeps waiting) and takes the first real one;
- a pasted redirect URL, when the admin sits at another computer: Microsoft sends *their* browser
  to *their* localhost, which shows an error page, but the address bar holds the answer. The
  caller's ``ask`` prompts for it while the listener waits, or ``redirect_url`` finishes a run
  started earlier (its state is kept in the account's state folder until then);
- a token that carries Mail.Send: the proof that consent is in place, asked for when the admin
  has nothing to paste, and once when the wait ends without an answer.

After a granted consent the app's cached tokens are dropped: they were issued without the roles.
"""

from __future__ import annotations

import hmac
import html
import json
import queue
import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import structlog
from ccm_mail_hookspecs import AccountSettings, CcmMailError, ConfigError, T

from .config import Office365Config
from .session import make_session
from .state_files import read_private, write_private
from .tokens import TokenProvider, drop_cached_tokens, token_roles

log = structlog.get_logger("ccm_mail.office365")

_LOOPBACK = {"localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1", "[::1]": "::1", "::1": "::1"}
#: seconds an idle connection may hold its listener thread
CONNECTION_TIMEOUT = 10.0
PENDING_FILE = "consent_pending.json"
_ANSWER_KEYS = {"admin_consent", "error", "state"}

_TEXT = {
    "granted": T(
        "Die Administratorzustimmung wurde erteilt. Die App darf jetzt als Postfach senden.",
        "Admin consent was granted. The app may now send as the mailbox.",
    ),
    "denied": T("Die Administratorzustimmung wurde abgelehnt oder abgebrochen.", "Admin consent was declined or cancelled."),
    "error": T(
        "Microsoft meldet einen Fehler bei der Administratorzustimmung.", "Microsoft reported an error during admin consent."
    ),
    "state_mismatch": T(
        "Die Antwort passt nicht zu dieser Anfrage (state stimmt nicht): möglicherweise gefälscht. "
        "Die Zustimmung wurde NICHT bestätigt.",
        "The answer does not belong to this request (state mismatch): possibly forged. Consent was NOT confirmed.",
    ),
    "timeout": T("Keine Antwort von Microsoft innerhalb der Wartezeit.", "No answer from Microsoft in time."),
    "no_pending": T(
        "Zu dieser Adresse gibt es keinen offenen Vorgang „Admin Berechtigung erteilen“.",
        'There is no pending "grant admin consent" for this address.',
    ),
}
_HINT = {
    "granted": T(
        "Jetzt „Verbindung testen“: ccm-mail accounts test NAME.", "Now test the connection: ccm-mail accounts test NAME."
    ),
    "denied": T(
        "Mit einem Konto anmelden, das globaler Administrator oder Administrator für privilegierte Rollen "
        "ist, und „Akzeptieren“ wählen.",
        "Sign in with a Global Administrator or Privileged Role Administrator account and choose Accept.",
    ),
    "error": T(
        "Die Redirect-URI muss in Entra → App-Registrierungen → App → Authentifizierung als Plattform "
        "„Web“ eingetragen sein (Standard http://localhost:8400/); Mandanten-ID und Anwendungs-ID prüfen.",
        "The redirect URI must be registered in Entra → App registrations → the app → Authentication as "
        'platform "Web" (default http://localhost:8400/); check tenant ID and application ID.',
    ),
    "state_mismatch": T(
        "Den Vorgang neu starten: ccm-mail accounts consent NAME.", "Start again: ccm-mail accounts consent NAME."
    ),
    "no_pending": T(
        "Zuerst ccm-mail accounts consent NAME --no-browser ausführen und die dort gezeigte Adresse dem Administrator geben.",
        "First run ccm-mail accounts consent NAME --no-browser and give the address it shows to the administrator.",
    ),
    "timeout": T(
        "Zeigt Microsoft im Browser einen Fehler (z. B. AADSTS50011), muss die Redirect-URI in Entra → "
        "App-Registrierungen → App → Authentifizierung als Plattform „Web“ eingetragen werden. Sonst erneut "
        "starten; die Antwort muss im Browser dieses Rechners ankommen (localhost). Hat ein Administrator an "
        'einem anderen Rechner zugestimmt: ccm-mail accounts consent NAME --redirect-url "ADRESSE" mit der '
        "Adresse aus der Adresszeile seines Browsers.",
        "If Microsoft shows an error in the browser (e.g. AADSTS50011), register the redirect URI in Entra → "
        'App registrations → the app → Authentication as platform "Web". Otherwise start again; the '
        "answer must reach a browser on this computer (localhost). If an administrator at another computer "
        'consented: ccm-mail accounts consent NAME --redirect-url "ADDRESS" with the address from their '
        "browser's address bar.",
    ),
}
_TOKEN_PROOF = T(
    "Die Zustimmung ist erteilt: ein neues Token trägt die Anwendungsberechtigung Mail.Send.",
    "Consent is in place: a new token carries the application permission Mail.Send.",
)
_PASTE_PROMPT = T(
    "Nach der Zustimmung die Adresse aus der Adresszeile des Browsers hier einfügen "
    "(leer + Enter: prüfen, ob die Zustimmung schon wirkt): ",
    "After consenting, paste the address from the browser's address bar here "
    "(empty + Enter: check whether consent is in place already): ",
)


@dataclass(frozen=True)
class Answer:
    """What came back: ``status`` is granted, denied or error (state_mismatch, timeout and
    no_pending only as results); ``via`` is redirect, paste or token."""

    status: str
    via: str
    tenant: str | None = None
    scope: str | None = None
    error: str | None = None
    error_description: str | None = None


def consent_url(config: Office365Config, redirect_uri: str, state: str) -> str:
    """Microsoft's v2.0 admin-consent URL for the account's tenant and app."""
    query = urlencode({"client_id": config.client_id, "scope": config.scope, "redirect_uri": redirect_uri, "state": state})
    return f"{config.authority_host}/{config.tenant_id}/v2.0/adminconsent?{query}"


def answer_from_query(query: Mapping[str, str], state: str, via: str) -> Answer | None:
    """The answer a redirect's query carries, or None when it is not ours (state missing or
    different: forged, or from another run)."""
    if not hmac.compare_digest(query.get("state", ""), state) or not query.get("state"):
        return None
    if query.get("admin_consent", "").lower() == "true" and "error" not in query:
        return Answer("granted", via, tenant=query.get("tenant"), scope=query.get("scope"))
    error = query.get("error", "unknown")
    description = query.get("error_description", "")
    status = "denied" if error == "access_denied" or "AADSTS65004" in description else "error"
    return Answer(status, via, error=error, error_description=description)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url.strip()).query, keep_blank_values=True).items()}


def grant_admin_consent(
    settings: AccountSettings,
    *,
    no_browser: bool = False,
    port: int | None = None,
    timeout: float = 300.0,
    lang: str | None = None,
    open_browser: Callable[[str], Any] | None = None,
    out: Callable[[str], None] = print,
    redirect_url: str | None = None,
    ask: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Run the admin-consent flow and return its outcome.

    :param no_browser: only print the URL (admin at another computer); the listener still waits.
    :param port: listen on this port instead of the one in ``consent_redirect_uri``; 0 picks a free
        one (the redirect URI sent to Microsoft changes accordingly and must be registered).
    :param timeout: seconds to wait for an answer in all.
    :param open_browser: opens a URL; default :func:`webbrowser.open`. Tests pass a headless browser.
    :param out: prints a line for the admin.
    :param redirect_url: the address Microsoft redirected the admin's browser to, pasted: finishes
        the run that printed the consent URL (no listener, no waiting).
    :param ask: prompts for a line (e.g. ``input``); while the listener waits, the admin may paste
        the redirect URL there, or enter nothing to have consent proven by a new token. It may
        still be waiting when another way answered; its answer is then ignored.
    :returns: ``{"ok", "status", "via", "message", "hint", "tenant", "scope", "error",
        "error_description", "consent_url", "redirect_uri", "ignored"}``; ``status`` is one of
        granted, denied, error, state_mismatch, no_pending, timeout; ``ignored`` counts redirects
        without our state.
    """
    config = Office365Config.from_settings(settings)
    lang = lang or settings.lang
    if redirect_url is not None:
        return _finish_pasted(config, redirect_url, lang, settings.name)
    parts = urlsplit(config.consent_redirect_uri)
    host = (parts.hostname or "").lower()
    bind = _LOOPBACK.get(host) or _LOOPBACK.get(f"[{host}]")
    if parts.scheme != "http" or bind is None:
        raise ConfigError(
            T(
                f"consent_redirect_uri {config.consent_redirect_uri!r} muss http://localhost:PORT/ sein.",
                f"consent_redirect_uri {config.consent_redirect_uri!r} must be http://localhost:PORT/.",
            )
        )
    want_port = parts.port or 80 if port is None else port
    state = secrets.token_urlsafe(32)
    answers: queue.Queue[Answer] = queue.Queue()
    listener = _Listener(bind, want_port, parts.path or "/", state, answers, lang, settings.name)
    try:
        if port is None:  # exactly as configured: Microsoft compares it with the registered URI
            redirect_uri = config.consent_redirect_uri
        else:
            host_part = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else str(parts.hostname)
            redirect_uri = urlunsplit(("http", f"{host_part}:{listener.port}", parts.path or "/", "", ""))
        url = consent_url(config, redirect_uri, state)
        _save_pending(config, state, redirect_uri, url)
        log.info("consent_start", account=config.account, redirect_uri=redirect_uri)
        out(
            T(
                "Admin Berechtigung erteilen: im Browser mit einem Administratorkonto des Mandanten anmelden und zustimmen.",
                "Grant admin consent: sign in with an administrator of the tenant in the browser and accept.",
            ).get(lang)
        )
        opened = False
        if not no_browser:
            try:
                opened = bool((open_browser or webbrowser.open)(url))
            except Exception:  # a missing browser is not an error: print the URL instead
                opened = False
        if not opened:
            out(
                T(
                    "Diese Adresse im Browser öffnen (auch an einem anderen Rechner):",
                    "Open this address in a browser (another computer will do):",
                ).get(lang)
            )
            out(url)
        out(
            T(
                f"Warte auf die Antwort von Microsoft an {redirect_uri} …", f"Waiting for Microsoft's answer at {redirect_uri} …"
            ).get(lang)
        )
        done = threading.Event()
        if ask is not None:
            threading.Thread(
                target=_ask_loop, args=(ask, config, state, answers, done, lang, out), name="ccm-mail-consent-ask", daemon=True
            ).start()
        try:
            answer: Answer | None = answers.get(timeout=max(0.0, timeout))
        except queue.Empty:
            answer = None
        done.set()
    finally:
        listener.stop()
    if answer is None:
        answer = _token_proof(config)  # consent may have been given where no answer could come back
    return _result(config, answer, lang, settings.name, url=url, redirect_uri=redirect_uri, ignored=listener.ignored)


def _result(
    config: Office365Config, answer: Answer | None, lang: str, account: str, *, url: str, redirect_uri: str, ignored: int = 0
) -> dict[str, Any]:
    status = answer.status if answer is not None else "timeout"
    if status in ("granted", "denied", "error"):
        _pending_path(config).unlink(missing_ok=True)
    if status == "granted" and answer is not None and answer.via != "token":
        drop_cached_tokens(config)  # issued without the roles: never reuse them
    message = (_TOKEN_PROOF if answer is not None and answer.via == "token" else _TEXT[status]).get(lang)
    if answer is not None and answer.error:  # Microsoft's own words, first line (ids are on the next ones)
        said = (answer.error_description or "").strip().splitlines()
        message += f" ({answer.error}" + (f": {said[0]}" if said else "") + ")"
    shown = f'"{account}"' if " " in account else account
    log.info(
        "consent_done",
        account=config.account,
        status=status,
        via=answer.via if answer else None,
        error=answer.error if answer else None,
        ignored=ignored,
    )
    return {
        "ok": status == "granted",
        "status": status,
        "via": answer.via if answer else None,
        "message": message,
        "hint": _HINT[status].get(lang).replace("NAME", shown),
        "tenant": answer.tenant if answer else None,
        "scope": answer.scope if answer else None,
        "error": answer.error if answer else None,
        "error_description": answer.error_description if answer else None,
        "consent_url": url,
        "redirect_uri": redirect_uri,
        "ignored": ignored,
    }


# -- paste-back and proof by token ---------------------------------------------------------------


def _ask_loop(
    ask: Callable[[str], str],
    config: Office365Config,
    state: str,
    answers: queue.Queue[Answer],
    done: threading.Event,
    lang: str,
    out: Callable[[str], None],
) -> None:
    while not done.is_set():
        try:
            line = ask(_PASTE_PROMPT.get(lang)).strip()
        except (EOFError, OSError):
            return
        if done.is_set():
            return
        if not line:
            proof = _token_proof(config)
            if proof is not None:
                answers.put(proof)
                return
            out(
                T(
                    "Noch nicht: ein neues Token trägt keine Anwendungsberechtigung Mail.Send.",
                    "Not yet: a new token carries no application permission Mail.Send.",
                ).get(lang)
            )
            continue
        query = _query(line)
        if not (_ANSWER_KEYS & query.keys()):
            out(
                T(
                    "Das ist keine Antwort von Microsoft (sie enthält admin_consent=… oder error=…).",
                    "That is not an answer from Microsoft (it holds admin_consent=… or error=…).",
                ).get(lang)
            )
            continue
        answer = answer_from_query(query, state, "paste")
        if answer is None:
            log.warning("consent_forged_redirect", via="paste", state_present="state" in query)
            out(
                T(
                    "Diese Adresse gehört nicht zu diesem Vorgang (state passt nicht); ignoriert.",
                    "This address does not belong to this request (state does not match); ignored.",
                ).get(lang)
            )
            continue
        answers.put(answer)
        return


def _token_proof(config: Office365Config) -> Answer | None:
    """Granted, when a new token carries Mail.Send; None when it does not or none can be had."""
    session = make_session(config)
    try:
        token = str(TokenProvider(config, session).token_result(fresh=True)["access_token"])
    except CcmMailError as exc:
        log.info("consent_token_proof_failed", account=config.account, code=exc.details.get("code"))
        return None
    finally:
        session.close()
    roles = token_roles(token)
    return Answer("granted", "token") if roles and "Mail.Send" in roles else None


def _pending_path(config: Office365Config) -> Path:
    return config.state_dir / PENDING_FILE


def _save_pending(config: Office365Config, state: str, redirect_uri: str, url: str) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(
        _pending_path(config),
        json.dumps({"state": state, "redirect_uri": redirect_uri, "consent_url": url, "client_id": config.client_id}),
    )


def _finish_pasted(config: Office365Config, redirect_url: str, lang: str, account: str) -> dict[str, Any]:
    text = read_private(_pending_path(config), config.account)
    try:
        pending = json.loads(text) if text else None
    except ValueError:
        pending = None
    if not isinstance(pending, dict) or pending.get("client_id") != config.client_id:
        return _result(config, Answer("no_pending", "paste"), lang, account, url="", redirect_uri="")
    answer = answer_from_query(_query(redirect_url), str(pending.get("state", "")), "paste")
    if answer is None:
        log.warning("consent_forged_redirect", via="redirect_url")
        answer = Answer("state_mismatch", "paste")
    return _result(
        config, answer, lang, account, url=str(pending.get("consent_url", "")), redirect_uri=str(pending.get("redirect_uri", ""))
    )


# -- the loopback listener ----------------------------------------------------------------------


class _Listener:
    """The loopback HTTP server Microsoft's redirect reaches: every connection in its own thread
    with a socket timeout; the first answer with our state goes into ``answers``."""

    def __init__(
        self, bind: str, port: int, path: str, state: str, answers: queue.Queue[Answer], lang: str, account: str
    ) -> None:
        self.ignored = 0
        self._answered = False
        self._lock = threading.Lock()
        handler = _make_handler(self, path, state, answers, lang, account)
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        server_cls = type(
            "_Server",
            (ThreadingHTTPServer,),
            {"address_family": family, "allow_reuse_address": True, "daemon_threads": True, "block_on_close": False},
        )
        try:
            self._server = server_cls((bind, port), handler)
        except OSError as exc:
            raise ConfigError(
                T(
                    f"Port {port} auf {bind} ist belegt oder nicht erlaubt ({exc.strerror}).",
                    f"Port {port} on {bind} is in use or not allowed ({exc.strerror}).",
                ),
                hint=T(
                    "Anderen Port in consent_redirect_uri eintragen und in Entra registrieren.",
                    "Put another port in consent_redirect_uri and register it in Entra.",
                ),
            ) from exc
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="ccm-mail-consent-listener", daemon=True
        )
        self._thread.start()

    def take(self) -> bool:
        """True for the first answer only."""
        with self._lock:
            first, self._answered = not self._answered, True
            return first

    def forged(self) -> None:
        with self._lock:
            self.ignored += 1

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _make_handler(
    listener: _Listener, path: str, state: str, answers: queue.Queue[Answer], lang: str, account: str = "NAME"
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = CONNECTION_TIMEOUT  # an idle or slow client gives up its thread after this

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            if parts.path != path:
                self._page(404, T("Nicht gefunden.", "Not found."), None)
                return
            q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if not (_ANSWER_KEYS & q.keys()):
                self._page(400, T("Keine Antwort von Microsoft.", "Not an answer from Microsoft."), None)
                return
            answer = answer_from_query(q, state, "redirect")
            if answer is None:  # forged or stale: say so, log it, keep waiting for the real one
                listener.forged()
                log.warning("consent_forged_redirect", via="listener", state_present="state" in q, client=self.client_address[0])
                self._page(400, _TEXT["state_mismatch"], _HINT["state_mismatch"])
                return
            if not listener.take():
                self._page(409, T("Bereits beantwortet.", "Already answered."), None)
                return
            answers.put(answer)
            self._page(200, _TEXT[answer.status], _HINT[answer.status], answer.error_description or "", status=answer.status)

        def _page(self, code: int, text: T, hint: T | None, detail: str = "", status: str = "") -> None:
            other = "en" if lang == "de" else "de"
            ok = status == "granted"
            body = [f"<h1 id='result' data-status='{html.escape(status)}'>{'✔' if ok else '✖'} ccm-mail: Office 365</h1>"]
            shown = f'"{account}"' if " " in account else account  # the command to copy names the account
            for lng in (lang, other):
                body.append(f"<section lang='{lng}'><p class='message'>{html.escape(text.get(lng))}</p>")
                if hint is not None:
                    body.append(f"<p class='hint'>{html.escape(hint.get(lng).replace('NAME', shown))}</p>")
                body.append("</section>")
            if detail:
                body.append(f"<pre class='detail'>{html.escape(detail)}</pre>")
            body.append(
                "<p>" + html.escape(T("Dieses Fenster kann geschlossen werden.", "You can close this window.").get(lang)) + "</p>"
            )
            style = (
                "<style>body{font-family:system-ui,sans-serif;max-width:42em;margin:3em auto;color:#222}"
                "h1{font-size:1.4em}section{margin:1.2em 0}section+section{color:#555;border-top:1px solid #ddd;"
                "padding-top:.8em}.hint{font-weight:600}pre{white-space:pre-wrap;background:#f4f4f4;padding:.6em}"
                "</style>"
            )
            page = (
                "<!DOCTYPE html><html lang='"
                + lang
                + "'><head><meta charset='utf-8'><title>ccm-mail</title>"
                + style
                + "</head><body>"
                + "".join(body)
                + "</body></html>"
            ).encode("utf-8")
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
