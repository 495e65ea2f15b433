"""Round trips to PostgreSQL per request on the POS and points hot paths, counted on the wire (issue 12;
how: tests.integration.round_trip_counting)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain.clock import SettableClock
from infra.db import Database
from tests.integration.factories import TerminalCredentials, bearer, staff_login
from tests.integration.register import Shopper, days_ago, pos, register, sale, shopper
from tests.integration.round_trip_counting import Counted

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"
POINTS = "/v1/app/points"

# Issue 12's budgets, BEGIN and COMMIT included (before it: 31, 36 with a redemption, and 6), and what
# a member's refund reaches (27 before): BEGIN, the terminal's version, the key's claim, the sale and the
# account locked, the member's lots and miles read, everything written, the response stored, COMMIT.
# Reading my points is one statement, run without a transaction around it (api.transactions.ONLY_READS).
MEMBER_PURCHASE_BUDGET = 10
POINTS_BUDGET = 1
MEMBER_REFUND_BUDGET = 8


@pytest.fixture
async def till(http: httpx.AsyncClient, db: Database, clock: SettableClock) -> TerminalCredentials:
    return await register(http, await staff_login(http, db, clock), "TKY-COUNT")


async def _buy(
    http: httpx.AsyncClient,
    clock: SettableClock,
    till: TerminalCredentials,
    member: Shopper,
    *,
    redeem: int = 0,
    receipt: str | None = None,
) -> httpx.Response:
    # A new code each time (a minute later), as a shopper shows at each visit: a code pays once.
    clock.advance(timedelta(seconds=61))
    body = sale(
        3_000, at=days_ago(clock.now(), 3), code=member.code(clock.now()), redeem=redeem, receipt=receipt
    )
    return await pos(http, clock, till, PURCHASES, body)


def _refund(receipt: str, refund_receipt: str, clock: SettableClock) -> dict[str, Any]:
    return {
        "refund_receipt_id": refund_receipt,
        "original_receipt_id": receipt,
        "refunded_at": clock.now().isoformat(),
        "lines": [{"line_no": 1, "quantity": 1}],
    }


async def test_a_member_purchase_takes_at_most_ten_round_trips(
    counted: Counted, http: httpx.AsyncClient, till: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(http)
    assert (await _buy(http, clock, till, member)).status_code == 201  # warm-up
    trips = await counted.round_trips(_buy(http, clock, till, member), 201)
    assert len(trips.own) <= MEMBER_PURCHASE_BUDGET, str(trips)


async def test_a_member_purchase_paying_with_points_takes_at_most_ten_round_trips(
    counted: Counted, http: httpx.AsyncClient, till: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(http)
    for _ in range(2):
        assert (await _buy(http, clock, till, member)).status_code == 201  # points to spend
    assert (await _buy(http, clock, till, member, redeem=10)).status_code == 201  # warm-up
    trips = await counted.round_trips(_buy(http, clock, till, member, redeem=10), 201)
    assert len(trips.own) <= MEMBER_PURCHASE_BUDGET, str(trips)


async def test_a_member_refund_takes_at_most_eight_round_trips(
    counted: Counted, http: httpx.AsyncClient, till: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(http)
    for receipt in ("R-WARM", "R-COUNT"):
        assert (await _buy(http, clock, till, member, receipt=receipt)).status_code == 201
    warm_up = await pos(http, clock, till, REFUNDS, _refund("R-WARM", "F-WARM", clock))
    assert warm_up.status_code == 201, warm_up.text
    trips = await counted.round_trips(
        pos(http, clock, till, REFUNDS, _refund("R-COUNT", "F-COUNT", clock)), 201
    )
    assert len(trips.own) <= MEMBER_REFUND_BUDGET, str(trips)


async def test_reading_my_points_takes_one_round_trip(
    counted: Counted, http: httpx.AsyncClient, till: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(http)
    assert (await _buy(http, clock, till, member)).status_code == 201
    assert (await http.get(POINTS, headers=bearer(member.session))).status_code == 200  # warm-up
    trips = await counted.round_trips(http.get(POINTS, headers=bearer(member.session)), 200, reads_only=True)
    assert len(trips.own) <= POINTS_BUDGET, str(trips)
