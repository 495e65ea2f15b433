"""Attacks on the rewritten hot paths (issue 12) through the HTTP API: what a hostile register, member or
careless integrator can send, at once or in odd orders, and the ledger's invariants afterwards."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from points.expiry import expire_due
from tests.integration.factories import (
    TerminalCredentials,
    bearer,
    create_store,
    create_terminal,
    signed_headers,
)
from tests.integration.ledger_invariants import broken_invariants
from tests.integration.lock_waits import side_connections, until_waiting
from tests.integration.problems import assert_problem
from tests.integration.register import (
    GINZA,
    Shopper,
    check_in_at_ginza,
    days_ago,
    log_in_again,
    pos,
    posted,
    refund,
    register,
    sale,
    shopper,
)

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"


async def shown_balances(client: httpx.AsyncClient, member: Shopper) -> tuple[int, int]:
    response = await client.get("/v1/app/points", headers=bearer(member.session))
    assert response.status_code == 200, response.text
    balances = response.json()["balances"]
    return int(balances["available"]), int(balances["pending"])


# --- bodies a hostile or careless register sends ------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "status", "code"),
    [
        ("pen\u0000cil", 400, "validation_failed"),  # jsonb (the rows' JSON) cannot hold NUL
        ("文具" * 32, 201, None),  # 64 characters, 192 bytes
        ("🖊️" * 32, 201, None),  # outside the BMP, with variation selectors
    ],
)
async def test_line_labels_that_jsonb_refuses_are_refused_before_the_database(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    label: str,
    status: int,
    code: str | None,
) -> None:
    member = await shopper(client)
    lines = [{"line_no": 1, "sku": label, "category": label, "quantity": 1, "unit_price_minor": 1_000}]
    for scanned in (None, member.code(clock.now())):
        response = await pos(
            client, clock, terminal, PURCHASES, sale(1_000, at=clock.now(), code=scanned, lines=lines)
        )
        if code is None:
            assert response.status_code == status, response.text
        else:
            assert_problem(response, status, code)
    if code is None:  # kept exactly, in the sale's row and on the timeline
        timeline = await client.get(
            "/v1/app/timeline", params={"phase": "buy"}, headers=bearer(member.session)
        )
        purchased = [item for item in timeline.json()["items"] if item["kind"] == "purchased"]
        assert [item["properties"]["categories"] for item in purchased] == [[label]]
    assert await broken_invariants(db, member.session["member"]["id"], clock.now()) == []


async def test_a_lone_surrogate_in_a_label_is_a_malformed_body(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    body = sale(1_000, at=clock.now(), receipt="R-SURROGATE")
    raw = httpx.Request("POST", "/", json=body).content.replace(b'"stationery"', b'"\\ud800"')
    headers = signed_headers(terminal, "POST", PURCHASES, raw, timestamp=int(clock.now().timestamp()))
    headers["Idempotency-Key"] = "surrogate-key-1"
    assert_problem(await client.post(PURCHASES, content=raw, headers=headers), 400, "bad_request")


async def test_a_basket_of_five_hundred_lines_paid_from_a_hundred_lots_is_recorded_whole(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    code = member.code(clock.now())
    earned = await asyncio.gather(
        *(
            pos(client, clock, terminal, PURCHASES, sale(100 + n, at=days_ago(clock.now(), 3), code=code))
            for n in range(100)
        )
    )
    assert {r.status_code for r in earned} == {201}
    available, _ = await shown_balances(client, member)
    assert available == 100
    lines = [
        {
            "line_no": n + 1,
            "sku": f"SKU-{n:05d}-{'x' * 50}",
            "category": f"カテゴリー{n % 60:02d}" + "z" * 40,
            "quantity": 100_000,
            "unit_price_minor": 10,
        }
        for n in range(500)
    ]
    total = 500 * 100_000 * 10
    body = sale(
        total, at=clock.now(), code=member.code(clock.now() + timedelta(seconds=30)), lines=lines, redeem=100
    )
    result = posted(await pos(client, clock, terminal, PURCHASES, body))
    assert result["points_redeemed"] == 100
    assert result["stages_reached"] == ["silver", "gold"]  # 500,000,000 miles: both bonuses, 1,500 points
    assert await shown_balances(client, member) == (1_500, result["points_earned"])
    assert (result["balances"]["available"], result["balances"]["pending"]) == (
        1_500,
        result["points_earned"],
    )
    returned = await pos(
        client, clock, terminal, REFUNDS, refund(body["receipt_id"], clock.now(), amount_minor=total)
    )
    returned_body = posted(returned)
    assert returned_body["points_returned"] == 100
    await expire_due(db, clock.now())
    shown = await shown_balances(client, member)
    assert shown == (100, 0)
    assert (returned_body["balances"]["available"], returned_body["balances"]["pending"]) == shown
    assert await broken_invariants(db, member.session["member"]["id"], clock.now(), shown=shown) == []


# --- other people's things ----------------------------------------------------------------------------


async def test_a_register_cannot_return_another_stores_receipt(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
) -> None:
    other_store = await register(client, admin)
    member = await shopper(client)
    body = sale(5_000, at=days_ago(clock.now(), 3), code=member.code(clock.now()))
    posted(await pos(client, clock, terminal, PURCHASES, body))
    stolen = await pos(
        client, clock, other_store, REFUNDS, refund(body["receipt_id"], clock.now(), amount_minor=5_000)
    )
    assert_problem(stolen, 404, "purchase_not_found")
    assert await shown_balances(client, member) == (50, 0)
    assert await broken_invariants(db, member.session["member"]["id"], clock.now()) == []


# --- at once --------------------------------------------------------------------------------------------


async def test_one_receipt_posted_at_once_by_two_registers_of_a_store_is_recorded_once(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
) -> None:
    second = await create_terminal(client, admin, terminal.store_id, name="Register 2")
    member = await shopper(client)
    code = member.code(clock.now())
    for scanned in (code, None):
        body = sale(2_000, at=days_ago(clock.now(), 3), code=scanned)
        answers = await asyncio.gather(
            *(pos(client, clock, till, PURCHASES, body) for till in [terminal, second] * 5)
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] + [409] * 9, [answer.text for answer in answers]
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"receipt_already_posted"}
    assert await shown_balances(client, member) == (20, 0)
    assert await broken_invariants(db, member.session["member"]["id"], clock.now()) == []


async def test_one_idempotency_key_with_two_bodies_at_once_has_one_effect_and_refuses_the_other(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    code = member.code(clock.now())
    bodies = [sale(1_000 * (n + 1), at=clock.now(), code=code) for n in range(2)]
    answers = await asyncio.gather(
        *(pos(client, clock, terminal, PURCHASES, bodies[n % 2], key="one-key-two-bodies") for n in range(20))
    )
    created = [answer for answer in answers if answer.status_code == 201]
    refused = [answer for answer in answers if answer.status_code != 201]
    assert len({answer.text for answer in created}) == 1
    assert {answer.status_code for answer in refused} == {422}
    assert {answer.json()["code"] for answer in refused} == {"idempotency_key_reused"}
    assert await shown_balances(client, member) == (0, created[0].json()["points_earned"])
    assert await broken_invariants(db, member.session["member"]["id"], clock.now()) == []


async def test_an_idempotency_key_past_its_lifetime_is_free_for_a_new_request(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    first = sale(1_000, at=clock.now())
    assert (
        await pos(client, clock, terminal, PURCHASES, first, key="reused-after-a-week")
    ).status_code == 201
    clock.advance(timedelta(days=7, seconds=1))  # the default lifetime is 7 days
    second = sale(3_000, at=clock.now())
    again = await asyncio.gather(
        *(pos(client, clock, terminal, PURCHASES, second, key="reused-after-a-week") for _ in range(6))
    )
    assert [answer.status_code for answer in again] == [201] * 6, [answer.text for answer in again]
    assert len({answer.json()["purchase_id"] for answer in again}) == 1
    assert sum(answer.headers.get("idempotent-replayed") == "true" for answer in again) == 5
    stale = await pos(client, clock, terminal, PURCHASES, first, key="reused-after-a-week")
    assert_problem(stale, 422, "idempotency_key_reused")


async def test_concurrent_redemptions_with_every_code_a_member_can_show_never_overdraw(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
) -> None:
    """Three codes of each of three phones are valid at once (one step of skew either way), at two stores."""
    other_store = await register(client, admin)
    member = await shopper(client)
    phones = [member, await log_in_again(client, member), await log_in_again(client, member)]
    for _ in range(4):
        body = sale(2_500, at=days_ago(clock.now(), 3), code=member.code(clock.now()))
        posted(await pos(client, clock, terminal, PURCHASES, body))
    assert await shown_balances(client, member) == (100, 0)
    codes = [phone.code(clock.now() + timedelta(seconds=30 * k)) for phone in phones for k in (-1, 0, 1)]
    assert len(set(codes)) == 9
    answers = await asyncio.gather(
        *(
            pos(client, clock, till, PURCHASES, sale(1_000, at=clock.now(), code=code, redeem=30))
            for code in codes
            for till in (terminal, other_store)
        )
    )
    redeemed = [answer.json() for answer in answers if answer.status_code == 201]
    assert len(redeemed) == 3, [answer.text for answer in answers]
    refused = {answer.json()["code"] for answer in answers if answer.status_code != 201}
    assert refused <= {"insufficient_points", "member_code_used_elsewhere", "member_code_already_redeemed"}
    shown = await shown_balances(client, member)
    assert shown == (10, sum(sold["points_earned"] for sold in redeemed))
    assert await broken_invariants(db, member.session["member"]["id"], clock.now(), shown=shown) == []


async def test_sales_returns_expiry_and_a_check_in_racing_on_one_member_keep_the_ledger_whole(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
) -> None:
    second = await create_terminal(client, admin, terminal.store_id, name="Register 2")
    member = await shopper(client)
    old = [sale(3_000, at=days_ago(clock.now(), 3), code=member.code(clock.now())) for _ in range(4)]
    for body in old:
        posted(await pos(client, clock, terminal, PURCHASES, body))
    clock.advance(timedelta(days=363))  # the old sales' points (a year from the sale) are now past due
    now = clock.now()
    phone = await log_in_again(client, member)
    for _ in range(3):
        fresh = sale(5_000, at=days_ago(now, 3), code=member.code(now))
        posted(await pos(client, clock, terminal, PURCHASES, fresh))
    big = sale(100_000, at=now, code=member.code(now))
    silver = posted(await pos(client, clock, terminal, PURCHASES, big))
    assert silver["stages_reached"] == ["silver"]
    assert await shown_balances(client, phone) == (650, 1_000)  # 3 x 50 + the 500 bonus; 1,000 pending

    codes = [member.code(now + timedelta(seconds=30 * k)) for k in (-1, 0, 1)]
    racing = [
        *(
            pos(client, clock, terminal, PURCHASES, sale(300, at=now, code=code, redeem=250))
            for code in codes
        ),
        pos(client, clock, second, PURCHASES, sale(2_000, at=now, code=phone.code(now))),
        pos(client, clock, second, REFUNDS, refund(big["receipt_id"], now, amount_minor=100_000)),
        *(
            pos(client, clock, second, REFUNDS, refund(body["receipt_id"], now, amount_minor=3_000))
            for body in old[:2]
        ),
        check_in_at_ginza(client, phone, terminal.store_id, clock),
    ]
    answers, _ = await asyncio.gather(asyncio.gather(*racing), expire_due(db, now))
    statuses = [answer.status_code for answer in answers]
    assert set(statuses[:3]) <= {201, 422}, [answer.text for answer in answers[:3]]
    assert statuses[3:] == [201, 201, 201, 201, 200], [answer.text for answer in answers[3:]]
    await expire_due(db, now)
    shown = await shown_balances(client, phone)
    assert (
        await broken_invariants(db, member.session["member"]["id"], now, shown=shown, silver_at=100_000) == []
    )


async def test_concurrent_full_returns_of_one_sale_from_two_registers_return_it_once(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
) -> None:
    second = await create_terminal(client, admin, terminal.store_id, name="Register 2")
    member = await shopper(client)
    posted(
        await pos(
            client,
            clock,
            terminal,
            PURCHASES,
            sale(4_000, at=days_ago(clock.now(), 3), code=member.code(clock.now())),
        )
    )
    body = sale(6_000, at=days_ago(clock.now(), 3), code=member.code(clock.now()), redeem=30)
    posted(await pos(client, clock, terminal, PURCHASES, body))
    answers = await asyncio.gather(
        *(
            pos(client, clock, till, REFUNDS, refund(body["receipt_id"], clock.now(), **what))
            for till in (terminal, second)
            for what in (
                {"amount_minor": 6_000},
                {"lines": [{"line_no": 1, "quantity": 1}]},
                {"amount_minor": 3_500},
            )
        )
    )
    done = [answer.json() for answer in answers if answer.status_code == 201]
    assert sum(returned["amount_minor"] for returned in done) <= 6_000, [a.text for a in answers]
    assert {answer.status_code for answer in answers} <= {201, 409, 422}, [a.text for a in answers]
    shown = await shown_balances(client, member)
    last = max(done, key=lambda returned: returned["refunded_total_minor"])
    assert (last["balances"]["available"], last["balances"]["pending"]) == shown
    assert await broken_invariants(db, member.session["member"]["id"], clock.now(), shown=shown) == []


async def test_a_sale_a_few_minutes_ahead_across_the_yearly_reset_counts_in_the_new_period(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    """Registers run up to five minutes fast: two minutes before the reset (1 April, 00:00 Tokyo) a sale
    stamped after it earns its miles, and its stage bonus, in the period that has not started yet."""
    tokyo = ZoneInfo("Asia/Tokyo")
    clock.set(datetime(2027, 3, 31, 23, 58, tzinfo=tokyo))
    member = await shopper(client)
    ahead = sale(100_000, at=datetime(2027, 4, 1, 0, 2, tzinfo=tokyo), code=member.code(clock.now()))
    result = posted(await pos(client, clock, terminal, PURCHASES, ahead))
    assert (result["stages_reached"], result["member"]["stage"]) == (["silver"], "basic")
    behind = sale(
        1_000, at=datetime(2027, 3, 31, 23, 57, 59, 999_999, tzinfo=tokyo), code=member.code(clock.now())
    )
    posted(await pos(client, clock, terminal, PURCHASES, behind))
    clock.set(datetime(2027, 4, 1, 0, 5, tzinfo=tokyo))
    summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()
    assert (summary["miles_this_period"], summary["stage"]) == (100_000, "silver")
    returned = await pos(
        client, clock, terminal, REFUNDS, refund(behind["receipt_id"], clock.now(), amount_minor=1_000)
    )
    assert posted(returned)["miles_reversed"] == 1_000
    returned = await pos(
        client, clock, terminal, REFUNDS, refund(ahead["receipt_id"], clock.now(), amount_minor=1)
    )
    assert posted(returned)["miles_reversed"] == 1
    summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()
    assert (summary["miles_this_period"], summary["stage"]) == (99_999, "basic")
    shown = (summary["balances"]["available"], summary["balances"]["pending"])
    assert shown == (0, 1_000)  # the bonus taken back; a 1 yen return takes back no point
    assert (
        await broken_invariants(
            db, member.session["member"]["id"], clock.now(), shown=shown, silver_at=100_000
        )
        == []
    )


async def test_a_sale_stuck_behind_its_members_lock_outlives_the_key_claims_wait_limit(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, settings: Settings
) -> None:
    """The claim waits at most 10 s for a concurrent holder of its key, and only the claim: the first
    attempt, held 10 s and more by its member's lock, still goes through, while its retry meanwhile
    is told to come back; a retry afterwards gets its answer."""
    member = await shopper(client)
    body = sale(2_000, at=clock.now(), code=member.code(clock.now()))
    async with side_connections(settings) as side, side.connect() as holder:
        await holder.execute(  # the member's account, created and held by a transaction still open
            text("INSERT INTO point_accounts VALUES (:m, 0, 0, 0, 0, now())"),
            {"m": member.session["member"]["id"]},
        )
        first = asyncio.create_task(pos(client, clock, terminal, PURCHASES, body, key="held-by-its-member"))
        await until_waiting(side, "%WITH holder AS%")  # the sale's statement that locks the account
        retry = await pos(client, clock, terminal, PURCHASES, body, key="held-by-its-member")
        assert_problem(retry, 409, "request_in_progress")
        await holder.rollback()
    answer = await first
    assert answer.status_code == 201, answer.text
    again = await pos(client, clock, terminal, PURCHASES, body, key="held-by-its-member")
    assert (again.status_code, again.headers.get("idempotent-replayed"), again.text) == (
        201,
        "true",
        answer.text,
    )


async def test_check_ins_at_many_stores_at_once_reward_no_more_than_the_daily_number(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    """Seven stores share a street corner; a member taps them all at once (the default: five rewarded)."""
    stores = [
        await create_store(client, admin, latitude=GINZA[0], longitude=GINZA[1] + n * 1e-5) for n in range(7)
    ]
    member = await shopper(client)
    answers = await asyncio.gather(
        *(check_in_at_ginza(client, member, store["id"], clock) for store in stores)
    )
    assert [answer.status_code for answer in answers] == [200] * 7, [answer.text for answer in answers]
    withheld = sorted(str(answer.json()["reward_withheld"]) for answer in answers)
    assert withheld == ["None"] * 5 + ["daily_cap_reached"] * 2
    summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()
    assert summary["miles_this_period"] == 5 * 20
    assert await broken_invariants(db, member.session["member"]["id"], clock.now()) == []


async def test_a_sale_and_a_check_in_crossing_a_stage_at_once_pay_its_bonus_once(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    near = sale(99_990, at=days_ago(clock.now(), 3), code=member.code(clock.now()))
    posted(await pos(client, clock, terminal, PURCHASES, near))
    crossing = sale(50, at=clock.now(), code=member.code(clock.now()))
    sold, checked_in = await asyncio.gather(
        pos(client, clock, terminal, PURCHASES, crossing),
        check_in_at_ginza(client, member, terminal.store_id, clock),
    )
    assert (sold.status_code, checked_in.status_code) == (201, 200), (sold.text, checked_in.text)
    async with db.unit_of_work() as uow:
        bonuses = await uow.session.execute(
            text("SELECT count(*) FROM point_entries WHERE member_id = :m AND kind = 'bonus'"),
            {"m": member.session["member"]["id"]},
        )
        assert bonuses.scalar_one() == 1
    summary = (await client.get("/v1/app/points", headers=bearer(member.session))).json()
    assert (summary["miles_this_period"], summary["stage"]) == (99_990 + 50 + 20, "silver")
    shown = (summary["balances"]["available"], summary["balances"]["pending"])
    assert (
        await broken_invariants(
            db, member.session["member"]["id"], clock.now(), shown=shown, silver_at=100_000
        )
        == []
    )


class _Till:
    """A register's random walk over one member's sales, returns, expiry and the passing of time."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        terminal: TerminalCredentials,
        clock: SettableClock,
        db: Database,
        seed: int,
    ) -> None:
        self.client, self.terminal, self.clock, self.db = client, terminal, clock, db
        self.random = random.Random(seed)
        self.sales: list[dict[str, Any]] = []
        self.phones: list[Shopper] = []
        self.paid_with: set[str] = set()  # codes that paid with points (once each)
        self.logins = 0

    def code(self, *, redeeming: bool) -> str | None:
        now = self.clock.now()
        codes = [p.code(now + timedelta(seconds=30 * k)) for p in self.phones for k in (-1, 0, 1)]
        free = [code for code in codes if code not in self.paid_with] if redeeming else codes
        return self.random.choice(free) if free else None

    async def buy(self) -> httpx.Response:
        total = self.random.choice([50, 999, 3_000, 12_345, 60_000])
        redeem = self.random.choice([0, 0, 1, 30, 200, total])
        code = self.code(redeeming=redeem > 0)
        if code is None:
            redeem, code = 0, self.code(redeeming=False)
        at = self.clock.now() - timedelta(days=self.random.choice([0, 0, 1, 3, 29]))
        body = sale(total, at=at, code=code, redeem=redeem)
        if redeem:
            assert code is not None
            self.paid_with.add(code)
        response = await pos(self.client, self.clock, self.terminal, PURCHASES, body)
        if response.status_code == 201:
            self.sales.append(body)
        return response

    async def give_back(self) -> httpx.Response:
        if not self.sales:
            return await self.buy()
        body = self.random.choice(self.sales)
        what: dict[str, Any] = (
            {"lines": [{"line_no": 1, "quantity": 1}]}
            if self.random.random() < 0.3
            else {"amount_minor": max(1, int(body["total_minor"] * self.random.choice([0.01, 0.3, 0.5, 1])))}
        )
        return await pos(
            self.client,
            self.clock,
            self.terminal,
            REFUNDS,
            refund(body["receipt_id"], self.clock.now(), **what),
        )

    async def step(self) -> list[httpx.Response]:
        roll = self.random.random()
        if roll < 0.1 and self.logins < 8:  # the login limit is 10 attempts per account and window
            self.logins += 1
            self.clock.advance(timedelta(days=self.random.choice([1, 40, 200, 370])))
            # Sessions lapse after a day: a new login for the reads (codes need none).
            self.phones = [*self.phones[-1:], await log_in_again(self.client, self.phones[0])]
            self.paid_with.clear()
            return []
        if roll < 0.2:
            await expire_due(self.db, self.clock.now())
            return []
        operations = [self.buy, self.buy, self.give_back]
        batch = [self.random.choice(operations)() for _ in range(self.random.choice([1, 1, 3]))]
        return list(await asyncio.gather(*batch))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_walks_of_sales_returns_expiry_and_time_keep_the_ledger_whole(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database, seed: int
) -> None:
    till = _Till(client, terminal, clock, db, seed)
    member = await shopper(client)
    till.phones = [member, await log_in_again(client, member)]
    allowed = {
        "insufficient_points",
        "refund_exceeds_sale",
        "member_code_already_redeemed",
        "redemption_exceeds_total",
    }
    for number in range(40):
        for response in await till.step():
            if response.status_code >= 400:
                assert response.json()["code"] in allowed, (number, response.text)
        await expire_due(db, clock.now())
        shown = await shown_balances(client, till.phones[-1])
        broken = await broken_invariants(
            db, member.session["member"]["id"], clock.now(), shown=shown, silver_at=100_000
        )
        assert broken == [], (seed, number)
