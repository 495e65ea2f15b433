"""An operator disables, enables and re-roles staff accounts (accounts.staff_access) while they are in use.

The command line and what each change does to tokens and sessions: test_cli.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select, update

from accounts.errors import LastAdmin
from accounts.rules import StaffRole
from accounts.sessions import issue_token_pair, rotate_refresh_token
from accounts.staff import create_staff, enabled_staff
from accounts.staff_access import set_staff_enabled, set_staff_role
from accounts.tables import Staff
from domain.clock import SettableClock
from domain.tokens import Audience
from infra.db import Database, UnitOfWork
from infra.settings import Settings
from tests.integration.factories import PASSWORD, token_issuer, unique_email
from tests.integration.lock_waits import side_connections, until_waiting


async def test_a_disable_racing_a_refresh_neither_deadlocks_nor_leaves_the_account_enabled(
    client: httpx.AsyncClient, db: Database, settings: Settings, clock: SettableClock
) -> None:
    """The refresh holds its token's row when the disable comes: the disable waits for it, while the
    refresh's next token (a foreign key to the account) must not wait for the disable's lock on the
    account, or each would wait for the other and PostgreSQL would roll one back."""
    email = unique_email("admin")
    async with db.unit_of_work() as uow:
        await create_staff(uow, clock, unique_email("admin"), PASSWORD, "Another", StaffRole.ADMIN)
        await create_staff(uow, clock, email, PASSWORD, "Ops", StaffRole.ADMIN)
    login = (await client.post("/v1/console/sessions", json={"email": email, "password": PASSWORD})).json()
    issuer = token_issuer(settings, clock)

    async def disable() -> None:
        async with db.unit_of_work() as uow:
            await set_staff_enabled(uow, clock, email, enabled=False)

    async with side_connections(settings) as side:
        # accounts.staff.refresh, step by step: the token locked and used, the account read, the next pair.
        async with db.unit_of_work() as refreshing:
            owner, family_id = await rotate_refresh_token(
                refreshing, issuer, Audience.STAFF, login["tokens"]["refresh_token"]
            )
            staff = await enabled_staff(refreshing, owner.subject_id)
            disabling = asyncio.create_task(disable())
            await until_waiting(side, "%UPDATE refresh_tokens%")
            issued = await asyncio.wait_for(
                issue_token_pair(refreshing, issuer, owner, role=staff.role.value, family_id=family_id), 10
            )
        await asyncio.wait_for(disabling, 10)

    async with db.unit_of_work() as uow:
        account = await uow.session.scalar(select(Staff).where(Staff.email == email))
    assert account is not None
    assert account.disabled_at is not None
    refused = await client.post("/v1/console/sessions/refresh", json={"refresh_token": issued.refresh_token})
    assert refused.status_code == 401
    assert refused.json()["code"] == "staff_disabled"


async def test_the_last_enabled_admin_is_neither_disabled_nor_demoted(
    db: Database, clock: SettableClock
) -> None:
    email = unique_email("admin")
    async with db.unit_of_work() as uow:
        await create_staff(uow, clock, email, PASSWORD, "Ops", StaffRole.ADMIN)

    async def as_the_only_enabled_admin(take_away: Callable[[UnitOfWork], Awaitable[object]]) -> None:
        async with db.unit_of_work() as uow:
            # The other admins disabled in this transaction only: the refusal rolls it back.
            await uow.session.execute(
                update(Staff)
                .where(Staff.email != email, Staff.role == StaffRole.ADMIN)
                .values(disabled_at=clock.now())
            )
            await take_away(uow)

    async def demote(uow: UnitOfWork) -> object:
        return await set_staff_role(uow, email, StaffRole.MARKETER)

    async def disable(uow: UnitOfWork) -> object:
        return await set_staff_enabled(uow, clock, email, enabled=False)

    for take_away in (demote, disable):
        with pytest.raises(LastAdmin):
            await as_the_only_enabled_admin(take_away)
    async with db.unit_of_work() as uow:
        kept = await uow.session.scalar(select(Staff).where(Staff.email == email))
        assert kept is not None
        assert (kept.role, kept.disabled_at) == (StaffRole.ADMIN, None)
        await create_staff(uow, clock, unique_email("admin"), PASSWORD, "Another", StaffRole.ADMIN)
    # With another admin enabled, the same changes are allowed.
    async with db.unit_of_work() as uow:
        assert (await set_staff_role(uow, email, StaffRole.MARKETER)).role is StaffRole.MARKETER
    async with db.unit_of_work() as uow:
        await set_staff_role(uow, email, StaffRole.ADMIN)
        await set_staff_enabled(uow, clock, email, enabled=False)
