"""Standalone mode (``python -m ccm_mail_office365_sandbox``) and secrets in logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from o365_sandbox_kit import CLIENT, GRAPH_SCOPE, MAILBOX, SECRET, TENANT, World, simple_message

import ccm_mail_office365

SEED = {
    "consent_behaviour": "accept",
    "tenants": [
        {
            "tenant_id": TENANT,
            "display_name": "Contoso",
            "domains": ["contoso.de"],
            "apps": [
                {
                    "client_id": CLIENT,
                    "secret": SECRET,
                    "permissions": ["Mail.Send"],
                    "redirect_uris": ["http://localhost:8400/"],
                }
            ],
            "mailboxes": [{"address": MAILBOX}],
        }
    ],
}


@pytest.mark.slow
def test_standalone_run_seeds_serves_writes_files_and_stops_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    state = tmp_path / "state"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(ccm_mail_office365.__file__).parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccm_mail_office365_sandbox", "--state-dir", str(state), "--config", str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while not (state / "sandbox.json").exists():
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.1)
        info = json.loads((state / "sandbox.json").read_text())
        assert info["tenants"][0]["tenant_id"] == TENANT
        ca = info["ca_pem"]
        r = requests.post(
            f"{info['authority_host']}/{TENANT}/oauth2/v2.0/token",
            verify=ca,
            timeout=10,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "scope": GRAPH_SCOPE,
            },
        )
        token = r.json()["access_token"]
        msg = simple_message(
            attachments=[
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "Rechnung.pdf",
                    "contentBytes": "JVBERi0xLjQK",
                }
            ]
        )
        r = requests.post(
            f"{info['graph_endpoint']}/v1.0/users/{MAILBOX}/sendMail",
            json={"message": msg},
            headers={"Authorization": f"Bearer {token}"},
            verify=ca,
            timeout=10,
        )
        assert r.status_code == 202
        [folder] = list((state / "mailboxes" / MAILBOX).iterdir())
        doc = json.loads((folder / "message.json").read_text())
        assert doc["message"]["subject"] == msg["subject"]
        assert (folder / doc["attachments"][0]["file"]).read_bytes() == b"%PDF-1.4\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert json.loads(out)["graph_endpoint"] == info["graph_endpoint"]
    assert SECRET not in out.decode() and SECRET not in err.decode()


def test_logs_and_records_never_contain_secrets(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ccm_mail_office365_sandbox")
    token = world.token()
    world.token_response(client_secret="wrong-" + SECRET)
    world.send(token=token)
    r = world.graph("POST", f"/v1.0/users/{MAILBOX}/messages", token=token, json=simple_message())
    session = world.graph(
        "POST",
        f"/v1.0/users/{MAILBOX}/messages/{r.json()['id']}/attachments/createUploadSession",
        token=token,
        json={"AttachmentItem": {"attachmentType": "file", "name": "a", "size": 3 << 20}},
    ).json()
    r = world.http.put(
        session["uploadUrl"], data=b"abc", headers={"Content-Range": f"bytes 0-2/{3 << 20}"}, verify=world.sb.ca_pem
    )
    assert r.status_code == 200
    authtoken = session["uploadUrl"].split("authtoken=")[1]
    everything = caplog.text + repr(world.sb.requests) + repr(world.sb.token_requests)
    assert "/sendMail" in caplog.text  # the access log is there ...
    for secret in (SECRET, token, authtoken):
        assert secret not in everything  # ... without secrets


def test_sandbox_is_quiet_by_default(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.send()
    out, err = capsys.readouterr()
    assert out == "" and err == ""
