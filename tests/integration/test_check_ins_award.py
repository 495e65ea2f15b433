"""A check-in's award through the HTTP API: points with its miles, once, and the stage bonus they reach."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest

from domain.clock import SettableClock
from infra.settings import Settings
from tests.conftest import TEST_PROGRAM, serving
from tests.integration.factories import bearer, sign_up
from tests.integration.test_check_ins import TOKYO, check_in, offset, store_at

POINTS_AND_MILES = '{"attempts_per_hour": 100, "points": 5, "miles": 20}'
SILVER_AT_40_MILES = [
    {"stage": "basic", "miles": 0, "bonus_points": 0},
    {"stage": "silver", "miles": 40, "bonus_points": 100},
]


@pytest.fixture(scope="module")
def rewarding_url(settings: Settings, clock: SettableClock) -> Iterator[str]:
    """The app with check-ins earning 5 points and 20 miles, and Silver reached at 40 miles."""
    program = msgspec.json.decode(TEST_PROGRAM)
    program["stages"]["thresholds"] = SILVER_AT_40_MILES
    rewarding = msgspec.structs.replace(
        settings, check_in_policy=POINTS_AND_MILES, points_program=msgspec.json.encode(program).decode()
    )
    with serving(rewarding, clock) as url:
        yield url


@pytest.fixture
async def app(rewarding_url: str, clock: SettableClock) -> AsyncIterator[httpx.AsyncClient]:
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo")))  # one local day to work in
    async with httpx.AsyncClient(base_url=rewarding_url, timeout=30) as client:
        yield client


async def _held(app: httpx.AsyncClient, member: dict[str, Any]) -> tuple[int, int, str]:
    """The member's available points, miles this period and stage."""
    summary = (await app.get("/v1/app/points", headers=bearer(member))).json()
    return summary["balances"]["available"], summary["miles_this_period"], summary["stage"]


async def test_check_in_points_are_spendable_at_once_and_its_miles_reach_a_stage_bonus(
    app: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    first, second = await store_at(app, admin, TOKYO), await store_at(app, admin, offset(TOKYO, 900))
    member = await sign_up(app)

    accepted = await check_in(app, member, first, TOKYO, clock.now())
    assert (accepted.json()["points_awarded"], accepted.json()["miles_awarded"]) == (5, 20)
    assert await _held(app, member) == (5, 20, "basic")

    clock.advance(timedelta(minutes=30))
    assert (await check_in(app, member, second, offset(TOKYO, 900), clock.now())).status_code == 200

    assert await _held(app, member) == (110, 40, "silver")
    history = (await app.get("/v1/app/points/history", headers=bearer(member))).json()["items"]
    assert sorted((entry["kind"], entry["points"], entry["miles"], entry["reason"]) for entry in history) == [
        ("bonus", 100, 0, "Welcome to Silver: 100 bonus points"),
        ("earn", 5, 20, f"Check-in at {first['name']}"),
        ("earn", 5, 20, f"Check-in at {second['name']}"),
    ]
    timeline = (await app.get("/v1/app/timeline", headers=bearer(member))).json()["items"]
    kinds = sorted(item["kind"] for item in timeline)
    assert kinds == ["checked_in", "checked_in", "member_joined", "stage_reached"]


async def test_concurrent_check_ins_at_one_store_award_its_points_once(
    app: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await store_at(app, admin, TOKYO)
    member = await sign_up(app)

    answers = await asyncio.gather(*(check_in(app, member, store, TOKYO, clock.now()) for _ in range(4)))

    assert sorted(answer.json()["duplicate"] for answer in answers) == [False, True, True, True]
    assert {answer.json()["points_awarded"] for answer in answers} == {5}
    assert await _held(app, member) == (5, 20, "basic")
