"""A member's activity as the timeline keeps it, reported by their app or read by them and by staff.

The timeline records and computes; these use cases first establish who the member is (and their time
zone), which the timeline does not know.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from accounts.members import active_member, any_member
from infra.db import UnitOfWork
from timeline import service as timeline
from timeline.schemas import BatchResult, EventBatch, MemberTraitsView, TimelineFilter, TimelinePage


async def report_app_events(
    uow: UnitOfWork, member_id: uuid.UUID, batch: EventBatch, now: datetime
) -> BatchResult:
    """Record what the member's app observed (an erased account records nothing more)."""
    await active_member(uow, member_id)
    return await timeline.ingest_app_events(uow, member_id, batch, now)


async def member_timeline(
    uow: UnitOfWork, member_id: uuid.UUID, filters: TimelineFilter, cursor: str | None, limit: int
) -> TimelinePage:
    """Any member's interactions, newest first, for staff (an erased member's anonymous ones too)."""
    await any_member(uow, member_id)
    return await timeline.member_events(uow, member_id, filters, cursor, limit)


async def member_traits(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> MemberTraitsView:
    """The member's traits as of `now`, with hours in the member's own time zone."""
    member = await active_member(uow, member_id)
    return await timeline.member_traits(uow, member_id, member.time_zone, now)
