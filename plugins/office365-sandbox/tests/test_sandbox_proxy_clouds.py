"""Proxy mode: clients keep the real Microsoft host names, per national cloud."""

from __future__ import annotations

import msal
import pytest
import requests
from o365_sandbox_kit import (
    CLIENT,
    GRAPH_SCOPE,
    MAILBOX,
    SECRET,
    TENANT,
    VerifyingClient,
    World,
    simple_message,
)

from ccm_mail_office365_sandbox import Sandbox

US_TENANT = "33333333-4444-5555-6666-777777777777"
CN_TENANT = "44444444-5555-6666-7777-888888888888"


def _via(world: World, method: str, url: str, **kw: object) -> requests.Response:
    return world.http.request(
        method, url, proxies={"https": world.sb.proxy_url}, verify=world.sb.ca_pem, timeout=10, **kw
    )  # type: ignore[arg-type]


def _token(world: World, login: str, tenant: str, scope: str) -> requests.Response:
    return _via(
        world,
        "POST",
        f"https://{login}/{tenant}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": scope},
    )


def _send(world: World, graph: str, token: str, mailbox: str = MAILBOX) -> requests.Response:
    return _via(
        world,
        "POST",
        f"https://{graph}/v1.0/users/{mailbox}/sendMail",
        json={"message": simple_message()},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_global_cloud_through_the_proxy_records_the_real_hosts(world: World) -> None:
    sb = world.sb
    cfg = _via(world, "GET", f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration").json()
    assert cfg["token_endpoint"] == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert cfg["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    token = _token(world, "login.microsoftonline.com", TENANT, GRAPH_SCOPE).json()["access_token"]
    assert _send(world, "graph.microsoft.com", token).status_code == 202
    assert sb.sent_messages()[0].host == "graph.microsoft.com"
    hosts = {(r.host, r.via_proxy) for r in sb.requests}
    assert hosts == {("login.microsoftonline.com", True), ("graph.microsoft.com", True)}
    assert ("graph.microsoft.com", "443") in sb.proxy_connects


def test_msal_with_the_real_authority_through_the_proxy(world: World) -> None:
    app = msal.ConfidentialClientApplication(
        CLIENT,
        client_credential=SECRET,
        authority=f"https://login.microsoftonline.com/{TENANT}",
        http_client=VerifyingClient(world.sb, proxy=True),
    )
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result
    assert {r.host for r in world.sb.requests} == {"login.microsoftonline.com"}


def test_other_hosts_are_refused(world: World) -> None:
    with pytest.raises(requests.exceptions.ProxyError):
        _via(world, "GET", "https://example.com/")
    assert ("example.com", "443") in world.sb.proxy_connects
    assert world.sb.requests == []


def test_login_host_serves_no_graph_and_graph_host_no_login(world: World) -> None:
    token = world.token()
    assert _send(world, "login.microsoftonline.com", token).status_code == 404
    assert _token(world, "graph.microsoft.com", TENANT, GRAPH_SCOPE).status_code == 400


def test_a_global_tenant_does_not_exist_in_other_clouds(world: World) -> None:
    r = _token(world, "login.microsoftonline.us", TENANT, GRAPH_SCOPE)
    assert r.status_code == 400 and r.json()["error_codes"] == [90002]


@pytest.fixture
def us(world: World) -> World:
    world.sb.add_tenant(US_TENANT, display_name="Contoso Gov", cloud="usgov")
    world.sb.add_app(US_TENANT, CLIENT, secret=SECRET, permissions={"Mail.Send"})
    world.sb.add_mailbox(US_TENANT, "rechnung@contoso.us")
    return world


def test_us_government_clouds(us: World) -> None:
    r = _token(us, "login.microsoftonline.us", US_TENANT, GRAPH_SCOPE)
    assert r.status_code == 400 and r.json()["error_codes"] == [500011]  # .com Graph is not there
    gcch = _token(us, "login.microsoftonline.us", US_TENANT, "https://graph.microsoft.us/.default").json()
    assert _send(us, "graph.microsoft.us", gcch["access_token"], "rechnung@contoso.us").status_code == 202
    r = _send(us, "dod-graph.microsoft.us", gcch["access_token"], "rechnung@contoso.us")
    assert r.status_code == 401 and "audience" in r.json()["error"]["message"]
    dod = _token(us, "login.microsoftonline.us", US_TENANT, "https://dod-graph.microsoft.us/.default").json()
    assert _send(us, "dod-graph.microsoft.us", dod["access_token"], "rechnung@contoso.us").status_code == 202
    assert _send(us, "graph.microsoft.com", dod["access_token"], "rechnung@contoso.us").status_code == 401


def test_china_cloud(world: World) -> None:
    sb: Sandbox = world.sb
    sb.add_tenant(CN_TENANT, cloud="china")
    sb.add_app(CN_TENANT, CLIENT, secret=SECRET)
    sb.add_mailbox(CN_TENANT, "rechnung@contoso.cn")
    cfg = _via(world, "GET", f"https://login.chinacloudapi.cn/{CN_TENANT}/v2.0/.well-known/openid-configuration").json()
    assert cfg["msgraph_host"] == "microsoftgraph.chinacloudapi.cn"
    token = _token(
        world, "login.chinacloudapi.cn", CN_TENANT, "https://microsoftgraph.chinacloudapi.cn/.default"
    ).json()["access_token"]
    assert _send(world, "microsoftgraph.chinacloudapi.cn", token, "rechnung@contoso.cn").status_code == 202
