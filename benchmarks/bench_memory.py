"""Benchmark 4: peak memory sending one 100 MB attachment through the pipeline.

A fresh subprocess imports ccm-mail, loads the config and gets a token (idle), then sends one
invoice with a 100 MB PDF-named file of random bytes through ``Mailer.send``; the Office 365
plugin takes the upload-session route (draft, createUploadSession, 3.75 MB PUTs, send). Memory
comes from /proc/self/status: VmRSS when idle (the peak VmHWM is reset there through
/proc/self/clear_refs, so it only sees the send), VmHWM after the send. The sandbox runs in its
own process and streams the upload to disk; its mailbox allows 200 MB messages (Exchange Online's
default is 35 MB, an admin can raise it to 150 MB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import DOMAIN, Result, SandboxProcess, invoice_data, main, write_config

SIZE = 100 * 1024 * 1024
MAILBOX = f"rechnung@{DOMAIN}"
TARGET_MB = 40


def status() -> dict[str, int]:
    """VmRSS, VmHWM … of this process, in kB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Vm"):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def child(config: str, attachment: str, result_file: str) -> None:
    """Runs in the fresh subprocess."""
    from ccm_mail_hookspecs import Status

    from ccm_mail_core import Mailer, logging_setup

    log = open(Path(result_file).with_suffix(".log"), "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    logging_setup.configure(fmt="json", level="info", stream=log)
    mailer = Mailer.from_config(config)
    mailer.transport("Rechnungsversand").tokens.token()  # type: ignore[attr-defined]
    before_reset = status()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    idle = status()
    result = mailer.send(
        "invoice", to=["kunde@example.de"], data=invoice_data(1, "M"), attachments=[attachment], assume_yes=True
    )
    after = status()
    assert result.status is Status.SENT, result.error
    mailer.close()
    Path(result_file).write_text(
        json.dumps(
            {
                "before_reset": before_reset,
                "idle": idle,
                "after": after,
                "reset": reset,
                "route": result.receipt.transport_ids.get("route"),
            }
        )
    )


def run() -> list[Result]:
    with (
        tempfile.TemporaryDirectory(prefix="ccm-bench4-") as tmp_name,
        SandboxProcess(Path(tmp_name) / "sandbox") as sb,
    ):
        tmp = Path(tmp_name)
        sb.seed([MAILBOX], max_message_size=200 * 1024 * 1024)
        cfg = write_config(
            tmp / "ccm-mail.yaml", sb, {"Rechnungsversand": MAILBOX}, limits={"messages": 1000, "per_seconds": 1}
        )
        big = tmp / "Rechnungsanlagen-RE-M-000001.pdf"
        with big.open("wb") as fh:
            for _ in range(SIZE // (1024 * 1024)):
                fh.write(os.urandom(1024 * 1024))
        out = tmp / "child.json"
        subprocess.run(
            [sys.executable, __file__, "--child", str(cfg), str(big), str(out)],
            check=True,
            timeout=600,
            env={**os.environ},
        )
        data = json.loads(out.read_text())
        sent = sb.call("sent")
    assert len(sent) == 1 and sent[0]["size"] == SIZE, sent
    idle_kb = data["idle"]["VmRSS"] if data["reset"] else data["idle"]["VmHWM"]
    peak_kb = data["after"]["VmHWM"]
    delta_mb = (peak_kb - idle_kb) / 1024
    print(
        f"   route {data['route']}; idle VmRSS {data['idle']['VmRSS'] / 1024:.1f} MB (VmHWM before reset "
        f"{data['before_reset']['VmHWM'] / 1024:.1f} MB, reset {'done' if data['reset'] else 'not possible'}); "
        f"peak VmHWM after sending {peak_kb / 1024:.1f} MB; VmRSS after {data['after']['VmRSS'] / 1024:.1f} MB; "
        f"sandbox received {sent[0]['size'] / 2**20:.0f} MB"
    )
    return [
        Result(
            "4 peak memory above idle, 100 MB attachment",
            round(delta_mb, 1),
            "MB",
            f"<= {TARGET_MB}",
            delta_mb <= TARGET_MB,
            f"idle {idle_kb / 1024:.1f} MB, peak {peak_kb / 1024:.1f} MB",
        )
    ]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main("Benchmark 4: peak memory, one 100 MB attachment (upload session)", run)
