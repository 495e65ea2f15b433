"""What the serving policy would choose now: each open offer's first-slot probability, averaged over
recently active members, the same probability the app's list is drawn and logged with; nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from domain.clock import SettableClock
from infra.db import Database
from offers.choice import ChoiceProbabilities, choice_probabilities
from offers.errors import InvalidMemberCount
from offers.program import OfferProgram
from offers.selection import OpenOffers
from offers.tables import OfferDecision, OfferDecisionItem
from offers.versions import ServingPolicy
from tests.integration.factories import bearer, sign_up
from tests.integration.offers_support import active_offer, clip, my_offers, offer_draft
from timeline.recording import fold_pending
from timeline.tables import TimelineEvent

PROGRAM = OfferProgram()


async def probabilities(db: Database, clock: SettableClock, members: int = 200) -> ChoiceProbabilities:
    async with db.unit_of_work() as uow:
        return await choice_probabilities(
            uow, ServingPolicy(PROGRAM.selection), OpenOffers(), PROGRAM, "Asia/Tokyo", clock.now(), members
        )


async def written(db: Database) -> tuple[int, int]:
    async with db.unit_of_work() as uow:
        decisions = await uow.session.scalar(select(func.count()).select_from(OfferDecision))
        events = await uow.session.scalar(select(func.count()).select_from(TimelineEvent))
    return int(decisions or 0), int(events or 0)


def by_offer(choice: ChoiceProbabilities) -> dict[str, float]:
    return {str(offer.offer_id): offer.mean_probability for offer in choice.offers}


async def test_with_nobody_active_a_new_members_context_is_used_and_only_open_offers_count(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    today = clock.now().date()
    same = [await active_offer(client, marketer, today) for _ in range(3)]  # alike: equally likely
    draft = await client.post("/v1/console/offers", json=offer_draft(today), headers=bearer(marketer))
    assert draft.status_code == 201
    before = await written(db)
    choice = await probabilities(db, clock)
    assert await written(db) == before  # no decision, no timeline event
    assert (choice.contexts, choice.newcomer, choice.policy_version) == (1, True, 0)
    assert by_offer(choice) == pytest.approx({offer["id"]: 1 / 3 for offer in same})
    assert draft.json()["id"] not in by_offer(choice)  # not open: not a candidate
    assert {offer.name for offer in choice.offers} == {offer["name"] for offer in same}
    assert all(offer.eligible_share == 1.0 for offer in choice.offers)


async def test_a_members_probabilities_are_those_their_app_list_is_drawn_and_logged_with(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    today = clock.now().date()
    for points in (50, 300, 1_000):  # costlier offers score lower
        terms = {"kind": "bonus_points", "points": points, "category": "linen"}
        await active_offer(client, marketer, today, terms=terms)
    member = await sign_up(client)
    await fold_pending(db)  # the console finds recently active members by their folded counters
    listed = await my_offers(client, member)
    async with db.unit_of_work() as uow:
        first = (
            await uow.session.execute(select(OfferDecisionItem).where(OfferDecisionItem.position == 1))
        ).scalar_one()
    before = await written(db)
    choice = await probabilities(db, clock)
    assert await written(db) == before
    assert (choice.contexts, choice.newcomer) == (1, False)
    assert str(first.offer_id) == listed["offers"][0]["offer"]["id"]
    assert by_offer(choice)[str(first.offer_id)] == pytest.approx(first.propensity, rel=1e-9)
    assert sum(by_offer(choice).values()) == pytest.approx(1.0)
    means = [offer.mean_probability for offer in choice.offers]
    assert means == sorted(means, reverse=True)
    assert len(set(means)) == 3  # the costs set them apart
    assert [offer.top_share for offer in choice.offers] == [1.0, 0.0, 0.0]


async def test_an_offer_a_member_may_not_be_shown_gets_no_probability_from_that_member(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    today = clock.now().date()
    clipped = await active_offer(client, marketer, today)
    for_lapsed = await active_offer(
        client, marketer, today, audience={"all": [{"field": "lifecycle_stage", "in": ["lapsed"]}]}
    )
    open_to_all = [await active_offer(client, marketer, today) for _ in range(2)]
    clipper = await sign_up(client)
    await sign_up(client)  # a second member, who clipped nothing
    assert (await clip(client, clipper, clipped["id"])).status_code in (200, 201)
    await fold_pending(db)  # the console finds recently active members by their folded counters

    choice = await probabilities(db, clock)
    assert choice.contexts == 2
    chance = by_offer(choice)
    assert chance[for_lapsed["id"]] == 0.0  # new members are not in its audience
    # The clipper chooses among the two open offers, the other member among those and the clipped one.
    assert chance[clipped["id"]] == pytest.approx((0 + 1 / 3) / 2)
    for offer in open_to_all:
        assert chance[offer["id"]] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert sum(chance.values()) == pytest.approx(1.0)
    shares = {str(offer.offer_id): offer.eligible_share for offer in choice.offers}
    assert (shares[clipped["id"]], shares[for_lapsed["id"]]) == (0.5, 0.0)

    only_one = await probabilities(db, clock, members=1)
    assert only_one.contexts == 1
    assert sum(by_offer(only_one).values()) == pytest.approx(1.0)


async def test_the_number_of_members_is_bounded_and_no_open_offer_means_no_choice(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    for members in (0, 1_001):
        with pytest.raises(InvalidMemberCount):
            await probabilities(db, clock, members)
    await sign_up(client)
    nothing = await probabilities(db, clock)
    assert (nothing.offers, nothing.contexts) == ([], 0)
