"""Shared pieces of the HTTP benchmarks: a scratch database, the server in worker processes, latency stats.

Benchmarks run against the local PostgreSQL and Redis (TSUNAGARI_BENCH_POSTGRES / TSUNAGARI_BENCH_REDIS,
default 127.0.0.1) and only ever send traffic to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from commands.migrate import upgrade
from domain.ids import new_id
from infra.settings import Settings, env_for_children, load_settings

SERVER_URL = os.environ.get("TSUNAGARI_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TSUNAGARI_BENCH_REDIS", "redis://127.0.0.1:6379/0")


async def fresh_database(name: str) -> str:
    admin = await asyncpg.connect(f"{SERVER_URL}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{SERVER_URL}/{name}"
    await asyncio.to_thread(upgrade, url)
    return url


async def copy_members(
    connection: asyncpg.Connection, count: int, now: datetime, first_card: int = 2000000000000000
) -> list[uuid.UUID]:
    """Bulk members for load tests (COPY): no password anyone could use, card numbers from `first_card`."""
    ids = [new_id() for _ in range(count)]
    await connection.copy_records_to_table(
        "members",
        columns=[
            "id",
            "card_number",
            "email",
            "password_hash",
            "display_name",
            "time_zone",
            "locale",
            "created_at",
            "updated_at",
        ],
        records=[
            (
                member_id,
                f"{first_card + n}",
                f"bench{first_card + n}@example.jp",
                "x",
                f"Bench {n}",
                "Asia/Tokyo",
                "ja-JP",
                now,
                now,
            )
            for n, member_id in enumerate(ids)
        ],
    )
    return ids


def bench_settings(database_url: str, workers: int) -> Settings:
    return load_settings(
        environ={},
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_signing_key=secrets.token_urlsafe(48),
        code_signing_key=secrets.token_urlsafe(48),
        terminal_key=secrets.token_urlsafe(48),
        workers=workers,
        log_level=os.environ.get("TSUNAGARI_BENCH_LOG_LEVEL", "WARNING"),
        redis_key_prefix=f"bench-{secrets.token_hex(4)}:",
        database_pool_size=20,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


SERVERS = ("uvicorn", "granian")


def server_command(server: str, port: int, workers: int) -> list[str]:
    """How to start the app: `tsunagari serve` (uvicorn), or granian on the same app factory.

    `tsunagari serve` with configured URLs only exports the settings to the environment and hands the
    factory to uvicorn; granian is given the same factory, environment and worker count.
    """
    if server == "uvicorn":
        return [sys.executable, "-m", "commands.cli", "serve", "--port", str(port)]
    if server == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--no-access-log", "--log-level", "warning", "api.app:create_app"),
        ]
    raise ValueError(f"unknown server {server!r}; one of {', '.join(SERVERS)}")


@contextmanager
def running_server(settings: Settings, server: str = "uvicorn") -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **env_for_children(settings), "TSUNAGARI_PORT": str(port)}
    log_path = os.path.join(tempfile.gettempdir(), "tsunagari-bench-server.log")
    log_file = open(log_path, "w")  # noqa: SIM115 - closed when the server stops
    process = subprocess.Popen(
        server_command(server, port, settings.workers),
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited ({process.returncode}); see {log_path}") from None
                time.sleep(0.2)
        else:
            raise TimeoutError("server did not start")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log_file.close()


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self, label: str, unit_per_request: int = 1, unit: str = "req") -> str:
        rate = self.per_second * unit_per_request
        p50, p99 = statistics.median(self.latencies_ms), self.percentile(99)
        return (
            f"{label}: {self.requests} requests in {self.seconds:.1f}s = {rate:,.0f} {unit}/s; "
            f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; errors {self.errors}"
        )


async def run_load(
    concurrency: int,
    requests: int,
    send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    base: str,
) -> LoadResult:
    """`requests` calls of `send(client, n)` by `concurrency` workers; bounded in count, so it ends."""
    latencies: list[float] = []
    errors = 0
    error_codes: Counter[str] = Counter()
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for n in counter:
                started = time.perf_counter()
                response = await send(client, n)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 400:
                    errors += 1
                    error_codes[response.json().get("code", str(response.status_code))] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    if error_codes:
        print(f"  errors by code: {dict(error_codes)}")
    return LoadResult(requests, errors, seconds, latencies)


WRK_THREADS = 2
WRK_TIMEOUT_S = 60  # wrk's default (2 s) would drop the slow tail from the percentiles as "timeouts"


def wrk_output(base: str, path: str, connections: int, seconds: int, lines: list[str]) -> str:
    """wrk's report of `seconds` of load on `path` from the request lines (format in wrk/replay.lua)."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    script = Path(__file__).parent / "wrk" / "replay.lua"
    env = {**os.environ, "REQUESTS": handle.name, "THREADS": str(WRK_THREADS)}
    try:
        return subprocess.run(
            [
                shutil.which("wrk") or "wrk",
                *(f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT_S}s"),
                *("--latency", "-s", str(script), base + path),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)


_WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int  # responses other than 2xx/3xx, and socket errors

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        def latency(percent: str) -> float:
            found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
            return float(found[1]) * _WRK_UNITS_MS[found[2]] if found else float("nan")

        requests = re.search(r"(\d+) requests in", output)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
        return cls(
            requests=int(requests[1]) if requests else 0,
            per_second=float(rate[1]) if rate else 0.0,
            p50_ms=latency("50"),
            p99_ms=latency("99"),
            failed=(int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
        )


ABSENT = "-"  # an empty field of a request line


async def send_line(client: httpx.AsyncClient, line: str) -> httpx.Response:
    """Send one request line as wrk/replay.lua would (same fields, same headers)."""
    method, path, key_id, stamp, signature, key, token, body = line.split("\t")
    headers = {"Content-Type": "application/json"}
    if key_id != ABSENT:
        headers["Tsunagari-Key-Id"] = key_id
        headers["Tsunagari-Timestamp"] = stamp
        headers["Tsunagari-Signature"] = signature
    if key != ABSENT:
        headers["Idempotency-Key"] = key
    if token != ABSENT:
        headers["Authorization"] = f"Bearer {token}"
    content = None if body == ABSENT else body.encode()
    return await client.request(method, path, headers=headers, content=content)
