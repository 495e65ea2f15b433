"""What the offers achieved: per offer and overall, from the decision log, clips, uses and the timeline.

- **decisions**: times the policy showed the offer in the period; **views**: of those, how many the app
  reported seen (`offer_viewed` with the decision's id); **activations**: showings followed by the member's
  clip within the reward window (as the worker learns them); **redemptions**: showings followed by a use
  within `purchase_window_days`; **uses** and **points cost**: all the offer's uses and the points they
  granted; **purchases after view**:
  views followed by a purchase within `purchase_window_days`.
- **rates per decision** with 95 % Wilson intervals, beside the **uniform baseline**: the activation rate
  the uniform-exploration policy would have had, estimated from the same log by self-normalised inverse
  propensity weighting (weight = 1 / candidates left for the slot over the logged probability).
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
                     WHERE a.member_id = i.member_id AND a.offer_id = i.offer_id
                       AND a.activated_at BETWEEN i.decided_at AND i.decided_at + :reward_window
             ) AS activated,
             EXISTS (SELECT 1 FROM offer_redemptions r
                     WHERE r.member_id = i.member_id AND r.offer_id = i.offer_id
                       AND r.redeemed_at BETWEEN i.decided_at AND i.decided_at + :window) AS redeemed,
             (SELECT min(e.occurred_at) FROM timeline_events e
               WHERE e.member_id = i.member_id AND e.kind = 'offer_viewed'
                 AND e.subject_ref = i.offer_id::text AND e.properties->>'decision_id' = i.decision_id::text
                 AND e.occurred_at >= i.decided_at - interval '1 day') AS viewed_at
      FROM offer_decision_items i
      WHERE i.decided_at >= :since
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


async def performance(uow: UnitOfWork, program: OfferProgram, days: int, now: datetime) -> PerformanceReport:
    """Decisions of the last `days` days (and what followed them); uses and points cost of all time."""
    parameters = {
        "window": timedelta(days=program.purchase_window_days),
        "reward_window": timedelta(hours=program.reward_window_hours),
        "since": now - timedelta(days=days),
    }
    rows = {row[0]: row[1:] for row in await uow.session.execute(_BY_OFFER, parameters)}
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
        redemptions=int(redemptions),
        uses=cost[0],
        points_cost=cost[1],
        purchases_after_view=int(purchases),
        redemption_rate=wilson(min(int(redemptions), int(decisions)), int(decisions)),
        activation_rate=wilson(int(activations), int(decisions)),
        uniform_activation_rate=float(weighted_clips) / float(weights) if weights else None,
        uniform_redemption_rate=float(weighted_uses) / float(weights) if weights else None,
    )
