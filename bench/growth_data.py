"""The growth benchmark's two scratch databases: a small one, and a large one grown from a copy of it.

The small database is the side-by-side benchmark's world (bench.hot_path_data: stores and members by
COPY, terminals and shoppers with devices through the product's use cases, one refundable sale per
shopper recorded by points.sales itself), then a year of points history per member (bench.growth_ledger)
and timeline events (bench.timeline_load). The large one starts as a copy of it (CREATE DATABASE ...
TEMPLATE), so every identity and secret of the world is valid in both, and grows by the same builders:
members by COPY, their history, more events.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg
import msgspec

from bench.growth_ledger import write_history
from bench.harness import copy_members, database_url, drop_databases, fresh_database
from bench.hot_path_data import Sizes, World, build_world
from bench.timeline_load import event_weights, load_events
from infra.db import Database, create_engine
from points.program import load_program
from timeline.recording import fold_pending

PREFIX = "bench_growth"
GROWN_FIRST_CARD = 4_000_000_000_000_000  # bench.geofence_load's members start at 3e15
STORES = 500
OFFERS = 20
READERS = 64  # members with a typical timeline whose reads are measured
HEAVY_READERS = 16
TYPICAL_SPREAD = 0.2  # a typical member has the mean number of events, give or take this share
INDEXED_TABLES = ("purchases", "point_lots", "point_entries")  # indexes rebuilt after a bulk load


class Size(StrEnum):
    """The benchmark's two databases."""

    SMALL = "small"
    LARGE = "large"

    @property
    def database(self) -> str:
        """The name of this size's database."""
        return f"{PREFIX}_{self.value}"


