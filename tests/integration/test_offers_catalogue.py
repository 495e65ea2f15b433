"""The offer catalogue in the console: drafts, states, limits, bad input and who may do what."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from domain.clock import SettableClock
from infra.db import Database
from offers.rules.terms import OfferState
from offers.tables import Offer
from tests.integration.factories import bearer, create_store, sign_up
from tests.integration.offers_support import active_offer, offer_draft
from tests.integration.problems import assert_problem


async def offer_count(db: Database) -> int:
    async with db.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Offer)) or 0)


async def test_a_marketer_drafts_activates_pauses_and_ends_an_offer(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock
) -> None:
    today = clock.now().date()
    offer = await active_offer(client, marketer, today, budget_points=10_000)
    assert offer["state"] == "active"
    assert offer["cost_points"] == 100
    assert offer["starts_at"] < offer["ends_at"]
    path = f"/v1/console/offers/{offer['id']}"
    refused = await client.patch(path, json={"title": "New title"}, headers=bearer(marketer))
    assert_problem(refused, 409, "offer_not_editable")
    paused = await client.post(f"{path}/state", json={"state": "paused"}, headers=bearer(marketer))
    assert paused.json()["state"] == "paused"
    changed = await client.patch(
        path, json={"title": "New title", "budget_points": 20_000}, headers=bearer(marketer)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "New title"
    terms = await client.patch(
        path, json={"terms": {"kind": "visit_bonus", "points": 5}}, headers=bearer(marketer)
    )
    assert_problem(terms, 409, "offer_not_editable")
    ended = await client.post(f"{path}/state", json={"state": "ended"}, headers=bearer(marketer))
    assert ended.json()["state"] == "ended"
    again = await client.post(f"{path}/state", json={"state": "active"}, headers=bearer(marketer))
    assert_problem(again, 409, "offer_state_conflict")
    listed = await client.get("/v1/console/offers", params={"state": "ended"}, headers=bearer(marketer))
    assert [item["id"] for item in listed.json()["items"]] == [offer["id"]]


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"image_url": "http://cdn.example.com/a.jpg"}, 400, "validation_failed"),
        ({"image_url": "https://user:pw@cdn.example.com/a.jpg"}, 400, "validation_failed"),
        ({"per_member_limit": "2"}, 400, "validation_failed"),
        ({"terms": {"kind": "multiplier", "percent": 200.5}}, 400, "validation_failed"),
        ({"budget_points": -1}, 400, "validation_failed"),
        ({"valid_from": "2026-12-10", "valid_until": "2026-12-01"}, 422, "rule_broken"),
        ({"valid_until": "9999-12-31"}, 400, "validation_failed"),
        ({"title": "   "}, 400, "validation_failed"),
        ({"surprise": True}, 400, "validation_failed"),
        ({"audience": {"all": [{"field": "stage", "in": ["gold"]}]}}, 400, "validation_failed"),
        (
            {"terms": {"kind": "amount_off", "amount_off_minor": 500}, "budget_points": 100},
            422,
            "invalid_offer",
        ),
        ({"store_ids": ["0196a1b2-0000-7000-8000-000000000000"]}, 422, "unknown_store"),
    ],
)
async def test_a_bad_offer_is_refused_and_nothing_saved(
    client: httpx.AsyncClient,
    marketer: dict[str, Any],
    clock: SettableClock,
    db: Database,
    overrides: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = await client.post(
        "/v1/console/offers", json=offer_draft(clock.now().date(), **overrides), headers=bearer(marketer)
    )
    assert_problem(response, status, code)
    assert await offer_count(db) == 0


async def test_an_offer_can_target_a_store_and_a_trait_segment(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    store = await create_store(client, admin)
    offer = await active_offer(
        client,
        admin,
        clock.now().date(),
        store_ids=[store["id"]],
        audience={
            "all": [{"field": "lifecycle_stage", "in": ["lapsed"]}, {"field": "health_score", "max": 40}]
        },
    )
    assert offer["store_ids"] == [store["id"]]
    assert offer["audience"]["all"][0] == {"field": "lifecycle_stage", "in": ["lapsed"]}


async def test_members_and_strangers_cannot_touch_the_catalogue(
    client: httpx.AsyncClient, clock: SettableClock, db: Database
) -> None:
    member = await sign_up(client)
    draft = offer_draft(clock.now().date())
    as_member = await client.post("/v1/console/offers", json=draft, headers=bearer(member))
    assert as_member.status_code == 401
    anonymous = await client.get("/v1/console/offers/performance")
    assert anonymous.status_code == 401
    assert await offer_count(db) == 0


async def test_no_more_offers_are_active_than_the_policy_can_choose_among(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    today = clock.now().date()
    async with db.unit_of_work() as uow:
        for index in range(500):
            uow.session.add(_active_row(today, index))
    draft = await client.post("/v1/console/offers", json=offer_draft(today), headers=bearer(marketer))
    refused = await client.post(
        f"/v1/console/offers/{draft.json()['id']}/state", json={"state": "active"}, headers=bearer(marketer)
    )
    assert_problem(refused, 409, "too_many_active_offers")


def _active_row(today: date, index: int) -> Offer:
    """An active offer written directly: 500 of them through the API would only slow the test down."""
    now = datetime.now(UTC)
    return Offer(
        name=f"bulk {index}",
        state=OfferState.ACTIVE,
        terms={"kind": "visit_bonus", "points": 1},
        title="t",
        body="b",
        image_url=None,
        valid_from=today,
        valid_until=today,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
        store_ids=[],
        audience={"all": []},
        per_member_limit=1,
        budget_redemptions=None,
        budget_points=None,
        redemptions_used=0,
        points_used=0,
        cost_points=1,
        created_at=now,
        updated_at=now,
    )
