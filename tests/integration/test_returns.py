"""Returns through the HTTP API: what each returned line earned goes back, exactly, within bounds."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.conftest import TEST_PROGRAM, serving
from tests.integration.factories import TerminalCredentials, bearer, staff_login
from tests.integration.problems import assert_problem
from tests.integration.register import Shopper, days_ago, pos, register, sale, shopper

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"


def line(line_no: int, category: str, price: int, quantity: int = 1) -> dict[str, Any]:
    return {
        "line_no": line_no,
        "sku": f"SKU-{line_no}",
        "category": category,
        "quantity": quantity,
        "unit_price_minor": price,
    }


async def buy(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    member: Shopper,
    lines: list[dict[str, Any]],
    receipt: str,
) -> dict[str, Any]:
    total = sum(item["unit_price_minor"] * item["quantity"] for item in lines)
    body = sale(
        total, at=days_ago(clock.now(), 3), code=member.code(clock.now()), receipt=receipt, lines=lines
    )
    response = await pos(client, clock, terminal, PURCHASES, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def give_back(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    receipt: str,
    refund_receipt: str,
    **what: Any,
) -> httpx.Response:
    body = {
        "refund_receipt_id": refund_receipt,
        "original_receipt_id": receipt,
        "refunded_at": clock.now().isoformat(),
        **what,
    }
    return await pos(client, clock, terminal, REFUNDS, body)


async def test_returning_the_only_earning_line_of_a_basket_with_a_voucher_takes_back_all_it_earned(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    basket = [line(1, "gift_voucher", 10_000), line(2, "stationery", 1_000)]
    bought = await buy(client, clock, terminal, member, basket, "R-VOUCHER")
    assert (bought["points_earned"], bought["miles_earned"]) == (10, 1_000)
    returned = await give_back(
        client, clock, terminal, "R-VOUCHER", "F-PEN", lines=[{"line_no": 2, "quantity": 1}]
    )
    assert returned.status_code == 201, returned.text
    assert (returned.json()["points_reversed"], returned.json()["miles_reversed"]) == (10, 1_000)
    summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()
    assert (summary["balances"]["available"], summary["miles_this_period"]) == (0, 0)


async def test_partial_returns_of_a_line_add_up_to_exactly_what_it_earned(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await buy(
        client, clock, terminal, member, [line(1, "kitchen", 1_010, quantity=3)], "R-THREE"
    )  # 30 points
    reversed_each = []
    for n in range(3):
        response = await give_back(
            client, clock, terminal, "R-THREE", f"F-THREE-{n}", lines=[{"line_no": 1, "quantity": 1}]
        )
        assert response.status_code == 201, response.text
        reversed_each.append(response.json()["points_reversed"])
    assert reversed_each == [10, 10, 10]
    assert_problem(
        await give_back(
            client, clock, terminal, "R-THREE", "F-THREE-4", lines=[{"line_no": 1, "quantity": 1}]
        ),
        422,
        "refund_exceeds_sale",
    )


async def test_return_times_are_bounded_like_sale_times(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await buy(client, clock, terminal, member, [line(1, "food", 1_000)], "R-TIME")
    for refunded_at in (
        clock.now() + timedelta(days=150),  # months ahead
        days_ago(clock.now(), 5),  # before the sale, three days ago
        clock.now() - timedelta(days=400),
    ):
        response = await pos(
            client,
            clock,
            terminal,
            REFUNDS,
            {
                "refund_receipt_id": "F-TIME",
                "original_receipt_id": "R-TIME",
                "refunded_at": refunded_at.isoformat(),
                "amount_minor": 100,
            },
        )
        assert_problem(response, 422, "refund_time_out_of_range")


async def test_a_refund_is_either_by_lines_or_by_amount_and_lists_each_line_once(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await buy(client, clock, terminal, member, [line(1, "food", 1_000, quantity=2)], "R-SHAPE")
    both = await give_back(
        client,
        clock,
        terminal,
        "R-SHAPE",
        "F-SHAPE-1",
        lines=[{"line_no": 1, "quantity": 1}],
        amount_minor=100,
    )
    assert_problem(both, 422, "refund_lines_or_amount")
    assert_problem(
        await give_back(client, clock, terminal, "R-SHAPE", "F-SHAPE-2"), 422, "refund_lines_or_amount"
    )
    twice = await give_back(
        client,
        clock,
        terminal,
        "R-SHAPE",
        "F-SHAPE-3",
        lines=[{"line_no": 1, "quantity": 1}, {"line_no": 1, "quantity": 1}],
    )
    assert_problem(twice, 422, "duplicate_line")


async def test_amounts_beyond_32_bits_are_recorded_and_beyond_the_limit_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    bought = await buy(client, clock, terminal, member, [line(1, "furniture", 3_000_000_000)], "R-BIG")
    assert (bought["points_earned"], bought["miles_earned"]) == (30_000_000, 3_000_000_000)
    returned = await give_back(client, clock, terminal, "R-BIG", "F-BIG", amount_minor=2_500_000_000)
    assert returned.status_code == 201, returned.text
    assert returned.json()["miles_reversed"] == 2_500_000_000
    too_big = sale(10**12 + 1, at=clock.now(), lines=[line(1, "food", 10**12 + 1)])
    assert_problem(await pos(client, clock, terminal, PURCHASES, too_big), 400, "validation_failed")


async def test_a_redemption_locks_only_the_lots_it_takes_from(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    for days in (9, 6, 3):
        await buy(client, clock, terminal, member, [line(1, "food", 1_000)], f"R-LOT-{days}")
        clock.advance(timedelta(seconds=31))  # a fresh code step for each sale
    async with db.unit_of_work() as side:  # someone holds the latest-expiring lot
        await side.session.execute(
            text(
                "SELECT id FROM point_lots WHERE member_id = :m ORDER BY expires_at DESC LIMIT 1 FOR UPDATE"
            ),
            {"m": member.session["member"]["id"]},
        )
        spend = sale(5, at=clock.now(), code=member.code(clock.now()), redeem=5)
        response = await asyncio.wait_for(pos(client, clock, terminal, PURCHASES, spend), timeout=5)
        assert response.status_code == 201, response.text


async def test_refund_lookups_use_indexes(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await uow.session.execute(text("SET LOCAL enable_seqscan = off"))
        for query in (
            "SELECT id FROM point_entries WHERE purchase_id = gen_random_uuid()",
            "SELECT id FROM point_lots WHERE purchase_id = gen_random_uuid()",
        ):
            plan = "\n".join((await uow.session.execute(text(f"EXPLAIN {query}"))).scalars())
            assert "Index" in plan, plan
            assert "purchase" in plan, plan


async def test_a_return_posted_as_an_amount_takes_back_what_the_goods_of_that_value_earned(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    """The amount path cannot keep the points of the earning item while the money 'comes off' a voucher."""
    member = await shopper(client)
    basket = [line(1, "gift_voucher", 1_800_000), line(2, "furniture", 200_000)]
    bought = await buy(client, clock, terminal, member, basket, "R-SOFA")
    assert (bought["points_earned"], bought["stages_reached"]) == (2_000, ["silver"])
    returned = await give_back(client, clock, terminal, "R-SOFA", "F-SOFA", amount_minor=200_000)
    assert returned.status_code == 201, returned.text
    assert (returned.json()["points_reversed"], returned.json()["miles_reversed"]) == (2_000, 200_000)
    summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()
    assert (summary["stage"], summary["balances"]["available"]) == ("basic", 0)  # the bonus went back too


async def test_points_given_back_by_a_return_repay_what_is_owed_first_whatever_the_order(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    for order in (("A", "B"), ("B", "A")):
        member = await shopper(client)
        suffix = f"{order[0]}{secrets.token_hex(3)}"
        await buy(client, clock, terminal, member, [line(1, "food", 10_000)], f"R-A-{suffix}")  # 100 points
        clock.advance(timedelta(seconds=31))
        paid = sale(100, at=clock.now(), code=member.code(clock.now()), redeem=100, receipt=f"R-B-{suffix}")
        assert (await pos(client, clock, terminal, PURCHASES, paid)).status_code == 201
        answers = {}
        for which in order:
            answers[which] = await give_back(
                client,
                clock,
                terminal,
                f"R-{which}-{suffix}",
                f"F-{which}-{suffix}",
                lines=[{"line_no": 1, "quantity": 1}],
            )
            assert answers[which].status_code == 201, answers[which].text
        summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()["balances"]
        assert (summary["available"], summary["owed"]) == (0, 0), order
        # Paid entirely with points: the register hands back points, not money.
        assert (answers["B"].json()["points_returned"], answers["B"].json()["money_to_return_minor"]) == (
            100,
            0,
        )
        assert answers["A"].json()["money_to_return_minor"] == 10_000


async def test_money_handed_back_over_partial_returns_adds_up_to_the_money_paid(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    """With a point worth 10 yen: 3 x 5 yen paid with 1 point and 5 yen. Returned one at a time, the
    register hands back 5 yen and 1 point in all, never the point's value twice."""
    program = json.loads(TEST_PROGRAM) | {"earning": {"point_value_minor": 10}}
    with serving(msgspec.structs.replace(settings, points_program=json.dumps(program)), clock) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as other:
            terminal = await register(other, await staff_login(other, db, clock))
            member = await shopper(other)
            await buy(other, clock, terminal, member, [line(1, "food", 10_000)], "R-EARN")  # 100 points
            clock.advance(timedelta(seconds=31))
            paid = sale(15, at=clock.now(), code=member.code(clock.now()), redeem=1, receipt="R-TEN")
            paid["lines"] = [line(1, "food", 5, quantity=3)]
            assert (await pos(other, clock, terminal, PURCHASES, paid)).status_code == 201
            money = points = 0
            for n in range(3):
                answer = await give_back(
                    other, clock, terminal, "R-TEN", f"F-TEN-{n}", lines=[{"line_no": 1, "quantity": 1}]
                )
                assert answer.status_code == 201, answer.text
                money += answer.json()["money_to_return_minor"]
                points += answer.json()["points_returned"]
    assert (money, points) == (5, 1)


async def test_a_return_reports_no_debt_that_its_own_points_given_back_cover(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await buy(client, clock, terminal, member, [line(1, "food", 10_000)], "R-FIRST")  # 100 points
    clock.advance(timedelta(seconds=31))
    # Pays with the 100 points and earns 99 more, which the member then spends too.
    second = sale(
        10_000, at=days_ago(clock.now(), 3), code=member.code(clock.now()), redeem=100, receipt="R-SECOND"
    )
    assert (await pos(client, clock, terminal, PURCHASES, second)).status_code == 201
    clock.advance(timedelta(seconds=31))
    spend = sale(99, at=clock.now(), code=member.code(clock.now()), redeem=99)
    assert (await pos(client, clock, terminal, PURCHASES, spend)).status_code == 201
    answer = await give_back(client, clock, terminal, "R-SECOND", "F-SECOND", amount_minor=3_333)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["points_reversed"], answer.json()["points_returned"]) == (32, 33)
    assert answer.json()["points_owed"] == 0
    assert answer.json()["balances"]["owed"] == 0
    adjusted = await client.get(
        "/v1/app/timeline", params={"kind": "points_adjusted"}, headers=bearer(member.session)
    )
    assert adjusted.json()["items"] == []
