"""Server time of each console page on the demo retailer (a year of history), one request at a time.

Seeds a scratch database as `serve` seeds the demo, starts the server, logs in as the admin through the
login form, then requests each page `--rounds` times in turn and reports p50 and p99 per page, beside
`/healthz` measured the same way in the same run (the ceiling: the web server alone).

    python -m bench.console_pages --rounds 30
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

import httpx

from bench.harness import bench_settings, fresh_database, running_server
from commands.demo import ADMIN_EMAIL, DEMO_PASSWORD, seed_demo
from commands.migrate import upgrade
from domain.clock import SystemClock
from domain.keys import SigningKey
from infra.db import Database, create_engine

PAGES = (
    "/healthz",
    "/console?days=90",
    "/console?days=365",
    "/console/members?q=member001",
    "{member}",
    "/console/segments",
    "/console/campaigns",
    "{campaign}",
    "/console/offers",
    "/console/stores",
    "/console/fraud",
)


def seeded(name: str, terminal_key: SigningKey) -> tuple[str, float]:
    url = asyncio.run(fresh_database(name))
    upgrade(url)  # alembic runs its own event loop

    async def seed() -> None:
        db = Database(create_engine(url, pool_size=2))
        try:
            await seed_demo(db, SystemClock(), terminal_key)
        finally:
            await db.dispose()

    started = time.perf_counter()
    asyncio.run(seed())
    return url, time.perf_counter() - started


def first_link(client: httpx.Client, path: str, pattern: str) -> str:
    found = re.search(pattern, client.get(path).text)
    assert found is not None, f"no link like {pattern} on {path}"
    return found.group(0).strip('"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    settings = bench_settings("postgresql://unused", workers=1)
    url, seed_s = seeded("tsunagari_bench_console", settings.key_ring("terminal_key").current)
    print(f"demo seeded in {seed_s:.1f} s")
    settings = bench_settings(url, workers=1)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=60) as client:
        login = client.get("/console/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token is not None
        form = {"csrf_token": token.group(1), "email": ADMIN_EMAIL, "password": DEMO_PASSWORD}
        assert client.post("/console/login", data=form).status_code == 303
        member = first_link(client, "/console/members?q=member001", r'"/console/members/[0-9a-f-]{36}"')
        campaign = first_link(client, "/console/campaigns", r'"/console/campaigns/[0-9a-f-]{36}"')
        paths = [p.format(member=member, campaign=campaign) for p in PAGES]
        times: dict[str, list[float]] = {p: [] for p in paths}
        for _ in range(args.rounds):
            for path in paths:
                started = time.perf_counter()
                response = client.get(path)
                times[path].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
    ceiling = statistics.median(times["/healthz"])
    print(f"{'page':45} {'p50 ms':>8} {'p99 ms':>8} {'x healthz':>10}")
    for path, measured in times.items():
        ordered = sorted(measured)
        p50, p99 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        label = re.sub(r"[0-9a-f-]{36}", "{id}", path)
        print(f"{label:45} {p50:8.1f} {p99:8.1f} {p50 / ceiling:10.1f}")


if __name__ == "__main__":
    main()
