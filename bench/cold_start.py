"""Cold start of `tsunagari serve` in embedded mode: process launch until /readyz answers 200.

    .venv/bin/python -m bench.cold_start [--runs 3]

"first start" begins from an empty data directory (initdb, migrations, demo seed);
"restart" reuses that directory (PostgreSQL and Redis data already there).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def time_to_ready(data_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"TSUNAGARI_DATABASE_URL", "TSUNAGARI_REDIS_URL"}}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < TIMEOUT_S:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise TimeoutError("serve did not become ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    first, restart = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="tsunagari-bench-") as tmp:
            data_dir = Path(tmp) / "data"
            first.append(time_to_ready(data_dir))
            restart.append(time_to_ready(data_dir))
    for label, samples in (("first start (empty data dir)", first), ("restart (existing data)", restart)):
        print(
            f"{label}: median {statistics.median(samples):.2f}s, "
            f"min {min(samples):.2f}s, max {max(samples):.2f}s over {len(samples)} runs"
        )


if __name__ == "__main__":
    main()
