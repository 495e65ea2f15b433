"""Shared pieces of the HTTP benchmarks: a scratch database, the server in worker processes, latency stats.

Benchmarks run against the local PostgreSQL and Redis (TSUNAGARI_BENCH_POSTGRES / TSUNAGARI_BENCH_REDIS,
default 127.0.0.1) and only ever send traffic to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import resource
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
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from commands.migrate import upgrade
from domain.ids import new_id
from infra.settings import Settings, env_for_children, load_settings
from stores.pos_signature import (
    KEY_ID_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_headers,
)

SERVER_URL = os.environ.get("TSUNAGARI_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TSUNAGARI_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def database_url(name: str) -> str:
    """The URL of database `name` on the bench's PostgreSQL server."""
    return f"{SERVER_URL}/{name}"


async def drop_databases(*names: str) -> None:
    """Drop the databases `names` where they exist, closing whatever sessions they have."""
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def fresh_database(name: str) -> str:
    """An empty database `name` (dropped first if it exists) with the app's migrations; its URL."""
    await drop_databases(name)
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url(name)
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
        database_read_pool_size=10,
        # Every benchmark request is signed with a nonce, as registers of this release sign.
        pos_require_nonce=True,
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


@dataclass(frozen=True)
class Server:
    url: str
    pid: int  # the server's first process; its workers are its children


@contextmanager
def running_server(settings: Settings, server: str = "uvicorn") -> Iterator[str]:
    with running_server_process(settings, server) as running:
        yield running.url


@contextmanager
def running_server_process(settings: Settings, server: str = "uvicorn") -> Iterator[Server]:
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
        yield Server(base, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log_file.close()


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[str, int, float]]:
    """Every process now: pid -> (command name, parent pid, CPU seconds used so far by it and by its
    children that ended: PostgreSQL's backends that ended are counted in the postmaster's)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (
            name,
            int(fields[1]),
            sum(int(ticks) for ticks in fields[11:15]) / _TICKS_PER_SECOND,  # utime stime cutime cstime
        )
    return found


def _cpu_by_side(server_pid: int | None, database: str | None = None) -> tuple[float, float]:
    """CPU seconds used so far by the server (its process and their descendants) and by PostgreSQL (all
    of it on this machine: its backends come and go with pgbench's connections, so they are counted
    by the server they belong to, not by database; measure on a quiet machine). With `database`,
    PostgreSQL's share is that of the backends serving it instead: for a server whose pooled
    connections stay open, on a machine other work shares."""
    processes = _processes()
    in_server = {server_pid} if server_pid is not None else set()
    changed = True
    while changed:
        changed = False
        for pid, (_, parent, _) in processes.items():
            if parent in in_server and pid not in in_server:
                in_server.add(pid)
                changed = True
    server = sum(processes[pid][2] for pid in in_server if pid in processes)
    if database is not None:
        postgres = _backends_serving(
            database, [pid for pid, (name, _, _) in processes.items() if name == "postgres"]
        )
    else:
        postgres = {pid for pid, (name, _, _) in processes.items() if name == "postgres"}
    return server, sum(processes[pid][2] for pid in postgres)


def _backends_serving(database: str, pids: list[int]) -> set[int]:
    """Those of PostgreSQL's processes `pids` serving `database`, by their process title
    ("postgres: [cluster: ]user database host activity")."""
    serving = set()
    for pid in pids:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if f" {database} " in title:
            serving.add(pid)
    return serving


@dataclass
class CpuUse:
    """CPU seconds the server, PostgreSQL and the load generator used during a measurement."""

    server_s: float = 0.0
    database_s: float = 0.0
    load_s: float = 0.0

    def per_request_ms(self, requests: int) -> tuple[float, float, float]:
        """(server, PostgreSQL, load generator) CPU milliseconds per request."""
        if not requests:
            return (math.nan, math.nan, math.nan)
        return (
            self.server_s * 1000 / requests,
            self.database_s * 1000 / requests,
            self.load_s * 1000 / requests,
        )


@contextmanager
def cpu_use(server_pid: int | None, database: str | None = None) -> Iterator[CpuUse]:
    """Measure the CPU the server's processes, PostgreSQL (with `database`, only the backends serving
    it) and this process's children that ended (the load generator's runs) use in the block: what each
    request costs on the shared cores."""
    used = CpuUse()
    server_before, postgres_before = _cpu_by_side(server_pid, database)
    children = _children_cpu_s()
    yield used
    server_after, postgres_after = _cpu_by_side(server_pid, database)
    used.server_s = server_after - server_before
    used.database_s = postgres_after - postgres_before
    used.load_s = _children_cpu_s() - children


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
# The fields of a request line (tab-separated), in wrk/replay.lua's order.
LINE_FIELDS = (
    "method",
    "path",
    "key id",
    "timestamp",
    "nonce",
    "signature",
    "Idempotency-Key",
    "token",
    "body",
)
# The signature fields, in that order.
POS_SIGNATURE_HEADERS = tuple(
    name.title() for name in (KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
)


def signed_pos_headers(
    key_id: str, secret: str, method: str, path: str, body: bytes, at: datetime
) -> dict[str, str]:
    """A register's signature headers, with a fresh nonce (single-use)."""
    return signature_headers(key_id, secret, method, path, body, str(int(at.timestamp())), uuid.uuid4().hex)


def request_line(
    method: str,
    path: str,
    *,
    terminal: tuple[str, str] | None = None,
    key: str = ABSENT,
    token: str = ABSENT,
    body: str = ABSENT,
    at: datetime | None = None,
) -> str:
    """One request line; a POS request is signed by `terminal` (key id, secret) as at `at` (default now)."""
    signed = [ABSENT] * 4
    if terminal is not None:
        raw = b"" if body == ABSENT else body.encode()
        headers = signed_pos_headers(*terminal, method, path, raw, at or datetime.now(UTC))
        signed = [headers[name] for name in POS_SIGNATURE_HEADERS]
    return "\t".join([method, path, *signed, key, token, body])


async def send_line_checked(client: httpx.AsyncClient, line: str, label: str) -> None:
    """Send one request line and stop the benchmark, naming `label`, unless it succeeded: a check
    before wrk sends thousands of them (wrk only counts failures)."""
    response = await send_line(client, line)
    if response.status_code >= 300:
        raise SystemExit(f"{label}: {response.status_code} {response.text[:500]}")


async def send_line(client: httpx.AsyncClient, line: str) -> httpx.Response:
    """Send one request line as wrk/replay.lua would (same fields, same headers)."""
    fields = line.split("\t")
    if len(fields) != len(LINE_FIELDS):
        raise ValueError(f"a request line has {len(LINE_FIELDS)} fields, not {len(fields)}")
    method, path, *signed, key, token, body = fields
    headers = {"Content-Type": "application/json"}
    if signed[0] != ABSENT:
        headers |= dict(zip(POS_SIGNATURE_HEADERS, signed, strict=True))
    if key != ABSENT:
        headers["Idempotency-Key"] = key
    if token != ABSENT:
        headers["Authorization"] = f"Bearer {token}"
    content = None if body == ABSENT else body.encode()
    return await client.request(method, path, headers=headers, content=content)
