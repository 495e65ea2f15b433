"""The app's side of the customer-time timeline: report interactions, read one's own history."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts import activity
from api.auth import MEMBER, Member
from api.params import TIMELINE_QUERY, TimelineQueryDep
from api.services import ClockDep, Uow
from api.transactions import ONLY_READS
from timeline import service
from timeline.schemas import BatchResult, EventBatch, TimelinePage


class AppTimelineController(Controller):
    path = "/v1/app"
    tags = ["app: timeline"]
    security = [{"member": []}]
    dependencies = MEMBER

    @post(
        "/events",
        status_code=HTTP_200_OK,
        summary="Report up to 100 interactions the app observed",
        description="Idempotent per client_event_id; each event is recorded, duplicate or rejected alone.",
    )
    async def report_events(
        self, uow: Uow, clock: ClockDep, member: Member, data: JSONBody[EventBatch]
    ) -> BatchResult:
        return await activity.report_app_events(uow, member.member_id, data, clock.now())

    @get("/timeline", summary="My interactions, newest first", dependencies=TIMELINE_QUERY, opt=ONLY_READS)
    async def my_timeline(self, uow: Uow, member: Member, timeline_query: TimelineQueryDep) -> TimelinePage:
        q = timeline_query
        return await service.own_timeline(uow, member.member_id, q.filters, q.cursor, q.limit)
