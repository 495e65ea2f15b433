"""The customer-time timeline through the HTTP API: app events, reading, isolation, traits, rebuild."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, text

from accounts.rules import StaffRole
from domain.clock import SettableClock
from domain.interactions import Channel, InteractionKind
from infra.db import Database, create_engine
from infra.settings import Settings
from tests.integration.factories import bearer, create_store, sign_up, staff_login
from tests.integration.problems import assert_problem
from timeline.rebuild import rebuild_traits
from timeline.recording import fold_claimed, fold_pending, record
from timeline.rules import EventDraft
from timeline.service import traits_of_members
from timeline.tables import MemberDailyActivity, MemberTraitCounters
from timeline.traits import MemberTraits


def app_event(
    client_id: str, kind: str = "app_opened", at: datetime | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "client_event_id": client_id,
        "kind": kind,
        "occurred_at": (at or datetime.now().astimezone()).isoformat(),
        **extra,
    }


async def post_events(
    client: httpx.AsyncClient, member: dict[str, Any], *events: dict[str, Any]
) -> httpx.Response:
    return await client.post("/v1/app/events", json={"events": list(events)}, headers=bearer(member))


async def timeline(client: httpx.AsyncClient, member: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/app/timeline", params=params, headers=bearer(member))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_sign_up_and_profile_changes_are_on_the_timeline(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    await client.patch("/v1/app/me", json={"locale": "en-GB"}, headers=bearer(member))
    items = (await timeline(client, member))["items"]
    assert [(i["kind"], i["phase"], i["channel"]) for i in items] == [
        ("profile_updated", "use", "app"),
        ("member_joined", "choose", "app"),
    ]
    assert items[0]["properties"] == {"fields": ["locale"]}


async def test_batch_is_idempotent_by_client_event_id(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    events = [
        app_event("e-1"),
        app_event("e-2", "content_viewed", subject={"type": "content", "id": "spring-linen"}),
    ]
    first = await post_events(client, member, *events)
    assert first.status_code == 200, first.text
    assert (first.json()["recorded"], first.json()["duplicates"]) == (2, 0)
    again = await post_events(client, member, *events)
    assert (again.json()["recorded"], again.json()["duplicates"]) == (0, 2)
    assert [r["event_id"] for r in again.json()["results"]] == [
        r["event_id"] for r in first.json()["results"]
    ]
    items = (await timeline(client, member, kind=["app_opened", "content_viewed"]))["items"]
    assert len(items) == 2
    viewed = next(i for i in items if i["kind"] == "content_viewed")
    assert viewed["subject"] == {"type": "content", "id": "spring-linen"}


async def test_concurrent_identical_batches_record_each_event_once(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    events = [app_event(f"c-{n}") for n in range(20)]
    responses = await asyncio.gather(*(post_events(client, member, *events) for _ in range(8)))
    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["recorded"] for r in responses) == 20
    items = (await timeline(client, member, kind="app_opened", limit=200))["items"]
    assert len(items) == 20


async def test_each_event_is_judged_on_its_own(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    member = await sign_up(client)
    now = clock.now()
    response = await post_events(
        client,
        member,
        app_event("ok", at=now - timedelta(days=6)),
        app_event("forged", "purchased"),
        app_event("invented", "won_the_lottery"),
        app_event("old", at=now - timedelta(days=8)),
        app_event("future", at=now + timedelta(minutes=6)),
        app_event("skewed", at=now + timedelta(minutes=4)),
        app_event("store", store_id=str(uuid.uuid4())),
        app_event("props", properties={"Not A Name": 1}),
        app_event("ok"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    outcome = {
        r["client_event_id"] + ("#2" if i == 8 else ""): r["status"]
        if r["status"] != "rejected"
        else r["error"]["code"]
        for i, r in enumerate(body["results"])
    }
    assert outcome == {
        "ok": "recorded",
        "forged": "kind_not_allowed",
        "invented": "kind_unknown",
        "old": "too_old",
        "future": "in_future",
        "skewed": "recorded",
        "store": "unknown_store",
        "props": "invalid_properties",
        "ok#2": "duplicate_in_batch",
    }
    assert (body["recorded"], body["rejected"]) == (2, 7)
    kinds = [i["kind"] for i in (await timeline(client, member))["items"]]
    assert "purchased" not in kinds
    assert kinds.count("app_opened") == 2


async def test_malformed_batches_are_refused_whole(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    too_many = [app_event(f"n-{n}") for n in range(101)]
    assert_problem(await post_events(client, member, *too_many), 400, "validation_failed")
    assert_problem(
        await client.post("/v1/app/events", json={"events": []}, headers=bearer(member)),
        400,
        "validation_failed",
    )
    naive = app_event("naive", at=datetime(2026, 1, 1))
    assert_problem(await post_events(client, member, naive), 400, "validation_failed")
    assert_problem(
        await post_events(client, member, app_event("x", properties={"ratio": 1.5})), 400, "validation_failed"
    )
    assert_problem(
        await client.post("/v1/app/events", json={"events": [app_event("x")]}), 401, "access_token_invalid"
    )
    items = (await timeline(client, member, kind="app_opened"))["items"]
    assert items == []


async def test_timeline_pages_newest_first_with_filters(
    client: httpx.AsyncClient, clock: SettableClock
) -> None:
    member = await sign_up(client)
    base = clock.now() - timedelta(days=6)
    events = [
        app_event(f"p-{n}", "app_opened" if n % 2 else "shared", at=base + timedelta(hours=n))
        for n in range(9)
    ]
    await post_events(client, member, *events)
    seen: list[str] = []
    cursor = None
    while True:
        page = await timeline(client, member, limit=4, **({"cursor": cursor} if cursor else {}))
        seen += [i["occurred_at"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 10  # 9 app events and member_joined
    assert seen == sorted(seen, reverse=True)
    shares = (await timeline(client, member, phase="share"))["items"]
    assert [i["kind"] for i in shares] == ["shared"] * 5
    window = await timeline(
        client,
        member,
        kind="app_opened",
        since=(base + timedelta(hours=2)).isoformat(),
        until=(base + timedelta(hours=6)).isoformat(),
    )
    assert len(window["items"]) == 2  # hours 3 and 5
    empty = await timeline(client, member, kind="shared", phase="buy")
    assert empty["items"] == []
    bad = await client.get(
        "/v1/app/timeline",
        params={"since": base.isoformat(), "until": base.isoformat()},
        headers=bearer(member),
    )
    assert_problem(bad, 422, "invalid_time_range")
    assert_problem(
        await client.get("/v1/app/timeline", params={"kind": "nope"}, headers=bearer(member)),
        400,
        "validation_failed",
    )
    assert_problem(
        await client.get("/v1/app/timeline", params={"cursor": "abc"}, headers=bearer(member)),
        422,
        "invalid_cursor",
    )


async def test_another_members_timeline_is_unreachable(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    alice = await sign_up(client)
    bob = await sign_up(client)
    await post_events(client, alice, app_event("secret", "shared"))
    bob_items = (await timeline(client, bob))["items"]
    assert {i["member_id"] for i in bob_items} == {bob["member"]["id"]}
    # Bob replaying Alice's client id records Bob's own event, not a duplicate of Alice's.
    replay = await post_events(client, bob, app_event("secret", "shared"))
    assert replay.json()["results"][0]["status"] == "recorded"
    alice_id = alice["member"]["id"]
    for path in (f"/v1/console/members/{alice_id}/timeline", f"/v1/console/members/{alice_id}/traits"):
        assert_problem(await client.get(path, headers=bearer(bob)), 401, "access_token_invalid")
    marketer = await staff_login(client, db, clock, StaffRole.MARKETER)
    staff_view = await client.get(f"/v1/console/members/{alice_id}/timeline", headers=bearer(marketer))
    assert {i["member_id"] for i in staff_view.json()["items"]} == {alice_id}


async def test_store_activity_for_staff(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    admin = await staff_login(client, db, clock)
    store = await create_store(client, admin)
    member = await sign_up(client)
    await post_events(
        client, member, app_event("at-store", "content_viewed", store_id=store["id"]), app_event("home")
    )
    activity = await client.get(f"/v1/console/stores/{store['id']}/activity", headers=bearer(admin))
    assert [i["kind"] for i in activity.json()["items"]] == ["content_viewed"]
    assert_problem(
        await client.get(f"/v1/console/stores/{store['id']}/activity", headers=bearer(member)),
        401,
        "access_token_invalid",
    )


async def record_purchase(
    db: Database, member_id: uuid.UUID, store_id: uuid.UUID, at: datetime, amount: int, *categories: str
) -> None:
    """What the POS purchase flow records (through timeline.record, in its own transaction)."""
    async with db.unit_of_work() as uow:
        draft = EventDraft(
            member_id=member_id,
            kind=InteractionKind.PURCHASED,
            occurred_at=at,
            channel=Channel.POS,
            store_id=store_id,
            properties={"amount_minor": amount, "categories": list(categories)},
        )
        await record(uow, draft, at)


async def test_traits_follow_events_and_rebuild_gives_identical_results(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    admin = await staff_login(client, db, clock)
    ginza = await create_store(client, admin, code="TKY-GINZA")
    member = await sign_up(client, time_zone="Asia/Tokyo")
    member_id = uuid.UUID(member["member"]["id"])
    now = clock.now()
    await record_purchase(db, member_id, uuid.UUID(ginza["id"]), now - timedelta(days=40), 3_000, "food")
    await record_purchase(
        db, member_id, uuid.UUID(ginza["id"]), now - timedelta(days=2), 5_000, "stationery", "food"
    )
    await post_events(client, member, app_event("push", "push_opened", at=now - timedelta(days=1)))

    response = await client.get(f"/v1/console/members/{member_id}/traits", headers=bearer(admin))
    assert response.status_code == 200, response.text
    traits = response.json()["traits"]
    assert traits["days_since_last_purchase"] == 2
    assert [(w["days"], w["visits"], w["purchases"], w["spend_minor"]) for w in traits["windows"]] == [
        (30, 1, 1, 5_000),
        (90, 2, 2, 8_000),
        (365, 2, 2, 8_000),
    ]
    assert traits["average_basket_minor"] == 4_000
    assert traits["favourite_store_id"] == ginza["id"]
    assert traits["categories"] == [["food", 2], ["stationery", 1]]
    assert traits["lifecycle_stage"] == "new"  # joined today
    assert sum(traits["push_open_hours_utc"]) == 1
    assert 0 <= traits["health_score"] <= 100
    assert {c["name"] for c in traits["health_components"]} == {
        "recency",
        "frequency",
        "monetary",
        "engagement_trend",
    }

    async def stored() -> tuple[list[Any], list[Any]]:
        async with db.unit_of_work() as uow:
            counters = (
                await uow.session.execute(
                    select(MemberTraitCounters.member_id, MemberTraitCounters.counters).order_by(
                        MemberTraitCounters.member_id
                    )
                )
            ).all()
            activity = (
                await uow.session.execute(
                    select(MemberDailyActivity).order_by(
                        MemberDailyActivity.member_id, MemberDailyActivity.day, MemberDailyActivity.store_key
                    )
                )
            ).scalars()
            return [tuple(row) for row in counters], [
                (
                    a.member_id,
                    a.day,
                    a.store_key,
                    a.interactions,
                    a.purchases,
                    a.spend_minor,
                    a.refunded_minor,
                    a.check_ins,
                    a.app_opens,
                    a.push_opens,
                )
                for a in activity
            ]

    # The traits above were read before the worker folded anything: the queued events were merged in.
    await fold_pending(db)  # as the worker does after commit
    folded = await client.get(f"/v1/console/members/{member_id}/traits", headers=bearer(admin))
    assert folded.json()["traits"] == traits
    incremental = await stored()
    async with db.unit_of_work() as uow:  # damage the derived data: rebuild must not depend on it
        await uow.session.execute(text("UPDATE member_daily_activity SET purchases = purchases + 7"))
        await uow.session.execute(text("UPDATE member_trait_counters SET counters = '{}'::jsonb"))
    assert await rebuild_traits(db, clock) >= 1
    assert await stored() == incremental
    rebuilt = await client.get(f"/v1/console/members/{member_id}/traits", headers=bearer(admin))
    assert rebuilt.json()["traits"] == traits


async def test_account_deletion_forgets_timeline_details(client: httpx.AsyncClient, db: Database) -> None:
    from tests.integration.factories import PASSWORD

    member = await sign_up(client)
    await post_events(client, member, app_event("note", "shared", properties={"message": "my secret"}))
    await client.request("DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(member))
    async with db.unit_of_work() as uow:
        leftovers = (
            (
                await uow.session.execute(
                    text("SELECT properties::text FROM timeline_events WHERE member_id = :m"),
                    {"m": member["member"]["id"]},
                )
            )
            .scalars()
            .all()
        )
        counters = await uow.session.get(MemberTraitCounters, uuid.UUID(member["member"]["id"]))
    assert leftovers
    assert all(p == "{}" for p in leftovers)
    assert counters is None


async def member_traits(
    client: httpx.AsyncClient, admin: dict[str, Any], member: dict[str, Any]
) -> dict[str, Any]:
    response = await client.get(f"/v1/console/members/{member['member']['id']}/traits", headers=bearer(admin))
    assert response.status_code == 200, response.text
    traits: dict[str, Any] = response.json()["traits"]
    return traits


async def push_opens_at_local_time(
    client: httpx.AsyncClient, member: dict[str, Any], zone: str, days: list[datetime], hour: int
) -> None:
    """The member opens pushes at `hour` local time on each day, reported with the phone's own offset."""
    events = [
        app_event(f"open-{n}", "push_opened", at=day.replace(hour=hour, minute=10, tzinfo=ZoneInfo(zone)))
        for n, day in enumerate(days)
    ]
    response = await post_events(client, member, *events)
    assert response.json()["recorded"] == len(events), response.text