class Steps:
    """Build steps and how long each took, printed as they finish."""

    def __init__(self) -> None:
        self.done: list[tuple[str, float]] = []

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Time the block as the build step `label` (not recorded if the block fails)."""
        started = time.perf_counter()
        yield
        self.done.append((label, time.perf_counter() - started))
        print(f"  {label}: {self.done[-1][1]:,.1f} s", flush=True)

    def progress(self, label: str) -> Callable[[str], None]:
        started = time.perf_counter()
        return lambda what: print(f"    {label}: {what} ({time.perf_counter() - started:,.0f} s)", flush=True)


class Readers(msgspec.Struct, frozen=True):
    """Members whose timelines are read: typical ones (about the mean number of events) and the heaviest."""

    typical: list[uuid.UUID]
    typical_events: float  # their mean
    heavy: list[uuid.UUID]
    heavy_events: float


async def build_small(members: int, shoppers: int, events: int, steps: Steps) -> tuple[World, Readers]:
    """The small database: the side-by-side world for `members` members of whom `shoppers` have a
    refundable sale, their points history and `events` timeline events; its world and readers."""
    with steps.step("small: migrations"):
        url = await fresh_database(Size.SMALL.database)
    with steps.step(
        f"small: world ({STORES} stores, {members:,} members, {shoppers:,} with a refundable sale)"
    ):
        # One redeemer: build_world needs at least one; redemptions are not measured here.
        sizes = Sizes(STORES, shoppers, 1, members - shoppers - 1, 0, OFFERS)
        world = await build_world(url, 1, sizes)
    connection = await asyncpg.connect(url)
    try:
        ids = [row[0] for row in await connection.fetch("SELECT id FROM members ORDER BY id")]
        await _history(connection, world, list(enumerate(ids)), Size.SMALL, steps)
        await _events(connection, ids, events, Size.SMALL, steps)
        await _fold_queue(url, steps)
        await _settle(connection, Size.SMALL, steps)
    finally:
        await connection.close()
    return world, await readers_of(Size.SMALL, ids)


async def grow(world: World, members: int, events: int, steps: Steps) -> Readers:
    """The large database: a copy of the small one, to `members` members and `events` more events."""
    large, small = Size.LARGE.database, Size.SMALL.database
    await drop_databases(large)
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        with steps.step("large: copy of the small database"):
            await admin.execute(f'CREATE DATABASE "{large}" TEMPLATE "{small}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(database_url(large))
    try:
        first = await connection.fetchval("SELECT count(*) FROM members")
        with steps.step(f"large: {members - first:,} more members (COPY)"):
            now = datetime.now(UTC)
            ids = await copy_members(connection, members - first, now, GROWN_FIRST_CARD)
        async with _indexes_rebuilt_after(connection, steps):
            grown = [(first + n, m) for n, m in enumerate(ids)]
            await _history(connection, world, grown, Size.LARGE, steps)
        # The new members first: they take the long tail's head, the small database's members its end.
        new = set(ids)
        everyone = await connection.fetch("SELECT id FROM members ORDER BY id")
        load_order = ids + [row[0] for row in everyone if row[0] not in new]
        await _events(connection, load_order, events, Size.LARGE, steps)
        await _settle(connection, Size.LARGE, steps)
    finally:
        await connection.close()
    return await readers_of(Size.LARGE, load_order)


async def _history(
    connection: asyncpg.Connection,
    world: World,
    members: list[tuple[int, uuid.UUID]],
    size: Size,
    steps: Steps,
) -> None:
    label = f"{size}: points history of {len(members):,} members (INSERT ... SELECT)"
    program = load_program(world.settings.points_program)  # the program the bench's server runs
    with steps.step(label):
        now = datetime.now(UTC)
        await write_history(connection, program, members, world.terminals, now, steps.progress(label))


async def _events(
    connection: asyncpg.Connection, members: list[uuid.UUID], count: int, size: Size, steps: Steps
) -> None:
    """`count` events over the last year, long-tailed: members earlier in `members` have more."""
    with steps.step(f"{size}: {count:,} timeline events (COPY)"):
        await load_events(connection, members, count, datetime.now(UTC))


async def _fold_queue(url: str, steps: Steps) -> None:
    """Fold what the seeded sales queued for the traits, as a running worker would have by now: the
    measured requests then find only their own events queued."""
    with steps.step("small: trait folds the seeded sales queued (the worker's job)"):
        db = Database(create_engine(url, pool_size=2))
        try:
            await fold_pending(db)
        finally:
            await db.dispose()


async def _settle(connection: asyncpg.Connection, size: Size, steps: Steps) -> None:
    """What autovacuum and the checkpointer would have done by the time a real database got this big
    (the bench's PostgreSQL runs with autovacuum off): statistics, visibility map, hint bits, flushed
    pages."""
    with steps.step(f"{size}: VACUUM (ANALYZE), CHECKPOINT"):
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")


@asynccontextmanager
async def _indexes_rebuilt_after(connection: asyncpg.Connection, steps: Steps) -> AsyncIterator[None]:
    """Drop the secondary indexes of INDEXED_TABLES for a bulk load and build them again afterwards,
    also when the load fails (the database is then still whole): one sort per index instead of
    millions of random inserts into indexes larger than shared_buffers."""
    rows = await connection.fetch(
        """
        SELECT c.relname AS table_name, i.relname AS index_name, pg_get_indexdef(i.oid) AS definition,
               con.conname, pg_get_constraintdef(con.oid) AS constraint_definition
        FROM pg_index x
        JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.contype = 'u'
        WHERE c.relname = ANY($1) AND NOT x.indisprimary
        """,
        list(INDEXED_TABLES),
    )
    rebuild = []
    for row in rows:
        table = row["table_name"]
        if row["conname"]:  # a unique constraint: dropped and added back as a constraint
            await connection.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{row["conname"]}"')
            rebuild.append(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{row["conname"]}" {row["constraint_definition"]}'
            )
        else:
            await connection.execute(f'DROP INDEX "{row["index_name"]}"')
            rebuild.append(row["definition"])
    try:
        yield
    finally:
        with steps.step(f"large: {len(rebuild)} secondary indexes of {', '.join(INDEXED_TABLES)} rebuilt"):
            await connection.execute("SET maintenance_work_mem = '1GB'")
            for statement in rebuild:
                await connection.execute(statement)
            await connection.execute("RESET maintenance_work_mem")


async def readers_of(size: Size, load_order: list[uuid.UUID]) -> Readers:
    """Typical and heavy timeline readers of the database of `size`, by their actual number of events.

    `load_order` is the member list of the last load_events: the first are the heaviest, and the
    typical ones sit around the rank whose expected share is the mean.
    """
    connection = await asyncpg.connect(database_url(size.database))
    try:
        total = await connection.fetchval("SELECT count(*) FROM timeline_events")
        mean = total / len(load_order)
        weights = event_weights(len(load_order))
        scale = total / sum(weights)
        rank = next((r for r, w in enumerate(weights) if w * scale < mean), len(load_order) // 2)
        window = load_order[max(0, rank - 2000) : rank + 2000]
        counts = dict(
            await connection.fetch(
                "SELECT member_id, count(*) FROM timeline_events WHERE member_id = ANY($1) GROUP BY 1",
                [*load_order[:HEAVY_READERS], *window],
            )
        )
    finally:
        await connection.close()
    fewest, most = math.floor(mean * (1 - TYPICAL_SPREAD)), math.ceil(mean * (1 + TYPICAL_SPREAD))
    typical = [m for m in window if fewest <= counts.get(m, 0) <= most][:READERS]
    heavy = sorted(load_order[:HEAVY_READERS], key=lambda m: -counts.get(m, 0))
    if len(typical) < READERS:
        raise SystemExit(f"{size.database}: only {len(typical)} members with {fewest} to {most} events found")
    return Readers(
        typical,
        sum(counts[m] for m in typical) / len(typical),
        heavy,
        sum(counts.get(m, 0) for m in heavy) / len(heavy),
    )


async def database_sizes() -> dict[str, int]:
    """Bytes on disk of each bench database that exists, by its database name."""
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        rows = await admin.fetch(
            "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname = ANY($1)",
            [size.database for size in Size],
        )
    finally:
        await admin.close()
    return dict(rows)


async def largest_relations(database: str, limit: int = 12) -> list[tuple[str, int, int]]:
    """The largest tables (partitions summed into their parent): name, rows (estimated), total bytes."""
    connection = await asyncpg.connect(database_url(database))
    try:
        rows = await connection.fetch(
            """
            SELECT coalesce(parent.relname, c.relname) AS name, sum(c.reltuples)::bigint AS rows,
                   sum(pg_total_relation_size(c.oid))::bigint AS bytes
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid
            LEFT JOIN pg_class parent ON parent.oid = inh.inhparent
            WHERE c.relkind = 'r'
            GROUP BY 1 ORDER BY 3 DESC LIMIT $1
            """,
            limit,
        )
    finally:
        await connection.close()
    return [(row["name"], row["rows"], row["bytes"]) for row in rows]


async def drop_bench_databases() -> None:
    """Drop both of the benchmark's databases, where they exist."""
    await drop_databases(*(size.database for size in Size))
