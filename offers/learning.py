"""The worker's policy update: rewards joined to their decisions, learned, served as a new version.

A decision is learned once its reward window has closed, so a clip that comes late is never counted as
a miss: the reward of each offer it showed is 1 if the member clipped that offer within the window after
the decision, else 0. Each run adds one batch to the newest model and stores the sum as the next version,
marking the batch learned in the same transaction (a crash learns it again, never twice). Only the
newest KEEP_VERSIONS versions are kept: each is the whole model, and older ones serve nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import select, tuple_, update

from infra.db import Database, UnitOfWork
from infra.locks import lock_until_commit
from offers.program import OfferProgram
from offers.rules.features import Candidate, Context, context_vector, feature_matrix
from offers.rules.policy import Observation
from offers.tables import OfferActivation, OfferDecision, OfferDecisionItem, OfferPolicyVersion
from offers.versions import latest_model

KEEP_VERSIONS = 48


async def learn_rewards(db: Database, program: OfferProgram, now: datetime) -> int:
    """Learn one batch of decisions whose reward window closed; the number learned (0: nothing to do)."""
    window = timedelta(hours=program.reward_window_hours)
    async with db.unit_of_work() as uow:
        await lock_until_commit(uow, "offers.learn", "policy")
        decisions = list(
            (
                await uow.session.execute(
                    select(OfferDecision)
                    .where(OfferDecision.learned_at.is_(None), OfferDecision.decided_at <= now - window)
                    .order_by(OfferDecision.decided_at)
                    .limit(program.learn_batch)
                )
            ).scalars()
        )
        if not decisions:
            return 0
        ids = [decision.id for decision in decisions]
        items = list(
            (
                await uow.session.execute(
                    select(OfferDecisionItem).where(OfferDecisionItem.decision_id.in_(ids))
                )
            ).scalars()
        )
        clipped = await clips_of(uow, items)
        by_id = {decision.id: decision for decision in decisions}
        observations = [
            _observation(by_id[item.decision_id], item, rewarded(item, clipped, window)) for item in items
        ]
        version, model = await latest_model(uow)
        learned = model.learned(observations)
        uow.session.add(
            OfferPolicyVersion(
                version=version + 1,
                created_at=now,
                model=learned.to_bytes(),
                observations=learned.observations,
                decisions_learned=len(decisions),
            )
        )
        await uow.session.execute(
            update(OfferDecision).where(OfferDecision.id.in_(ids)).values(learned_at=now)
        )
        return len(decisions)


async def clips_of(
    uow: UnitOfWork, items: Sequence[OfferDecisionItem]
) -> dict[tuple[uuid.UUID, uuid.UUID], datetime]:
    """When each member clipped each offer these decision items showed them (if they did)."""
    pairs = {(item.member_id, item.offer_id) for item in items}
    if not pairs:
        return {}
    rows = await uow.session.execute(
        select(OfferActivation.member_id, OfferActivation.offer_id, OfferActivation.activated_at).where(
            tuple_(OfferActivation.member_id, OfferActivation.offer_id).in_(pairs)
        )
    )
    return {(member_id, offer_id): at for member_id, offer_id, at in rows}


def rewarded(
    item: OfferDecisionItem, clipped: dict[tuple[uuid.UUID, uuid.UUID], datetime], window: timedelta
) -> bool:
    """The member clipped the offer within the reward window after this showing (every showing in the
    window earns the clip, not only the newest)."""
    at = clipped.get((item.member_id, item.offer_id))
    return at is not None and item.decided_at <= at <= item.decided_at + window


def _observation(decision: OfferDecision, item: OfferDecisionItem, rewarded: bool) -> Observation:
    candidates = msgspec.convert(decision.candidates, list[Candidate])
    shown = next(c for c in candidates if c.key == str(item.offer_id))
    context = context_vector(msgspec.convert(decision.context, Context))
    features = feature_matrix(context, [shown], item.position)[0]
    return Observation(shown.key, features, 1.0 if rewarded else 0.0)
