"""Push test support: the local FCM server's control endpoints, audiences made in bulk, a dispatcher."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from accounts.rules import new_card_number
from accounts.tables import Member, MemberDevice
from domain.clock import Clock
from infra.db import Database
from infra.redis import RedisKeys, connect_redis
from infra.settings import Settings
from points.program import load_program
from push.dispatch import Dispatcher
from push.fcm import FcmSender
from push.materialize import materialize_campaigns
from push.pacing import Pacer
from push.policy import PushPolicy
from push.profiles import refresh_profiles
from push.rules.groups import in_global_control
from push.tables import Delivery, DeliveryState
from tests.integration.factories import bearer
from timeline.recording import fold_pending

# Tests send through FCM one message at a time in claims of a few, so a test sees every step.
TEST_POLICY = PushPolicy(global_control_percent=1, default_quiet_hours=None, concurrency=10, claim_batch=50)


@dataclass(frozen=True)
class LocalFcmServer:
    url: str

    def rules(self, **rules: Any) -> None:
        response = httpx.post(f"{self.url}/_local/rules", json=rules)
        assert response.status_code == 200, response.text

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = httpx.get(f"{self.url}/_local/summary").json()
        return summary

    async def wait_until_received(self, count: int, within_s: float = 5.0) -> None:
        """Wait for messages FCM takes after the client gave up on its answer, so that they are
        counted where they belong and not by a later test."""
        for _ in range(int(within_s / 0.05)):
            if self.summary()["received"] >= count:
                return
            await asyncio.sleep(0.05)

    def messages(self) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = httpx.get(f"{self.url}/_local/messages").json()
        return received

    def reset(self) -> None:
        httpx.delete(f"{self.url}/_local/messages").raise_for_status()
        httpx.delete(f"{self.url}/_local/rules").raise_for_status()


def address_of(member_id: uuid.UUID, slot: int = 0) -> str:
    return f"fid-{member_id.hex}-{slot}"


async def add_members(
    db: Database,
    count: int,
    now: datetime,
    *,
    time_zone: str = "Asia/Tokyo",
    devices: int = 1,
    permission: str = "granted",
    anyone: bool = False,
) -> list[uuid.UUID]:
    """Members with `devices` phones each, registered for push (the API path has its own tests).

    Unless `anyone`, their ids fall outside the tests' global control group: with random ids, one
    member in a hundred would be held back from every campaign, and a test about sending would fail
    once in a hundred runs. Tests about control groups ask for `anyone`."""
    ids: list[uuid.UUID] = []
    while len(ids) < count:
        member_id = uuid.uuid4()
        if anyone or not in_global_control(member_id, TEST_POLICY.global_control_percent):
            ids.append(member_id)
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            insert(Member),
            [
                {
                    "id": member_id,
                    "card_number": new_card_number(),
                    "email": f"{member_id.hex}@example.jp",
                    "display_name": f"Member {member_id.hex[:6]}",
                    "time_zone": time_zone,
                    "locale": "ja-JP",
                    "created_at": now,
                    "updated_at": now,
                }
                for member_id in ids
            ],
        )
        if devices:
            await uow.session.execute(
                insert(MemberDevice),
                [
                    {
                        "member_id": member_id,
                        "slot": slot,
                        "secret_salt": os.urandom(16),
                        "created_at": now,
                        "push_kind": "fid",
                        "push_address": address_of(member_id, slot),
                        "platform": "ios",
                        "app_version": "3.2.0",
                        "locale": "ja-JP",
                        "notification_permission": permission,
                        "push_refreshed_at": now,
                        "last_seen_at": now,
                    }
                    for member_id in ids
                    for slot in range(devices)
                ],
            )
    return sorted(ids)


async def create_campaign(client: httpx.AsyncClient, staff: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Winter linen",
        "variants": [{"key": "A", "title": "Hello {display_name}", "body": "New linen is in."}],
        "schedule": {"kind": "now"},
        **fields,
    }
    response = await client.post("/v1/console/campaigns", json=body, headers=bearer(staff))
    assert response.status_code == 201, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


async def schedule(client: httpx.AsyncClient, staff: dict[str, Any], campaign_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/console/campaigns/{campaign_id}/schedule", headers=bearer(staff))
    assert response.status_code == 200, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


@asynccontextmanager
async def dispatcher(
    settings: Settings,
    fcm: LocalFcmServer,
    clock: Clock,
    db: Database,
    policy: PushPolicy = TEST_POLICY,
    timeout_s: int = 5,
) -> AsyncIterator[Dispatcher]:
    """A worker's sending half, sending through firebase-admin to the local FCM server."""
    assert settings.redis_url is not None
    redis = RedisKeys(connect_redis(settings.redis_url), settings.redis_key_prefix)
    sender = FcmSender("tsunagari-test", base_url=fcm.url, timeout_s=timeout_s)
    program = load_program(settings.points_program)
    try:
        yield Dispatcher(db, Pacer(redis, policy.send_rate_per_second), sender, policy, program, clock)
    finally:
        await lift_pause(redis)
        await sender.close()
        await redis.client.aclose()


async def lift_pause(redis: RedisKeys) -> None:
    """End a 429 pause early (tests that are about retrying, not about waiting)."""
    await redis.client.delete(redis.key("push", "paused"))


async def draw(db: Database, clock: Clock, settings: Settings, policy: PushPolicy = TEST_POLICY) -> int:
    """The worker's drawing job: scheduled campaigns' audiences into deliveries (with the members'
    traits folded, as the worker folds them every second)."""
    await fold_pending(db)
    return await materialize_campaigns(db, load_program(settings.points_program), policy, clock.now())


async def profile_everyone(db: Database, clock: Clock, settings: Settings) -> None:
    """The worker's hourly profile sweep (with the members' traits folded, as the worker keeps them)."""
    await fold_pending(db)
    await refresh_profiles(db, load_program(settings.points_program), clock.now())


async def send_all_due(sender: Dispatcher, rounds: int = 50) -> None:
    """Dispatch until nothing due is left (what a worker does between idle waits)."""
    for _ in range(rounds):
        if await sender.dispatch_once() == 0:
            return
    raise AssertionError(f"still sending after {rounds} rounds")


async def deliveries(db: Database, campaign_id: str | uuid.UUID) -> list[Delivery]:
    async with db.unit_of_work() as uow:
        rows = await uow.session.execute(
            select(Delivery)
            .where(Delivery.campaign_id == uuid.UUID(str(campaign_id)))
            .order_by(Delivery.member_id, Delivery.device_slot)
        )
        return list(rows.scalars())


async def states(db: Database, campaign_id: str | uuid.UUID) -> dict[str, int]:
    async with db.unit_of_work() as uow:
        rows = await uow.session.execute(
            select(Delivery.state, func.count())
            .where(Delivery.campaign_id == uuid.UUID(str(campaign_id)))
            .group_by(Delivery.state)
        )
        return {state.value: count for state, count in rows}


def members_of(rows: Sequence[Delivery], state: DeliveryState) -> set[uuid.UUID]:
    return {row.member_id for row in rows if row.state is state}
