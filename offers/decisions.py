"""The decision log as logged-bandit data (JSON lines of offers.logs.LoggedDecision): one line per slot,
its candidates those left for the slot, its reward the clip within the reward window."""

from __future__ import annotations

from datetime import timedelta
from typing import BinaryIO

import msgspec
from sqlalchemy import select

from infra.db import Database
from offers.logs import LoggedDecision
from offers.program import OfferProgram
from offers.rules.features import Candidate, Context
from offers.tables import OfferActivation, OfferDecision, OfferDecisionItem

_BATCH = 1_000


async def export_log(db: Database, out: BinaryIO, program: OfferProgram) -> int:
    window = timedelta(hours=program.reward_window_hours)
    written = 0
    after = None
    while True:
        async with db.unit_of_work() as uow:
            query = select(OfferDecision).order_by(OfferDecision.id).limit(_BATCH)
            if after is not None:
                query = query.where(OfferDecision.id > after)
            decisions = list((await uow.session.execute(query)).scalars())
            if not decisions:
                return written
            ids = [decision.id for decision in decisions]
            items = list(
                (
                    await uow.session.execute(
                        select(OfferDecisionItem)
                        .where(OfferDecisionItem.decision_id.in_(ids))
                        .order_by(OfferDecisionItem.decision_id, OfferDecisionItem.position)
                    )
                ).scalars()
            )
            clips = {
                (decision_id, offer_id): at
                for decision_id, offer_id, at in await uow.session.execute(
                    select(
                        OfferActivation.decision_id, OfferActivation.offer_id, OfferActivation.activated_at
                    ).where(OfferActivation.decision_id.in_(ids))
                )
            }
        by_id = {decision.id: decision for decision in decisions}
        shown_before: dict[object, set[str]] = {}
        for item in items:
            decision = by_id[item.decision_id]
            earlier = shown_before.setdefault(item.decision_id, set())
            candidates = tuple(
                c for c in msgspec.convert(decision.candidates, list[Candidate]) if c.key not in earlier
            )
            clipped_at = clips.get((item.decision_id, item.offer_id))
            line = LoggedDecision(
                decided_at=decision.decided_at,
                context=msgspec.convert(decision.context, Context),
                position=item.position,
                candidates=candidates,
                chosen=str(item.offer_id),
                propensity=item.propensity,
                reward=1.0 if clipped_at is not None and clipped_at <= decision.decided_at + window else 0.0,
            )
            out.write(msgspec.json.encode(line) + b"\n")
            earlier.add(str(item.offer_id))
            written += 1
        after = decisions[-1].id
