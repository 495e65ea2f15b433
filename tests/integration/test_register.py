"""The register through the HTTP API: member codes, purchases, redemptions, refunds, idempotency."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select, text

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from points.expiry import expire_due
from points.tables import EntryKind, PointEntry, Purchase
from tests.conftest import TEST_PROGRAM, serving
from tests.integration.factories import PASSWORD, TerminalCredentials, bearer, signed_headers
from tests.integration.problems import assert_problem
from tests.integration.register import Shopper, days_ago, pos, register, sale, shopper

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"
RESOLVE = "/v1/pos/members/resolve"


async def count(db: Database, *conditions: Any, table: Any = PointEntry) -> int:
    async with db.unit_of_work() as uow:
        return int(
            (
                await uow.session.execute(select(func.count()).select_from(table).where(*conditions))
            ).scalar_one()
        )


async def points(client: httpx.AsyncClient, member: Shopper) -> dict[str, Any]:
    response = await client.get("/v1/app/points", headers=bearer(member.session))
    assert response.status_code == 200, response.text
    summary: dict[str, Any] = response.json()
    return summary


async def log_in_again(client: httpx.AsyncClient, member: Shopper) -> Shopper:
    response = await client.post(
        "/v1/app/sessions", json={"email": member.session["member"]["email"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return Shopper(response.json())


async def earn(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    member: Shopper,
    clock: SettableClock,
    total: int,
    *,
    days: float = 3,
    receipt: str | None = None,
) -> dict[str, Any]:
    """A sale far enough back (within late posting) that its points are already spendable."""
    body = sale(total, at=days_ago(clock.now(), days), code=member.code(clock.now()), receipt=receipt)
    response = await pos(client, clock, terminal, PURCHASES, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_member_code_rotates_and_verifies_with_one_step_of_skew(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    online = await client.get("/v1/app/member-code", headers=bearer(member.session))
    assert online.status_code == 200, online.text
    shown = online.json()
    assert shown["code"] == member.code(clock.now())  # the app computes the same code offline
    assert shown["qr_svg"].startswith("<svg")
    assert shown["code128_svg"].lstrip().startswith("<svg")
    resolved = await pos(client, clock, terminal, RESOLVE, {"code": shown["code"]})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["member"] == {
        "card_number": member.card_number,
        "display_initial": "H",
        "stage": "basic",
    }

    clock.advance(timedelta(seconds=30))
    assert (await pos(client, clock, terminal, RESOLVE, {"code": shown["code"]})).status_code == 200
    assert (await client.get("/v1/app/member-code", headers=bearer(member.session))).json()["code"] != shown[
        "code"
    ]
    clock.advance(timedelta(seconds=31))  # a screenshot shown a minute later
    assert_problem(
        await pos(client, clock, terminal, RESOLVE, {"code": shown["code"]}), 422, "invalid_member_code"
    )


async def test_bad_and_static_codes(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    code = member.code(clock.now())
    tampered = code[:-1] + str((int(code[-1]) + 1) % 10)
    for bad in (tampered, "hello", "1234"):
        assert_problem(await pos(client, clock, terminal, RESOLVE, {"code": bad}), 422, "invalid_member_code")
    static = await pos(client, clock, terminal, RESOLVE, {"code": member.card_number})
    assert_problem(static, 422, "static_card_not_allowed")


async def test_revoked_device_codes_fail(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    second_phone = await client.post(
        "/v1/app/sessions",
        json={"email": member.session["member"]["email"], "password": "correct horse battery"},
    )
    phone = Shopper(second_phone.json())
    assert phone.session["device"]["slot"] != member.session["device"]["slot"]
    revoked = await client.delete(
        f"/v1/app/devices/{phone.session['device']['slot']}", headers=bearer(member.session)
    )
    assert revoked.status_code == 204
    assert_problem(
        await pos(client, clock, terminal, RESOLVE, {"code": phone.code(clock.now())}),
        422,
        "invalid_member_code",
    )
    assert (
        await pos(client, clock, terminal, RESOLVE, {"code": member.code(clock.now())})
    ).status_code == 200
    # Logging out revokes that login's device too.
    await client.post(
        "/v1/app/sessions/logout",
        json={"refresh_token": member.session["tokens"]["refresh_token"]},
        headers=bearer(member.session),
    )
    assert_problem(
        await pos(client, clock, terminal, RESOLVE, {"code": member.code(clock.now())}),
        422,
        "invalid_member_code",
    )


async def test_purchase_earns_points_and_miles_and_lands_on_the_timeline(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    lines = [
        {"line_no": 1, "sku": "A", "category": "stationery", "quantity": 2, "unit_price_minor": 1_500},
        {"line_no": 2, "sku": "BAG", "category": "bag", "quantity": 1, "unit_price_minor": 5},
        {
            "line_no": 3,
            "sku": "C",
            "category": "food",
            "quantity": 1,
            "unit_price_minor": 1_000,
            "discount_minor": 100,
        },
    ]
    body = sale(3_905, at=clock.now(), code=member.code(clock.now()), lines=lines)
    response = await pos(client, clock, terminal, PURCHASES, body)
    assert response.status_code == 201, response.text
    result = response.json()
    # 3,000 + 900 earn (the 5 yen bag does not): 39 points at 1 per 100 yen; 3,900 miles at 1 per yen.
    assert (result["points_earned"], result["miles_earned"], result["points_redeemed"]) == (39, 3_900, 0)
    assert {rule["rule"] for rule in result["award"]} >= {"base_rate", "non_earning_line"}
    assert result["balances"] == {"available": 0, "pending": 39, "owed": 0, "lifetime_earned": 39}
    summary = await points(client, member)
    assert (summary["balances"]["pending"], summary["miles_this_period"], summary["stage"]) == (
        39,
        3_900,
        "basic",
    )
    assert summary["next_stage"] == {"stage": "silver", "miles_missing": 100_000 - 3_900}
    timeline = await client.get("/v1/app/timeline", params={"phase": "buy"}, headers=bearer(member.session))
    kinds = {item["kind"]: item for item in timeline.json()["items"]}
    assert set(kinds) == {"purchased", "points_earned"}
    assert kinds["purchased"]["properties"]["amount_minor"] == 3_905
    assert kinds["points_earned"]["properties"]["points"] == 39
    assert any("bag" in rule for rule in kinds["points_earned"]["properties"]["rules"])


async def test_anonymous_sale_is_recorded_for_the_store(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
) -> None:
    response = await pos(client, clock, terminal, PURCHASES, sale(1_200, at=clock.now()))
    assert response.status_code == 201, response.text
    assert (response.json()["member"], response.json()["points_earned"]) == (None, 0)
    activity = await client.get(f"/v1/console/stores/{terminal.store_id}/activity", headers=bearer(admin))
    assert [item["kind"] for item in activity.json()["items"]] == ["purchased"]
    assert await count(db, table=PointEntry) == 0


async def test_sale_validation(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    now = clock.now()
    cases = [
        (sale(1_000, at=now) | {"total_minor": 999}, 422, "total_mismatch"),
        (sale(1_000, at=now) | {"currency": "USD"}, 422, "currency_not_supported"),
        (sale(1_000, at=now + timedelta(hours=1)), 422, "sale_time_out_of_range"),
        (sale(1_000, at=now - timedelta(days=31)), 422, "sale_time_out_of_range"),
        (sale(1_000, at=now, redeem=10), 422, "redemption_needs_member"),
        (sale(1_000, at=now, code=member.code(now), redeem=1_001), 422, "redemption_exceeds_total"),
        (sale(1_000, at=now) | {"lines": []}, 400, "validation_failed"),
        (sale(1_000, at=now) | {"total_minor": 10.5}, 400, "validation_failed"),
        (sale(1_000, at=now) | {"sold_at": "2026-11-23T10:00:00"}, 400, "validation_failed"),
    ]
    for body, status, code in cases:
        assert_problem(await pos(client, clock, terminal, PURCHASES, body), status, code)
    assert await count(db, table=Purchase) == 0


async def test_writes_need_an_idempotency_key_and_a_valid_signature(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    body = sale(1_000, at=clock.now())
    unkeyed = await client.post(PURCHASES, json=body)
    assert_problem(unkeyed, 401, "pos_signature_missing")
    raw = json.dumps(body).encode()
    no_key = await client.post(
        PURCHASES, content=raw, headers=signed_headers(terminal, "POST", PURCHASES, raw)
    )
    assert_problem(no_key, 400, "idempotency_key_required")
    forged = signed_headers(terminal, "POST", PURCHASES, raw, secret="ts_wrong") | {
        "Idempotency-Key": "key-123456"
    }
    assert_problem(await client.post(PURCHASES, content=raw, headers=forged), 401, "pos_signature_invalid")
    assert await count(db, table=Purchase) == 0


async def test_retry_returns_the_stored_response_and_a_changed_body_is_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    body = sale(2_000, at=clock.now(), code=member.code(clock.now()))
    first = await pos(client, clock, terminal, PURCHASES, body, key="purchase-0001")
    retry = await pos(client, clock, terminal, PURCHASES, body, key="purchase-0001")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    changed = await pos(
        client, clock, terminal, PURCHASES, body | {"total_minor": 2_001}, key="purchase-0001"
    )
    assert_problem(changed, 422, "idempotency_key_reused")
    same_receipt = await pos(client, clock, terminal, PURCHASES, body, key="purchase-0002")
    assert_problem(same_receipt, 409, "receipt_already_posted")
    assert await count(db, PointEntry.kind == EntryKind.EARN) == 1


async def test_hundred_concurrent_identical_posts_have_one_effect(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    body = sale(5_000, at=clock.now(), code=member.code(clock.now()))
    now = int(clock.now().timestamp())
    # Each attempt is signed anew (as a retrying POS does), so only the Idempotency-Key ties them.
    responses = await asyncio.gather(
        *(
            pos(client, clock, terminal, PURCHASES, body, key="same-sale-key", timestamp=now - n)
            for n in range(100)
        )
    )
    assert [r.status_code for r in responses] == [201] * 100, {
        r.text for r in responses if r.status_code != 201
    }
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 99
    assert await count(db, table=Purchase) == 1
    assert await count(db, PointEntry.kind == EntryKind.EARN) == 1
    assert (await points(client, member))["balances"]["lifetime_earned"] == 50


async def test_two_hundred_concurrent_redemptions_against_fifty_points(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    settings: Settings,
) -> None:
    """The ledger alone keeps the balance from going negative: redeemed here with the printed card
    number (allowed by this program), which a code's one-redemption rule does not limit."""
    member = await shopper(client)
    await earn(client, terminal, member, clock, 5_000)
    assert (await points(client, member))["balances"]["available"] == 50
    program = json.loads(TEST_PROGRAM) | {"allow_static_card_numbers": True}
    with serving(msgspec.structs.replace(settings, points_program=json.dumps(program)), clock) as url:
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as other:
            responses = await asyncio.gather(
                *(
                    pos(
                        other,
                        clock,
                        terminal,
                        PURCHASES,
                        sale(100, at=clock.now(), code=member.card_number, redeem=1),
                    )
                    for _ in range(200)
                )
            )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 50, {r.text for r in responses if r.status_code not in {201, 422}}
    assert statuses.count(422) == 150
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"insufficient_points"}
    assert (await points(client, member))["balances"]["available"] == 0
    assert await count(db, PointEntry.kind == EntryKind.REDEEM) == 50


