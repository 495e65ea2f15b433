"""Token pairs: issuing, rotating and revoking refresh-token families."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, select, update

from accounts.errors import RefreshTokenInvalid, RefreshTokenReused, RefreshTokenRevoked
from accounts.rules import RefreshVerdict, refresh_verdict
from accounts.schemas import TokenPair
from accounts.tables import MemberDevice, RefreshToken
from domain.clock import Clock
from domain.ids import new_id
from domain.keys import KeyRing
from domain.tokens import Audience, issue_access_token, new_refresh_token, refresh_token_digest
from infra.db import UnitOfWork


@dataclass(frozen=True)
class TokenIssuer:
    """Issues a login's credentials: access and refresh tokens, and (members) the device code secret."""

    signing_keys: KeyRing
    code_signing_keys: KeyRing
    access_ttl: timedelta
    refresh_ttl: timedelta
    clock: Clock


@dataclass(frozen=True)
class TokenOwner:
    audience: Audience
    subject_id: uuid.UUID
    device_slot: int | None = None  # the member device this login's codes come from

    @property
    def is_member(self) -> bool:
        return self.audience is Audience.MEMBER

    def owns(self) -> ColumnElement[bool]:
        column = RefreshToken.member_id if self.is_member else RefreshToken.staff_id
        return column == self.subject_id


async def issue_token_pair(
    uow: UnitOfWork,
    issuer: TokenIssuer,
    owner: TokenOwner,
    role: str | None,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    now = issuer.clock.now()
    access_token, access_expires_at = issue_access_token(
        issuer.signing_keys.current,
        owner.subject_id,
        owner.audience,
        role,
        now,
        issuer.access_ttl,
        owner.device_slot,
    )
    refresh_token = new_refresh_token()
    row = RefreshToken(
        id=new_id(),
        family_id=family_id or new_id(),
        audience=owner.audience,
        token_digest=refresh_token_digest(refresh_token),
        issued_at=now,
        expires_at=now + issuer.refresh_ttl,
        member_id=owner.subject_id if owner.is_member else None,
        staff_id=None if owner.is_member else owner.subject_id,
        device_slot=owner.device_slot,
    )
    uow.session.add(row)
    await uow.session.flush()
    return TokenPair(
        access_token=access_token,
        access_token_expires_at=access_expires_at,
        refresh_token=refresh_token,
        refresh_token_expires_at=row.expires_at,
    )


async def rotate_refresh_token(
    uow: UnitOfWork, issuer: TokenIssuer, audience: Audience, refresh_token: str
) -> tuple[TokenOwner, uuid.UUID]:
    """Mark the presented token used and return its owner and family, for the caller to issue the next pair.

    The row lock makes two concurrent refreshes with one token resolve as one rotation and one reuse. A
    member's token is refused once its login's device is gone (revoked, or its slot given to a later
    login): a refresh hands out the device's code secret. The device's row is locked first, in share
    mode, as `revoke_device` and `register_device` lock it before they revoke the slot's tokens: a revoke
    either commits first and is seen here, or waits for this refresh and then revokes the token it issued.
    """
    digest = refresh_token_digest(refresh_token)
    owner = (
        await uow.session.execute(
            select(RefreshToken.member_id, RefreshToken.device_slot).where(
                RefreshToken.token_digest == digest, RefreshToken.audience == audience
            )
        )
    ).one_or_none()
    if owner is None:
        raise RefreshTokenInvalid()
    member_id, device_slot = owner
    device_gone = (
        member_id is not None
        and device_slot is not None
        and not await _device_live(uow, member_id, device_slot)
    )
    locked = select(RefreshToken).where(RefreshToken.token_digest == digest).with_for_update()
    row = (await uow.session.execute(locked)).scalar_one_or_none()
    if row is None:  # deleted meanwhile, with the member's account
        raise RefreshTokenInvalid()
    now = issuer.clock.now()
    verdict = refresh_verdict(
        rotated_at=row.rotated_at, revoked_at=row.revoked_at, expires_at=row.expires_at, now=now
    )
    if verdict is RefreshVerdict.REUSED or device_gone:
        family_id = row.family_id
        # The revocation is the point of the answer: it is kept although the request fails.
        uow.keep_on_failure(lambda kept: _revoke(kept, RefreshToken.family_id == family_id, issuer.clock))
        if device_gone:
            raise RefreshTokenRevoked(
                "this login's device was revoked or taken by a later login; log in again"
            )
        raise RefreshTokenReused()
    row.rotated_at = now
    subject_id = row.member_id if row.member_id is not None else row.staff_id
    assert subject_id is not None  # the one_owner check constraint guarantees an owner
    return TokenOwner(audience, subject_id, row.device_slot), row.family_id


async def _device_live(uow: UnitOfWork, member_id: uuid.UUID, slot: int) -> bool:
    revoked_at = (
        await uow.session.execute(
            select(MemberDevice.revoked_at)
            .where(MemberDevice.member_id == member_id, MemberDevice.slot == slot)
            .with_for_update(read=True)
        )
    ).one_or_none()
    return revoked_at is not None and revoked_at[0] is None


async def revoke_family(uow: UnitOfWork, clock: Clock, owner: TokenOwner, refresh_token: str) -> int | None:
    """Log out: revoke the family of this refresh token, if it belongs to `owner`; returns its device slot."""
    found = (
        await uow.session.execute(
            select(RefreshToken.family_id, RefreshToken.device_slot).where(
                RefreshToken.token_digest == refresh_token_digest(refresh_token), owner.owns()
            )
        )
    ).one_or_none()
    if found is None:
        raise RefreshTokenInvalid()
    family_id, device_slot = found
    await _revoke(uow, RefreshToken.family_id == family_id, clock)
    return device_slot


async def revoke_all_of(uow: UnitOfWork, clock: Clock, owner: TokenOwner) -> None:
    await _revoke(uow, owner.owns(), clock)


async def _revoke(uow: UnitOfWork, condition: ColumnElement[bool], clock: Clock) -> None:
    await uow.session.execute(
        update(RefreshToken)
        .where(condition, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
