"""The demo retailer's year of history: replayed the same from its seed, seeded once, and telling members
apart in their traits and in the past campaign's report, as the console shows them."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text

from accounts.activity import member_traits
from accounts.tables import Member
from commands.demo import (
    DEMO_PASSWORD,
    DEMO_RANDOM_SEED,
    DEMO_STORES,
    DEMO_TIME_ZONE,
    MARKETER_EMAIL,
    seed_demo,
)
from commands.demo_campaign import CAMPAIGN_NAME
from commands.demo_people import DemoMember, Person, Segment, people
from domain.clock import SettableClock
from domain.keys import FIRST_KEY_ID, SigningKey
from infra.db import Database
from migrations.models import target_metadata
from points.tables import PointEntry, Purchase
from push.tables import Delivery
from tests.integration.factories import bearer
from timeline.rebuild import rebuild_traits
from timeline.tables import MemberDailyActivity, MemberTraitCounters
from timeline.traits import LifecycleStage, MemberTraits

TERMINAL_KEY = SigningKey(key_id=FIRST_KEY_ID, secret="demo-history-test-terminal-key-0123456789abcdef")
# The year is planned back from `now`, so these tests seed at one fixed moment: the same history every run.
SEEDED_AT = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
Census = dict[str, Any]


async def census(db: Database) -> Census:
    """What the history recorded: events per kind, rows of the facts, and each member's sales."""
    async with db.unit_of_work() as uow:
        session = uow.session
        kinds = await session.execute(text("SELECT kind, count(*) FROM timeline_events GROUP BY kind"))
        sales = await session.execute(
            select(Member.email, func.count(Purchase.id), func.sum(Purchase.total_minor))
            .join(Purchase, Purchase.member_id == Member.id)
            .group_by(Member.email)
        )
        points = await session.execute(
            select(Member.email, func.sum(PointEntry.points))
            .join(PointEntry, PointEntry.member_id == Member.id)
            .group_by(Member.email)
        )
        return {
            "events": {kind: count for kind, count in kinds},
            "deliveries": await session.scalar(select(func.count()).select_from(Delivery)),
            "sales": {email: (count, int(total)) for email, count, total in sales},
            "points": {email: int(held) for email, held in points},
        }


async def seed_timed(db: Database, clock: SettableClock) -> None:
    clock.set(SEEDED_AT)
    started = time.perf_counter()
    await seed_demo(db, clock, TERMINAL_KEY)
    print(f"seed_demo on an empty database: {time.perf_counter() - started:.1f}s")  # reported, not asserted


async def empty_all_tables(db: Database) -> None:
    names = ", ".join(f'"{table.name}"' for table in target_metadata().sorted_tables)
    async with db.unit_of_work() as uow:
        await uow.session.execute(text(f"TRUNCATE {names} CASCADE"))


async def test_the_same_seed_replays_the_same_year_and_seeding_again_adds_nothing(
    db: Database, clock: SettableClock
) -> None:
    await seed_timed(db, clock)
    first = await census(db)
    events = first["events"]
    at_least = {"purchased": 300, "app_opened": 1000, "checked_in": 50, "offer_decided": 50}
    at_least |= dict.fromkeys(
        ("offer_activated", "offer_redeemed", "refunded", "push_sent", "push_opened"), 1
    )
    for kind, count in at_least.items():
        assert events.get(kind, 0) >= count, (kind, events)
    assert events["member_joined"] == 300

    await seed_demo(db, clock, TERMINAL_KEY)
    assert await census(db) == first  # already seeded: no new history

    await empty_all_tables(db)
    await seed_demo(db, clock, TERMINAL_KEY)
    assert await census(db) == first


async def demo_people(db: Database, clock: SettableClock) -> list[Person]:
    """Who the seeder made each member (the same plan from the same seed)."""
    async with db.unit_of_work() as uow:
        rows = await uow.session.execute(
            select(Member.email, Member.id, Member.created_at).order_by(Member.email)
        )
        members = [DemoMember(int(str(email)[6:9]), member_id, joined) for email, member_id, joined in rows]
    stores = [store.code for store in DEMO_STORES]
    return people(members, stores, DEMO_TIME_ZONE, clock.now(), DEMO_RANDOM_SEED)


async def traits_by_segment(
    db: Database, clock: SettableClock, persons: list[Person]
) -> dict[Segment, list[MemberTraits]]:
    by_segment: dict[Segment, list[MemberTraits]] = {}
    async with db.unit_of_work() as uow:
        for person in persons:
            view = await member_traits(uow, person.member_id, clock.now())
            by_segment.setdefault(person.segment, []).append(view.traits)
    return by_segment


