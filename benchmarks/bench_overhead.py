"""Benchmark 1: per-message cost of the whole pipeline against a bare msal + requests loop.

Pipeline: ``Mailer.send`` (render config.example.yaml's invoice template, prepare/confirm hooks,
duplicate check, journal queued → sending (fsynced before the request; the plugin prepares the
request meanwhile) → sent, sent hooks, info logging as JSON lines to a file) through the Office
365 plugin's Graph ``sendMail``.
Bare loop: ``msal.ConfidentialClientApplication.acquire_token_for_client`` once (token reused),
then ``requests`` posts the same sendMail JSON (same subject/body/recipient/from, its own
internetMessageId, the same PDF as base64 fileAttachment) on one keep-alive session.
Both talk to the same sandbox, which runs in its own process. Warm-up, then ROUNDS rounds of N
messages per arm, arms alternating every BLOCK messages; each round gives a ratio of the two arms
measured in the same seconds, and the median of those ratios counts (the machine's speed drifts
between rounds; a ratio of two medians could pair a slow round with a fast one).
"""

from __future__ import annotations

import base64
import cProfile
import json
import os
import re
import statistics
import tempfile
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
    invoice_data,
    main,
    write_config,
)

N = 200
#: messages per arm before switching to the other arm
BLOCK = 20
ROUNDS = 5
WARMUP = 20
MAILBOX = f"rechnung@{DOMAIN}"
TARGET = 1.5
#: the log level of config.example.yaml; BENCH_LOG_LEVEL=warning shows what the info lines cost
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "info")


