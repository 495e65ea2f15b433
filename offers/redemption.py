"""Clipped offers at the register: which apply to a sale, what they earn, and their budgets spent.

Called by the points capability inside the sale's transaction, after the member's account is locked, so
one member's sales apply their offers one after another. Budgets are spent by one conditional UPDATE per
offer (and a CHECK constraint behind it), so concurrent sales of many members never overspend.
Late postings judge an offer at the sale time, as the earning rules do.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import select, text

from domain.interactions import Channel, InteractionKind, SubjectType
from infra.db import UnitOfWork
from offers.catalogue import facts_of, terms_of
from offers.errors import OfferNotApplicable
from offers.rules.effects import PaidLine, Rates, coupon_applies, effect_on_sale
from offers.rules.eligibility import MemberUse, ineligible
from offers.rules.terms import AmountOff
from offers.tables import Offer, OfferActivation, OfferRedemption
from timeline.recording import record_many
from timeline.rules import EventDraft

_SPEND = text(
    """
    UPDATE offers SET redemptions_used = redemptions_used + 1, points_used = points_used + :points
    WHERE id = :offer
      AND (budget_redemptions IS NULL OR redemptions_used < budget_redemptions)
      AND (budget_points IS NULL OR points_used + :points <= budget_points)
    RETURNING id
    """
)


# A register's clock may run this far ahead of the server's, so a clip made at the till just before the
# sale still counts (the same allowance the sale's own time gets).
REGISTER_CLOCK_AHEAD = timedelta(minutes=5)


class OfferUse(msgspec.Struct, frozen=True):
    offer_id: uuid.UUID
    title: str
    points: int
    line_points: dict[int, int]
    amount_off_minor: int


class SaleForOffers(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    store_id: uuid.UUID
    purchase_id: uuid.UUID
    sold_at: datetime
    total_minor: int
    lines: list[PaidLine]
    coupon_ids: frozenset[uuid.UUID]


async def use_offers_on_sale(
    uow: UnitOfWork, sale: SaleForOffers, rates: Rates, now: datetime
) -> list[OfferUse]:
    """Apply every clipped points offer the sale qualifies for, and the coupons the register names.

    Only offers clipped before the sale count (a late posting does not earn what was clipped since).
    A named coupon that cannot be used (not clipped, not valid here, spend too low, budget gone) refuses
    the sale (`offer_not_applicable`): the register discounted the basket for it. A points offer that
    does not qualify is simply not applied.
    """
    rows = await uow.session.execute(
        select(OfferActivation, Offer)
        .join(Offer, Offer.id == OfferActivation.offer_id)
        .where(OfferActivation.member_id == sale.member_id)
        .order_by(Offer.id)
        .with_for_update(of=OfferActivation)
    )
    uses: list[OfferUse] = []
    coupons_left = set(sale.coupon_ids)
    for activation, offer in rows:
        terms = terms_of(offer)
        is_coupon = isinstance(terms, AmountOff)
        if is_coupon and offer.id not in coupons_left:
            continue
        if activation.activated_at > sale.sold_at + REGISTER_CLOCK_AHEAD:
            continue  # clipped after the sale: a late posting does not earn an offer clipped since
        use = MemberUse(activated=True, redemptions=activation.redemptions)
        if (
            ineligible(facts_of(offer, terms), use, None, sale.store_id, sale.sold_at, clipped_counts=False)
            is not None
        ):
            continue
        if isinstance(terms, AmountOff):
            if not coupon_applies(terms, sale.total_minor):
                continue
            found = OfferUse(offer.id, offer.title, 0, {}, terms.amount_off_minor)
        else:
            effect = effect_on_sale(terms, sale.lines, sale.total_minor, rates)
            if effect is None:
                continue
            found = OfferUse(offer.id, offer.title, effect.points, effect.line_points, 0)
        if (await uow.session.execute(_SPEND, {"offer": offer.id, "points": found.points})).first() is None:
            continue  # the budget ran out
        coupons_left.discard(offer.id)
        activation.redemptions += 1
        uow.session.add(
            OfferRedemption(
                offer_id=offer.id,
                member_id=sale.member_id,
                purchase_id=sale.purchase_id,
                decision_id=activation.decision_id,
                redeemed_at=sale.sold_at,
                points=found.points,
                amount_off_minor=found.amount_off_minor,
            )
        )
        uses.append(found)
    if coupons_left:
        raise OfferNotApplicable(offer_ids=sorted(str(offer_id) for offer_id in coupons_left))
    await record_many(uow, [_redeemed_event(sale, use) for use in uses], now)
    return uses


def _redeemed_event(sale: SaleForOffers, use: OfferUse) -> EventDraft:
    return EventDraft(
        member_id=sale.member_id,
        kind=InteractionKind.OFFER_REDEEMED,
        occurred_at=sale.sold_at,
        channel=Channel.POS,
        store_id=sale.store_id,
        subject_type=SubjectType.OFFER,
        subject_ref=str(use.offer_id),
        properties={
            "purchase_id": str(sale.purchase_id),
            "points": use.points,
            "amount_off_minor": use.amount_off_minor,
        },
    )


def offer_points_by_line(uses: Sequence[OfferUse]) -> dict[int, int]:
    by_line: dict[int, int] = {}
    for use in uses:
        for line_no, points in use.line_points.items():
            by_line[line_no] = by_line.get(line_no, 0) + points
    return by_line
