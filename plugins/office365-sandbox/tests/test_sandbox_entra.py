"""Entra stand-in: discovery, token endpoint (secret and certificate), error shapes, msal."""

from __future__ import annotations

import time
import uuid

import jwt  # PyJWT comes with msal; used here only to forge bad assertions
import msal
import pytest
from o365_sandbox_kit import CLIENT, GRAPH_SCOPE, SECRET, TENANT, Cert, VerifyingClient, World

from ccm_mail_office365_sandbox import Sandbox


def _aad(r, status: int, error: str, code: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    desc = body["error_description"]
    assert desc.startswith(f"AADSTS{code}: ")
    for part in ("Trace ID: ", "Correlation ID: ", "Timestamp: "):
        assert part in desc
    assert body["trace_id"] in desc and body["correlation_id"] in desc
    assert body["timestamp"].endswith("Z") and body["error_uri"].endswith(f"code={code}")
    return body


def test_discovery_uses_the_host_the_client_used_and_resolves_domains(world: World) -> None:
    sb = world.sb
    for ref in (TENANT, "contoso.de"):
        r = world.http.get(f"{sb.authority_host}/{ref}/v2.0/.well-known/openid-configuration", verify=sb.ca_pem)
        assert r.status_code == 200
        cfg = r.json()
        assert cfg["token_endpoint"] == f"{sb.authority_host}/{TENANT}/oauth2/v2.0/token"
        assert cfg["authorization_endpoint"] == f"{sb.authority_host}/{TENANT}/oauth2/v2.0/authorize"
        assert cfg["issuer"].endswith(f"/{TENANT}/v2.0")
        assert cfg["msgraph_host"] == "graph.microsoft.com"


def test_discovery_of_unknown_tenant_is_400_aadsts90002(world: World) -> None:
    r = world.http.get(
        f"{world.sb.authority_host}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration", verify=world.sb.ca_pem
    )
    _aad(r, 400, "invalid_tenant", 90002)


def test_token_with_secret(world: World) -> None:
    r = world.token_response()
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["access_token"].count(".") == 2
    assert "refresh_token" not in body
    assert r.headers["Cache-Control"] == "no-store, no-cache"
    assert world.sb.token_request_count(CLIENT) == 1
    assert world.sb.token_requests[0].credential == "secret"


def test_token_lifetime_is_configurable(world: World) -> None:
    world.sb.token_lifetime = 5
    assert world.token_response().json()["expires_in"] == 5


@pytest.mark.parametrize(
    ("form", "tenant", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, TENANT, 401, "invalid_client", 7000215),
        ({"client_secret": None}, TENANT, 401, "invalid_client", 7000218),
        ({"client_id": str(uuid.uuid4())}, TENANT, 400, "unauthorized_client", 700016),
        ({}, "99999999-9999-9999-9999-999999999999", 400, "invalid_request", 90002),
        ({}, "unknown.example", 400, "invalid_request", 90002),
        ({"scope": "https://graph.microsoft.com/Mail.Send"}, TENANT, 400, "invalid_scope", 1002012),
        ({"scope": "Mail.Send"}, TENANT, 400, "invalid_scope", 1002012),
        ({"scope": "https://nothing.example/.default"}, TENANT, 400, "invalid_resource", 500011),
        ({"scope": None}, TENANT, 400, "invalid_request", 900144),
        ({"grant_type": "password"}, TENANT, 400, "unsupported_grant_type", 70003),
        ({}, "common", 400, "invalid_request", 50059),
    ],
)
def test_token_errors_look_like_entra(
    world: World, form: dict, tenant: str, status: int, error: str, code: int
) -> None:
    _aad(world.token_response(tenant=tenant, **form), status, error, code)


def test_expired_secret_is_7000222_but_only_with_the_right_value(world: World) -> None:
    world.sb.app(TENANT, CLIENT).secret_expired = True
    _aad(world.token_response(), 401, "invalid_client", 7000222)
    _aad(world.token_response(client_secret="wrong"), 401, "invalid_client", 7000215)


def test_correlation_id_is_the_clients_request_id(world: World) -> None:
    crid = str(uuid.uuid4())
    r = world.http.post(
        f"{world.sb.authority_host}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "x", "scope": GRAPH_SCOPE},
        headers={"client-request-id": crid},
        verify=world.sb.ca_pem,
    )
    assert r.json()["correlation_id"] == crid
    assert r.headers["client-request-id"] == crid
    assert r.headers["x-ms-request-id"] == r.json()["trace_id"]


