"""Each hot path next to its ceilings, all measured in one run on one machine (issue 12).

    .venv/bin/python -m bench.side_by_side [--seconds 10] [--paths purchase,points,...]
                                           [--server uvicorn|granian|uvicorn,granian] [--workers 2]
                                           [--scripts DIR]

For each hot path (bench.hot_paths), at 16 and 64 clients:
- app: wrk (C) sending prepared requests (signed POS requests, Idempotency-Keys, rotating member codes,
  access tokens) to the app, served as `tsunagari serve --workers N` serves it, or by granian on the
  same factory and environment (`--server uvicorn,granian`: each serves every path in turn);
- SQL replay: pgbench replaying the statements that one request of the path issued, captured from
  PostgreSQL's statement log (bench.sql_capture), with its parameters varied per transaction
  (bench.sql_replay), by as many clients for as long;
and, in the same run, the ceilings they are compared with:
- web ceiling: wrk against GET /healthz of the same server;
- 4-statement reference: pgbench running BEGIN; UPDATE an account; INSERT a sale; INSERT an entry; COMMIT.

The server is stopped while pgbench runs, so neither competes with the other for the cores (or for
PostgreSQL's connections). Every figure shares the machine with PostgreSQL, Redis and the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import math
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.harness import (
    SERVER_URL,
    SERVERS,
    CpuUse,
    WrkResult,
    cpu_use,
    fresh_database,
    running_server,
    running_server_process,
    send_line_checked,
    wrk_output,
)
from bench.hot_path_data import REDEEM_SLOTS, Sizes, World, build_world
from bench.hot_paths import (
    CAPTURE_TAG,
    WARM_UP_REQUEST,
    WEB_CEILING,
    HotPath,
    healthz_line,
    hot_paths,
    with_lock_keys,
)
from bench.side_by_side_report import CLIENTS, Captured, Figures, Replay, Served, report
from bench.sql_capture import StatementLog, parse_statements, server_log_path, statement_logging
from bench.sql_replay import (
    REFERENCE_SCRIPT,
    PgbenchResult,
    Pool,
    create_reference_tables,
    replay_script,
    run_pgbench,
    write_pool,
)

DATABASE = "bench_side_by_side"
LINES_PER_SECOND = 1200  # requests prepared per second of a run: more than any single-use path serves here
REPLAY_TPS_BOUND = 5_000  # pool rows per second of replay, for paths whose rows must never repeat


async def capture(world: World, paths: list[HotPath], server: str) -> dict[str, Captured]:
    """One warm-up request, then one captured request, per path, with statement logging on."""
    admin = await asyncpg.connect(f"{SERVER_URL}/postgres")
    captured = {}
    try:
        log = StatementLog(await server_log_path(admin), DATABASE)
        async with statement_logging(admin, DATABASE):
            with running_server(world.settings, server) as base:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    for path in paths:
                        now = datetime.now(UTC)
                        # Over the same connection, so the same worker process: its caches are warm.
                        warm = path.line(WARM_UP_REQUEST, "capture-warm", now)
                        await send_line_checked(client, warm, path.label)
                        since_ms = time.time_ns() // 1_000_000
                        line = path.line(0, CAPTURE_TAG, now)
                        send = functools.partial(send_line_checked, client, line, path.label)
                        captured[path.name] = Captured(await log.capture(send, parse_statements), since_ms)
    finally:
        await admin.close()
    return captured


class Lines:
    """Request lines for wrk, each request number used once per path (single-use requests stay so)."""

    def __init__(self, paths: list[HotPath]) -> None:
        self.next = {path.name: WARM_UP_REQUEST + 1 for path in paths}  # past the capture's requests

    def __call__(self, path: HotPath, seconds: int, run: str) -> list[str]:
        # Rotating codes are computed for mid-run; the server accepts them within a step (30 s) either side.
        at = datetime.now(UTC) + timedelta(seconds=seconds / 2)
        first = self.next[path.name]
        self.next[path.name] += LINES_PER_SECOND * seconds
        return [path.line(n, f"{run}-{n}", at) for n in range(first, self.next[path.name])]


def measure_app(
    world: World, paths: list[HotPath], lines: Lines, server: str, seconds: int, warm_s: int
) -> Served:
    web: dict[int, WrkResult] = {}
    app: dict[tuple[str, int], WrkResult] = {}
    cpu: dict[tuple[str, int], CpuUse] = {}
    print(f"served by {server}:", flush=True)
    with running_server_process(world.settings, server) as running:
        base = running.url
        health = [healthz_line(0, "", datetime.now(UTC))] * 100  # replay.lua: a line per thread at least
        for path in paths:  # warm-up: every pooled connection prepares the path's statements
            wrk_output(base, path.target, max(CLIENTS), warm_s, lines(path, warm_s, "warm"))
        for clients in CLIENTS:
            with cpu_use(running.pid) as cpu[(WEB_CEILING, clients)]:
                web[clients] = WrkResult.parse(wrk_output(base, "/healthz", clients, seconds, health))
            _progress(f"{WEB_CEILING}, {clients} clients", web[clients].per_second)
        for path in paths:
            for clients in CLIENTS:
                sent = lines(path, seconds, f"c{clients}")
                with cpu_use(running.pid) as cpu[(path.name, clients)]:
                    app[(path.name, clients)] = WrkResult.parse(
                        wrk_output(base, path.target, clients, seconds, sent)
                    )
                _progress(f"{path.label}, {clients} clients", app[(path.name, clients)].per_second)
    return Served(web, app, cpu)


async def prepare_replays(
    url: str, paths: list[HotPath], captured: dict[str, Captured], lines: Lines, seconds: int
) -> dict[str, Replay]:
    """A pool and a checked pgbench script per path; pool rows past what the app already used."""
    replays = {}
    connection = await asyncpg.connect(url)
    try:
        await create_reference_tables(connection)
        for path in paths:
            if not captured[path.name].statements:
                continue
            count = REPLAY_TPS_BOUND * seconds * len(CLIENTS) if path.unique_rows else path.pool_size
            first = lines.next[path.name]
            numbers = [0, *range(first, first + count)]
            identities = [with_lock_keys(path.identities(n)) for n in numbers]
            pool = Pool(f"bench_pool_{path.name.replace('-', '_')}", identities)
            await write_pool(connection, pool)
            script = replay_script(
                captured[path.name].statements, pool, [CAPTURE_TAG], captured[path.name].since_ms
            )
            replay = Replay(script, len(identities), None)
            check = run_pgbench(url, script.text, 1, 0, replay.variables(1, 1, "check"))
            replays[path.name] = dataclasses.replace(replay, check_error=check.error)
    finally:
        await connection.close()
    return replays


def measure_replays(
    url: str, replays: dict[str, Replay], seconds: int
) -> tuple[dict[int, PgbenchResult], dict[tuple[str, int], PgbenchResult], dict[tuple[str, int], CpuUse]]:
    reference = {}
    cpu: dict[tuple[str, int], CpuUse] = {}
    for clients in CLIENTS:
        with cpu_use(None) as cpu[("reference", clients)]:
            reference[clients] = run_pgbench(url, REFERENCE_SCRIPT, clients, seconds)
        _progress(f"4-statement reference, {clients} clients", reference[clients].per_second, "tps")
    results = {}
    for name, replay in replays.items():
        if replay.check_error:
            continue
        base = 2  # transaction numbers go on from the check's (1)
        for clients in CLIENTS:
            with cpu_use(None) as cpu[(name, clients)]:
                result = run_pgbench(
                    url, replay.script.text, clients, seconds, replay.variables(clients, base, f"c{clients}")
                )
            base += clients * (result.most_by_one_client + 1)
            results[(name, clients)] = result
            _progress(f"replay {name}, {clients} clients", result.per_second, "tps")
    return reference, results, cpu


def _progress(label: str, rate: float, unit: str = "req/s") -> None:
    print(f"  {label}: {rate:,.0f} {unit}", flush=True)


def write_scripts(directory: Path, captured: dict[str, Captured], replays: dict[str, Replay]) -> None:
    """Each path's statements as captured and its pgbench script, with the values it binds, to inspect."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, capture_of_path in captured.items():
        listing = [f"{s.sql}\n  -- {list(s.parameters)}" for s in capture_of_path.statements]
        (directory / f"{name}.captured.sql").write_text("\n".join(listing) + "\n")
        if name in replays:
            (directory / f"{name}.pgbench.sql").write_text(replays[name].script.text)
            constants = json.dumps(replays[name].script.constants, indent=1, ensure_ascii=False)
            (directory / f"{name}.constants.json").write_text(constants)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measurement")
    parser.add_argument("--warm-up", type=int, default=2, help="seconds of unmeasured load per path first")
    parser.add_argument("--paths", help="comma-separated subset of: " + ", ".join(PATH_NAMES))
    parser.add_argument(
        "--server",
        default="uvicorn",
        help="uvicorn (as `tsunagari serve`), granian, or both comma-separated (each serves all paths)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--stores", type=int, default=50_000)
    parser.add_argument("--shoppers", type=int, default=500)
    parser.add_argument("--timeline-events", type=int, default=100_000)
    parser.add_argument("--scripts", type=Path, help="write the captured statements and pgbench scripts here")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "pgbench") if not shutil.which(tool)]
    if missing:
        raise SystemExit(
            f"this benchmark needs {' and '.join(missing)} (apt-get install wrk postgresql-client)"
        )
    if not 1 <= args.seconds <= 50:
        raise SystemExit("--seconds must be 1..50: rotating codes are computed for mid-run (valid ±30 s)")
    selected = args.paths.split(",") if args.paths else PATH_NAMES
    unknown = set(selected) - set(PATH_NAMES)
    if unknown:
        raise SystemExit(f"unknown paths: {', '.join(sorted(unknown))}; known: {', '.join(PATH_NAMES)}")
    if args.shoppers <= WARM_UP_REQUEST:
        raise SystemExit(f"--shoppers must be more than {WARM_UP_REQUEST}")
    servers = args.server.split(",")
    if set(servers) - set(SERVERS):
        raise SystemExit(f"--server: one or more of {', '.join(SERVERS)}")
    run_s = len(servers) * (args.warm_up + len(CLIENTS) * args.seconds)
    requests_per_path = LINES_PER_SECOND * run_s + 2
    sizes = Sizes(
        stores=args.stores,
        shoppers=args.shoppers,
        redeemers=max(WARM_UP_REQUEST + 1, math.ceil(requests_per_path / REDEEM_SLOTS)),
        check_in_members=requests_per_path,
        timeline_events=args.timeline_events,
        offers=200,
    )
    started = time.perf_counter()
    url = await fresh_database(DATABASE)
    world = await build_world(url, args.workers, sizes)
    print(f"data ready in {time.perf_counter() - started:.0f}s; {args.workers} server workers")
    paths = [path for path in hot_paths(world) if path.name in selected]
    captured = await capture(world, paths, servers[0])
    lines = Lines(paths)
    served = {
        server: measure_app(world, paths, lines, server, args.seconds, args.warm_up) for server in servers
    }
    replays = await prepare_replays(url, paths, captured, lines, args.seconds)
    if args.scripts:
        write_scripts(args.scripts, captured, replays)
    reference, replayed, replay_cpu = measure_replays(url, replays, args.seconds)
    report(paths, captured, replays, Figures(served, reference, replayed, replay_cpu))
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


PATH_NAMES = ("purchase", "redeem", "refund", "points", "check-in", "nearby", "events", "timeline", "offers")

if __name__ == "__main__":
    asyncio.run(main())
