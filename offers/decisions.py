"""The decision log as logged-bandit data (JSON lines of offers.logs.LoggedDecision): one line per slot,
its candidates those left for the slot, its reward the clip within the reward window (as the worker
learns it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import BinaryIO

import msgspec
from sqlalchemy import select

from infra.db import Database
from offers.learning import clips_of, rewarded
from offers.logs import LoggedDecision
from offers.program import OfferProgram
from offers.rules.features import Candidate, Context
from offers.tables import OfferDecision, OfferDecisionItem

_BATCH = 1_000


async def export_log(db: Database, out: BinaryIO, program: OfferProgram, now: datetime) -> int:
    """Decisions whose reward window has closed (an open one's reward is not known yet)."""
    window = timedelta(hours=program.reward_window_hours)
    written = 0
    after = None
    while True:
        async with db.unit_of_work() as uow:
            query = (
                select(OfferDecision)
                .where(OfferDecision.decided_at <= now - window)
                .order_by(OfferDecision.id)
                .limit(_BATCH)
            )
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
            clipped = await clips_of(uow, items)
        by_id = {decision.id: decision for decision in decisions}
        shown_before: dict[object, set[str]] = {}
        for item in items:
            decision = by_id[item.decision_id]
            earlier = shown_before.setdefault(item.decision_id, set())
            candidates = tuple(
                c for c in msgspec.convert(decision.candidates, list[Candidate]) if c.key not in earlier
            )
            line = LoggedDecision(
                decided_at=decision.decided_at,
                context=msgspec.convert(decision.context, Context),
                position=item.position,
                candidates=candidates,
                chosen=str(item.offer_id),
                propensity=item.propensity,
                reward=1.0 if rewarded(item, clipped, window) else 0.0,
            )
            out.write(msgspec.json.encode(line) + b"\n")
            earlier.add(str(item.offer_id))
            written += 1
        after = decisions[-1].id
