"""One measurement round of the growth benchmark: one database, one worker count, every path under wrk.

The POS paths are the side-by-side benchmark's (bench.hot_paths: pre-signed requests, rotating member
codes computed for mid-run, one refundable sale per shopper); the timeline is read by members chosen
for how many events they have (bench.growth_data.Readers).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec

from bench.growth_data import Readers, Size
from bench.growth_noise import MachineUse, machine_use
from bench.harness import (
    CpuUse,
    WrkResult,
    cpu_use,
    database_url,
    request_line,
    running_server_process,
    send_line_checked,
    wrk_output,
)
from bench.hot_path_data import World
from bench.hot_paths import HotPath, hot_paths
from bench.side_by_side import Lines
from domain.tokens import Audience, issue_access_token
from infra.db import Database, create_engine
from infra.settings import Settings
from timeline.recording import FOLDS_PER_BATCH, fold_claimed

CLIENTS = 16
FOLD_LIMIT_S = 90.0
POS_PATHS = ("purchase", "refund")
TIMELINE = "/v1/app/timeline"
PATH_LABELS = {
    "purchase": "POS purchase, member",
    "refund": "POS refund (1 line item)",
    "timeline-typical": "GET /v1/app/timeline, typical member",
    "timeline-heavy": "GET /v1/app/timeline, heavy member",
}


class Round(msgspec.Struct, frozen=True, kw_only=True):
    """One measurement round: a database, a number of API workers, and how long each path runs."""

    size: Size
    workers: int
    repeat: int
    seconds: int
    warm_s: int
    session: str  # in every receipt and Idempotency-Key, so that a --reuse run repeats none


@dataclass(frozen=True)
class Run:
    """One path's figures in one round: wrk's result, the CPU the server, its PostgreSQL backends and
    wrk used (bench.harness.cpu_use), and what the whole machine did meanwhile (bench.growth_noise)."""

    size: Size
    workers: int
    path: str
    result: WrkResult
    cpu: CpuUse
    machine: MachineUse

    @property
    def others_cpu_share(self) -> float:
        """The share of all cores' time that other work took: busy time ours did not use."""
        if not self.machine.capacity_cpu_s:
            return math.nan
        ours = self.cpu.server_s + self.cpu.database_s + self.cpu.load_s
        return max(0.0, (self.machine.busy_cpu_s - ours) / self.machine.capacity_cpu_s)

    def summary(self) -> str:
        """The run's figures on one line, for the progress output."""
        result = self.result
        app_ms, postgres_ms, _ = self.cpu.per_request_ms(result.requests)
        failed = f", {result.failed} FAILED" if result.failed else ""
        return (
            f"{result.per_second:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms{failed}; "
            f"CPU per request: app {app_ms:.2f} ms, PostgreSQL {postgres_ms:.2f} ms; "
            f"other work took {self.others_cpu_share:.0%} of the CPU; "
            f"{self.machine.disk_read_mb:,.0f} MB read"
        )


def server_settings(world: World, size: Size, workers: int) -> Settings:
    """The world's server settings, serving the database of `size` with `workers` processes."""
    return msgspec.structs.replace(world.settings, database_url=database_url(size.database), workers=workers)


def _timeline(name: str, members: list[uuid.UUID], settings: Settings) -> HotPath:
    """Reads of the first timeline page, each by the next of `members` (repeats are harmless: reads)."""
    now = datetime.now(UTC)
    key = settings.key_ring("jwt_signing_key").current
    tokens = [
        issue_access_token(key, m, Audience.MEMBER, None, now, timedelta(hours=3), 0)[0] for m in members
    ]
    return HotPath(
        name,
        PATH_LABELS[name],
        TIMELINE,
        lambda n, tag, at: request_line("GET", TIMELINE, token=tokens[n % len(tokens)]),
        lambda n: {},
        len(tokens),
        single_use=False,
    )


def measured_paths(world: World, readers: Readers, settings: Settings) -> list[HotPath]:
    """The measured paths: a purchase and a refund, and timeline reads by typical and by heavy members."""
    pos = [path for path in hot_paths(world) if path.name in POS_PATHS]
    return [
        *pos,
        _timeline("timeline-typical", readers.typical, settings),
        _timeline("timeline-heavy", readers.heavy, settings),
    ]


async def measure(world: World, readers: Readers, lines: Lines, this_round: Round) -> list[Run]:
    """Every path at CLIENTS connections for the round's seconds, after its warm-up seconds of each to
    warm every pooled connection (prepared statements, caches); one server start."""
    size, workers = this_round.size, this_round.workers
    settings = server_settings(world, size, workers)
    paths = measured_paths(world, readers, settings)
    runs = []
    with running_server_process(settings) as server:
        label = f"{this_round.session}-{size}-{workers}-{this_round.repeat}"
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            for path in paths:
                await send_line_checked(client, path.line(0, f"check-{label}", datetime.now(UTC)), path.label)
        for path in paths:
            warm = lines(path, this_round.warm_s, f"warm-{label}")
            wrk_output(server.url, path.target, CLIENTS, this_round.warm_s, warm)
        for path in paths:
            requests = lines(path, this_round.seconds, label)
            with cpu_use(server.pid, size.database) as cpu, machine_use() as machine:
                output = wrk_output(server.url, path.target, CLIENTS, this_round.seconds, requests)
            run = Run(size, workers, path.name, WrkResult.parse(output), cpu, machine)
            runs.append(run)
            print(f"    {size}, {workers} worker(s), {path.label}: {run.summary()}", flush=True)
    return runs


async def fold_queued(size: Size) -> tuple[int, float]:
    """Fold what the measured requests queued for the traits as the worker's job does
    (timeline.recording.fold_pending: batches of FOLDS_PER_BATCH, one process), but for at most
    FOLD_LIMIT_S: events folded, seconds."""
    db = Database(create_engine(database_url(size.database), pool_size=2))
    folded, started = 0, time.perf_counter()
    try:
        while time.perf_counter() - started < FOLD_LIMIT_S:
            async with db.unit_of_work() as uow:
                batch = await fold_claimed(uow, FOLDS_PER_BATCH)
            folded += batch
            if batch < FOLDS_PER_BATCH:
                break
    finally:
        await db.dispose()
    return folded, time.perf_counter() - started
