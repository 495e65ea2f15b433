"""The console's points figures: flows in a period per local day, the liability held now, stages.

Sales, redemptions and refunds go through the register's API; expiry through the worker's job; the
figures are read through the use cases the console calls, and checked against what the API reported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest

from accounts.members import active_members_after
from domain.clock import SettableClock
from domain.periods import InvalidPeriod
from infra.db import Database
from infra.settings import Settings
from points.expiry import expire_due
from points.miles import stages_of
from points.overview import StageCount, points_overview, stage_distribution
from points.program import Program, load_program
from points.rules.stages import Stage
from tests.integration.factories import PASSWORD, TerminalCredentials, bearer
from tests.integration.register import Shopper, days_ago, pos, sale, shopper

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"
ZONE = ZoneInfo("Asia/Tokyo")
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZONE)
WEEK_START = datetime(2026, 11, 17, tzinfo=ZONE)  # seven local days up to and including the 23rd
WEEK_END = datetime(2026, 11, 24, tzinfo=ZONE)


@pytest.fixture(autouse=True)
def noon_in_tokyo(clock: SettableClock) -> None:
    clock.set(NOON)


@pytest.fixture
def program(settings: Settings) -> Program:
    """The tests' program, with a point worth 3 yen so the liability is not the points again."""
    base = load_program(settings.points_program)
    return msgspec.structs.replace(base, earning=msgspec.structs.replace(base.earning, point_value_minor=3))


async def buy(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    member: Shopper,
    total: int,
    *,
    at: datetime,
    redeem: int = 0,
    receipt: str | None = None,
) -> dict[str, Any]:
    body = sale(total, at=at, code=member.code(clock.now()), redeem=redeem, receipt=receipt)
    response = await pos(client, clock, terminal, PURCHASES, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def balances(client: httpx.AsyncClient, member: Shopper) -> tuple[int, int]:
    """(available, pending) as the member's app shows them."""
    shown = (await client.get("/v1/app/points", headers=bearer(member.session))).json()["balances"]
    return int(shown["available"]), int(shown["pending"])


async def test_flows_per_local_day_and_the_liability_add_up_to_what_the_register_reported(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    program: Program,
) -> None:
    member = await shopper(client)
    leaver = await shopper(client)
    first = await buy(client, clock, terminal, member, 10_000, at=days_ago(NOON, 5), receipt="R-FIRST")
    left = await buy(client, clock, terminal, leaver, 5_000, at=days_ago(NOON, 4))
    spend = await buy(client, clock, terminal, member, 1_000, at=NOON, redeem=90)  # of 100 available
    refund = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-FIRST",
            "original_receipt_id": "R-FIRST",
            "refunded_at": NOON.isoformat(),
            "lines": [{"line_no": 1, "quantity": 1}],
        },
    )
    assert refund.status_code == 201, refund.text
    reversal = refund.json()
    assert reversal["points_owed"] > 0  # most of the first sale's points were spent: a claw-back
    repay = await buy(client, clock, terminal, member, 20_000, at=NOON)
    assert repay["points_repaid"] == reversal["points_owed"]
    assert sum(await balances(client, leaver)) == left["points_earned"]
    erased = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(leaver.session)
    )
    assert erased.status_code == 204

    async with db.unit_of_work() as uow:
        overview = await points_overview(uow, program, WEEK_START, WEEK_END, "Asia/Tokyo", NOON)
    issued = first["points_earned"] + left["points_earned"] + spend["points_earned"] + repay["points_earned"]
    assert (overview.issued, overview.redeemed, overview.returned, overview.expired) == (issued, 90, 0, 0)
    assert overview.reversed == reversal["points_reversed"] - reversal["points_owed"]
    assert (overview.clawed_back, overview.repaid) == (reversal["points_owed"], repay["points_repaid"])
    assert [(d.day.isoformat(), d.issued, d.redeemed, d.expired) for d in overview.daily] == [
        ("2026-11-17", 0, 0, 0),
        ("2026-11-18", first["points_earned"], 0, 0),
        ("2026-11-19", left["points_earned"], 0, 0),  # an erased member's history still happened
        ("2026-11-20", 0, 0, 0),
        ("2026-11-21", 0, 0, 0),
        ("2026-11-22", 0, 0, 0),
        ("2026-11-23", spend["points_earned"] + repay["points_earned"], 90, 0),
    ]
    # Held now: the remaining member's balance only (the erased member can spend nothing any more).
    available, pending = await balances(client, member)
    assert pending > 0
    assert (overview.held_available, overview.held_pending) == (available, pending)
    assert overview.held_points == available + pending
    assert (overview.liability_minor, overview.currency) == (3 * (available + pending), "JPY")
    assert overview.owed_points == 0  # repaid
    assert (overview.start, overview.end) == (WEEK_START, WEEK_END)

    async with db.unit_of_work() as uow:
        before = await points_overview(uow, program, WEEK_START, days_ago(NOON, 5), "Asia/Tokyo", NOON)
    assert (before.issued, len(before.daily)) == (0, 2)  # the first sale was at noon, after this end


