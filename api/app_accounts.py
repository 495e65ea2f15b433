"""Member account endpoints for the companion app."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from accounts import members
from accounts.schemas import (
    Credentials,
    MemberProfile,
    MemberSession,
    MemberTokenPair,
    PasswordConfirmation,
    ProfileChanges,
    RefreshRequest,
    SignUp,
)
from api.auth import MEMBER, Member
from api.services import IssuerDep, LoginLimitsDep, SignUpLimitsDep, Uow
from api.transactions import ONLY_READS


class AppAccountController(Controller):
    path = "/v1/app"
    tags = ["app: account"]

    @post("/members", status_code=HTTP_201_CREATED, summary="Sign up")
    async def sign_up(
        self, uow: Uow, issuer: IssuerDep, sign_up_limits: SignUpLimitsDep, data: JSONBody[SignUp]
    ) -> MemberSession:
        return await members.sign_up(uow, issuer, sign_up_limits, data)

    @post("/sessions", status_code=HTTP_200_OK, summary="Log in with email and password")
    async def log_in(
        self, uow: Uow, issuer: IssuerDep, login_limits: LoginLimitsDep, data: JSONBody[Credentials]
    ) -> MemberSession:
        return await members.log_in(uow, issuer, login_limits, data)

    @post("/sessions/refresh", status_code=HTTP_200_OK, summary="Rotate the refresh token for a new pair")
    async def refresh(self, uow: Uow, issuer: IssuerDep, data: JSONBody[RefreshRequest]) -> MemberTokenPair:
        return await members.refresh(uow, issuer, data.refresh_token)

    @post(
        "/sessions/logout",
        status_code=HTTP_204_NO_CONTENT,
        dependencies=MEMBER,
        security=[{"member": []}],
        summary="Log out: revoke this refresh token's family",
    )
    async def log_out(
        self, uow: Uow, issuer: IssuerDep, member: Member, data: JSONBody[RefreshRequest]
    ) -> None:
        await members.log_out(uow, issuer, member.member_id, data.refresh_token)

    @get("/me", dependencies=MEMBER, security=[{"member": []}], summary="My profile", opt=ONLY_READS)
    async def my_profile(self, uow: Uow, member: Member) -> MemberProfile:
        return await members.profile(uow, member.member_id)

    @patch(
        "/me",
        dependencies=MEMBER,
        security=[{"member": []}],
        summary="Change my display name, time zone or locale",
    )
    async def update_my_profile(
        self, uow: Uow, issuer: IssuerDep, member: Member, data: JSONBody[ProfileChanges]
    ) -> MemberProfile:
        return await members.update_profile(uow, issuer, member.member_id, data)

    @delete(
        "/me",
        status_code=HTTP_204_NO_CONTENT,
        dependencies=MEMBER,
        security=[{"member": []}],
        summary="Delete my account: personal data erased, points history kept anonymously",
    )
    async def delete_my_account(
        self, uow: Uow, issuer: IssuerDep, member: Member, data: JSONBody[PasswordConfirmation]
    ) -> None:
        await members.erase(uow, issuer, member.member_id, data.password)
