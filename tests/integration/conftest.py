"""Every integration test starts from empty tables and the current time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from migrations.models import target_metadata


@pytest.fixture(autouse=True)
async def clean_state(db: Database, clock: SettableClock) -> None:
    clock.set(datetime.now(UTC))
    names = ", ".join(f'"{table.name}"' for table in target_metadata().sorted_tables)
    async with db.unit_of_work() as uow:
        await uow.session.execute(text(f"TRUNCATE {names} CASCADE"))
