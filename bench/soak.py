"""Soak (issue 13.4): mixed traffic for a while, with the app's database connections killed now and then,
then the ledger audit.

    TSUNAGARI_BENCH_REDIS=redis://127.0.0.1:6379/2 .venv/bin/python -m bench.soak [--minutes 10]
        [--clients 8] [--kill-every 5] [--workers 2] [--keep]

Builds `bench_soak` (the side-by-side benchmark's world: stores with registers, shoppers with a refundable
sale each, members who check in, offers, a timeline), starts `tsunagari serve` and a `tsunagari worker`
(the periodic jobs: trait folds, expiry, offer learning...), and runs `--clients` loops, each picking
requests by the weights of `MIX`: POS purchases (earning and redeeming) and returns, the app's reads,
check-ins, events and offers, and a marketer's console reads. Writes are retried as a register or the
app would (same Idempotency-Key, signed again) on 503, 409 request_in_progress and broken
connections. Every `--kill-every` seconds one of the app's or the worker's busy database connections is
terminated. At the end it stops the traffic and the processes, checks that each sale and return
answered 201 is recorded exactly once, and runs `tsunagari points audit`'s checks over the database.
Prints requests, answers by status, retries, latencies and the audit's result; exits 1 if the audit or
the exactly-once check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from accounts.rules import StaffRole
from accounts.staff import create_staff
from bench.harness import drop_databases, fresh_database, running_server_process, send_line
from bench.hot_path_data import Sizes, World, build_world
from bench.hot_paths import HotPath, hot_paths
from domain.clock import SystemClock
from infra.db import Database, create_engine
from infra.settings import env_for_children
from points.audit import AuditSummary, audit_ledger
from points.program import load_program

DATABASE = "bench_soak"
# Relative weights of the request kinds: a store day's traffic, registers and phones together.
MIX = {
    "purchase": 30,
    "redeem": 4,
    "refund": 8,
    "points": 18,
    "timeline": 10,
    "nearby": 8,
    "events": 6,
    "check-in": 6,
    "offers": 4,
    "console": 6,
}
RETRIED_STATUS = {503}  # and 409 request_in_progress; a 429 here is an hour's limit, not a pause
_KILL_ONE = """
SELECT count(pg_terminate_backend(pid)) FROM (
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'tsunagari' AND state <> 'idle'
    ORDER BY random() LIMIT 1
) AS chosen
"""


@dataclass
class Tally:
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (kind, final status)
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, problem code) of 4xx answers
    retries: Counter[str] = field(default_factory=Counter)
    latencies_ms: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    recorded: Counter[str] = field(default_factory=Counter)  # POS writes answered 201, by path name
    kills: int = 0


async def soak(args: argparse.Namespace) -> int:
    url = await fresh_database(DATABASE)
    world = await build_world(url, args.workers, Sizes(50, 400, 20, 400, 20_000, 20))
    staff_email, staff_password = await _marketer(url)
    paths = {path.name: path for path in hot_paths(world)}
    tally = Tally()
    try:
        with running_server_process(world.settings) as server, running_worker(world) as worker:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                console_token = await _log_in(http, staff_email, staff_password)
                deadline = time.monotonic() + args.minutes * 60
                print(f"soaking {args.minutes} min: {args.clients} clients, a kill every {args.kill_every} s")
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        _client(http, paths, world, console_token, tally, deadline, seed)
                        for seed in range(args.clients)
                    ),
                    _killer(url, args.kill_every, tally, deadline),
                )
                elapsed = time.monotonic() - started
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
            if worker.returncode not in (0, -signal.SIGTERM):
                print(f"worker exited with {worker.returncode}")
        failures = await _verify(url, tally)
        _report(tally, elapsed)
        print(f"POS writes recorded exactly once: {'yes' if not failures else 'NO: ' + '; '.join(failures)}")
        summary = AuditSummary()
        db = Database(create_engine(url, pool_size=1))
        try:
            since = datetime.now(UTC) - timedelta(days=world.settings.timeline_retention_days)
            stages = load_program(world.settings.points_program).stages
            violations = [violation async for violation in audit_ledger(db, since, stages, summary)]
        finally:
            await db.dispose()
        for violation in violations[:20]:
            print(f"  {violation.member_id}: {violation.invariant}: {violation.detail}")
        print(
            f"audit: {summary.members} members, {summary.anonymous_sales} anonymous sales, "
            f"{summary.violations} violations"
        )
        return 1 if failures or violations else 0
    finally:
        if not args.keep:
            await drop_databases(DATABASE)


async def _client(
    http: httpx.AsyncClient,
    paths: dict[str, HotPath],
    world: World,
    console_token: str,
    tally: Tally,
    deadline: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    n = seed * 1_000_000
    while time.monotonic() < deadline:
        n += 1
        kind = rng.choices(kinds, weights)[0]
        started = time.perf_counter()
        if kind == "console":
            member = world.shoppers[n % len(world.shoppers)].member_id
            status = await _answer(tally, kind, functools.partial(_console_read, http, console_token, member))
        else:
            path = paths[kind]
            status = await _answer(tally, kind, functools.partial(_send_path, http, path, n, f"soak-{n}"))
            if status == 201 and path.target.startswith("/v1/pos/"):
                tally.recorded[kind] += 1
        tally.latencies_ms[kind].append((time.perf_counter() - started) * 1000)
        tally.answers[(kind, status)] += 1


async def _send_path(http: httpx.AsyncClient, path: HotPath, n: int, tag: str) -> httpx.Response:
    """Request `n` of `path`, signed now (the same tag: the same receipt and Idempotency-Key)."""
    return await send_line(http, path.line(n, tag, datetime.now(UTC)))


async def _answer(tally: Tally, kind: str, send: Callable[[], Awaitable[httpx.Response]]) -> int:
    """The final status of one request, sent again (signed again, the same key) while the answer says
    to retry: 0 if it never got a final answer."""
    for _ in range(30):
        try:
            answer = await send()
        except httpx.TransportError:
            tally.retries[kind] += 1
            await asyncio.sleep(0.2)
            continue
        code = answer.json().get("code") if answer.status_code >= 400 else None
        retry = answer.status_code in RETRIED_STATUS or code == "request_in_progress"
        if not retry:
            if 400 <= answer.status_code < 500:
                tally.refusals[(kind, str(code))] += 1
            return answer.status_code
        tally.retries[kind] += 1
        await asyncio.sleep(0.2)
    return 0


async def _console_read(http: httpx.AsyncClient, token: str, member: object) -> httpx.Response:
    return await http.get(
        f"/v1/console/members/{member}/traits", headers={"Authorization": f"Bearer {token}"}
    )


async def _killer(url: str, every_s: float, tally: Tally, deadline: float) -> None:
    connection = await asyncpg.connect(url, server_settings={"application_name": "soak-fault-injector"})
    try:
        while time.monotonic() + every_s < deadline:
            await asyncio.sleep(every_s)
            tally.kills += int(await connection.fetchval(_KILL_ONE))
    finally:
        await connection.close()


async def _marketer(url: str) -> tuple[str, str]:
    """A marketer's email and password, made for this run."""
    db = Database(create_engine(url, pool_size=1))
    email, password = "soak-marketer@example.jp", secrets.token_urlsafe(16)
    try:
        async with db.unit_of_work() as uow:
            await create_staff(uow, SystemClock(), email, password, "Soak marketer", StaffRole.MARKETER)
    finally:
        await db.dispose()
    return email, password


