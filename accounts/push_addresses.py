"""Where a member's phones receive push messages: one FCM address per logged-in device.

The app registers and refreshes its address (a Firebase installation id, `fid`, or a legacy registration
`token`) with its platform, app version, locale and notification permission. An address belongs to one
device at a time: registering it moves it there. It stops being used when FCM says it is dead
(UNREGISTERED, SENDER_ID_MISMATCH, or INVALID_ARGUMENT for a message known to be valid), when its
device logs out or is revoked, when the account is erased, and when it has not been refreshed for
`retire_after_days` (apps refresh on every start).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from sqlalchemy import ColumnElement, ColumnExpressionArgument, and_, exists, select, update

from accounts.errors import DeviceNotFound, PushAddressNeedsDevice
from accounts.tables import MemberDevice
from infra.db import UnitOfWork
from infra.locks import lock_until_commit

AddressKind = Literal["fid", "token"]
Permission = Literal["granted", "provisional", "denied", "not_determined"]
REACHABLE = ("granted", "provisional")  # provisional: iOS delivers quietly, to the notification centre


class PushRegistration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: AddressKind
    # Registration tokens run to about 160 characters, installation ids to 22.
    address: Annotated[str, msgspec.Meta(min_length=8, max_length=1024, pattern=r"^[A-Za-z0-9_:\-.]+$")]
    platform: Literal["ios", "android", "web"]
    app_version: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    locale: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
    permission: Permission


class PushTarget(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    slot: int
    kind: AddressKind
    address: str


def _reachable() -> ColumnElement[bool]:
    return and_(
        MemberDevice.revoked_at.is_(None),
        MemberDevice.push_address.is_not(None),
        MemberDevice.push_disabled_at.is_(None),
        MemberDevice.notification_permission.in_(REACHABLE),
    )


async def register_push_address(
    uow: UnitOfWork, member_id: uuid.UUID, slot: int | None, registration: PushRegistration, now: datetime
) -> None:
    """Set (or refresh) the push address of the member's logged-in device `slot` (the access token's)."""
    if slot is None:
        raise PushAddressNeedsDevice()
    device = await uow.session.get(MemberDevice, (member_id, slot), with_for_update=True)
    if device is None or device.revoked_at is not None:
        raise DeviceNotFound("this login's device was revoked; log in again")
    # Two devices claiming one address at once: the second waits, then takes it from the first.
    await lock_until_commit(uow, "accounts.push-address", registration.address)
    await uow.session.execute(
        update(MemberDevice)
        .where(
            MemberDevice.push_address == registration.address,
            (MemberDevice.member_id != member_id) | (MemberDevice.slot != slot),
        )
        .values(push_address=None, push_kind=None)
    )
    device.push_kind, device.push_address = registration.kind, registration.address
    device.platform, device.app_version = registration.platform, registration.app_version
    device.locale, device.notification_permission = registration.locale, registration.permission
    device.push_refreshed_at = device.last_seen_at = now
    device.push_disabled_at = device.push_disabled_reason = None


async def forget_push_address(uow: UnitOfWork, member_id: uuid.UUID, slot: int | None) -> None:
    """The device should get no more pushes (the member switched them off in the app)."""
    if slot is None:
        raise PushAddressNeedsDevice()
    await uow.session.execute(
        update(MemberDevice)
        .where(MemberDevice.member_id == member_id, MemberDevice.slot == slot)
        .values(push_address=None, push_kind=None)
    )


async def disable_dead_addresses(uow: UnitOfWork, dead: list[PushTarget], reason: str, now: datetime) -> int:
    """Stop using addresses FCM reported dead, unless the app refreshed its device's address meanwhile."""
    disabled = 0
    for target in dead:
        result = await uow.session.execute(
            update(MemberDevice)
            .where(
                MemberDevice.member_id == target.member_id,
                MemberDevice.slot == target.slot,
                MemberDevice.push_address == target.address,
                MemberDevice.push_disabled_at.is_(None),
            )
            .values(push_disabled_at=now, push_disabled_reason=reason[:40])
        )
        disabled += int(getattr(result, "rowcount", 0) or 0)
    return disabled


async def retire_stale_addresses(uow: UnitOfWork, now: datetime, after: timedelta) -> int:
    result = await uow.session.execute(
        update(MemberDevice)
        .where(MemberDevice.push_address.is_not(None), MemberDevice.push_refreshed_at < now - after)
        .values(push_address=None, push_kind=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def push_targets(uow: UnitOfWork, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[PushTarget]]:
    """Each member's reachable devices (logged in, address live, notifications allowed)."""
    rows = await uow.session.execute(
        select(MemberDevice.member_id, MemberDevice.slot, MemberDevice.push_kind, MemberDevice.push_address)
        .where(MemberDevice.member_id.in_(member_ids), _reachable())
        .order_by(MemberDevice.member_id, MemberDevice.slot)
    )
    targets: dict[uuid.UUID, list[PushTarget]] = {}
    for member_id, slot, kind, address in rows:
        targets.setdefault(member_id, []).append(_target(member_id, slot, kind, address))
    return targets


async def target_of(uow: UnitOfWork, member_id: uuid.UUID, slot: int) -> PushTarget | None:
    """The device's address now, if it is still reachable."""
    row = (
        await uow.session.execute(
            select(MemberDevice.push_kind, MemberDevice.push_address).where(
                MemberDevice.member_id == member_id, MemberDevice.slot == slot, _reachable()
            )
        )
    ).one_or_none()
    return None if row is None else _target(member_id, slot, row[0], row[1])


def _target(member_id: uuid.UUID, slot: int, kind: str | None, address: str | None) -> PushTarget:
    if address is None:
        raise ValueError("only a device with an address is a push target")  # _reachable() selects them
    return PushTarget(member_id, slot, "fid" if kind == "fid" else "token", address)


def has_reachable_device(member_id: ColumnExpressionArgument[uuid.UUID]) -> ColumnElement[bool]:
    """SQL: the member has a device push messages can reach (for audience segments)."""
    return exists().where(MemberDevice.member_id == member_id, _reachable())
