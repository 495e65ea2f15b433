"""Timeline at scale: bulk-load events with COPY, then measure ingestion and reading over HTTP.

    .venv/bin/python -m bench.timeline_load [--events 10000000] [--members 100000]

1. loads `--members` members and `--events` events spread over the last 12 months (COPY, binary);
2. serves the API (2 worker processes) on that database;
3. POST /v1/app/events: batches of 50 from `--concurrency` clients -> events/s;
4. GET /v1/app/timeline (first page, 50 items) for random members -> p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.harness import SERVER_URL, bench_settings, copy_members, fresh_database, run_load, running_server
from domain.ids import new_id
from domain.tokens import Audience, issue_access_token

DATABASE = "tsunagari_bench_timeline"
EVENTS_PER_BATCH = 50
COPY_CHUNK = 200_000
KINDS = (
    "app_opened",
    "content_viewed",
    "offer_viewed",
    "push_opened",
    "purchased",
    "checked_in",
    "points_earned",
)


def event_weights(members: int) -> list[float]:
    """Each member's relative share of the events `load_events` writes, by rank in its member list: a
    long tail, as in real programs, where a few members produce many events."""
    return [1 / (rank + 1) ** 0.8 for rank in range(members)]


async def load_events(
    connection: asyncpg.Connection, members: list[uuid.UUID], count: int, now: datetime
) -> None:
    rng = random.Random(7)
    weights = event_weights(len(members))
    year_s = 365 * 24 * 3600
    loaded = 0
    started = time.perf_counter()
    while loaded < count:
        size = min(COPY_CHUNK, count - loaded)
        owners = rng.choices(members, weights=weights, k=size)
        records = []
        for member_id in owners:
            occurred_at = now - timedelta(seconds=rng.randrange(year_s))
            records.append((new_id(), occurred_at, occurred_at, member_id, rng.choice(KINDS), "app"))
        await connection.copy_records_to_table(
            "timeline_events",
            columns=["id", "occurred_at", "recorded_at", "member_id", "kind", "channel"],
            records=records,
        )
        loaded += size
        rate = loaded / (time.perf_counter() - started)
        print(f"\r  loaded {loaded:,}/{count:,} events ({rate:,.0f}/s)", end="", flush=True)
    print()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batches", type=int, default=600)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--reuse", action="store_true", help="keep the data loaded by an earlier run")
    args = parser.parse_args()

    now = datetime.now(UTC)
    if args.reuse:
        url = f"{SERVER_URL}/{DATABASE}"
        connection = await asyncpg.connect(url)
        members = [row[0] for row in await connection.fetch("SELECT id FROM members ORDER BY id")]
        total = await connection.fetchval("SELECT count(*) FROM timeline_events")
        await connection.close()
        print(f"reusing {total:,} events for {len(members):,} members")
    else:
        url = await fresh_database(DATABASE)
        connection = await asyncpg.connect(url)
        try:
            started = time.perf_counter()
            members = await copy_members(connection, args.members, now)
            await load_events(connection, members, args.events, now)
            await connection.execute("ANALYZE")
            seconds = time.perf_counter() - started
            print(f"bulk load: {args.events:,} events for {args.members:,} members in {seconds:.0f}s")
        finally:
            await connection.close()

    settings = bench_settings(url, workers=2)
    key = settings.key_ring("jwt_signing_key").current
    tokens = {
        m: issue_access_token(key, m, Audience.MEMBER, None, now, timedelta(hours=2))[0]
        for m in members[:5000]
    }
    sample = list(tokens)
    rng = random.Random(11)

    async def post_batch(client: httpx.AsyncClient, n: int) -> httpx.Response:
        member_id = sample[n % len(sample)]
        at = datetime.now(UTC).isoformat()
        events = [
            {"client_event_id": f"bench-{n}-{i}", "kind": "app_opened", "occurred_at": at}
            for i in range(EVENTS_PER_BATCH)
        ]
        return await client.post(
            "/v1/app/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {tokens[member_id]}"},
        )

    async def read_timeline(client: httpx.AsyncClient, n: int) -> httpx.Response:
        member_id = rng.choice(sample)
        return await client.get("/v1/app/timeline", headers={"Authorization": f"Bearer {tokens[member_id]}"})

    with running_server(settings) as base:
        await run_load(args.concurrency, 50, read_timeline, base)  # warm-up: connections, caches
        ingest = await run_load(args.concurrency, args.batches, post_batch, base)
        print(
            ingest.line(
                f"POST /v1/app/events (batches of {EVENTS_PER_BATCH}, {args.concurrency} clients)",
                EVENTS_PER_BATCH,
                "events",
            )
        )
        reads = await run_load(args.concurrency, args.reads, read_timeline, base)
        print(reads.line(f"GET /v1/app/timeline ({args.concurrency} clients)"))


if __name__ == "__main__":
    asyncio.run(main())
