"""A 100,000-member push campaign sent by two worker processes to the local FCM server, beside a ceiling.

1. Loads `--members` members, each with one phone registered for push (COPY), in a scratch database.
2. Starts the local FCM-compatible server (`tsunagari fcm-local`) in its own process.
3. Ceiling: two processes send `--ceiling` messages through firebase-admin to that server as fast as the
   same concurrency allows, without any database work: what the sending path alone can do here.
4. Schedules a campaign for everyone (send now, no quiet hours), starts two `tsunagari worker` processes,
   and waits until every delivery is settled.
5. Reports: time to draw the audience, messages delivered per minute (and the ratio to the ceiling),
   due-to-sent p50/p99, and whether the local server received each message exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import msgspec

from accounts.rules import StaffRole
from accounts.staff import create_staff
from bench.harness import REDIS_URL, bench_settings, copy_members, free_port, fresh_database
from domain.clock import SystemClock
from infra.db import Database, create_engine
from infra.settings import env_for_children
from push.campaigns import create_campaign, schedule_campaign
from push.fcm import FcmSender, OutgoingMessage
from push.policy import PushPolicy
from push.rules.scheduling import SendNow
from push.schemas import CampaignDraft, Variant

DATABASE = "tsunagari_bench_push"
POLICY = PushPolicy(send_rate_per_second=100_000, concurrency=50, claim_batch=500, default_quiet_hours=None)


async def copy_phones(connection: asyncpg.Connection, members: list[uuid.UUID], now: datetime) -> None:
    await connection.copy_records_to_table(
        "member_devices",
        columns=[
            "member_id",
            "slot",
            "secret_salt",
            "created_at",
            "push_kind",
            "push_address",
            "platform",
            "app_version",
            "locale",
            "notification_permission",
            "push_refreshed_at",
            "last_seen_at",
        ],
        records=[
            (m, 0, os.urandom(16), now, "fid", f"fid-{m.hex}", "ios", "3.2.0", "ja-JP", "granted", now, now)
            for m in members
        ],
    )


def start(*args: str, env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    log = open(os.path.join(tempfile.gettempdir(), log_name), "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)


def wait_for_server(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_local/summary", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError("the local FCM server did not start")


async def ceiling_sender(url: str, count: int, concurrency: int) -> None:
    """One process of the ceiling: `count` messages, `concurrency` at a time, as a worker groups them."""
    sender = FcmSender("bench", base_url=url)
    try:
        for start_at in range(0, count, concurrency):
            group = [
                OutgoingMessage(
                    "fid",
                    f"ceiling-{os.getpid()}-{n}",
                    "Hello",
                    "Bench",
                    {"delivery_id": f"c{os.getpid()}-{n}"},
                )
                for n in range(start_at, min(count, start_at + concurrency))
            ]
            results = await sender.send(group)
            assert all(r.error_code is None for r in results)
    finally:
        await sender.close()


def measure_ceiling(url: str, count: int) -> float:
    """Messages per minute two sender processes reach against the local server."""
    httpx.delete(f"{url}/_local/messages").raise_for_status()
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.push_load", "--ceiling-child", url, "--ceiling", str(count // 2)]
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.wait(timeout=600) == 0
    seconds = time.perf_counter() - started
    received: int = httpx.get(f"{url}/_local/summary").json()["received"]
    assert received == count // 2 * 2, received
    httpx.delete(f"{url}/_local/messages").raise_for_status()
    return received / seconds * 60


async def schedule_everyone(database_url: str) -> uuid.UUID:
    db = Database(create_engine(database_url, pool_size=2))
    try:
        clock = SystemClock()
        async with db.unit_of_work() as uow:
            staff = await create_staff(
                uow, clock, "bench-marketer@example.jp", "bench-password-1", "Bench", StaffRole.MARKETER
            )
            draft = CampaignDraft(
                name="Bench: everyone, now",
                variants=[
                    Variant(key="A", title="{display_name}さん", body="{points_balance} points", weight=1),
                    Variant(key="B", title="こんにちは {display_name}さん", body="New in store", weight=1),
                ],
                schedule=SendNow(),
                respect_quiet_hours=False,
            )
            campaign = await create_campaign(uow, staff.id, draft, clock.now())
            await schedule_campaign(uow, campaign.id, clock.now())
        return campaign.id
    finally:
        await db.dispose()


async def progress(connection: asyncpg.Connection, campaign_id: uuid.UUID) -> tuple[bool, dict[str, int]]:
    drawn = await connection.fetchval(
        "SELECT materialized_through IS NOT NULL FROM push_campaigns WHERE id = $1", campaign_id
    )
    rows = await connection.fetch(
        "SELECT state::text, count(*) FROM push_deliveries WHERE campaign_id = $1 GROUP BY 1", campaign_id
    )
    return bool(drawn), {state: count for state, count in rows}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--ceiling", type=int, default=40_000, help="messages for the ceiling run")
    parser.add_argument("--ceiling-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_child:
        await ceiling_sender(args.ceiling_child, args.ceiling, POLICY.concurrency)
        return

    now = datetime.now(UTC)
    url = await fresh_database(DATABASE)
    connection = await asyncpg.connect(url)
    started = time.perf_counter()
    members = await copy_members(connection, args.members, now)
    await copy_phones(connection, members, now)
    await connection.execute("ANALYZE")
    print(f"loaded {len(members):,} members with a phone each in {time.perf_counter() - started:.0f}s")

    fcm_url = f"http://127.0.0.1:{free_port()}"
    port = fcm_url.rsplit(":", 1)[1]
    fcm = start(
        "-m", "commands.cli", "fcm-local", "--port", port, env=dict(os.environ), log_name="bench-fcm.log"
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_server(fcm_url)
        ceiling = measure_ceiling(fcm_url, args.ceiling)
        print(
            f"ceiling: firebase-admin to the local server, 2 processes x {POLICY.concurrency} in flight: "
            f"{ceiling:,.0f} messages/min"
        )

        campaign_id = await schedule_everyone(url)
        settings = bench_settings(url, workers=1)
        env = {
            **os.environ,
            **env_for_children(settings),
            "TSUNAGARI_REDIS_URL": REDIS_URL,
            "TSUNAGARI_FCM_URL": fcm_url,
            "TSUNAGARI_PUSH_POLICY": msgspec.json.encode(POLICY).decode(),
        }
        scheduled = time.perf_counter()
        workers = [
            start("-m", "commands.cli", "worker", env=env, log_name=f"bench-worker-{n}.log") for n in range(2)
        ]
        drawn_after: float | None = None
        while True:
            await asyncio.sleep(0.5)
            drawn, states = await progress(connection, campaign_id)
            if drawn and drawn_after is None:
                drawn_after = time.perf_counter() - scheduled
                print(f"audience drawn into {sum(states.values()):,} deliveries in {drawn_after:.1f}s")
            if drawn and not {"pending", "claimed", "sending"} & set(states):
                break
        settled_after = time.perf_counter() - scheduled
    finally:
        for worker in workers:
            stop(worker)
        summary = (await asyncio.to_thread(httpx.get, f"{fcm_url}/_local/summary")).json()
        stop(fcm)

    row = await connection.fetchrow(
        """
        SELECT count(*) AS sent,
               min(sent_at) AS first, max(sent_at) AS last,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - first_due_at)) p50,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - first_due_at)) p99,
               count(DISTINCT address) AS addresses
        FROM push_deliveries WHERE campaign_id = $1 AND state = 'sent'
        """,
        campaign_id,
    )
    _, states = await progress(connection, campaign_id)
    await connection.close()
    sending_s = (row["last"] - row["first"]).total_seconds()
    rate = row["sent"] / sending_s * 60
    print(f"deliveries by state: {states}")
    print(f"settled {settled_after:.1f}s after scheduling; sending took {sending_s:.1f}s")
    print(
        f"delivered: {row['sent']:,} messages, {rate:,.0f} messages/min ({rate / ceiling:.0%} of the ceiling)"
    )
    print(f"due to sent: p50 {row['p50']:.1f}s, p99 {row['p99']:.1f}s (all due at once: the queue drains)")
    exactly_once = (
        summary["received"] == summary["distinct_deliveries"] == row["sent"] == row["addresses"]
        and not summary["duplicate_deliveries"]
        and not summary["repeated_to_device"]
    )
    print(
        f"local FCM server: received {summary['received']:,}, "
        f"distinct deliveries {summary['distinct_deliveries']:,}, "
        f"duplicates {len(summary['duplicate_deliveries'])}, "
        f"devices sent the campaign twice {len(summary['repeated_to_device'])}: exactly once = {exactly_once}"
    )


if __name__ == "__main__":
    asyncio.run(main())
