"""Staff (marketers, admins) use cases: created by an operator, then log in to the console."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from accounts.errors import InvalidCredentials, StaffDisabled, StaffExists
from accounts.login_limits import LoginLimits
from accounts.rules import StaffRole, check_password_policy, normalised_email
from accounts.schemas import Credentials, StaffProfile, StaffSession, TokenPair
from accounts.sessions import TokenIssuer, TokenOwner, issue_token_pair, rotate_refresh_token
from accounts.tables import Staff
from domain.clock import Clock
from domain.passwords import hash_password, verify_password
from domain.tokens import Audience
from infra.db import UnitOfWork


def profile_of(staff: Staff) -> StaffProfile:
    return StaffProfile(id=staff.id, email=staff.email, display_name=staff.display_name, role=staff.role)


async def create_staff(
    uow: UnitOfWork, clock: Clock, email: str, password: str, display_name: str, role: StaffRole
) -> StaffProfile:
    email = normalised_email(email)
    check_password_policy(password, email)
    staff = Staff(
        email=email,
        password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display_name,
        role=role,
        created_at=clock.now(),
    )
    await uow.add_unique(staff, StaffExists(f"{email} already has a staff account"))
    return profile_of(staff)


async def authenticate(uow: UnitOfWork, limits: LoginLimits, request: Credentials) -> Staff:
    """The enabled staff member these credentials name; attempts are counted per email (API and console)."""
    email = normalised_email(request.email)
    await limits.count_attempt("staff", email)
    staff = (await uow.session.execute(select(Staff).where(Staff.email == email))).scalar_one_or_none()
    password_hash = staff.password_hash if staff is not None else None
    if not await asyncio.to_thread(verify_password, password_hash, request.password) or staff is None:
        raise InvalidCredentials()
    if staff.disabled_at is not None:
        raise StaffDisabled()
    return staff


async def log_in(
    uow: UnitOfWork, issuer: TokenIssuer, limits: LoginLimits, request: Credentials
) -> StaffSession:
    staff = await authenticate(uow, limits, request)
    tokens = await issue_token_pair(uow, issuer, TokenOwner(Audience.STAFF, staff.id), role=staff.role.value)
    return StaffSession(staff=profile_of(staff), tokens=tokens)


async def refresh(uow: UnitOfWork, issuer: TokenIssuer, refresh_token: str) -> TokenPair:
    owner, family_id = await rotate_refresh_token(uow, issuer, Audience.STAFF, refresh_token)
    staff = await enabled_staff(uow, owner.subject_id)
    return await issue_token_pair(uow, issuer, owner, role=staff.role.value, family_id=family_id)


async def profile(uow: UnitOfWork, staff_id: uuid.UUID) -> StaffProfile:
    return profile_of(await enabled_staff(uow, staff_id))


async def enabled_staff(uow: UnitOfWork, staff_id: uuid.UUID) -> Staff:
    staff = await uow.session.get(Staff, staff_id)
    if staff is None or staff.disabled_at is not None:
        raise StaffDisabled()
    return staff
