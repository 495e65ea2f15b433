"""The membership at a glance for the console: how many members, how many active, lifecycle stages.

Erased members are not members any more: they are counted nowhere here (`members.is_active`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import func, select

from accounts.members import is_active, time_zones
from accounts.tables import Member
from infra.db import UnitOfWork
from timeline.overview import active_since, lifecycle_counts, recently_active
from timeline.traits import LifecycleStage

ACTIVE_DAYS = 30
NEW_DAYS = 7


class MemberCounts(msgspec.Struct, frozen=True):
    total: int  # members not erased
    active_30_days: int  # of them, those who interacted on one of the last 30 UTC days (today included)
    new_7_days: int  # of them, those who joined in the 7 days before now


class LifecycleCount(msgspec.Struct, frozen=True):
    stage: LifecycleStage
    members: int


async def member_counts(uow: UnitOfWork, now: datetime) -> MemberCounts:
    """One query; "active" reads the daily activity rows (one per member and day), not the event log."""
    since = (now - timedelta(days=ACTIVE_DAYS)).date()
    total, active, new = (
        await uow.session.execute(
            select(
                func.count(),
                func.count().filter(active_since(Member.id, since)),
                func.count().filter(
                    Member.created_at > now - timedelta(days=NEW_DAYS), Member.created_at <= now
                ),
            ).where(Member.erased_at.is_(None))
        )
    ).one()
    return MemberCounts(total=int(total), active_30_days=int(active), new_7_days=int(new))


async def count_members(uow: UnitOfWork) -> int:
    """How many members there are (not erased)."""
    return int(await uow.session.scalar(select(func.count()).where(Member.erased_at.is_(None))) or 0)


async def lifecycle_distribution(uow: UnitOfWork, now: datetime) -> list[LifecycleCount]:
    """Members per lifecycle stage as of `now`, every stage listed (two set-based queries).

    Stages are those the member's traits show (timeline.traits); a member the timeline has nothing on
    counts as lapsed, as their traits say.
    """
    counted = await lifecycle_counts(uow, now, is_active)
    unrecorded = await count_members(uow) - sum(counted.values())
    counted[LifecycleStage.LAPSED] = counted.get(LifecycleStage.LAPSED, 0) + max(0, unrecorded)
    return [LifecycleCount(stage=stage, members=counted.get(stage, 0)) for stage in LifecycleStage]


async def recently_active_members(uow: UnitOfWork, now: datetime, limit: int) -> dict[uuid.UUID, str]:
    """Up to `limit` members (not erased) with an interaction recorded in the 30 days before `now`, most
    recently active first, with their time zones."""
    member_ids = await recently_active(uow, now - timedelta(days=ACTIVE_DAYS), limit, is_active)
    zones = await time_zones(uow, member_ids)
    return {member_id: zones[member_id] for member_id in member_ids if member_id in zones}