def test_get_on_token_endpoint_is_refused(world: World) -> None:
    r = world.http.get(f"{world.sb.authority_host}/{TENANT}/oauth2/v2.0/token", verify=world.sb.ca_pem)
    _aad(r, 400, "invalid_request", 900561)


def _msal(sb: Sandbox, credential: object, **kw: object) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT,
        client_credential=credential,
        authority=f"{sb.authority_host}/{TENANT}",
        http_client=VerifyingClient(sb),
        instance_discovery=False,
        **kw,
    )


def test_msal_with_secret_discovers_gets_and_caches_a_token(world: World) -> None:
    app = _msal(world.sb, SECRET)
    first = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in first, first
    assert first["token_source"] == "identity_provider"
    second = app.acquire_token_for_client([GRAPH_SCOPE])
    assert second["token_source"] == "cache"
    assert world.sb.token_request_count(CLIENT) == 1
    paths = [r.path for r in world.sb.requests]
    assert f"/{TENANT}/v2.0/.well-known/openid-configuration" in paths
    # and Graph takes the token
    assert world.send(token=first["access_token"]).status_code == 202


def test_msal_reports_entra_errors(world: World) -> None:
    result = _msal(world.sb, "wrong").acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]


@pytest.mark.parametrize("sha256", [False, True], ids=["RS256-x5t", "PS256-x5t#S256"])
def test_msal_with_certificate(world: World, cert: Cert, sha256: bool) -> None:
    world.sb.app(TENANT, CLIENT).certificate_pem = cert.cert_pem
    credential = (
        {"private_key": cert.key_pem, "public_certificate": cert.cert_pem}
        if sha256
        else {"private_key": cert.key_pem, "thumbprint": cert.sha1_hex}
    )
    result = _msal(world.sb, credential).acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result
    assert world.sb.token_requests[-1].credential == "assertion"


def test_certificate_not_registered(world: World, cert: Cert) -> None:
    result = _msal(world.sb, {"private_key": cert.key_pem, "thumbprint": cert.sha1_hex}).acquire_token_for_client(
        [GRAPH_SCOPE]
    )
    assert result["error"] == "invalid_client" and 700027 in result["error_codes"]


def _assertion(sb: Sandbox, cert: Cert, **claims: object) -> str:
    now = int(time.time())
    base = {
        "aud": f"{sb.authority_host}/{TENANT}/oauth2/v2.0/token",
        "iss": CLIENT,
        "sub": CLIENT,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
    }
    base.update(claims)
    import base64

    x5t = base64.urlsafe_b64encode(bytes.fromhex(cert.sha1_hex)).decode().rstrip("=")
    return jwt.encode(base, cert.key_pem, algorithm="RS256", headers={"x5t": x5t})


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": int(time.time()) - 3600}, 700024),
        ({"iss": "someone-else"}, 700021),
        ({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, 700212),
    ],
)
def test_bad_assertions(world: World, cert: Cert, claims: dict, code: int) -> None:
    world.sb.app(TENANT, CLIENT).certificate_pem = cert.cert_pem
    r = world.token_response(
        client_secret=None,
        client_assertion=_assertion(world.sb, cert, **claims),
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    _aad(r, 401, "invalid_client", code)


def test_assertion_signed_by_another_key(world: World, cert: Cert) -> None:
    from o365_sandbox_kit import make_cert

    other = make_cert()
    world.sb.app(TENANT, CLIENT).certificate_pem = cert.cert_pem
    forged = Cert(other.key_pem, cert.cert_pem, cert.sha1_hex)  # right thumbprint, wrong key
    r = world.token_response(
        client_secret=None,
        client_assertion=_assertion(world.sb, forged),
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    body = _aad(r, 401, "invalid_client", 700027)
    assert "signature validation" in body["error_description"]


def test_instance_discovery_endpoint_for_msal_with_custom_discovery(world: World) -> None:
    sb = world.sb
    app = msal.ConfidentialClientApplication(
        CLIENT,
        client_credential=SECRET,
        authority=f"{sb.authority_host}/{TENANT}",
        http_client=VerifyingClient(sb),
        instance_discovery=f"{sb.authority_host}/common/discovery/instance",
    )
    assert "access_token" in app.acquire_token_for_client([GRAPH_SCOPE])
    assert any(r.path.startswith("/common/discovery/instance") for r in sb.requests)


def test_loop_detection_is_opt_in(world: World) -> None:
    for _ in range(3):
        assert world.token_response().status_code == 200
    world.sb.loop_detection = (3, 60)
    _aad(world.token_response(), 400, "invalid_request", 50196)
    world.sb.loop_detection = None
    assert world.token_response().status_code == 200
