"""OWASP API6:2023 Unrestricted access to sensitive business flows: the flows that hand out value (points
for purchases and check-ins, accounts to earn them with) cannot be run in a loop for profit.

Here: refund cycling (buy, spend the points, return the purchase, again) gains at most the one
redemption already made, carried as a debt that every later earning repays first; and a burst of
sign-ups from one place makes no more accounts than the per-address limit allows
(test_owasp_unrestricted_resource_consumption.py::test_a_burst_of_sign_ups_from_one_address_creates_no_more_accounts_than_the_limit).

Proved elsewhere and not repeated: check-in farming, by impossible travel
(test_check_ins.py::test_impossible_travel_tokyo_to_osaka), once per store and local day, concurrently
(test_check_ins.py::test_concurrent_duplicate_check_ins_reward_once), a daily cap on rewarded stores, also
at once (test_check_ins.py::test_daily_cap_on_rewarded_stores,
test_hot_path_attacks.py::test_check_ins_at_many_stores_at_once_reward_no_more_than_the_daily_number);
member codes paying with points once, concurrently
(test_hot_path_attacks.py::test_concurrent_redemptions_with_every_code_a_member_can_show_never_overdraw);
returns handing back points, not money, for what points paid
(test_returns.py::test_points_given_back_by_a_return_repay_what_is_owed_first_whatever_the_order); random
walks of sales, returns and expiry keeping the ledger whole (test_hot_path_attacks.py); an offer's budget
under concurrent sales (test_offers_loop.py::test_concurrent_sales_never_overspend_an_offer_s_budget).
"""

from __future__ import annotations

from typing import Any

import httpx

from domain.clock import SettableClock
from infra.db import Database
from tests.integration.factories import TerminalCredentials, bearer
from tests.integration.ledger_invariants import broken_invariants
from tests.integration.register import Shopper, days_ago, pos, posted, refund, sale, shopper

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"
CYCLES = 4


async def balances(client: httpx.AsyncClient, member: Shopper) -> dict[str, int]:
    summary = await client.get("/v1/app/points", headers=bearer(member.session))
    assert summary.status_code == 200, summary.text
    found: dict[str, int] = summary.json()["balances"]
    return found


async def earn(
    client: httpx.AsyncClient, clock: SettableClock, terminal: TerminalCredentials, member: Shopper
) -> dict[str, Any]:
    """A 10,000 yen purchase three days ago: its points are spendable now (two days pending)."""
    body = sale(10_000, at=days_ago(clock.now(), 3), code=member.code(clock.now()))
    return posted(await pos(client, clock, terminal, PURCHASES, body))


async def test_refund_cycling_gains_no_more_than_the_first_redemption_and_leaves_it_owed(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    redeemed_in_cycle: list[int] = []
    for _ in range(CYCLES):
        bought = await earn(client, clock, terminal, member)
        available = (await balances(client, member))["available"]
        if available:
            spend = sale(available, at=clock.now(), code=member.code(clock.now()), redeem=available)
            redeemed_in_cycle.append(
                posted(await pos(client, clock, terminal, PURCHASES, spend))["points_redeemed"]
            )
        else:
            redeemed_in_cycle.append(0)
        returned = await pos(
            client,
            clock,
            terminal,
            REFUNDS,
            refund(bought["receipt_id"], clock.now(), amount_minor=10_000),
        )
        assert returned.status_code == 201, returned.text
        assert returned.json()["money_to_return_minor"] == 10_000

    first = redeemed_in_cycle[0]
    assert first > 0
    # Every later purchase's points went to the debt, so there was never anything to spend again.
    assert redeemed_in_cycle[1:] == [0] * (CYCLES - 1)
    after = await balances(client, member)
    assert (after["available"], after["owed"]) == (0, first)

    kept = await earn(client, clock, terminal, member)
    assert kept["points_repaid"] == min(kept["points_earned"], first)
    final = await balances(client, member)
    assert final["available"] + final["pending"] == kept["points_earned"] - kept["points_repaid"]
    assert final["owed"] == first - kept["points_repaid"]
    shown = (final["available"], final["pending"])
    assert await broken_invariants(db, member.session["member"]["id"], clock.now(), shown=shown) == []
