"""Benchmark 1: what the pipeline costs a user, against a bare msal + requests loop.

Pipeline: ``Mailer.send`` (render config.example.yaml's invoice template, hooks, duplicate check,
journal queued → sending (fsynced before the request) → sent, info logging as JSON lines to a
file) through the Office 365 plugin's Graph ``sendMail``. Bare loop: msal's
``acquire_token_for_client`` once, then ``requests`` posts the same sendMail JSON (same subject,
body, recipient, from, the same PDF as base64) on one keep-alive session. Both talk to the same
sandbox in its own process.

1a/1b  steady state with 50 ms added Graph latency (what Graph's 100–300 ms makes of it):
       messages per second of each arm, sequential; target: pipeline ≥ 0.95 × bare.
1c/1d  CPU of this process per message at zero latency (the sandbox's CPU is not counted);
       target: pipeline ≤ 2 × bare.
1e     one cold ``ccm-mail send`` per invoice (new process, token cached from an earlier call),
       wall time, against a bare one-shot script as an integrator writes it (new process: msal's
       in-memory cache, so it asks Entra for a token, then one requests POST); target ≤ 1.3 ×.
1f     the same against a bare one-shot script that also keeps msal's token cache in a file (no
       token request; shown for comparison, no target).

Arms alternate in blocks so both see the same load on the machine; each figure is the median of
the rounds' pairwise ratios.
"""

from __future__ import annotations

import base64
import json
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from email.utils import make_msgid
from pathlib import Path

import msal
import requests
from _common import (
    CLIENT,
    DOMAIN,
    EXAMPLE_PDF,
    SECRET,
    TENANT,
    Result,
    SandboxProcess,
    ccm_mail_cmd,
    cli_env,
    invoice_data,
    main,
    write_config,
)

MAILBOX = f"rechnung@{DOMAIN}"
LATENCY = 0.05
LATENCY_N, LATENCY_BLOCK = 60, 10
CPU_N, CPU_BLOCK = 200, 20
ROUNDS = 5
COLD_PAIRS = 7

BARE_ONE_SHOT = """
import base64, json, sys
from email.utils import make_msgid
import msal, requests
a = json.loads(sys.argv[1])
cache = msal.SerializableTokenCache()
try:
    if a["cache"]:
        cache.deserialize(open(a["cache"], encoding="utf-8").read())
except OSError:
    pass
session = requests.Session()
session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
session.verify = a["ca"]
app = msal.ConfidentialClientApplication(a["client"], client_credential=a["secret"], authority=a["authority"],
                                         token_cache=cache, http_client=session, instance_discovery=False)
token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])["access_token"]
if a["cache"] and cache.has_state_changed:
    open(a["cache"], "w", encoding="utf-8").write(cache.serialize())
pdf = open(a["pdf"], "rb").read()
body = {"message": {"subject": a["subject"], "body": {"contentType": "Text", "content": a["body"]},
        "toRecipients": [{"emailAddress": {"address": a["to"]}}], "internetMessageId": make_msgid(domain="codicon.de"),
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "RE-2026-00042.pdf",
                         "contentType": "application/pdf", "contentBytes": base64.b64encode(pdf).decode()}]},
        "saveToSentItems": True}
r = session.post(a["url"], json=body, headers={"Authorization": "Bearer " + token}, timeout=(10, 60))
sys.exit(0 if r.status_code == 202 else 1)
"""