def run() -> list[Result]:
    from ccm_mail_hookspecs import Status

    from ccm_mail_core import Mailer, logging_setup

    fsync = os.environ.get("BENCH_JOURNAL_FSYNC")  # analysis only: "none" or "all" instead of the claim
    if fsync:
        from ccm_mail_core import journal
        tx = journal.Journal._tx
        journal.Journal._tx = lambda self, *, durable=True, before_commit=None: tx(  # type: ignore[method-assign]
            self, durable=fsync == "all", before_commit=before_commit)
        print(f"   ANALYSIS: journal fsync on {fsync} commits (not the shipped behaviour)")
    with tempfile.TemporaryDirectory(prefix="ccm-bench1-") as tmp, SandboxProcess(Path(tmp) / "sandbox") as sb:
        sb.seed([MAILBOX])
        cfg = write_config(Path(tmp) / "ccm-mail.yaml", sb, {"Rechnungsversand": MAILBOX},
                           limits={"messages": 1_000_000, "per_seconds": 1})
        log_file = open(Path(tmp) / "ccm-mail.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        logging_setup.configure(fmt="json", level=LOG_LEVEL, stream=log_file)
        mailer = Mailer.from_config(cfg)
        from_name = mailer.config.accounts["Rechnungsversand"].from_name
        counter = iter(range(10**9))

        def pipeline(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                r = mailer.send("invoice", to=[f"kunde{i}@example.de"], data=invoice_data(i, "P"),
                                attachments=[EXAMPLE_PDF], assume_yes=True)
                assert r.status is Status.SENT, r.error

        # --- the bare loop -----------------------------------------------------------------
        subject_t, body_t = yaml_template(cfg)
        # msal's own calls take no verify=: its session must not read REQUESTS_CA_BUNDLE
        token_session = requests.Session()
        token_session.trust_env = False
        token_session.verify = sb.ca_pem
        app = msal.ConfidentialClientApplication(CLIENT, client_credential=SECRET,
                                                 authority=f"{sb.info['authority_host']}/{TENANT}",
                                                 http_client=token_session, instance_discovery=False)
        session = requests.Session()  # an ordinary session; verify= per request (REQUESTS_CA_BUNDLE)
        token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])["access_token"]
        url = f"{sb.info['graph_endpoint']}/v1.0/users/{MAILBOX}/sendMail"
        field = re.compile(r"#(\w+)#")

        def bare_json(i: int) -> dict:
            data = invoice_data(i, "X")
            return {"message": {
                "subject": field.sub(lambda m: data[m.group(1)], subject_t),
                "body": {"contentType": "Text", "content": field.sub(lambda m: data[m.group(1)], body_t)},
                "toRecipients": [{"emailAddress": {"address": f"kunde{i}@example.de"}}],
                "from": {"emailAddress": {"address": MAILBOX, "name": from_name}},
                "internetMessageId": make_msgid(domain=DOMAIN),
                "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": EXAMPLE_PDF.name,
                                 "contentType": "application/pdf",
                                 "contentBytes": base64.b64encode(EXAMPLE_PDF.read_bytes()).decode("ascii"),
                                 "isInline": False}]},
                "saveToSentItems": True}

        def bare(n: int) -> None:
            for _ in range(n):
                i = next(counter)
                resp = session.post(url, json=bare_json(i), headers={"Authorization": "Bearer " + token},
                                    verify=sb.ca_pem, timeout=(10, 60))
                assert resp.status_code == 202, resp.text

        # the same JSON: compare the plugin's request body with the bare loop's for one message
        from ccm_mail_office365.payload import file_attachment, message_json
        preview = mailer.build("invoice", to=["kunde1@example.de"], data=invoice_data(1, "X"),
                               attachments=[EXAMPLE_PDF])
        plugin_msg = message_json(preview.message, MAILBOX)
        plugin_msg["attachments"] = [file_attachment(a) for a in preview.message.attachments]
        plugin_body = {"message": plugin_msg, "saveToSentItems": True}
        bare_body = bare_json(1)
        same_shape = (set(plugin_msg) == set(bare_body["message"])
                      and plugin_msg["body"] == bare_body["message"]["body"]
                      and plugin_msg["attachments"] == bare_body["message"]["attachments"])
        assert same_shape, (plugin_msg, bare_body)
        size_p, size_b = len(json.dumps(plugin_body)), len(json.dumps(bare_body))

        pipeline(WARMUP)
        bare(WARMUP)
        times: dict[str, list[float]] = {"pipeline": [], "bare": []}
        profile = os.environ.get("BENCH_PROFILE")  # PREFIX: cProfile each arm into PREFIX.<arm>
        profilers = {name: cProfile.Profile() for name in times} if profile else {}
        # arms alternate in blocks of BLOCK messages, so both see the same load on the machine
        for _ in range(ROUNDS):
            spent = {"bare": 0.0, "pipeline": 0.0}
            for _ in range(N // BLOCK):
                for name, fn in (("bare", bare), ("pipeline", pipeline)):
                    if profilers:
                        profilers[name].enable()
                    t0 = time.perf_counter()
                    fn(BLOCK)
                    spent[name] += time.perf_counter() - t0
                    if profilers:
                        profilers[name].disable()
            for name, seconds in spent.items():
                times[name].append(seconds / N * 1000)
        for name, profiler in profilers.items():
            profiler.dump_stats(f"{profile}.{name}")
        mailer.close()
        log_file.close()
        sent = sb.call("stats")["sent"]
        expected = (WARMUP + N * ROUNDS) * 2
        assert sent == expected, f"sandbox accepted {sent}, expected {expected}"
    p, b = statistics.median(times["pipeline"]), statistics.median(times["bare"])
    ratio = statistics.median(x / y for x, y in zip(times["pipeline"], times["bare"], strict=True))
    rounds = "; ".join(f"pipeline {x:.2f} / bare {y:.2f}" for x, y in zip(times["pipeline"], times["bare"], strict=True))
    print(f"   request body: plugin {size_p} bytes, bare loop {size_b} bytes; rounds (ms/msg): {rounds}")
    return [Result("1a pipeline ms/message", round(p, 2), "ms", "-", None, f"median of {ROUNDS}x{N}"),
            Result("1b bare msal+requests ms/message", round(b, 2), "ms", "-", None, f"median of {ROUNDS}x{N}"),
            Result("1 pipeline / bare", round(ratio, 2), "x", f"<= {TARGET}", ratio <= TARGET,
                   f"median of {ROUNDS} rounds' ratios")]


def yaml_template(cfg: Path) -> tuple[str, str]:
    import yaml
    template = yaml.safe_load(cfg.read_text("utf-8"))["templates"]["invoice"]
    return str(template["subject"]), str(template["body"])


if __name__ == "__main__":
    main("Benchmark 1: per-message overhead, pipeline vs bare msal+requests", run)
