"""Member devices: each logged-in phone gets its own code secret, so it can show member codes offline.

A device lives as long as the login session it came with: logging out (or deleting the account)
revokes it, and a member can revoke a lost phone's device from another one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy import select, update

from accounts.device_secrets import (
    CODE_ALGORITHM,
    CODE_STEP_S,
    MAX_DEVICE_SLOT,
    device_code_secret,
    new_device_salt,
    secret_for_app,
)
from accounts.errors import DeviceNotFound
from accounts.tables import Member, MemberDevice, RefreshToken
from domain.keys import SigningKey
from infra.db import UnitOfWork


class DeviceCredentials(msgspec.Struct, frozen=True):
    """Given at login, and again with every token refresh: what the app needs to compute member codes
    offline (see points.member_codes). `code_key_id` names the server key the secret derives from; when
    it changes, the secret did."""

    slot: int
    code_secret: str
    code_key_id: str
    step_s: int = CODE_STEP_S
    algorithm: str = CODE_ALGORITHM


class DeviceView(msgspec.Struct, frozen=True):
    slot: int
    created_at: datetime
    current: bool


async def register_device(
    uow: UnitOfWork, member_id: uuid.UUID, code_key: SigningKey, now: datetime
) -> DeviceCredentials:
    """Give a new login its device slot: the lowest free one, else the oldest device's (which is revoked)."""
    # Serialise concurrent logins of one member so two never take the same slot.
    await uow.session.execute(select(Member.id).where(Member.id == member_id).with_for_update())
    devices = {
        d.slot: d
        for d in (
            await uow.session.execute(select(MemberDevice).where(MemberDevice.member_id == member_id))
        ).scalars()
    }
    free = [slot for slot in range(MAX_DEVICE_SLOT + 1) if slot not in devices or devices[slot].revoked_at]
    slot = free[0] if free else min(devices.values(), key=lambda d: d.created_at).slot
    salt = new_device_salt()
    if slot in devices:  # a new login in a freed slot: nothing of the earlier device carries over
        device = devices[slot]
        device.secret_salt, device.created_at, device.revoked_at = salt, now, None
        device.push_address = device.push_kind = None
        await uow.session.flush()
        await _end_logins_of(uow, member_id, slot, now)  # nor its logins, which would refresh into it
    else:
        uow.session.add(MemberDevice(member_id=member_id, slot=slot, secret_salt=salt, created_at=now))
    await uow.session.flush()
    return _credentials(code_key, member_id, slot, salt)


async def current_device_credentials(
    uow: UnitOfWork, member_id: uuid.UUID, slot: int | None, code_key: SigningKey
) -> DeviceCredentials | None:
    """The device's code secret under the current code key, for every token refresh: after a key rotation
    the app swaps the secret it got at login for this one before the previous key retires. Same salt, so
    nothing is written. Only a refresh hands it out, never an access token alone: a stolen access token
    (15 minutes) must not become a secret that mints codes for as long as the device lives. None when the
    login has no device (or it was revoked)."""
    salt = None if slot is None else await _active_salt(uow, member_id, slot)
    if slot is None or salt is None:
        return None
    return _credentials(code_key, member_id, slot, salt)


def _credentials(code_key: SigningKey, member_id: uuid.UUID, slot: int, salt: bytes) -> DeviceCredentials:
    secret = device_code_secret(code_key.secret, member_id, slot, salt)
    return DeviceCredentials(slot=slot, code_secret=secret_for_app(secret), code_key_id=code_key.key_id)


async def revoke_device(uow: UnitOfWork, member_id: uuid.UUID, slot: int, now: datetime) -> None:
    """Revoke one of the member's devices, and the login it came with: a lost phone can neither show codes
    nor refresh its session (its last access token lives out its minutes). Revoking it again is harmless
    (a retried request after a lost answer succeeds); DeviceNotFound only for a slot the member never had."""
    result = await uow.session.execute(
        update(MemberDevice)
        .where(
            MemberDevice.member_id == member_id, MemberDevice.slot == slot, MemberDevice.revoked_at.is_(None)
        )
        .values(revoked_at=now, push_address=None, push_kind=None)
        .returning(MemberDevice.slot)
    )
    if result.scalar_one_or_none() is None and await uow.session.get(MemberDevice, (member_id, slot)) is None:
        raise DeviceNotFound()
    await _end_logins_of(uow, member_id, slot, now)


async def _end_logins_of(uow: UnitOfWork, member_id: uuid.UUID, slot: int, now: datetime) -> None:
    """Revoke the refresh tokens of the logins a device slot had. Run after the device's row is changed,
    so its lock is held: a statement of its own sees the tokens of any refresh that held the row before
    (see accounts.sessions.rotate_refresh_token)."""
    await uow.session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.member_id == member_id,
            RefreshToken.device_slot == slot,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


async def list_devices(uow: UnitOfWork, member_id: uuid.UUID, current_slot: int | None) -> list[DeviceView]:
    rows = await uow.session.execute(
        select(MemberDevice)
        .where(MemberDevice.member_id == member_id, MemberDevice.revoked_at.is_(None))
        .order_by(MemberDevice.slot)
    )
    return [
        DeviceView(slot=d.slot, created_at=d.created_at, current=d.slot == current_slot)
        for d in rows.scalars()
    ]


async def active_device_secret(
    uow: UnitOfWork, member_id: uuid.UUID, slot: int, code_key: str
) -> bytes | None:
    return code_secret(code_key, member_id, slot, await _active_salt(uow, member_id, slot))


async def _active_salt(uow: UnitOfWork, member_id: uuid.UUID, slot: int) -> bytes | None:
    device = await uow.session.get(MemberDevice, (member_id, slot))
    return None if device is None or device.revoked_at is not None else device.secret_salt


def code_secret(code_key: str, member_id: uuid.UUID, slot: int, salt: bytes | None) -> bytes | None:
    """The code secret of the member's device in `slot` from its salt; None when it has no active one."""
    return None if salt is None else device_code_secret(code_key, member_id, slot, salt)


def card_holder_sql(card_number: str, slot: str) -> str:
    """SQL: the member holding card `card_number` (not erased), with the salt of its active device in
    `slot` (NULL when there is none): one row or none, for statements starting from a scanned code."""
    return f"""
    SELECT member.id AS member_id, member.card_number, member.display_name, device.secret_salt
    FROM members AS member
    LEFT JOIN member_devices AS device
        ON device.member_id = member.id AND device.slot = {slot} AND device.revoked_at IS NULL
    WHERE member.card_number = {card_number} AND member.erased_at IS NULL"""  # noqa: S608 - constant SQL; values are bound
