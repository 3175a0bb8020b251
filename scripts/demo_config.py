"""Print config.example.yaml pointed at a running Microsoft 365 sandbox (for `make demo`).

The example stays the single source of the setup; only the sandbox's endpoints and CA, and a
journal inside demo-run/, are added.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(example: str, sandbox_json: str, run_dir: str) -> None:
    config = yaml.safe_load(Path(example).read_text(encoding="utf-8"))
    sandbox = json.loads(Path(sandbox_json).read_text(encoding="utf-8"))
    for account in config["accounts"].values():
        if account.get("type") == "office365":
            account["authority_host"] = sandbox["authority_host"]
            account["graph_endpoint"] = sandbox["graph_endpoint"]
            account["ca_bundle"] = str(Path(sandbox["ca_pem"]).resolve())
    config["journal"] = {"path": str(Path(run_dir).resolve() / "ccm-mail-journal.sqlite")}
    yaml.safe_dump(config, sys.stdout, allow_unicode=True, sort_keys=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
