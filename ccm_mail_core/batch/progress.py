"""Progress of a batch: a bar with rate and ETA on a terminal, plain lines otherwise, and log
events when the logs are JSON (so a log collector reading stderr sees one JSON object per line)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import TextIO

import structlog

from ccm_mail_hookspecs import T

log = structlog.get_logger("ccm_mail.batch")


class Progress:
    def __init__(
        self, total: int, *, lang: str = "de", stream: TextIO | None = None, interval: float = 5.0, as_log: bool = False
    ) -> None:
        self.total = total
        self.lang = lang
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.as_log = as_log and not self.tty
        self.interval = 0.2 if self.tty else interval
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last = 0.0

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def add(self, status: str) -> None:
        with self._lock:
            self.counts[status] += 1
            now = time.monotonic()
            if now - self._last >= self.interval or self.done == self.total:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed * 60
        left = self.total - self.done
        eta = left / (self.done / elapsed) if self.done else 0.0
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta))
        sent = self.counts.get("sent", 0)
        other = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if k != "sent")
        if self.as_log:
            log.info(
                "progress",
                done=self.done,
                total=self.total,
                per_minute=round(rate, 1),
                eta=eta_text,
                **dict(self.counts),
            )
            return
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            bar = "█" * filled + "·" * (width - filled)
            line = f"\r[{bar}] {self.done}/{self.total}  {rate:5.1f}/min  ETA {eta_text}  {other}"
            self.stream.write(line[:160].ljust(100))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            label = T("gesendet", "sent").get(self.lang)
            self.stream.write(
                f"{self.done}/{self.total} ({label} {sent}{', ' + other if other else ''}) "
                f"{rate:.1f}/min ETA {eta_text}\n"
            )
        self.stream.flush()
