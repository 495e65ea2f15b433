"""What the offers achieved: per offer and overall, from the decision log, clips, uses and the timeline.

- **decisions**: times the policy showed the offer; **views**: of those, how many the app reported seen
  (`offer_viewed` with the decision's id); **activations** / **redemptions**: clips and uses that came from
  those decisions; **points cost**: points the offer's uses granted (all uses); **purchases after view**:
  views followed by a purchase within `purchase_window_days`.
- **rates per decision** with 95 % Wilson intervals, beside the **uniform baseline**: the activation rate
  the uniform-exploration policy would have had, estimated from the same log by self-normalised inverse
  propensity weighting (weight = 1 / candidates left for the slot over the logged probability).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from domain.rates import wilson
from infra.db import UnitOfWork
from offers.program import OfferProgram
from offers.schemas import OfferPerformance, PerformanceReport
from offers.tables import Offer, OfferPolicyVersion, OfferRedemption

_BY_OFFER = text(
    """
    WITH items AS (
      SELECT i.offer_id, i.member_id, i.uniform_propensity / i.propensity AS weight,
             EXISTS (SELECT 1 FROM offer_activations a
                     WHERE a.decision_id = i.decision_id AND a.offer_id = i.offer_id) AS activated,
             EXISTS (SELECT 1 FROM offer_redemptions r
                     WHERE r.decision_id = i.decision_id AND r.offer_id = i.offer_id) AS redeemed,
             (SELECT min(e.occurred_at) FROM timeline_events e
               WHERE e.member_id = i.member_id AND e.kind = 'offer_viewed'
                 AND e.subject_ref = i.offer_id::text AND e.properties->>'decision_id' = i.decision_id::text
                 AND e.occurred_at >= i.decided_at - interval '1 day') AS viewed_at
      FROM offer_decision_items i
    )
    SELECT offer_id, count(*), count(viewed_at), count(*) FILTER (WHERE activated),
           count(*) FILTER (WHERE redeemed),
           coalesce(sum(weight) FILTER (WHERE activated), 0), sum(weight),
           coalesce(sum(weight) FILTER (WHERE redeemed), 0),
           count(*) FILTER (WHERE viewed_at IS NOT NULL AND EXISTS (
             SELECT 1 FROM timeline_events p WHERE p.member_id = items.member_id AND p.kind = 'purchased'
               AND p.occurred_at >= viewed_at AND p.occurred_at < viewed_at + :window))
    FROM items GROUP BY offer_id
    """
)


async def performance(uow: UnitOfWork, program: OfferProgram) -> PerformanceReport:
    rows = {
        row[0]: row[1:]
        for row in await uow.session.execute(
            _BY_OFFER, {"window": timedelta(days=program.purchase_window_days)}
        )
    }
    cost = {
        offer_id: (int(uses), int(points))
        for offer_id, uses, points in await uow.session.execute(
            select(
                OfferRedemption.offer_id, func.count(), func.coalesce(func.sum(OfferRedemption.points), 0)
            ).group_by(OfferRedemption.offer_id)
        )
    }
    offers = list((await uow.session.execute(select(Offer).order_by(Offer.id.desc()))).scalars())
    report = [_offer(offer, rows.get(offer.id), cost.get(offer.id, (0, 0))) for offer in offers]
    version = await uow.session.scalar(select(func.max(OfferPolicyVersion.version))) or 0
    shown = sum(int(row[0]) for row in rows.values())
    weights = sum(float(row[5]) for row in rows.values())
    return PerformanceReport(
        policy_version=version,
        decisions=shown,
        activation_rate=wilson(sum(int(row[2]) for row in rows.values()), shown),
        uniform_activation_rate=sum(float(row[4]) for row in rows.values()) / weights if weights else None,
        redemption_rate=wilson(sum(min(int(row[3]), int(row[0])) for row in rows.values()), shown),
        uniform_redemption_rate=sum(float(row[6]) for row in rows.values()) / weights if weights else None,
        offers=report,
    )


def _offer(offer: Offer, row: tuple[int, ...] | None, cost: tuple[int, int]) -> OfferPerformance:
    decisions, views, activations, redemptions, weighted_clips, weights, weighted_uses, purchases = (
        row or (0,) * 8
    )
    return OfferPerformance(
        offer_id=offer.id,
        name=offer.name,
        state=offer.state,
        decisions=int(decisions),
        views=int(views),
        activations=int(activations),
        redemptions=cost[0],
        points_cost=cost[1],
        purchases_after_view=int(purchases),
        redemption_rate=wilson(min(int(redemptions), int(decisions)), int(decisions)),
        activation_rate=wilson(int(activations), int(decisions)),
        uniform_activation_rate=float(weighted_clips) / float(weights) if weights else None,
        uniform_redemption_rate=float(weighted_uses) / float(weights) if weights else None,
    )
