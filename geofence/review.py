"""Fraud review of check-ins for staff: who is rejected and why, and the flag that stops rewards."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

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
    existing = await uow.session.get(CheckInFlag, member_id)
    if existing is None:
        uow.session.add(CheckInFlag(member_id=member_id, flagged_at=now, flagged_by=staff_id, reason=reason))
    else:
        existing.reason, existing.flagged_by, existing.flagged_at = reason, staff_id, now


async def unflag_member(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    existing = await uow.session.get(CheckInFlag, member_id)
    if existing is not None:
        await uow.session.delete(existing)
