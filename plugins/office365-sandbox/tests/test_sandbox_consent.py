"""Admin consent ("Admin Berechtigung erteilen"): redirects, the page, and what consent changes."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from o365_sandbox_kit import CLIENT, MAILBOX, TENANT, World

REDIRECT = "http://localhost:8400/"


@pytest.fixture
def unconsented(world: World) -> World:
    world.sb.app(TENANT, CLIENT).consented = False
    return world


def _get(world: World, url: str, **kw: object):  # type: ignore[no-untyped-def]
    return world.http.get(url, allow_redirects=False, verify=world.sb.ca_pem, **kw)


def test_without_consent_token_has_no_roles_and_graph_says_access_denied(unconsented: World) -> None:
    r = unconsented.send()
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "ErrorAccessDenied"
    assert r.json()["error"]["message"] == "Access is denied. Check credentials and try again."


def test_accept_redirects_with_admin_consent_true_and_state(unconsented: World) -> None:
    sb = unconsented.sb
    sb.consent_behaviour = "accept"
    old_token = unconsented.token()
    r = _get(unconsented, sb.admin_consent_url("contoso.de", CLIENT, REDIRECT, state="xyz-123"))
    assert r.status_code == 302
    loc = urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == REDIRECT
    q = {k: v[0] for k, v in parse_qs(loc.query).items()}
    assert q["admin_consent"] == "True" and q["tenant"] == TENANT and q["state"] == "xyz-123"
    assert "https://graph.microsoft.com/Mail.Send" in q["scope"].split()
    assert sb.app(TENANT, CLIENT).consented
    # roles are fixed when a token is issued: the old token still lacks them, a new one has them
    assert unconsented.send(token=old_token).status_code == 403
    assert unconsented.send().status_code == 202


def test_deny_redirects_with_access_denied(unconsented: World) -> None:
    sb = unconsented.sb
    sb.consent_behaviour = "deny"
    r = _get(unconsented, sb.admin_consent_url(TENANT, CLIENT, REDIRECT, state="s1"))
    assert r.status_code == 302
    q = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    assert q["error"] == "access_denied" and q["state"] == "s1"
    assert q["error_description"].startswith("AADSTS65004: User declined to consent")
    assert not sb.app(TENANT, CLIENT).consented


def test_ask_shows_the_page_and_the_buttons_post_the_answer(unconsented: World) -> None:
    sb = unconsented.sb
    sb.consent_behaviour = "ask"
    r = _get(unconsented, sb.admin_consent_url(TENANT, CLIENT, REDIRECT, state="st"))
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    page = r.text
    assert "Permissions requested" in page and "Send mail as any user" in page
    assert 'value="accept"' in page and 'value="cancel"' in page
    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    fields["decision"] = "accept"
    r = unconsented.http.post(f"{sb.authority_host}{action}", data=fields, allow_redirects=False, verify=sb.ca_pem)
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["Location"]).query)["admin_consent"] == ["True"]
    assert sb.app(TENANT, CLIENT).consented


def test_browsers_get_an_auto_submitting_page(unconsented: World) -> None:
    sb = unconsented.sb
    sb.consent_behaviour = "accept"
    r = _get(
        unconsented,
        sb.admin_consent_url(TENANT, CLIENT, REDIRECT),
        headers={"Accept": "text/html,application/xhtml+xml"},
    )
    assert r.status_code == 200
    assert "document.forms[0].submit()" in r.text and 'name="decision" value="accept"' in r.text
    assert not sb.app(TENANT, CLIENT).consented  # nothing happens until the form is posted


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"redirect_uri": "http://localhost:9999/"}, "AADSTS50011"),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, "AADSTS700016"),
        ({"tenant": "nowhere.example"}, "AADSTS90002"),
        ({"scope": "Mail.Send"}, "AADSTS70011"),
    ],
)
def test_bad_requests_show_an_error_page_and_never_redirect(world: World, kwargs: dict, code: str) -> None:
    world.sb.consent_behaviour = "accept"
    args = {"tenant": TENANT, "client_id": CLIENT, "redirect_uri": REDIRECT}
    scope = kwargs.pop("scope", "https://graph.microsoft.com/.default")
    args.update(kwargs)
    r = _get(
        world,
        world.sb.admin_consent_url(args["tenant"], args["client_id"], args["redirect_uri"], state="s", scope=scope),
    )
    assert r.status_code == 200 and "Location" not in r.headers
    assert code in r.text
    assert "Request Id:" in r.text and "Correlation Id:" in r.text


def test_consent_through_common(unconsented: World) -> None:
    unconsented.sb.consent_behaviour = "accept"
    r = _get(unconsented, unconsented.sb.admin_consent_url("common", CLIENT, REDIRECT))
    assert parse_qs(urlsplit(r.headers["Location"]).query)["tenant"] == [TENANT]
    assert unconsented.sb.sent_messages(MAILBOX) == []