async def test_expired_points_count_on_the_local_day_their_lot_expired(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    program: Program,
) -> None:
    member = await shopper(client)
    sold_at = datetime(2026, 11, 14, 8, 30, tzinfo=ZONE)  # 23:30 UTC on the 13th
    earned = await buy(client, clock, terminal, member, 7_000, at=sold_at)
    expires_at = sold_at + timedelta(days=365)  # the tests' program: 365 days, no month-end rounding
    after = expires_at + timedelta(days=1)
    assert await expire_due(db, after) == earned["points_earned"]

    start = datetime(2027, 11, 13, tzinfo=ZONE)
    async with db.unit_of_work() as uow:
        overview = await points_overview(uow, program, start, start + timedelta(days=3), "Asia/Tokyo", after)
    assert (overview.expired, overview.issued) == (earned["points_earned"], 0)
    assert [(d.day.isoformat(), d.expired) for d in overview.daily] == [
        ("2027-11-13", 0),
        ("2027-11-14", earned["points_earned"]),  # the 13th in UTC: the day is the program zone's
        ("2027-11-15", 0),
    ]
    assert overview.held_points == overview.liability_minor == 0


async def test_a_period_must_end_after_it_starts_and_span_at_most_400_days(
    db: Database, program: Program
) -> None:
    async with db.unit_of_work() as uow:
        with pytest.raises(InvalidPeriod):
            await points_overview(uow, program, WEEK_END, WEEK_START, "Asia/Tokyo", NOON)
        with pytest.raises(InvalidPeriod):
            await points_overview(
                uow, program, WEEK_START, WEEK_START + timedelta(days=401), "Asia/Tokyo", NOON
            )


async def test_stage_distribution_counts_every_member_once_at_the_stage_they_hold(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    program: Program,
) -> None:
    # The tests' program: silver from 100,000 miles, gold from 300,000; a yen of sale is a mile.
    await buy(client, clock, terminal, await shopper(client), 300_000, at=NOON)
    await buy(client, clock, terminal, await shopper(client), 120_000, at=NOON)
    await buy(client, clock, terminal, await shopper(client), 99_999, at=NOON)  # just short of silver
    await shopper(client)
    await shopper(client)
    silver_leaver = await shopper(client)
    await buy(client, clock, terminal, silver_leaver, 100_000, at=NOON)
    erased = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(silver_leaver.session)
    )
    assert erased.status_code == 204

    next_year = NOON + timedelta(days=365)  # a new period: last period's stage is kept through it
    two_years = NOON + timedelta(days=2 * 365)  # and then lost
    async with db.unit_of_work() as uow:
        now = await stage_distribution(uow, program, NOON)
        kept = await stage_distribution(uow, program, next_year)
        lost = await stage_distribution(uow, program, two_years)
        members = [member_id for member_id, _ in await active_members_after(uow, None, 100)]
        stages = await stages_of(uow, program, members, NOON)
    assert now == [
        StageCount(Stage.BASIC, 3),
        StageCount(Stage.SILVER, 1),
        StageCount(Stage.GOLD, 1),
    ]
    # The same as each member's stage, as the register and the app show it.
    assert [(count.stage, count.members) for count in now] == [
        (stage, list(stages.values()).count(stage)) for stage in (Stage.BASIC, Stage.SILVER, Stage.GOLD)
    ]
    assert kept == now
    assert lost == [StageCount(Stage.BASIC, 5), StageCount(Stage.SILVER, 0), StageCount(Stage.GOLD, 0)]
