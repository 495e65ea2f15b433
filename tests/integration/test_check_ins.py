"""Geofenced check-ins and the store finder through the HTTP API."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from geopy.distance import geodesic
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.conftest import serving
from tests.integration.factories import bearer, create_store, sign_up
from tests.integration.problems import assert_problem
from tests.tcp_proxy import proxy_to

TOKYO = (35.681236, 139.767125)  # Tokyo Station
OSAKA = (34.702485, 135.495951)  # Umeda


def offset(point: tuple[float, float], metres: float, bearing: float = 90.0) -> tuple[float, float]:
    destination = geodesic(meters=metres).destination(point, bearing)
    return destination.latitude, destination.longitude


@pytest.fixture(autouse=True)
def midday_in_tokyo(clock: SettableClock) -> None:
    """Local days matter here: start every test at noon in Tokyo, whatever the real time."""
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo")))


async def store_at(
    client: httpx.AsyncClient, admin: dict[str, Any], point: tuple[float, float], **overrides: Any
) -> dict[str, Any]:
    return await create_store(
        client, admin, latitude=point[0], longitude=point[1], check_in_radius_m=100, **overrides
    )


def check_in_body(
    store: dict[str, Any],
    point: tuple[float, float],
    at: datetime,
    *,
    accuracy: float = 20,
    mock: bool = False,
    trigger: str = "user_tap",
) -> dict[str, Any]:
    return {
        "store_id": store["id"],
        "latitude": point[0],
        "longitude": point[1],
        "accuracy_m": accuracy,
        "fix_at": at.isoformat(),
        "trigger": trigger,
        "integrity": {"mock_location": mock},
    }


async def check_in(
    client: httpx.AsyncClient,
    member: dict[str, Any],
    store: dict[str, Any],
    point: tuple[float, float],
    at: datetime,
    *,
    accuracy: float = 20,
    mock: bool = False,
    trigger: str = "user_tap",
) -> httpx.Response:
    body = check_in_body(store, point, at, accuracy=accuracy, mock=mock, trigger=trigger)
    headers = bearer(member) | {"Idempotency-Key": f"check-in-{secrets.token_hex(8)}"}
    return await client.post("/v1/app/check-ins", json=body, headers=headers)


async def miles(client: httpx.AsyncClient, member: dict[str, Any]) -> int:
    return int((await client.get("/v1/app/points", headers=bearer(member))).json()["miles_this_period"])


async def test_check_in_earns_miles_once_per_store_and_day(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    first = await check_in(client, member, store, TOKYO, clock.now())
    assert first.status_code == 200, first.text
    assert (first.json()["duplicate"], first.json()["miles_awarded"], first.json()["reward_withheld"]) == (
        False,
        20,
        None,
    )
    clock.advance(timedelta(hours=1))
    again = await check_in(client, member, store, TOKYO, clock.now())
    assert again.json()["duplicate"] is True
    assert again.json()["check_in_id"] == first.json()["check_in_id"]
    assert await miles(client, member) == 20
    timeline = await client.get("/v1/app/timeline", params={"kind": "checked_in"}, headers=bearer(member))
    assert [item["store_id"] for item in timeline.json()["items"]] == [store["id"]]


async def test_check_in_needs_an_idempotency_key_and_a_known_store(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    body = check_in_body(store, TOKYO, clock.now())
    assert_problem(
        await client.post("/v1/app/check-ins", json=body, headers=bearer(member)),
        400,
        "idempotency_key_required",
    )
    unknown = body | {"store_id": "0190a0a0-0000-7000-8000-000000000000"}
    headers = bearer(member) | {"Idempotency-Key": "check-in-unknown"}
    assert_problem(
        await client.post("/v1/app/check-ins", json=unknown, headers=headers), 404, "store_not_found"
    )
    bad = body | {"latitude": 91}
    headers = bearer(member) | {"Idempotency-Key": "check-in-bad-lat"}
    assert_problem(
        await client.post("/v1/app/check-ins", json=bad, headers=headers), 400, "validation_failed"
    )


@pytest.mark.parametrize(
    ("metres_away", "accuracy", "accepted"),
    [
        (100, 5, True),  # on the circle
        (140, 45, True),  # 40 m outside; the fix's 45 m accuracy reaches the fence
        (140, 30, False),  # 40 m outside, 30 m accuracy does not
        (160, 100, False),  # 60 m outside: more than the 50 m allowance, however poor the accuracy
        (149, 100, True),  # 49 m outside, within the allowance
    ],
)
async def test_fence_edges_with_accuracy(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    clock: SettableClock,
    metres_away: float,
    accuracy: float,
    accepted: bool,
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    response = await check_in(
        client, member, store, offset(TOKYO, metres_away), clock.now(), accuracy=accuracy
    )
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert_problem(response, 422, "outside_geofence")


async def test_polygon_fence(client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock) -> None:
    # A long station concourse: 600 m east-west, 60 m north-south, centre point at its west end.
    west, east = TOKYO, offset(TOKYO, 600)
    polygon = [offset(west, 30, 0), offset(east, 30, 0), offset(east, 30, 180), offset(west, 30, 180)]
    store = await store_at(client, admin, TOKYO, fence_polygon=[list(p) for p in polygon])
    member = await sign_up(client)
    inside_far_end = offset(TOKYO, 550)
    assert (await check_in(client, member, store, inside_far_end, clock.now())).status_code == 200
    other = await sign_up(client)
    outside = offset(offset(TOKYO, 300), 120, 0)  # 90 m north of the concourse's edge
    assert_problem(await check_in(client, other, store, outside, clock.now()), 422, "outside_geofence")
    bad = await client.patch(
        f"/v1/console/stores/{store['id']}",
        json={"fence_polygon": [[35.0, 139.0]] * 3},
        headers=bearer(admin),
    )
    assert_problem(bad, 422, "invalid_polygon")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"status": "temporarily_closed"}, "store_closed"),
        ({"geofence_enabled": False}, "geofence_disabled"),
        (
            {
                "opening_hours": {
                    day: [["00:00", "00:01"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                }
            },
            "store_closed",
        ),
    ],
)
async def test_closed_store_or_disabled_fence(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, change: dict[str, Any], code: str
) -> None:
    store = await store_at(client, admin, TOKYO)
    updated = await client.patch(f"/v1/console/stores/{store['id']}", json=change, headers=bearer(admin))
    assert updated.status_code == 200, updated.text
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo")))
    member = await sign_up(client)
    assert_problem(await check_in(client, member, store, TOKYO, clock.now()), 422, code)


async def test_bad_fixes_are_rejected_and_recorded(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    now = clock.now()
    cases = [
        (now, 151, False, "location_too_inaccurate"),
        (now - timedelta(minutes=2, seconds=1), 20, False, "location_stale"),
        (now + timedelta(minutes=1), 20, False, "location_in_future"),
        (now, 20, True, "mock_location"),
    ]
    for at, accuracy, mock, code in cases:
        response = await check_in(client, member, store, TOKYO, at, accuracy=accuracy, mock=mock)
        assert_problem(response, 422, code)
    timeline = await client.get(
        "/v1/app/timeline", params={"kind": "check_in_rejected"}, headers=bearer(member)
    )
    assert sorted(item["properties"]["reason"] for item in timeline.json()["items"]) == sorted(
        case[-1] for case in cases
    )
    assert await miles(client, member) == 0


async def test_impossible_travel_tokyo_to_osaka(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    tokyo = await store_at(client, admin, TOKYO)
    osaka = await store_at(client, admin, OSAKA)
    fast = await sign_up(client)
    slow = await sign_up(client)
    start = clock.now()
    for member in (fast, slow):
        assert (await check_in(client, member, tokyo, TOKYO, start)).status_code == 200
    clock.set(start + timedelta(minutes=10))
    assert_problem(await check_in(client, fast, osaka, OSAKA, clock.now()), 422, "impossible_travel")
    clock.set(start + timedelta(hours=3))
    assert (await check_in(client, slow, osaka, OSAKA, clock.now())).status_code == 200


async def test_once_per_local_day_of_the_store(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    zones = ("Asia/Tokyo", "America/Los_Angeles")
    stores = {zone: await store_at(client, admin, TOKYO, time_zone=zone) for zone in zones}
    for zone, store in stores.items():
        before_midnight = datetime(2026, 11, 23, 23, 59, tzinfo=ZoneInfo(zone))
        clock.set(before_midnight)
        member = await sign_up(client)
        first = await check_in(client, member, store, TOKYO, clock.now())
        clock.set(before_midnight + timedelta(minutes=2))  # 00:01 the next local day
        second = await check_in(client, member, store, TOKYO, clock.now())
        assert (first.json()["local_day"], second.json()["local_day"]) == ("2026-11-23", "2026-11-24"), zone
        assert second.status_code == 200, second.text
        assert second.json()["duplicate"] is False
        clock.set(before_midnight + timedelta(hours=20))  # later the same local day
        third = await check_in(client, member, store, TOKYO, clock.now())
        assert third.status_code == 200, third.text
        assert third.json()["duplicate"] is True
        assert third.json()["check_in_id"] == second.json()["check_in_id"]


async def test_concurrent_duplicate_check_ins_reward_once(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    responses = await asyncio.gather(
        *(check_in(client, member, store, TOKYO, clock.now()) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert sum(not r.json()["duplicate"] for r in responses) == 1
    assert len({r.json()["check_in_id"] for r in responses}) == 1
    assert await miles(client, member) == 20


async def test_daily_cap_on_rewarded_stores(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    member = await sign_up(client)
    start = clock.now()
    results = []
    for n in range(6):
        point = offset(TOKYO, 1_000 * n)
        store = await store_at(client, admin, point)
        clock.set(start + timedelta(minutes=5 * n))  # 1 km per 5 minutes: walking pace
        response = await check_in(client, member, store, point, clock.now())
        assert response.status_code == 200, response.text
        results.append(response.json())
    assert [r["reward_withheld"] for r in results] == [None] * 5 + ["daily_cap_reached"]
    assert await miles(client, member) == 100


async def test_fraud_review_and_flagging(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    tokyo = await store_at(client, admin, TOKYO)
    osaka = await store_at(client, admin, OSAKA)
    cheat = await sign_up(client)
    honest = await sign_up(client)
    start = clock.now()
    await check_in(client, cheat, tokyo, TOKYO, start)
    clock.set(start + timedelta(minutes=5))
    await check_in(client, cheat, osaka, OSAKA, clock.now())
    await check_in(client, cheat, osaka, OSAKA, clock.now(), mock=True)
    await check_in(client, honest, tokyo, TOKYO, clock.now())
    review = await client.get(
        "/v1/console/fraud/check-ins",
        params={"since": (start - timedelta(hours=1)).isoformat()},
        headers=bearer(admin),
    )
    assert review.status_code == 200, review.text
    members = review.json()["members"]
    assert [m["member_id"] for m in members] == [cheat["member"]["id"]]
    suspect = members[0]
    assert suspect["rejections"] == {"impossible_travel": 1, "mock_location": 1}
    assert suspect["impossible_travel"][0]["speed_kmh"] > 300
    assert suspect["flagged"] is False

    member_id = cheat["member"]["id"]
    flagged = await client.put(
        f"/v1/console/members/{member_id}/check-in-flag",
        json={"reason": "teleporting"},
        headers=bearer(admin),
    )
    assert flagged.status_code == 204
    clock.set(start + timedelta(hours=20))  # the next day in Tokyo
    visit = await check_in(client, cheat, tokyo, TOKYO, clock.now())
    assert visit.status_code == 200, visit.text
    assert (visit.json()["reward_withheld"], visit.json()["miles_awarded"]) == ("flagged_for_review", 0)
    assert (
        await client.delete(f"/v1/console/members/{member_id}/check-in-flag", headers=bearer(admin))
    ).status_code == 204
    assert_problem(
        await client.get("/v1/console/fraud/check-ins", headers=bearer(cheat)), 401, "access_token_invalid"
    )


async def test_too_many_attempts_are_refused(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    far = offset(TOKYO, 5_000)
    for _ in range(12):
        assert_problem(await check_in(client, member, store, far, clock.now()), 422, "outside_geofence")
    assert_problem(
        await check_in(client, member, store, TOKYO, clock.now()), 429, "too_many_check_in_attempts"
    )


async def test_nearby_stores_and_regions(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    points = [offset(TOKYO, 700 * n, 37 * n) for n in range(12)]
    stores = [await store_at(client, admin, p) for p in points]
    member = await sign_up(client)
    here = offset(TOKYO, 300, 200)
    response = await client.get(
        "/v1/app/stores/nearby", params={"lat": here[0], "lon": here[1], "limit": 5}, headers=bearer(member)
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    expected = sorted(stores, key=lambda s: geodesic(here, (s["latitude"], s["longitude"])).meters)[:5]
    assert [i["store_id"] for i in items] == [s["id"] for s in expected]
    assert all(i["open_now"] for i in items)
    assert items[0]["distance_m"] == round(
        geodesic(here, (expected[0]["latitude"], expected[0]["longitude"])).meters
    )
    within = await client.get(
        "/v1/app/stores/nearby",
        params={"lat": here[0], "lon": here[1], "radius_m": 1_000},
        headers=bearer(member),
    )
    assert all(i["distance_m"] <= 1_000 for i in within.json()["items"])
    # A store change is seen at once: archive the nearest.
    await client.delete(f"/v1/console/stores/{expected[0]['id']}", headers=bearer(admin))
    after = await client.get(
        "/v1/app/stores/nearby", params={"lat": here[0], "lon": here[1], "limit": 5}, headers=bearer(member)
    )
    assert expected[0]["id"] not in [i["store_id"] for i in after.json()["items"]]
    regions = await client.get(
        "/v1/app/stores/regions", params={"lat": here[0], "lon": here[1], "count": 3}, headers=bearer(member)
    )
    assert len(regions.json()["regions"]) == 3
    assert regions.json()["refresh_after_moving_m"] >= 500
    assert_problem(
        await client.get("/v1/app/stores/nearby", params={"lat": 95, "lon": 0}, headers=bearer(member)),
        400,
        "validation_failed",
    )


async def rows(db: Database, table: str, member_id: str | None = None) -> int:
    """How many rows `table` holds (for one member, when given): what a request really wrote."""
    where = " WHERE member_id = :member" if member_id else ""
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(
            text(f'SELECT count(*) FROM "{table}"{where}'),  # noqa: S608 - table names are the test's own
            {"member": member_id} if member_id else {},
        )
        return int(result.scalar_one())


async def test_a_fix_months_ahead_is_recorded_at_server_time_not_in_the_default_partition(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    claimed = clock.now() + timedelta(days=150)
    assert_problem(await check_in(client, member, store, TOKYO, claimed), 422, "location_in_future")
    items = (
        await client.get("/v1/app/timeline", params={"kind": "check_in_rejected"}, headers=bearer(member))
    ).json()["items"]
    assert len(items) == 1
    assert datetime.fromisoformat(items[0]["occurred_at"]) == clock.now()
    assert datetime.fromisoformat(items[0]["properties"]["claimed_fix_at"]) == claimed
    assert await rows(db, "timeline_events_default") == 0


async def test_a_rejected_check_in_replays_its_problem_under_the_same_key(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    far = offset(TOKYO, 5_000)
    body = check_in_body(store, far, clock.now())
    headers = bearer(member) | {"Idempotency-Key": "check-in-rejected-once"}
    first = await client.post("/v1/app/check-ins", json=body, headers=headers)
    assert_problem(first, 422, "outside_geofence")
    retry = await client.post("/v1/app/check-ins", json=body, headers=headers)
    assert_problem(retry, 422, "outside_geofence")
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert await rows(db, "check_in_attempts", member["member"]["id"]) == 1  # the replay judged nothing

    good = body | {"latitude": TOKYO[0], "longitude": TOKYO[1]}
    fresh_key = bearer(member) | {"Idempotency-Key": "check-in-good-fix"}
    accepted = await client.post("/v1/app/check-ins", json=good, headers=fresh_key)
    assert accepted.status_code == 200, accepted.text
    replay = await client.post("/v1/app/check-ins", json=good, headers=fresh_key)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == accepted.json()


async def test_a_rejection_keeps_only_its_record_and_its_answer(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    member_id = member["member"]["id"]
    events_before = await rows(db, "timeline_events", member_id)
    assert_problem(await check_in(client, member, store, TOKYO, clock.now(), mock=True), 422, "mock_location")
    assert await rows(db, "check_in_attempts", member_id) == 1
    assert await rows(db, "timeline_events", member_id) == events_before + 1
    assert await rows(db, "check_ins", member_id) == 0
    async with db.unit_of_work() as uow:
        stored = (
            (
                await uow.session.execute(
                    text("SELECT status_code FROM idempotency_keys WHERE scope LIKE 'member:%'")
                )
            )
            .scalars()
            .all()
        )
    assert stored == [422]


async def test_concurrent_check_ins_at_distant_stores_accept_at_most_one(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    tokyo = await store_at(client, admin, TOKYO)
    osaka = await store_at(client, admin, OSAKA)
    for _ in range(4):
        member = await sign_up(client)
        both = await asyncio.gather(
            check_in(client, member, tokyo, TOKYO, clock.now()),
            check_in(client, member, osaka, OSAKA, clock.now()),
        )
        assert sorted(r.status_code for r in both) == [200, 422], [r.text for r in both]
        assert_problem(next(r for r in both if r.status_code == 422), 422, "impossible_travel")


async def test_a_check_in_timed_before_an_accepted_one_is_judged_against_it(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    tokyo = await store_at(client, admin, TOKYO)
    osaka = await store_at(client, admin, OSAKA)
    member = await sign_up(client)
    assert (await check_in(client, member, osaka, OSAKA, clock.now())).status_code == 200
    earlier = clock.now() - timedelta(seconds=30)  # sent later, but timed before the Osaka check-in
    assert_problem(await check_in(client, member, tokyo, TOKYO, earlier), 422, "impossible_travel")


async def test_a_mocked_repeat_at_a_visited_store_is_judged_and_recorded(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    assert (await check_in(client, member, store, TOKYO, clock.now())).status_code == 200
    clock.advance(timedelta(minutes=30))
    assert_problem(await check_in(client, member, store, TOKYO, clock.now(), mock=True), 422, "mock_location")
    rejected = await client.get(
        "/v1/app/timeline", params={"kind": "check_in_rejected"}, headers=bearer(member)
    )
    assert [i["properties"]["reason"] for i in rejected.json()["items"]] == ["mock_location"]


async def test_attempts_over_the_limit_write_nothing_to_postgresql(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    member_id = member["member"]["id"]
    far = offset(TOKYO, 5_000)
    for _ in range(12):
        assert_problem(await check_in(client, member, store, far, clock.now()), 422, "outside_geofence")
    tables = ("check_in_attempts", "timeline_events", "idempotency_keys")
    written = [await rows(db, t) for t in tables]
    for _ in range(5):
        refused = await check_in(client, member, store, far, clock.now())
        assert_problem(refused, 429, "too_many_check_in_attempts")
        assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert [
        await rows(db, t) for t in ("check_in_attempts", "timeline_events", "idempotency_keys")
    ] == written
    review = await client.get("/v1/console/fraud/check-ins", headers=bearer(admin))
    (suspect,) = review.json()["members"]
    assert (suspect["member_id"], suspect["refused_for_too_many_attempts_today"]) == (member_id, 5)


async def test_rejections_kept_per_member_are_bounded_per_day(
    settings: Settings, admin: dict[str, Any], client: httpx.AsyncClient, clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    strict = msgspec.structs.replace(
        settings, check_in_policy='{"attempts_per_hour": 100, "recorded_rejections_per_day": 3}'
    )
    with serving(strict, clock) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as other:
            member = await sign_up(other)
            far = offset(TOKYO, 5_000)
            for _ in range(8):
                assert_problem(
                    await check_in(other, member, store, far, clock.now()), 422, "outside_geofence"
                )
    member_id = member["member"]["id"]
    assert await rows(db, "check_in_attempts", member_id) == 3
    async with db.unit_of_work() as uow:
        kept = (
            await uow.session.execute(
                text(
                    "SELECT count(*) FROM timeline_events WHERE member_id = :m AND kind = 'check_in_rejected'"
                ),
                {"m": member_id},
            )
        ).scalar_one()
    assert kept == 3


async def test_check_ins_fail_closed_when_redis_is_down(
    settings: Settings, client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    assert settings.redis_url is not None
    with proxy_to(settings.redis_url) as redis_proxy:
        cut_off = msgspec.structs.replace(settings, redis_url=redis_proxy.url_through(settings.redis_url))
        with serving(cut_off, clock) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as other:
                redis_proxy.block()
                refused = await check_in(other, member, store, TOKYO, clock.now())
                assert_problem(refused, 503, "rate_limiter_unavailable")
                assert refused.headers["retry-after"]
                redis_proxy.unblock()
                accepted = await check_in(other, member, store, TOKYO, clock.now())
                assert accepted.status_code == 200, accepted.text
    assert await rows(db, "check_ins", member["member"]["id"]) == 1


async def test_identical_retries_of_a_rejected_check_in_at_once_all_get_its_answer(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    for _ in range(4):
        member = await sign_up(client)
        body = check_in_body(store, TOKYO, clock.now(), mock=True)
        headers = bearer(member) | {"Idempotency-Key": f"same-{secrets.token_hex(6)}"}
        answers = await asyncio.gather(
            *(client.post("/v1/app/check-ins", json=body, headers=headers) for _ in range(3))
        )
        for answer in answers:
            assert_problem(answer, 422, "mock_location")
        assert await rows(db, "check_in_attempts", member["member"]["id"]) == 1


async def test_a_repeat_check_in_places_the_member_for_the_travel_check(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    tokyo = await store_at(client, admin, TOKYO)
    osaka = await store_at(client, admin, OSAKA)
    member = await sign_up(client)
    morning = clock.now() - timedelta(hours=3)
    clock.set(morning)
    assert (await check_in(client, member, tokyo, TOKYO, clock.now())).status_code == 200
    clock.set(morning + timedelta(hours=3))
    repeat = await check_in(client, member, tokyo, TOKYO, clock.now())
    assert repeat.json()["duplicate"] is True  # in Tokyo again at noon ...
    clock.advance(timedelta(minutes=10))
    assert_problem(await check_in(client, member, osaka, OSAKA, clock.now()), 422, "impossible_travel")
