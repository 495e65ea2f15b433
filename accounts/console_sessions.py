"""Web console sessions: staff sign in with their console account and the browser keeps an opaque token.

The token is high-entropy and stored as a SHA-256 digest (like refresh tokens), so a database leak does not
hand out live sessions. A session lasts a working day at most; disabling a staff account ends its sessions
at once, because every request checks the account.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from accounts.errors import ConsoleSessionInvalid
from accounts.login_limits import LoginLimits
from accounts.schemas import Credentials, StaffProfile
from accounts.staff import authenticate, profile_of
from accounts.tables import ConsoleSession, Staff
from domain.tokens import new_refresh_token, refresh_token_digest
from infra.db import UnitOfWork

CONSOLE_SESSION_TTL = timedelta(hours=12)


async def open_console_session(
    uow: UnitOfWork, limits: LoginLimits, credentials: Credentials, now: datetime
) -> tuple[str, StaffProfile]:
    """A new session for these credentials: its token (for the cookie) and who signed in."""
    staff = await authenticate(uow, limits, credentials)
    token = new_refresh_token()
    uow.session.add(
        ConsoleSession(
            staff_id=staff.id,
            token_digest=refresh_token_digest(token),
            created_at=now,
            expires_at=now + CONSOLE_SESSION_TTL,
        )
    )
    await uow.session.flush()
    return token, profile_of(staff)


async def console_staff(uow: UnitOfWork, token: str, now: datetime) -> StaffProfile:
    """Who holds this session token, if the session is live and the account enabled."""
    staff = (
        await uow.session.execute(
            select(Staff)
            .join(ConsoleSession, ConsoleSession.staff_id == Staff.id)
            .where(
                ConsoleSession.token_digest == refresh_token_digest(token),
                ConsoleSession.ended_at.is_(None),
                ConsoleSession.expires_at > now,
                Staff.disabled_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if staff is None:
        raise ConsoleSessionInvalid()
    return profile_of(staff)


async def end_console_sessions_of(uow: UnitOfWork, staff_id: uuid.UUID, now: datetime) -> None:
    await uow.session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.staff_id == staff_id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now)
    )


async def end_console_session(uow: UnitOfWork, token: str, now: datetime) -> None:
    await uow.session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_digest == refresh_token_digest(token), ConsoleSession.ended_at.is_(None))
        .values(ended_at=now)
    )
