"""Staff sessions for the marketer/admin console."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from accounts import staff as staff_accounts
from accounts.schemas import Credentials, RefreshRequest, StaffProfile, StaffSession, TokenPair
from accounts.sessions import TokenOwner, revoke_family
from api.auth import STAFF, Staff
from api.services import IssuerDep, LoginLimitsDep, Uow
from domain.tokens import Audience


class ConsoleAccountController(Controller):
    path = "/v1/console"
    tags = ["console: account"]

    @post("/sessions", status_code=HTTP_200_OK, summary="Staff log in")
    async def log_in(
        self, uow: Uow, issuer: IssuerDep, login_limits: LoginLimitsDep, data: JSONBody[Credentials]
    ) -> StaffSession:
        return await staff_accounts.log_in(uow, issuer, login_limits, data)

    @post("/sessions/refresh", status_code=HTTP_200_OK, summary="Rotate the staff refresh token")
    async def refresh(self, uow: Uow, issuer: IssuerDep, data: JSONBody[RefreshRequest]) -> TokenPair:
        return await staff_accounts.refresh(uow, issuer, data.refresh_token)

    @post(
        "/sessions/logout",
        status_code=HTTP_204_NO_CONTENT,
        dependencies=STAFF,
        security=[{"staff": []}],
        summary="Staff log out",
    )
    async def log_out(
        self, uow: Uow, issuer: IssuerDep, staff: Staff, data: JSONBody[RefreshRequest]
    ) -> None:
        owner = TokenOwner(Audience.STAFF, staff.staff_id)
        await revoke_family(uow, issuer.clock, owner, data.refresh_token)

    @get("/me", dependencies=STAFF, security=[{"staff": []}], summary="The signed-in staff member")
    async def me(self, uow: Uow, staff: Staff) -> StaffProfile:
        return await staff_accounts.profile(uow, staff.staff_id)
