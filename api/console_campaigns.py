"""Push campaigns in the console: draft, estimate the audience, preview, schedule, cancel, report."""

from __future__ import annotations

import uuid

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import STAFF, Staff
from api.params import DEFAULT_LIMIT, Cursor, PageSize
from api.services import ClockDep, ProgramDep, PushPolicyDep, Uow
from push import audience, campaigns
from push.reports import campaign_report
from push.schemas import (
    CampaignChanges,
    CampaignDraft,
    CampaignPage,
    CampaignReport,
    CampaignView,
    MessagePreview,
    SegmentEstimate,
    SegmentQuery,
)


class ConsoleCampaignController(Controller):
    path = "/v1/console"
    tags = ["console: push campaigns"]
    security = [{"staff": []}]
    dependencies = STAFF

    @post("/campaigns", status_code=HTTP_201_CREATED, summary="Draft a campaign")
    async def create(
        self, uow: Uow, clock: ClockDep, staff: Staff, data: JSONBody[CampaignDraft]
    ) -> CampaignView:
        return await campaigns.create_campaign(uow, staff.staff_id, data, clock.now())

    @get("/campaigns", summary="Campaigns, newest first")
    async def list_campaigns(
        self, uow: Uow, staff: Staff, cursor: Cursor = None, limit: PageSize = DEFAULT_LIMIT
    ) -> CampaignPage:
        return await campaigns.list_campaigns(uow, cursor, limit)

    @get("/campaigns/{campaign_id:uuid}", summary="One campaign, with its deliveries by state")
    async def one_campaign(self, uow: Uow, staff: Staff, campaign_id: FromPath[uuid.UUID]) -> CampaignView:
        return await campaigns.get_campaign(uow, campaign_id)

    @patch("/campaigns/{campaign_id:uuid}", summary="Change a draft (a scheduled campaign cannot change)")
    async def change(
        self,
        uow: Uow,
        clock: ClockDep,
        staff: Staff,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[CampaignChanges],
    ) -> CampaignView:
        return await campaigns.change_campaign(uow, campaign_id, data, clock.now())

    @post("/campaigns/{campaign_id:uuid}/schedule", status_code=HTTP_200_OK, summary="Schedule a draft")
    async def schedule(
        self, uow: Uow, clock: ClockDep, staff: Staff, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignView:
        return await campaigns.schedule_campaign(uow, campaign_id, clock.now())

    @post(
        "/campaigns/{campaign_id:uuid}/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel: every message not yet handed to FCM stays unsent",
    )
    async def cancel(
        self, uow: Uow, clock: ClockDep, staff: Staff, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignView:
        return await campaigns.cancel_campaign(uow, campaign_id, clock.now())

    @get("/campaigns/{campaign_id:uuid}/report", summary="Sent, opened, converted and lift, per variant")
    async def report(
        self, uow: Uow, staff: Staff, push_policy: PushPolicyDep, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignReport:
        return await campaign_report(uow, campaign_id, push_policy)

    @get("/campaigns/{campaign_id:uuid}/preview", summary="The message one member would get")
    async def preview(
        self,
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        staff: Staff,
        campaign_id: FromPath[uuid.UUID],
        member_id: FromQuery[uuid.UUID],
    ) -> MessagePreview:
        return await campaigns.preview(uow, program, campaign_id, member_id, clock.now())

    @post("/segments/estimate", status_code=HTTP_200_OK, summary="How many members a segment reaches now")
    async def estimate(
        self, uow: Uow, clock: ClockDep, staff: Staff, data: JSONBody[SegmentQuery]
    ) -> SegmentEstimate:
        return await audience.estimate(uow, data.segment, clock.now())
