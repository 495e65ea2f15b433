"""Segments: each condition selects exactly the members it names, live, through the console's estimate."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.tables import AudienceProfile
from tests.integration.factories import PASSWORD, bearer, create_store, create_terminal
from tests.integration.problems import assert_problem
from tests.integration.push_support import add_members, profile_everyone
from tests.integration.register import Shopper, pos, sale, shopper

PURCHASES = "/v1/pos/purchases"


async def estimate(client: httpx.AsyncClient, staff: dict[str, Any], *conditions: dict[str, Any]) -> set[str]:
    response = await client.post(
        "/v1/console/segments/estimate", json={"segment": {"all": list(conditions)}}, headers=bearer(staff)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == len(body["sample"])  # these audiences are smaller than the sample
    return set(body["sample"])


def member_id(member: Shopper) -> str:
    return str(member.session["member"]["id"])


async def set_traits(db: Database, member: uuid.UUID, **traits: Any) -> None:
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(AudienceProfile).where(AudienceProfile.member_id == member).values(**traits)
        )


async def test_each_condition_selects_exactly_its_members(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    admin: dict[str, Any],
    marketer: dict[str, Any],
) -> None:
    now = clock.now()
    ginza = await create_store(client, admin, latitude=35.6717, longitude=139.7650)
    yurakucho = await create_store(client, admin, latitude=35.6751, longitude=139.7630)  # 0.4 km away
    osaka = await create_store(client, admin, latitude=34.7025, longitude=135.4959)  # 400 km away
    till = await create_terminal(client, admin, ginza["id"])

    # Facts made the real way: a purchase at Ginza now, another 300 days ago (its points expire soon),
    # and one phone registered for push through the app's endpoint.
    buyer = await shopper(client)
    bought = await pos(client, clock, till, PURCHASES, sale(5_000, at=now, code=buyer.code(now)))
    assert bought.status_code == 201, bought.text
    long_ago = now - timedelta(days=300)
    clock.set(long_ago)
    old_buyer = await shopper(client)
    bought = await pos(
        client, clock, till, PURCHASES, sale(5_000, at=long_ago, code=old_buyer.code(long_ago))
    )
    assert bought.status_code == 201, bought.text
    clock.set(now)
    registered = await client.put(
        "/v1/app/devices/current/push-address",
        json={
            "kind": "fid",
            "address": "fid-buyer-phone-0001",
            "platform": "android",
            "app_version": "3.2.0",
            "locale": "ja-JP",
            "permission": "granted",
        },
        headers=bearer(buyer.session),
    )
    assert registered.status_code == 204, registered.text
    at_risk, frequent, gold, quiet = await add_members(db, 4, now)
    (declined,) = await add_members(db, 1, now, permission="denied")
    await profile_everyone(db, clock, settings)
    everyone = {member_id(buyer), member_id(old_buyer), *map(str, (at_risk, frequent, gold, quiet, declined))}
    # Traits are derived (and tested with the timeline); here each member gets exactly one that stands out.
    for member in (at_risk, frequent, gold, quiet, declined):
        await set_traits(db, member, lifecycle_stage="active", health_score=80, frequency=2, stage="basic")
    await set_traits(db, at_risk, lifecycle_stage="at_risk", health_score=20)
    await set_traits(db, frequent, frequency=5)
    await set_traits(db, gold, stage="gold")

    assert await estimate(client, marketer) == everyone
    assert await estimate(client, marketer, {"field": "lifecycle_stage", "in": ["at_risk"]}) == {str(at_risk)}
    assert await estimate(client, marketer, {"field": "health_score", "min": 0, "max": 30}) >= {str(at_risk)}
    assert str(frequent) not in await estimate(client, marketer, {"field": "health_score", "max": 30})
    assert await estimate(client, marketer, {"field": "rfm", "score": "frequency", "min": 5}) == {
        str(frequent)
    }
    assert await estimate(client, marketer, {"field": "stage", "in": ["gold", "platinum"]}) == {str(gold)}
    favourite = {"field": "favourite_store", "store_id": ginza["id"]}
    shoppers = {member_id(buyer), member_id(old_buyer)}  # a purchase within the year makes a favourite
    assert await estimate(client, marketer, favourite) == shoppers
    near = {"field": "near_store", "store_id": yurakucho["id"], "within_km": 1}
    assert await estimate(client, marketer, near) == shoppers
    far = {"field": "near_store", "store_id": osaka["id"], "within_km": 50}
    assert await estimate(client, marketer, far) == set()
    visited = {"field": "visited_store", "store_id": ginza["id"], "within_days": 30}
    assert await estimate(client, marketer, visited) == {member_id(buyer)}
    visited_in_a_year = {"field": "visited_store", "store_id": ginza["id"], "within_days": 366}
    assert await estimate(client, marketer, visited_in_a_year) == {member_id(buyer), member_id(old_buyer)}
    expiring = {"field": "points_expiring", "within_days": 90, "min_points": 1}
    assert await estimate(client, marketer, expiring) == {member_id(old_buyer)}
    assert await estimate(client, marketer, {**expiring, "within_days": 30}) == set()
    reachable = {"field": "push_permission", "granted": True}
    assert await estimate(client, marketer, reachable) == {
        member_id(buyer),
        *map(str, (at_risk, frequent, gold, quiet)),
    }
    unreachable = {"field": "push_permission", "granted": False}
    assert await estimate(client, marketer, unreachable) == {member_id(old_buyer), str(declined)}
    assert await estimate(client, marketer, reachable, favourite) == {member_id(buyer)}

    # An erased member leaves every audience at once.
    login = await client.post(
        "/v1/app/sessions", json={"email": old_buyer.session["member"]["email"], "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    erased = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(login.json())
    )
    assert erased.status_code == 204, erased.text
    assert await estimate(client, marketer, unreachable) == {str(declined)}


async def test_a_segment_naming_what_does_not_exist_is_refused(
    client: httpx.AsyncClient, marketer: dict[str, Any]
) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"field": "favourite_colour", "in": ["red"]}, 400, "validation_failed"),
        ({"field": "lifecycle_stage", "in": ["sleepy"]}, 400, "validation_failed"),
        ({"field": "health_score", "min": 50, "max": 10}, 422, "rule_broken"),
        ({"field": "health_score", "min": "10"}, 400, "validation_failed"),  # a number sent as text
        ({"field": "visited_store", "store_id": str(uuid.uuid4()), "within_days": 30}, 422, "unknown_store"),
        (
            {"field": "visited_store", "store_id": str(uuid.uuid4()), "within_days": 3000},
            400,
            "validation_failed",
        ),
        ({"field": "near_store", "store_id": str(uuid.uuid4()), "within_km": 0}, 400, "validation_failed"),
    ]
    for condition, status, code in cases:
        response = await client.post(
            "/v1/console/segments/estimate", json={"segment": {"all": [condition]}}, headers=bearer(marketer)
        )
        assert_problem(response, status, code)
    too_many = [{"field": "push_permission"}] * 21
    response = await client.post(
        "/v1/console/segments/estimate", json={"segment": {"all": too_many}}, headers=bearer(marketer)
    )
    assert_problem(response, 400, "validation_failed")
