"""Member use cases: sign up, log in, refresh, log out, profile, erasure."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime

import msgspec
from sqlalchemy import ColumnElement, ColumnExpressionArgument, delete, exists, select

from accounts.devices import current_device_credentials, register_device, revoke_device
from accounts.errors import DeviceNotFound, EmailTaken, InvalidCredentials, MemberNotFound
from accounts.login_limits import LoginLimits, SignUpLimits
from accounts.rules import check_password_policy, new_card_number, normalised_email
from accounts.schemas import (
    Credentials,
    MemberProfile,
    MemberSession,
    MemberTokenPair,
    ProfileChanges,
    SignUp,
)
from accounts.sessions import (
    TokenIssuer,
    TokenOwner,
    issue_token_pair,
    revoke_all_of,
    revoke_family,
    rotate_refresh_token,
)
from accounts.tables import Member, MemberDevice
from domain.interactions import Channel, InteractionKind
from domain.passwords import hash_password, verify_password
from domain.time_zones import checked_time_zone
from domain.tokens import Audience
from infra.db import UnitOfWork
from timeline.recording import record
from timeline.rules import EventDraft
from timeline.service import forget_member


def member_owner(member_id: uuid.UUID, device_slot: int | None = None) -> TokenOwner:
    return TokenOwner(Audience.MEMBER, member_id, device_slot)


def profile_of(member: Member) -> MemberProfile:
    assert member.email is not None, "erased members have no profile"
    assert member.display_name is not None
    return MemberProfile(
        id=member.id,
        card_number=member.card_number,
        email=member.email,
        display_name=member.display_name,
        time_zone=member.time_zone,
        locale=member.locale,
        created_at=member.created_at,
    )


async def sign_up(
    uow: UnitOfWork, issuer: TokenIssuer, limits: SignUpLimits, request: SignUp
) -> MemberSession:
    await limits.count_attempt()  # before any work: a refused burst hashes no password, writes nothing
    email = normalised_email(request.email)
    check_password_policy(request.password, email)
    time_zone = checked_time_zone(request.time_zone)
    if await _member_by_email(uow, email) is not None:
        raise EmailTaken()
    now = issuer.clock.now()
    member = Member(
        card_number=new_card_number(),
        email=email,
        # argon2 takes tens of milliseconds of CPU: off the event loop so other requests go on.
        password_hash=await asyncio.to_thread(hash_password, request.password),
        display_name=request.display_name.strip(),
        time_zone=time_zone,
        locale=request.locale,
        created_at=now,
        updated_at=now,
    )
    # Two sign-ups with one email at once: the unique index decides, the loser is told plainly.
    await uow.add_unique(member, EmailTaken())
    await record(uow, _member_event(member.id, InteractionKind.MEMBER_JOINED, now), now)
    return await _new_login(uow, issuer, member)


async def log_in(
    uow: UnitOfWork, issuer: TokenIssuer, limits: LoginLimits, request: Credentials
) -> MemberSession:
    email = normalised_email(request.email)
    await limits.count_attempt("member", email)
    member = await _member_by_email(uow, email)
    password_hash = member.password_hash if member is not None else None
    if not await asyncio.to_thread(verify_password, password_hash, request.password) or member is None:
        raise InvalidCredentials()
    return await _new_login(uow, issuer, member)


async def _new_login(uow: UnitOfWork, issuer: TokenIssuer, member: Member) -> MemberSession:
    device = await register_device(uow, member.id, issuer.code_signing_keys.current, issuer.clock.now())
    tokens = await issue_token_pair(uow, issuer, member_owner(member.id, device.slot), role=None)
    return MemberSession(member=profile_of(member), tokens=tokens, device=device)


async def log_out(uow: UnitOfWork, issuer: TokenIssuer, member_id: uuid.UUID, refresh_token: str) -> None:
    """End this login: its refresh tokens and its device (codes shown by that phone stop working)."""
    device_slot = await revoke_family(uow, issuer.clock, member_owner(member_id), refresh_token)
    if device_slot is not None:
        with contextlib.suppress(DeviceNotFound):  # already revoked from another phone
            await revoke_device(uow, member_id, device_slot, issuer.clock.now())


async def refresh(uow: UnitOfWork, issuer: TokenIssuer, refresh_token: str) -> MemberTokenPair:
    owner, family_id = await rotate_refresh_token(uow, issuer, Audience.MEMBER, refresh_token)
    tokens = await issue_token_pair(uow, issuer, owner, role=None, family_id=family_id)
    device = await current_device_credentials(
        uow, owner.subject_id, owner.device_slot, issuer.code_signing_keys.current
    )
    return MemberTokenPair(**msgspec.structs.asdict(tokens), device=device)


async def profile(uow: UnitOfWork, member_id: uuid.UUID) -> MemberProfile:
    return profile_of(await active_member(uow, member_id))


async def update_profile(
    uow: UnitOfWork, issuer: TokenIssuer, member_id: uuid.UUID, changes: ProfileChanges
) -> MemberProfile:
    member = await active_member(uow, member_id, for_update=True)
    changed = [field for field in ProfileChanges.__struct_fields__ if getattr(changes, field) is not None]
    if changes.display_name is not None:
        member.display_name = changes.display_name.strip()
    if changes.time_zone is not None:
        member.time_zone = checked_time_zone(changes.time_zone)
    if changes.locale is not None:
        member.locale = changes.locale
    now = issuer.clock.now()
    member.updated_at = now
    if changed:
        await record(uow, _member_event(member.id, InteractionKind.PROFILE_UPDATED, now, fields=changed), now)
    return profile_of(member)


async def erase(uow: UnitOfWork, issuer: TokenIssuer, member_id: uuid.UUID, password: str) -> None:
    """Delete the account: personal data is erased; the row stays as the anonymous owner of ledger history."""
    member = await active_member(uow, member_id, for_update=True)
    if not await asyncio.to_thread(verify_password, member.password_hash, password):
        raise InvalidCredentials("the password is wrong; the account was not deleted")
    now = issuer.clock.now()
    member.email = None
    member.password_hash = None
    member.display_name = None
    member.erased_at = now
    member.updated_at = now
    await revoke_all_of(uow, issuer.clock, member_owner(member.id))
    await forget_member(uow, member.id)
    await uow.session.execute(delete(MemberDevice).where(MemberDevice.member_id == member.id))


def _member_event(
    member_id: uuid.UUID, kind: InteractionKind, at: datetime, **properties: list[str]
) -> EventDraft:
    return EventDraft(
        member_id=member_id, kind=kind, occurred_at=at, channel=Channel.APP, properties=dict(properties)
    )


async def _member_by_email(uow: UnitOfWork, email: str) -> Member | None:
    return (await uow.session.execute(select(Member).where(Member.email == email))).scalar_one_or_none()


async def any_member(uow: UnitOfWork, member_id: uuid.UUID) -> Member:
    """The member, erased or not (staff may read an erased member's anonymous history)."""
    member = await uow.session.get(Member, member_id)
    if member is None:
        raise MemberNotFound()
    return member


async def active_member(uow: UnitOfWork, member_id: uuid.UUID, *, for_update: bool = False) -> Member:
    query = select(Member).where(Member.id == member_id, Member.erased_at.is_(None))
    if for_update:
        query = query.with_for_update()
    member = (await uow.session.execute(query)).scalar_one_or_none()
    if member is None:
        raise MemberNotFound()
    return member


async def display_names(uow: UnitOfWork, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of the members not erased (an erased member has none and gets no messages)."""
    rows = await uow.session.execute(
        select(Member.id, Member.display_name).where(Member.id.in_(member_ids), Member.erased_at.is_(None))
    )
    return {member_id: name for member_id, name in rows if name is not None}


async def active_members_after(
    uow: UnitOfWork,
    after: uuid.UUID | None,
    limit: int,
    also: Callable[[ColumnExpressionArgument[uuid.UUID]], ColumnElement[bool]] | None = None,
) -> list[tuple[uuid.UUID, str]]:
    """(id, time zone) of members not erased (and meeting `also`, a condition on their id), in id order
    after `after`: for sweeps over everyone."""
    query = select(Member.id, Member.time_zone).where(Member.erased_at.is_(None))
    if also is not None:
        query = query.where(also(Member.id))
    if after is not None:
        query = query.where(Member.id > after)
    rows = await uow.session.execute(query.order_by(Member.id).limit(limit))
    return [(member_id, zone) for member_id, zone in rows]


async def time_zones(uow: UnitOfWork, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await uow.session.execute(select(Member.id, Member.time_zone).where(Member.id.in_(member_ids)))
    return {member_id: zone for member_id, zone in rows}


def is_active(member_id: ColumnExpressionArgument[uuid.UUID]) -> ColumnElement[bool]:
    """SQL: the member's account exists and is not erased (audience segments)."""
    return exists().where(Member.id == member_id, Member.erased_at.is_(None))
