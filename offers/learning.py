"""The worker's policy update: rewards joined to their decisions, learned, served as a new version.

A decision is learned once its reward window has closed, so a clip that comes late is never counted as
a miss: the reward of each offer it showed is 1 if the member clipped that offer within the window after
the decision, else 0. Each run adds one batch to the newest model and stores the sum as the next version,
marking the batch learned in the same transaction (a crash learns it again, never twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from sqlalchemy import select, update

from infra.db import Database
from infra.locks import lock_until_commit
from offers.program import OfferProgram
from offers.rules.features import Candidate, Context, context_vector, feature_matrix
from offers.rules.policy import Observation
from offers.tables import OfferActivation, OfferDecision, OfferDecisionItem, OfferPolicyVersion
from offers.versions import latest_model


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
        items = (
            await uow.session.execute(select(OfferDecisionItem).where(OfferDecisionItem.decision_id.in_(ids)))
        ).scalars()
        clipped = {
            (decision_id, offer_id, activated_at)
            for decision_id, offer_id, activated_at in await uow.session.execute(
                select(
                    OfferActivation.decision_id, OfferActivation.offer_id, OfferActivation.activated_at
                ).where(OfferActivation.decision_id.in_(ids))
            )
        }
        by_id = {decision.id: decision for decision in decisions}
        rewarded = {
            (decision_id, offer_id)
            for decision_id, offer_id, at in clipped
            if decision_id is not None and at <= by_id[decision_id].decided_at + window
        }
        observations = [
            _observation(by_id[item.decision_id], item, (item.decision_id, item.offer_id) in rewarded)
            for item in items
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


def _observation(decision: OfferDecision, item: OfferDecisionItem, rewarded: bool) -> Observation:
    candidates = msgspec.convert(decision.candidates, list[Candidate])
    shown = next(c for c in candidates if c.key == str(item.offer_id))
    context = context_vector(msgspec.convert(decision.context, Context))
    features = feature_matrix(context, [shown], item.position)[0]
    return Observation(shown.key, features, 1.0 if rewarded else 0.0)
