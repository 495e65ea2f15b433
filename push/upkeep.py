"""The push worker's housekeeping: claims of dead workers, campaigns that are done, stale addresses."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from sqlalchemy import exists, select, update

from accounts.push_addresses import retire_stale_addresses
from infra.db import Database
from push.policy import PushPolicy
from push.rules.scheduling import Schedule, SendRecurring
from push.tables import Campaign, CampaignState, Delivery, DeliveryState

UNSETTLED = (DeliveryState.PENDING, DeliveryState.CLAIMED, DeliveryState.SENDING)


async def recover_lost_claims(db: Database, now: datetime) -> dict[str, int]:
    """Claims whose lease ran out: not yet handed to FCM, back to the queue; in flight, `unconfirmed`
    (FCM may have delivered them, so they are never sent again)."""
    async with db.unit_of_work() as uow:
        returned = await uow.session.execute(
            update(Delivery)
            .where(Delivery.state == DeliveryState.CLAIMED, Delivery.lease_until < now)
            .values(state=DeliveryState.PENDING, claim_id=None, claimed_at=None, lease_until=None)
        )
        lost = await uow.session.execute(
            update(Delivery)
            .where(Delivery.state == DeliveryState.SENDING, Delivery.lease_until < now)
            .values(state=DeliveryState.UNCONFIRMED, reason="worker_lost", claim_id=None, lease_until=None)
        )
    return {"requeued": _count(returned), "unconfirmed": _count(lost)}


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def fully_drawn(campaign: Campaign) -> bool:
    schedule = msgspec.convert(campaign.schedule, Schedule)
    drawn = campaign.materialized_through
    if not isinstance(schedule, SendRecurring):
        return drawn is not None
    occurrences = schedule.occurrences()
    return not occurrences or (drawn is not None and drawn >= occurrences[-1])


async def finish_campaigns(db: Database, now: datetime) -> int:
    """Live campaigns with every occurrence drawn and nothing left to send become done."""
    async with db.unit_of_work() as uow:
        unsettled = exists().where(Delivery.campaign_id == Campaign.id, Delivery.state.in_(UNSETTLED))
        candidates = (
            await uow.session.execute(
                select(Campaign)
                .where(Campaign.state.in_((CampaignState.SCHEDULED, CampaignState.SENDING)), ~unsettled)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
        finished = 0
        for campaign in candidates:
            if fully_drawn(campaign):
                campaign.state, campaign.finished_at, campaign.updated_at = CampaignState.DONE, now, now
                finished += 1
    return finished


async def retire_addresses(db: Database, policy: PushPolicy, now: datetime) -> int:
    async with db.unit_of_work() as uow:
        return await retire_stale_addresses(uow, now, timedelta(days=policy.retire_address_after_days))
