"""Where benchmark 1's pipeline time goes: wall-clock time per message in each stage of
``Mailer.send`` (no profiler, so C calls such as fsync are not distorted). Analysis aid, not one
of the five benchmarks; stages nest (TOTAL ⊃ deliver ⊃ … ⊃ http).

    python benchmarks/breakdown_overhead.py [LOG_LEVEL]
"""

from __future__ import annotations

import collections
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import DOMAIN, EXAMPLE_PDF, SandboxProcess, invoice_data, write_config

N = 300
spent: collections.Counter[str] = collections.Counter()


def wrap(owner: Any, name: str, label: str) -> None:
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - t0
    setattr(owner, name, timed)


def main(level: str) -> None:
    from ccm_mail_office365 import graph, session, tokens, transport

    from ccm_mail_core import Mailer, api, journal, logging_setup, pacing, plugin_manager, prepare_ahead
    for owner, name, label in [
            (api.Mailer, "send", "TOTAL Mailer.send"), (api.Mailer, "build", "render (build)"),
            (api.Mailer, "_refuse_duplicate", "duplicate pre-check (only with hooks or a dialog)"),
            (api.Mailer, "_prepare", "prepare hooks"),
            (api.Mailer, "_confirm", "confirm hook"), (api.Mailer, "deliver", "deliver"),
            (journal.Journal, "create", "journal create + claim (fsync; prepare runs meanwhile)"),
            (journal.Journal, "transition", "journal transition (sent)"),
            (prepare_ahead.PrepareAhead, "_prepare", "transport prepare (helper thread, overlapped)"),
            (prepare_ahead.PrepareAhead, "step", "waiting for the prepared request"),
            (pacing.Pacer, "acquire", "pacer"), (api.Mailer, "_send_claimed", "send claimed"),
            (transport, "plan", "route plan (in prepare)"),
            (tokens.TokenProvider, "token", "token"), (graph.GraphClient, "call", "graph call"),
            (session.PinnedSession, "request", "http (requests)"),
            (plugin_manager.PluginHost, "call_each", "sent hooks"),
            (logging_setup, "redact_processor", "log redaction")]:
        wrap(owner, name, label)
    mailbox = f"rechnung@{DOMAIN}"
    with tempfile.TemporaryDirectory(prefix="ccm-breakdown-") as tmp, SandboxProcess(Path(tmp) / "sb") as sb:
        sb.seed([mailbox])
        cfg = write_config(Path(tmp) / "ccm-mail.yaml", sb, {"Rechnungsversand": mailbox},
                           limits={"messages": 1_000_000, "per_seconds": 1})
        with open(Path(tmp) / "ccm-mail.log", "w", encoding="utf-8") as log:
            logging_setup.configure(fmt="json", level=level, stream=log)
            with Mailer.from_config(cfg) as mailer:
                for i in range(N + 20):
                    if i == 20:
                        spent.clear()  # after the warm-up
                    mailer.send("invoice", to=[f"kunde{i}@example.de"], data=invoice_data(i, "D"),
                                attachments=[EXAMPLE_PDF], assume_yes=True)
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{label:56s} {seconds / N * 1000:7.3f} ms/message")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "info")
