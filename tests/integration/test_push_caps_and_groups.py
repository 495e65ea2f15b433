"""Frequency caps across campaigns (counted in the member's calendar day and week, once per campaign
however many phones), and control groups (stable, excluded, measured)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from sqlalchemy import select

from accounts.rules import StaffRole
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.tables import DeliveryState
from tests.integration.factories import staff_login
from tests.integration.push_support import (
    TEST_POLICY,
    LocalFcmServer,
    add_members,
    address_of,
    create_campaign,
    deliveries,
    dispatcher,
    draw,
    members_of,
    schedule,
    send_all_due,
)
from timeline.tables import TimelineEvent

CAPPED = msgspec.structs.replace(TEST_POLICY, max_per_day=1, max_per_week=2, global_control_percent=1)


async def campaign_now(client: httpx.AsyncClient, staff: dict[str, Any], **fields: Any) -> str:
    campaign = await create_campaign(client, staff, **fields)
    await schedule(client, staff, campaign["id"])
    return str(campaign["id"])


def targets(fcm: LocalFcmServer, campaign_id: str) -> list[str]:
    """Every message's target for the campaign: the local server lists at most 1,000 a time, and the
    control-group test sends about that many, so it is read in pages."""
    found: list[str] = []
    after = 0
    while page := httpx.get(f"{fcm.url}/_local/messages", params={"after": after}).json():
        found += [m["target"] for m in page if m["data"]["campaign_id"] == campaign_id]
        after = page[-1]["seq"]
    return found


async def test_caps_count_campaigns_per_member_in_their_own_day_and_week(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings, fcm: LocalFcmServer
) -> None:
    clock.set(datetime(2027, 1, 11, 1, tzinfo=UTC))  # Monday 10:00 in Tokyo, the first day of its week
    (member,) = await add_members(db, 1, clock.now(), devices=2, time_zone="Asia/Tokyo")
    phones = {address_of(member, 0), address_of(member, 1)}
    async with dispatcher(settings, fcm, clock, db, CAPPED) as sender:

        async def send(**fields: Any) -> str:
            marketer = await staff_login(client, db, clock, StaffRole.MARKETER)  # a session of that day
            campaign_id = await campaign_now(client, marketer, **fields)
            await draw(db, clock, settings, CAPPED)
            await send_all_due(sender)
            return campaign_id

        first = await send()
        assert set(targets(fcm, first)) == phones  # two phones, one campaign: one message against the cap
        second = await send()
        assert targets(fcm, second) == []
        assert {(r.state, r.reason) for r in await deliveries(db, second)} == {
            (DeliveryState.SUPPRESSED, "cap")
        }
        receipt = await send(transactional=True)  # an order is ready: never capped
        assert set(targets(fcm, receipt)) == phones

        clock.set(datetime(2027, 1, 11, 15, 30, tzinfo=UTC))  # 00:30 Tuesday in Tokyo: a new local day
        tuesday = await send()
        assert set(targets(fcm, tuesday)) == phones
        clock.set(datetime(2027, 1, 12, 15, 30, tzinfo=UTC))  # Wednesday: the week's two are used up
        wednesday = await send()
        assert targets(fcm, wednesday) == []
        clock.set(datetime(2027, 1, 17, 15, 30, tzinfo=UTC))  # 00:30 Monday in Tokyo: a new week
        monday = await send()
        assert set(targets(fcm, monday)) == phones

    async with db.unit_of_work() as uow:
        suppressed = (
            await uow.session.execute(
                select(TimelineEvent).where(
                    TimelineEvent.member_id == member, TimelineEvent.kind == "push_suppressed"
                )
            )
        ).scalars()
        reasons = Counter((e.subject_ref, e.properties["reason"]) for e in suppressed)
    assert reasons == {(second, "cap"): 2, (wednesday, "cap"): 2}  # one event per delivery not sent


async def test_concurrent_workers_never_exceed_a_members_daily_cap(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    members = await add_members(db, 40, clock.now())
    campaigns = [await campaign_now(client, marketer, name=f"Campaign {n}") for n in range(3)]
    await draw(db, clock, settings, CAPPED)
    small_claims = msgspec.structs.replace(CAPPED, claim_batch=4, concurrency=2)
    async with (
        dispatcher(settings, fcm, clock, db, small_claims) as one,
        dispatcher(settings, fcm, clock, db, small_claims) as two,
        dispatcher(settings, fcm, clock, db, small_claims) as three,
    ):

        async def work(sender: Any) -> None:
            await send_all_due(sender, rounds=200)

        await asyncio.gather(work(one), work(two), work(three))
    per_member = Counter(m["target"] for m in fcm.messages())
    assert fcm.summary()["duplicate_deliveries"] == []
    reachable = {address_of(m) for m in members} - {
        address_of(r.member_id)
        for c in campaigns
        for r in await deliveries(db, c)
        if r.state is DeliveryState.CONTROL
    }
    assert set(per_member) == reachable  # everyone reachable got exactly one of the three
    assert set(per_member.values()) == {1}


async def test_control_groups_are_stable_excluded_and_reported(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    policy = msgspec.structs.replace(TEST_POLICY, global_control_percent=10)
    members = await add_members(db, 400, clock.now(), anyone=True)
    first = await campaign_now(client, marketer, control_percent=20)
    second = await campaign_now(client, marketer, name="Second", control_percent=20)
    receipt = await campaign_now(client, marketer, name="Receipt", transactional=True)
    await draw(db, clock, settings, policy)
    async with dispatcher(settings, fcm, clock, db, policy) as sender:
        await send_all_due(sender)
    one_rows, two_rows, receipt_rows = [await deliveries(db, c) for c in (first, second, receipt)]

    def group(rows: list[Any], name: str) -> set[uuid.UUID]:
        return {r.member_id for r in rows if r.state is DeliveryState.CONTROL and r.reason == name}

    held_globally = group(one_rows, "global_control")
    assert held_globally == group(two_rows, "global_control")  # the same members, campaign after campaign
    assert 16 <= len(held_globally) <= 64  # 10 % of 400, well within three standard deviations (6)
    own_first, own_second = group(one_rows, "control"), group(two_rows, "control")
    assert own_first != own_second  # each campaign draws its own control group...
    assert not own_first & held_globally  # ...from members not already held back for good
    assert 45 <= len(own_first) <= 100  # 20 % of the 360 left
    # Nobody held back got the message; a transactional message holds nobody back.
    received = set(targets(fcm, first))
    assert not received & {address_of(m) for m in held_globally | own_first}
    assert received == {address_of(m) for m in members_of(one_rows, DeliveryState.SENT)}
    assert len(received) == 400 - len(held_globally) - len(own_first)
    assert {r.state for r in receipt_rows} == {DeliveryState.SENT}
    assert set(targets(fcm, receipt)) == {address_of(m) for m in members}

    report = await client.get(
        f"/v1/console/campaigns/{first}/report",
        headers={"Authorization": f"Bearer {marketer['tokens']['access_token']}"},
    )
    assert report.status_code == 200, report.text
    groups = {g["group"]: g for g in report.json()["groups"]}
    assert groups["A"]["members"] == groups["A"]["sent"] == len(received)
    assert groups["control"]["members"] == len(own_first)
    assert groups["global_control"]["members"] == len(held_globally)
