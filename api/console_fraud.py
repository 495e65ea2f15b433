"""Fraud review of check-ins for staff."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from litestar import Controller, delete, get, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from api.auth import STAFF, Staff
from api.services import ClockDep, Uow
from geofence import service
from geofence.schemas import FlagRequest, FraudReview

Since = Annotated[datetime | None, QueryParameter(description="rejections since (default: 7 days ago)")]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]


class ConsoleFraudController(Controller):
    path = "/v1/console"
    tags = ["console: fraud review"]
    security = [{"staff": []}]
    dependencies = STAFF

    @get("/fraud/check-ins", summary="Members with rejected check-ins: counts by reason, impossible travel")
    async def review(
        self, uow: Uow, clock: ClockDep, staff: Staff, since: Since = None, limit: Limit = 100
    ) -> FraudReview:
        return await service.fraud_review(uow, since or clock.now() - timedelta(days=7), limit)

    @put(
        "/members/{member_id:uuid}/check-in-flag",
        status_code=HTTP_204_NO_CONTENT,
        summary="Stop a member earning from check-ins",
    )
    async def flag(
        self,
        uow: Uow,
        clock: ClockDep,
        staff: Staff,
        member_id: FromPath[uuid.UUID],
        data: JSONBody[FlagRequest],
    ) -> None:
        await service.flag_member(uow, member_id, staff.staff_id, data.reason, clock.now())

    @delete(
        "/members/{member_id:uuid}/check-in-flag",
        status_code=HTTP_204_NO_CONTENT,
        summary="Let a member earn from check-ins again",
    )
    async def unflag(self, uow: Uow, staff: Staff, member_id: FromPath[uuid.UUID]) -> None:
        await service.unflag_member(uow, member_id)