async def _log_in(http: httpx.AsyncClient, email: str, password: str) -> str:
    answer = await http.post("/v1/console/sessions", json={"email": email, "password": password})
    answer.raise_for_status()
    return str(answer.json()["tokens"]["access_token"])


@contextmanager
def running_worker(world: World) -> Iterator[subprocess.Popen[bytes]]:
    """`tsunagari worker` on the world's settings, for the length of the block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "worker"],
        env={**os.environ, **env_for_children(world.settings)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _verify(url: str, tally: Tally) -> list[str]:
    """Each sale and return answered 201 is recorded once: their receipts carry the run's tags."""
    connection = await asyncpg.connect(url)
    try:
        sales = await connection.fetchval("SELECT count(*) FROM purchases WHERE receipt_id ~ '^[RP]-soak-'")
        returns = await connection.fetchval(
            "SELECT count(*) FROM refunds WHERE refund_receipt_id ~ '^F-soak-'"
        )
    finally:
        await connection.close()
    answered_sales = tally.recorded["purchase"] + tally.recorded["redeem"]
    failures = []
    if sales != answered_sales:
        failures.append(f"{sales} sales recorded, {answered_sales} answered 201")
    if returns != tally.recorded["refund"]:
        failures.append(f"{returns} returns recorded, {tally.recorded['refund']} answered 201")
    return failures


def _report(tally: Tally, elapsed_s: float) -> None:
    refused = ", ".join(f"{kind} {code}: {count:,}" for (kind, code), count in sorted(tally.refusals.items()))
    print(f"refusals (4xx) by problem code: {refused or 'none'}")
    total = sum(tally.answers.values())
    rate = total / elapsed_s
    print(f"\n{total:,} requests in {elapsed_s:.0f} s ({rate:,.0f}/s), {tally.kills} connections killed")
    print("| request | answered | by status | retried | p50 ms | p99 ms |\n|---|---:|---|---:|---:|---:|")
    for kind in MIX:
        statuses = {status: count for (k, status), count in sorted(tally.answers.items()) if k == kind}
        latencies = sorted(tally.latencies_ms[kind]) or [float("nan")]
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        shown = ", ".join(f"{status or 'none'}: {count:,}" for status, count in statuses.items())
        print(
            f"| {kind} | {sum(statuses.values()):,} | {shown} | {tally.retries[kind]:,} | "
            f"{statistics.median(latencies):.1f} | {p99:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kill-every", type=float, default=5, help="seconds between connection kills")
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    sys.exit(asyncio.run(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
