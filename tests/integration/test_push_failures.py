"""What FCM's answers do: dead addresses stop being used, 429 and 503 are retried until delivered, a
message whose fate is unknown is never sent again, and retrying stops with a recorded reason."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import select

from accounts.tables import MemberDevice
from domain.clock import SettableClock
from infra.db import Database
from infra.redis import RedisKeys, connect_redis
from infra.settings import Settings
from push.tables import DeliveryState
from tests.integration.push_support import (
    TEST_POLICY,
    LocalFcmServer,
    add_members,
    address_of,
    create_campaign,
    deliveries,
    dispatcher,
    draw,
    lift_pause,
    schedule,
    send_all_due,
    states,
)


async def campaign_now(client: httpx.AsyncClient, staff: dict[str, Any], **fields: Any) -> str:
    # Transactional: no member is held back in a control group, so every member here is sent to.
    campaign = await create_campaign(client, staff, **{"transactional": True, **fields})
    await schedule(client, staff, campaign["id"])
    return str(campaign["id"])


async def device_disabled(db: Database, member: Any) -> str | None:
    async with db.unit_of_work() as uow:
        device = (
            await uow.session.execute(select(MemberDevice).where(MemberDevice.member_id == member))
        ).scalar_one()
        return device.push_disabled_reason


async def test_an_address_fcm_calls_dead_is_not_used_again(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    gone, moved, fine = await add_members(db, 3, clock.now())
    fcm.rules(unregistered=[address_of(gone)], sender_id_mismatch=[address_of(moved)])
    first = await campaign_now(client, marketer)
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
        rows = {r.member_id: r for r in await deliveries(db, first)}
        assert (rows[gone].state, rows[gone].reason) == (DeliveryState.FAILED, "unregistered")
        assert (rows[moved].state, rows[moved].reason) == (DeliveryState.FAILED, "sender_id_mismatch")
        assert rows[fine].state is DeliveryState.SENT
        assert await device_disabled(db, gone) == "unregistered"
        assert await device_disabled(db, fine) is None

        fcm.reset()  # the next campaign: FCM is never asked about the dead addresses again
        second = await campaign_now(client, marketer, name="Second")
        await draw(db, clock, settings)
        await send_all_due(sender)
    assert [m["target"] for m in fcm.messages()] == [address_of(fine)]
    rows = {r.member_id: r for r in await deliveries(db, second)}
    assert (rows[gone].state, rows[gone].reason) == (DeliveryState.SUPPRESSED, "no_address")


async def test_invalid_argument_kills_an_address_only_when_the_message_is_known_good(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    alone, *others = await add_members(db, 3, clock.now())
    fcm.rules(invalid_argument=[address_of(alone)])
    solo = await campaign_now(client, marketer)
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    rows = {r.member_id: r for r in await deliveries(db, solo)}
    assert (rows[alone].state, rows[alone].reason) == (DeliveryState.FAILED, "invalid_argument")
    # Others with the same message were accepted: the message is fine, the address is not.
    assert {rows[m].state for m in others} == {DeliveryState.SENT}
    assert await device_disabled(db, alone) == "invalid_argument"


async def test_invalid_argument_for_every_address_blames_the_message_not_the_phones(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    members = await add_members(db, 2, clock.now())
    fcm.rules(invalid_argument=[address_of(m) for m in members])
    campaign = await campaign_now(client, marketer)
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    assert {(r.state, r.reason) for r in await deliveries(db, campaign)} == {
        (DeliveryState.FAILED, "invalid_argument")
    }
    assert [await device_disabled(db, m) for m in members] == [None, None]


async def test_quota_exceeded_pauses_every_worker_then_completes_exactly_once(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    members = await add_members(db, 30, clock.now())
    fcm.rules(quota_exceeded=4, retry_after_s=1)
    campaign = await campaign_now(client, marketer)
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as first, dispatcher(settings, fcm, clock, db) as second:
        assert await first.dispatch_once() > 0
        assert fcm.summary()["answered"]["QUOTA_EXCEEDED"] == 4  # the SDK itself does not retry a 429
        assert await first.pacer.paused_for() > 0
        received = fcm.summary()["received"]
        assert await second.dispatch_once() == 0  # the other worker honours the pause too
        assert fcm.summary()["received"] == received
        await asyncio.sleep(await first.pacer.paused_for() + 0.05)
        clock.advance(timedelta(minutes=1))  # past every retry's backoff
        await send_all_due(first)
    summary = fcm.summary()
    assert summary["duplicate_deliveries"] == summary["repeated_to_device"] == []
    rows = await deliveries(db, campaign)
    sent = [r for r in rows if r.state is DeliveryState.SENT]
    assert summary["received"] == len(sent)
    assert len(sent) + sum(r.state is DeliveryState.CONTROL for r in rows) == len(members)
    assert sorted(r.attempts for r in sent)[-4:] == [2, 2, 2, 2]  # the four refused, sent on their second


async def test_unavailable_is_retried_and_delivered(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 5, clock.now())
    fcm.rules(unavailable=2)  # firebase-admin retries 503 itself, with backoff
    campaign = await campaign_now(client, marketer)
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    assert fcm.summary()["answered"]["UNAVAILABLE"] == 2
    assert set(await states(db, campaign)) <= {"sent", "control"}
    assert fcm.summary()["duplicate_deliveries"] == []


async def test_retrying_gives_up_after_the_policy_time_with_the_reason(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 1, clock.now())
    fcm.rules(quota_exceeded=1000)  # FCM keeps refusing
    policy = msgspec.structs.replace(TEST_POLICY, give_up_after_hours=1, global_control_percent=1)
    campaign = await campaign_now(client, marketer)
    await draw(db, clock, settings, policy)
    assert settings.redis_url is not None
    redis = RedisKeys(connect_redis(settings.redis_url), settings.redis_key_prefix)
    async with dispatcher(settings, fcm, clock, db, policy) as sender:
        for _ in range(30):
            await lift_pause(redis)  # the pause is tested above; here only retrying matters
            await sender.dispatch_once()
            clock.advance(timedelta(minutes=20))
            (row,) = await deliveries(db, campaign)
            if row.state is not DeliveryState.PENDING:
                break
    await redis.client.aclose()
    assert (row.state, row.reason) == (DeliveryState.FAILED, "gave_up_quota_exceeded")
    assert 2 <= row.attempts <= 5
    assert fcm.summary()["received"] == 0


async def test_a_message_whose_fate_is_unknown_is_never_sent_again(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 1, clock.now())
    fcm.rules(latency_ms=2500)  # FCM takes the message but answers after the client gave up
    campaign = await campaign_now(client, marketer)
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db, timeout_s=1) as sender:
        await sender.dispatch_once()
        fcm.rules()
        (row,) = await deliveries(db, campaign)
        assert (row.state, row.reason) == (DeliveryState.UNCONFIRMED, "outcome_unknown")
        clock.advance(timedelta(hours=1))
        assert await sender.dispatch_once() == 0
    await fcm.wait_until_received(1)
    await asyncio.sleep(0.2)
    assert fcm.summary()["received"] == 1  # it did arrive, once
