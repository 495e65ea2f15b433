"""The points history adds up: over any sequence of earning, redeeming, returning, repaying and expiring,
the member's history sums to the balance the app shows, and its owed changes to what is owed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.clock import SettableClock
from infra.db import Database
from points.expiry import expire_due
from tests.integration.factories import PASSWORD, TerminalCredentials, bearer, staff_login
from tests.integration.register import Shopper, days_ago, pos, register, sale, shopper

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"

steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(100, 150_000)),
        st.tuples(st.just("redeem"), st.integers(1, 100)),
        st.tuples(st.just("return"), st.integers(1, 100)),  # percent of what is left of a sale
        st.tuples(st.just("expire"), st.just(0)),
    ),
    min_size=1,
    max_size=7,
)


@dataclass
class Ledger:
    """What this example did, to choose the next step sensibly (never to compute expected figures)."""

    member: Shopper
    sales: dict[str, int] = field(default_factory=dict)  # receipt -> money not yet returned


async def history_sums(client: httpx.AsyncClient, member: Shopper) -> tuple[int, int]:
    points = owed = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (
            await client.get("/v1/app/points/history", params=params, headers=bearer(member.session))
        ).json()
        points += sum(item["points"] for item in page["items"])
        owed += sum(item["owed_change"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return points, owed


async def step(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    db: Database,
    ledger: Ledger,
    action: str,
    size: int,
) -> None:
    member = ledger.member
    clock.advance(timedelta(seconds=31))  # a fresh member-code step for every sale
    if action == "earn":
        receipt = f"R-{secrets.token_hex(4)}"
        body = sale(size, at=days_ago(clock.now(), 3), code=member.code(clock.now()), receipt=receipt)
        assert (await pos(client, clock, terminal, PURCHASES, body)).status_code == 201
        ledger.sales[receipt] = size
    elif action == "redeem":
        available = (await client.get("/v1/app/points", headers=bearer(member.session))).json()["balances"]
        points = min(size, available["available"])
        if points:
            body = sale(points, at=clock.now(), code=member.code(clock.now()), redeem=points)
            assert (await pos(client, clock, terminal, PURCHASES, body)).status_code == 201
    elif action == "return":
        open_sales = [receipt for receipt, left in ledger.sales.items() if left]
        if open_sales:
            receipt = open_sales[size % len(open_sales)]
            amount = max(1, ledger.sales[receipt] * size // 100)
            body = {
                "refund_receipt_id": f"F-{secrets.token_hex(4)}",
                "original_receipt_id": receipt,
                "refunded_at": clock.now().isoformat(),
                "amount_minor": amount,
            }
            response = await pos(client, clock, terminal, REFUNDS, body)
            assert response.status_code == 201, response.text
            ledger.sales[receipt] -= amount
    else:  # a year on: every lot so far expires; the member logs in again (their token would be old)
        clock.advance(timedelta(days=400))
        await expire_due(db, clock.now())
        ledger.sales.clear()  # too old to return now
        login = await client.post(
            "/v1/app/sessions", json={"email": member.session["member"]["email"], "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        ledger.member = Shopper(login.json())


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
# Always tried: a return after the points were spent (owed), then a sale that repays it; and a stage
# crossed, its bonus spent, and the whole sale returned.
@example(plan=[("earn", 5_000), ("redeem", 100), ("return", 100), ("earn", 8_000)])
@example(plan=[("earn", 120_000), ("redeem", 100), ("return", 100), ("expire", 0), ("earn", 500)])
async def test_history_adds_up_to_the_balance_after_any_sequence(
    client: httpx.AsyncClient, clock: SettableClock, db: Database, plan: list[tuple[str, int]]
) -> None:
    terminal = await register(client, await staff_login(client, db, clock))
    ledger = Ledger(await shopper(client))
    for action, size in plan:
        await step(client, clock, terminal, db, ledger, action, size)
        summary = (await client.get("/v1/app/points", headers=bearer(ledger.member.session))).json()
        balances = summary["balances"]
        points, owed = await history_sums(client, ledger.member)
        assert points == balances["available"] + balances["pending"], (action, size, balances)
        assert owed == balances["owed"], (action, size, balances)
        assert balances["available"] >= 0
        assert balances["owed"] >= 0