async def test_push_hour_of_a_tokyo_member_reported_with_plus_nine(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    admin = await staff_login(client, db, clock)
    member = await sign_up(client, time_zone="Asia/Tokyo")
    days = [datetime(2026, 11, d) for d in (18, 19, 20, 21)]
    await push_opens_at_local_time(client, member, "Asia/Tokyo", days, hour=20)
    traits = await member_traits(client, admin, member)
    assert traits["preferred_push_hour_local"] == 20
    # 20:10 in Tokyo is 11:10 UTC; 18 November 2026 is a Wednesday (weekday 2).
    assert traits["push_open_hours_utc"][2 * 24 + 11] == 1


async def test_push_hour_of_a_new_york_member_in_summer_and_winter(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    for now, days in (
        (datetime(2026, 7, 15, 18, 0, tzinfo=UTC), [datetime(2026, 7, d) for d in (10, 11, 12, 13)]),
        (datetime(2026, 12, 15, 18, 0, tzinfo=UTC), [datetime(2026, 12, d) for d in (10, 11, 12, 13)]),
    ):
        clock.set(now)
        admin = await staff_login(client, db, clock)
        member = await sign_up(client, time_zone="America/New_York")
        await push_opens_at_local_time(client, member, "America/New_York", days, hour=8)
        assert (await member_traits(client, admin, member))["preferred_push_hour_local"] == 8, now


async def test_daily_activity_is_keyed_by_utc_day_when_recorded_and_when_rebuilt(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    member = await sign_up(client, time_zone="America/New_York")
    late_evening = datetime(
        2026, 11, 23, 23, 30, tzinfo=ZoneInfo("America/New_York")
    )  # 04:30 UTC on the 24th
    await post_events(client, member, app_event("late", "app_opened", at=late_evening))
    await fold_pending(db)

    async def days() -> list[tuple[str, int]]:
        async with db.unit_of_work() as uow:
            found = await uow.session.execute(
                select(MemberDailyActivity.day, MemberDailyActivity.app_opens).where(
                    MemberDailyActivity.member_id == uuid.UUID(member["member"]["id"]),
                    MemberDailyActivity.app_opens > 0,
                )
            )
            return [(day.isoformat(), opens) for day, opens in found]

    assert await days() == [("2026-11-24", 1)]
    await rebuild_traits(db, clock)
    assert await days() == [("2026-11-24", 1)]


async def test_queued_events_fold_once_across_a_crash_concurrent_workers_and_a_rebuild(
    client: httpx.AsyncClient, settings: Settings, clock: SettableClock
) -> None:
    member = await sign_up(client)
    opens = [app_event(f"open-{n}", at=clock.now() - timedelta(minutes=n)) for n in range(30)]
    assert (await post_events(client, member, *opens)).json()["recorded"] == 30
    assert settings.database_url is not None
    db = Database(create_engine(settings.database_url, pool_size=4))
    member_id = uuid.UUID(member["member"]["id"])

    async def traits_read() -> MemberTraits:
        async with db.unit_of_work() as uow:
            return (await traits_of_members(uow, {member_id: "UTC"}, clock.now()))[member_id]

    try:
        queued = await traits_read()
        assert sum(queued.app_open_hours_utc) == 30  # read with the queued events, none folded yet
        # A rebuild while they are queued leaves them to the fold (rebuilding them too would count twice).
        assert await rebuild_traits(db, clock) == 1

        async def fold_and_die() -> None:  # a worker dies after folding a batch, before committing it
            async with db.unit_of_work() as uow:
                assert await fold_claimed(uow, 10) == 10
                raise RuntimeError("worker lost")

        with pytest.raises(RuntimeError):
            await fold_and_die()
        folded = await asyncio.gather(*(fold_pending(db, batch=4) for _ in range(4)))
        assert sum(folded) == 31  # the 30 app opens and the sign-up, each once
        assert await fold_pending(db) == 0
        async with db.unit_of_work() as uow:
            counters = await uow.session.get(MemberTraitCounters, uuid.UUID(member["member"]["id"]))
            assert counters is not None
            assert sum(counters.counters["app_open_hours"]) == 30
            folded_counters = counters.counters
        await rebuild_traits(db, clock)
        async with db.unit_of_work() as uow:
            rebuilt = await uow.session.get(MemberTraitCounters, uuid.UUID(member["member"]["id"]))
            assert rebuilt is not None
            assert rebuilt.counters == folded_counters
        assert await traits_read() == queued  # folding changed nothing a reader sees
    finally:
        await db.dispose()
