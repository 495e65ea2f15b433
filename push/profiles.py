"""Audience profiles: each member's traits, kept where segments can query them.

The worker sweeps every member hourly (traits change as time passes, not only with events), and before
a campaign's audience is drawn it profiles the members who have none yet (new sign-ups). A profile is
as of its `refreshed_at`; the segment estimate says how old the oldest one counted is.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, ColumnExpressionArgument, delete, exists
from sqlalchemy.dialects.postgresql import insert as pg_insert

from accounts.members import active_members_after, is_active
from infra.db import Database
from points.miles import stages_of
from points.program import Program
from push.tables import AudienceProfile
from timeline.service import traits_of_members

PAGE = 500
_UPSERT = pg_insert(AudienceProfile)
_REFRESH = _UPSERT.on_conflict_do_update(
    index_elements=["member_id"],
    set_={
        column: getattr(_UPSERT.excluded, column)
        for column in AudienceProfile.__table__.columns.keys()  # noqa: SIM118 - names, not columns
        if column != "member_id"
    },
)


async def refresh_profiles(
    db: Database, program: Program, now: datetime, *, only_missing: bool = False
) -> int:
    """Profile every member (or only those without a profile); returns how many were profiled."""
    profiled = 0
    after: uuid.UUID | None = None
    while True:
        async with db.unit_of_work() as uow:
            members = await active_members_after(uow, after, PAGE, _unprofiled if only_missing else None)
            if not members:
                break
            after = members[-1][0]
            zones = dict(members)
            traits = await traits_of_members(uow, zones, now)
            stages = await stages_of(uow, program, list(zones), now)
            await uow.session.execute(
                _REFRESH,
                [
                    {
                        "member_id": member_id,
                        "time_zone": zone,
                        "lifecycle_stage": traits[member_id].lifecycle_stage.value,
                        "health_score": traits[member_id].health_score,
                        "recency": traits[member_id].rfm.recency,
                        "frequency": traits[member_id].rfm.frequency,
                        "monetary": traits[member_id].rfm.monetary,
                        "favourite_store_id": traits[member_id].favourite_store_id,
                        "stage": stages[member_id].value,
                        "engagement_hours": traits[member_id].engagement_hours(),
                        "refreshed_at": now,
                    }
                    for member_id, zone in zones.items()
                ],
            )
            profiled += len(zones)
    async with db.unit_of_work() as uow:  # members erased since: no profile, no audience
        await uow.session.execute(delete(AudienceProfile).where(~is_active(AudienceProfile.member_id)))
    return profiled


def _unprofiled(member_id: ColumnExpressionArgument[uuid.UUID]) -> ColumnElement[bool]:
    return ~exists().where(AudienceProfile.member_id == member_id)
