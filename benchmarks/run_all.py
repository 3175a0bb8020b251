"""Run the benchmarks (issues 4, 10, 13 and 15; the PostgreSQL one needs Debian's postgresql),
each in its own process, and print one table.

    python benchmarks/run_all.py          (make bench: the same with .venv/bin/python)

Exit code 0 when every target is met, 1 otherwise (or when a benchmark crashed).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_overhead.py",
    "bench_tokens.py",
    "bench_throughput.py",
    "bench_memory.py",
    "bench_crash.py",
    "bench_pg.py",
    "bench_server.py",
]
#: bound for one benchmark script
SCRIPT_TIMEOUT = 1200


def main() -> int:
    rows: list[dict[str, object]] = []
    crashed: list[str] = []
    started = time.monotonic()
    cores = len(__import__("os").sched_getaffinity(0))
    print(f"ccm-mail benchmarks: Python {platform.python_version()}, {cores} cores, {platform.machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ccm-bench-") as tmp:
        for script in SCRIPTS:
            out = Path(tmp) / (script + ".json")
            try:
                proc = subprocess.run(
                    [sys.executable, str(HERE / script), "--json", str(out)],
                    cwd=HERE,
                    check=False,
                    timeout=SCRIPT_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                crashed.append(f"{script}: timed out after {SCRIPT_TIMEOUT} s")
                continue
            if not out.exists():
                crashed.append(f"{script}: exit code {proc.returncode}, no results")
                continue
            rows += json.loads(out.read_text("utf-8"))
    width = max(len(str(r["name"])) for r in rows) if rows else 20
    print()
    print(f"{'benchmark':<{width}}  {'value':>10}  {'target':>10}  result")
    print("-" * (width + 34))
    for r in rows:
        value = f"{r['value']:g}{(' ' + str(r['unit'])) if r['unit'] and r['unit'] != 'x' else str(r['unit'])}"
        print(
            f"{r['name']:<{width}}  {value:>10}  {r['target']:>10}  "
            f"{'info' if r['ok'] is None else 'PASS' if r['ok'] else 'FAIL'}"
        )
    for c in crashed:
        print(f"CRASHED  {c}")
    failed = [r for r in rows if r["ok"] is False]
    checked = [r for r in rows if r["ok"] is not None]
    print(
        f"\n{len(checked) - len(failed)} of {len(checked)} targets met"
        + (f", {len(crashed)} benchmark(s) crashed" if crashed else "")
        + f"; {time.monotonic() - started:.0f} s"
    )
    return 1 if failed or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
