"""An operator disables, enables or re-roles a staff account (the `tsunagari staff` commands).

Each request reads the account as it stands (api.auth, accounts.console_sessions), so a disabled account is
refused and a changed role applies from the caller's next request. Disabling and enabling both end the
account's refresh tokens and console sessions: a login made while a disable was committing could otherwise
outlive it, and come back to life when the account is enabled again.
"""

from __future__ import annotations

from sqlalchemy import select, update

from accounts.errors import StaffNotFound
from accounts.rules import StaffRole, normalised_email
from accounts.schemas import StaffProfile
from accounts.sessions import TokenOwner, revoke_all_of
from accounts.staff import profile_of
from accounts.tables import ConsoleSession, Staff
from domain.clock import Clock
from domain.tokens import Audience
from infra.db import UnitOfWork


async def set_staff_enabled(uow: UnitOfWork, clock: Clock, email: str, enabled: bool) -> StaffProfile:
    staff = await _staff_by_email(uow, email)
    staff.disabled_at = None if enabled else (staff.disabled_at or clock.now())
    await revoke_all_of(uow, clock, TokenOwner(Audience.STAFF, staff.id))
    await uow.session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.staff_id == staff.id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )
    return profile_of(staff)


async def set_staff_role(uow: UnitOfWork, email: str, role: StaffRole) -> StaffProfile:
    staff = await _staff_by_email(uow, email)
    staff.role = role
    return profile_of(staff)


async def _staff_by_email(uow: UnitOfWork, email: str) -> Staff:
    staff = (
        await uow.session.execute(
            select(Staff).where(Staff.email == normalised_email(email)).with_for_update()
        )
    ).scalar_one_or_none()
    if staff is None:
        raise StaffNotFound(f"no staff account has the email {email!r}")
    return staff
