"""The Microsoft 365 sandbox in its own process, for the benchmarks.

Like ``python -m ccm_mail_office365_sandbox`` (same :class:`Sandbox`, same HTTPS servers), plus
a small loopback control channel (``multiprocessing.connection`` with an auth key) so the
benchmark can seed it and read what the standalone command cannot show across processes:
token requests, the request log with status codes, 429s for the message rate, and the
internetMessageId and acceptance time of every sent message. Mail is not written to files
(``write_mailbox_files`` off), so the sandbox's own CPU per message stays small; both arms of
benchmark 1 talk to the same process.

    python benchmarks/_sandbox_server.py STATE_DIR      (auth key in $BENCH_SANDBOX_KEY)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from multiprocessing.connection import Listener
from pathlib import Path
from typing import Any

from ccm_mail_office365_sandbox import Sandbox
from ccm_mail_office365_sandbox.graph_core import GraphError


def main(state_dir: str) -> int:
    key = os.environ["BENCH_SANDBOX_KEY"].encode()
    sb = Sandbox(Path(state_dir))
    sb.start()
    counters = {"rate_429": 0}
    graph = sb._graph
    check_rate = graph._check_rate

    def counted_check_rate(mb: Any) -> None:  # count 429s for the message rate only
        try:
            check_rate(mb)
        except GraphError:
            with sb.state.lock:
                counters["rate_429"] += 1
            raise

    graph._check_rate = counted_check_rate  # type: ignore[method-assign]

    def seed(spec: dict[str, Any]) -> dict[str, Any]:
        t = sb.add_tenant(spec["tenant_id"], domains=[spec["domain"]])
        sb.add_app(
            t.tenant_id, spec["client_id"], secret=spec["secret"], permissions=spec["permissions"], consented=True
        )
        for addr in spec["mailboxes"]:
            sb.add_mailbox(t.tenant_id, addr, max_message_size=spec.get("max_message_size", 35 * 1024 * 1024))
            rate = spec.get("rate")
            if rate:
                sb.set_rate(addr, rate[0], rate[1])
        return sb.describe()

    def sent() -> list[dict[str, Any]]:
        return [
            {
                "mailbox": s.mailbox,
                "imid": s.internet_message_id,
                "at": s.sent_at.timestamp(),
                "route": s.route,
                "size": sum(a.size for a in s.attachments),
            }
            for s in sb.sent_messages()
        ]

    def requests() -> list[dict[str, Any]]:
        return [
            {"time": r.time, "method": r.method, "path": r.path.split("?")[0], "status": r.status} for r in sb.requests
        ]

    def stats() -> dict[str, Any]:
        with sb.state.lock:
            return {
                "token_requests": sb.token_request_count(),
                "token_calls": len(sb.state.token_requests),
                "sent": len(sb.state.sent),
                "requests": len(sb.state.requests),
                "rate_429": counters["rate_429"],
                "status_429": sum(1 for r in sb.state.requests if r.status == 429),
                "max_concurrency": {m: sb.max_concurrency(m) for m in sb.state.mailboxes},
            }

    def reset() -> None:
        sb.reset_counters()
        with sb.state.lock:
            sb.state.sent.clear()
            counters["rate_429"] = 0
            for mb in sb.state.mailboxes.values():
                mb.recipients_sent.clear()
                mb.recipients_sent_total = 0

    def count() -> int:
        with sb.state.lock:
            return len(sb.state.sent)

    def latency(seconds: float) -> None:
        """Every sendMail from now on waits ``seconds`` first (0: none), as real Graph does."""
        sb.faults.clear()
        if seconds:
            sb.faults.add("POST", r"/sendMail$", kind="latency", delay=seconds, count=None)

    commands = {
        "seed": seed,
        "sent": sent,
        "count": count,
        "requests": requests,
        "stats": stats,
        "reset": reset,
        "set_rate": lambda m, n, s: sb.set_rate(m, n, s),
        "latency": latency,
    }
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    listener = Listener(("127.0.0.1", 0), authkey=key)
    info = {"control": list(listener.address), "pid": os.getpid(), **sb.describe()}
    tmp = Path(state_dir) / "sandbox.json.tmp"
    tmp.write_text(json.dumps(info), "utf-8")
    os.replace(tmp, Path(state_dir) / "sandbox.json")

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = listener.accept()
            except OSError:
                return
            with conn:
                while True:
                    try:
                        name, args = conn.recv()
                    except (EOFError, OSError):
                        break
                    if name == "stop":
                        conn.send(("ok", None))
                        stop.set()
                        break
                    try:
                        conn.send(("ok", commands[name](*args)))
                    except Exception as exc:  # noqa: BLE001 - reported to the benchmark, keep serving
                        conn.send(("error", f"{type(exc).__name__}: {exc}"))

    threading.Thread(target=serve, daemon=True).start()
    # bounded: the benchmark stops us; if it died, stop after 30 minutes anyway
    stop.wait(1800)
    listener.close()
    sb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
