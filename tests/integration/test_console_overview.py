"""The console's membership figures: member counts, interactions per local day, lifecycle stages.

Facts are made through the HTTP API (sign-ups, sales at the register, check-ins, account deletion); the
figures are read through the use cases the console calls.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from accounts.members import active_members_after
from accounts.overview import MemberCounts, lifecycle_distribution, member_counts
from domain.clock import SettableClock
from domain.interactions import InteractionKind
from domain.periods import InvalidPeriod
from infra.db import Database
from tests.integration.factories import PASSWORD, bearer
from tests.integration.push_support import add_members
from tests.integration.register import Shopper, days_ago, pos, register, sale, shopper
from tests.integration.test_check_ins import TOKYO, check_in, store_at
from timeline.overview import DailyCount, daily_interactions
from timeline.recording import fold_pending
from timeline.service import traits_of_members
from timeline.traits import LifecycleStage

PURCHASES = "/v1/pos/purchases"
ZONE = ZoneInfo("Asia/Tokyo")
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZONE)


@pytest.fixture(autouse=True)
def noon_in_tokyo(clock: SettableClock) -> None:
    """Local days matter here: every test starts at noon in Tokyo on a known day."""
    clock.set(NOON)


async def erase(client: httpx.AsyncClient, member: Shopper) -> None:
    response = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(member.session)
    )
    assert response.status_code == 204, response.text


async def signed_up_at(client: httpx.AsyncClient, clock: SettableClock, at: datetime) -> Shopper:
    clock.set(at)
    try:
        return await shopper(client)
    finally:
        clock.set(NOON)


async def test_member_counts_leave_out_erased_members_and_count_activity_in_the_last_30_days(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    await signed_up_at(client, clock, days_ago(NOON, 40))  # nothing since joining
    buyer = await signed_up_at(client, clock, days_ago(NOON, 40))
    await signed_up_at(client, clock, days_ago(NOON, 10))  # joining is an interaction
    await signed_up_at(client, clock, days_ago(NOON, 3))  # new this week
    gone = await shopper(client)  # joins now, then leaves
    till = await register(client, admin)
    body = sale(1_000, at=days_ago(NOON, 2), code=buyer.code(NOON))
    bought = await pos(client, clock, till, PURCHASES, body)
    assert bought.status_code == 201, bought.text
    await erase(client, gone)
    await fold_pending(db)  # as the worker does after commit
    async with db.unit_of_work() as uow:
        counts = await member_counts(uow, NOON)
        later = await member_counts(uow, NOON + timedelta(days=27))
    assert counts == MemberCounts(total=4, active_30_days=3, new_7_days=1)
    # 27 days on, only the buyer's sale (29 UTC days before then) is within 30 days, and nobody is new.
    assert later == MemberCounts(total=4, active_30_days=1, new_7_days=0)


async def test_interactions_are_counted_per_local_day_with_every_day_listed(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    till = await register(client, admin)
    late_evening = datetime(2026, 11, 20, 23, 30, tzinfo=ZONE)  # 14:30 UTC on the 20th
    after_midnight = datetime(2026, 11, 21, 0, 30, tzinfo=ZONE)  # 15:30 UTC, still the 20th in UTC
    clock.set(late_evening)
    member = await shopper(client)
    assert (await check_in(client, member.session, store, TOKYO, late_evening)).status_code == 200
    for body in (sale(500, at=late_evening), sale(800, at=late_evening, code=member.code(late_evening))):
        assert (await pos(client, clock, till, PURCHASES, body)).status_code == 201  # anonymous, member
    clock.set(after_midnight)
    assert (await pos(client, clock, till, PURCHASES, sale(300, at=after_midnight))).status_code == 201
    clock.set(NOON)

    kinds = [InteractionKind.PURCHASED, InteractionKind.CHECKED_IN]
    start, end = datetime(2026, 11, 19, tzinfo=ZONE), datetime(2026, 11, 23, tzinfo=ZONE)
    async with db.unit_of_work() as uow:
        tokyo = await daily_interactions(uow, kinds, start, end, "Asia/Tokyo")
        utc = await daily_interactions(uow, kinds, start, end, "UTC")
    by_day = {(count.day.isoformat(), count.kind): count.count for count in tokyo}
    assert by_day == {
        ("2026-11-19", "purchased"): 0,
        ("2026-11-19", "checked_in"): 0,
        ("2026-11-20", "purchased"): 2,
        ("2026-11-20", "checked_in"): 1,
        ("2026-11-21", "purchased"): 1,
        ("2026-11-21", "checked_in"): 0,
        ("2026-11-22", "purchased"): 0,
        ("2026-11-22", "checked_in"): 0,
    }
    assert [(c.day.isoformat(), c.kind) for c in tokyo][:2] == [
        ("2026-11-19", InteractionKind.PURCHASED),
        ("2026-11-19", InteractionKind.CHECKED_IN),
    ]
    # The same period read in UTC: it starts and ends at 15:00 UTC, so it spans five UTC days, and the
    # three sales all fall on the 20th.
    assert [c.day.isoformat() for c in utc if c.kind is InteractionKind.PURCHASED] == [
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
    ]
    assert DailyCount(day=late_evening.date(), kind=InteractionKind.PURCHASED, count=3) in utc


async def test_interactions_need_a_period_that_ends_after_it_starts(db: Database) -> None:
    async with db.unit_of_work() as uow:
        with pytest.raises(InvalidPeriod):
            await daily_interactions(uow, [InteractionKind.PURCHASED], NOON, NOON, "Asia/Tokyo")


async def test_lifecycle_stages_in_sql_agree_with_the_traits_of_every_member(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    till = await register(client, admin)
    await shopper(client)  # joined now, nothing else
    buyer = await shopper(client)
    last_visit = days_ago(NOON, 25)
    bought = await pos(client, clock, till, PURCHASES, sale(1_000, at=last_visit, code=buyer.code(NOON)))
    assert bought.status_code == 201, bought.text
    old_timer = await signed_up_at(client, clock, days_ago(NOON, 200))  # seen, never visited a store
    assert old_timer.session
    await erase(client, await shopper(client))
    await add_members(db, 2, NOON)  # accounts the timeline has nothing on (e.g. imported)
    await fold_pending(db)  # as the worker does after commit

    # Instants around every threshold of the rule, for each kind of member above.
    just_before = timedelta(microseconds=1)
    moments = [NOON, NOON + timedelta(days=20), NOON + timedelta(days=30, seconds=1)]
    moments += [last_visit + timedelta(days=61) - just_before, last_visit + timedelta(days=61)]
    moments += [last_visit + timedelta(days=181) - just_before, last_visit + timedelta(days=181)]
    moments += [NOON + timedelta(days=91) - just_before, NOON + timedelta(days=91)]
    moments += [days_ago(NOON, 200) + timedelta(days=30), NOON + timedelta(days=400)]
    async with db.unit_of_work() as uow:
        zones = dict(await active_members_after(uow, None, 100))
        assert len(zones) == 5  # the erased member is no member
        assert uuid.UUID(buyer.session["member"]["id"]) in zones
        for moment in moments:
            traits = await traits_of_members(uow, zones, moment)
            expected = Counter(member.lifecycle_stage for member in traits.values())
            distribution = await lifecycle_distribution(uow, moment)
            assert [count.stage for count in distribution] == list(LifecycleStage)
            assert {count.stage: count.members for count in distribution} == {
                stage: expected.get(stage, 0) for stage in LifecycleStage
            }, moment
        later = await lifecycle_distribution(uow, NOON + timedelta(days=40))
    # 40 days on: the buyer visited 65 days before (at risk), the member who only joined was seen 40
    # days before (at risk), the old timer and the two accounts without history are lapsed.
    assert {count.stage: count.members for count in later} == {
        LifecycleStage.NEW: 0,
        LifecycleStage.ACTIVE: 0,
        LifecycleStage.AT_RISK: 2,
        LifecycleStage.LAPSED: 3,
    }