async def test_one_code_pays_with_points_once_even_when_photographed_and_sent_at_once(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    await earn(client, terminal, member, clock, 5_000)
    code = member.code(clock.now())
    responses = await asyncio.gather(
        *(
            pos(client, clock, terminal, PURCHASES, sale(100, at=clock.now(), code=code, redeem=5))
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, {r.text for r in responses}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"member_code_already_redeemed"}
    assert (await points(client, member))["balances"]["available"] == 45
    fresh = member.code(clock.now() + timedelta(seconds=30))  # the next step's code pays again
    clock.advance(timedelta(seconds=30))
    again = await pos(client, clock, terminal, PURCHASES, sale(100, at=clock.now(), code=fresh, redeem=5))
    assert again.status_code == 201, again.text


async def test_concurrent_sales_earning_with_one_code_at_one_store_all_count(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    code = member.code(clock.now())
    responses = await asyncio.gather(
        *(
            pos(client, clock, terminal, PURCHASES, sale(1_000, at=days_ago(clock.now(), 3), code=code))
            for _ in range(10)
        )
    )
    assert [r.status_code for r in responses] == [201] * 10, {r.text for r in responses}
    assert await count(db, PointEntry.kind == EntryKind.EARN) == 10
    assert (await points(client, member))["balances"]["available"] == 100


async def test_member_code_cannot_be_used_at_another_store_meanwhile(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any], clock: SettableClock
) -> None:
    other_store = await register(client, admin, "OSA-UMEDA")
    member = await shopper(client)
    code = member.code(clock.now())
    assert (
        await pos(client, clock, terminal, PURCHASES, sale(500, at=clock.now(), code=code))
    ).status_code == 201
    assert (
        await pos(client, clock, terminal, PURCHASES, sale(700, at=clock.now(), code=code))
    ).status_code == 201
    elsewhere = await pos(client, clock, other_store, PURCHASES, sale(800, at=clock.now(), code=code))
    assert_problem(elsewhere, 409, "member_code_used_elsewhere")
    clock.advance(timedelta(seconds=61))
    fresh = member.code(clock.now())
    assert (
        await pos(client, clock, other_store, PURCHASES, sale(800, at=clock.now(), code=fresh))
    ).status_code == 201


async def test_partial_refunds_reverse_proportionally_and_add_up(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await earn(client, terminal, member, clock, 1_000, days=4)  # 10 points to redeem
    lines = [
        {"line_no": 1, "sku": "A", "category": "stationery", "quantity": 3, "unit_price_minor": 1_000},
        {"line_no": 2, "sku": "B", "category": "home", "quantity": 1, "unit_price_minor": 7_000},
    ]
    body = sale(
        10_000,
        at=days_ago(clock.now(), 3),
        code=member.code(clock.now()),
        redeem=10,
        lines=lines,
        receipt="R-REFUND-1",
    )
    bought = (await pos(client, clock, terminal, PURCHASES, body)).json()
    assert (bought["points_earned"], bought["miles_earned"]) == (99, 9_990)  # 10 yen paid with points
    one_item = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-1",
            "original_receipt_id": "R-REFUND-1",
            "refunded_at": clock.now().isoformat(),
            "lines": [{"line_no": 1, "quantity": 1}],
        },
    )
    assert one_item.status_code == 201, one_item.text
    first = one_item.json()
    # 1,000 of 10,000 refunded: floor(99 * 0.1) = 9 points, 999 miles reversed, 1 of 10 redeemed points back.
    assert (
        first["amount_minor"],
        first["points_reversed"],
        first["miles_reversed"],
        first["points_returned"],
    ) == (1_000, 9, 999, 1)
    too_much = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-2",
            "original_receipt_id": "R-REFUND-1",
            "refunded_at": clock.now().isoformat(),
            "amount_minor": 9_001,
        },
    )
    assert_problem(too_much, 422, "refund_exceeds_sale")
    too_many = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-3",
            "original_receipt_id": "R-REFUND-1",
            "refunded_at": clock.now().isoformat(),
            "lines": [{"line_no": 1, "quantity": 3}],
        },
    )
    assert_problem(too_many, 422, "refund_exceeds_sale")
    rest = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-4",
            "original_receipt_id": "R-REFUND-1",
            "refunded_at": clock.now().isoformat(),
            "amount_minor": 9_000,
        },
    )
    second = rest.json()
    assert second["refunded_total_minor"] == 10_000
    assert first["points_reversed"] + second["points_reversed"] == 99
    assert first["miles_reversed"] + second["miles_reversed"] == 9_990
    assert first["points_returned"] + second["points_returned"] == 10
    assert (await points(client, member))["miles_this_period"] == 1_000  # only the first sale's miles remain
    missing = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-5",
            "original_receipt_id": "NOPE",
            "refunded_at": clock.now().isoformat(),
            "amount_minor": 1,
        },
    )
    assert_problem(missing, 404, "purchase_not_found")


