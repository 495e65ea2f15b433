"""Store finder and check-ins under load: 50,000 stores, wrk as the load generator.

    .venv/bin/python -m bench.geofence_load [--stores 50000] [--seconds 15]

GET /v1/app/stores/nearby from random points near the stores (k=10) and anywhere in Japan;
POST /v1/app/check-ins by distinct members at random stores (fresh fixes, each request its own
Idempotency-Key), at 16 and 64 concurrent connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from geopy.distance import geodesic

from bench.harness import bench_settings, copy_members, fresh_database, request_line, running_server
from bench.register_load import wrk
from domain.ids import new_id
from domain.tokens import Audience, issue_access_token

CITIES = (
    (35.68, 139.76, 0.35),
    (34.69, 135.50, 0.25),
    (35.18, 136.90, 0.15),
    (43.06, 141.35, 0.1),
    (33.59, 130.40, 0.15),
)


async def load(
    url: str, stores: int, members: int
) -> tuple[list[tuple[uuid.UUID, float, float]], list[uuid.UUID]]:
    rng = random.Random(5)
    now = datetime.now(UTC)
    rows = []
    for n in range(stores):
        lat, lon, spread = (
            CITIES[n % len(CITIES)] if n % 10 else (rng.uniform(31, 44), rng.uniform(130, 145), 0)
        )
        rows.append(
            (
                new_id(),
                f"S{n:06d}",
                f"Store {n}",
                "Japan",
                lat + rng.gauss(0, spread),
                lon + rng.gauss(0, spread),
                100,
                "Asia/Tokyo",
                "open",
                now,
                now,
                True,
            )
        )
    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table(
            "stores",
            records=rows,
            columns=[
                "id",
                "code",
                "name",
                "address",
                "latitude",
                "longitude",
                "check_in_radius_m",
                "time_zone",
                "status",
                "created_at",
                "updated_at",
                "geofence_enabled",
            ],
        )
        member_ids = await copy_members(connection, members, now, first_card=3000000000000000)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return [(row[0], row[4], row[5]) for row in rows], member_ids


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, default=50_000)
    parser.add_argument("--members", type=int, default=40_000)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("this benchmark needs wrk (apt-get install wrk)")
    url = await fresh_database("tsunagari_bench_geofence")
    started = time.perf_counter()
    stores, members = await load(url, args.stores, args.members)
    print(
        f"loaded {len(stores):,} stores and {len(members):,} members in {time.perf_counter() - started:.0f}s"
    )
    settings = bench_settings(url, workers=2)
    key = settings.key_ring("jwt_signing_key").current
    now = datetime.now(UTC)
    tokens = [
        issue_access_token(key, m, Audience.MEMBER, None, now, timedelta(hours=2), 0)[0] for m in members
    ]
    rng = random.Random(9)

    def nearby_line(n: int) -> str:
        _, lat, lon = stores[rng.randrange(len(stores))]
        if n % 5 == 0:
            lat, lon = rng.uniform(31, 44), rng.uniform(130, 145)
        lat, lon = lat + rng.gauss(0, 0.01), lon + rng.gauss(0, 0.01)
        path = f"/v1/app/stores/nearby?lat={lat:.6f}&lon={lon:.6f}&limit=10"
        return request_line("GET", path, token=tokens[n % len(tokens)])

    with running_server(settings) as base:
        for concurrency in (16, 64):
            print(f"GET /v1/app/stores/nearby over {len(stores):,} stores, {concurrency} clients (wrk):")
            print(
                wrk(
                    base,
                    "/v1/app/stores/nearby",
                    concurrency,
                    args.seconds,
                    [nearby_line(n) for n in range(20_000)],
                )
            )
        used = 0
        for concurrency in (16, 64):
            fix_at = datetime.now(UTC).isoformat()
            lines = []
            for n in range(used, min(used + 400 * args.seconds, len(members))):
                store_id, lat, lon = stores[rng.randrange(len(stores))]
                near = geodesic(meters=rng.uniform(0, 60)).destination((lat, lon), rng.uniform(0, 360))
                body = json.dumps(
                    {
                        "store_id": str(store_id),
                        "latitude": near.latitude,
                        "longitude": near.longitude,
                        "accuracy_m": 15,
                        "fix_at": fix_at,
                        "trigger": "geofence_dwell",
                    },
                    separators=(",", ":"),
                )
                lines.append(
                    request_line("POST", "/v1/app/check-ins", key=f"geo-{n:08d}", token=tokens[n], body=body)
                )
            used += len(lines)
            print(f"POST /v1/app/check-ins, {concurrency} clients (wrk):")
            print(wrk(base, "/v1/app/check-ins", concurrency, args.seconds, lines))


if __name__ == "__main__":
    asyncio.run(main())