async def test_the_seeded_year_tells_members_apart_and_reports_its_past_campaign(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    """One seeding (it takes a while) for both: members' traits, and the campaign's report in the console."""
    await seed_timed(db, clock)
    await members_differ_in_health_and_lifecycle_and_the_lapsing_ones_are_at_risk(db, clock)
    await the_past_campaign_reports_sent_opened_converted_against_its_control_group(client, clock)
    await traits_are_what_a_rebuild_from_the_timeline_makes(db, clock)


async def members_differ_in_health_and_lifecycle_and_the_lapsing_ones_are_at_risk(
    db: Database, clock: SettableClock
) -> None:
    segments = await traits_by_segment(db, clock, await demo_people(db, clock))
    everyone = [traits for group in segments.values() for traits in group]
    assert len({traits.health_score for traits in everyone}) >= 20
    assert {traits.lifecycle_stage for traits in everyone} >= {
        LifecycleStage.NEW,
        LifecycleStage.ACTIVE,
        LifecycleStage.AT_RISK,
    }
    lapsing, loyal = segments[Segment.LAPSING], segments[Segment.LOYAL]
    assert len(lapsing) >= 30
    for traits in lapsing:  # bought earlier in the year, nothing for 65-120 days
        assert traits.lifecycle_stage is LifecycleStage.AT_RISK, traits
        assert 60 < (traits.days_since_last_purchase or 0) <= 130, traits
        assert traits.lifetime_purchases > 0
    assert (
        statistics.mean(t.health_score for t in loyal) > statistics.mean(t.health_score for t in lapsing) + 20
    )
    assert sum(t.lifecycle_stage is LifecycleStage.ACTIVE for t in loyal) > 0.7 * len(loyal)
    regular = segments[Segment.REGULAR]
    assert statistics.mean(t.rfm.frequency for t in loyal) > statistics.mean(t.rfm.frequency for t in regular)
    newest = [
        t for t in everyone if t.joined_at is not None and clock.now() - t.joined_at < timedelta(days=29)
    ]
    assert newest
    assert all(t.lifecycle_stage is LifecycleStage.NEW for t in newest)


async def the_past_campaign_reports_sent_opened_converted_against_its_control_group(
    client: httpx.AsyncClient, clock: SettableClock
) -> None:
    login = await client.post(
        "/v1/console/sessions", json={"email": MARKETER_EMAIL, "password": DEMO_PASSWORD}
    )
    assert login.status_code == 200, login.text
    campaigns = (await client.get("/v1/console/campaigns", headers=bearer(login.json()))).json()["items"]
    (campaign,) = [c for c in campaigns if c["name"] == CAMPAIGN_NAME]
    assert campaign["state"] == "done"
    started_at = datetime.fromisoformat(campaign["started_at"])
    assert clock.now() - timedelta(days=60) < started_at < clock.now() - timedelta(days=14)

    report = await client.get(f"/v1/console/campaigns/{campaign['id']}/report", headers=bearer(login.json()))
    assert report.status_code == 200, report.text
    groups = {group["group"]: group for group in report.json()["groups"]}
    sent = groups["A"]
    assert min(sent["sent"], sent["opened"], sent["converted"], sent["attributed"]) > 0, sent
    assert sent["lift"] is not None
    control = groups["control"]
    assert control["members"] > 0
    assert (control["sent"], control["opened"]) == (0, 0)
    assert sent["converted"] / sent["members"] > control["converted"] / control["members"]


async def trait_inputs(db: Database) -> tuple[dict[uuid.UUID, Any], set[tuple[Any, ...]]]:
    """Members' counters, and their daily activity rows that count anything (a rebuild also writes empty
    rows for days with nothing but outreach, which recording skips; they add nothing to any trait)."""
    async with db.unit_of_work() as uow:
        counters = await uow.session.execute(
            select(MemberTraitCounters.member_id, MemberTraitCounters.counters)
        )
        daily = await uow.session.execute(select(*MemberDailyActivity.__table__.columns))
        return {member_id: doc for member_id, doc in counters}, {tuple(row) for row in daily if any(row[3:])}


async def traits_are_what_a_rebuild_from_the_timeline_makes(db: Database, clock: SettableClock) -> None:
    """Every trait input was folded in by the recording path: rebuilding them from the events changes none."""
    recorded = await trait_inputs(db)
    assert len(recorded[0]) == 300
    await rebuild_traits(db, clock)
    assert await trait_inputs(db) == recorded
