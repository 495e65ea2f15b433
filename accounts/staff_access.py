"""An operator disables, enables or re-roles a staff account (the `tsunagari staff` commands).

Each request reads the account as it stands (api.auth, accounts.console_sessions), so a disabled account is
refused and a changed role applies from the caller's next request. Enabling a disabled account ends the
refresh tokens and console sessions it had: one issued by a login or refresh that was under way when the
disable committed would otherwise come back to life with the account. Disabling ends them too, so a
re-enabled account starts from a fresh login. (A login whose password check spans both a disable and the
enable after it keeps its session: the account it proved the password of is enabled when it ends.)

The account's row is locked FOR NO KEY UPDATE, which a refresh inserting its next token (a foreign key to
the account) does not wait for: a refresh holding its token's lock and a disable holding the account's
cannot deadlock.
"""

from __future__ import annotations

from sqlalchemy import func, select

from accounts.console_sessions import end_console_sessions_of
from accounts.errors import StaffNotFound
from accounts.rules import StaffRole, check_an_admin_remains, normalised_email
from accounts.schemas import StaffProfile
from accounts.sessions import TokenOwner, revoke_all_of
from accounts.staff import profile_of
from accounts.tables import Staff
from domain.clock import Clock
from domain.tokens import Audience
from infra.db import UnitOfWork


async def set_staff_enabled(uow: UnitOfWork, clock: Clock, email: str, enabled: bool) -> StaffProfile:
    staff = await _staff_by_email(uow, email)
    if enabled == (staff.disabled_at is None):
        return profile_of(staff)
    if not enabled and staff.role is StaffRole.ADMIN:
        check_an_admin_remains(await _other_enabled_admins(uow, staff))
    staff.disabled_at = None if enabled else clock.now()
    await revoke_all_of(uow, clock, TokenOwner(Audience.STAFF, staff.id))
    await end_console_sessions_of(uow, staff.id, clock.now())
    return profile_of(staff)


async def set_staff_role(uow: UnitOfWork, email: str, role: StaffRole) -> StaffProfile:
    staff = await _staff_by_email(uow, email)
    if staff.role is StaffRole.ADMIN and role is not StaffRole.ADMIN and staff.disabled_at is None:
        check_an_admin_remains(await _other_enabled_admins(uow, staff))
    staff.role = role
    return profile_of(staff)


async def _staff_by_email(uow: UnitOfWork, email: str) -> Staff:
    staff = (
        await uow.session.execute(
            select(Staff).where(Staff.email == normalised_email(email)).with_for_update(key_share=True)
        )
    ).scalar_one_or_none()
    if staff is None:
        raise StaffNotFound(f"no staff account has the email {email!r}")
    return staff


async def _other_enabled_admins(uow: UnitOfWork, staff: Staff) -> int:
    count = await uow.session.scalar(
        select(func.count())
        .select_from(Staff)
        .where(Staff.role == StaffRole.ADMIN, Staff.disabled_at.is_(None), Staff.id != staff.id)
    )
    return int(count or 0)
