"""Cost as the work grows (issue 12): the same requests on a small and on a large database.

    TSUNAGARI_BENCH_REDIS=redis://127.0.0.1:6379/2 .venv/bin/python -m bench.growth
        [--seconds 12] [--warm-up 3] [--repeats 3] [--large-members 1000000] [--keep] [--reuse]

1. builds `bench_growth_small` (10,000 members, 20 ledger entries and 10 timeline events each, on
   average) and grows a copy of it into `bench_growth_large` (1,000,000 members: 20 million entries,
   10 million events), printing how long each step takes (bench.growth_data);
2. measures, at each size and with 1 and 2 API workers, a member's purchase, a refund, and the timeline
   of a typical and of a heavy member, under wrk at 16 connections; each (size, workers) round is
   repeated, alternating which size goes first, and each figure comes with the CPU the server, its
   PostgreSQL backends and wrk used, and the share of the CPU other work took meanwhile
   (bench.growth_measure, bench.harness.cpu_use, bench.growth_noise);
3. logs the plans of the statements of each path's requests at both sizes, with EXPLAIN (ANALYZE,
   BUFFERS) detail (bench.growth_plans), and times the worker's trait fold of what the requests queued;
4. prints the figures as Markdown (bench.growth_report) and drops both databases (unless --keep), also
   when a step fails.

About 25 minutes on the 2-core machine (15 of them building the large database), 31 GB of disk.

`--reuse` skips the build when both databases and the state of a `--keep` run are still there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import msgspec

from bench.growth_data import (
    Readers,
    Size,
    Steps,
    build_small,
    database_sizes,
    drop_bench_databases,
    grow,
    largest_relations,
)
from bench.growth_ledger import ENTRIES_PER_MEMBER
from bench.growth_measure import Round, Run, fold_queued, measure, measured_paths, server_settings
from bench.growth_plans import Plan, request_plans, write_plans
from bench.growth_report import (
    GB,
    build_table,
    cpu_table,
    figures_table,
    plans_table,
    sizes_table,
    workers_table,
)
from bench.harness import database_url
from bench.hot_path_data import World
from bench.side_by_side import Lines

STATE = Path(tempfile.gettempdir()) / "bench_growth_state.json"
DISK_PER_MEMBER_BYTES = 40_000  # what the large database takes per member, with room to spare (about 30 kB)


class State(msgspec.Struct, frozen=True):
    """What a --keep run leaves for a --reuse run (signing keys and device secrets included)."""

    world: World
    readers: dict[Size, Readers]
    steps: list[tuple[str, float]]


@dataclass(frozen=True)
class Measured:
    """What a run measured, for the report."""

    sizes: dict[str, int]
    relations: list[tuple[str, int, int]]
    runs: list[Run]
    plans: dict[Size, dict[str, list[Plan]]]
    folds: dict[Size, tuple[int, float]]


def _server_imports_from() -> str:
    """Where a server started now imports the app from: the same interpreter, environment and
    directory as bench.harness.running_server gives its processes."""
    probe = "import api.app, points; print(api.app.__file__, points.__file__)"
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()


async def _data_directory() -> str:
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        return str(await admin.fetchval("SHOW data_directory"))
    finally:
        await admin.close()


async def _check_disk(args: argparse.Namespace) -> None:
    free = shutil.disk_usage(await _data_directory()).free
    need = args.large_members * DISK_PER_MEMBER_BYTES
    print(
        f"disk free for PostgreSQL: {free / GB:,.1f} GB (the large database needs about {need / GB:,.0f} GB)"
    )
    if free < need:
        raise SystemExit("not enough disk")


def _save(state: State) -> None:
    """STATE, readable by this user only (it holds signing keys and device secrets), replaced whole."""
    partial = STATE.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(msgspec.json.encode(state))
    os.replace(partial, STATE)


async def _build(args: argparse.Namespace) -> State:
    if args.reuse and STATE.exists() and set(await database_sizes()) == {size.database for size in Size}:
        print(f"reusing {', '.join(size.database for size in Size)} (state in {STATE})")
        return msgspec.json.decode(STATE.read_bytes(), type=State)
    await _check_disk(args)
    STATE.unlink(missing_ok=True)  # it would describe databases about to be replaced
    steps = Steps()
    print("building:", flush=True)
    small_events = args.small_members * args.events_per_member
    world, small = await build_small(args.small_members, args.shoppers, small_events, steps)
    large_events = args.large_members * args.events_per_member - small_events
    large = await grow(world, args.large_members, large_events, steps)
    state = State(world, {Size.SMALL: small, Size.LARGE: large}, steps.done)
    _save(state)
    return state


async def _measure(state: State, args: argparse.Namespace, lines: Lines, session: str) -> list[Run]:
    runs = []
    for repeat in range(1, args.repeats + 1):
        order = list(Size) if repeat % 2 else list(reversed(Size))
        for size in order:
            for workers in args.workers:
                print(f"  round {repeat}: {size}, {workers} worker(s)", flush=True)
                this_round = Round(
                    size=size,
                    workers=workers,
                    repeat=repeat,
                    seconds=args.seconds,
                    warm_s=args.warm_up,
                    session=session,
                )
                runs += await measure(state.world, state.readers[size], lines, this_round)
    return runs


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=12, help="duration of each measurement")
    parser.add_argument("--warm-up", type=int, default=3, help="seconds of unmeasured load per path first")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every (size, workers) pair")
    parser.add_argument("--workers", type=lambda text: [int(w) for w in text.split(",")], default=[1, 2])
    parser.add_argument("--small-members", type=int, default=10_000)
    parser.add_argument("--large-members", type=int, default=1_000_000)
    parser.add_argument("--events-per-member", type=int, default=10)
    parser.add_argument("--shoppers", type=int, default=2_000, help="members whose purchases are measured")
    parser.add_argument(
        "--plans",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench_growth_plans",
        help="directory for the plans' full text",
    )
    parser.add_argument("--keep", action="store_true", help="keep both databases (for --reuse)")
    parser.add_argument("--reuse", action="store_true", help="measure the databases a --keep run left")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("this benchmark needs wrk (apt-get install wrk)")
    if not 1 <= args.seconds <= 50:
        raise SystemExit("--seconds must be 1..50: rotating codes are computed for mid-run (valid ±30 s)")
    return args


async def _plans(
    state: State, args: argparse.Namespace, lines: Lines, session: str
) -> dict[Size, dict[str, list[Plan]]]:
    print("plans (auto_explain):", flush=True)
    plans = {}
    for size in Size:
        settings = server_settings(state.world, size, 1)
        paths = measured_paths(state.world, state.readers[size], settings)
        plans[size] = await request_plans(state.world, size, paths, lines, session)
        write_plans(args.plans, size, plans[size])
    return plans


def _report(state: State, args: argparse.Namespace, measured: Measured) -> None:
    print(f"\n## Build\n\n{build_table(state.steps)}\n")
    entries = args.large_members * ENTRIES_PER_MEMBER
    print(f"## Sizes (large: {args.large_members:,} members, about {entries:,} ledger entries)\n")
    print(sizes_table(measured.sizes, measured.relations) + "\n")
    for size, readers in state.readers.items():
        print(
            f"{size}: timeline readers: {len(readers.typical)} typical members "
            f"({readers.typical_events:.1f} events on average), {len(readers.heavy)} heavy members "
            f"({readers.heavy_events:,.0f} events on average)"
        )
    print(f"\n## Figures ({args.seconds} s each, 16 connections, {args.repeats} repeats)\n")
    print(figures_table(measured.runs) + "\n")
    print(workers_table(measured.runs) + "\n")
    print(cpu_table(measured.runs) + "\n")
    for size, (folded, seconds) in measured.folds.items():
        rate = folded / seconds
        print(f"{size}: the worker's trait fold: {folded:,} queued events in {seconds:.1f} s = {rate:,.0f}/s")
    plans = plans_table(measured.plans[Size.SMALL], measured.plans[Size.LARGE])
    print(f"\n## Plans (full text in {args.plans})\n\n{plans}")


async def _run(args: argparse.Namespace) -> None:
    state = await _build(args)
    sizes, relations = await database_sizes(), await largest_relations(Size.LARGE.database)
    print(f"\nmeasuring: {args.seconds} s per path after {args.warm_up} s of warm-up, {args.repeats} repeats")
    lines = Lines(measured_paths(state.world, state.readers[Size.SMALL], state.world.settings))
    session = secrets.token_hex(3)
    runs = await _measure(state, args, lines, session)
    plans = await _plans(state, args, lines, session)
    folds = {size: await fold_queued(size) for size in Size}
    _report(state, args, Measured(sizes, relations, runs, plans, folds))


async def main() -> None:
    args = _arguments()
    started = time.perf_counter()
    print(f"server code from: {_server_imports_from()}")
    try:
        await _run(args)
    finally:
        if not args.keep:  # some 31 GB, whether the run got to its end or not
            await drop_bench_databases()
            STATE.unlink(missing_ok=True)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
