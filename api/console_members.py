"""Staff views of members and stores over the timeline."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.params import FromPath

from accounts import activity
from api.auth import STAFF, Staff
from api.params import TIMELINE_QUERY, TimelineQueryDep
from api.services import ClockDep, Uow
from timeline import service
from timeline.schemas import MemberTraitsView, TimelinePage


class ConsoleTimelineController(Controller):
    path = "/v1/console"
    tags = ["console: timeline"]
    security = [{"staff": []}]
    dependencies = STAFF

    @get(
        "/members/{member_id:uuid}/timeline",
        summary="One member's interactions, newest first",
        dependencies=TIMELINE_QUERY,
    )
    async def member_timeline(
        self, uow: Uow, staff: Staff, member_id: FromPath[uuid.UUID], timeline_query: TimelineQueryDep
    ) -> TimelinePage:
        q = timeline_query
        return await activity.member_timeline(uow, member_id, q.filters, q.cursor, q.limit)

    @get("/members/{member_id:uuid}/traits", summary="One member's traits, health score and lifecycle stage")
    async def member_traits(
        self, uow: Uow, clock: ClockDep, staff: Staff, member_id: FromPath[uuid.UUID]
    ) -> MemberTraitsView:
        return await activity.member_traits(uow, member_id, clock.now())

    @get(
        "/stores/{store_id:uuid}/activity",
        summary="A store's recent interactions, newest first",
        dependencies=TIMELINE_QUERY,
    )
    async def store_activity(
        self, uow: Uow, staff: Staff, store_id: FromPath[uuid.UUID], timeline_query: TimelineQueryDep
    ) -> TimelinePage:
        q = timeline_query
        return await service.store_activity(uow, store_id, q.filters, q.cursor, q.limit)
