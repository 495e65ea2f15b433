"""Fraud review of check-ins, for admins (as the console's check-in review page): marketers neither see
who is suspected nor stop anyone earning."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from api.auth import ADMIN, Admin
from api.params import utc_query_time
from api.services import ClockDep, Uow, services_of
from geofence import review
from geofence.schemas import FlagRequest, FraudReview

Since = Annotated[datetime | None, QueryParameter(description="rejections since (default: 7 days ago)")]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]


class ConsoleFraudController(Controller):
    path = "/v1/console"
    tags = ["console: fraud review"]
    security = [{"staff": []}]
    dependencies = ADMIN

    @get("/fraud/check-ins", summary="Members with rejected check-ins: counts by reason, impossible travel")
    async def review(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        admin: Admin,
        since: Since = None,
        limit: Limit = 100,
    ) -> FraudReview:
        now = clock.now()
        limits = services_of(request.app.state).check_in_limits
        start = utc_query_time("since", since) or now - timedelta(days=7)
        return await review.fraud_review(uow, limits, start, limit, now)

    @put(
        "/members/{member_id:uuid}/check-in-flag",
        status_code=HTTP_204_NO_CONTENT,
        summary="Stop a member earning from check-ins",
    )
    async def flag(
        self,
        uow: Uow,
        clock: ClockDep,
        admin: Admin,
        member_id: FromPath[uuid.UUID],
        data: JSONBody[FlagRequest],
    ) -> None:
        await review.flag_member(uow, member_id, admin.staff_id, data.reason, clock.now())

    @delete(
        "/members/{member_id:uuid}/check-in-flag",
        status_code=HTTP_204_NO_CONTENT,
        summary="Let a member earn from check-ins again",
    )
    async def unflag(self, uow: Uow, admin: Admin, member_id: FromPath[uuid.UUID]) -> None:
        await review.unflag_member(uow, member_id)