async def test_refund_after_the_points_were_spent_leaves_a_visible_debt_repaid_first(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await earn(client, terminal, member, clock, 5_000, receipt="R-DEBT")  # 50 points
    spend = await pos(
        client, clock, terminal, PURCHASES, sale(50, at=clock.now(), code=member.code(clock.now()), redeem=50)
    )
    assert spend.status_code == 201, spend.text
    refund = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-DEBT",
            "original_receipt_id": "R-DEBT",
            "refunded_at": clock.now().isoformat(),
            "amount_minor": 5_000,
        },
    )
    assert refund.status_code == 201, refund.text
    assert (refund.json()["points_reversed"], refund.json()["points_owed"]) == (50, 50)
    summary = await points(client, member)
    assert summary["balances"]["owed"] == 50
    assert summary["balances"]["available"] == 0
    history = (await client.get("/v1/app/points/history", headers=bearer(member.session))).json()["items"]
    owed = next(item for item in history if item["kind"] == "owed")
    assert (owed["points"], owed["owed_change"]) == (0, 50)  # owed points are not points held
    assert "already spent" in owed["reason"]
    repay = await earn(client, terminal, member, clock, 8_000)  # 80 points: 50 repay the debt first
    assert (repay["points_earned"], repay["points_repaid"]) == (80, 50)
    after = await points(client, member)
    assert (after["balances"]["owed"], after["balances"]["available"]) == (0, 30)
    history = (await client.get("/v1/app/points/history", headers=bearer(member.session))).json()["items"]
    assert sum(item["points"] for item in history) == 30  # the history adds up to the balance shown
    assert sum(item["owed_change"] for item in history) == 0
    timeline = await client.get(
        "/v1/app/timeline", params={"kind": "points_adjusted"}, headers=bearer(member.session)
    )
    assert timeline.json()["items"][0]["properties"] == {"points_owed": 50}


