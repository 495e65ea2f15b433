"""The member's points, history, member code and devices in the companion app."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get
from litestar.params import FromPath, PathParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from accounts import devices
from accounts.device_secrets import MAX_DEVICE_SLOT
from accounts.devices import DeviceView
from api.auth import MEMBER, Member
from api.openapi_problems import problem_response
from api.params import DEFAULT_LIMIT, Cursor, PageSize
from api.services import ClockDep, ProgramDep, SettingsDep, Uow
from api.transactions import ONLY_READS
from points import service
from points.schemas import HistoryPage, MemberCodeView, PointsSummary

Slot = Annotated[int, PathParameter(ge=0, le=MAX_DEVICE_SLOT)]


class AppPointsController(Controller):
    path = "/v1/app"
    tags = ["app: points"]
    security = [{"member": []}]
    dependencies = MEMBER

    @get(
        "/points",
        summary="Balances, next expiry, miles this period, stage and the next one",
        opt=ONLY_READS,
    )
    async def points(self, uow: Uow, clock: ClockDep, program: ProgramDep, member: Member) -> PointsSummary:
        return await service.points_summary(uow, program, member.member_id, clock.now())

    @get(
        "/points/history",
        summary="Every change of my points, newest first, with its reason",
        opt=ONLY_READS,
    )
    async def history(
        self, uow: Uow, member: Member, cursor: Cursor = None, limit: PageSize = DEFAULT_LIMIT
    ) -> HistoryPage:
        return await service.points_history(uow, member.member_id, cursor, limit)

    @get(
        "/member-code",
        summary="The member code to show now (the app can also compute it offline)",
        responses={404: problem_response(404, "This login's device was revoked (`device_not_found`)")},
    )
    async def member_code(
        self, uow: Uow, clock: ClockDep, settings: SettingsDep, member: Member
    ) -> MemberCodeView:
        return await service.current_member_code(
            uow,
            settings.key_ring("code_signing_key").current.secret,
            member.member_id,
            member.device_slot,
            clock.now(),
        )

    @get("/devices", summary="My logged-in devices", opt=ONLY_READS)
    async def my_devices(self, uow: Uow, member: Member) -> list[DeviceView]:
        return await devices.list_devices(uow, member.member_id, member.device_slot)

    @delete(
        "/devices/{slot:int}", status_code=HTTP_204_NO_CONTENT, summary="Revoke a device (e.g. a lost phone)"
    )
    async def revoke_device(self, uow: Uow, clock: ClockDep, member: Member, slot: FromPath[Slot]) -> None:
        await devices.revoke_device(uow, member.member_id, slot, clock.now())
