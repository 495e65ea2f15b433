"""The offers loop through the HTTP API: the chosen list and its log, clips, uses at the register and
their budgets, the worker's learning and the version the app serves, the performance report."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest
from sqlalchemy import func, select

from domain.clock import SettableClock
from infra.db import Database
from offers.decisions import export_log
from offers.learning import learn_rewards
from offers.logs import LoggedDecision
from offers.program import OfferProgram
from offers.selection import OpenOffers, offers_for_member
from offers.tables import Offer, OfferActivation, OfferDecision, OfferDecisionItem, OfferRedemption
from offers.versions import ServingPolicy
from points.tables import Purchase
from tests.integration.factories import TerminalCredentials, bearer, create_store, create_terminal
from tests.integration.offers_support import active_offer, clip, my_offers
from tests.integration.problems import assert_problem
from tests.integration.register import pos, sale, shopper
from timeline.tables import TimelineEvent

PURCHASES = "/v1/pos/purchases"
LINEN = {"line_no": 1, "sku": "4550001", "category": "linen", "quantity": 1, "unit_price_minor": 3_000}


async def count(db: Database, table: type[Any], *where: Any) -> int:
    async with db.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def events_of(db: Database, kind: str) -> list[TimelineEvent]:
    async with db.unit_of_work() as uow:
        rows = await uow.session.execute(select(TimelineEvent).where(TimelineEvent.kind == kind))
        return list(rows.scalars())


async def test_the_list_is_chosen_logged_with_its_propensities_and_kept_while_fresh(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    today = clock.now().date()
    offers = [await active_offer(client, marketer, today) for _ in range(3)]
    member = (await shopper(client)).session
    listed = await my_offers(client, member)
    assert listed["policy_version"] == 0
    assert sorted(o["offer"]["id"] for o in listed["offers"]) == sorted(o["id"] for o in offers)
    assert [o["position"] for o in listed["offers"]] == [1, 2, 3]
    assert all(o["why"] for o in listed["offers"])
    async with db.unit_of_work() as uow:
        decision = (await uow.session.execute(select(OfferDecision))).scalar_one()
        items = list(
            (
                await uow.session.execute(select(OfferDecisionItem).order_by(OfferDecisionItem.position))
            ).scalars()
        )
    assert str(decision.id) == listed["decision_id"]
    assert len(decision.candidates) == 3
    assert [item.uniform_propensity for item in items] == pytest.approx([1 / 3, 1 / 2, 1.0])
    assert all(0 < item.propensity <= 1 for item in items)
    assert items[-1].propensity == pytest.approx(1.0)  # the last slot had one candidate left
    (event,) = await events_of(db, "offer_decided")
    assert event.properties["decision_id"] == listed["decision_id"]
    assert event.properties["offers"] == [o["offer"]["id"] for o in listed["offers"]]

    clock.advance(timedelta(minutes=5))
    again = await my_offers(client, member)
    assert again == listed  # the same list, and no new decision written
    assert await count(db, OfferDecision) == 1
    clock.advance(timedelta(minutes=6))
    later = await my_offers(client, member)
    assert later["decision_id"] != listed["decision_id"]
    assert await count(db, OfferDecision) == 2


async def test_a_decision_and_its_timeline_event_are_written_together_or_not_at_all(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    await active_offer(client, marketer, clock.now().date())
    member_id = uuid.UUID((await shopper(client)).session["member"]["id"])
    serving = ServingPolicy(OfferProgram().selection)

    class Abandoned(Exception):
        pass

    async def decide_then_fail() -> None:
        async with db.unit_of_work() as uow:
            await offers_for_member(
                uow,
                serving,
                OpenOffers(),
                OfferProgram(),
                member_id,
                None,
                np.random.default_rng(1),
                clock.now(),
            )
            assert await uow.session.scalar(select(func.count()).select_from(OfferDecision)) == 1
            raise Abandoned

    with pytest.raises(Abandoned):
        await decide_then_fail()
    assert await count(db, OfferDecision) == 0
    assert await events_of(db, "offer_decided") == []
    async with db.unit_of_work() as uow:
        await offers_for_member(
            uow, serving, OpenOffers(), OfferProgram(), member_id, None, np.random.default_rng(1), clock.now()
        )
    assert await count(db, OfferDecision) == 1
    assert len(await events_of(db, "offer_decided")) == 1


async def test_offers_for_another_audience_or_store_are_not_listed(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, terminal: TerminalCredentials
) -> None:
    today = clock.now().date()
    everyone = await active_offer(client, admin, today)
    await active_offer(
        client, admin, today, audience={"all": [{"field": "lifecycle_stage", "in": ["lapsed"]}]}
    )
    here = await active_offer(client, admin, today, store_ids=[terminal.store_id])
    member = (await shopper(client)).session
    anywhere = await my_offers(client, member)
    assert sorted(o["offer"]["id"] for o in anywhere["offers"]) == sorted([everyone["id"], here["id"]])
    other_store = await create_store(client, admin, code="OSK-UMEDA")
    clock.advance(timedelta(minutes=11))
    elsewhere = await my_offers(client, member, store_id=other_store["id"])
    assert [o["offer"]["id"] for o in elsewhere["offers"]] == [everyone["id"]]


async def test_clipping_is_idempotent_and_concurrent_clips_make_one(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    member = (await shopper(client)).session
    listed = await my_offers(client, member)
    first = await clip(client, member, offer["id"], key="clip-once-1")
    assert first.status_code == 200, first.text
    replay = await clip(client, member, offer["id"], key="clip-once-1")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    together = await asyncio.gather(*(clip(client, member, offer["id"]) for _ in range(6)))
    assert {response.status_code for response in together} == {200}
    assert {response.json()["activated_at"] for response in together} == {first.json()["activated_at"]}
    assert await count(db, OfferActivation) == 1
    (event,) = await events_of(db, "offer_activated")
    assert event.properties == {"decision_id": listed["decision_id"]}
    clock.advance(timedelta(minutes=11))
    after = await my_offers(client, member)
    assert after["offers"] == []
    assert [c["offer"]["id"] for c in after["activated"]] == [offer["id"]]


async def test_a_paused_or_unknown_offer_cannot_be_clipped_and_nothing_is_saved(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    await client.post(
        f"/v1/console/offers/{offer['id']}/state", json={"state": "paused"}, headers=bearer(marketer)
    )
    member = (await shopper(client)).session
    assert_problem(await clip(client, member, offer["id"]), 409, "offer_not_available")
    assert_problem(await clip(client, member, str(uuid.uuid4())), 404, "offer_not_found")
    assert await count(db, OfferActivation) == 0
    assert await events_of(db, "offer_activated") == []


async def buy(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    code: str | None,
    **extra: Any,
) -> httpx.Response:
    body = sale(3_000, at=clock.now(), code=code, lines=[LINEN])
    body.update(extra)
    return await pos(client, clock, terminal, PURCHASES, body)


async def test_a_clipped_offer_earns_at_the_register_and_a_return_takes_it_back(
    client: httpx.AsyncClient,
    marketer: dict[str, Any],
    clock: SettableClock,
    db: Database,
    terminal: TerminalCredentials,
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    buyer = await shopper(client)
    assert (await clip(client, buyer.session, offer["id"])).status_code == 200
    bought = await buy(client, clock, terminal, buyer.code(clock.now()))
    assert bought.status_code == 201, bought.text
    result = bought.json()
    assert result["points_earned"] == 30 + 100
    assert result["offers_used"] == [
        {"offer_id": offer["id"], "title": offer["title"], "points": 100, "amount_off_minor": 0}
    ]
    assert any(rule["rule"] == "offer" for rule in result["award"])
    clock.advance(timedelta(minutes=1))
    second = await buy(client, clock, terminal, buyer.code(clock.now()))
    assert second.json()["points_earned"] == 30  # the per-member limit (1) is used up
    returned = await pos(
        client,
        clock,
        terminal,
        "/v1/pos/refunds",
        {
            "refund_receipt_id": "RF-1",
            "original_receipt_id": result["receipt_id"],
            "refunded_at": clock.now().isoformat(),
            "lines": [{"line_no": 1, "quantity": 1}],
        },
    )
    assert returned.status_code == 201, returned.text
    assert returned.json()["points_reversed"] == 130
    async with db.unit_of_work() as uow:
        used = await uow.session.get(Offer, uuid.UUID(offer["id"]))
        assert used is not None
        assert (used.redemptions_used, used.points_used) == (1, 100)
    (redeemed,) = await events_of(db, "offer_redeemed")
    assert redeemed.subject_ref == offer["id"]


async def test_a_coupon_the_register_names_must_be_the_member_s_and_qualify(
    client: httpx.AsyncClient,
    marketer: dict[str, Any],
    clock: SettableClock,
    db: Database,
    terminal: TerminalCredentials,
) -> None:
    coupon = await active_offer(
        client,
        marketer,
        clock.now().date(),
        terms={"kind": "amount_off", "amount_off_minor": 500, "min_spend_minor": 3_000},
    )
    buyer = await shopper(client)
    not_clipped = await buy(client, clock, terminal, buyer.code(clock.now()), offer_ids=[coupon["id"]])
    assert_problem(not_clipped, 422, "offer_not_applicable")
    anonymous = await buy(client, clock, terminal, None, offer_ids=[coupon["id"]])
    assert_problem(anonymous, 422, "offer_not_applicable")
    assert await count(db, Purchase) == 0
    await clip(client, buyer.session, coupon["id"])
    used = await buy(client, clock, terminal, buyer.code(clock.now()), offer_ids=[coupon["id"]])
    assert used.status_code == 201, used.text
    assert used.json()["offers_used"][0]["amount_off_minor"] == 500
    assert used.json()["points_earned"] == 30
    bad = await buy(client, clock, terminal, buyer.code(clock.now()), offer_ids=["not-a-uuid"])
    assert_problem(bad, 400, "validation_failed")


@pytest.mark.parametrize(
    ("budget", "uses"), [({"budget_redemptions": 3}, 3), ({"budget_points": 250}, 2)], ids=["uses", "points"]
)
async def test_concurrent_sales_never_overspend_an_offer_s_budget(
    client: httpx.AsyncClient,
    marketer: dict[str, Any],
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
    terminal: TerminalCredentials,
    budget: dict[str, int],
    uses: int,
) -> None:
    offer = await active_offer(client, marketer, clock.now().date(), **budget)
    buyers = [await shopper(client) for _ in range(8)]
    for buyer in buyers:
        assert (await clip(client, buyer.session, offer["id"])).status_code == 200
    registers = [await create_terminal(client, admin, terminal.store_id, f"Register {i}") for i in range(8)]
    sales = await asyncio.gather(
        *(
            buy(client, clock, register, buyer.code(clock.now()))
            for register, buyer in zip(registers, buyers, strict=True)
        )
    )
    assert [response.status_code for response in sales] == [201] * 8
    earned = sorted(response.json()["points_earned"] for response in sales)
    assert earned == [30] * (8 - uses) + [130] * uses
    async with db.unit_of_work() as uow:
        row = await uow.session.get(Offer, uuid.UUID(offer["id"]))
        assert row is not None
        assert (row.redemptions_used, row.points_used) == (uses, 100 * uses)
    assert await count(db, OfferRedemption) == uses


async def test_the_worker_learns_and_the_running_app_serves_the_new_version(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    today = clock.now().date()
    offers = [await active_offer(client, marketer, today) for _ in range(2)]
    first = (await shopper(client)).session
    listed = await my_offers(client, first)
    await clip(client, first, listed["offers"][0]["offer"]["id"])
    program = OfferProgram()
    assert await learn_rewards(db, program, clock.now()) == 0  # the reward window is still open
    clock.advance(timedelta(hours=program.reward_window_hours, minutes=1))
    assert await learn_rewards(db, program, clock.now()) == 1
    assert await learn_rewards(db, program, clock.now()) == 0  # learned once
    second = (await shopper(client)).session
    served = await my_offers(client, second)
    assert served["policy_version"] == 1
    async with db.unit_of_work() as uow:
        decision = await uow.session.get(OfferDecision, uuid.UUID(served["decision_id"]))
        assert decision is not None
        assert decision.policy_version == 1
    assert {o["offer"]["id"] for o in served["offers"]} == {o["id"] for o in offers}


async def test_the_performance_report_counts_views_clips_uses_and_the_baseline(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, terminal: TerminalCredentials
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    buyer = await shopper(client)
    listed = await my_offers(client, buyer.session)
    viewed = await client.post(
        "/v1/app/events",
        json={
            "events": [
                {
                    "client_event_id": "view-1",
                    "kind": "offer_viewed",
                    "occurred_at": clock.now().isoformat(),
                    "subject": {"type": "offer", "id": offer["id"]},
                    "properties": {"decision_id": listed["decision_id"]},
                }
            ]
        },
        headers=bearer(buyer.session),
    )
    assert viewed.status_code == 200, viewed.text
    await clip(client, buyer.session, offer["id"])
    clock.advance(timedelta(minutes=1))
    assert (await buy(client, clock, terminal, buyer.code(clock.now()))).status_code == 201
    report = await client.get("/v1/console/offers/performance", headers=bearer(marketer))
    assert report.status_code == 200, report.text
    body = report.json()
    (row,) = body["offers"]
    assert (row["decisions"], row["views"], row["activations"], row["redemptions"], row["uses"]) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert row["points_cost"] == 100
    assert row["purchases_after_view"] == 1
    assert row["activation_rate"]["rate"] == 1.0
    assert row["activation_rate"]["low"] < 1.0
    assert body["uniform_activation_rate"] == pytest.approx(1.0)
    assert body["activation_rate"]["rate"] == 1.0
    assert body["redemption_rate"]["rate"] == 1.0
    assert body["uniform_redemption_rate"] == pytest.approx(1.0)


async def test_a_console_change_reaches_the_app_s_list_at_once(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    member = (await shopper(client)).session
    assert (await my_offers(client, member))["offers"][0]["offer"]["title"] == offer["title"]
    path = f"/v1/console/offers/{offer['id']}"
    await client.post(f"{path}/state", json={"state": "paused"}, headers=bearer(marketer))
    clock.advance(timedelta(minutes=11))
    assert (await my_offers(client, member))["offers"] == []
    await client.patch(path, json={"title": "Now 200 points"}, headers=bearer(marketer))
    await client.post(f"{path}/state", json={"state": "active"}, headers=bearer(marketer))
    clock.advance(timedelta(minutes=11))
    assert (await my_offers(client, member))["offers"][0]["offer"]["title"] == "Now 200 points"


async def test_a_late_posted_sale_does_not_earn_an_offer_clipped_after_it(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, terminal: TerminalCredentials
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    coupon = await active_offer(
        client, marketer, clock.now().date(), terms={"kind": "amount_off", "amount_off_minor": 300}
    )
    buyer = await shopper(client)
    await clip(client, buyer.session, offer["id"])
    await clip(client, buyer.session, coupon["id"])
    three_days_ago = clock.now() - timedelta(days=3)
    late = sale(3_000, at=three_days_ago, code=buyer.code(clock.now()), lines=[LINEN])
    posted = await pos(client, clock, terminal, PURCHASES, late)
    assert posted.status_code == 201, posted.text
    assert posted.json()["points_earned"] == 30
    assert posted.json()["offers_used"] == []
    late_coupon = sale(3_000, at=three_days_ago, code=buyer.code(clock.now()), lines=[LINEN])
    late_coupon["offer_ids"] = [coupon["id"]]
    assert_problem(await pos(client, clock, terminal, PURCHASES, late_coupon), 422, "offer_not_applicable")


async def test_a_member_cannot_make_the_list_write_more_than_once_a_minute(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    clock: SettableClock,
    db: Database,
    terminal: TerminalCredentials,
) -> None:
    await active_offer(client, admin, clock.now().date())
    member = (await shopper(client)).session
    other = await create_store(client, admin, code="OSK-NAMBA")
    contexts = [{}, {"store_id": terminal.store_id}, {"store_id": other["id"]}] * 4
    together = await asyncio.gather(*(my_offers(client, member, **context) for context in contexts))
    assert len({listed["decision_id"] for listed in together}) == 1
    for context in contexts:
        clock.advance(timedelta(seconds=4))
        await my_offers(client, member, **context)
    assert await count(db, OfferDecision) == 1  # 48 s of refreshes from three places: one decision
    clock.advance(timedelta(seconds=15))
    await my_offers(client, member, store_id=other["id"])
    assert await count(db, OfferDecision) == 2


async def test_an_unknown_store_context_is_refused_and_nothing_written(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    await active_offer(client, marketer, clock.now().date())
    member = (await shopper(client)).session
    response = await client.get(
        "/v1/app/offers", params={"store_id": str(uuid.uuid4())}, headers=bearer(member)
    )
    assert_problem(response, 422, "unknown_store")
    bad = await client.get("/v1/app/offers", params={"store_id": "ginza"}, headers=bearer(member))
    assert_problem(bad, 400, "validation_failed")
    assert await count(db, OfferDecision) == 0
    assert await events_of(db, "offer_decided") == []


async def test_every_showing_within_the_window_earns_the_clip(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    offer = await active_offer(client, marketer, clock.now().date())
    member = (await shopper(client)).session
    first = await my_offers(client, member)
    clock.advance(timedelta(minutes=11))
    second = await my_offers(client, member)
    assert first["decision_id"] != second["decision_id"]
    await clip(client, member, offer["id"])
    program = OfferProgram()
    clock.advance(timedelta(hours=program.reward_window_hours, minutes=1))
    buffer = io.BytesIO()
    assert await export_log(db, buffer, program, clock.now()) == 2
    rewards = [
        msgspec.json.decode(line, type=LoggedDecision).reward for line in buffer.getvalue().splitlines()
    ]
    assert rewards == [1.0, 1.0]
    assert await learn_rewards(db, program, clock.now()) == 2
