"""Admin consent ("Admin Berechtigung erteilen"): ``/{tenant}/v2.0/adminconsent``.

Request errors (unknown tenant or app, unregistered ``redirect_uri``, bad ``scope``) are shown as an
Entra error page and never redirect, so nobody is sent to an unverified address. Otherwise the
admin's answer goes to ``redirect_uri`` with ``admin_consent=True&tenant=..&scope=..&state=..`` or
``error=access_denied&error_description=AADSTS65004: ...&state=..``.
``sb.consent_behaviour``: "ask" shows the page with Accept/Cancel (a form POST); "accept"/"deny"
answer at once: browsers (``Accept: text/html``) get a page that submits itself, other clients the
302 directly.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

from .entra_core import TENANT_ALIASES, EntraCore
from .hosts import CLOUDS, EXCHANGE_RESOURCES, GRAPH_APP_ID
from .server import BodyTooLarge, Request, Response
from .state import App, Tenant

#: What the consent page says each permission means (Entra's admin consent descriptions).
PERMISSION_TEXT = {
    "Mail.Send": "Send mail as any user",
    "Mail.ReadWrite": "Read and write mail in all mailboxes",
    "Mail.Read": "Read mail in all mailboxes",
    "Mail.ReadBasic.All": "Read basic mail in all mailboxes",
    "User.Read.All": "Read all users' full profiles",
    "SMTP.SendAsApp": "Send emails from mailboxes using SMTP AUTH",
}


class AdminConsent(EntraCore):
    """The admin consent endpoint: its checks, its page and the redirect with the answer."""

    def consent_get(self, req: Request, ref: str) -> Response:
        params = dict(req.query)
        checked = self._consent_check(req, ref, params)
        if isinstance(checked, Response):
            return checked
        tenant, app = checked
        behaviour = self.state.consent_behaviour
        if behaviour in ("accept", "deny"):
            if "text/html" in (req.header("Accept") or ""):
                return self._consent_page(req, ref, tenant, app, params, auto=behaviour)
            return self._consent_answer(req, tenant, app, params, behaviour == "accept")
        return self._consent_page(req, ref, tenant, app, params, auto=None)

    def consent_post(self, req: Request, ref: str) -> Response:
        try:
            raw = req.read_body(64 * 1024)
        except BodyTooLarge:
            raw = b""
        params = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        checked = self._consent_check(req, ref, params)
        if isinstance(checked, Response):
            return checked
        tenant, app = checked
        return self._consent_answer(req, tenant, app, params, params.get("decision") == "accept")

    def _consent_check(self, req: Request, ref: str, params: dict[str, str]) -> tuple[Tenant, App] | Response:
        client_id = params.get("client_id", "")
        if ref.lower() in TENANT_ALIASES:
            apps = self.state.apps_with_client_id(client_id)
            tenant = self.state.tenant(apps[0].tenant_id) if apps else None
            if tenant is None:
                return self._error_page(
                    req, 700016, f"Application with identifier '{client_id}' was not found in the directory."
                )
        else:
            tenant = self._tenant(req, ref)
            if tenant is None:
                return self._error_page(
                    req,
                    90002,
                    f"Tenant '{ref}' not found. Check to make sure "
                    f"you have the correct tenant ID and are signing into the "
                    f"correct cloud.",
                )
        if not client_id:
            return self._error_page(req, 900144, "The request body must contain the following parameter: 'client_id'.")
        app = self.state.app(tenant.tenant_id, client_id)
        if app is None:
            return self._error_page(
                req,
                700016,
                f"Application with identifier '{client_id}' was "
                f"not found in the directory '{tenant.display_name}'. This can "
                f"happen if the application has not been installed by the "
                f"administrator of the tenant or consented to by any user in the "
                f"tenant. You may have sent your authentication request to the "
                f"wrong tenant.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            return self._error_page(
                req, 900144, "The request body must contain the following parameter: 'redirect_uri'."
            )
        if redirect_uri not in app.redirect_uris:
            return self._error_page(
                req,
                50011,
                f"The redirect URI '{redirect_uri}' specified in the "
                f"request does not match the redirect URIs configured for the "
                f"application '{app.client_id}'. Make sure the redirect URI sent "
                f"in the request matches one added to your application in the "
                f"Azure portal. Navigate to https://aka.ms/redirectUriMismatchError "
                f"to learn more about how to fix this.",
            )
        scope = params.get("scope", "")
        cloud = CLOUDS[tenant.cloud]
        if not scope or any(
            not s.endswith("/.default")
            or s[:-9].rstrip("/") not in (*cloud.graph_resources, *EXCHANGE_RESOURCES, GRAPH_APP_ID)
            for s in scope.split()
        ):
            return self._error_page(
                req,
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist.",
            )
        return tenant, app

    def _consent_answer(
        self, req: Request, tenant: Tenant, app: App, params: dict[str, str], accepted: bool
    ) -> Response:
        redirect_uri = params["redirect_uri"]
        out: dict[str, str] = {}
        if accepted:
            with self.state.lock:
                app.consented = True
            resource = CLOUDS[tenant.cloud].graph_resources[0]
            granted = [f"{resource}/{p}" for p in sorted(app.permissions)]
            out = {
                "admin_consent": "True",
                "tenant": tenant.tenant_id,
                "scope": " ".join(granted + [f"{resource}/.default"]),
            }
        else:
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            out = {
                "error": "access_denied",
                "error_subcode": "cancel",
                "error_description": f"AADSTS65004: User declined to consent to access the app. "
                f"Trace ID: {req.request_id} Correlation ID: "
                f"{self._correlation(req)} Timestamp: {stamp}",
            }
        if "state" in params:
            out["state"] = params["state"]
        sep = "&" if "?" in redirect_uri else "?"
        headers = self._headers(req)
        headers["Location"] = redirect_uri + sep + urlencode(out)
        return Response(302, b"", headers)

    def _consent_page(
        self, req: Request, ref: str, tenant: Tenant, app: App, params: dict[str, str], auto: str | None
    ) -> Response:
        perms = "".join(
            f"<li><b>{html.escape(PERMISSION_TEXT.get(p, p))}</b> ({html.escape(p)})</li>"
            for p in sorted(app.permissions)
        )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k in ("client_id", "scope", "redirect_uri", "state")
        )
        action = html.escape(f"/{ref}/v2.0/adminconsent")
        auto_html = ""
        if auto is not None:
            hidden += f'<input type="hidden" name="decision" value="{"accept" if auto == "accept" else "cancel"}">'
            auto_html = "<script>document.forms[0].submit();</script>"
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Permissions requested</title></head>
<body>
<h1>Permissions requested</h1>
<p><b>{html.escape(app.display_name)}</b> (unverified)</p>
<p>This app would like to (application permissions for {html.escape(tenant.display_name)}):</p>
<ul>{perms}</ul>
<p>If you accept, this app will get access to the specified resources for all users in your
organization. No one else will be prompted to review these permissions.</p>
<form method="post" action="{action}">{hidden}
<button type="submit" name="decision" value="cancel">Cancel</button>
<button type="submit" name="decision" value="accept">Accept</button>
</form>{auto_html}
</body></html>"""
        return Response.html(200, page, self._headers(req))

    def _error_page(self, req: Request, code: int, text: str) -> Response:
        """Entra shows request errors of interactive endpoints as a page, and does not redirect."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body><h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p>
<p id="error">AADSTS{code}: {html.escape(text)}</p>
<table><tr><td>Request Id:</td><td>{req.request_id}</td></tr>
<tr><td>Correlation Id:</td><td>{self._correlation(req)}</td></tr>
<tr><td>Timestamp:</td><td>{stamp}</td></tr></table></body></html>"""
        return Response.html(200, page, self._headers(req))