async def test_redemption_takes_first_expiring_lots_and_expiry_skips_pending_ones(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    member = await shopper(client)
    await earn(client, terminal, member, clock, 3_000, days=20)  # lot A: 30 points, expires first
    await earn(client, terminal, member, clock, 2_000, days=10)  # lot B: 20 points
    spend = await pos(
        client, clock, terminal, PURCHASES, sale(10, at=clock.now(), code=member.code(clock.now()), redeem=10)
    )
    assert spend.status_code == 201, spend.text
    summary = await points(client, member)
    assert summary["next_expiry_points"] == 20  # 10 of lot A's 30 were spent first
    assert summary["balances"]["available"] == 40

    clock.advance(timedelta(days=365 - 20, seconds=1))  # lot A's expiry has passed, lot B's has not
    member = await log_in_again(client, member)  # a year later the old session has expired
    await earn(client, terminal, member, clock, 4_000, days=0)  # lot C: 40 points, still pending
    assert await expire_due(db, clock.now()) == 20
    assert await expire_due(db, clock.now()) == 0  # running again changes nothing
    summary = await points(client, member)
    assert (summary["balances"]["available"], summary["balances"]["pending"]) == (20, 40)
    history = (await client.get("/v1/app/points/history", headers=bearer(member.session))).json()["items"]
    assert [(item["kind"], item["points"]) for item in history if item["kind"] == "expire"] == [
        ("expire", -20)
    ]
    expired_events = await client.get(
        "/v1/app/timeline", params={"kind": "points_expired"}, headers=bearer(member.session)
    )
    assert expired_events.json()["items"][0]["properties"] == {"points": 20}


async def test_late_posting_keeps_the_sale_time_for_dates(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    sold_at = days_ago(clock.now(), 10)
    await earn(client, terminal, member, clock, 1_000, days=10)
    summary = await points(client, member)
    assert summary["balances"]["available"] == 10  # pending ended 2 days after the sale, not the posting
    expected = (sold_at + timedelta(days=365)).replace(microsecond=0)
    assert abs(datetime.fromisoformat(summary["next_expiry_at"]) - expected) < timedelta(seconds=2)


async def test_reaching_a_stage_grants_its_bonus_which_a_return_below_it_takes_back(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    result = await earn(client, terminal, member, clock, 120_000, days=3)
    assert result["stages_reached"] == ["silver"]
    summary = await points(client, member)
    assert summary["stage"] == "silver"
    assert summary["next_stage"] == {"stage": "gold", "miles_missing": 300_000 - 120_000}
    assert summary["balances"]["available"] == 1_200 + 500
    refund = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-STAGE",
            "original_receipt_id": result["receipt_id"],
            "refunded_at": clock.now().isoformat(),
            "amount_minor": 60_000,
        },
    )
    assert refund.status_code == 201, refund.text
    below = await points(client, member)
    assert (below["stage"], below["miles_this_period"]) == ("basic", 60_000)
    assert below["balances"]["available"] == 600  # half the purchase's points and all of the bonus went back
    again = await earn(client, terminal, member, clock, 60_000, days=1)
    assert again["stages_reached"] == ["silver"]  # crossed again: paid again, once
    balances = (await points(client, member))["balances"]
    assert (balances["available"], balances["pending"]) == (600 + 500, 600)  # the new sale's are pending
    timeline = await client.get(
        "/v1/app/timeline", params={"kind": "stage_reached"}, headers=bearer(member.session)
    )
    assert [item["properties"]["stage"] for item in timeline.json()["items"]] == ["silver", "silver"]


async def test_buying_across_stages_and_returning_everything_nets_no_bonus(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    result = await earn(client, terminal, member, clock, 320_000, days=3)  # silver and gold
    assert result["stages_reached"] == ["silver", "gold"]
    spend = await pos(
        client,
        clock,
        terminal,
        PURCHASES,
        sale(3_000, at=clock.now(), code=member.code(clock.now()), redeem=3_000),
    )
    assert spend.status_code == 201, spend.text  # some of the bonus is already spent
    refund = await pos(
        client,
        clock,
        terminal,
        REFUNDS,
        {
            "refund_receipt_id": "F-ALL",
            "original_receipt_id": result["receipt_id"],
            "refunded_at": clock.now().isoformat(),
            "lines": [{"line_no": 1, "quantity": 1}],
        },
    )
    assert refund.status_code == 201, refund.text
    summary = await points(client, member)
    # 3,200 earned + 1,500 bonus - 3,000 spent: all 4,700 earned is taken back, the spent part is owed.
    assert (summary["balances"]["available"], summary["balances"]["owed"]) == (0, 3_000)
    assert summary["stage"] == "basic"
    history = (await client.get("/v1/app/points/history", headers=bearer(member.session))).json()["items"]
    assert sum(item["points"] for item in history) == 0
    assert sum(item["owed_change"] for item in history) == 3_000


async def test_points_views_belong_to_their_member(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    alice = await shopper(client)
    bob = await shopper(client)
    await earn(client, terminal, alice, clock, 3_000)
    assert (await points(client, bob))["balances"]["lifetime_earned"] == 0
    bob_history = await client.get("/v1/app/points/history", headers=bearer(bob.session))
    assert bob_history.json()["items"] == []
    bob_code = await client.get("/v1/app/member-code", headers=bearer(bob.session))
    assert bob_code.json()["card_number"] == bob.card_number
    assert_problem(
        await client.delete(
            f"/v1/app/devices/{alice.session['device']['slot'] + 1}", headers=bearer(bob.session)
        ),
        404,
        "device_not_found",
    )
    assert_problem(await client.get("/v1/app/points"), 401, "access_token_invalid")


async def test_a_retry_while_the_first_attempt_holds_its_key_is_told_to_come_back(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import infra.idempotency

    monkeypatch.setattr(infra.idempotency, "LOCK_WAIT", "200ms")
    body = sale(1_000, at=clock.now())
    async with db.unit_of_work() as uow:  # a first attempt still in flight: its key row is locked
        await uow.session.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, request_digest, status_code, response_body, "
                "created_at, expires_at) "
                "VALUES (:scope, 'held-key-01', '\\x00', 0, '', now(), now() + interval '1 day')"
            ),
            {"scope": f"pos:{terminal.terminal_id}"},
        )
        response = await pos(client, clock, terminal, PURCHASES, body, key="held-key-01")
        await uow.session.rollback()
    assert_problem(response, 409, "request_in_progress")
    assert response.headers["retry-after"] == "2"
    assert await count(db, table=Purchase) == 0
