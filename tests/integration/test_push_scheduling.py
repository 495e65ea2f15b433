"""When campaign messages go: each member's own zone (across a daylight-saving change), quiet hours,
local times already passed, the best hour; all through the console API, the drawing job and dispatch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from accounts.rules import StaffRole
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.tables import Delivery, DeliveryState
from tests.integration.factories import bearer, staff_login
from tests.integration.problems import assert_problem
from tests.integration.push_support import (
    TEST_POLICY,
    LocalFcmServer,
    add_members,
    address_of,
    create_campaign,
    deliveries,
    dispatcher,
    draw,
    schedule,
    send_all_due,
)
from tests.integration.register import shopper

ZONES = ("Asia/Tokyo", "Europe/London", "America/New_York")


async def members_in_zones(db: Database, now: datetime) -> dict[str, uuid.UUID]:
    return {zone: (await add_members(db, 1, now, time_zone=zone))[0] for zone in ZONES}


def due(rows: list[Delivery], member: uuid.UUID, occurrence: str | None = None) -> Delivery:
    (row,) = [
        r for r in rows if r.member_id == member and (occurrence is None or str(r.occurrence) == occurrence)
    ]
    return row


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def marketer_at(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, at: datetime
) -> dict[str, Any]:
    clock.set(at)
    return await staff_login(client, db, clock, StaffRole.MARKETER)


async def test_a_daily_local_time_follows_each_zone_across_a_daylight_saving_change(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    # Europe moves its clocks forward at 01:00 UTC on Sunday 28 March 2027; New York did on 14 March.
    marketer = await marketer_at(client, db, clock, utc(2027, 3, 26, 6))
    members = await members_in_zones(db, clock.now())
    campaign = await create_campaign(
        client,
        marketer,
        schedule={"kind": "recurring", "time": "09:00", "start_date": "2027-03-27", "end_date": "2027-03-29"},
    )
    await schedule(client, marketer, campaign["id"])

    await draw(db, clock, settings)  # the day before: only the first occurrence is drawn yet
    rows = await deliveries(db, campaign["id"])
    assert {str(r.occurrence) for r in rows} == {"2027-03-27"}
    assert due(rows, members["Asia/Tokyo"]).due_at == utc(2027, 3, 27, 0)  # 09:00 JST
    assert due(rows, members["Europe/London"]).due_at == utc(2027, 3, 27, 9)  # 09:00 GMT
    assert due(rows, members["America/New_York"]).due_at == utc(2027, 3, 27, 13)  # 09:00 EDT

    clock.set(utc(2027, 3, 27, 20))
    await draw(db, clock, settings)
    rows = await deliveries(db, campaign["id"])
    assert due(rows, members["Europe/London"], "2027-03-28").due_at == utc(2027, 3, 28, 8)  # 09:00 BST
    assert due(rows, members["Asia/Tokyo"], "2027-03-28").due_at == utc(2027, 3, 28, 0)
    assert due(rows, members["America/New_York"], "2027-03-28").due_at == utc(2027, 3, 28, 13)
    assert len(rows) == 6  # drawing again added nothing twice

    clock.set(utc(2027, 3, 29, 6))  # a worker that was down: 29 March 09:00 has passed in Tokyo only
    await draw(db, clock, settings)
    rows = await deliveries(db, campaign["id"])
    tokyo = due(rows, members["Asia/Tokyo"], "2027-03-29")
    assert (tokyo.state, tokyo.reason) == (DeliveryState.SUPPRESSED, "too_late")
    assert due(rows, members["Europe/London"], "2027-03-29").due_at == utc(2027, 3, 29, 8)


async def test_quiet_hours_hold_a_message_until_they_end_in_the_members_zone(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings, fcm: LocalFcmServer
) -> None:
    marketer = await marketer_at(client, db, clock, utc(2027, 1, 15, 14, 30))  # Tokyo 23:30, London 14:30
    members = await members_in_zones(db, clock.now())
    campaign = await create_campaign(client, marketer, quiet_hours={"start": "22:00", "end": "08:00"})
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    rows = await deliveries(db, campaign["id"])
    assert due(rows, members["Asia/Tokyo"]).due_at == utc(2027, 1, 15, 23)  # 08:00 JST the next morning
    assert due(rows, members["Europe/London"]).due_at == clock.now()

    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
        sent_to = {m["target"] for m in fcm.messages()}
        assert sent_to == {address_of(members["Europe/London"]), address_of(members["America/New_York"])}
        clock.set(utc(2027, 1, 15, 22, 59))
        await send_all_due(sender)
        assert len(fcm.messages()) == 2
        clock.set(utc(2027, 1, 15, 23, 0))
        await send_all_due(sender)
    assert [m["target"] for m in fcm.messages()][2:] == [address_of(members["Asia/Tokyo"])]


async def test_a_local_time_already_past_is_sent_if_little_late_else_skipped(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    marketer = await marketer_at(client, db, clock, utc(2027, 1, 15, 9, 30))
    members = await members_in_zones(db, clock.now())
    at_nine = {"kind": "local_time", "date": "2027-01-15", "time": "09:00"}
    lenient = await create_campaign(client, marketer, schedule=at_nine)  # the default: up to 60 min late
    await schedule(client, marketer, lenient["id"])
    await draw(db, clock, settings)
    rows = await deliveries(db, lenient["id"])
    tokyo = due(rows, members["Asia/Tokyo"])  # 09:00 JST was 9 h 30 ago
    assert (tokyo.state, tokyo.reason) == (DeliveryState.SUPPRESSED, "too_late")
    london = due(rows, members["Europe/London"])  # 30 min ago: sent at once
    assert (london.state, london.due_at) == (DeliveryState.PENDING, clock.now())
    assert due(rows, members["America/New_York"]).due_at == utc(2027, 1, 15, 14)  # still to come

    strict = await create_campaign(client, marketer, schedule=at_nine)
    await schedule(client, marketer, strict["id"])
    await draw(db, clock, settings, msgspec.structs.replace(TEST_POLICY, late_minutes=0))
    london = due(await deliveries(db, strict["id"]), members["Europe/London"])
    assert (london.state, london.reason) == (DeliveryState.SUPPRESSED, "too_late")

    # A date already over in every zone cannot be scheduled at all.
    over = await create_campaign(client, marketer, schedule={**at_nine, "date": "2027-01-12"})
    response = await client.post(f"/v1/console/campaigns/{over['id']}/schedule", headers=bearer(marketer))
    assert_problem(response, 422, "invalid_schedule")


async def test_the_best_hour_is_when_the_member_usually_opens_the_app(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    marketer = await marketer_at(client, db, clock, utc(2027, 1, 15, 0))  # a Friday, 09:00 in Tokyo
    evening_user = await shopper(client, time_zone="Asia/Tokyo")
    opens = [
        {
            "client_event_id": f"open-{day}",
            "kind": "app_opened",
            "occurred_at": utc(2027, 1, day, 11, 10).isoformat(),  # 20:10 JST, Sunday to Thursday
        }
        for day in range(10, 15)
    ]
    reported = await client.post(
        "/v1/app/events", json={"events": opens}, headers=bearer(evening_user.session)
    )
    assert reported.status_code == 200, reported.text
    (newcomer,) = await add_members(db, 1, clock.now())
    window = {
        "kind": "best_hour",
        "window_start": "2027-01-15T00:00:00Z",
        "window_end": "2027-01-16T00:00:00Z",
    }
    campaign = await create_campaign(client, marketer, schedule=window)
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    rows = await deliveries(db, campaign["id"])
    assert due(rows, uuid.UUID(evening_user.session["member"]["id"])).first_due_at == utc(2027, 1, 15, 11)
    # No history and no population yet: the program's fallback hour, 19:00 in the member's zone.
    assert due(rows, newcomer).due_at == utc(2027, 1, 15, 10)

    member = evening_user.session["member"]["id"]
    traits = await client.get(f"/v1/console/members/{member}/traits", headers=bearer(marketer))
    assert traits.status_code == 200, traits.text
    assert traits.json()["traits"]["best_push_hour"]["local_hour"] == 20


async def test_recurring_on_weekdays_only_draws_those_days(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    marketer = await marketer_at(client, db, clock, utc(2027, 1, 14, 12))  # Thursday
    await add_members(db, 2, clock.now())
    weekly = {
        "kind": "recurring",
        "time": "10:00",
        "start_date": "2027-01-14",
        "end_date": "2027-01-25",
        "weekdays": ["mon"],
    }
    campaign = await create_campaign(client, marketer, schedule=weekly)
    await schedule(client, marketer, campaign["id"])
    for day in range(14, 26):
        clock.set(utc(2027, 1, day, 12))
        await draw(db, clock, settings)
    occurrences = sorted({str(r.occurrence) for r in await deliveries(db, campaign["id"])})
    assert occurrences == ["2027-01-18", "2027-01-25"]
    clock.set(utc(2027, 1, 14, 12))
    never = await client.post(
        "/v1/console/campaigns",
        json={
            "name": "Never",
            "variants": [{"key": "A", "title": "t", "body": "b"}],
            "schedule": {**weekly, "end_date": "2027-01-16"},  # Thursday to Saturday: no Monday
        },
        headers=bearer(marketer),
    )
    assert_problem(never, 422, "rule_broken")
    listed = await client.get("/v1/console/campaigns", headers=bearer(marketer))
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["items"]] == [campaign["id"]]  # the refused one was not saved
