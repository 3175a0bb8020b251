"""Microsoft Entra ID (login) stand-in: OIDC discovery, the v2.0 token endpoint (client
credentials with secret or certificate assertion) and the admin consent endpoint.

Errors follow Entra's OAuth error body: ``error``, ``error_description`` ("AADSTSnnn: text" plus
Trace ID / Correlation ID / Timestamp lines), ``error_codes``, ``timestamp``, ``trace_id``,
``correlation_id``, ``error_uri``. Client authentication failures are HTTP 401, other request
errors HTTP 400 (RFC 6749 section 5.2, as Entra does).

Tokens are opaque to clients (JWT-shaped, not verifiable) and bound to tenant, app, resource and
the roles the app had consented *when the token was issued*: granting consent later needs a new
token, as in Entra. The consent endpoint itself is in :mod:`.consent`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs

from . import assertion as jwt_assertion
from .consent import AdminConsent
from .entra_core import TENANT_ALIASES
from .hosts import CLOUDS, EXCHANGE_RESOURCES, GRAPH_APP_ID, LOGIN_HOSTS, cloud_of_login_host
from .server import BodyTooLarge, Request, Response
from .state import App, Tenant, TokenInfo, TokenRequest

_SEGMENT = r"(?P<tenant>[A-Za-z0-9.\-_]+)"
ROUTES = [
    ("GET", re.compile(rf"^/{_SEGMENT}/v2\.0/\.well-known/openid-configuration$"), "discovery"),
    ("GET", re.compile(r"^/common/discovery/instance$"), "instance_discovery"),
    ("GET", re.compile(rf"^/{_SEGMENT}/discovery/v2\.0/keys$"), "keys"),
    ("POST", re.compile(rf"^/{_SEGMENT}/oauth2/v2\.0/token$"), "token"),
    ("GET", re.compile(rf"^/{_SEGMENT}/v2\.0/adminconsent$"), "consent_get"),
    ("POST", re.compile(rf"^/{_SEGMENT}/v2\.0/adminconsent$"), "consent_post"),
]


class Entra(AdminConsent):
    """Discovery and the token endpoint, plus routing for all Entra endpoints."""

    def matches(self, req: Request) -> bool:
        return any(r.match(req.path) for _, r, _ in ROUTES)

    def handle(self, req: Request) -> Response:
        if req.fault is not None and req.fault.kind == "latency":
            time.sleep(req.fault.delay)
        if req.fault is not None and req.fault.kind.isdigit():
            return self._transient(req, int(req.fault.kind), req.fault.retry_after)
        for method, rx, name in ROUTES:
            m = rx.match(req.path)
            if m and method == req.method:
                handler: Callable[[Request, str], Response] = getattr(self, name)
                return handler(req, m.groupdict().get("tenant", ""))
        if any(rx.match(req.path) for _, rx, _ in ROUTES):
            return self.error(
                req,
                400,
                "invalid_request",
                900561,
                f"The endpoint only accepts POST, OPTIONS requests. Received a {req.method} request.",
            )
        return Response.html(404, "<html><body>Not found</body></html>", self._headers(req))

    # --- discovery -------------------------------------------------------------------------
    def discovery(self, req: Request, ref: str) -> Response:
        if ref.lower() in TENANT_ALIASES:
            tid, issuer_tid = ref.lower(), "{tenantid}"
            cloud = cloud_of_login_host(req.host) or CLOUDS["global"]
        else:
            tenant = self._tenant(req, ref)
            if tenant is None:
                return self._tenant_not_found(req, ref, "invalid_tenant")
            tid = issuer_tid = tenant.tenant_id
            cloud = CLOUDS[tenant.cloud]
        base = req.base_url
        issuer_host = cloud.login_host if req.host in LOGIN_HOSTS else req.host_header
        config = {
            "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"https://{issuer_host}/{issuer_tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"https://{cloud.graph_hosts[0]}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/{tid}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": cloud.login_host.split(".", 1)[1],
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": cloud.graph_hosts[0],
            "rbac_url": "https://pas.windows.net",
        }
        return Response.json(200, config, self._headers(req))

    def instance_discovery(self, req: Request, _ref: str) -> Response:
        """msal's instance discovery; only asked when the client does not turn it off."""
        endpoint = req.query.get("authorization_endpoint", "")
        m = re.match(r"^https://[^/]+/(?P<tenant>[^/]+)/", endpoint)
        tenant = m.group("tenant") if m else "common"
        host = req.host_header
        return Response.json(
            200,
            {
                "tenant_discovery_endpoint": f"{req.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            },
            self._headers(req),
        )

    def keys(self, req: Request, _ref: str) -> Response:
        return Response.json(200, {"keys": []}, self._headers(req))

    # --- token -----------------------------------------------------------------------------
    def token(self, req: Request, ref: str) -> Response:
        form: dict[str, str] = {}
        try:
            raw = req.read_body(1024 * 1024)
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        except (BodyTooLarge, UnicodeDecodeError):
            pass
        basic = _basic_auth(req.header("Authorization"))
        if basic:
            form.setdefault("client_id", basic[0])
            form.setdefault("client_secret", basic[1])
        credential = "assertion" if form.get("client_assertion") else "secret" if form.get("client_secret") else "none"
        resp = self._token(req, ref, form, credential)
        code = None
        if resp.status != 200:
            try:
                code = json.loads(resp.body)["error_codes"][0]
            except (ValueError, KeyError, IndexError):
                pass
        with self.state.lock:
            self.state.token_requests.append(
                TokenRequest(
                    time.time(),
                    req.host,
                    ref,
                    form.get("client_id"),
                    form.get("grant_type"),
                    credential,
                    form.get("scope"),
                    resp.status,
                    code,
                )
            )
        return resp

    def _token(self, req: Request, ref: str, form: dict[str, str], credential: str) -> Response:
        if ref.lower() in TENANT_ALIASES:
            return self.error(
                req,
                400,
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by any provided credentials.",
            )
        tenant = self._tenant(req, ref)
        if tenant is None:
            return self._tenant_not_found(req, ref)
        grant = form.get("grant_type")
        if not grant:
            return self._missing(req, "grant_type")
        if grant != "client_credentials":
            return self.error(
                req, 400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
            )
        client_id = form.get("client_id", "").strip()
        if not client_id:
            return self._missing(req, "client_id")
        app = self.state.app(tenant.tenant_id, client_id)
        if app is None:
            return self.error(
                req,
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant.display_name}'. This can happen if the application "
                f"has not been installed by the administrator of the tenant or consented "
                f"to by any user in the tenant. You may have sent your authentication "
                f"request to the wrong tenant.",
            )
        failure = self._authenticate(req, ref, tenant, app, form, credential)
        if failure is not None:
            return failure
        scope = form.get("scope")
        if not scope:
            return self._missing(req, "scope")
        resource_or_error = self._resource(req, tenant, scope)
        if isinstance(resource_or_error, Response):
            return resource_or_error
        if self._looping(tenant, app):
            return self.error(
                req,
                400,
                "invalid_request",
                50196,
                "The server terminated an operation because it encountered a client "
                "request loop. Please contact your app vendor.",
            )
        return self._issue(req, tenant, app, resource_or_error)

    def _looping(self, tenant: Tenant, app: App) -> bool:
        limit = self.state.loop_detection
        if limit is None:
            return False
        count, window = limit
        since = time.time() - window
        with self.state.lock:
            recent = sum(
                1
                for t in self.state.token_requests
                if t.time >= since
                and t.status == 200
                and t.client_id is not None
                and t.client_id.lower() == app.client_id
            )
        return recent >= count

    def _missing(self, req: Request, name: str) -> Response:
        return self.error(
            req, 400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
        )

    def _authenticate(
        self, req: Request, ref: str, tenant: Tenant, app: App, form: dict[str, str], credential: str
    ) -> Response | None:
        cid = app.client_id
        if credential == "none":
            return self.error(
                req,
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if credential == "secret":
            if app.secret is None or not secrets.compare_digest(form["client_secret"], app.secret):
                return self.error(
                    req,
                    401,
                    "invalid_client",
                    7000215,
                    f"Invalid client secret provided. Ensure the secret being sent in "
                    f"the request is the client secret value, not the client secret "
                    f"ID, for a secret added to app '{cid}'.",
                )
            if app.secret_expired:
                return self.error(
                    req,
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{cid}' are expired. "
                    f"Visit the Azure portal to create new keys for your app: "
                    f"https://aka.ms/NewClientSecret, or consider using certificate "
                    f"credentials for added security: https://aka.ms/certCreds.",
                )
            return None
        if form.get("client_assertion_type") != jwt_assertion.ASSERTION_TYPE:
            return self.error(
                req,
                400,
                "invalid_request",
                700002,
                f"Client assertion type is missing or not supported. It should be '{jwt_assertion.ASSERTION_TYPE}'.",
            )
        base = req.base_url
        audiences = {f"{base}/{r}/oauth2/v2.0/token" for r in {ref, tenant.tenant_id}}
        audiences |= {f"{base}/{r}/oauth2/token" for r in {ref, tenant.tenant_id}}
        try:
            jwt_assertion.verify(
                form["client_assertion"], client_id=cid, certificate_pem=app.certificate_pem, audiences=audiences
            )
        except jwt_assertion.AssertionError_ as exc:
            return self.error(req, 401, "invalid_client", exc.code, exc.message)
        return None

    def _resource(self, req: Request, tenant: Tenant, scope: str) -> str | Response:
        """The resource a client-credentials scope names, or Entra's error."""
        scopes = scope.split()
        cloud = CLOUDS[tenant.cloud]
        for s in scopes:
            if not s.endswith("/.default"):
                return self.error(
                    req,
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {s} is not valid. Client credential "
                    f"flows must have a scope value with /.default suffixed to the "
                    f"resource identifier (application ID URI).",
                )
        resources = {s[: -len("/.default")].rstrip("/") for s in scopes}
        if len(resources) != 1:
            return self.error(
                req,
                400,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The "
                f"provided value for the input parameter 'scope' is not valid. The "
                f"scope {scope} is not valid. static scope limit exceeded.",
            )
        resource = resources.pop()
        if resource == GRAPH_APP_ID:
            resource = cloud.graph_resources[0]
        if resource not in cloud.graph_resources and resource not in EXCHANGE_RESOURCES:
            return self.error(
                req,
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant "
                f"named {tenant.display_name}. This can happen if the application has "
                f"not been installed by the administrator of the tenant or consented to "
                f"by any user in the tenant. You might have sent your authentication "
                f"request to the wrong tenant.",
            )
        return resource

    def _issue(self, req: Request, tenant: Tenant, app: App, resource: str) -> Response:
        lifetime = self.state.token_lifetime
        now = int(time.time())
        roles = frozenset(app.permissions) if app.consented else frozenset()
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5t": _b64(secrets.token_bytes(20)),
            "kid": _b64(secrets.token_bytes(20)),
        }
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": app.client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "roles": sorted(roles),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "tid": tenant.tenant_id,
            "uti": _b64(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        token = ".".join(
            [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(secrets.token_bytes(256))]
        )
        with self.state.lock:
            self.state.tokens[token] = TokenInfo(
                token, tenant.tenant_id, app.client_id, resource, roles, time.time() + lifetime
            )
        return Response.json(
            200,
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
            self._headers(req),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _basic_auth(value: str | None) -> tuple[str, str] | None:
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        user, _, pw = base64.b64decode(value[6:].strip()).decode("utf-8").partition(":")
    except ValueError:
        return None
    from urllib.parse import unquote_plus

    return unquote_plus(user), unquote_plus(pw)