def run() -> list[Result]:
    from ccm_mail_core import Mailer, logging_setup
    from ccm_mail_hookspecs import Status

    with tempfile.TemporaryDirectory(prefix="ccm-bench1-") as tmp, SandboxProcess(Path(tmp) / "sandbox") as sb:
        sb.seed([MAILBOX])
        cfg = write_config(
            Path(tmp) / "ccm-mail.yaml",
            sb,
            {"Rechnungsversand": MAILBOX},
            limits={"messages": 1_000_000, "per_seconds": 1},
        )
        log_file = open(Path(tmp) / "ccm-mail.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        logging_setup.configure(fmt="json", level="info", stream=log_file)
        mailer = Mailer.from_config(cfg)
        from_name = mailer.config.accounts["Rechnungsversand"].from_name
        counter = iter(range(10**9))
        subject_t, body_t = _template(cfg)
        field = re.compile(r"#(\w+)#")

        def pipeline(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                r = mailer.send(
                    "invoice",
                    to=[f"kunde{i}@example.de"],
                    data=invoice_data(i, "P"),
                    attachments=[EXAMPLE_PDF],
                    assume_yes=True,
                )
                assert r.status is Status.SENT, r.error

        token_session = requests.Session()
        token_session.trust_env = False  # msal's calls take no verify=: REQUESTS_CA_BUNDLE must not override
        token_session.verify = sb.ca_pem
        app = msal.ConfidentialClientApplication(
            CLIENT,
            client_credential=SECRET,
            authority=f"{sb.info['authority_host']}/{TENANT}",
            http_client=token_session,
            instance_discovery=False,
        )
        session = requests.Session()
        token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])["access_token"]
        url = f"{sb.info['graph_endpoint']}/v1.0/users/{MAILBOX}/sendMail"
        pdf64 = base64.b64encode(EXAMPLE_PDF.read_bytes()).decode("ascii")

        def bare(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                data = invoice_data(i, "X")
                fill = lambda m, data=data: data[m.group(1)]  # noqa: E731
                body = {
                    "message": {
                        "subject": field.sub(fill, subject_t),
                        "body": {"contentType": "Text", "content": field.sub(fill, body_t)},
                        "toRecipients": [{"emailAddress": {"address": f"kunde{i}@example.de"}}],
                        "from": {"emailAddress": {"address": MAILBOX, "name": from_name}},
                        "internetMessageId": make_msgid(domain=DOMAIN),
                        "attachments": [
                            {
                                "@odata.type": "#microsoft.graph.fileAttachment",
                                "name": EXAMPLE_PDF.name,
                                "contentType": "application/pdf",
                                "contentBytes": pdf64,
                                "isInline": False,
                            }
                        ],
                    },
                    "saveToSentItems": True,
                }
                resp = session.post(
                    url, json=body, headers={"Authorization": "Bearer " + token}, verify=sb.ca_pem, timeout=(10, 60)
                )
                assert resp.status_code == 202, resp.text

        pipeline(20)
        bare(20)
        sb.call("latency", LATENCY)
        wall = _alternate(pipeline, bare, LATENCY_N, LATENCY_BLOCK, time.perf_counter)
        sb.call("latency", 0)
        cpu = _alternate(pipeline, bare, CPU_N, CPU_BLOCK, time.process_time)
        mailer.close()
        log_file.close()
        cold = _cold(sb, cfg, Path(tmp), subject_t, body_t, cache=False)
        cold_cached = _cold(sb, cfg, Path(tmp), subject_t, body_t, cache=True)

    throughput = statistics.median(b / p for p, b in zip(wall["pipeline"], wall["bare"], strict=True))
    cpu_ratio = statistics.median(p / b for p, b in zip(cpu["pipeline"], cpu["bare"], strict=True))
    cold_ratio = statistics.median(a / b for a, b in cold)
    cached_ratio = statistics.median(a / b for a, b in cold_cached)
    per = {
        k: statistics.median(v) / n * 1000
        for (k, v), n in (
            (("lat_p", wall["pipeline"]), LATENCY_N),
            (("lat_b", wall["bare"]), LATENCY_N),
            (("cpu_p", cpu["pipeline"]), CPU_N),
            (("cpu_b", cpu["bare"]), CPU_N),
        )
    }
    return [
        Result(
            "1a pipeline / bare throughput, 50 ms Graph latency",
            round(throughput, 3),
            "x",
            ">= 0.95",
            throughput >= 0.95,
            f"{1000 / per['lat_p']:.1f} vs {1000 / per['lat_b']:.1f} msg/s, sequential",
        ),
        Result("1b CPU per message, pipeline", round(per["cpu_p"], 2), "ms", "-", None, "zero latency"),
        Result("1c CPU per message, bare msal+requests", round(per["cpu_b"], 2), "ms", "-", None, "zero latency"),
        Result(
            "1d CPU per message, pipeline / bare",
            round(cpu_ratio, 2),
            "x",
            "<= 2",
            cpu_ratio <= 2.0,
            f"median of {ROUNDS} rounds",
        ),
        Result(
            "1e cold ccm-mail send / bare one-shot script",
            round(cold_ratio, 2),
            "x",
            "<= 1.3",
            cold_ratio <= 1.3,
            f"{statistics.median(a for a, _ in cold):.3f} vs {statistics.median(b for _, b in cold):.3f} s wall, "
            f"median of {COLD_PAIRS} pairs",
        ),
        Result(
            "1f cold ccm-mail send / bare one-shot keeping a token file",
            round(cached_ratio, 2),
            "x",
            "-",
            None,
            f"{statistics.median(a for a, _ in cold_cached):.3f} vs "
            f"{statistics.median(b for _, b in cold_cached):.3f} s wall",
        ),
    ]


def _alternate(pipeline, bare, n: int, block: int, clock) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """ROUNDS rounds; in each, both arms send n messages in alternating blocks; seconds per arm."""
    spent: dict[str, list[float]] = {"pipeline": [], "bare": []}
    for _ in range(ROUNDS):
        total = {"pipeline": 0.0, "bare": 0.0}
        for _ in range(n // block):
            for name, fn in (("bare", bare), ("pipeline", pipeline)):
                t0 = clock()
                fn(block)
                total[name] += clock() - t0
        for name, seconds in total.items():
            spent[name].append(seconds)
    return spent


def _cold(
    sb: SandboxProcess, cfg: Path, tmp: Path, subject: str, body: str, *, cache: bool
) -> list[tuple[float, float]]:
    """(ccm-mail send, bare one-shot) wall seconds, in pairs; each process sends one invoice.
    ``cache``: the bare script keeps msal's token cache in a file between runs. Both run as an
    installed program does, with bytecode caches (this workplace sets PYTHONDONTWRITEBYTECODE,
    which would make every run compile ccm-mail from source, a cost no installation has)."""
    env = {k: v for k, v in cli_env(cfg).items() if k != "PYTHONDONTWRITEBYTECODE"}
    args = {
        "cache": str(tmp / "bare-token-cache.json") if cache else "",
        "ca": sb.ca_pem,
        "client": CLIENT,
        "secret": SECRET,
        "authority": f"{sb.info['authority_host']}/{TENANT}",
        "pdf": str(EXAMPLE_PDF),
        "subject": subject,
        "body": body,
        "to": "kunde@example.de",
        "url": f"{sb.info['graph_endpoint']}/v1.0/users/{MAILBOX}/sendMail",
    }
    script = textwrap.dedent(BARE_ONE_SHOT)
    pairs = []
    for i in range(COLD_PAIRS + 1):  # the first pair warms both token caches and the OS file cache
        data = json.dumps(invoice_data(10**6 + i, "C" if cache else "N"))
        t0 = time.perf_counter()
        ours = subprocess.run(
            [
                *ccm_mail_cmd(),
                "send",
                "--purpose",
                "invoice",
                "--to",
                "kunde@example.de",
                "--attach",
                str(EXAMPLE_PDF),
                "--data",
                "-",
                "--yes",
                "--log-level",
                "warning",
            ],
            input=data,
            text=True,
            env=env,
            capture_output=True,
            timeout=120,
        )
        a = time.perf_counter() - t0
        assert ours.returncode == 0, ours.stderr
        t0 = time.perf_counter()
        theirs = subprocess.run(
            [sys.executable, "-c", script, json.dumps(args)], env=env, capture_output=True, timeout=120, text=True
        )
        b = time.perf_counter() - t0
        assert theirs.returncode == 0, theirs.stderr
        if i:
            pairs.append((a, b))
    return pairs


def _template(cfg: Path) -> tuple[str, str]:
    import yaml

    template = yaml.safe_load(cfg.read_text("utf-8"))["templates"]["invoice"]
    return str(template["subject"]), str(template["body"])


if __name__ == "__main__":
    main("Benchmark 1: what the pipeline costs a user, against bare msal+requests", run)
