"""Run the sandbox standalone for a demo.

    python -m ccm_mail_office365_sandbox --state-dir DIR [--port N] [--proxy-port N] [--config seed.yaml]

Prints the endpoints (and writes them to ``DIR/sandbox.json``), seeds tenants, apps and mailboxes
from the config file, and writes every received mail to ``DIR/mailboxes/<address>/``. Runs until
SIGTERM or Ctrl-C. Seed file (YAML or JSON)::

    consent_behaviour: ask          # accept | deny | ask
    tenants:
      - tenant_id: 11111111-2222-3333-4444-555555555555
        display_name: Contoso
        domains: [contoso.de]
        apps:
          - client_id: 22222222-3333-4444-5555-666666666666
            secret: demo-secret          # or certificate_pem_file: cert.pem
            permissions: [Mail.Send, Mail.ReadWrite, Mail.ReadBasic.All]
            consented: false
            redirect_uris: ["http://localhost:8400/"]
        mailboxes:
          - address: rechnung@contoso.de
            send_as: [buchhaltung@contoso.de]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .sandbox import Sandbox


def load_seed(path: Path) -> dict[str, Any]:
    text = path.read_text("utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # type: ignore[import-untyped]  # optional: only a YAML seed needs it

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: the seed must be a mapping")
    return data


def apply_seed(sb: Sandbox, seed: dict[str, Any], base: Path) -> None:
    if "consent_behaviour" in seed:
        sb.consent_behaviour = seed["consent_behaviour"]
    if "token_lifetime" in seed:
        sb.token_lifetime = int(seed["token_lifetime"])
    for t in seed.get("tenants", []):
        tenant = sb.add_tenant(
            t.get("tenant_id"),
            display_name=t.get("display_name"),
            domains=t.get("domains", ()),
            cloud=t.get("cloud", "global"),
        )
        for a in t.get("apps", []):
            pem = a.get("certificate_pem")
            if a.get("certificate_pem_file"):
                pem = (base / a["certificate_pem_file"]).read_text("ascii")
            sb.add_app(
                tenant.tenant_id,
                a.get("client_id"),
                secret=a.get("secret"),
                certificate_pem=pem,
                permissions=a.get("permissions", ["Mail.Send"]),
                consented=a.get("consented", True),
                secret_expired=a.get("secret_expired", False),
                redirect_uris=a.get("redirect_uris", ()),
                display_name=a.get("display_name"),
            )
        for m in t.get("mailboxes", []):
            sb.add_mailbox(
                tenant.tenant_id,
                m["address"],
                licensed=m.get("licensed", True),
                send_as=m.get("send_as", ()),
                display_name=m.get("display_name"),
            )
            if "rate" in m:
                sb.set_rate(m["address"], *m["rate"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ccm_mail_office365_sandbox", description="Local Microsoft 365 (Entra ID + Graph mail) sandbox"
    )
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="HTTPS port (default: any free port)")
    p.add_argument("--proxy-port", type=int, default=0, help="CONNECT proxy port")
    p.add_argument("--config", type=Path, help="seed file (YAML or JSON)")
    p.add_argument("-v", "--verbose", action="store_true", help="log requests (secrets redacted)")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    sb = Sandbox(args.state_dir, host=args.host, port=args.port, proxy_port=args.proxy_port, write_mailbox_files=True)
    sb.start()
    try:
        if args.config:
            apply_seed(sb, load_seed(args.config), args.config.parent)
        info = sb.describe()
        (args.state_dir / "sandbox.json").write_text(json.dumps(info, indent=2), "utf-8")
        print(json.dumps(info, indent=2), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
