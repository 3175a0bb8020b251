"""What the service last learnt about each account: the last connection test (*Verbindung
testen*), the last admin consent (*Admin Berechtigung erteilen*) and when the account was last
saved, so the account list can say "tested ✔ on …" or "changed since the last test".

Kept in one small JSON file in the service's state folder (owner-only, replaced atomically); it is
a record of outcomes, never of settings or secrets: the step texts of a test are the ones the API
answered with, which never carry a secret.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from ccm_mail_core.journal import now


class AccountStatus:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".accounts.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=True, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _update(self, account: str, key: str, value: Any) -> None:
        with self._lock:
            data = self._read()
            data.setdefault(account, {})[key] = value
            self._write(data)

    def get(self, account: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._read().get(account, {}))

    def record_test(self, account: str, ok: bool, steps: list[dict[str, Any]]) -> None:
        self._update(account, "test", {"ok": ok, "at": now().isoformat(), "steps": steps})

    def record_consent(self, account: str, result: Any, error: dict[str, Any] | None) -> None:
        if isinstance(result, dict):
            entry = {
                "ok": bool(result.get("ok")),
                "status": str(result.get("status")),
                "at": now().isoformat(),
                "message": result.get("message"),
            }
        else:
            entry = {"ok": False, "status": "error", "at": now().isoformat(), "message": (error or {}).get("message")}
        self._update(account, "consent", entry)

    def record_saved(self, account: str) -> None:
        self._update(account, "saved_at", now().isoformat())
