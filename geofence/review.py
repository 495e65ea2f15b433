"""Fraud review of check-ins for staff: who is rejected and why, and the flag that stops rewards."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from accounts.errors import MemberNotFound
from accounts.tables import Member
from geofence.limits import CheckInLimits
from geofence.schemas import FraudReview, SuspiciousMember, TravelPair
from geofence.tables import CheckInAttempt, CheckInFlag
from infra.db import UnitOfWork


async def fraud_review(
    uow: UnitOfWork, limits: CheckInLimits, since: datetime, limit: int, now: datetime
) -> FraudReview:
    rows = (
        await uow.session.execute(
            select(CheckInAttempt)
            .where(CheckInAttempt.outcome == "rejected", CheckInAttempt.attempted_at >= since)
            .order_by(CheckInAttempt.attempted_at)
        )
    ).scalars()
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    travel: dict[uuid.UUID, list[TravelPair]] = defaultdict(list)
    for attempt in rows:
        counts[attempt.member_id][attempt.reason or "unknown"] += 1
        other = attempt.evidence.get("other")
        if attempt.reason == "impossible_travel" and isinstance(other, dict):
            travel[attempt.member_id].append(
                TravelPair(
                    from_latitude=other["latitude"],
                    from_longitude=other["longitude"],
                    from_at=datetime.fromisoformat(other["fix_at"]),
                    to_latitude=attempt.latitude,
                    to_longitude=attempt.longitude,
                    to_at=attempt.fix_at,
                    speed_kmh=int(attempt.evidence.get("speed_kmh", 0)),
                )
            )
    flagged = set(
        (
            await uow.session.execute(select(CheckInFlag.member_id).where(CheckInFlag.member_id.in_(counts)))
        ).scalars()
    )
    ranked = sorted(counts, key=lambda m: (-sum(counts[m].values()), str(m)))[:limit]
    refused = await limits.refused_today(ranked, now)
    return FraudReview(
        since=since,
        members=[
            SuspiciousMember(
                member_id=m,
                rejections=dict(counts[m]),
                total_rejections=sum(counts[m].values()),
                impossible_travel=travel[m],
                flagged=m in flagged,
                refused_for_too_many_attempts_today=refused.get(m, 0),
            )
            for m in ranked
        ],
    )


async def flag_member(
    uow: UnitOfWork, member_id: uuid.UUID, staff_id: uuid.UUID, reason: str, now: datetime
) -> None:
    """Stop the member earning from check-ins (their visits are still recorded)."""
    if await uow.session.get(Member, member_id) is None:
        raise MemberNotFound()
    # One statement, so two staff flagging the member at once both succeed (the later reason stays).
    flag = {"flagged_at": now, "flagged_by": staff_id, "reason": reason}
    await uow.session.execute(
        pg_insert(CheckInFlag)
        .values(member_id=member_id, **flag)
        .on_conflict_do_update(index_elements=[CheckInFlag.member_id], set_=flag)
    )


async def unflag_member(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    # A statement, not an ORM delete: a second unflag at the same time finds nothing and is not an error.
    await uow.session.execute(delete(CheckInFlag).where(CheckInFlag.member_id == member_id))
