"""Who is calling: member and staff bearer tokens, signed POS terminals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from accounts.errors import AccessTokenExpired, AccessTokenInvalid, StaffRoleRequired
from accounts.rules import StaffRole
from accounts.staff import enabled_staff
from api.services import Uow, services_of
from api.transactions import request_unit_of_work
from domain.tokens import AccessClaims, Audience, TokenExpired, TokenInvalid, read_access_token
from stores.pos_auth import AuthenticatedTerminal, SignedRequest
from stores.pos_signature import KEY_ID_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER


@dataclass(frozen=True)
class MemberPrincipal:
    member_id: uuid.UUID
    device_slot: int | None


@dataclass(frozen=True)
class StaffPrincipal:
    staff_id: uuid.UUID
    role: StaffRole


def _claims(request: Request[Any, Any, Any], state: State, audience: Audience) -> AccessClaims:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AccessTokenInvalid("send 'Authorization: Bearer <access token>'")
    services = services_of(state)
    try:
        claims = read_access_token(
            services.issuer.signing_keys, token.strip(), audience, services.clock.now()
        )
    except TokenExpired as error:
        raise AccessTokenExpired() from error
    except TokenInvalid as error:
        raise AccessTokenInvalid() from error
    return claims


def provide_member(request: Request[Any, Any, Any], state: State) -> MemberPrincipal:
    claims = _claims(request, state, Audience.MEMBER)
    return MemberPrincipal(claims.subject_id, claims.device_slot)


async def provide_staff(request: Request[Any, Any, Any], state: State, uow: Uow) -> StaffPrincipal:
    """The account as it stands, not as the token says: disabling or demoting it takes effect on the
    next request, not when its access token expires."""
    claims = _claims(request, state, Audience.STAFF)
    staff = await enabled_staff(uow, claims.subject_id)
    return StaffPrincipal(staff.id, staff.role)


def provide_admin(staff: NamedDependency[StaffPrincipal]) -> StaffPrincipal:
    if staff.role is not StaffRole.ADMIN:
        raise StaffRoleRequired("this action needs the admin role")
    return staff


async def provide_terminal(request: Request[Any, Any, Any], state: State, uow: Uow) -> AuthenticatedTerminal:
    query = request.scope.get("query_string", b"").decode()
    signed = SignedRequest(
        method=request.method,
        path_with_query=request.url.path + (f"?{query}" if query else ""),
        body=await request.body(),
        key_id=request.headers.get(KEY_ID_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        nonce=request.headers.get(NONCE_HEADER),
    )
    return await services_of(state).pos_auth.authenticate(uow, signed)


async def authenticate(request: Request[Any, Any, Any]) -> None:
    """Check the credentials the handler's security names, and the admin role where it needs one (401 or
    403 if refused). For a request about to be refused for its body: the caller learns nothing about the
    body before proving who it is and that it may call the operation at all."""
    state = request.app.state
    for requirement in request.route_handler.resolve_security():
        for scheme in requirement:
            if scheme == "member":
                provide_member(request, state)
            elif scheme == "staff":
                staff = await provide_staff(request, state, request_unit_of_work(request))
                if "admin" in request.route_handler.resolve_dependencies():
                    provide_admin(staff)
            elif scheme == "pos_signature":
                await provide_terminal(request, state, request_unit_of_work(request))


Member = NamedDependency[MemberPrincipal]
Staff = NamedDependency[StaffPrincipal]
Admin = NamedDependency[StaffPrincipal]
Terminal = NamedDependency[AuthenticatedTerminal]

MEMBER = {"member": Provide(provide_member, sync_to_thread=False)}
STAFF = {"staff": Provide(provide_staff)}
ADMIN = {**STAFF, "admin": Provide(provide_admin, sync_to_thread=False)}
TERMINAL = {"terminal": Provide(provide_terminal)}
