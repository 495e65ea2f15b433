"""Where the companion app asks for push messages to be sent: this device's FCM address."""

from __future__ import annotations

from litestar import Controller, delete, put
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from accounts.push_addresses import PushRegistration, forget_push_address, register_push_address
from api.auth import MEMBER, Member
from api.services import ClockDep, Uow


class AppPushController(Controller):
    path = "/v1/app/devices/current/push-address"
    tags = ["app: push"]
    security = [{"member": []}]
    dependencies = MEMBER

    @put(
        status_code=HTTP_204_NO_CONTENT,
        summary="Register or refresh this device's FCM address (on every app start and token change)",
    )
    async def register(
        self, uow: Uow, clock: ClockDep, member: Member, data: JSONBody[PushRegistration]
    ) -> None:
        await register_push_address(uow, member.member_id, member.device_slot, data, clock.now())

    @delete(status_code=HTTP_204_NO_CONTENT, summary="Stop push messages to this device")
    async def forget(self, uow: Uow, member: Member) -> None:
        await forget_push_address(uow, member.member_id, member.device_slot)
